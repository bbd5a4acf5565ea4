//! Cleaning one segment's batches (Kafka's `Cleaner.cleanInto`,
//! `MemoryRecords.filterTo` and `CleanedTransactionMetadata`). Batches keep
//! their base offset, last offset delta, producer id, epoch and base
//! sequence; retained records are copied byte for byte (their deltas are
//! relative to the unchanged base offset and base timestamp). A compressed
//! batch is decompressed, filtered and compressed again with its codec
//! (zstd as stored blocks: klamm has no zstd encoder).
//!
//! Per batch, as Kafka's cleaner decides:
//! - the data of an aborted transaction is discarded;
//! - a control batch (COMMIT/ABORT marker) is kept while data of its
//!   transaction remains before it in the cleaned range; once none does, it
//!   is kept until its delete horizon has passed, then discarded (its index
//!   entry, for an ABORT, is forgotten as soon as no data of it remains);
//! - otherwise a record is kept unless a later record of its key is in the
//!   offset map, it has no key, or it is a tombstone whose batch's delete
//!   horizon has passed;
//! - KIP-534: the first clean that keeps a tombstone, or the marker of a
//!   transaction with no data left, rewrites its batch with the delete
//!   horizon (attribute bit 6, `baseTimestamp` = now + `delete.retention.ms`,
//!   record timestamp deltas re-encoded against it); a later clean past
//!   that time removes them;
//! - a batch emptied entirely is dropped, except the last batch of an
//!   active producer (its last data batch, or its last marker when it has
//!   no data) and the last batch of the cleaning round, which stay as empty
//!   batches (Kafka's `RETAIN_EMPTY`), so the producer's sequence and epoch
//!   survive.
//!
//! A batch kept whole with records the filter could not judge (one that
//! does not decompress or parse) may hold older values of keys whose
//! tombstones come later: once such a batch has been seen, the pass keeps
//! every tombstone after it, so no deleted key comes back.

use std::borrow::Cow;
use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap, HashSet};

use super::offset_map::OffsetMap;
use crate::storage::StorageError;
use crate::records::compression::{compress, decompress, zstd_stored_frame};
use crate::records::{
    read_varint, read_varlong, update_crc, write_varint, write_varlong, BatchIter, CompressionType, RecordBatch,
    RecordIter, TimestampType, Validation, LOG_OVERHEAD_BYTES, RECORD_BATCH_OVERHEAD_BYTES,
};
use crate::storage::txn_index::{marker_kind, AbortedTxn};
use crate::types::{Offset, TimestampMs};

/// Most bytes a compressed batch may decompress to for the cleaner to look
/// inside (bounds its memory); a bigger one is kept whole, unjudged.
pub(crate) const MAX_DECOMPRESSED_BATCH_BYTES: usize = 64 << 20;

/// The records region of a data batch, decompressed if it is compressed;
/// `None` if it does not decompress within [`MAX_DECOMPRESSED_BATCH_BYTES`].
pub(crate) fn records_region<'a>(batch: &RecordBatch<'a>) -> Option<Cow<'a, [u8]>> {
    match batch.compression()? {
        CompressionType::None => Some(Cow::Borrowed(batch.records_bytes())),
        codec => decompress(codec, batch.records_bytes(), MAX_DECOMPRESSED_BATCH_BYTES).ok().map(Cow::Owned),
    }
}

/// v2 header fields rewritten here (Kafka's `DefaultRecordBatch` layout).
const BATCH_LENGTH_AT: usize = 8;
const ATTRIBUTES_AT: usize = 21;
const BASE_TIMESTAMP_AT: usize = 27;
const MAX_TIMESTAMP_AT: usize = 35;
const RECORDS_COUNT_AT: usize = 57;
/// The timestamp type, transactional and control bits: what an empty
/// batch's attributes keep (Kafka's `writeEmptyHeader`).
const EMPTY_BATCH_KEPT_BITS: i16 = 0x08 | 0x10 | 0x20;
const DELETE_HORIZON_BIT: i16 = 0x40;

/// What the producer state says of an active producer's last entry in the
/// log (Kafka's `LastRecord`): the last offset of its last data batch, or
/// none when it has no data batch (its last entry is a marker), and its
/// epoch.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct LastRecord {
    pub data_offset: Option<Offset>,
    pub epoch: i16,
}

/// The transaction state of a cleaning pass as it walks the log in offset
/// order (Kafka's `CleanedTransactionMetadata`): which data batches belong
/// to aborted transactions, and which markers no data is left for.
#[derive(Debug, Default)]
pub(crate) struct CleanedTxns {
    /// Aborted transactions not reached yet, by first offset.
    pending: BinaryHeap<Reverse<(Offset, i64, Offset)>>,
    /// Producer id → the aborted transaction the walk is inside, and
    /// whether a batch of it was seen.
    ongoing_aborted: HashMap<i64, bool>,
    /// Producers the walk saw transactional data of since their last marker.
    ongoing_committed: HashSet<i64>,
    /// ABORT markers (producer id, offset) read with no data of their
    /// transaction left: their aborted-transaction entries go.
    pub forgotten: Vec<(i64, Offset)>,
}

