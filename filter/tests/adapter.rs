//! The adapter between host and core, with a recording host: what is sent,
//! stripped, set, counted and logged for each kind of outcome.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod support;

use scopegate::host::adapter::{self, Loaded, LogLevel, Signal, Step, Worker};
use scopegate::identity::validate::NoRemoteKeys;
use scopegate::request::audit::PeerCertificate;
use scopegate::request::response::LocalResponse;
use scopegate::vocab::reason::Reason;
use serde_json::{json, Value};
use std::rc::Rc;
use support::host::FakeHost;
use support::*;

fn request(method: &str, path: &str, extra: &[(&str, &str)]) -> FakeHost {
    let mut headers = vec![
        (":method".to_string(), method.to_string()),
        (":path".to_string(), path.to_string()),
    ];
    headers.extend(extra.iter().map(|(k, v)| (k.to_string(), v.to_string())));
    FakeHost {
        headers,
        ..FakeHost::default()
    }
}

fn loaded(doc: &Value) -> Loaded {
    Loaded::Ready(Rc::new(config_from(doc)))
}

fn header<'a>(r: &'a LocalResponse, name: &str) -> Option<&'a str> {
    r.headers
        .iter()
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v.as_ref())
}

#[test]
fn allowed_request_gets_identity_and_loses_spoofed_headers() {
    let t = format!("Bearer {}", rs256(&claims("payments:read")));
    let mut host = request(
        "GET",
        "/payments//7?q=1",
        &[
            ("authorization", &t),
            ("x-identity-subject", "root"),
            ("x-http-method-override", "DELETE"),
        ],
    );
    let step = adapter::on_request_headers(
        &loaded(&base_config()),
        &NoRemoteKeys,
        Worker::default(),
        &mut host,
        NOW * 1000,
    );
    assert_eq!(step, Step::Continue);
    assert!(host.response.is_none());
    assert_eq!(
        host.removed,
        ["x-identity-subject", "x-http-method-override"]
    );
    assert!(host
        .set
        .contains(&("x-identity-subject".into(), "svc-billing".into())));
    assert!(host
        .set
        .contains(&("x-identity-scopes".into(), "payments:read".into())));
    assert!(host
        .set
        .contains(&("x-identity-tenant".into(), "t-42".into())));
    assert_eq!(host.path.as_deref(), Some("/payments/7?q=1"));
    assert_eq!(host.counts, [Reason::Allowed]);
    assert!(host
        .properties
        .contains(&("scopegate.reason".into(), "allowed".into())));
    assert!(host
        .properties
        .contains(&("scopegate.client_id".into(), "billing-batch".into())));
    assert!(host.records.is_empty(), "{:?}", host.records);
    // audit_log defaults to "denied": nothing logged for an allow.
    assert!(host.logs.is_empty(), "{:?}", host.logs);
}

#[test]
fn denied_request_gets_an_rfc6750_answer_and_an_audit_line() {
    let t = rs256(&claims("payments:read"));
    let mut host = request(
        "POST",
        "/payments/7/refunds",
        &[("authorization", &format!("Bearer {t}"))],
    );
    let step = adapter::on_request_headers(
        &loaded(&base_config()),
        &NoRemoteKeys,
        Worker::default(),
        &mut host,
        NOW * 1000,
    );
    assert_eq!(step, Step::Responded);
    let r = host.response.as_ref().unwrap();
    assert_eq!(r.status, 403);
    assert_eq!(
        header(r, "www-authenticate"),
        Some("Bearer realm=\"scopegate\", error=\"insufficient_scope\", scope=\"payments:write refunds:create\", error_description=\"the token lacks a scope this route requires\"")
    );
    assert_eq!(header(r, "content-type"), Some("application/json"));
    let body: Value = serde_json::from_str(&r.body).unwrap();
    assert_eq!(body["reason"], "insufficient_scope");
    assert_eq!(body["error"], "insufficient_scope");
    assert!(!r.body.contains(&t));
    assert!(host.set.is_empty() && host.removed.is_empty());
    assert_eq!(host.counts, [Reason::InsufficientScope]);
    let (level, line) = host.logs.first().unwrap();
    assert_eq!(*level, LogLevel::Info);
    let audit: Value = serde_json::from_str(line).unwrap();
    assert_eq!(audit["reason"], "insufficient_scope");
    assert_eq!(
        audit["message"], "token lacks scope payments:write refunds:create",
        "the audit line keeps the detail the caller is not told"
    );
    assert_eq!(audit["rule"], "refund");
    assert_eq!(audit["subject"], "svc-billing");
    assert_eq!(audit["source"], "10.0.0.7:51000");
    assert!(!line.contains(&t));
}

