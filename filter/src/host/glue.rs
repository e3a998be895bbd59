//! proxy-wasm entry points: the only code that names the SDK. It turns host
//! data into plain values, calls `adapter` and `keyfetch`, and turns their
//! results into host calls and an `Action`. Host calls that one of the two
//! gateways lacks (or traps on) are made only where `HostKind` says they are
//! safe (see kong-example/README.md, "Host compatibility").

use crate::host::adapter::{self, Host, Loaded, LogLevel, Signal, Step, Worker};
use crate::host::hostcall;
use crate::host::record;
use crate::identity::cache::TokenCache;
use crate::identity::shared::SetError;
use crate::identity::validate::{Availability, Document, KeyStore, Keys};
use crate::jose::statuslist::StatusList;
use crate::policy::config::{self, Config};
use crate::policy::registry::Registry;
use crate::policy::revocation::RevocationList;
use crate::remote::keyfetch::{Event, Fetcher, LocalStore, Response, SharedStore};
use crate::request::audit::AuditBudget;
use crate::request::binding::ClientCertificate;
use crate::request::inventory::Inventory;
use crate::request::limits::Limits;
use crate::request::ratelimit;
use crate::request::response::LocalResponse;
use crate::vocab::reason::Reason;
use proxy_wasm::hostcalls;
use proxy_wasm::traits::{Context, HttpContext, RootContext};
use proxy_wasm::types::{self, Action, BufferType, ContextType, MapType, MetricType};
use std::cell::RefCell;
use std::rc::Rc;
use std::time::{Duration, UNIX_EPOCH};

/// How often the root context looks at key fetches and waiting requests.
const TICK_MS: u64 = 200;

proxy_wasm::main! {{
    proxy_wasm::set_log_level(types::LogLevel::Info);
    proxy_wasm::set_root_context(|_| -> Box<dyn RootContext> { Box::new(Root::new()) });
}}

/// Which gateway runs us, as far as can be told without risk.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum HostKind {
    /// Envoy (or Istio, or Envoy Gateway): every host call Scopegate uses.
    Envoy,
    /// Anything else, Kong's ngx_wasm_module included: only calls every host
    /// implements without trapping. `on_configure` never returns false here
    /// (in Kong that kills the worker); no metrics, properties or shared data.
    Portable,
}

/// Envoy is recognized by what it is, with or without a `vm_id` (Istio sets
/// none): it has the `xds` attributes and describes its node in `xds.node`.
/// The probe is ordered for Kong's host, which logs an error for every
/// property it knows but lacks (`node`, `plugin_vm_id`) and for any dotted
/// one outside a request: the bare name `xds` is one it does not know, so it
/// answers nothing and logs nothing (Envoy 1.40 answers a serialization
/// failure: the attribute exists but is a map), and only then is
/// `xds.node` read. `node` itself is no help: Envoy 1.40 answers it empty.
/// The WASI variable `SCOPEGATE_HOST` (`envoy` or `portable`) overrides.
/// Returns the kind and why, for the start-up log line.
fn detect_host() -> (HostKind, &'static str) {
    match std::env::var("SCOPEGATE_HOST").map(|v| v.to_ascii_lowercase()) {
        Ok(v) if v == "envoy" => return (HostKind::Envoy, "SCOPEGATE_HOST=envoy"),
        Ok(v) if v == "portable" || v == "kong" => {
            return (HostKind::Portable, "SCOPEGATE_HOST=portable")
        }
        _ => {}
    }
    if matches!(hostcall::property_status(&["xds"]), Ok(None)) {
        return (
            HostKind::Portable,
            "the host has no xds attributes: not Envoy (Kong's host answers so)",
        );
    }
    match hostcall::property_status(&["xds", "node"]) {
        Ok(Some(node)) if !node.is_empty() => (HostKind::Envoy, "the host describes its xds.node"),
        _ => (
            HostKind::Portable,
            "the host has xds attributes but no xds.node: not recognized as Envoy",
        ),
    }
}