impl CleanedTxns {
    pub(crate) fn new(aborted: &[AbortedTxn]) -> CleanedTxns {
        CleanedTxns {
            pending: aborted.iter().map(|t| Reverse((t.first_offset, t.producer_id, t.last_offset))).collect(),
            ..CleanedTxns::default()
        }
    }

    fn consume_up_to(&mut self, offset: Offset) {
        while let Some(Reverse((first, pid, _))) = self.pending.peek().copied() {
            if first > offset {
                break;
            }
            self.pending.pop();
            self.ongoing_aborted.entry(pid).or_insert(false);
        }
    }

    /// A data batch read: whether it is data of an aborted transaction.
    pub(crate) fn on_batch_read(&mut self, batch: &RecordBatch<'_>) -> bool {
        self.consume_up_to(batch.last_offset());
        if !batch.is_transactional() {
            return false;
        }
        match self.ongoing_aborted.get_mut(&batch.producer_id()) {
            Some(seen) => {
                *seen = true;
                true
            }
            None => {
                self.ongoing_committed.insert(batch.producer_id());
                false
            }
        }
    }

    /// A control batch read: whether it may be discarded (no data of its
    /// transaction is left before it).
    pub(crate) fn on_control_batch_read(&mut self, batch: &RecordBatch<'_>) -> bool {
        self.consume_up_to(batch.last_offset());
        if batch.records_count() == 0 {
            // Emptied by an earlier clean.
            return true;
        }
        let pid = batch.producer_id();
        match marker_kind(batch) {
            Some(false) => {
                if self.ongoing_aborted.remove(&pid) == Some(true) {
                    return false;
                }
                self.forgotten.push((pid, batch.base_offset()));
                true
            }
            Some(true) => !self.ongoing_committed.remove(&pid),
            None => false,
        }
    }
}

/// What the filter needs to know about the log.
pub(crate) struct FilterContext<'a> {
    pub map: &'a OffsetMap,
    /// Records at or beyond this offset were not seen by the map: kept.
    pub map_end: Offset,
    /// When the pass started: delete horizons at or before it have passed.
    pub now: TimestampMs,
    /// `delete.retention.ms`: the delete horizon set is `now` plus this.
    pub delete_retention_ms: i64,
    /// The first uncleanable offset: the batch ending there is kept, even
    /// empty, so the log's last offset is not lost.
    pub round_end: Offset,
    /// Active producers' last entries.
    pub last_records: &'a HashMap<i64, LastRecord>,
    pub txns: &'a mut CleanedTxns,
    /// Set once a batch with records the filter could not judge was kept
    /// whole in this pass: every later tombstone is kept (module doc).
    pub unjudged_seen: &'a mut bool,
}

/// Counts of one filter run.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct FilterStats {
    pub records_read: u64,
    pub records_kept: u64,
    pub batches_dropped: u64,
    pub bytes_read: u64,
    pub bytes_written: u64,
}

/// Spans `(start, end)` of each record (its length varint included) in an
/// uncompressed batch's records section, or `None` if they do not parse.
fn record_spans(records: &[u8], count: usize) -> Option<Vec<(usize, usize)>> {
    let mut spans = Vec::with_capacity(count.min(records.len() / 7 + 1));
    let mut pos = 0;
    for _ in 0..count {
        let start = pos;
        let len = usize::try_from(read_varint(records, &mut pos)?).ok()?;
        let end = pos.checked_add(len).filter(|e| *e <= records.len())?;
        spans.push((start, end));
        pos = end;
    }
    (pos == records.len()).then_some(spans)
}

/// Hands `sink` what cleaning keeps of the batches in `data`, batch by batch.
pub(crate) fn filter_batches(
    data: &[u8],
    ctx: &mut FilterContext<'_>,
    stats: &mut FilterStats,
    sink: &mut dyn FnMut(&[u8]) -> Result<(), StorageError>,
) -> Result<(), StorageError> {
    let mut out = Vec::new();
    for batch in BatchIter::new(data, Validation::Structure) {
        let Ok(batch) = batch else { break };
        stats.bytes_read += batch.size_bytes() as u64;
        out.clear();
        filter_batch(&batch, ctx, &mut out, stats);
        stats.bytes_written += out.len() as u64;
        if !out.is_empty() {
            sink(&out)?;
        }
    }
    Ok(())
}

