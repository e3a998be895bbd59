//! JWK Set (RFC 7517) → ready key material. Used for inline key sets at
//! configuration time and for documents fetched from an issuer.

use crate::crypto::rsa::{RsaKeyError, RsaPublicKey, MAX_BITS, MIN_BITS};
use crate::crypto::verify::VerifyKey;
use crate::jose::base64url;
use crate::vocab::alg::Alg;
use crate::vocab::json::{self, JsonError};
use serde_json::{Map, Value};

/// Most keys one set may hold: key selection without `kid` tries each candidate.
pub const MAX_KEYS: usize = 64;

#[derive(Clone, Debug)]
pub struct Jwk {
    pub kid: Option<String>,
    /// When the JWK names an algorithm, it verifies that algorithm only.
    pub alg: Option<Alg>,
    pub key: VerifyKey,
}

impl Jwk {
    pub fn fits(&self, alg: Alg) -> bool {
        self.key.kind() == alg.key_kind() && self.alg.is_none_or(|a| a == alg)
    }
}

#[derive(Clone, Debug, Default)]
pub struct KeySet {
    keys: Vec<Jwk>,
}

impl KeySet {
    pub fn new(keys: Vec<Jwk>) -> Self {
        KeySet { keys }
    }

    pub fn len(&self) -> usize {
        self.keys.len()
    }

    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }

    pub fn keys(&self) -> &[Jwk] {
        &self.keys
    }

    /// Keys that may verify a token with this `alg` and `kid`. A key is passed
    /// over only when both it and the token name a `kid` and the two differ
    /// (as Envoy's `jwt_authn` does): a token's `kid` can also be verified by
    /// keys published without one. Keys with the matching `kid` come first.
    pub fn candidates<'a>(
        &'a self,
        alg: Alg,
        kid: Option<&'a str>,
    ) -> impl Iterator<Item = &'a Jwk> + 'a {
        let fits = move |k: &&Jwk| k.fits(alg);
        let exact = self
            .keys
            .iter()
            .filter(fits)
            .filter(move |k| kid.is_some() && k.kid.as_deref() == kid);
        let rest = self
            .keys
            .iter()
            .filter(fits)
            .filter(move |k| kid.is_none() || k.kid.is_none());
        exact.chain(rest)
    }
}

/// What happened to one JWK of a set.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum JwkIssue {
    /// Not a signature key we can use (encryption key, HMAC, unknown type):
    /// skipped by design, as issuers publish such keys beside signing keys.
    Skipped { index: usize, why: String },
    /// A signing key that is broken or too weak; `field` is the member at fault.
    Invalid {
        index: usize,
        field: &'static str,
        why: String,
    },
}

impl JwkIssue {
    pub fn index(&self) -> usize {
        match self {
            JwkIssue::Skipped { index, .. } | JwkIssue::Invalid { index, .. } => *index,
        }
    }
}

impl std::fmt::Display for JwkIssue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            JwkIssue::Skipped { index, why } => write!(f, "key {index} skipped: {why}"),
            JwkIssue::Invalid { index, field, why } => write!(f, "key {index} `{field}`: {why}"),
        }
    }
}

/// Why a whole document is not a key set.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum JwksError {
    NotJson(String),
    NotAKeySet(&'static str),
    TooManyKeys(usize),
}

impl std::fmt::Display for JwksError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            JwksError::NotJson(e) => write!(f, "not valid JSON: {e}"),
            JwksError::NotAKeySet(why) => f.write_str(why),
            JwksError::TooManyKeys(n) => {
                write!(f, "{n} keys; at most {MAX_KEYS} are accepted in one set")
            }
        }
    }
}

/// Parses a JWK Set from JSON text (a fetched document, or an inline string).
pub fn parse_text(text: &[u8]) -> Result<(KeySet, Vec<JwkIssue>), JwksError> {
    let value = json::from_slice(text).map_err(|e| {
        JwksError::NotJson(match e {
            JsonError::Syntax(m) => m,
            JsonError::Duplicate { ref pointer, .. } => {
                format!("{e} (in the object at \"{pointer}\")")
            }
        })
    })?;
    parse_value(&value)
}

