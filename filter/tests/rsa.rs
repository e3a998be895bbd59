//! Differential / negative tests for src/rsa_verify.rs against ring 0.17,
//! OpenSSL-made signatures (testdata/rsa, regenerate with testdata/rsa/gen_keys.sh) and
//! num-bigint (raw s^e mod n, and raw "signing" with d for crafted encodings).
//! Runs natively and under wasm32-wasip1 (see run-wasm.mjs / README).

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use num_bigint::BigUint;
use ring::rand::SystemRandom;
use ring::signature::{self, KeyPair, RsaKeyPair};
use scopegate::crypto::rsa::{
    rsavp1_raw, verify_pkcs1v15, verify_pss, HashAlg, RsaKeyError, RsaPublicKey,
};
use sha2::Digest;

const KEYDIR: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/testdata/rsa");
const ALL_HASHES: [HashAlg; 3] = [HashAlg::Sha256, HashAlg::Sha384, HashAlg::Sha512];
/// Under wasm (much slower) the exhaustive bit-flip sweep is limited to this many bits.
const FULL: bool = cfg!(not(target_arch = "wasm32"));

#[path = "fixtures_rng/rng.rs"]
mod rng;
use rng::Rng;

fn unhex(s: &str) -> Vec<u8> {
    let s = s.trim();
    let s = if s.len() % 2 == 1 {
        format!("0{s}")
    } else {
        s.to_string()
    };
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
        .collect()
}

struct TestKey {
    name: String,
    n: Vec<u8>,
    e: Vec<u8>,
    d: Vec<u8>,
    der: Vec<u8>,
    key: RsaPublicKey,
}

impl TestKey {
    fn bits(&self) -> usize {
        self.key.modulus_bits()
    }
    fn ring_pair(&self) -> Option<RsaKeyPair> {
        RsaKeyPair::from_pkcs8(&self.der).ok()
    }
    /// Raw RSA signing primitive: em^d mod n as k bytes (for crafted encodings).
    fn raw_sign(&self, em: &[u8]) -> Vec<u8> {
        let n = BigUint::from_bytes_be(&self.n);
        let s = BigUint::from_bytes_be(em).modpow(&BigUint::from_bytes_be(&self.d), &n);
        left_pad(&s.to_bytes_be(), self.n.len())
    }
}

fn left_pad(b: &[u8], k: usize) -> Vec<u8> {
    assert!(b.len() <= k);
    let mut v = vec![0u8; k - b.len()];
    v.extend_from_slice(b);
    v
}

/// Minimal DER walk of PKCS#8 -> RSAPrivateKey -> private exponent d.
fn der_private_exponent(der: &[u8]) -> Vec<u8> {
    fn tlv(b: &[u8]) -> (u8, &[u8], &[u8]) {
        let tag = b[0];
        let (len, hdr) = if b[1] < 0x80 {
            (b[1] as usize, 2)
        } else {
            let nb = (b[1] & 0x7f) as usize;
            (
                b[2..2 + nb]
                    .iter()
                    .fold(0usize, |a, &x| (a << 8) | x as usize),
                2 + nb,
            )
        };
        (tag, &b[hdr..hdr + len], &b[hdr + len..])
    }
    let (_, pk8, _) = tlv(der); // PrivateKeyInfo SEQUENCE
    let (_, _, rest) = tlv(pk8); // version
    let (_, _, rest) = tlv(rest); // AlgorithmIdentifier
    let (tag, octets, _) = tlv(rest); // OCTET STRING
    assert_eq!(tag, 0x04);
    let (_, rsa, _) = tlv(octets); // RSAPrivateKey SEQUENCE
    let (_, _, rest) = tlv(rsa); // version
    let (_, _, rest) = tlv(rest); // n
    let (_, _, rest) = tlv(rest); // e
    let (tag, d, _) = tlv(rest); // d
    assert_eq!(tag, 0x02);
    d.to_vec()
}

