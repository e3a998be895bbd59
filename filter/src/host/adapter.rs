//! From host to core and back: reads the request through a narrow `Host`
//! trait, asks the core for a decision, reports it, and applies it. Generic
//! over the host so it runs natively in tests; `glue` is the proxy-wasm `Host`.

use crate::host::record;
use crate::host::wire::HeaderMap;
use crate::identity::cache::TokenCache;
use crate::identity::shared::SharedStore;
use crate::identity::validate::{Document, KeyStore};
use crate::policy::config::{AuditLog, Config, Mode, Property, PropertyForm};
use crate::request::audit::{self, AuditBudget, PeerCertificate};
use crate::request::binding::ClientCertificate;
use crate::request::decision::{self, Decision, Registration, Request, Verdict};
use crate::request::headers;
use crate::request::inventory::Inventory;
use crate::request::limits::Limits;
use crate::request::response::{self, LocalResponse};
use crate::vocab::reason::Reason;
use crate::vocab::text::clip;
use std::rc::Rc;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LogLevel {
    Debug,
    Info,
    Warn,
    Error,
}

/// Governance signals counted beside the reason codes (CONTRACT §5).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Signal {
    /// A verified client the identity registry does not list.
    Unregistered,
    /// A token carrying scopes above its identity's ceiling.
    ScopesOverCeiling,
    /// A token let through without its status list (`on_unavailable: allow`).
    StatusUnchecked,
    /// An identity found no slot in the rate-limit state (`max_identities`).
    RateLimitOverflow,
    /// A request over a limit let through by `rate_limits.dry_run`.
    RateLimitDryRun,
}

impl Signal {
    pub const ALL: [Signal; 5] = [
        Signal::Unregistered,
        Signal::ScopesOverCeiling,
        Signal::StatusUnchecked,
        Signal::RateLimitOverflow,
        Signal::RateLimitDryRun,
    ];

    /// The counter's name.
    pub fn metric(self) -> &'static str {
        match self {
            Signal::Unregistered => "scopegate.identities.unregistered",
            Signal::ScopesOverCeiling => "scopegate.identities.scopes_over_ceiling",
            Signal::StatusUnchecked => "scopegate.revocation.status_unchecked",
            Signal::RateLimitOverflow => "scopegate.rate_limits.overflow",
            Signal::RateLimitDryRun => "scopegate.rate_limits.dry_run_exceeded",
        }
    }
}

/// What the adapter needs from a gateway, per request.
pub trait Host {
    /// All request headers, pseudo-headers included, in one host call.
    fn request_headers(&mut self) -> HeaderMap;
    fn remove_request_header(&mut self, name: &str);
    /// Adds a header the request does not have (identity headers are
    /// removed first): cheaper in Envoy than replacing one.
    fn add_request_header(&mut self, name: &str, value: &str);
    /// Replaces `:path` and makes the gateway route on the new one.
    fn set_path(&mut self, path: &str);
    fn send_response(&mut self, response: &LocalResponse);
    /// Exposes the decision to the gateway's access log (where supported):
    /// a string property, or the record (`record::RECORD_KEY`, a protobuf
    /// Struct the gateway was told of at configuration).
    fn set_property(&mut self, key: &str, value: &[u8]);
    fn count(&mut self, reason: Reason);
    /// Counts a governance signal beside the decision's reason.
    fn count_signal(&mut self, _signal: Signal) {}
    fn log(&mut self, level: LogLevel, message: &str);
    fn source_address(&mut self) -> Option<String>;
    /// The mTLS peer certificate of the downstream connection, if any.
    fn peer_certificate(&mut self) -> Option<PeerCertificate> {
        None
    }
    /// Adds a header to the response the upstream sends back (rate-limit
    /// fields on allowed requests).
    fn add_response_header(&mut self, _name: &'static str, _value: String) {}
    /// Reads the connection's client certificate digest when called: only
    /// requests with a certificate-bound token pay for the host call.
    fn client_certificate(&self) -> Box<dyn Fn() -> ClientCertificate> {
        Box::new(|| ClientCertificate::Absent)
    }
    /// True where a removed request header still reaches the upstream and a
    /// new `:path` is not what is forwarded (Kong's host): a request carrying
    /// a header Scopegate must strip, or a path it would rewrite, is refused.
    fn forwards_as_received(&self) -> bool {
        false
    }
    /// The request target exactly as the client sent it, where `:path` is
    /// something else (Kong: `:path` is nginx's decoded, normalized URI).
    fn raw_request_path(&mut self) -> Option<String> {
        None
    }
}

/// What one worker keeps between requests, all of it optional.
#[derive(Default)]
pub struct Worker<'a> {
    /// Verified tokens.
    pub cache: Option<&'a mut TokenCache>,
    /// Rate limits (their buckets live in the key store's shared store).
    pub limits: Option<&'a mut Limits>,
    /// The identity inventory.
    pub inventory: Option<&'a mut Inventory>,
    /// Audit lines per reason and second.
    pub audit_budget: Option<&'a mut AuditBudget>,
}

