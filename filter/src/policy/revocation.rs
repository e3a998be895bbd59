//! The revocation list: tokens (by `jti`), clients and subjects that must not
//! be let through any more, whatever their tokens' `exp` says. Built once per
//! configuration or fetched document; looked up on every request, cached
//! tokens included, in O(1) without allocating.
//!
//! Token ids are kept as keyed 64-bit digests (SipHash with a random key per
//! list), not strings: a million revoked `jti`s take 10 MiB, and nobody who
//! does not know the key can make a `jti` collide with a revoked one.

use std::collections::hash_map::RandomState;
use std::collections::HashMap;
use std::hash::BuildHasher;

/// A client or subject entry: which provider (`None`: any) and, when set,
/// only tokens issued before this instant (tokens without `iat` too).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Cutoff {
    pub provider: Option<usize>,
    pub issued_before: Option<u64>,
}

impl Cutoff {
    fn revokes(&self, provider: usize, iat: Option<u64>) -> bool {
        self.provider.is_none_or(|p| p == provider)
            && match (self.issued_before, iat) {
                (None, _) | (Some(_), None) => true,
                (Some(before), Some(iat)) => iat < before,
            }
    }
}

/// Why a token is revoked: the kind of entry, never the entry itself.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Revoked {
    Token,
    Client,
    Subject,
}

impl Revoked {
    pub fn describe(self) -> &'static str {
        match self {
            Revoked::Token => "the token's id is on the revocation list",
            Revoked::Client => "the token's client is on the revocation list",
            Revoked::Subject => "the token's subject is on the revocation list",
        }
    }
}

/// Token ids collected one by one (a fetched list streams them in without
/// ever holding them as strings), made into the set at the end.
#[derive(Debug, Default)]
pub struct TokenIds {
    key: RandomState,
    digests: Vec<u64>,
}

impl TokenIds {
    pub fn add(&mut self, jti: &str) {
        self.digests.push(self.key.hash_one(jti).max(1));
    }
}

#[derive(Debug, Default)]
pub struct RevocationList {
    tokens: DigestSet,
    clients: HashMap<Box<str>, Vec<Cutoff>>,
    subjects: HashMap<Box<str>, Vec<Cutoff>>,
}

/// What a request's token is, as far as revocation is concerned.
pub struct TokenFacts<'a> {
    pub provider: usize,
    pub jti: Option<&'a str>,
    pub client_id: Option<&'a str>,
    pub subject: Option<&'a str>,
    pub iat: Option<u64>,
}

impl RevocationList {
    pub fn new(
        jtis: &[&str],
        clients: Vec<(String, Cutoff)>,
        subjects: Vec<(String, Cutoff)>,
    ) -> Self {
        let mut ids = TokenIds::default();
        for j in jtis {
            ids.add(j);
        }
        Self::with_tokens(ids, clients, subjects)
    }

    pub fn with_tokens(
        tokens: TokenIds,
        clients: Vec<(String, Cutoff)>,
        subjects: Vec<(String, Cutoff)>,
    ) -> Self {
        let mut by_client: HashMap<Box<str>, Vec<Cutoff>> = HashMap::new();
        for (c, cut) in clients {
            by_client.entry(c.into()).or_default().push(cut);
        }
        let mut by_subject: HashMap<Box<str>, Vec<Cutoff>> = HashMap::new();
        for (s, cut) in subjects {
            by_subject.entry(s.into()).or_default().push(cut);
        }
        RevocationList {
            tokens: DigestSet::build(tokens),
            clients: by_client,
            subjects: by_subject,
        }
    }

    pub fn check(&self, t: &TokenFacts<'_>) -> Option<Revoked> {
        if t.jti.is_some_and(|j| self.tokens.contains(j)) {
            return Some(Revoked::Token);
        }
        let hit = |map: &HashMap<Box<str>, Vec<Cutoff>>, key: Option<&str>| {
            key.and_then(|k| map.get(k))
                .is_some_and(|cuts| cuts.iter().any(|c| c.revokes(t.provider, t.iat)))
        };
        if hit(&self.clients, t.client_id) {
            return Some(Revoked::Client);
        }
        if hit(&self.subjects, t.subject) {
            return Some(Revoked::Subject);
        }
        None
    }

    /// Entries of each kind, for logs.
    pub fn counts(&self) -> (usize, usize, usize) {
        (
            self.tokens.len,
            self.clients.values().map(Vec::len).sum(),
            self.subjects.values().map(Vec::len).sum(),
        )
    }

