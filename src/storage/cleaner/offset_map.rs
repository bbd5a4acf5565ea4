//! The cleaner's dedupe map (Kafka's `SkimpyOffsetMap`): key → latest
//! offset over the dirty section of a log, keyed by a 128-bit hash of the
//! key (Kafka keys it by MD5; a collision could drop a record, as in Kafka,
//! with the same vanishing odds), bounded by `log.cleaner.dedupe.buffer.size`.

use std::collections::HashMap;
use std::hash::{BuildHasher, Hasher, RandomState};

use crate::types::Offset;

/// Memory one entry costs: the 16-byte hash, the 8-byte offset and the
/// hash table's slack (it stays at most 7/8 full).
pub(crate) const ENTRY_BYTES: usize = 32;

/// Key hash → offset of the key's last record.
pub(crate) struct OffsetMap {
    entries: HashMap<u128, i64>,
    capacity_entries: usize,
    hashers: (RandomState, RandomState),
}

impl OffsetMap {
    /// A map that holds at most `buffer_bytes / ENTRY_BYTES` keys (at least
    /// one). Memory grows with use, never beyond the bound.
    pub(crate) fn new(buffer_bytes: usize) -> OffsetMap {
        OffsetMap {
            entries: HashMap::new(),
            capacity_entries: (buffer_bytes / ENTRY_BYTES).max(1),
            hashers: (RandomState::new(), RandomState::new()),
        }
    }

    fn hash(&self, key: &[u8]) -> u128 {
        let mut a = self.hashers.0.build_hasher();
        let mut b = self.hashers.1.build_hasher();
        a.write(key);
        b.write(key);
        b.write_u8(0xa5);
        (u128::from(a.finish()) << 64) | u128::from(b.finish())
    }

    /// Whether `more` new keys could still be put.
    pub(crate) fn has_room_for(&self, more: usize) -> bool {
        self.entries.len().saturating_add(more) <= self.capacity_entries
    }

    /// Records `offset` as the latest for `key`. The caller checked
    /// [`OffsetMap::has_room_for`]; a key already present never needs room.
    pub(crate) fn put(&mut self, key: &[u8], offset: Offset) {
        let h = self.hash(key);
        if self.entries.len() >= self.capacity_entries && !self.entries.contains_key(&h) {
            return;
        }
        self.entries.insert(h, offset.0);
    }

    /// The latest offset of `key`, if the map saw it.
    pub(crate) fn get(&self, key: &[u8]) -> Option<Offset> {
        self.entries.get(&self.hash(key)).map(|o| Offset(*o))
    }

    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.entries.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_the_latest_offset_and_its_bound() {
        let mut m = OffsetMap::new(3 * ENTRY_BYTES);
        m.put(b"a", Offset(1));
        m.put(b"b", Offset(2));
        m.put(b"a", Offset(5));
        assert_eq!(m.get(b"a"), Some(Offset(5)));
        assert_eq!(m.get(b"c"), None);
        assert!(m.has_room_for(1));
        assert!(!m.has_room_for(2));
        m.put(b"c", Offset(6));
        m.put(b"d", Offset(7)); // full: ignored
        assert_eq!(m.len(), 3);
        assert_eq!(m.get(b"d"), None);
        m.put(b"b", Offset(8)); // present keys still move
        assert_eq!(m.get(b"b"), Some(Offset(8)));
    }
}
