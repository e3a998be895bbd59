//! Keys fetched from issuers: when to fetch, what to accept, and how the
//! gateway's workers share one fetch.
//!
//! Pure state machine: the host supplies the time, performs the HTTP calls it
//! is asked for, and provides a key/value store with compare-and-swap (Envoy's
//! shared data, visible to every worker's VM). One record per JWKS URI in that
//! store holds the fetch schedule and a lease: the worker that wins the lease
//! fetches, writes the document beside the record, and the others adopt it on
//! their next tick. Where the host has no shared data, a `LocalStore` per worker
//! gives the same behaviour with one fetch per worker.

use crate::identity::validate::{KeyStore, Keys};
use crate::jose::jwks::{self, KeySet};
use crate::policy::config::{Config, KeySource, RemoteDocument};
use serde_json::{json, Value};
use std::collections::HashMap;
use std::rc::Rc;

/// A `kid` unknown to the current key set may trigger a refresh, but only when
/// the keys are at least this old: a caller spraying random `kid`s costs the
/// issuer at most one fetch per provider per interval.
pub const KID_MISS_MIN_INTERVAL_MS: u64 = 30_000;
/// Floor for `Cache-Control: max-age`.
pub const MIN_REFRESH_MS: u64 = 10_000;
/// Largest key-set document accepted.
pub const MAX_DOC_BYTES: usize = 512 * 1024;
/// Time allowed past a call's own timeout before it is counted as lost (hosts
/// that do not report failed calls).
const LOST_CALL_GRACE_MS: u64 = 1_000;

/// Key/value store with compare-and-swap.
pub trait SharedStore {
    /// The value and its CAS token.
    fn get(&self, key: &str) -> Option<(Vec<u8>, u32)>;
    /// Writes when the CAS token still matches (`None`: unconditionally).
    /// False when another writer came first or the store refused.
    fn set(&mut self, key: &str, value: &[u8], cas: Option<u32>) -> bool;
}

/// A store private to one worker.
#[derive(Debug, Default)]
pub struct LocalStore {
    map: HashMap<String, (Vec<u8>, u32)>,
}

impl SharedStore for LocalStore {
    fn get(&self, key: &str) -> Option<(Vec<u8>, u32)> {
        self.map.get(key).cloned()
    }

    fn set(&mut self, key: &str, value: &[u8], cas: Option<u32>) -> bool {
        let current = self.map.get(key).map(|(_, c)| *c);
        if cas.is_some() && cas != current {
            return false;
        }
        let next = current.unwrap_or(0).wrapping_add(1).max(1);
        self.map.insert(key.to_string(), (value.to_vec(), next));
        true
    }
}

/// The shared record of one JWKS URI.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
struct Record {
    /// Bumped on each new document.
    seq: u64,
    fetched_ms: u64,
    refresh_at_ms: u64,
    lease_owner: u64,
    /// No worker other than the owner fetches before this time: an active
    /// fetch, or the back-off after a failure.
    lease_until_ms: u64,
    failures: u32,
}

impl Record {
    fn decode(bytes: &[u8]) -> Record {
        let v: Value = serde_json::from_slice(bytes).unwrap_or(Value::Null);
        let n = |k: &str| v.get(k).and_then(Value::as_u64).unwrap_or(0);
        Record {
            seq: n("seq"),
            fetched_ms: n("fetched_ms"),
            refresh_at_ms: n("refresh_at_ms"),
            lease_owner: n("lease_owner"),
            lease_until_ms: n("lease_until_ms"),
            failures: u32::try_from(n("failures")).unwrap_or(u32::MAX),
        }
    }

    fn encode(&self) -> Vec<u8> {
        json!({
            "seq": self.seq,
            "fetched_ms": self.fetched_ms,
            "refresh_at_ms": self.refresh_at_ms,
            "lease_owner": self.lease_owner,
            "lease_until_ms": self.lease_until_ms,
            "failures": self.failures,
        })
        .to_string()
        .into_bytes()
    }
}

/// An HTTP call the host should make.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FetchRequest {
    pub provider: usize,
    pub cluster: String,
    pub authority: String,
    pub path: String,
    pub scheme: &'static str,
    pub timeout_ms: u64,
}

/// What came back from a call; `status` is `None` when the host reports a
/// failure without a response (timeout, connection refused, reset).
#[derive(Clone, Copy, Debug)]
pub struct Response<'a> {
    pub status: Option<u16>,
    pub cache_control: Option<&'a str>,
    pub body: &'a [u8],
}

/// Something worth a counter and a log line.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Event {
    Fetched {
        provider: usize,
        keys: usize,
        skipped: Vec<String>,
    },
    FetchFailed {
        provider: usize,
        why: String,
    },
    /// Another worker's document was taken over.
    Adopted {
        provider: usize,
        keys: usize,
    },
}