#[test]
fn each_denial_class_has_its_status_and_challenge() {
    let cfg = loaded(&base_config());
    let run = |extra: &[(&str, &str)], path: &str| {
        let mut host = request("GET", path, extra);
        adapter::on_request_headers(
            &cfg,
            &NoRemoteKeys,
            Worker::default(),
            &mut host,
            NOW * 1000,
        );
        host.response.unwrap()
    };
    let r = run(&[], "/payments");
    assert_eq!(
        (r.status, header(&r, "www-authenticate")),
        (401, Some("Bearer realm=\"scopegate\""))
    );
    let r = run(&[("authorization", "Bearer a.b.c")], "/payments");
    assert_eq!(r.status, 401);
    assert!(header(&r, "www-authenticate")
        .unwrap()
        .starts_with("Bearer realm=\"scopegate\", error=\"invalid_token\", error_description=\""));
    let r = run(
        &[("authorization", "Bearer x"), ("authorization", "Bearer y")],
        "/payments",
    );
    assert_eq!(r.status, 400);
    assert!(header(&r, "www-authenticate")
        .unwrap()
        .starts_with("Bearer realm=\"scopegate\", error=\"invalid_request\""));
    // A 403 that is not about scope does not send the client to fetch one.
    let r = run(&[], "/nowhere");
    assert_eq!(r.status, 403);
    let r = run(
        &[(
            "authorization",
            &format!("Bearer {}", rs256(&claims("payments:read"))),
        )],
        "/nowhere",
    );
    assert_eq!(
        (r.status, header(&r, "www-authenticate")),
        (403, Some("Bearer realm=\"scopegate\""))
    );
    let body: Value = serde_json::from_str(&r.body).unwrap();
    assert_eq!(
        (body["error"].as_str(), body["reason"].as_str()),
        (Some("access_denied"), Some("route_not_allowed"))
    );
}

#[test]
fn by_default_a_denial_tells_the_caller_nothing_about_the_configuration() {
    // A token for another audience, signed with a key id the gateway lacks.
    let mut c = claims("payments:read");
    c["aud"] = json!("other");
    let t = rs256(&c);
    let answer = |doc: &Value| {
        let mut host = request(
            "GET",
            "/payments/7",
            &[("authorization", &format!("Bearer {t}"))],
        );
        adapter::on_request_headers(
            &loaded(doc),
            &NoRemoteKeys,
            Worker::default(),
            &mut host,
            NOW * 1000,
        );
        let r = host.response.unwrap();
        (
            r.body.clone(),
            header(&r, "www-authenticate").unwrap().to_string(),
            host.logs,
        )
    };
    let (body, challenge, logs) = answer(&base_config());
    assert!(
        !body.contains("payments-api") && !challenge.contains("payments-api"),
        "{body} {challenge}"
    );
    assert!(
        body.contains("\"the token's audience is not accepted\""),
        "{body}"
    );
    assert!(
        logs.iter().any(|(_, l)| l.contains("payments-api")),
        "the audit line has the detail"
    );
    let mut verbose = base_config();
    verbose["error_detail"] = json!("verbose");
    let (body, challenge, _) = answer(&verbose);
    assert!(
        body.contains("payments-api") && challenge.contains("payments-api"),
        "{body} {challenge}"
    );
}

