//! Documents fetched through the gateway (issuers' key sets, the identity
//! registry): when to fetch, what to accept, and how the gateway's workers
//! share one fetch.
//!
//! Pure state machine: the host supplies the time, performs the HTTP calls it
//! is asked for, and provides a key/value store with compare-and-swap (Envoy's
//! shared data, visible to every worker's VM). One record per document URI in
//! that store holds the fetch schedule, a lease and the document's `ETag`: the
//! worker that wins the lease fetches (with `If-None-Match`), writes the
//! document beside the record, and the others adopt it on their next tick.
//! Where the host has no shared data, a `LocalStore` per worker gives the same
//! behaviour with one fetch per worker.

use crate::identity::validate::{Availability, Document, KeyStore, Keys};
use crate::jose::jwks::{self, KeySet};
use crate::jose::statuslist::{self, StatusList};
use crate::policy::config::StatusListPolicy;
use crate::policy::config::{
    self, Config, KeySource, RegistrySource, RemoteDocument, RevocationSource,
};
use crate::policy::registry::Registry;
use crate::policy::revocation::RevocationList;
use crate::vocab::alg::AlgSet;
use serde_json::{json, Value};
use std::cell::RefCell;
use std::rc::Rc;

/// A `kid` unknown to the current key set may trigger a refresh, but only when
/// the keys are at least this old: a caller spraying random `kid`s costs the
/// issuer at most one fetch per provider per interval.
pub const KID_MISS_MIN_INTERVAL_MS: u64 = 30_000;
/// Floor for `Cache-Control: max-age`.
pub const MIN_REFRESH_MS: u64 = 10_000;
/// Largest key-set document accepted.
pub const MAX_DOC_BYTES: usize = 512 * 1024;
/// Largest registry document accepted (100,000 identities take about 15 MiB).
pub const MAX_REGISTRY_BYTES: usize = 64 * 1024 * 1024;
/// Time allowed past a call's own timeout before it is counted as lost (hosts
/// that do not report failed calls).
const LOST_CALL_GRACE_MS: u64 = 1_000;

/// A store private to one worker (hosts without shared data).
pub use crate::identity::shared::MemoryStore as LocalStore;
pub use crate::identity::shared::SharedStore;

/// The shared record of one document URI.
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
    /// The `ETag` of the document in force ("" when it had none).
    etag: String,
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
            etag: v
                .get("etag")
                .and_then(Value::as_str)
                .unwrap_or("")
                .to_string(),
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
            "etag": self.etag,
        })
        .to_string()
        .into_bytes()
    }
}

/// An HTTP call the host should make.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FetchRequest {
    /// Which of the fetcher's documents: give it back to `started`/`refused`.
    pub slot: usize,
    /// The `accept` header: the document's media type.
    pub accept: &'static str,
    pub doc: Document,
    pub cluster: String,
    pub authority: String,
    pub path: String,
    pub scheme: &'static str,
    pub timeout_ms: u64,
    /// The `ETag` of the document in force: send as `If-None-Match`.
    pub if_none_match: Option<String>,
}

/// What came back from a call; `status` is `None` when the host reports a
/// failure without a response (timeout, connection refused, reset).
#[derive(Clone, Copy, Debug)]
pub struct Response<'a> {
    pub status: Option<u16>,
    pub cache_control: Option<&'a str>,
    pub etag: Option<&'a str>,
    pub body: &'a [u8],
}

/// Something worth a counter and a log line.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Event {
    Fetched {
        doc: Document,
        /// What it holds, for the log ("3 usable key(s)", "120 identities").
        summary: String,
        skipped: Vec<String>,
    },
    /// The source answered 304: the document in force is current.
    NotModified { doc: Document },
    FetchFailed {
        doc: Document,
        why: String,
        /// A previous document stays in force.
        kept: bool,
    },
    /// Another worker's document was taken over.
    Adopted { doc: Document, summary: String },
}

/// A document in force.
#[derive(Debug, Clone)]
enum Held {
    Keys(Rc<KeySet>),
    Registry(Rc<Registry>),
    Revocation(Rc<RevocationList>),
    Status(Rc<StatusList>),
}

/// Each provider's keys, algorithms and skew, and the time, for verifying a
/// fetched status list.
struct Verifying {
    keys: Vec<Option<Rc<KeySet>>>,
    checks: Vec<(AlgSet, u64)>,
    now_s: u64,
}

