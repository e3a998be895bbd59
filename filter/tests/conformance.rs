//! Conformance with google/jwt_verify_lib, the JWT library behind Envoy's
//! `jwt_authn` filter. The cases in `tests/conformance/jwt_verify_lib.json`
//! (inputs and expected status only, extracted from the library's own tests;
//! see the README beside it) run through Scopegate's core the way the filter
//! runs a request: a configuration built with `config::parse_value`, then
//! `decide` on `GET /x` with `authorization: Bearer <token>`.
//!
//! Every case ends as one of:
//! - agreed: Scopegate answers what the library's status maps to (`STATUS_MAP`);
//! - not applicable: the library feature has no Scopegate counterpart (`DESIGNED`);
//! - stricter: the library accepts, Scopegate refuses by design (`DESIGNED`), and
//!   the refusal itself is checked, so a stricter case can never pass silently;
//! - disagreed: anything else. The test fails and lists them.
//!
//! Where `decide` stops before the signature (tokens without `exp` or `iss`, or
//! issued after the test's `now`),
//! the key selection and signature check are also compared one layer down
//! (`jwks::parse_text`, `token::parse`, `KeySet::candidates`, `VerifyKey::verify`,
//! the calls `validate` makes), so those vectors still test the crypto.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use scopegate::identity::validate::NoRemoteKeys;
use scopegate::jose::base64url;
use scopegate::jose::jwks;
use scopegate::jose::token;
use scopegate::policy::config::{self, Config};
use scopegate::{decide, Decision, Reason, Request};
use serde_json::{json, Map, Value};
use std::collections::BTreeMap;

const DATA: &str = include_str!("../../tests/conformance/jwt_verify_lib.json");

/// `now` for cases where the library reads the wall clock (`time_source:
/// "wall_clock"`): 2023-11-14T22:13:20Z. Their tokens have no `nbf` and either
/// no `exp` or `exp` = 2001001001 (2033), so this reproduces the library's result.
const WALL_CLOCK_NOW: u64 = 1_700_000_000;

/// Far above any token in the data: the size limit is not what is compared.
const PARSE_LIMIT: usize = 1 << 16;

/// The token's `iss` when it has none (the provider still needs an issuer).
const NO_ISSUER: &str = "https://no-iss.invalid";

/// A key set for cases whose own keys are absent or beside the point (time,
/// audience and parse checks, which the library runs without keys).
const STAND_IN_KEYS_CASE: &str = "verify_jwk_rsa_test.cc:VerifyJwkRsaTest.NoKidOK:1";

// ---- what the library's status means for Scopegate ----------------------

#[derive(Clone, Copy, Debug, PartialEq)]
enum Expect {
    /// The request is allowed (`Reason::Allowed`).
    Allow,
    /// The request is denied with this reason.
    Deny(Reason),
    /// `config::parse_value` refuses the key set: an inline JWKS that Scopegate
    /// cannot use is a configuration error, so it can never reach a request.
    ConfigRejected,
}

/// jwt_verify_lib `Status` → Scopegate. Statuses are matched exactly first,
/// then by prefix (the `…ParseError…`/`Jwks…` families).
const STATUS_MAP: &[(&str, Expect, &str)] = &[
    ("Ok", Expect::Allow, "verified"),
    (
        "JwtExpired",
        Expect::Deny(Reason::TokenExpired),
        "now > exp + skew",
    ),
    (
        "JwtNotYetValid",
        Expect::Deny(Reason::TokenNotYetValid),
        "now + skew < nbf",
    ),
    (
        "JwtVerificationFail",
        Expect::Deny(Reason::SignatureInvalid),
        "keys selected, none verifies",
    ),
    (
        "JwtEd25519SignatureWrongLength",
        Expect::Deny(Reason::SignatureInvalid),
        "a signature that is not 64 bytes does not verify",
    ),
    (
        "JwksKidAlgMismatch",
        Expect::Deny(Reason::KeyNotFound),
        "no key fits the token's kid and alg",
    ),
    (
        "JwtAudienceNotAllowed",
        Expect::Deny(Reason::AudienceMismatch),
        "aud not allowed",
    ),
    (
        "JwtHeaderNotImplementedAlg",
        Expect::Deny(Reason::UnsupportedAlgorithm),
        "alg unknown",
    ),
    (
        "JwtBadFormat",
        Expect::Deny(Reason::TokenMalformed),
        "not three segments / too large",
    ),
    (
        "JwtHeader",
        Expect::Deny(Reason::TokenMalformed),
        "prefix: header base64/JSON/alg/kid errors",
    ),
    (
        "JwtPayload",
        Expect::Deny(Reason::TokenMalformed),
        "prefix: payload base64/JSON/claim type/range errors",
    ),
    (
        "JwtSignature",
        Expect::Deny(Reason::TokenMalformed),
        "prefix: signature not base64url",
    ),
    (
        "Jwks",
        Expect::ConfigRejected,
        "prefix: JwksNoValidKeys, JwksParseError, Jwks*KeyBad*, ...",
    ),
];