fn now_ms() -> u64 {
    hostcalls::get_current_time()
        .ok()
        .and_then(|t| t.duration_since(UNIX_EPOCH).ok())
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

fn log(level: LogLevel, message: &str) {
    let level = match level {
        LogLevel::Debug => types::LogLevel::Debug,
        LogLevel::Info => types::LogLevel::Info,
        LogLevel::Warn => types::LogLevel::Warn,
        LogLevel::Error => types::LogLevel::Error,
    };
    hostcall::log(level, message);
}

/// Counter ids, defined once per configuration (Envoy only).
#[derive(Default)]
struct Metrics {
    requests: Vec<(Reason, u32)>,
    /// Per fetched document: (fetch_ok, fetch_failed).
    fetches: Vec<(Document, u32, u32)>,
    /// Verified-token cache (hit, miss).
    cache: Option<(u32, u32)>,
    /// Registry signals, defined when a registry is configured.
    signals: Vec<(Signal, u32)>,
}

impl Metrics {
    fn define(cfg: &Config) -> Self {
        let counter = |name: &str| hostcalls::define_metric(MetricType::Counter, name).ok();
        let requests = Reason::ALL
            .iter()
            .filter_map(|r| {
                counter(&format!("scopegate.requests.{}", r.as_str())).map(|id| (*r, id))
            })
            .collect();
        let mut fetches: Vec<(Document, u32, u32)> = cfg
            .providers
            .iter()
            .enumerate()
            .filter(|(_, p)| matches!(p.keys, config::KeySource::Remote(_)))
            .filter_map(|(i, p)| {
                let ok = counter(&format!("scopegate.jwks.{}.fetch_ok", p.name))?;
                let failed = counter(&format!("scopegate.jwks.{}.fetch_failed", p.name))?;
                Some((Document::Keys(i), ok, failed))
            })
            .collect();
        let remote_registry = matches!(
            cfg.identities.as_ref().map(|i| &i.registry),
            Some(config::RegistrySource::Remote(_))
        );
        let remote_revocation = matches!(
            cfg.revocation.as_ref().and_then(|r| r.list.as_ref()),
            Some(config::RevocationSource::Remote(_))
        );
        let status_lists = cfg
            .revocation
            .as_ref()
            .is_some_and(|r| r.status_list.is_some());
        for (doc, wanted, name) in [
            (Document::Registry, remote_registry, "registry"),
            (Document::Revocation, remote_revocation, "revocation"),
            (Document::StatusList, status_lists, "status_list"),
        ] {
            if !wanted {
                continue;
            }
            if let (Some(ok), Some(failed)) = (
                counter(&format!("scopegate.{name}.fetch_ok")),
                counter(&format!("scopegate.{name}.fetch_failed")),
            ) {
                fetches.push((doc, ok, failed));
            }
        }
        let cache = counter("scopegate.cache.hit").zip(counter("scopegate.cache.miss"));
        let signals =
            if cfg.identities.is_some() || cfg.revocation.is_some() || cfg.rate_limits.is_some() {
                Signal::ALL
                    .iter()
                    .filter_map(|s| counter(s.metric()).map(|id| (*s, id)))
                    .collect()
            } else {
                Vec::new()
            };
        Metrics {
            requests,
            fetches,
            cache,
            signals,
        }
    }

    fn cache(&self, hit: bool) {
        if let Some((h, m)) = self.cache {
            let _ = hostcall::increment_metric(if hit { h } else { m }, 1);
        }
    }

    fn fetch(&self, doc: Document, ok: bool) {
        if let Some((_, ok_id, failed_id)) = self.fetches.iter().find(|(d, _, _)| *d == doc) {
            let _ = hostcall::increment_metric(if ok { *ok_id } else { *failed_id }, 1);
        }
    }
}

/// Envoy's shared data: one store for every worker's VM.
struct HostStore;

impl SharedStore for HostStore {
    fn get(&self, key: &str) -> Option<(Vec<u8>, u32)> {
        match hostcalls::get_shared_data(key) {
            // An empty value comes back as no bytes: still a key that exists.
            Ok((v, Some(cas))) => Some((v.unwrap_or_default(), cas)),
            _ => None,
        }
    }

    fn set(&self, key: &str, value: &[u8], cas: u32) -> Result<(), SetError> {
        match hostcalls::set_shared_data(key, Some(value), (cas != 0).then_some(cas)) {
            Ok(()) => Ok(()),
            Err(proxy_wasm::types::Status::CasMismatch) => Err(SetError::CasMismatch),
            Err(other) => Err(SetError::Failed(format!(
                "shared data refused the write: {other:?}"
            ))),
        }
    }
}

/// A request held until a document it needs (keys, registry) changes.
struct Waiter {
    context_id: u32,
    doc: Document,
    generation: u64,
    deadline_ms: u64,
}

/// Headers to add to one response.
type ResponseHeaders = Vec<(&'static str, String)>;

/// State of one configuration, shared by the root and its HTTP contexts.
struct Runtime {
    kind: HostKind,
    loaded: Loaded,
    metrics: Metrics,
    fetcher: Option<Fetcher>,
    store: Box<dyn SharedStore>,
    waiters: Vec<Waiter>,
    cache: RefCell<TokenCache>,
    limits: RefCell<Option<Limits>>,
    inventory: RefCell<Option<Inventory>>,
    audit_budget: RefCell<Option<AuditBudget>>,
    /// Response headers to add, by HTTP context.
    response_headers: RefCell<Vec<(u32, ResponseHeaders)>>,
}

/// The key store a decision sees. On hosts that cannot resume a held request
/// from the root context (Kong), a request never waits: without keys it is
/// answered 503 at once, and unknown `kid`s do not hold it for a refresh.
enum Docs<'a> {
    Hold(&'a Fetcher),
    NoHold(&'a Fetcher),
    InlineOnly,
}

struct Store<'a> {
    docs: Docs<'a>,
    shared: &'a dyn SharedStore,
}

impl KeyStore for Store<'_> {
    fn keys(&self, provider: usize) -> Keys {
        match &self.docs {
            Docs::Hold(f) => f.keys(provider),
            Docs::NoHold(f) => match f.keys(provider) {
                Keys::Pending => Keys::Unavailable("the key set is still being fetched".into()),
                other => other,
            },
            Docs::InlineOnly => crate::identity::validate::NoRemoteKeys.keys(provider),
        }
    }

    fn refresh_for_unknown_kid(&self, provider: usize, now: u64) -> bool {
        match &self.docs {
            Docs::Hold(f) => f.refresh_for_unknown_kid(provider, now),
            Docs::NoHold(_) | Docs::InlineOnly => false,
        }
    }

    fn registry(&self) -> Availability<Registry> {
        match &self.docs {
            Docs::Hold(f) => f.registry(),
            Docs::NoHold(f) => match f.registry() {
                Availability::Pending => {
                    Availability::Unavailable("the registry is still being fetched".into())
                }
                other => other,
            },
            Docs::InlineOnly => crate::identity::validate::NoRemoteKeys.registry(),
        }
    }

    fn revocation(&self) -> Availability<RevocationList> {
        match &self.docs {
            Docs::Hold(f) => f.revocation(),
            Docs::NoHold(f) => match f.revocation() {
                Availability::Pending => {
                    Availability::Unavailable("the revocation list is still being fetched".into())
                }
                other => other,
            },
            Docs::InlineOnly => crate::identity::validate::NoRemoteKeys.revocation(),
        }
    }

    fn status_list(&self, uri: &str, provider: usize, now: u64) -> Availability<StatusList> {
        match &self.docs {
            Docs::Hold(f) => f.status_list(uri, provider, now),
            Docs::NoHold(f) => match f.status_list(uri, provider, now) {
                Availability::Pending => {
                    Availability::Unavailable("the status list is still being fetched".into())
                }
                other => other,
            },
            Docs::InlineOnly => {
                crate::identity::validate::NoRemoteKeys.status_list(uri, provider, now)
            }
        }
    }

    fn shared(&self) -> Option<&dyn SharedStore> {
        Some(self.shared)
    }
}

/// The `timeout_ms` of a fetched document: how long a request may wait for it.
fn fetch_timeout_ms(cfg: &Config, doc: Document) -> u64 {
    match doc {
        Document::Keys(p) => match cfg.providers.get(p).map(|p| &p.keys) {
            Some(config::KeySource::Remote(remote)) => remote.timeout_ms,
            _ => 0,
        },
        Document::Registry => match cfg.identities.as_ref().map(|i| &i.registry) {
            Some(config::RegistrySource::Remote(remote)) => remote.timeout_ms,
            _ => 0,
        },
        Document::Revocation => match cfg.revocation.as_ref().and_then(|r| r.list.as_ref()) {
            Some(config::RevocationSource::Remote(remote)) => remote.timeout_ms,
            _ => 0,
        },
        Document::StatusList => cfg
            .revocation
            .as_ref()
            .and_then(|r| r.status_list.as_ref())
            .map_or(0, |p| p.timeout_ms),
    }
}

impl Runtime {
    /// Whether a waiting request's document is there now.
    fn available(&self, doc: Document) -> bool {
        let store = self.keys();
        match doc {
            Document::Keys(p) => matches!(store.keys(p), Availability::Ready(_)),
            Document::Registry => matches!(store.registry(), Availability::Ready(_)),
            Document::Revocation => matches!(store.revocation(), Availability::Ready(_)),
            // Which list is not known here: the request decides again, and
            // the status list answers unavailable once its fetch has failed.
            Document::StatusList => true,
        }
    }

    /// Writes this worker's inventory lines when their interval is over.
    fn write_inventory(&self, now: u64) {
        let (Loaded::Ready(cfg), Ok(mut guard)) = (&self.loaded, self.inventory.try_borrow_mut())
        else {
            return;
        };
        let Some(inventory) = guard.as_mut() else {
            return;
        };
        if !inventory.due(now) {
            return;
        }
        for line in inventory.drain(cfg, now) {
            hostcall::log(proxy_wasm::types::LogLevel::Info, &line);
        }
    }

    /// Sums what the audit budget held back in a second that has ended.
    fn write_audit_summaries(&self, now: u64) {
        let Ok(mut guard) = self.audit_budget.try_borrow_mut() else {
            return;
        };
        if let Some(budget) = guard.as_mut() {
            for line in budget.roll(now) {
                hostcall::log(proxy_wasm::types::LogLevel::Info, &line);
            }
        }
    }

    fn hold_response_headers(&self, context_id: u32, headers: ResponseHeaders) {
        if headers.is_empty() {
            return;
        }
        if let Ok(mut held) = self.response_headers.try_borrow_mut() {
            held.push((context_id, headers));
        }
    }

    fn take_response_headers(&self, context_id: u32) -> ResponseHeaders {
        let Ok(mut held) = self.response_headers.try_borrow_mut() else {
            return Vec::new();
        };
        match held.iter().position(|(id, _)| *id == context_id) {
            Some(i) => held.swap_remove(i).1,
            None => Vec::new(),
        }
    }

    fn keys(&self) -> Store<'_> {
        let docs = match (&self.fetcher, self.kind) {
            (Some(f), HostKind::Envoy) => Docs::Hold(f),
            (Some(f), HostKind::Portable) => Docs::NoHold(f),
            (None, _) => Docs::InlineOnly,
        };
        Store {
            docs,
            shared: self.store.as_ref(),
        }
    }

    fn report(&self, event: &Event) {
        let what = |doc: Document| match (doc, &self.loaded) {
            (Document::Registry, _) => "the identity registry".to_string(),
            (Document::Revocation, _) => "the revocation list".to_string(),
            (Document::StatusList, _) => "a status list".to_string(),
            (Document::Keys(p), Loaded::Ready(c)) => format!(
                "keys of provider \"{}\"",
                c.providers.get(p).map_or("?", |x| x.name.as_str())
            ),
            (Document::Keys(_), Loaded::Broken(_)) => "keys".to_string(),
        };
        match event {
            Event::Fetched {
                doc,
                summary,
                skipped,
            } => {
                self.metrics.fetch(*doc, true);
                log(
                    LogLevel::Info,
                    &format!("{} fetched: {summary}", what(*doc)),
                );
                for s in skipped {
                    log(LogLevel::Warn, &format!("{}: {s}", what(*doc)));
                }
            }
            Event::NotModified { doc } => {
                self.metrics.fetch(*doc, true);
                log(LogLevel::Debug, &format!("{} unchanged (304)", what(*doc)));
            }
            Event::FetchFailed { doc, why, kept } => {
                self.metrics.fetch(*doc, false);
                let then = if *kept {
                    "the last good document stays in force"
                } else {
                    "none has arrived yet: requests that need it are answered 503"
                };
                log(
                    LogLevel::Warn,
                    &format!("fetching {} failed: {why}; {then}", what(*doc)),
                );
            }
            Event::Adopted { doc, summary } => log(
                LogLevel::Debug,
                &format!("{} taken from another worker: {summary}", what(*doc)),
            ),
        }
    }
}

