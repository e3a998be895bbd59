//! `explain --status-list URI=FILE` (CONTRACT §1.3 `revocation.status_list`,
//! §4): the Token Status List token a uri serves, given as a file, verified
//! with the token's provider's keys as the filter verifies a fetched one, so
//! that explain gives the filter's verdicts offline.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod common;

use common::{mint, run, text, CORP_KEY, NOW};
use scopegate::jose::mint::SigningKey;
use scopegate::jose::statuslist::{encode_lst, TYP};
use scopegate::vocab::alg::Alg;
use serde_json::{json, Value};

const LIST_URI: &str = "https://idp.example.com/statuslists/1";
const OTHER_URI: &str = "https://idp.example.com/statuslists/2";
const OUTSIDE_URI: &str = "https://evil.example.net/statuslists/1";

/// A file of this test's own (the tests run in parallel in one process).
fn tmp(name: &str, contents: &str) -> String {
    common::path_text(common::own_file("sl-", name, contents))
}

fn now() -> u64 {
    NOW.parse().unwrap()
}

fn corp_jwks() -> Value {
    let out = run(&["jwks", "--key", &format!("{CORP_KEY}=corp-2026")]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    serde_json::from_slice(&out.stdout).unwrap()
}

/// Provider corp (inline keys, or fetched from a uri: `remote_keys`), a read
/// rule, and `revocation.status_list` (None: no `revocation`).
fn config(status_list: Option<Value>, remote_keys: bool) -> String {
    let jwks = if remote_keys {
        json!({"uri": "https://idp.example.com/jwks", "cluster": "idp"})
    } else {
        json!({ "inline": corp_jwks() })
    };
    let mut cfg = json!({
        "providers": [
            {"name": "corp", "issuer": "https://idp.example.com", "audiences": ["payments-api"],
             "algorithms": ["RS256"], "clock_skew_s": 30, "jwks": jwks}
        ],
        "rules": [{"name": "read", "methods": ["GET"], "path": "/payments/**", "scopes": ["payments:read"]}]
    });
    if let Some(sl) = status_list {
        cfg["revocation"] = json!({ "status_list": sl });
    }
    tmp("config.json", &cfg.to_string())
}

fn deny_config() -> String {
    config(
        Some(json!({"uri_prefixes": ["https://idp.example.com/statuslists/"]})),
        false,
    )
}

/// The status list token `uri` serves, signed by corp's key with `header`
/// and `claims` over the defaults: 16 two-bit entries, index 3 INVALID,
/// index 7 SUSPENDED, index 9 the undefined status 3, every other VALID.
fn list_token_with(uri: &str, header: Value, claims: Value) -> String {
    let mut statuses = vec![0u8; 16];
    statuses[3] = 1;
    statuses[7] = 2;
    statuses[9] = 3;
    let mut c = json!({"iss": "https://idp.example.com", "sub": uri, "iat": now() - 10,
        "exp": now() + 3600, "ttl": 60,
        "status_list": {"bits": 2, "lst": encode_lst(2, &statuses).unwrap()}});
    for (k, v) in claims.as_object().unwrap() {
        c[k] = v.clone();
    }
    let mut h = json!({"alg": "RS256", "kid": "corp-2026", "typ": TYP});
    for (k, v) in header.as_object().unwrap() {
        h[k] = v.clone();
    }
    let key =
        SigningKey::from_pkcs8(&std::fs::read(common::root().join(CORP_KEY)).unwrap()).unwrap();
    key.sign_raw(&h.to_string(), &c.to_string(), Alg::RS256)
        .unwrap()
}

fn list_token(uri: &str) -> String {
    list_token_with(uri, json!({}), json!({}))
}

/// A corp access token with `payments:read` pointing at index `idx` of `uri`.
fn token(uri: &str, idx: u64) -> String {
    let status = json!({"status": {"status_list": {"idx": idx, "uri": uri}}}).to_string();
    mint(&[
        "--scope",
        "payments:read",
        "--sub",
        "svc",
        "--client-id",
        "billing",
        "--claims",
        &status,
    ])
}

/// `explain` of GET /payments/1 with `token` against `cfg`, plus `extra`.
fn explain(cfg: &str, token: &str, extra: &[&str]) -> (Option<i32>, Value, String) {
    common::explain_out(&common::explain_get(cfg, token, NOW, extra), "")
}

fn spec(uri: &str, file: &str) -> String {
    format!("{uri}={file}")
}

#[test]
fn explain_decides_with_the_status_list_given() {
    let cfg = deny_config();
    let list = tmp("list.jwt", &format!("{}\n", list_token(LIST_URI)));
    let s = spec(LIST_URI, &list);
    for (idx, decision, status, reason, says) in [
        (0, "allow", 200, "allowed", ""),
        (1, "allow", 200, "allowed", ""),
        (3, "deny", 401, "token_revoked", "INVALID"),
        (7, "deny", 401, "token_suspended", "SUSPENDED"),
        (9, "deny", 401, "token_revoked", "status 0x03"),
        (100, "deny", 401, "token_revoked", "has no index 100"),
    ] {
        let (code, v, stderr) = explain(&cfg, &token(LIST_URI, idx), &["--status-list", &s]);
        assert_eq!(code, Some(0), "{stderr}");
        assert_eq!(stderr, "", "idx {idx}");
        assert_eq!(v["decision"], decision, "idx {idx}: {v}");
        assert_eq!(v["status"], status, "idx {idx}: {v}");
        assert_eq!(v["reason"], reason, "idx {idx}: {v}");
        let message = v["message"].as_str().unwrap_or_default();
        assert!(message.contains(says), "idx {idx}: {message}");
        if decision == "deny" {
            assert_eq!(v["response"]["status"], 401, "{v}");
            assert_eq!(v["provider"], "corp");
        } else {
            assert_eq!(v["response"], Value::Null, "{v}");
            assert_eq!(v["rule"], "read");
        }
    }
}

#[test]
fn a_uri_outside_the_prefixes_is_status_unverifiable_even_when_given() {
    let cfg = deny_config();
    let list = tmp("outside.jwt", &list_token(OUTSIDE_URI));
    let (code, v, stderr) = explain(
        &cfg,
        &token(OUTSIDE_URI, 0),
        &["--status-list", &spec(OUTSIDE_URI, &list)],
    );
    assert_eq!(code, Some(0), "{stderr}");
    assert_eq!(v["status"], 401, "{v}");
    assert_eq!(v["reason"], "status_unverifiable", "{v}");
    // The file can never be used: said on stderr, the verdict unchanged.
    assert!(stderr.starts_with("warning: --status-list "), "{stderr}");
    assert!(stderr.contains("uri_prefixes"), "{stderr}");

    // without --status-list: the same verdict, no warning
    let (code, v, stderr) = explain(&cfg, &token(OUTSIDE_URI, 0), &[]);
    assert_eq!(code, Some(0), "{stderr}");
    assert_eq!(v["reason"], "status_unverifiable", "{v}");
    assert_eq!(stderr, "");
}

#[test]
fn a_list_not_given_is_the_decision_when_it_cannot_be_had() {
    let cfg = deny_config();
    let (code, v, stderr) = explain(&cfg, &token(LIST_URI, 0), &[]);
    assert_eq!(code, Some(0), "{stderr}");
    assert_eq!(v["decision"], "deny", "{v}");
    assert_eq!(v["status"], 503, "{v}");
    assert_eq!(v["reason"], "status_unavailable", "{v}");
    assert_eq!(v["response"]["status"], 503, "{v}");
    let message = v["message"].as_str().unwrap_or_default();
    assert!(message.contains(LIST_URI), "{message}");
    assert!(
        message.ends_with("not given: use --status-list URI=FILE"),
        "{message}"
    );

    // another uri's list given: this one is still not given
    let other = tmp("other.jwt", &list_token(OTHER_URI));
    let (_, v, _) = explain(
        &cfg,
        &token(LIST_URI, 0),
        &["--status-list", &spec(OTHER_URI, &other)],
    );
    assert_eq!(v["reason"], "status_unavailable", "{v}");

    // on_unavailable: allow lets it through
    let allow = config(
        Some(
            json!({"uri_prefixes": ["https://idp.example.com/statuslists/"],
                    "on_unavailable": "allow"}),
        ),
        false,
    );
    let (code, v, stderr) = explain(&allow, &token(LIST_URI, 3), &[]);
    assert_eq!(code, Some(0), "{stderr}");
    assert_eq!(v["decision"], "allow", "{v}");
    assert_eq!(v["status"], 200, "{v}");
}

#[test]
fn a_list_that_fails_verification_is_unavailable() {
    let cfg = deny_config();
    let good = list_token(LIST_URI);
    // Every status VALID, under the signature of the real list.
    let forged_payload = {
        let all_valid = list_token_with(
            LIST_URI,
            json!({}),
            json!({"status_list": {"bits": 2, "lst": encode_lst(2, &[0; 16]).unwrap()}}),
        );
        all_valid.split('.').nth(1).unwrap().to_string()
    };
    let parts: Vec<&str> = good.split('.').collect();
    let forged = format!("{}.{forged_payload}.{}", parts[0], parts[2]);
    let cases = [
        ("bad-signature.jwt", forged, "signature"),
        (
            "expired.jwt",
            list_token_with(
                LIST_URI,
                json!({}),
                json!({"iat": now() - 7200, "exp": now() - 3600}),
            ),
            "exp",
        ),
        ("other-subject.jwt", list_token(OTHER_URI), OTHER_URI),
        (
            "wrong-typ.jwt",
            list_token_with(LIST_URI, json!({"typ": "JWT"}), json!({})),
            "typ",
        ),
        (
            "unknown-kid.jwt",
            list_token_with(LIST_URI, json!({"kid": "nobody"}), json!({})),
            "nobody",
        ),
        ("garbage.jwt", "not a token".to_string(), "not a valid"),
    ];
    for (name, list, says) in cases {
        let file = tmp(name, &list);
        // index 3 is INVALID in the real list: never revoked by a bad one
        let (code, v, stderr) = explain(
            &cfg,
            &token(LIST_URI, 3),
            &["--status-list", &spec(LIST_URI, &file)],
        );
        assert_eq!(code, Some(0), "{name}: {stderr}");
        assert_eq!(v["status"], 503, "{name}: {v}");
        assert_eq!(v["reason"], "status_unavailable", "{name}: {v}");
        let message = v["message"].as_str().unwrap_or_default();
        assert!(
            message.contains("not a valid status list token"),
            "{name}: {message}"
        );
        assert!(message.contains(&file), "{name}: {message}");
        assert!(
            message.to_lowercase().contains(&says.to_lowercase()),
            "{name}: {says} in {message}"
        );
    }
}

#[test]
fn the_list_is_verified_with_the_provider_clock_skew_and_now() {
    let cfg = deny_config();
    // issued 20 s after --now: within the provider's 30 s of skew
    let soon = tmp(
        "soon.jwt",
        &list_token_with(LIST_URI, json!({}), json!({"iat": now() + 20})),
    );
    let (_, v, _) = explain(
        &cfg,
        &token(LIST_URI, 7),
        &["--status-list", &spec(LIST_URI, &soon)],
    );
    assert_eq!(v["reason"], "token_suspended", "{v}");
    // 40 s after: not yet
    let later = tmp(
        "later.jwt",
        &list_token_with(LIST_URI, json!({}), json!({"iat": now() + 40})),
    );
    let (_, v, _) = explain(
        &cfg,
        &token(LIST_URI, 7),
        &["--status-list", &spec(LIST_URI, &later)],
    );
    assert_eq!(v["reason"], "status_unavailable", "{v}");
}

#[test]
fn a_provider_with_fetched_keys_verifies_the_list_with_jwks_keys() {
    let cfg = config(
        Some(json!({"uri_prefixes": ["https://idp.example.com/statuslists/"]})),
        true,
    );
    let jwks = tmp("corp.jwks", &corp_jwks().to_string());
    let list = tmp("list.jwt", &list_token(LIST_URI));
    let s = spec(LIST_URI, &list);
    let (code, v, stderr) = explain(
        &cfg,
        &token(LIST_URI, 7),
        &["--jwks", &format!("corp={jwks}"), "--status-list", &s],
    );
    assert_eq!(code, Some(0), "{stderr}");
    assert_eq!(v["reason"], "token_suspended", "{v}");
    let (_, v, _) = explain(
        &cfg,
        &token(LIST_URI, 0),
        &["--jwks", &format!("corp={jwks}"), "--status-list", &s],
    );
    assert_eq!(v["decision"], "allow", "{v}");
    // without the keys the token itself is not verified
    let (_, v, _) = explain(&cfg, &token(LIST_URI, 0), &["--status-list", &s]);
    assert_eq!(v["reason"], "jwks_unavailable", "{v}");
}

#[test]
fn several_lists_and_a_uri_with_a_query() {
    let cfg = deny_config();
    let query_uri = "https://idp.example.com/statuslists/q?list=2";
    let a = tmp("a.jwt", &list_token(LIST_URI));
    let b = tmp("b.jwt", &list_token(query_uri));
    let flags = [
        "--status-list".to_string(),
        spec(LIST_URI, &a),
        format!("--status-list={}", spec(query_uri, &b)),
    ];
    let flags: Vec<&str> = flags.iter().map(String::as_str).collect();
    let (_, v, stderr) = explain(&cfg, &token(LIST_URI, 3), &flags);
    assert_eq!(v["reason"], "token_revoked", "{v} {stderr}");
    let (_, v, stderr) = explain(&cfg, &token(query_uri, 7), &flags);
    assert_eq!(v["reason"], "token_suspended", "{v} {stderr}");
    let (_, v, _) = explain(&cfg, &token(query_uri, 0), &flags);
    assert_eq!(v["decision"], "allow", "{v}");
}

#[test]
fn usage_errors_exit_2() {
    let cfg = deny_config();
    let list = tmp("list.jwt", &list_token(LIST_URI));
    let t = token(LIST_URI, 0);
    let twice = [
        "--status-list".to_string(),
        spec(LIST_URI, &list),
        "--status-list".to_string(),
        spec(LIST_URI, &list),
    ];
    let twice: Vec<&str> = twice.iter().map(String::as_str).collect();
    let no_status = config(None, false);
    let no_status_spec = spec(LIST_URI, &list);
    for (what, cfg, extra, says) in [
        (
            "no =",
            &cfg,
            vec!["--status-list", "list.jwt"],
            "expected URI=FILE",
        ),
        (
            "empty file",
            &cfg,
            vec!["--status-list", "https://x/="],
            "expected URI=FILE",
        ),
        ("twice", &cfg, twice, "more than once"),
        (
            "unreadable",
            &cfg,
            vec![
                "--status-list",
                "https://idp.example.com/statuslists/1=/nonexistent/list.jwt",
            ],
            "cannot read /nonexistent/list.jwt",
        ),
        (
            "no status_list in the configuration",
            &no_status,
            vec!["--status-list", &no_status_spec],
            "revocation.status_list",
        ),
    ] {
        let (code, v, stderr) = explain(cfg, &t, &extra);
        assert_eq!(code, Some(2), "{what}: {v} {stderr}");
        assert_eq!(v, Value::Null, "{what}");
        assert!(
            stderr.starts_with("scopegate: --status-list"),
            "{what}: {stderr}"
        );
        assert!(stderr.contains(says), "{what}: {stderr}");
    }
}

#[test]
fn explain_help_describes_status_list() {
    let out = run(&["explain", "--help"]);
    assert!(out.status.success());
    let help = text(&out.stdout);
    assert!(help.contains("--status-list URI=FILE"), "{help}");
    assert!(help.contains("status_unavailable"), "{help}");
    let out = run(&["help"]);
    assert!(text(&out.stdout).contains("[--status-list URI=FILE]..."));
}
