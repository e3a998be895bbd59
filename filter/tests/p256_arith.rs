//! Field (mod p), scalar (mod n), wNAF and table arithmetic of
//! src/p256_verify.rs against num-bigint, on random and edge values.
//! Runs natively and under wasm32-wasip1 (node), with and without simd128.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

#[path = "p256_common/mod.rs"]
mod common;

use common::*;
use num_bigint::BigUint;
use scopegate::crypto::p256::testing as t;
use scopegate::crypto::p256::PublicKey;

const NL: usize = t::LIMBS;
const WB: u32 = t::LIMB_BITS;
const ITERS: usize = if cfg!(target_arch = "wasm32") {
    3000
} else {
    20000
};

fn to_big(l: &[u32; NL]) -> BigUint {
    l.iter()
        .rev()
        .fold(BigUint::from(0u32), |acc, &x| (acc << WB) + x)
}

fn from_big(x: &BigUint) -> [u32; NL] {
    let mask = BigUint::from((1u64 << WB) - 1);
    let mut out = [0u32; NL];
    for (i, o) in out.iter_mut().enumerate() {
        let limb = (x >> (WB as usize * i)) & &mask;
        *o = u32::try_from(limb).unwrap();
    }
    assert_eq!(&to_big(&out), x, "value does not fit the limbs");
    out
}

/// The field-element invariant: limbs < 2^29, value < 2^257.
fn check_inv(l: &[u32; NL], what: &str) {
    for &x in l {
        assert!(x < (1 << WB), "{what}: limb not normalized: {l:?}");
    }
    assert!(
        to_big(l) < (BigUint::from(1u32) << 257usize),
        "{what}: value >= 2^257: {l:?}"
    );
}

fn r_mod(m: &BigUint) -> BigUint {
    (BigUint::from(1u32) << (NL * WB as usize)) % m
}

/// Edge values valid as field-element representations (value < 2^257).
fn fe_edges() -> Vec<BigUint> {
    let p = p();
    let n = n();
    let one = BigUint::from(1u32);
    let top = (&one << 257usize) - 1u32; // all limbs maxed under the invariant
    let mut v = vec![
        BigUint::from(0u32),
        one.clone(),
        BigUint::from(2u32),
        &p - 1u32,
        p.clone(),
        &p + 1u32,
        &p * 2u32 - 1u32,
        &p * 2u32,
        &p * 2u32 + 1u32,
        (&one << 256usize) - 1u32,
        &one << 256usize,
        top.clone(),
        &top - &p,
        &n - 1u32,
        n.clone(),
        &one << 224usize,
        &one << 192usize,
        &one << 96usize,
        (&one << 96usize) - 1u32,
        (&one << 232usize) - 1u32,
        r_mod(&p),
    ];
    // Every limb individually maxed / single-limb values.
    for i in 0..NL {
        v.push(((&one << WB) - 1u32) << (WB as usize * i) & &top);
        v.push(&one << (WB as usize * i));
    }
    v
}

fn rand_fe(rng: &mut Rng) -> BigUint {
    // Mix of uniform-in-[0,2^257) and structured values (runs of ones/zeros).
    match rng.below(4) {
        0 => {
            let lim = BigUint::from(1u32) << 257usize;
            rng.below_big(&lim)
        }
        1 => rng.below_big(&p()),
        2 => {
            let mut l = [0u32; NL];
            for (i, x) in l.iter_mut().enumerate() {
                *x = match rng.below(3) {
                    0 => 0,
                    1 => (1 << WB) - 1,
                    _ => rng.next() as u32 & ((1 << WB) - 1),
                };
                if i == NL - 1 {
                    *x &= (1 << 25usize) - 1;
                }
            }
            to_big(&l)
        }
        _ => {
            let e = fe_edges();
            let base = e[rng.below(e.len())].clone();
            let lim = BigUint::from(1u32) << 257usize;
            (base + BigUint::from(rng.next() % 5) + lim.clone() - BigUint::from(rng.next() % 5))
                % lim
        }
    }
}

