//! Rate limits through the adapter, with a recording host and one shared
//! store: which limits apply, what a refused caller is told, what an allowed
//! one is told, and dry runs.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod support;

use scopegate::host::adapter::{self, Loaded, LogLevel, Signal, Step, Worker};
use scopegate::identity::shared::MemoryStore;
use scopegate::request::limits::Limits;
use scopegate::request::response::LocalResponse;
use scopegate::vocab::reason::Reason;
use serde_json::{json, Value};
use std::rc::Rc;
use support::host::FakeHost;
use support::*;

struct Gateway {
    loaded: Loaded,
    limits: Limits,
    store: Shared,
}

impl Gateway {
    fn new(doc: &Value) -> Gateway {
        let cfg = config_from(doc);
        let limits = Limits::new(&cfg, [7; 16]).expect("rate_limits configured");
        Gateway {
            loaded: Loaded::Ready(Rc::new(cfg)),
            limits,
            store: Shared(MemoryStore::new()),
        }
    }

    fn send(&mut self, path: &str, token: &str, now_ms: u64) -> FakeHost {
        let mut host = FakeHost {
            headers: vec![
                (":method".into(), "GET".into()),
                (":path".into(), path.into()),
                ("authorization".into(), format!("Bearer {token}")),
            ],
            ..FakeHost::default()
        };
        let step = adapter::on_request_headers(
            &self.loaded,
            &self.store,
            Worker {
                limits: Some(&mut self.limits),
                ..Worker::default()
            },
            &mut host,
            now_ms,
        );
        assert_eq!(step == Step::Responded, host.response.is_some());
        host
    }
}

fn with_limits(limits: Value) -> Value {
    let mut doc = base_config();
    doc["rate_limits"] = limits;
    doc
}

fn header<'a>(r: &'a LocalResponse, name: &str) -> Option<&'a str> {
    r.headers
        .iter()
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v.as_ref())
}

const T0: u64 = NOW * 1000;

#[test]
fn past_requests_plus_burst_the_caller_gets_429_with_retry_after_and_ratelimit_fields() {
    let mut gw = Gateway::new(&with_limits(
        json!({"default": {"requests": 2, "per_s": 10, "burst": 1}}),
    ));
    let token = rs256(&claims("payments:read"));
    for _ in 0..3 {
        let h = gw.send("/payments/1", &token, T0);
        assert!(h.response.is_none(), "within requests + burst");
        assert!(h.response_headers.is_empty(), "headers: false");
    }
    let h = gw.send("/payments/1", &token, T0);
    let r = h.response.expect("refused");
    assert_eq!(r.status, 429);
    assert_eq!(h.counts, vec![Reason::RateLimited]);
    // One token every 5 s: the next request passes in 5 s.
    assert_eq!(header(&r, "retry-after"), Some("5"));
    assert_eq!(
        header(&r, "ratelimit-policy"),
        Some("\"default\";q=2;w=10;scopegate-burst=1")
    );
    assert_eq!(header(&r, "ratelimit"), Some("\"default\";r=0;t=5"));
    assert_eq!(header(&r, "www-authenticate"), None);
    let body: Value = serde_json::from_str(&r.body).unwrap();
    assert_eq!(body["reason"], "rate_limited");
    // The audit line (denied requests are logged by default) names the policy.
    assert!(
        h.logs
            .iter()
            .any(|(_, m)| m.contains("\"rate_limited\"") && m.contains("\\\"default\\\"")),
        "{:?}",
        h.logs
    );
    // Tokens come back at requests / per_s.
    assert!(gw
        .send("/payments/1", &token, T0 + 5_000)
        .response
        .is_none());
}

#[test]
fn identities_have_buckets_of_their_own_keyed_on_the_verified_client() {
    let mut gw = Gateway::new(&with_limits(
        json!({"default": {"requests": 1, "per_s": 60}}),
    ));
    let a = rs256(&claims("payments:read"));
    let b = rs256(&with(
        claims("payments:read"),
        "client_id",
        json!("other-client"),
    ));
    assert!(gw.send("/payments/1", &a, T0).response.is_none());
    assert!(gw.send("/payments/1", &b, T0).response.is_none());
    assert_eq!(gw.send("/payments/1", &a, T0).response.unwrap().status, 429);
    // Same client, another subject: the same bucket (key: client_id).
    let a2 = rs256(&with(claims("payments:read"), "sub", json!("someone-else")));
    assert_eq!(
        gw.send("/payments/1", &a2, T0).response.unwrap().status,
        429
    );
}

#[test]
fn with_headers_on_allowed_responses_carry_the_fields_too() {
    let mut gw = Gateway::new(&with_limits(
        json!({"default": {"requests": 10, "per_s": 60}, "headers": true}),
    ));
    let h = gw.send("/payments/1", &rs256(&claims("payments:read")), T0);
    assert!(h.response.is_none());
    assert_eq!(
        h.response_headers,
        vec![
            (
                "ratelimit-policy".to_string(),
                "\"default\";q=10;w=60".to_string()
            ),
            ("ratelimit".to_string(), "\"default\";r=9;t=6".to_string()),
        ]
    );
}

