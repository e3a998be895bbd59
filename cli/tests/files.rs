//! `check-config` and `explain` on the files configurations are deployed in:
//! every Scopegate configuration found, named by where it is, checked alone.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod common;

use common::{mint, run, run_with_stdin, text, tmp, NOW};
use serde_json::{json, Value};

/// A valid configuration with inline keys, as JSON.
fn config() -> Value {
    let doc: Value = serde_json::from_str(
        &std::fs::read_to_string(common::root().join("envoy-example/scopegate.json")).unwrap(),
    )
    .unwrap();
    doc
}

fn broken() -> Value {
    let mut c = config();
    c["rules"][1]["scopes"] = json!("payments:read");
    c
}

fn check(name: &str, contents: &str) -> (i32, String, String) {
    let p = tmp(name, contents);
    let out = run(&["check-config", p.to_str().unwrap()]);
    (
        out.status.code().unwrap_or(-1),
        text(&out.stdout),
        text(&out.stderr),
    )
}

fn yaml(v: &Value) -> String {
    serde_yaml::to_string(v).unwrap()
}

#[test]
fn kong_filters_and_plugins_are_found_at_every_level_and_reported_one_by_one() {
    let doc = json!({
        "_format_version": "3.0",
        "services": [{
            "name": "payments", "url": "http://p",
            "filter_chains": [{"filters": [{"name": "other-filter", "config": "anything"}, {"name": "scopegate", "config": config()}]}],
            "routes": [{"name": "r", "paths": ["/"], "plugins": [{"name": "scopegate", "config": broken()}]}]
        }],
        "plugins": [{"name": "rate-limiting", "config": {"minute": 5}}]
    });
    let (code, out, err) = check("kong.yml", &yaml(&doc));
    assert_eq!(code, 1, "{out}{err}");
    let name = tmp("kong.yml", &yaml(&doc)).to_str().unwrap().to_string();
    assert_eq!(
        out.lines().collect::<Vec<_>>(),
        [
            format!("{name}: services[0].filter_chains[0].filters[1].config: ok"),
            format!("{name}: services[0].routes[0].plugins[0].config: /rules/1/scopes: expected an array of strings"),
        ]
    );
}

#[test]
fn kong_admin_api_bodies_are_read_with_config_as_an_object_or_a_json_string() {
    // Kong 3.4 writes a filter's `config` as a JSON string.
    let as_string = config().to_string();
    for (name, body) in [
        (
            "plugin.json",
            json!({"name": "scopegate", "config": config()}),
        ),
        (
            "plugin34.json",
            json!({"name": "scopegate", "config": as_string}),
        ),
        (
            "chain.json",
            json!({"name": "c", "filters": [{"name": "scopegate", "config": as_string}]}),
        ),
    ] {
        let (code, out, err) = check(name, &body.to_string());
        assert_eq!(code, 0, "{name}: {out}{err}");
        assert!(out.ends_with("config: ok\n"), "{name}: {out}");
    }
    let (code, out, _) = check(
        "bad34.json",
        &json!({"name": "scopegate", "config": "{\"providers\": "}).to_string(),
    );
    assert_eq!(code, 1);
    assert!(out.contains(": config: /: not valid JSON"), "{out}");
}

fn wasm_filter(name: &str, filename: &str, configuration: &str) -> Value {
    json!({
        "name": name,
        "typed_config": {
            "@type": "type.googleapis.com/envoy.extensions.filters.http.wasm.v3.Wasm",
            "config": {
                "vm_config": {"runtime": "envoy.wasm.runtime.v8", "code": {"local": {"filename": filename}}},
                "configuration": {"@type": "type.googleapis.com/google.protobuf.StringValue", "value": configuration}
            }
        }
    })
}

#[test]
fn envoy_bootstraps_and_ecds_resources_in_json_are_read_and_other_wasm_filters_ignored() {
    let bootstrap = json!({"static_resources": {"listeners": [{"name": "l", "filter_chains": [{"filters": [{
        "name": "envoy.filters.network.http_connection_manager",
        "typed_config": {"http_filters": [
            wasm_filter("other", "/etc/envoy/other.wasm", "not json at all"),
            wasm_filter("authz", "/etc/envoy/scopegate.wasm", &config().to_string()),
            {"name": "envoy.filters.http.router"}
        ]}
    }]}]}]}});
    let (code, out, err) = check("bootstrap.json", &bootstrap.to_string());
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.ends_with(": static_resources.listeners[0].filter_chains[0].filters[0].typed_config.http_filters[1].typed_config.config.configuration.value: ok\n"), "{out}");
    assert_eq!(out.lines().count(), 1, "{out}");

    let mut resource = wasm_filter("scopegate", "x.wasm", &broken().to_string());
    resource["@type"] = json!("type.googleapis.com/envoy.config.core.v3.TypedExtensionConfig");
    let ecds = json!({"version_info": "2", "resources": [resource]});
    let (code, out, _) = check("ecds.json", &ecds.to_string());
    assert_eq!(code, 1);
    assert!(out.contains(": resources[0].typed_config.config.configuration.value: /rules/1/scopes: expected an array of strings"), "{out}");
}

