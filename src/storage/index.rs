//! The sparse per-segment indexes, memory-mapped: `.index` maps offsets to
//! file positions (8-byte entries: relative offset u32 BE, position u32 BE),
//! `.timeindex` maps timestamps to offsets (12-byte entries: timestamp i64
//! BE, relative offset u32 BE). Active indexes are preallocated to
//! `segment.index.bytes` and trimmed to their entries when sealed.

use std::path::Path;

use super::error::StorageError;
use super::mmap::{MappedFile, PendingSync, WriteMode};
use crate::types::{FilePosition, Offset, TimestampMs};

/// One `.index` entry.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct OffsetPosition {
    pub offset: Offset,
    pub position: FilePosition,
}

/// One `.timeindex` entry.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TimestampOffset {
    pub timestamp: TimestampMs,
    pub offset: Offset,
}

fn be_u32(b: &[u8], at: usize) -> u32 {
    u32::from_be_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]])
}

fn be_i64(b: &[u8], at: usize) -> i64 {
    let mut a = [0u8; 8];
    a.copy_from_slice(&b[at..at + 8]);
    i64::from_be_bytes(a)
}

/// Largest `i` in `0..n` with `key(i) <= target`, assuming `key` is
/// non-decreasing; `None` if `key(0) > target` or `n == 0`.
fn largest_lower_bound<K: Ord>(n: usize, target: K, key: impl Fn(usize) -> K) -> Option<usize> {
    if n == 0 || key(0) > target {
        return None;
    }
    let (mut lo, mut hi) = (0usize, n - 1);
    while lo < hi {
        let mid = lo + (hi - lo).div_ceil(2);
        if key(mid) <= target {
            lo = mid;
        } else {
            hi = mid - 1;
        }
    }
    Some(lo)
}

/// Opens an index for a segment: writable (preallocated) or sealed.
fn open_index_file(
    path: &Path,
    entry_bytes: usize,
    writable_capacity: Option<usize>,
) -> Result<MappedFile, StorageError> {
    match writable_capacity {
        None => MappedFile::open_read_only(path),
        Some(capacity) => {
            let len = std::fs::metadata(path)
                .map_err(StorageError::io("stat", path))?
                .len() as usize;
            let logical = len / entry_bytes * entry_bytes;
            MappedFile::open_writable(path, logical, capacity.max(logical), WriteMode::Map)
        }
    }
}

/// Trims a writable index file to its entries and remaps it read-only.
fn seal_index_file(file: &mut MappedFile) -> Result<(), StorageError> {
    if !file.is_writable() {
        return Ok(());
    }
    let len = file.len();
    file.trim_to(len)?;
    *file = MappedFile::open_read_only(file.path())?;
    Ok(())
}

/// The offset → file position index of one segment.
pub struct OffsetIndex {
    file: MappedFile,
    base_offset: Offset,
}

impl OffsetIndex {
    pub const ENTRY_BYTES: usize = 8;

    /// A new, empty, writable index with room for `capacity_bytes`.
    pub fn create(
        path: &Path,
        base_offset: Offset,
        capacity_bytes: usize,
    ) -> Result<OffsetIndex, StorageError> {
        Ok(OffsetIndex {
            file: MappedFile::create(path, capacity_bytes, WriteMode::Map)?,
            base_offset,
        })
    }

    /// Opens an existing index; writable with `Some(capacity)`, else sealed.
    /// Entries are not checked: call [`OffsetIndex::validate`].
    pub fn open(
        path: &Path,
        base_offset: Offset,
        writable_capacity: Option<usize>,
    ) -> Result<OffsetIndex, StorageError> {
        Ok(OffsetIndex {
            file: open_index_file(path, Self::ENTRY_BYTES, writable_capacity)?,
            base_offset,
        })
    }

    pub fn entries(&self) -> usize {
        self.file.len() / Self::ENTRY_BYTES
    }

