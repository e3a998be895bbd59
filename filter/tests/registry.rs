//! The identity registry: who may call, until when, with which scopes at
//! most; judged after the token is valid and before the rules.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod support;

use scopegate::policy::config::{self, parse_registry_document};
use scopegate::request::decision::Registration;
use scopegate::vocab::reason::Reason;
use scopegate::vocab::time::rfc3339;
use serde_json::{json, Value};
use support::*;

/// billing-batch (corp): read-only ceiling; ops-bot: any provider, disabled;
/// old-job: expired an hour ago.
fn registry_config(unregistered: &str) -> Value {
    let mut doc = base_config();
    doc["identities"] = json!({
        "registry": {"inline": [
            {"client_id": "billing-batch", "provider": "corp", "owner": "payments-team@example.com",
             "max_scopes": ["payments:read"]},
            {"client_id": "ops-bot", "owner": "sre@example.com", "status": "disabled"},
            {"client_id": "old-job", "owner": "legacy@example.com", "expires": rfc3339(NOW - 3600)},
            {"client_id": "edge-job", "owner": "edge@example.com", "expires": rfc3339(NOW - 30)}
        ]},
        "unregistered": unregistered
    });
    doc
}

fn token_for(client: &str, scope: &str) -> Vec<(String, String)> {
    bearer(&rs256(&with(claims(scope), "client_id", json!(client))))
}

#[test]
fn a_registered_identity_within_its_ceiling_is_allowed_with_its_owner() {
    let cfg = config_from(&registry_config("deny"));
    let d = run(
        &cfg,
        "GET",
        "/payments/1",
        &token_for("billing-batch", "payments:read"),
    );
    assert_eq!(d.reason, Reason::Allowed);
    assert_eq!(
        d.registration,
        Some(Registration::Registered {
            owner: "payments-team@example.com".into(),
            dropped_scopes: vec![],
            rate_limit: None,
        })
    );
}

#[test]
fn scopes_above_the_ceiling_are_dropped_before_the_rules_and_reported() {
    let cfg = config_from(&registry_config("deny"));
    let d = run(
        &cfg,
        "GET",
        "/payments/1",
        &token_for(
            "billing-batch",
            "payments:read payments:write refunds:create",
        ),
    );
    assert_eq!(d.reason, Reason::Allowed);
    let id = d.identity.as_ref().unwrap();
    assert_eq!(
        id.scopes,
        ["payments:read"],
        "identity carries the effective scopes"
    );
    assert_eq!(id.scope_text, "payments:read");
    assert_eq!(
        d.registration,
        Some(Registration::Registered {
            owner: "payments-team@example.com".into(),
            dropped_scopes: vec!["payments:write".into(), "refunds:create".into()],
            rate_limit: None,
        })
    );
}

#[test]
fn a_request_refused_only_because_of_the_ceiling_says_so() {
    let cfg = config_from(&registry_config("deny"));
    let d = run(
        &cfg,
        "POST",
        "/payments/1/refunds",
        &token_for(
            "billing-batch",
            "payments:read payments:write refunds:create",
        ),
    );
    assert_eq!(d.reason, Reason::ScopeOverCeiling);
    assert_eq!(
        d.required_scopes.as_deref(),
        Some("payments:write refunds:create")
    );
    assert!(d.message().contains("ceiling"), "{}", d.message());
    // Without the scope in the token at all, it is plain insufficient_scope.
    let d = run(
        &cfg,
        "POST",
        "/payments/1/refunds",
        &token_for("billing-batch", "payments:read payments:write"),
    );
    assert_eq!(d.reason, Reason::InsufficientScope);
}

#[test]
fn unregistered_clients_are_denied_or_reported() {
    let t = token_for("stranger", "payments:read");
    let d = run(
        &config_from(&registry_config("deny")),
        "GET",
        "/payments/1",
        &t,
    );
    assert_eq!(d.reason, Reason::IdentityUnregistered);
    assert_eq!(d.registration, Some(Registration::Unregistered));
    assert!(d.message().contains("stranger"));
    let d = run(
        &config_from(&registry_config("report")),
        "GET",
        "/payments/1",
        &t,
    );
    assert_eq!(d.reason, Reason::Allowed);
    assert_eq!(d.registration, Some(Registration::Unregistered));
    // A token without a client id matches no entry.
    let mut c = claims("payments:read");
    c.remove("client_id");
    let d = run(
        &config_from(&registry_config("deny")),
        "GET",
        "/payments/1",
        &bearer(&rs256(&c)),
    );
    assert_eq!(d.reason, Reason::IdentityUnregistered);
}

#[test]
fn a_disabled_identity_is_refused_as_an_invalid_token() {
    let cfg = config_from(&registry_config("report"));
    let d = run(
        &cfg,
        "GET",
        "/payments/1",
        &token_for("ops-bot", "payments:read"),
    );
    assert_eq!(d.reason, Reason::IdentityDisabled);
    assert_eq!(d.reason.class().status(), 401);
    assert!(
        matches!(d.registration, Some(Registration::Registered { ref owner, .. }) if owner == "sre@example.com")
    );
}

#[test]
fn an_expired_identity_is_refused_saying_since_when_with_the_providers_skew() {
    let cfg = config_from(&registry_config("report"));
    let d = run(
        &cfg,
        "GET",
        "/payments/1",
        &token_for("old-job", "payments:read"),
    );
    assert_eq!(d.reason, Reason::IdentityExpired);
    assert!(
        d.message().contains(&rfc3339(NOW - 3600)),
        "{}",
        d.message()
    );
    // 30 s past `expires` is within corp's 60 s clock skew.
    let d = run(
        &cfg,
        "GET",
        "/payments/1",
        &token_for("edge-job", "payments:read"),
    );
    assert_eq!(d.reason, Reason::Allowed);
}

