//! `jose::base64url` against the hand-written strict decoder it replaced (kept
//! here as the oracle: it defines the strictness the filter has always had) and
//! against the `base64` crate's strict engine used directly: identical
//! accept/reject, identical output and, for the module, identical errors, on
//! every segment of the token fuzz corpus, random strings, and every short
//! string over the base64url alphabet plus `=`, `+`, `/` (and whitespace).
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use base64::Engine as _;
use scopegate::jose::base64url::{self, DecodeError, STRICT};

#[path = "../testdata/base64url_handwritten.rs"]
mod handwritten;

/// The hand-written decoder formerly in `filter/src/jose/base64url.rs`, with
/// its faults in the module's error type.
fn reference(input: &[u8]) -> Result<Vec<u8>, DecodeError> {
    handwritten::decode(input).map_err(|f| match f {
        handwritten::Fault::Length => DecodeError::InvalidLength,
        handwritten::Fault::Byte(i) => DecodeError::InvalidByte(i),
        handwritten::Fault::NonCanonical => DecodeError::NonCanonical,
    })
}

/// Checks one input; returns whether it was accepted.
fn check(input: &[u8]) -> bool {
    let want = reference(input);
    let got = base64url::decode(input);
    assert_eq!(got, want, "module vs reference on {input:?}");
    let raw = STRICT.decode(input);
    assert_eq!(
        raw.as_ref().ok(),
        want.as_ref().ok(),
        "base64 crate vs reference on {input:?} (crate said {raw:?})"
    );
    if let Ok(bytes) = &want {
        // Strict means canonical: the only encoding of these bytes is the input.
        assert_eq!(base64url::encode(bytes).as_bytes(), input);
        assert_eq!(STRICT.encode(bytes).as_bytes(), input);
    }
    want.is_ok()
}

#[path = "fixtures_rng/rng.rs"]
mod rng;
use rng::Rng;

/// The corpus is read from the source tree, so natively only (the Wasm test
/// runner gives the guest no filesystem).
#[cfg(not(target_arch = "wasm32"))]
#[test]
fn every_segment_of_the_token_fuzz_corpus() {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/../fuzz/corpus/token");
    let (mut files, mut segments, mut accepted) = (0, 0, 0);
    for entry in std::fs::read_dir(dir).unwrap() {
        let token = std::fs::read(entry.unwrap().path()).unwrap();
        files += 1;
        for segment in token.split(|&b| b == b'.') {
            segments += 1;
            accepted += usize::from(check(segment));
        }
    }
    assert!(files > 1000, "corpus has only {files} files");
    assert!(
        accepted > 500 && accepted < segments,
        "{accepted}/{segments}"
    );
}

#[test]
fn every_short_string_over_the_alphabet_padding_and_standard_symbols() {
    let mut symbols: Vec<u8> = handwritten::URL_ALPHABET.to_vec();
    symbols.extend_from_slice(b"=+/");
    let n = symbols.len();
    let mut accepted = 0usize;
    let mut buf = Vec::with_capacity(4);
    for len in 0..=4u32 {
        for mut k in 0..n.pow(len) {
            buf.clear();
            for _ in 0..len {
                buf.push(symbols[k % n]);
                k /= n;
            }
            accepted += usize::from(check(&buf));
        }
    }
    // Exactly one canonical string per byte string of 0 to 3 bytes.
    assert_eq!(accepted, 1 + 256 + 256 * 256 + 256 * 256 * 256);
}

#[test]
fn every_two_byte_string_and_longer_strings_over_representative_symbols() {
    for a in 0..=255u8 {
        check(&[a]);
        for b in 0..=255u8 {
            check(&[a, b]);
        }
    }
    // Symbols covering each low-bit class (for trailing-bit checks), padding,
    // the standard alphabet, whitespace and a non-ASCII byte.
    let symbols = b"ABQgw_-9=+/ \n\xc3";
    let n = symbols.len();
    let mut buf = Vec::with_capacity(6);
    for len in 5..=6u32 {
        for mut k in 0..n.pow(len) {
            buf.clear();
            for _ in 0..len {
                buf.push(symbols[k % n]);
                k /= n;
            }
            check(&buf);
        }
    }
}

#[test]
fn random_strings_and_mutated_encodings() {
    let mut rng = Rng(0x5c09_e6a7_e000_0b64);
    let mut accepted = 0usize;
    for i in 0..40_000 {
        let len = rng.below(160);
        let input: Vec<u8> = match i % 4 {
            // Arbitrary bytes.
            0 => (0..len).map(|_| rng.next() as u8).collect(),
            // Mostly alphabet, sometimes `=`, `+`, `/` or another byte.
            1 => (0..len)
                .map(|_| match rng.below(40) {
                    0 => b'=',
                    1 => b'+',
                    2 => b'/',
                    3 => rng.next() as u8,
                    _ => handwritten::URL_ALPHABET[rng.below(64)],
                })
                .collect(),
            // Canonical encodings of random bytes, as is and with one byte
            // replaced, one appended, or padding added.
            _ => {
                let data: Vec<u8> = (0..len).map(|_| rng.next() as u8).collect();
                let mut s = base64url::encode(&data).into_bytes();
                match rng.below(5) {
                    0 => {}
                    1 if !s.is_empty() => {
                        let at = rng.below(s.len());
                        s[at] = rng.next() as u8;
                    }
                    2 if !s.is_empty() => {
                        let at = s.len() - 1;
                        s[at] = handwritten::URL_ALPHABET[rng.below(64)];
                    }
                    3 => s.push(handwritten::URL_ALPHABET[rng.below(64)]),
                    _ => s.extend_from_slice(&b"=="[..1 + rng.below(2)]),
                }
                s
            }
        };
        accepted += usize::from(check(&input));
    }
    assert!(accepted > 5_000, "only {accepted} accepted");
}
