//! The request decision: request facts + configuration + clock → verdict.
//! Pure: no host, no clock, no I/O, so every gateway and the CLI share it.

use crate::identity::cache::{self, TokenCache};
use crate::identity::validate::{Availability, Failure, Identity, KeyStore};
use crate::jose::statuslist::{self, Reference};
use crate::policy::config::{
    Access, Config, DefaultAction, OnUnavailable, RegistrySource, Requirements, RevocationSource,
    StatusListPolicy, TokenSource, Unregistered,
};
use crate::policy::limit::LimitSpec;
use crate::policy::path;
use crate::policy::registry::{Registry, Status};
use crate::policy::revocation::{RevocationList, TokenFacts};
use crate::request::binding::{self, Bound, ClientCertificate, Presented, Scheme};
use crate::vocab::reason::{Denial, Reason};
use crate::vocab::text::clip;
use crate::vocab::time::rfc3339;
use std::rc::Rc;

/// What the gateway tells us about a request.
pub struct Request<'a> {
    pub method: &'a str,
    /// The request target as received (`:path`), query included.
    pub path: &'a str,
    /// Header names in lower case, as Envoy and Kong hand them over; repeated
    /// headers appear once per value.
    pub headers: &'a [(&'a str, &'a str)],
    /// The connection's client certificate, asked for only when a token is
    /// bound to one (a host call in the gateway).
    pub client_certificate: &'a dyn Fn() -> ClientCertificate,
}

fn no_certificate() -> ClientCertificate {
    ClientCertificate::Absent
}

impl<'a> Request<'a> {
    /// A request over a connection without a client certificate.
    pub fn new(method: &'a str, path: &'a str, headers: &'a [(&'a str, &'a str)]) -> Self {
        Request {
            method,
            path,
            headers,
            client_certificate: &no_certificate,
        }
    }

    pub fn header_values<'h>(&'h self, name: &'h str) -> impl Iterator<Item = &'a str> + 'h {
        self.headers
            .iter()
            .filter(move |(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| *v)
    }
}

/// Borrows owned header pairs in the form `Request` takes.
pub fn borrow_headers(headers: &[(String, String)]) -> Vec<(&str, &str)> {
    headers
        .iter()
        .map(|(n, v)| (n.as_str(), v.as_str()))
        .collect()
}

#[derive(Debug)]
pub enum Verdict {
    Allow,
    Deny(Denial),
    /// Keys for this provider are being fetched: hold the request and decide again.
    KeysPending {
        provider: usize,
    },
    /// The identity registry is being fetched: hold the request and decide again.
    RegistryPending,
    /// The revocation list is being fetched: hold the request and decide again.
    RevocationPending,
    /// The token's status list is being fetched: hold the request and decide again.
    StatusPending,
}

/// Where the token was found, so it can be removed when not forwarded.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TokenLocation {
    /// Index of the header source in `Config::token_sources`.
    Header(usize),
    Query(String),
}

#[derive(Debug)]
pub struct Decision {
    pub verdict: Verdict,
    pub reason: Reason,
    /// Index of the matched rule.
    pub rule: Option<usize>,
    /// The provider named by the token's issuer, when configured.
    pub provider: Option<usize>,
    /// Set when the token verified, whether or not the rule was satisfied.
    pub identity: Option<Rc<Identity>>,
    /// The normalized path, when the path was well-formed.
    pub normalized_path: Option<String>,
    /// The `:path` to forward, when normalization changed it.
    pub rewritten_path: Option<String>,
    pub token_location: Option<TokenLocation>,
    /// For `insufficient_scope`: the scopes the rule asks for.
    pub required_scopes: Option<String>,
    /// What the identity registry says of a verified caller, when one is configured.
    pub registration: Option<Registration>,
    /// The token's status list could not be had and `on_unavailable: allow`
    /// let it through unchecked.
    pub status_unchecked: bool,
    /// The `Authorization` scheme the token came with.
    pub scheme: Scheme,
    /// The bindings (mTLS, DPoP) verified on this request.
    pub bound: Bound,
    /// The token is DPoP-bound: challenges use the DPoP scheme.
    pub dpop_bound: bool,
    /// `RateLimit-Policy` and `RateLimit` values, when limits applied and
    /// the caller is told them.
    pub rate_limit_fields: Option<(String, String)>,
    /// `Retry-After` of a rate-limited request.
    pub retry_after_s: Option<u64>,
    /// Counted in this worker's identity inventory.
    pub inventoried: bool,
}

