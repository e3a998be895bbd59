//! Per-identity rate limits: token-bucket arithmetic under an injected clock,
//! the values of the response fields, workers racing on one store, bounded
//! slots (takeover, probing, overflow) and whatever garbage the store holds.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

#[path = "fixtures_rng/rng.rs"]
mod rng;

use rng::Rng;
use scopegate::request::ratelimit::{
    policy_header, ratelimit_header, shared_secret, IdentityKey, Limiter, MemoryStore, Outcome,
    Policy, PolicyError, SetError, SharedStore, Tracking, Who, MAX_ATTEMPTS, MAX_CAPACITY,
    MAX_CLOCK_STEP_MS, SECRET_KEY, SLOT_BYTES,
};
use std::cell::{Cell, RefCell};

const SECRET: [u8; 16] = *b"0123456789abcdef";

fn policy(requests: u32, per_s: u32, burst: u32) -> Policy {
    Policy::new(0, "default", requests, per_s, burst).unwrap()
}

fn limiter() -> Limiter {
    Limiter::new(1000, SECRET)
}

fn client(l: &Limiter, id: &str) -> IdentityKey {
    l.identity(0, Who::Client(id))
}

/// Requests `n` times at `now`; how many passed.
fn burst_at(
    l: &Limiter,
    s: &MemoryStore,
    p: &Policy,
    who: IdentityKey,
    n: usize,
    now: u64,
) -> usize {
    (0..n).filter(|_| l.take(s, p, who, now).allowed).count()
}

// ---- Bucket arithmetic ------------------------------------------------------

#[test]
fn an_idle_identity_may_send_requests_plus_burst_at_once_and_no_more() {
    let (l, s, p) = (limiter(), MemoryStore::default(), policy(10, 1, 5));
    let who = client(&l, "svc-a");
    assert_eq!(burst_at(&l, &s, &p, who, 100, 1_000_000), 15);
}

#[test]
fn tokens_come_back_at_requests_per_period() {
    let (l, s, p) = (limiter(), MemoryStore::default(), policy(10, 1, 0));
    let who = client(&l, "svc-a");
    let t0 = 1_000_000;
    assert_eq!(burst_at(&l, &s, &p, who, 10, t0), 10);
    assert!(!l.take(&s, &p, who, t0 + 99).allowed, "0.99 of a token");
    assert!(
        l.take(&s, &p, who, t0 + 100).allowed,
        "one token per 100 ms"
    );
    assert!(!l.take(&s, &p, who, t0 + 100).allowed);
    // Half a second later: five more.
    assert_eq!(burst_at(&l, &s, &p, who, 10, t0 + 600), 5);
}

#[test]
fn a_slow_rate_over_a_long_period_refills_in_fractions() {
    // 3 requests a day: a token every 8 hours, built from millisecond steps.
    let (l, s, p) = (limiter(), MemoryStore::default(), policy(3, 86_400, 0));
    let who = client(&l, "nightly");
    let t0 = 1_000_000;
    assert_eq!(burst_at(&l, &s, &p, who, 5, t0), 3);
    let token = 8 * 3600 * 1000;
    // Refused requests write nothing, so polling does not lose the fractions.
    for t in (t0..t0 + token).step_by(997) {
        assert!(!l.take(&s, &p, who, t).allowed);
    }
    assert!(l.take(&s, &p, who, t0 + token).allowed);
}

#[test]
fn a_long_idle_refills_to_capacity_and_never_beyond() {
    let (l, s, p) = (limiter(), MemoryStore::default(), policy(1_000_000, 1, 7));
    let who = client(&l, "svc-a");
    assert_eq!(burst_at(&l, &s, &p, who, 5, 1_000), 5);
    // Years later, with a large rate: the refill product does not overflow.
    let later = 1_000 + 10 * 365 * 86_400 * 1000;
    let o = l.take(&s, &p, who, later);
    assert!(o.allowed);
    assert_eq!(o.remaining, p.capacity() - 1);
    // u64::MAX is never a refill time to trust, but must not panic either.
    let o = l.take(&s, &p, who, u64::MAX);
    assert!(o.allowed);
}