    pub fn max_entries(&self) -> usize {
        self.file.capacity() / Self::ENTRY_BYTES
    }

    pub fn is_full(&self) -> bool {
        self.entries() >= self.max_entries()
    }

    /// Allocates room for `entries` more entries before anything else is
    /// written (see [`MappedFile::reserve`]), so that adding them cannot
    /// fail for lack of disk space after the log was appended.
    pub fn reserve(&mut self, entries: usize) -> Result<(), StorageError> {
        self.file.reserve(entries.saturating_mul(Self::ENTRY_BYTES))
    }

    pub fn size_bytes(&self) -> usize {
        self.file.len()
    }

    /// Entry `i`; the caller keeps `i < entries()`.
    pub fn entry(&self, i: usize) -> OffsetPosition {
        let b = self.file.as_slice();
        let at = i * Self::ENTRY_BYTES;
        OffsetPosition {
            offset: Offset(self.base_offset.0 + be_u32(b, at) as i64),
            position: FilePosition(be_u32(b, at + 4)),
        }
    }

    pub fn last_entry(&self) -> Option<OffsetPosition> {
        let n = self.entries();
        (n > 0).then(|| self.entry(n - 1))
    }

    /// The entry with the largest offset `<= target`, or `(base, 0)`.
    pub fn lookup(&self, target: Offset) -> OffsetPosition {
        Self::lookup_in(self.file.as_slice(), self.base_offset, target)
    }

    /// [`OffsetIndex::lookup`] over an index's bytes (`bytes` holds whole
    /// entries of a segment at `base_offset`).
    pub(crate) fn lookup_in(b: &[u8], base_offset: Offset, target: Offset) -> OffsetPosition {
        let rel = |i: usize| be_u32(b, i * Self::ENTRY_BYTES) as i64;
        let target_rel = target.0.saturating_sub(base_offset.0);
        let entries = b.len() / Self::ENTRY_BYTES;
        match largest_lower_bound(entries, target_rel, rel) {
            Some(i) => OffsetPosition {
                offset: Offset(base_offset.0 + be_u32(b, i * Self::ENTRY_BYTES) as i64),
                position: FilePosition(be_u32(b, i * Self::ENTRY_BYTES + 4)),
            },
            None => OffsetPosition {
                offset: base_offset,
                position: FilePosition(0),
            },
        }
    }

    /// The entries' mapped bytes, alive without `self` (see
    /// [`MappedFile::range`]).
    pub(crate) fn range(&self) -> Option<super::mmap::MappedRange> {
        self.file.range(0, self.entries() * Self::ENTRY_BYTES)
    }

    /// Appends an entry; `Ok(false)` (nothing written) if the index is full
    /// or the entry would not be strictly after the last one.
    pub fn append(&mut self, offset: Offset, position: FilePosition) -> Result<bool, StorageError> {
        let rel = offset.0 - self.base_offset.0;
        debug_assert!(
            (0..=u32::MAX as i64).contains(&rel),
            "relative offset {rel} out of range"
        );
        if self.is_full() || !(0..=u32::MAX as i64).contains(&rel) {
            return Ok(false);
        }
        if let Some(last) = self.last_entry() {
            if offset <= last.offset || position <= last.position {
                debug_assert!(false, "index entries must increase");
                return Ok(false);
            }
        }
        let mut e = [0u8; Self::ENTRY_BYTES];
        e[..4].copy_from_slice(&(rel as u32).to_be_bytes());
        e[4..].copy_from_slice(&position.0.to_be_bytes());
        self.file.append(&e)?;
        Ok(true)
    }

