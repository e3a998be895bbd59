//! Signature verification. `verify` is the facade the rest of the crate uses;
//! `rsa` and `p256` are our own implementations (faster than ring inside V8),
//! P-384 and Ed25519 go through ring. Uses only `vocab`.

pub mod p256;
pub mod rsa;
pub mod verify;