fn keep_whole(batch: &RecordBatch<'_>, out: &mut Vec<u8>, stats: &mut FilterStats) {
    let n = batch.records_count().max(0) as u64;
    stats.records_read += n;
    stats.records_kept += n;
    out.extend_from_slice(batch.as_bytes());
}

/// Kafka's `writeEmptyHeader`: the batch's header with no records, no
/// codec, no delete horizon, base timestamp -1 and its max timestamp.
fn write_empty(batch: &RecordBatch<'_>, out: &mut Vec<u8>) {
    let start = out.len();
    out.extend_from_slice(&batch.as_bytes()[..RECORD_BATCH_OVERHEAD_BYTES]);
    let new = &mut out[start..];
    let batch_length = (RECORD_BATCH_OVERHEAD_BYTES - LOG_OVERHEAD_BYTES) as i32;
    new[BATCH_LENGTH_AT..BATCH_LENGTH_AT + 4].copy_from_slice(&batch_length.to_be_bytes());
    let attributes = batch.attributes() & EMPTY_BATCH_KEPT_BITS;
    new[ATTRIBUTES_AT..ATTRIBUTES_AT + 2].copy_from_slice(&attributes.to_be_bytes());
    new[BASE_TIMESTAMP_AT..BASE_TIMESTAMP_AT + 8].copy_from_slice(&TimestampMs::NONE.0.to_be_bytes());
    new[RECORDS_COUNT_AT..RECORDS_COUNT_AT + 4].copy_from_slice(&0i32.to_be_bytes());
    // Cannot fail: `new` holds a whole header.
    let _ = update_crc(new);
}

/// One record span re-encoded with its timestamp delta against
/// `new_base` instead of `old_base` (the rest copied); `None` if it does
/// not parse.
fn rebase_record(record: &[u8], old_base: i64, new_base: i64, out: &mut Vec<u8>) -> Option<()> {
    let mut pos = 0;
    read_varint(record, &mut pos)?;
    let attributes = *record.get(pos)?;
    pos += 1;
    let delta = read_varlong(record, &mut pos)?;
    let rest = record.get(pos..)?;
    let mut body = Vec::with_capacity(rest.len() + 11);
    body.push(attributes);
    write_varlong(&mut body, old_base.wrapping_add(delta).wrapping_sub(new_base));
    body.extend_from_slice(rest);
    write_varint(out, i32::try_from(body.len()).ok()?);
    out.extend_from_slice(&body);
    Some(())
}

/// Writes `batch` again with only the records at `keep` (spans of
/// `records`, its decompressed records region), compressed with its codec;
/// with `set_horizon`, stamped with that delete horizon. `false`: the
/// records could not be re-encoded or compressed (nothing written).
fn rewrite(
    batch: &RecordBatch<'_>,
    records: &[u8],
    keep: &[(usize, usize)],
    max_timestamp: TimestampMs,
    set_horizon: Option<TimestampMs>,
    out: &mut Vec<u8>,
) -> bool {
    let mut kept = Vec::with_capacity(keep.iter().map(|(s, e)| e - s).sum());
    for (s, e) in keep {
        match set_horizon {
            Some(h) => {
                if rebase_record(&records[*s..*e], batch.base_timestamp().0, h.0, &mut kept).is_none() {
                    return false;
                }
            }
            None => kept.extend_from_slice(&records[*s..*e]),
        }
    }
    let Some(codec) = batch.compression() else { return false };
    let body = match codec {
        CompressionType::None => kept,
        CompressionType::Zstd => zstd_stored_frame(&kept),
        c => match compress(c, &kept) {
            Ok(b) => b,
            Err(_) => return false,
        },
    };
    let start = out.len();
    out.extend_from_slice(&batch.as_bytes()[..RECORD_BATCH_OVERHEAD_BYTES]);
    out.extend_from_slice(&body);
    let new = &mut out[start..];
    let batch_length = (new.len() - LOG_OVERHEAD_BYTES) as i32;
    new[BATCH_LENGTH_AT..BATCH_LENGTH_AT + 4].copy_from_slice(&batch_length.to_be_bytes());
    new[RECORDS_COUNT_AT..RECORDS_COUNT_AT + 4].copy_from_slice(&(keep.len() as i32).to_be_bytes());
    if let Some(h) = set_horizon {
        let attributes = batch.attributes() | DELETE_HORIZON_BIT;
        new[ATTRIBUTES_AT..ATTRIBUTES_AT + 2].copy_from_slice(&attributes.to_be_bytes());
        new[BASE_TIMESTAMP_AT..BASE_TIMESTAMP_AT + 8].copy_from_slice(&h.0.to_be_bytes());
    }
    if batch.timestamp_type() == TimestampType::CreateTime {
        new[MAX_TIMESTAMP_AT..MAX_TIMESTAMP_AT + 8].copy_from_slice(&max_timestamp.0.to_be_bytes());
    }
    // Cannot fail: `new` holds a whole header.
    let _ = update_crc(new);
    true
}