#[test]
fn dry_run_lets_denials_through_but_still_strips_and_reports() {
    let mut doc = base_config();
    doc["mode"] = json!("dry_run");
    doc["audit_log"] = json!("all");
    let cfg = loaded(&doc);
    let mut host = request("GET", "/admin/x", &[("x-identity-subject", "root")]);
    assert_eq!(
        adapter::on_request_headers(
            &cfg,
            &NoRemoteKeys,
            Worker::default(),
            &mut host,
            NOW * 1000
        ),
        Step::Continue
    );
    assert!(host.response.is_none());
    assert_eq!(host.removed, ["x-identity-subject"]);
    assert!(host.set.is_empty(), "no identity without a valid token");
    assert_eq!(host.counts, [Reason::TokenMissing]);
    let audit: Value = serde_json::from_str(&host.logs[0].1).unwrap();
    assert_eq!(
        (audit["decision"].as_str(), audit["mode"].as_str()),
        (Some("deny"), Some("dry_run"))
    );

    // A valid token that fails the rule still gets its identity headers.
    let t = format!("Bearer {}", rs256(&claims("payments:read")));
    let mut host = request("GET", "/admin/x", &[("authorization", &t)]);
    assert_eq!(
        adapter::on_request_headers(
            &cfg,
            &NoRemoteKeys,
            Worker::default(),
            &mut host,
            NOW * 1000
        ),
        Step::Continue
    );
    assert_eq!(host.counts, [Reason::ClientNotAllowed]);
    assert!(host
        .set
        .contains(&("x-identity-subject".into(), "svc-billing".into())));
}

#[test]
fn forward_token_false_removes_the_credential() {
    let mut doc = base_config();
    doc["forward_token"] = json!(false);
    let t = format!("Bearer {}", rs256(&claims("payments:read")));
    let mut host = request("GET", "/payments", &[("authorization", &t)]);
    adapter::on_request_headers(
        &loaded(&doc),
        &NoRemoteKeys,
        Worker::default(),
        &mut host,
        NOW * 1000,
    );
    assert!(host.removed.contains(&"authorization".to_string()));
}

#[test]
fn broken_configuration_fails_closed_with_a_500() {
    let broken = Loaded::Broken(Rc::new(vec!["/rules/0/path: required".into()]));
    let mut host = request("GET", "/healthz", &[]);
    assert_eq!(
        adapter::on_request_headers(
            &broken,
            &NoRemoteKeys,
            Worker::default(),
            &mut host,
            NOW * 1000
        ),
        Step::Responded
    );
    let r = host.response.unwrap();
    assert_eq!(r.status, 500);
    assert!(r.body.contains("config_invalid"));
    assert!(host
        .logs
        .iter()
        .any(|(l, m)| *l == LogLevel::Error && m.contains("/rules/0/path: required")));
}

#[test]
fn a_request_without_path_is_answered_not_trapped() {
    let mut host = FakeHost {
        headers: vec![(":method".into(), "GET".into())],
        ..FakeHost::default()
    };
    assert_eq!(
        adapter::on_request_headers(
            &loaded(&base_config()),
            &NoRemoteKeys,
            Worker::default(),
            &mut host,
            NOW * 1000
        ),
        Step::Responded
    );
    assert_eq!(host.response.unwrap().status, 500);
}

#[test]
fn audit_line_names_the_mtls_peer_when_there_is_one() {
    let cfg = loaded(&base_config());
    let mut host = request("GET", "/payments", &[]);
    host.peer = Some(PeerCertificate {
        subject: Some("CN=billing,O=corp".into()),
        uri_sans: vec!["spiffe://corp/ns/billing/sa/batch".into()],
        dns_sans: vec![],
    });
    adapter::on_request_headers(
        &cfg,
        &NoRemoteKeys,
        Worker::default(),
        &mut host,
        NOW * 1000,
    );
    let audit: Value = serde_json::from_str(&host.logs[0].1).unwrap();
    assert_eq!(audit["peer_certificate"]["subject"], "CN=billing,O=corp");
    assert_eq!(
        audit["peer_certificate"]["uri_sans"][0],
        "spiffe://corp/ns/billing/sa/batch"
    );

    let mut plain = request("GET", "/payments", &[]);
    adapter::on_request_headers(
        &cfg,
        &NoRemoteKeys,
        Worker::default(),
        &mut plain,
        NOW * 1000,
    );
    let audit: Value = serde_json::from_str(&plain.logs[0].1).unwrap();
    assert!(
        audit.get("peer_certificate").is_none(),
        "absent without mTLS"
    );
}