    /// Checks the entries against the segment: whole entries, offsets and
    /// positions strictly increasing, positions inside the log.
    pub fn validate(&self, log_size_bytes: usize) -> Result<(), &'static str> {
        if self.file.len() % Self::ENTRY_BYTES != 0 {
            return Err("offset index size is not a multiple of 8");
        }
        let mut prev: Option<OffsetPosition> = None;
        for i in 0..self.entries() {
            let e = self.entry(i);
            if e.position.as_usize() >= log_size_bytes {
                return Err("offset index position beyond the log");
            }
            if let Some(p) = prev {
                if e.offset <= p.offset || e.position <= p.position {
                    return Err("offset index entries out of order");
                }
            }
            prev = Some(e);
        }
        Ok(())
    }

    pub fn flush(&mut self) -> Result<(), StorageError> {
        self.file.flush()
    }

    /// Trims to the entries written and remaps read-only.
    pub fn seal(&mut self) -> Result<(), StorageError> {
        seal_index_file(&mut self.file)
    }

    pub fn path(&self) -> &Path {
        self.file.path()
    }

    /// Sealed, mapped read-only over its first `len` bytes (a sealed
    /// segment mapped again; its file may still be preallocated).
    pub(crate) fn open_sealed(path: &Path, base_offset: Offset, len: usize) -> Result<OffsetIndex, StorageError> {
        Ok(OffsetIndex {
            file: MappedFile::open_read_only_prefix(path, Some(len))?,
            base_offset,
        })
    }

    /// Read-only without I/O; the trim and fsync are returned to be done
    /// later ([`MappedFile::seal_in_place`]).
    pub(crate) fn seal_in_place(&mut self) -> PendingSync {
        self.file.seal_in_place()
    }
}

/// The timestamp → offset index of one segment.
pub struct TimeIndex {
    file: MappedFile,
    base_offset: Offset,
}

impl TimeIndex {
    pub const ENTRY_BYTES: usize = 12;

    pub fn create(
        path: &Path,
        base_offset: Offset,
        capacity_bytes: usize,
    ) -> Result<TimeIndex, StorageError> {
        Ok(TimeIndex {
            file: MappedFile::create(path, capacity_bytes, WriteMode::Map)?,
            base_offset,
        })
    }

    pub fn open(
        path: &Path,
        base_offset: Offset,
        writable_capacity: Option<usize>,
    ) -> Result<TimeIndex, StorageError> {
        Ok(TimeIndex {
            file: open_index_file(path, Self::ENTRY_BYTES, writable_capacity)?,
            base_offset,
        })
    }

    pub fn entries(&self) -> usize {
        self.file.len() / Self::ENTRY_BYTES
    }

    pub fn max_entries(&self) -> usize {
        self.file.capacity() / Self::ENTRY_BYTES
    }

    pub fn is_full(&self) -> bool {
        self.entries() >= self.max_entries()
    }

    /// Allocates room for `entries` more entries before anything else is
    /// written (see [`MappedFile::reserve`]), so that adding them cannot
    /// fail for lack of disk space after the log was appended.
    pub fn reserve(&mut self, entries: usize) -> Result<(), StorageError> {
        self.file.reserve(entries.saturating_mul(Self::ENTRY_BYTES))
    }

    pub fn size_bytes(&self) -> usize {
        self.file.len()
    }

    pub fn entry(&self, i: usize) -> TimestampOffset {
        let b = self.file.as_slice();
        let at = i * Self::ENTRY_BYTES;
        TimestampOffset {
            timestamp: TimestampMs(be_i64(b, at)),
            offset: Offset(self.base_offset.0 + be_u32(b, at + 8) as i64),
        }
    }

    pub fn last_entry(&self) -> Option<TimestampOffset> {
        let n = self.entries();
        (n > 0).then(|| self.entry(n - 1))
    }

    /// The entry with the largest timestamp `<= target`, or
    /// `(NONE, base_offset)`.
    pub fn lookup(&self, target: TimestampMs) -> TimestampOffset {
        let b = self.file.as_slice();
        let ts = |i: usize| be_i64(b, i * Self::ENTRY_BYTES);
        match largest_lower_bound(self.entries(), target.0, ts) {
            Some(i) => self.entry(i),
            None => TimestampOffset {
                timestamp: TimestampMs::NONE,
                offset: self.base_offset,
            },
        }
    }

