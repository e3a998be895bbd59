//! `scopegate report`: inventory and audit lines from Envoy, Kong (nginx)
//! and plain JSON-lines logs, plain or gzip, files or standard input, added
//! up per identity, with the findings of docs/report.md. The example under
//! tests/report/ is the one the browser test and the README screenshot use.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod common;

use common::{path_text, run, run_with_stdin, text};
use serde_json::Value;
use std::io::Write;

const NOW: &str = "2026-12-10T00:00:00Z";
const CONFIG: &str = "tests/report/example-config.yaml";
const REGISTRY: &str = "tests/report/example-registry.json";
const ENVOY: &str = "tests/report/example-envoy.log";
const KONG: &str = "tests/report/example-kong-error.log";

fn tmp(name: &str, contents: &str) -> String {
    path_text(common::own_file("report-", name, contents))
}

/// The JSON report of `args` (after `report --format json --now NOW`).
fn json_report(args: &[&str]) -> Value {
    json_at(NOW, args)
}

fn json_at(now: &str, args: &[&str]) -> Value {
    let mut all = vec!["report", "--format", "json", "--now", now];
    all.extend_from_slice(args);
    let out = run(&all);
    assert!(
        out.status.success(),
        "{args:?}: {}{}",
        text(&out.stdout),
        text(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("the report is JSON")
}

fn example() -> Value {
    json_report(&["--config", CONFIG, "--registry", REGISTRY, ENVOY, KONG])
}

fn identity<'a>(r: &'a Value, provider: &str, client_id: &str) -> &'a Value {
    r["identities"]
        .as_array()
        .unwrap()
        .iter()
        .find(|i| i["provider"] == provider && i["client_id"] == client_id)
        .unwrap_or_else(|| panic!("{provider}/{client_id} not in the report"))
}

fn client_ids(list: &Value) -> Vec<&str> {
    list.as_array()
        .unwrap()
        .iter()
        .map(|i| i["client_id"].as_str().unwrap())
        .collect()
}

fn strings(v: &Value) -> Vec<&str> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|s| s.as_str().unwrap())
        .collect()
}

