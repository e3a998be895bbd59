//! Configuration (CONTRACT §1): JSON → validated types, once per push.
//!
//! The document is walked by hand rather than through serde derive so that
//! every fault is reported at once, each with the JSON Pointer of the member
//! at fault, and cross-checks (unknown provider names, duplicates, weak keys)
//! read the same way as type errors.

use crate::jose::jwks::{self, JwkIssue, KeySet};
use crate::policy::limit::{self, LimitSpec};
use crate::policy::registry::{self, Registry};
use crate::policy::revocation::{Cutoff, RevocationList, TokenIds};
use crate::policy::rules::PathPattern;
use crate::vocab::alg::{self, Alg, AlgSet};
use crate::vocab::json::{self, JsonError};
use crate::vocab::text::clip;
use crate::vocab::time;
use serde::de::{self, DeserializeSeed, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_json::{Map, Value};
use std::cell::RefCell;
use std::collections::HashSet;
use std::fmt;
use std::rc::Rc;

pub const DEFAULT_MAX_TOKEN_BYTES: usize = 8192;
pub const DEFAULT_REALM: &str = "scopegate";
/// Verified tokens each worker remembers (`token_cache_size`).
pub const DEFAULT_TOKEN_CACHE_SIZE: usize = 4096;
/// DPoP proofs within their validity window the gateway remembers
/// (`dpop_replay_capacity`): at the default 60 s window, ~1,000 proofs/s.
pub const DEFAULT_DPOP_REPLAY_CAPACITY: usize = 65_536;
/// Audit lines per reason and second per worker (`audit_log_budget`): enough
/// to see every kind of failure, too few for a junk flood to fill a disk.
pub const DEFAULT_AUDIT_LOG_BUDGET: u32 = 20;

/// Headers that let a caller ask an upstream framework to treat the request
/// as another method than the one Scopegate authorized. Always removed.
pub const METHOD_OVERRIDE_HEADERS: [&str; 3] = [
    "x-http-method-override",
    "x-method-override",
    "x-http-method",
];

#[derive(Debug)]
pub struct Config {
    pub providers: Vec<Provider>,
    pub token_sources: Vec<TokenSource>,
    pub rules: Vec<Rule>,
    pub default_action: DefaultAction,
    /// The identity registry and what to do with unregistered clients.
    pub identities: Option<Identities>,
    /// Revoked tokens, clients and subjects; token status lists.
    pub revocation: Option<Revocation>,
    pub identity_headers: IdentityHeaders,
    /// Removed from every request that is let through: the identity header
    /// names and the method-override headers, lower case, each once.
    pub stripped_headers: Vec<String>,
    pub forward_token: bool,
    pub mode: Mode,
    pub audit_log: AuditLog,
    pub request_properties: Properties,
    /// How the request properties reach the access log.
    pub request_properties_form: PropertyForm,
    pub realm: String,
    pub error_detail: ErrorDetail,
    pub max_token_bytes: usize,
    /// Entries of the per-worker verified-token cache; 0 turns it off.
    pub token_cache_size: usize,
    /// DPoP proofs remembered across workers for replay detection.
    pub dpop_replay_capacity: usize,
    /// Per-identity rate limits; rules and registry entries may add their own.
    pub rate_limits: Option<RateLimits>,
    /// Per-identity inventory lines in the gateway log.
    pub inventory: Option<InventorySettings>,
    /// Audit lines per reason and second each worker writes; 0: no bound.
    pub audit_log_budget: u32,
    /// Things worth a log line that do not stop the configuration (skipped keys).
    pub warnings: Vec<String>,
}

#[derive(Debug)]
pub struct Provider {
    pub name: String,
    pub issuer: String,
    pub audiences: Option<Vec<String>>,
    pub keys: KeySource,
    pub algorithms: AlgSet,
    pub clock_skew_s: u64,
    pub max_lifetime_s: Option<u64>,
    pub scope_claims: Vec<String>,
    pub client_id_claims: Vec<String>,
    pub proof_of_possession: ProofOfPossession,
}

/// The identity inventory (CONTRACT §5.1).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct InventorySettings {
    /// Seconds between a worker's inventory lines.
    pub interval_s: u64,
    /// Identities a worker tracks per interval; more are summed in one line.
    pub max_identities: usize,
}

/// Per-identity rate limits (CONTRACT §1.5).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RateLimits {
    pub key: LimitKey,
    /// Applies to every identity without a limit of its own in the registry.
    pub default: Option<LimitSpec>,
    /// `RateLimit` and `RateLimit-Policy` on allowed responses too.
    pub headers: bool,
    /// Count and log what would be refused, refuse nothing.
    pub dry_run: bool,
    /// Slots per policy in the gateway's shared state.
    pub max_identities: u32,
}

/// What identifies a caller for its limits (always within its provider).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LimitKey {
    ClientId,
    Subject,
}

pub const DEFAULT_RATE_LIMIT_IDENTITIES: u32 = 200_000;

/// How a provider's sender-constrained tokens are held to their binding.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ProofOfPossession {
    pub mtls: Binding,
    pub dpop: Binding,
    /// Algorithms a DPoP proof may be signed with.
    pub dpop_algorithms: AlgSet,
    /// How old a proof's `iat` may be (the provider's clock skew comes on top).
    pub dpop_max_age_s: u64,
}

impl Default for ProofOfPossession {
    fn default() -> Self {
        ProofOfPossession {
            mtls: Binding::IfBound,
            dpop: Binding::IfBound,
            dpop_algorithms: DEFAULT_DPOP_ALGORITHMS.into_iter().collect(),
            dpop_max_age_s: 60,
        }
    }
}

pub const DEFAULT_DPOP_ALGORITHMS: [Alg; 4] = [Alg::ES256, Alg::EdDSA, Alg::PS256, Alg::RS256];

/// What to do with one binding method (RFC 8705 mTLS, RFC 9449 DPoP).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Binding {
    /// The binding is not checked (the token is used as a bearer token).
    Off,
    /// Checked when the token carries it (`cnf`).
    IfBound,
    /// Tokens not bound by this method are refused.
    Required,
}

/// A document given in the configuration, or fetched from a `uri`.
#[derive(Debug)]
pub enum Source<T> {
    Inline(T),
    Remote(RemoteDocument),
}

pub type KeySource = Source<Rc<KeySet>>;

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RemoteDocument {
    pub uri: String,
    /// `:authority` of the fetch (host[:port] from the URI).
    pub authority: String,
    /// `:path` of the fetch (path and query from the URI).
    pub path: String,
    /// The gateway's upstream that serves the URI (Envoy cluster; in Kong a
    /// `host:port`). Defaults to the URI's authority.
    pub cluster: String,
    pub refresh_interval_s: u64,
    pub timeout_ms: u64,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TokenSource {
    /// Header `name` (lower case) whose value starts with `prefix`, compared
    /// without regard to case (the `Bearer` scheme is case-insensitive).
    Header { name: String, prefix: String },
    /// Query parameter.
    Query { param: String },
}

#[derive(Debug)]
pub struct Rule {
    pub name: String,
    /// Upper-case methods; `None` matches any.
    pub methods: Option<Vec<String>>,
    pub path: PathPattern,
    pub access: Access,
    /// Tokens bound neither by mTLS nor by DPoP are refused on this rule.
    pub sender_constrained: bool,
    /// A limit per identity on this rule, on top of the identity's own.
    pub rate_limit: Option<LimitSpec>,
}

#[derive(Debug, PartialEq, Eq)]
pub enum Access {
    Public,
    Token(Requirements),
}

#[derive(Debug, Default, PartialEq, Eq)]
pub struct Requirements {
    pub scopes: Vec<String>,
    pub any_scopes: Vec<String>,
    pub clients: Option<Vec<String>>,
    /// Indexes into `Config::providers`.
    pub providers: Option<Vec<usize>>,
}

#[derive(Debug)]
pub struct Identities {
    pub registry: RegistrySource,
    pub unregistered: Unregistered,
}

#[derive(Debug, Default)]
pub struct Revocation {
    pub list: Option<RevocationSource>,
    pub status_list: Option<StatusListPolicy>,
}

pub type RevocationSource = Source<Rc<RevocationList>>;

/// Which status lists a token may point at, and what to do without one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StatusListPolicy {
    /// A token's status list `uri` is fetched only under one of these.
    pub uri_prefixes: Vec<String>,
    /// The gateway's upstream that serves them (default: the uri's authority).
    pub cluster: Option<String>,
    pub max_cache_s: u64,
    pub timeout_ms: u64,
    pub on_unavailable: OnUnavailable,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OnUnavailable {
    /// 503 `status_unavailable`.
    Deny,
    /// Let it through, counted and logged.
    Allow,
}

pub type RegistrySource = Source<Rc<Registry>>;

/// What happens to a valid token whose client the registry does not list.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Unregistered {
    /// 403 `identity_unregistered`.
    Deny,
    /// Decided as before, counted and marked in the audit line.
    Report,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DefaultAction {
    Deny,
    Authenticate,
    Allow,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    Enforce,
    DryRun,
}

/// How much a denial tells the caller (`error_detail`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ErrorDetail {
    /// The reason code and a fixed description: nothing the caller did not send.
    Minimal,
    /// The full message (accepted audiences, key ids, provider names): for development.
    Verbose,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AuditLog {
    All,
    Denied,
    Off,
}

/// A fact of the decision exposed to the gateway's access log as a request
/// property `scopegate.<name>` (Envoy: filter state `wasm.scopegate.<name>`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Property {
    Decision,
    Reason,
    Rule,
    Subject,
    ClientId,
    Issuer,
    Scopes,
}