struct Root {
    kind: HostKind,
    runtime: Option<Rc<RefCell<Runtime>>>,
    ticking: bool,
    worker: u64,
}

impl Root {
    fn new() -> Self {
        Root {
            kind: HostKind::Portable,
            runtime: None,
            ticking: false,
            worker: 0,
        }
    }

    fn install(&mut self, loaded: Loaded) {
        let cache_size = match &loaded {
            Loaded::Ready(cfg) => cfg.token_cache_size,
            Loaded::Broken(_) => 0,
        };
        let (metrics, fetcher) = match &loaded {
            Loaded::Ready(cfg) => {
                let metrics = if self.kind == HostKind::Envoy {
                    Metrics::define(cfg)
                } else {
                    Metrics::default()
                };
                let fetcher = Fetcher::new(cfg, self.worker);
                (metrics, fetcher.has_remote().then_some(fetcher))
            }
            Loaded::Broken(_) => (Metrics::default(), None),
        };
        let mut store: Box<dyn SharedStore> = match self.kind {
            HostKind::Envoy => Box::new(HostStore),
            // Kong traps on shared data without a configured zone: fetch per worker.
            HostKind::Portable => Box::new(LocalStore::default()),
        };
        if let Some(f) = &fetcher {
            f.prepare(store.as_mut());
        }
        // Every worker hashes identities with the secret the first one wrote.
        let limits = match &loaded {
            Loaded::Ready(cfg) if cfg.rate_limits.is_some() => Limits::new(
                cfg,
                ratelimit::shared_secret(store.as_ref(), random_secret()),
            ),
            _ => None,
        };
        let inventory = match &loaded {
            Loaded::Ready(cfg) => cfg
                .inventory
                .as_ref()
                .map(|settings| Inventory::new(settings, cfg.providers.len())),
            Loaded::Broken(_) => None,
        };
        let audit_budget = match &loaded {
            Loaded::Ready(cfg)
                if cfg.audit_log_budget > 0 && cfg.audit_log != config::AuditLog::Off =>
            {
                Some(AuditBudget::new(cfg.audit_log_budget))
            }
            _ => None,
        };
        if (fetcher.is_some() || inventory.is_some() || audit_budget.is_some()) && !self.ticking {
            // Kong traps on a second call: set the period once per root.
            let _ = hostcalls::set_tick_period(Duration::from_millis(TICK_MS));
            self.ticking = true;
        }
        self.runtime = Some(Rc::new(RefCell::new(Runtime {
            kind: self.kind,
            loaded,
            metrics,
            fetcher,
            store,
            waiters: Vec::new(),
            cache: RefCell::new(TokenCache::new(cache_size)),
            limits: RefCell::new(limits),
            inventory: RefCell::new(inventory),
            audit_budget: RefCell::new(audit_budget),
            response_headers: RefCell::new(Vec::new()),
        })));
    }

