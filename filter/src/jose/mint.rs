//! Token minting for tests, demos and `scopegate token`. The filter never signs.

use crate::jose::base64url;
use crate::vocab::alg::Alg;
use ring::rand::SystemRandom;
use ring::signature::{self, EcdsaKeyPair, Ed25519KeyPair, KeyPair, RsaKeyPair};
use serde_json::{json, Map, Value};

pub enum SigningKey {
    Rsa(RsaKeyPair),
    Ec(EcdsaKeyPair, Alg),
    Ed25519(Ed25519KeyPair),
}

impl std::fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            SigningKey::Rsa(_) => "SigningKey::Rsa",
            SigningKey::Ec(_, _) => "SigningKey::Ec",
            SigningKey::Ed25519(_) => "SigningKey::Ed25519",
        })
    }
}

impl SigningKey {
    /// Reads a PKCS#8 private key, PEM (`BEGIN PRIVATE KEY`) or DER.
    pub fn from_pkcs8(data: &[u8]) -> Result<Self, String> {
        let der = if data.starts_with(b"-----BEGIN") {
            pem_body(data)?
        } else {
            data.to_vec()
        };
        if let Ok(k) = RsaKeyPair::from_pkcs8(&der) {
            return Ok(SigningKey::Rsa(k));
        }
        let rng = SystemRandom::new();
        if let Ok(k) =
            EcdsaKeyPair::from_pkcs8(&signature::ECDSA_P256_SHA256_FIXED_SIGNING, &der, &rng)
        {
            return Ok(SigningKey::Ec(k, Alg::ES256));
        }
        if let Ok(k) =
            EcdsaKeyPair::from_pkcs8(&signature::ECDSA_P384_SHA384_FIXED_SIGNING, &der, &rng)
        {
            return Ok(SigningKey::Ec(k, Alg::ES384));
        }
        if let Ok(k) = Ed25519KeyPair::from_pkcs8_maybe_unchecked(&der) {
            return Ok(SigningKey::Ed25519(k));
        }
        Err(
            "not a PKCS#8 RSA (2048+ bits), P-256, P-384 or Ed25519 private key \
             (convert with `openssl pkcs8 -topk8 -nocrypt`)"
                .to_string(),
        )
    }

    /// The algorithm used when none is asked for.
    pub fn default_alg(&self) -> Alg {
        match self {
            SigningKey::Rsa(_) => Alg::RS256,
            SigningKey::Ec(_, a) => *a,
            SigningKey::Ed25519(_) => Alg::EdDSA,
        }
    }

    /// The public JWK of this key.
    pub fn public_jwk(&self, kid: Option<&str>) -> Value {
        let mut jwk = match self {
            SigningKey::Rsa(k) => {
                let c: ring::rsa::PublicKeyComponents<Vec<u8>> = k.public().into();
                json!({"kty": "RSA", "n": base64url::encode(&c.n), "e": base64url::encode(&c.e)})
            }
            SigningKey::Ec(k, alg) => {
                let point = k.public_key().as_ref();
                let len = (point.len().saturating_sub(1)) / 2;
                let x = point.get(1..1 + len).unwrap_or_default();
                let y = point.get(1 + len..).unwrap_or_default();
                json!({
                    "kty": "EC",
                    "crv": if *alg == Alg::ES384 { "P-384" } else { "P-256" },
                    "x": base64url::encode(x),
                    "y": base64url::encode(y),
                })
            }
            SigningKey::Ed25519(k) => json!({
                "kty": "OKP",
                "crv": "Ed25519",
                "x": base64url::encode(k.public_key().as_ref()),
            }),
        };
        if let (Some(kid), Some(obj)) = (kid, jwk.as_object_mut()) {
            obj.insert("kid".into(), json!(kid));
        }
        jwk
    }

    /// Signs `header.claims` as a compact JWS; `alg` and `kid` are added to the header.
    pub fn sign(
        &self,
        alg: Alg,
        kid: Option<&str>,
        claims: &Map<String, Value>,
    ) -> Result<String, String> {
        let mut header = Map::new();
        header.insert("alg".into(), json!(alg.as_str()));
        header.insert("typ".into(), json!("JWT"));
        if let Some(kid) = kid {
            header.insert("kid".into(), json!(kid));
        }
        self.sign_raw(
            &Value::Object(header).to_string(),
            &Value::Object(claims.clone()).to_string(),
            alg,
        )
    }

