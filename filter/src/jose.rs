//! JOSE: compact JWS tokens (shape, encoding, header and claims), strict
//! base64url, JWK sets turned into ready key material, DPoP proofs, and
//! minting for tests and the CLI. Uses `crypto` and `vocab`.

pub mod base64url;
pub mod dpop;
pub mod jwks;
pub mod mint;
pub mod scan;
pub mod statuslist;
pub mod token;
