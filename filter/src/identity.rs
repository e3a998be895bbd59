//! Who the caller is: token validation against a provider's keys, and the
//! per-worker cache of verified tokens in front of it. Uses `policy` and below.

pub mod cache;
pub mod validate;
