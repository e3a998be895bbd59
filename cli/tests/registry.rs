//! The identity registry document a registry `uri` serves (CONTRACT §1.2):
//! its JSON Schema agrees with the filter's parser over the fixtures in
//! config-schema/fixtures/registry, `schema --registry` prints it, and
//! `check-config --registry` and `explain --registry` read it as the filter
//! would.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod common;

use common::{mint, path_text as path, root, run, text, NOW};
use scopegate::policy::config;
use serde_json::{json, Value};

/// A file of this test's own (the tests run in parallel in one process).
fn tmp(name: &str, contents: &str) -> std::path::PathBuf {
    common::own_file("", name, contents)
}

/// The provider names the fixtures are checked against.
const PROVIDERS: [&str; 2] = ["corp", "partner"];

fn read_json(path: &str) -> Value {
    serde_json::from_str(&std::fs::read_to_string(root().join(path)).unwrap()).unwrap()
}

fn registry_schema() -> jsonschema::Validator {
    jsonschema::draft4::new(&read_json("config-schema/registry.schema.json"))
        .expect("the registry schema compiles as draft-04")
}

fn fixtures(dir: &str) -> Vec<(String, Value)> {
    let path = root().join("config-schema/fixtures/registry").join(dir);
    let mut out: Vec<(String, Value)> = std::fs::read_dir(path)
        .unwrap()
        .map(|e| {
            let p = e.unwrap().path();
            let v = serde_json::from_str(&std::fs::read_to_string(&p).unwrap()).unwrap();
            (p.file_name().unwrap().to_string_lossy().into_owned(), v)
        })
        .collect();
    out.sort_by(|a, b| a.0.cmp(&b.0));
    assert!(!out.is_empty(), "no fixtures in {dir}");
    out
}

fn parser_faults(doc: &Value) -> Vec<String> {
    let text = serde_json::to_vec(doc).unwrap();
    match config::parse_registry_document(&text, &PROVIDERS) {
        Ok(_) => Vec::new(),
        Err(e) => e.iter().map(ToString::to_string).collect(),
    }
}

fn schema_errors(v: &jsonschema::Validator, doc: &Value) -> Vec<String> {
    v.iter_errors(doc).map(|e| e.to_string()).collect()
}

