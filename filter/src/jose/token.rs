//! Compact JWS (RFC 7515 §7.1) parsing, before any key is involved: shape,
//! encoding, header and claims. Everything here is cheap and runs before the
//! signature check, so malformed tokens cost microseconds.

use crate::jose::base64url;
use crate::vocab::alg::{self, Alg};
use crate::vocab::reason::{Denial, Reason};
use crate::vocab::text::clip;
use serde::de::{Deserialize, Deserializer, MapAccess, Visitor};
use serde_json::{Map, Value};
use std::fmt;

/// A token whose encoding and structure are valid; not yet verified.
#[derive(Debug)]
pub struct Parsed<'t> {
    pub alg: Alg,
    pub kid: Option<String>,
    pub claims: Claims,
    /// `header.payload`, the bytes the signature covers.
    pub signing_input: &'t [u8],
    pub signature: Vec<u8>,
}

/// The registered claims Scopegate checks, read once, plus the whole claim set
/// for the configured scope, client-id and identity claims.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Claims {
    pub iss: Option<String>,
    pub sub: Option<String>,
    pub aud: Vec<String>,
    pub exp: Option<u64>,
    pub nbf: Option<u64>,
    pub iat: Option<u64>,
    pub jti: Option<String>,
    pub all: Map<String, Value>,
}

fn malformed(message: impl Into<String>) -> Denial {
    Denial::new(Reason::TokenMalformed, message)
}

/// Parses and checks the structure of a compact JWS.
pub fn parse(token: &str, max_bytes: usize) -> Result<Parsed<'_>, Denial> {
    if token.len() > max_bytes {
        return Err(malformed(format!(
            "token is {} bytes; the limit is {max_bytes}",
            token.len()
        )));
    }
    let mut parts = token.split('.');
    let (Some(h), Some(p), Some(s), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        let n = token.split('.').count();
        return Err(malformed(if n == 5 {
            "token has 5 segments: encrypted tokens (JWE) are not accepted".to_string()
        } else {
            format!(
                "token has {n} segment(s); a signed JWT has exactly 3 (header.payload.signature)"
            )
        }));
    };

    let header = decode_object(h, "header")?;
    let alg = match header.get("alg") {
        Some(Value::String(name)) => Alg::parse(name).ok_or_else(|| {
            Denial::new(Reason::UnsupportedAlgorithm, alg::refusal(&clip(name, 20)))
        })?,
        Some(_) => return Err(malformed("header `alg` must be a string")),
        None => return Err(malformed("header has no `alg`")),
    };
    // RFC 7515 §4.1.11: a recipient must refuse extensions it does not understand.
    if header.contains_key("crit") {
        return Err(malformed(
            "header has `crit` extensions, which Scopegate does not understand",
        ));
    }
    let kid = match header.get("kid") {
        None => None,
        Some(Value::String(k)) => Some(k.clone()),
        Some(_) => return Err(malformed("header `kid` must be a string")),
    };

    let claims = read_claims(decode_object(p, "payload")?)?;
    let signature = base64url::decode(s.as_bytes())
        .map_err(|e| malformed(format!("signature is not base64url: {e}")))?;
    let signing_input = token
        .get(..h.len() + 1 + p.len())
        .map(str::as_bytes)
        .ok_or_else(|| malformed("token segments are inconsistent"))?;
    Ok(Parsed {
        alg,
        kid,
        claims,
        signing_input,
        signature,
    })
}

/// A base64url segment holding a JSON object with unique member names.
pub fn decode_object(segment: &str, what: &str) -> Result<Map<String, Value>, Denial> {
    let bytes = base64url::decode(segment.as_bytes())
        .map_err(|e| malformed(format!("{what} is not base64url: {e}")))?;
    serde_json::from_slice::<StrictObject>(&bytes)
        .map(|o| o.0)
        .map_err(|e| {
            malformed(format!(
                "{what} is not a JSON object: {}",
                clip(&e.to_string(), 120)
            ))
        })
}