#[test]
fn field_ops_vs_bigint() {
    let p = p();
    let rinv = r_mod(&p).modpow(&(&p - 2u32), &p);
    let mut rng = Rng(1);
    let edges = fe_edges();
    let mut pairs: Vec<(BigUint, BigUint)> = Vec::new();
    for a in &edges {
        for b in &edges {
            pairs.push((a.clone(), b.clone()));
        }
    }
    for _ in 0..ITERS {
        pairs.push((rand_fe(&mut rng), rand_fe(&mut rng)));
    }
    let mut count = 0;
    for (a, b) in &pairs {
        let (la, lb) = (from_big(a), from_big(b));
        let m = t::fe_mont_mul(&la, &lb);
        check_inv(&m, "mul");
        assert_eq!(to_big(&m) % &p, a * b * &rinv % &p, "mul {a:x} {b:x}");
        let s = t::fe_mont_sqr(&la);
        check_inv(&s, "sqr");
        assert_eq!(to_big(&s) % &p, a * a * &rinv % &p, "sqr {a:x}");
        let ad = t::fe_add(&la, &lb);
        check_inv(&ad, "add");
        assert_eq!(to_big(&ad) % &p, (a + b) % &p, "add");
        let sb = t::fe_sub(&la, &lb);
        check_inv(&sb, "sub");
        assert_eq!(
            to_big(&sb) % &p,
            (a + &p * 4u32 - b) % &p,
            "sub {a:x} {b:x}"
        );
        let ng = t::fe_neg(&la);
        check_inv(&ng, "neg");
        assert_eq!(to_big(&ng) % &p, (&p * 4u32 - a) % &p, "neg");
        for k in 0..=8u32 {
            let ms = t::fe_mul_small(&la, k);
            check_inv(&ms, "mul_small");
            assert_eq!(to_big(&ms) % &p, a * k % &p, "mul_small {k}");
        }
        let c = t::fe_canon(&la);
        assert_eq!(to_big(&c), a % &p, "canon");
        assert_eq!(t::fe_is_zero(&la), a % &p == BigUint::from(0u32), "is_zero");
        count += 1;
    }
    println!("field ops checked on {count} pairs");
}

#[test]
fn mul_accepts_documented_extremes() {
    // redc_p is documented for any normalized limbs with a*b < 2^517, e.g. one
    // operand with all nine limbs maxed (2^261 - 1) times a value < 2^256.
    let p = p();
    let rinv = r_mod(&p).modpow(&(&p - 2u32), &p);
    let maxed = (BigUint::from(1u32) << 261usize) - 1u32;
    let mut rng = Rng(7);
    let mut others = vec![
        BigUint::from(0u32),
        BigUint::from(1u32),
        (BigUint::from(1u32) << 256usize) - 1u32,
    ];
    for _ in 0..200 {
        others.push(rng.below_big(&(BigUint::from(1u32) << 256usize)));
    }
    for b in &others {
        let m = t::fe_mont_mul(&from_big(&maxed), &from_big(b));
        check_inv(&m, "mul(maxed)");
        assert_eq!(to_big(&m) % &p, &maxed * b * &rinv % &p);
    }
}

#[test]
fn field_invert_and_conversions() {
    let p = p();
    let r = r_mod(&p);
    let mut rng = Rng(2);
    let mut vals: Vec<BigUint> = fe_edges().into_iter().filter(|x| x < &p).collect();
    for _ in 0..(ITERS / 20) {
        vals.push(rng.below_big(&p));
    }
    for x in &vals {
        let be = be32(x);
        let m = t::fe_to_mont(&be).unwrap();
        check_inv(&m, "to_mont");
        assert_eq!(to_big(&m) % &p, x * &r % &p);
        assert_eq!(t::fe_from_mont(&m), be, "round trip");
        let inv = t::fe_invert(&m);
        check_inv(&inv, "invert");
        if x == &BigUint::from(0u32) {
            assert!(t::fe_is_zero(&inv));
        } else {
            // (x R)^-1 in Montgomery form is x^-1 R: product with x R is R^2.
            assert_eq!(to_big(&inv) * to_big(&m) % &p, &r * &r % &p);
        }
    }
    // >= p rejected.
    for x in [
        p.clone(),
        &p + 1u32,
        (BigUint::from(1u32) << 256usize) - 1u32,
    ] {
        assert!(t::fe_to_mont(&be32(&x)).is_none());
    }
}

