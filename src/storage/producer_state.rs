//! Idempotent-producer state of one partition (Kafka's
//! ProducerStateManager/ProducerAppendInfo rules): per producer id, the
//! current epoch and the metadata of its last 5 batches, used to reject
//! fenced epochs and sequence gaps and to answer retried batches with their
//! original offsets. Persisted as CRC-protected `<offset>.klamm-snapshot`
//! files; Kafka's own `<offset>.snapshot` files (another format) are left
//! alone.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use super::error::StorageError;
use super::files::{
    offset_file, parse_offset_file, read_bounded, remove_if_exists, write_atomically,
    KAFKA_SNAPSHOT_SUFFIX, SNAPSHOT_SUFFIX,
};
use crate::records::{RecordBatch, NO_PRODUCER_EPOCH, NO_SEQUENCE};
use crate::types::{Offset, TimestampMs};

/// Batches remembered per producer for duplicate detection (Kafka's value).
pub const NUM_BATCHES_TO_RETAIN: usize = 5;
/// Producers tracked per partition; beyond this the least recently active
/// one is forgotten (it then counts as unknown, which accepts any sequence).
pub const MAX_PRODUCERS: usize = 100_000;
/// A producer no transaction marker has been written for yet.
pub const NO_COORDINATOR_EPOCH: i32 = -1;

const SNAPSHOT_MAGIC: &[u8; 4] = b"KPS1";
const SNAPSHOT_HEADER_BYTES: usize = 4 + 4 + 8 + 4;
const ENTRY_HEADER_BYTES: usize = 8 + 2 + 8 + 1;
const BATCH_BYTES: usize = 4 + 4 + 8 + 8 + 8;
const MAX_SNAPSHOT_BYTES: usize = SNAPSHOT_HEADER_BYTES
    + MAX_PRODUCERS * (ENTRY_HEADER_BYTES + NUM_BATCHES_TO_RETAIN * BATCH_BYTES);

/// What is remembered of one appended batch.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct BatchMetadata {
    pub first_seq: i32,
    pub last_seq: i32,
    pub first_offset: Offset,
    pub last_offset: Offset,
    /// The batch's max timestamp.
    pub timestamp: TimestampMs,
}

/// The state of one producer id.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ProducerEntry {
    pub producer_id: i64,
    pub epoch: i16,
    pub last_timestamp: TimestampMs,
    /// The coordinator epoch of the last transaction marker, or -1 (not
    /// in snapshots: the log's markers are replayed at open, see
    /// `PartitionLog::rebuild_txns`).
    pub coordinator_epoch: i32,
    batches: [BatchMetadata; NUM_BATCHES_TO_RETAIN],
    len: u8,
}

impl ProducerEntry {
    /// A producer never seen (epoch -1, no batches).
    pub fn empty(producer_id: i64) -> ProducerEntry {
        ProducerEntry {
            producer_id,
            epoch: NO_PRODUCER_EPOCH,
            last_timestamp: TimestampMs::NONE,
            coordinator_epoch: NO_COORDINATOR_EPOCH,
            batches: [BatchMetadata::default(); NUM_BATCHES_TO_RETAIN],
            len: 0,
        }
    }

    /// Remembered batches, oldest first.
    pub fn batches(&self) -> &[BatchMetadata] {
        &self.batches[..self.len as usize]
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Last sequence appended, or -1.
    pub fn last_seq(&self) -> i32 {
        self.batches().last().map_or(NO_SEQUENCE, |b| b.last_seq)
    }

    fn maybe_update_epoch(&mut self, epoch: i16) {
        if self.epoch != epoch {
            self.len = 0;
            self.epoch = epoch;
        }
    }

    fn push(&mut self, batch: BatchMetadata) {
        if self.len as usize == NUM_BATCHES_TO_RETAIN {
            self.batches.copy_within(1.., 0);
            self.len -= 1;
        }
        self.batches[self.len as usize] = batch;
        self.len += 1;
        self.last_timestamp = batch.timestamp;
    }

    fn add_batch(&mut self, epoch: i16, batch: BatchMetadata) {
        self.maybe_update_epoch(epoch);
        self.push(batch);
    }

    /// The remembered batch with exactly this epoch and sequence range.
    pub fn find_duplicate(
        &self,
        epoch: i16,
        first_seq: i32,
        last_seq: i32,
    ) -> Option<BatchMetadata> {
        if epoch != self.epoch {
            return None;
        }
        self.batches()
            .iter()
            .copied()
            .find(|b| b.first_seq == first_seq && b.last_seq == last_seq)
    }
}

/// One idempotent batch as the producer state sees it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ProducerBatch {
    pub producer_id: i64,
    pub epoch: i16,
    pub first_seq: i32,
    pub last_seq: i32,
    pub first_offset: Offset,
    pub last_offset: Offset,
    pub max_timestamp: TimestampMs,
}

