//! Worker-local leases of rate-limit tokens: the host calls they save, and
//! that they keep the limit (tokens taken one at a time near it, held ones
//! returned after the lease time, all-or-none across policies, bounded table).
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

#[path = "fixtures_rng/rng.rs"]
mod rng;

use rng::Rng;
use scopegate::request::lease::{Leases, LEASE_TTL_MS, MAX_LEASES};
use scopegate::request::ratelimit::{
    IdentityKey, Limiter, MemoryStore, Policy, SetError, SharedStore, Tracking, Who,
};
use std::cell::Cell;

const T0: u64 = 1_700_000_000_000;

fn limiter() -> Limiter {
    Limiter::new(100_000, *b"0123456789abcdef")
}

fn client(l: &Limiter, id: &str) -> IdentityKey {
    l.identity(0, Who::Client(id))
}

/// A store that counts the host calls made on it.
#[derive(Default)]
struct Counting {
    inner: MemoryStore,
    gets: Cell<usize>,
    sets: Cell<usize>,
}

impl SharedStore for Counting {
    fn get(&self, key: &str) -> Option<(Vec<u8>, u32)> {
        self.gets.set(self.gets.get() + 1);
        self.inner.get(key)
    }
    fn set(&self, key: &str, value: &[u8], cas: u32) -> Result<(), SetError> {
        self.sets.set(self.sets.get() + 1);
        self.inner.set(key, value, cas)
    }
}

/// What the shared bucket holds now, in whole tokens, read by a worker with
/// no leases (it takes one token to look, so this adds it back).
fn shared_tokens(l: &Limiter, s: &dyn SharedStore, p: &Policy, who: IdentityKey, now: u64) -> u64 {
    let o = l.take(s, p, who, now);
    assert!(o.allowed, "the bucket is empty");
    o.remaining + 1
}

#[test]
fn a_well_filled_bucket_is_taken_a_lease_at_a_time_and_served_without_host_calls() {
    let (l, s) = (limiter(), Counting::default());
    // 1,000 a second, burst 0: leases of 100 (what refills in 100 ms).
    let p = Policy::new(0, "default", 1000, 1, 0).unwrap();
    assert_eq!(p.lease(), 100);
    let who = client(&l, "svc-a");
    let mut w = Leases::new();
    for i in 0..100 {
        let v = w.take_all(&l, &s, &[&p], who, T0);
        assert!(v.allowed(), "request {i}");
        // Remaining counts down through the lease: the bucket kept 900.
        assert_eq!(v.outcomes[0].remaining, 999 - i);
    }
    // One read and one compare-and-swap for the 100 requests.
    assert_eq!((s.gets.get(), s.sets.get()), (1, 1));
    assert!(w.take_all(&l, &s, &[&p], who, T0).allowed());
    assert_eq!((s.gets.get(), s.sets.get()), (2, 2));
}

#[test]
fn slow_limits_are_taken_token_by_token_exactly_as_without_leases() {
    let (l, s) = (limiter(), Counting::default());
    let p = Policy::new(0, "default", 2, 60, 1).unwrap();
    assert_eq!(p.lease(), 1);
    let who = client(&l, "svc-a");
    let mut w = Leases::new();
    for remaining in [2, 1, 0] {
        let v = w.take_all(&l, &s, &[&p], who, T0);
        assert!(v.allowed());
        assert_eq!(
            (v.outcomes[0].remaining, v.outcomes[0].reset_s),
            (remaining, 30)
        );
    }
    let v = w.take_all(&l, &s, &[&p], who, T0);
    assert!(!v.allowed());
    assert_eq!(v.retry_after_s(), Some(30));
    // Nothing is held back by the worker.
    assert!(w.is_empty());
    assert_eq!(s.sets.get(), 3);
}

#[test]
fn near_the_limit_tokens_are_taken_one_at_a_time_so_two_workers_get_exactly_the_bucket() {
    let l = limiter();
    let s = MemoryStore::default();
    // 50 a second, burst 10: leases of 5 while 30 or more stay behind.
    let p = Policy::new(0, "default", 50, 1, 10).unwrap();
    assert_eq!(p.lease(), 5);
    let who = client(&l, "svc-a");
    let mut workers = [Leases::new(), Leases::new()];
    let mut rng = Rng(7);
    let mut allowed = 0;
    let mut first_refusal = None;
    // Requests on a random worker, all at one instant: no refill.
    for n in 0..200 {
        let w = &mut workers[usize::from(rng.chance(50))];
        if w.take_all(&l, &s, &[&p], who, T0).allowed() {
            allowed += 1;
        } else if first_refusal.is_none() {
            first_refusal = Some(n);
        }
    }
    assert_eq!(allowed, 60);
    // The first refusal comes when at most one lease's remnant (4) is held
    // by the other worker.
    assert!(first_refusal.unwrap() >= 56, "{first_refusal:?}");
}

