//! The `scopegate` binary as users and pipelines run it: exit codes, output
//! formats, YAML input, and one-line errors for bad input.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod common;

use common::{mint, root, run, text, tmp, CORP_KEY, NOW};
use serde_json::Value;

const EXAMPLE: &str = "envoy-example/scopegate.json";
fn explain(args: &[&str]) -> (i32, Value) {
    let mut all = vec!["explain", "--config", EXAMPLE, "--now", NOW];
    all.extend_from_slice(args);
    let out = run(&all);
    let code = out.status.code().unwrap_or(-1);
    let v = serde_json::from_slice(&out.stdout).unwrap_or(Value::Null);
    (code, v)
}

#[test]
fn check_config_accepts_the_example() {
    let out = run(&["check-config", EXAMPLE]);
    assert_eq!(out.status.code(), Some(0));
    assert_eq!(text(&out.stdout), "ok\n");
}

#[test]
fn check_config_prints_one_line_per_fault_with_its_path() {
    let bad = tmp(
        "bad.json",
        r#"{"providers": [{"name": "corp", "issuer": "i", "jwks": {"uri": "https://i/k"}, "algorithms": ["HS256"]}],
            "rules": [{"name": "r", "path": "/x", "scopes": "a"}], "mode": "strict"}"#,
    );
    let out = run(&["check-config", bad.to_str().unwrap_or_default()]);
    assert_eq!(out.status.code(), Some(1));
    let lines: Vec<String> = text(&out.stdout).lines().map(String::from).collect();
    assert_eq!(lines.len(), 3, "{lines:?}");
    assert!(lines[0].starts_with("/providers/0/algorithms/0: "));
    assert_eq!(lines[1], "/rules/0/scopes: expected an array of strings");
    assert!(lines[2].starts_with("/mode: expected one of"));
}

#[test]
fn check_config_reads_yaml() {
    let yaml = tmp(
        "cfg.yaml",
        "providers:\n  - name: corp\n    issuer: https://idp.example.com\n    jwks: {uri: 'https://idp.example.com/jwks', cluster: idp}\nrules:\n  - {name: read, methods: [GET], path: '/payments/**', scopes: ['payments:read']}\n",
    );
    let out = run(&["check-config", yaml.to_str().unwrap_or_default()]);
    assert_eq!(
        (out.status.code(), text(&out.stdout)),
        (Some(0), "ok\n".to_string()),
        "{}",
        text(&out.stderr)
    );
    let bad = tmp("bad.yaml", "providers:\n  - name: corp\nrules: 3\n");
    let out = run(&["check-config", bad.to_str().unwrap_or_default()]);
    assert_eq!(out.status.code(), Some(1));
    assert!(text(&out.stdout).contains("/providers/0/issuer: required"));
    assert!(text(&out.stdout).contains("/rules: expected an array of rules"));
}

#[test]
fn explain_allows_with_identity_and_headers() {
    let t = mint(&[
        "--sub",
        "svc-billing",
        "--client-id",
        "billing-batch",
        "--scope",
        "payments:read",
        "--claim",
        "tenant=acme",
    ]);
    let (code, v) = explain(&[
        "--method",
        "GET",
        "--path",
        "/payments//42/./?x=1",
        "--token",
        &t,
    ]);
    assert_eq!(code, 0);
    assert_eq!(v["decision"], "allow");
    assert_eq!(v["status"], 200);
    assert_eq!(v["reason"], "allowed");
    assert_eq!(v["rule"], "read");
    assert_eq!(v["identity"]["subject"], "svc-billing");
    assert_eq!(v["identity"]["client_id"], "billing-batch");
    assert_eq!(v["identity"]["issuer"], "https://idp.example.com");
    assert_eq!(
        v["identity"]["scopes"],
        serde_json::json!(["payments:read"])
    );
    assert_eq!(v["headers"]["x-identity-tenant"], "acme");
    assert_eq!(v["headers"]["x-identity-scopes"], "payments:read");
    assert_eq!(v["normalized_path"], "/payments/42/");
    assert_eq!(v["forwarded_path"], "/payments/42/?x=1");
}