/// The parser refuses the case's `registry` with exactly the faults its
/// `errors` begin.
fn assert_parser_faults(name: &str, case: &Value) {
    let got = parser_faults(&case["registry"]);
    let want: Vec<&str> = case["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    assert!(!got.is_empty(), "{name}: the parser accepted it");
    for w in &want {
        assert!(
            got.iter().any(|g| g.starts_with(w)),
            "{name}: expected a fault starting {w:?}, got {got:?}"
        );
    }
    assert_eq!(got.len(), want.len(), "{name}: {got:?}");
}

#[test]
fn the_registry_schema_entry_is_the_configuration_schemas_entry() {
    let registry = read_json("config-schema/registry.schema.json");
    let config = read_json("config-schema/scopegate.schema.json");
    assert!(registry["definitions"]["registry_entry"].is_object());
    assert_eq!(
        registry["definitions"]["registry_entry"],
        config["definitions"]["registry_entry"]
    );
    // The document's list is read like an inline registry's.
    assert_eq!(
        registry["properties"]["identities"]["items"],
        config["definitions"]["registry"]["properties"]["inline"]["items"]
    );
    assert_eq!(registry["$schema"], config["$schema"]);
}

#[test]
fn valid_registry_fixtures_pass_schema_and_parser() {
    let v = registry_schema();
    for (name, doc) in fixtures("valid") {
        assert!(
            v.is_valid(&doc),
            "{name}: schema refused: {:?}",
            schema_errors(&v, &doc)
        );
        assert_eq!(parser_faults(&doc), Vec::<String>::new(), "{name}");
    }
}

#[test]
fn invalid_registry_fixtures_fail_schema_and_parser_with_their_paths() {
    let v = registry_schema();
    for (name, case) in fixtures("invalid") {
        assert!(!v.is_valid(&case["registry"]), "{name}: schema accepted it");
        assert_parser_faults(&name, &case);
    }
}

#[test]
fn registry_cross_checks_beyond_draft4_are_the_parsers_alone() {
    let v = registry_schema();
    for (name, case) in fixtures("semantic") {
        assert!(
            v.is_valid(&case["registry"]),
            "{name}: the schema should accept it (only the parser can check this): {:?}",
            schema_errors(&v, &case["registry"])
        );
        assert_parser_faults(&name, &case);
    }
}

#[test]
fn schema_registry_prints_the_registry_schema_file() {
    let out = run(&["schema", "--registry"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let file = std::fs::read_to_string(root().join("config-schema/registry.schema.json")).unwrap();
    assert_eq!(text(&out.stdout), file);
    let plain = run(&["schema"]);
    let config =
        std::fs::read_to_string(root().join("config-schema/scopegate.schema.json")).unwrap();
    assert_eq!(text(&plain.stdout), config);
    for bad in [&["schema", "--registry=x"][..], &["schema", "registry"]] {
        let out = run(bad);
        assert_eq!(out.status.code(), Some(2), "{bad:?}");
        assert!(text(&out.stderr).starts_with("scopegate: "), "{bad:?}");
    }
}

/// A configuration whose keys and registry are fetched from URIs.
fn remote_config(unregistered: &str) -> String {
    let cfg = json!({
        "providers": [
            {"name": "corp", "issuer": "https://idp.example.com", "audiences": ["payments-api"],
             "jwks": {"uri": "https://idp.example.com/jwks", "cluster": "idp"}},
            {"name": "partner", "issuer": "https://partner.example.com",
             "jwks": {"uri": "https://partner.example.com/jwks", "cluster": "partner"}}
        ],
        "identities": {
            "registry": {"uri": "https://idp.example.com/registry.json", "cluster": "idp"},
            "unregistered": unregistered
        },
        "rules": [{"name": "read", "methods": ["GET"], "path": "/payments/**", "scopes": ["payments:read"]}]
    });
    let name = format!("remote-{unregistered}.json");
    tmp(&name, &cfg.to_string()).to_string_lossy().into_owned()
}

const GOOD_REGISTRY: &str = "config-schema/fixtures/registry/valid/every-member.json";

#[test]
fn check_config_validates_a_registry_document_against_the_configurations_providers() {
    let cfg = remote_config("deny");
    let out = run(&["check-config", "--registry", GOOD_REGISTRY, &cfg]);
    assert_eq!(
        (out.status.code(), text(&out.stdout)),
        (Some(0), format!("ok\n{GOOD_REGISTRY}: ok\n")),
        "{}",
        text(&out.stderr)
    );
    assert!(out.stderr.is_empty(), "{}", text(&out.stderr));

    let bad = path(tmp(
        "bad-registry.json",
        r#"{"identities": [{"client_id": "a", "provider": "nobody", "owner": "o"},
                           {"client_id": "b"},
                           {"client_id": "c", "owner": "o", "expires": "soon"}]}"#,
    ));
    let out = run(&["check-config", &cfg, "--registry", &bad]);
    assert_eq!(out.status.code(), Some(1));
    let lines: Vec<String> = text(&out.stdout).lines().map(String::from).collect();
    assert_eq!(lines.len(), 4, "{lines:?}");
    assert_eq!(lines[0], "ok");
    assert_eq!(
        lines[1],
        format!("{bad}: /identities/0/provider: no provider is named \"nobody\"")
    );
    assert!(
        lines[2].starts_with(&format!("{bad}: /identities/1: `owner` is required")),
        "{lines:?}"
    );
    assert!(
        lines[3].starts_with(&format!("{bad}: /identities/2/expires: ")),
        "{lines:?}"
    );
}

#[test]
fn check_config_reads_a_yaml_registry_and_reports_malformed_ones() {
    let cfg = remote_config("report");
    let yaml = path(tmp(
        "registry.yaml",
        "identities:\n  - client_id: billing-batch\n    provider: corp\n    owner: payments-team@example.com\n    expires: 2027-06-30T00:00:00Z\n    max_scopes: ['payments:read']\n",
    ));
    let out = run(&["check-config", "--registry", &yaml, &cfg]);
    assert_eq!(
        (out.status.code(), text(&out.stdout)),
        (Some(0), format!("ok\n{yaml}: ok\n")),
        "{}",
        text(&out.stderr)
    );
    for (name, contents, says) in [
        (
            "twice.yaml",
            "identities: []\nidentities: []\n",
            "member \"identities\" is given twice",
        ),
        ("broken.json", "{\"identities\": [", "not valid JSON"),
        (
            "two.yaml",
            "identities: []\n---\nidentities: []\n",
            "2 documents",
        ),
        ("empty.yaml", "", "empty"),
    ] {
        let file = path(tmp(name, contents));
        let out = run(&["check-config", "--registry", &file, &cfg]);
        assert_eq!(out.status.code(), Some(1), "{name}");
        let lines: Vec<String> = text(&out.stdout).lines().map(String::from).collect();
        assert_eq!(lines.len(), 2, "{name}: {lines:?}");
        assert_eq!(lines[0], "ok");
        assert!(lines[1].starts_with(&format!("{file}: ")), "{lines:?}");
        assert!(lines[1].contains(says), "{name}: {lines:?}");
    }
    let out = run(&["check-config", "--registry", "/nonexistent/r.json", &cfg]);
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out.stderr).starts_with("scopegate: cannot read /nonexistent/r.json"));
    assert!(out.stdout.is_empty());
}

