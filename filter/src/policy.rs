//! What the operator configured: the validated configuration (parsed once
//! per push), request-path normalization, the compiled route map, the
//! identity registry and the revocation list.
//! Uses `jose` (inline key sets) and `vocab`.

pub mod config;
pub mod path;
pub mod registry;
pub mod revocation;
pub mod rules;
