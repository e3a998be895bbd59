//! Documents Scopegate fetches through the gateway (issuers' key sets): when
//! to fetch, what to accept, and how the workers share one fetch. Pure state
//! machines; the host performs the calls. Uses `identity` and below.

pub mod keyfetch;