#[test]
fn a_scopegate_wasm_filter_without_configuration_fails() {
    let mut f = wasm_filter("scopegate", "scopegate.wasm", "{}");
    f["typed_config"]["config"]
        .as_object_mut()
        .unwrap()
        .remove("configuration");
    let (code, out, _) = check("noconf.yaml", &yaml(&json!({"resources": [f]})));
    assert_eq!(code, 1);
    assert!(
        out.contains("resources[0].typed_config.config: no `configuration`"),
        "{out}"
    );
}

#[test]
fn istio_traffic_extension_and_envoy_gateway_policies_are_read_in_one_stream() {
    let stream = format!(
        "{}---\n{}---\n{}",
        yaml(&json!({"apiVersion": "v1", "kind": "Service", "metadata": {"name": "payments"}})),
        yaml(
            &json!({"apiVersion": "extensions.istio.io/v1alpha1", "kind": "TrafficExtension",
            "metadata": {"name": "authz"},
            "spec": {"wasm": {"url": "oci://r/scopegate:1", "pluginConfig": config()}}})
        ),
        yaml(
            &json!({"apiVersion": "gateway.envoyproxy.io/v1alpha1", "kind": "EnvoyExtensionPolicy",
            "metadata": {"name": "p"},
            "spec": {"wasm": [
                {"name": "other", "code": {"type": "Image", "image": {"url": "r/other:1"}}, "config": {"x": 1}},
                {"name": "scopegate", "code": {"type": "Image", "image": {"url": "r/sg:1"}}, "config": config().to_string()}
            ]}})
        ),
    );
    let (code, out, err) = check("stream.yaml", &stream);
    assert_eq!(code, 0, "{out}{err}");
    let wheres: Vec<&str> = out.lines().map(|l| l.split_once(": ").unwrap().1).collect();
    assert_eq!(
        wheres,
        [
            "document 2: spec.wasm.pluginConfig: ok",
            "document 3: spec.wasm[1].config: ok"
        ]
    );
}

#[test]
fn a_file_without_scopegate_in_it_is_an_input_error() {
    let (code, out, err) = check(
        "plain-kong.yml",
        "_format_version: '3.0'\nservices:\n- name: a\n  url: http://a\n",
    );
    assert_eq!(code, 2, "{out}");
    assert!(
        err.starts_with("scopegate: ") && err.contains("no Scopegate configuration found"),
        "{err}"
    );
}

#[test]
fn a_dash_reads_standard_input_as_json_or_yaml() {
    let out = run_with_stdin(&["check-config", "-"], &config().to_string());
    assert_eq!(
        (out.status.code(), text(&out.stdout)),
        (Some(0), "ok\n".into())
    );
    let kong = yaml(
        &json!({"services": [{"name": "s", "plugins": [{"name": "scopegate", "config": broken()}]}]}),
    );
    let out = run_with_stdin(&["check-config", "-"], &kong);
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(
        text(&out.stdout),
        "<stdin>: services[0].plugins[0].config: /rules/1/scopes: expected an array of strings\n"
    );
}

#[test]
fn yaml_duplicate_members_are_refused_with_their_path_at_any_depth_and_in_any_wrapper() {
    let cases = [
        ("top.yaml", "providers: []\nmode: enforce\nmode: dry_run\n", "/mode: member \"mode\" is given twice"),
        (
            "nested.yaml",
            "providers:\n- name: a\n  issuer: https://a\n  issuer: https://b\n",
            "/providers/0/issuer: member \"issuer\" is given twice",
        ),
        (
            "kong-dup.yml",
            "services:\n- name: s\n  filter_chains:\n  - filters:\n    - name: scopegate\n      config:\n        rules: []\n        default_action: deny\n        rules: []\n",
            "/services/0/filter_chains/0/filters/0/config/rules: member \"rules\" is given twice",
        ),
        (
            "istio-dup.yaml",
            "apiVersion: extensions.istio.io/v1alpha1\nkind: WasmPlugin\nmetadata: {name: scopegate}\nspec:\n  pluginConfig:\n    mode: enforce\n    audit_log: all\n    mode: dry_run\n",
            "/spec/pluginConfig/mode: member \"mode\" is given twice",
        ),
    ];
    for (name, contents, want) in cases {
        let (code, out, err) = check(name, contents);
        assert_eq!(code, 1, "{name}: {out}{err}");
        assert!(
            out.contains("not valid YAML: ") && out.contains(want),
            "{name}: {out}"
        );
    }
}