#[derive(Debug)]
struct Slot {
    doc: Document,
    remote: RemoteDocument,
    held: Option<Held>,
    etag: Option<String>,
    /// When the document in force was fetched (by any worker).
    fetched_ms: u64,
    /// Bumped whenever waiting requests should decide again: a fetch ended
    /// (well or not), a document was adopted, or a kid-miss refresh was declined.
    generation: u64,
    seen_seq: u64,
    seen_failures: u32,
    in_flight: Option<(u32, u64)>,
    kid_miss: bool,
    last_error: Option<String>,
    /// Status lists: the provider whose keys sign it (the first token's).
    provider: usize,
}

/// Status lists followed at once, at most: tokens choose the uri, so an
/// attacker must not be able to make the gateway track arbitrarily many.
pub const MAX_STATUS_LISTS: usize = 64;

/// Fetch state of every document fetched from a URI.
#[derive(Debug)]
pub struct Fetcher {
    slots: Vec<Slot>,
    worker: u64,
    /// Provider names, which a registry document refers to.
    providers: Vec<String>,
    /// What verifies a status list: each provider's inline keys (remote ones
    /// are in `slots`), allowed algorithms and clock skew.
    inline_keys: Vec<Option<Rc<KeySet>>>,
    checks: Vec<(AlgSet, u64)>,
    status: Option<StatusListPolicy>,
    /// Status lists asked for by requests since the last tick.
    wanted: RefCell<Vec<(String, usize)>>,
}

fn kind(doc: Document) -> &'static str {
    match doc {
        Document::Keys(_) => "jwks",
        Document::Registry => "registry",
        Document::Revocation => "revocation",
        Document::StatusList => "statuslist",
    }
}

fn record_key(doc: Document, uri: &str) -> String {
    format!("scopegate.{}|{uri}", kind(doc))
}

fn doc_key(doc: Document, uri: &str) -> String {
    format!("scopegate.{}.doc|{uri}", kind(doc))
}

fn slot(doc: Document, remote: &RemoteDocument) -> Slot {
    Slot {
        doc,
        remote: remote.clone(),
        held: None,
        etag: None,
        fetched_ms: 0,
        generation: 0,
        seen_seq: 0,
        seen_failures: 0,
        in_flight: None,
        kid_miss: false,
        last_error: None,
        provider: 0,
    }
}

impl Fetcher {
    /// `worker` identifies this VM in leases; any value unique per worker.
    pub fn new(cfg: &Config, worker: u64) -> Self {
        let mut slots: Vec<Slot> = cfg
            .providers
            .iter()
            .enumerate()
            .filter_map(|(provider, p)| match &p.keys {
                KeySource::Remote(r) => Some(slot(Document::Keys(provider), r)),
                KeySource::Inline(_) => None,
            })
            .collect();
        if let Some(RegistrySource::Remote(r)) = cfg.identities.as_ref().map(|i| &i.registry) {
            slots.push(slot(Document::Registry, r));
        }
        if let Some(RevocationSource::Remote(r)) =
            cfg.revocation.as_ref().and_then(|r| r.list.as_ref())
        {
            slots.push(slot(Document::Revocation, r));
        }
        Fetcher {
            slots,
            worker: worker.max(1),
            providers: cfg.providers.iter().map(|p| p.name.clone()).collect(),
            inline_keys: cfg
                .providers
                .iter()
                .map(|p| match &p.keys {
                    KeySource::Inline(k) => Some(Rc::clone(k)),
                    KeySource::Remote(_) => None,
                })
                .collect(),
            checks: cfg
                .providers
                .iter()
                .map(|p| (p.algorithms, p.clock_skew_s))
                .collect(),
            status: cfg.revocation.as_ref().and_then(|r| r.status_list.clone()),
            wanted: RefCell::new(Vec::new()),
        }
    }

    pub fn has_remote(&self) -> bool {
        !self.slots.is_empty() || self.status.is_some()
    }

