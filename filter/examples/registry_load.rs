//! Load time, memory and look-up time of an identity registry of N entries
//! (CONTRACT §1.2), on the same document the benchmark's `scopegate-registry`
//! side gives Envoy (tests/bench/bench.py `identities_doc`: byte for byte the
//! same `identities` member; both print its sha256).
//!
//! Natively:
//!   cargo run --release -p scopegate --example registry_load -- 100000
//! In V8 (Node), built like the shipped .wasm (release profile):
//!   cargo build --release -p scopegate --target wasm32-wasip1 --example registry_load
//!   node tests/wasm/wasi-run.mjs target/wasm32-wasip1/release/examples/registry_load.wasm 100000
//!
//! Arguments: entries (100000), parse runs (7), look-ups (1000000).
//! Reports the median time of `scopegate::policy::config::parse_json` on the
//! whole configuration (what `on_configure` does), the heap the loaded
//! configuration keeps and the peak during parsing (a counting allocator),
//! Wasm linear memory when run as Wasm, and ns per `Registry::find` over a
//! mix of registered (spread over the whole registry) and unknown client ids.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use scopegate::policy::config::{self, RegistrySource};
use sha2::{Digest, Sha256};
use std::alloc::{GlobalAlloc, Layout, System};
use std::fmt::Write as _;
use std::hint::black_box;
use std::sync::atomic::{AtomicUsize, Ordering::Relaxed};
use std::time::Instant;

struct Counting;
static LIVE: AtomicUsize = AtomicUsize::new(0);
static PEAK: AtomicUsize = AtomicUsize::new(0);

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, l: Layout) -> *mut u8 {
        let p = unsafe { System.alloc(l) };
        if !p.is_null() {
            let now = LIVE.fetch_add(l.size(), Relaxed) + l.size();
            PEAK.fetch_max(now, Relaxed);
        }
        p
    }
    unsafe fn dealloc(&self, p: *mut u8, l: Layout) {
        unsafe { System.dealloc(p, l) };
        LIVE.fetch_sub(l.size(), Relaxed);
    }
    unsafe fn realloc(&self, p: *mut u8, l: Layout, new: usize) -> *mut u8 {
        let q = unsafe { System.realloc(p, l, new) };
        if !q.is_null() {
            if new >= l.size() {
                let now = LIVE.fetch_add(new - l.size(), Relaxed) + (new - l.size());
                PEAK.fetch_max(now, Relaxed);
            } else {
                LIVE.fetch_sub(l.size() - new, Relaxed);
            }
        }
        q
    }
}

#[global_allocator]
static ALLOC: Counting = Counting;

/// The benchmark's client (tests/bench/tokens.py CLIENT_ID), registered with
/// a ceiling that covers the steady tokens' scopes.
const BENCH_ENTRY: &str = r#"{"client_id":"bench-client","provider":"corp","owner":"bench@example.com","description":"wrk load generator","max_scopes":["payments:read","payments:write"]}"#;