#[test]
fn check_config_checks_the_registry_of_each_configuration_and_warns_when_unused() {
    // Two Kong plugins: one fetches its registry, one has it inline.
    let kong = path(tmp(
        "kong.yml",
        r#"_format_version: "3.0"
plugins:
  - name: scopegate
    config:
      providers: [{name: corp, issuer: "https://idp.example.com", jwks: {uri: "https://idp.example.com/jwks", cluster: "idp"}}]
      identities: {registry: {uri: "https://idp.example.com/registry.json", cluster: idp}}
  - name: scopegate
    config:
      providers: [{name: partner, issuer: "https://partner.example.com", jwks: {uri: "https://partner.example.com/jwks", cluster: "p"}}]
      identities: {registry: {inline: []}}
"#,
    ));
    let reg = path(tmp(
        "corp-only.json",
        r#"{"identities": [{"client_id": "a", "provider": "corp", "owner": "o"}]}"#,
    ));
    let out = run(&["check-config", "--registry", &reg, &kong]);
    let stdout = text(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{stdout}");
    assert_eq!(
        stdout,
        format!(
            "{kong}: plugins[0].config: ok\n{kong}: plugins[0].config: {reg}: ok\n\
             {kong}: plugins[1].config: ok\n{kong}: plugins[1].config: {reg}: /identities/0/provider: no provider is named \"corp\"\n"
        )
    );
    let stderr = text(&out.stderr);
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(
        stderr.starts_with(&format!("warning: {kong}: plugins[1].config: {reg}: ")),
        "{stderr}"
    );
    assert!(stderr.contains("inline"), "{stderr}");
}

#[test]
fn check_config_still_checks_the_registry_of_a_configuration_with_faults() {
    let cfg = path(tmp(
        "faulty.json",
        r#"{"providers": [{"name": "corp", "issuer": "https://idp.example.com", "jwks": {"uri": "https://idp.example.com/jwks"}}],
            "identities": {"registry": {"uri": "https://idp.example.com/registry.json"}}, "mode": "strict"}"#,
    ));
    let reg = path(tmp(
        "two-faults.json",
        r#"{"identities": [{"client_id": "a", "provider": "corp", "owner": "o"}, {"client_id": "a", "provider": "corp", "owner": "p"}]}"#,
    ));
    let out = run(&["check-config", "--registry", &reg, &cfg]);
    assert_eq!(out.status.code(), Some(1));
    let lines: Vec<String> = text(&out.stdout).lines().map(String::from).collect();
    assert_eq!(lines.len(), 2, "{lines:?}");
    assert!(lines[0].starts_with("/mode: "), "{lines:?}");
    assert_eq!(
        lines[1],
        format!("{reg}: /identities/1: client \"a\" of provider \"corp\" is registered twice (also at /identities/0)")
    );
}