    /// Slots for the status lists requests asked for, within the bound.
    fn add_wanted(&mut self) {
        let Some(policy) = &self.status else {
            return;
        };
        for (uri, provider) in self.wanted.borrow_mut().drain(..) {
            let known = self
                .slots
                .iter()
                .any(|s| s.doc == Document::StatusList && s.remote.uri == uri);
            let count = self
                .slots
                .iter()
                .filter(|s| s.doc == Document::StatusList)
                .count();
            if known || count >= MAX_STATUS_LISTS {
                continue;
            }
            let Some((authority, path)) = config::split_uri(&uri) else {
                continue;
            };
            let remote = RemoteDocument {
                cluster: policy.cluster.clone().unwrap_or_else(|| authority.clone()),
                uri,
                authority,
                path,
                refresh_interval_s: policy.max_cache_s,
                timeout_ms: policy.timeout_ms,
            };
            let mut s = slot(Document::StatusList, &remote);
            s.provider = provider;
            self.slots.push(s);
        }
    }

    /// The keys that verify a status list signed by `provider`.
    fn provider_keys(&self, provider: usize) -> Option<Rc<KeySet>> {
        if let Some(Some(k)) = self.inline_keys.get(provider) {
            return Some(Rc::clone(k));
        }
        match self.slot(Document::Keys(provider))?.held.as_ref()? {
            Held::Keys(k) => Some(Rc::clone(k)),
            _ => None,
        }
    }

    fn slot_mut(&mut self, doc: Document) -> Option<&mut Slot> {
        self.slots.iter_mut().find(|s| s.doc == doc)
    }

    fn slot(&self, doc: Document) -> Option<&Slot> {
        self.slots.iter().find(|s| s.doc == doc)
    }