fn load_keys() -> Vec<TestKey> {
    let manifest = std::fs::read_to_string(format!("{KEYDIR}/manifest")).expect("manifest");
    manifest
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|name| {
            let n = unhex(&std::fs::read_to_string(format!("{KEYDIR}/{name}.n.hex")).unwrap());
            let e = unhex(&std::fs::read_to_string(format!("{KEYDIR}/{name}.e.hex")).unwrap());
            let der = std::fs::read(format!("{KEYDIR}/{name}.p8.der")).unwrap();
            let d = der_private_exponent(&der);
            let key =
                RsaPublicKey::from_components(&n, &e).unwrap_or_else(|err| panic!("{name}: {err}"));
            TestKey {
                name: name.to_string(),
                n,
                e,
                d,
                der,
                key,
            }
        })
        .collect()
}

fn hash(alg: HashAlg, msg: &[u8]) -> Vec<u8> {
    match alg {
        HashAlg::Sha256 => sha2::Sha256::digest(msg).to_vec(),
        HashAlg::Sha384 => sha2::Sha384::digest(msg).to_vec(),
        HashAlg::Sha512 => sha2::Sha512::digest(msg).to_vec(),
    }
}

#[derive(Clone, Copy, Debug, PartialEq)]
enum Scheme {
    Pkcs1,
    Pss,
}

fn mine(k: &RsaPublicKey, s: Scheme, h: HashAlg, digest: &[u8], sig: &[u8]) -> bool {
    match s {
        Scheme::Pkcs1 => verify_pkcs1v15(k, h, digest, sig),
        Scheme::Pss => verify_pss(k, h, digest, sig),
    }
}

fn ring_verify_alg(s: Scheme, h: HashAlg) -> &'static signature::RsaParameters {
    match (s, h) {
        (Scheme::Pkcs1, HashAlg::Sha256) => &signature::RSA_PKCS1_2048_8192_SHA256,
        (Scheme::Pkcs1, HashAlg::Sha384) => &signature::RSA_PKCS1_2048_8192_SHA384,
        (Scheme::Pkcs1, HashAlg::Sha512) => &signature::RSA_PKCS1_2048_8192_SHA512,
        (Scheme::Pss, HashAlg::Sha256) => &signature::RSA_PSS_2048_8192_SHA256,
        (Scheme::Pss, HashAlg::Sha384) => &signature::RSA_PSS_2048_8192_SHA384,
        (Scheme::Pss, HashAlg::Sha512) => &signature::RSA_PSS_2048_8192_SHA512,
    }
}

fn ring_sign_alg(s: Scheme, h: HashAlg) -> &'static dyn signature::RsaEncoding {
    match (s, h) {
        (Scheme::Pkcs1, HashAlg::Sha256) => &signature::RSA_PKCS1_SHA256,
        (Scheme::Pkcs1, HashAlg::Sha384) => &signature::RSA_PKCS1_SHA384,
        (Scheme::Pkcs1, HashAlg::Sha512) => &signature::RSA_PKCS1_SHA512,
        (Scheme::Pss, HashAlg::Sha256) => &signature::RSA_PSS_SHA256,
        (Scheme::Pss, HashAlg::Sha384) => &signature::RSA_PSS_SHA384,
        (Scheme::Pss, HashAlg::Sha512) => &signature::RSA_PSS_SHA512,
    }
}

fn ring_verify(t: &TestKey, s: Scheme, h: HashAlg, msg: &[u8], sig: &[u8]) -> bool {
    signature::RsaPublicKeyComponents { n: &t.n, e: &t.e }
        .verify(ring_verify_alg(s, h), msg, sig)
        .is_ok()
}

/// ring's verifier only accepts e >= 65537 (we accept e >= 3).
fn ring_can_verify(t: &TestKey) -> bool {
    t.key.exponent() >= 65537
}

fn ring_sign(pair: &RsaKeyPair, s: Scheme, h: HashAlg, msg: &[u8]) -> Vec<u8> {
    let mut sig = vec![0u8; pair.public().modulus_len()];
    pair.sign(ring_sign_alg(s, h), &SystemRandom::new(), msg, &mut sig)
        .unwrap();
    sig
}

const SCHEMES: [Scheme; 2] = [Scheme::Pkcs1, Scheme::Pss];