#[test]
fn refused_requests_do_not_push_the_next_token_back_nor_go_negative() {
    let (l, s, p) = (limiter(), MemoryStore::default(), policy(1, 1, 0));
    let who = client(&l, "svc-a");
    let t0 = 5_000;
    assert!(l.take(&s, &p, who, t0).allowed);
    for t in t0..t0 + 1000 {
        let o = l.take(&s, &p, who, t);
        assert!(!o.allowed);
        assert_eq!(o.remaining, 0);
    }
    assert!(l.take(&s, &p, who, t0 + 1000).allowed);
}

#[test]
fn a_clock_going_back_refills_nothing_until_it_catches_up() {
    let (l, s, p) = (limiter(), MemoryStore::default(), policy(10, 1, 0));
    let who = client(&l, "svc-a");
    let t0 = 100_000;
    assert_eq!(burst_at(&l, &s, &p, who, 10, t0), 10);
    // Stepped back 5 s: no token appears, whatever the step.
    assert!(!l.take(&s, &p, who, t0 - 5_000).allowed);
    assert!(!l.take(&s, &p, who, t0 - 4_000).allowed);
    // Counting resumes from the last refill, not from the earlier reading.
    assert!(!l.take(&s, &p, who, t0 + 99).allowed);
    assert!(l.take(&s, &p, who, t0 + 100).allowed);
}

#[test]
fn a_refill_time_far_in_the_future_reads_as_an_unused_slot() {
    let (l, s, p) = (limiter(), MemoryStore::default(), policy(10, 1, 0));
    let who = client(&l, "svc-a");
    let late = 10_000_000;
    assert_eq!(burst_at(&l, &s, &p, who, 10, late), 10);
    // The clock is stepped back by more than MAX_CLOCK_STEP_MS: the bucket
    // cannot be trusted, and the identity starts afresh.
    let now = late - MAX_CLOCK_STEP_MS - 1;
    assert_eq!(burst_at(&l, &s, &p, who, 20, now), 10);
}

// ---- Outcome values ---------------------------------------------------------

#[test]
fn remaining_reset_and_retry_after_follow_the_bucket() {
    let (l, s, p) = (limiter(), MemoryStore::default(), policy(1, 60, 0));
    let who = client(&l, "svc-a");
    let t0 = 1_000_000;
    let first = l.take(&s, &p, who, t0);
    assert_eq!(
        first,
        Outcome {
            allowed: true,
            limit: 1,
            remaining: 0,
            reset_s: 60,
            retry_after_s: 0,
            tracking: Tracking::Counted,
        }
    );
    let refused = l.take(&s, &p, who, t0 + 30_000);
    assert!(!refused.allowed);
    assert_eq!(
        (refused.remaining, refused.reset_s, refused.retry_after_s),
        (0, 30, 30)
    );
    // Rounded up: 1 ms short of the token is still one second to wait.
    let almost = l.take(&s, &p, who, t0 + 59_999);
    assert_eq!((almost.reset_s, almost.retry_after_s), (1, 1));
}

#[test]
fn reset_is_zero_only_when_the_bucket_is_full() {
    let (l, s, p) = (limiter(), MemoryStore::default(), policy(100, 60, 20));
    let who = client(&l, "svc-a");
    let o = l.take(&s, &p, who, 1_000);
    // 119 whole tokens left; the 120th comes back in 0.6 s, shown as 1 s.
    assert_eq!((o.limit, o.remaining, o.reset_s), (100, 119, 1));
    // Full again after 0.6 s: nothing more is coming.
    // Full again after 0.6 s; a request another policy refuses takes
    // nothing, so this one reports a full bucket: nothing more is coming.
    let closed = Policy::new(1, "closed", 1, 3600, 0).unwrap();
    assert!(l.take(&s, &closed, who, 1_000).allowed);
    let policies = [&p, &closed];
    let v = l.take_all(&s, &policies, who, 1_600);
    assert!(!v.allowed());
    assert_eq!((v.outcomes[0].remaining, v.outcomes[0].reset_s), (120, 0));
    assert_eq!(
        ratelimit_header(&policies, &v.outcomes, None),
        "\"default\";r=120, \"closed\";r=0;t=3600"
    );
}

// ---- Several policies ---------------------------------------------------------