/// The registry's view of a verified caller.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Registration {
    Unregistered,
    Registered {
        owner: String,
        /// The token's scopes outside the identity's ceiling, dropped before
        /// the rules were judged (the over-privilege signal).
        dropped_scopes: Vec<String>,
        /// The identity's own rate limit.
        rate_limit: Option<LimitSpec>,
    },
}

impl Decision {
    fn new(reason: Reason, verdict: Verdict) -> Self {
        Decision {
            verdict,
            reason,
            rule: None,
            provider: None,
            identity: None,
            normalized_path: None,
            rewritten_path: None,
            token_location: None,
            required_scopes: None,
            registration: None,
            status_unchecked: false,
            scheme: Scheme::Bearer,
            bound: Bound::default(),
            dpop_bound: false,
            rate_limit_fields: None,
            retry_after_s: None,
            inventoried: false,
        }
    }

    fn deny(mut self, reason: Reason, message: impl Into<String>) -> Self {
        self.reason = reason;
        self.verdict = Verdict::Deny(Denial::new(reason, message));
        self
    }

    /// Refused by a rate limit (checked after everything else allowed it).
    pub fn rate_limited(self, message: impl Into<String>) -> Self {
        self.deny(Reason::RateLimited, message)
    }

    /// A request refused before any other check: 400 `request_malformed`.
    pub fn refused(message: impl Into<String>) -> Self {
        Decision::new(Reason::RequestMalformed, Verdict::Allow)
            .deny(Reason::RequestMalformed, message)
    }

    fn allow(mut self, reason: Reason) -> Self {
        self.reason = reason;
        self.verdict = Verdict::Allow;
        self
    }

    pub fn is_allowed(&self) -> bool {
        matches!(self.verdict, Verdict::Allow)
    }

    pub fn message(&self) -> &str {
        match &self.verdict {
            Verdict::Deny(d) => &d.message,
            _ => "",
        }
    }
}

pub fn decide(cfg: &Config, req: &Request<'_>, store: &dyn KeyStore, now: u64) -> Decision {
    decide_cached(cfg, req, store, None, now)
}