impl Property {
    pub const ALL: [Property; 7] = [
        Property::Decision,
        Property::Reason,
        Property::Rule,
        Property::Subject,
        Property::ClientId,
        Property::Issuer,
        Property::Scopes,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Property::Decision => "decision",
            Property::Reason => "reason",
            Property::Rule => "rule",
            Property::Subject => "subject",
            Property::ClientId => "client_id",
            Property::Issuer => "issuer",
            Property::Scopes => "scopes",
        }
    }

    /// The property path the filter sets.
    pub fn key(self) -> &'static str {
        match self {
            Property::Decision => "scopegate.decision",
            Property::Reason => "scopegate.reason",
            Property::Rule => "scopegate.rule",
            Property::Subject => "scopegate.subject",
            Property::ClientId => "scopegate.client_id",
            Property::Issuer => "scopegate.issuer",
            Property::Scopes => "scopegate.scopes",
        }
    }
}

/// How the decision's facts are set for the access log (CONTRACT §5).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PropertyForm {
    /// One string property `scopegate.<name>` per fact (the default): the
    /// cheapest for an access log that writes the facts on every request,
    /// since Envoy reads each back for a few hundred instructions.
    Properties,
    /// One property `scopegate`, a `google.protobuf.Struct` with a string
    /// field per fact: one host call per request instead of seven, but Envoy
    /// 1.40's access log can read its fields only through CEL, which decodes
    /// the Struct per field (results/access-log.md): for logs that write the
    /// facts on few requests (denials only, errors only) or never.
    Struct,
}

/// Which request properties are set. In the `properties` form each costs
/// the gateway a host call and a filter-state object per request (in Envoy
/// about 3,800 instructions), in the `struct` form they share one; a
/// deployment whose access log reads none of them can turn them off.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Properties(u8);

impl Properties {
    pub const ALL: Properties = Properties(0x7f);
    pub const NONE: Properties = Properties(0);

    fn bit(p: Property) -> u8 {
        1 << (p as u8)
    }

    pub fn contains(self, p: Property) -> bool {
        self.0 & Self::bit(p) != 0
    }

    fn with(self, p: Property) -> Properties {
        Properties(self.0 | Self::bit(p))
    }
}

impl Default for Properties {
    fn default() -> Self {
        Properties::ALL
    }
}

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct IdentityHeaders {
    pub subject: Option<String>,
    pub client_id: Option<String>,
    pub issuer: Option<String>,
    pub scopes: Option<String>,
    /// The registry owner of the caller's identity (with `identities`).
    pub owner: Option<String>,
    /// (claim name, header name)
    pub claims: Vec<(String, String)>,
}

impl IdentityHeaders {
    /// Every configured header name: the ones stripped from each request.
    pub fn names(&self) -> impl Iterator<Item = &str> {
        [
            &self.subject,
            &self.client_id,
            &self.issuer,
            &self.scopes,
            &self.owner,
        ]
        .into_iter()
        .filter_map(|h| h.as_deref())
        .chain(self.claims.iter().map(|(_, h)| h.as_str()))
    }
}

impl Config {
    pub fn provider_index(&self, name: &str) -> Option<usize> {
        self.providers.iter().position(|p| p.name == name)
    }
}

/// One fault in a configuration document.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConfigError {
    /// JSON Pointer of the member at fault ("" is the document).
    pub path: String,
    pub message: String,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let path = if self.path.is_empty() {
            "/"
        } else {
            &self.path
        };
        write!(f, "{path}: {}", self.message)
    }
}

/// Parses a configuration from JSON text.
pub fn parse_json(text: &[u8]) -> Result<Config, Vec<ConfigError>> {
    let value = json::from_slice(text).map_err(json_fault)?;
    parse_value(&value)
}

/// A text that is not JSON, or repeats a member, as a fault at its pointer.
fn json_fault(e: JsonError) -> Vec<ConfigError> {
    let path = match &e {
        JsonError::Duplicate { pointer, .. } => pointer.clone(),
        JsonError::Syntax(_) => String::new(),
    };
    vec![ConfigError {
        path,
        message: e.to_string(),
    }]
}

/// Validates a configuration document. All faults are returned, in document order.
pub fn parse_value(value: &Value) -> Result<Config, Vec<ConfigError>> {
    let mut cx = Cx::default();
    let config = read_config(&mut cx, Node::root(value));
    match config {
        Some(c) if cx.errors.is_empty() => Ok(c),
        _ => Err(cx.errors),
    }
}

// ---- reading with paths -------------------------------------------------

#[derive(Default)]
struct Cx {
    errors: Vec<ConfigError>,
}

impl Cx {
    fn err(&mut self, path: &str, message: impl Into<String>) {
        self.errors.push(ConfigError {
            path: path.to_string(),
            message: message.into(),
        });
    }
}

#[derive(Clone, Copy)]
struct Node<'a> {
    value: &'a Value,
    path: &'a str,
}

impl<'a> Node<'a> {
    fn root(value: &'a Value) -> Self {
        Node { value, path: "" }
    }
}

fn child(path: &str, key: &str) -> String {
    format!("{path}/{}", key.replace('~', "~0").replace('/', "~1"))
}

/// The members of one object; members not taken are reported as unknown.
struct Fields<'a> {
    map: &'a Map<String, Value>,
    path: &'a str,
    known: Vec<&'static str>,
}

impl<'a> Fields<'a> {
    fn of(cx: &mut Cx, node: Node<'a>) -> Option<Self> {
        match node.value {
            Value::Object(map) => Some(Fields {
                map,
                path: node.path,
                known: Vec::new(),
            }),
            _ => {
                cx.err(node.path, "expected an object");
                None
            }
        }
    }

    /// Looks up a member; the returned path lives as long as the caller keeps it.
    fn get(&mut self, key: &'static str) -> Option<(&'a Value, String)> {
        self.known.push(key);
        self.map.get(key).map(|v| (v, child(self.path, key)))
    }

    fn finish(self, cx: &mut Cx) {
        for key in self.map.keys() {
            if !self.known.contains(&key.as_str()) {
                cx.err(
                    &child(self.path, key),
                    format!("unknown field; expected one of: {}", self.known.join(", ")),
                );
            }
        }
    }
}

fn string(cx: &mut Cx, v: &Value, path: &str) -> Option<String> {
    match v {
        Value::String(s) if s.is_empty() => {
            cx.err(path, "must not be empty");
            None
        }
        Value::String(s) => Some(s.clone()),
        _ => {
            cx.err(path, "expected a string");
            None
        }
    }
}

/// The items of an array. An empty object counts as an empty array: Kong
/// serializes filter configuration with cjson, which writes `{}` for `[]`.
fn array(v: &Value) -> Option<&[Value]> {
    match v {
        Value::Array(items) => Some(items),
        Value::Object(m) if m.is_empty() => Some(&[]),
        _ => None,
    }
}

fn strings(cx: &mut Cx, v: &Value, path: &str, allow_empty: bool) -> Option<Vec<String>> {
    let Some(items) = array(v) else {
        cx.err(path, "expected an array of strings");
        return None;
    };
    if items.is_empty() && !allow_empty {
        cx.err(path, "must not be empty");
        return None;
    }
    let mut out = Vec::with_capacity(items.len());
    let mut ok = true;
    for (i, item) in items.iter().enumerate() {
        match item {
            Value::String(s) if !s.is_empty() => {
                if out.contains(s) {
                    cx.err(
                        &child(path, &i.to_string()),
                        format!("duplicate value \"{s}\""),
                    );
                    ok = false;
                }
                out.push(s.clone());
            }
            Value::String(_) => {
                cx.err(&child(path, &i.to_string()), "must not be empty");
                ok = false;
            }
            _ => {
                cx.err(path, "expected an array of strings");
                return None;
            }
        }
    }
    ok.then_some(out)
}

fn stripped_headers(h: &IdentityHeaders) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for name in h.names().chain(METHOD_OVERRIDE_HEADERS) {
        if !out.iter().any(|n| n == name) {
            out.push(name.to_string());
        }
    }
    out
}

fn properties(cx: &mut Cx, v: &Value, path: &str) -> Option<Properties> {
    let names = strings(cx, v, path, true)?;
    let mut set = Properties::NONE;
    let mut ok = true;
    for (i, name) in names.iter().enumerate() {
        match Property::ALL.iter().find(|p| p.name() == name) {
            Some(p) => set = set.with(*p),
            None => {
                let all: Vec<String> = Property::ALL
                    .iter()
                    .map(|p| format!("\"{}\"", p.name()))
                    .collect();
                cx.err(
                    &child(path, &i.to_string()),
                    format!(
                        "unknown property \"{name}\"; expected one of {}",
                        all.join(", ")
                    ),
                );
                ok = false;
            }
        }
    }
    ok.then_some(set)
}

fn boolean(cx: &mut Cx, v: &Value, path: &str) -> Option<bool> {
    let b = v.as_bool();
    if b.is_none() {
        cx.err(path, "expected true or false");
    }
    b
}

fn integer(cx: &mut Cx, v: &Value, path: &str, min: u64, max: u64) -> Option<u64> {
    match v.as_u64() {
        Some(n) if (min..=max).contains(&n) => Some(n),
        _ => {
            cx.err(path, format!("expected an integer from {min} to {max}"));
            None
        }
    }
}

