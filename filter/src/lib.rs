//! Scopegate: a Proxy-Wasm filter that validates machine identities' JWTs and
//! enforces a scope-to-route map, for Envoy, Istio and Kong.
//!
//! The layers, lowest first. Each may use the layers above it in this list,
//! never one below it (a test in `tests/layers.rs` holds the tree to that):
//!
//! - `vocab`: the words every layer speaks: reason codes, algorithm names, text helpers. Uses nothing.
//! - `crypto`: signature verification (our RSA and P-256, ring for the rest). Uses `vocab`.
//! - `jose`: JWS compact tokens, base64url, JWK sets, minting for tests. Uses `crypto`, `vocab`.
//! - `policy`: the validated configuration, path normalization, the route map. Uses `jose`, `vocab`.
//! - `identity`: from a token to a verified identity, and the verified-token cache. Uses `policy` and below.
//! - `request`: one request's decision, header changes, denial response and audit line. Uses `identity` and below.
//! - `remote`: documents fetched from issuers (key sets), shared by the workers. Uses `identity` and below.
//! - `host`: the gateway adapter behind a `Host` trait, the proxy-wasm glue (Wasm build only). Uses everything.
//!
//! Everything below `host` is pure: request facts, configuration and the
//! time come in as arguments, a decision goes out.

pub mod vocab;

pub mod crypto;

pub mod jose;

pub mod policy;

pub mod identity;

pub mod request;

pub mod remote;

pub mod host;

pub use policy::config::Config;
pub use request::decision::{decide, Decision, Request};
pub use vocab::reason::Reason;