#[test]
fn held_tokens_go_back_to_the_bucket_after_the_lease_time() {
    let l = limiter();
    let s = MemoryStore::default();
    // 100 a second (leases of 10), capacity 1,000; 400 already spent.
    let p = Policy::new(0, "default", 100, 1, 900).unwrap();
    assert_eq!(p.lease(), 10);
    let who = client(&l, "svc-a");
    for _ in 0..400 {
        assert!(l.take(&s, &p, who, T0).allowed);
    }
    let mut w = Leases::new();
    assert!(w.take_all(&l, &s, &[&p], who, T0).allowed());
    // The worker holds 9 of its 10; the bucket kept 590 (one more taken to look).
    assert_eq!(shared_tokens(&l, &s, &p, who, T0), 590);
    // Within the lease time the worker serves from what it holds.
    assert!(w
        .take_all(&l, &s, &[&p], who, T0 + LEASE_TTL_MS - 1)
        .allowed());
    assert_eq!(w.len(), 1);
    // After it, the 8 left go back with the exchange that takes a new lease:
    // 589 + 100 refilled in 1 s + 8 - 10.
    let later = T0 + LEASE_TTL_MS;
    assert!(w.take_all(&l, &s, &[&p], who, later).allowed());
    assert_eq!(shared_tokens(&l, &s, &p, who, later), 589 + 100 + 8 - 10);
}

#[test]
fn a_request_refused_by_one_policy_takes_nothing_from_the_other() {
    let l = limiter();
    let s = MemoryStore::default();
    let wide = Policy::new(0, "default", 1000, 1, 0).unwrap();
    let narrow = Policy::new(1, "reports", 2, 60, 0).unwrap();
    let who = client(&l, "svc-a");
    let mut w = Leases::new();
    for _ in 0..2 {
        assert!(w.take_all(&l, &s, &[&wide, &narrow], who, T0).allowed());
    }
    let v = w.take_all(&l, &s, &[&wide, &narrow], who, T0);
    assert!(!v.allowed());
    assert!(v.outcomes[0].allowed && !v.outcomes[1].allowed);
    // `wide` reports its tokens untouched by the refused request: 1000 - 2.
    assert_eq!(v.outcomes[0].remaining, 998);
    let v = w.take_all(&l, &s, &[&wide], who, T0);
    assert_eq!(v.outcomes[0].remaining, 997);
}

#[test]
fn with_a_full_table_new_identities_are_served_token_by_token_and_refusals_give_back() {
    let l = limiter();
    let s = Counting::default();
    let wide = Policy::new(0, "default", 1000, 1, 0).unwrap();
    let mut w = Leases::new();
    for i in 0..MAX_LEASES {
        let who = client(&l, &format!("filler-{i}"));
        assert!(w.take_all(&l, &s, &[&wide], who, T0).allowed());
    }
    assert_eq!(w.len(), MAX_LEASES);
    // Within the lease time nothing can be swept: the next identity's token
    // comes straight from the bucket, one per request.
    let who = client(&l, "late");
    let before = s.sets.get();
    for i in 0..3 {
        let v = w.take_all(&l, &s, &[&wide], who, T0 + 10);
        assert!(v.allowed());
        assert_eq!(v.outcomes[0].remaining, 999 - i);
    }
    assert_eq!(s.sets.get() - before, 3);
    assert_eq!(w.len(), MAX_LEASES);
    // A token taken that way for a request another policy refuses goes back.
    let narrow = Policy::new(1, "reports", 1, 60, 0).unwrap();
    assert!(w
        .take_all(&l, &s, &[&wide, &narrow], who, T0 + 10)
        .allowed());
    assert!(!w
        .take_all(&l, &s, &[&wide, &narrow], who, T0 + 10)
        .allowed());
    assert_eq!(shared_tokens(&l, &s.inner, &wide, who, T0 + 10), 996);
    // Once the leases have expired, a full table is swept and leases resume.
    let later = T0 + LEASE_TTL_MS + 10;
    assert!(w.take_all(&l, &s, &[&wide], who, later).allowed());
    assert_eq!(w.len(), 1);
}

#[test]
fn an_identity_without_a_slot_passes_uncounted_and_holds_nothing() {
    // One slot, taken by a live bucket of another identity.
    let l = Limiter::new(1, *b"0123456789abcdef");
    let s = MemoryStore::default();
    let p = Policy::new(0, "default", 10, 60, 0).unwrap();
    let mut w = Leases::new();
    assert!(w.take_all(&l, &s, &[&p], client(&l, "first"), T0).allowed());
    let v = w.take_all(&l, &s, &[&p], client(&l, "second"), T0);
    assert!(v.allowed());
    assert_eq!(v.outcomes[0].tracking, Tracking::Overflow);
    assert_eq!(w.len(), 0);
}

#[test]
fn two_workers_at_three_times_the_rate_for_ten_seconds_stay_within_ten_percent() {
    let l = limiter();
    let s = MemoryStore::default();
    // The end-to-end accuracy test's limit.
    let p = Policy::new(0, "default", 50, 1, 10).unwrap();
    let who = client(&l, "busy");
    let mut workers = [Leases::new(), Leases::new()];
    let mut rng = Rng(42);
    let mut events: Vec<(u64, usize)> = (0..1500)
        .map(|_| (T0 + rng.next() % 10_000, usize::from(rng.chance(50))))
        .collect();
    events.sort_unstable();
    let mut allowed = 0u64;
    for (now, worker) in events {
        if workers[worker].take_all(&l, &s, &[&p], who, now).allowed() {
            allowed += 1;
        }
    }
    // 500 sustained + 60 at the start; what workers hold at the end is lost.
    let (sustained, cap) = (500.0, 60.0);
    assert!(
        (0.9 * sustained..=1.1 * sustained + cap).contains(&(allowed as f64)),
        "{allowed}"
    );
    assert!((550..=560).contains(&allowed), "allowed {allowed}");
}