/// `decide`, with a verified-token cache (the filter's path).
pub fn decide_cached(
    cfg: &Config,
    req: &Request<'_>,
    store: &dyn KeyStore,
    cache: Option<&mut TokenCache>,
    now: u64,
) -> Decision {
    let mut d = Decision::new(Reason::InternalError, Verdict::Allow);

    let (raw_path, query) = path::split_query(req.path);
    let normalized = match path::normalize(raw_path) {
        Ok(p) => p,
        Err(e) => return d.deny(Reason::RequestMalformed, e.to_string()),
    };

    let token = match find_token(cfg, req, query) {
        Ok(t) => t,
        Err(message) => return d.deny(Reason::RequestMalformed, message),
    };
    let forwarded_query = match (&token, cfg.forward_token) {
        (Some((_, TokenLocation::Query(param), _)), false) => {
            query.map(|q| without_param(q, param))
        }
        _ => query.map(str::to_string),
    };
    if normalized != raw_path || forwarded_query.as_deref() != query {
        d.rewritten_path = Some(match forwarded_query.as_deref() {
            Some(q) if !q.is_empty() => format!("{normalized}?{q}"),
            _ => normalized.clone(),
        });
    }
    d.token_location = token.as_ref().map(|(_, loc, _)| loc.clone());
    d.scheme = token.as_ref().map_or(Scheme::Bearer, |(_, _, s)| *s);

    let rule = cfg.rules.iter().position(|r| {
        r.methods
            .as_ref()
            .is_none_or(|m| m.iter().any(|x| x == req.method))
            && r.path.matches(&normalized)
    });
    d.rule = rule;
    d.normalized_path = Some(normalized);

    let requirements: Option<&Requirements> = match rule.and_then(|i| cfg.rules.get(i)) {
        Some(r) => match &r.access {
            Access::Public => return d.allow(Reason::PublicRoute),
            Access::Token(req) => Some(req),
        },
        None => match cfg.default_action {
            DefaultAction::Deny => {
                let path = d.normalized_path.clone().unwrap_or_default();
                return d.deny(
                    Reason::RouteNotAllowed,
                    format!(
                        "no rule allows {} {}",
                        crate::vocab::text::clip(req.method, 16),
                        crate::vocab::text::clip(&path, 120)
                    ),
                );
            }
            DefaultAction::Allow => return d.allow(Reason::PublicRoute),
            DefaultAction::Authenticate => None,
        },
    };

    let Some((token, _, scheme)) = token else {
        return d.deny(Reason::TokenMissing, "a bearer token is required");
    };
    let mut cache = cache;
    let identity = match cache::authenticate(cfg, token, store, cache.as_deref_mut(), now) {
        Ok(id) => id,
        Err(Failure::KeysPending { provider }) => {
            d.provider = Some(provider);
            d.reason = Reason::JwksUnavailable;
            d.verdict = Verdict::KeysPending { provider };
            return d;
        }
        Err(Failure::Denied { denial, provider }) => {
            d.provider = provider;
            d.reason = denial.reason;
            d.verdict = Verdict::Deny(denial);
            return d;
        }
    };
    d.provider = Some(identity.provider);
    d.dpop_bound = identity.cnf.jkt.is_some();
    if let Some(provider) = cfg.providers.get(identity.provider) {
        let rule = rule.and_then(|i| cfg.rules.get(i));
        let presented = Presented {
            token,
            scheme,
            method: req.method,
            url_scheme: req.header_values(":scheme").next(),
            // The Host the client sent first: Kong's host makes `:authority`
            // from its own server_name, which no client's proof names.
            authority: req
                .header_values("host")
                .next()
                .or_else(|| req.header_values(":authority").next()),
            normalized_path: d.normalized_path.as_deref().unwrap_or("/"),
            proofs: req.header_values("dpop").collect(),
            client_certificate: req.client_certificate,
            shared: store.shared(),
            replay_capacity: cfg.dpop_replay_capacity,
            skew_s: provider.clock_skew_s,
            now,
        };
        let demanded = rule
            .filter(|r| r.sender_constrained)
            .map(|r| r.name.as_str());
        let keys = cache.map(|c| &mut c.proof_keys);
        match binding::check(
            &provider.proof_of_possession,
            &identity,
            &presented,
            demanded,
            keys,
        ) {
            Ok(bound) => d.bound = bound,
            Err((reason, message)) => {
                d.identity = Some(identity);
                return d.deny(reason, message);
            }
        }
    }
    // A revoked token is dead whatever the registry or the rules say; checked
    // on every request, so a cached verification never outlives a revocation.
    match revocation_check(cfg, store, &identity, now) {
        Ok(()) => {}
        Err(RevocationOutcome::Pending) => {
            d.identity = Some(identity);
            d.reason = Reason::RevocationUnavailable;
            d.verdict = Verdict::RevocationPending;
            return d;
        }
        Err(RevocationOutcome::StatusPending) => {
            d.identity = Some(identity);
            d.reason = Reason::StatusUnavailable;
            d.verdict = Verdict::StatusPending;
            return d;
        }
        Err(RevocationOutcome::Unchecked) => d.status_unchecked = true,
        Err(RevocationOutcome::Denied(reason, message)) => {
            d.identity = Some(identity);
            return d.deny(reason, message);
        }
    }
    let (identity, granted) = match registry_gate(cfg, store, &identity, now) {
        Gate::Open => (identity, None),
        Gate::Registered {
            effective,
            registration,
        } => {
            d.registration = Some(registration);
            (effective, Some(identity))
        }
        Gate::Report => {
            d.registration = Some(Registration::Unregistered);
            (identity, None)
        }
        Gate::Pending => {
            d.identity = Some(identity);
            d.reason = Reason::RegistryUnavailable;
            d.verdict = Verdict::RegistryPending;
            return d;
        }
        Gate::Closed(reason, message, registration) => {
            d.registration = registration;
            d.identity = Some(identity);
            return d.deny(reason, message);
        }
    };
    let check = requirements.map_or(Ok(()), |r| check_requirements(cfg, r, &identity));
    d.identity = Some(identity);
    match check {
        Ok(()) => d.allow(Reason::Allowed),
        Err((denial, scopes)) => {
            // Every 403 of a rule that asks for scopes names them (RFC 6750 §3).
            d.required_scopes = scopes.or_else(|| requirements.and_then(rule_scopes));
            // Refused only because the ceiling dropped a scope the token has:
            // say so, since the token itself would have passed.
            let over_ceiling = denial.reason == Reason::InsufficientScope
                && granted
                    .zip(requirements)
                    .is_some_and(|(g, r)| check_requirements(cfg, r, &g).is_ok());
            if over_ceiling {
                let dropped = match &d.registration {
                    Some(Registration::Registered { dropped_scopes, .. }) => {
                        dropped_scopes.join(" ")
                    }
                    _ => String::new(),
                };
                return d.deny(
                    Reason::ScopeOverCeiling,
                    format!(
                        "{}; the token has it, but the identity's scope ceiling drops {dropped}",
                        denial.message
                    ),
                );
            }
            d.deny(denial.reason, denial.message)
        }
    }
}

