//! State shared by a gateway's workers: a key–value store with
//! compare-and-swap, as proxy-wasm hosts offer it ("shared data"). Envoy keeps
//! it for the life of the process and has no delete, so users bound their
//! keys. `MemoryStore` is the same contract inside one worker: for tests, the
//! CLI, and hosts without shared data (each worker then has its own).

use std::cell::RefCell;
use std::collections::HashMap;

/// `set` lost a race: another worker wrote the key since it was read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SetError {
    CasMismatch,
    /// The host refused the write (no shared memory zone, out of space).
    Failed(String),
}

pub trait SharedStore {
    /// The value and its version (`cas`); `None` when the key was never set.
    fn get(&self, key: &str) -> Option<(Vec<u8>, u32)>;
    /// Writes `value` if the key is still at version `cas`; `cas` 0 writes
    /// unconditionally.
    fn set(&self, key: &str, value: &[u8], cas: u32) -> Result<(), SetError>;
}

/// What a [`MemoryStore`] holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct StoreUsage {
    pub entries: usize,
    pub key_bytes: usize,
    pub value_bytes: usize,
}

#[derive(Debug, Default)]
pub struct MemoryStore {
    entries: RefCell<HashMap<String, (Vec<u8>, u32)>>,
}

impl MemoryStore {
    pub fn new() -> Self {
        MemoryStore::default()
    }

    /// What the store holds (for capacity measurements).
    pub fn usage(&self) -> StoreUsage {
        let entries = self.entries.borrow();
        StoreUsage {
            entries: entries.len(),
            key_bytes: entries.keys().map(String::len).sum(),
            value_bytes: entries.values().map(|(v, _)| v.len()).sum(),
        }
    }
}

impl SharedStore for MemoryStore {
    fn get(&self, key: &str) -> Option<(Vec<u8>, u32)> {
        self.entries.borrow().get(key).cloned()
    }

    fn set(&self, key: &str, value: &[u8], cas: u32) -> Result<(), SetError> {
        let mut entries = self.entries.borrow_mut();
        let current = entries.get(key).map_or(0, |(_, c)| *c);
        if cas != 0 && cas != current {
            return Err(SetError::CasMismatch);
        }
        // Versions start at 1 so that 0 keeps meaning "unconditional".
        let next = current.wrapping_add(1).max(1);
        entries.insert(key.to_string(), (value.to_vec(), next));
        Ok(())
    }
}
