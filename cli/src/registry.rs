//! `--registry FILE`: an identity registry document as a registry `uri`
//! serves it, `{"identities": [...]}` (CONTRACT §1.2), read as JSON or YAML
//! and validated by the filter's own `parse_registry_document`.

use crate::document::{self, InputError};
use scopegate::policy::config::{self, Config, RegistrySource};
use scopegate::policy::registry::Registry;
use serde_json::Value;
use std::rc::Rc;

/// A document that stands in for one a configuration fetches from a `uri`
/// (`--registry`, `--revocation`): how it is read, validated, and named.
pub struct Kind<T> {
    /// The flag that names the file, e.g. `--registry`.
    pub flag: &'static str,
    /// What to call the document in messages, e.g. "registry".
    pub label: &'static str,
    /// What the flag stands in for, e.g. "a registry" (fetched from a `uri`).
    pub fetched: &'static str,
    /// Reads FILE; `Err` only when it cannot be read at all.
    pub read: fn(&str) -> Result<Document, String>,
    /// Validates the document against the configuration's provider names.
    pub validate: fn(&Value, &[&str]) -> Result<T, Vec<String>>,
    /// Why the configuration would not use such a document: it has no such
    /// source (`Err`) or has it inline (`Ok`), or `None`: it is fetched.
    pub unused: fn(&Config) -> Option<Result<&'static str, &'static str>>,
}

impl<T> Kind<T> {
    /// The reason `unused` gives, if any, as one phrase.
    pub fn unused_reason(&self, cfg: &Config) -> Option<&'static str> {
        (self.unused)(cfg).map(|r| r.unwrap_or_else(|absent| absent))
    }

    /// The document `flag FILE` gives, validated; any configuration that does
    /// not fetch such a document makes the flag a usage error.
    pub fn given(&self, cfg: &Config, file: &str) -> Result<Rc<T>, String> {
        let flag = self.flag;
        match (self.unused)(cfg) {
            Some(Err(absent)) => {
                return Err(format!(
                    "{flag} {file}: {absent}, so there is nothing for the document to stand in for"
                ))
            }
            Some(Ok(inline)) => {
                return Err(format!(
                    "{flag} {file}: {inline}; {flag} only stands in for {} fetched from a `uri`",
                    self.fetched
                ))
            }
            None => {}
        }
        let doc = (self.read)(file)?;
        let value = doc.value?;
        let names: Vec<&str> = cfg.providers.iter().map(|p| p.name.as_str()).collect();
        (self.validate)(&value, &names)
            .map(Rc::new)
            .map_err(|faults| {
                format!(
                    "{} {} has faults:\n{}",
                    self.label,
                    doc.name,
                    faults
                        .iter()
                        .map(|f| format!("{}: {f}", doc.name))
                        .collect::<Vec<_>>()
                        .join("\n")
                )
            })
    }
}

/// The identity registry document (`--registry`).
pub const KIND: Kind<Registry> = Kind {
    flag: "--registry",
    label: "registry",
    fetched: "a registry",
    read,
    validate,
    unused,
};

/// Why a registry document would not be used with this configuration: its
/// registry is absent (`Err`) or inline (`Ok`).
fn unused(cfg: &Config) -> Option<Result<&'static str, &'static str>> {
    match cfg.identities.as_ref().map(|i| &i.registry) {
        None => Some(Err(
            "the configuration has no identity registry (`identities`)",
        )),
        Some(RegistrySource::Inline(_)) => Some(Ok(
            "the configuration's identity registry is inline (`identities.registry.inline`)",
        )),
        Some(RegistrySource::Remote(_)) => None,
    }
}

/// The document `--registry` names, read once (it may be standard input).
pub struct Document {
    /// What to call the file in messages: its path, or `<stdin>`.
    pub name: String,
    /// The document, or why the file is not one (a fault of the file, not a
    /// usage error: `check-config` reports it and exits 1).
    pub value: Result<Value, String>,
}

/// Reads FILE; `Err` only when it cannot be read at all (a usage error).
pub fn read(path: &str) -> Result<Document, String> {
    read_one(path, "a registry", "{\"identities\": [...]}")
}

/// Reads FILE, which must hold one document: `what` (e.g. "a registry")
/// whose `shape` is shown when it holds none or several. `Err` only when it
/// cannot be read at all (a usage error).
pub fn read_one(path: &str, what: &str, shape: &str) -> Result<Document, String> {
    match document::load(path) {
        Ok(input) => {
            let name = input.name;
            let value = match <[document::Document; 1]>::try_from(input.documents) {
                Ok([one]) => Ok(one.value),
                Err(docs) if docs.is_empty() => {
                    Err(format!("{name}: empty: expected {what} document {shape}"))
                }
                Err(docs) => Err(format!(
                    "{name}: holds {} documents: {what} is one document {shape}",
                    docs.len()
                )),
            };
            Ok(Document { name, value })
        }
        Err(InputError::Unreadable(m)) => Err(m),
        Err(InputError::Malformed(m)) => {
            let name = if path == "-" { "<stdin>" } else { path };
            Ok(Document {
                name: name.to_string(),
                value: Err(m),
            })
        }
    }
}

/// Validates the document against the configuration's provider names, as
/// the filter validates a fetched one. Faults are `/pointer: message` lines.
pub fn validate(value: &Value, providers: &[&str]) -> Result<Registry, Vec<String>> {
    // The document reader already refused members given twice; the core
    // reads the document from JSON text, as it arrives from the `uri`.
    let text = serde_json::to_vec(value).map_err(|e| vec![format!("/: {e}")])?;
    config::parse_registry_document(&text, providers)
        .map_err(|errors| errors.iter().map(ToString::to_string).collect())
}

/// The provider names a configuration document gives, for checking a
/// registry against a configuration that has faults of its own.
pub fn provider_names_in(document: &Value) -> Vec<String> {
    document
        .get("providers")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|p| p.get("name").and_then(Value::as_str).map(str::to_string))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn faults_are_json_pointer_lines() {
        let doc = json!({"identities": [
            {"client_id": "a", "owner": "o", "provider": "corp"},
            {"client_id": "b", "provider": "nope", "owner": "o"},
            {"client_id": "c"}
        ]});
        let faults = validate(&doc, &["corp"]).err().unwrap_or_default();
        assert_eq!(faults.len(), 2, "{faults:?}");
        assert!(faults
            .iter()
            .any(|f| f.starts_with("/identities/1/provider: ")));
        assert!(faults.iter().any(|f| f.starts_with("/identities/2: ")));
        let good = json!({"identities": [{"client_id": "a", "owner": "o", "provider": "corp"}]});
        assert_eq!(validate(&good, &["corp"]).map(|r| r.len()), Ok(1));
    }

    #[test]
    fn provider_names_are_read_from_a_broken_configuration() {
        let doc =
            json!({"providers": [{"name": "corp"}, {"issuer": "x"}, {"name": 3}, {"name": "b"}]});
        assert_eq!(provider_names_in(&doc), ["corp", "b"]);
        assert!(provider_names_in(&json!([])).is_empty());
    }
}
