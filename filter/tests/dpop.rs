//! DPoP-bound and certificate-bound tokens through the decision: what a
//! proof must be, replay across "workers" sharing one store, and the
//! prepared-key reuse that keeps a client's second proof cheap.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod support;

use scopegate::identity::cache::TokenCache;
use scopegate::identity::shared::MemoryStore;
use scopegate::identity::validate::NoRemoteKeys;
use scopegate::jose::dpop;
use scopegate::request::binding::ClientCertificate;
use scopegate::request::decision::{borrow_headers, decide_cached, Decision, Request};
use scopegate::vocab::alg::Alg;
use scopegate::vocab::reason::Reason;
use serde_json::{json, Value};
use support::*;

const URL: &str = "https://api.example.com/payments/7";

fn proof_key_jwk() -> Value {
    keys().p256.public_jwk(None)
}

fn jkt() -> String {
    dpop::thumbprint(proof_key_jwk().as_object().unwrap()).unwrap()
}

fn bound_token() -> String {
    rs256(&with(claims("payments:read"), "cnf", json!({"jkt": jkt()})))
}

fn proof(htm: &str, htu: &str, token: &str, jti: &str, iat: u64) -> String {
    let header = json!({"typ": "dpop+jwt", "alg": "ES256", "jwk": proof_key_jwk()});
    let payload = json!({"jti": jti, "htm": htm, "htu": htu, "iat": iat,
                         "ath": dpop::access_token_hash(token)});
    keys()
        .p256
        .sign_raw(&header.to_string(), &payload.to_string(), Alg::ES256)
        .unwrap()
}

fn send(
    store: &Shared,
    cache: Option<&mut TokenCache>,
    scheme: &str,
    token: &str,
    proofs: &[String],
) -> Decision {
    let mut headers = vec![
        (":scheme".to_string(), "https".to_string()),
        (":authority".to_string(), "api.example.com".to_string()),
        ("authorization".to_string(), format!("{scheme} {token}")),
    ];
    headers.extend(proofs.iter().map(|p| ("dpop".to_string(), p.clone())));
    let pairs = borrow_headers(&headers);
    decide_cached(
        &config(),
        &Request::new("GET", "/payments/7", &pairs),
        store,
        cache,
        NOW,
    )
}

#[test]
fn a_fresh_proof_is_accepted_once_and_refused_when_replayed_on_another_worker() {
    let store = Shared(MemoryStore::new());
    let token = bound_token();
    let p = proof("GET", URL, &token, "j1", NOW);
    let d = send(&store, None, "DPoP", &token, std::slice::from_ref(&p));
    assert_eq!(d.reason, Reason::Allowed, "{}", d.message());
    assert_eq!(d.bound.name(), Some("dpop"));
    // Another worker: its own token cache, the same shared store.
    let mut other = TokenCache::new(16);
    let d = send(&store, Some(&mut other), "DPoP", &token, &[p]);
    assert_eq!(d.reason, Reason::DpopProofReplayed);
}

#[test]
fn every_proof_field_is_held_to_the_request() {
    let store = Shared(MemoryStore::new());
    let token = bound_token();
    let other_token = rs256(&with(
        claims("payments:write"),
        "cnf",
        json!({"jkt": jkt()}),
    ));
    for (proof, reason) in [
        (
            proof("POST", URL, &token, "m", NOW),
            Reason::DpopProofInvalid,
        ),
        (
            proof(
                "GET",
                "https://api.example.com/payments/8",
                &token,
                "u",
                NOW,
            ),
            Reason::DpopProofInvalid,
        ),
        (
            proof("GET", URL, &token, "old", NOW - 200),
            Reason::DpopProofInvalid,
        ),
        (
            proof("GET", URL, &other_token, "ath", NOW),
            Reason::DpopProofInvalid,
        ),
    ] {
        let d = send(&store, None, "DPoP", &token, &[proof]);
        assert_eq!(d.reason, reason, "{}", d.message());
    }
    // The same URL in another spelling is the same URL.
    let same = proof(
        "GET",
        "HTTPS://API.example.com:443/payments/./7?x=1",
        &token,
        "s",
        NOW,
    );
    assert_eq!(
        send(&store, None, "DPoP", &token, &[same]).reason,
        Reason::Allowed
    );
    // Scheme and binding must agree.
    let p = proof("GET", URL, &token, "b", NOW);
    assert_eq!(
        send(&store, None, "Bearer", &token, &[p]).reason,
        Reason::DpopBindingMismatch
    );
    assert_eq!(
        send(&store, None, "DPoP", &token, &[]).reason,
        Reason::DpopProofMissing
    );
    let (p1, p2) = (
        proof("GET", URL, &token, "t1", NOW),
        proof("GET", URL, &token, "t2", NOW),
    );
    assert_eq!(
        send(&store, None, "DPoP", &token, &[p1, p2]).reason,
        Reason::DpopProofInvalid
    );
}

#[test]
fn a_clients_second_proof_reuses_its_prepared_key() {
    let store = Shared(MemoryStore::new());
    let mut cache = TokenCache::new(16);
    let token = bound_token();
    for (i, expect_hits) in [(0, 0), (1, 1), (2, 2)] {
        let p = proof("GET", URL, &token, &format!("k{i}"), NOW);
        let d = send(&store, Some(&mut cache), "DPoP", &token, &[p]);
        assert_eq!(d.reason, Reason::Allowed, "{}", d.message());
        assert_eq!(cache.proof_keys.hits, expect_hits);
    }
    // A reused key still needs a good signature.
    let mut forged = proof("GET", URL, &token, "k9", NOW);
    forged.replace_range(forged.len() - 4.., "AAAA");
    let d = send(&store, Some(&mut cache), "DPoP", &token, &[forged]);
    assert_eq!(d.reason, Reason::DpopProofInvalid);
}

#[test]
fn a_certificate_bound_token_needs_that_certificate() {
    let digest = [7u8; 32];
    let x5t = scopegate::jose::base64url::encode(&digest);
    let token = rs256(&with(
        claims("payments:read"),
        "cnf",
        json!({"x5t#S256": x5t}),
    ));
    let headers = vec![("authorization".to_string(), format!("Bearer {token}"))];
    let pairs = borrow_headers(&headers);
    let decide_with = |cert: ClientCertificate| {
        let read = move || cert.clone();
        let mut req = Request::new("GET", "/payments/7", &pairs);
        req.client_certificate = &read;
        decide_cached(&config(), &req, &NoRemoteKeys, None, NOW).reason
    };
    assert_eq!(
        decide_with(ClientCertificate::Sha256(digest)),
        Reason::Allowed
    );
    assert_eq!(
        decide_with(ClientCertificate::Sha256([8u8; 32])),
        Reason::MtlsBindingMismatch
    );
    assert_eq!(
        decide_with(ClientCertificate::Absent),
        Reason::MtlsCertificateMissing
    );
}
