//! What the operator configured: the validated configuration (parsed once
//! per push), request-path normalization, and the compiled route map.
//! Uses `jose` (inline key sets) and `vocab`.

pub mod config;
pub mod path;
pub mod rules;