enum RevocationOutcome {
    Pending,
    StatusPending,
    /// No status list could be had; `on_unavailable: allow` lets it through.
    Unchecked,
    Denied(Reason, String),
}

fn revocation_check(
    cfg: &Config,
    store: &dyn KeyStore,
    id: &Identity,
    now: u64,
) -> Result<(), RevocationOutcome> {
    let Some(revocation) = &cfg.revocation else {
        return Ok(());
    };
    list_check(revocation.list.as_ref(), store, id)?;
    match (&revocation.status_list, &id.status) {
        (Some(policy), Some(reference)) => status_check(policy, reference, store, id, now),
        _ => Ok(()),
    }
}

/// The token's entry in the Token Status List it points at.
fn status_check(
    policy: &StatusListPolicy,
    reference: &Reference,
    store: &dyn KeyStore,
    id: &Identity,
    now: u64,
) -> Result<(), RevocationOutcome> {
    // The uri comes from the token: never fetched outside what the operator
    // allows. A prefix match means nothing if the rest can climb out of it
    // (`../`, encoded dots) or is read differently by the fetcher (`#`, `\`).
    if !policy
        .uri_prefixes
        .iter()
        .any(|p| reference.uri.starts_with(p.as_str()))
        || !is_plain_uri(&reference.uri)
    {
        return Err(RevocationOutcome::Denied(
            Reason::StatusUnverifiable,
            format!(
                "the token's status list {} is outside the allowed uri_prefixes",
                clip(&reference.uri, 120)
            ),
        ));
    }
    let list = match store.status_list(&reference.uri, id.provider, now) {
        Availability::Ready(l) => l,
        Availability::Pending => return Err(RevocationOutcome::StatusPending),
        Availability::Unavailable(why) => {
            return match policy.on_unavailable {
                OnUnavailable::Allow => Err(RevocationOutcome::Unchecked),
                OnUnavailable::Deny => Err(RevocationOutcome::Denied(
                    Reason::StatusUnavailable,
                    format!(
                        "the status list {} is not available: {why}",
                        clip(&reference.uri, 120)
                    ),
                )),
            }
        }
    };
    let at = format!("index {} of {}", reference.idx, clip(&reference.uri, 120));
    match list.status(reference.idx) {
        Some(statuslist::VALID) => Ok(()),
        Some(statuslist::SUSPENDED) => Err(RevocationOutcome::Denied(
            Reason::TokenSuspended,
            format!("the token's status list says SUSPENDED ({at})"),
        )),
        Some(statuslist::INVALID) => Err(RevocationOutcome::Denied(
            Reason::TokenRevoked,
            format!("the token's status list says INVALID ({at})"),
        )),
        Some(other) => Err(RevocationOutcome::Denied(
            Reason::TokenRevoked,
            format!(
                "the token's status list gives status 0x{other:02x}, which is not accepted ({at})"
            ),
        )),
        None => Err(RevocationOutcome::Denied(
            Reason::TokenRevoked,
            format!("the token's status list has no {at}"),
        )),
    }
}