fn read_claims(all: Map<String, Value>) -> Result<Claims, Denial> {
    let string = |name: &str| -> Result<Option<String>, Denial> {
        match all.get(name) {
            None => Ok(None),
            Some(Value::String(s)) => Ok(Some(s.clone())),
            Some(_) => Err(malformed(format!("claim `{name}` must be a string"))),
        }
    };
    let aud = match all.get("aud") {
        None => Vec::new(),
        Some(Value::String(s)) => vec![s.clone()],
        Some(Value::Array(items)) => items
            .iter()
            .map(|v| v.as_str().map(str::to_string))
            .collect::<Option<Vec<_>>>()
            .ok_or_else(|| malformed("claim `aud` must be a string or an array of strings"))?,
        Some(_) => {
            return Err(malformed(
                "claim `aud` must be a string or an array of strings",
            ))
        }
    };
    Ok(Claims {
        iss: string("iss")?,
        sub: string("sub")?,
        jti: string("jti")?,
        aud,
        exp: numeric_date(&all, "exp")?,
        nbf: numeric_date(&all, "nbf")?,
        iat: numeric_date(&all, "iat")?,
        all,
    })
}

/// Largest time accepted: beyond it a float cannot hold whole seconds exactly.
const MAX_NUMERIC_DATE: f64 = 9_007_199_254_740_991.0;

/// RFC 7519 NumericDate: non-negative seconds; a fraction is truncated.
fn numeric_date(all: &Map<String, Value>, name: &str) -> Result<Option<u64>, Denial> {
    let Some(v) = all.get(name) else {
        return Ok(None);
    };
    let bad = || {
        malformed(format!(
            "claim `{name}` must be a non-negative number of seconds"
        ))
    };
    let Value::Number(n) = v else {
        return Err(bad());
    };
    if let Some(u) = n.as_u64() {
        return Ok(Some(u));
    }
    match n.as_f64() {
        Some(f) if f.is_finite() && (0.0..=MAX_NUMERIC_DATE).contains(&f) => Ok(Some(f as u64)),
        _ => Err(bad()),
    }
}

/// A JSON object whose top-level member names are unique. Duplicate claims
/// are refused: readers that keep the first and readers that keep the last
/// would otherwise see different tokens.
struct StrictObject(Map<String, Value>);