fn one_of<T: Copy>(cx: &mut Cx, v: &Value, path: &str, options: &[(&str, T)]) -> Option<T> {
    let found = v
        .as_str()
        .and_then(|s| options.iter().find(|(name, _)| *name == s).map(|(_, t)| *t));
    if found.is_none() {
        let names: Vec<String> = options.iter().map(|(n, _)| format!("\"{n}\"")).collect();
        cx.err(path, format!("expected one of {}", names.join(", ")));
    }
    found
}

/// RFC 6749 §3.3 scope-token: visible ASCII except `"` and `\`.
pub fn is_scope_token(s: &str) -> bool {
    !s.is_empty()
        && s.bytes()
            .all(|b| b == 0x21 || (0x23..=0x5b).contains(&b) || (0x5d..=0x7e).contains(&b))
}

/// RFC 7230 token, lower case: a header name we may set or remove.
fn is_header_name(s: &str) -> bool {
    !s.is_empty()
        && s.bytes().all(|b| {
            b.is_ascii_lowercase() || b.is_ascii_digit() || b"!#$%&'*+-.^_`|~".contains(&b)
        })
}

/// Headers a filter must never own: framing, routing and credentials.
const RESERVED_HEADERS: [&str; 10] = [
    "host",
    "authorization",
    "content-length",
    "content-type",
    "transfer-encoding",
    "connection",
    "te",
    "upgrade",
    "cookie",
    "proxy-authorization",
];

// ---- the document -------------------------------------------------------

fn read_config(cx: &mut Cx, root: Node<'_>) -> Option<Config> {
    let mut f = Fields::of(cx, root)?;

    let providers = match f.get("providers") {
        Some((v, p)) => read_providers(cx, v, &p),
        None => {
            cx.err("/providers", "required: at least one token provider");
            Vec::new()
        }
    };
    // Rules name providers by the names written in the document, so that a
    // provider with a fault of its own does not also fault every rule naming it.
    let names: Vec<&str> = root
        .value
        .get("providers")
        .and_then(Value::as_array)
        .map(|ps| {
            ps.iter()
                .map(|p| p.get("name").and_then(Value::as_str).unwrap_or(""))
                .collect()
        })
        .unwrap_or_default();

    let token_sources = match f.get("token_sources") {
        Some((v, p)) => read_token_sources(cx, v, &p),
        None => vec![TokenSource::Header {
            name: "authorization".into(),
            prefix: "Bearer ".into(),
        }],
    };
    let rules = match f.get("rules") {
        Some((v, p)) => read_rules(cx, v, &p, &names),
        None => Vec::new(),
    };
    let identities = f
        .get("identities")
        .and_then(|(v, p)| read_identities(cx, v, &p, &names));
    let revocation = f
        .get("revocation")
        .and_then(|(v, p)| read_revocation(cx, v, &p, &names));
    let default_action = f
        .get("default_action")
        .and_then(|(v, p)| {
            one_of(
                cx,
                v,
                &p,
                &[
                    ("deny", DefaultAction::Deny),
                    ("authenticate", DefaultAction::Authenticate),
                    ("allow", DefaultAction::Allow),
                ],
            )
        })
        .unwrap_or(DefaultAction::Deny);
    let identity_headers = match f.get("identity_headers") {
        Some((v, p)) => read_identity_headers(cx, v, &p),
        None => IdentityHeaders::default(),
    };
    let forward_token = f
        .get("forward_token")
        .and_then(|(v, p)| boolean(cx, v, &p))
        .unwrap_or(true);
    let mode = f
        .get("mode")
        .and_then(|(v, p)| {
            one_of(
                cx,
                v,
                &p,
                &[("enforce", Mode::Enforce), ("dry_run", Mode::DryRun)],
            )
        })
        .unwrap_or(Mode::Enforce);
    let audit_log = f
        .get("audit_log")
        .and_then(|(v, p)| {
            one_of(
                cx,
                v,
                &p,
                &[
                    ("all", AuditLog::All),
                    ("denied", AuditLog::Denied),
                    ("off", AuditLog::Off),
                ],
            )
        })
        .unwrap_or(AuditLog::Denied);
    let error_detail = f
        .get("error_detail")
        .and_then(|(v, p)| {
            one_of(
                cx,
                v,
                &p,
                &[
                    ("minimal", ErrorDetail::Minimal),
                    ("verbose", ErrorDetail::Verbose),
                ],
            )
        })
        .unwrap_or(ErrorDetail::Minimal);
    let request_properties = f
        .get("request_properties")
        .and_then(|(v, p)| properties(cx, v, &p))
        .unwrap_or_default();
    let request_properties_form = f
        .get("request_properties_form")
        .and_then(|(v, p)| {
            one_of(
                cx,
                v,
                &p,
                &[
                    ("properties", PropertyForm::Properties),
                    ("struct", PropertyForm::Struct),
                ],
            )
        })
        .unwrap_or(PropertyForm::Properties);
    let realm = match f.get("realm") {
        Some((v, p)) => string(cx, v, &p).and_then(|r| {
            let ok = r
                .bytes()
                .all(|b| (0x20..0x7f).contains(&b) && b != b'"' && b != b'\\');
            if !ok {
                cx.err(&p, "must be printable ASCII without '\"' or '\\'");
            }
            ok.then_some(r)
        }),
        None => None,
    }
    .unwrap_or_else(|| DEFAULT_REALM.to_string());
    let max_token_bytes = f
        .get("max_token_bytes")
        .and_then(|(v, p)| integer(cx, v, &p, 512, 65536))
        .map_or(DEFAULT_MAX_TOKEN_BYTES, |n| n as usize);
    let token_cache_size = f
        .get("token_cache_size")
        .and_then(|(v, p)| integer(cx, v, &p, 0, 1_000_000))
        .map_or(DEFAULT_TOKEN_CACHE_SIZE, |n| n as usize);
    let dpop_replay_capacity = f
        .get("dpop_replay_capacity")
        .and_then(|(v, p)| integer(cx, v, &p, 1024, 4_194_304))
        .map_or(DEFAULT_DPOP_REPLAY_CAPACITY, |n| n as usize);
    let rate_limits = f
        .get("rate_limits")
        .and_then(|(v, p)| read_rate_limits(cx, v, &p));
    let inventory = f
        .get("inventory")
        .and_then(|(v, p)| read_inventory(cx, v, &p));
    let audit_log_budget = f
        .get("audit_log_budget")
        .and_then(|(v, p)| integer(cx, v, &p, 0, 1_000_000))
        .map_or(DEFAULT_AUDIT_LOG_BUDGET, |n| n as u32);
    f.finish(cx);

    let warnings = providers
        .iter()
        .flat_map(|p| {
            p.warnings
                .iter()
                .map(move |w| format!("provider \"{}\": {w}", p.provider.name))
        })
        .collect();
    Some(Config {
        providers: providers.into_iter().map(|p| p.provider).collect(),
        token_sources,
        rules,
        default_action,
        identities,
        revocation,
        stripped_headers: stripped_headers(&identity_headers),
        identity_headers,
        forward_token,
        mode,
        audit_log,
        request_properties,
        request_properties_form,
        realm,
        error_detail,
        max_token_bytes,
        token_cache_size,
        dpop_replay_capacity,
        rate_limits,
        inventory,
        audit_log_budget,
        warnings,
    })
}

struct ProviderRead {
    provider: Provider,
    warnings: Vec<String>,
}

impl std::ops::Deref for ProviderRead {
    type Target = Provider;
    fn deref(&self) -> &Provider {
        &self.provider
    }
}

fn read_providers(cx: &mut Cx, v: &Value, path: &str) -> Vec<ProviderRead> {
    let Some(items) = array(v) else {
        cx.err(path, "expected an array of providers");
        return Vec::new();
    };
    if items.is_empty() {
        cx.err(path, "required: at least one token provider");
    }
    let mut out: Vec<ProviderRead> = Vec::new();
    for (i, item) in items.iter().enumerate() {
        let p = child(path, &i.to_string());
        if let Some(read) = read_provider(
            cx,
            Node {
                value: item,
                path: &p,
            },
        ) {
            if out.iter().any(|o| o.name == read.name) {
                cx.err(
                    &child(&p, "name"),
                    format!("duplicate provider name \"{}\"", read.name),
                );
            }
            if out.iter().any(|o| o.issuer == read.issuer) {
                cx.err(
                    &child(&p, "issuer"),
                    format!(
                        "issuer \"{}\" is already used by another provider: the token's `iss` selects the provider",
                        read.issuer
                    ),
                );
            }
            out.push(read);
        }
    }
    out
}