#[test]
fn all_keys_load_with_expected_sizes() {
    let keys = load_keys();
    assert!(keys.len() >= 18);
    for t in &keys {
        let bits = BigUint::from_bytes_be(&t.n).bits() as usize;
        assert_eq!(t.key.modulus_bits(), bits, "{}", t.name);
        assert_eq!(t.key.modulus_len(), bits.div_ceil(8), "{}", t.name);
        if let Some(pair) = t.ring_pair() {
            let p = pair.public_key().as_ref().len();
            assert!(p > 0);
            assert_eq!(pair.public().modulus_len(), t.key.modulus_len());
        }
    }
}

#[test]
fn openssl_signatures_verify_and_cross_fail() {
    let msg = std::fs::read(format!("{KEYDIR}/msg.bin")).unwrap();
    for t in load_keys() {
        for s in SCHEMES {
            for h in ALL_HASHES {
                let tag = match s {
                    Scheme::Pkcs1 => "pkcs1",
                    Scheme::Pss => "pss",
                };
                let hname = format!("{h:?}").to_lowercase();
                let sig = std::fs::read(format!("{KEYDIR}/{}.{tag}.{hname}.sig", t.name)).unwrap();
                let d = hash(h, &msg);
                assert!(mine(&t.key, s, h, &d, &sig), "{} {s:?} {h:?}", t.name);
                if ring_can_verify(&t) {
                    assert!(
                        ring_verify(&t, s, h, &msg, &sig),
                        "ring {} {s:?} {h:?}",
                        t.name
                    );
                }
                // Other scheme / other hash with the matching digest must fail.
                for s2 in SCHEMES {
                    for h2 in ALL_HASHES {
                        if (s2, h2) != (s, h) {
                            assert!(!mine(&t.key, s2, h2, &hash(h2, &msg), &sig));
                            assert!(!mine(&t.key, s2, h2, &d, &sig));
                        }
                    }
                }
            }
        }
    }
}

#[test]
fn ring_signatures_random_messages() {
    let mut rng = Rng(1);
    let keys = load_keys();
    let mut signed = 0;
    for t in &keys {
        let Some(pair) = t.ring_pair() else { continue };
        for _ in 0..if FULL { 4 } else { 1 } {
            let ml = rng.below(200);
            let msg = rng.bytes(ml);
            for s in SCHEMES {
                for h in ALL_HASHES {
                    let sig = ring_sign(&pair, s, h, &msg);
                    let d = hash(h, &msg);
                    assert!(mine(&t.key, s, h, &d, &sig), "{} {s:?} {h:?}", t.name);
                    assert!(ring_verify(t, s, h, &msg, &sig));
                    // wrong digest
                    let mut bad = d.clone();
                    let pos = rng.below(bad.len());
                    bad[pos] ^= 1 << rng.below(8);
                    assert!(!mine(&t.key, s, h, &bad, &sig));
                    assert!(!mine(&t.key, s, h, &hash(h, b"other"), &sig));
                    assert!(!mine(&t.key, s, h, &d[..d.len() - 1], &sig));
                    assert!(!mine(&t.key, s, h, &[d.clone(), vec![0]].concat(), &sig));
                    assert!(!mine(&t.key, s, h, &[], &sig));
                    // truncated / extended signature
                    let k = sig.len();
                    for bad_sig in [
                        sig[..k - 1].to_vec(),
                        sig[1..].to_vec(),
                        [sig.clone(), vec![0]].concat(),
                        [vec![0], sig.clone()].concat(),
                        vec![],
                    ] {
                        assert!(!mine(&t.key, s, h, &d, &bad_sig));
                        assert!(!ring_verify(t, s, h, &msg, &bad_sig));
                    }
                    // wrong hash alg
                    for h2 in ALL_HASHES {
                        if h2 != h {
                            assert!(!mine(&t.key, s, h2, &hash(h2, &msg), &sig));
                            assert!(!ring_verify(t, s, h2, &msg, &sig));
                        }
                    }
                    signed += 1;
                }
            }
        }
    }
    assert!(
        signed >= 10 * 6 * if FULL { 4 } else { 1 },
        "ring could sign with too few keys: {signed}"
    );
}