#[test]
fn scalar_ops_vs_bigint() {
    let n = n();
    let rn = r_mod(&n);
    let rinv = rn.modpow(&(&n - 2u32), &n);
    let one = BigUint::from(1u32);
    let mut rng = Rng(3);
    let mut vals = vec![
        one.clone(),
        BigUint::from(2u32),
        BigUint::from(3u32),
        &n - 1u32,
        &n - 2u32,
        (&n + 1u32) / 2u32,
        &one << 255usize,
        (&one << 128usize) + 1u32,
        &n >> 1,
    ];
    for _ in 0..(ITERS / 10) {
        vals.push(rng.below_big(&n));
    }
    // Inversion.
    for a in &vals {
        let inv = t::scalar_inv(&be32(a)).expect("invertible");
        let inv = BigUint::from_bytes_be(&inv);
        assert!(inv < n);
        assert_eq!(a * &inv % &n, one, "inverse of {a:x}");
    }
    for bad in [
        BigUint::from(0u32),
        n.clone(),
        &n + 1u32,
        (&one << 256usize) - 1u32,
    ] {
        assert!(t::scalar_inv(&be32(&bad)).is_none(), "{bad:x}");
    }
    // Montgomery multiplication mod n (a * b < 2^517), fully reduced.
    let mut extra = vec![
        (&one << 256usize) - 1u32,
        (&one << 257usize) - 1u32,
        n.clone(),
        &n * 2u32 - 1u32,
    ];
    extra.extend(vals.iter().cloned());
    for (i, a) in extra.iter().enumerate() {
        let b = &extra[(i * 7 + 3) % extra.len()];
        if a * b >= (&one << 517usize) {
            continue;
        }
        let m = to_big(&t::scalar_mont_mul(&from_big(a), &from_big(b)));
        assert!(m < n);
        assert_eq!(m, a * b * &rinv % &n);
    }
    // u1 = e/s, u2 = r/s including digests >= n.
    for i in 0..(ITERS / 20) {
        let e = match i % 4 {
            0 => rng.below_big(&(&one << 256usize)),
            1 => (&one << 256usize) - 1u32 - BigUint::from(i),
            2 => &n + BigUint::from(i),
            _ => BigUint::from(i),
        };
        let r = &vals[i % vals.len()];
        let s = &vals[(i * 13 + 5) % vals.len()];
        let (u1, u2) = t::scalars_for(&be32(&e), &be32(r), &be32(s)).unwrap();
        let w = inv_n(s);
        assert_eq!(BigUint::from_bytes_be(&u1), e % &n * &w % &n);
        assert_eq!(BigUint::from_bytes_be(&u2), r * &w % &n);
    }
}

#[test]
fn wnaf_reconstructs() {
    let n = n();
    let one = BigUint::from(1u32);
    let mut rng = Rng(4);
    let mut vals = vec![
        BigUint::from(0u32),
        one.clone(),
        &n - 1u32,
        (&one << 256usize) - 1u32,
        &one << 255usize,
        (&one << 64usize) - 1u32,
        BigUint::from(0xFFu32),
    ];
    for _ in 0..(ITERS / 20) {
        vals.push(rng.below_big(&(&one << 256usize)));
    }
    for k in &vals {
        for w in 2..=8u32 {
            let d = t::wnaf_digits(&be32(k), w);
            let mut pos = BigUint::from(0u32);
            let mut neg = BigUint::from(0u32);
            let mut last_nz: Option<usize> = None;
            for (i, &di) in d.iter().enumerate() {
                if di == 0 {
                    continue;
                }
                assert!(
                    di % 2 != 0 && (di.unsigned_abs() as u32) < (1 << (w - 1)),
                    "digit {di} w={w}"
                );
                if let Some(l) = last_nz {
                    assert!(i - l >= w as usize, "wNAF spacing");
                }
                last_nz = Some(i);
                let v = BigUint::from(di.unsigned_abs()) << i;
                if di > 0 {
                    pos += v
                } else {
                    neg += v
                }
            }
            assert_eq!(pos - neg, *k, "w={w}");
        }
    }
}