/// The configuration a filter instance runs with.
#[derive(Clone, Debug)]
pub enum Loaded {
    Ready(Rc<Config>),
    /// A configuration that failed validation on a host where refusing it is
    /// not possible (Kong): every request is denied, and the faults logged.
    Broken(Rc<Vec<String>>),
}

/// What to tell the gateway about the request.
#[derive(Debug, PartialEq, Eq)]
pub enum Step {
    Continue,
    /// A local response was sent.
    Responded,
    /// This document (keys, registry) is not available yet: park the request.
    Wait(Document),
}

/// Decides on a request. `now_ms` is the host's wall clock in milliseconds
/// (rate limits refill by it; tokens are judged in whole seconds).
pub fn on_request_headers<H: Host>(
    loaded: &Loaded,
    keys: &dyn KeyStore,
    state: Worker<'_>,
    host: &mut H,
    now_ms: u64,
) -> Step {
    let Worker {
        cache,
        limits,
        inventory,
        mut audit_budget,
    } = state;
    let now = now_ms / 1000;
    let cfg = match loaded {
        Loaded::Ready(cfg) => cfg,
        Loaded::Broken(errors) => {
            host.log(
                LogLevel::Error,
                &format!(
                    "configuration rejected, denying every request: {}",
                    errors.join("; ")
                ),
            );
            host.count(Reason::ConfigInvalid);
            host.send_response(&response::internal(Reason::ConfigInvalid));
            return Step::Responded;
        }
    };
    let block = host.request_headers();
    let decoded = block.decode().unwrap_or_default();
    let headers: Vec<(&str, &str)> = decoded.iter().map(|(n, v)| (*n, v.as_ref())).collect();
    let find = |name: &str| headers.iter().find(|(n, _)| *n == name).map(|(_, v)| *v);
    let raw_path = host.raw_request_path();
    let (Some(method), Some(path)) = (find(":method"), raw_path.as_deref().or(find(":path")))
    else {
        host.log(LogLevel::Error, "request without :method or :path");
        host.count(Reason::InternalError);
        host.send_response(&response::internal(Reason::InternalError));
        return Step::Responded;
    };
    let client_certificate = host.client_certificate();
    let req = Request {
        method,
        path,
        headers: &headers,
        client_certificate: &*client_certificate,
    };
    let as_received = host.forwards_as_received();
    if as_received {
        if let Some(d) = caller_set_reserved_header(cfg, &headers) {
            // Refused in dry run too: letting it through would hand the
            // caller's identity header to the upstream.
            report(cfg, &req, &d, host, audit_budget.as_deref_mut(), now);
            host.send_response(&response::denial(cfg, d.reason, d.message(), Some(&d)));
            return Step::Responded;
        }
    }
    let mut d = decision::decide_cached(cfg, &req, keys, cache, now);
    match d.verdict {
        Verdict::KeysPending { provider } => return Step::Wait(Document::Keys(provider)),
        Verdict::RegistryPending => return Step::Wait(Document::Registry),
        Verdict::RevocationPending => return Step::Wait(Document::Revocation),
        Verdict::StatusPending => return Step::Wait(Document::StatusList),
        _ => {}
    }
    if as_received && d.is_allowed() && d.rewritten_path.is_some() {
        // This host forwards the request target as sent, whatever `:path`
        // says: what was authorized would not be what is served.
        d = Decision::refused(
            "the path is not in normal form (or carries the token), and this gateway would forward it unchanged",
        );
    }
    if let (Some(limits), Some(shared)) = (limits, keys.shared()) {
        d = rate_limit(limits, shared, d, host, now_ms);
    }
    if let Some(inventory) = inventory {
        d.inventoried = inventory.record(&d, now);
    }
    report(cfg, &req, &d, host, audit_budget, now);
    let step = apply(cfg, &req, &d, host);
    if step == Step::Continue && d.is_allowed() {
        if let Some((policy, state)) = d.rate_limit_fields.take() {
            host.add_response_header("ratelimit-policy", policy);
            host.add_response_header("ratelimit", state);
        }
    }
    step
}