fn expected(status: &str, token: Option<&str>) -> Expect {
    // `authorization: Bearer ` with nothing after it has no credential at all:
    // Scopegate answers 400 invalid_request (RFC 6750 §3.1) rather than 401.
    if status == "JwtBadFormat" && token == Some("") {
        return Expect::Deny(Reason::RequestMalformed);
    }
    STATUS_MAP
        .iter()
        .find(|(s, _, _)| *s == status)
        .or_else(|| {
            STATUS_MAP
                .iter()
                .find(|(s, _, _)| status.starts_with(s) && *s != "Ok")
        })
        .map(|(_, e, _)| *e)
        .unwrap_or_else(|| panic!("status {status} is not in STATUS_MAP"))
}

// ---- semantics that differ by design -------------------------------------

#[derive(Clone, Copy, PartialEq)]
enum Class {
    /// No Scopegate counterpart: the case is not run.
    NotApplicable,
    /// Scopegate refuses what the library accepts; the refusal is checked.
    Stricter,
}

const DESIGNED: &[(&str, Class, &str)] = &[
    (
        "pem_key_format",
        Class::NotApplicable,
        "Jwks::PEM / createFromPem / addKeyFromPem: Scopegate's `jwks` is a JWK Set (inline or uri), never PEM",
    ),
    (
        "x509_key_format",
        Class::NotApplicable,
        "kid-to-X.509-certificate maps are not a JWK Set; fed to `jwks.inline` they are refused (checked)",
    ),
    (
        "hmac",
        Class::Stricter,
        "HS256/384/512 and `oct` keys are never accepted (CONTRACT §1): the key set is refused and HS* tokens are denied",
    ),
    (
        "exp_required",
        Class::Stricter,
        "`exp` is always required (CONTRACT §1): claim_missing; the library treats a missing exp as never expiring",
    ),
    (
        "iss_required",
        Class::Stricter,
        "the token's `iss` selects the provider: a token without one is claim_missing",
    ),
    (
        "iat_checked",
        Class::Stricter,
        "`iat` is checked when present (CONTRACT §1): token_issued_in_future; the library ignores iat \
         (these tests verify at now = 1, before the tokens were issued)",
    ),
    (
        "non_strict_json",
        Class::Stricter,
        "trailing commas and raw control characters in strings are not JSON (RFC 8259): serde_json refuses the key set",
    ),
    (
        "base64_padding",
        Class::Stricter,
        "compact JWS is unpadded base64url (RFC 7515 §2): a `==` signature is token_malformed",
    ),
    (
        "audience_exact_match",
        Class::Stricter,
        "`aud` is compared exactly (RFC 7519 §4.1.3): no http(s):// prefix or trailing-slash folding",
    ),
    (
        "empty_audience_in_config",
        Class::Stricter,
        "an empty string is refused as a configured audience",
    ),
    (
        "es512_p521",
        Class::Stricter,
        "ES512/P-521 are unsupported: ES512 tokens are unsupported_algorithm, P-521 keys are skipped",
    ),
    (
        "ec_crv_required",
        Class::Stricter,
        "`crv` is REQUIRED in an EC JWK (RFC 7518 §6.2.1.1); the library infers it from `alg` or assumes P-256",
    ),
    (
        "rsa_exponent",
        Class::NotApplicable,
        "the library accepts only e = 3 or 65537, Scopegate any odd e of 2..32 bits; no case here has another e",
    ),
    (
        "now_out_of_range",
        Class::NotApplicable,
        "a `now` that does not fit u64 cannot be passed to `decide`",
    ),
];