#[test]
fn explain_denies_with_status_and_reason() {
    let reader = mint(&["--scope", "payments:read", "--client-id", "billing-batch"]);
    type Case<'a> = (
        &'a str,
        &'a str,
        Option<&'a str>,
        &'a [&'a str],
        u64,
        &'a str,
    );
    let cases: [Case; 5] = [
        (
            "POST",
            "/payments/1/refunds",
            Some(&reader),
            &[],
            403,
            "insufficient_scope",
        ),
        ("GET", "/payments/1", None, &[], 401, "token_missing"),
        (
            "GET",
            "/payments/%2e%2e%2fadmin",
            Some(&reader),
            &[],
            400,
            "request_malformed",
        ),
        (
            "GET",
            "/elsewhere",
            Some(&reader),
            &[],
            403,
            "route_not_allowed",
        ),
        (
            "GET",
            "/payments/1",
            None,
            &["--header", "Authorization: Bearer a.b.c"],
            401,
            "token_malformed",
        ),
    ];
    for (method, path, token, headers, status, reason) in cases {
        let mut args = vec!["--method", method, "--path", path];
        if let Some(t) = token {
            args.extend(["--token", t]);
        }
        args.extend_from_slice(headers);
        let (code, v) = explain(&args);
        assert_eq!(code, 0, "{path}");
        assert_eq!(
            (
                v["decision"].as_str(),
                v["status"].as_u64(),
                v["reason"].as_str()
            ),
            (Some("deny"), Some(status), Some(reason)),
            "{path}: {v}"
        );
        assert_eq!(
            v["headers"],
            serde_json::json!({}),
            "no identity headers on a denial"
        );
    }
}

#[test]
fn explain_uses_now_for_every_time_check() {
    let t = mint(&["--scope", "payments:read"]);
    let later = (NOW.parse::<u64>().unwrap_or(0) + 3600).to_string();
    let out = run(&common::explain_get(EXAMPLE, &t, &later, &[]));
    let v: Value = serde_json::from_slice(&out.stdout).unwrap_or(Value::Null);
    assert_eq!(v["reason"], "token_expired");
}

#[test]
fn explain_takes_remote_keys_from_files() {
    let cfg = tmp(
        "remote.json",
        r#"{"providers": [{"name": "corp", "issuer": "https://idp.example.com", "jwks": {"uri": "https://idp.example.com/jwks", "cluster": "idp"}}],
            "default_action": "authenticate"}"#,
    );
    let jwks = run(&["jwks", "--key", &format!("{CORP_KEY}=corp-2026")]);
    let jwks_file = tmp("corp.jwks", &text(&jwks.stdout));
    let t = mint(&[]);
    let base = [
        "explain",
        "--config",
        cfg.to_str().unwrap_or_default(),
        "--method",
        "GET",
        "--path",
        "/x",
        "--token",
        &t,
        "--now",
        NOW,
    ];
    let v: Value = serde_json::from_slice(&run(&base).stdout).unwrap_or(Value::Null);
    assert_eq!(
        (v["status"].as_u64(), v["reason"].as_str()),
        (Some(503), Some("jwks_unavailable"))
    );
    let spec = format!("corp={}", jwks_file.to_str().unwrap_or_default());
    let mut with_keys = base.to_vec();
    with_keys.extend(["--jwks", &spec]);
    let v: Value = serde_json::from_slice(&run(&with_keys).stdout).unwrap_or(Value::Null);
    assert_eq!(v["reason"], "allowed");
}

#[test]
fn schema_prints_the_config_schema_file() {
    let out = run(&["schema"]);
    assert_eq!(out.status.code(), Some(0));
    let file = std::fs::read_to_string(root().join("config-schema/scopegate.schema.json"))
        .unwrap_or_default();
    assert_eq!(text(&out.stdout), file);
}

#[test]
fn bad_input_is_one_line_and_exit_2() {
    let cases: [&[&str]; 8] = [
        &[],
        &["frobnicate"],
        &["check-config"],
        &["check-config", "/nonexistent/file.json"],
        &["explain", "--config", EXAMPLE, "--method", "GET"],
        &[
            "explain", "--config", EXAMPLE, "--method", "GET", "--path", "/", "--now", "soon",
        ],
        &["token", "--key", "README.md"],
        &["explain", "--bogus", "1"],
    ];
    for args in cases {
        let out = run(args);
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        let err = text(&out.stderr);
        assert!(err.starts_with("scopegate: "), "{args:?}: {err}");
        assert!(
            !err.contains("panicked") && !err.contains("RUST_BACKTRACE"),
            "{err}"
        );
    }
}

#[test]
fn explain_with_an_invalid_config_exits_2_with_the_faults() {
    let bad = tmp("bad2.json", r#"{"providers": []}"#);
    let out = run(&[
        "explain",
        "--config",
        bad.to_str().unwrap_or_default(),
        "--method",
        "GET",
        "--path",
        "/",
    ]);
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out.stderr).contains("/providers: required"));
}