/// No dot segments, percent-encoding, fragments, backslashes, user info,
/// whitespace or control characters: a status list uri is a plain URL.
fn is_plain_uri(uri: &str) -> bool {
    let path = uri.split_once("://").map_or(uri, |(_, rest)| rest);
    !path
        .split(['/', '?'])
        .any(|segment| segment == "." || segment == "..")
        && !uri
            .bytes()
            .any(|b| matches!(b, b'%' | b'#' | b'\\' | b'@') || b <= b' ' || b >= 0x7f)
}

fn list_check(
    source: Option<&RevocationSource>,
    store: &dyn KeyStore,
    id: &Identity,
) -> Result<(), RevocationOutcome> {
    let Some(source) = source else {
        return Ok(());
    };
    let fetched;
    let list: &RevocationList = match source {
        RevocationSource::Inline(l) => l,
        RevocationSource::Remote(_) => match store.revocation() {
            Availability::Ready(l) => {
                fetched = l;
                &fetched
            }
            Availability::Pending => return Err(RevocationOutcome::Pending),
            Availability::Unavailable(why) => {
                return Err(RevocationOutcome::Denied(
                    Reason::RevocationUnavailable,
                    format!("the revocation list is not available: {why}"),
                ))
            }
        },
    };
    match list.check(&TokenFacts {
        provider: id.provider,
        jti: id.jti.as_deref(),
        client_id: id.client_id.as_deref(),
        subject: id.subject.as_deref(),
        iat: id.iat,
    }) {
        None => Ok(()),
        Some(kind) => Err(RevocationOutcome::Denied(
            Reason::TokenRevoked,
            kind.describe().to_string(),
        )),
    }
}

/// What the identity registry makes of a verified identity.
enum Gate {
    /// No registry configured.
    Open,
    /// Registered, active, not expired; `effective` carries the scopes within
    /// the ceiling (the same identity when nothing was dropped).
    Registered {
        effective: Rc<Identity>,
        registration: Registration,
    },
    /// Not registered, and `unregistered: report`.
    Report,
    /// The fetched registry has not arrived yet.
    Pending,
    /// Refused, with what the registry said of the caller (none when the
    /// registry itself is missing).
    Closed(Reason, String, Option<Registration>),
}

