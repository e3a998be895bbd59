//! RSA signature verification (RSASSA-PKCS1-v1_5 and RSASSA-PSS, RFC 8017),
//! written for wasm32 under V8: ~5x faster there than `ring` (see tests/bench).
//!
//! * Pure Rust, depends on `core`, `alloc` and `sha2` 0.10 (PSS: MGF1 and H').
//! * No panicking paths: all indexing goes through `get`/iterators, all
//!   arithmetic that could overflow is proven bounded and uses `wrapping_*`.
//!   No `unsafe`.
//! * Verification handles only public data, so it is not constant-time.
//!
//! Arithmetic: Montgomery multiplication in product-scanning (column) form with
//! W-bit limbs (W = 28, or 27 for moduli > 3582 bits) stored in `u32`. Products
//! are < 2^56, so a whole column (<= 2N products plus the carry) is summed in a
//! `u64` without any carry handling (lazy carries); one shift/mask per column.
//! R = 2^(N*W) >= 4n, so Montgomery outputs stay < 2n and need no
//! per-multiplication final subtraction. With `-C target-feature=+simd128`
//! on wasm32, column dot products use `i64x2.extmul_{low,high}_i32x4_u`.
//! Key construction precomputes n0inv = -n^-1 mod 2^W and R^2 mod n once.

extern crate alloc;

use alloc::vec;
use alloc::vec::Vec;
use core::fmt;

/// Smallest modulus accepted (NIST SP 800-131A).
pub const MIN_BITS: usize = 2048;
pub const MAX_BITS: usize = 8192;

/// Error returned by [`RsaPublicKey::from_components`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RsaKeyError {
    /// The modulus has fewer than 2048 significant bits.
    ModulusTooSmall { bits: usize },
    /// The modulus has more than 8192 significant bits.
    ModulusTooLarge { bits: usize },
    /// The modulus is even (not a valid RSA modulus).
    ModulusEven,
    /// The public exponent is even, smaller than 3, or wider than 32 bits.
    BadExponent,
    /// An input component is empty.
    Malformed,
}

impl fmt::Display for RsaKeyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RsaKeyError::ModulusTooSmall { bits } => {
                write!(f, "RSA modulus too small: {bits} bits (minimum {MIN_BITS})")
            }
            RsaKeyError::ModulusTooLarge { bits } => {
                write!(f, "RSA modulus too large: {bits} bits (maximum {MAX_BITS})")
            }
            RsaKeyError::ModulusEven => f.write_str("RSA modulus is even"),
            RsaKeyError::BadExponent => {
                f.write_str("RSA public exponent must be odd, >= 3 and fit in 32 bits")
            }
            RsaKeyError::Malformed => f.write_str("malformed RSA public key component"),
        }
    }
}

impl core::error::Error for RsaKeyError {}

/// Hash algorithm used by the signature scheme (the caller hashes the message).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum HashAlg {
    Sha256,
    Sha384,
    Sha512,
}

impl HashAlg {
    /// Digest length in bytes.
    pub const fn output_len(self) -> usize {
        match self {
            HashAlg::Sha256 => 32,
            HashAlg::Sha384 => 48,
            HashAlg::Sha512 => 64,
        }
    }

    /// DER encoding of DigestInfo up to (not including) the digest octets
    /// (RFC 8017 §9.2, note 1).
    const fn digest_info_prefix(self) -> &'static [u8] {
        match self {
            HashAlg::Sha256 => &[
                0x30, 0x31, 0x30, 0x0d, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02,
                0x01, 0x05, 0x00, 0x04, 0x20,
            ],
            HashAlg::Sha384 => &[
                0x30, 0x41, 0x30, 0x0d, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02,
                0x02, 0x05, 0x00, 0x04, 0x30,
            ],
            HashAlg::Sha512 => &[
                0x30, 0x51, 0x30, 0x0d, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02,
                0x03, 0x05, 0x00, 0x04, 0x40,
            ],
        }
    }
}

/// An RSA public key with precomputed Montgomery constants.
#[derive(Clone)]
pub struct RsaPublicKey {
    /// Big-endian modulus without leading zeros (length k).
    n_bytes: Vec<u8>,
    bits: usize,
    e: u32,
    mont: Mont,
}

impl fmt::Debug for RsaPublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RsaPublicKey")
            .field("bits", &self.bits)
            .field("e", &self.e)
            .finish_non_exhaustive()
    }
}