/// Takes the request's tokens from its rate limits; over a limit it becomes
/// a 429 (`rate_limited`), or in the limits' dry run a warning.
fn rate_limit<H: Host>(
    limits: &mut Limits,
    shared: &dyn SharedStore,
    mut d: Decision,
    host: &mut H,
    now_ms: u64,
) -> Decision {
    let Some(checked) = limits.check(shared, &d, now_ms) else {
        return d;
    };
    if checked.overflow {
        host.count_signal(Signal::RateLimitOverflow);
    }
    d.rate_limit_fields = checked.fields;
    if checked.allowed {
        return d;
    }
    let id = d.identity.as_ref();
    let who = id
        .and_then(|i| i.client_id.as_deref().or(i.subject.as_deref()))
        .unwrap_or("");
    let message = format!(
        "client \"{}\" is over the rate limit {} (retry in {} s)",
        clip(who, 64),
        checked
            .refused_by
            .iter()
            .map(|n| format!("\"{}\"", clip(n, 64)))
            .collect::<Vec<_>>()
            .join(" and "),
        checked.retry_after_s.unwrap_or(1)
    );
    if limits.dry_run() {
        // Let through: an allowed response, which carries the fields only
        // with `headers`.
        if !limits.headers() {
            d.rate_limit_fields = None;
        }
        host.count_signal(Signal::RateLimitDryRun);
        host.log(
            LogLevel::Warn,
            &format!("rate_limits dry run, let through: {message}"),
        );
        return d;
    }
    d.retry_after_s = checked.retry_after_s;
    d.rate_limited(message)
}

/// A 400 for a request that carries a header only the gateway may set
/// (identity and method-override headers), on hosts that cannot remove it.
fn caller_set_reserved_header(cfg: &Config, headers: &[(&str, &str)]) -> Option<Decision> {
    let (name, _) = headers.iter().find(|(n, _)| {
        cfg.stripped_headers
            .iter()
            .any(|s| s.eq_ignore_ascii_case(n))
    })?;
    Some(Decision::refused(format!(
        "the request carries the header \"{}\", which only the gateway may set",
        clip(name, 64)
    )))
}

/// Answers a request whose document (keys, registry) never arrived (fetch
/// failed or timed out): 503.
pub fn unavailable<H: Host>(cfg: &Config, host: &mut H, doc: Document, why: &str) -> Step {
    let (reason, message) = match doc {
        Document::Keys(provider) => {
            let name = cfg.providers.get(provider).map_or("?", |p| p.name.as_str());
            (
                Reason::JwksUnavailable,
                format!("keys of provider \"{name}\" are not available yet: {why}"),
            )
        }
        Document::Registry => (
            Reason::RegistryUnavailable,
            format!("the identity registry is not available yet: {why}"),
        ),
        Document::Revocation => (
            Reason::RevocationUnavailable,
            format!("the revocation list is not available yet: {why}"),
        ),
        Document::StatusList => (
            Reason::StatusUnavailable,
            format!("the token's status list is not available yet: {why}"),
        ),
    };
    host.count(reason);
    publish(
        cfg,
        host,
        &[
            (Property::Decision, "deny"),
            (Property::Reason, reason.as_str()),
        ],
    );
    host.log(LogLevel::Warn, &message);
    if cfg.mode == Mode::DryRun {
        return Step::Continue;
    }
    host.send_response(&response::denial(cfg, reason, &message, None));
    Step::Responded
}