fn class_of(name: &str) -> Class {
    DESIGNED
        .iter()
        .find(|(n, _, _)| *n == name)
        .map(|(_, c, _)| *c)
        .unwrap_or_else(|| panic!("{name} is not in DESIGNED"))
}

enum Outcome {
    Agreed,
    Designed(&'static str),
    Disagreed(String),
}

// ---- helpers ---------------------------------------------------------------

fn str_field<'a>(case: &'a Value, name: &str) -> Option<&'a str> {
    case.get(name).and_then(Value::as_str)
}

fn id(case: &Value) -> &str {
    str_field(case, "id").unwrap()
}

fn segments(token: &str) -> Vec<&str> {
    token.split('.').collect()
}

/// The JSON object in a token segment, read leniently (padding tolerated) so
/// the test can see the claims even of tokens Scopegate refuses.
fn segment_json(token: &str, index: usize) -> Option<Map<String, Value>> {
    let seg = *segments(token).get(index)?;
    let bytes = base64url::decode(seg.trim_end_matches('=').as_bytes()).ok()?;
    serde_json::from_slice::<Value>(&bytes)
        .ok()?
        .as_object()
        .cloned()
}

fn claim<'a>(claims: &'a Option<Map<String, Value>>, name: &str) -> Option<&'a Value> {
    claims.as_ref().and_then(|c| c.get(name))
}

fn token_alg(token: &str) -> Option<String> {
    segment_json(token, 0)?
        .get("alg")?
        .as_str()
        .map(str::to_string)
}

fn with_signature(token: &str, sig: &[u8]) -> String {
    let (head, _) = token.rsplit_once('.').unwrap();
    format!("{head}.{}", base64url::encode(sig))
}

fn unsigned(header: &Value, payload: &Value, sig: &[u8]) -> String {
    format!(
        "{}.{}.{}",
        base64url::encode(header.to_string().as_bytes()),
        base64url::encode(payload.to_string().as_bytes()),
        base64url::encode(sig)
    )
}

fn config_for(
    issuer: &str,
    keys: &str,
    audiences: Option<&[Value]>,
    skew: u64,
) -> Result<Config, Vec<config::ConfigError>> {
    let mut provider = json!({
        "name": "lib",
        "issuer": issuer,
        "jwks": {"inline": keys},
        "clock_skew_s": skew,
    });
    if let Some(auds) = audiences.filter(|a| !a.is_empty()) {
        provider["audiences"] = Value::Array(auds.to_vec());
    }
    config::parse_value(&json!({
        "providers": [provider],
        "rules": [{"name": "all", "path": "/**"}],
        "default_action": "deny",
    }))
}

fn run(cfg: &Config, token: &str, now: u64) -> Decision {
    let value = format!("Bearer {token}");
    let headers = [("authorization", value.as_str())];
    decide(
        cfg,
        &Request::new("GET", "/x", &headers),
        &NoRemoteKeys,
        now,
    )
}

fn answer(d: &Decision) -> Expect {
    if d.is_allowed() {
        Expect::Allow
    } else {
        Expect::Deny(d.reason)
    }
}

/// Key selection and signature, one layer below `decide`: the calls
/// `validate` makes once time, issuer and audience have passed.
fn signature_layer(keys: &str, token: &str) -> Result<Expect, String> {
    let (set, _) = jwks::parse_text(keys.as_bytes()).map_err(|e| e.to_string())?;
    let parsed = token::parse(token, PARSE_LIMIT).map_err(|d| d.message)?;
    let mut tried = 0;
    for key in set.candidates(parsed.alg, parsed.kid.as_deref()) {
        tried += 1;
        if key
            .key
            .verify(parsed.alg, parsed.signing_input, &parsed.signature)
        {
            return Ok(Expect::Allow);
        }
    }
    Ok(Expect::Deny(if tried == 0 {
        Reason::KeyNotFound
    } else {
        Reason::SignatureInvalid
    }))
}

