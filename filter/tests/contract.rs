//! The contract (docs/CONTRACT.md) and the code say the same thing: every
//! reason code the code can give is listed in §3 and every listed code
//! exists; every top-level member of the configuration schema is documented
//! in §1.
#![allow(clippy::expect_used, clippy::panic, clippy::indexing_slicing)]

use scopegate::Reason;
use serde_json::Value;
use std::collections::BTreeSet;
use std::path::Path;

fn read(relative: &str) -> String {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("..")
        .join(relative);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// The text of the section whose heading starts with `## <number>.`.
fn section(contract: &str, number: u32) -> String {
    let start = format!("## {number}.");
    let mut out = String::new();
    let mut inside = false;
    for line in contract.lines() {
        if line.starts_with("## ") {
            inside = line.starts_with(&start);
        }
        if inside {
            out.push_str(line);
            out.push('\n');
        }
    }
    assert!(!out.is_empty(), "docs/CONTRACT.md has no section {start}");
    out
}

/// First-column codes of the tables in a section: rows like "| `code` | ...".
fn table_codes(text: &str) -> BTreeSet<String> {
    text.lines()
        .filter_map(|l| l.strip_prefix("| `"))
        .filter_map(|l| l.split('`').next())
        .map(str::to_string)
        .collect()
}

#[test]
fn every_reason_code_is_in_the_contract_and_nothing_else_is() {
    let listed = table_codes(&section(&read("docs/CONTRACT.md"), 3));
    let code: BTreeSet<String> = Reason::ALL.iter().map(|r| r.as_str().to_string()).collect();
    let missing: Vec<_> = code.difference(&listed).collect();
    let unknown: Vec<_> = listed.difference(&code).collect();
    assert!(
        missing.is_empty(),
        "reason codes missing from CONTRACT §3: {missing:?}"
    );
    assert!(
        unknown.is_empty(),
        "CONTRACT §3 lists codes the code lacks: {unknown:?}"
    );
}

#[test]
fn every_listed_status_is_the_status_the_code_answers() {
    let text = section(&read("docs/CONTRACT.md"), 3);
    for reason in Reason::ALL {
        let row = text
            .lines()
            .find(|l| l.starts_with(&format!("| `{}` |", reason.as_str())))
            .expect("row");
        let status: u32 = row
            .split('|')
            .nth(2)
            .expect("status column")
            .trim()
            .parse()
            .expect("number");
        assert_eq!(status, reason.class().status(), "{row}");
    }
}

#[test]
fn the_minimal_descriptions_are_the_ones_the_code_sends() {
    let text = section(&read("docs/CONTRACT.md"), 2);
    for reason in Reason::ALL.into_iter().filter(|r| !r.is_allow()) {
        let row = format!(
            "| `{}` | {} |",
            reason.as_str(),
            reason.public_description()
        );
        assert!(text.contains(&row), "CONTRACT §2 lacks the row {row}");
    }
}

#[test]
fn every_top_level_schema_member_is_documented() {
    let schema: Value =
        serde_json::from_str(&read("config-schema/scopegate.schema.json")).expect("schema JSON");
    let documented = table_codes(&section(&read("docs/CONTRACT.md"), 1));
    let members = schema["properties"].as_object().expect("properties");
    let undocumented: Vec<_> = members
        .keys()
        .filter(|k| !documented.contains(*k))
        .collect();
    assert!(
        undocumented.is_empty(),
        "schema members without a row in CONTRACT §1: {undocumented:?}"
    );
}

#[test]
fn the_table_reader_takes_first_column_codes_only() {
    let text = "| code | x |\n| --- | --- |\n| `a_b` | `c` |\nplain `d`\n| `e` | 1 |\n";
    let got = table_codes(text);
    assert_eq!(got, ["a_b", "e"].iter().map(|s| s.to_string()).collect());
}