    /// Appends `(timestamp, offset)` if the timestamp is larger than the last
    /// entry's and there is room; `Ok(false)` otherwise.
    pub fn maybe_append(
        &mut self,
        timestamp: TimestampMs,
        offset: Offset,
    ) -> Result<bool, StorageError> {
        let rel = offset.0 - self.base_offset.0;
        if self.is_full() || !(0..=u32::MAX as i64).contains(&rel) {
            return Ok(false);
        }
        if let Some(last) = self.last_entry() {
            if timestamp <= last.timestamp {
                return Ok(false);
            }
            if offset < last.offset {
                debug_assert!(false, "time index offsets must not decrease");
                return Ok(false);
            }
        }
        let mut e = [0u8; Self::ENTRY_BYTES];
        e[..8].copy_from_slice(&timestamp.0.to_be_bytes());
        e[8..].copy_from_slice(&(rel as u32).to_be_bytes());
        self.file.append(&e)?;
        Ok(true)
    }

    /// Checks whole entries, strictly increasing timestamps, non-decreasing
    /// offsets, all below `next_offset`.
    pub fn validate(&self, next_offset: Offset) -> Result<(), &'static str> {
        if self.file.len() % Self::ENTRY_BYTES != 0 {
            return Err("time index size is not a multiple of 12");
        }
        let mut prev: Option<TimestampOffset> = None;
        for i in 0..self.entries() {
            let e = self.entry(i);
            if e.offset >= next_offset {
                return Err("time index offset beyond the log");
            }
            if let Some(p) = prev {
                if e.timestamp <= p.timestamp || e.offset < p.offset {
                    return Err("time index entries out of order");
                }
            }
            prev = Some(e);
        }
        Ok(())
    }

    pub fn flush(&mut self) -> Result<(), StorageError> {
        self.file.flush()
    }

    pub fn seal(&mut self) -> Result<(), StorageError> {
        seal_index_file(&mut self.file)
    }

    pub fn path(&self) -> &Path {
        self.file.path()
    }

    /// Sealed, mapped read-only over its first `len` bytes (a sealed
    /// segment mapped again; its file may still be preallocated).
    pub(crate) fn open_sealed(path: &Path, base_offset: Offset, len: usize) -> Result<TimeIndex, StorageError> {
        Ok(TimeIndex {
            file: MappedFile::open_read_only_prefix(path, Some(len))?,
            base_offset,
        })
    }

    /// Read-only without I/O; the trim and fsync are returned to be done
    /// later ([`MappedFile::seal_in_place`]).
    pub(crate) fn seal_in_place(&mut self) -> PendingSync {
        self.file.seal_in_place()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn offset_index_lookup() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("i.index");
        let mut idx = OffsetIndex::create(&p, Offset(100), 8 * 4).unwrap();
        assert_eq!(
            idx.lookup(Offset(150)),
            OffsetPosition {
                offset: Offset(100),
                position: FilePosition(0)
            }
        );
        assert!(idx.append(Offset(110), FilePosition(1000)).unwrap());
        assert!(idx.append(Offset(120), FilePosition(2000)).unwrap());
        assert!(idx.append(Offset(130), FilePosition(3000)).unwrap());
        assert_eq!(idx.lookup(Offset(105)).position, FilePosition(0));
        assert_eq!(idx.lookup(Offset(110)).position, FilePosition(1000));
        assert_eq!(idx.lookup(Offset(119)).position, FilePosition(1000));
        assert_eq!(idx.lookup(Offset(125)).position, FilePosition(2000));
        assert_eq!(idx.lookup(Offset(1_000_000)).position, FilePosition(3000));
        assert_eq!(idx.lookup(Offset(-5)).position, FilePosition(0));
        assert!(!idx.is_full());
        assert!(idx.append(Offset(140), FilePosition(4000)).unwrap());
        assert!(idx.is_full());
        assert!(!idx.append(Offset(150), FilePosition(5000)).unwrap());
        idx.validate(5000).unwrap();
        assert!(idx.validate(4000).is_err());
        idx.seal().unwrap();
        assert_eq!(std::fs::metadata(&p).unwrap().len(), 32);
        let reopened = OffsetIndex::open(&p, Offset(100), None).unwrap();
        assert_eq!(reopened.entries(), 4);
        assert_eq!(reopened.last_entry().unwrap().offset, Offset(140));
    }

    #[test]
    fn offset_index_reopen_writable_keeps_entries() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("i.index");
        let mut idx = OffsetIndex::create(&p, Offset(0), 80).unwrap();
        idx.append(Offset(5), FilePosition(10)).unwrap();
        idx.seal().unwrap();
        drop(idx);
        let mut idx = OffsetIndex::open(&p, Offset(0), Some(80)).unwrap();
        assert_eq!(idx.entries(), 1);
        assert_eq!(idx.max_entries(), 10);
        idx.append(Offset(9), FilePosition(20)).unwrap();
        assert_eq!(idx.lookup(Offset(9)).position, FilePosition(20));
    }

    #[test]
    fn offset_index_validation_catches_garbage() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("i.index");
        std::fs::write(&p, [0u8, 0, 0, 5, 0, 0, 0, 10, 0, 0, 0, 3, 0, 0, 0, 20]).unwrap();
        let idx = OffsetIndex::open(&p, Offset(0), None).unwrap();
        assert!(idx.validate(100).is_err());
        std::fs::write(&p, [0u8; 7]).unwrap();
        let idx = OffsetIndex::open(&p, Offset(0), None).unwrap();
        assert!(idx.validate(100).is_err());
    }

    #[test]
    fn time_index_lookup_and_monotonic_append() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("t.timeindex");
        let mut idx = TimeIndex::create(&p, Offset(10), 12 * 8).unwrap();
        assert_eq!(
            idx.lookup(TimestampMs(5)),
            TimestampOffset {
                timestamp: TimestampMs::NONE,
                offset: Offset(10)
            }
        );
        assert!(idx.maybe_append(TimestampMs(100), Offset(12)).unwrap());
        assert!(!idx.maybe_append(TimestampMs(100), Offset(14)).unwrap());
        assert!(!idx.maybe_append(TimestampMs(90), Offset(15)).unwrap());
        assert!(idx.maybe_append(TimestampMs(200), Offset(20)).unwrap());
        assert_eq!(idx.lookup(TimestampMs(99)).offset, Offset(10));
        assert_eq!(idx.lookup(TimestampMs(100)).offset, Offset(12));
        assert_eq!(idx.lookup(TimestampMs(199)).offset, Offset(12));
        assert_eq!(idx.lookup(TimestampMs(i64::MAX)).offset, Offset(20));
        idx.validate(Offset(21)).unwrap();
        assert!(idx.validate(Offset(20)).is_err());
        idx.seal().unwrap();
        assert_eq!(std::fs::metadata(&p).unwrap().len(), 24);
    }

    #[test]
    fn binary_search_edges() {
        let keys = [1, 3, 3, 7];
        assert_eq!(largest_lower_bound(4, 0, |i| keys[i]), None);
        assert_eq!(largest_lower_bound(4, 1, |i| keys[i]), Some(0));
        assert_eq!(largest_lower_bound(4, 3, |i| keys[i]), Some(2));
        assert_eq!(largest_lower_bound(4, 6, |i| keys[i]), Some(2));
        assert_eq!(largest_lower_bound(4, 100, |i| keys[i]), Some(3));
        assert_eq!(largest_lower_bound(0, 100, |i| keys[i]), None);
    }
}
