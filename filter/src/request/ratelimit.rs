//! Per-identity rate limits: token buckets that all of the gateway's workers
//! share through a key/value store with compare-and-swap (Envoy's shared
//! data), and the `RateLimit-Policy` / `RateLimit` / `Retry-After` values of
//! a response. Pure: the store and the time come in as arguments.
//!
//! # Semantics
//!
//! A [`Policy`] `{requests, per_s, burst}` is a token bucket per identity:
//! capacity `requests + burst` tokens, refilled at `requests / per_s` tokens
//! a second, one token per request. An identity that starts idle may send
//! `requests + burst` at once; one sending faster than the rate for `T`
//! seconds gets about `requests + burst + requests * T / per_s` through.
//! Several policies may apply to one request ([`Limiter::take_all`]): it
//! passes only when every one has a token, and a request refused by one
//! consumes from none (see "Races" for the one exception, which is undone).
//!
//! An identity is a provider index and a client id or subject
//! ([`Limiter::identity`]), hashed once per request with SipHash-2-4 under a
//! 128-bit secret: neither the store nor a response ever holds it in clear.
//!
//! # API
//!
//! ```text
//! // At configure time (once per configuration):
//! let secret = shared_secret(&mut store, random_16_bytes);   // same on every worker
//! let limiter = Limiter::new(max_identities, secret);
//! let policy = Policy::new(0, "default", 100, 60, 20)?;      // id 0: its own table
//! let policy_field = policy_header(&[&policy], None);         // constant: build once
//! // Per request:
//! let who = limiter.identity(provider, Who::Client(client_id));
//! let verdict = limiter.take_all(&mut store, &[&policy, &rule_policy], who, now_ms);
//! if !verdict.allowed() {
//!     // 429, Retry-After: verdict.retry_after_s(),
//!     // RateLimit-Policy: policy_header(..), RateLimit: ratelimit_header(..)
//! }
//! ```
//!
//! [`Limiter::take`] is the one-policy form and returns the [`Outcome`]
//! directly. [`MemoryStore`] is the store for hosts without shared data
//! (Kong without a shm zone): the limits then hold per worker.
//!
//! # State in the store
//!
//! Each policy has its own table of `max_identities` slots, keys
//! `scopegate.rl.<policy id>.<slot>`, created on first use and never deleted
//! (Envoy's shared data cannot delete), so a table never holds more than
//! `max_identities` keys. A slot holds [`SLOT_BYTES`] bytes: a format byte,
//! the identity's 64-bit digest, then the tokens in millionths and the last
//! refill time in ms, 48 bits each, little-endian. An identity's slot is the first of
//! [`PROBES`] consecutive slots from its digest that holds it, else the
//! first one that is unused, unreadable or idle (its bucket refilled to
//! full, so forgetting it changes nothing).
//!
//! **All probed slots busy** (other identities, not yet refilled): the request
//! is allowed and the outcome says [`Tracking::Overflow`]. That is a capacity
//! signal for the operator (raise `max_identities`), not a security hole: rate
//! limiting protects upstream capacity, and authentication has already
//! happened. Denying instead would let a burst of other identities lock a
//! well-behaved one out.
//!
//! Short linear probing needs headroom. The `ratelimit_memory` example
//! makes 100,000 identities active at once: with `max_identities` 100,000,
//! 17.6% of them find no slot; with 200,000, 2.8%; with 400,000, 0.3%. So
//! size `max_identities` at 2 to 4 times the identities active within one
//! refill period (`per_s * capacity / requests` seconds); idle slots cost
//! nothing until used.
//!
//! Memory, from `cargo run -p scopegate --example ratelimit_memory`: 41 bytes
//! of payload per identity and policy (a 21-byte value, a key of about 20
//! bytes; 4.0 MB for 100,000 identities). Envoy (proxy-wasm-cpp-host) keeps
//! each entry as a `std::string` key and a `std::string` value with the CAS
//! number in an `std::unordered_map` node; estimated, not measured: about
//! 90 bytes per identity and policy with libc++ (key and value both fit in
//! the strings' inline buffers), about 170 with libstdc++ (both on the heap),
//! so 9 to 17 MB for 100,000 identities under one policy.
//!
//! # Cost per request
//!
//! [`Limiter::take_all`]: one `get` and, when allowed, one `set` per policy;
//! a refused request writes nothing. Only a new identity whose first slot is
//! taken, or a lost race, reads more. The path allocates the store's value,
//! the slot's key and the [`Verdict`]; header values are formatted only when
//! asked for. The filter goes through [`Limiter::acquire`] instead, taking
//! several tokens per exchange while a bucket is well filled and serving them
//! from a worker-local lease (`request::lease`): most requests then make no
//! host call at all.
//!
//! # Races
//!
//! Every write is a compare-and-swap on the value read. A worker that loses
//! the race reads again and decides again, up to [`MAX_ATTEMPTS`] times; after
//! that the request is refused with [`Tracking::Contended`] (the identity is
//! evidently sending from every worker at once, the case a limit exists for;
//! `Retry-After: 1`). When a later policy of [`Limiter::take_all`] loses its
//! race and then finds its bucket empty, the tokens already taken from the
//! earlier policies are given back.
//!
//! Envoy's CAS cannot guard a key that does not exist yet: two workers
//! creating the same slot at the same instant both write, and the last write
//! wins. That costs at most one token per racing worker when an identity (or
//! two identities sharing a slot) first appear.
//!
//! # Time
//!
//! `now_ms` is the host's wall clock in ms, the same for all workers. When it
//! goes back (a clock step), buckets stop refilling until it catches up with
//! the last refill; a refill time more than [`MAX_CLOCK_STEP_MS`] in the
//! future is treated as an unreadable slot (the identity starts afresh).
//!
//! # Response fields
//!
//! Following draft-ietf-httpapi-ratelimit-headers-10 (RFC 9651 structured
//! fields): `RateLimit-Policy: "<name>";q=<requests>;w=<per_s>` (plus
//! `;scopegate-burst=<burst>` when there is a burst, a vendor parameter as
//! the draft recommends) and `RateLimit: "<name>";r=<remaining>;t=<seconds>`
//! where `r` is whole tokens left (up to `requests + burst`) and `t` the
//! seconds until the next whole token (left out when the bucket is full:
//! nothing more is coming). `Retry-After` on a refusal equals that `t`, as
//! the draft asks (never earlier than the reset). The optional partition key
//! `pk` is a second keyed digest of the identity ([`Limiter::partition_key`]),
//! stable per identity and secret, and reveals nothing about the identity.

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use std::fmt;
use std::fmt::Write as _;

