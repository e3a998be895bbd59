//! DPoP proof replay detection (RFC 9449 §11.1) across a gateway's workers,
//! in bounded memory.
//!
//! A proof is remembered by a 16-byte digest of its key thumbprint and `jti`
//! until its validity window closes. Digests are spread over a fixed number
//! of shared-store keys ("buckets", `scopegate.dpop.<n>`) of at most
//! `BUCKET_ENTRIES` entries each; expired entries are dropped on every write.
//! A bucket full of live proofs refuses new ones (fail closed) rather than
//! forgetting a live one, which would let it be replayed.

use crate::identity::shared::{SetError, SharedStore};
use sha2::{Digest, Sha256};

/// Entries per bucket: one read and one write of ~600 bytes per proof.
pub const BUCKET_ENTRIES: usize = 32;
const DIGEST_BYTES: usize = 16;
const ENTRY_BYTES: usize = DIGEST_BYTES + 8;
/// Rounds of read–modify–write before giving up on a contended bucket.
const ATTEMPTS: usize = 8;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Claim {
    /// First use within the window: remembered until `expires`.
    Fresh,
    /// Seen before, and its window is still open.
    Replayed,
    /// Every slot for this proof holds a live proof: refused.
    Full,
    /// The store could not be written.
    Unavailable(String),
}

/// The digest a proof is remembered by: a key cannot use another key's `jti`
/// space, so one client cannot block another's proofs.
pub fn digest(jkt: &str, jti: &str) -> [u8; DIGEST_BYTES] {
    let mut h = Sha256::new();
    h.update(jkt.as_bytes());
    h.update([0u8]);
    h.update(jti.as_bytes());
    let full = h.finalize();
    let mut out = [0u8; DIGEST_BYTES];
    for (o, b) in out.iter_mut().zip(full.iter()) {
        *o = *b;
    }
    out
}

/// Number of buckets for a capacity (proofs live at once).
pub fn buckets(capacity: usize) -> usize {
    capacity.div_ceil(BUCKET_ENTRIES).max(1)
}

/// Remembers the proof until `expires` (seconds), unless it is already known.
pub fn claim(
    store: &dyn SharedStore,
    capacity: usize,
    digest: &[u8; DIGEST_BYTES],
    expires: u64,
    now: u64,
) -> Claim {
    let head = digest.first_chunk::<8>().copied().unwrap_or_default();
    let bucket = u64::from_le_bytes(head) % buckets(capacity) as u64;
    let key = format!("scopegate.dpop.{bucket}");
    for _ in 0..ATTEMPTS {
        let (stored, cas) = match store.get(&key) {
            Some(v) => v,
            None => {
                // Create the key first, so that every later write is a
                // compare-and-swap: two workers creating it at once both
                // write an empty bucket, which loses nothing.
                if let Err(SetError::Failed(why)) = store.set(&key, &[], 0) {
                    return Claim::Unavailable(why);
                }
                continue;
            }
        };
        let mut live: Vec<&[u8]> = stored
            .chunks_exact(ENTRY_BYTES)
            .filter(|e| entry_expiry(e) > now)
            .collect();
        if live
            .iter()
            .any(|e| e.get(..DIGEST_BYTES) == Some(&digest[..]))
        {
            return Claim::Replayed;
        }
        if live.len() >= BUCKET_ENTRIES {
            return Claim::Full;
        }
        let mut entry = [0u8; ENTRY_BYTES];
        for (o, b) in entry
            .iter_mut()
            .zip(digest.iter().chain(expires.to_le_bytes().iter()))
        {
            *o = *b;
        }
        live.push(&entry);
        let value: Vec<u8> = live.concat();
        match store.set(&key, &value, cas) {
            Ok(()) => return Claim::Fresh,
            Err(SetError::CasMismatch) => continue,
            Err(SetError::Failed(why)) => return Claim::Unavailable(why),
        }
    }
    Claim::Unavailable(format!(
        "the replay cache bucket {key} stayed contended for {ATTEMPTS} attempts"
    ))
}

fn entry_expiry(entry: &[u8]) -> u64 {
    let mut b = [0u8; 8];
    for (o, x) in b.iter_mut().zip(entry.iter().skip(DIGEST_BYTES)) {
        *o = *x;
    }
    u64::from_le_bytes(b)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::identity::shared::MemoryStore;

    #[test]
    fn a_proof_is_fresh_once_then_replayed_until_it_expires() {
        let s = MemoryStore::new();
        let d = digest("key", "jti-1");
        assert_eq!(claim(&s, 1024, &d, 160, 100), Claim::Fresh);
        assert_eq!(claim(&s, 1024, &d, 160, 159), Claim::Replayed);
        // Its window closed: the entry is gone, the proof counts as new
        // (the caller refuses it for its age long before this).
        assert_eq!(claim(&s, 1024, &d, 220, 160), Claim::Fresh);
    }

    #[test]
    fn the_same_jti_under_another_key_is_another_proof() {
        let s = MemoryStore::new();
        assert_eq!(claim(&s, 1024, &digest("a", "j"), 160, 100), Claim::Fresh);
        assert_eq!(claim(&s, 1024, &digest("b", "j"), 160, 100), Claim::Fresh);
    }

    #[test]
    fn a_full_bucket_refuses_rather_than_forgets() {
        let s = MemoryStore::new();
        // Capacity of one bucket: every proof lands in it.
        for i in 0..BUCKET_ENTRIES {
            assert_eq!(
                claim(&s, 1, &digest("k", &i.to_string()), 200, 100),
                Claim::Fresh
            );
        }
        assert_eq!(
            claim(&s, 1, &digest("k", "one more"), 200, 100),
            Claim::Full
        );
        // Every earlier proof is still known.
        assert_eq!(claim(&s, 1, &digest("k", "0"), 200, 150), Claim::Replayed);
        // Once they expire, room again.
        assert_eq!(
            claim(&s, 1, &digest("k", "one more"), 300, 200),
            Claim::Fresh
        );
    }

    #[test]
    fn garbage_in_the_store_is_read_as_no_entries() {
        let s = MemoryStore::new();
        let key = "scopegate.dpop.0";
        assert_eq!(s.set(key, b"not entries at all", 0), Ok(()));
        assert_eq!(claim(&s, 1, &digest("k", "j"), 200, 100), Claim::Fresh);
        assert_eq!(claim(&s, 1, &digest("k", "j"), 200, 100), Claim::Replayed);
    }
}
