//! The revocation list: revoked tokens die at once, cached or not, by token
//! id, client or subject, optionally only those issued before a cut-off.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod support;

use scopegate::identity::cache::TokenCache;
use scopegate::identity::validate::NoRemoteKeys;
use scopegate::policy::config::{self, parse_revocation_document};
use scopegate::request::decision::{borrow_headers, decide_cached, Request};
use scopegate::vocab::reason::Reason;
use scopegate::vocab::time::rfc3339;
use serde_json::{json, Value};
use support::*;

fn with_list(list: Value) -> Value {
    let mut doc = base_config();
    doc["revocation"] = json!({"list": {"inline": list}});
    doc
}

fn token(jti: &str, client: &str, sub: &str, iat: u64) -> Vec<(String, String)> {
    let c = with(
        with(
            with(
                with(claims("payments:read"), "jti", json!(jti)),
                "client_id",
                json!(client),
            ),
            "sub",
            json!(sub),
        ),
        "iat",
        json!(iat),
    );
    bearer(&rs256(&c))
}

#[test]
fn a_revoked_token_id_is_refused_and_the_message_names_only_the_kind() {
    let cfg = config_from(&with_list(json!({"tokens": ["leaked-1"]})));
    let d = run(
        &cfg,
        "GET",
        "/payments/1",
        &token("leaked-1", "ci", "svc", NOW - 60),
    );
    assert_eq!(d.reason, Reason::TokenRevoked);
    assert_eq!(d.reason.class().status(), 401);
    assert!(!d.message().contains("leaked-1"), "{}", d.message());
    assert!(d.message().contains("token's id"), "{}", d.message());
    let d = run(
        &cfg,
        "GET",
        "/payments/1",
        &token("other", "ci", "svc", NOW - 60),
    );
    assert_eq!(d.reason, Reason::Allowed);
}

#[test]
fn a_client_cut_off_revokes_what_was_issued_before_it() {
    let cut = rfc3339(NOW - 100);
    let cfg = config_from(&with_list(
        json!({"clients": [{"client_id": "ci-deploy", "provider": "corp", "issued_before": cut}]}),
    ));
    let old = run(
        &cfg,
        "GET",
        "/payments/1",
        &token("a", "ci-deploy", "svc", NOW - 200),
    );
    assert_eq!(old.reason, Reason::TokenRevoked);
    assert!(old.message().contains("client"));
    let new = run(
        &cfg,
        "GET",
        "/payments/1",
        &token("b", "ci-deploy", "svc", NOW - 50),
    );
    assert_eq!(new.reason, Reason::Allowed);
}

#[test]
fn a_subject_without_cut_off_loses_every_token() {
    let cfg = config_from(&with_list(json!({"subjects": [{"sub": "svc-gone"}]})));
    let d = run(
        &cfg,
        "GET",
        "/payments/1",
        &token("a", "x", "svc-gone", NOW - 1),
    );
    assert_eq!(d.reason, Reason::TokenRevoked);
}

#[test]
fn a_cached_verification_does_not_outlive_a_revocation() {
    use scopegate::identity::validate::{Availability, KeyStore, Keys};
    use scopegate::policy::revocation::RevocationList;
    use std::cell::RefCell;
    use std::rc::Rc;
    /// A fetched list that changes under the same configuration and cache.
    struct Fetched(RefCell<Rc<RevocationList>>);
    impl KeyStore for Fetched {
        fn keys(&self, p: usize) -> Keys {
            NoRemoteKeys.keys(p)
        }
        fn revocation(&self) -> Availability<RevocationList> {
            Availability::Ready(Rc::clone(&self.0.borrow()))
        }
    }
    let mut doc = base_config();
    doc["revocation"] = json!({"list": {"uri": "https://idp.example.com/revocations.json"}});
    let cfg = config_from(&doc);
    let store = Fetched(RefCell::new(Rc::new(RevocationList::default())));
    let t = token("cached-1", "ci", "svc", NOW - 60);
    let headers = borrow_headers(&t);
    let req = Request {
        method: "GET",
        path: "/payments/1",
        headers: &headers,
    };
    let mut cache = TokenCache::new(16);
    let d = decide_cached(&cfg, &req, &store, Some(&mut cache), NOW);
    assert_eq!(d.reason, Reason::Allowed);
    *store.0.borrow_mut() =
        Rc::new(parse_revocation_document(br#"{"tokens": ["cached-1"]}"#, &["corp"]).unwrap());
    let d = decide_cached(&cfg, &req, &store, Some(&mut cache), NOW);
    assert_eq!(d.reason, Reason::TokenRevoked);
    assert_eq!(cache.hits, 1, "the verification came from the cache");
}

#[test]
fn list_faults_are_configuration_errors_with_their_paths() {
    let doc = with_list(json!({
        "tokens": ["ok", ""],
        "clients": [{"provider": "corp"}, {"client_id": "c", "provider": "nobody"}],
        "subjects": [{"sub": "s", "issued_before": "2026-13-01T00:00:00Z"}],
        "extra": []
    }));
    let e: Vec<String> = config::parse_value(&doc)
        .err()
        .unwrap()
        .iter()
        .map(ToString::to_string)
        .collect();
    for expected in [
        "/revocation/list/inline/tokens/1: expected a non-empty token id",
        "/revocation/list/inline/clients/0: `client_id` is required",
        "/revocation/list/inline/clients/1/provider: no provider is named \"nobody\"",
        "/revocation/list/inline/subjects/0/issued_before: expected an RFC 3339 instant",
        "/revocation/list/inline/extra: unknown field",
    ] {
        assert!(
            e.iter().any(|l| l.starts_with(expected)),
            "missing {expected:?} in {e:#?}"
        );
    }
}

#[test]
fn a_million_revoked_ids_fit_in_16_mib_and_are_found() {
    let ids: Vec<String> = (0..1_000_000).map(|i| format!("jti-{i:07}")).collect();
    let text = serde_json::to_vec(&json!({ "tokens": ids })).unwrap();
    let list = parse_revocation_document(&text, &["corp"]).unwrap();
    assert_eq!(list.counts().0, 1_000_000);
    assert!(
        list.token_bytes() <= 16 * 1024 * 1024,
        "{} bytes",
        list.token_bytes()
    );
    println!("1M revoked jtis: {} bytes of digests", list.token_bytes());
}