#[test]
fn token_and_jwks_round_trip_through_the_filter_core() {
    let out = run(&["jwks", "--key", &format!("{CORP_KEY}=corp-2026")]);
    let v: Value = serde_json::from_slice(&out.stdout).unwrap_or(Value::Null);
    assert_eq!(v["keys"][0]["kid"], "corp-2026");
    assert_eq!(v["keys"][0]["kty"], "RSA");
    let t = mint(&["--alg", "PS256", "--scope", "payments:read"]);
    let header: Value = serde_json::from_slice(
        &scopegate::jose::base64url::decode(t.split('.').next().unwrap_or_default().as_bytes())
            .unwrap_or_default(),
    )
    .unwrap_or(Value::Null);
    assert_eq!(header["alg"], "PS256");
    let (_, v) = explain(&["--method", "GET", "--path", "/payments/1", "--token", &t]);
    assert_eq!(v["reason"], "allowed");
    let out = run(&["token", "--key", CORP_KEY, "--alg", "HS256"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out.stderr).contains("HMAC"));
}

#[test]
fn every_command_has_help_with_its_defaults_on_stdout() {
    for (cmd, must) in [
        ("check-config", "Exit: 0"),
        ("explain", "Default: the clock"),
        ("schema", "JSON Schema"),
        ("token", "Default: 300"),
        ("jwks", "Default: none"),
    ] {
        for flag in ["--help", "-h"] {
            let out = run(&[cmd, flag]);
            assert_eq!(out.status.code(), Some(0), "{cmd} {flag}");
            let help = text(&out.stdout);
            assert!(
                help.starts_with(&format!("usage: scopegate {cmd}")),
                "{help}"
            );
            assert!(help.contains(must), "{cmd}: {help}");
            assert!(out.stderr.is_empty(), "{cmd}");
        }
    }
    // `--help` wins over missing or wrong arguments.
    let out = run(&["explain", "--method", "GET", "--help"]);
    assert_eq!(out.status.code(), Some(0));
    for top in [&["--help"][..], &["help"], &["help", "token"]] {
        let out = run(top);
        assert_eq!(out.status.code(), Some(0), "{top:?}");
        assert!(text(&out.stdout).contains("usage:"), "{top:?}");
    }
}

#[test]
fn version_prints_the_package_version() {
    let out = run(&["--version"]);
    assert_eq!(out.status.code(), Some(0));
    assert_eq!(
        text(&out.stdout),
        format!("scopegate {}\n", env!("CARGO_PKG_VERSION"))
    );
}

#[test]
fn explain_prints_the_response_the_gateway_sends_on_a_denial() {
    let reader = mint(&["--scope", "payments:read"]);
    let (code, v) = explain(&[
        "--method",
        "POST",
        "--path",
        "/payments/1/refunds",
        "--token",
        &reader,
    ]);
    assert_eq!(code, 0);
    assert_eq!(
        (v["enforced"].as_bool(), v["would_pass"].as_bool()),
        (Some(true), Some(false))
    );
    let r = &v["response"];
    assert_eq!(r["status"], 403);
    let challenge = r["headers"]["www-authenticate"]
        .as_str()
        .unwrap_or_default();
    assert!(challenge.starts_with("Bearer "), "{challenge}");
    assert!(
        challenge.contains("error=\"insufficient_scope\""),
        "{challenge}"
    );
    assert!(
        challenge.contains("scope=\"payments:write refunds:create\""),
        "{challenge}"
    );
    assert_eq!(r["headers"]["content-type"], "application/json");
    let body: Value =
        serde_json::from_str(r["body"].as_str().unwrap_or_default()).unwrap_or(Value::Null);
    assert_eq!(body["reason"], "insufficient_scope");
    assert_eq!(body["error"], "insufficient_scope");
    assert_eq!(v["response_if_enforced"], Value::Null);

    let (_, v) = explain(&["--method", "GET", "--path", "/payments/1"]);
    assert_eq!(v["response"]["status"], 401);
    let challenge = v["response"]["headers"]["www-authenticate"]
        .as_str()
        .unwrap_or_default();
    assert!(
        challenge.starts_with("Bearer realm=\"scopegate\""),
        "{challenge}"
    );
}

#[test]
fn explain_of_an_allowed_request_has_no_response_and_passes() {
    let reader = mint(&["--scope", "payments:read"]);
    let (_, v) = explain(&[
        "--method",
        "GET",
        "--path",
        "/payments/1",
        "--token",
        &reader,
    ]);
    assert_eq!(v["reason"], "allowed");
    assert_eq!(v["response"], Value::Null);
    assert_eq!(v["would_pass"], true);
    assert_eq!(v["enforced"], true);
}