/// Tokens are kept in millionths: integer arithmetic, and what truncation
/// loses per refill (under a millionth of a token) never adds up to a request.
pub(crate) const UNIT: u64 = 1_000_000;
/// Consecutive slots tried for one identity.
pub const PROBES: u32 = 4;
/// Reads and compare-and-swaps tried for one policy before refusing.
pub const MAX_ATTEMPTS: u32 = 8;
/// Default number of slots per policy.
pub const DEFAULT_MAX_IDENTITIES: u32 = 100_000;
/// Bytes of one slot's value in the store.
/// Bytes of one slot's value in the store: small enough to sit inside a
/// libc++ `std::string` (22 bytes) instead of a heap block of its own.
pub const SLOT_BYTES: usize = 21;
/// A worker takes from a well-filled bucket at once what it refills in this
/// many milliseconds ([`Policy::lease`]).
pub const LEASE_WINDOW_MS: u64 = 100;
/// Largest `requests + burst`: a full bucket must fit the slot's 48 bits.
pub const MAX_CAPACITY: u64 = ((1 << 48) - 1) / UNIT;
/// A refill time further ahead than this is not a clock step but a damaged
/// or foreign value.
pub const MAX_CLOCK_STEP_MS: u64 = 60_000;
/// The store key that holds the workers' common hashing secret.
pub const SECRET_KEY: &str = "scopegate.rl.secret";
const KEY_PREFIX: &str = "scopegate.rl.";
/// First byte of a slot: a later layout gets another number, and old values
/// then read as unused slots instead of as nonsense.
const FORMAT: u8 = 1;
/// Longest policy name: it is repeated in every response's fields.
const MAX_NAME_LEN: usize = 64;

pub use crate::identity::shared::{MemoryStore, SetError, SharedStore, StoreUsage};

/// The secret every worker must hash identities with: the one already in
/// the store, else `fresh` once written there. Call it at configure time
/// with 16 random bytes; the secret then outlives configuration reloads, so
/// buckets do too. Two workers starting at the same instant may each write
/// their own and read back different ones (the store cannot create a key
/// conditionally); calling this again on a later tick and rebuilding the
/// [`Limiter`] when it differs settles on one.
pub fn shared_secret(store: &dyn SharedStore, fresh: [u8; 16]) -> [u8; 16] {
    let read = |store: &dyn SharedStore| {
        store
            .get(SECRET_KEY)
            .map(|(v, cas)| (<[u8; 16]>::try_from(v.as_slice()).ok(), cas))
    };
    let cas = match read(store) {
        Some((Some(secret), _)) => return secret,
        Some((None, cas)) => cas,
        None => 0,
    };
    // A refused write falls through to whatever the store holds now.
    let _ = store.set(SECRET_KEY, &fresh, cas);
    match read(store) {
        Some((Some(secret), _)) => secret,
        _ => fresh,
    }
}