fn strip_leading_zeros(b: &[u8]) -> &[u8] {
    let first = b.iter().position(|&x| x != 0).unwrap_or(b.len());
    b.get(first..).unwrap_or(&[])
}

impl RsaPublicKey {
    /// `n`, `e`: big-endian unsigned integers (leading zeros allowed).
    /// Accepts 2048..=8192-bit odd moduli and odd exponents 3 <= e < 2^32.
    pub fn from_components(n: &[u8], e: &[u8]) -> Result<Self, RsaKeyError> {
        if n.is_empty() || e.is_empty() {
            return Err(RsaKeyError::Malformed);
        }
        let n = strip_leading_zeros(n);
        let bits = match n.first() {
            None => 0,
            Some(&top) => (n.len() - 1) * 8 + (8 - top.leading_zeros() as usize),
        };
        if bits < MIN_BITS {
            return Err(RsaKeyError::ModulusTooSmall { bits });
        }
        if bits > MAX_BITS {
            return Err(RsaKeyError::ModulusTooLarge { bits });
        }
        if n.last().is_none_or(|&b| b & 1 == 0) {
            return Err(RsaKeyError::ModulusEven);
        }
        let e = strip_leading_zeros(e);
        if e.len() > 4 {
            return Err(RsaKeyError::BadExponent);
        }
        let e = e.iter().fold(0u32, |acc, &b| (acc << 8) | u32::from(b));
        if e < 3 || e & 1 == 0 {
            return Err(RsaKeyError::BadExponent);
        }
        let mont = Mont::new(n, bits).ok_or(RsaKeyError::Malformed)?;
        Ok(RsaPublicKey {
            n_bytes: n.to_vec(),
            bits,
            e,
            mont,
        })
    }

    /// Number of significant bits of the modulus.
    pub fn modulus_bits(&self) -> usize {
        self.bits
    }

    /// Length k of the modulus in bytes (= required signature length).
    pub fn modulus_len(&self) -> usize {
        self.n_bytes.len()
    }

    /// The public exponent.
    pub fn exponent(&self) -> u32 {
        self.e
    }

    /// RSAVP1 (RFC 8017 §5.2.2) followed by I2OSP to k bytes. `None` if the
    /// signature is not exactly k bytes or its value is not < n.
    fn rsavp1(&self, sig: &[u8]) -> Option<Vec<u8>> {
        if sig.len() != self.n_bytes.len() {
            return None;
        }
        // Equal-length big-endian byte strings compare like the integers.
        if sig >= self.n_bytes.as_slice() {
            return None;
        }
        let m = &self.mont;
        let s = m.limbs_from_be(sig)?;
        let r = m.pow_public(&s, self.e)?;
        m.limbs_to_be(&r, self.n_bytes.len())
    }
}

// ---------------------------------------------------------------------------
// Montgomery arithmetic on W-bit limbs (little-endian limb order).
// ---------------------------------------------------------------------------

#[derive(Clone)]
struct Mont {
    /// Limb width in bits (27 or 28).
    w: u32,
    mask: u32,
    /// Number of limbs N; R = 2^(N*w) >= 4n.
    nl: usize,
    n: Vec<u32>,
    /// n with limbs in reverse order (for the column dot products).
    nrev: Vec<u32>,
    /// -n^-1 mod 2^w.
    n0inv: u32,
    /// R^2 mod n (fully reduced).
    r2: Vec<u32>,
}

/// Scratch buffers for one Montgomery operation.
struct Scratch {
    rev: Vec<u32>,
    m: Vec<u32>,
    dbl: Vec<u32>,
}

impl Scratch {
    fn new(nl: usize) -> Self {
        Scratch {
            rev: vec![0; nl],
            m: vec![0; nl],
            dbl: vec![0; nl],
        }
    }
}

#[inline(always)]
fn sub(s: &[u32], start: usize, end: usize) -> &[u32] {
    s.get(start..end).unwrap_or(&[])
}

#[inline(always)]
fn mul_wide(a: u32, b: u32) -> u64 {
    u64::from(a) * u64::from(b)
}

/// Sum of x[i]*y[i] over the common length. Callers guarantee no overflow.
#[cfg(not(all(target_arch = "wasm32", target_feature = "simd128")))]
#[inline(always)]
fn dot(x: &[u32], y: &[u32]) -> u64 {
    x.iter()
        .zip(y)
        .fold(0u64, |s, (&a, &b)| s.wrapping_add(mul_wide(a, b)))
}