#[test]
fn public_routes_do_not_consult_the_registry() {
    let cfg = config_from(&registry_config("deny"));
    let d = run(&cfg, "GET", "/healthz", &[]);
    assert_eq!(d.reason, Reason::PublicRoute);
    assert_eq!(d.registration, None);
}

#[test]
fn a_providers_own_entry_is_not_matched_for_another_provider() {
    let mut doc = registry_config("deny");
    doc["identities"]["registry"]["inline"] = json!([
        {"client_id": "billing-batch", "provider": "partner", "owner": "p@example.com"}
    ]);
    let d = run(
        &config_from(&doc),
        "GET",
        "/payments/1",
        &token_for("billing-batch", "payments:read"),
    );
    assert_eq!(d.reason, Reason::IdentityUnregistered);
}

fn errors(doc: &Value) -> Vec<String> {
    config::parse_value(doc)
        .err()
        .unwrap_or_default()
        .iter()
        .map(ToString::to_string)
        .collect()
}

#[test]
fn registry_faults_are_configuration_errors_with_their_paths() {
    let mut doc = base_config();
    doc["identities"] = json!({"registry": {"inline": [
        {"client_id": "a"},
        {"client_id": "b", "owner": "o", "provider": "nobody"},
        {"client_id": "c", "owner": "o", "expires": "2027-02-30T00:00:00Z"},
        {"client_id": "d", "owner": "o", "max_scopes": ["bad scope"]},
        {"client_id": "e", "owner": "o", "status": "paused"},
        {"client_id": "f", "owner": "o", "provider": "corp"},
        {"client_id": "f", "owner": "p", "provider": "corp"},
        {"client_id": "g", "owner": "o", "color": "red"}
    ]}, "unregistered": "maybe"});
    let e = errors(&doc);
    for expected in [
        "/identities/registry/inline/0: `owner` is required",
        "/identities/registry/inline/1/provider: no provider is named \"nobody\"",
        "/identities/registry/inline/2/expires: expected an RFC 3339 instant",
        "/identities/registry/inline/3/max_scopes/0: not a valid scope",
        "/identities/registry/inline/4/status: expected one of",
        "/identities/registry/inline/6: client \"f\" of provider \"corp\" is registered twice (also at /identities/registry/inline/5)",
        "/identities/registry/inline/7/color: unknown field",
        "/identities/unregistered: expected one of",
    ] {
        assert!(e.iter().any(|l| l.starts_with(expected)), "missing {expected:?} in {e:#?}");
    }
}

#[test]
fn a_fetched_registry_document_is_validated_the_same_way() {
    let names = ["corp", "partner"];
    let ok = parse_registry_document(
        br#"{"identities": [{"client_id": "a", "owner": "o", "provider": "partner"}]}"#,
        &names,
    )
    .unwrap();
    assert_eq!(ok.find(1, "a").map(|e| e.owner.as_str()), Some("o"));
    let e = parse_registry_document(br#"{"identities": [{"client_id": "a"}], "x": 1}"#, &names)
        .err()
        .unwrap();
    let lines: Vec<String> = e.iter().map(ToString::to_string).collect();
    assert!(
        lines
            .iter()
            .any(|l| l.starts_with("/identities/0: `owner` is required")),
        "{lines:?}"
    );
    assert!(
        lines.iter().any(|l| l.starts_with("/x: unknown field")),
        "{lines:?}"
    );
    let dup = parse_registry_document(br#"{"identities": [], "identities": []}"#, &names)
        .err()
        .unwrap();
    assert!(dup[0].to_string().contains("duplicate member"), "{dup:?}");
}

#[test]
fn a_registry_of_100k_identities_loads_and_answers_lookups() {
    let entries: Vec<Value> = (0..100_000)
        .map(|i| json!({"client_id": format!("svc-{i:06}"), "owner": format!("team-{}@example.com", i % 500),
                        "max_scopes": ["payments:read"]}))
        .collect();
    let text = serde_json::to_vec(&json!({"identities": entries})).unwrap();
    let r = parse_registry_document(&text, &["corp"]).unwrap();
    assert_eq!(r.len(), 100_000);
    assert_eq!(
        r.find(0, "svc-099999").map(|e| e.owner.as_str()),
        Some("team-499@example.com")
    );
    assert!(r.find(0, "svc-100000").is_none());
}

#[test]
fn a_fetched_registry_not_there_yet_holds_the_request_or_answers_503() {
    use scopegate::identity::validate::{Availability, KeyStore, Keys, NoRemoteKeys};
    use scopegate::policy::registry::Registry;
    use scopegate::request::decision::{decide, Request, Verdict};
    struct Pending;
    impl KeyStore for Pending {
        fn keys(&self, p: usize) -> Keys {
            NoRemoteKeys.keys(p)
        }
        fn registry(&self) -> Availability<Registry> {
            Availability::Pending
        }
    }
    let mut doc = base_config();
    doc["identities"] = json!({"registry": {"uri": "http://registry.internal/r.json"}});
    let cfg = config_from(&doc);
    let headers = token_for("billing-batch", "payments:read");
    let borrowed = scopegate::request::decision::borrow_headers(&headers);
    let req = Request::new("GET", "/payments/1", &borrowed);
    let d = decide(&cfg, &req, &Pending, NOW);
    assert!(matches!(d.verdict, Verdict::RegistryPending));
    let d = decide(&cfg, &req, &NoRemoteKeys, NOW);
    assert_eq!(d.reason, Reason::RegistryUnavailable);
    assert_eq!(d.reason.class().status(), 503);
}
