//! The revocation list document a revocation `uri` serves (CONTRACT §1.3):
//! `check-config --revocation` validates it with the filter's own checks
//! (faults with JSON paths, exit 1) and `explain --revocation` decides with
//! it when the configuration's list is fetched.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod common;

use common::{mint, run, run_with_stdin, text, NOW};
use serde_json::{json, Value};

/// A file of this test's own (the tests run in parallel in one process).
fn tmp(name: &str, contents: &str) -> String {
    common::path_text(common::own_file("rev-", name, contents))
}

/// Two providers with fetched keys, a read rule, and `list` as the
/// revocation list source (None: no `revocation`).
fn config(list: Option<Value>) -> String {
    let mut cfg = json!({
        "providers": [
            {"name": "corp", "issuer": "https://idp.example.com", "audiences": ["payments-api"],
             "jwks": {"uri": "https://idp.example.com/jwks", "cluster": "idp"}},
            {"name": "partner", "issuer": "https://partner.example.com",
             "jwks": {"uri": "https://partner.example.com/jwks", "cluster": "partner"}}
        ],
        "rules": [{"name": "read", "methods": ["GET"], "path": "/payments/**", "scopes": ["payments:read"]}]
    });
    if let Some(list) = list {
        cfg["revocation"] = json!({ "list": list });
    }
    tmp("config.json", &cfg.to_string())
}

fn remote() -> String {
    config(Some(json!({
        "uri": "https://idp.example.com/revocations.json", "cluster": "idp", "refresh_interval_s": 1
    })))
}

/// Revoked: token id `jti-stolen`; client `ci-deploy` of corp issued before
/// 2030-01-01T00:00:01Z (the tests' tokens are issued at 2030-01-01T00:00:00Z);
/// client `rotated` of any provider issued before 2029-12-31T23:59:59Z; every
/// token of client `banned` of partner; every token of subject `svc-old`.
const LIST: &str = r#"{
  "tokens": ["jti-stolen", "jti-other"],
  "clients": [
    {"client_id": "ci-deploy", "provider": "corp", "issued_before": "2030-01-01T00:00:01Z"},
    {"client_id": "rotated", "issued_before": "2029-12-31T23:59:59Z"},
    {"client_id": "banned", "provider": "partner"}
  ],
  "subjects": [{"sub": "svc-old"}]
}"#;

const LIST_YAML: &str = "tokens: [jti-stolen]
clients:
  - client_id: ci-deploy
    provider: corp
    issued_before: \"2030-01-01T00:00:01Z\"
subjects:
  - {sub: svc-old}
";

fn lines(b: &[u8]) -> Vec<String> {
    text(b).lines().map(String::from).collect()
}

#[test]
fn check_config_validates_a_revocation_document() {
    let cfg = remote();
    let list = tmp("list.json", LIST);
    let out = run(&["check-config", "--revocation", &list, &cfg]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert_eq!(
        lines(&out.stdout),
        ["ok".to_string(), format!("{list}: ok")]
    );
    assert_eq!(text(&out.stderr), "");

    // YAML, on standard input
    let out = run_with_stdin(&["check-config", "--revocation", "-", &cfg], LIST_YAML);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert_eq!(lines(&out.stdout), ["ok", "<stdin>: ok"]);

    // every member is optional
    let empty = tmp("empty-object.json", "{}");
    let out = run(&["check-config", "--revocation", &empty, &cfg]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stdout));
}