#[test]
fn explain_in_dry_run_says_the_request_would_pass_and_what_enforcing_would_send() {
    let mut doc: Value =
        serde_json::from_str(&std::fs::read_to_string(root().join(EXAMPLE)).unwrap_or_default())
            .unwrap_or(Value::Null);
    doc["mode"] = Value::from("dry_run");
    let cfg = tmp("dry.json", &doc.to_string());
    let out = run(&[
        "explain",
        "--config",
        cfg.to_str().unwrap_or_default(),
        "--method",
        "GET",
        "--path",
        "/payments/1",
        "--now",
        NOW,
    ]);
    let v: Value = serde_json::from_slice(&out.stdout).unwrap_or(Value::Null);
    assert_eq!(v["decision"], "deny");
    assert_eq!(v["mode"], "dry_run");
    assert_eq!(
        (v["enforced"].as_bool(), v["would_pass"].as_bool()),
        (Some(false), Some(true))
    );
    assert_eq!(v["response"], Value::Null);
    assert_eq!(v["response_if_enforced"]["status"], 401);
}

#[test]
fn explain_response_is_what_the_filters_denial_code_builds() {
    use scopegate::identity::validate::NoRemoteKeys;
    use scopegate::request::decision::{decide, Request, Verdict};
    use scopegate::request::response;

    let cfg = scopegate::policy::config::parse_json(
        &std::fs::read(root().join(EXAMPLE)).unwrap_or_default(),
    )
    .unwrap();
    let reader = mint(&["--scope", "payments:read"]);
    let bearer = format!("Bearer {reader}");
    for (path, auth) in [
        ("/payments/1/refunds", Some(bearer.as_str())),
        ("/payments/1/refunds", None),
        ("/elsewhere", Some(bearer.as_str())),
        ("/payments/%2e%2e%2fadmin", Some("Bearer a.b.c")),
    ] {
        let mut headers = vec![(":method", "POST"), (":path", path)];
        if let Some(a) = auth {
            headers.push(("authorization", a));
        }
        let req = Request::new("POST", path, &headers);
        let d = decide(&cfg, &req, &NoRemoteKeys, NOW.parse().unwrap_or(0));
        let Verdict::Deny(denial) = &d.verdict else {
            panic!("{path}: expected a denial");
        };
        let want = response::denial(&cfg, denial.reason, &denial.message, Some(&d));
        let header = auth.map(|a| format!("Authorization: {a}"));
        let mut args = vec!["--method", "POST", "--path", path];
        if let Some(h) = &header {
            args.extend(["--header", h.as_str()]);
        }
        let (_, v) = explain(&args);
        let r = &v["response"];
        assert_eq!(r["status"].as_u64(), Some(u64::from(want.status)), "{path}");
        assert_eq!(r["body"].as_str(), Some(want.body.as_str()), "{path}");
        for (name, value) in &want.headers {
            assert_eq!(
                r["headers"][*name].as_str(),
                Some(value.as_ref()),
                "{path}: {name}"
            );
        }
        assert_eq!(
            r["headers"].as_object().map(|m| m.len()),
            Some(want.headers.len()),
            "{path}"
        );
    }
}

#[test]
fn explain_holds_a_certificate_bound_token_to_the_client_certificate_given() {
    use sha2::{Digest, Sha256};
    // Any DER will do: the binding is the SHA-256 of its bytes.
    let der = [0x30u8, 0x03, 0x02, 0x01, 0x07];
    let x5t = scopegate::jose::base64url::encode(&Sha256::digest(der));
    use base64::Engine;
    let pem = format!(
        "-----BEGIN CERTIFICATE-----\n{}\n-----END CERTIFICATE-----\n",
        base64::engine::general_purpose::STANDARD.encode(der)
    );
    let cert = tmp("client.pem", &pem);
    let t = mint(&[
        "--scope",
        "payments:read",
        "--claim",
        &format!(r#"cnf={{"x5t#S256":"{x5t}"}}"#),
    ]);
    let request = ["--method", "GET", "--path", "/payments/1", "--token", &t];
    let (code, v) = explain(&request);
    assert_eq!(
        (code, v["reason"].as_str()),
        (0, Some("mtls_certificate_missing")),
        "{v}"
    );
    let mut with_cert = request.to_vec();
    let cert_arg = cert.display().to_string();
    with_cert.extend(["--client-cert", &cert_arg]);
    let (_, v) = explain(&with_cert);
    assert_eq!(v["reason"], "allowed", "{v}");
}