#[test]
fn a_request_passes_only_when_every_policy_has_a_token() {
    let l = limiter();
    let s = MemoryStore::default();
    let wide = Policy::new(1, "wide", 100, 1, 0).unwrap();
    let narrow = Policy::new(2, "narrow", 2, 60, 0).unwrap();
    let who = client(&l, "svc-a");
    let both = [&wide, &narrow];
    assert!(l.take_all(&s, &both, who, 1_000).allowed());
    assert!(l.take_all(&s, &both, who, 1_000).allowed());
    let v = l.take_all(&s, &both, who, 1_000);
    assert!(!v.allowed());
    assert_eq!(v.retry_after_s(), Some(30));
    assert!(v.outcomes[0].allowed && !v.outcomes[1].allowed);
    // The refused request took nothing from `wide`: 98 left, as after two.
    assert_eq!(v.outcomes[0].remaining, 98);
    assert_eq!(l.take(&s, &wide, who, 1_000).remaining, 97);
}

#[test]
fn each_policy_keeps_its_own_bucket_for_the_same_identity() {
    let l = limiter();
    let s = MemoryStore::default();
    let a = Policy::new(1, "a", 1, 60, 0).unwrap();
    let b = Policy::new(2, "b", 1, 60, 0).unwrap();
    let who = client(&l, "svc-a");
    assert!(l.take(&s, &a, who, 1_000).allowed);
    assert!(l.take(&s, &b, who, 1_000).allowed);
    assert!(!l.take(&s, &a, who, 1_000).allowed);
}

/// Another worker's whole request, run inside this worker's.
type OtherWorker<'a> = Box<dyn FnOnce(&MemoryStore) + 'a>;

/// Runs `before` (another worker's work) just before the next `set` whose
/// key starts with `prefix`, then counts that write's mismatches.
struct Racing<'a> {
    inner: &'a RefCell<MemoryStore>,
    prefix: &'static str,
    before: RefCell<Option<OtherWorker<'a>>>,
    gets: Cell<usize>,
    sets: Cell<usize>,
    mismatches: Cell<usize>,
}

impl<'a> Racing<'a> {
    fn new(inner: &'a RefCell<MemoryStore>) -> Racing<'a> {
        Racing {
            inner,
            prefix: "",
            before: RefCell::new(None),
            gets: Cell::new(0),
            sets: Cell::new(0),
            mismatches: Cell::new(0),
        }
    }
}

impl SharedStore for Racing<'_> {
    fn get(&self, key: &str) -> Option<(Vec<u8>, u32)> {
        self.gets.set(self.gets.get() + 1);
        self.inner.borrow().get(key)
    }

    fn set(&self, key: &str, value: &[u8], cas: u32) -> Result<(), SetError> {
        if key.starts_with(self.prefix) {
            let other = self.before.borrow_mut().take();
            if let Some(other) = other {
                other(&self.inner.borrow());
            }
        }
        self.sets.set(self.sets.get() + 1);
        let r = self.inner.borrow_mut().set(key, value, cas);
        if r.is_err() {
            self.mismatches.set(self.mismatches.get() + 1);
        }
        r
    }
}

#[test]
fn a_policy_emptied_by_another_worker_mid_request_gives_back_what_was_taken() {
    let l = limiter();
    let inner = RefCell::new(MemoryStore::default());
    let wide = Policy::new(1, "wide", 100, 1, 0).unwrap();
    let narrow = Policy::new(2, "narrow", 1, 60, 0).unwrap();
    let who = client(&l, "svc-a");
    // Make `narrow`'s slot exist, full, so the race is on a CAS number.
    {
        let s = inner.borrow_mut();
        assert!(l.take(&*s, &narrow, who, 0).allowed);
    }
    let now = 60_000;
    let mut racing = Racing::new(&inner);
    racing.prefix = "scopegate.rl.2.";
    *racing.before.borrow_mut() = Some(Box::new(|s: &MemoryStore| {
        assert!(
            l.take(s, &narrow, who, now).allowed,
            "the other worker wins"
        );
    }));
    let v = l.take_all(&racing, &[&wide, &narrow], who, now);
    assert!(!v.allowed());
    assert_eq!(racing.mismatches.get(), 1);
    // `wide` got its token back: a full bucket less the one taken now.
    let after = l.take(&*inner.borrow_mut(), &wide, who, now);
    assert_eq!(after.remaining, 99);
}

// ---- Workers racing ---------------------------------------------------------

