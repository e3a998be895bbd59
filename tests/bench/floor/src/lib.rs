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

use proxy_wasm::hostcalls;
use proxy_wasm::traits::{Context, HttpContext, RootContext};
use proxy_wasm::types::{Action, ContextType, LogLevel, MetricType};

proxy_wasm::main! {{
    proxy_wasm::set_log_level(LogLevel::Warn);
    proxy_wasm::set_root_context(|_| -> Box<dyn RootContext> { Box::new(Root::default()) });
}}

#[derive(Clone, Copy)]
struct Contract {
    allow: bool,
    decision: u32,
    cache: u32,
}

#[derive(Default)]
struct Root {
    contract: Option<Contract>,
}

impl Context for Root {}

impl RootContext for Root {
    fn on_configure(&mut self, _: usize) -> bool {
        let config = self.get_plugin_configuration().unwrap_or_default();
        let allow = match config.as_slice() {
            b"contract-allow" => true,
            b"contract-deny" => false,
            _ => return true,
        };
        self.contract = Some(Contract {
            allow,
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

impl HttpContext for Pass {
    fn on_http_request_headers(&mut self, _: usize, _: bool) -> Action {
        let Some(counters) = self.contract else {
            return Action::Continue;
        };
        let _ = hostcalls::get_current_time();
        let _ = hostcalls::get_map_bytes(proxy_wasm::types::MapType::HttpRequestHeaders);
        let property = |name: &str, value: &str| {
            let _ = hostcalls::set_property(vec![name], Some(value.as_bytes()));
        };
        if counters.allow {
            for (name, value) in [
                ("scopegate.decision", "allow"),
                ("scopegate.reason", "allowed"),
                ("scopegate.rule", "read"),
                ("scopegate.subject", "svc-steady-0"),
                ("scopegate.client_id", "bench-client"),
                ("scopegate.issuer", "https://idp.example.com"),
                ("scopegate.scopes", "payments:read payments:write"),
            ] {
                property(name, value);
            }
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
        property("scopegate.decision", "deny");
        property("scopegate.reason", "token_malformed");
        property("scopegate.rule", "read");
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
