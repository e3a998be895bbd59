//! What per-identity rate limits keep in the store: N identities active at
//! once (each has just spent a token, so no bucket is idle and none can be
//! taken over) under one policy, for tables of N, 2N and 4N slots.
//!
//!   cargo run --release -p scopegate --example ratelimit_memory -- 100000
//!
//! Prints, per table size, the keys and value bytes in the store (what
//! Envoy's shared data holds as strings, before its own per-entry overhead),
//! the bytes per identity that found a slot, how many found none (allowed
//! uncounted: `Tracking::Overflow`), and the time per `take` natively.

use scopegate::request::ratelimit::{Limiter, MemoryStore, Policy, Tracking, Who};
use std::time::Instant;

fn main() {
    let n: u32 = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(100_000);
    let Ok(policy) = Policy::new(0, "default", 100, 60, 20) else {
        eprintln!("the example's policy is invalid");
        std::process::exit(1);
    };
    let ids: Vec<String> = (0..n).map(|i| format!("client-{i:08}")).collect();
    println!("{n} active identities, one policy");
    for slots in [n, n.saturating_mul(2), n.saturating_mul(4)] {
        let limiter = Limiter::new(slots, *b"example secret!!");
        let store = MemoryStore::default();
        let now = 1_700_000_000_000;
        let start = Instant::now();
        let overflow = ids
            .iter()
            .map(|id| {
                let who = limiter.identity(0, Who::Client(id));
                limiter.take(&store, &policy, who, now)
            })
            .filter(|o| o.tracking == Tracking::Overflow)
            .count();
        let elapsed = start.elapsed();
        let u = store.usage();
        let tracked = u.entries.max(1);
        println!(
            "max_identities {slots}: {} keys, key bytes {}, value bytes {}, total {} \
             ({:.1} bytes per identity); overflow {overflow} ({:.1}%); {:.0} ns per take",
            u.entries,
            u.key_bytes,
            u.value_bytes,
            u.key_bytes + u.value_bytes,
            (u.key_bytes + u.value_bytes) as f64 / tracked as f64,
            overflow as f64 * 100.0 / f64::from(n.max(1)),
            elapsed.as_nanos() as f64 / f64::from(n.max(1)),
        );
    }
}