fn read_provider(cx: &mut Cx, node: Node<'_>) -> Option<ProviderRead> {
    let mut f = Fields::of(cx, node)?;
    let before = cx.errors.len();
    let name = match f.get("name") {
        Some((v, p)) => string(cx, v, &p).filter(|n| {
            let ok = n
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
            if !ok {
                cx.err(
                    &p,
                    "use letters, digits, '_' and '-' only (it becomes part of metric names)",
                );
            }
            ok
        }),
        None => {
            cx.err(&child(node.path, "name"), "required");
            None
        }
    };
    let issuer = match f.get("issuer") {
        Some((v, p)) => string(cx, v, &p),
        None => {
            cx.err(
                &child(node.path, "issuer"),
                "required: the exact `iss` of this provider's tokens",
            );
            None
        }
    };
    let audiences = f
        .get("audiences")
        .and_then(|(v, p)| strings(cx, v, &p, false));
    let mut warnings = Vec::new();
    let keys = match f.get("jwks") {
        Some((v, p)) => read_jwks(cx, v, &p, &mut warnings),
        None => {
            cx.err(
                &child(node.path, "jwks"),
                "required: {\"inline\": ...} or {\"uri\": ...}",
            );
            None
        }
    };
    let algorithms = match f.get("algorithms") {
        Some((v, p)) => read_algorithms(cx, v, &p),
        None => Some(AlgSet::all()),
    };
    let clock_skew_s = f
        .get("clock_skew_s")
        .and_then(|(v, p)| integer(cx, v, &p, 0, 600))
        .unwrap_or(60);
    let max_lifetime_s = f
        .get("max_lifetime_s")
        .and_then(|(v, p)| integer(cx, v, &p, 1, 31_536_000));
    let scope_claims = f
        .get("scope_claims")
        .and_then(|(v, p)| strings(cx, v, &p, false))
        .unwrap_or_else(|| vec!["scope".into(), "scp".into()]);
    let client_id_claims = f
        .get("client_id_claims")
        .and_then(|(v, p)| strings(cx, v, &p, false))
        .unwrap_or_else(|| {
            ["client_id", "azp", "cid", "appid"]
                .map(String::from)
                .to_vec()
        });
    let proof_of_possession = match f.get("proof_of_possession") {
        Some((v, p)) => read_proof_of_possession(cx, v, &p),
        None => Some(ProofOfPossession::default()),
    };
    f.finish(cx);
    if cx.errors.len() > before {
        return None;
    }
    Some(ProviderRead {
        provider: Provider {
            name: name?,
            issuer: issuer?,
            audiences,
            keys: keys?,
            algorithms: algorithms?,
            clock_skew_s,
            max_lifetime_s,
            scope_claims,
            client_id_claims,
            proof_of_possession: proof_of_possession?,
        },
        warnings,
    })
}

fn read_proof_of_possession(cx: &mut Cx, v: &Value, path: &str) -> Option<ProofOfPossession> {
    let mut f = Fields::of(cx, Node { value: v, path })?;
    let before = cx.errors.len();
    let defaults = ProofOfPossession::default();
    let binding = |cx: &mut Cx, found: Option<(&Value, String)>, default| match found {
        Some((v, p)) => one_of(
            cx,
            v,
            &p,
            &[
                ("off", Binding::Off),
                ("if_bound", Binding::IfBound),
                ("required", Binding::Required),
            ],
        ),
        None => Some(default),
    };
    let mtls = binding(cx, f.get("mtls"), defaults.mtls);
    let dpop = binding(cx, f.get("dpop"), defaults.dpop);
    let dpop_algorithms = match f.get("dpop_algorithms") {
        Some((v, p)) => read_algorithms(cx, v, &p),
        None => Some(defaults.dpop_algorithms),
    };
    let dpop_max_age_s = f
        .get("dpop_max_age_s")
        .and_then(|(v, p)| integer(cx, v, &p, 1, 3600))
        .unwrap_or(defaults.dpop_max_age_s);
    f.finish(cx);
    if cx.errors.len() > before {
        return None;
    }
    Some(ProofOfPossession {
        mtls: mtls?,
        dpop: dpop?,
        dpop_algorithms: dpop_algorithms?,
        dpop_max_age_s,
    })
}

fn read_algorithms(cx: &mut Cx, v: &Value, path: &str) -> Option<AlgSet> {
    let names = strings(cx, v, path, false)?;
    let mut set = AlgSet::default();
    let mut ok = true;
    for (i, name) in names.iter().enumerate() {
        match Alg::parse(name) {
            Some(a) => set.insert(a),
            None => {
                cx.err(&child(path, &i.to_string()), alg::refusal(name));
                ok = false;
            }
        }
    }
    ok.then_some(set)
}

fn read_jwks(cx: &mut Cx, v: &Value, path: &str, warnings: &mut Vec<String>) -> Option<KeySource> {
    read_source(
        cx,
        Node { value: v, path },
        ("a JWK Set", "the issuer publishes it", "keys"),
        10,
        |cx, doc, p| read_inline_jwks(cx, doc, p, warnings).map(Rc::new),
    )
}

/// `{"inline": <document>}` or `{"uri", "cluster", "refresh_interval_s",
/// "timeout_ms"}`. `what` names the inline document, where the uri points, and
/// the document, for messages.
fn read_source<T>(
    cx: &mut Cx,
    node: Node<'_>,
    (inline_is, uri_is, noun): (&str, &str, &str),
    min_refresh_s: u64,
    read_inline: impl FnOnce(&mut Cx, &Value, &str) -> Option<T>,
) -> Option<Source<T>> {
    let mut f = Fields::of(cx, node)?;
    let inline = f.get("inline");
    let uri = f.get("uri");
    let cluster = f.get("cluster");
    let refresh = f.get("refresh_interval_s");
    let timeout = f.get("timeout_ms");
    f.finish(cx);
    match (inline, uri) {
        (Some(_), Some(_)) | (None, None) => {
            cx.err(
                node.path,
                format!("give exactly one of `inline` ({inline_is}) or `uri` (where {uri_is})"),
            );
            None
        }
        (Some((doc, p)), None) => {
            for (_, extra) in [cluster, refresh, timeout].into_iter().flatten() {
                cx.err(
                    &extra,
                    format!("only applies to {noun} fetched from a `uri`"),
                );
            }
            read_inline(cx, doc, &p).map(Source::Inline)
        }
        (None, Some((u, p))) => {
            read_remote(cx, (u, &p), cluster, refresh, timeout, min_refresh_s).map(Source::Remote)
        }
    }
}

type Member<'a> = Option<(&'a Value, String)>;

/// `{"uri", "cluster", "refresh_interval_s", "timeout_ms"}`: a document the
/// gateway fetches (a JWK Set, the identity registry).
/// `{"uri", "cluster", "refresh_interval_s", "timeout_ms"}`: a document the
/// gateway fetches, refreshed no more often than every `min_refresh_s`.
fn read_remote(
    cx: &mut Cx,
    (u, p): (&Value, &str),
    cluster: Member<'_>,
    refresh: Member<'_>,
    timeout: Member<'_>,
    min_refresh_s: u64,
) -> Option<RemoteDocument> {
    let uri = string(cx, u, p)?;
    let Some((authority, fetch_path)) = split_uri(&uri) else {
        cx.err(
            p,
            "expected an absolute http:// or https:// URI with a host",
        );
        return None;
    };
    let cluster = match cluster {
        Some((c, cp)) => string(cx, c, &cp)?,
        None => authority.clone(),
    };
    let refresh_interval_s = match refresh {
        Some((r, rp)) => integer(cx, r, &rp, min_refresh_s, 86_400)?,
        None => 300,
    };
    let timeout_ms = match timeout {
        Some((t, tp)) => integer(cx, t, &tp, 100, 60_000)?,
        None => 1500,
    };
    Some(RemoteDocument {
        uri,
        authority,
        path: fetch_path,
        cluster,
        refresh_interval_s,
        timeout_ms,
    })
}

fn read_inline_jwks(
    cx: &mut Cx,
    doc: &Value,
    path: &str,
    warnings: &mut Vec<String>,
) -> Option<KeySet> {
    // A JWK Set may be given as an object or as the JSON text of one.
    let parsed_text;
    let doc = match doc {
        Value::String(text) => match json::from_str(text) {
            Ok(v) => {
                parsed_text = v;
                &parsed_text
            }
            Err(e) => {
                cx.err(path, format!("string is not a JSON JWK Set: {e}"));
                return None;
            }
        },
        other => other,
    };
    let (set, issues) = match jwks::parse_value(doc) {
        Ok(r) => r,
        Err(e) => {
            cx.err(path, e.to_string());
            return None;
        }
    };
    let mut ok = true;
    for issue in &issues {
        let key_path = child(&child(path, "keys"), &issue.index().to_string());
        match issue {
            JwkIssue::Skipped { why, .. } => warnings.push(format!("{key_path}: {why}")),
            JwkIssue::Invalid { field, why, .. } => {
                let at = if field.is_empty() {
                    key_path
                } else {
                    child(&key_path, field)
                };
                cx.err(&at, why.clone());
                ok = false;
            }
        }
    }
    if ok && set.is_empty() {
        cx.err(path, "no usable signing key: every key was skipped");
        ok = false;
    }
    ok.then_some(set)
}

/// Splits `http(s)://authority/path?query` into authority and path-with-query.
pub fn split_uri(uri: &str) -> Option<(String, String)> {
    let rest = uri
        .strip_prefix("https://")
        .or_else(|| uri.strip_prefix("http://"))?;
    let (authority, path) = match rest.find(['/', '?']) {
        Some(i) => (rest.get(..i)?, rest.get(i..)?),
        None => (rest, "/"),
    };
    if authority.is_empty() || authority.contains(['@', ' ', '#']) || path.contains(['#', ' ']) {
        return None;
    }
    let path = if path.starts_with('?') {
        format!("/{path}")
    } else {
        path.to_string()
    };
    Some((authority.to_string(), path))
}

fn read_identities(cx: &mut Cx, v: &Value, path: &str, providers: &[&str]) -> Option<Identities> {
    let mut f = Fields::of(cx, Node { value: v, path })?;
    let registry = match f.get("registry") {
        Some((v, p)) => read_registry_source(cx, v, &p, providers),
        None => {
            cx.err(
                path,
                "`registry` is required: `{\"inline\": [...]}` or `{\"uri\": ...}`",
            );
            None
        }
    };
    let unregistered = f
        .get("unregistered")
        .and_then(|(v, p)| {
            one_of(
                cx,
                v,
                &p,
                &[
                    ("deny", Unregistered::Deny),
                    ("report", Unregistered::Report),
                ],
            )
        })
        .unwrap_or(Unregistered::Report);
    f.finish(cx);
    Some(Identities {
        registry: registry?,
        unregistered,
    })
}