#[test]
fn two_workers_at_three_times_the_rate_for_ten_seconds_pass_the_rate_within_ten_percent() {
    let l = limiter();
    let p = policy(100, 1, 20);
    let who = client(&l, "busy");
    let inner = RefCell::new(MemoryStore::default());
    let mut rng = Rng(42);
    // 3,000 requests over 10 s at random instants, each on one of 2 workers.
    let mut events: Vec<(u64, bool)> = (0..3000)
        .map(|_| (1_000_000 + rng.next() % 10_000, rng.chance(50)))
        .collect();
    events.sort_unstable();
    let allowed = Cell::new(0usize);
    let (mut races, mut lost) = (0, 0);
    let mut i = 0;
    while i < events.len() {
        let (now, _) = events[i];
        let racing = Racing::new(&inner);
        // The next request, when close, lands on the other worker between
        // this one's read and its write.
        let next = events.get(i + 1).copied();
        if let Some((then, _)) = next.filter(|(t, _)| t - now <= 3) {
            let (p, allowed) = (&p, &allowed);
            let l = &l;
            *racing.before.borrow_mut() = Some(Box::new(move |s: &MemoryStore| {
                if l.take(s, p, who, then).allowed {
                    allowed.set(allowed.get() + 1);
                }
            }));
            races += 1;
            i += 1;
        }
        if l.take(&racing, &p, who, now).allowed {
            allowed.set(allowed.get() + 1);
        }
        lost += racing.mismatches.get();
        i += 1;
    }
    let sustained = 100 * 10;
    let allowed = allowed.get();
    assert!(races > 100 && lost > 50, "races {races}, lost CAS {lost}");
    assert!(
        allowed as f64 >= sustained as f64 * 0.9
            && allowed as f64 <= sustained as f64 * 1.1 + p.capacity() as f64,
        "allowed {allowed}"
    );
    // Closer than the acceptance bound: a token bucket is exact here.
    assert!((1115..=1122).contains(&allowed), "allowed {allowed}");
}

#[test]
fn a_store_that_always_loses_the_race_refuses_after_the_bounded_attempts() {
    struct Hostile(MemoryStore, Cell<usize>);
    impl SharedStore for Hostile {
        fn get(&self, key: &str) -> Option<(Vec<u8>, u32)> {
            self.1.set(self.1.get() + 1);
            self.0.get(key)
        }
        fn set(&self, _: &str, _: &[u8], _: u32) -> Result<(), SetError> {
            Err(SetError::CasMismatch)
        }
    }
    let (l, p) = (limiter(), policy(10, 1, 0));
    let s = Hostile(MemoryStore::default(), Cell::new(0));
    let v = l.take_all(&s, &[&p], client(&l, "svc-a"), 1_000);
    assert!(!v.allowed());
    assert_eq!(v.outcomes[0].tracking, Tracking::Contended);
    assert_eq!(v.retry_after_s(), Some(1));
    // One read to decide, then one more before each retry (the first key is
    // never created, so each read stops there).
    assert_eq!(s.1.get(), MAX_ATTEMPTS as usize);
}

#[test]
fn the_common_case_costs_one_read_and_one_write_per_policy_and_a_refusal_no_write() {
    let l = limiter();
    let inner = RefCell::new(MemoryStore::default());
    let a = Policy::new(1, "a", 2, 60, 0).unwrap();
    let b = Policy::new(2, "b", 5, 60, 0).unwrap();
    let who = client(&l, "svc-a");
    for round in 0..2 {
        let s = Racing::new(&inner);
        assert!(l.take_all(&s, &[&a, &b], who, 1_000).allowed());
        assert_eq!((s.gets.get(), s.sets.get()), (2, 2), "round {round}");
    }
    let s = Racing::new(&inner);
    assert!(!l.take_all(&s, &[&a, &b], who, 1_000).allowed());
    assert_eq!((s.gets.get(), s.sets.get()), (2, 0));
}

// ---- Slots ----------------------------------------------------------------------

/// Identities whose first slot in `l`'s table of `slots` is the same: the
/// slot each one's first request creates in an empty store.
fn colliding(l: &Limiter, slots: u64, n: usize) -> Vec<IdentityKey> {
    let mut by_slot: std::collections::HashMap<u64, Vec<IdentityKey>> = Default::default();
    for i in 0.. {
        let who = client(l, &format!("client-{i}"));
        let s = MemoryStore::default();
        l.take(&s, &policy(1, 1, 0), who, 0);
        let first = (0..slots)
            .find(|slot| s.get(&format!("scopegate.rl.0.{slot}")).is_some())
            .unwrap();
        let group = by_slot.entry(first).or_default();
        group.push(who);
        if group.len() == n {
            return group.clone();
        }
    }
    unreachable!()
}

