//! Signed Status List Tokens (draft-ietf-oauth-status-list, JWT format):
//! minted with the test keys, verified with the issuer's key set, and every
//! way one can be refused. The counting allocator below proves a zlib bomb
//! is refused without allocating past the output limit.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod support;

use scopegate::jose::jwks::{self, KeySet};
use scopegate::jose::mint::SigningKey;
use scopegate::jose::statuslist::{
    self, decode_list, encode_lst, parse_token, referenced, Limits, StatusError, StatusList,
    INVALID, SUSPENDED, TYP, VALID,
};
use scopegate::vocab::alg::{Alg, AlgSet};
use serde_json::{json, Value};
use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use support::{keys, NOW};

const URI: &str = "https://idp.example.com/statuslists/1";
const SKEW: u64 = 60;

/// Counts this thread's live heap bytes and their peak.
struct Counting;

thread_local! {
    static LIVE: Cell<isize> = const { Cell::new(0) };
    static PEAK: Cell<isize> = const { Cell::new(0) };
}

fn track(delta: isize) {
    let _ = LIVE.try_with(|live| {
        let now = live.get().wrapping_add(delta);
        live.set(now);
        let _ = PEAK.try_with(|peak| peak.set(peak.get().max(now)));
    });
}

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let p = unsafe { System.alloc(layout) };
        if !p.is_null() {
            track(layout.size() as isize);
        }
        p
    }
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        let p = unsafe { System.alloc_zeroed(layout) };
        if !p.is_null() {
            track(layout.size() as isize);
        }
        p
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        unsafe { System.dealloc(ptr, layout) };
        track(-(layout.size() as isize));
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        let p = unsafe { System.realloc(ptr, layout, new_size) };
        if !p.is_null() {
            track(new_size as isize - layout.size() as isize);
        }
        p
    }
}

#[global_allocator]
static ALLOC: Counting = Counting;

/// Peak heap bytes this thread held above its starting level while `f` ran.
fn peak_during<T>(f: impl FnOnce() -> T) -> (T, usize) {
    let base = LIVE.with(Cell::get);
    PEAK.with(|p| p.set(base));
    let out = f();
    let peak = PEAK.with(Cell::get);
    (out, (peak - base).max(0) as usize)
}

/// The corp issuer's published keys, as the filter would hold them.
fn key_set() -> KeySet {
    let k = keys();
    let (set, issues) = jwks::parse_value(&json!({"keys": [
        k.rsa.public_jwk(Some("rsa1")),
        k.p256.public_jwk(Some("ec1")),
        k.p384.public_jwk(Some("ec2")),
        k.ed.public_jwk(Some("ed1")),
    ]}))
    .unwrap();
    assert!(issues.is_empty(), "{issues:?}");
    set
}

/// 100 statuses: 3 is revoked, 7 suspended, 99 application-specific (3).
fn statuses() -> Vec<u8> {
    let mut s = vec![VALID; 100];
    s[3] = INVALID;
    s[7] = SUSPENDED;
    s[99] = 3;
    s
}

fn claims() -> Value {
    json!({
        "iss": support::ISSUER,
        "sub": URI,
        "iat": NOW - 100,
        "exp": NOW + 3600,
        "ttl": 43200,
        "status_list": {"bits": 2, "lst": encode_lst(2, &statuses()).unwrap()}
    })
}

fn header(alg: Alg, kid: &str) -> Value {
    json!({"alg": alg.as_str(), "kid": kid, "typ": TYP})
}

fn mint_with(key: &SigningKey, header: &Value, claims: &Value) -> String {
    let alg = Alg::parse(header["alg"].as_str().unwrap()).unwrap();
    key.sign_raw(&header.to_string(), &claims.to_string(), alg)
        .unwrap()
}

fn mint(claims: &Value) -> String {
    mint_with(&keys().p256, &header(Alg::ES256, "ec1"), claims)
}

fn check(token: &str) -> Result<StatusList, StatusError> {
    parse_token(
        token.as_bytes(),
        URI,
        &key_set(),
        AlgSet::all(),
        NOW,
        SKEW,
        &Limits::default(),
    )
}

fn with(mut c: Value, key: &str, value: Value) -> Value {
    let obj = c.as_object_mut().unwrap();
    if value.is_null() {
        obj.remove(key);
    } else {
        obj.insert(key.into(), value);
    }
    c
}