/// One rate-limit policy. `id` names its table in the store: each policy of
/// a configuration needs its own, stable across reloads where possible (a
/// policy that takes over another's id inherits its buckets, capped at its
/// own capacity).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Policy {
    id: u16,
    name: Box<str>,
    requests: u32,
    per_s: u32,
    burst: u32,
}

/// Why a policy cannot be built; the text says what to change.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PolicyError {
    Name(String),
    ZeroRequests,
    ZeroPeriod,
    TooLarge,
}

impl fmt::Display for PolicyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PolicyError::Name(name) => write!(
                f,
                "rate-limit policy name {name:?} must be 1 to {MAX_NAME_LEN} printable ASCII \
                 characters (it is sent in the RateLimit response fields)"
            ),
            PolicyError::ZeroRequests => f.write_str(
                "rate-limit policy `requests` must be at least 1 (remove the policy to lift the limit)",
            ),
            PolicyError::ZeroPeriod => {
                f.write_str("rate-limit policy `per_s` must be at least 1 second")
            }
            PolicyError::TooLarge => write!(
                f,
                "rate-limit policy `requests + burst` must be at most {MAX_CAPACITY} \
                 (lower them, or lengthen `per_s` for the same rate)"
            ),
        }
    }
}

impl std::error::Error for PolicyError {}

impl Policy {
    pub fn new(
        id: u16,
        name: &str,
        requests: u32,
        per_s: u32,
        burst: u32,
    ) -> Result<Policy, PolicyError> {
        let printable = name.bytes().all(|b| (0x20..=0x7e).contains(&b));
        if name.is_empty() || name.len() > MAX_NAME_LEN || !printable {
            return Err(PolicyError::Name(name.to_string()));
        }
        if requests == 0 {
            return Err(PolicyError::ZeroRequests);
        }
        if per_s == 0 {
            return Err(PolicyError::ZeroPeriod);
        }
        if u64::from(requests) + u64::from(burst) > MAX_CAPACITY {
            return Err(PolicyError::TooLarge);
        }
        Ok(Policy {
            id,
            name: name.into(),
            requests,
            per_s,
            burst,
        })
    }

    pub fn id(&self) -> u16 {
        self.id
    }
    pub fn name(&self) -> &str {
        &self.name
    }
    pub fn requests(&self) -> u32 {
        self.requests
    }
    pub fn per_s(&self) -> u32 {
        self.per_s
    }
    pub fn burst(&self) -> u32 {
        self.burst
    }
    /// Most requests that may pass at once: `requests + burst`.
    pub fn capacity(&self) -> u64 {
        u64::from(self.requests) + u64::from(self.burst)
    }

    /// Tokens a worker takes from the shared bucket at once while it is well
    /// filled: what the bucket refills in [`LEASE_WINDOW_MS`], at most a tenth
    /// of its capacity, at least one (slow limits are taken token by token).
    pub fn lease(&self) -> u64 {
        let refilled = u128::from(self.requests) * u128::from(LEASE_WINDOW_MS)
            / (u128::from(self.per_s) * 1000);
        let cap = (self.capacity() / 10).max(1);
        u64::try_from(refilled).map_or(cap, |r| r.min(cap)).max(1)
    }

    fn capacity_units(&self) -> u64 {
        self.capacity() * UNIT
    }

    /// Units the bucket gains in `ms` milliseconds, capped at a full bucket.
    fn refill_units(&self, ms: u64) -> u64 {
        let units = u128::from(ms) * u128::from(self.requests) * u128::from(UNIT)
            / (u128::from(self.per_s) * 1000);
        u64::try_from(units).map_or(self.capacity_units(), |u| u.min(self.capacity_units()))
    }

    /// Whole seconds (rounded up) until the bucket has gained `units`.
    fn seconds_for(&self, units: u64) -> u64 {
        let rate = u128::from(self.requests) * u128::from(UNIT);
        let secs = (u128::from(units) * u128::from(self.per_s)).div_ceil(rate);
        u64::try_from(secs).unwrap_or(u64::MAX)
    }
}