    /// Starts due fetches, then lets waiting requests decide again.
    fn drive(&mut self) {
        let Some(rt) = self.runtime.clone() else {
            return;
        };
        let now = now_ms();
        rt.borrow().write_inventory(now / 1000);
        rt.borrow().write_audit_summaries(now / 1000);
        let (requests, mut events) = {
            let mut guard = rt.borrow_mut();
            let Runtime { fetcher, store, .. } = &mut *guard;
            match fetcher.as_mut() {
                Some(f) => f.tick(now, store.as_mut()),
                None => return,
            }
        };
        // No borrow is held across the host call: a host may answer a failed
        // call inline, re-entering this VM.
        for r in requests {
            let mut headers = vec![
                (":method", "GET"),
                (":path", r.path.as_str()),
                (":authority", r.authority.as_str()),
                (":scheme", r.scheme),
                ("accept", r.accept),
            ];
            if let Some(tag) = &r.if_none_match {
                headers.push(("if-none-match", tag.as_str()));
            }
            let result = self.dispatch(&r.cluster, headers, r.timeout_ms);
            let mut guard = rt.borrow_mut();
            let Runtime { fetcher, store, .. } = &mut *guard;
            if let Some(f) = fetcher.as_mut() {
                match result {
                    Ok(call) => f.started(r.slot, call, now),
                    Err(why) => events.extend(f.refused(r.slot, now, &why, store.as_mut())),
                }
            }
        }
        for e in &events {
            rt.borrow().report(e);
        }
        release_waiters(&rt, now);
    }