#[test]
fn verifies_with_every_key_type() {
    let k = keys();
    let cases = [
        (&k.p256, Alg::ES256, "ec1"),
        (&k.p384, Alg::ES384, "ec2"),
        (&k.rsa, Alg::RS256, "rsa1"),
        (&k.rsa, Alg::PS512, "rsa1"),
        (&k.ed, Alg::EdDSA, "ed1"),
    ];
    for (key, alg, kid) in cases {
        let list = check(&mint_with(key, &header(alg, kid), &claims()))
            .unwrap_or_else(|e| panic!("{alg}: {e}"));
        assert_eq!(list.bits, 2);
        assert_eq!(
            (list.iat, list.exp, list.ttl),
            (NOW - 100, Some(NOW + 3600), Some(43200))
        );
        assert_eq!(list.len(), 100);
        for (i, &s) in statuses().iter().enumerate() {
            assert_eq!(list.status(i as u64), Some(s), "{alg} idx {i}");
        }
        assert_eq!(list.status(100), None);
    }
}

/// From an access token's `status` claim to the status of its index.
#[test]
fn access_token_reference_to_status() {
    let list = check(&mint(&claims())).unwrap();
    for (idx, want) in [(0, "VALID"), (3, "INVALID"), (7, "SUSPENDED")] {
        let access = json!({
            "iss": support::ISSUER, "sub": "svc",
            "status": {"status_list": {"idx": idx, "uri": URI}}
        });
        let r = referenced(&access).unwrap().unwrap();
        assert_eq!(r.uri, URI);
        let status = list.status(r.idx).unwrap();
        assert_eq!(statuslist::status_name(status), want);
    }
    let out_of_range = json!({"status": {"status_list": {"idx": 100, "uri": URI}}});
    assert_eq!(
        list.status(referenced(&out_of_range).unwrap().unwrap().idx),
        None
    );
}

#[test]
fn body_whitespace_is_ignored_but_nothing_else() {
    let t = mint(&claims());
    assert!(check(&format!("{t}\n")).is_ok());
    assert!(check(&format!("\r\n {t} \r\n")).is_ok());
    assert!(matches!(
        check(&format!("{t}x")),
        Err(StatusError::BadSignature { .. } | StatusError::Malformed(_))
    ));
}

#[test]
fn refuses_other_token_types() {
    let k = keys();
    // `sign` writes `typ: JWT`: an access token is not a status list.
    let c = claims().as_object().cloned().unwrap();
    let jwt = k.p256.sign(Alg::ES256, Some("ec1"), &c).unwrap();
    assert_eq!(
        check(&jwt).unwrap_err(),
        StatusError::WrongType(Some("JWT".into()))
    );
    let none = mint_with(&k.p256, &json!({"alg": "ES256", "kid": "ec1"}), &claims());
    assert_eq!(check(&none).unwrap_err(), StatusError::WrongType(None));
    let cwt = mint_with(
        &k.p256,
        &json!({"alg": "ES256", "kid": "ec1", "typ": "application/statuslist+cwt"}),
        &claims(),
    );
    assert!(matches!(
        check(&cwt).unwrap_err(),
        StatusError::WrongType(Some(_))
    ));
    let full = mint_with(
        &k.p256,
        &json!({"alg": "ES256", "kid": "ec1", "typ": "application/statuslist+jwt"}),
        &claims(),
    );
    assert!(check(&full).is_ok());
}