impl ProducerBatch {
    /// From a batch header whose offsets are final; `None` without a
    /// producer id or for control batches (transaction markers carry no data
    /// sequence).
    pub fn from_batch(batch: &RecordBatch<'_>) -> Option<ProducerBatch> {
        if !batch.has_producer_id() || batch.is_control() {
            return None;
        }
        Some(ProducerBatch {
            producer_id: batch.producer_id(),
            epoch: batch.producer_epoch(),
            first_seq: batch.base_sequence(),
            last_seq: batch.last_sequence(),
            first_offset: batch.base_offset(),
            last_offset: batch.last_offset(),
            max_timestamp: batch.max_timestamp(),
        })
    }

    fn metadata(&self) -> BatchMetadata {
        BatchMetadata {
            first_seq: self.first_seq,
            last_seq: self.last_seq,
            first_offset: self.first_offset,
            last_offset: self.last_offset,
            timestamp: self.max_timestamp,
        }
    }
}

/// Producer updates validated for one append, applied by
/// [`ProducerStateManager::commit`] only once the append is written.
#[derive(Default, Debug)]
pub struct PendingUpdates {
    /// Per producer: its epoch and the batches of this append only.
    entries: Vec<ProducerEntry>,
}

impl PendingUpdates {
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
}

fn in_sequence(last_seq: i32, next_seq: i32) -> bool {
    next_seq as i64 == last_seq as i64 + 1 || (next_seq == 0 && last_seq == i32::MAX)
}

/// All producers of one partition.
#[derive(Debug, Default, Clone)]
pub struct ProducerStateManager {
    producers: HashMap<i64, ProducerEntry>,
    /// The log offset up to which batches have been applied.
    map_end_offset: Offset,
}

impl ProducerStateManager {
    pub fn new() -> ProducerStateManager {
        ProducerStateManager::default()
    }

    pub fn len(&self) -> usize {
        self.producers.len()
    }

    pub fn is_empty(&self) -> bool {
        self.producers.is_empty()
    }

    pub fn entry(&self, producer_id: i64) -> Option<&ProducerEntry> {
        self.producers.get(&producer_id)
    }

    /// Each producer's last data batch's last offset (the batch the log
    /// cleaner keeps even when it is emptied).
    pub fn last_batch_offsets(&self) -> HashMap<i64, Offset> {
        self.producers
            .iter()
            .filter_map(|(pid, e)| e.batches().last().map(|b| (*pid, b.last_offset)))
            .collect()
    }

    /// Every producer tracked (DescribeProducers' active producers),
    /// ascending by producer id.
    pub fn entries(&self) -> Vec<ProducerEntry> {
        let mut all: Vec<ProducerEntry> = self.producers.values().copied().collect();
        all.sort_by_key(|e| e.producer_id);
        all
    }

    pub fn map_end_offset(&self) -> Offset {
        self.map_end_offset
    }

    pub fn set_map_end_offset(&mut self, offset: Offset) {
        self.map_end_offset = offset;
    }

    /// The committed batch this one retries, if any.
    pub fn find_duplicate(&self, b: &ProducerBatch) -> Option<BatchMetadata> {
        self.producers
            .get(&b.producer_id)?
            .find_duplicate(b.epoch, b.first_seq, b.last_seq)
    }

