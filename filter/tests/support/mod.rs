//! Shared fixtures for the core's tests: keys, a configuration like the
//! contract's example, and token minting.
#![allow(
    dead_code,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

pub mod host;

use scopegate::identity::shared::{MemoryStore, SharedStore};
use scopegate::identity::validate::{self, KeyStore, NoRemoteKeys};
use scopegate::jose::mint::SigningKey;
use scopegate::policy::config::{self, Config};
use scopegate::request::decision::{decide, Decision, Request};
use scopegate::vocab::alg::Alg;
use serde_json::{json, Map, Value};
use std::sync::OnceLock;

/// The clock of every test: 2027-01-15T08:00:00Z.
pub const NOW: u64 = 1_800_000_000;
pub const ISSUER: &str = "https://idp.example.com";
pub const PARTNER: &str = "https://partner.example.org";

pub struct Keys {
    pub rsa: SigningKey,
    pub partner: SigningKey,
    pub p256: SigningKey,
    pub p384: SigningKey,
    pub ed: SigningKey,
}

pub fn keys() -> &'static Keys {
    static KEYS: OnceLock<Keys> = OnceLock::new();
    KEYS.get_or_init(|| Keys {
        rsa: SigningKey::from_pkcs8(include_bytes!("../../testdata/rsa-a.pk8.pem")).unwrap(),
        partner: SigningKey::from_pkcs8(include_bytes!("../../testdata/rsa-b.pk8.pem")).unwrap(),
        p256: SigningKey::from_pkcs8(include_bytes!("../../testdata/ec-p256.pk8.pem")).unwrap(),
        p384: SigningKey::from_pkcs8(include_bytes!("../../testdata/ec-p384.pk8.pem")).unwrap(),
        ed: SigningKey::from_pkcs8(include_bytes!("../../testdata/ed25519.pk8.pem")).unwrap(),
    })
}

pub fn base_config() -> Value {
    let k = keys();
    json!({
        "providers": [
            {
                "name": "corp",
                "issuer": ISSUER,
                "audiences": ["payments-api"],
                "jwks": {"inline": {"keys": [
                    k.rsa.public_jwk(Some("rsa1")),
                    k.p256.public_jwk(Some("ec1")),
                    k.p384.public_jwk(Some("ec2")),
                    k.ed.public_jwk(Some("ed1")),
                ]}},
                "clock_skew_s": 60,
                "max_lifetime_s": 3600
            },
            {
                "name": "partner",
                "issuer": PARTNER,
                "jwks": {"inline": {"keys": [k.partner.public_jwk(Some("p1"))]}},
                "algorithms": ["RS256"]
            }
        ],
        "rules": [
            {"name": "health", "methods": ["GET"], "path": "/healthz", "public": true},
            {"name": "read", "methods": ["GET", "HEAD"], "path": "/payments/**", "scopes": ["payments:read"]},
            {"name": "refund", "methods": ["POST"], "path": "/payments/{id}/refunds", "scopes": ["payments:write", "refunds:create"]},
            {"name": "admin", "path": "/admin/**", "any_scopes": ["admin"], "clients": ["ops-bot"], "providers": ["corp"]},
            {"name": "partner-feed", "methods": ["GET"], "path": "/feed/*", "providers": ["partner"]}
        ],
        "default_action": "deny",
        "identity_headers": {
            "subject": "x-identity-subject",
            "client_id": "x-identity-client-id",
            "issuer": "x-identity-issuer",
            "scopes": "x-identity-scopes",
            "claims": {"tenant": "x-identity-tenant"}
        }
    })
}

pub fn config_from(v: &Value) -> Config {
    match config::parse_value(v) {
        Ok(c) => c,
        Err(e) => panic!("config invalid: {e:?}"),
    }
}

pub fn config() -> Config {
    config_from(&base_config())
}

/// Claims of a valid corp token with the given scope string.
pub fn claims(scope: &str) -> Map<String, Value> {
    let v = json!({
        "iss": ISSUER,
        "sub": "svc-billing",
        "aud": "payments-api",
        "client_id": "billing-batch",
        "scope": scope,
        "iat": NOW - 60,
        "exp": NOW + 600,
        "jti": "j-1",
        "tenant": "t-42"
    });
    v.as_object().cloned().unwrap()
}

pub fn with(mut c: Map<String, Value>, key: &str, value: Value) -> Map<String, Value> {
    if value.is_null() {
        c.remove(key);
    } else {
        c.insert(key.into(), value);
    }
    c
}

pub fn rs256(c: &Map<String, Value>) -> String {
    keys().rsa.sign(Alg::RS256, Some("rsa1"), c).unwrap()
}

pub fn bearer(token: &str) -> Vec<(String, String)> {
    vec![("authorization".into(), format!("Bearer {token}"))]
}

pub fn run(cfg: &Config, method: &str, path: &str, headers: &[(String, String)]) -> Decision {
    decide(
        cfg,
        &Request::new(
            method,
            path,
            &scopegate::request::decision::borrow_headers(headers),
        ),
        &NoRemoteKeys,
        NOW,
    )
}

/// A key store with the store a gateway's workers share (DPoP replays, rate
/// limits): what every worker of one gateway sees.
pub struct Shared(pub MemoryStore);

impl KeyStore for Shared {
    fn keys(&self, provider: usize) -> validate::Keys {
        NoRemoteKeys.keys(provider)
    }
    fn shared(&self) -> Option<&dyn SharedStore> {
        Some(&self.0)
    }
}
