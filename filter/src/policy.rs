//! What the operator configured: the validated configuration (parsed once
//! per push), request-path normalization, the compiled route map, the
//! identity registry, the revocation list and rate limits.
//! Uses `jose` (inline key sets) and `vocab`.

pub mod config;
pub mod limit;
pub mod path;
pub mod registry;
pub mod revocation;
pub mod rules;