    /// Bytes held by the token digests (the part that scales).
    pub fn token_bytes(&self) -> usize {
        self.tokens.slots.len() * std::mem::size_of::<u64>()
    }
}

/// A read-only open-addressing set of keyed 64-bit digests: linear probing,
/// 80 % full at most, 0 marks an empty slot (a digest of 0 is stored as 1).
#[derive(Debug, Default)]
struct DigestSet {
    key: RandomState,
    slots: Vec<u64>,
    len: usize,
}

impl DigestSet {
    fn build(ids: TokenIds) -> Self {
        let n = ids.digests.len();
        let capacity = (n * 5 / 4).max(n + 1).max(16);
        let mut set = DigestSet {
            key: ids.key,
            slots: vec![0; capacity],
            len: 0,
        };
        for d in ids.digests {
            let mut i = set.home(d);
            loop {
                match set.slots.get(i).copied() {
                    Some(0) => {
                        if let Some(s) = set.slots.get_mut(i) {
                            *s = d;
                        }
                        set.len += 1;
                        break;
                    }
                    Some(x) if x == d => break,
                    Some(_) => i = (i + 1) % capacity,
                    None => break,
                }
            }
        }
        set
    }

    fn digest(&self, item: &str) -> u64 {
        self.key.hash_one(item).max(1)
    }

    /// The first slot to probe: the digest scaled onto the table.
    fn home(&self, d: u64) -> usize {
        ((u128::from(d) * self.slots.len() as u128) >> 64) as usize
    }

    fn contains(&self, item: &str) -> bool {
        if self.len == 0 {
            return false;
        }
        let d = self.digest(item);
        let mut i = self.home(d);
        for _ in 0..self.slots.len() {
            match self.slots.get(i).copied() {
                Some(0) | None => return false,
                Some(x) if x == d => return true,
                Some(_) => i = (i + 1) % self.slots.len(),
            }
        }
        false
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn facts<'a>(
        jti: Option<&'a str>,
        client: Option<&'a str>,
        sub: Option<&'a str>,
        iat: Option<u64>,
    ) -> TokenFacts<'a> {
        TokenFacts {
            provider: 0,
            jti,
            client_id: client,
            subject: sub,
            iat,
        }
    }

    #[test]
    fn revoked_token_ids_are_found_and_others_are_not() {
        let ids: Vec<String> = (0..10_000).map(|i| format!("jti-{i}")).collect();
        let refs: Vec<&str> = ids.iter().map(String::as_str).collect();
        let list = RevocationList::new(&refs, vec![], vec![]);
        for id in &ids {
            assert_eq!(
                list.check(&facts(Some(id), None, None, None)),
                Some(Revoked::Token)
            );
        }
        for i in 10_000..20_000 {
            let other = format!("jti-{i}");
            assert_eq!(list.check(&facts(Some(&other), None, None, None)), None);
        }
        assert!(list.token_bytes() <= 10_000 * 8 * 5 / 4 + 8);
    }

    #[test]
    fn issued_before_revokes_older_tokens_and_tokens_without_iat() {
        let cut = Cutoff {
            provider: None,
            issued_before: Some(1_000),
        };
        let list = RevocationList::new(&[], vec![("ci".into(), cut)], vec![("svc".into(), cut)]);
        assert_eq!(
            list.check(&facts(None, Some("ci"), None, Some(999))),
            Some(Revoked::Client)
        );
        assert_eq!(
            list.check(&facts(None, Some("ci"), None, None)),
            Some(Revoked::Client)
        );
        assert_eq!(
            list.check(&facts(None, Some("ci"), None, Some(1_000))),
            None
        );
        assert_eq!(
            list.check(&facts(None, None, Some("svc"), Some(5))),
            Some(Revoked::Subject)
        );
        assert_eq!(
            list.check(&facts(None, None, Some("svc"), Some(5_000))),
            None
        );
    }

    #[test]
    fn an_entry_for_one_provider_leaves_the_same_client_of_another_alone() {
        let cut = Cutoff {
            provider: Some(1),
            issued_before: None,
        };
        let list = RevocationList::new(&[], vec![("ci".into(), cut)], vec![]);
        assert_eq!(list.check(&facts(None, Some("ci"), None, None)), None);
        let mut f = facts(None, Some("ci"), None, None);
        f.provider = 1;
        assert_eq!(list.check(&f), Some(Revoked::Client));
    }

    #[test]
    fn an_empty_list_revokes_nothing() {
        let list = RevocationList::default();
        assert_eq!(
            list.check(&facts(Some("a"), Some("b"), Some("c"), None)),
            None
        );
    }
}