#[test]
fn denied_requests_take_nothing_from_the_bucket() {
    let mut gw = Gateway::new(&with_limits(
        json!({"default": {"requests": 1, "per_s": 60}}),
    ));
    let token = rs256(&claims("payments:read"));
    // No rule allows this path: 403, not counted against the limit.
    for _ in 0..5 {
        assert_eq!(
            gw.send("/nowhere", &token, T0).response.unwrap().status,
            403
        );
    }
    assert!(gw.send("/payments/1", &token, T0).response.is_none());
}

#[test]
fn a_rule_limit_applies_per_identity_on_that_rule_on_top_of_the_default() {
    let mut doc = with_limits(json!({"default": {"requests": 100, "per_s": 60}}));
    doc["rules"][1]["rate_limit"] = json!({"requests": 1, "per_s": 60});
    let mut gw = Gateway::new(&doc);
    let token = rs256(&claims("payments:read"));
    assert!(gw.send("/payments/1", &token, T0).response.is_none());
    let r = gw.send("/payments/2", &token, T0).response.unwrap();
    assert_eq!(r.status, 429);
    assert_eq!(
        header(&r, "ratelimit-policy"),
        Some("\"default\";q=100;w=60, \"read\";q=1;w=60")
    );
    // The refused request took nothing from the default limit.
    assert_eq!(
        header(&r, "ratelimit").map(|v| v.starts_with("\"default\";r=99;")),
        Some(true)
    );
}

#[test]
fn a_registry_entry_limit_replaces_the_default_for_that_identity() {
    let mut doc = with_limits(json!({"default": {"requests": 1, "per_s": 60}}));
    doc["identities"] = json!({"registry": {"inline": [
        {"client_id": "billing-batch", "owner": "billing@example.com",
         "rate_limit": {"requests": 3, "per_s": 60}}
    ]}});
    let mut gw = Gateway::new(&doc);
    let token = rs256(&claims("payments:read"));
    for _ in 0..3 {
        assert!(gw.send("/payments/1", &token, T0).response.is_none());
    }
    let r = gw.send("/payments/1", &token, T0).response.unwrap();
    assert_eq!(
        header(&r, "ratelimit-policy"),
        Some("\"identity\";q=3;w=60")
    );
}

#[test]
fn in_dry_run_over_the_limit_is_counted_and_logged_but_let_through() {
    let mut gw = Gateway::new(&with_limits(
        json!({"default": {"requests": 1, "per_s": 60}, "dry_run": true}),
    ));
    let token = rs256(&claims("payments:read"));
    assert!(gw.send("/payments/1", &token, T0).response.is_none());
    let h = gw.send("/payments/1", &token, T0);
    assert!(h.response.is_none());
    assert_eq!(h.counts, vec![Reason::Allowed]);
    assert_eq!(h.signals, vec![Signal::RateLimitDryRun]);
    // Let through, so an allowed response: no fields without `headers`.
    assert!(h.response_headers.is_empty(), "{:?}", h.response_headers);
    assert!(h
        .logs
        .iter()
        .any(|(l, m)| *l == LogLevel::Warn && m.contains("over the rate limit \"default\"")));
}

#[test]
fn limits_must_be_well_formed() {
    for (limits, fault) in [
        (
            json!({"default": {"per_s": 60}}),
            "/rate_limits/default/requests",
        ),
        (
            json!({"default": {"requests": 0, "per_s": 60}}),
            "/rate_limits/default/requests",
        ),
        (
            json!({"default": {"requests": 1, "per_s": 0}}),
            "/rate_limits/default/per_s",
        ),
        (json!({"key": "ip"}), "/rate_limits/key"),
        (
            json!({"default": {"requests": 1, "per_s": 1, "window": 3}}),
            "/rate_limits/default/window",
        ),
    ] {
        let errors = scopegate::policy::config::parse_value(&with_limits(limits.clone()))
            .expect_err("refused");
        assert!(
            errors.iter().any(|e| e.to_string().starts_with(fault)),
            "{limits}: {errors:?}"
        );
    }
}

mod audit_budget {
    use scopegate::request::audit::AuditBudget;
    use scopegate::vocab::reason::Reason;
    use serde_json::Value;

    #[test]
    fn past_the_budget_lines_are_held_back_and_summed_once_the_second_is_over() {
        let mut b = AuditBudget::new(3);
        let admitted = (0..10)
            .filter(|_| b.admit(Reason::TokenMalformed, 100).0)
            .count();
        assert_eq!(admitted, 3);
        // Another reason has a budget of its own.
        assert!(b.admit(Reason::TokenExpired, 100).0);
        // The next second: a fresh budget, and the summary of the last one.
        let (ok, summaries) = b.admit(Reason::TokenMalformed, 101);
        assert!(ok);
        assert_eq!(summaries.len(), 1);
        let s: Value = serde_json::from_str(&summaries[0]).unwrap();
        assert_eq!(s["audit_suppressed"], "scopegate");
        assert_eq!(s["reason"], "token_malformed");
        assert_eq!(s["suppressed"], 7);
        // Nothing more to sum until something is held back again.
        assert!(b.roll(102).is_empty());
    }

    #[test]
    fn a_tick_sums_a_flood_that_has_stopped() {
        let mut b = AuditBudget::new(1);
        b.admit(Reason::SignatureInvalid, 5);
        b.admit(Reason::SignatureInvalid, 5);
        assert!(b.roll(5).is_empty(), "the second is not over");
        assert_eq!(b.roll(6).len(), 1);
    }
}