fn read_registry_source(
    cx: &mut Cx,
    v: &Value,
    path: &str,
    providers: &[&str],
) -> Option<RegistrySource> {
    read_source(
        cx,
        Node { value: v, path },
        ("the entries", "the registry is published", "a registry"),
        10,
        |cx, doc, p| read_registry_entries(cx, doc, p, providers).map(Rc::new),
    )
}

/// Parses a fetched registry document, `{"identities": [...]}`, with the
/// same checks as an inline registry; `providers` are the configured names.
pub fn parse_registry_document(
    text: &[u8],
    providers: &[&str],
) -> Result<Registry, Vec<ConfigError>> {
    // Entry by entry, each checked and dropped as it comes: a registry of
    // 100,000 identities is never held as one JSON tree (Wasm memory keeps
    // its high-water mark for good).
    let mut cx = Cx::default();
    let mut builder = RegistryBuilder::new("/identities", providers, 0);
    let doc = stream_document(text, "identities", |i, item| {
        builder.push(&mut cx, i, &item)
    })?;
    match doc.big {
        Big::Absent => cx.err("/identities", "required: the list of registered identities"),
        Big::NotAList => cx.err("/identities", "expected an array of registry entries"),
        Big::List => {}
    }
    let rest = Value::Object(doc.rest);
    // Only `identities` belongs here: the others are reported as unknown.
    if let Some(mut f) = Fields::of(&mut cx, Node::root(&rest)) {
        let _ = f.get("identities");
        f.finish(&mut cx);
    }
    match builder.finish(&mut cx) {
        Some(r) if cx.errors.is_empty() => Ok(r),
        _ => Err(cx.errors),
    }
}

/// A registry being built entry by entry, with the document index of each
/// entry added (for the "registered twice" message).
struct RegistryBuilder<'p> {
    out: Registry,
    added_at: Vec<usize>,
    path: &'p str,
    providers: &'p [&'p str],
    full: bool,
}

impl<'p> RegistryBuilder<'p> {
    fn new(path: &'p str, providers: &'p [&'p str], capacity: usize) -> Self {
        RegistryBuilder {
            out: Registry::with_capacity(capacity),
            added_at: Vec::with_capacity(capacity),
            path,
            providers,
            full: false,
        }
    }

    /// Checks entry `i` and adds it; faults go to `cx` with their paths.
    fn push(&mut self, cx: &mut Cx, i: usize, item: &Value) {
        let p = child(self.path, &i.to_string());
        let Some(entry) = read_registry_entry(
            cx,
            Node {
                value: item,
                path: &p,
            },
            self.providers,
        ) else {
            return;
        };
        let (client, provider) = (entry.client_id.clone(), entry.provider);
        match self.out.add(entry) {
            Ok(()) => self.added_at.push(i),
            Err(registry::AddError::Duplicate(other)) => cx.err(
                &p,
                format!(
                    "client \"{}\"{} is registered twice (also at {})",
                    clip(&client, 64),
                    provider
                        .and_then(|i| self.providers.get(i))
                        .map_or(String::new(), |n| format!(" of provider \"{n}\"")),
                    child(
                        self.path,
                        &self
                            .added_at
                            .get(other)
                            .copied()
                            .unwrap_or(other)
                            .to_string()
                    )
                ),
            ),
            Err(registry::AddError::Full) => self.full = true,
        }
    }

    fn finish(self, cx: &mut Cx) -> Option<Registry> {
        if self.full {
            cx.err(self.path, "too many entries");
            return None;
        }
        Some(self.out)
    }
}

fn read_registry_entries(
    cx: &mut Cx,
    v: &Value,
    path: &str,
    providers: &[&str],
) -> Option<Registry> {
    let Some(items) = array(v) else {
        cx.err(path, "expected an array of registry entries");
        return None;
    };
    let before = cx.errors.len();
    let mut builder = RegistryBuilder::new(path, providers, items.len());
    for (i, item) in items.iter().enumerate() {
        builder.push(cx, i, item);
    }
    let out = builder.finish(cx)?;
    (cx.errors.len() == before).then_some(out)
}

fn read_registry_entry(cx: &mut Cx, node: Node<'_>, providers: &[&str]) -> Option<registry::Entry> {
    let mut f = Fields::of(cx, node)?;
    let client_id = match f.get("client_id") {
        Some((v, p)) => string(cx, v, &p),
        None => {
            cx.err(node.path, "`client_id` is required");
            None
        }
    };
    let provider = match f.get("provider") {
        Some((v, p)) => match string(cx, v, &p) {
            Some(name) => match providers.iter().position(|n| *n == name) {
                Some(i) => Some(Some(i)),
                None => {
                    cx.err(&p, format!("no provider is named \"{}\"", clip(&name, 64)));
                    None
                }
            },
            None => None,
        },
        None => Some(None),
    };
    let owner = match f.get("owner") {
        Some((v, p)) => string(cx, v, &p),
        None => {
            cx.err(
                node.path,
                "`owner` is required: every machine identity has someone who answers for it",
            );
            None
        }
    };
    let description = match f.get("description") {
        Some((v, p)) => Some(string(cx, v, &p)?),
        None => None,
    };
    let expires = match f.get("expires") {
        Some((v, p)) => match v.as_str().and_then(time::parse_rfc3339) {
            Some(t) => Some(Some(t)),
            None => {
                cx.err(
                    &p,
                    "expected an RFC 3339 instant, e.g. \"2027-06-30T00:00:00Z\"",
                );
                None
            }
        },
        None => Some(None),
    };
    let max_scopes = match f.get("max_scopes") {
        Some((v, p)) => read_scopes_allow_empty(cx, v, &p).map(Some),
        None => Some(None),
    };
    let status = match f.get("status") {
        Some((v, p)) => one_of(
            cx,
            v,
            &p,
            &[
                ("active", registry::Status::Active),
                ("disabled", registry::Status::Disabled),
            ],
        ),
        None => Some(registry::Status::Active),
    };
    let rate_limit = match f.get("rate_limit") {
        Some((v, p)) => read_limit(cx, v, &p).map(Some),
        None => Some(None),
    };
    f.finish(cx);
    Some(registry::Entry {
        client_id: client_id?,
        provider: provider?,
        owner: owner?,
        description,
        expires: expires?,
        max_scopes: max_scopes?,
        status: status?,
        rate_limit: rate_limit?,
    })
}

fn read_limit(cx: &mut Cx, v: &Value, path: &str) -> Option<LimitSpec> {
    let mut f = Fields::of(cx, Node { value: v, path })?;
    let before = cx.errors.len();
    let requests = match f.get("requests") {
        Some((v, p)) => integer(cx, v, &p, 1, limit::MAX_REQUESTS),
        None => {
            cx.err(
                &child(path, "requests"),
                "required: requests allowed per `per_s` seconds",
            );
            None
        }
    };
    let per_s = match f.get("per_s") {
        Some((v, p)) => integer(cx, v, &p, 1, limit::MAX_PER_S),
        None => {
            cx.err(&child(path, "per_s"), "required: the period in seconds");
            None
        }
    };
    let burst = f
        .get("burst")
        .and_then(|(v, p)| integer(cx, v, &p, 0, limit::MAX_REQUESTS))
        .unwrap_or(0);
    f.finish(cx);
    if cx.errors.len() > before {
        return None;
    }
    Some(LimitSpec {
        requests: u32::try_from(requests?).ok()?,
        per_s: u32::try_from(per_s?).ok()?,
        burst: u32::try_from(burst).ok()?,
    })
}

fn read_inventory(cx: &mut Cx, v: &Value, path: &str) -> Option<InventorySettings> {
    let mut f = Fields::of(cx, Node { value: v, path })?;
    let before = cx.errors.len();
    let interval_s = f
        .get("interval_s")
        .and_then(|(v, p)| integer(cx, v, &p, 10, 86_400))
        .unwrap_or(60);
    let max_identities = f
        .get("max_identities")
        .and_then(|(v, p)| integer(cx, v, &p, 1, 1_000_000))
        .map_or(10_000, |n| n as usize);
    f.finish(cx);
    (cx.errors.len() == before).then_some(InventorySettings {
        interval_s,
        max_identities,
    })
}

fn read_rate_limits(cx: &mut Cx, v: &Value, path: &str) -> Option<RateLimits> {
    let mut f = Fields::of(cx, Node { value: v, path })?;
    let before = cx.errors.len();
    let key = f
        .get("key")
        .and_then(|(v, p)| {
            one_of(
                cx,
                v,
                &p,
                &[
                    ("client_id", LimitKey::ClientId),
                    ("subject", LimitKey::Subject),
                ],
            )
        })
        .unwrap_or(LimitKey::ClientId);
    let default = match f.get("default") {
        Some((v, p)) => read_limit(cx, v, &p).map(Some),
        None => Some(None),
    };
    let headers = f
        .get("headers")
        .and_then(|(v, p)| boolean(cx, v, &p))
        .unwrap_or(false);
    let dry_run = f
        .get("dry_run")
        .and_then(|(v, p)| boolean(cx, v, &p))
        .unwrap_or(false);
    let max_identities = f
        .get("max_identities")
        .and_then(|(v, p)| integer(cx, v, &p, 1_000, 10_000_000))
        .map_or(DEFAULT_RATE_LIMIT_IDENTITIES, |n| n as u32);
    f.finish(cx);
    if cx.errors.len() > before {
        return None;
    }
    Some(RateLimits {
        key,
        default: default?,
        headers,
        dry_run,
        max_identities,
    })
}

fn read_revocation(cx: &mut Cx, v: &Value, path: &str, providers: &[&str]) -> Option<Revocation> {
    let mut f = Fields::of(cx, Node { value: v, path })?;
    let list = f
        .get("list")
        .and_then(|(v, p)| read_revocation_source(cx, v, &p, providers));
    let status_list = f
        .get("status_list")
        .and_then(|(v, p)| read_status_list_policy(cx, v, &p));
    f.finish(cx);
    Some(Revocation { list, status_list })
}

fn read_revocation_source(
    cx: &mut Cx,
    v: &Value,
    path: &str,
    providers: &[&str],
) -> Option<RevocationSource> {
    // The point is speed: an unchanged list costs a 304, so 1 s is allowed.
    read_source(
        cx,
        Node { value: v, path },
        ("the list", "the list is published", "a list"),
        1,
        |cx, doc, p| {
            read_revocation_document(
                cx,
                Node {
                    value: doc,
                    path: p,
                },
                providers,
                None,
            )
            .map(Rc::new)
        },
    )
}

fn read_status_list_policy(cx: &mut Cx, v: &Value, path: &str) -> Option<StatusListPolicy> {
    let mut f = Fields::of(cx, Node { value: v, path })?;
    let uri_prefixes = match f.get("uri_prefixes") {
        Some((v, p)) => {
            let list = strings(cx, v, &p, false);
            if let Some(l) = &list {
                for (i, u) in l.iter().enumerate() {
                    if split_uri(u).is_none() {
                        cx.err(
                            &child(&p, &i.to_string()),
                            "expected an absolute http:// or https:// URI prefix with a host",
                        );
                    }
                }
            }
            list
        }
        None => {
            cx.err(
                path,
                "`uri_prefixes` is required: a token's status list is fetched only from where you allow",
            );
            None
        }
    };
    let cluster = match f.get("cluster") {
        Some((v, p)) => Some(string(cx, v, &p)?),
        None => None,
    };
    let max_cache_s = match f.get("max_cache_s") {
        Some((v, p)) => integer(cx, v, &p, 1, 86_400)?,
        None => 300,
    };
    let timeout_ms = match f.get("timeout_ms") {
        Some((v, p)) => integer(cx, v, &p, 100, 60_000)?,
        None => 1500,
    };
    let on_unavailable = match f.get("on_unavailable") {
        Some((v, p)) => one_of(
            cx,
            v,
            &p,
            &[
                ("deny", OnUnavailable::Deny),
                ("allow", OnUnavailable::Allow),
            ],
        )?,
        None => OnUnavailable::Deny,
    };
    f.finish(cx);
    Some(StatusListPolicy {
        uri_prefixes: uri_prefixes?,
        cluster,
        max_cache_s,
        timeout_ms,
        on_unavailable,
    })
}

/// Parses a fetched revocation list, with the same checks as an inline one.
pub fn parse_revocation_document(
    text: &[u8],
    providers: &[&str],
) -> Result<RevocationList, Vec<ConfigError>> {
    // The token ids (up to millions) go straight into the digest set, one at
    // a time; only the small members are kept as values.
    let mut tokens = TokenIds::default();
    let mut bad: Vec<usize> = Vec::new();
    let doc = stream_document(text, "tokens", |i, item| match item.as_str() {
        Some(jti) if !jti.is_empty() => tokens.add(jti),
        _ => bad.push(i),
    })?;
    let mut cx = Cx::default();
    if doc.big == Big::NotAList {
        cx.err("/tokens", NOT_JTIS);
    }
    for i in bad {
        cx.err(&format!("/tokens/{i}"), NOT_A_JTI);
    }
    let rest = Value::Object(doc.rest);
    let list = read_revocation_document(&mut cx, Node::root(&rest), providers, Some(tokens));
    match list {
        Some(l) if cx.errors.is_empty() => Ok(l),
        _ => Err(cx.errors),
    }
}

const NOT_A_JTI: &str = "expected a non-empty token id (jti)";
const NOT_JTIS: &str = "expected an array of token ids (jti)";

/// What `stream_document` found of its large member.
#[derive(Debug, PartialEq, Eq)]
enum Big {
    Absent,
    List,
    /// Present but not an array (nor Kong's `{}` for an empty one).
    NotAList,
}

/// A fetched document's members other than the large one.
struct Streamed {
    big: Big,
    rest: Map<String, Value>,
}

/// Reads a JSON object member by member without building a tree of the
/// whole: the array member `big` is handed to `each` one element at a time
/// (read strictly, then dropped); the other members, small, are kept. A
/// member given twice anywhere is a fault, as everywhere else.
fn stream_document(
    text: &[u8],
    big: &str,
    mut each: impl FnMut(usize, Value),
) -> Result<Streamed, Vec<ConfigError>> {
    let found = RefCell::new(None);
    let mut out = Streamed {
        big: Big::Absent,
        rest: Map::new(),
    };
    let mut de = serde_json::Deserializer::from_slice(text);
    let read = Members {
        big,
        each: &mut each,
        out: &mut out,
        found: &found,
    }
    .deserialize(&mut de)
    .and_then(|()| de.end());
    match read {
        Ok(()) => Ok(out),
        Err(e) => Err(json_fault(match found.into_inner() {
            Some((pointer, member)) => JsonError::Duplicate { pointer, member },
            None => JsonError::Syntax(e.to_string()),
        })),
    }
}

struct Members<'a, F> {
    big: &'a str,
    each: &'a mut F,
    out: &'a mut Streamed,
    found: &'a RefCell<Option<(String, String)>>,
}