/// Sum of x[i]*y[i] over the common length, using i64x2 extended multiplies.
#[cfg(all(target_arch = "wasm32", target_feature = "simd128"))]
#[inline(always)]
fn dot(x: &[u32], y: &[u32]) -> u64 {
    use core::arch::wasm32::*;
    #[inline(always)]
    fn load4(c: &[u32]) -> v128 {
        // Safe formulation: compiles to v128.load64_zero + v128.load64_lane,
        // measured as fast in V8 as an (unsafe) v128.load.
        match c.first_chunk::<4>() {
            Some(&[a, b, c, d]) => u64x2(
                u64::from(a) | (u64::from(b) << 32),
                u64::from(c) | (u64::from(d) << 32),
            ),
            None => u64x2_splat(0),
        }
    }
    let len = x.len().min(y.len());
    let x = x.get(..len).unwrap_or(&[]);
    let y = y.get(..len).unwrap_or(&[]);
    let mut xc = x.chunks_exact(4);
    let mut yc = y.chunks_exact(4);
    let mut a0 = u64x2_splat(0);
    let mut a1 = u64x2_splat(0);
    for (xs, ys) in (&mut xc).zip(&mut yc) {
        let xv = load4(xs);
        let yv = load4(ys);
        a0 = u64x2_add(a0, u64x2_extmul_low_u32x4(xv, yv));
        a1 = u64x2_add(a1, u64x2_extmul_high_u32x4(xv, yv));
    }
    let a = u64x2_add(a0, a1);
    let mut r = u64x2_extract_lane::<0>(a).wrapping_add(u64x2_extract_lane::<1>(a));
    for (&p, &q) in xc.remainder().iter().zip(yc.remainder()) {
        r = r.wrapping_add(mul_wide(p, q));
    }
    r
}

impl Mont {
    fn new(n_be: &[u8], bits: usize) -> Option<Self> {
        // Pick the widest limb such that a full column sum fits in a u64:
        // 2N products < 2^(2w) each, plus a carry < 2^(64-w).
        let mut chosen = None;
        for w in [28u32, 27, 26] {
            let nl = (bits + 2).div_ceil(w as usize);
            let max_prod = u128::from((1u64 << w) - 1).pow(2);
            let col = max_prod
                .checked_mul(2 * nl as u128)?
                .checked_add(1u128 << (64 - w))?;
            if col < (1u128 << 64) {
                chosen = Some((w, nl));
                break;
            }
        }
        let (w, nl) = chosen?;
        let mask = (1u32 << w) - 1;
        let n = be_to_limbs(n_be, w, nl)?;
        let n0 = *n.first()?;
        // Newton iteration for n0^-1 mod 2^32 (n0 odd).
        let mut inv = n0;
        for _ in 0..5 {
            inv = inv.wrapping_mul(2u32.wrapping_sub(n0.wrapping_mul(inv)));
        }
        let n0inv = inv.wrapping_neg() & mask;
        let nrev: Vec<u32> = n.iter().rev().copied().collect();
        let mut mont = Mont {
            w,
            mask,
            nl,
            n,
            nrev,
            n0inv,
            r2: Vec::new(),
        };
        mont.r2 = mont.compute_r2(bits)?;
        Some(mont)
    }

    /// R^2 mod n. Starts from 2^(bits-1) < n, doubles up to R mod n (the
    /// Montgomery form of 1), then walks the bits of N*w with Montgomery
    /// squarings (X_t -> X_2t) and modular doublings (X_t -> X_t+1), where
    /// X_t = 2^t * R mod n; X_(N*w) = R^2 mod n.
    fn compute_r2(&self, bits: usize) -> Option<Vec<u32>> {
        let nl = self.nl;
        let w = self.w as usize;
        let top = bits.checked_sub(1)?;
        let mut x = vec![0u32; nl];
        *x.get_mut(top / w)? = 1u32 << (top % w);
        for _ in top..nl * w {
            self.double_mod(&mut x);
        }
        // x = X_0. Now exponent t = N*w, processed from its top bit.
        let t = nl * w;
        let tbits = usize::BITS - t.leading_zeros();
        self.double_mod(&mut x); // X_1
        let mut tmp = vec![0u32; nl];
        let mut sc = Scratch::new(nl);
        for i in (0..tbits.checked_sub(1)?).rev() {
            self.sqr(&x, &mut tmp, &mut sc);
            core::mem::swap(&mut x, &mut tmp);
            self.reduce_once(&mut x);
            if (t >> i) & 1 == 1 {
                self.double_mod(&mut x);
            }
        }
        Some(x)
    }

