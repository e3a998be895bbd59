//! proxy-wasm entry points: the only code that names the SDK. It turns host
//! data into plain values, calls `adapter`, and turns the result into host
//! calls and an `Action`. Host calls that one of the two gateways lacks (or
//! traps on) are made only where `HostKind` says they are safe.

use crate::adapter::{self, Host, Loaded, LogLevel, Step};
use crate::config;
use crate::reason::Reason;
use crate::response::LocalResponse;
use crate::validate::NoRemoteKeys;
use proxy_wasm::hostcalls;
use proxy_wasm::traits::{Context, HttpContext, RootContext};
use proxy_wasm::types::{self, Action, BufferType, ContextType, MapType, MetricType};
use std::rc::Rc;
use std::time::UNIX_EPOCH;

proxy_wasm::main! {{
    proxy_wasm::set_log_level(types::LogLevel::Info);
    proxy_wasm::set_root_context(|_| -> Box<dyn RootContext> { Box::new(Root::new()) });
}}

/// Which gateway runs us, as far as can be told without risk (see
/// kong-example/README.md, "Host compatibility").
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum HostKind {
    /// Envoy (or Istio): `plugin_vm_id` or a VM configuration is set.
    Envoy,
    /// Anything else, Kong's ngx_wasm_module included: only calls every host
    /// implements without trapping. `on_configure` never returns false here,
    /// because in Kong that kills the worker.
    Portable,
}

fn detect_host() -> HostKind {
    let non_empty =
        |r: Result<Option<Vec<u8>>, types::Status>| matches!(r, Ok(Some(v)) if !v.is_empty());
    if non_empty(hostcalls::get_property(vec!["plugin_vm_id"]))
        || non_empty(hostcalls::get_buffer(
            BufferType::VmConfiguration,
            0,
            usize::MAX,
        ))
    {
        HostKind::Envoy
    } else {
        HostKind::Portable
    }
}

/// Counter ids, one per reason code, defined once per configuration.
#[derive(Default)]
struct Metrics {
    requests: Vec<(Reason, u32)>,
}

impl Metrics {
    fn define() -> Self {
        let requests = Reason::ALL
            .iter()
            .filter_map(|r| {
                hostcalls::define_metric(
                    MetricType::Counter,
                    &format!("scopegate.requests.{}", r.as_str()),
                )
                .ok()
                .map(|id| (*r, id))
            })
            .collect();
        Metrics { requests }
    }
}

struct Root {
    kind: HostKind,
    loaded: Loaded,
    metrics: Rc<Metrics>,
}

impl Root {
    fn new() -> Self {
        Root {
            kind: HostKind::Portable,
            loaded: Loaded::Broken(Rc::new(
                vec!["no configuration has been applied yet".into()],
            )),
            metrics: Rc::new(Metrics::default()),
        }
    }
}

fn log(level: LogLevel, message: &str) {
    let level = match level {
        LogLevel::Debug => types::LogLevel::Debug,
        LogLevel::Info => types::LogLevel::Info,
        LogLevel::Warn => types::LogLevel::Warn,
        LogLevel::Error => types::LogLevel::Error,
    };
    let _ = hostcalls::log(level, message);
}

impl Context for Root {}

impl RootContext for Root {
    fn on_vm_start(&mut self, _size: usize) -> bool {
        self.kind = detect_host();
        true
    }

    fn on_configure(&mut self, _size: usize) -> bool {
        let bytes = self.get_plugin_configuration().unwrap_or_default();
        let parsed = if bytes.iter().all(u8::is_ascii_whitespace) {
            Err(vec![config::ConfigError {
                path: String::new(),
                message: "the filter has no configuration; it needs at least `providers`".into(),
            }])
        } else {
            config::parse_json(&bytes)
        };
        match parsed {
            Ok(cfg) => {
                for w in &cfg.warnings {
                    log(LogLevel::Warn, w);
                }
                if self.kind == HostKind::Envoy && self.metrics.requests.is_empty() {
                    self.metrics = Rc::new(Metrics::define());
                }
                log(
                    LogLevel::Info,
                    &format!(
                        "configuration applied: {} provider(s), {} rule(s), mode {}",
                        cfg.providers.len(),
                        cfg.rules.len(),
                        if cfg.mode == config::Mode::DryRun {
                            "dry_run"
                        } else {
                            "enforce"
                        }
                    ),
                );
                self.loaded = Loaded::Ready(Rc::new(cfg));
                true
            }
            Err(errors) => {
                let lines: Vec<String> = errors.iter().map(ToString::to_string).collect();
                for l in &lines {
                    log(LogLevel::Error, &format!("invalid configuration: {l}"));
                }
                match self.kind {
                    // Envoy refuses the update and keeps what it had.
                    HostKind::Envoy => false,
                    HostKind::Portable => {
                        log(
                            LogLevel::Error,
                            "every request through this filter is denied until the configuration is fixed",
                        );
                        self.loaded = Loaded::Broken(Rc::new(lines));
                        true
                    }
                }
            }
        }
    }