#[test]
fn a_busy_slot_sends_the_next_identity_to_the_next_slot() {
    let l = Limiter::new(64, SECRET);
    let p = policy(1, 60, 0);
    let ids = colliding(&l, 64, 4);
    let s = MemoryStore::default();
    for who in &ids {
        let o = l.take(&s, &p, *who, 1_000);
        assert!(o.allowed && o.tracking == Tracking::Counted);
    }
    assert_eq!(s.usage().entries, 4);
    // Each found its own bucket again: all four are now refused.
    for who in &ids {
        assert!(!l.take(&s, &p, *who, 2_000).allowed);
    }
}

#[test]
fn when_every_probed_slot_is_busy_the_request_passes_uncounted_as_overflow() {
    let l = Limiter::new(64, SECRET);
    let p = policy(1, 60, 0);
    let ids = colliding(&l, 64, 5);
    let s = MemoryStore::default();
    for who in &ids[..4] {
        assert!(l.take(&s, &p, *who, 1_000).allowed);
    }
    for _ in 0..3 {
        let v = l.take_all(&s, &[&p], ids[4], 1_000);
        assert!(v.allowed() && v.overflowed());
        assert_eq!(v.outcomes[0].tracking, Tracking::Overflow);
    }
    assert_eq!(
        s.usage().entries,
        4,
        "the overflowing identity wrote nothing"
    );
}

#[test]
fn an_idle_bucket_is_taken_over_by_another_identity() {
    let l = Limiter::new(1, SECRET);
    let p = policy(1, 60, 0);
    let s = MemoryStore::default();
    let (a, b) = (client(&l, "a"), client(&l, "b"));
    assert!(l.take(&s, &p, a, 0).allowed);
    assert_eq!(l.take(&s, &p, b, 30_000).tracking, Tracking::Overflow);
    // `a` has refilled: its slot is free for `b`, who starts full.
    let o = l.take(&s, &p, b, 60_000);
    assert_eq!((o.allowed, o.tracking), (true, Tracking::Counted));
    assert!(!l.take(&s, &p, b, 60_000).allowed);
    // And `a`, back again, finds `b` there, busy.
    assert_eq!(l.take(&s, &p, a, 60_000).tracking, Tracking::Overflow);
    assert_eq!(s.usage().entries, 1);
}

#[test]
fn an_identity_behind_an_idle_slot_keeps_its_own_bucket() {
    let l = Limiter::new(64, SECRET);
    let p = policy(10, 10, 0);
    let ids = colliding(&l, 64, 2);
    let (first, second) = (ids[0], ids[1]);
    let s = MemoryStore::default();
    assert!(l.take(&s, &p, first, 0).allowed);
    assert_eq!(burst_at(&l, &s, &p, second, 10, 0), 10);
    // At 1 s `first` is full (idle) and `second` has one token: it must find
    // its own slot behind the idle one, not start a fresh bucket there.
    assert_eq!(burst_at(&l, &s, &p, second, 10, 1_000), 1);
}

// ---- Garbage --------------------------------------------------------------------

#[test]
fn garbage_in_the_store_reads_as_unused_slots_and_never_panics() {
    let l = Limiter::new(16, SECRET);
    let p = policy(3, 1, 0);
    let mut rng = Rng(7);
    for round in 0..200 {
        let s = MemoryStore::default();
        for slot in 0..16 {
            let len = match rng.below(4) {
                0 => 0,
                1 => SLOT_BYTES,
                2 => SLOT_BYTES + 1,
                _ => rng.below(64),
            };
            let mut bytes = rng.bytes(len);
            if round % 2 == 0 {
                if let Some(b) = bytes.first_mut() {
                    *b = 1; // the current format byte, with random fields
                }
            }
            s.set(&format!("scopegate.rl.0.{slot}"), &bytes, 0).unwrap();
        }
        let who = client(&l, &format!("svc-{round}"));
        let passed = burst_at(&l, &s, &p, who, 5, 1_000_000);
        // Random fields hold a stranger's digest and a refill time either
        // far ahead (unreadable) or long past (idle): the slot is free.
        assert_eq!(passed, 3, "round {round}");
    }
}

