//! The JSON Schema in config-schema/ describes exactly what the parser
//! accepts: every fixture and every example gets the same verdict from both,
//! and rejected fixtures fail with the JSON paths they name.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use scopegate::policy::config;
use serde_json::Value;
use std::path::{Path, PathBuf};

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn schema() -> jsonschema::Validator {
    let text = std::fs::read_to_string(root().join("config-schema/scopegate.schema.json")).unwrap();
    let schema: Value = serde_json::from_str(&text).unwrap();
    jsonschema::draft4::new(&schema).expect("schema compiles as draft-04")
}

fn fixtures(dir: &str) -> Vec<(String, Value)> {
    let mut out: Vec<(String, Value)> =
        std::fs::read_dir(root().join("config-schema/fixtures").join(dir))
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

fn parser_errors(doc: &Value) -> Vec<String> {
    match config::parse_value(doc) {
        Ok(_) => Vec::new(),
        Err(e) => e.iter().map(ToString::to_string).collect(),
    }
}

fn assert_expected_errors(name: &str, case: &Value) {
    let got = parser_errors(&case["config"]);
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
fn valid_fixtures_pass_schema_and_parser() {
    let v = schema();
    for (name, doc) in fixtures("valid") {
        assert!(
            v.is_valid(&doc),
            "{name}: schema refused: {:?}",
            v.iter_errors(&doc)
                .map(|e| e.to_string())
                .collect::<Vec<_>>()
        );
        assert_eq!(parser_errors(&doc), Vec::<String>::new(), "{name}");
    }
}

#[test]
fn invalid_fixtures_fail_schema_and_parser_with_their_paths() {
    let v = schema();
    for (name, case) in fixtures("invalid") {
        assert!(!v.is_valid(&case["config"]), "{name}: schema accepted it");
        assert_expected_errors(&name, &case);
    }
}

#[test]
fn cross_checks_beyond_draft4_are_the_parsers_alone() {
    let v = schema();
    for (name, case) in fixtures("semantic") {
        assert!(
            v.is_valid(&case["config"]),
            "{name}: the schema should accept it (only the parser can check this)"
        );
        assert_expected_errors(&name, &case);
    }
}

/// The filter configuration embedded in envoy-example/envoy.yaml.
fn embedded_config(yaml: &str) -> Value {
    let start = yaml.find("value: |").expect("configuration block") + "value: |".len();
    let block: Vec<&str> = yaml[start..]
        .lines()
        .skip(1)
        .take_while(|l| l.is_empty() || l.starts_with("                    "))
        .collect();
    serde_json::from_str(&block.join("\n")).expect("embedded configuration is JSON")
}

#[test]
fn example_configurations_are_valid_and_in_sync() {
    let v = schema();
    let json: Value = serde_json::from_str(
        &std::fs::read_to_string(root().join("envoy-example/scopegate.json")).unwrap(),
    )
    .unwrap();
    let yaml = std::fs::read_to_string(root().join("envoy-example/envoy.yaml")).unwrap();
    let embedded = embedded_config(&yaml);
    assert_eq!(json, embedded, "envoy.yaml embeds scopegate.json");
    for doc in [&json, &embedded] {
        assert!(v.is_valid(doc));
        assert_eq!(parser_errors(doc), Vec::<String>::new());
    }
}

#[test]
fn schema_defaults_match_the_parser() {
    let text = std::fs::read_to_string(root().join("config-schema/scopegate.schema.json")).unwrap();
    let s: Value = serde_json::from_str(&text).unwrap();
    let minimal = &fixtures("valid")
        .into_iter()
        .find(|(n, _)| n == "minimal.json")
        .unwrap()
        .1;
    let c = config::parse_value(minimal).unwrap();
    let props = &s["properties"];
    assert_eq!(props["default_action"]["default"], "deny");
    assert_eq!(c.default_action, config::DefaultAction::Deny);
    assert_eq!(props["mode"]["default"], "enforce");
    assert_eq!(c.mode, config::Mode::Enforce);
    assert_eq!(props["audit_log"]["default"], "denied");
    assert_eq!(c.audit_log, config::AuditLog::Denied);
    assert_eq!(props["forward_token"]["default"], true);
    assert!(c.forward_token);
    assert_eq!(props["realm"]["default"], config::DEFAULT_REALM);
    assert_eq!(props["max_token_bytes"]["default"], c.max_token_bytes);
    assert_eq!(props["token_cache_size"]["default"], c.token_cache_size);
    assert_eq!(c.realm, config::DEFAULT_REALM);
    assert_eq!(s["properties"]["error_detail"]["default"], "minimal");
    assert_eq!(c.error_detail, config::ErrorDetail::Minimal);
    let p = &c.providers[0];
    assert_eq!(
        s["definitions"]["provider"]["properties"]["clock_skew_s"]["default"],
        p.clock_skew_s
    );
    let config::KeySource::Remote(r) = &p.keys else {
        panic!("remote keys")
    };
    let uri = &s["definitions"]["jwks"]["properties"];
    assert_eq!(uri["refresh_interval_s"]["default"], r.refresh_interval_s);
    assert_eq!(uri["timeout_ms"]["default"], r.timeout_ms);
}
