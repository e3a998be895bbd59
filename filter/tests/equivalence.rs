//! Property test: the same core, native and compiled to wasm32-wasip1 (run
//! in Node's V8), gives the same decision for random configurations, tokens,
//! paths and headers. Each run prints a digest of every decision; the test
//! command runs both builds and compares the two digests.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod support;

use scopegate::identity::validate::NoRemoteKeys;
use scopegate::request::decision::{decide, Request};
use scopegate::request::headers;
use scopegate::vocab::alg::Alg;
use serde_json::{json, Value};
use support::*;

#[path = "fixtures_rng/rng.rs"]
mod rng;
use rng::Rng;

const SCOPES: [&str; 6] = [
    "payments:read",
    "payments:write",
    "refunds:create",
    "admin",
    "orders:read",
    "x",
];
const SEGMENTS: [&str; 16] = [
    "payments", "admin", "refunds", "1", "42", ".", "..", "%2e%2e", "%2E", "", "%41", "%2f",
    "a%20b", "Admin", ";x", "%252e",
];

fn random_path(rng: &mut Rng) -> String {
    let n = 1 + rng.below(5);
    let mut p: String = (0..n)
        .map(|_| format!("/{}", rng.pick(&SEGMENTS)))
        .collect();
    if rng.chance(20) {
        p.push_str("?q=1&access_token=x");
    }
    p
}

fn random_config(rng: &mut Rng) -> Value {
    let mut doc = base_config();
    let actions = ["deny", "authenticate", "allow"];
    doc["default_action"] = json!(rng.pick(&actions));
    if rng.chance(30) {
        doc["mode"] = json!("dry_run");
    }
    if rng.chance(30) {
        doc["forward_token"] = json!(false);
    }
    let patterns = [
        "/payments/**",
        "/payments/{id}",
        "/admin/*",
        "/**",
        "/refunds/*/x",
        "/a/b",
    ];
    let methods = ["GET", "POST", "DELETE"];
    for i in 0..rng.below(3) {
        let mut rule = json!({"name": format!("r{i}"), "path": rng.pick(&patterns), "methods": [rng.pick(&methods)]});
        if rng.chance(50) {
            rule["scopes"] = json!([rng.pick(&SCOPES)]);
        } else {
            rule["any_scopes"] = json!([rng.pick(&SCOPES), rng.pick(&SCOPES)]
                .iter()
                .collect::<std::collections::BTreeSet<_>>());
        }
        if rng.chance(20) {
            rule["clients"] = json!(["ops-bot"]);
        }
        doc["rules"].as_array_mut().unwrap().insert(0, rule);
    }
    doc
}

fn random_token(rng: &mut Rng) -> Option<String> {
    if rng.chance(10) {
        return None;
    }
    let k = keys();
    let scope: Vec<&str> = (0..rng.below(3)).map(|_| *rng.pick(&SCOPES)).collect();
    let mut c = claims(&scope.join(" "));
    let offsets: [i64; 5] = [-7200, -100, 0, 100, 7200];
    if rng.chance(20) {
        let off = rng.pick(&offsets);
        c = with(c, "exp", json!((NOW as i64 + off).max(0)));
    }
    if rng.chance(10) {
        c = with(c, "aud", json!("other"));
    }
    if rng.chance(20) {
        c = with(c, "client_id", json!("ops-bot"));
    }
    let (key, alg, kid) = match rng.below(5) {
        0 => (&k.rsa, Alg::RS256, "rsa1"),
        1 => (&k.rsa, Alg::PS256, "rsa1"),
        2 => (&k.p256, Alg::ES256, "ec1"),
        3 => (&k.ed, Alg::EdDSA, "ed1"),
        _ => (&k.p384, Alg::ES384, "ec2"),
    };
    let mut t = key.sign(alg, Some(kid), &c).unwrap();
    if rng.chance(15) {
        // Flip one character of the signature.
        let i = t.len() - 1 - rng.below(20);
        let ch = if &t[i..i + 1] == "A" { "B" } else { "A" };
        t.replace_range(i..i + 1, ch);
    }
    if rng.chance(5) {
        t.push_str(".x");
    }
    Some(t)
}

#[test]
fn decisions_digest() {
    let mut rng = Rng(0x5c0_9e6a7e);
    let mut summaries = Vec::new();
    let cases = 300;
    for case in 0..cases {
        let doc = random_config(&mut rng);
        let cfg = config_from(&doc);
        let method = *rng.pick(&["GET", "POST", "DELETE", "HEAD"]);
        let path = random_path(&mut rng);
        let mut headers: Vec<(String, String)> = Vec::new();
        if let Some(t) = random_token(&mut rng) {
            headers.push((
                "authorization".into(),
                format!("{} {t}", rng.pick(&["Bearer", "bearer", "Basic"])),
            ));
        }
        if rng.chance(20) {
            headers.push(("x-identity-subject".into(), "spoof".into()));
        }
        let pairs = scopegate::request::decision::borrow_headers(&headers);
        let req = Request::new(method, &path, &pairs);
        let d = decide(&cfg, &req, &NoRemoteKeys, NOW);
        let m = headers::plan(&cfg, &req, &d);
        let id = d
            .identity
            .as_ref()
            .map(|i| format!("{:?}|{:?}|{}", i.subject, i.client_id, i.scopes.join(" ")));
        summaries.push(format!(
            "{case}|{}|{:?}|{:?}|{:?}|{:?}|{:?}|{:?}",
            d.reason,
            d.rule,
            d.rewritten_path,
            id,
            m.remove,
            m.set,
            d.message()
        ));
    }
    let joined = summaries.join("\n");
    let digest = ring::digest::digest(&ring::digest::SHA256, joined.as_bytes());
    let hex: String = digest.as_ref().iter().map(|b| format!("{b:02x}")).collect();
    let reasons: std::collections::BTreeSet<&str> = summaries
        .iter()
        .filter_map(|s| s.split('|').nth(1))
        .collect();
    // The generator must reach a wide spread of outcomes, or the test proves little.
    assert!(
        reasons.len() >= 10,
        "only {} distinct reasons: {reasons:?}",
        reasons.len()
    );
    println!(
        "equivalence digest: {hex} over {cases} decisions ({} distinct reasons)",
        reasons.len()
    );
}