    /// Signs arbitrary header and payload text (for tests that forge tokens).
    pub fn sign_raw(&self, header: &str, payload: &str, alg: Alg) -> Result<String, String> {
        let input = format!(
            "{}.{}",
            base64url::encode(header.as_bytes()),
            base64url::encode(payload.as_bytes())
        );
        let rng = SystemRandom::new();
        let sig = match self {
            SigningKey::Rsa(k) => {
                let enc: &dyn signature::RsaEncoding = match alg {
                    Alg::RS256 => &signature::RSA_PKCS1_SHA256,
                    Alg::RS384 => &signature::RSA_PKCS1_SHA384,
                    Alg::RS512 => &signature::RSA_PKCS1_SHA512,
                    Alg::PS256 => &signature::RSA_PSS_SHA256,
                    Alg::PS384 => &signature::RSA_PSS_SHA384,
                    Alg::PS512 => &signature::RSA_PSS_SHA512,
                    other => return Err(format!("an RSA key cannot sign {other}")),
                };
                let mut sig = vec![0; k.public().modulus_len()];
                k.sign(enc, &rng, input.as_bytes(), &mut sig)
                    .map_err(|_| "RSA signing failed".to_string())?;
                sig
            }
            SigningKey::Ec(k, key_alg) => {
                if alg != *key_alg {
                    return Err(format!("this EC key signs {key_alg}, not {alg}"));
                }
                k.sign(&rng, input.as_bytes())
                    .map_err(|_| "ECDSA signing failed".to_string())?
                    .as_ref()
                    .to_vec()
            }
            SigningKey::Ed25519(k) => {
                if alg != Alg::EdDSA {
                    return Err(format!("an Ed25519 key signs EdDSA, not {alg}"));
                }
                k.sign(input.as_bytes()).as_ref().to_vec()
            }
        };
        Ok(format!("{input}.{}", base64url::encode(&sig)))
    }
}

fn pem_body(data: &[u8]) -> Result<Vec<u8>, String> {
    let text = std::str::from_utf8(data).map_err(|_| "PEM file is not text".to_string())?;
    if text.contains("BEGIN RSA PRIVATE KEY") || text.contains("BEGIN EC PRIVATE KEY") {
        return Err("this is a PKCS#1/SEC1 key; convert it to PKCS#8 with \
                    `openssl pkcs8 -topk8 -nocrypt -in KEY -out KEY.pk8.pem`"
            .to_string());
    }
    let b64: String = text
        .lines()
        .skip_while(|l| !l.starts_with("-----BEGIN"))
        .skip(1)
        .take_while(|l| !l.starts_with("-----END"))
        .collect::<String>()
        .replace('+', "-")
        .replace('/', "_")
        .trim_end_matches('=')
        .to_string();
    base64url::decode(b64.as_bytes()).map_err(|e| format!("PEM body is not base64: {e}"))
}

/// Generates a fresh P-256 or Ed25519 PKCS#8 key (tests and demos).
pub fn generate_pkcs8(alg: Alg) -> Result<Vec<u8>, String> {
    let rng = SystemRandom::new();
    let doc = match alg {
        Alg::ES256 => {
            EcdsaKeyPair::generate_pkcs8(&signature::ECDSA_P256_SHA256_FIXED_SIGNING, &rng)
        }
        Alg::ES384 => {
            EcdsaKeyPair::generate_pkcs8(&signature::ECDSA_P384_SHA384_FIXED_SIGNING, &rng)
        }
        Alg::EdDSA => Ed25519KeyPair::generate_pkcs8(&rng),
        other => {
            return Err(format!(
                "cannot generate a key for {other}; use openssl for RSA"
            ))
        }
    }
    .map_err(|_| "key generation failed".to_string())?;
    Ok(doc.as_ref().to_vec())
}