/// Whose bucket: the identity a token was verified for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Who<'a> {
    Client(&'a str),
    Subject(&'a str),
}

/// An identity's keyed digest: what the store holds instead of the identity.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct IdentityKey(u64);

impl IdentityKey {
    /// The digest itself (uniformly distributed: a hash table may use it as is).
    pub fn raw(self) -> u64 {
        self.0
    }
}

/// The `pk` parameter's value: base64 of a keyed digest of the identity.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PartitionKey(String);

impl PartitionKey {
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// Whether a decision was recorded in the store.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Tracking {
    /// Counted in the identity's bucket.
    Counted,
    /// No slot free for the identity: allowed uncounted (capacity signal).
    Overflow,
    /// Every compare-and-swap lost to other workers: refused.
    Contended,
}

/// One policy's decision for one request.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Outcome {
    /// This policy had a token for the request.
    pub allowed: bool,
    /// The policy's `requests` (the `q` of `RateLimit-Policy`).
    pub limit: u32,
    /// Whole tokens left after this request (up to `requests + burst`).
    pub remaining: u64,
    /// Seconds until `remaining` grows by one; 0 when the bucket is full.
    pub reset_s: u64,
    /// Seconds until a refused request would pass; 0 when allowed.
    pub retry_after_s: u64,
    pub tracking: Tracking,
}

impl Outcome {
    /// The outcome of a bucket left with `units`.
    pub(crate) fn of(policy: &Policy, allowed: bool, units: u64) -> Outcome {
        let reset_s = if units >= policy.capacity_units() {
            0
        } else {
            policy.seconds_for(UNIT - units % UNIT)
        };
        Outcome {
            allowed,
            limit: policy.requests,
            remaining: units / UNIT,
            reset_s,
            retry_after_s: if allowed { 0 } else { reset_s },
            tracking: Tracking::Counted,
        }
    }

    pub(crate) fn overflow(policy: &Policy) -> Outcome {
        Outcome {
            allowed: true,
            limit: policy.requests,
            remaining: policy.capacity().saturating_sub(1),
            reset_s: 0,
            retry_after_s: 0,
            tracking: Tracking::Overflow,
        }
    }

    pub(crate) fn contended(policy: &Policy) -> Outcome {
        Outcome {
            allowed: false,
            limit: policy.requests,
            remaining: 0,
            reset_s: 1,
            retry_after_s: 1,
            tracking: Tracking::Contended,
        }
    }
}

/// What [`Limiter::acquire`] got from the shared bucket.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Acquired {
    /// `tokens` whole tokens (at least one) now belong to the caller; the
    /// shared bucket kept `shared_units`.
    Granted { tokens: u64, shared_units: u64 },
    /// The bucket had no whole token, or every attempt lost its race.
    Refused(Outcome),
    /// No slot for the identity: let the request through uncounted.
    Overflow,
}

/// The decision of every policy that applies to a request, in their order.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Verdict {
    pub outcomes: Vec<Outcome>,
}

impl Verdict {
    /// Every policy let the request through.
    pub fn allowed(&self) -> bool {
        self.outcomes.iter().all(|o| o.allowed)
    }

    /// `Retry-After` for a refused request (the longest wait of the policies
    /// that refused it); `None` when allowed.
    pub fn retry_after_s(&self) -> Option<u64> {
        self.outcomes
            .iter()
            .filter(|o| !o.allowed)
            .map(|o| o.retry_after_s)
            .max()
    }

    /// Some policy found no slot for the identity (raise `max_identities`).
    pub fn overflowed(&self) -> bool {
        self.outcomes
            .iter()
            .any(|o| o.tracking == Tracking::Overflow)
    }
}

/// Rate limiting for one configuration: the table size and the secret.
#[derive(Clone, Debug)]
pub struct Limiter {
    slots: u32,
    key: (u64, u64),
    pk_key: (u64, u64),
}

/// A bucket as of some instant, in units.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Bucket {
    units: u64,
    last_ms: u64,
}

/// What one slot held.
struct Held {
    owner: u64,
    bucket: Bucket,
}

/// The slot an identity's bucket lives in, with the bucket brought up to now.
struct Slot {
    key: String,
    /// 0 for a key never written (then `set` creates it).
    cas: u32,
    bucket: Bucket,
}

enum Place {
    Slot(Slot),
    /// Every probed slot holds another identity's live bucket.
    Full,
}

