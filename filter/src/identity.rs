//! Who the caller is: token validation against a provider's keys, the
//! per-worker cache of verified tokens in front of it, and the store the
//! workers share (replayed proofs, rate limits). Uses `policy` and below.

pub mod cache;
pub mod shared;
pub mod validate;