/// The batch's delete horizon (KIP-534), if one was set.
fn delete_horizon(batch: &RecordBatch<'_>) -> Option<TimestampMs> {
    batch.has_delete_horizon().then(|| batch.base_timestamp())
}

fn filter_batch(batch: &RecordBatch<'_>, ctx: &mut FilterContext<'_>, out: &mut Vec<u8>, stats: &mut FilterStats) {
    // Kafka's `checkBatchRetention`.
    let control = batch.is_control();
    let can_discard = if control { ctx.txns.on_control_batch_read(batch) } else { ctx.txns.on_batch_read(batch) };
    let horizon = delete_horizon(batch);
    let discard_records = if control { can_discard && horizon.is_some_and(|h| h <= ctx.now) } else { can_discard };
    let last_of_producer = batch.has_producer_id()
        && ctx.last_records.get(&batch.producer_id()).is_some_and(|r| match r.data_offset {
            Some(o) => batch.last_offset() == o,
            None => control && batch.producer_epoch() == r.epoch,
        });
    let retain_empty = last_of_producer || batch.next_offset() == ctx.round_end;
    let drop_or_empty = |out: &mut Vec<u8>, stats: &mut FilterStats| {
        if retain_empty {
            write_empty(batch, out);
        } else {
            stats.batches_dropped += 1;
        }
    };
    if discard_records {
        stats.records_read += batch.records_count().max(0) as u64;
        return drop_or_empty(out, stats);
    }
    if control {
        // Kept; the marker of a transaction with no data left gets its
        // delete horizon the first time.
        let set = (can_discard && horizon.is_none() && batch.compression() == Some(CompressionType::None))
            .then(|| TimestampMs(ctx.now.0.saturating_add(ctx.delete_retention_ms)));
        let records = batch.records_bytes();
        let count = usize::try_from(batch.records_count()).unwrap_or(0);
        if let (Some(h), Some(spans)) = (set, record_spans(records, count)) {
            let start = out.len();
            if rewrite(batch, records, &spans, batch.max_timestamp(), Some(h), out) {
                let n = spans.len() as u64;
                stats.records_read += n;
                stats.records_kept += n;
                return;
            }
            out.truncate(start);
        }
        return keep_whole(batch, out, stats);
    }
    let unjudged = |out: &mut Vec<u8>, stats: &mut FilterStats, seen: &mut bool| {
        *seen = true;
        keep_whole(batch, out, stats)
    };
    let Some(region) = records_region(batch) else { return unjudged(out, stats, ctx.unjudged_seen) };
    let records: &[u8] = &region;
    let count = usize::try_from(batch.records_count()).unwrap_or(0);
    let Some(spans) = record_spans(records, count) else {
        return unjudged(out, stats, ctx.unjudged_seen);
    };
    let retain_deletes = *ctx.unjudged_seen || horizon.is_none_or(|h| ctx.now < h);
    let mut keep = Vec::with_capacity(spans.len());
    let mut max_timestamp = TimestampMs::NONE;
    let mut tombstones = false;
    let mut read = 0;
    for (record, span) in RecordIter::over(records, batch.records_count()).zip(spans.iter()) {
        let Ok(record) = record else {
            return unjudged(out, stats, ctx.unjudged_seen);
        };
        read += 1;
        let offset = record.offset(batch);
        let retained = if offset >= ctx.map_end {
            true
        } else {
            match record.key {
                // Kafka's cleaner drops records without a key.
                None => false,
                Some(key) => {
                    let latest = ctx.map.get(key).is_none_or(|o| offset >= o);
                    latest && (record.value.is_some() || retain_deletes)
                }
            }
        };
        if retained {
            keep.push(*span);
            max_timestamp = max_timestamp.max(record.timestamp(batch));
            tombstones |= record.value.is_none();
        }
    }
    stats.records_read += read;
    let set = (tombstones && horizon.is_none()).then(|| TimestampMs(ctx.now.0.saturating_add(ctx.delete_retention_ms)));
    if keep.len() == spans.len() && set.is_none() {
        stats.records_kept += keep.len() as u64;
        out.extend_from_slice(batch.as_bytes());
        return;
    }
    if keep.is_empty() {
        return drop_or_empty(out, stats);
    }
    let start = out.len();
    if !rewrite(batch, records, &keep, max_timestamp, set, out) {
        out.truncate(start);
        stats.records_read -= read;
        return unjudged(out, stats, ctx.unjudged_seen);
    }
    stats.records_kept += keep.len() as u64;
}