    fn dispatch(
        &self,
        cluster: &str,
        headers: Vec<(&str, &str)>,
        timeout_ms: u64,
    ) -> Result<u32, String> {
        self.dispatch_http_call(
            cluster,
            headers,
            None,
            vec![],
            Duration::from_millis(timeout_ms),
        )
        .map_err(|s| format!("{s:?} (is \"{cluster}\" a cluster of this gateway?)"))
    }
}

/// Re-decides every waiting request whose provider's keys changed, and
/// answers 503 to those that waited too long.
fn release_waiters(rt: &Rc<RefCell<Runtime>>, now: u64) {
    let ready: Vec<Waiter> = {
        let mut r = rt.borrow_mut();
        let Runtime {
            waiters, fetcher, ..
        } = &mut *r;
        let gen = |d: Document| fetcher.as_ref().map_or(0, |f| f.generation(d));
        let (go, stay): (Vec<Waiter>, Vec<Waiter>) = std::mem::take(waiters)
            .into_iter()
            .partition(|w| gen(w.doc) != w.generation || now >= w.deadline_ms);
        *waiters = stay;
        go
    };
    for w in ready {
        if hostcalls::set_effective_context(w.context_id).is_err() {
            continue; // the request is gone
        }
        let timed_out = now >= w.deadline_ms;
        let step = {
            let r = rt.borrow();
            match (&r.loaded, timed_out) {
                (Loaded::Ready(cfg), true) if !r.available(w.doc) => {
                    let mut host = WasmHost {
                        kind: r.kind,
                        metrics: &r.metrics,
                        response_headers: Vec::new(),
                    };
                    adapter::unavailable(
                        cfg,
                        &mut host,
                        w.doc,
                        "nothing arrived within the fetch timeout",
                    )
                }
                _ => {
                    let mut host = WasmHost {
                        kind: r.kind,
                        metrics: &r.metrics,
                        response_headers: Vec::new(),
                    };
                    let step = decide(&r, &mut host, now);
                    r.hold_response_headers(w.context_id, host.response_headers);
                    step
                }
            }
        };
        finish(rt, step, w.context_id, now, true);
    }
}