#[test]
fn the_secret_is_written_once_and_read_by_every_later_worker() {
    let s = MemoryStore::default();
    let first = shared_secret(&s, [1; 16]);
    assert_eq!(first, [1; 16]);
    assert_eq!(shared_secret(&s, [2; 16]), [1; 16]);
    // A damaged value is replaced.
    let damaged = MemoryStore::default();
    damaged.set(SECRET_KEY, b"short", 0).unwrap();
    assert_eq!(shared_secret(&damaged, [3; 16]), [3; 16]);
    assert_eq!(shared_secret(&damaged, [4; 16]), [3; 16]);
}

#[test]
fn workers_with_the_same_secret_share_buckets_and_another_secret_does_not() {
    let p = policy(1, 60, 0);
    let s = MemoryStore::default();
    let (w1, w2) = (Limiter::new(100, SECRET), Limiter::new(100, SECRET));
    assert!(
        w1.take(&s, &p, w1.identity(3, Who::Subject("x")), 0)
            .allowed
    );
    assert!(
        !w2.take(&s, &p, w2.identity(3, Who::Subject("x")), 0)
            .allowed
    );
    let w3 = Limiter::new(100, [9; 16]);
    assert!(
        w3.take(&s, &p, w3.identity(3, Who::Subject("x")), 0)
            .allowed
    );
}

#[test]
fn the_identity_key_separates_providers_and_client_ids_from_subjects() {
    let l = limiter();
    let keys = [
        l.identity(0, Who::Client("x")),
        l.identity(1, Who::Client("x")),
        l.identity(0, Who::Subject("x")),
        l.identity(0, Who::Client("y")),
    ];
    for (i, a) in keys.iter().enumerate() {
        for b in &keys[i + 1..] {
            assert_ne!(a, b);
        }
    }
}

#[test]
fn memory_store_follows_envoys_compare_and_swap() {
    let s = MemoryStore::default();
    assert!(s.get("k").is_none());
    s.set("k", b"a", 0).unwrap();
    let (_, cas) = s.get("k").unwrap();
    assert_ne!(cas, 0);
    s.set("k", b"b", cas).unwrap();
    assert_eq!(
        s.set("k", b"c", cas),
        Err(SetError::CasMismatch),
        "stale CAS"
    );
    s.set("k", b"d", 0).unwrap();
    assert_eq!(s.get("k").unwrap().0, b"d");
}

// ---- Policies and response fields --------------------------------------------

#[test]
fn policies_refuse_values_that_cannot_work_with_a_message_naming_the_fix() {
    assert_eq!(Policy::new(0, "p", 0, 1, 0), Err(PolicyError::ZeroRequests));
    assert_eq!(Policy::new(0, "p", 1, 0, 0), Err(PolicyError::ZeroPeriod));
    let most = MAX_CAPACITY as u32;
    assert!(Policy::new(0, "p", most - 10, 1, 10).is_ok());
    let e = Policy::new(0, "p", most, 1, 1).unwrap_err();
    assert_eq!(e, PolicyError::TooLarge);
    assert!(e.to_string().contains("at most 281474976"), "{e}");
    let long = "x".repeat(65);
    for bad in ["", "tab\there", "é", long.as_str()] {
        let e = Policy::new(0, bad, 1, 1, 0).unwrap_err();
        assert!(e.to_string().contains("printable ASCII"), "{e}");
    }
    assert!(PolicyError::ZeroRequests
        .to_string()
        .contains("`requests` must be at least 1"));
}

#[test]
fn the_policy_field_matches_the_drafts_examples() {
    let default = Policy::new(0, "default", 100, 10, 0).unwrap();
    assert_eq!(policy_header(&[&default], None), "\"default\";q=100;w=10");
    let permin = Policy::new(0, "permin", 50, 60, 0).unwrap();
    let perhr = Policy::new(1, "perhr", 1000, 3600, 0).unwrap();
    // RFC 9651 §4.1.1 serializes list members with ", ".
    assert_eq!(
        policy_header(&[&permin, &perhr], None),
        "\"permin\";q=50;w=60, \"perhr\";q=1000;w=3600"
    );
    let burst = Policy::new(0, "default", 100, 60, 20).unwrap();
    assert_eq!(
        policy_header(&[&burst], None),
        "\"default\";q=100;w=60;scopegate-burst=20"
    );
    let odd = Policy::new(0, "a\"b\\c", 1, 1, 0).unwrap();
    assert_eq!(policy_header(&[&odd], None), "\"a\\\"b\\\\c\";q=1;w=1");
}