    /// x <- 2x mod n, for x < n.
    fn double_mod(&self, x: &mut [u32]) {
        let mut carry = 0u32;
        for l in x.iter_mut() {
            let v = (*l << 1) | carry;
            carry = v >> self.w;
            *l = v & self.mask;
        }
        self.reduce_once(x);
    }

    /// x >= n ?
    fn geq_n(&self, x: &[u32]) -> bool {
        for (a, b) in x.iter().rev().zip(self.n.iter().rev()) {
            if a != b {
                return a > b;
            }
        }
        true
    }

    /// If x >= n then x -= n (x < 2n).
    fn reduce_once(&self, x: &mut [u32]) {
        if self.geq_n(x) {
            let mut borrow = 0u32;
            for (a, &b) in x.iter_mut().zip(self.n.iter()) {
                let v = a.wrapping_sub(b).wrapping_sub(borrow);
                borrow = v >> 31; // limbs are < 2^28, so bit 31 flags a borrow
                *a = v & self.mask;
            }
        }
    }

    /// out = a * b * R^-1 mod n (result < 2n), for a, b < 2n.
    fn mul(&self, a: &[u32], b: &[u32], out: &mut [u32], sc: &mut Scratch) {
        let nl = self.nl;
        let w = self.w;
        let mask = self.mask;
        let n0 = self.n.first().copied().unwrap_or(0);
        let nrev = self.nrev.as_slice();
        for (d, &s) in sc.rev.iter_mut().zip(b.iter().rev()) {
            *d = s;
        }
        let brev = sc.rev.as_slice();
        let m = sc.m.as_mut_slice();
        let mut acc = 0u64;
        for i in 0..nl {
            // Column i: sum_{j<=i} a[j] b[i-j] + sum_{j<i} m[j] n[i-j]
            let s = nl - 1 - i;
            acc = acc
                .wrapping_add(dot(sub(a, 0, i + 1), sub(brev, s, nl)))
                .wrapping_add(dot(sub(m, 0, i), sub(nrev, s, nl - 1)));
            let mi = (acc as u32).wrapping_mul(self.n0inv) & mask;
            acc = acc.wrapping_add(mul_wide(mi, n0)) >> w;
            if let Some(x) = m.get_mut(i) {
                *x = mi;
            }
        }
        for (i, o) in (nl..2 * nl - 1).zip(out.iter_mut()) {
            let lo = i + 1 - nl;
            acc = acc
                .wrapping_add(dot(sub(a, lo, nl), brev))
                .wrapping_add(dot(sub(m, lo, nl), nrev));
            *o = acc as u32 & mask;
            acc >>= w;
        }
        if let Some(o) = out.get_mut(nl - 1) {
            *o = acc as u32;
        }
    }

    /// out = a^2 * R^-1 mod n (result < 2n), for a < 2n.
    fn sqr(&self, a: &[u32], out: &mut [u32], sc: &mut Scratch) {
        let nl = self.nl;
        let w = self.w;
        let mask = self.mask;
        let n0 = self.n.first().copied().unwrap_or(0);
        let nrev = self.nrev.as_slice();
        for (d, &s) in sc.rev.iter_mut().zip(a.iter().rev()) {
            *d = s;
        }
        for (d, &s) in sc.dbl.iter_mut().zip(a.iter()) {
            *d = s << 1;
        }
        let arev = sc.rev.as_slice();
        let a2 = sc.dbl.as_slice();
        let m = sc.m.as_mut_slice();
        let mut acc = 0u64;
        for i in 0..nl {
            // sum_{j<=i} a[j] a[i-j] = sum_{j<(i+1)/2} 2a[j] a[i-j] + [i even] a[i/2]^2
            let s = nl - 1 - i;
            let half = i.div_ceil(2);
            let mut col = dot(sub(a2, 0, half), sub(arev, s, s + half));
            if i & 1 == 0 {
                let d = a.get(i / 2).copied().unwrap_or(0);
                col = col.wrapping_add(mul_wide(d, d));
            }
            acc = acc
                .wrapping_add(col)
                .wrapping_add(dot(sub(m, 0, i), sub(nrev, s, nl - 1)));
            let mi = (acc as u32).wrapping_mul(self.n0inv) & mask;
            acc = acc.wrapping_add(mul_wide(mi, n0)) >> w;
            if let Some(x) = m.get_mut(i) {
                *x = mi;
            }
        }
        for (i, o) in (nl..2 * nl - 1).zip(out.iter_mut()) {
            let lo = i + 1 - nl;
            let half = i.div_ceil(2) - lo;
            let mut col = dot(sub(a2, lo, lo + half), sub(arev, 0, half));
            if i & 1 == 0 {
                let d = a.get(i / 2).copied().unwrap_or(0);
                col = col.wrapping_add(mul_wide(d, d));
            }
            acc = acc
                .wrapping_add(col)
                .wrapping_add(dot(sub(m, lo, nl), nrev));
            *o = acc as u32 & mask;
            acc >>= w;
        }
        if let Some(o) = out.get_mut(nl - 1) {
            *o = acc as u32;
        }
    }