#[test]
fn a_json_file_that_does_not_parse_gets_the_json_error_with_line_and_column() {
    for (name, contents) in [
        ("broken.json", "{\n  \"providers\": [\n}\n"),
        // YAML would take this; a .json file is JSON.
        ("flow.json", "providers: []\n"),
        // no extension: content opening with `{` is JSON
        ("broken", "{\"rules\": [] \"mode\": 1}"),
        ("dup.json", "{\"mode\": \"enforce\", \"mode\": \"dry_run\"}"),
    ] {
        let (code, out, _) = check(name, contents);
        assert_eq!(code, 1, "{name}");
        assert!(out.contains(": not valid JSON: "), "{name}: {out}");
        assert!(
            out.contains(" at line ") && out.contains(" column "),
            "{name}: {out}"
        );
        assert!(!out.contains("YAML"), "{name}: {out}");
    }
}

#[test]
fn check_config_warns_about_unreachable_rules_and_default_clusters_but_exits_0() {
    let doc = json!({
        "providers": [{"name": "corp", "issuer": "https://idp.example.com", "jwks": {"uri": "https://idp.example.com/jwks"}}],
        "rules": [
            {"name": "all", "methods": ["GET", "HEAD"], "path": "/payments/**", "scopes": ["payments:read"]},
            {"name": "one", "methods": ["GET"], "path": "/payments/{id}", "scopes": ["payments:admin"]},
            {"name": "write", "methods": ["POST"], "path": "/payments/{id}", "scopes": ["payments:write"]}
        ]
    });
    let (code, out, err) = check("lint.json", &doc.to_string());
    assert_eq!((code, out.as_str()), (0, "ok\n"), "{err}");
    let lines: Vec<&str> = err.lines().collect();
    assert_eq!(lines.len(), 2, "{err}");
    assert!(lines[0].starts_with("warning: /rules/1: rule \"one\" (GET /payments/{id}) can never match: rule \"all\" at /rules/0"), "{err}");
    assert!(
        lines[1].starts_with("warning: /providers/0/jwks: `uri` without `cluster`"),
        "{err}"
    );
    assert!(lines[1].contains("\"idp.example.com\""), "{err}");
}

#[test]
fn explain_reads_a_gateway_file_and_needs_select_when_it_holds_several() {
    let kong = yaml(&json!({"services": [
        {"name": "a", "plugins": [{"name": "scopegate", "config": config()}]},
        {"name": "b", "plugins": [{"name": "scopegate", "config": {"providers": config()["providers"], "default_action": "allow", "mode": "dry_run"}}]}
    ]}));
    let file = tmp("two.yml", &kong);
    let file = file.to_str().unwrap();
    let base = [
        "explain",
        "--config",
        file,
        "--method",
        "GET",
        "--path",
        "/elsewhere",
        "--now",
        NOW,
    ];
    let out = run(&base);
    assert_eq!(out.status.code(), Some(2));
    let err = text(&out.stderr);
    assert!(
        err.contains("holds 2 Scopegate configurations; choose one with --select"),
        "{err}"
    );
    assert!(
        err.contains("\n  services[0].plugins[0].config\n  services[1].plugins[0].config"),
        "{err}"
    );

    for (select, reason) in [
        ("services[0]", "route_not_allowed"),
        ("/services/1/plugins/0/config", "public_route"),
    ] {
        let mut args = base.to_vec();
        args.extend(["--select", select]);
        let out = run(&args);
        assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
        let v: Value = serde_json::from_slice(&out.stdout).unwrap();
        assert_eq!(v["reason"], reason, "{select}");
        assert_eq!(v["source"]["file"], file);
    }
    let mut args = base.to_vec();
    args.extend(["--select", "services[2]"]);
    let out = run(&args);
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out.stderr).contains("--select services[2]: no Scopegate configuration"));
}

#[test]
fn explain_uses_the_single_configuration_of_an_envoy_bootstrap() {
    let t = mint(&["--scope", "payments:read"]);
    let out = run(&common::explain_get(
        "envoy-example/envoy.yaml",
        &t,
        NOW,
        &[],
    ));
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["reason"], "allowed");
    assert_eq!(
        v["source"]["where"],
        "static_resources.listeners[0].filter_chains[0].filters[0].typed_config.http_filters[0].typed_config.config.configuration.value"
    );
}
