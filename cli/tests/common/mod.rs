//! Running the built `scopegate` binary from the repository root.
#![allow(dead_code, clippy::expect_used)]

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

pub fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

pub fn bin() -> &'static str {
    env!("CARGO_BIN_EXE_scopegate")
}

pub fn run(args: &[&str]) -> Output {
    run_with_stdin(args, "")
}

pub fn run_with_stdin(args: &[&str], stdin: &str) -> Output {
    let mut child = Command::new(bin())
        .args(args)
        .current_dir(root())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("scopegate runs");
    if let Some(mut input) = child.stdin.take() {
        input.write_all(stdin.as_bytes()).expect("stdin written");
    }
    child.wait_with_output().expect("scopegate finishes")
}

pub fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// A file in a directory of this test process's own.
pub fn tmp(name: &str, contents: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("scopegate-cli-files-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let p = dir.join(name);
    std::fs::write(&p, contents).expect("write");
    p
}

pub const CORP_KEY: &str = "envoy-example/keys/corp-rs256.pk8.pem";
/// 2030-01-01T00:00:00Z: every time check uses `--now`, never the clock.
pub const NOW: &str = "1893456000";

pub fn mint(extra: &[&str]) -> String {
    let mut args = vec![
        "token",
        "--key",
        CORP_KEY,
        "--kid",
        "corp-2026",
        "--iss",
        "https://idp.example.com",
        "--aud",
        "payments-api",
        "--now",
        NOW,
        "--ttl",
        "600",
    ];
    args.extend_from_slice(extra);
    let out = run(&args);
    assert!(out.status.success(), "{}", text(&out.stderr));
    text(&out.stdout).trim().to_string()
}
