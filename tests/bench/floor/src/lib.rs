//! Two cost floors for the benchmark, selected by the filter configuration:
//!
//! - `""` (side "floor"): a filter that lets every request through untouched —
//!   the price of the Proxy-Wasm boundary itself;
//! - `"contract-allow"` / `"contract-deny"` (side "contract"): no logic at
//!   all, only the host calls Scopegate's public contract makes on a request
//!   it allows (read the headers and the clock, set the seven `scopegate.*`
//!   request properties, add three identity headers, bump two counters) or
//!   denies (headers, clock, three properties, one counter, a 401 with an
//!   RFC 6750 challenge and a JSON body). No parsing, no signature, no cache:
//!   what is left between this side and Scopegate is Scopegate's own work.
//!
//! Probes of alternatives to two of those host calls, as suffixes of the
//! contract configuration (`contract-allow+struct+single`; run by
//! `tests/bench/probe.py`, results/access-log.md):
//!
//! - `+struct`: the decision as one property `scopegate`, declared once per
//!   VM (Envoy's `declare_property` foreign function) as a Protobuf
//!   `google.protobuf.Struct`, instead of seven string properties;
//! - `+json`: the same fields as one undeclared string property (JSON);
//! - `+single`: one `get_header` call per header a Bearer decision reads, and
//!   one per stripped header (to learn it is absent), instead of the map;
//! - `+blind`: the same reads, but the stripped headers removed without
//!   looking (a remove call for each);
//! - `+four`: only the four `get_header` calls a Bearer decision needs, the
//!   stripped headers not looked at (the least single reads can cost);
//! - `+noread`: no header read at all (what the map read costs).

use proxy_wasm::hostcalls;
use proxy_wasm::traits::{Context, HttpContext, RootContext};
use proxy_wasm::types::{Action, ContextType, LogLevel, MapType, MetricType};

proxy_wasm::main! {{
    proxy_wasm::set_log_level(LogLevel::Warn);
    proxy_wasm::set_root_context(|_| -> Box<dyn RootContext> { Box::new(Root::default()) });
}}

/// How the decision reaches the access log.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Facts {
    Seven,
    Struct,
    Json,
}

/// How the request headers are read.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Reads {
    Map,
    Single,
    Blind,
    Four,
    None,
}

#[derive(Clone, Copy)]
struct Contract {
    allow: bool,
    facts: Facts,
    reads: Reads,
    decision: u32,
    cache: u32,
}

#[derive(Default)]
struct Root {
    contract: Option<Contract>,
}

impl Context for Root {}

/// The type URL Envoy keeps with a Protobuf property (its `schema`).
const STRUCT_URL: &str = "type.googleapis.com/google.protobuf.Struct";

/// Protobuf wire format, the little of it these probes need.
fn field(out: &mut Vec<u8>, tag: u8, bytes: &[u8]) {
    out.push(tag);
    let mut n = bytes.len();
    while n >= 0x80 {
        out.push((n as u8) | 0x80);
        n >>= 7;
    }
    out.push(n as u8);
    out.extend_from_slice(bytes);
}

/// `DeclarePropertyArguments` (Envoy's declare_property.proto): name,
/// readonly, type Protobuf (3), schema, span DownstreamRequest (1).
fn declare(name: &str) {
    let mut args = Vec::new();
    field(&mut args, 0x0a, name.as_bytes());
    args.extend_from_slice(&[0x18, 3]);
    field(&mut args, 0x22, STRUCT_URL.as_bytes());
    args.extend_from_slice(&[0x28, 1]);
    if let Err(e) = hostcalls::call_foreign_function("declare_property", Some(&args)) {
        proxy_wasm::hostcalls::log(LogLevel::Error, &format!("declare_property: {e:?}")).ok();
    }
}

/// A `google.protobuf.Struct` of string values.
fn struct_of(pairs: &[(&str, &str)]) -> Vec<u8> {
    let mut out = Vec::with_capacity(256);
    for (k, v) in pairs {
        let mut value = Vec::with_capacity(v.len() + 2);
        field(&mut value, 0x1a, v.as_bytes());
        let mut entry = Vec::with_capacity(k.len() + value.len() + 4);
        field(&mut entry, 0x0a, k.as_bytes());
        field(&mut entry, 0x12, &value);
        field(&mut out, 0x0a, &entry);
    }
    out
}

fn json_of(pairs: &[(&str, &str)]) -> String {
    let fields: Vec<String> = pairs
        .iter()
        .map(|(k, v)| format!("\"{k}\":\"{v}\""))
        .collect();
    format!("{{{}}}", fields.join(","))
}

