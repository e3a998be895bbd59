//! Worker-local leases of rate-limit tokens. Taking each request's token
//! from the shared bucket costs two host calls per policy (Envoy: a `get` and
//! a compare-and-swap `set`, both under the process-wide shared-data lock).
//! A worker instead takes several tokens at once while the bucket is well
//! filled ([`Limiter::acquire`], [`Policy::lease`]: what the bucket refills in
//! 100 ms, at most a tenth of its capacity, and only while at least half of
//! the bucket stays behind) and hands them out itself. Near the limit it
//! takes them one at a time, exactly as without leases.
//!
//! # Accuracy
//!
//! Tokens are never made up: each one a worker hands out was taken from the
//! shared bucket. What a lease changes:
//! - A worker may hold up to one lease's tokens per identity and policy that
//!   the other workers cannot use. Leases of more than one token are granted
//!   only while half of the bucket stays behind, so by the time the bucket
//!   runs dry the leases have mostly been used; at most `lease - 1` tokens per
//!   worker can be held when another worker refuses.
//! - Held tokens are served for at most [`LEASE_TTL_MS`]; after that the
//!   worker puts them back in the bucket (capped at its capacity) with its
//!   next compare-and-swap for that identity. An identity that was idle may
//!   therefore get up to one lease per worker on top of `requests + burst`.
//! - Tokens held when the configuration is replaced, or when the table is
//!   full and idle leases are dropped, are lost: the identity gets fewer
//!   requests through for a moment, never more.
//!
//! With the limit the end-to-end accuracy test uses (50 a second, burst 10:
//! leases of 5) the error stays within a few requests over 10 s.
//!
//! # Cost
//!
//! A request whose tokens are all held locally makes no host call and
//! allocates only its outcomes. The table holds at most [`MAX_LEASES`]
//! leases per worker; past that, new identities are served token by token
//! from the shared bucket.

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hash, Hasher};

use crate::identity::shared::SharedStore;
use crate::request::ratelimit::{Acquired, IdentityKey, Limiter, Outcome, Policy, Verdict, UNIT};

/// How long a worker may serve tokens it took from the shared bucket.
pub const LEASE_TTL_MS: u64 = 1_000;
/// Leases one worker holds at most (about 40 bytes each).
pub const MAX_LEASES: usize = 4_096;
/// Policies one request may take from through leases (the identity's and the
/// rule's); more go to [`Limiter::take_all`] directly.
pub const MAX_POLICIES: usize = 2;

/// Tokens a worker took for one identity under one policy.
#[derive(Clone, Copy, Debug)]
struct Lease {
    /// Whole tokens not yet handed out.
    tokens: u64,
    /// After this instant the tokens go back to the bucket instead.
    expires_ms: u64,
    /// What the shared bucket kept when they were taken (for `RateLimit`).
    shared_units: u64,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct LeaseKey {
    policy: u16,
    who: u64,
}

impl Hash for LeaseKey {
    fn hash<H: Hasher>(&self, state: &mut H) {
        // `who` is already a keyed digest: mixing in the policy is enough.
        state.write_u64(self.who ^ u64::from(self.policy).wrapping_mul(0x9e37_79b9_7f4a_7c15));
    }
}

/// Hashes a [`LeaseKey`] by taking its premixed digest as it is.
#[derive(Default)]
struct Digest(u64);

impl Hasher for Digest {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write_u64(&mut self, v: u64) {
        self.0 = v;
    }
    fn write(&mut self, bytes: &[u8]) {
        // Not reached by `LeaseKey`; kept correct for any other use.
        for &b in bytes {
            self.0 = (self.0 ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3);
        }
    }
}

/// One worker's leases.
#[derive(Debug, Default)]
pub struct Leases {
    held: HashMap<LeaseKey, Lease, BuildHasherDefault<Digest>>,
    /// Expired leases are swept from a full table at most this often.
    next_sweep_ms: u64,
}

/// Where one policy's token for the current request comes from.
#[derive(Clone, Copy)]
enum Source {
    /// A lease in the table.
    Held(LeaseKey),
    /// Taken from the bucket for this request alone (the table is full).
    Direct { shared_units: u64 },
    /// Not tracked (no slot), or refused.
    None,
}

impl Leases {
    pub fn new() -> Leases {
        Leases::default()
    }