    /// Adopts documents other workers fetched and starts the fetches that are
    /// due. Call periodically and after `kid_miss`.
    pub fn tick(
        &mut self,
        now: u64,
        store: &mut dyn SharedStore,
    ) -> (Vec<FetchRequest>, Vec<Event>) {
        self.add_wanted();
        let mut requests = Vec::new();
        let mut events = Vec::new();
        let worker = self.worker;
        let names: Vec<&str> = self.providers.iter().map(String::as_str).collect();
        let ctx = self.verifying(now);
        for (index, slot) in self.slots.iter_mut().enumerate() {
            let key = record_key(slot.doc, &slot.remote.uri);
            let Some((mut rec, cas)) = read_or_create(store, &key) else {
                continue;
            };
            if rec.seq > slot.seen_seq {
                slot.seen_seq = rec.seq;
                if let Some((held, summary, _)) = store
                    .get(&doc_key(slot.doc, &slot.remote.uri))
                    .and_then(|(doc, _)| accept(slot, &doc, &names, &ctx).ok())
                {
                    events.push(Event::Adopted {
                        doc: slot.doc,
                        summary,
                    });
                    slot.held = Some(held);
                    slot.etag = (!rec.etag.is_empty()).then(|| rec.etag.clone());
                    slot.fetched_ms = rec.fetched_ms;
                    slot.last_error = None;
                    slot.generation += 1;
                }
            }
            if rec.failures > slot.seen_failures && slot.held.is_none() && slot.in_flight.is_none()
            {
                // Another worker's attempt failed: requests waiting here learn it too.
                slot.last_error = Some("the last fetch of this document failed".into());
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
                if slot.held.is_some()
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
            let due = slot.held.is_none() || now >= rec.refresh_at_ms;
            let lease_free = rec.lease_until_ms <= now;
            if due && lease_free {
                rec.lease_owner = worker;
                rec.lease_until_ms = now
                    .saturating_add(slot.remote.timeout_ms)
                    .saturating_add(LOST_CALL_GRACE_MS);
                if store.set(&key, &rec.encode(), cas.unwrap_or(0)).is_ok() {
                    requests.push(FetchRequest {
                        slot: index,
                        accept: match slot.doc {
                            Document::StatusList => "application/statuslist+jwt",
                            _ => "application/json",
                        },
                        doc: slot.doc,
                        cluster: slot.remote.cluster.clone(),
                        authority: slot.remote.authority.clone(),
                        path: slot.remote.path.clone(),
                        scheme: if slot.remote.uri.starts_with("https:") {
                            "https"
                        } else {
                            "http"
                        },
                        timeout_ms: slot.remote.timeout_ms,
                        if_none_match: slot.held.as_ref().and(slot.etag.clone()),
                    });
                    // Marked in flight by `started` once the host accepted the call.
                }
            } else if record_changed {
                // Lost races are fine: another worker moved the record on.
                let _ = store.set(&key, &rec.encode(), cas.unwrap_or(0));
            }
        }
        (requests, events)
    }

    /// Creates the shared records that do not exist yet. Call when a
    /// configuration is installed, before the first tick: every worker does
    /// so at about the same time, so later lease writes can all be CAS writes.
    pub fn prepare(&self, store: &mut dyn SharedStore) {
        for slot in &self.slots {
            let key = record_key(slot.doc, &slot.remote.uri);
            if store.get(&key).is_none() {
                let _ = store.set(&key, &Record::default().encode(), 0);
            }
        }
    }

    /// The host accepted the call of `FetchRequest::slot` with this call id.
    pub fn started(&mut self, slot: usize, call: u32, now: u64) {
        if let Some(slot) = self.slots.get_mut(slot) {
            slot.in_flight = Some((call, now.saturating_add(slot.remote.timeout_ms)));
        }
    }

    /// The host refused to make the call (e.g. an unknown cluster).
    pub fn refused(
        &mut self,
        slot: usize,
        now: u64,
        why: &str,
        store: &mut dyn SharedStore,
    ) -> Option<Event> {
        let worker = self.worker;
        let slot = self.slots.get_mut(slot)?;
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
        let names: Vec<&str> = self.providers.iter().map(String::as_str).collect();
        let ctx = self.verifying(now);
        let slot = self
            .slots
            .iter_mut()
            .find(|s| s.in_flight.is_some_and(|(c, _)| c == call))?;
        slot.in_flight = None;
        let outcome = match r.status {
            None => Err("no response (timeout, refused or reset connection)".to_string()),
            Some(200) => accept(slot, r.body, &names, &ctx).map(Some),
            Some(304) if slot.held.is_some() => Ok(None),
            Some(304) => Err("HTTP 304 for a document this worker does not have".to_string()),
            // Envoy answers its own timeout as a 504 with this body.
            Some(504) if r.body.starts_with(b"upstream request timeout") => Err(format!(
                "no answer within timeout_ms ({} ms)",
                slot.remote.timeout_ms
            )),
            Some(s) => Err(format!("HTTP status {s}")),
        };
        let fresh = match outcome {
            Err(why) => return Some(fail(slot, worker, now, why, store)),
            Ok(fresh) => fresh,
        };
        // The document in force once this answer is taken: the fresh one, or
        // on a 304 the one held.
        let in_force = fresh.as_ref().map(|(h, _, _)| h).or(slot.held.as_ref());
        let interval = match in_force {
            // A status list says how long it may be cached (`ttl`), capped by max_cache_s.
            Some(Held::Status(list)) => list
                .ttl
                .unwrap_or(slot.remote.refresh_interval_s)
                .clamp(1, slot.remote.refresh_interval_s.max(1))
                .saturating_mul(1000),
            _ => refresh_ms(slot.remote.refresh_interval_s, r.cache_control),
        };
        let key = record_key(slot.doc, &slot.remote.uri);
        if fresh.is_some() {
            let _ = store.set(&doc_key(slot.doc, &slot.remote.uri), r.body, 0);
        }
        let mut seq = slot.seen_seq;
        for _ in 0..4 {
            let (mut rec, cas) = read(store, &key);
            if fresh.is_some() {
                rec.seq = rec.seq.max(slot.seen_seq).saturating_add(1);
                rec.etag = r.etag.unwrap_or("").to_string();
            }
            rec.fetched_ms = now;
            rec.refresh_at_ms = now.saturating_add(interval);
            rec.failures = 0;
            rec.lease_until_ms = 0;
            if store.set(&key, &rec.encode(), cas.unwrap_or(0)).is_ok() {
                seq = rec.seq;
                break;
            }
        }
        slot.seen_seq = seq;
        slot.fetched_ms = now;
        slot.generation += 1;
        slot.last_error = None;
        Some(match fresh {
            None => Event::NotModified { doc: slot.doc },
            Some((held, summary, skipped)) => {
                slot.held = Some(held);
                slot.etag = r.etag.map(str::to_string);
                Event::Fetched {
                    doc: slot.doc,
                    summary,
                    skipped,
                }
            }
        })
    }

    /// A token named a `kid` the provider's keys lack: refresh early, rate-limited.
    pub fn kid_miss(&mut self, provider: usize) {
        if let Some(slot) = self.slot_mut(Document::Keys(provider)) {
            slot.kid_miss = true;
        }
    }

    /// Changes whenever requests waiting on this document should decide again
    /// (for status lists: on any change of any of them).
    pub fn generation(&self, doc: Document) -> u64 {
        match doc {
            Document::StatusList => self
                .slots
                .iter()
                .filter(|s| s.doc == Document::StatusList)
                .fold(0u64, |acc, s| acc.wrapping_add(s.generation)),
            _ => self.slot(doc).map_or(0, |s| s.generation),
        }
    }

    /// What `accept` needs to verify status lists, now.
    fn verifying(&self, now_ms: u64) -> Verifying {
        Verifying {
            keys: (0..self.checks.len())
                .map(|p| self.provider_keys(p))
                .collect(),
            checks: self.checks.clone(),
            now_s: now_ms / 1000,
        }
    }

    /// Why a document is missing, if it is and no fetch is pending.
    pub fn last_error(&self, doc: Document) -> Option<&str> {
        self.slot(doc).and_then(|s| s.last_error.as_deref())
    }

    /// Whether the document can be used now, is on its way, or failed.
    fn availability<T>(
        &self,
        doc: Document,
        pick: impl Fn(&Held) -> Option<Rc<T>>,
    ) -> Availability<T> {
        match self.slot(doc) {
            None => Availability::Unavailable("this document is not fetched from a uri".into()),
            Some(s) => match (s.held.as_ref().and_then(pick), &s.last_error) {
                (Some(d), _) => Availability::Ready(d),
                // The last attempt failed and none is under way: fail fast.
                (None, Some(why)) if s.in_flight.is_none() => {
                    Availability::Unavailable(why.clone())
                }
                (None, _) => Availability::Pending,
            },
        }
    }
}

impl KeyStore for Fetcher {
    fn keys(&self, provider: usize) -> Keys {
        self.availability(Document::Keys(provider), |h| match h {
            Held::Keys(k) => Some(Rc::clone(k)),
            _ => None,
        })
    }

