//! DPoP proofs (RFC 9449 §4): the JOSE half of the check. Parses a proof,
//! verifies its signature with the public key it carries, and hands back the
//! claims and the key's RFC 7638 thumbprint. Whether the proof fits the
//! request (method, URL, age, token, replay) is the caller's to judge.

use crate::jose::base64url;
use crate::jose::jwks;
use crate::jose::token;
use crate::vocab::alg::{self, Alg, AlgSet};
use crate::vocab::text::clip;
use serde_json::{Map, Value};
use sha2::{Digest, Sha256};
use std::collections::HashMap;
use std::rc::Rc;

/// Largest proof accepted: a proof carries one public key (an RSA-4096 JWK is
/// under 1 KiB) and a handful of claims.
pub const MAX_PROOF_BYTES: usize = 8 * 1024;

/// JWK members that only a private key has (RFC 7518 §6): a proof carrying
/// one leaks the client's key, and is refused (RFC 9449 §4.2).
const PRIVATE_MEMBERS: [&str; 8] = ["d", "p", "q", "dp", "dq", "qi", "oth", "k"];

/// A proof whose signature verified with the key in its header.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Proof {
    /// RFC 7638 thumbprint (SHA-256, base64url) of the proof's `jwk`.
    pub jkt: String,
    pub jti: String,
    pub htm: String,
    pub htu: String,
    pub iat: u64,
    /// `ath`: base64url(SHA-256(access token)), when present.
    pub ath: Option<String>,
    pub alg: Alg,
}

/// A proof header already checked, and its key made ready to verify with:
/// a client signs every proof with the same key, and preparing a P-256 key
/// costs more than verifying with it.
#[derive(Debug)]
struct ProofKey {
    alg: Alg,
    key: jwks::Jwk,
    jkt: String,
}

/// Per worker: the keys of recent proofs, by their header segment (which
/// holds `typ`, `alg` and `jwk`, so an equal segment is an equal header).
/// Filled only by proofs whose signature verified; bounded, cleared when full.
#[derive(Debug)]
pub struct ProofKeys {
    map: HashMap<Box<str>, Rc<ProofKey>>,
    capacity: usize,
    pub hits: u64,
}

impl ProofKeys {
    pub fn new(capacity: usize) -> ProofKeys {
        ProofKeys {
            map: HashMap::new(),
            capacity,
            hits: 0,
        }
    }

    pub fn len(&self) -> usize {
        self.map.len()
    }

    pub fn is_empty(&self) -> bool {
        self.map.is_empty()
    }
}

/// Parses and verifies a DPoP proof. `algorithms` is what the provider allows
/// for proofs; `none` and HMAC cannot be named, so never pass.
pub fn verify(proof: &str, algorithms: AlgSet) -> Result<Proof, String> {
    verify_with(proof, algorithms, None)
}

/// `verify`, reusing the prepared key of an earlier proof with the same header.
pub fn verify_with(
    proof: &str,
    algorithms: AlgSet,
    mut keys: Option<&mut ProofKeys>,
) -> Result<Proof, String> {
    if proof.len() > MAX_PROOF_BYTES {
        return Err(format!(
            "the DPoP proof is {} bytes; the limit is {MAX_PROOF_BYTES}",
            proof.len()
        ));
    }
    let mut parts = proof.split('.');
    let (Some(h), Some(p), Some(s), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err("the DPoP proof is not a compact JWS (header.payload.signature)".into());
    };
    let cached = keys.as_mut().and_then(|k| {
        let hit = k.map.get(h).cloned();
        if hit.is_some() {
            k.hits += 1;
        }
        hit
    });
    let prepared = match cached {
        Some(p) => {
            // The provider may allow fewer algorithms than the one that
            // verified this header before.
            if !algorithms.contains(p.alg) {
                return Err(format!(
                    "DPoP proof algorithm {} is not allowed (allowed: {})",
                    p.alg,
                    algorithms.names()
                ));
            }
            p
        }
        None => Rc::new(prepare(h, algorithms)?),
    };
    let signature = base64url::decode(s.as_bytes())
        .map_err(|e| format!("the DPoP proof's signature is not base64url: {e}"))?;
    let signing_input = proof
        .get(..h.len() + 1 + p.len())
        .map(str::as_bytes)
        .ok_or("the DPoP proof's segments are inconsistent")?;
    if !prepared
        .key
        .key
        .verify(prepared.alg, signing_input, &signature)
    {
        return Err("the DPoP proof's signature does not verify with its `jwk`".into());
    }
    let claims = token::decode_object(p, "DPoP proof payload").map_err(|d| d.message)?;
    let string = |name: &str| -> Result<String, String> {
        match claims.get(name) {
            Some(Value::String(v)) if !v.is_empty() => Ok(v.clone()),
            Some(_) => Err(format!(
                "the DPoP proof's `{name}` must be a non-empty string"
            )),
            None => Err(format!("the DPoP proof has no `{name}`")),
        }
    };
    let iat = match claims.get("iat") {
        Some(Value::Number(n)) => n
            .as_u64()
            .or_else(|| {
                n.as_f64()
                    .filter(|f| f.is_finite() && *f >= 0.0)
                    .map(|f| f as u64)
            })
            .ok_or("the DPoP proof's `iat` must be a non-negative number")?,
        _ => return Err("the DPoP proof has no numeric `iat`".into()),
    };
    let ath = match claims.get("ath") {
        None => None,
        Some(Value::String(v)) => Some(v.clone()),
        Some(_) => return Err("the DPoP proof's `ath` must be a string".into()),
    };
    let out = Proof {
        jkt: prepared.jkt.clone(),
        jti: string("jti")?,
        htm: string("htm")?,
        htu: string("htu")?,
        iat,
        ath,
        alg: prepared.alg,
    };
    if let Some(k) = keys {
        if !k.map.contains_key(h) && k.capacity > 0 {
            if k.map.len() >= k.capacity {
                k.map.clear();
            }
            k.map.insert(h.into(), prepared);
        }
    }
    Ok(out)
}