impl<'de, F: FnMut(usize, Value)> DeserializeSeed<'de> for Members<'_, F> {
    type Value = ();
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_map(self)
    }
}

impl<'de, F: FnMut(usize, Value)> Visitor<'de> for Members<'_, F> {
    type Value = ();
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON object")
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        while let Some(key) = map.next_key::<String>()? {
            let pointer = format!("/{}", key.replace('~', "~0").replace('/', "~1"));
            let repeated = if key == self.big {
                self.out.big != Big::Absent
            } else {
                self.out.rest.contains_key(&key)
            };
            if repeated {
                let message = format!("duplicate member `{key}`");
                *self.found.borrow_mut() = Some((String::new(), key));
                return Err(de::Error::custom(message));
            }
            if key == self.big {
                let value = map.next_value_seed(Elements {
                    pointer,
                    each: &mut *self.each,
                    found: self.found,
                })?;
                self.out.big = value;
            } else {
                let value = map.next_value_seed(json::Unique::at(&pointer, self.found))?;
                self.out.rest.insert(key, value);
            }
        }
        Ok(())
    }
}

/// The large array, element by element.
struct Elements<'a, F> {
    pointer: String,
    each: &'a mut F,
    found: &'a RefCell<Option<(String, String)>>,
}

impl<'de, F: FnMut(usize, Value)> DeserializeSeed<'de> for Elements<'_, F> {
    type Value = Big;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Big, D::Error> {
        // Strictly, as a value; an array is then read element by element.
        d.deserialize_any(self)
    }
}

impl<'de, F: FnMut(usize, Value)> Visitor<'de> for Elements<'_, F> {
    type Value = Big;
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("an array")
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Big, A::Error> {
        let mut i = 0usize;
        while let Some(item) =
            seq.next_element_seed(json::Unique::item(&self.pointer, i, self.found))?
        {
            (self.each)(i, item);
            i += 1;
        }
        Ok(Big::List)
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Big, A::Error> {
        // Kong writes an empty array as `{}`; any other object is not a list.
        let mut empty = true;
        while map
            .next_entry::<de::IgnoredAny, de::IgnoredAny>()?
            .is_some()
        {
            empty = false;
        }
        Ok(if empty { Big::List } else { Big::NotAList })
    }
    fn visit_str<E>(self, _: &str) -> Result<Big, E> {
        Ok(Big::NotAList)
    }
    fn visit_bool<E>(self, _: bool) -> Result<Big, E> {
        Ok(Big::NotAList)
    }
    fn visit_i64<E>(self, _: i64) -> Result<Big, E> {
        Ok(Big::NotAList)
    }
    fn visit_u64<E>(self, _: u64) -> Result<Big, E> {
        Ok(Big::NotAList)
    }
    fn visit_f64<E>(self, _: f64) -> Result<Big, E> {
        Ok(Big::NotAList)
    }
    fn visit_unit<E>(self) -> Result<Big, E> {
        Ok(Big::NotAList)
    }
}

