//! One request: the decision (rules over a verified identity), the header
//! changes for the upstream, the RFC 6750 denial response, the audit line
//! and the per-identity rate limits.
//! Uses `identity` and below.

pub mod audit;
pub mod binding;
pub mod decision;
pub mod headers;
pub mod inventory;
pub mod lease;
pub mod limits;
pub mod ratelimit;
pub mod replay;
pub mod response;