fn registry_gate(cfg: &Config, store: &dyn KeyStore, id: &Rc<Identity>, now: u64) -> Gate {
    let Some(identities) = &cfg.identities else {
        return Gate::Open;
    };
    let fetched;
    let registry: &Registry = match &identities.registry {
        RegistrySource::Inline(r) => r,
        RegistrySource::Remote(_) => match store.registry() {
            Availability::Ready(r) => {
                fetched = r;
                &fetched
            }
            Availability::Pending => return Gate::Pending,
            Availability::Unavailable(why) => {
                return Gate::Closed(
                    Reason::RegistryUnavailable,
                    format!("the identity registry is not available: {why}"),
                    None,
                )
            }
        },
    };
    let client = id.client_id.as_deref().unwrap_or("");
    let Some(entry) = id
        .client_id
        .as_deref()
        .and_then(|c| registry.find(id.provider, c))
    else {
        return match identities.unregistered {
            Unregistered::Report => Gate::Report,
            Unregistered::Deny => Gate::Closed(
                Reason::IdentityUnregistered,
                if id.client_id.is_none() {
                    "the token has no client id, so it matches no registered identity".into()
                } else {
                    format!(
                        "client \"{}\" is not in the identity registry",
                        clip(client, 64)
                    )
                },
                Some(Registration::Unregistered),
            ),
        };
    };
    let as_is = || {
        Some(Registration::Registered {
            owner: entry.owner.clone(),
            dropped_scopes: Vec::new(),
            rate_limit: entry.rate_limit,
        })
    };
    if entry.status == Status::Disabled {
        return Gate::Closed(
            Reason::IdentityDisabled,
            format!(
                "client \"{}\" is disabled in the identity registry (owner {})",
                clip(client, 64),
                clip(&entry.owner, 80)
            ),
            as_is(),
        );
    }
    let skew = cfg.providers.get(id.provider).map_or(0, |p| p.clock_skew_s);
    if let Some(expires) = entry.expires {
        if now > expires.saturating_add(skew) {
            return Gate::Closed(
                Reason::IdentityExpired,
                format!(
                    "client \"{}\" expired in the identity registry at {} (owner {})",
                    clip(client, 64),
                    rfc3339(expires),
                    clip(&entry.owner, 80)
                ),
                as_is(),
            );
        }
    }
    let dropped: Vec<String> = id
        .scopes
        .iter()
        .filter(|s| !entry.permits(s))
        .cloned()
        .collect();
    let effective = if dropped.is_empty() {
        Rc::clone(id)
    } else {
        let scopes: Vec<String> = id
            .scopes
            .iter()
            .filter(|s| entry.permits(s))
            .cloned()
            .collect();
        Rc::new(Identity {
            scope_text: scopes.join(" "),
            scopes,
            ..Identity::clone(id)
        })
    };
    Gate::Registered {
        effective,
        registration: Registration::Registered {
            owner: entry.owner.clone(),
            dropped_scopes: dropped,
            rate_limit: entry.rate_limit,
        },
    }
}

fn rule_scopes(r: &Requirements) -> Option<String> {
    if !r.scopes.is_empty() {
        Some(r.scopes.join(" "))
    } else if !r.any_scopes.is_empty() {
        Some(r.any_scopes.join(" "))
    } else {
        None
    }
}