impl RootContext for Root {
    fn on_configure(&mut self, _: usize) -> bool {
        let config = self.get_plugin_configuration().unwrap_or_default();
        let config = String::from_utf8_lossy(&config).into_owned();
        let mut parts = config.split('+');
        let allow = match parts.next() {
            Some("contract-allow") => true,
            Some("contract-deny") => false,
            _ => return true,
        };
        let (mut facts, mut reads) = (Facts::Seven, Reads::Map);
        for p in parts {
            match p {
                "struct" => facts = Facts::Struct,
                "json" => facts = Facts::Json,
                "single" => reads = Reads::Single,
                "blind" => reads = Reads::Blind,
                "four" => reads = Reads::Four,
                "noread" => reads = Reads::None,
                _ => return false,
            }
        }
        if facts == Facts::Struct {
            declare("scopegate");
        }
        self.contract = Some(Contract {
            allow,
            facts,
            reads,
            decision: hostcalls::define_metric(MetricType::Counter, "contract.requests")
                .unwrap_or(0),
            cache: hostcalls::define_metric(MetricType::Counter, "contract.cache").unwrap_or(0),
        });
        true
    }

    fn create_http_context(&self, _id: u32) -> Option<Box<dyn HttpContext>> {
        Some(Box::new(Pass {
            contract: self.contract,
        }))
    }

    fn get_type(&self) -> Option<ContextType> {
        Some(ContextType::HttpContext)
    }
}

struct Pass {
    contract: Option<Contract>,
}

impl Context for Pass {}

/// What a Bearer decision reads, and what it strips (three identity headers,
/// three method-override headers).
const READ: [&str; 4] = [":method", ":path", "authorization", "dpop"];
const STRIPPED: [&str; 6] = [
    "x-identity-subject",
    "x-identity-client-id",
    "x-identity-scopes",
    "x-http-method-override",
    "x-method-override",
    "x-http-method",
];

fn read_headers(reads: Reads) {
    match reads {
        Reads::Map => {
            let _ = hostcalls::get_map_bytes(MapType::HttpRequestHeaders);
            return;
        }
        Reads::None => return,
        _ => {}
    }
    for name in READ {
        let _ = hostcalls::get_map_value_bytes(MapType::HttpRequestHeaders, name);
    }
    if reads == Reads::Four {
        return;
    }
    for name in STRIPPED {
        if reads == Reads::Blind {
            let _ = hostcalls::remove_map_value(MapType::HttpRequestHeaders, name);
        } else {
            let _ = hostcalls::get_map_value_bytes(MapType::HttpRequestHeaders, name);
        }
    }
}

/// The contract's seven keys, in the order `publish` is given the values.
const SEVEN: [&str; 7] = [
    "scopegate.decision",
    "scopegate.reason",
    "scopegate.rule",
    "scopegate.subject",
    "scopegate.client_id",
    "scopegate.issuer",
    "scopegate.scopes",
];

fn publish(facts: Facts, pairs: &[(&str, &str)]) {
    match facts {
        Facts::Seven => {
            for ((_, value), key) in pairs.iter().zip(SEVEN) {
                let _ = hostcalls::set_property(vec![key], Some(value.as_bytes()));
            }
        }
        Facts::Struct => {
            let _ = hostcalls::set_property(vec!["scopegate"], Some(&struct_of(pairs)));
        }
        Facts::Json => {
            let _ = hostcalls::set_property(vec!["scopegate"], Some(json_of(pairs).as_bytes()));
        }
    }
}

impl HttpContext for Pass {
    fn on_http_request_headers(&mut self, _: usize, _: bool) -> Action {
        let Some(counters) = self.contract else {
            return Action::Continue;
        };
        let _ = hostcalls::get_current_time();
        read_headers(counters.reads);
        if counters.allow {
            publish(
                counters.facts,
                &[
                    ("decision", "allow"),
                    ("reason", "allowed"),
                    ("rule", "read"),
                    ("subject", "svc-steady-0"),
                    ("client_id", "bench-client"),
                    ("issuer", "https://idp.example.com"),
                    ("scopes", "payments:read payments:write"),
                ],
            );
            for (name, value) in [
                ("x-identity-subject", "svc-steady-0"),
                ("x-identity-client-id", "bench-client"),
                ("x-identity-scopes", "payments:read payments:write"),
            ] {
                self.add_http_request_header(name, value);
            }
            let _ = hostcalls::increment_metric(counters.decision, 1);
            let _ = hostcalls::increment_metric(counters.cache, 1);
            return Action::Continue;
        }
        publish(
            counters.facts,
            &[
                ("decision", "deny"),
                ("reason", "token_malformed"),
                ("rule", "read"),
            ],
        );
        let _ = hostcalls::increment_metric(counters.decision, 1);
        self.send_http_response(
            401,
            vec![
                ("content-type", "application/json"),
                ("cache-control", "no-store"),
                (
                    "www-authenticate",
                    "Bearer error=\"invalid_token\", error_description=\"token has 1 segment(s); a signed JWT has exactly 3 (header.payload.signature)\"",
                ),
            ],
            Some(br#"{"error":"invalid_token","error_description":"token has 1 segment(s); a signed JWT has exactly 3 (header.payload.signature)","reason":"token_malformed"}"#),
        );
        Action::Pause
    }
}