#[test]
fn every_single_bit_flip_fails() {
    let mut rng = Rng(2);
    for t in load_keys() {
        let Some(pair) = t.ring_pair() else { continue };
        if !FULL && t.bits() > 2048 {
            continue;
        }
        for s in SCHEMES {
            let h = HashAlg::Sha256;
            let msg = rng.bytes(64);
            let d = hash(h, &msg);
            let sig = ring_sign(&pair, s, h, &msg);
            assert!(mine(&t.key, s, h, &d, &sig));
            let mut flipped = sig.clone();
            for bit in 0..sig.len() * 8 {
                flipped[bit / 8] ^= 1 << (bit % 8);
                assert!(
                    !mine(&t.key, s, h, &d, &flipped),
                    "{} {s:?} bit {bit}",
                    t.name
                );
                if bit % 61 == 0 {
                    assert!(!ring_verify(&t, s, h, &msg, &flipped));
                }
                flipped[bit / 8] ^= 1 << (bit % 8);
            }
        }
    }
}

#[test]
fn out_of_range_and_degenerate_signatures() {
    let mut rng = Rng(3);
    for t in load_keys() {
        let k = t.n.len();
        let nb = BigUint::from_bytes_be(&t.n);
        let d = hash(HashAlg::Sha256, b"x");
        let mut cands: Vec<(Vec<u8>, bool)> = vec![
            (t.n.clone(), true),                               // sig = n
            (left_pad(&(&nb + 1u32).to_bytes_be(), k), true),  // n + 1 (same length)
            (vec![0xff; k], true),                             // > n
            (vec![0; k], false),                               // 0
            (left_pad(&[1], k), false),                        // 1
            (left_pad(&(&nb - 1u32).to_bytes_be(), k), false), // n - 1
        ];
        let mut hi = t.n.clone();
        hi[k - 1] = hi[k - 1].wrapping_add(1);
        cands.push((hi, true));
        for (sig, geq_n) in cands {
            if geq_n {
                assert!(rsavp1_raw(&t.key, &sig).is_none(), "{}", t.name);
            }
            for s in SCHEMES {
                for h in ALL_HASHES {
                    let dd = hash(h, &d);
                    assert!(!mine(&t.key, s, h, &dd, &sig));
                    if ring_can_verify(&t) {
                        assert!(!ring_verify(&t, s, h, &d, &sig));
                    }
                }
            }
        }
        // random full-length signatures, random lengths, random digests: false, no panic
        for _ in 0..if FULL { 40 } else { 8 } {
            let len = match rng.below(4) {
                0 => k,
                1 => rng.below(k + 3),
                2 => k + 1,
                _ => k.saturating_sub(1),
            };
            let sig = rng.bytes(len);
            let h = ALL_HASHES[rng.below(3)];
            let dlen = if rng.below(2) == 0 {
                h.output_len()
            } else {
                rng.below(80)
            };
            let dg = rng.bytes(dlen);
            assert!(!verify_pkcs1v15(&t.key, h, &dg, &sig));
            assert!(!verify_pss(&t.key, h, &dg, &sig));
        }
    }
}

#[test]
fn raw_modexp_matches_num_bigint() {
    let mut rng = Rng(4);
    for t in load_keys() {
        let k = t.n.len();
        let nb = BigUint::from_bytes_be(&t.n);
        let eb = BigUint::from_bytes_be(&t.e);
        let mut samples: Vec<BigUint> = vec![
            0u32.into(),
            1u32.into(),
            2u32.into(),
            &nb - 1u32,
            &nb - 2u32,
            BigUint::from(1u32) << (t.bits() - 1),
            (BigUint::from(1u32) << (t.bits() - 1)) - 1u32,
            &nb >> 1,
        ];
        for _ in 0..if FULL { 40 } else { 10 } {
            let r = BigUint::from_bytes_be(&rng.bytes(k + 8)) % &nb;
            samples.push(r);
            // values with long runs of 1 bits / near n
            let sl = rng.below(k);
            let sub = BigUint::from_bytes_be(&rng.bytes(sl));
            if sub < nb {
                samples.push(&nb - 1u32 - sub);
            }
        }
        for s in samples {
            let sig = left_pad(&s.to_bytes_be(), k);
            let want = left_pad(&s.modpow(&eb, &nb).to_bytes_be(), k);
            assert_eq!(rsavp1_raw(&t.key, &sig), Some(want), "{} s={s:x}", t.name);
        }
    }
}

