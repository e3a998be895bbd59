//! Scopegate: a Proxy-Wasm filter that validates machine identities' JWTs and
//! enforces a scope-to-route map, for Envoy, Istio and Kong.
//!
//! The core (everything but `glue`) is pure: request facts, configuration and
//! the time come in as arguments, a decision goes out. `adapter` turns that
//! into gateway actions through a narrow `Host` trait; `glue` implements the
//! trait with proxy-wasm host calls and exists only in the Wasm build.

pub mod adapter;
pub mod alg;
pub mod audit;
pub mod base64url;
pub mod cache;
pub mod config;
pub mod crypto;
pub mod decision;
pub mod headers;
pub mod jwks;
pub mod keyfetch;
pub mod mint;
pub mod p256;
pub mod path;
pub mod reason;
pub mod response;
pub mod rsa;
pub mod rules;
pub mod scan;
pub mod text;
pub mod token;
pub mod validate;
pub mod wire;

#[cfg(target_arch = "wasm32")]
mod glue;
#[cfg(target_arch = "wasm32")]
mod hostcall;

pub use config::Config;
pub use decision::{decide, Decision, Request};
pub use reason::Reason;