/// `fuzzJwtSignature` of the library's test_common.h: flip each bit of the
/// decoded signature, then truncate it to 1..len-1 bytes.
fn mutations(token: &str) -> Vec<(String, bool)> {
    let sig_b64 = token.rsplit_once('.').unwrap().1;
    let sig = base64url::decode(sig_b64.as_bytes()).unwrap();
    let mut out = Vec::with_capacity(sig.len() * 9);
    for i in 0..sig.len() {
        for bit in 0..8 {
            let mut s = sig.clone();
            s[i] ^= 1 << bit;
            out.push((with_signature(token, &s), false));
        }
    }
    for n in 1..sig.len() {
        out.push((with_signature(token, &sig[..n]), true));
    }
    out
}

fn now_of(v: Option<&Value>) -> Result<u64, ()> {
    match v {
        None | Some(Value::Null) => Ok(WALL_CLOCK_NOW),
        Some(n) => n.as_u64().ok_or(()),
    }
}

#[derive(Default)]
struct Tally {
    agreed: usize,
    designed: BTreeMap<&'static str, usize>,
    disagreed: Vec<String>,
    sig_layer_agreed: usize,
    mutations: usize,
}

impl Tally {
    fn disagree(&mut self, case: &Value, msg: impl std::fmt::Display) {
        self.disagreed.push(format!("{}: {msg}", id(case)));
    }
}

// ---- per kind --------------------------------------------------------------

struct Env {
    stand_in_keys: String,
}