impl Limiter {
    /// `max_identities` slots per policy (0 counts as 1); `secret` from
    /// [`shared_secret`], the same for every worker.
    pub fn new(max_identities: u32, secret: [u8; 16]) -> Limiter {
        let s = u128::from_le_bytes(secret);
        let key = (s as u64, (s >> 64) as u64);
        let derive = |label: &[u8]| {
            let mut h = Sip::new(key);
            h.write(b"scopegate.rl.pk.");
            h.write(label);
            h.finish()
        };
        Limiter {
            slots: max_identities.max(1),
            key,
            pk_key: (derive(b"0"), derive(b"1")),
        }
    }

    /// The identity's digest; compute it once per request, for all policies.
    pub fn identity(&self, provider: usize, who: Who<'_>) -> IdentityKey {
        let (kind, id) = match who {
            Who::Client(id) => (b'c', id),
            Who::Subject(id) => (b's', id),
        };
        let mut h = Sip::new(self.key);
        h.write(&(provider as u64).to_le_bytes());
        h.write(&[kind]);
        h.write(id.as_bytes());
        IdentityKey(h.finish())
    }

    /// The identity's `pk` for the response fields: a digest under a key
    /// derived from the secret, so it is not the slot digest either.
    pub fn partition_key(&self, who: IdentityKey) -> PartitionKey {
        let mut h = Sip::new(self.pk_key);
        h.write(&who.0.to_le_bytes());
        PartitionKey(STANDARD.encode(h.finish().to_be_bytes()))
    }

    /// One policy: [`Limiter::take_all`] with a single policy.
    pub fn take(
        &self,
        store: &dyn SharedStore,
        policy: &Policy,
        who: IdentityKey,
        now_ms: u64,
    ) -> Outcome {
        let verdict = self.take_all(store, &[policy], who, now_ms);
        // take_all answers one outcome per policy; the fallback is never used.
        verdict
            .outcomes
            .first()
            .copied()
            .unwrap_or(Outcome::contended(policy))
    }

    /// Takes a token from each policy's bucket for `who`, or from none: all
    /// are read and judged first, and written only when all have a token.
    pub fn take_all(
        &self,
        store: &dyn SharedStore,
        policies: &[&Policy],
        who: IdentityKey,
        now_ms: u64,
    ) -> Verdict {
        let mut places: Vec<Place> = Vec::with_capacity(policies.len());
        let mut outcomes: Vec<Outcome> = Vec::with_capacity(policies.len());
        for policy in policies {
            let place = self.locate(store, policy, who, now_ms);
            outcomes.push(judge(&place, policy));
            places.push(place);
        }
        if outcomes.iter().any(|o| !o.allowed) {
            // Nothing is taken: the others report their bucket untouched.
            for ((o, place), policy) in outcomes.iter_mut().zip(&places).zip(policies) {
                if let (true, Place::Slot(slot)) = (o.allowed, place) {
                    *o = Outcome::of(policy, true, slot.bucket.units);
                }
            }
            return Verdict { outcomes };
        }
        for (i, (policy, place)) in policies.iter().zip(places).enumerate() {
            match self.commit(store, policy, who, now_ms, place) {
                Ok(Some(outcome)) => {
                    if let Some(o) = outcomes.get_mut(i) {
                        *o = outcome;
                    }
                }
                Ok(None) => {}
                Err(refused) => {
                    // Give back what the earlier policies took.
                    for (p, o) in policies.iter().zip(&outcomes).take(i) {
                        if o.tracking == Tracking::Counted {
                            self.give(store, p, who, now_ms, UNIT);
                        }
                    }
                    if let Some(o) = outcomes.get_mut(i) {
                        *o = refused;
                    }
                    return Verdict { outcomes };
                }
            }
        }
        Verdict { outcomes }
    }

    /// Writes `place` minus one token, re-reading after each lost race.
    /// `Ok(None)`: nothing to write (overflow). `Err`: the bucket turned out
    /// empty, or every attempt lost.
    fn commit(
        &self,
        store: &dyn SharedStore,
        policy: &Policy,
        who: IdentityKey,
        now_ms: u64,
        mut place: Place,
    ) -> Result<Option<Outcome>, Outcome> {
        for attempt in 1..=MAX_ATTEMPTS {
            let slot = match place {
                Place::Full => return Ok(None),
                Place::Slot(slot) if slot.bucket.units < UNIT => {
                    return Err(Outcome::of(policy, false, slot.bucket.units))
                }
                Place::Slot(slot) => slot,
            };
            let after = Bucket {
                units: slot.bucket.units - UNIT,
                last_ms: slot.bucket.last_ms,
            };
            if store.set(&slot.key, &encode(who, after), slot.cas).is_ok() {
                return Ok(Some(Outcome::of(policy, true, after.units)));
            }
            if attempt == MAX_ATTEMPTS {
                break;
            }
            place = self.locate(store, policy, who, now_ms);
        }
        Err(Outcome::contended(policy))
    }