#[test]
fn every_identity_seen_is_listed_with_its_counts_owner_and_registration() {
    let r = example();
    let ids: Vec<(&str, &str)> = r["identities"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| {
            (
                i["provider"].as_str().unwrap(),
                i["client_id"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        ids,
        [
            ("corp", "billing-svc"),
            ("corp", "inventory-sync"),
            ("corp", "mystery-client"),
            ("partner", "<img src=x onerror=alert(1)>"),
            ("partner", "reports-bot"),
        ]
    );
    let billing = identity(&r, "corp", "billing-svc");
    assert_eq!(billing["owner"], "team-billing");
    assert_eq!(billing["registered"], true);
    assert_eq!(billing["requests"], 960);
    assert_eq!(billing["allowed"], 936);
    assert_eq!(billing["denied"]["insufficient_scope"], 24);
    assert_eq!(billing["rules"]["orders-write"], 120);
    assert_eq!(billing["first_seen"], "2026-12-07T10:00:03Z");
    let mystery = identity(&r, "corp", "mystery-client");
    assert_eq!(mystery["registered"], false);
    assert_eq!(mystery["owner"], Value::Null);
    assert_eq!(mystery["requests"], 9);
    let s = &r["summary"];
    assert_eq!(s["identities"], 5);
    assert_eq!(s["with_owner"], 3);
    assert_eq!(s["with_owner_share"], 0.6);
    assert_eq!(s["with_unused_scopes"], 3);
    assert_eq!(s["dormant"], 2);
    assert_eq!(s["lines"]["read"], 33);
    assert_eq!(s["lines"]["skipped"], 3);
}

#[test]
fn least_privilege_lists_unused_scopes_and_the_narrowed_set_to_request() {
    let r = example();
    let lp = &r["findings"]["least_privilege"];
    assert_eq!(
        client_ids(lp),
        [
            "billing-svc",
            "mystery-client",
            "<img src=x onerror=alert(1)>"
        ]
    );
    assert_eq!(strings(&lp[0]["scopes_unused"]), ["admin"]);
    assert_eq!(
        strings(&lp[0]["request_scopes"]),
        ["orders:read", "orders:write"]
    );
    // From audit lines: an allowed request exercises what its rule requires.
    assert_eq!(strings(&lp[1]["scopes_unused"]), ["debug:all"]);
    assert_eq!(strings(&lp[1]["request_scopes"]), ["orders:read"]);
    assert_eq!(lp[1]["exercised_complete"], true);
}

#[test]
fn exercised_scopes_of_audit_lines_need_the_configuration_to_be_complete() {
    let r = json_report(&[KONG]);
    let m = identity(&r, "corp", "mystery-client");
    assert_eq!(m["scopes_exercised"], serde_json::json!([]));
    assert_eq!(m["exercised_complete"], false);
    // An `any_scopes` rule exercises the listed scopes the caller presented.
    let with = json_report(&["--config", CONFIG, KONG]);
    let bot = identity(&with, "partner", "reports-bot");
    assert_eq!(strings(&bot["scopes_exercised"]), ["billing:read"]);
    assert_eq!(bot["scopes_unused"], serde_json::json!([]));
}

#[test]
fn registered_identities_not_seen_for_unused_days_are_dormant() {
    let r = example();
    let dormant = &r["findings"]["dormant"];
    // Disabled entries are already offboarded; active ones never seen are listed.
    assert_eq!(client_ids(dormant), ["old-batch", "legacy-export"]);
    assert_eq!(dormant[0]["provider"], Value::Null);
    assert_eq!(dormant[0]["last_seen"], Value::Null);
    let later = |days: &str| {
        json_at(
            "2027-01-20T00:00:00Z",
            &["--unused-days", days, "--registry", REGISTRY, ENVOY, KONG],
        )
    };
    let r = later("30");
    let d = &r["findings"]["dormant"];
    assert_eq!(
        client_ids(d),
        [
            "old-batch",
            "billing-svc",
            "inventory-sync",
            "legacy-export",
            "reports-bot"
        ]
    );
    assert_eq!(d[1]["days_since_seen"], 43);
    assert_eq!(d[1]["last_seen"], "2026-12-07T15:01:57Z");
    assert_eq!(
        client_ids(&later("60")["findings"]["dormant"]),
        ["old-batch", "legacy-export"]
    );
}

#[test]
fn registered_identities_past_or_near_expiry_are_reported() {
    let r = example();
    let e = &r["findings"]["expiring"];
    assert_eq!(client_ids(e), ["old-batch", "inventory-sync"]);
    assert_eq!(e[0]["expired"], true);
    assert_eq!(e[0]["days_left"], -9);
    assert_eq!(e[1]["expired"], false);
    assert_eq!(e[1]["days_left"], 5);
    assert_eq!(e[1]["owner"], "team-warehouse");
}

#[test]
fn unregistered_identities_come_from_the_registry_or_else_the_lines() {
    let r = example();
    assert_eq!(
        client_ids(&r["findings"]["unregistered"]),
        ["mystery-client", "<img src=x onerror=alert(1)>"]
    );
    // Without a registry, what the filter wrote (`registered: false`).
    let lines_only = json_report(&[ENVOY, KONG]);
    assert_eq!(
        client_ids(&lines_only["findings"]["unregistered"]),
        ["mystery-client", "<img src=x onerror=alert(1)>"]
    );
    assert_eq!(lines_only["findings"]["dormant"], Value::Null);
    assert_eq!(lines_only["summary"]["dormant"], Value::Null);
}

#[test]
fn tokens_longer_lived_than_the_provider_allows_are_reported() {
    let r = example();
    let l = &r["findings"]["long_lived_tokens"];
    assert_eq!(client_ids(l), ["billing-svc"]);
    assert_eq!(l[0]["max_token_lifetime_s"], 7200);
    assert_eq!(l[0]["max_lifetime_s"], 3600);
    assert_eq!(
        json_report(&[ENVOY])["findings"]["long_lived_tokens"],
        Value::Null
    );
}

#[test]
fn rules_never_matched_and_scopes_no_rule_requires_are_reported() {
    let r = example();
    assert_eq!(
        strings(&r["findings"]["unused_rules"]),
        ["admin", "health", "reports"]
    );
    let u = &r["findings"]["unrequired_scopes"];
    assert_eq!(u[0]["scope"], "debug:all");
    assert_eq!(u[0]["identities"], 1);
    assert_eq!(u[1]["scope"], "legacy:export");
    assert_eq!(u[1]["registry_entries"], 1);
    assert_eq!(u.as_array().unwrap().len(), 2);
}

#[test]
fn overflow_lines_count_in_the_summary_not_per_identity() {
    let r = example();
    let o = &r["summary"]["overflow"];
    assert_eq!(o["lines"], 1);
    assert_eq!(o["identities_max"], 3);
    assert_eq!(o["requests"], 12);
    assert_eq!(o["denied"]["token_expired"], 2);
    assert_eq!(r["identities"].as_array().unwrap().len(), 5);
    // The summary's requests are every request: identities, without one, overflow.
    let per_identity: u64 = r["identities"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["requests"].as_u64().unwrap())
        .sum();
    assert_eq!(
        r["summary"]["requests"].as_u64().unwrap(),
        per_identity + 2 + 12
    );
}

#[test]
fn audit_lines_without_an_identity_count_their_denials_by_reason() {
    let r = example();
    let w = &r["summary"]["without_identity"];
    assert_eq!(w["requests"], 2);
    assert_eq!(w["denied"]["token_missing"], 1);
    assert_eq!(w["denied"]["signature_invalid"], 1);
}

const INVENTORY: &str = r#"{"inventory":"scopegate","version":1,"window_start":"2026-12-07T10:00:00Z","window_end":"2026-12-07T10:01:00Z","provider":"corp","client_id":"a","subject":null,"first_seen":"2026-12-07T10:00:03Z","last_seen":"2026-12-07T10:00:40Z","requests":1,"allowed":1,"denied":{},"rules":{"r":1},"scopes_presented":["x"],"scopes_exercised":["x"],"max_token_lifetime_s":null,"max_token_age_s":null,"registered":null,"owner":null}"#;

fn audit(extra: &str) -> String {
    format!(
        r#"{{"audit":"scopegate","time":"2026-12-07T10:00:20Z","decision":"allow","reason":"allowed","message":"","rule":"r","provider":"corp","subject":null,"client_id":"a","scopes":["x","y"],"jti":null,"method":"GET","path":"/","source":null,"mode":"enforce"{extra}}}"#
    )
}

#[test]
fn an_audit_line_marked_inventoried_is_not_counted_again() {
    let both = tmp(
        "dedupe.log",
        &format!("{INVENTORY}\n{}\n", audit(r#","inventoried":true"#)),
    );
    let r = json_report(&[&both]);
    let a = identity(&r, "corp", "a");
    assert_eq!(a["requests"], 1);
    // Not even its scopes: the inventory line says what the request presented.
    assert_eq!(strings(&a["scopes_granted"]), ["x"]);
    assert_eq!(r["summary"]["lines"]["audit_inventoried"], 1);
    // Without the mark, an audit line is a request of its own.
    let unmarked = tmp("unmarked.log", &format!("{INVENTORY}\n{}\n", audit("")));
    let r = json_report(&[&unmarked]);
    assert_eq!(identity(&r, "corp", "a")["requests"], 2);
    assert_eq!(r["summary"]["lines"]["audit"], 1);
}

#[test]
fn envoy_prefixed_nginx_suffixed_and_plain_lines_are_read_and_others_skipped() {
    let log = tmp(
        "mixed.log",
        &format!(
            "[2026-12-07 10:00:41.1][17][info][wasm] [source/extensions/common/wasm/context.cc:1195] wasm log scopegate_filter scopegate: {INVENTORY}\n\
             2026/12/07 10:00:42 [info] 1#0: *5 [proxy-wasm][\"scopegate\" #1] {}, client: 10.0.0.1, server: kong, request: \"GET / HTTP/1.1\"\r\n\
             {}\n\
             [2026-12-07 10:00:43.0][1][info][main] an unrelated line with {{\"json\": true}}\n\
             \n\
             {{\"audit\":\"scopegate\",\"time\":\"2026-12-07T10:00:44Z\",\"decision\":\"al",
            audit(""),
            audit("").replace(r#""client_id":"a""#, r#""client_id":"b\"q""#),
        ),
    );
    let out = run(&["report", "--format", "json", "--now", NOW, &log]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(
        text(&out.stderr).contains("warning: not a readable inventory or audit object: line 6"),
        "{}",
        text(&out.stderr)
    );
    let r: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(identity(&r, "corp", "a")["requests"], 2);
    assert_eq!(identity(&r, "corp", "b\"q")["requests"], 1);
    let lines = &r["summary"]["lines"];
    assert_eq!(lines["read"], 6);
    assert_eq!(lines["inventory"], 1);
    assert_eq!(lines["audit"], 2);
    assert_eq!(lines["skipped"], 2);
    assert_eq!(lines["malformed"], 1);
}

fn gzip(data: &[u8]) -> Vec<u8> {
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    e.write_all(data).unwrap();
    e.finish().unwrap()
}

#[test]
fn gzip_logs_are_read_by_their_magic_bytes_whatever_their_name() {
    // Two members, as `cat a.gz b.gz` and some log rotators write.
    let mut bytes = gzip(format!("{INVENTORY}\n").as_bytes());
    bytes.extend(gzip(format!("{}\n", audit("")).as_bytes()));
    let path = common::own_file("report-", "rotated.log.1", "");
    std::fs::write(&path, bytes).unwrap();
    let r = json_report(&[&path_text(path)]);
    assert_eq!(identity(&r, "corp", "a")["requests"], 2);
}

#[test]
fn standard_input_is_read_with_a_dash() {
    let gz = gzip(format!("{INVENTORY}\n").as_bytes());
    let plain = run_with_stdin(
        &["report", "--format", "json", "--now", NOW, "-", KONG],
        &format!("{INVENTORY}\n"),
    );
    assert!(plain.status.success(), "{}", text(&plain.stderr));
    let r: Value = serde_json::from_slice(&plain.stdout).unwrap();
    assert_eq!(identity(&r, "corp", "a")["requests"], 1);
    assert_eq!(strings(&r["report"]["inputs"]), ["-", KONG]);
    // Compressed standard input too (`zcat` not needed).
    let mut child = std::process::Command::new(common::bin())
        .args(["report", "--format", "json", "--now", NOW, "-"])
        .current_dir(common::root())
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(&gz).unwrap();
    let out = child.wait_with_output().unwrap();
    let r: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(identity(&r, "corp", "a")["requests"], 1);
    let twice = run(&["report", "-", "-"]);
    assert_eq!(twice.status.code(), Some(2));
}

#[test]
fn since_ignores_older_lines() {
    let r = json_report(&["--since", "2026-12-07T13:00:00Z", ENVOY, KONG]);
    let billing = identity(&r, "corp", "billing-svc");
    assert_eq!(billing["first_seen"], "2026-12-07T13:00:03Z");
    assert_eq!(billing["requests"], 2 * 85 + 5 + 2 * 100 + 5 + 2 * 115 + 5);
    assert!(r["identities"]
        .as_array()
        .unwrap()
        .iter()
        .all(|i| i["client_id"] != "reports-bot"));
    assert_eq!(r["report"]["since"], "2026-12-07T13:00:00Z");
    assert!(r["summary"]["lines"]["before_since"].as_u64().unwrap() > 0);
    assert_eq!(r["summary"]["first_seen"], "2026-12-07T13:00:00Z");
}

#[test]
fn json_is_deterministic_and_sorted_whatever_the_order_of_the_logs() {
    let args = ["--config", CONFIG, "--registry", REGISTRY, ENVOY, KONG];
    let mut all = vec!["report", "--format", "json", "--now", NOW];
    all.extend_from_slice(&args);
    let first = run(&all).stdout;
    assert_eq!(first, run(&all).stdout, "the same logs give the same bytes");
    let mut a: Value = serde_json::from_slice(&first).unwrap();
    let mut b = json_report(&["--config", CONFIG, "--registry", REGISTRY, KONG, ENVOY]);
    a["report"]["inputs"] = Value::Null;
    b["report"]["inputs"] = Value::Null;
    assert_eq!(a, b);
    // The documented top-level members, in their documented order.
    let keys: Vec<&String> = a.as_object().unwrap().keys().collect();
    assert_eq!(
        keys,
        ["findings", "identities", "report", "summary", "timeline"]
    );
    let text = String::from_utf8(first).unwrap();
    let at = |k: &str| text.find(&format!("\n  \"{k}\"")).unwrap();
    assert!(at("report") < at("summary") && at("summary") < at("identities"));
    assert!(at("identities") < at("findings") && at("findings") < at("timeline"));
}

#[test]
fn the_timeline_holds_every_request_of_every_identity() {
    let r = example();
    let t = &r["timeline"];
    assert_eq!(t["bucket_s"], 900);
    assert_eq!(t["from"], "2026-12-07T10:00:00Z");
    let buckets = t["buckets"].as_u64().unwrap() as usize;
    for i in r["identities"].as_array().unwrap() {
        let activity = i["activity"].as_array().unwrap();
        assert_eq!(activity.len(), buckets);
        let sum: u64 = activity.iter().map(|n| n.as_u64().unwrap()).sum();
        assert_eq!(sum, i["requests"].as_u64().unwrap(), "{}", i["client_id"]);
    }
}

#[test]
fn html_is_one_page_without_requests_and_escapes_names_from_the_logs() {
    let out = run(&[
        "report", "--format", "html", "--now", NOW, "--config", CONFIG, ENVOY, KONG,
    ]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let html = text(&out.stdout);
    assert!(html.starts_with("<!DOCTYPE html>"));
    assert!(html.contains("Content-Security-Policy\" content=\"default-src 'none'"));
    assert!(!html.contains("<img"), "a client id became markup");
    assert!(html.contains("&lt;img src=x onerror=alert(1)&gt;"));
    for external in ["<script", "<link", "src=\"http", "url(", "@import"] {
        assert!(!html.contains(external), "{external} in the page");
    }
    for chart in ["timeline-chart", "scopes-chart", "denials-chart"] {
        assert!(html.contains(&format!("id=\"{chart}\"><figcaption>")));
        assert!(html.contains("<svg viewBox"));
    }
}

#[test]
fn text_shows_control_characters_in_names_escaped() {
    let log = tmp(
        "ansi.log",
        &format!(
            "{}\n",
            audit("").replace(r#""client_id":"a""#, r#""client_id":"a\u001b[2Jb""#)
        ),
    );
    let out = run(&["report", "--now", NOW, &log]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let shown = text(&out.stdout);
    assert!(!shown.contains('\u{1b}'));
    assert!(shown.contains("corp/a\\u{1b}[2Jb"), "{shown}");
    assert!(shown.contains("Least privilege"));
}

#[test]
fn the_output_file_is_written_with_dash_o() {
    let path = common::own_file("report-", "out.json", "");
    let out = run(&[
        "report",
        "--format",
        "json",
        "--now",
        NOW,
        "-o",
        &path_text(path.clone()),
        ENVOY,
    ]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(out.stdout.is_empty());
    let r: Value = serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap();
    assert_eq!(r["summary"]["identities"], 2);
}

#[test]
fn usage_errors_exit_2_with_a_message() {
    for (args, says) in [
        (&["report"][..], "at least one LOG"),
        (
            &["report", "--format", "pdf", ENVOY],
            "expected text, json or html",
        ),
        (&["report", "--since", "yesterday", ENVOY], "RFC 3339"),
        (&["report", "--now", "1893456000", ENVOY], "RFC 3339"),
        (&["report", "--unused-days", "-1", ENVOY], "whole number"),
        (&["report", "no-such.log"], "cannot read no-such.log"),
        (&["report", "--select", "x", ENVOY], "--config"),
        (&["report", "--bogus", ENVOY], "unknown option --bogus"),
    ] {
        let out = run(args);
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        assert!(
            text(&out.stderr).contains(says),
            "{args:?}: {}",
            text(&out.stderr)
        );
    }
}

#[test]
fn help_describes_every_option() {
    let out = run(&["report", "--help"]);
    assert!(out.status.success());
    let help = text(&out.stdout);
    for option in [
        "--config",
        "--select",
        "--registry",
        "--since",
        "--unused-days",
        "--now",
        "--format",
        "-o, --output",
    ] {
        assert!(help.contains(option), "{option}");
    }
    assert!(text(&run(&["--help"]).stdout).contains("scopegate report"));
}

/// Every member the JSON report has is documented in docs/report.md (the
/// names inside `denied`, `rules` and the like are data, not members).
#[test]
fn every_member_of_the_json_report_is_documented() {
    fn members<'a>(v: &'a Value, out: &mut std::collections::BTreeSet<&'a str>) {
        match v {
            Value::Object(m) => {
                for (k, v) in m {
                    out.insert(k);
                    if !matches!(k.as_str(), "denied" | "rules") {
                        members(v, out);
                    }
                }
            }
            Value::Array(a) => a.iter().for_each(|v| members(v, out)),
            _ => {}
        }
    }
    let r = example();
    let mut names = std::collections::BTreeSet::new();
    members(&r, &mut names);
    let docs = std::fs::read_to_string(common::root().join("docs/report.md")).unwrap();
    let missing: Vec<&&str> = names
        .iter()
        .filter(|n| !docs.contains(&format!("`{n}`")) && !docs.contains(&format!("\"{n}\"")))
        .collect();
    assert!(missing.is_empty(), "not in docs/report.md: {missing:?}");
    assert!(names.len() > 60, "{names:?}");
}
