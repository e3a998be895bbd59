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
    let req = Request::new("GET", "/payments/1", &headers);
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

// ---- Token Status List ---------------------------------------------------

const LISTS: &str = "https://idp.example.com/statuslists/";

fn status_config(on_unavailable: &str) -> scopegate::policy::config::Config {
    let mut doc = base_config();
    doc["revocation"] = json!({"status_list": {"uri_prefixes": [LISTS], "cluster": "idp",
        "max_cache_s": 300, "on_unavailable": on_unavailable}});
    config_from(&doc)
}

fn status_token(idx: u64, uri: &str) -> Vec<(String, String)> {
    let c = with(
        claims("payments:read"),
        "status",
        json!({"status_list": {"idx": idx, "uri": uri}}),
    );
    bearer(&rs256(&c))
}

/// A signed status list: index 3 INVALID, 7 SUSPENDED, 9 application-specific.
fn list_token(uri: &str) -> Vec<u8> {
    use scopegate::jose::statuslist::{encode_lst, TYP};
    use scopegate::vocab::alg::Alg;
    let mut statuses = vec![0u8; 16];
    statuses[3] = 1;
    statuses[7] = 2;
    statuses[9] = 3;
    let claims = json!({"iss": ISSUER, "sub": uri, "iat": NOW - 10, "exp": NOW + 3600, "ttl": 60,
        "status_list": {"bits": 2, "lst": encode_lst(2, &statuses).unwrap()}});
    let header = json!({"alg": "RS256", "kid": "rsa1", "typ": TYP});
    keys()
        .rsa
        .sign_raw(&header.to_string(), &claims.to_string(), Alg::RS256)
        .unwrap()
        .into_bytes()
}

/// A fetcher for `cfg` that has fetched the status list at `uri` once.
fn with_status_list(
    cfg: &scopegate::policy::config::Config,
    uri: &str,
    body: &[u8],
) -> scopegate::remote::keyfetch::Fetcher {
    use scopegate::identity::validate::{Availability, KeyStore};
    use scopegate::remote::keyfetch::{Fetcher, LocalStore, Response};
    let mut f = Fetcher::new(cfg, 1);
    let mut store = LocalStore::default();
    assert!(
        matches!(f.status_list(uri, 0, NOW), Availability::Pending),
        "first ask starts a fetch"
    );
    let (reqs, _) = f.tick(NOW * 1000, &mut store);
    assert_eq!(reqs.len(), 1);
    assert_eq!(reqs[0].cluster, "idp");
    f.started(reqs[0].slot, 7, NOW * 1000);
    f.completed(
        7,
        NOW * 1000,
        Response {
            status: Some(200),
            cache_control: None,
            etag: None,
            body,
        },
        &mut store,
    );
    f
}

#[test]
fn the_status_list_decides_valid_revoked_suspended_and_out_of_range() {
    let cfg = status_config("deny");
    let uri = format!("{LISTS}1");
    let f = with_status_list(&cfg, &uri, &list_token(&uri));
    let decide_idx = |idx: u64| {
        let t = status_token(idx, &uri);
        let headers = borrow_headers(&t);
        let req = Request::new("GET", "/payments/1", &headers);
        decide_cached(&cfg, &req, &f, None, NOW)
    };
    assert_eq!(decide_idx(0).reason, Reason::Allowed);
    assert_eq!(decide_idx(3).reason, Reason::TokenRevoked);
    assert_eq!(decide_idx(7).reason, Reason::TokenSuspended);
    assert_eq!(
        decide_idx(9).reason,
        Reason::TokenRevoked,
        "application-specific: not accepted"
    );
    let out = decide_idx(1_000_000);
    assert_eq!(out.reason, Reason::TokenRevoked);
    assert!(out.message().contains("has no index"), "{}", out.message());
}

