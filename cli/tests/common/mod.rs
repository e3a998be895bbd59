//! Running the built `scopegate` binary from the repository root.
#![allow(dead_code, clippy::expect_used)]

use serde_json::Value;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};

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
        // A command that refuses its arguments exits without reading its
        // input: the pipe may be closed already, which is not a failure.
        if let Err(e) = input.write_all(stdin.as_bytes()) {
            assert_eq!(
                e.kind(),
                std::io::ErrorKind::BrokenPipe,
                "stdin written: {e}"
            );
        }
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

/// A file of a test's own: the tests run in parallel in one process, so
/// each file gets a name no other test writes (`prefix`, a number, `name`).
pub fn own_file(prefix: &str, name: &str, contents: &str) -> PathBuf {
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    let n = NEXT.fetch_add(1, Ordering::Relaxed);
    tmp(&format!("{prefix}{n}-{name}"), contents)
}

/// A path as the text to pass on a command line.
pub fn path_text(p: PathBuf) -> String {
    p.to_string_lossy().into_owned()
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

/// The arguments of `explain` for GET /payments/1 with bearer `token`
/// against `cfg` at `now`, then `extra`.
pub fn explain_get<'a>(
    cfg: &'a str,
    token: &'a str,
    now: &'a str,
    extra: &[&'a str],
) -> Vec<&'a str> {
    let mut args = vec![
        "explain",
        "--config",
        cfg,
        "--method",
        "GET",
        "--path",
        "/payments/1",
        "--token",
        token,
        "--now",
        now,
    ];
    args.extend_from_slice(extra);
    args
}

/// Runs `explain` with `args`: the exit code, stdout as JSON (null when it
/// is none) and stderr.
pub fn explain_out(args: &[&str], stdin: &str) -> (Option<i32>, Value, String) {
    let out = run_with_stdin(args, stdin);
    let v = serde_json::from_slice(&out.stdout).unwrap_or(Value::Null);
    (out.status.code(), v, text(&out.stderr))
}

/// `--jwks corp=FILE`, FILE a file of this test's own holding the corp key
/// set, `prefix` as `own_file` takes it.
pub fn corp_jwks_spec(prefix: &str) -> String {
    let jwks = run(&["jwks", "--key", &format!("{CORP_KEY}=corp-2026")]);
    let file = path_text(own_file(prefix, "corp.jwks", &text(&jwks.stdout)));
    format!("corp={file}")
}

/// `explain` of GET /payments/1 with `token` against `cfg` at NOW, the corp
/// key set given with --jwks, plus `extra`.
pub fn explain_with_corp_jwks(
    prefix: &str,
    cfg: &str,
    token: &str,
    extra: &[&str],
) -> (Option<i32>, Value, String) {
    let spec = corp_jwks_spec(prefix);
    let mut more = vec!["--jwks", spec.as_str()];
    more.extend_from_slice(extra);
    explain_out(&explain_get(cfg, token, NOW, &more), "")
}