/// Parses a JWK Set. Usable keys are kept; each other key yields an issue. The
/// caller decides whether issues are fatal (inline config) or logged (fetch).
pub fn parse_value(value: &Value) -> Result<(KeySet, Vec<JwkIssue>), JwksError> {
    let obj = value
        .as_object()
        .ok_or(JwksError::NotAKeySet("a JWK Set must be a JSON object"))?;
    let keys = obj
        .get("keys")
        .ok_or(JwksError::NotAKeySet("a JWK Set needs a `keys` member"))?
        .as_array()
        .ok_or(JwksError::NotAKeySet("`keys` must be an array"))?;
    if keys.len() > MAX_KEYS {
        return Err(JwksError::TooManyKeys(keys.len()));
    }
    let mut out = Vec::with_capacity(keys.len());
    let mut issues = Vec::new();
    for (index, key) in keys.iter().enumerate() {
        match parse_jwk(index, key) {
            Ok(jwk) => out.push(jwk),
            Err(issue) => issues.push(issue),
        }
    }
    Ok((KeySet::new(out), issues))
}

/// One public JWK on its own (a DPoP proof's `jwk`), with the same checks as
/// a key in a set; a key that would be skipped in a set is an error here.
pub fn public_key(value: &Value) -> Result<Jwk, String> {
    parse_jwk(0, value).map_err(|issue| match issue {
        JwkIssue::Skipped { why, .. } => format!("the `jwk` cannot be used: {why}"),
        JwkIssue::Invalid { field: "", why, .. } => format!("the `jwk` is invalid: {why}"),
        JwkIssue::Invalid { field, why, .. } => format!("the `jwk`'s `{field}` is invalid: {why}"),
    })
}

fn parse_jwk(index: usize, value: &Value) -> Result<Jwk, JwkIssue> {
    let invalid = |field: &'static str, why: String| JwkIssue::Invalid { index, field, why };
    let skipped = |why: String| JwkIssue::Skipped { index, why };
    let obj = value
        .as_object()
        .ok_or_else(|| invalid("", "a JWK must be a JSON object".into()))?;

    let kty = str_member(obj, "kty", index)?
        .ok_or_else(|| invalid("kty", "missing; expected \"RSA\", \"EC\" or \"OKP\"".into()))?;
    if let Some(u) = str_member(obj, "use", index)? {
        if u != "sig" {
            return Err(skipped(format!("`use` is \"{}\", not \"sig\"", clip(u))));
        }
    }
    if let Some(ops) = obj.get("key_ops") {
        let verifies = ops
            .as_array()
            .is_some_and(|a| a.iter().any(|o| o.as_str() == Some("verify")));
        if !verifies {
            return Err(skipped("`key_ops` does not include \"verify\"".into()));
        }
    }
    let kid = str_member(obj, "kid", index)?.map(str::to_string);
    let alg = match str_member(obj, "alg", index)? {
        None => None,
        Some(name) => match Alg::parse(name) {
            Some(a) => Some(a),
            None => {
                return Err(skipped(format!(
                    "`alg` \"{}\" is not a signature algorithm Scopegate verifies",
                    clip(name)
                )))
            }
        },
    };

    let key = match kty {
        "RSA" => rsa_key(obj, index)?,
        "EC" => ec_key(obj, index)?,
        "OKP" => okp_key(obj, index)?,
        "oct" => {
            return Err(skipped(
                "symmetric (`oct`) keys are never used: HMAC is not accepted".into(),
            ))
        }
        other => return Err(skipped(format!("unknown `kty` \"{}\"", clip(other)))),
    };
    if let Some(a) = alg {
        if a.key_kind() != key.kind() {
            return Err(skipped(format!(
                "`alg` {a} does not fit a key of type {kty}{}",
                crv_suffix(obj)
            )));
        }
    }
    Ok(Jwk { kid, alg, key })
}

