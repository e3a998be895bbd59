//! Hand-written strict base64url decoder against the `base64` crate's strict
//! URL-safe no-padding engine, on the token fuzz corpus, in one run.
//!
//! Natively:
//!   cargo run --release -p scopegate --example base64url_bench -- fuzz/corpus/token
//! In V8 (Node), built like the shipped .wasm (release profile, +simd128 from .cargo/config.toml):
//!   cargo build --release -p scopegate --target wasm32-wasip1 --example base64url_bench
//!   SCOPEGATE_WASI_PREOPEN=/corpus=$PWD/fuzz/corpus/token \
//!     node tests/wasm/wasi-run.mjs target/wasm32-wasip1/release/examples/base64url_bench.wasm /corpus
//!
//! Optional arguments after the directory: passes per sample (default 200) and
//! rounds (default 21). Every round times each decoder once over `passes` passes
//! of every segment (the starting decoder rotates each round, so neither always
//! runs first); the report is the median over rounds, in ns per segment.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use base64::Engine as _;
use std::hint::black_box;
use std::time::Instant;

use scopegate::jose::base64url::STRICT;

/// The hand-written decoder as it stood in `filter/src/jose/base64url.rs`
/// before the measurement (verbatim logic), kept here as the baseline.
#[path = "../testdata/base64url_handwritten.rs"]
mod handwritten;

type Decoder = fn(&[u8]) -> usize;

fn run_handwritten(s: &[u8]) -> usize {
    match handwritten::decode(black_box(s)) {
        Ok(v) => black_box(v).len(),
        Err(_) => usize::MAX,
    }
}

fn run_crate(s: &[u8]) -> usize {
    match STRICT.decode(black_box(s)) {
        Ok(v) => black_box(v).len(),
        Err(_) => usize::MAX,
    }
}

fn run_module(s: &[u8]) -> usize {
    match scopegate::jose::base64url::decode(black_box(s)) {
        Ok(v) => black_box(v).len(),
        Err(_) => usize::MAX,
    }
}

const DECODERS: [(&str, Decoder); 3] = [
    ("hand-written", run_handwritten),
    ("base64 0.22 strict engine", run_crate),
    ("scopegate::jose::base64url (as built)", run_module),
];

fn time_once(f: Decoder, segments: &[&[u8]], passes: usize) -> f64 {
    let start = Instant::now();
    let mut sink = 0usize;
    for _ in 0..passes {
        for s in segments {
            sink = sink.wrapping_add(f(s));
        }
    }
    black_box(sink);
    start.elapsed().as_nanos() as f64 / (passes * segments.len()) as f64
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    v[v.len() / 2]
}

fn bench(label: &str, segments: &[&[u8]], passes: usize, rounds: usize) {
    let bytes: usize = segments.iter().map(|s| s.len()).sum();
    println!(
        "{label}: {} segments, {bytes} bytes (mean {:.1} bytes/segment), {passes} passes x {rounds} rounds",
        segments.len(),
        bytes as f64 / segments.len().max(1) as f64
    );
    // Warm-up (V8 tiers up hot functions): one untimed sample of each.
    for (_, f) in DECODERS {
        time_once(f, segments, passes.div_ceil(4));
    }
    let mut samples = vec![Vec::with_capacity(rounds); DECODERS.len()];
    for round in 0..rounds {
        for k in 0..DECODERS.len() {
            let d = (round + k) % DECODERS.len();
            samples[d].push(time_once(DECODERS[d].1, segments, passes));
        }
    }
    let medians: Vec<f64> = samples.iter().cloned().map(median).collect();
    for (d, (name, _)) in DECODERS.iter().enumerate() {
        let (lo, hi) = samples[d]
            .iter()
            .fold((f64::MAX, 0f64), |(lo, hi), &x| (lo.min(x), hi.max(x)));
        println!(
            "  {name:<40} {:>8.1} ns/segment (min {lo:.1}, max {hi:.1})",
            medians[d]
        );
    }
    println!(
        "  ratio base64/hand-written = {:.3}   module/hand-written = {:.3}",
        medians[1] / medians[0],
        medians[2] / medians[0]
    );
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let dir = args
        .get(1)
        .expect("usage: base64url_bench CORPUS_DIR [PASSES] [ROUNDS]");
    let passes: usize = args.get(2).map_or(200, |s| s.parse().expect("PASSES"));
    let rounds: usize = args.get(3).map_or(21, |s| s.parse().expect("ROUNDS"));

    let mut names: Vec<_> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("{dir}: {e}"))
        .map(|e| e.expect("dir entry").path())
        .collect();
    names.sort();
    let tokens: Vec<Vec<u8>> = names
        .iter()
        .map(|p| std::fs::read(p).unwrap_or_else(|e| panic!("{}: {e}", p.display())))
        .collect();
    let all: Vec<&[u8]> = tokens
        .iter()
        .flat_map(|t| t.split(|&b| b == b'.'))
        .collect();
    // The two must agree on every segment, or the timing compares different work.
    for s in &all {
        assert_eq!(
            handwritten::decode(s).ok(),
            STRICT.decode(s).ok(),
            "decoders disagree on {:?}",
            String::from_utf8_lossy(s)
        );
    }
    let valid: Vec<&[u8]> = all
        .iter()
        .copied()
        .filter(|s| !s.is_empty() && handwritten::decode(s).is_ok())
        .collect();
    println!(
        "corpus {dir}: {} tokens; target {}",
        tokens.len(),
        if cfg!(target_arch = "wasm32") {
            "wasm32 (run under the host engine)"
        } else {
            "native"
        }
    );
    bench("all segments", &all, passes, rounds);
    bench("accepted non-empty segments", &valid, passes, rounds);
}