#[test]
fn a_status_list_outside_the_prefixes_is_never_fetched() {
    let cfg = status_config("deny");
    for uri in [
        "https://evil.example/list".to_string(),
        // Inside the prefix as text, outside it once a server resolves it.
        format!("{LISTS}../admin/x"),
        format!("{LISTS}%2e%2e/admin"),
        format!("{LISTS}1#frag"),
        format!("{LISTS}a\\..\\b"),
    ] {
        let d = run(&cfg, "GET", "/payments/1", &status_token(0, &uri));
        assert_eq!(d.reason, Reason::StatusUnverifiable, "{uri}");
    }
}

#[test]
fn a_list_with_the_wrong_subject_or_signature_is_refused_and_the_token_with_it() {
    use scopegate::identity::validate::{Availability, KeyStore};
    let cfg = status_config("deny");
    let uri = format!("{LISTS}2");
    // Signed for another uri.
    let f = with_status_list(&cfg, &uri, &list_token(&format!("{LISTS}other")));
    assert!(
        matches!(f.status_list(&uri, 0, NOW), Availability::Unavailable(ref why) if why.contains("status list"))
    );
    let t = status_token(0, &uri);
    let headers = borrow_headers(&t);
    let req = Request::new("GET", "/payments/1", &headers);
    assert_eq!(
        decide_cached(&cfg, &req, &f, None, NOW).reason,
        Reason::StatusUnavailable
    );
    // With on_unavailable: allow, the same request passes, marked unchecked.
    let open = status_config("allow");
    let f = with_status_list(&open, &uri, b"garbage");
    let d = decide_cached(&open, &req, &f, None, NOW);
    assert_eq!(d.reason, Reason::Allowed);
    assert!(d.status_unchecked);
}

#[test]
fn a_token_pointing_at_a_list_not_fetched_yet_is_held() {
    use scopegate::request::decision::Verdict;
    let cfg = status_config("deny");
    let f = scopegate::remote::keyfetch::Fetcher::new(&cfg, 1);
    let t = status_token(0, &format!("{LISTS}3"));
    let headers = borrow_headers(&t);
    let req = Request::new("GET", "/payments/1", &headers);
    let d = decide_cached(&cfg, &req, &f, None, NOW);
    assert!(matches!(d.verdict, Verdict::StatusPending));
}

#[test]
fn a_fetched_list_is_read_as_strictly_as_an_inline_one() {
    let names = ["corp"];
    let errors = |text: &str| -> Vec<String> {
        parse_revocation_document(text.as_bytes(), &names)
            .err()
            .unwrap_or_default()
            .iter()
            .map(ToString::to_string)
            .collect()
    };
    let e = errors(
        r#"{"tokens": ["a", "", 3, {"x": 1}], "clients": [{"client_id": "c", "provider": "nobody"}], "extra": 1}"#,
    );
    for expected in [
        "/tokens/1: expected a non-empty token id",
        "/tokens/2: expected a non-empty token id",
        "/tokens/3: expected a non-empty token id",
        "/clients/0/provider: no provider is named \"nobody\"",
        "/extra: unknown field",
    ] {
        assert!(
            e.iter().any(|l| l.starts_with(expected)),
            "missing {expected:?} in {e:#?}"
        );
    }
    assert!(
        errors(r#"{"tokens": ["a"], "tokens": ["b"]}"#)[0].contains("duplicate member \"tokens\"")
    );
    let nested = errors(r#"{"clients": [{"client_id": "a", "client_id": "b"}]}"#);
    assert!(
        nested[0].starts_with("/clients/0: duplicate member \"client_id\""),
        "{nested:?}"
    );
    assert!(errors("[1, 2]")[0].contains("not valid JSON"));
    assert_eq!(
        errors(r#"{"tokens": {"a": 1}}"#),
        ["/tokens: expected an array of token ids (jti)"]
    );
    assert_eq!(
        errors(r#"{"tokens": "jti-1"}"#),
        ["/tokens: expected an array of token ids (jti)"]
    );
    let ok = parse_revocation_document(br#"{"tokens": {}, "subjects": []}"#, &names).unwrap();
    assert_eq!(ok.counts(), (0, 0, 0));
}
