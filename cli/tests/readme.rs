//! The README's command-line examples work when pasted: each `sh` block of
//! the "Command-line tool" section runs, from the repository root, with the
//! built binary on PATH.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod common;

use common::{bin, root, text};
use std::path::Path;
use std::process::Command;

fn section_blocks() -> Vec<String> {
    let readme = std::fs::read_to_string(root().join("README.md")).unwrap();
    let start = readme
        .find("\n## Command-line tool\n")
        .expect("the section exists");
    let rest = &readme[start + 1..];
    let end = rest[3..].find("\n## ").map_or(rest.len(), |e| e + 3);
    let section = &rest[..end];
    let mut blocks = Vec::new();
    let mut lines = section.lines();
    while let Some(line) = lines.next() {
        if line.trim() == "```sh" {
            let body: Vec<&str> = lines.by_ref().take_while(|l| l.trim() != "```").collect();
            blocks.push(body.join("\n"));
        }
    }
    blocks
}

#[test]
fn the_readme_command_line_examples_run_as_pasted() {
    let blocks = section_blocks();
    assert!(!blocks.is_empty());
    let dir = Path::new(bin()).parent().unwrap();
    let path = format!(
        "{}:{}",
        dir.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    for block in blocks {
        let out = Command::new("bash")
            .args(["-euo", "pipefail", "-c", &block])
            .env("PATH", &path)
            .current_dir(root())
            .output()
            .expect("bash runs");
        let (stdout, stderr) = (text(&out.stdout), text(&out.stderr));
        assert!(
            out.status.success(),
            "{block}\n--- stdout\n{stdout}\n--- stderr\n{stderr}"
        );
        // A token the example mints must verify at the time it explains at.
        if block.contains("scopegate explain") {
            assert!(stdout.contains("\"decision\""), "{stdout}");
            assert!(
                !stdout.contains("\"reason\": \"token_"),
                "{block}\n{stdout}"
            );
            assert!(!stdout.contains("\"reason\": \"key_"), "{block}\n{stdout}");
        }
    }
}