    /// Validates a client batch (after earlier batches of the same append,
    /// already staged in `pending`) and stages it.
    pub fn stage(
        &self,
        pending: &mut PendingUpdates,
        b: &ProducerBatch,
    ) -> Result<(), StorageError> {
        let pid = b.producer_id;
        let current = self
            .producers
            .get(&pid)
            .copied()
            .unwrap_or_else(|| ProducerEntry::empty(pid));
        let slot = pending.entries.iter().position(|e| e.producer_id == pid);
        let mut updated = match slot {
            Some(i) => pending.entries[i],
            None => ProducerEntry { len: 0, ..current },
        };
        if b.epoch < updated.epoch {
            return Err(StorageError::InvalidProducerEpoch {
                producer_id: pid,
                epoch: b.epoch,
                current_epoch: updated.epoch,
            });
        }
        if b.epoch != updated.epoch {
            if b.first_seq != 0 && updated.epoch != NO_PRODUCER_EPOCH {
                return Err(StorageError::OutOfOrderSequence {
                    producer_id: pid,
                    epoch: b.epoch,
                    sequence: b.first_seq,
                    last_sequence: updated.last_seq(),
                });
            }
        } else {
            let last_seq = if !updated.is_empty() {
                updated.last_seq()
            } else if b.epoch == current.epoch {
                current.last_seq()
            } else {
                NO_SEQUENCE
            };
            // A producer without state (e.g. removed by retention) accepts any sequence.
            if !(current.epoch == NO_PRODUCER_EPOCH || in_sequence(last_seq, b.first_seq)) {
                return Err(StorageError::OutOfOrderSequence {
                    producer_id: pid,
                    epoch: b.epoch,
                    sequence: b.first_seq,
                    last_sequence: last_seq,
                });
            }
        }
        updated.add_batch(b.epoch, b.metadata());
        match slot {
            Some(i) => pending.entries[i] = updated,
            None => pending.entries.push(updated),
        }
        Ok(())
    }

    /// Applies staged updates and advances the map end offset.
    pub fn commit(&mut self, pending: PendingUpdates, map_end_offset: Offset) {
        for update in pending.entries {
            let entry = self.entry_mut(update.producer_id);
            entry.maybe_update_epoch(update.epoch);
            for b in update.batches() {
                entry.push(*b);
            }
        }
        self.map_end_offset = self.map_end_offset.max(map_end_offset);
    }

    /// A transaction marker of `producer_id` at `epoch`, written by
    /// coordinator epoch `coordinator_epoch` at `timestamp`: a newer epoch
    /// fences the older one (its sequences start over), and the entry
    /// remembers the coordinator epoch and the time, as Kafka's
    /// `ProducerStateEntry.update` does.
    pub fn apply_marker(&mut self, producer_id: i64, epoch: i16, coordinator_epoch: i32, timestamp: TimestampMs) {
        let entry = self.entry_mut(producer_id);
        if epoch > entry.epoch {
            entry.maybe_update_epoch(epoch);
        }
        entry.coordinator_epoch = entry.coordinator_epoch.max(coordinator_epoch);
        entry.last_timestamp = entry.last_timestamp.max(timestamp);
    }

    /// Applies a batch read back from the log, without validation (Kafka's
    /// replication/recovery origin).
    pub fn replay(&mut self, b: &ProducerBatch) {
        self.entry_mut(b.producer_id)
            .add_batch(b.epoch, b.metadata());
        self.map_end_offset = self.map_end_offset.max(b.last_offset.next());
    }

    fn entry_mut(&mut self, producer_id: i64) -> &mut ProducerEntry {
        if !self.producers.contains_key(&producer_id) && self.producers.len() >= MAX_PRODUCERS {
            let oldest = self
                .producers
                .values()
                .min_by_key(|e| e.last_timestamp)
                .map(|e| e.producer_id);
            if let Some(pid) = oldest {
                self.producers.remove(&pid);
            }
        }
        self.producers
            .entry(producer_id)
            .or_insert_with(|| ProducerEntry::empty(producer_id))
    }

