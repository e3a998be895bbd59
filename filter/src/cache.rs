//! Verified-token cache, one per worker and configuration. Machine clients
//! re-use a token for minutes, so most requests can skip parsing and the
//! signature check. An entry is keyed by a SHA-256 of the whole token, holds
//! the identity already extracted, and is used only while the token is within
//! `exp` (+ skew) and the provider's key set is the one that verified it.

use crate::jwks::KeySet;
use crate::reason::Denial;
use crate::validate::Identity;
use std::collections::{HashMap, VecDeque};
use std::rc::{Rc, Weak};

pub const DEFAULT_CAPACITY: usize = 4096;

type Key = [u8; 16];

/// What a cache lookup may answer.
#[derive(Clone, Debug)]
pub enum Cached {
    Valid(Rc<Identity>),
    /// A signature that did not verify with this key set: re-checking it
    /// would give the same answer, at full cost.
    Invalid(Denial),
}

#[derive(Debug)]
struct Entry {
    result: Cached,
    provider: usize,
    keys: Weak<KeySet>,
    /// Unix seconds after which the entry is stale (`exp` + clock skew).
    valid_until: u64,
}

#[derive(Debug, Default)]
pub struct TokenCache {
    map: HashMap<Key, Entry>,
    /// Insertion order, for eviction when full.
    order: VecDeque<Key>,
    capacity: usize,
    pub hits: u64,
    pub misses: u64,
}

/// The cache key of a token: a truncated SHA-256 (collisions need ~2^64 work).
pub fn key(token: &str) -> Key {
    let digest = ring::digest::digest(&ring::digest::SHA256, token.as_bytes());
    let mut k = [0u8; 16];
    for (dst, src) in k.iter_mut().zip(digest.as_ref()) {
        *dst = *src;
    }
    k
}

impl TokenCache {
    pub fn new(capacity: usize) -> Self {
        TokenCache {
            capacity,
            ..TokenCache::default()
        }
    }

    pub fn len(&self) -> usize {
        self.map.len()
    }

    pub fn is_empty(&self) -> bool {
        self.map.is_empty()
    }

    /// A usable entry, given the provider's current key set and the time.
    pub fn get(
        &mut self,
        key: &Key,
        current_keys: impl Fn(usize) -> Option<Rc<KeySet>>,
        now: u64,
    ) -> Option<Cached> {
        let fresh = match self.map.get(key) {
            None => None,
            Some(e) => {
                let same_keys = current_keys(e.provider)
                    .is_some_and(|k| std::ptr::eq(Rc::as_ptr(&k), e.keys.as_ptr()));
                Some(same_keys && now <= e.valid_until)
            }
        };
        match fresh {
            Some(true) => {
                self.hits += 1;
                self.map.get(key).map(|e| e.result.clone())
            }
            Some(false) => {
                // Expired or verified by keys no longer in force: never reused.
                self.map.remove(key);
                self.misses += 1;
                None
            }
            None => {
                self.misses += 1;
                None
            }
        }
    }

    pub fn insert(
        &mut self,
        key: Key,
        result: Cached,
        provider: usize,
        keys: &Rc<KeySet>,
        valid_until: u64,
    ) {
        if self.capacity == 0 {
            return;
        }
        let entry = Entry {
            result,
            provider,
            keys: Rc::downgrade(keys),
            valid_until,
        };
        if self.map.insert(key, entry).is_none() {
            self.order.push_back(key);
        }
        while self.map.len() > self.capacity {
            match self.order.pop_front() {
                Some(old) => {
                    self.map.remove(&old);
                }
                None => break,
            }
        }
        // `order` may hold keys already removed (expired on lookup): trim it
        // so it stays bounded too.
        if self.order.len() > self.capacity.saturating_mul(2) {
            let map = &self.map;
            self.order.retain(|k| map.contains_key(k));
        }
    }
}