fn check_requirements(
    cfg: &Config,
    req: &Requirements,
    id: &Identity,
) -> Result<(), (Denial, Option<String>)> {
    if let Some(allowed) = &req.providers {
        if !allowed.contains(&id.provider) {
            let names: Vec<&str> = allowed
                .iter()
                .filter_map(|i| cfg.providers.get(*i).map(|p| p.name.as_str()))
                .collect();
            let from = cfg
                .providers
                .get(id.provider)
                .map_or("", |p| p.name.as_str());
            return Err((
                Denial::new(
                    Reason::ProviderNotAllowed,
                    format!(
                        "this route accepts tokens from {}; this token is from \"{from}\"",
                        names.join(", ")
                    ),
                ),
                None,
            ));
        }
    }
    if let Some(clients) = &req.clients {
        match &id.client_id {
            None => {
                return Err((
                    Denial::new(
                        Reason::ClientNotAllowed,
                        "this route is limited to named clients and the token has no client id",
                    ),
                    None,
                ))
            }
            Some(c) if !clients.contains(c) => {
                return Err((
                    Denial::new(
                        Reason::ClientNotAllowed,
                        format!(
                            "client \"{}\" is not allowed on this route",
                            crate::vocab::text::clip(c, 64)
                        ),
                    ),
                    None,
                ))
            }
            Some(_) => {}
        }
    }
    let missing: Vec<&str> = req
        .scopes
        .iter()
        .filter(|s| !id.has_scope(s))
        .map(String::as_str)
        .collect();
    if !missing.is_empty() {
        return Err((
            Denial::new(
                Reason::InsufficientScope,
                format!("token lacks scope {}", missing.join(" ")),
            ),
            Some(req.scopes.join(" ")),
        ));
    }
    if !req.any_scopes.is_empty() && !req.any_scopes.iter().any(|s| id.has_scope(s)) {
        return Err((
            Denial::new(
                Reason::InsufficientScope,
                format!("token needs one of the scopes {}", req.any_scopes.join(" ")),
            ),
            Some(req.any_scopes.join(" ")),
        ));
    }
    Ok(())
}

/// Finds the one token of a request. More than one credential is a malformed
/// request (RFC 6750 §2: a client uses exactly one method).
fn find_token<'r>(
    cfg: &'r Config,
    req: &'r Request<'_>,
    query: Option<&'r str>,
) -> Result<Option<(&'r str, TokenLocation, Scheme)>, String> {
    let mut found: Option<(&str, TokenLocation, Scheme)> = None;
    let mut put = |token: &'r str, loc: TokenLocation, scheme| -> Result<(), String> {
        if found.is_some() {
            return Err("more than one access token in the request".to_string());
        }
        found = Some((token, loc, scheme));
        Ok(())
    };
    for (index, source) in cfg.token_sources.iter().enumerate() {
        match source {
            TokenSource::Header { name, prefix } => {
                let mut seen = 0;
                for value in req.header_values(name) {
                    seen += 1;
                    if seen > 1 {
                        return Err(format!("more than one `{name}` header"));
                    }
                    // Where the Bearer scheme is read, so is DPoP (RFC 9449 §7.1).
                    let (rest, scheme) = match strip_prefix_ignore_case(value, prefix) {
                        Some(rest) => (rest, Scheme::Bearer),
                        None if prefix.eq_ignore_ascii_case("bearer ") => {
                            match strip_prefix_ignore_case(value, "DPoP ") {
                                Some(rest) => (rest, Scheme::Dpop),
                                None => continue,
                            }
                        }
                        None => continue,
                    };
                    let token = rest.trim_matches(' ');
                    if token.is_empty() {
                        return Err(format!("`{name}` header has an empty token"));
                    }
                    if crate::jose::scan::shape(token.as_bytes()).separators {
                        return Err(format!("`{name}` header holds more than one credential"));
                    }
                    put(token, TokenLocation::Header(index), scheme)?;
                }
            }
            TokenSource::Query { param } => {
                for (k, v) in query
                    .into_iter()
                    .flat_map(|q| q.split('&'))
                    .filter_map(|kv| kv.split_once('='))
                {
                    if k == param {
                        if v.is_empty() {
                            return Err(format!("query parameter `{param}` is empty"));
                        }
                        put(v, TokenLocation::Query(param.clone()), Scheme::Bearer)?;
                    }
                }
            }
        }
    }
    Ok(found)
}

fn strip_prefix_ignore_case<'a>(value: &'a str, prefix: &str) -> Option<&'a str> {
    let head = value.get(..prefix.len())?;
    head.eq_ignore_ascii_case(prefix)
        .then(|| value.get(prefix.len()..))
        .flatten()
}

fn without_param(query: &str, param: &str) -> String {
    query
        .split('&')
        .filter(|kv| kv.split_once('=').map_or(*kv, |(k, _)| k) != param)
        .collect::<Vec<_>>()
        .join("&")
}