#[test]
fn the_struct_form_sets_one_record() {
    let t = format!("Bearer {}", rs256(&claims("payments:read")));
    let mut cfg = base_config();
    cfg["audit_log"] = json!("off");
    cfg["request_properties_form"] = json!("struct");
    let run = |cfg: &Value, headers: &[(&str, &str)]| {
        let mut host = request("GET", "/payments/1", headers);
        adapter::on_request_headers(
            &loaded(cfg),
            &NoRemoteKeys,
            Worker::default(),
            &mut host,
            NOW * 1000,
        );
        host
    };
    let host = run(&cfg, &[("authorization", &t)]);
    let names: Vec<&str> = host.record().iter().map(|(k, _)| k.as_str()).collect();
    assert_eq!(
        names,
        [
            "decision",
            "reason",
            "rule",
            "subject",
            "client_id",
            "issuer",
            "scopes"
        ]
    );
    assert!(host.properties.is_empty(), "{:?}", host.properties);

    // A denial without a token has no identity: those fields are left out,
    // so the access log shows them absent.
    let host = run(&cfg, &[]);
    assert_eq!(
        host.record(),
        [
            ("decision".to_string(), "deny".to_string()),
            ("reason".to_string(), "token_missing".to_string()),
            ("rule".to_string(), "read".to_string()),
        ]
    );

    let mut some = cfg.clone();
    some["request_properties"] = json!(["reason", "client_id"]);
    let host = run(&some, &[("authorization", &t)]);
    assert_eq!(
        host.record(),
        [
            ("reason".to_string(), "allowed".to_string()),
            ("client_id".to_string(), "billing-batch".to_string()),
        ]
    );

    let mut none = cfg;
    none["request_properties"] = json!([]);
    let host = run(&none, &[("authorization", &t)]);
    assert!(host.records.is_empty() && host.properties.is_empty());
}

#[test]
fn request_properties_set_only_the_configured_facts() {
    let t = format!("Bearer {}", rs256(&claims("payments:read")));
    let keys = |host: &FakeHost| -> Vec<String> {
        host.properties.iter().map(|(k, _)| k.clone()).collect()
    };
    let mut all = base_config();
    all["audit_log"] = json!("off");
    let mut host = request("GET", "/payments/1", &[("authorization", &t)]);
    let step = adapter::on_request_headers(
        &loaded(&all),
        &NoRemoteKeys,
        Worker::default(),
        &mut host,
        NOW * 1000,
    );
    assert_eq!(step, Step::Continue);
    assert_eq!(
        keys(&host),
        [
            "scopegate.decision",
            "scopegate.reason",
            "scopegate.rule",
            "scopegate.subject",
            "scopegate.client_id",
            "scopegate.issuer",
            "scopegate.scopes"
        ]
    );
    assert!(host.records.is_empty(), "{:?}", host.records);

    let mut some = all.clone();
    some["request_properties"] = json!(["reason", "client_id"]);
    let mut host = request("GET", "/payments/1", &[("authorization", &t)]);
    adapter::on_request_headers(
        &loaded(&some),
        &NoRemoteKeys,
        Worker::default(),
        &mut host,
        NOW * 1000,
    );
    assert_eq!(
        host.properties,
        [
            ("scopegate.reason".to_string(), "allowed".to_string()),
            (
                "scopegate.client_id".to_string(),
                "billing-batch".to_string()
            )
        ]
    );

    let mut none = all;
    none["request_properties"] = json!([]);
    let mut host = request("GET", "/payments/1", &[]);
    assert_eq!(
        adapter::on_request_headers(
            &loaded(&none),
            &NoRemoteKeys,
            Worker::default(),
            &mut host,
            NOW * 1000
        ),
        Step::Responded
    );
    assert!(host.properties.is_empty(), "{:?}", host.properties);
    assert_eq!(host.counts, [Reason::TokenMissing], "still counted");
}

fn kong_like(method: &str, raw_path: &str, nginx_path: &str, extra: &[(&str, &str)]) -> FakeHost {
    let mut host = request(method, nginx_path, extra);
    host.as_received = true;
    host.raw_path = Some(raw_path.into());
    host
}