#[test]
fn check_config_reports_each_fault_with_its_json_path_and_exits_1() {
    let cfg = remote();
    let bad = tmp(
        "bad.json",
        r#"{"tokens": ["ok", "", 7],
            "clients": [{"client_id": "a", "provider": "nope"}, {"provider": "corp"}],
            "subjects": [{"sub": "s", "issued_before": "last tuesday"}],
            "extra": true}"#,
    );
    let out = run(&["check-config", "--revocation", &bad, &cfg]);
    assert_eq!(out.status.code(), Some(1));
    let got = lines(&out.stdout);
    assert_eq!(got[0], "ok", "{got:?}");
    for want in [
        "/tokens/1: ",
        "/tokens/2: ",
        "/clients/0/provider: no provider is named \"nope\"",
        "/clients/1: `client_id` is required",
        "/subjects/0/issued_before: ",
        "/extra: ",
    ] {
        let line = format!("{bad}: {want}");
        assert!(got.iter().any(|l| l.starts_with(&line)), "{line}\n{got:#?}");
    }
    assert_eq!(got.len(), 7, "one line per fault: {got:#?}");

    // the wrong shape
    for (name, body, says) in [
        ("array.json", "[\"jti-1\"]", ""),
        ("tokens-string.json", r#"{"tokens": "jti-1"}"#, "/tokens: "),
        (
            "clients-object.json",
            r#"{"clients": {"client_id": "a"}}"#,
            "/clients: ",
        ),
    ] {
        let f = tmp(name, body);
        let out = run(&["check-config", "--revocation", &f, &cfg]);
        assert_eq!(out.status.code(), Some(1), "{name}");
        let got = lines(&out.stdout);
        assert!(
            got[1].starts_with(&format!("{f}: {says}")),
            "{name}: {got:?}"
        );
    }
}

#[test]
fn check_config_refuses_a_document_that_is_not_one_document() {
    let cfg = remote();
    let broken = tmp("broken.json", "{\"tokens\": [");
    let dup = tmp("dup.json", r#"{"tokens": ["a"], "tokens": ["b"]}"#);
    let empty = tmp("empty.yaml", "");
    let two = tmp("two.yaml", "tokens: [a]\n---\ntokens: [b]\n");
    for (f, says) in [
        (&broken, broken.as_str()),
        (&dup, "tokens"),
        (&empty, "expected a revocation list document"),
        (&two, "holds 2 documents: a revocation list is one document"),
    ] {
        let out = run(&["check-config", "--revocation", f, &cfg]);
        assert_eq!(out.status.code(), Some(1), "{f}: {}", text(&out.stdout));
        let got = lines(&out.stdout);
        assert_eq!(got.len(), 2, "{got:?}");
        assert!(got[1].contains(says), "{says}: {got:?}");
    }
    // an unreadable file is a usage error
    let out = run(&[
        "check-config",
        "--revocation",
        "/nonexistent/list.json",
        &cfg,
    ]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        text(&out.stderr).starts_with("scopegate: "),
        "{}",
        text(&out.stderr)
    );
}

#[test]
fn check_config_warns_when_the_document_would_not_be_used() {
    let list = tmp("list.json", LIST);
    let inline = config(Some(json!({"inline": {"tokens": ["x"]}})));
    let none = config(None);
    for (cfg, says) in [(&inline, "inline"), (&none, "no revocation list")] {
        let out = run(&["check-config", "--revocation", &list, cfg]);
        assert_eq!(out.status.code(), Some(0), "{}", text(&out.stdout));
        assert_eq!(
            lines(&out.stdout),
            ["ok".to_string(), format!("{list}: ok")]
        );
        let err = text(&out.stderr);
        assert!(err.starts_with(&format!("warning: {list}: ")), "{err}");
        assert!(
            err.contains(says) && err.contains("would not be used"),
            "{err}"
        );
    }
}

#[test]
fn check_config_still_checks_the_document_of_a_configuration_with_faults() {
    let cfg = tmp(
        "faulty.json",
        r#"{"providers": [{"name": "corp", "issuer": "https://idp.example.com", "jwks": {"uri": "https://idp.example.com/jwks"}}],
            "revocation": {"list": {"uri": "https://idp.example.com/revocations.json", "refresh_interval_s": 0}}}"#,
    );
    let list = tmp(
        "partner.json",
        r#"{"clients": [{"client_id": "a", "provider": "corp"}, {"client_id": "b", "provider": "partner"}]}"#,
    );
    let out = run(&["check-config", "--revocation", &list, &cfg]);
    assert_eq!(out.status.code(), Some(1));
    let got = lines(&out.stdout);
    assert!(
        got[0].starts_with("/revocation/list/refresh_interval_s: "),
        "{got:?}"
    );
    assert_eq!(
        got.last().unwrap(),
        &format!("{list}: /clients/1/provider: no provider is named \"partner\"")
    );
}

