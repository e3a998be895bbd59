//! What the report knows besides the logs: the configuration (`--config`:
//! rules and the scopes they require, providers' `max_lifetime_s`) and the
//! identity registry (`--registry`, or the configuration's inline one), read
//! with the same loaders and the filter's own parsers as `explain`.

use scopegate::policy::config::{Access, Config, RegistrySource, Source};
use scopegate::policy::registry::{Registry, Status};
use serde_json::Value;
use std::collections::{BTreeSet, HashMap};

/// A rule and the scopes it requires.
pub struct RuleScopes {
    pub name: String,
    /// All of these (`scopes`).
    pub all: Vec<String>,
    /// At least one of these (`any_scopes`).
    pub any: Vec<String>,
}

impl RuleScopes {
    /// The scopes a request this rule allowed has used: every required one,
    /// and those of the "any of" list the caller presented.
    pub fn exercised<'s>(
        &'s self,
        presented: &'s [impl AsRef<str>],
    ) -> impl Iterator<Item = &'s str> {
        let any = self
            .any
            .iter()
            .filter(|s| presented.iter().any(|p| p.as_ref() == s.as_str()));
        self.all.iter().chain(any).map(String::as_str)
    }
}

/// One registry entry, with its provider by name.
pub struct Registered {
    pub client_id: String,
    /// `None`: the entry matches the client id from any provider.
    pub provider: Option<String>,
    pub owner: String,
    pub expires: Option<u64>,
    pub max_scopes: Option<Vec<String>>,
    pub active: bool,
}

/// Everything known besides the logs.
#[derive(Default)]
pub struct Known {
    /// The configuration's rules; `None` without `--config`.
    pub rules: Option<Vec<RuleScopes>>,
    rule_index: HashMap<String, usize>,
    /// `max_lifetime_s` by provider name.
    pub max_lifetime: HashMap<String, u64>,
    /// The registry; `None` when there is none.
    pub registry: Option<Vec<Registered>>,
    registry_index: HashMap<String, Vec<usize>>,
}

impl Known {
    pub fn new(config: Option<&Config>, registry: Option<Vec<Registered>>) -> Self {
        let mut known = Known::default();
        if let Some(cfg) = config {
            let rules: Vec<RuleScopes> = cfg
                .rules
                .iter()
                .map(|r| match &r.access {
                    Access::Public => RuleScopes {
                        name: r.name.clone(),
                        all: Vec::new(),
                        any: Vec::new(),
                    },
                    Access::Token(req) => RuleScopes {
                        name: r.name.clone(),
                        all: req.scopes.clone(),
                        any: req.any_scopes.clone(),
                    },
                })
                .collect();
            for (i, r) in rules.iter().enumerate() {
                // Rule names are unique (the parser refuses duplicates); keep
                // the first should that ever change.
                known.rule_index.entry(r.name.clone()).or_insert(i);
            }
            known.rules = Some(rules);
            known.max_lifetime = cfg
                .providers
                .iter()
                .filter_map(|p| p.max_lifetime_s.map(|m| (p.name.clone(), m)))
                .collect();
        }
        let registry = registry.or_else(|| config.and_then(inline_registry));
        if let Some(entries) = &registry {
            for (i, e) in entries.iter().enumerate() {
                known
                    .registry_index
                    .entry(e.client_id.clone())
                    .or_default()
                    .push(i);
            }
        }
        known.registry = registry;
        known
    }

    pub fn rule(&self, name: &str) -> Option<&RuleScopes> {
        let i = *self.rule_index.get(name)?;
        self.rules.as_ref()?.get(i)
    }

    /// The registry entry of an identity: the one for its provider, else the
    /// one for any provider (the filter's own lookup order).
    pub fn registered(&self, provider: &str, client_id: &str) -> Option<&Registered> {
        let entries = self.registry.as_ref()?;
        let found = self.registry_index.get(client_id)?;
        let pick = |want: Option<&str>| {
            found
                .iter()
                .filter_map(|i| entries.get(*i))
                .find(|e| e.provider.as_deref() == want)
        };
        pick(Some(provider)).or_else(|| pick(None))
    }

    /// Every scope some rule requires; `None` without `--config`.
    pub fn required_scopes(&self) -> Option<BTreeSet<&str>> {
        let rules = self.rules.as_ref()?;
        Some(
            rules
                .iter()
                .flat_map(|r| r.all.iter().chain(&r.any))
                .map(String::as_str)
                .collect(),
        )
    }
}

/// The configuration's inline registry, when it has one.
fn inline_registry(cfg: &Config) -> Option<Vec<Registered>> {
    match &cfg.identities.as_ref()?.registry {
        RegistrySource::Inline(r) => {
            let names: Vec<&str> = cfg.providers.iter().map(|p| p.name.as_str()).collect();
            Some(entries(r, &names))
        }
        Source::Remote(_) => None,
    }
}

/// Registry entries with their provider as a name.
fn entries(r: &Registry, providers: &[&str]) -> Vec<Registered> {
    r.entries()
        .iter()
        .map(|e| Registered {
            client_id: e.client_id.clone(),
            provider: e
                .provider
                .and_then(|i| providers.get(i))
                .map(|p| (*p).to_string()),
            owner: e.owner.clone(),
            expires: e.expires,
            max_scopes: e.max_scopes.clone(),
            active: e.status == Status::Active,
        })
        .collect()
}

/// Reads `--registry FILE` with the filter's checks: against the
/// configuration's provider names, or without one, against the names the
/// document itself uses (there is nothing else to hold them to).
pub fn read_registry(file: &str, config: Option<&Config>) -> Result<Vec<Registered>, String> {
    let doc = crate::registry::read(file)?;
    let value = doc.value?;
    let names: Vec<String> = match config {
        Some(cfg) => cfg.providers.iter().map(|p| p.name.clone()).collect(),
        None => provider_names_used(&value),
    };
    let names: Vec<&str> = names.iter().map(String::as_str).collect();
    let registry = crate::registry::validate(&value, &names).map_err(|faults| {
        format!(
            "registry {} has faults:\n{}",
            doc.name,
            faults
                .iter()
                .map(|f| format!("{}: {f}", doc.name))
                .collect::<Vec<_>>()
                .join("\n")
        )
    })?;
    Ok(entries(&registry, &names))
}

/// The provider names a registry document's entries name, each once.
fn provider_names_used(doc: &Value) -> Vec<String> {
    let names: BTreeSet<&str> = doc
        .get("identities")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|e| e.get("provider").and_then(Value::as_str))
        .collect();
    names.into_iter().map(str::to_string).collect()
}