/// `explain` of GET /payments/1 with a corp token, against `cfg`, with
/// `extra` arguments; the corp key set is given with --jwks.
fn explain(cfg: &str, token: &str, extra: &[&str]) -> (Option<i32>, Value, String) {
    common::explain_with_corp_jwks("", cfg, token, extra)
}

#[test]
fn explain_without_registry_gives_the_decision_before_the_registry_arrives() {
    let cfg = remote_config("deny");
    let t = mint(&["--client-id", "billing-batch", "--scope", "payments:read"]);
    let (code, v, stderr) = explain(&cfg, &t, &[]);
    assert_eq!(code, Some(0), "{stderr}");
    assert_eq!(v["decision"], "deny");
    assert_eq!(v["status"], 503);
    assert_eq!(v["reason"], "registry_unavailable");
    assert!(
        v["message"]
            .as_str()
            .unwrap_or("")
            .contains("--registry FILE"),
        "{v}"
    );
    assert!(v.as_object().unwrap().contains_key("registration"), "{v}");
    assert_eq!(v["registration"], Value::Null);
    assert_eq!(v["response"]["status"], 503);
    // Every member explain printed before the registry is still there.
    for member in [
        "decision",
        "status",
        "reason",
        "rule",
        "message",
        "provider",
        "identity",
        "headers",
        "removed_headers",
        "normalized_path",
        "forwarded_path",
        "mode",
        "enforced",
        "would_pass",
        "response",
        "response_if_enforced",
        "source",
    ] {
        assert!(v.get(member).is_some(), "{member}: {v}");
    }
}

#[test]
fn explain_uses_the_registry_document_for_a_fetched_registry() {
    let cfg = remote_config("deny");
    // Registered with a ceiling of payments:read: the extra scope is dropped.
    let t = mint(&[
        "--client-id",
        "billing-batch",
        "--scope",
        "payments:read payments:write",
    ]);
    let (code, v, stderr) = explain(&cfg, &t, &["--registry", GOOD_REGISTRY]);
    assert_eq!(code, Some(0), "{stderr}");
    assert_eq!(v["reason"], "allowed", "{v}");
    assert_eq!(
        v["registration"],
        json!({"registered": true, "owner": "payments-team@example.com", "scopes_dropped": ["payments:write"]})
    );
    assert_eq!(v["identity"]["scopes"], json!(["payments:read"]));

    // Registered without a ceiling problem: nothing dropped.
    let t = mint(&["--client-id", "billing-batch", "--scope", "payments:read"]);
    let (_, v, _) = explain(&cfg, &t, &["--registry", GOOD_REGISTRY]);
    assert_eq!(
        v["registration"],
        json!({"registered": true, "owner": "payments-team@example.com", "scopes_dropped": []})
    );

    // Not in the registry, `unregistered: deny`.
    let t = mint(&["--client-id", "stranger", "--scope", "payments:read"]);
    let (_, v, _) = explain(&cfg, &t, &["--registry", GOOD_REGISTRY]);
    assert_eq!(
        (v["status"].as_u64(), v["reason"].as_str()),
        (Some(403), Some("identity_unregistered"))
    );
    assert_eq!(v["registration"], json!({"registered": false}));

    // Same with `unregistered: report`: allowed, and said so.
    let report = remote_config("report");
    let (_, v, _) = explain(&report, &t, &["--registry", GOOD_REGISTRY]);
    assert_eq!(v["reason"], "allowed");
    assert_eq!(v["registration"], json!({"registered": false}));

    // A YAML document on standard input is read the same way.
    let out = common::run_with_stdin(
        &common::explain_get(&cfg, &t, NOW, &["--registry", "-"]),
        "identities:\n  - {client_id: stranger, owner: someone@example.com, status: disabled}\n",
    );
    let v: Value = serde_json::from_slice(&out.stdout).unwrap_or(Value::Null);
    // The keys are missing here: the token is not verified, so the registry
    // is not consulted.
    assert_eq!(v["reason"], "jwks_unavailable", "{}", text(&out.stderr));
    assert_eq!(v["registration"], Value::Null);
}