#[derive(Debug)]
struct Slot {
    provider: usize,
    remote: RemoteDocument,
    keys: Option<Rc<KeySet>>,
    /// When the keys in force were fetched (by any worker).
    fetched_ms: u64,
    /// Bumped whenever waiting requests should decide again: a fetch ended
    /// (well or not), a document was adopted, or a kid-miss refresh was declined.
    generation: u64,
    seen_seq: u64,
    seen_failures: u32,
    in_flight: Option<(u32, u64)>,
    kid_miss: bool,
    last_error: Option<String>,
}

/// Fetch state of every provider whose keys come from a URI.
#[derive(Debug)]
pub struct Fetcher {
    slots: Vec<Slot>,
    worker: u64,
}

fn record_key(uri: &str) -> String {
    format!("scopegate.jwks|{uri}")
}

fn doc_key(uri: &str) -> String {
    format!("scopegate.jwks.doc|{uri}")
}

impl Fetcher {
    /// `worker` identifies this VM in leases; any value unique per worker.
    pub fn new(cfg: &Config, worker: u64) -> Self {
        let slots = cfg
            .providers
            .iter()
            .enumerate()
            .filter_map(|(provider, p)| match &p.keys {
                KeySource::Remote(r) => Some(Slot {
                    provider,
                    remote: r.clone(),
                    keys: None,
                    fetched_ms: 0,
                    generation: 0,
                    seen_seq: 0,
                    seen_failures: 0,
                    in_flight: None,
                    kid_miss: false,
                    last_error: None,
                }),
                KeySource::Inline(_) => None,
            })
            .collect();
        Fetcher {
            slots,
            worker: worker.max(1),
        }
    }

    pub fn has_remote(&self) -> bool {
        !self.slots.is_empty()
    }

    fn slot_mut(&mut self, provider: usize) -> Option<&mut Slot> {
        self.slots.iter_mut().find(|s| s.provider == provider)
    }

    /// Adopts documents other workers fetched and starts the fetches that are
    /// due. Call periodically and after `kid_miss`.
    pub fn tick(
        &mut self,
        now: u64,
        store: &mut dyn SharedStore,
    ) -> (Vec<FetchRequest>, Vec<Event>) {
        let mut requests = Vec::new();
        let mut events = Vec::new();
        let worker = self.worker;
        for slot in &mut self.slots {
            let key = record_key(&slot.remote.uri);
            let Some((mut rec, cas)) = read_or_create(store, &key) else {
                continue;
            };
            if rec.seq > slot.seen_seq {
                slot.seen_seq = rec.seq;
                if let Some(set) = store
                    .get(&doc_key(&slot.remote.uri))
                    .and_then(|(doc, _)| accept(&doc).ok())
                {
                    events.push(Event::Adopted {
                        provider: slot.provider,
                        keys: set.0.len(),
                    });
                    slot.keys = Some(Rc::new(set.0));
                    slot.fetched_ms = rec.fetched_ms;
                    slot.last_error = None;
                    slot.generation += 1;
                }
            }
            if rec.failures > slot.seen_failures && slot.keys.is_none() && slot.in_flight.is_none()
            {
                // Another worker's attempt failed: requests waiting here learn it too.
                slot.last_error = Some("the last fetch of this key set failed".into());
                slot.generation += 1;
            }
            slot.seen_failures = rec.failures;
            if let Some((_, deadline)) = slot.in_flight {
                if now < deadline.saturating_add(LOST_CALL_GRACE_MS) {
                    continue;
                }
                slot.in_flight = None;
                events.push(fail(
                    slot,
                    worker,
                    now,
                    "no answer within the timeout".into(),
                    store,
                ));
                continue;
            }
            let mut record_changed = false;
            if std::mem::take(&mut slot.kid_miss) {
                if slot.keys.is_some()
                    && now >= rec.fetched_ms.saturating_add(KID_MISS_MIN_INTERVAL_MS)
                {
                    rec.refresh_at_ms = rec.refresh_at_ms.min(now);
                    record_changed = true;
                } else {
                    // Fetched recently (perhaps by another worker): no refresh,
                    // so the waiting requests decide with the keys there are.
                    slot.generation += 1;
                }
            }
            let due = slot.keys.is_none() || now >= rec.refresh_at_ms;
            let lease_free = rec.lease_until_ms <= now;
            if due && lease_free {
                rec.lease_owner = worker;
                rec.lease_until_ms = now
                    .saturating_add(slot.remote.timeout_ms)
                    .saturating_add(LOST_CALL_GRACE_MS);
                if store.set(&key, &rec.encode(), cas) {
                    requests.push(FetchRequest {
                        provider: slot.provider,
                        cluster: slot.remote.cluster.clone(),
                        authority: slot.remote.authority.clone(),
                        path: slot.remote.path.clone(),
                        scheme: if slot.remote.uri.starts_with("https:") {
                            "https"
                        } else {
                            "http"
                        },
                        timeout_ms: slot.remote.timeout_ms,
                    });
                    // Marked in flight by `started` once the host accepted the call.
                }
            } else if record_changed {
                // Lost races are fine: another worker moved the record on.
                let _ = store.set(&key, &rec.encode(), cas);
            }
        }
        (requests, events)
    }