fn rsa_key(obj: &Map<String, Value>, index: usize) -> Result<VerifyKey, JwkIssue> {
    let n = b64_member(obj, "n", index)?;
    let e = b64_member(obj, "e", index)?;
    // The RSA module checks size, parity and exponent as it prepares the key;
    // here its verdict only gets the member at fault and the operator's words.
    RsaPublicKey::from_components(&n, &e)
        .map(|k| VerifyKey::Rsa(Box::new(k)))
        .map_err(|err| {
            let (field, why) = match err {
                RsaKeyError::ModulusTooSmall { bits } => {
                    ("n", format!("RSA modulus is {bits} bits; at least {MIN_BITS} are required"))
                }
                RsaKeyError::ModulusTooLarge { bits } => {
                    ("n", format!("RSA modulus is {bits} bits; at most {MAX_BITS} are supported"))
                }
                RsaKeyError::ModulusEven => ("n", "RSA modulus is even".to_string()),
                RsaKeyError::BadExponent => (
                    "e",
                    "RSA public exponent must be odd, at least 3 and at most 32 bits (usually 65537)"
                        .to_string(),
                ),
                RsaKeyError::Malformed => ("n", "malformed RSA modulus".to_string()),
            };
            JwkIssue::Invalid { index, field, why }
        })
}

fn ec_key(obj: &Map<String, Value>, index: usize) -> Result<VerifyKey, JwkIssue> {
    let crv = str_member(obj, "crv", index)?.ok_or_else(|| JwkIssue::Invalid {
        index,
        field: "crv",
        why: "missing; expected \"P-256\" or \"P-384\"".into(),
    })?;
    let (len, p384) = match crv {
        "P-256" => (32, false),
        "P-384" => (48, true),
        other => {
            return Err(JwkIssue::Skipped {
                index,
                why: format!("EC curve \"{}\" is not supported", clip(other)),
            })
        }
    };
    let x = b64_member(obj, "x", index)?;
    let y = b64_member(obj, "y", index)?;
    for (field, v) in [("x", &x), ("y", &y)] {
        if v.len() != len {
            return Err(JwkIssue::Invalid {
                index,
                field,
                why: format!("{crv} coordinate must be {len} bytes, got {}", v.len()),
            });
        }
    }
    let mut point = Vec::with_capacity(1 + 2 * len);
    point.push(4);
    point.extend_from_slice(&x);
    point.extend_from_slice(&y);
    if p384 {
        return Ok(VerifyKey::EcP384(point));
    }
    crate::crypto::p256::PublicKey::from_sec1_uncompressed(&point)
        .map(|k| VerifyKey::EcP256(Box::new(k)))
        .map_err(|e| JwkIssue::Invalid {
            index,
            field: "x",
            why: e.to_string(),
        })
}

fn okp_key(obj: &Map<String, Value>, index: usize) -> Result<VerifyKey, JwkIssue> {
    let crv = str_member(obj, "crv", index)?.unwrap_or("");
    if crv != "Ed25519" {
        return Err(JwkIssue::Skipped {
            index,
            why: format!(
                "OKP curve \"{}\" is not supported (only Ed25519)",
                clip(crv)
            ),
        });
    }
    let x = b64_member(obj, "x", index)?;
    let pk: [u8; 32] = x.as_slice().try_into().map_err(|_| JwkIssue::Invalid {
        index,
        field: "x",
        why: format!("Ed25519 public key must be 32 bytes, got {}", x.len()),
    })?;
    Ok(VerifyKey::Ed25519(pk))
}

fn str_member<'a>(
    obj: &'a Map<String, Value>,
    field: &'static str,
    index: usize,
) -> Result<Option<&'a str>, JwkIssue> {
    match obj.get(field) {
        None => Ok(None),
        Some(Value::String(s)) => Ok(Some(s)),
        Some(_) => Err(JwkIssue::Invalid {
            index,
            field,
            why: "must be a string".into(),
        }),
    }
}

fn b64_member(
    obj: &Map<String, Value>,
    field: &'static str,
    index: usize,
) -> Result<Vec<u8>, JwkIssue> {
    let s = str_member(obj, field, index)?.ok_or_else(|| JwkIssue::Invalid {
        index,
        field,
        why: "missing".into(),
    })?;
    base64url::decode(s.as_bytes()).map_err(|e| JwkIssue::Invalid {
        index,
        field,
        why: format!("not base64url: {e}"),
    })
}

fn crv_suffix(obj: &Map<String, Value>) -> String {
    obj.get("crv")
        .and_then(Value::as_str)
        .map(|c| format!(" ({})", clip(c)))
        .unwrap_or_default()
}