// ---- crafted encodings signed with the raw private key (num-bigint) ----

fn pkcs1_em(k: usize, h: HashAlg, digest: &[u8], ps_len: usize, prefix: &[u8]) -> Vec<u8> {
    let mut em = vec![0x00, 0x01];
    em.extend(std::iter::repeat_n(0xff, ps_len));
    em.push(0);
    em.extend_from_slice(prefix);
    em.extend_from_slice(digest);
    let _ = h;
    assert_eq!(em.len(), k);
    em
}

fn di_prefix(h: HashAlg) -> Vec<u8> {
    let (tag, len) = match h {
        HashAlg::Sha256 => (1u8, 0x20u8),
        HashAlg::Sha384 => (2, 0x30),
        HashAlg::Sha512 => (3, 0x40),
    };
    vec![
        0x30,
        0x11 + len,
        0x30,
        0x0d,
        0x06,
        0x09,
        0x60,
        0x86,
        0x48,
        0x01,
        0x65,
        0x03,
        0x04,
        0x02,
        tag,
        0x05,
        0x00,
        0x04,
        len,
    ]
}

fn mgf1(h: HashAlg, seed: &[u8], len: usize) -> Vec<u8> {
    let mut out = Vec::new();
    let mut c = 0u32;
    while out.len() < len {
        out.extend(hash(h, &[seed, &c.to_be_bytes()].concat()));
        c += 1;
    }
    out.truncate(len);
    out
}

/// EMSA-PSS-ENCODE with arbitrary salt, plus knobs to break it.
fn pss_em(
    bits: usize,
    h: HashAlg,
    m_hash: &[u8],
    salt: &[u8],
    trailer: u8,
    keep_top_bits: bool,
) -> Vec<u8> {
    pss_em_ps(bits, h, m_hash, salt, trailer, keep_top_bits, None)
}

/// Like pss_em; `ps_byte = Some((pos, v))` puts a nonzero byte into PS.
fn pss_em_ps(
    bits: usize,
    h: HashAlg,
    m_hash: &[u8],
    salt: &[u8],
    trailer: u8,
    keep_top_bits: bool,
    ps_byte: Option<(usize, u8)>,
) -> Vec<u8> {
    let em_bits = bits - 1;
    let em_len = em_bits.div_ceil(8);
    let h_len = h.output_len();
    let m_prime = [&[0u8; 8][..], m_hash, salt].concat();
    let hh = hash(h, &m_prime);
    let ps_len = em_len - salt.len() - h_len - 2;
    let mut db = vec![0u8; ps_len];
    if let Some((pos, v)) = ps_byte {
        db[pos] = v;
    }
    db.push(1);
    db.extend_from_slice(salt);
    let mask = mgf1(h, &hh, db.len());
    for (a, b) in db.iter_mut().zip(mask) {
        *a ^= b;
    }
    if !keep_top_bits {
        db[0] &= 0xff >> (8 * em_len - em_bits);
    } else {
        db[0] &= 0xff >> (8 * em_len - em_bits);
        db[0] |= 0x80; // an illegal leftmost bit (callers ensure 8*emLen > emBits)
    }
    let mut em = db;
    em.extend_from_slice(&hh);
    em.push(trailer);
    em
}