fn run_verify(env: &Env, case: &Value, t: &mut Tally) -> Outcome {
    let token = str_field(case, "token").unwrap();
    let format = str_field(case, "keys_format");
    let keys = str_field(case, "keys");
    let alg = token_alg(token).unwrap_or_default();
    let lib = str_field(case, "expect").unwrap();
    let want = expected(lib, Some(token));
    let claims = segment_json(token, 1);
    let Ok(now) = now_of(case.get("now")) else {
        return Outcome::Designed("now_out_of_range");
    };
    let skew = case["clock_skew_s"].as_u64().unwrap();
    let audiences = case["audiences"].as_array().map(Vec::as_slice);
    let issuer = claim(&claims, "iss").and_then(Value::as_str);
    let cfg_for = |keys: &str| config_for(issuer.unwrap_or(NO_ISSUER), keys, audiences, skew);

    if format == Some("pem") {
        return Outcome::Designed("pem_key_format");
    }
    if alg.starts_with("HS") {
        // The key set is refused and the token is denied whatever keys are configured.
        if let Some(keys) = keys {
            if cfg_for(keys).is_ok() {
                return Outcome::Disagreed("an HMAC key set was accepted".into());
            }
        }
        let cfg = cfg_for(&env.stand_in_keys).unwrap();
        let mut tokens = vec![token.to_string()];
        if case.get("signature_fuzz").is_some() {
            tokens.extend(mutations(token).into_iter().map(|(m, _)| m));
        }
        for tok in &tokens {
            let d = run(&cfg, tok, now);
            if d.reason != Reason::UnsupportedAlgorithm {
                return Outcome::Disagreed(format!("HMAC token answered {}", d.reason.as_str()));
            }
        }
        t.mutations += tokens.len() - 1;
        return Outcome::Designed("hmac");
    }
    if token
        .rsplit_once('.')
        .is_some_and(|(_, s)| s.ends_with('='))
    {
        let cfg = cfg_for(&env.stand_in_keys).unwrap();
        let d = run(&cfg, token, now);
        if d.reason != Reason::TokenMalformed {
            return Outcome::Disagreed(format!("padded signature answered {}", d.reason.as_str()));
        }
        return Outcome::Designed("base64_padding");
    }
    if format == Some("x509") {
        return x509_refused(keys.unwrap());
    }
    if case.get("json_leniency").is_some() {
        return match cfg_for(keys.unwrap()) {
            Ok(_) => Outcome::Disagreed("non-strict JSON key set was accepted".into()),
            Err(_) => Outcome::Designed("non_strict_json"),
        };
    }
    if alg == "ES512" {
        let cfg = cfg_for(keys.unwrap_or(&env.stand_in_keys)).unwrap();
        let d = run(&cfg, token, now);
        if d.reason != Reason::UnsupportedAlgorithm {
            return Outcome::Disagreed(format!("ES512 token answered {}", d.reason.as_str()));
        }
        return Outcome::Designed("es512_p521");
    }

    let cfg = match cfg_for(keys.unwrap_or(&env.stand_in_keys)) {
        Ok(c) => c,
        Err(e) => return Outcome::Disagreed(format!("configuration refused: {e:?}")),
    };
    let got = answer(&run(&cfg, token, now));

    // Below `decide`: where the token lacks exp/iss, this is the only place the
    // library's key selection and signature result can be compared.
    let sig_expect = match want {
        Expect::Allow | Expect::Deny(Reason::KeyNotFound | Reason::SignatureInvalid) => Some(want),
        _ => None,
    };
    let mut sig_layer_checked = false;
    if let (Some(keys), Some(w)) = (keys, sig_expect) {
        match signature_layer(keys, token) {
            Ok(s) if s == w => sig_layer_checked = true,
            Ok(s) => t.disagree(
                case,
                format!("signature layer: library {lib}, Scopegate {s:?}"),
            ),
            Err(e) => t.disagree(case, format!("signature layer failed: {e}")),
        }
    }

    let outcome = if got == want {
        Outcome::Agreed
    } else if issuer.is_none() && got == Expect::Deny(Reason::ClaimMissing) {
        Outcome::Designed("iss_required")
    } else if claim(&claims, "exp").is_none() && got == Expect::Deny(Reason::ClaimMissing) {
        Outcome::Designed("exp_required")
    } else if claim(&claims, "iat")
        .and_then(Value::as_u64)
        .is_some_and(|iat| iat > now.saturating_add(skew))
        && got == Expect::Deny(Reason::TokenIssuedInFuture)
    {
        Outcome::Designed("iat_checked")
    } else {
        return Outcome::Disagreed(format!("library {lib}, Scopegate {got:?}"));
    };
    if sig_layer_checked && !matches!(outcome, Outcome::Agreed) {
        t.sig_layer_agreed += 1;
    }

    if let Some(fz) = case.get("signature_fuzz") {
        let fz_now = now_of(fz.get("now")).unwrap();
        let decided_by_signature = matches!(outcome, Outcome::Agreed);
        for (m, truncated) in mutations(token) {
            let lib_m = str_field(
                fz,
                if truncated {
                    "truncate_expect"
                } else {
                    "bit_flip_expect"
                },
            )
            .unwrap();
            let want_m = expected(lib_m, Some(&m));
            let d = run(&cfg, &m, fz_now);
            if d.is_allowed() {
                t.disagree(case, "a mutated signature was allowed");
                break;
            }
            // Where decide stops earlier (no exp/iss), compare one layer down.
            let got_m = if decided_by_signature {
                answer(&d)
            } else {
                signature_layer(keys.unwrap(), &m).unwrap_or(Expect::Deny(Reason::TokenMalformed))
            };
            if got_m != want_m {
                t.disagree(
                    case,
                    format!("mutation: library {lib_m}, Scopegate {got_m:?}"),
                );
                break;
            }
            t.mutations += 1;
        }
    }
    outcome
}

/// A kid→certificate map fed to `jwks.inline` must be refused, never misread.
fn x509_refused(keys: &str) -> Outcome {
    if config_for("https://x509.invalid", keys, None, 60).is_ok() {
        return Outcome::Disagreed("an X.509 certificate map was accepted as a JWK Set".into());
    }
    Outcome::Designed("x509_key_format")
}

/// Why a key set the library accepts is refused by Scopegate's configuration.
fn why_keys_refused(keys: &str) -> Option<&'static str> {
    let v: Value = serde_json::from_str(keys).ok()?;
    let keys = v.get("keys")?.as_array()?;
    let field = |k: &Value, f: &str| k.get(f).and_then(Value::as_str).map(str::to_string);
    if keys
        .iter()
        .any(|k| field(k, "kty").as_deref() == Some("oct"))
    {
        return Some("hmac");
    }
    let ec_without_crv = keys.iter().any(|k| {
        field(k, "kty").as_deref() == Some("EC")
            && k.get("crv").is_none()
            && field(k, "alg").as_deref() != Some("ES512")
    });
    if ec_without_crv {
        return Some("ec_crv_required");
    }
    let p521 = keys.iter().any(|k| {
        field(k, "crv").as_deref() == Some("P-521") || field(k, "alg").as_deref() == Some("ES512")
    });
    p521.then_some("es512_p521")
}

