//! Reading the files configurations live in: JSON or YAML (several documents
//! allowed), from a path or standard input (`-`), into JSON values.
//!
//! Both formats go through the core's strict reader (`vocab::json`), which
//! refuses a member written twice in the same object. serde_json and serde_yaml would silently keep
//! the last one, while the gateway's own parser (Kong's YAML loader, Envoy's
//! protobuf JSON, Istio's API server) may keep the other: the rule the
//! operator reads would not be the rule that runs.

use scopegate::vocab::json;
use serde_json::Value;
use std::io::Read;

/// One input file, read and parsed.
pub struct Input {
    /// What to call the file in messages: its path, or `<stdin>`.
    pub name: String,
    /// The documents in file order, empty ones (a trailing `---`) left out.
    /// `number` is 1-based and counts every document of a YAML stream.
    pub documents: Vec<Document>,
}

pub struct Document {
    pub number: usize,
    pub value: Value,
}

/// Why an input could not be used: unreadable (a usage problem, exit 2) or
/// not well-formed (a fault of the configuration file, exit 1 in `check-config`).
pub enum InputError {
    Unreadable(String),
    Malformed(String),
}

/// Reads `path` (`-` is standard input) and parses it.
pub fn load(path: &str) -> Result<Input, InputError> {
    let (name, bytes) = if path == "-" {
        let mut buf = Vec::new();
        std::io::stdin()
            .read_to_end(&mut buf)
            .map_err(|e| InputError::Unreadable(format!("cannot read standard input: {e}")))?;
        ("<stdin>".to_string(), buf)
    } else {
        let bytes = std::fs::read(path)
            .map_err(|e| InputError::Unreadable(format!("cannot read {path}: {e}")))?;
        (path.to_string(), bytes)
    };
    let documents =
        parse(path, &bytes).map_err(|e| InputError::Malformed(format!("{name}: {e}")))?;
    Ok(Input { name, documents })
}

/// Picks the parser: a `.json` file, or content that opens with `{` (what the
/// Admin API and Envoy take), is JSON and gets the JSON parser's error; a
/// `.yaml`/`.yml` file and anything else is YAML.
fn parse(path: &str, bytes: &[u8]) -> Result<Vec<Document>, String> {
    let bytes = bytes.strip_prefix(b"\xef\xbb\xbf").unwrap_or(bytes);
    let lower = path.to_ascii_lowercase();
    let yaml_name = lower.ends_with(".yaml") || lower.ends_with(".yml");
    let opens_with_brace = bytes
        .iter()
        .find(|b| !b.is_ascii_whitespace())
        .is_some_and(|b| *b == b'{');
    if lower.ends_with(".json") || (opens_with_brace && !yaml_name) {
        let value = parse_json(bytes).map_err(|e| format!("not valid JSON: {e}"))?;
        return Ok(vec![Document { number: 1, value }]);
    }
    let text =
        std::str::from_utf8(bytes).map_err(|e| format!("not valid YAML: not UTF-8 text ({e})"))?;
    let mut documents = Vec::new();
    for (i, doc) in serde_yaml::Deserializer::from_str(text).enumerate() {
        let number = i + 1;
        let value = json::read(doc).map_err(located).map_err(|e| {
            if number > 1 {
                format!("not valid YAML: document {number}: {e}")
            } else {
                format!("not valid YAML: {e}")
            }
        })?;
        if !value.is_null() {
            documents.push(Document { number, value });
        }
    }
    Ok(documents)
}

/// Parses JSON text with the duplicate-member check.
pub fn parse_json(bytes: &[u8]) -> Result<Value, serde_json::Error> {
    let mut de = serde_json::Deserializer::from_slice(bytes);
    let value = json::read(&mut de).map_err(located)?;
    de.end()?;
    Ok(value)
}

/// The deserializer's error, which says where in the text (for a duplicate:
/// the member's JSON Pointer, then the line and column).
fn located<E>(e: json::ReadError<E>) -> E {
    match e {
        json::ReadError::Syntax(e) | json::ReadError::Duplicate { at: e, .. } => e,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn yaml(text: &str) -> Result<Vec<Value>, String> {
        parse("x.yaml", text.as_bytes()).map(|d| d.into_iter().map(|d| d.value).collect())
    }

    #[test]
    fn yaml_duplicates_are_refused_with_their_pointer_at_any_depth() {
        let top = yaml("mode: enforce\nrules: []\nmode: dry_run\n")
            .err()
            .unwrap_or_default();
        assert!(
            top.contains("/mode: member \"mode\" is given twice"),
            "{top}"
        );
        let nested = yaml("services:\n- name: a\n  filter_chains:\n  - filters:\n    - name: scopegate\n      config:\n        rules: []\n        rules: []\n")
            .err()
            .unwrap_or_default();
        assert!(
            nested.contains("/services/0/filter_chains/0/filters/0/config/rules: member \"rules\" is given twice"),
            "{nested}"
        );
        assert!(nested.contains(" line "), "{nested}");
    }

    #[test]
    fn json_duplicates_are_refused_with_line_and_column() {
        let e = parse("x.json", br#"{"a": {"b": 1, "b": 2}}"#)
            .err()
            .unwrap_or_default();
        assert!(
            e.starts_with("not valid JSON: /a/b: member \"b\" is given twice"),
            "{e}"
        );
        assert!(e.contains("line 1 column"), "{e}");
    }

    #[test]
    fn json_files_get_the_json_parsers_error() {
        for (name, text) in [
            ("x.json", "a: 1\n"),
            ("x", "{\"a\": 1,\n}"),
            ("-", " {a: 1}"),
        ] {
            let e = parse(name, text.as_bytes()).err().unwrap_or_default();
            assert!(e.starts_with("not valid JSON: "), "{name}: {e}");
            assert!(e.contains("line "), "{name}: {e}");
        }
    }

    #[test]
    fn a_yaml_stream_keeps_document_numbers_and_skips_empty_documents() {
        let docs = parse("x.yml", b"a: 1\n---\n---\nb: 2\n").unwrap_or_default();
        let numbers: Vec<usize> = docs.iter().map(|d| d.number).collect();
        assert_eq!(numbers, [1, 3]);
    }

    #[test]
    fn yaml_scalar_keys_become_strings() {
        let v = yaml("200: ok\ntrue: 1\n").unwrap_or_default();
        assert_eq!(v, [serde_json::json!({"200": "ok", "true": 1})]);
    }
}