    /// Takes up to `lease` tokens (never fewer than one) from `who`'s bucket
    /// in one compare-and-swap, for a worker to hand out locally, after
    /// putting back `returned` units the worker held and did not use.
    ///
    /// More than one token is granted only while the bucket stays at least
    /// half full after the grant: near the limit every token is taken one at a
    /// time, so what one worker holds cannot make another refuse early.
    pub fn acquire(
        &self,
        store: &dyn SharedStore,
        policy: &Policy,
        who: IdentityKey,
        now_ms: u64,
        returned: u64,
        lease: u64,
    ) -> Acquired {
        self.exchange(store, policy, who, now_ms, returned, lease.max(1))
    }

    /// Puts `units` a worker took and did not hand out back in `who`'s
    /// bucket (capped at its capacity). Best effort: a slot that changed
    /// hands, or a race lost [`MAX_ATTEMPTS`] times, keeps what it has.
    pub fn give(
        &self,
        store: &dyn SharedStore,
        policy: &Policy,
        who: IdentityKey,
        now_ms: u64,
        units: u64,
    ) {
        let _ = self.exchange(store, policy, who, now_ms, units, 0);
    }

    /// One compare-and-swap on `who`'s bucket: add `returned` units, then
    /// take up to `lease` tokens (none when `lease` is 0).
    fn exchange(
        &self,
        store: &dyn SharedStore,
        policy: &Policy,
        who: IdentityKey,
        now_ms: u64,
        returned: u64,
        lease: u64,
    ) -> Acquired {
        for _ in 0..MAX_ATTEMPTS {
            let slot = match self.locate(store, policy, who, now_ms) {
                Place::Full => return Acquired::Overflow,
                Place::Slot(slot) => slot,
            };
            let units = slot
                .bucket
                .units
                .saturating_add(returned)
                .min(policy.capacity_units());
            if lease > 0 && units < UNIT {
                return Acquired::Refused(Outcome::of(policy, false, units));
            }
            let many = lease.saturating_mul(UNIT);
            let take = if lease > 1 && units.saturating_sub(many) >= policy.capacity_units() / 2 {
                many
            } else {
                UNIT.min(many)
            };
            let after = Bucket {
                units: units - take,
                last_ms: slot.bucket.last_ms,
            };
            if store.set(&slot.key, &encode(who, after), slot.cas).is_ok() {
                return Acquired::Granted {
                    tokens: take / UNIT,
                    shared_units: after.units,
                };
            }
        }
        Acquired::Refused(Outcome::contended(policy))
    }

    /// Finds `who`'s slot for `policy` (see the module doc), bucket refilled
    /// to `now_ms`. Stops at the first key never written: the identity was
    /// placed no further than the first free slot of its time, and keys are
    /// never deleted.
    fn locate(
        &self,
        store: &dyn SharedStore,
        policy: &Policy,
        who: IdentityKey,
        now_ms: u64,
    ) -> Place {
        let slots = u64::from(self.slots);
        let first = who.0 % slots;
        let fresh = Bucket {
            units: policy.capacity_units(),
            last_ms: now_ms,
        };
        let mut free: Option<Slot> = None;
        for i in 0..u64::from(PROBES).min(slots) {
            let key = slot_key(policy.id, (first + i) % slots);
            let Some((bytes, cas)) = store.get(&key) else {
                let slot = free.unwrap_or(Slot {
                    key,
                    cas: 0,
                    bucket: fresh,
                });
                return Place::Slot(slot);
            };
            let held = decode(&bytes)
                .filter(|h| h.bucket.last_ms <= now_ms.saturating_add(MAX_CLOCK_STEP_MS));
            match held {
                Some(h) if h.owner == who.0 => {
                    let bucket = refill(h.bucket, policy, now_ms);
                    return Place::Slot(Slot { key, cas, bucket });
                }
                Some(h) if refill(h.bucket, policy, now_ms).units < policy.capacity_units() => {}
                // Unreadable, or another identity's bucket that is full again.
                _ => {
                    if free.is_none() {
                        free = Some(Slot {
                            key,
                            cas,
                            bucket: fresh,
                        });
                    }
                }
            }
        }
        free.map_or(Place::Full, Place::Slot)
    }
}