#[test]
fn check_config_registry_and_revocation_together() {
    let cfg = tmp(
        "both.json",
        r#"{"providers": [{"name": "corp", "issuer": "https://idp.example.com", "jwks": {"uri": "https://idp.example.com/jwks", "cluster": "idp"}}],
            "identities": {"registry": {"uri": "https://idp.example.com/registry.json", "cluster": "idp"}},
            "revocation": {"list": {"uri": "https://idp.example.com/revocations.json", "cluster": "idp"}}}"#,
    );
    let reg = tmp(
        "reg.json",
        r#"{"identities": [{"client_id": "a", "owner": "o"}]}"#,
    );
    let list = tmp("list.yaml", LIST_YAML);
    let out = run(&[
        "check-config",
        "--registry",
        &reg,
        "--revocation",
        &list,
        &cfg,
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stdout));
    assert_eq!(
        lines(&out.stdout),
        [
            "ok".to_string(),
            format!("{reg}: ok"),
            format!("{list}: ok")
        ]
    );
    // standard input can be read once
    let out = run(&["check-config", "--registry", "-", "--revocation", "-", &cfg]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        text(&out.stderr).contains("read once"),
        "{}",
        text(&out.stderr)
    );
}

/// `explain` of GET /payments/1 with a corp token against `cfg`, the corp
/// key set given with --jwks, plus `extra`.
fn explain(cfg: &str, token: &str, extra: &[&str]) -> (Option<i32>, Value, String) {
    common::explain_with_corp_jwks("rev-", cfg, token, extra)
}

/// A corp token for GET /payments/1: subject svc-billing and client billing
/// unless `extra` gives --sub or --client-id.
fn token(extra: &[&str]) -> String {
    let mut args = vec!["--scope", "payments:read"];
    if !extra.contains(&"--sub") {
        args.extend(["--sub", "svc-billing"]);
    }
    if !extra.contains(&"--client-id") {
        args.extend(["--client-id", "billing"]);
    }
    args.extend_from_slice(extra);
    mint(&args)
}

#[test]
fn explain_without_the_document_gives_the_decision_before_the_list_arrives() {
    let (code, v, stderr) = explain(&remote(), &token(&[]), &[]);
    assert_eq!(code, Some(0), "{stderr}");
    assert_eq!(
        (v["decision"].as_str(), v["status"].as_u64()),
        (Some("deny"), Some(503)),
        "{v}"
    );
    assert_eq!(v["reason"], "revocation_unavailable");
    assert!(
        v["message"].as_str().unwrap().contains("--revocation FILE"),
        "{v}"
    );
    assert_eq!(v["response"]["status"], 503);
    let body: Value = serde_json::from_str(v["response"]["body"].as_str().unwrap()).unwrap();
    assert_eq!(body["error"], "temporarily_unavailable", "{v}");
}

#[test]
fn explain_uses_the_revocation_document_for_a_fetched_list() {
    let cfg = remote();
    let list = tmp("list.json", LIST);
    let revoked = |t: &str, kind: &str| {
        let (code, v, stderr) = explain(&cfg, t, &["--revocation", &list]);
        assert_eq!(code, Some(0), "{stderr}");
        assert_eq!(
            (v["status"].as_u64(), v["reason"].as_str()),
            (Some(401), Some("token_revoked")),
            "{v}"
        );
        let message = v["message"].as_str().unwrap();
        assert!(
            message.contains(&format!("token's {kind} is on the revocation list")),
            "{message}"
        );
        assert!(
            !message.contains("jti-stolen") && !message.contains(&list),
            "{message}"
        );
        let www = v["response"]["headers"]["www-authenticate"]
            .as_str()
            .unwrap_or("");
        assert!(www.contains("error=\"invalid_token\""), "{v}");
    };
    let allowed = |t: &str| {
        let (code, v, stderr) = explain(&cfg, t, &["--revocation", &list]);
        assert_eq!(code, Some(0), "{stderr}");
        assert_eq!(v["reason"], "allowed", "{v}");
    };
    revoked(&token(&["--claim", "jti=jti-stolen"]), "id");
    allowed(&token(&["--claim", "jti=jti-fine"]));
    allowed(&token(&[]));
    // a client with a cut-off: issued before it (or without iat) revoked, after it allowed
    revoked(&token(&["--client-id", "ci-deploy"]), "client");
    revoked(
        &token(&["--client-id", "ci-deploy", "--claim", "iat=null"]),
        "client",
    );
    revoked(
        &token(&["--client-id", "rotated", "--claim", "iat=null"]),
        "client",
    );
    allowed(&token(&["--client-id", "rotated"]));
    // a client revoked for another provider only
    allowed(&token(&["--client-id", "banned"]));
    revoked(&token(&["--sub", "svc-old"]), "subject");

    // YAML on standard input
    let t = token(&["--sub", "svc-old"]);
    let spec = common::corp_jwks_spec("rev-");
    let out = run_with_stdin(
        &common::explain_get(&cfg, &t, NOW, &["--jwks", &spec, "--revocation", "-"]),
        LIST_YAML,
    );
    let v: Value = serde_json::from_slice(&out.stdout).unwrap_or(Value::Null);
    assert_eq!(v["reason"], "token_revoked", "{}", text(&out.stderr));
}