/// One decision for the request of the effective context.
fn decide(r: &Runtime, host: &mut WasmHost<'_>, now_ms: u64) -> Step {
    let mut limits = r.limits.try_borrow_mut().ok();
    let limits = limits.as_mut().and_then(|l| l.as_mut());
    let mut inventory = r.inventory.try_borrow_mut().ok();
    let inventory = inventory.as_mut().and_then(|i| i.as_mut());
    let mut audit_budget = r.audit_budget.try_borrow_mut().ok();
    let audit_budget = audit_budget.as_mut().and_then(|b| b.as_mut());
    let Ok(mut cache) = r.cache.try_borrow_mut() else {
        let worker = Worker {
            cache: None,
            limits,
            inventory,
            audit_budget,
        };
        return adapter::on_request_headers(&r.loaded, &r.keys(), worker, host, now_ms);
    };
    let (hits, misses) = (cache.hits, cache.misses);
    let worker = Worker {
        cache: Some(&mut cache),
        limits,
        inventory,
        audit_budget,
    };
    let step = adapter::on_request_headers(&r.loaded, &r.keys(), worker, host, now_ms);
    if cache.hits > hits {
        r.metrics.cache(true);
    } else if cache.misses > misses {
        r.metrics.cache(false);
    }
    step
}

/// Acts on a step: resume, hold, or nothing (a response was sent).
fn finish(
    rt: &Rc<RefCell<Runtime>>,
    step: Step,
    context_id: u32,
    now: u64,
    resumed: bool,
) -> Action {
    match step {
        Step::Continue => {
            if resumed {
                let _ = hostcalls::resume_http_request();
            }
            Action::Continue
        }
        Step::Responded => Action::Pause,
        Step::Wait(doc) => {
            let mut r = rt.borrow_mut();
            let (generation, timeout_ms) = match (&r.fetcher, &r.loaded) {
                (Some(f), Loaded::Ready(cfg)) => (f.generation(doc), fetch_timeout_ms(cfg, doc)),
                _ => (0, 0),
            };
            if let (Some(f), Document::Keys(provider)) = (r.fetcher.as_mut(), doc) {
                if matches!(f.keys(provider), Keys::Ready(_)) {
                    f.kid_miss(provider);
                }
            }
            r.waiters.push(Waiter {
                context_id,
                doc,
                generation,
                deadline_ms: now.saturating_add(timeout_ms).saturating_add(2 * TICK_MS),
            });
            Action::Pause
        }
    }
}

impl Context for Root {
    fn on_http_call_response(
        &mut self,
        token_id: u32,
        _num_headers: usize,
        body_size: usize,
        _num_trailers: usize,
    ) {
        let Some(rt) = self.runtime.clone() else {
            return;
        };
        let now = now_ms();
        // Bytes, not strings, and decoded without panics: the issuer's
        // response is untrusted input.
        let block = hostcall::header_map(MapType::HttpCallResponseHeaders).unwrap_or_default();
        let headers = block.decode().unwrap_or_default();
        let header = |name: &str| {
            headers
                .iter()
                .find(|(k, _)| k.eq_ignore_ascii_case(name))
                .map(|(_, v)| v.to_string())
        };
        let status = header(":status").and_then(|s| s.parse::<u16>().ok());
        let cache_control = header("cache-control");
        let etag = header("etag");
        let body = if body_size > 0 {
            hostcall::buffer(BufferType::HttpCallResponseBody, 0, body_size).unwrap_or_default()
        } else {
            Vec::new()
        };
        let event = {
            let mut guard = rt.borrow_mut();
            let Runtime { fetcher, store, .. } = &mut *guard;
            fetcher.as_mut().and_then(|f| {
                f.completed(
                    token_id,
                    now,
                    Response {
                        status,
                        cache_control: cache_control.as_deref(),
                        etag: etag.as_deref(),
                        body: &body,
                    },
                    store.as_mut(),
                )
            })
        };
        if let Some(e) = event {
            rt.borrow().report(&e);
        }
        release_waiters(&rt, now);
    }
}