/// Shortens text from a key set for messages.
fn clip(s: &str) -> String {
    crate::vocab::text::clip(s, 40)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn rsa_n(bits: usize) -> String {
        let mut n = vec![0xffu8; bits / 8];
        if let Some(first) = n.first_mut() {
            *first = 0xc1;
        }
        base64url::encode(&n)
    }

    #[test]
    fn keeps_signing_keys_and_skips_the_rest() {
        let doc = json!({"keys": [
            {"kty": "RSA", "kid": "r1", "n": rsa_n(2048), "e": "AQAB"},
            {"kty": "RSA", "use": "enc", "n": rsa_n(2048), "e": "AQAB"},
            {"kty": "oct", "k": "c2VjcmV0"},
            {"kty": "weird"},
            {"kty": "RSA", "alg": "ES256", "n": rsa_n(2048), "e": "AQAB"},
            {"kty": "RSA", "alg": "RSA-OAEP", "n": rsa_n(2048), "e": "AQAB"},
            {"kty": "OKP", "crv": "Ed25519", "kid": "ed", "x": base64url::encode(&[7; 32])},
            {"kty": "EC", "crv": "P-521", "x": "AA", "y": "AA"},
        ]});
        let (set, issues) = parse_value(&doc).expect("a key set");
        assert_eq!(set.len(), 2);
        assert_eq!(issues.len(), 6);
        assert!(issues.iter().all(|i| matches!(i, JwkIssue::Skipped { .. })));
    }

    #[test]
    fn refuses_rsa_keys_under_2048_bits() {
        let doc = json!({"keys": [{"kty": "RSA", "n": rsa_n(1024), "e": "AQAB"}]});
        let (set, issues) = parse_value(&doc).expect("a key set");
        assert!(set.is_empty());
        let msg = issues.first().map(ToString::to_string).unwrap_or_default();
        assert!(
            msg.contains("1024 bits") && msg.contains("at least 2048"),
            "{msg}"
        );
    }

    #[test]
    fn refuses_bad_exponent_and_coordinates() {
        let doc = json!({"keys": [
            {"kty": "RSA", "n": rsa_n(2048), "e": "AQ"},
            {"kty": "EC", "crv": "P-256", "x": base64url::encode(&[1; 31]), "y": base64url::encode(&[1; 32])},
            {"kty": "OKP", "crv": "Ed25519", "x": "AAAA"},
            {"kty": "RSA", "n": 5, "e": "AQAB"},
        ]});
        let (set, issues) = parse_value(&doc).expect("a key set");
        assert!(set.is_empty());
        let fields: Vec<_> = issues
            .iter()
            .map(|i| match i {
                JwkIssue::Invalid { field, .. } => *field,
                JwkIssue::Skipped { .. } => "skipped",
            })
            .collect();
        assert_eq!(fields, ["e", "x", "x", "n"]);
    }

    #[test]
    fn candidates_follow_kid_and_alg() {
        let ed = |kid: &str| Jwk {
            kid: Some(kid.into()),
            alg: None,
            key: VerifyKey::Ed25519([0; 32]),
        };
        let set = KeySet::new(vec![ed("a"), ed("b")]);
        assert_eq!(set.candidates(Alg::EdDSA, Some("b")).count(), 1);
        assert_eq!(set.candidates(Alg::EdDSA, None).count(), 2);
        assert_eq!(set.candidates(Alg::RS256, None).count(), 0);
        assert_eq!(set.candidates(Alg::EdDSA, Some("c")).count(), 0);
        // Keys without a kid may verify a token that names one, after exact matches.
        let mut no_kid = ed("x");
        no_kid.kid = None;
        let set = KeySet::new(vec![no_kid, ed("a")]);
        let order: Vec<_> = set
            .candidates(Alg::EdDSA, Some("a"))
            .map(|k| k.kid.clone())
            .collect();
        assert_eq!(order, [Some("a".to_string()), None]);
        assert_eq!(set.candidates(Alg::EdDSA, Some("zz")).count(), 1);
    }

    #[test]
    fn rejects_documents_that_are_not_key_sets() {
        assert!(matches!(parse_text(b"<html>"), Err(JwksError::NotJson(_))));
        assert!(parse_value(&json!([])).is_err());
        assert!(parse_value(&json!({"keys": {}})).is_err());
        let many: Vec<_> = (0..65).map(|_| json!({"kty": "oct"})).collect();
        assert!(matches!(
            parse_value(&json!({ "keys": many })),
            Err(JwksError::TooManyKeys(65))
        ));
    }
}
