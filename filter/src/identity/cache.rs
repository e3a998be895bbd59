//! Verified-token cache, one per worker and configuration. Machine clients
//! re-use a token for minutes, so most requests can skip parsing and the
//! signature check. An entry holds the token itself (a hit needs the exact
//! same bytes, so no hash collision can ever lend one token another's
//! identity) and the identity already extracted, and is used only while the
//! token is within `exp` (+ skew) and the provider's key set is the one that
//! verified it.

use crate::identity::validate::{self, Failure, Identity, KeyStore, Keys};
use crate::jose::dpop::ProofKeys;
use crate::jose::jwks::KeySet;
use crate::policy::config::{Config, KeySource};
use crate::vocab::reason::Denial;
use std::collections::hash_map::RandomState;
use std::collections::{HashMap, VecDeque};
use std::hash::{BuildHasher, BuildHasherDefault, Hasher};
use std::rc::{Rc, Weak};

/// Token bytes the cache may hold per entry of capacity, on average: entries
/// are evicted, oldest first, when either bound is reached. Bounds the memory
/// an attacker can make it hold with large tokens (at most 8 MiB by default).
pub const BYTES_PER_ENTRY: usize = 2048;

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
    token: Box<str>,
    result: Cached,
    provider: usize,
    keys: Weak<KeySet>,
    /// Unix seconds after which the entry is stale (`exp` + clock skew).
    valid_until: u64,
}

#[derive(Debug)]
pub struct TokenCache {
    /// Keyed by a seeded hash of the token; entries keep the token, so a
    /// colliding token only takes the other's slot, never its verdict.
    map: HashMap<u64, Entry, BuildHasherDefault<Slot>>,
    /// Insertion order, for eviction when full.
    order: VecDeque<u64>,
    seed: u64,
    capacity: usize,
    max_bytes: usize,
    bytes: usize,
    pub hits: u64,
    pub misses: u64,
    /// Prepared keys of recent DPoP proofs (one per client key).
    pub proof_keys: ProofKeys,
}

/// Client DPoP keys each worker keeps prepared.
pub const PROOF_KEYS: usize = 1024;

impl TokenCache {
    pub fn new(capacity: usize) -> Self {
        TokenCache {
            map: HashMap::default(),
            order: VecDeque::new(),
            seed: RandomState::new().build_hasher().finish(),
            capacity,
            max_bytes: capacity.saturating_mul(BYTES_PER_ENTRY),
            bytes: 0,
            hits: 0,
            misses: 0,
            proof_keys: ProofKeys::new(if capacity == 0 { 0 } else { PROOF_KEYS }),
        }
    }

    pub fn len(&self) -> usize {
        self.map.len()
    }

    pub fn is_empty(&self) -> bool {
        self.map.is_empty()
    }

    /// Token bytes held.
    pub fn bytes(&self) -> usize {
        self.bytes
    }