    /// s^e mod n (fully reduced), for s < n and odd e >= 3.
    fn pow_public(&self, s: &[u32], e: u32) -> Option<Vec<u32>> {
        let nl = self.nl;
        let mut sc = Scratch::new(nl);
        let mut sm = vec![0u32; nl];
        self.mul(s, &self.r2, &mut sm, &mut sc); // s*R mod n
        let mut acc = sm.clone();
        let mut tmp = vec![0u32; nl];
        let top = 31u32.checked_sub(e.leading_zeros())?;
        // Invariant: acc = s^c * R (mod n), c = prefix of e's bits.
        for bit in (1..top).rev() {
            self.sqr(&acc, &mut tmp, &mut sc);
            core::mem::swap(&mut acc, &mut tmp);
            if (e >> bit) & 1 == 1 {
                self.mul(&acc, &sm, &mut tmp, &mut sc);
                core::mem::swap(&mut acc, &mut tmp);
            }
        }
        // Lowest bit of e is 1: square, then multiply by plain s, which also
        // leaves Montgomery form: s^(2c) R * s * R^-1 = s^(2c+1).
        self.sqr(&acc, &mut tmp, &mut sc);
        self.mul(&tmp, s, &mut acc, &mut sc);
        self.reduce_once(&mut acc);
        if self.geq_n(&acc) {
            return None; // unreachable for a correct implementation
        }
        Some(acc)
    }

    fn limbs_from_be(&self, b: &[u8]) -> Option<Vec<u32>> {
        be_to_limbs(b, self.w, self.nl)
    }

    fn limbs_to_be(&self, x: &[u32], k: usize) -> Option<Vec<u8>> {
        let mut out = vec![0u8; k];
        let mut buf = 0u64;
        let mut nbits = 0u32;
        let mut limbs = x.iter();
        for o in out.iter_mut().rev() {
            while nbits < 8 {
                match limbs.next() {
                    Some(&l) => {
                        buf |= u64::from(l) << nbits;
                        nbits += self.w;
                    }
                    None => nbits = 64, // remaining output bytes are zero
                }
            }
            *o = buf as u8;
            buf >>= 8;
            nbits = nbits.saturating_sub(8);
        }
        // Any bits left over must be zero (value must fit in k bytes).
        if buf != 0 || limbs.any(|&l| l != 0) {
            return None;
        }
        Some(out)
    }
}

/// Big-endian bytes to `nl` little-endian w-bit limbs; `None` if it doesn't fit.
fn be_to_limbs(b: &[u8], w: u32, nl: usize) -> Option<Vec<u32>> {
    let mask = (1u64 << w) - 1;
    let mut out = vec![0u32; nl];
    let mut slots = out.iter_mut();
    let mut buf = 0u64;
    let mut nbits = 0u32;
    for &byte in b.iter().rev() {
        buf |= u64::from(byte) << nbits;
        nbits += 8;
        if nbits >= w {
            let slot = slots.next();
            match slot {
                Some(s) => *s = (buf & mask) as u32,
                None if buf & mask == 0 => {}
                None => return None,
            }
            buf >>= w;
            nbits -= w;
        }
    }
    if buf != 0 {
        match slots.next() {
            Some(s) => *s = buf as u32,
            None => return None,
        }
    }
    Some(out)
}

// ---------------------------------------------------------------------------
// Padding checks.
// ---------------------------------------------------------------------------