#[test]
fn crafted_encodings() {
    let mut rng = Rng(5);
    for t in load_keys() {
        let k = t.n.len();
        for h in ALL_HASHES {
            let msg = rng.bytes(33);
            let d = hash(h, &msg);
            let pre = di_prefix(h);
            let ps = k - pre.len() - d.len() - 3;
            // correct PKCS#1 encoding (works for every key incl. e=3 and 8192-bit)
            let good = t.raw_sign(&pkcs1_em(k, h, &d, ps, &pre));
            assert!(mine(&t.key, Scheme::Pkcs1, h, &d, &good), "{}", t.name);
            if ring_can_verify(&t) {
                assert!(ring_verify(&t, Scheme::Pkcs1, h, &msg, &good));
            }
            let mut bads: Vec<Vec<u8>> = Vec::new();
            // block type 02, nonzero first byte
            let mut em = pkcs1_em(k, h, &d, ps, &pre);
            em[1] = 2;
            bads.push(em);
            // DigestInfo without NULL parameters (PS one byte longer)
            let mut pre_nonull = pre.clone();
            pre_nonull.drain(15..17);
            pre_nonull[1] -= 2;
            pre_nonull[3] -= 2;
            bads.push(pkcs1_em(k, h, &d, ps + 2, &pre_nonull));
            // a non-FF padding byte, separator not zero
            let mut em = pkcs1_em(k, h, &d, ps, &pre);
            em[2 + rng.below(ps)] = 0xfe;
            bads.push(em);
            let mut em = pkcs1_em(k, h, &d, ps, &pre);
            em[2 + ps] = 0x01;
            bads.push(em);
            // wrong OID for the hash
            let other = if h == HashAlg::Sha256 {
                HashAlg::Sha384
            } else {
                HashAlg::Sha256
            };
            let mut pre_wrong = pre.clone();
            pre_wrong[14] = di_prefix(other)[14];
            bads.push(pkcs1_em(k, h, &d, ps, &pre_wrong));
            for em in bads {
                let sig = t.raw_sign(&em);
                assert!(
                    !mine(&t.key, Scheme::Pkcs1, h, &d, &sig),
                    "{} {h:?}",
                    t.name
                );
                if ring_can_verify(&t) {
                    assert!(!ring_verify(&t, Scheme::Pkcs1, h, &msg, &sig));
                }
            }

            // PSS: salt = hLen is the only accepted length.
            let h_len = h.output_len();
            let salt = rng.bytes(h_len);
            let good = t.raw_sign(&left_pad(&pss_em(t.bits(), h, &d, &salt, 0xbc, false), k));
            assert!(mine(&t.key, Scheme::Pss, h, &d, &good), "{} {h:?}", t.name);
            if ring_can_verify(&t) {
                assert!(ring_verify(&t, Scheme::Pss, h, &msg, &good));
            }
            let mut bads = vec![
                pss_em(t.bits(), h, &d, &[], 0xbc, false),
                pss_em(t.bits(), h, &d, &rng.bytes(20), 0xbc, false),
                pss_em(t.bits(), h, &d, &rng.bytes(h_len + 1), 0xbc, false),
                pss_em(t.bits(), h, &d, &rng.bytes(h_len - 1), 0xbc, false),
                pss_em(t.bits(), h, &d, &salt, 0xbd, false),
            ];
            if (t.bits() - 1) % 8 != 0 {
                bads.push(pss_em(t.bits(), h, &d, &salt, 0xbc, true));
            }
            // nonzero bytes inside PS (first legal byte, middle, last)
            let ps_len = (t.bits() - 1).div_ceil(8) - 2 * h_len - 2;
            for pos in [1, ps_len / 2, ps_len - 1] {
                bads.push(pss_em_ps(
                    t.bits(),
                    h,
                    &d,
                    &salt,
                    0xbc,
                    false,
                    Some((pos, 0x42)),
                ));
            }
            // a nonzero legal bit in the first DB byte
            if (t.bits() - 1) % 8 != 7 {
                bads.push(pss_em_ps(
                    t.bits(),
                    h,
                    &d,
                    &salt,
                    0xbc,
                    false,
                    Some((0, 0x01)),
                ));
            }
            // wrong 0x01 separator (0x02) via a salt/hash that is otherwise right
            let mut em = pss_em(t.bits(), h, &d, &salt, 0xbc, false);
            em[ps_len] ^= 0x01 ^ 0x02; // DB separator 01 -> 02 (mask is unchanged)
            bads.push(em);
            for em in bads {
                let sig = t.raw_sign(&left_pad(&em, k));
                assert!(!mine(&t.key, Scheme::Pss, h, &d, &sig), "{} {h:?}", t.name);
                if ring_can_verify(&t) {
                    assert!(!ring_verify(&t, Scheme::Pss, h, &msg, &sig));
                }
            }
            // PSS where modBits-1 is a multiple of 8: EM is k-1 bytes; a nonzero
            // leading byte of the k-byte RSAVP1 output must be rejected.
            if (t.bits() - 1) % 8 == 0 {
                let mut em = vec![1u8];
                em.extend(pss_em(t.bits(), h, &d, &salt, 0xbc, false));
                let x = BigUint::from_bytes_be(&em);
                if x < BigUint::from_bytes_be(&t.n) {
                    let sig = t.raw_sign(&em);
                    assert!(!mine(&t.key, Scheme::Pss, h, &d, &sig));
                }
            }
        }
    }
}