/// Tells Envoy the decision record is a `google.protobuf.Struct`, so its
/// fields are addressable (CEL: `filter_state['wasm.scopegate'].subject`);
/// undeclared, it would be opaque bytes. Once per root context, before any
/// request sets it; a second declaration (a new configuration) is refused by
/// Envoy and changes nothing, the type being the same.
fn declare_record(cfg: &config::Config) {
    if cfg.request_properties_form != config::PropertyForm::Struct
        || cfg.request_properties == config::Properties::NONE
    {
        return;
    }
    let args = record::struct_declaration(record::RECORD_KEY);
    if let Err(status) = hostcall::call_foreign_function("declare_property", &args) {
        if status != types::Status::BadArgument {
            log(
                LogLevel::Warn,
                &format!(
                    "declare_property failed ({status:?}): the access log sees wasm.scopegate as bytes; request_properties_form \"properties\" sets one string per fact instead"
                ),
            );
        }
    }
}

impl RootContext for Root {
    fn on_vm_start(&mut self, _size: usize) -> bool {
        let (kind, why) = detect_host();
        self.kind = kind;
        log(
            LogLevel::Info,
            &format!(
                "scopegate {} started: host {} ({why})",
                env!("CARGO_PKG_VERSION"),
                match kind {
                    HostKind::Envoy => "Envoy: all features",
                    HostKind::Portable =>
                        "portable (Kong-safe): no metrics, request properties or shared data; a bad configuration is answered 500 config_invalid",
                }
            ),
        );
        let mut id = [0u8; 8];
        let _ = ring::rand::SecureRandom::fill(&ring::rand::SystemRandom::new(), &mut id);
        self.worker = u64::from_le_bytes(id) ^ now_ms();
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
                if self.kind == HostKind::Envoy {
                    declare_record(&cfg);
                }
                self.install(Loaded::Ready(Rc::new(cfg)));
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
                        self.install(Loaded::Broken(Rc::new(lines)));
                        true
                    }
                }
            }
        }
    }

    fn on_tick(&mut self) {
        self.drive();
    }

    fn create_http_context(&self, context_id: u32) -> Option<Box<dyn HttpContext>> {
        // Never None: the SDK's dispatcher panics on it.
        Some(Box::new(Http {
            context_id,
            runtime: self.runtime.clone(),
        }))
    }

    fn get_type(&self) -> Option<ContextType> {
        Some(ContextType::HttpContext)
    }
}

struct Http {
    context_id: u32,
    runtime: Option<Rc<RefCell<Runtime>>>,
}

impl Context for Http {
    fn on_done(&mut self) -> bool {
        // try_: a stream can end inside a host call made while the runtime
        // is borrowed; its waiter entry is then already gone.
        if let Some(mut r) = self
            .runtime
            .as_ref()
            .and_then(|rt| rt.try_borrow_mut().ok())
        {
            r.waiters.retain(|w| w.context_id != self.context_id);
            let _ = r.take_response_headers(self.context_id);
        }
        true
    }
}

impl HttpContext for Http {
    fn on_http_response_headers(&mut self, _headers: usize, _end_of_stream: bool) -> Action {
        if let Some(r) = self.runtime.as_ref().and_then(|rt| rt.try_borrow().ok()) {
            for (name, value) in r.take_response_headers(self.context_id) {
                let _ = hostcall::add_header(MapType::HttpResponseHeaders, name, &value);
            }
        }
        Action::Continue
    }

    fn on_http_request_headers(&mut self, _headers: usize, _end_of_stream: bool) -> Action {
        let now = now_ms();
        let Some(rt) = &self.runtime else {
            // No configuration was ever applied: fail closed.
            let mut host = WasmHost {
                kind: HostKind::Portable,
                metrics: &Metrics::default(),
                response_headers: Vec::new(),
            };
            host.log(
                LogLevel::Error,
                "no configuration was ever applied: denying the request",
            );
            host.send_response(&crate::request::response::internal(Reason::ConfigInvalid));
            return Action::Pause;
        };
        let step = {
            let r = rt.borrow();
            let mut host = WasmHost {
                kind: r.kind,
                metrics: &r.metrics,
                response_headers: Vec::new(),
            };
            let step = decide(&r, &mut host, now);
            r.hold_response_headers(self.context_id, host.response_headers);
            step
        };
        finish(rt, step, self.context_id, now, false)
    }
}

struct WasmHost<'a> {
    kind: HostKind,
    metrics: &'a Metrics,
    /// Added to the upstream's response (rate-limit fields).
    response_headers: Vec<(&'static str, String)>,
}