/// RSASSA-PKCS1-v1_5 verification (RFC 8017 §8.2.2) of a precomputed digest.
/// `sig` must be exactly k bytes and < n. The full encoded message
/// `00 01 FF..FF 00 || DigestInfo || digest` is compared.
pub fn verify_pkcs1v15(key: &RsaPublicKey, hash: HashAlg, digest: &[u8], sig: &[u8]) -> bool {
    if digest.len() != hash.output_len() {
        return false;
    }
    let prefix = hash.digest_info_prefix();
    let k = key.modulus_len();
    let t_len = prefix.len() + digest.len();
    // EMSA-PKCS1-v1_5 requires k >= tLen + 11 (at least 8 bytes of 0xFF).
    let ps_len = match k.checked_sub(t_len + 3) {
        Some(p) if p >= 8 => p,
        _ => return false,
    };
    let em = match key.rsavp1(sig) {
        Some(em) => em,
        None => return false,
    };
    let mut expected = Vec::with_capacity(k);
    expected.extend_from_slice(&[0x00, 0x01]);
    expected.resize(2 + ps_len, 0xFF);
    expected.push(0x00);
    expected.extend_from_slice(prefix);
    expected.extend_from_slice(digest);
    em == expected
}

/// RSASSA-PSS verification (RFC 8017 §8.1.2, EMSA-PSS-VERIFY §9.1.2) of a
/// precomputed digest, MGF1 with the same hash, salt length = hash length.
pub fn verify_pss(key: &RsaPublicKey, hash: HashAlg, digest: &[u8], sig: &[u8]) -> bool {
    match hash {
        HashAlg::Sha256 => pss::<sha2::Sha256>(key, digest, sig),
        HashAlg::Sha384 => pss::<sha2::Sha384>(key, digest, sig),
        HashAlg::Sha512 => pss::<sha2::Sha512>(key, digest, sig),
    }
}

fn pss<D: sha2::Digest>(key: &RsaPublicKey, m_hash: &[u8], sig: &[u8]) -> bool {
    let h_len = <D as sha2::Digest>::output_size();
    let s_len = h_len;
    if m_hash.len() != h_len {
        return false;
    }
    let em_bits = match key.modulus_bits().checked_sub(1) {
        Some(b) => b,
        None => return false,
    };
    let em_len = em_bits.div_ceil(8);
    if em_len < h_len + s_len + 2 {
        return false;
    }
    let full = match key.rsavp1(sig) {
        Some(v) => v,
        None => return false,
    };
    // I2OSP(m, emLen): drop leading bytes, which must be zero.
    let Some(skip) = full.len().checked_sub(em_len) else {
        return false;
    };
    let (lead, em) = full.split_at(skip.min(full.len()));
    if lead.iter().any(|&b| b != 0) {
        return false;
    }
    if em.last() != Some(&0xbc) {
        return false;
    }
    let db_len = em_len - h_len - 1;
    let (Some(masked_db), Some(h)) = (em.get(..db_len), em.get(db_len..db_len + h_len)) else {
        return false;
    };
    // The leftmost 8*emLen - emBits bits of maskedDB must be zero.
    let top_mask = 0xFFu8 >> (8 * em_len - em_bits);
    match masked_db.first() {
        Some(&b0) if b0 & !top_mask == 0 => {}
        _ => return false,
    }
    let mut db = masked_db.to_vec();
    // DB = maskedDB xor MGF1(H, emLen - hLen - 1)
    let mut counter = 0u32;
    for chunk in db.chunks_mut(h_len) {
        let mut d = D::new();
        d.update(h);
        d.update(counter.to_be_bytes());
        let t = d.finalize();
        for (x, y) in chunk.iter_mut().zip(t.iter()) {
            *x ^= *y;
        }
        counter = counter.wrapping_add(1);
    }
    if let Some(b0) = db.first_mut() {
        *b0 &= top_mask;
    }
    // DB = PS (zeros) || 0x01 || salt
    let ps_len = em_len - h_len - s_len - 2;
    let (Some(ps), Some(&one), Some(salt)) =
        (db.get(..ps_len), db.get(ps_len), db.get(ps_len + 1..))
    else {
        return false;
    };
    if ps.iter().any(|&b| b != 0) || one != 0x01 || salt.len() != s_len {
        return false;
    }
    // H' = Hash(00 00 00 00 00 00 00 00 || mHash || salt)
    let mut d = D::new();
    d.update([0u8; 8]);
    d.update(m_hash);
    d.update(salt);
    d.finalize().as_slice() == h
}

/// Raw RSAVP1 (s^e mod n as k big-endian bytes); exposed for differential tests
/// and benchmarks. `None` if `sig` is not k bytes or not < n.
#[doc(hidden)]
pub fn rsavp1_raw(key: &RsaPublicKey, sig: &[u8]) -> Option<Vec<u8>> {
    key.rsavp1(sig)
}