    fn create_http_context(&self, _context_id: u32) -> Option<Box<dyn HttpContext>> {
        Some(Box::new(Http {
            kind: self.kind,
            loaded: self.loaded.clone(),
            metrics: self.metrics.clone(),
        }))
    }

    fn get_type(&self) -> Option<ContextType> {
        Some(ContextType::HttpContext)
    }
}

struct Http {
    kind: HostKind,
    loaded: Loaded,
    metrics: Rc<Metrics>,
}

impl Context for Http {}

impl HttpContext for Http {
    fn on_http_request_headers(&mut self, _headers: usize, _end_of_stream: bool) -> Action {
        let now = hostcalls::get_current_time()
            .ok()
            .and_then(|t| t.duration_since(UNIX_EPOCH).ok())
            .map_or(0, |d| d.as_secs());
        let mut host = WasmHost {
            kind: self.kind,
            metrics: &self.metrics,
        };
        match adapter::on_request_headers(&self.loaded, &NoRemoteKeys, &mut host, now) {
            Step::Continue => Action::Continue,
            Step::Responded => Action::Pause,
            Step::WaitForKeys { provider } => match &self.loaded {
                Loaded::Ready(cfg) => {
                    match adapter::keys_unavailable(cfg, &mut host, provider, "not fetched") {
                        Step::Continue => Action::Continue,
                        _ => Action::Pause,
                    }
                }
                Loaded::Broken(_) => Action::Pause,
            },
        }
    }
}

struct WasmHost<'a> {
    kind: HostKind,
    metrics: &'a Metrics,
}

impl Host for WasmHost<'_> {
    fn request_headers(&mut self) -> Vec<(String, String)> {
        // Bytes, not strings: the SDK's string variant panics on a header
        // value that is not UTF-8, and header values are attacker-controlled.
        hostcalls::get_map_bytes(MapType::HttpRequestHeaders)
            .unwrap_or_default()
            .into_iter()
            .map(|(k, v)| (k, String::from_utf8_lossy(&v).into_owned()))
            .collect()
    }

    fn remove_request_header(&mut self, name: &str) {
        let _ = hostcalls::set_map_value(MapType::HttpRequestHeaders, name, None);
    }

    fn set_request_header(&mut self, name: &str, value: &str) {
        let _ = hostcalls::set_map_value(MapType::HttpRequestHeaders, name, Some(value));
    }

    fn set_path(&mut self, path: &str) {
        let _ = hostcalls::set_map_value(MapType::HttpRequestHeaders, ":path", Some(path));
        if self.kind == HostKind::Envoy {
            // Envoy >= 1.33 keeps the route chosen for the old path unless asked.
            let _ = hostcalls::call_foreign_function("clear_route_cache", None);
        }
    }

    fn send_response(&mut self, r: &LocalResponse) {
        let headers: Vec<(&str, &str)> = r
            .headers
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        let _ = hostcalls::send_http_response(r.status, headers, Some(r.body.as_bytes()));
    }

    fn set_property(&mut self, key: &str, value: &str) {
        // Kong refuses unknown property keys with a status the SDK panics on.
        if self.kind == HostKind::Envoy && !value.is_empty() {
            let _ = hostcalls::set_property(vec![key], Some(value.as_bytes()));
        }
    }

    fn count(&mut self, reason: Reason) {
        if let Some((_, id)) = self.metrics.requests.iter().find(|(r, _)| *r == reason) {
            let _ = hostcalls::increment_metric(*id, 1);
        }
    }

    fn log(&mut self, level: LogLevel, message: &str) {
        log(level, message);
    }

    fn source_address(&mut self) -> Option<String> {
        hostcalls::get_property(vec!["source", "address"])
            .ok()
            .flatten()
            .map(|v| String::from_utf8_lossy(&v).into_owned())
    }
}
