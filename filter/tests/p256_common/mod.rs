//! Shared test helpers: a deterministic RNG and an independent, deliberately
//! naive P-256 reference (affine coordinates, num-bigint, inversion by
//! extended Euclid via num-bigint's modinv) used as the oracle for crafted cases that ring cannot sign.
#![allow(dead_code)]

use num_bigint::BigUint;

#[path = "../fixtures_rng/rng.rs"]
mod rng;
pub use rng::Rng;

/// Uniform-ish draws below a big modulus, for the P-256 tests.
pub trait BelowBig {
    fn below_big(&mut self, m: &BigUint) -> BigUint;
}

impl BelowBig for Rng {
    /// Uniform-ish in [0, m).
    fn below_big(&mut self, m: &BigUint) -> BigUint {
        let x = BigUint::from_bytes_be(&self.bytes(48));
        x % m
    }
}

pub fn hex(s: &str) -> BigUint {
    BigUint::parse_bytes(s.as_bytes(), 16).unwrap()
}

pub fn p() -> BigUint {
    hex("ffffffff00000001000000000000000000000000ffffffffffffffffffffffff")
}
pub fn n() -> BigUint {
    hex("ffffffff00000000ffffffffffffffffbce6faada7179e84f3b9cac2fc632551")
}
pub fn b() -> BigUint {
    hex("5ac635d8aa3a93e7b3ebbd55769886bc651d06b0cc53b0f63bce3c3e27d2604b")
}
pub fn g() -> Pt {
    Some((
        hex("6b17d1f2e12c4247f8bce6e563a440f277037d812deb33a0f4a13945d898c296"),
        hex("4fe342e2fe1a7f9b8ee7eb4a7c0f9e162bce33576b315ececbb6406837bf51f5"),
    ))
}

/// 32-byte big-endian encoding (value must be < 2^256).
pub fn be32(x: &BigUint) -> [u8; 32] {
    let v = x.to_bytes_be();
    assert!(v.len() <= 32);
    let mut out = [0u8; 32];
    out[32 - v.len()..].copy_from_slice(&v);
    out
}

pub type Pt = Option<(BigUint, BigUint)>;

fn fp(x: BigUint) -> BigUint {
    x % p()
}
fn fsub(a: &BigUint, b: &BigUint) -> BigUint {
    let p = p();
    (a % &p + &p - b % &p) % &p
}
fn finv(a: &BigUint) -> BigUint {
    let p = p();
    (a % &p).modinv(&p).unwrap_or_default()
}

pub fn on_curve(x: &BigUint, y: &BigUint) -> bool {
    let p = p();
    x < &p && y < &p && fp(y * y) == fsub(&fp(x * x * x + b()), &fp(x * 3u32))
}

pub fn pt_neg(a: &Pt) -> Pt {
    a.as_ref()
        .map(|(x, y)| (x.clone(), fsub(&BigUint::from(0u32), y)))
}

pub fn pt_double(a: &Pt) -> Pt {
    let (x, y) = a.as_ref()?;
    if *y == BigUint::from(0u32) {
        return None;
    }
    // lambda = (3x^2 - 3) / 2y
    let num = fsub(&fp(x * x * 3u32), &BigUint::from(3u32));
    let lam = fp(num * finv(&fp(y * 2u32)));
    let x3 = fsub(&fp(&lam * &lam), &fp(x * 2u32));
    let y3 = fsub(&fp(&lam * fsub(x, &x3)), y);
    Some((x3, y3))
}

pub fn pt_add(a: &Pt, c: &Pt) -> Pt {
    let Some((x1, y1)) = a else { return c.clone() };
    let Some((x2, y2)) = c else { return a.clone() };
    if x1 == x2 {
        return if y1 == y2 { pt_double(a) } else { None };
    }
    let lam = fp(fsub(y2, y1) * finv(&fsub(x2, x1)));
    let x3 = fsub(&fsub(&fp(&lam * &lam), x1), x2);
    let y3 = fsub(&fp(&lam * fsub(x1, &x3)), y1);
    Some((x3, y3))
}

pub fn pt_mul(k: &BigUint, a: &Pt) -> Pt {
    let mut acc: Pt = None;
    for i in (0..k.bits()).rev() {
        acc = pt_double(&acc);
        if k.bit(i) {
            acc = pt_add(&acc, a);
        }
    }
    acc
}

pub fn sec1(q: &Pt) -> Vec<u8> {
    let (x, y) = q.as_ref().unwrap();
    let mut v = vec![4u8];
    v.extend_from_slice(&be32(x));
    v.extend_from_slice(&be32(y));
    v
}

pub fn inv_n(a: &BigUint) -> BigUint {
    let n = n();
    (a % &n).modinv(&n).unwrap_or_default()
}

/// Textbook ECDSA signing with private key d, digest value e and nonce k.
pub fn ref_sign(d: &BigUint, e: &BigUint, k: &BigUint) -> [u8; 64] {
    let n = n();
    let (x, _) = pt_mul(k, &g()).unwrap();
    let r = x % &n;
    let s = inv_n(k) * (e + &r * d) % &n;
    let mut sig = [0u8; 64];
    sig[..32].copy_from_slice(&be32(&r));
    sig[32..].copy_from_slice(&be32(&s));
    sig
}

/// Textbook ECDSA verification (SEC1 4.1.4) for a prehashed 256-bit digest.
pub fn ref_verify(q: &Pt, digest: &[u8; 32], sig: &[u8; 64]) -> bool {
    let n = n();
    let r = BigUint::from_bytes_be(&sig[..32]);
    let s = BigUint::from_bytes_be(&sig[32..]);
    let zero = BigUint::from(0u32);
    if r == zero || s == zero || r >= n || s >= n {
        return false;
    }
    let e = BigUint::from_bytes_be(digest);
    let w = inv_n(&s);
    let u1 = e * &w % &n;
    let u2 = &r * &w % &n;
    match pt_add(&pt_mul(&u1, &g()), &pt_mul(&u2, q)) {
        None => false,
        Some((x, _)) => x % &n == r,
    }
}

/// Builds (digest, sig) such that the verifier computes exactly u1*G + u2*Q
/// with (u1, u2) given (u2 != 0 mod n), and the signature is valid iff that
/// point is finite. For an infinite point, r is chosen as `fallback_r`.
pub fn craft(
    u1: &BigUint,
    u2: &BigUint,
    q: &Pt,
    fallback_r: &BigUint,
) -> ([u8; 32], [u8; 64], bool) {
    let n = n();
    let rp = pt_add(&pt_mul(u1, &g()), &pt_mul(u2, q));
    let (r, valid) = match &rp {
        Some((x, _)) if x % &n != BigUint::from(0u32) => (x % &n, true),
        _ => (fallback_r.clone(), false),
    };
    let s = &r * inv_n(&(u2 % &n)) % &n;
    let e = u1 * &s % &n;
    let mut sig = [0u8; 64];
    sig[..32].copy_from_slice(&be32(&r));
    sig[32..].copy_from_slice(&be32(&s));
    (be32(&e), sig, valid)
}