#[test]
fn key_construction_errors() {
    let e = [1u8, 0, 1];
    // 2047-bit odd modulus
    let mut n = vec![0xffu8; 256];
    n[0] = 0x7f;
    assert_eq!(
        RsaPublicKey::from_components(&n, &e).unwrap_err(),
        RsaKeyError::ModulusTooSmall { bits: 2047 }
    );
    // leading zeros do not count
    let mut nz = vec![0u8; 5];
    nz.extend_from_slice(&n);
    assert_eq!(
        RsaPublicKey::from_components(&nz, &e).unwrap_err(),
        RsaKeyError::ModulusTooSmall { bits: 2047 }
    );
    // 8193 bits
    let mut big = vec![0xffu8; 1025];
    big[0] = 1;
    assert_eq!(
        RsaPublicKey::from_components(&big, &e).unwrap_err(),
        RsaKeyError::ModulusTooLarge { bits: 8193 }
    );
    // even
    let mut even = vec![0xffu8; 256];
    even[255] = 0xfe;
    assert_eq!(
        RsaPublicKey::from_components(&even, &e).unwrap_err(),
        RsaKeyError::ModulusEven
    );
    let ok = vec![0xffu8; 256];
    for bad_e in [
        &[][..],
        &[0],
        &[1],
        &[2],
        &[0, 0, 1],
        &[1, 0, 0],
        &[1, 0, 0, 0, 1],
        &[0xff, 0xff, 0xff, 0xfe],
    ] {
        let err = RsaPublicKey::from_components(&ok, bad_e).unwrap_err();
        assert!(
            matches!(err, RsaKeyError::BadExponent | RsaKeyError::Malformed),
            "{bad_e:?} {err:?}"
        );
        assert!(!err.to_string().is_empty());
    }
    assert_eq!(
        RsaPublicKey::from_components(&[], &e).unwrap_err(),
        RsaKeyError::Malformed
    );
    assert_eq!(
        RsaPublicKey::from_components(&[0, 0], &e).unwrap_err(),
        RsaKeyError::ModulusTooSmall { bits: 0 }
    );
    for good_e in [
        &[3u8][..],
        &[0, 0, 0, 0, 1, 0, 1],
        &[0xff, 0xff, 0xff, 0xff],
    ] {
        let key = RsaPublicKey::from_components(&ok, good_e).unwrap();
        assert_eq!(key.modulus_bits(), 2048);
        assert_eq!(key.modulus_len(), 256);
    }
    let mut n8192 = vec![0xffu8; 1024];
    n8192[0] = 0x80;
    assert_eq!(
        RsaPublicKey::from_components(&n8192, &e)
            .unwrap()
            .modulus_bits(),
        8192
    );
    // leading zeros on a real key are fine and give the same answers
    let keys = load_keys();
    let t = &keys[0];
    let padded = [vec![0u8; 3], t.n.clone()].concat();
    let k2 = RsaPublicKey::from_components(&padded, &[0, 1, 0, 1]).unwrap();
    assert_eq!(k2.modulus_len(), t.key.modulus_len());
    let msg = std::fs::read(format!("{KEYDIR}/msg.bin")).unwrap();
    let sig = std::fs::read(format!("{KEYDIR}/{}.pkcs1.sha256.sig", t.name)).unwrap();
    assert!(verify_pkcs1v15(
        &k2,
        HashAlg::Sha256,
        &hash(HashAlg::Sha256, &msg),
        &sig
    ));
}

