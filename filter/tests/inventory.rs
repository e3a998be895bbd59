//! The identity inventory: what one worker counts per verified identity, and
//! the lines it writes when the interval is over.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod support;

use scopegate::policy::config::InventorySettings;
use scopegate::request::inventory::{Inventory, MARKER, MAX_LINE_BYTES};
use serde_json::{json, Value};
use support::*;

fn settings(max_identities: usize) -> InventorySettings {
    InventorySettings {
        interval_s: 60,
        max_identities,
    }
}

fn lines(inv: &mut Inventory, cfg: &scopegate::policy::config::Config, now: u64) -> Vec<Value> {
    inv.drain(cfg, now)
        .iter()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

#[test]
fn each_identity_gets_one_line_with_its_counts_rules_and_scopes() {
    let cfg = config();
    let mut inv = Inventory::new(&settings(100), cfg.providers.len());
    let read = rs256(&claims("payments:read payments:write admin"));
    let other = rs256(&with(
        claims("payments:read"),
        "client_id",
        json!("ops-bot"),
    ));
    for (i, (method, path, token)) in [
        ("GET", "/payments/1", &read),
        ("GET", "/payments/2", &read),
        ("POST", "/payments/3/refunds", &read), // lacks refunds:create: 403
        ("GET", "/payments/1", &other),
    ]
    .into_iter()
    .enumerate()
    {
        let d = run(&cfg, method, path, &bearer(token));
        assert!(inv.record(&d, NOW + i as u64), "{path}");
    }
    // A request without a verified identity is not the inventory's: no
    // token, or refused before the token is looked at (no rule).
    assert!(!inv.record(&run(&cfg, "GET", "/payments/1", &[]), NOW));
    assert!(!inv.record(&run(&cfg, "GET", "/nowhere", &bearer(&read)), NOW));
    assert!(!inv.due(NOW + 59));
    assert!(inv.due(NOW + 60));

    let got = lines(&mut inv, &cfg, NOW + 60);
    assert_eq!(got.len(), 2);
    let billing = &got[0];
    assert_eq!(billing["inventory"], "scopegate");
    assert_eq!(billing["provider"], "corp");
    assert_eq!(billing["client_id"], "billing-batch");
    assert_eq!(billing["subject"], "svc-billing");
    assert_eq!(billing["requests"], 3);
    assert_eq!(billing["allowed"], 2);
    assert_eq!(billing["denied"], json!({"insufficient_scope": 1}));
    assert_eq!(billing["rules"], json!({"read": 2, "refund": 1}));
    assert_eq!(
        billing["scopes_presented"],
        json!(["admin", "payments:read", "payments:write"])
    );
    // Only the rule that allowed requests counts as exercising its scopes.
    assert_eq!(billing["scopes_exercised"], json!(["payments:read"]));
    assert_eq!(billing["first_seen"], scopegate::vocab::time::rfc3339(NOW));
    assert_eq!(
        billing["last_seen"],
        scopegate::vocab::time::rfc3339(NOW + 2)
    );
    assert_eq!(
        billing["window_end"],
        scopegate::vocab::time::rfc3339(NOW + 60)
    );
    assert_eq!(billing["max_token_lifetime_s"], 660);
    assert_eq!(billing["max_token_age_s"], 62);
    assert_eq!(billing["registered"], Value::Null);
    assert_eq!(got[1]["client_id"], "ops-bot");
    assert_eq!(got[1]["requests"], 1);

    // The counts start again.
    assert!(inv.drain(&cfg, NOW + 120).is_empty());
    assert!(!inv.due(NOW + 1000));
}

#[test]
fn past_max_identities_new_identities_are_summed_in_one_overflow_line() {
    let cfg = config();
    let mut inv = Inventory::new(&settings(2), cfg.providers.len());
    for client in ["a", "b", "c", "d", "c"] {
        let t = rs256(&with(claims("payments:read"), "client_id", json!(client)));
        assert!(inv.record(&run(&cfg, "GET", "/payments/1", &bearer(&t)), NOW));
    }
    let got = lines(&mut inv, &cfg, NOW + 60);
    let clients: Vec<&str> = got.iter().filter_map(|l| l["client_id"].as_str()).collect();
    assert_eq!(clients, ["a", "b"]);
    let overflow = got.last().unwrap();
    assert_eq!(overflow["overflow"], true);
    assert_eq!(overflow["identities"], 2);
    assert_eq!(overflow["requests"], 3);
    assert_eq!(overflow["allowed"], 3);
}

#[test]
fn registry_facts_are_carried_into_the_line() {
    let mut doc = base_config();
    doc["identities"] = json!({"registry": {"inline": [
        {"client_id": "billing-batch", "owner": "billing@example.com"}
    ]}});
    let cfg = config_from(&doc);
    let mut inv = Inventory::new(&settings(10), cfg.providers.len());
    let registered = rs256(&claims("payments:read"));
    let stranger = rs256(&with(
        claims("payments:read"),
        "client_id",
        json!("stranger"),
    ));
    inv.record(&run(&cfg, "GET", "/payments/1", &bearer(&registered)), NOW);
    inv.record(&run(&cfg, "GET", "/payments/1", &bearer(&stranger)), NOW);
    let got = lines(&mut inv, &cfg, NOW + 60);
    assert_eq!(got[0]["registered"], true);
    assert_eq!(got[0]["owner"], "billing@example.com");
    assert_eq!(got[1]["client_id"], "stranger");
    assert_eq!(got[1]["registered"], false);
    assert_eq!(got[1]["owner"], Value::Null);
}

#[test]
fn a_line_never_outgrows_a_log_line() {
    let cfg = config();
    let mut inv = Inventory::new(&settings(10), cfg.providers.len());
    let many: Vec<String> = (0..300).map(|i| format!("scope:{i:04}")).collect();
    let t = rs256(&claims(&format!("payments:read {}", many.join(" "))));
    inv.record(&run(&cfg, "GET", "/payments/1", &bearer(&t)), NOW);
    let raw = inv.drain(&cfg, NOW + 60);
    assert!(raw[0].len() <= MAX_LINE_BYTES, "{}", raw[0].len());
    let line: Value = serde_json::from_str(&raw[0]).unwrap();
    assert_eq!(line["truncated"], true);
    assert_eq!(line["requests"], 1);
}

#[test]
fn every_line_starts_with_the_marker_the_report_looks_for() {
    // `scopegate report` finds inventory lines by `{"inventory":"scopegate"`
    // at the start of the object (docs/report.md): an identity line, a
    // truncated one and an overflow line all begin with it, although
    // serde_json would write `allowed` first.
    assert_eq!(MARKER, r#"{"inventory":"scopegate""#);
    let cfg = config();
    let mut inv = Inventory::new(&settings(2), cfg.providers.len());
    let many: Vec<String> = (0..300).map(|i| format!("scope:{i:04}")).collect();
    let long = rs256(&claims(&format!("payments:read {}", many.join(" "))));
    inv.record(&run(&cfg, "GET", "/payments/1", &bearer(&long)), NOW);
    for client in ["b", "c"] {
        let t = rs256(&with(claims("payments:read"), "client_id", json!(client)));
        inv.record(&run(&cfg, "GET", "/payments/1", &bearer(&t)), NOW);
    }
    let raw = inv.drain(&cfg, NOW + 60);
    assert_eq!(raw.len(), 3, "{raw:?}");
    for line in &raw {
        assert!(line.starts_with(&format!("{MARKER},")), "{line}");
        let v: Value = serde_json::from_str(line).unwrap();
        assert_eq!(v["inventory"], "scopegate");
        assert_eq!(v["version"], 1);
    }
    let parsed: Vec<Value> = raw
        .iter()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(parsed.iter().filter(|v| v["truncated"] == true).count(), 1);
    assert_eq!(parsed[2]["overflow"], true);
}