fn run_parse_jwks(case: &Value) -> Outcome {
    let keys = str_field(case, "keys").unwrap();
    let lib = str_field(case, "expect").unwrap();
    match str_field(case, "keys_format") {
        Some("pem") => return Outcome::Designed("pem_key_format"),
        Some("x509") => return x509_refused(keys),
        _ => {}
    }
    let accepted = config_for("https://jwks.invalid", keys, None, 60);
    match (expected(lib, None), accepted) {
        (Expect::ConfigRejected, Err(_)) => Outcome::Agreed,
        (Expect::ConfigRejected, Ok(_)) => {
            Outcome::Disagreed(format!("library {lib}, Scopegate accepted the key set"))
        }
        (_, Err(e)) => {
            if case.get("json_leniency").is_some() {
                Outcome::Designed("non_strict_json")
            } else if let Some(why) = why_keys_refused(keys) {
                Outcome::Designed(why)
            } else {
                Outcome::Disagreed(format!("library Ok, Scopegate refused: {e:?}"))
            }
        }
        (_, Ok(_)) => compare_keys(case, keys),
    }
}

/// The keys Scopegate kept, against the library's asserted fields, leaving
/// out the keys Scopegate skips by design (P-521/ES512).
fn compare_keys(case: &Value, keys: &str) -> Outcome {
    let (set, _) = jwks::parse_text(keys.as_bytes()).unwrap();
    let Some(expect_keys) = case.get("expect_keys").and_then(Value::as_array) else {
        if let Some(n) = case.get("expect_key_count").and_then(Value::as_u64) {
            let skipped = why_keys_refused(keys).map_or(0, |_| 1);
            if set.len() as u64 + skipped < n {
                return Outcome::Disagreed(format!("{} keys kept, library {n}", set.len()));
            }
        }
        return Outcome::Agreed;
    };
    let kept: Vec<&Value> = expect_keys
        .iter()
        .filter(|k| {
            k.get("alg").and_then(Value::as_str) != Some("ES512")
                && k.get("crv").and_then(Value::as_str) != Some("P-521")
        })
        .collect();
    if kept.len() != set.len() {
        return Outcome::Disagreed(format!("{} keys kept, expected {}", set.len(), kept.len()));
    }
    for (want, got) in kept.iter().zip(set.keys()) {
        if let Some(kid) = want.get("kid").and_then(Value::as_str) {
            if got.kid.as_deref().unwrap_or("") != kid {
                return Outcome::Disagreed(format!("kid {:?}, expected {kid}", got.kid));
            }
        }
        if let Some(alg) = want.get("alg").and_then(Value::as_str) {
            if got.alg.map_or("", |a| a.as_str()) != alg {
                return Outcome::Disagreed(format!("alg {:?}, expected {alg}", got.alg));
            }
        }
    }
    Outcome::Agreed
}