#[test]
fn random_moduli_and_garbage_never_panic() {
    // Random odd moduli of all accepted sizes (not RSA keys): random signatures
    // never verify, and raw exponentiation matches num-bigint.
    let mut rng = Rng(6);
    for _ in 0..if FULL { 60 } else { 12 } {
        let bits = 2048 + rng.below(8192 - 2048 + 1);
        let k = bits.div_ceil(8);
        let mut n = rng.bytes(k);
        let top = bits - 8 * (k - 1); // 1..=8 bits in first byte
        n[0] &= ((1u16 << top) - 1) as u8;
        n[0] |= 1 << (top - 1);
        n[k - 1] |= 1;
        if rng.below(3) == 0 {
            // many 1 bits -> n close to 2^bits
            for b in n.iter_mut().skip(1) {
                *b |= rng.next() as u8 | 0xf0;
            }
        }
        let e: u32 = [3, 17, 65537, 0xffff_ffff, (rng.next() as u32) | 1][rng.below(5)].max(3);
        let key = RsaPublicKey::from_components(&n, &e.to_be_bytes()).unwrap();
        assert_eq!(key.modulus_bits(), bits);
        let nb = BigUint::from_bytes_be(&n);
        for _ in 0..3 {
            let s = BigUint::from_bytes_be(&rng.bytes(k)) % &nb;
            let sig = left_pad(&s.to_bytes_be(), k);
            let want = left_pad(&s.modpow(&BigUint::from(e), &nb).to_bytes_be(), k);
            assert_eq!(rsavp1_raw(&key, &sig), Some(want), "bits={bits} e={e}");
            for h in ALL_HASHES {
                assert!(!verify_pkcs1v15(&key, h, &rng.bytes(h.output_len()), &sig));
                assert!(!verify_pss(&key, h, &rng.bytes(h.output_len()), &sig));
            }
        }
    }
}

#[test]
fn limb_width_boundaries_and_all_ones_moduli() {
    // Moduli of 2^bits - 1 (and similar) maximise every limb, hence every
    // column sum: this exercises the lazy-carry overflow bound at the sizes
    // where the limb width switches (28 -> 27 bits above 3582 bits).
    let mut rng = Rng(8);
    for bits in [
        2048usize, 2049, 2050, 2055, 3582, 3583, 3584, 3585, 4096, 6143, 8191, 8192,
    ] {
        let k = bits.div_ceil(8);
        let one = BigUint::from(1u32);
        let variants = [
            (&one << bits) - 1u32,       // all ones
            (&one << bits) - 3u32,       // all ones but one bit
            (&one << (bits - 1)) + 1u32, // smallest odd of that size
        ];
        for nb in variants {
            let n = left_pad(&nb.to_bytes_be(), k);
            for e in [3u32, 65537, 0xffff_ffff] {
                let key = RsaPublicKey::from_components(&n, &e.to_be_bytes()).unwrap();
                assert_eq!(key.modulus_bits(), bits);
                let mut samples = vec![&nb - 1u32, &nb - 2u32, &nb >> 1, BigUint::from(2u32)];
                for _ in 0..if FULL { 3 } else { 1 } {
                    samples.push(BigUint::from_bytes_be(&rng.bytes(k + 4)) % &nb);
                }
                for s in samples {
                    let sig = left_pad(&s.to_bytes_be(), k);
                    let want = left_pad(&s.modpow(&BigUint::from(e), &nb).to_bytes_be(), k);
                    assert_eq!(rsavp1_raw(&key, &sig), Some(want), "bits={bits} e={e}");
                }
            }
        }
    }
}