    fn refresh_for_unknown_kid(&self, provider: usize, now: u64) -> bool {
        self.slot(Document::Keys(provider)).is_some_and(|s| {
            s.held.is_some()
                && now.saturating_mul(1000) >= s.fetched_ms.saturating_add(KID_MISS_MIN_INTERVAL_MS)
        })
    }

    fn registry(&self) -> Availability<Registry> {
        self.availability(Document::Registry, |h| match h {
            Held::Registry(r) => Some(Rc::clone(r)),
            _ => None,
        })
    }

    fn revocation(&self) -> Availability<RevocationList> {
        self.availability(Document::Revocation, |h| match h {
            Held::Revocation(r) => Some(Rc::clone(r)),
            _ => None,
        })
    }

    fn status_list(&self, uri: &str, provider: usize, now: u64) -> Availability<StatusList> {
        let Some(s) = self
            .slots
            .iter()
            .find(|s| s.doc == Document::StatusList && s.remote.uri == uri)
        else {
            if self.status.is_none() {
                return Availability::Unavailable("no status_list policy is configured".into());
            }
            if config::split_uri(uri).is_none() {
                // Never fetchable: say so now rather than hold the request.
                return Availability::Unavailable(
                    "the status list uri is not an absolute http(s) URI that can be fetched".into(),
                );
            }
            let count = self
                .slots
                .iter()
                .filter(|s| s.doc == Document::StatusList)
                .count();
            let mut wanted = self.wanted.borrow_mut();
            if count + wanted.len() >= MAX_STATUS_LISTS {
                return Availability::Unavailable(format!(
                    "already following {MAX_STATUS_LISTS} status lists"
                ));
            }
            if !wanted.iter().any(|(u, _)| u == uri) {
                wanted.push((uri.to_string(), provider));
            }
            return Availability::Pending;
        };
        let skew = self.checks.get(s.provider).map_or(0, |c| c.1);
        // The last good list stays in force until its own `exp`, not beyond.
        let current = match &s.held {
            Some(Held::Status(l)) if l.exp.is_none_or(|e| now <= e.saturating_add(skew)) => {
                Some(Rc::clone(l))
            }
            _ => None,
        };
        match (current, &s.last_error) {
            (Some(l), _) => Availability::Ready(l),
            (None, Some(why)) if s.in_flight.is_none() => Availability::Unavailable(why.clone()),
            (None, _) if s.held.is_some() && s.in_flight.is_none() => {
                Availability::Unavailable("the status list has expired".into())
            }
            (None, _) => Availability::Pending,
        }
    }
}

/// The record and its CAS token. A store cannot compare-and-swap on absence,
/// so a missing record is first created empty (identical from any worker),
/// and only CAS writes follow.
fn read_or_create(store: &mut dyn SharedStore, key: &str) -> Option<(Record, Option<u32>)> {
    if store.get(key).is_none() {
        let _ = store.set(key, &Record::default().encode(), 0);
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
    let key = record_key(slot.doc, &slot.remote.uri);
    let has_keys = slot.held.is_some();
    for _ in 0..4 {
        let (mut rec, cas) = read(store, &key);
        rec.failures = rec.failures.saturating_add(1);
        rec.lease_owner = worker;
        rec.lease_until_ms = now.saturating_add(backoff_ms(
            rec.failures,
            has_keys,
            slot.remote.refresh_interval_s,
        ));
        if store.set(&key, &rec.encode(), cas.unwrap_or(0)).is_ok() {
            slot.seen_failures = rec.failures;
            break;
        }
    }
    Event::FetchFailed {
        doc: slot.doc,
        why,
        kept: has_keys,
    }
}

/// A fetched document is put in force only if it is valid as a whole: a JWK
/// Set with at least one usable key, or a registry whose every entry passes
/// the configuration's checks. Otherwise the last good document stays.
fn accept(
    slot: &Slot,
    body: &[u8],
    providers: &[&str],
    ctx: &Verifying,
) -> Result<(Held, String, Vec<String>), String> {
    match slot.doc {
        Document::StatusList => {
            let p = slot.provider;
            let keys =
                ctx.keys.get(p).cloned().flatten().ok_or_else(|| {
                    "the provider's keys are not available to verify it".to_string()
                })?;
            let (algorithms, skew) = ctx.checks.get(p).copied().unwrap_or_default();
            let list = statuslist::parse_token(
                body,
                &slot.remote.uri,
                &keys,
                algorithms,
                ctx.now_s,
                skew,
                &statuslist::Limits::default(),
            )
            .map_err(|e| format!("not a valid status list token: {e}"))?;
            let summary = format!("{} entries of {} bit(s)", list.len(), list.bits);
            Ok((Held::Status(Rc::new(list)), summary, Vec::new()))
        }
        Document::Keys(_) => accept_keys(body).map(|(set, skipped)| {
            (
                Held::Keys(Rc::new(set.0)),
                format!("{} usable key(s)", set.1),
                skipped,
            )
        }),
        Document::Registry => {
            within(body, MAX_REGISTRY_BYTES)?;
            let registry = config::parse_registry_document(body, providers)
                .map_err(|errors| invalid("registry document", &errors))?;
            let summary = format!("{} identities", registry.len());
            Ok((Held::Registry(Rc::new(registry)), summary, Vec::new()))
        }
        Document::Revocation => {
            within(body, MAX_REGISTRY_BYTES)?;
            let list = config::parse_revocation_document(body, providers)
                .map_err(|errors| invalid("revocation list", &errors))?;
            let (t, c, s) = list.counts();
            let summary = format!("{t} token(s), {c} client(s), {s} subject(s)");
            Ok((Held::Revocation(Rc::new(list)), summary, Vec::new()))
        }
    }
}

/// Refuses a document over `limit` bytes.
fn within(body: &[u8], limit: usize) -> Result<(), String> {
    if body.len() > limit {
        return Err(format!(
            "document is {} bytes; the limit is {limit}",
            body.len()
        ));
    }
    Ok(())
}

/// The first faults of a refused document, for the log.
fn invalid(what: &str, errors: &[config::ConfigError]) -> String {
    let shown: Vec<String> = errors.iter().take(5).map(ToString::to_string).collect();
    let more = errors.len().saturating_sub(shown.len());
    format!(
        "not a valid {what}: {}{}",
        shown.join("; "),
        if more > 0 {
            format!(" (and {more} more)")
        } else {
            String::new()
        }
    )
}

/// A JWK Set with at least one usable key, and the keys it skipped.
fn accept_keys(body: &[u8]) -> Result<((KeySet, usize), Vec<String>), String> {
    within(body, MAX_DOC_BYTES)?;
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
    let n = set.len();
    Ok(((set, n), issues.iter().map(ToString::to_string).collect()))
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