    /// Creates the shared records that do not exist yet. Call when a
    /// configuration is installed, before the first tick: every worker does
    /// so at about the same time, so later lease writes can all be CAS writes.
    pub fn prepare(&self, store: &mut dyn SharedStore) {
        for slot in &self.slots {
            let key = record_key(&slot.remote.uri);
            if store.get(&key).is_none() {
                store.set(&key, &Record::default().encode(), None);
            }
        }
    }

    /// The host accepted the call for `provider` with this call id.
    pub fn started(&mut self, provider: usize, call: u32, now: u64) {
        if let Some(slot) = self.slot_mut(provider) {
            slot.in_flight = Some((call, now.saturating_add(slot.remote.timeout_ms)));
        }
    }

    /// The host refused to make the call (e.g. an unknown cluster).
    pub fn refused(
        &mut self,
        provider: usize,
        now: u64,
        why: &str,
        store: &mut dyn SharedStore,
    ) -> Option<Event> {
        let worker = self.worker;
        let slot = self.slot_mut(provider)?;
        slot.in_flight = None;
        Some(fail(
            slot,
            worker,
            now,
            format!("the gateway refused the call: {why}"),
            store,
        ))
    }

    /// A call's outcome. Unknown call ids (a previous configuration's) are ignored.
    pub fn completed(
        &mut self,
        call: u32,
        now: u64,
        r: Response<'_>,
        store: &mut dyn SharedStore,
    ) -> Option<Event> {
        let worker = self.worker;
        let slot = self
            .slots
            .iter_mut()
            .find(|s| s.in_flight.is_some_and(|(c, _)| c == call))?;
        slot.in_flight = None;
        let outcome = match r.status {
            None => Err("no response (timeout, refused or reset connection)".to_string()),
            Some(200) => accept(r.body),
            // Envoy answers its own timeout as a 504 with this body.
            Some(504) if r.body.starts_with(b"upstream request timeout") => Err(format!(
                "no answer within timeout_ms ({} ms)",
                slot.remote.timeout_ms
            )),
            Some(s) => Err(format!("HTTP status {s}")),
        };
        match outcome {
            Err(why) => Some(fail(slot, worker, now, why, store)),
            Ok((set, skipped)) => {
                let interval = refresh_ms(slot.remote.refresh_interval_s, r.cache_control);
                let key = record_key(&slot.remote.uri);
                store.set(&doc_key(&slot.remote.uri), r.body, None);
                let mut seq = slot.seen_seq;
                for _ in 0..4 {
                    let (mut rec, cas) = read(store, &key);
                    rec.seq = rec.seq.max(slot.seen_seq).saturating_add(1);
                    rec.fetched_ms = now;
                    rec.refresh_at_ms = now.saturating_add(interval);
                    rec.failures = 0;
                    rec.lease_until_ms = 0;
                    if store.set(&key, &rec.encode(), cas) {
                        seq = rec.seq;
                        break;
                    }
                }
                slot.seen_seq = seq;
                let keys = set.len();
                slot.keys = Some(Rc::new(set));
                slot.fetched_ms = now;
                slot.generation += 1;
                slot.last_error = None;
                Some(Event::Fetched {
                    provider: slot.provider,
                    keys,
                    skipped,
                })
            }
        }
    }

    /// A token named a `kid` the provider's keys lack: refresh early, rate-limited.
    pub fn kid_miss(&mut self, provider: usize) {
        if let Some(slot) = self.slot_mut(provider) {
            slot.kid_miss = true;
        }
    }

    /// Changes whenever requests waiting on this provider should decide again.
    pub fn generation(&self, provider: usize) -> u64 {
        self.slots
            .iter()
            .find(|s| s.provider == provider)
            .map_or(0, |s| s.generation)
    }

    /// Why a provider has no keys, if it has none and no fetch is pending.
    pub fn last_error(&self, provider: usize) -> Option<&str> {
        self.slots
            .iter()
            .find(|s| s.provider == provider)
            .and_then(|s| s.last_error.as_deref())
    }
}