#[test]
fn explain_inline_list_needs_no_document() {
    let cfg = config(Some(
        json!({"inline": serde_json::from_str::<Value>(LIST).unwrap()}),
    ));
    let (code, v, stderr) = explain(&cfg, &token(&["--claim", "jti=jti-stolen"]), &[]);
    assert_eq!(code, Some(0), "{stderr}");
    assert_eq!(v["reason"], "token_revoked", "{v}");
    let (_, v, _) = explain(&cfg, &token(&[]), &[]);
    assert_eq!(v["reason"], "allowed", "{v}");
}

#[test]
fn explain_revocation_usage_errors_exit_2_with_one_clear_line() {
    let t = token(&[]);
    let list = tmp("list.json", LIST);
    let inline = config(Some(json!({"inline": {"tokens": ["x"]}})));
    let none = config(None);
    let faulty = tmp(
        "faulty.json",
        r#"{"subjects": [{"sub": "s", "provider": "nobody"}]}"#,
    );
    let remote = remote();
    for (cfg, doc, says) in [
        (inline.as_str(), list.as_str(), "inline"),
        (none.as_str(), list.as_str(), "no revocation list"),
        (
            remote.as_str(),
            faulty.as_str(),
            "/subjects/0/provider: no provider is named \"nobody\"",
        ),
        (remote.as_str(), "/nonexistent/list.json", "cannot read"),
    ] {
        let (code, v, stderr) = explain(cfg, &t, &["--revocation", doc]);
        assert_eq!(code, Some(2), "{cfg} {doc}: {v}");
        assert_eq!(v, Value::Null);
        assert!(stderr.starts_with("scopegate: "), "{stderr}");
        assert!(stderr.contains(says), "{says}: {stderr}");
        assert!(!stderr.contains("panicked"), "{stderr}");
    }
    let out = run_with_stdin(
        &[
            "explain",
            "--config",
            "-",
            "--method",
            "GET",
            "--path",
            "/",
            "--revocation",
            "-",
        ],
        "{}",
    );
    assert_eq!(out.status.code(), Some(2));
    assert!(
        text(&out.stderr).contains("read once"),
        "{}",
        text(&out.stderr)
    );
}

#[test]
fn help_describes_the_revocation_options() {
    for (cmd, must) in [
        ("explain", "--revocation FILE"),
        ("explain", "503 revocation_unavailable"),
        ("check-config", "--revocation FILE"),
        ("check-config", "REV: /pointer: message"),
    ] {
        let out = run(&[cmd, "--help"]);
        assert!(text(&out.stdout).contains(must), "{cmd}: {must}");
    }
    let usage = text(&run(&["--help"]).stdout);
    assert!(
        usage.contains("scopegate check-config [--registry FILE] [--revocation FILE] FILE..."),
        "{usage}"
    );
    assert!(
        usage.contains("[--registry FILE] [--revocation FILE]\n"),
        "{usage}"
    );
}