fn run_parse_jwt(env: &Env, case: &Value) -> Outcome {
    let token = str_field(case, "token").unwrap();
    let lib = str_field(case, "expect").unwrap();
    let want = expected(lib, Some(token));
    let cfg_for = |tok: &str| {
        let claims = segment_json(tok, 1);
        let iss = claim(&claims, "iss")
            .and_then(Value::as_str)
            .unwrap_or(NO_ISSUER);
        config_for(iss, &env.stand_in_keys, None, 60).unwrap()
    };
    // Parse checks never verify, so an HS256 header only hides the payload
    // checks behind the algorithm refusal: check the refusal, then compare the
    // payload checks under an RS256 header.
    let mut token = token.to_string();
    if token_alg(&token).is_some_and(|a| a.starts_with("HS")) {
        let d = run(&cfg_for(&token), &token, WALL_CLOCK_NOW);
        if d.reason != Reason::UnsupportedAlgorithm {
            return Outcome::Disagreed(format!("HS256 token answered {}", d.reason.as_str()));
        }
        let rest = token.split_once('.').unwrap().1;
        token = format!(
            "{}.{rest}",
            base64url::encode(br#"{"alg":"RS256","typ":"JWT"}"#)
        );
    }
    let got = run(&cfg_for(&token), &token, WALL_CLOCK_NOW).reason;
    let parse_failed = matches!(
        got,
        Reason::TokenMalformed | Reason::UnsupportedAlgorithm | Reason::RequestMalformed
    );
    match want {
        Expect::Allow if parse_failed => {
            return Outcome::Disagreed(format!("library Ok, Scopegate {}", got.as_str()))
        }
        Expect::Allow => {}
        Expect::Deny(r) if r == got => return Outcome::Agreed,
        other => {
            return Outcome::Disagreed(format!(
                "library {lib} ({other:?}), Scopegate {}",
                got.as_str()
            ))
        }
    }
    match case.get("expect_claims").and_then(Value::as_object) {
        Some(fields) => compare_claims(&token, fields),
        None => Outcome::Agreed,
    }
}

fn compare_claims(token: &str, fields: &Map<String, Value>) -> Outcome {
    let p = token::parse(token, PARSE_LIMIT).unwrap();
    let c = &p.claims;
    let opt = |v: &Option<String>| json!(v.clone().unwrap_or_default());
    let num = |v: Option<u64>| json!(v.unwrap_or(0));
    for (name, want) in fields {
        let got = match name.as_str() {
            "alg" => json!(p.alg.as_str()),
            "kid" => opt(&p.kid),
            "iss" => opt(&c.iss),
            "sub" => opt(&c.sub),
            "jti" => opt(&c.jti),
            "audiences" => json!(c.aud),
            "iat" => num(c.iat),
            "nbf" => num(c.nbf),
            "exp" => num(c.exp),
            "signature_bytes" => json!(String::from_utf8_lossy(&p.signature)),
            // Header members beyond alg/kid are not kept by Scopegate.
            n if n.starts_with("header.") => continue,
            n => match n.strip_prefix("payload.") {
                Some(path) => {
                    let mut v = Value::Object(c.all.clone());
                    for part in path.split('.') {
                        v = v.get(part).cloned().unwrap_or(Value::Null);
                    }
                    v
                }
                None => panic!("unknown expect_claims field {n}"),
            },
        };
        if &got != want {
            return Outcome::Disagreed(format!("claim {name}: Scopegate {got}, library {want}"));
        }
    }
    Outcome::Agreed
}

/// `Jwt::verifyTimeConstraint` only: the token keeps its claims (less the
/// members the test forced to 0) and gets a dummy signature, so the answer
/// says whether the time checks passed (signature_invalid) or which one failed.
fn run_time_check(env: &Env, case: &Value) -> Outcome {
    let token = str_field(case, "token").unwrap();
    let lib = str_field(case, "expect").unwrap();
    let Ok(now) = now_of(case.get("now")) else {
        return Outcome::Designed("now_out_of_range");
    };
    let mut claims = segment_json(token, 1).unwrap();
    if let Some(over) = case.get("claim_overrides").and_then(Value::as_object) {
        for (name, v) in over {
            assert_eq!(v, &json!(0), "only `0` (absent) overrides are known");
            claims.remove(name);
        }
    }
    let header = Value::Object(segment_json(token, 0).unwrap());
    let tok = unsigned(&header, &Value::Object(claims.clone()), &[0; 256]);
    let iss = claims.get("iss").and_then(Value::as_str).unwrap();
    let skew = case["clock_skew_s"].as_u64().unwrap();
    let cfg = config_for(iss, &env.stand_in_keys, None, skew).unwrap();
    let got = run(&cfg, &tok, now).reason;
    let want = match expected(lib, None) {
        Expect::Allow => Reason::SignatureInvalid,
        Expect::Deny(r) => r,
        Expect::ConfigRejected => unreachable!(),
    };
    if got == want {
        Outcome::Agreed
    } else if !claims.contains_key("exp") && got == Reason::ClaimMissing {
        Outcome::Designed("exp_required")
    } else {
        Outcome::Disagreed(format!("library {lib}, Scopegate {}", got.as_str()))
    }
}

/// `CheckAudience::areAudiencesAllowed` only: a token with the case's `aud`
/// values and a dummy signature; passing the audience check shows as
/// signature_invalid.
fn run_check_audience(env: &Env, case: &Value) -> Outcome {
    let allowed = case["audiences"].as_array().unwrap();
    let token_auds = case["token_audiences"].as_array().unwrap();
    let iss = "https://example.com";
    let now = WALL_CLOCK_NOW;
    let tok = unsigned(
        &json!({"alg": "RS256", "typ": "JWT"}),
        &json!({"iss": iss, "exp": now + 3600, "aud": token_auds}),
        &[0; 256],
    );
    let cfg = match config_for(iss, &env.stand_in_keys, Some(allowed), 60) {
        Ok(c) => c,
        Err(_) if allowed.iter().any(|a| a == "") => {
            return Outcome::Designed("empty_audience_in_config")
        }
        Err(e) => return Outcome::Disagreed(format!("configuration refused: {e:?}")),
    };
    let got = run(&cfg, &tok, now).reason;
    let exact = allowed.is_empty() || token_auds.iter().any(|a| allowed.contains(a));
    match got {
        Reason::SignatureInvalid => Outcome::Agreed,
        Reason::AudienceMismatch if !exact => Outcome::Designed("audience_exact_match"),
        other => Outcome::Disagreed(format!("library Ok, Scopegate {}", other.as_str())),
    }
}

// ---- the test ---------------------------------------------------------------

#[test]
fn jwt_verify_lib_conformance() {
    let doc: Value = serde_json::from_str(DATA).unwrap();
    let cases = doc["cases"].as_array().unwrap();
    let env = Env {
        stand_in_keys: cases
            .iter()
            .find(|c| id(c) == STAND_IN_KEYS_CASE)
            .and_then(|c| str_field(c, "keys"))
            .unwrap()
            .to_string(),
    };
    let mut t = Tally::default();
    for case in cases {
        let outcome = match str_field(case, "kind").unwrap() {
            "verify" => run_verify(&env, case, &mut t),
            "parse_jwks" => run_parse_jwks(case),
            "parse_jwt" => run_parse_jwt(&env, case),
            "time_check" => run_time_check(&env, case),
            "check_audience" => run_check_audience(&env, case),
            other => panic!("{}: unknown kind {other}", id(case)),
        };
        match outcome {
            Outcome::Agreed => t.agreed += 1,
            Outcome::Designed(why) => *t.designed.entry(why).or_default() += 1,
            Outcome::Disagreed(msg) => t.disagree(case, msg),
        }
    }

    let by_class = |class: Class| {
        let parts: Vec<String> = t
            .designed
            .iter()
            .filter(|(why, _)| class_of(why) == class)
            .map(|(why, n)| format!("{why} {n}"))
            .collect();
        let total: usize = t
            .designed
            .iter()
            .filter(|(why, _)| class_of(why) == class)
            .map(|(_, n)| n)
            .sum();
        format!("{total} ({})", parts.join(", "))
    };
    println!(
        "conformance: {} cases: {} agreed, {} not applicable, {} stricter and refused, {} disagreed",
        cases.len(),
        t.agreed,
        by_class(Class::NotApplicable),
        by_class(Class::Stricter),
        t.disagreed.len()
    );
    println!(
        "conformance: signature layer agreed on {} cases decide refused earlier; {} signature mutations denied",
        t.sig_layer_agreed, t.mutations
    );
    assert!(
        t.disagreed.is_empty(),
        "{} disagreement(s) with jwt_verify_lib:\n{}",
        t.disagreed.len(),
        t.disagreed.join("\n")
    );
}

/// The status table covers every status the data uses.
#[test]
fn every_status_in_the_data_is_mapped() {
    let doc: Value = serde_json::from_str(DATA).unwrap();
    for case in doc["cases"].as_array().unwrap() {
        let mut statuses = vec![str_field(case, "expect").unwrap()];
        if let Some(fz) = case.get("signature_fuzz") {
            statuses.push(str_field(fz, "bit_flip_expect").unwrap());
            statuses.push(str_field(fz, "truncate_expect").unwrap());
        }
        for s in statuses {
            let _ = expected(s, None);
        }
    }
}
