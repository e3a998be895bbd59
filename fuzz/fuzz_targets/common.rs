//! A fixed configuration with real keys, shared by the targets that decide.

use scopegate::policy::config::{self, Config};
use scopegate::jose::mint::SigningKey;
use serde_json::json;

thread_local! {
    // The configuration holds `Rc`s: one per (fuzzing) thread, built once.
    static CFG: &'static Config = Box::leak(Box::new(build()));
}

pub fn config() -> &'static Config {
    CFG.with(|c| *c)
}

fn build() -> Config {
    {
        let key = |pem: &[u8], kid: &str| match SigningKey::from_pkcs8(pem) {
            Ok(k) => k.public_jwk(Some(kid)),
            Err(e) => panic!("fixture key: {e}"),
        };
        let doc = json!({
            "providers": [{
                "name": "corp",
                "issuer": "https://idp.example.com",
                "audiences": ["payments-api"],
                "jwks": {"inline": {"keys": [
                    key(include_bytes!("../../filter/testdata/rsa-a.pk8.pem"), "rsa1"),
                    key(include_bytes!("../../filter/testdata/ec-p256.pk8.pem"), "ec1"),
                    key(include_bytes!("../../filter/testdata/ec-p384.pk8.pem"), "ec2"),
                    key(include_bytes!("../../filter/testdata/ed25519.pk8.pem"), "ed1"),
                ]}},
                "max_lifetime_s": 3600
            }],
            "token_sources": [{"header": "authorization", "prefix": "Bearer "}, {"query": "access_token"}],
            "rules": [
                {"name": "health", "methods": ["GET"], "path": "/healthz", "public": true},
                {"name": "read", "methods": ["GET"], "path": "/payments/**", "scopes": ["payments:read"]},
                {"name": "refund", "methods": ["POST"], "path": "/payments/{id}/refunds", "scopes": ["payments:write"]},
                {"name": "admin", "path": "/admin/**", "any_scopes": ["admin"], "clients": ["ops-bot"]}
            ],
            "identity_headers": {"subject": "x-sub", "scopes": "x-scopes", "claims": {"tenant": "x-tenant"}}
        });
        match config::parse_value(&doc) {
            Ok(c) => c,
            Err(e) => panic!("fixture config: {e:?}"),
        }
    }
}