    /// Leases held now (for tests and memory measurements).
    pub fn len(&self) -> usize {
        self.held.len()
    }

    pub fn is_empty(&self) -> bool {
        self.held.is_empty()
    }

    /// [`Limiter::take_all`] through this worker's leases: one token from
    /// each of `policies` for `who`, or from none.
    pub fn take_all(
        &mut self,
        limiter: &Limiter,
        store: &dyn SharedStore,
        policies: &[&Policy],
        who: IdentityKey,
        now_ms: u64,
    ) -> Verdict {
        if policies.len() > MAX_POLICIES {
            return limiter.take_all(store, policies, who, now_ms);
        }
        let mut outcomes: Vec<Outcome> = Vec::with_capacity(policies.len());
        let mut sources = [Source::None; MAX_POLICIES];
        let mut allowed = true;
        for (i, policy) in policies.iter().enumerate() {
            let (outcome, source) = self.ready(limiter, store, policy, who, now_ms);
            allowed &= outcome.allowed;
            outcomes.push(outcome);
            if let Some(s) = sources.get_mut(i) {
                *s = source;
            }
        }
        for ((policy, outcome), source) in policies.iter().zip(&mut outcomes).zip(sources) {
            let used = u64::from(allowed);
            match source {
                Source::Held(key) => {
                    let Some(lease) = self.held.get_mut(&key) else {
                        continue;
                    };
                    lease.tokens -= used;
                    let units = lease.shared_units.saturating_add(lease.tokens * UNIT);
                    *outcome = Outcome::of(policy, true, units.min(policy.capacity() * UNIT));
                    if lease.tokens == 0 {
                        self.held.remove(&key);
                    }
                }
                Source::Direct { shared_units } => {
                    if !allowed {
                        // Another policy refused: its token goes back at once.
                        limiter.give(store, policy, who, now_ms, UNIT);
                    }
                    *outcome = Outcome::of(policy, true, shared_units + (1 - used) * UNIT);
                }
                Source::None => {}
            }
        }
        Verdict { outcomes }
    }

    /// Makes sure a token of `policy` is at hand for `who`: the outcome as if
    /// it were taken, and where it is.
    fn ready(
        &mut self,
        limiter: &Limiter,
        store: &dyn SharedStore,
        policy: &Policy,
        who: IdentityKey,
        now_ms: u64,
    ) -> (Outcome, Source) {
        let key = LeaseKey {
            policy: policy.id(),
            who: who.raw(),
        };
        let mut returned = 0;
        if let Some(lease) = self.held.get(&key) {
            if lease.expires_ms > now_ms && lease.tokens > 0 {
                let units = lease.shared_units + (lease.tokens - 1) * UNIT;
                return (Outcome::of(policy, true, units), Source::Held(key));
            }
            returned = lease.tokens * UNIT;
            self.held.remove(&key);
        }
        let room = self.has_room(now_ms);
        let lease = if room { policy.lease() } else { 1 };
        match limiter.acquire(store, policy, who, now_ms, returned, lease) {
            Acquired::Granted {
                tokens,
                shared_units,
            } => {
                let outcome = Outcome::of(policy, true, shared_units + (tokens - 1) * UNIT);
                if !room {
                    return (outcome, Source::Direct { shared_units });
                }
                self.held.insert(
                    key,
                    Lease {
                        tokens,
                        expires_ms: now_ms.saturating_add(LEASE_TTL_MS),
                        shared_units,
                    },
                );
                (outcome, Source::Held(key))
            }
            Acquired::Refused(outcome) => (outcome, Source::None),
            Acquired::Overflow => (Outcome::overflow(policy), Source::None),
        }
    }

    /// Whether a lease can be added, sweeping expired ones from a full table
    /// (their tokens are dropped: fewer requests pass, never more).
    fn has_room(&mut self, now_ms: u64) -> bool {
        if self.held.len() < MAX_LEASES {
            return true;
        }
        if now_ms >= self.next_sweep_ms {
            self.held.retain(|_, l| l.expires_ms > now_ms);
            self.next_sweep_ms = now_ms.saturating_add(LEASE_TTL_MS);
        }
        self.held.len() < MAX_LEASES
    }
}
