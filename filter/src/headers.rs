//! What the gateway changes on a request it forwards: identity headers in,
//! spoofed identity and method-override headers out, the normalized path.

use crate::config::{Config, Mode};
use crate::decision::{Decision, Request, TokenLocation};

/// Headers that let a caller ask an upstream framework to treat the request
/// as another method than the one Scopegate authorized. Always removed.
pub const METHOD_OVERRIDE_HEADERS: [&str; 3] = [
    "x-http-method-override",
    "x-method-override",
    "x-http-method",
];

#[derive(Debug, Default, PartialEq, Eq)]
pub struct Mutations {
    /// Headers to remove (present in the request).
    pub remove: Vec<String>,
    /// Headers to set, after the removals.
    pub set: Vec<(String, String)>,
    /// New `:path`.
    pub path: Option<String>,
}

/// The changes to apply to a request the gateway lets through (allowed, or
/// denied in dry-run mode).
pub fn plan(cfg: &Config, req: &Request<'_>, d: &Decision) -> Mutations {
    let present = |name: &str| {
        req.headers
            .iter()
            .any(|(n, _)| n.eq_ignore_ascii_case(name))
    };
    let mut m = Mutations::default();
    for name in cfg.identity_headers.names().chain(METHOD_OVERRIDE_HEADERS) {
        if present(name) && !m.remove.iter().any(|r| r == name) {
            m.remove.push(name.to_string());
        }
    }
    let enforce = cfg.mode == Mode::Enforce;
    if enforce && !cfg.forward_token {
        if let Some(TokenLocation::Header(name)) = &d.token_location {
            if !m.remove.contains(name) {
                m.remove.push(name.clone());
            }
        }
    }
    if enforce {
        m.path = d.rewritten_path.clone();
    }
    if let Some(id) = &d.identity {
        let h = &cfg.identity_headers;
        let mut set = |name: &Option<String>, value: Option<String>| {
            if let (Some(n), Some(v)) = (name, value) {
                m.set.push((n.clone(), v));
            }
        };
        set(&h.subject, id.subject.clone());
        set(&h.client_id, id.client_id.clone());
        set(&h.issuer, Some(id.issuer.clone()));
        set(&h.scopes, Some(id.scopes.join(" ")));
        for (claim, header) in &h.claims {
            if let Some((_, v)) = id.claims.iter().find(|(c, _)| c == claim) {
                m.set.push((header.clone(), v.clone()));
            }
        }
    }
    m
}