    /// Forgets producers idle for `expiration_ms` (Kafka's
    /// `producer.id.expiration.ms`, by the batches' max timestamps).
    pub fn remove_expired(&mut self, now: TimestampMs, expiration_ms: i64) -> usize {
        let before = self.producers.len();
        self.producers
            .retain(|_, e| now.0.saturating_sub(e.last_timestamp.0) < expiration_ms);
        before - self.producers.len()
    }

    /// Serialises the state as of `offset`.
    pub fn encode_snapshot(&self, offset: Offset) -> Vec<u8> {
        let mut ids: Vec<&ProducerEntry> = self.producers.values().collect();
        ids.sort_by_key(|e| e.producer_id);
        let mut out = Vec::with_capacity(
            SNAPSHOT_HEADER_BYTES + ids.len() * (ENTRY_HEADER_BYTES + BATCH_BYTES),
        );
        out.extend_from_slice(SNAPSHOT_MAGIC);
        out.extend_from_slice(&[0u8; 4]);
        out.extend_from_slice(&offset.0.to_be_bytes());
        out.extend_from_slice(&(ids.len() as u32).to_be_bytes());
        for e in ids {
            out.extend_from_slice(&e.producer_id.to_be_bytes());
            out.extend_from_slice(&e.epoch.to_be_bytes());
            out.extend_from_slice(&e.last_timestamp.0.to_be_bytes());
            out.push(e.len);
            for b in e.batches() {
                out.extend_from_slice(&b.first_seq.to_be_bytes());
                out.extend_from_slice(&b.last_seq.to_be_bytes());
                out.extend_from_slice(&b.first_offset.0.to_be_bytes());
                out.extend_from_slice(&b.last_offset.0.to_be_bytes());
                out.extend_from_slice(&b.timestamp.0.to_be_bytes());
            }
        }
        let crc = crc32c::crc32c(&out[8..]);
        out[4..8].copy_from_slice(&crc.to_be_bytes());
        out
    }

    /// Parses a snapshot, checking magic, CRC, bounds and that every batch
    /// lies before the snapshot offset. Returns the offset and the state.
    pub fn decode_snapshot(bytes: &[u8]) -> Result<(Offset, ProducerStateManager), &'static str> {
        if bytes.len() < SNAPSHOT_HEADER_BYTES || &bytes[..4] != SNAPSHOT_MAGIC {
            return Err("not a producer snapshot");
        }
        let mut r = Reader { buf: bytes, pos: 4 };
        let crc = r.u32()?;
        if crc != crc32c::crc32c(&bytes[8..]) {
            return Err("snapshot CRC mismatch");
        }
        let offset = Offset(r.i64()?);
        let count = r.u32()? as usize;
        if offset.0 < 0 || count > MAX_PRODUCERS {
            return Err("snapshot header out of range");
        }
        // Checked before allocating: the map is sized by the count.
        if count > (bytes.len() - r.pos) / ENTRY_HEADER_BYTES {
            return Err("snapshot count exceeds its bytes");
        }
        let mut state = ProducerStateManager {
            producers: HashMap::with_capacity(count),
            map_end_offset: offset,
        };
        for _ in 0..count {
            let mut e = ProducerEntry::empty(r.i64()?);
            e.epoch = r.i16()?;
            let last_timestamp = TimestampMs(r.i64()?);
            let n = r.u8()? as usize;
            if e.producer_id < 0 || n > NUM_BATCHES_TO_RETAIN {
                return Err("snapshot entry out of range");
            }
            for _ in 0..n {
                let b = BatchMetadata {
                    first_seq: r.i32()?,
                    last_seq: r.i32()?,
                    first_offset: Offset(r.i64()?),
                    last_offset: Offset(r.i64()?),
                    timestamp: TimestampMs(r.i64()?),
                };
                if b.first_offset > b.last_offset || b.last_offset >= offset || b.first_offset.0 < 0
                {
                    return Err("snapshot batch offsets out of range");
                }
                e.push(b);
            }
            e.last_timestamp = last_timestamp;
            if state.producers.insert(e.producer_id, e).is_some() {
                return Err("duplicate producer in snapshot");
            }
        }
        if r.pos != bytes.len() {
            return Err("trailing bytes in snapshot");
        }
        Ok((offset, state))
    }

    /// Writes `<offset>.snapshot` atomically and durably.
    pub fn write_snapshot(&self, dir: &Path, offset: Offset) -> Result<PathBuf, StorageError> {
        let path = snapshot_path(dir, offset);
        write_atomically(&path, &self.encode_snapshot(offset))?;
        Ok(path)
    }

    /// Reads a snapshot file; a malformed one is `CorruptFile`.
    pub fn read_snapshot(path: &Path) -> Result<(Offset, ProducerStateManager), StorageError> {
        let bytes = read_bounded(path, MAX_SNAPSHOT_BYTES as u64)?;
        Self::decode_snapshot(&bytes).map_err(|reason| StorageError::CorruptFile {
            path: path.to_path_buf(),
            reason: reason.to_string(),
        })
    }
}

struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl Reader<'_> {
    fn take<const N: usize>(&mut self) -> Result<[u8; N], &'static str> {
        let end = self.pos + N;
        let s = self.buf.get(self.pos..end).ok_or("snapshot truncated")?;
        self.pos = end;
        let mut a = [0u8; N];
        a.copy_from_slice(s);
        Ok(a)
    }
    fn u8(&mut self) -> Result<u8, &'static str> {
        Ok(self.take::<1>()?[0])
    }
    fn i16(&mut self) -> Result<i16, &'static str> {
        Ok(i16::from_be_bytes(self.take()?))
    }
    fn i32(&mut self) -> Result<i32, &'static str> {
        Ok(i32::from_be_bytes(self.take()?))
    }
    fn u32(&mut self) -> Result<u32, &'static str> {
        Ok(u32::from_be_bytes(self.take()?))
    }
    fn i64(&mut self) -> Result<i64, &'static str> {
        Ok(i64::from_be_bytes(self.take()?))
    }
}

pub fn snapshot_path(dir: &Path, offset: Offset) -> PathBuf {
    offset_file(dir, offset, SNAPSHOT_SUFFIX)
}

/// Whether the file starts with klamm's snapshot magic (a `.snapshot` file
/// without it is Kafka's and is never read, pruned or deleted).
fn has_klamm_magic(path: &Path) -> bool {
    let mut head = [0u8; 4];
    std::fs::File::open(path)
        .and_then(|mut f| std::io::Read::read_exact(&mut f, &mut head))
        .is_ok()
        && &head == SNAPSHOT_MAGIC
}

/// klamm's snapshot files in `dir`, ascending by offset:
/// `<offset>.klamm-snapshot`, and `<offset>.snapshot` files that start with
/// klamm's magic (written before klamm moved off Kafka's name; at the same
/// offset they sort first, so the newer name wins).
pub fn list_snapshots(dir: &Path) -> Result<Vec<(Offset, PathBuf)>, StorageError> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).map_err(StorageError::io("list directory", dir))? {
        let entry = entry.map_err(StorageError::io("list directory", dir))?;
        let Some(name) = entry.file_name().to_str().map(str::to_owned) else {
            continue;
        };
        if let Some(o) = parse_offset_file(&name, SNAPSHOT_SUFFIX) {
            out.push((o, true, entry.path()));
        } else if let Some(o) = parse_offset_file(&name, KAFKA_SNAPSHOT_SUFFIX) {
            if has_klamm_magic(&entry.path()) {
                out.push((o, false, entry.path()));
            }
        }
    }
    out.sort();
    Ok(out.into_iter().map(|(o, _, p)| (o, p)).collect())
}

