//! Every example configuration in the repository passes `check-config` as
//! the file it is, and the commands its comments give work.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod common;

use common::{root, run, text};
use std::path::Path;

/// The example files, found by listing the directories so that examples
/// added later are checked too.
fn examples() -> Vec<String> {
    let mut out = vec![
        "envoy-example/envoy.yaml".to_string(),
        "kong-example/kong.yml".to_string(),
        "kong-example/kong-plugins.yml".to_string(),
    ];
    for dir in [
        "envoy-example/ecds",
        "envoy-example/ecds/config",
        "envoy-example/istio",
        "envoy-example/envoy-gateway",
        "kong-example/admin-api",
    ] {
        let Ok(entries) = std::fs::read_dir(root().join(dir)) else {
            continue;
        };
        let mut names: Vec<String> = entries
            .filter_map(Result::ok)
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .filter(|n| n.ends_with(".yaml") || n.ends_with(".yml") || n.ends_with(".json"))
            .map(|n| format!("{dir}/{n}"))
            .collect();
        names.sort();
        out.extend(names);
    }
    out
}

#[test]
fn every_example_file_passes_check_config_as_it_is() {
    let files = examples();
    assert!(files.len() >= 8, "{files:?}");
    for f in &files {
        let out = run(&["check-config", f]);
        let (stdout, stderr) = (text(&out.stdout), text(&out.stderr));
        assert_eq!(out.status.code(), Some(0), "{f}: {stdout}{stderr}");
        assert!(
            stderr.is_empty(),
            "{f}: examples carry no warnings: {stderr}"
        );
        assert!(!stdout.is_empty(), "{f}");
        for line in stdout.lines() {
            assert!(line.starts_with(&format!("{f}: ")), "{f}: {line}");
            assert!(
                line.ends_with(": ok") || line.contains(": nothing to check here: "),
                "{f}: {line}"
            );
        }
    }
}

#[test]
fn the_ecds_bootstrap_points_at_the_resource_that_holds_the_configuration() {
    let out = run(&["check-config", "envoy-example/ecds/envoy.yaml"]);
    let stdout = text(&out.stdout);
    assert!(
        stdout.contains("check envoy-example/ecds/config/scopegate.yaml"),
        "{stdout}"
    );
}

/// `scopegate check-config PATH` commands in the comment lines of a file.
fn commented_checks(contents: &str) -> Vec<String> {
    let comments: Vec<&str> = contents
        .lines()
        .filter_map(|l| l.trim_start().strip_prefix('#'))
        .map(str::trim)
        .collect();
    let words: Vec<String> = comments
        .join(" ")
        .split_whitespace()
        .map(|w| {
            w.trim_matches(|c| c == '`' || c == '(' || c == ')' || c == ',')
                .to_string()
        })
        .collect();
    words
        .windows(3)
        .filter(|w| w[0] == "scopegate" && w[1] == "check-config")
        .map(|w| w[2].clone())
        .collect()
}

#[test]
fn the_check_config_commands_in_example_comments_pass() {
    let mut seen = 0;
    for f in examples() {
        let contents = std::fs::read_to_string(root().join(&f)).unwrap();
        for target in commented_checks(&contents) {
            assert!(
                Path::new(&root()).join(&target).is_file(),
                "{f}: its comment checks `{target}`, which is not a file (give the path from the repository root)"
            );
            let out = run(&["check-config", &target]);
            assert_eq!(out.status.code(), Some(0), "{f}: {}", text(&out.stdout));
            seen += 1;
        }
    }
    assert!(seen >= 4, "{seen}");
}