impl KeyStore for Fetcher {
    fn keys(&self, provider: usize) -> Keys {
        match self.slots.iter().find(|s| s.provider == provider) {
            None => Keys::Unavailable("provider has no remote key set".into()),
            Some(s) => match (&s.keys, &s.last_error) {
                (Some(k), _) => Keys::Ready(Rc::clone(k)),
                // The last attempt failed and none is under way: fail fast.
                (None, Some(why)) if s.in_flight.is_none() => Keys::Unavailable(why.clone()),
                (None, _) => Keys::Pending,
            },
        }
    }

    fn refresh_for_unknown_kid(&self, provider: usize, now: u64) -> bool {
        self.slots.iter().any(|s| {
            s.provider == provider
                && s.keys.is_some()
                && now.saturating_mul(1000) >= s.fetched_ms.saturating_add(KID_MISS_MIN_INTERVAL_MS)
        })
    }
}

/// The record and its CAS token. A store cannot compare-and-swap on absence,
/// so a missing record is first created empty (identical from any worker),
/// and only CAS writes follow.
fn read_or_create(store: &mut dyn SharedStore, key: &str) -> Option<(Record, Option<u32>)> {
    if store.get(key).is_none() {
        store.set(key, &Record::default().encode(), None);
    }
    store
        .get(key)
        .map(|(bytes, cas)| (Record::decode(&bytes), Some(cas)))
}

fn read(store: &dyn SharedStore, key: &str) -> (Record, Option<u32>) {
    match store.get(key) {
        Some((bytes, cas)) => (Record::decode(&bytes), Some(cas)),
        None => (Record::default(), None),
    }
}

/// Records a failure: the last good keys stay; the lease becomes a back-off.
fn fail(slot: &mut Slot, worker: u64, now: u64, why: String, store: &mut dyn SharedStore) -> Event {
    slot.last_error = Some(why.clone());
    slot.generation += 1;
    let key = record_key(&slot.remote.uri);
    let has_keys = slot.keys.is_some();
    for _ in 0..4 {
        let (mut rec, cas) = read(store, &key);
        rec.failures = rec.failures.saturating_add(1);
        rec.lease_owner = worker;
        rec.lease_until_ms = now.saturating_add(backoff_ms(
            rec.failures,
            has_keys,
            slot.remote.refresh_interval_s,
        ));
        if store.set(&key, &rec.encode(), cas) {
            slot.seen_failures = rec.failures;
            break;
        }
    }
    Event::FetchFailed {
        provider: slot.provider,
        why,
    }
}

/// A fetched document becomes the key set only if it is a valid JWK Set with
/// at least one usable key; otherwise the last good keys stay in force.
fn accept(body: &[u8]) -> Result<(KeySet, Vec<String>), String> {
    if body.len() > MAX_DOC_BYTES {
        return Err(format!(
            "document is {} bytes; the limit is {MAX_DOC_BYTES}",
            body.len()
        ));
    }
    let (set, issues) = jwks::parse_text(body).map_err(|e| format!("not a JWK Set: {e}"))?;
    if set.is_empty() {
        return Err(format!(
            "no usable signing key in the document{}",
            issues
                .first()
                .map(|i| format!(" ({i})"))
                .unwrap_or_default()
        ));
    }
    Ok((set, issues.iter().map(ToString::to_string).collect()))
}

/// Refresh interval: the configured one, or a shorter `max-age`, not below 10 s.
pub fn refresh_ms(interval_s: u64, cache_control: Option<&str>) -> u64 {
    let configured = interval_s.saturating_mul(1000);
    let max_age = cache_control.and_then(|cc| {
        cc.split(',').find_map(|d| {
            let (k, v) = d.trim().split_once('=')?;
            k.trim()
                .eq_ignore_ascii_case("max-age")
                .then(|| v.trim().trim_matches('"').parse::<u64>().ok())
                .flatten()
        })
    });
    match max_age {
        Some(s) => s
            .saturating_mul(1000)
            .clamp(MIN_REFRESH_MS, configured.max(MIN_REFRESH_MS)),
        None => configured,
    }
}

/// Exponential back-off from 1 s: up to 30 s while no keys are known (the
/// gateway is answering 503), up to the refresh interval (at most 5 min) otherwise.
pub fn backoff_ms(failures: u32, has_keys: bool, interval_s: u64) -> u64 {
    let cap = if has_keys {
        interval_s.saturating_mul(1000).min(300_000)
    } else {
        30_000
    };
    1000u64
        .saturating_mul(1u64 << failures.saturating_sub(1).min(20))
        .min(cap)
}