#[test]
fn g_table_matches_reference() {
    let g = g();
    let mut base = g.clone();
    for c in 0..t::CHUNKS {
        let two = pt_double(&base);
        let mut cur = base.clone();
        for k in 0..t::G_TABLE_LEN {
            let (x, y) = t::g_table_entry(c, k).unwrap();
            let (rx, ry) = cur.clone().unwrap();
            assert_eq!(
                (BigUint::from_bytes_be(&x), BigUint::from_bytes_be(&y)),
                (rx, ry),
                "G table [{c}][{k}]"
            );
            cur = pt_add(&cur, &two);
        }
        for _ in 0..(256 / t::CHUNKS) {
            base = pt_double(&base);
        }
    }
    assert!(t::g_table_entry(t::CHUNKS, 0).is_none());
    assert!(t::g_table_entry(0, t::G_TABLE_LEN).is_none());
    // 2^(64c) G spot checks by scalar multiplication.
    for c in 0..t::CHUNKS {
        let want = pt_mul(&(BigUint::from(1u32) << (256 / t::CHUNKS * c)), &g).unwrap();
        let (x, _) = t::g_table_entry(c, 0).unwrap();
        assert_eq!(BigUint::from_bytes_be(&x), want.0);
    }
}

#[test]
fn key_tables_and_double_mul_match_reference() {
    let n = n();
    let mut rng = Rng(5);
    let keys = if cfg!(target_arch = "wasm32") { 3 } else { 8 };
    let mut checked = 0;
    for _ in 0..keys {
        let d = rng.below_big(&n);
        let q = pt_mul(&d, &g());
        let key = PublicKey::from_sec1_uncompressed(&sec1(&q)).unwrap();
        let mut base = q.clone();
        for c in 0..t::CHUNKS {
            let two = pt_double(&base);
            let mut cur = base.clone();
            for k in 0..t::Q_TABLE_LEN {
                let (x, y) = t::key_table_entry(&key, c, k).unwrap();
                let (rx, ry) = cur.clone().unwrap();
                assert_eq!(
                    (BigUint::from_bytes_be(&x), BigUint::from_bytes_be(&y)),
                    (rx, ry)
                );
                cur = pt_add(&cur, &two);
            }
            for _ in 0..(256 / t::CHUNKS) {
                base = pt_double(&base);
            }
        }
        for _ in 0..4 {
            let u1 = rng.below_big(&n);
            let u2 = rng.below_big(&n);
            let want = pt_add(&pt_mul(&u1, &g()), &pt_mul(&u2, &q));
            let got = t::double_mul(&be32(&u1), &be32(&u2), &key)
                .map(|(x, y)| (BigUint::from_bytes_be(&x), BigUint::from_bytes_be(&y)));
            assert_eq!(got, want);
            checked += 1;
        }
    }
    println!("double_mul checked on {checked} random pairs");
}

#[test]
fn point_double_matches_reference() {
    let mut rng = Rng(6);
    let n = n();
    for _ in 0..20 {
        let k = rng.below_big(&n);
        let pt = pt_mul(&k, &g()).unwrap();
        let got = t::point_double(&be32(&pt.0), &be32(&pt.1)).unwrap();
        let want = pt_double(&Some(pt)).unwrap();
        assert_eq!(
            (
                BigUint::from_bytes_be(&got.0),
                BigUint::from_bytes_be(&got.1)
            ),
            want
        );
    }
}