#[test]
fn the_ratelimit_field_matches_the_drafts_examples() {
    let p = policy(100, 60, 0);
    let o = |remaining, reset_s| Outcome {
        allowed: true,
        limit: 100,
        remaining,
        reset_s,
        retry_after_s: 0,
        tracking: Tracking::Counted,
    };
    assert_eq!(
        ratelimit_header(&[&p], &[o(50, 30)], None),
        "\"default\";r=50;t=30"
    );
    // The draft's partition-key example, with our key in place of theirs.
    let l = limiter();
    let pk = l.partition_key(client(&l, "trial121323"));
    assert_eq!(
        ratelimit_header(&[&p], &[o(999, 0)], Some(&pk)),
        format!("\"default\";r=999;pk=:{}:", pk.as_str())
    );
    let permin = Policy::new(0, "permin", 50, 60, 0).unwrap();
    assert_eq!(
        ratelimit_header(&[&p, &permin], &[o(1, 2), o(3, 4)], None),
        "\"default\";r=1;t=2, \"permin\";r=3;t=4"
    );
}

#[test]
fn the_partition_key_is_stable_opaque_and_per_secret() {
    let l = limiter();
    let id = "svc-payments@example";
    let pk = l.partition_key(l.identity(0, Who::Client(id)));
    assert_eq!(pk, l.partition_key(l.identity(0, Who::Client(id))));
    assert_ne!(pk, l.partition_key(l.identity(0, Who::Client("other"))));
    let other = Limiter::new(1000, [5; 16]);
    assert_ne!(pk, other.partition_key(other.identity(0, Who::Client(id))));
    // 8 bytes, base64 with padding: an RFC 9651 Byte Sequence.
    assert_eq!(pk.as_str().len(), 12);
    assert!(pk.as_str().ends_with('='));
    assert!(!pk.as_str().contains("svc"));
    let field = policy_header(&[&policy(1, 1, 0)], Some(&pk));
    assert_eq!(field, format!("\"default\";q=1;w=1;pk=:{}:", pk.as_str()));
}

#[test]
fn a_refusal_carries_retry_after_equal_to_the_reset_of_its_field() {
    let (l, s, p) = (limiter(), MemoryStore::default(), policy(2, 10, 0));
    let who = client(&l, "svc-a");
    let policies = [&p];
    l.take_all(&s, &policies, who, 0);
    l.take_all(&s, &policies, who, 0);
    let v = l.take_all(&s, &policies, who, 1_000);
    assert!(!v.allowed());
    assert_eq!(v.retry_after_s(), Some(4));
    assert_eq!(
        ratelimit_header(&policies, &v.outcomes, None),
        "\"default\";r=0;t=4"
    );
}

/// The usage sketched in the module documentation, run.
#[test]
fn the_module_doc_example_runs() {
    let store = MemoryStore::default();
    let secret = shared_secret(&store, [7; 16]);
    let limiter = Limiter::new(100_000, secret);
    let policy = Policy::new(0, "default", 100, 60, 20).unwrap();
    let rule_policy = Policy::new(1, "writes", 2, 1, 0).unwrap();
    let policy_field = policy_header(&[&policy, &rule_policy], None);
    let who = limiter.identity(0, Who::Client("svc-a"));
    let policies = [&policy, &rule_policy];
    let mut last = None;
    for _ in 0..3 {
        last = Some(limiter.take_all(&store, &policies, who, 1_000));
    }
    let verdict = last.unwrap();
    assert!(!verdict.allowed());
    assert_eq!(verdict.retry_after_s(), Some(1));
    assert_eq!(
        policy_field,
        "\"default\";q=100;w=60;scopegate-burst=20, \"writes\";q=2;w=1"
    );
    assert_eq!(
        ratelimit_header(&policies, &verdict.outcomes, None),
        "\"default\";r=118;t=1, \"writes\";r=0;t=1"
    );
}