/// `{"tokens": [jti...], "clients": [{"client_id", "provider"?, "issued_before"?}],
/// "subjects": [{"sub", "provider"?, "issued_before"?}]}`, every member optional.
fn read_revocation_document(
    cx: &mut Cx,
    node: Node<'_>,
    providers: &[&str],
    streamed: Option<TokenIds>,
) -> Option<RevocationList> {
    let before = cx.errors.len();
    let mut f = Fields::of(cx, node)?;
    let mut tokens = streamed.unwrap_or_default();
    if let Some((v, p)) = f.get("tokens") {
        match array(v) {
            Some(items) => {
                for (i, t) in items.iter().enumerate() {
                    match t.as_str() {
                        Some(s) if !s.is_empty() => tokens.add(s),
                        _ => cx.err(&child(&p, &i.to_string()), NOT_A_JTI),
                    }
                }
            }
            None => cx.err(&p, NOT_JTIS),
        }
    }
    let entries = |key: &'static str, id_member: &'static str, cx: &mut Cx, f: &mut Fields<'_>| {
        let mut out = Vec::new();
        let Some((v, p)) = f.get(key) else {
            return out;
        };
        let Some(items) = array(v) else {
            cx.err(&p, format!("expected an array of {key} entries"));
            return out;
        };
        for (i, item) in items.iter().enumerate() {
            let ip = child(&p, &i.to_string());
            let Some(mut e) = Fields::of(
                cx,
                Node {
                    value: item,
                    path: &ip,
                },
            ) else {
                continue;
            };
            let id = match e.get(id_member) {
                Some((v, vp)) => string(cx, v, &vp),
                None => {
                    cx.err(&ip, format!("`{id_member}` is required"));
                    None
                }
            };
            let provider = match e.get("provider") {
                Some((v, vp)) => string(cx, v, &vp).and_then(|name| {
                    let found = providers.iter().position(|n| *n == name);
                    if found.is_none() {
                        cx.err(&vp, format!("no provider is named \"{}\"", clip(&name, 64)));
                    }
                    found.map(Some)
                }),
                None => Some(None),
            };
            let issued_before = match e.get("issued_before") {
                Some((v, vp)) => match v.as_str().and_then(time::parse_rfc3339) {
                    Some(t) => Some(Some(t)),
                    None => {
                        cx.err(
                            &vp,
                            "expected an RFC 3339 instant, e.g. \"2026-12-01T10:00:00Z\"",
                        );
                        None
                    }
                },
                None => Some(None),
            };
            e.finish(cx);
            if let (Some(id), Some(provider), Some(issued_before)) = (id, provider, issued_before) {
                out.push((
                    id,
                    Cutoff {
                        provider,
                        issued_before,
                    },
                ));
            }
        }
        out
    };
    let clients = entries("clients", "client_id", cx, &mut f);
    let subjects = entries("subjects", "sub", cx, &mut f);
    f.finish(cx);
    (cx.errors.len() == before).then(|| RevocationList::with_tokens(tokens, clients, subjects))
}

fn read_token_sources(cx: &mut Cx, v: &Value, path: &str) -> Vec<TokenSource> {
    let Some(items) = array(v) else {
        cx.err(path, "expected an array of token sources");
        return Vec::new();
    };
    if items.is_empty() || items.len() > 8 {
        cx.err(path, "expected 1 to 8 token sources");
    }
    let mut out = Vec::new();
    for (i, item) in items.iter().enumerate() {
        let p = child(path, &i.to_string());
        let Some(mut f) = Fields::of(
            cx,
            Node {
                value: item,
                path: &p,
            },
        ) else {
            continue;
        };
        let header = f.get("header");
        let prefix = f.get("prefix");
        let query = f.get("query");
        f.finish(cx);
        let source = match (header, query) {
            (Some((h, hp)), None) => string(cx, h, &hp).and_then(|name| {
                let name = name.to_ascii_lowercase();
                if !is_header_name(&name) || name.starts_with(':') {
                    cx.err(&hp, "not a valid HTTP header name");
                    return None;
                }
                let prefix = match prefix {
                    Some((pv, pp)) => match pv {
                        Value::String(s) => s.clone(),
                        _ => {
                            cx.err(&pp, "expected a string");
                            return None;
                        }
                    },
                    None => String::new(),
                };
                Some(TokenSource::Header { name, prefix })
            }),
            (None, Some((q, qp))) => {
                if let Some((_, pp)) = prefix {
                    cx.err(&pp, "only applies to a `header` source");
                }
                string(cx, q, &qp).map(|param| TokenSource::Query { param })
            }
            _ => {
                cx.err(&p, "give exactly one of `header` or `query`");
                None
            }
        };
        if let Some(s) = source {
            if out.contains(&s) {
                cx.err(&p, "duplicate token source");
            }
            out.push(s);
        }
    }
    out
}

fn read_rules(cx: &mut Cx, v: &Value, path: &str, providers: &[&str]) -> Vec<Rule> {
    let Some(items) = array(v) else {
        cx.err(path, "expected an array of rules");
        return Vec::new();
    };
    let mut out: Vec<Rule> = Vec::new();
    for (i, item) in items.iter().enumerate() {
        let p = child(path, &i.to_string());
        if let Some(rule) = read_rule(
            cx,
            Node {
                value: item,
                path: &p,
            },
            providers,
        ) {
            if out.iter().any(|r| r.name == rule.name) {
                cx.err(
                    &child(&p, "name"),
                    format!("duplicate rule name \"{}\"", rule.name),
                );
            }
            out.push(rule);
        }
    }
    out
}

fn read_scopes(cx: &mut Cx, v: &Value, path: &str) -> Option<Vec<String>> {
    read_scope_list(cx, v, path, false)
}

/// A scope ceiling may be empty: an identity allowed no scope at all.
fn read_scopes_allow_empty(cx: &mut Cx, v: &Value, path: &str) -> Option<Vec<String>> {
    read_scope_list(cx, v, path, true)
}

fn read_scope_list(cx: &mut Cx, v: &Value, path: &str, allow_empty: bool) -> Option<Vec<String>> {
    let scopes = strings(cx, v, path, allow_empty)?;
    let mut ok = true;
    for (i, s) in scopes.iter().enumerate() {
        if !is_scope_token(s) {
            cx.err(
                &child(path, &i.to_string()),
                "not a valid scope (RFC 6749: visible ASCII without spaces, '\"' or '\\')",
            );
            ok = false;
        }
    }
    ok.then_some(scopes)
}

fn read_rule(cx: &mut Cx, node: Node<'_>, providers: &[&str]) -> Option<Rule> {
    let mut f = Fields::of(cx, node)?;
    let before = cx.errors.len();
    let name = match f.get("name") {
        Some((v, p)) => string(cx, v, &p),
        None => {
            cx.err(
                &child(node.path, "name"),
                "required: names appear in logs, metrics and `explain`",
            );
            None
        }
    };
    let methods = f.get("methods").and_then(|(v, p)| {
        let list = strings(cx, v, &p, false)?;
        let mut upper = Vec::with_capacity(list.len());
        for (i, m) in list.iter().enumerate() {
            if !m.bytes().all(|b| b.is_ascii_alphabetic()) {
                cx.err(&child(&p, &i.to_string()), "not an HTTP method");
                return None;
            }
            upper.push(m.to_ascii_uppercase());
        }
        Some(upper)
    });
    let pattern = match f.get("path") {
        Some((v, p)) => string(cx, v, &p).and_then(|s| match PathPattern::parse(&s) {
            Ok(pat) => Some(pat),
            Err(e) => {
                cx.err(&p, e);
                None
            }
        }),
        None => {
            cx.err(&child(node.path, "path"), "required");
            None
        }
    };
    let public = f.get("public");
    let public_flag = public
        .as_ref()
        .and_then(|(v, p)| boolean(cx, v, p))
        .unwrap_or(false);
    let scopes = f.get("scopes");
    let any_scopes = f.get("any_scopes");
    let clients = f.get("clients");
    let rule_providers = f.get("providers");
    let sender_constrained = f.get("sender_constrained");
    let rate_limit = f.get("rate_limit");
    f.finish(cx);
    let rule_limit = rate_limit.as_ref().and_then(|(v, p)| read_limit(cx, v, p));
    if let (Some((_, p)), Some(n)) = (&rate_limit, &name) {
        // The name is the policy's name in `RateLimit` response fields.
        if n.len() > 64
            || !n
                .bytes()
                .all(|b| (0x20..0x7f).contains(&b) && b != b'"' && b != b'\\')
        {
            cx.err(
                p,
                "a rule with a rate_limit needs a name of at most 64 printable ASCII characters without '\"' or '\\' (it names the limit in RateLimit headers)",
            );
        }
    }
    let sender_constrained_flag = sender_constrained
        .as_ref()
        .and_then(|(v, p)| boolean(cx, v, p))
        .unwrap_or(false);

    let access = if public_flag {
        let conflicting: Vec<&str> = [
            ("scopes", &scopes),
            ("any_scopes", &any_scopes),
            ("clients", &clients),
            ("providers", &rule_providers),
            ("sender_constrained", &sender_constrained),
            ("rate_limit", &rate_limit),
        ]
        .iter()
        .filter(|(_, v)| v.is_some())
        .map(|(n, _)| *n)
        .collect();
        if let (false, Some((_, p))) = (conflicting.is_empty(), &public) {
            cx.err(
                p,
                format!(
                    "a public rule needs no token, so it cannot also require {}",
                    conflicting.join(", ")
                ),
            );
        }
        Access::Public
    } else {
        let providers = rule_providers.and_then(|(v, p)| {
            let names = strings(cx, v, &p, false)?;
            let mut idx = Vec::with_capacity(names.len());
            for (i, n) in names.iter().enumerate() {
                match providers.iter().position(|known| known == n) {
                    Some(k) => idx.push(k),
                    None => cx.err(
                        &child(&p, &i.to_string()),
                        format!(
                            "no provider is named \"{n}\" (known: {})",
                            providers.join(", ")
                        ),
                    ),
                }
            }
            (idx.len() == names.len()).then_some(idx)
        });
        Access::Token(Requirements {
            scopes: scopes
                .and_then(|(v, p)| read_scopes(cx, v, &p))
                .unwrap_or_default(),
            any_scopes: any_scopes
                .and_then(|(v, p)| read_scopes(cx, v, &p))
                .unwrap_or_default(),
            clients: clients.and_then(|(v, p)| strings(cx, v, &p, false)),
            providers,
        })
    };
    if cx.errors.len() > before {
        return None;
    }
    Some(Rule {
        name: name?,
        methods,
        path: pattern?,
        access,
        sender_constrained: sender_constrained_flag,
        rate_limit: rule_limit,
    })
}