/// The decision `place` allows, as if its token were taken.
fn judge(place: &Place, policy: &Policy) -> Outcome {
    match place {
        Place::Full => Outcome::overflow(policy),
        Place::Slot(slot) => match slot.bucket.units.checked_sub(UNIT) {
            Some(after) => Outcome::of(policy, true, after),
            None => Outcome::of(policy, false, slot.bucket.units),
        },
    }
}

/// The bucket as of `now_ms`. A clock that went back refills nothing and
/// keeps the later refill time, so the same interval is never counted twice.
fn refill(b: Bucket, policy: &Policy, now_ms: u64) -> Bucket {
    let gained = policy.refill_units(now_ms.saturating_sub(b.last_ms));
    Bucket {
        units: b.units.saturating_add(gained).min(policy.capacity_units()),
        last_ms: b.last_ms.max(now_ms),
    }
}

fn slot_key(policy: u16, slot: u64) -> String {
    let mut key = String::with_capacity(KEY_PREFIX.len() + 12);
    key.push_str(KEY_PREFIX);
    let _ = write!(key, "{policy}.{slot}");
    key
}

fn encode(who: IdentityKey, b: Bucket) -> [u8; SLOT_BYTES] {
    let mut out = [0u8; SLOT_BYTES];
    let (format, fields) = out.split_at_mut(1);
    if let Some(f) = format.first_mut() {
        *f = FORMAT;
    }
    let (owner, rest) = fields.split_at_mut(8);
    owner.copy_from_slice(&who.0.to_le_bytes());
    let (units, last) = rest.split_at_mut(6);
    // 48 bits each: `Policy::new` keeps a full bucket below 2^48 units, and
    // ms since 1970 fit until the year 10889.
    units.copy_from_slice(b.units.to_le_bytes().get(..6).unwrap_or(&[0xff; 6]));
    last.copy_from_slice(b.last_ms.to_le_bytes().get(..6).unwrap_or(&[0xff; 6]));
    out
}

/// A slot's value, or `None` for anything that is not one (then the slot is
/// treated as unused).
fn decode(bytes: &[u8]) -> Option<Held> {
    let (&format, rest) = bytes.split_first()?;
    if format != FORMAT || rest.len() != SLOT_BYTES - 1 {
        return None;
    }
    let word = |from: usize, len: usize| {
        let mut w = [0u8; 8];
        w.get_mut(..len)?
            .copy_from_slice(rest.get(from..from + len)?);
        Some(u64::from_le_bytes(w))
    };
    Some(Held {
        owner: word(0, 8)?,
        bucket: Bucket {
            units: word(8, 6)?,
            last_ms: word(14, 6)?,
        },
    })
}

/// The `RateLimit-Policy` field value for `policies`, e.g.
/// `"default";q=100;w=60`. Without `pk` it depends on the configuration
/// only: build it once.
pub fn policy_header(policies: &[&Policy], pk: Option<&PartitionKey>) -> String {
    let mut out = String::with_capacity(40 * policies.len());
    for (i, p) in policies.iter().enumerate() {
        if i > 0 {
            out.push_str(", ");
        }
        push_sf_string(&mut out, &p.name);
        let _ = write!(out, ";q={};w={}", p.requests, p.per_s);
        if p.burst > 0 {
            let _ = write!(out, ";scopegate-burst={}", p.burst);
        }
        push_pk(&mut out, pk);
    }
    out
}

/// The `RateLimit` field value for `policies` and their outcomes (in the
/// same order), e.g. `"default";r=50;t=30`.
pub fn ratelimit_header(
    policies: &[&Policy],
    outcomes: &[Outcome],
    pk: Option<&PartitionKey>,
) -> String {
    let mut out = String::with_capacity(32 * policies.len());
    for (i, (p, o)) in policies.iter().zip(outcomes).enumerate() {
        if i > 0 {
            out.push_str(", ");
        }
        push_sf_string(&mut out, &p.name);
        let _ = write!(out, ";r={}", o.remaining);
        if o.reset_s > 0 {
            let _ = write!(out, ";t={}", o.reset_s);
        }
        push_pk(&mut out, pk);
    }
    out
}

/// An RFC 9651 String: quoted, `"` and `\` escaped (names are printable
/// ASCII, checked by [`Policy::new`]).
fn push_sf_string(out: &mut String, s: &str) {
    out.push('"');
    for c in s.chars() {
        if c == '"' || c == '\\' {
            out.push('\\');
        }
        out.push(c);
    }
    out.push('"');
}

