//! What the gateway changes on a request it forwards: identity headers in,
//! spoofed identity and method-override headers out, the normalized path.

use crate::policy::config::{Config, Mode, TokenSource};
use crate::request::decision::{Decision, Registration, Request, TokenLocation};

/// Borrowed from the configuration, the request and the decision: planning
/// allocates nothing but the two lists.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Mutations<'a> {
    /// Headers to remove (present in the request).
    pub remove: Vec<&'a str>,
    /// Headers to set, after the removals. Never present in the request by
    /// then, so a gateway may add rather than replace them.
    pub set: Vec<(&'a str, &'a str)>,
    /// New `:path`.
    pub path: Option<&'a str>,
}

/// The changes to apply to a request the gateway lets through (allowed, or
/// denied in dry-run mode).
pub fn plan<'a>(cfg: &'a Config, req: &Request<'_>, d: &'a Decision) -> Mutations<'a> {
    let mut m = Mutations::default();
    for (header, _) in req.headers {
        let hit = cfg
            .stripped_headers
            .iter()
            .find(|s| s.len() == header.len() && s.eq_ignore_ascii_case(header));
        if let Some(name) = hit {
            if !m.remove.contains(&name.as_str()) {
                m.remove.push(name);
            }
        }
    }
    let enforce = cfg.mode == Mode::Enforce;
    if enforce && !cfg.forward_token {
        if let Some(TokenLocation::Header(source)) = d.token_location {
            if let Some(TokenSource::Header { name, .. }) = cfg.token_sources.get(source) {
                if !m.remove.contains(&name.as_str()) {
                    m.remove.push(name);
                }
            }
        }
    }
    if enforce && !cfg.forward_token && req.header_values("dpop").next().is_some() {
        // The proof is a credential too (RFC 9449): kept from the upstream
        // like the token.
        m.remove.push("dpop");
    }
    if enforce {
        m.path = d.rewritten_path.as_deref();
    }
    if let Some(id) = &d.identity {
        let h = &cfg.identity_headers;
        let mut set = |name: &'a Option<String>, value: Option<&'a str>| {
            if let (Some(n), Some(v)) = (name, value) {
                m.set.push((n, v));
            }
        };
        set(&h.subject, id.subject.as_deref());
        set(&h.client_id, id.client_id.as_deref());
        set(&h.issuer, Some(&id.issuer));
        set(&h.scopes, Some(&id.scope_text));
        if let Some(Registration::Registered { owner, .. }) = &d.registration {
            set(&h.owner, Some(owner));
        }
        for (claim, header) in &h.claims {
            if let Some((_, v)) = id.claims.iter().find(|(c, _)| c == claim) {
                m.set.push((header, v));
            }
        }
    }
    m
}
