//! The hand-written strict base64url decoder `jose::base64url` used before it
//! became a wrapper over the `base64` crate: the benchmark's baseline
//! (`examples/base64url_bench.rs`) and the equivalence test's oracle
//! (`tests/base64url_equivalence.rs`), included by both with `#[path]`.

/// Why the old decoder refused an input.
#[derive(Debug, PartialEq, Eq)]
pub enum Fault {
    /// A length that leaves one dangling character.
    Length,
    /// Not in the URL-safe alphabet, at this index.
    Byte(usize),
    /// Trailing bits that are not zero.
    NonCanonical,
}

pub const URL_ALPHABET: &[u8; 64] =
    b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

const fn build_table() -> [u8; 256] {
    let mut t = [0xffu8; 256];
    let mut i = 0;
    while i < 64 {
        t[URL_ALPHABET[i] as usize] = i as u8;
        i += 1;
    }
    t
}

static DECODE: [u8; 256] = build_table();

pub fn decode(input: &[u8]) -> Result<Vec<u8>, Fault> {
    if input.len() % 4 == 1 {
        return Err(Fault::Length);
    }
    let mut out = Vec::with_capacity(input.len() * 3 / 4);
    let mut acc: u32 = 0;
    let mut bits: u32 = 0;
    for (i, &b) in input.iter().enumerate() {
        let v = DECODE.get(usize::from(b)).copied().unwrap_or(0xff);
        if v == 0xff {
            return Err(Fault::Byte(i));
        }
        acc = (acc << 6) | u32::from(v);
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
            acc &= (1 << bits) - 1;
        }
    }
    if acc != 0 {
        return Err(Fault::NonCanonical);
    }
    Ok(out)
}
