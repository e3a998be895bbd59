//! `--revocation FILE`: a revocation list document as a revocation `uri`
//! serves it, `{"tokens": [...], "clients": [...], "subjects": [...]}`
//! (CONTRACT §1.3), read as JSON or YAML and validated by the filter's own
//! `parse_revocation_document`.

use crate::registry::{self, Document};
use scopegate::policy::config::{self, Config, RevocationSource};
use scopegate::policy::revocation::RevocationList;
use serde_json::Value;

/// The shape named when FILE holds no document or several.
const SHAPE: &str = "{\"tokens\": [...], \"clients\": [...], \"subjects\": [...]}";

/// Reads FILE; `Err` only when it cannot be read at all (a usage error).
pub fn read(path: &str) -> Result<Document, String> {
    registry::read_one(path, "a revocation list", SHAPE)
}

/// Validates the document against the configuration's provider names, as
/// the filter validates a fetched one. Faults are `/pointer: message` lines.
pub fn validate(value: &Value, providers: &[&str]) -> Result<RevocationList, Vec<String>> {
    // The document reader already refused members given twice; the core
    // reads the document from JSON text, as it arrives from the `uri`.
    let text = serde_json::to_vec(value).map_err(|e| vec![format!("/: {e}")])?;
    config::parse_revocation_document(&text, providers)
        .map_err(|errors| errors.iter().map(ToString::to_string).collect())
}

/// The revocation list document (`--revocation`).
pub const KIND: registry::Kind<RevocationList> = registry::Kind {
    flag: "--revocation",
    label: "revocation list",
    fetched: "a list",
    read,
    validate,
    unused,
};

/// Why a revocation list document would not be used with this
/// configuration: its list is absent (`Err`) or inline (`Ok`).
fn unused(cfg: &Config) -> Option<Result<&'static str, &'static str>> {
    match cfg.revocation.as_ref().and_then(|r| r.list.as_ref()) {
        None => Some(Err(
            "the configuration has no revocation list (`revocation.list`)",
        )),
        Some(RevocationSource::Inline(_)) => Some(Ok(
            "the configuration's revocation list is inline (`revocation.list.inline`)",
        )),
        Some(RevocationSource::Remote(_)) => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn faults_are_json_pointer_lines() {
        let doc = json!({
            "tokens": ["a", ""],
            "clients": [{"client_id": "c", "provider": "nope"}, {"provider": "corp"}],
            "subjects": [{"sub": "s", "issued_before": "yesterday"}],
            "extra": 1
        });
        let faults = validate(&doc, &["corp"]).err().unwrap_or_default();
        for want in [
            "/tokens/1: ",
            "/clients/0/provider: ",
            "/clients/1: ",
            "/subjects/0/issued_before: ",
            "/extra: ",
        ] {
            assert!(
                faults.iter().any(|f| f.starts_with(want)),
                "{want} in {faults:?}"
            );
        }
        let good = json!({"tokens": ["a"], "clients": [{"client_id": "c", "provider": "corp"}]});
        assert!(validate(&good, &["corp"]).is_ok());
        assert!(
            validate(&json!({}), &[]).is_ok(),
            "every member is optional"
        );
    }
}