fn read_identity_headers(cx: &mut Cx, v: &Value, path: &str) -> IdentityHeaders {
    let Some(mut f) = Fields::of(cx, Node { value: v, path }) else {
        return IdentityHeaders::default();
    };
    let mut seen: HashSet<String> = HashSet::new();
    let mut header = |cx: &mut Cx, v: &Value, p: &str| -> Option<String> {
        let name = string(cx, v, p)?.to_ascii_lowercase();
        if !is_header_name(&name) {
            cx.err(p, "not a valid HTTP header name");
            return None;
        }
        if RESERVED_HEADERS.contains(&name.as_str()) {
            cx.err(p, format!("\"{name}\" cannot be an identity header"));
            return None;
        }
        if !seen.insert(name.clone()) {
            cx.err(p, format!("header \"{name}\" is used twice"));
            return None;
        }
        Some(name)
    };
    let mut out = IdentityHeaders::default();
    for (key, slot) in [
        ("subject", &mut out.subject),
        ("client_id", &mut out.client_id),
        ("issuer", &mut out.issuer),
        ("scopes", &mut out.scopes),
        ("owner", &mut out.owner),
    ] {
        if let Some((v, p)) = f.get(key) {
            *slot = header(cx, v, &p);
        }
    }
    if let Some((v, p)) = f.get("claims") {
        match v.as_object() {
            Some(map) => {
                for (claim, h) in map {
                    let hp = child(&p, claim);
                    if let Some(name) = header(cx, h, &hp) {
                        out.claims.push((claim.clone(), name));
                    }
                }
            }
            None => cx.err(&p, "expected an object mapping claim names to header names"),
        }
    }
    f.finish(cx);
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    pub(crate) fn rsa_jwk(kid: &str) -> Value {
        let mut n = vec![0xffu8; 256];
        if let Some(b) = n.first_mut() {
            *b = 0xc1;
        }
        json!({"kty": "RSA", "kid": kid, "n": crate::jose::base64url::encode(&n), "e": "AQAB"})
    }

    fn base() -> Value {
        json!({
            "providers": [{
                "name": "corp",
                "issuer": "https://idp.example.com",
                "audiences": ["payments-api"],
                "jwks": {"inline": {"keys": [rsa_jwk("k1")]}},
                "algorithms": ["RS256", "ES256"],
                "clock_skew_s": 60,
                "max_lifetime_s": 3600
            }],
            "rules": [
                {"name": "health", "methods": ["GET"], "path": "/healthz", "public": true},
                {"name": "read", "methods": ["GET", "HEAD"], "path": "/payments/**", "scopes": ["payments:read"]},
                {"name": "admin", "path": "/admin/**", "any_scopes": ["admin"], "clients": ["ops-bot"], "providers": ["corp"]}
            ],
            "identity_headers": {"subject": "X-Identity-Subject", "claims": {"tenant": "x-identity-tenant"}}
        })
    }

    fn errors(doc: &Value) -> Vec<String> {
        match parse_value(doc) {
            Ok(_) => Vec::new(),
            Err(e) => e.iter().map(ToString::to_string).collect(),
        }
    }

    #[test]
    fn accepts_the_contract_example_with_defaults() {
        let c = parse_value(&base()).expect("valid");
        assert_eq!(c.providers.len(), 1);
        assert_eq!(c.rules.len(), 3);
        assert_eq!(c.default_action, DefaultAction::Deny);
        assert_eq!(c.mode, Mode::Enforce);
        assert_eq!(c.audit_log, AuditLog::Denied);
        assert!(c.forward_token);
        assert_eq!(
            c.identity_headers.subject.as_deref(),
            Some("x-identity-subject")
        );
        assert_eq!(
            c.token_sources,
            [TokenSource::Header {
                name: "authorization".into(),
                prefix: "Bearer ".into()
            }]
        );
        let p = c.providers.first().expect("provider");
        assert_eq!(p.scope_claims, ["scope", "scp"]);
        assert_eq!(p.client_id_claims, ["client_id", "azp", "cid", "appid"]);
        assert!(matches!(p.keys, KeySource::Inline(ref k) if k.len() == 1));
    }

    #[test]
    fn names_the_json_path_of_each_fault_at_once() {
        let mut doc = base();
        doc["rules"][2]["scopes"] = json!("admin");
        doc["providers"][0]["algorithms"] = json!(["RS256", "HS256"]);
        doc["mode"] = json!("strict");
        doc["colour"] = json!(1);
        let errs = errors(&doc);
        assert!(
            errs.contains(&"/rules/2/scopes: expected an array of strings".to_string()),
            "{errs:?}"
        );
        assert!(
            errs.iter()
                .any(|e| e.starts_with("/providers/0/algorithms/1: HMAC")),
            "{errs:?}"
        );
        assert!(
            errs.iter().any(|e| e.starts_with("/mode: expected one of")),
            "{errs:?}"
        );
        assert!(
            errs.iter().any(|e| e.starts_with("/colour: unknown field")),
            "{errs:?}"
        );
        assert_eq!(errs.len(), 4, "{errs:?}");
    }

    #[test]
    fn cross_checks_names_and_references() {
        let mut doc = base();
        doc["rules"][2]["providers"] = json!(["nobody"]);
        doc["rules"][1]["name"] = json!("health");
        let errs = errors(&doc);
        assert!(
            errs.iter()
                .any(|e| e.starts_with("/rules/2/providers/0: no provider is named \"nobody\"")),
            "{errs:?}"
        );
        assert!(
            errs.iter()
                .any(|e| e.starts_with("/rules/1/name: duplicate rule name")),
            "{errs:?}"
        );
    }

    #[test]
    fn refuses_weak_and_broken_inline_keys() {
        let mut doc = base();
        doc["providers"][0]["jwks"]["inline"]["keys"][0]["n"] =
            json!(crate::jose::base64url::encode(&[0xc1; 128]));
        let errs = errors(&doc);
        assert_eq!(errs.len(), 1, "{errs:?}");
        let e = errs.first().cloned().unwrap_or_default();
        assert!(
            e.starts_with("/providers/0/jwks/inline/keys/0/n: RSA modulus is 1024 bits"),
            "{e}"
        );
    }

    #[test]
    fn an_inline_set_with_only_skipped_keys_is_refused() {
        let mut doc = base();
        doc["providers"][0]["jwks"] = json!({"inline": {"keys": [{"kty": "oct", "k": "AA"}]}});
        let errs = errors(&doc);
        assert_eq!(
            errs,
            ["/providers/0/jwks/inline: no usable signing key: every key was skipped"]
        );
    }

    #[test]
    fn inline_jwks_may_be_json_text() {
        let mut doc = base();
        let text = json!({"keys": [rsa_jwk("k2")]}).to_string();
        doc["providers"][0]["jwks"] = json!({ "inline": text });
        assert!(parse_value(&doc).is_ok());
    }

    #[test]
    fn remote_jwks_defaults_and_split() {
        let mut doc = base();
        doc["providers"][0]["jwks"] = json!({"uri": "https://idp.example.com:8443/.well-known/jwks.json?v=1", "cluster": "idp"});
        let c = parse_value(&doc).expect("valid");
        let KeySource::Remote(r) = &c.providers.first().expect("p").keys else {
            panic!("remote expected")
        };
        assert_eq!(r.authority, "idp.example.com:8443");
        assert_eq!(r.path, "/.well-known/jwks.json?v=1");
        assert_eq!(r.cluster, "idp");
        assert_eq!((r.refresh_interval_s, r.timeout_ms), (300, 1500));
        doc["providers"][0]["jwks"] = json!({"uri": "ftp://x/y"});
        assert_eq!(
            errors(&doc),
            ["/providers/0/jwks/uri: expected an absolute http:// or https:// URI with a host"]
        );
        doc["providers"][0]["jwks"] = json!({"uri": "https://x/", "inline": {"keys": []}});
        assert_eq!(errors(&doc).len(), 1);
    }

    #[test]
    fn public_rules_cannot_require_anything() {
        let mut doc = base();
        doc["rules"][0]["scopes"] = json!(["x"]);
        assert_eq!(
            errors(&doc),
            ["/rules/0/public: a public rule needs no token, so it cannot also require scopes"]
        );
    }

    #[test]
    fn refuses_reserved_or_repeated_identity_headers() {
        let mut doc = base();
        doc["identity_headers"] =
            json!({"subject": "authorization", "issuer": "x-a", "scopes": "X-A"});
        let errs = errors(&doc);
        assert_eq!(errs.len(), 2, "{errs:?}");
    }

    #[test]
    fn invalid_json_and_non_objects() {
        assert_eq!(parse_json(b"{").err().map(|e| e.len()), Some(1));
        assert_eq!(errors(&json!([])), ["/: expected an object"]);
        assert_eq!(
            errors(&json!({})),
            ["/providers: required: at least one token provider"]
        );
    }

    #[test]
    fn an_empty_object_stands_for_an_empty_array() {
        let mut doc = base();
        doc["rules"] = json!({});
        doc["identity_headers"] = json!({"claims": {}});
        let c = parse_value(&doc).expect("valid");
        assert!(c.rules.is_empty());
        doc["rules"] = json!({"a": 1});
        assert_eq!(errors(&doc), ["/rules: expected an array of rules"]);
    }

    #[test]
    fn scope_tokens_follow_rfc6749() {
        assert!(is_scope_token("payments:read"));
        assert!(!is_scope_token("a b"));
        assert!(!is_scope_token("a\"b"));
        assert!(!is_scope_token("admin\u{200b}"));
        assert!(!is_scope_token(""));
    }
}