/// Checks a proof's header and makes its key ready to verify with.
fn prepare(h: &str, algorithms: AlgSet) -> Result<ProofKey, String> {
    let header = token::decode_object(h, "DPoP proof header").map_err(|d| d.message)?;
    match header.get("typ") {
        Some(Value::String(t)) if t.eq_ignore_ascii_case("dpop+jwt") => {}
        Some(Value::String(t)) => {
            return Err(format!(
                "the DPoP proof's typ is \"{}\", not \"dpop+jwt\"",
                clip(t, 40)
            ))
        }
        _ => return Err("the DPoP proof has no typ \"dpop+jwt\"".into()),
    }
    let alg = match header.get("alg") {
        Some(Value::String(name)) => Alg::parse(name)
            .ok_or_else(|| format!("DPoP proof: {}", alg::refusal(&clip(name, 20))))?,
        _ => return Err("the DPoP proof's header has no string `alg`".into()),
    };
    if !algorithms.contains(alg) {
        return Err(format!(
            "DPoP proof algorithm {alg} is not allowed (allowed: {})",
            algorithms.names()
        ));
    }
    if header.contains_key("crit") {
        return Err(
            "the DPoP proof has `crit` extensions, which Scopegate does not understand".into(),
        );
    }
    let Some(Value::Object(jwk)) = header.get("jwk") else {
        return Err("the DPoP proof's header has no `jwk` object".into());
    };
    if let Some(m) = PRIVATE_MEMBERS.iter().find(|m| jwk.contains_key(**m)) {
        return Err(format!(
            "the DPoP proof's `jwk` holds the private member `{m}`; a proof carries the public key only"
        ));
    }
    let key = jwks::public_key(&Value::Object(jwk.clone()))?;
    if !key.fits(alg) {
        return Err(format!(
            "the DPoP proof's `jwk` does not fit algorithm {alg}"
        ));
    }
    Ok(ProofKey {
        alg,
        key,
        jkt: thumbprint(jwk)?,
    })
}

/// RFC 7638 JWK thumbprint: SHA-256 over the required members in
/// lexicographic order, no whitespace, base64url.
pub fn thumbprint(jwk: &Map<String, Value>) -> Result<String, String> {
    let member = |name: &str| -> Result<&str, String> {
        jwk.get(name)
            .and_then(Value::as_str)
            .ok_or_else(|| format!("the `jwk` has no string `{name}`"))
    };
    let required: &[&str] = match member("kty")? {
        "EC" => &["crv", "kty", "x", "y"],
        "RSA" => &["e", "kty", "n"],
        "OKP" => &["crv", "kty", "x"],
        other => return Err(format!("the `jwk` has kty \"{}\"", clip(other, 20))),
    };
    let mut canonical = String::from("{");
    for (i, name) in required.iter().enumerate() {
        if i > 0 {
            canonical.push(',');
        }
        // Members are base64url or short names: JSON-encoding them is exact.
        canonical.push_str(&Value::String((*name).to_string()).to_string());
        canonical.push(':');
        canonical.push_str(&Value::String(member(name)?.to_string()).to_string());
    }
    canonical.push('}');
    Ok(base64url::encode(&Sha256::digest(canonical.as_bytes())))
}

/// `ath` of an access token: base64url(SHA-256(ASCII of the token)).
pub fn access_token_hash(access_token: &str) -> String {
    base64url::encode(&Sha256::digest(access_token.as_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn thumbprint_matches_rfc7638_example() {
        // RFC 7638 §3.1.
        let jwk = json!({
            "kty": "RSA",
            "n": "0vx7agoebGcQSuuPiLJXZptN9nndrQmbXEps2aiAFbWhM78LhWx4cbbfAAtVT86zwu1RK7aPFFxuhDR1L6tSoc_BJECPebWKRXjBZCiFV4n3oknjhMstn64tZ_2W-5JsGY4Hc5n9yBXArwl93lqt7_RN5w6Cf0h4QyQ5v-65YGjQR0_FDW2QvzqY368QQMicAtaSqzs8KJZgnYb9c7d0zgdAZHzu6qMQvRL5hajrn1n91CbOpbISD08qNLyrdkt-bFTWhAI4vMQFh6WeZu0fM4lFd2NcRwr3XPksINHaQ-G_xBniIqbw0Ls1jF44-csFCur-kEgU8awapJzKnqDKgw",
            "e": "AQAB",
            "alg": "RS256",
            "kid": "2011-04-29"
        });
        let m = jwk.as_object().cloned().unwrap_or_default();
        assert_eq!(
            thumbprint(&m).as_deref(),
            Ok("NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs")
        );
    }

    #[test]
    fn ath_is_sha256_of_the_token_text() {
        // RFC 9449 §7.1 example.
        assert_eq!(
            access_token_hash("Kz~8mXK1EalYznwH-LC-1fBAo.4Ljp~zsPE_NeO.gxU"),
            "fUHyO2r2Z3DZ53EsNrWBb0xWXoaNy59IiKCAqksmQEo"
        );
    }
}