    /// A usable entry for this exact token, given the provider's current key
    /// set and the time.
    pub fn get(
        &mut self,
        token: &str,
        current_keys: impl Fn(usize) -> Option<Rc<KeySet>>,
        now: u64,
    ) -> Option<Cached> {
        let key = slot(self.seed, token);
        let fresh = match self.map.get(&key) {
            Some(e) if same_text(&e.token, token) => {
                let same_keys = current_keys(e.provider)
                    .is_some_and(|k| std::ptr::eq(Rc::as_ptr(&k), e.keys.as_ptr()));
                Some(same_keys && now <= e.valid_until)
            }
            _ => None,
        };
        match fresh {
            Some(true) => {
                self.hits += 1;
                self.map.get(&key).map(|e| e.result.clone())
            }
            Some(false) => {
                // Expired or verified by keys no longer in force: never reused.
                self.remove(key);
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
        token: &str,
        result: Cached,
        provider: usize,
        keys: &Rc<KeySet>,
        valid_until: u64,
    ) {
        if self.capacity == 0 || token.len() > self.max_bytes {
            return;
        }
        let key = slot(self.seed, token);
        self.remove(key);
        self.bytes += token.len();
        self.map.insert(
            key,
            Entry {
                token: token.into(),
                result,
                provider,
                keys: Rc::downgrade(keys),
                valid_until,
            },
        );
        self.order.push_back(key);
        while self.map.len() > self.capacity || self.bytes > self.max_bytes {
            match self.order.pop_front() {
                Some(old) => self.remove(old),
                None => break,
            }
        }
        // `order` may hold keys already removed (stale on lookup, or
        // replaced): trim it so it stays bounded too.
        if self.order.len() > self.capacity.saturating_mul(2) {
            let map = &self.map;
            self.order.retain(|k| map.contains_key(k));
        }
    }

    fn remove(&mut self, key: u64) {
        if let Some(e) = self.map.remove(&key) {
            self.bytes = self.bytes.saturating_sub(e.token.len());
        }
    }
}

/// The map's hasher: its keys are `slot` values, already mixed and seeded,
/// so hashing them again (SipHash by default) would only cost time.
#[derive(Default)]
struct Slot(u64);

impl Hasher for Slot {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        for b in bytes {
            self.0 = self.0.rotate_left(8) ^ u64::from(*b);
        }
    }

    fn write_u64(&mut self, n: u64) {
        self.0 = n;
    }
}

/// A cheap seeded hash of the token, a word at a time. Not a MAC and needs
/// not be one: a hit compares the whole token. The random seed keeps anyone
/// from choosing tokens that land in one slot on purpose. (SipHash costs
/// several times as much over a 1 KB token in V8, on every request.)
fn slot(seed: u64, token: &str) -> u64 {
    const K: u64 = 0x9E37_79B9_7F4A_7C15;
    let mut h = seed ^ (token.len() as u64).wrapping_mul(K);
    let mut words = token.as_bytes().chunks_exact(8);
    for w in &mut words {
        let mut b = [0u8; 8];
        b.copy_from_slice(w);
        h = (h ^ u64::from_le_bytes(b)).wrapping_mul(K).rotate_left(29);
    }
    let mut tail = [0u8; 8];
    for (dst, src) in tail.iter_mut().zip(words.remainder()) {
        *dst = *src;
    }
    h = (h ^ u64::from_le_bytes(tail)).wrapping_mul(K);
    h ^ (h >> 32)
}

/// `a == b`, eight bytes at a time: the Wasm build's `memcmp` (wasi-libc)
/// compares byte by byte, and a hit compares a whole token.
fn same_text(a: &str, b: &str) -> bool {
    let (a, b) = (a.as_bytes(), b.as_bytes());
    if a.len() != b.len() {
        return false;
    }
    let (wa, wb) = (a.chunks_exact(8), b.chunks_exact(8));
    let tails_equal = wa.remainder() == wb.remainder();
    tails_equal
        && wa.zip(wb).fold(0u64, |diff, (x, y)| {
            let mut p = [0u8; 8];
            let mut q = [0u8; 8];
            p.copy_from_slice(x);
            q.copy_from_slice(y);
            diff | (u64::from_le_bytes(p) ^ u64::from_le_bytes(q))
        }) == 0
}

/// Like `validate`, through a verified-token cache: a token seen before with
/// the same key set is answered from the cache while it has not expired.
pub fn authenticate(
    cfg: &Config,
    token: &str,
    store: &dyn KeyStore,
    cache: Option<&mut TokenCache>,
    now: u64,
) -> Result<Rc<Identity>, Failure> {
    // Tokens that cannot be a JWS are refused without hashing them: junk must
    // stay cheap, and it would only fill the cache with misses.
    let plausible =
        token.len() <= cfg.max_token_bytes && crate::jose::scan::shape(token.as_bytes()).dots == 2;
    let Some(cache) = cache.filter(|_| plausible) else {
        return validate::validate(cfg, token, store, now).map(Rc::new);
    };
    let current_keys = |p: usize| -> Option<Rc<KeySet>> {
        match &cfg.providers.get(p)?.keys {
            KeySource::Inline(set) => Some(Rc::clone(set)),
            KeySource::Remote(_) => match store.keys(p) {
                Keys::Ready(set) => Some(set),
                _ => None,
            },
        }
    };
    match cache.get(token, current_keys, now) {
        Some(Cached::Valid(id)) => return Ok(id),
        Some(Cached::Invalid(denial)) => {
            return Err(Failure::Denied {
                provider: None,
                denial,
            })
        }
        None => {}
    }
    match validate::verify(cfg, token, store, now) {
        Ok(v) => {
            let id = Rc::new(v.identity);
            cache.insert(
                token,
                Cached::Valid(Rc::clone(&id)),
                id.provider,
                &v.keys,
                v.valid_until,
            );
            Ok(id)
        }
        Err((failure, Some(bad))) => {
            if let Failure::Denied { denial, .. } = &failure {
                cache.insert(
                    token,
                    Cached::Invalid(denial.clone()),
                    bad.provider,
                    &bad.keys,
                    bad.valid_until,
                );
            }
            Err(failure)
        }
        Err((failure, None)) => Err(failure),
    }
}