#[test]
fn where_removals_do_not_reach_the_upstream_a_caller_set_identity_header_is_refused() {
    let t = format!("Bearer {}", rs256(&claims("payments:read")));
    for mode in ["enforce", "dry_run"] {
        let mut doc = base_config();
        doc["mode"] = json!(mode);
        for (extra, path) in [
            (
                vec![
                    ("authorization", t.as_str()),
                    ("X-Identity-Subject", "root"),
                ],
                "/payments/7",
            ),
            (vec![("x-http-method-override", "DELETE")], "/healthz"),
        ] {
            let mut host = kong_like("GET", path, path, &extra);
            let step = adapter::on_request_headers(
                &loaded(&doc),
                &NoRemoteKeys,
                Worker::default(),
                &mut host,
                NOW * 1000,
            );
            assert_eq!(step, Step::Responded, "{mode} {path}");
            let r = host.response.as_ref().unwrap();
            assert_eq!(r.status, 400, "{mode} {path}");
            assert!(host.set.is_empty(), "no identity for a refused request");
            assert_eq!(host.counts, [Reason::RequestMalformed]);
        }
    }
}

#[test]
fn where_the_target_is_forwarded_as_sent_the_raw_path_is_judged_and_never_rewritten() {
    let t = format!("Bearer {}", rs256(&claims("payments:read")));
    // nginx hands over its normalized `$uri` as :path; the raw target is what is sent on.
    let mut host = kong_like(
        "GET",
        "/admin/x/../../payments/7",
        "/payments/7",
        &[("authorization", &t)],
    );
    adapter::on_request_headers(
        &loaded(&base_config()),
        &NoRemoteKeys,
        Worker::default(),
        &mut host,
        NOW * 1000,
    );
    assert_eq!(host.response.as_ref().map(|r| r.status), Some(400));
    assert_eq!(host.path, None, "no :path rewrite is attempted");
    // A path already in normal form passes unchanged.
    let mut host = kong_like(
        "GET",
        "/payments/7",
        "/payments/7",
        &[("authorization", &t)],
    );
    let step = adapter::on_request_headers(
        &loaded(&base_config()),
        &NoRemoteKeys,
        Worker::default(),
        &mut host,
        NOW * 1000,
    );
    assert_eq!(step, Step::Continue);
    assert_eq!(host.path, None);
}

#[test]
fn a_registered_identity_gets_its_owner_header_and_the_over_privilege_is_counted_and_logged() {
    let mut doc = base_config();
    doc["identity_headers"]["owner"] = json!("x-identity-owner");
    doc["audit_log"] = json!("all");
    doc["identities"] = json!({"registry": {"inline": [
        {"client_id": "billing-batch", "owner": "payments-team@example.com", "max_scopes": ["payments:read"]}
    ]}, "unregistered": "report"});
    let t = format!("Bearer {}", rs256(&claims("payments:read payments:write")));
    let mut host = request(
        "GET",
        "/payments/7",
        &[("authorization", &t), ("x-identity-owner", "me")],
    );
    let step = adapter::on_request_headers(
        &loaded(&doc),
        &NoRemoteKeys,
        Worker::default(),
        &mut host,
        NOW * 1000,
    );
    assert_eq!(step, Step::Continue);
    assert!(
        host.removed.contains(&"x-identity-owner".to_string()),
        "the caller's copy is stripped"
    );
    assert!(host.set.contains(&(
        "x-identity-owner".into(),
        "payments-team@example.com".into()
    )));
    assert!(
        host.set
            .contains(&("x-identity-scopes".into(), "payments:read".into())),
        "effective scopes"
    );
    assert_eq!(host.signals, [Signal::ScopesOverCeiling]);
    let audit: Value = serde_json::from_str(&host.logs[0].1).unwrap();
    assert_eq!(audit["owner"], "payments-team@example.com");
    assert_eq!(audit["registered"], true);
    assert_eq!(audit["scopes_dropped"], json!(["payments:write"]));
    assert_eq!(audit["scopes"], json!(["payments:read"]));

    // An unregistered client in report mode passes, counted and marked.
    let mut c = claims("payments:read");
    c["client_id"] = json!("stranger");
    let t = format!("Bearer {}", rs256(&c));
    let mut host = request("GET", "/payments/7", &[("authorization", &t)]);
    adapter::on_request_headers(
        &loaded(&doc),
        &NoRemoteKeys,
        Worker::default(),
        &mut host,
        NOW * 1000,
    );
    assert!(host.response.is_none());
    assert_eq!(host.signals, [Signal::Unregistered]);
    let audit: Value = serde_json::from_str(&host.logs[0].1).unwrap();
    assert_eq!(audit["registered"], false);
    assert!(!host.set.iter().any(|(n, _)| n == "x-identity-owner"));
}