impl Host for WasmHost<'_> {
    fn forwards_as_received(&self) -> bool {
        self.kind != HostKind::Envoy
    }

    fn raw_request_path(&mut self) -> Option<String> {
        if self.kind == HostKind::Envoy {
            return None;
        }
        // Kong's `:path` is nginx's decoded, normalized `$uri`; the target the
        // client sent (and nginx forwards) is `request.path`.
        hostcall::property(&["request", "path"]).and_then(|b| String::from_utf8(b).ok())
    }

    fn request_headers(&mut self) -> crate::host::wire::HeaderMap {
        // Bytes, not strings: the SDK's string variant panics on a header
        // value that is not UTF-8, and header values are attacker-controlled.
        hostcall::header_map(MapType::HttpRequestHeaders).unwrap_or_default()
    }

    fn remove_request_header(&mut self, name: &str) {
        if self.kind == HostKind::Envoy {
            let _ = hostcall::remove_header(MapType::HttpRequestHeaders, name);
        } else {
            // ngx_wasm_module only flags a removed header, and nginx's proxy
            // module still sends it; a replace overwrites the (single: two
            // tokens are refused) value in place.
            let _ = hostcall::set_header(MapType::HttpRequestHeaders, name, "");
        }
    }

    fn add_request_header(&mut self, name: &str, value: &str) {
        let _ = hostcall::add_header(MapType::HttpRequestHeaders, name, value);
    }

    fn set_path(&mut self, path: &str) {
        let _ = hostcall::set_header(MapType::HttpRequestHeaders, ":path", path);
        if self.kind == HostKind::Envoy {
            // Envoy >= 1.33 keeps the route chosen for the old path unless asked.
            let _ = hostcall::call_foreign_function("clear_route_cache", &[]);
        }
    }

    fn send_response(&mut self, r: &LocalResponse) {
        let headers: Vec<(&str, &str)> = r.headers.iter().map(|(k, v)| (*k, v.as_ref())).collect();
        let _ = hostcall::send_response(r.status, &headers, r.body.as_bytes());
    }

    fn set_property(&mut self, key: &str, value: &[u8]) {
        // Kong refuses unknown property keys with a status the SDK panics on.
        if self.kind == HostKind::Envoy {
            let _ = hostcall::set_property(key, value);
        }
    }

    fn count(&mut self, reason: Reason) {
        if let Some((_, id)) = self.metrics.requests.iter().find(|(r, _)| *r == reason) {
            let _ = hostcall::increment_metric(*id, 1);
        }
    }

    fn count_signal(&mut self, signal: Signal) {
        if let Some((_, id)) = self.metrics.signals.iter().find(|(s, _)| *s == signal) {
            let _ = hostcall::increment_metric(*id, 1);
        }
    }

    fn log(&mut self, level: LogLevel, message: &str) {
        log(level, message);
    }

    fn peer_certificate(&mut self) -> Option<crate::request::audit::PeerCertificate> {
        // Kong does not implement these properties (and logs an alert per read).
        if self.kind != HostKind::Envoy {
            return None;
        }
        let prop = |name: &str| {
            hostcall::property(&["connection", name])
                .map(|v| String::from_utf8_lossy(&v).into_owned())
                .filter(|v| !v.is_empty())
        };
        // `connection.mtls` is a 1-byte bool in Envoy.
        let mtls = hostcall::property(&["connection", "mtls"]);
        if mtls.as_deref() != Some(&[1u8][..]) {
            return None;
        }
        Some(crate::request::audit::PeerCertificate {
            subject: prop("subject_peer_certificate"),
            uri_sans: prop("uri_san_peer_certificate").into_iter().collect(),
            dns_sans: prop("dns_san_peer_certificate").into_iter().collect(),
        })
    }

    fn add_response_header(&mut self, name: &'static str, value: String) {
        self.response_headers.push((name, value));
    }

    fn client_certificate(&self) -> Box<dyn Fn() -> ClientCertificate> {
        let kind = self.kind;
        Box::new(move || match kind {
            HostKind::Envoy => ClientCertificate::from_hex_digest(
                &hostcall::property(&["connection", "sha256_peer_certificate_digest"])
                    .unwrap_or_default(),
            ),
            // Kong's host does not implement `connection.*`; nginx's variable
            // holds the certificate in PEM (empty without one).
            HostKind::Portable => ClientCertificate::from_pem(
                &hostcall::property(&["ngx", "ssl_client_raw_cert"]).unwrap_or_default(),
            ),
        })
    }

    fn source_address(&mut self) -> Option<String> {
        hostcall::property(&["source", "address"]).map(|v| String::from_utf8_lossy(&v).into_owned())
    }
}

/// 16 bytes the host's randomness (WASI `random_get`) seeded: std's hasher
/// keys come from it.
fn random_secret() -> [u8; 16] {
    use std::hash::{BuildHasher, Hasher};
    let mut out = [0u8; 16];
    for (i, chunk) in out.chunks_mut(8).enumerate() {
        let mut h = std::collections::hash_map::RandomState::new().build_hasher();
        h.write_usize(i);
        for (o, b) in chunk.iter_mut().zip(h.finish().to_le_bytes()) {
            *o = b;
        }
    }
    out
}