/// Deletes klamm's snapshots with an offset above `max_offset`, and all but
/// the newest `keep` of the rest.
pub fn prune_snapshots(dir: &Path, max_offset: Offset, keep: usize) -> Result<(), StorageError> {
    let snapshots = list_snapshots(dir)?;
    let valid = snapshots.iter().filter(|(o, _)| *o <= max_offset).count();
    for (i, (o, path)) in snapshots.iter().enumerate() {
        if *o > max_offset || i.saturating_add(keep) < valid {
            remove_if_exists(path)?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn batch(pid: i64, epoch: i16, first_seq: i32, n: i32, first_offset: i64) -> ProducerBatch {
        ProducerBatch {
            producer_id: pid,
            epoch,
            first_seq,
            last_seq: crate::records::increment_sequence(first_seq, n - 1),
            first_offset: Offset(first_offset),
            last_offset: Offset(first_offset + n as i64 - 1),
            max_timestamp: TimestampMs(first_offset),
        }
    }

    fn append(
        s: &mut ProducerStateManager,
        b: ProducerBatch,
    ) -> Result<Option<BatchMetadata>, StorageError> {
        if let Some(dup) = s.find_duplicate(&b) {
            return Ok(Some(dup));
        }
        let mut p = PendingUpdates::default();
        s.stage(&mut p, &b)?;
        s.commit(p, b.last_offset.next());
        Ok(None)
    }

    #[test]
    fn entries_and_markers() {
        let mut s = ProducerStateManager::new();
        append(&mut s, batch(9, 0, 0, 2, 0)).unwrap();
        append(&mut s, batch(3, 1, 0, 1, 2)).unwrap();
        let all = s.entries();
        assert_eq!(all.iter().map(|e| e.producer_id).collect::<Vec<_>>(), vec![3, 9], "ascending by id");
        assert_eq!((all[1].epoch, all[1].last_seq(), all[1].coordinator_epoch), (0, 1, NO_COORDINATOR_EPOCH));
        s.apply_marker(9, 0, 4, TimestampMs(100));
        let e = *s.entry(9).unwrap();
        assert_eq!((e.coordinator_epoch, e.last_timestamp, e.last_seq()), (4, TimestampMs(100), 1));
        // Replaying an older marker never moves either back.
        s.apply_marker(9, 0, 2, TimestampMs(50));
        assert_eq!((s.entry(9).unwrap().coordinator_epoch, s.entry(9).unwrap().last_timestamp), (4, TimestampMs(100)));
        // A marker for an unknown producer creates its entry.
        s.apply_marker(5, 2, 0, TimestampMs(7));
        assert_eq!((s.entry(5).unwrap().epoch, s.entry(5).unwrap().last_seq()), (2, NO_SEQUENCE));
    }

    #[test]
    fn unknown_producer_accepts_any_sequence_then_requires_order() {
        let mut s = ProducerStateManager::new();
        append(&mut s, batch(1, 0, 42, 3, 0)).unwrap();
        append(&mut s, batch(1, 0, 45, 2, 3)).unwrap();
        let e = append(&mut s, batch(1, 0, 48, 1, 5)).unwrap_err();
        assert!(matches!(
            e,
            StorageError::OutOfOrderSequence {
                sequence: 48,
                last_sequence: 46,
                ..
            }
        ));
        assert_eq!(e.error_code(), 45);
        assert_eq!(s.entry(1).unwrap().last_seq(), 46);
    }

    #[test]
    fn duplicates_return_original_offsets() {
        let mut s = ProducerStateManager::new();
        append(&mut s, batch(7, 1, 0, 2, 10)).unwrap();
        append(&mut s, batch(7, 1, 2, 2, 12)).unwrap();
        let dup = append(&mut s, batch(7, 1, 0, 2, 99)).unwrap().unwrap();
        assert_eq!(
            (dup.first_offset, dup.last_offset),
            (Offset(10), Offset(11))
        );
        // Same sequences but another epoch is not a duplicate (and is fenced).
        assert!(matches!(
            append(&mut s, batch(7, 0, 0, 2, 99)),
            Err(StorageError::InvalidProducerEpoch { .. })
        ));
    }

    #[test]
    fn only_last_five_batches_are_remembered() {
        let mut s = ProducerStateManager::new();
        for i in 0..7 {
            append(&mut s, batch(3, 0, i, 1, i as i64)).unwrap();
        }
        assert_eq!(s.entry(3).unwrap().batches().len(), 5);
        assert!(append(&mut s, batch(3, 0, 6, 1, 100)).unwrap().is_some());
        assert!(append(&mut s, batch(3, 0, 2, 1, 100)).unwrap().is_some());
        // Sequence 1 fell out of the window: not a duplicate but out of order.
        assert!(matches!(
            append(&mut s, batch(3, 0, 1, 1, 100)),
            Err(StorageError::OutOfOrderSequence { .. })
        ));
    }

    #[test]
    fn epoch_rules() {
        let mut s = ProducerStateManager::new();
        append(&mut s, batch(5, 2, 0, 3, 0)).unwrap();
        let e = append(&mut s, batch(5, 1, 3, 1, 3)).unwrap_err();
        assert!(matches!(
            e,
            StorageError::InvalidProducerEpoch {
                epoch: 1,
                current_epoch: 2,
                ..
            }
        ));
        assert_eq!(e.error_code(), 47);
        // New epoch must restart at 0.
        assert!(matches!(
            append(&mut s, batch(5, 3, 3, 1, 3)),
            Err(StorageError::OutOfOrderSequence { .. })
        ));
        append(&mut s, batch(5, 3, 0, 1, 3)).unwrap();
        assert_eq!(s.entry(5).unwrap().epoch, 3);
        assert_eq!(s.entry(5).unwrap().batches().len(), 1);
        // An unknown producer may start at a higher epoch with any sequence.
        append(&mut s, batch(6, 9, 17, 1, 4)).unwrap();
    }

    #[test]
    fn sequence_wraps_at_i32_max() {
        let mut s = ProducerStateManager::new();
        append(&mut s, batch(1, 0, i32::MAX - 1, 2, 0)).unwrap();
        assert_eq!(s.entry(1).unwrap().last_seq(), i32::MAX);
        append(&mut s, batch(1, 0, 0, 1, 2)).unwrap();
        // A batch spanning the wrap.
        let mut s = ProducerStateManager::new();
        append(&mut s, batch(1, 0, i32::MAX - 1, 4, 0)).unwrap();
        assert_eq!(s.entry(1).unwrap().last_seq(), 1);
        append(&mut s, batch(1, 0, 2, 1, 4)).unwrap();
    }

    #[test]
    fn several_batches_of_one_append_chain() {
        let mut s = ProducerStateManager::new();
        s.replay(&batch(1, 0, 0, 1, 0));
        let mut p = PendingUpdates::default();
        s.stage(&mut p, &batch(1, 0, 1, 2, 1)).unwrap();
        s.stage(&mut p, &batch(1, 0, 3, 2, 3)).unwrap();
        assert!(s.stage(&mut p, &batch(1, 0, 9, 1, 5)).is_err());
        // Nothing is applied before commit.
        assert_eq!(s.entry(1).unwrap().batches().len(), 1);
        s.commit(p, Offset(5));
        assert_eq!(s.entry(1).unwrap().batches().len(), 3);
        assert_eq!(s.entry(1).unwrap().last_seq(), 4);
        assert!(s.entry(1).unwrap().batches().len() <= NUM_BATCHES_TO_RETAIN);
        assert_eq!(s.map_end_offset(), Offset(5));
    }

    #[test]
    fn snapshot_round_trip_and_corruption() {
        let dir = tempfile::tempdir().unwrap();
        let mut s = ProducerStateManager::new();
        for pid in 0..20 {
            for i in 0..(pid % 7) {
                s.replay(&batch(pid, 1, i as i32 * 2, 2, pid * 100 + i * 2));
            }
        }
        let path = s.write_snapshot(dir.path(), Offset(5_000)).unwrap();
        let (off, back) = ProducerStateManager::read_snapshot(&path).unwrap();
        assert_eq!(off, Offset(5_000));
        assert_eq!(back.len(), s.len());
        for pid in 0..20 {
            assert_eq!(back.entry(pid), s.entry(pid));
        }
        let bytes = std::fs::read(&path).unwrap();
        for i in 0..bytes.len() {
            let mut bad = bytes.clone();
            bad[i] ^= 0x40;
            assert!(
                ProducerStateManager::decode_snapshot(&bad).is_err(),
                "flip at {i}"
            );
        }
        for cut in 0..bytes.len() {
            assert!(ProducerStateManager::decode_snapshot(&bytes[..cut]).is_err());
        }
        // Offsets at or beyond the snapshot offset are rejected.
        assert!(ProducerStateManager::decode_snapshot(&s.encode_snapshot(Offset(10))).is_err());
    }

    #[test]
    fn snapshot_count_is_checked_against_its_bytes_before_allocating() {
        // Found by the state_files fuzz target: a 70-byte snapshot with a
        // valid CRC claiming 100,000 producers sized a 25 MB map.
        let mut bytes = ProducerStateManager::new().encode_snapshot(Offset(10));
        bytes[16..20].copy_from_slice(&(MAX_PRODUCERS as u32).to_be_bytes());
        bytes.extend_from_slice(&[0xf9; 50]);
        let crc = crc32c::crc32c(&bytes[8..]);
        bytes[4..8].copy_from_slice(&crc.to_be_bytes());
        assert_eq!(
            ProducerStateManager::decode_snapshot(&bytes).err(),
            Some("snapshot count exceeds its bytes")
        );
    }

    #[test]
    fn snapshot_listing_and_pruning() {
        let dir = tempfile::tempdir().unwrap();
        let s = ProducerStateManager::new();
        for o in [10, 20, 30, 40] {
            s.write_snapshot(dir.path(), Offset(o)).unwrap();
        }
        std::fs::write(dir.path().join("junk.klamm-snapshot"), b"x").unwrap();
        let offsets = |d: &Path| list_snapshots(d).unwrap().into_iter().map(|(o, _)| o).collect::<Vec<_>>();
        assert_eq!(offsets(dir.path()), vec![Offset(10), Offset(20), Offset(30), Offset(40)]);
        prune_snapshots(dir.path(), Offset(35), 2).unwrap();
        assert_eq!(offsets(dir.path()), vec![Offset(20), Offset(30)]);
    }

    #[test]
    fn kafka_snapshots_are_never_listed_pruned_or_overwritten() {
        let dir = tempfile::tempdir().unwrap();
        // Kafka's format: version 1 (i16), CRC, entries; anything without
        // klamm's magic counts as Kafka's.
        let kafka = [0u8, 1, 0xde, 0xad, 0xbe, 0xef, 0, 0, 0, 0];
        for o in [5, 30, 99] {
            std::fs::write(offset_file(dir.path(), Offset(o), KAFKA_SNAPSHOT_SUFFIX), kafka).unwrap();
        }
        // A snapshot from a klamm that still used Kafka's name is ours.
        let legacy = ProducerStateManager::new().encode_snapshot(Offset(20));
        let legacy_path = offset_file(dir.path(), Offset(20), KAFKA_SNAPSHOT_SUFFIX);
        std::fs::write(&legacy_path, &legacy).unwrap();
        let s = ProducerStateManager::new();
        let ours = s.write_snapshot(dir.path(), Offset(30)).unwrap();
        assert!(ours.to_str().unwrap().ends_with("00000000000000000030.klamm-snapshot"));
        assert_eq!(
            list_snapshots(dir.path()).unwrap(),
            vec![(Offset(20), legacy_path.clone()), (Offset(30), ours.clone())]
        );
        assert_eq!(ProducerStateManager::read_snapshot(&legacy_path).unwrap().0, Offset(20));
        prune_snapshots(dir.path(), Offset(10), 0).unwrap();
        assert!(list_snapshots(dir.path()).unwrap().is_empty());
        for o in [5, 30, 99] {
            assert_eq!(std::fs::read(offset_file(dir.path(), Offset(o), KAFKA_SNAPSHOT_SUFFIX)).unwrap(), kafka);
        }
    }

    #[test]
    fn expiration_and_cap() {
        let mut s = ProducerStateManager::new();
        s.replay(&batch(1, 0, 0, 1, 100));
        s.replay(&batch(2, 0, 0, 1, 5_000));
        assert_eq!(s.remove_expired(TimestampMs(6_000), 2_000), 1);
        assert!(s.entry(1).is_none() && s.entry(2).is_some());
    }
}