#[test]
fn refuses_bad_signatures_and_unknown_keys() {
    let k = keys();
    // Another party's key under the issuer's kid.
    let forged = mint_with(&k.partner, &header(Alg::RS256, "rsa1"), &claims());
    let err = check(&forged).unwrap_err();
    assert_eq!(
        err,
        StatusError::BadSignature {
            alg: "RS256".into(),
            tried: 1
        }
    );
    assert!(err.to_string().contains("forged"), "{err}");
    // A payload swapped under a valid signature.
    let good = mint(&claims());
    let other = mint(&with(
        claims(),
        "status_list",
        json!({"bits": 2, "lst": encode_lst(2, &[0; 100]).unwrap()}),
    ));
    let (h, rest) = good.split_once('.').unwrap();
    let sig = rest.rsplit_once('.').unwrap().1;
    let payload = other.split('.').nth(1).unwrap();
    assert!(matches!(
        check(&format!("{h}.{payload}.{sig}")).unwrap_err(),
        StatusError::BadSignature { .. }
    ));
    // An unknown kid, and a key kind the set lacks.
    let unknown = mint_with(&k.p256, &header(Alg::ES256, "rotated"), &claims());
    assert_eq!(
        check(&unknown).unwrap_err(),
        StatusError::KeyNotFound {
            alg: "ES256".into(),
            kid: Some("rotated".into())
        }
    );
    let only_ec: KeySet = jwks::parse_value(&json!({"keys": [k.p256.public_jwk(Some("ec1"))]}))
        .unwrap()
        .0;
    let ed = mint_with(&k.ed, &header(Alg::EdDSA, "ed1"), &claims());
    let err = parse_token(
        ed.as_bytes(),
        URI,
        &only_ec,
        AlgSet::all(),
        NOW,
        SKEW,
        &Limits::default(),
    )
    .unwrap_err();
    assert!(matches!(err, StatusError::KeyNotFound { .. }), "{err:?}");
    // A supported algorithm this issuer is not allowed.
    let rs_only: AlgSet = [Alg::RS256].into_iter().collect();
    let err = parse_token(
        mint(&claims()).as_bytes(),
        URI,
        &key_set(),
        rs_only,
        NOW,
        SKEW,
        &Limits::default(),
    )
    .unwrap_err();
    assert_eq!(
        err,
        StatusError::AlgorithmNotAllowed {
            alg: "ES256".into(),
            allowed: "RS256".into()
        }
    );
}

#[test]
fn sub_must_be_the_fetched_uri() {
    let err = check(&mint(&with(claims(), "sub", json!(format!("{URI}/"))))).unwrap_err();
    assert!(
        matches!(err, StatusError::SubjectMismatch { .. }),
        "{err:?}"
    );
    assert!(err.to_string().contains("status `uri`"), "{err}");
    assert_eq!(
        check(&mint(&with(claims(), "sub", Value::Null))).unwrap_err(),
        StatusError::MissingClaim("sub")
    );
    assert!(matches!(
        check(&mint(&with(claims(), "sub", json!(1)))).unwrap_err(),
        StatusError::Malformed(_)
    ));
}

#[test]
fn time_claims() {
    assert_eq!(
        check(&mint(&with(claims(), "iat", Value::Null))).unwrap_err(),
        StatusError::MissingClaim("iat")
    );
    // exp: valid through exp + skew, refused one second later.
    assert!(check(&mint(&with(claims(), "exp", json!(NOW - SKEW)))).is_ok());
    assert_eq!(
        check(&mint(&with(claims(), "exp", json!(NOW - SKEW - 1)))).unwrap_err(),
        StatusError::Expired {
            exp: NOW - SKEW - 1,
            now: NOW,
            skew: SKEW
        }
    );
    // exp is optional.
    let no_exp = check(&mint(&with(claims(), "exp", Value::Null))).unwrap();
    assert_eq!(no_exp.exp, None);
    // iat in the future beyond the skew, and nbf.
    assert!(check(&mint(&with(claims(), "iat", json!(NOW + SKEW)))).is_ok());
    assert!(matches!(
        check(&mint(&with(claims(), "iat", json!(NOW + SKEW + 1)))).unwrap_err(),
        StatusError::IssuedInFuture { .. }
    ));
    assert!(matches!(
        check(&mint(&with(claims(), "nbf", json!(NOW + SKEW + 1)))).unwrap_err(),
        StatusError::NotYetValid { .. }
    ));
    assert!(matches!(
        check(&mint(&with(claims(), "exp", json!("soon")))).unwrap_err(),
        StatusError::Malformed(_)
    ));
    // ttl: optional, positive.
    assert_eq!(
        check(&mint(&with(claims(), "ttl", Value::Null)))
            .unwrap()
            .ttl,
        None
    );
    for bad in [json!(0), json!(-1), json!("3600")] {
        assert!(
            matches!(
                check(&mint(&with(claims(), "ttl", bad.clone()))).unwrap_err(),
                StatusError::BadClaim { claim: "ttl", .. }
            ),
            "{bad}"
        );
    }
}