impl<'de> Deserialize<'de> for StrictObject {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = StrictObject;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a JSON object")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut m: A) -> Result<StrictObject, A::Error> {
                let mut out = Map::new();
                while let Some(key) = m.next_key::<String>()? {
                    let value: Value = m.next_value()?;
                    if out.contains_key(&key) {
                        return Err(serde::de::Error::custom(format!(
                            "duplicate member `{}`",
                            clip(&key, 40)
                        )));
                    }
                    out.insert(key, value);
                }
                Ok(StrictObject(out))
            }
        }
        d.deserialize_map(V)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn seg(v: &Value) -> String {
        base64url::encode(v.to_string().as_bytes())
    }

    fn token(header: &Value, claims: &Value) -> String {
        format!(
            "{}.{}.{}",
            seg(header),
            seg(claims),
            base64url::encode(b"sig")
        )
    }

    fn reason(t: &str) -> Reason {
        match parse(t, 8192) {
            Ok(_) => Reason::Allowed,
            Err(d) => d.reason,
        }
    }

    #[test]
    fn parses_a_well_formed_token() {
        let t = token(
            &json!({"alg": "RS256", "kid": "k1", "typ": "JWT"}),
            &json!({"iss": "i", "sub": "s", "aud": ["a", "b"], "exp": 20, "nbf": 1.9, "iat": 1}),
        );
        let p = parse(&t, 8192).expect("parses");
        assert_eq!(p.alg, Alg::RS256);
        assert_eq!(p.kid.as_deref(), Some("k1"));
        assert_eq!(p.claims.aud, ["a", "b"]);
        assert_eq!(
            (p.claims.exp, p.claims.nbf, p.claims.iat),
            (Some(20), Some(1), Some(1))
        );
        assert_eq!(p.signature, b"sig");
        assert_eq!(
            p.signing_input,
            t.rsplit_once('.')
                .map(|x| x.0.as_bytes())
                .unwrap_or_default()
        );
    }

    #[test]
    fn shape_errors_are_token_malformed() {
        let good = token(&json!({"alg": "RS256"}), &json!({}));
        let cases = [
            ("two segments", "a.b".to_string()),
            ("four segments", format!("{good}.x")),
            ("jwe", "a.b.c.d.e".to_string()),
            ("padding", good.replacen('.', "=.", 1)),
            ("whitespace", format!(" {good}")),
            ("standard alphabet", good.replace(".c2ln", ".+2ln")),
            (
                "header not json",
                format!("{}.{}.c2ln", base64url::encode(b"nope"), seg(&json!({}))),
            ),
            ("header array", token(&json!(["alg"]), &json!({}))),
            (
                "payload array",
                token(&json!({"alg": "RS256"}), &json!([1])),
            ),
            (
                "payload string",
                token(&json!({"alg": "RS256"}), &json!("x")),
            ),
            ("alg number", token(&json!({"alg": 256}), &json!({}))),
            ("alg missing", token(&json!({"typ": "JWT"}), &json!({}))),
            (
                "kid number",
                token(&json!({"alg": "RS256", "kid": 1}), &json!({})),
            ),
            (
                "crit",
                token(&json!({"alg": "RS256", "crit": ["exp"]}), &json!({})),
            ),
            (
                "exp string",
                token(&json!({"alg": "RS256"}), &json!({"exp": "20"})),
            ),
            (
                "exp negative",
                token(&json!({"alg": "RS256"}), &json!({"exp": -1})),
            ),
            (
                "exp huge float",
                token(&json!({"alg": "RS256"}), &json!({"exp": 1e300})),
            ),
            (
                "aud object",
                token(&json!({"alg": "RS256"}), &json!({"aud": {"a": 1}})),
            ),
            (
                "aud mixed array",
                token(&json!({"alg": "RS256"}), &json!({"aud": ["a", 1]})),
            ),
            (
                "iss number",
                token(&json!({"alg": "RS256"}), &json!({"iss": 1})),
            ),
        ];
        for (name, t) in cases {
            assert_eq!(reason(&t), Reason::TokenMalformed, "{name}: {t}");
        }
    }

    #[test]
    fn refuses_duplicate_members() {
        let h = base64url::encode(br#"{"alg":"RS256"}"#);
        let p = base64url::encode(br#"{"scope":"a","scope":"admin"}"#);
        let err = parse(&format!("{h}.{p}.c2ln"), 8192).expect_err("duplicate");
        assert_eq!(err.reason, Reason::TokenMalformed);
        assert!(
            err.message.contains("duplicate member `scope`"),
            "{}",
            err.message
        );
        let h2 = base64url::encode(br#"{"alg":"none","alg":"RS256"}"#);
        assert_eq!(reason(&format!("{h2}.{p}.c2ln")), Reason::TokenMalformed);
    }

    #[test]
    fn refuses_none_and_hmac_as_unsupported() {
        for alg in [
            "none", "None", "NONE", "nOnE", "HS256", "HS512", "ES512", "RSA-OAEP",
        ] {
            let t = token(&json!({"alg": alg}), &json!({}));
            assert_eq!(reason(&t), Reason::UnsupportedAlgorithm, "{alg}");
        }
    }

    #[test]
    fn enforces_the_size_limit() {
        let t = token(&json!({"alg": "RS256"}), &json!({"pad": "x".repeat(9000)}));
        let err = parse(&t, 8192).expect_err("too big");
        assert!(err.message.contains("limit is 8192"));
    }

    #[test]
    fn deep_nesting_is_refused_not_a_crash() {
        let deep = format!("{}{}", "[".repeat(5000), "]".repeat(5000));
        let p = base64url::encode(format!("{{\"x\":{deep}}}").as_bytes());
        let h = base64url::encode(br#"{"alg":"RS256"}"#);
        let err = parse(&format!("{h}.{p}.c2ln"), 1 << 20).expect_err("too deep");
        assert_eq!(err.reason, Reason::TokenMalformed);
        assert!(err.message.contains("recursion"), "{}", err.message);
    }
}
