//! The identity registry: which machine identities may call, who owns each,
//! until when, and the broadest scopes each may use. Built once per
//! configuration (or per fetched document) and looked up per request by
//! client id in O(1), without allocating.

use crate::policy::limit::LimitSpec;
use std::collections::HashMap;

/// `status` of a registry entry.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Status {
    Active,
    Disabled,
}

/// One registered machine identity.
#[derive(Debug, PartialEq, Eq)]
pub struct Entry {
    pub client_id: String,
    /// Index into `Config::providers`; `None` matches the client id from any provider.
    pub provider: Option<usize>,
    pub owner: String,
    pub description: Option<String>,
    /// Unix seconds after which the identity may no longer call.
    pub expires: Option<u64>,
    /// The scope ceiling: scopes outside it are dropped before the rules are
    /// judged. `None`: no ceiling.
    pub max_scopes: Option<Vec<String>>,
    pub status: Status,
    /// This identity's own rate limit, in place of the default one.
    pub rate_limit: Option<LimitSpec>,
}

impl Entry {
    /// Whether the ceiling lets `scope` through.
    pub fn permits(&self, scope: &str) -> bool {
        self.max_scopes
            .as_ref()
            .is_none_or(|m| m.iter().any(|s| s == scope))
    }
}

/// Entries of one client id: at most one for any provider, at most one per provider.
#[derive(Debug, Default)]
struct Slot {
    any: Option<u32>,
    by_provider: Vec<(usize, u32)>,
}

#[derive(Debug, Default)]
pub struct Registry {
    entries: Vec<Entry>,
    by_client: HashMap<Box<str>, Slot>,
}

/// Why an entry could not be added.
#[derive(Debug, PartialEq, Eq)]
pub enum AddError {
    /// Another entry already has this client id and provider (index of it).
    Duplicate(usize),
    /// More entries than a `u32` counts.
    Full,
}

impl Registry {
    pub fn with_capacity(n: usize) -> Self {
        Registry {
            entries: Vec::with_capacity(n),
            by_client: HashMap::with_capacity(n),
        }
    }

    pub fn add(&mut self, entry: Entry) -> Result<(), AddError> {
        let index = u32::try_from(self.entries.len()).map_err(|_| AddError::Full)?;
        let slot = self
            .by_client
            .entry(entry.client_id.as_str().into())
            .or_default();
        let taken = match entry.provider {
            None => slot.any,
            Some(p) => slot
                .by_provider
                .iter()
                .find(|(q, _)| *q == p)
                .map(|(_, i)| *i),
        };
        if let Some(other) = taken {
            return Err(AddError::Duplicate(other as usize));
        }
        match entry.provider {
            None => slot.any = Some(index),
            Some(p) => slot.by_provider.push((p, index)),
        }
        self.entries.push(entry);
        Ok(())
    }

    /// The entry for a client of a provider: the provider's own, else one
    /// that names no provider.
    pub fn find(&self, provider: usize, client_id: &str) -> Option<&Entry> {
        let slot = self.by_client.get(client_id)?;
        let index = slot
            .by_provider
            .iter()
            .find(|(p, _)| *p == provider)
            .map(|(_, i)| *i)
            .or(slot.any)?;
        self.entries.get(index as usize)
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    pub fn entries(&self) -> &[Entry] {
        &self.entries
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(client_id: &str, provider: Option<usize>, owner: &str) -> Entry {
        Entry {
            client_id: client_id.into(),
            provider,
            owner: owner.into(),
            description: None,
            expires: None,
            max_scopes: None,
            status: Status::Active,
            rate_limit: None,
        }
    }

    #[test]
    fn a_providers_own_entry_wins_over_one_for_any_provider() {
        let mut r = Registry::default();
        r.add(entry("ci", None, "any@x")).unwrap();
        r.add(entry("ci", Some(1), "one@x")).unwrap();
        assert_eq!(r.find(1, "ci").map(|e| e.owner.as_str()), Some("one@x"));
        assert_eq!(r.find(0, "ci").map(|e| e.owner.as_str()), Some("any@x"));
        assert_eq!(r.find(0, "other"), None);
    }

    #[test]
    fn an_entry_for_one_provider_does_not_register_the_client_elsewhere() {
        let mut r = Registry::default();
        r.add(entry("ci", Some(1), "one@x")).unwrap();
        assert!(r.find(0, "ci").is_none());
    }

    #[test]
    fn the_same_client_and_provider_twice_is_refused() {
        let mut r = Registry::default();
        r.add(entry("ci", Some(1), "a")).unwrap();
        assert_eq!(
            r.add(entry("ci", Some(1), "b")),
            Err(AddError::Duplicate(0))
        );
        r.add(entry("ci", None, "c")).unwrap();
        assert_eq!(r.add(entry("ci", None, "d")), Err(AddError::Duplicate(1)));
    }

    #[test]
    fn the_ceiling_permits_only_its_scopes() {
        let mut e = entry("ci", None, "a");
        assert!(e.permits("anything"));
        e.max_scopes = Some(vec!["payments:read".into()]);
        assert!(e.permits("payments:read"));
        assert!(!e.permits("payments:write"));
    }
}