#[test]
fn explain_registration_is_null_without_a_registry() {
    let t = mint(&["--client-id", "billing-batch", "--scope", "payments:read"]);
    let out = run(&common::explain_get(
        "envoy-example/scopegate.json",
        &t,
        NOW,
        &[],
    ));
    let v: Value = serde_json::from_slice(&out.stdout).unwrap_or(Value::Null);
    assert_eq!(v["reason"], "allowed", "{}", text(&out.stderr));
    assert!(v.as_object().unwrap().contains_key("registration"));
    assert_eq!(v["registration"], Value::Null);
}

#[test]
fn explain_registry_usage_errors_exit_2_with_one_clear_line() {
    let t = mint(&["--client-id", "billing-batch"]);
    let inline = path(tmp(
        "inline.json",
        r#"{"providers": [{"name": "corp", "issuer": "https://idp.example.com", "jwks": {"uri": "https://idp.example.com/jwks", "cluster": "idp"}}],
            "identities": {"registry": {"inline": [{"client_id": "billing-batch", "owner": "o"}]}}}"#,
    ));
    let none = path(tmp(
        "none.json",
        r#"{"providers": [{"name": "corp", "issuer": "https://idp.example.com", "jwks": {"uri": "https://idp.example.com/jwks", "cluster": "idp"}}]}"#,
    ));
    let faulty = path(tmp(
        "faulty-registry.json",
        r#"{"identities": [{"client_id": "x", "provider": "nobody", "owner": "o"}]}"#,
    ));
    let remote = remote_config("deny");
    for (cfg, reg, says) in [
        (inline.as_str(), GOOD_REGISTRY, "inline"),
        (none.as_str(), GOOD_REGISTRY, "no identity registry"),
        (
            remote.as_str(),
            faulty.as_str(),
            "/identities/0/provider: no provider is named \"nobody\"",
        ),
        (remote.as_str(), "/nonexistent/r.json", "cannot read"),
    ] {
        let (code, v, stderr) = explain(cfg, &t, &["--registry", reg]);
        assert_eq!(code, Some(2), "{cfg} {reg}: {v}");
        assert_eq!(v, Value::Null);
        assert!(stderr.starts_with("scopegate: "), "{stderr}");
        assert!(stderr.contains(says), "{says}: {stderr}");
        assert!(!stderr.contains("panicked"), "{stderr}");
    }
}

#[test]
fn help_describes_the_registry_options() {
    for (cmd, must) in [
        ("explain", "503 registry_unavailable"),
        ("explain", "--registry FILE"),
        ("explain", "registration"),
        ("check-config", "--registry FILE"),
        ("schema", "--registry"),
    ] {
        let out = run(&[cmd, "--help"]);
        assert!(text(&out.stdout).contains(must), "{cmd}: {must}");
    }
    let out = run(&["--help"]);
    let usage = text(&out.stdout);
    assert!(usage.contains("scopegate schema [--registry]"), "{usage}");
    assert!(
        usage.contains("scopegate check-config [--registry FILE] [--revocation FILE] FILE..."),
        "{usage}"
    );
}