#[test]
fn status_list_claim_is_checked() {
    assert_eq!(
        check(&mint(&with(claims(), "status_list", Value::Null))).unwrap_err(),
        StatusError::MissingClaim("status_list")
    );
    let lst = encode_lst(1, &[1, 0, 1]).unwrap();
    let err = check(&mint(&with(
        claims(),
        "status_list",
        json!({"bits": 3, "lst": lst}),
    )))
    .unwrap_err();
    assert_eq!(err, StatusError::BadBits("3".into()));
    let err = check(&mint(&with(
        claims(),
        "status_list",
        json!({"bits": 1, "lst": "eNrbuRgAAhc"}),
    )))
    .unwrap_err();
    assert!(matches!(err, StatusError::Decompression(_)), "{err:?}");
    let err = check(&mint(&with(
        claims(),
        "status_list",
        json!({"bits": 1, "lst": "eNrbuRgAAhcBXQ=="}),
    )))
    .unwrap_err();
    assert!(matches!(err, StatusError::BadLstEncoding(_)), "{err:?}");
    // Other members (aggregation_uri) are allowed.
    let ok = check(&mint(&with(
        claims(),
        "status_list",
        json!({"bits": 1, "lst": lst, "aggregation_uri": "https://idp.example.com/agg"}),
    )))
    .unwrap();
    assert_eq!(ok.status(2), Some(1));
}

#[test]
fn duplicate_claims_are_refused() {
    let k = keys();
    let payload = format!(
        r#"{{"sub":"{URI}","iat":{},"status_list":{{"bits":1,"lst":"eNrbuRgAAhcBXQ"}},"sub":"https://evil.example/l"}}"#,
        NOW
    );
    let t = k
        .p256
        .sign_raw(&header(Alg::ES256, "ec1").to_string(), &payload, Alg::ES256)
        .unwrap();
    let err = check(&t).unwrap_err();
    assert!(
        matches!(&err, StatusError::Malformed(m) if m.contains("duplicate")),
        "{err:?}"
    );
}

/// 100 MiB of zeros, signed and all: refused at the 16 MiB output limit,
/// without the heap ever holding much more than that limit.
#[test]
fn zlib_bomb_in_a_signed_token_is_bounded() {
    let zeros = vec![0u8; 100 << 20];
    let bomb = miniz_oxide::deflate::compress_to_vec_zlib(&zeros, 6);
    drop(zeros);
    let lst = scopegate::jose::base64url::encode(&bomb);
    let t = mint(&with(
        claims(),
        "status_list",
        json!({"bits": 1, "lst": lst}),
    ));
    let limits = Limits {
        max_compressed_bytes: 1 << 20,
        ..Limits::default()
    };
    let keys = key_set();
    let (result, peak) =
        peak_during(|| parse_token(t.as_bytes(), URI, &keys, AlgSet::all(), NOW, SKEW, &limits));
    assert_eq!(
        result.unwrap_err(),
        StatusError::DecompressedTooLarge {
            limit: Limits::DEFAULT_MAX_LIST_BYTES
        }
    );
    // The output buffer (16 MiB) plus the token's own copies (~250 KiB).
    assert!(
        peak < Limits::DEFAULT_MAX_LIST_BYTES + (1 << 20),
        "peak heap {peak} bytes"
    );

    // A smaller limit bounds the heap as tightly.
    let tight = Limits {
        max_list_bytes: 1 << 20,
        ..limits
    };
    let (result, peak) = peak_during(|| decode_list(&json!({"bits": 1, "lst": lst}), &tight));
    assert_eq!(
        result.unwrap_err(),
        StatusError::DecompressedTooLarge { limit: 1 << 20 }
    );
    assert!(peak < (1 << 20) + (1 << 20), "peak heap {peak} bytes");

    // And the compressed-size limit refuses the token before inflating.
    let small = Limits {
        max_compressed_bytes: 64 << 10,
        ..Limits::default()
    };
    let err = parse_token(t.as_bytes(), URI, &keys, AlgSet::all(), NOW, SKEW, &small).unwrap_err();
    assert!(
        matches!(err, StatusError::CompressedTooLarge { .. }),
        "{err:?}"
    );
}

#[test]
fn token_size_limit() {
    let t = mint(&claims());
    let limits = Limits {
        max_token_bytes: t.len() - 1,
        ..Limits::default()
    };
    let err = parse_token(
        t.as_bytes(),
        URI,
        &key_set(),
        AlgSet::all(),
        NOW,
        SKEW,
        &limits,
    )
    .unwrap_err();
    assert_eq!(
        err,
        StatusError::TokenTooLarge {
            size: t.len(),
            limit: t.len() - 1
        }
    );
}