/// An RFC 9651 Byte Sequence parameter: `;pk=:<base64>:`.
fn push_pk(out: &mut String, pk: Option<&PartitionKey>) {
    if let Some(pk) = pk {
        out.push_str(";pk=:");
        out.push_str(&pk.0);
        out.push(':');
    }
}

/// SipHash-2-4 (Aumasson and Bernstein), written from the paper: std's
/// `SipHasher` is deprecated and `RandomState` cannot be given a key, and
/// every worker must hash with the same one.
struct Sip {
    v: [u64; 4],
    tail: u64,
    len: u64,
}

impl Sip {
    fn new((k0, k1): (u64, u64)) -> Sip {
        Sip {
            v: [
                k0 ^ 0x736f_6d65_7073_6575,
                k1 ^ 0x646f_7261_6e64_6f6d,
                k0 ^ 0x6c79_6765_6e65_7261,
                k1 ^ 0x7465_6462_7974_6573,
            ],
            tail: 0,
            len: 0,
        }
    }

    fn round(&mut self) {
        let [mut v0, mut v1, mut v2, mut v3] = self.v;
        v0 = v0.wrapping_add(v1);
        v1 = v1.rotate_left(13) ^ v0;
        v0 = v0.rotate_left(32);
        v2 = v2.wrapping_add(v3);
        v3 = v3.rotate_left(16) ^ v2;
        v0 = v0.wrapping_add(v3);
        v3 = v3.rotate_left(21) ^ v0;
        v2 = v2.wrapping_add(v1);
        v1 = v1.rotate_left(17) ^ v2;
        v2 = v2.rotate_left(32);
        self.v = [v0, v1, v2, v3];
    }

    fn compress(&mut self, m: u64) {
        let [v0, v1, v2, v3] = self.v;
        self.v = [v0, v1, v2, v3 ^ m];
        self.round();
        self.round();
        let [v0, v1, v2, v3] = self.v;
        self.v = [v0 ^ m, v1, v2, v3];
    }

    /// A byte at a time: identities are tens of bytes, hashed once a request.
    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.tail |= u64::from(b) << (8 * (self.len % 8));
            self.len += 1;
            if self.len % 8 == 0 {
                self.compress(self.tail);
                self.tail = 0;
            }
        }
    }

    fn finish(mut self) -> u64 {
        self.compress(self.tail | (self.len << 56));
        let [v0, v1, v2, v3] = self.v;
        self.v = [v0, v1, v2 ^ 0xff, v3];
        for _ in 0..4 {
            self.round();
        }
        let [v0, v1, v2, v3] = self.v;
        v0 ^ v1 ^ v2 ^ v3
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The reference vector of the SipHash paper (appendix A): key 00..0f,
    /// message 00..0e.
    #[test]
    fn siphash_matches_the_papers_test_vector() {
        let key = u128::from_le_bytes(core::array::from_fn(|i| i as u8));
        let mut h = Sip::new((key as u64, (key >> 64) as u64));
        h.write(&core::array::from_fn::<u8, 15, _>(|i| i as u8));
        assert_eq!(h.finish(), 0xa129_ca61_49be_45e5);
    }

    #[test]
    fn siphash_agrees_with_std_for_every_length_up_to_64() {
        #[allow(deprecated)]
        use std::hash::{Hasher, SipHasher};
        let data: Vec<u8> = (0..64u8).map(|i| i.wrapping_mul(37)).collect();
        for len in 0..=data.len() {
            let mut ours = Sip::new((7, 11));
            #[allow(deprecated)]
            let mut theirs = SipHasher::new_with_keys(7, 11);
            ours.write(&data[..len]);
            theirs.write(&data[..len]);
            assert_eq!(ours.finish(), theirs.finish(), "length {len}");
        }
    }

    #[test]
    fn a_slot_round_trips_and_other_lengths_or_formats_do_not_decode() {
        let b = Bucket {
            units: MAX_CAPACITY * UNIT,
            last_ms: 1_700_000_000_123,
        };
        let bytes = encode(IdentityKey(u64::MAX - 1), b);
        let held = decode(&bytes).unwrap();
        assert_eq!((held.owner, held.bucket), (u64::MAX - 1, b));
        assert!(decode(&bytes[..SLOT_BYTES - 1]).is_none());
        let mut other = bytes;
        other[0] = 2;
        assert!(decode(&other).is_none());
        assert!(decode(&[]).is_none());
    }
}
