//! The vocabulary every layer speaks: reason codes (CONTRACT §3), the JOSE
//! algorithm names, strict JSON, RFC 3339 time, and helpers for text built
//! from untrusted input.
//! Depends on nothing else in the crate.

pub mod alg;
pub mod json;
pub mod reason;
pub mod text;
pub mod time;