/// Entry `i` of the generated registry; keep in step with bench.py `registry_entry`.
fn entry(out: &mut String, i: usize) {
    write!(out, r#"{{"client_id":"svc-{i:06}""#).unwrap();
    if i % 2 == 0 {
        out.push_str(r#","provider":"corp""#);
    }
    write!(out, r#","owner":"team-{:03}@example.com""#, i % 500).unwrap();
    if i % 4 == 0 {
        write!(out, r#","description":"service {i:06}""#).unwrap();
    }
    if i % 10 == 0 {
        out.push_str(r#","expires":"2030-01-01T00:00:00Z""#);
    }
    out.push_str(match i % 3 {
        0 => r#","max_scopes":["payments:read"]"#,
        1 => r#","max_scopes":["payments:read","payments:write"]"#,
        _ => r#","max_scopes":["orders:read"]"#,
    });
    if i % 100 == 99 {
        out.push_str(r#","status":"disabled""#);
    }
    out.push('}');
}

/// The `identities` member: `n` entries, the benchmark's client at `n / 2`
/// and `svc-000000` ... around it.
fn identities(n: usize) -> String {
    let mut out = String::with_capacity(n * 130);
    out.push_str(r#"{"registry":{"inline":["#);
    let mut svc = 0;
    for k in 0..n {
        if k > 0 {
            out.push(',');
        }
        if k == n / 2 {
            out.push_str(BENCH_ENTRY);
        } else {
            entry(&mut out, svc);
            svc += 1;
        }
    }
    out.push_str(r#"]},"unregistered":"deny"}"#);
    out
}

fn document(identities: &str) -> String {
    // The benchmark's configuration (tests/bench/envoy/scopegate-config.json)
    // with one P-256 key (filter/testdata/ec-p256.pk8.pem) in place of its keys.
    format!(
        r#"{{"providers":[{{"name":"corp","issuer":"https://idp.example.com","audiences":["payments-api"],"jwks":{{"inline":{{"keys":[{{"kty":"EC","crv":"P-256","kid":"es","alg":"ES256","use":"sig","x":"Wnkg31slGvD5r30cYKhVIb560Nu_yom1BWWtkR0Lh1U","y":"-KhHwUDgEF0CNZaKBLatewbZLRAUwHGaH-Y5gUaA1WQ"}}]}}}},"algorithms":["RS256","ES256"],"clock_skew_s":60}}],"token_sources":[{{"header":"authorization","prefix":"Bearer "}}],"rules":[{{"name":"read","methods":["GET","HEAD"],"path":"/payments/**","scopes":["payments:read"]}}],"default_action":"deny","identity_headers":{{"subject":"x-identity-subject","client_id":"x-identity-client-id","scopes":"x-identity-scopes"}},"forward_token":true,"mode":"enforce","audit_log":"off","identities":{identities}}}"#
    )
}

fn arg(n: usize, default: usize) -> usize {
    std::env::args()
        .nth(n)
        .map_or(default, |a| a.replace('_', "").parse().expect("a number"))
}

fn mib(b: usize) -> f64 {
    b as f64 / 1048576.0
}

fn main() {
    let n = arg(1, 100_000);
    let runs = arg(2, 7).max(1);
    let lookups = arg(3, 1_000_000);
    let target = if cfg!(target_arch = "wasm32") {
        "wasm32 (V8 when run by tests/wasm/wasi-run.mjs)"
    } else {
        "native"
    };

    let ids = identities(n);
    let doc = document(&ids);
    let sha = Sha256::digest(ids.as_bytes());
    println!("registry_load, {target}: {n} entries");
    println!(
        "document: {} bytes ({:.1} MiB), identities member sha256 {}",
        doc.len(),
        mib(doc.len()),
        sha.iter().fold(String::new(), |mut s, b| {
            let _ = write!(s, "{b:02x}");
            s
        })
    );

    // Parse `runs` times; keep the last configuration for the look-ups.
    let mut times = Vec::with_capacity(runs);
    let mut kept = None;
    let (mut live_after, mut peak_during) = (0, 0);
    for _ in 0..runs {
        drop(kept.take());
        let before = LIVE.load(Relaxed);
        PEAK.store(before, Relaxed);
        let t = Instant::now();
        let cfg = config::parse_json(doc.as_bytes()).unwrap_or_else(|e| {
            panic!(
                "invalid: {}",
                e.iter()
                    .map(ToString::to_string)
                    .collect::<Vec<_>>()
                    .join("; ")
            )
        });
        times.push(t.elapsed().as_secs_f64() * 1e3);
        live_after = LIVE.load(Relaxed) - before;
        peak_during = PEAK.load(Relaxed) - before;
        kept = Some(cfg);
    }
    let cfg = kept.unwrap();
    let mut sorted = times.clone();
    sorted.sort_by(f64::total_cmp);
    println!(
        "parse_json (validate + build), {runs} runs: median {:.1} ms, min {:.1}, max {:.1}, first {:.1}",
        sorted[runs / 2],
        sorted[0],
        sorted[runs - 1],
        times[0]
    );
    println!(
        "heap: the loaded configuration keeps {:.1} MiB ({:.0} bytes per entry); peak while parsing {:.1} MiB above it before",
        mib(live_after),
        live_after as f64 / n as f64,
        mib(peak_during)
    );
    #[cfg(target_arch = "wasm32")]
    println!(
        "wasm linear memory now: {:.1} MiB (it never shrinks: the peak of parsing stays reserved)",
        mib(core::arch::wasm32::memory_size(0) * 65536)
    );

    let registry = match cfg.identities.as_ref().map(|i| &i.registry) {
        Some(RegistrySource::Inline(r)) => r.clone(),
        _ => panic!("no inline registry"),
    };
    assert_eq!(registry.len(), n);
    assert!(registry.find(0, "bench-client").is_some());

    // 4096 probes: 7 of 8 registered ids spread over the registry, 1 of 8
    // unknown; the same strings over and over, as a worker sees its callers.
    let probes: Vec<String> = (0..4096u64)
        .map(|k| {
            let x = k.wrapping_mul(0x9E37_79B9_7F4A_7C15) >> 11;
            if k % 8 == 7 {
                format!("unknown-{:06}", x % 1_000_000)
            } else {
                format!("svc-{:06}", x % (n.saturating_sub(1).max(1)) as u64)
            }
        })
        .collect();
    let mut best = f64::INFINITY;
    let mut found = 0usize;
    for _ in 0..5 {
        found = 0;
        let t = Instant::now();
        for i in 0..lookups {
            let id = &probes[i & 4095];
            if black_box(&registry).find(0, black_box(id)).is_some() {
                found += 1;
            }
        }
        best = best.min(t.elapsed().as_secs_f64() * 1e9 / lookups.max(1) as f64);
    }
    println!(
        "Registry::find: {best:.1} ns per look-up (best of 5 x {lookups} look-ups; {found} found, {} unknown)",
        lookups - found
    );
    drop(registry);
    drop(cfg);
    fetched_registry(&ids);
    revocation(arg(4, 1_000_000), lookups);
}

/// The same entries as a fetched registry document, read entry by entry.
fn fetched_registry(ids: &str) {
    let entries = ids
        .strip_prefix(r#"{"registry":{"inline":"#)
        .and_then(|rest| rest.split_once(r#"]},"unregistered""#))
        .map_or_else(|| "[]".to_string(), |(head, _)| format!("{head}]"));
    let doc = format!(r#"{{"identities":{entries}}}"#);
    let before = LIVE.load(Relaxed);
    PEAK.store(before, Relaxed);
    let t = Instant::now();
    let registry = config::parse_registry_document(doc.as_bytes(), &["corp"])
        .unwrap_or_else(|e| panic!("invalid: {:?}", e.first()));
    let ms = t.elapsed().as_secs_f64() * 1e3;
    println!(
        "fetched registry document of {} entries: parsed in {ms:.1} ms; keeps {:.1} MiB; peak while reading {:.1} MiB above the document",
        registry.len(),
        mib(LIVE.load(Relaxed) - before),
        mib(PEAK.load(Relaxed) - before)
    );
}

/// A fetched revocation list of `n` token ids: parse time, what it keeps,
/// the peak while reading it, and the cost of a look-up.
fn revocation(n: usize, lookups: usize) {
    use scopegate::policy::revocation::TokenFacts;
    let mut doc = String::with_capacity(n * 16 + 16);
    doc.push_str("{\"tokens\": [");
    for i in 0..n {
        if i > 0 {
            doc.push(',');
        }
        let _ = write!(doc, "\"jti-{i:07}\"");
    }
    doc.push_str("]}");
    let before = LIVE.load(Relaxed);
    PEAK.store(before, Relaxed);
    let t = Instant::now();
    let list = config::parse_revocation_document(doc.as_bytes(), &["corp"])
        .unwrap_or_else(|e| panic!("invalid: {e:?}"));
    let ms = t.elapsed().as_secs_f64() * 1e3;
    let (live, peak) = (LIVE.load(Relaxed) - before, PEAK.load(Relaxed) - before);
    println!(
        "revocation list of {n} token ids ({:.1} MiB of JSON): parsed in {ms:.1} ms; keeps {:.1} MiB (digests {:.1} MiB); peak while reading {:.1} MiB above the document",
        mib(doc.len()),
        mib(live),
        mib(list.token_bytes()),
        mib(peak)
    );
    let probes: Vec<String> = (0..4096usize)
        .map(|k| format!("jti-{:07}", (k * 7919) % (2 * n.max(1))))
        .collect();
    let mut best = f64::INFINITY;
    for _ in 0..5 {
        let t = Instant::now();
        for i in 0..lookups {
            let facts = TokenFacts {
                provider: 0,
                jti: Some(probes[i & 4095].as_str()),
                client_id: Some("bench-client"),
                subject: Some("svc"),
                iat: Some(1),
            };
            black_box(black_box(&list).check(&facts));
        }
        best = best.min(t.elapsed().as_secs_f64() * 1e9 / lookups.max(1) as f64);
    }
    println!("RevocationList::check: {best:.1} ns per request (best of 5 x {lookups})");
}