fn report<H: Host>(
    cfg: &Config,
    req: &Request<'_>,
    d: &Decision,
    host: &mut H,
    budget: Option<&mut AuditBudget>,
    now: u64,
) {
    host.count(d.reason);
    match &d.registration {
        Some(Registration::Unregistered) => host.count_signal(Signal::Unregistered),
        Some(Registration::Registered { dropped_scopes, .. }) if !dropped_scopes.is_empty() => {
            host.count_signal(Signal::ScopesOverCeiling)
        }
        _ => {}
    }
    if d.status_unchecked {
        host.count_signal(Signal::StatusUnchecked);
        host.log(
            LogLevel::Warn,
            "a token's status list could not be had; let through unchecked (on_unavailable: allow)",
        );
    }
    let rule = d
        .rule
        .and_then(|i| cfg.rules.get(i))
        .map(|r| r.name.as_str());
    let id = d.identity.as_ref();
    let facts = Property::ALL.map(|p| {
        let value = match p {
            Property::Decision => {
                if d.is_allowed() {
                    "allow"
                } else {
                    "deny"
                }
            }
            Property::Reason => d.reason.as_str(),
            Property::Rule => rule.unwrap_or(""),
            Property::Subject => id.and_then(|i| i.subject.as_deref()).unwrap_or(""),
            Property::ClientId => id.and_then(|i| i.client_id.as_deref()).unwrap_or(""),
            Property::Issuer => id.map_or("", |i| i.issuer.as_str()),
            Property::Scopes => id.map_or("", |i| i.scope_text.as_str()),
        };
        (p, value)
    });
    publish(cfg, host, &facts);
    let wanted = match cfg.audit_log {
        AuditLog::All => true,
        AuditLog::Denied => !d.is_allowed(),
        AuditLog::Off => false,
    };
    let wanted = wanted
        && match budget {
            None => true,
            Some(b) => {
                let (admitted, summaries) = b.admit(d.reason, now);
                for line in summaries {
                    host.log(LogLevel::Info, &line);
                }
                admitted
            }
        };
    if wanted {
        let source = host.source_address();
        let peer = host.peer_certificate();
        let line = audit::line(cfg, req, d, source.as_deref(), peer.as_ref(), now);
        host.log(LogLevel::Info, &line);
    }
}

/// Sets the facts the configuration asks for, in its form. Empty values are
/// left out: an access log shows them as absent (`-`), as it did before any
/// was set.
fn publish<H: Host>(cfg: &Config, host: &mut H, facts: &[(Property, &str)]) {
    let wanted = facts
        .iter()
        .filter(|(p, v)| cfg.request_properties.contains(*p) && !v.is_empty());
    match cfg.request_properties_form {
        PropertyForm::Properties => {
            for (p, v) in wanted {
                host.set_property(p.key(), v.as_bytes());
            }
        }
        PropertyForm::Struct => {
            let fields: Vec<(&str, &str)> = wanted.map(|(p, v)| (p.name(), *v)).collect();
            if !fields.is_empty() {
                host.set_property(record::RECORD_KEY, &record::encode_struct(&fields));
            }
        }
    }
}

fn apply<H: Host>(cfg: &Config, req: &Request<'_>, d: &Decision, host: &mut H) -> Step {
    if let Verdict::Deny(denial) = &d.verdict {
        if cfg.mode == Mode::Enforce {
            host.send_response(&response::denial(
                cfg,
                denial.reason,
                &denial.message,
                Some(d),
            ));
            return Step::Responded;
        }
    }
    let m = headers::plan(cfg, req, d);
    for name in m.remove {
        host.remove_request_header(name);
    }
    for (name, value) in m.set {
        host.add_request_header(name, value);
    }
    if let Some(path) = m.path {
        host.set_path(path);
    }
    Step::Continue
}
