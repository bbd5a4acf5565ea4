//! Cleaning one segment's batches (Kafka's `Cleaner.cleanInto` and
//! `MemoryRecords.filterTo`): every record is kept unless a later record
//! of its key is in the offset map, or it is a tombstone past the delete
//! horizon (judged by its batch's max timestamp), or it has no key. Batches keep their base offset, last offset
//! delta, producer id, epoch and base sequence; retained records are copied
//! byte for byte (their deltas are relative to the unchanged base offset and
//! base timestamp). A batch emptied entirely is dropped, except the last
//! batch of a producer, which stays as an empty batch so the producer's
//! sequence survives (Kafka's `RETAIN_EMPTY`). A compressed batch is
//! decompressed, filtered the same way and compressed again with its codec
//! (zstd as stored blocks: klamm has no zstd encoder). Control batches and
//! the data of aborted transactions are kept whole.
//!
//! A batch kept whole with records the filter could not judge (the data of
//! an aborted transaction, a batch that does not decompress or parse) may
//! hold older values of keys whose tombstones come later: once such a batch
//! has been seen, the pass keeps every tombstone after it, so no deleted key
//! comes back.

use std::borrow::Cow;
use std::cell::Cell;
use std::collections::HashMap;

use super::offset_map::OffsetMap;
use crate::storage::StorageError;
use crate::records::compression::{compress, decompress, zstd_stored_frame};
use crate::records::{
    read_varint, set_max_timestamp, update_crc, BatchIter, CompressionType, RecordBatch,
    RecordIter, TimestampType, Validation, LOG_OVERHEAD_BYTES, RECORD_BATCH_OVERHEAD_BYTES,
};
use crate::storage::txn_index::AbortedTxn;
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
const RECORDS_COUNT_AT: usize = 57;

/// Aborted transactions by producer id, to tell aborted data batches.
#[derive(Default)]
pub(crate) struct Aborted {
    by_producer: HashMap<i64, Vec<(Offset, Offset)>>,
}

impl Aborted {
    pub(crate) fn new(txns: &[AbortedTxn]) -> Aborted {
        let mut by_producer: HashMap<i64, Vec<(Offset, Offset)>> = HashMap::new();
        for t in txns {
            by_producer
                .entry(t.producer_id)
                .or_default()
                .push((t.first_offset, t.last_offset));
        }
        Aborted { by_producer }
    }

    /// Whether `batch` is data of an aborted transaction.
    pub(crate) fn contains(&self, batch: &RecordBatch<'_>) -> bool {
        if !batch.is_transactional() || batch.is_control() || !batch.has_producer_id() {
            return false;
        }
        let base = batch.base_offset();
        self.by_producer
            .get(&batch.producer_id())
            .is_some_and(|v| v.iter().any(|(first, last)| *first <= base && base <= *last))
    }
}

/// What the filter needs to know about the log.
pub(crate) struct FilterContext<'a> {
    pub map: &'a OffsetMap,
    /// Records at or beyond this offset were not seen by the map: kept.
    pub map_end: Offset,
    /// Tombstones of batches whose max timestamp is at or below this are
    /// dropped (`i64::MIN`: none).
    pub delete_horizon: TimestampMs,
    /// Producer id → last offset of its last data batch.
    pub last_batch_of_producer: &'a HashMap<i64, Offset>,
    pub aborted: &'a Aborted,
    /// Set once a batch with records the filter could not judge was kept
    /// whole in this pass: every later tombstone is kept (module doc).
    pub unjudged_seen: &'a Cell<bool>,
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
    ctx: &FilterContext<'_>,
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

fn filter_batch(batch: &RecordBatch<'_>, ctx: &FilterContext<'_>, out: &mut Vec<u8>, stats: &mut FilterStats) {
    if batch.is_control() || batch.base_offset() >= ctx.map_end {
        return keep_whole(batch, out, stats);
    }
    let unjudged = |out: &mut Vec<u8>, stats: &mut FilterStats| {
        ctx.unjudged_seen.set(true);
        keep_whole(batch, out, stats)
    };
    if ctx.aborted.contains(batch) {
        return unjudged(out, stats);
    }
    let Some(codec) = batch.compression() else { return unjudged(out, stats) };
    let Some(region) = records_region(batch) else { return unjudged(out, stats) };
    let records: &[u8] = &region;
    let count = usize::try_from(batch.records_count()).unwrap_or(0);
    let Some(spans) = record_spans(records, count) else {
        return unjudged(out, stats);
    };
    let ts = batch.max_timestamp().0;
    let retain_deletes = ctx.unjudged_seen.get() || ts < 0 || ts > ctx.delete_horizon.0;
    let mut keep = Vec::with_capacity(spans.len());
    let mut max_timestamp = TimestampMs::NONE;
    for (record, span) in RecordIter::over(records, batch.records_count()).zip(spans.iter()) {
        let Ok(record) = record else {
            return unjudged(out, stats);
        };
        stats.records_read += 1;
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
        }
    }
    stats.records_kept += keep.len() as u64;
    if keep.len() == spans.len() {
        out.extend_from_slice(batch.as_bytes());
        return;
    }
    let last_of_producer = batch.has_producer_id()
        && ctx.last_batch_of_producer.get(&batch.producer_id()) == Some(&batch.last_offset());
    if keep.is_empty() && !last_of_producer {
        stats.batches_dropped += 1;
        return;
    }
    let mut kept = Vec::with_capacity(keep.iter().map(|(s, e)| e - s).sum());
    for (s, e) in &keep {
        kept.extend_from_slice(&records[*s..*e]);
    }
    let body = match codec {
        CompressionType::None => kept,
        CompressionType::Zstd => zstd_stored_frame(&kept),
        c => match compress(c, &kept) {
            Ok(b) => b,
            Err(_) => return unjudged(out, stats),
        },
    };
    let start = out.len();
    out.extend_from_slice(&batch.as_bytes()[..RECORD_BATCH_OVERHEAD_BYTES]);
    out.extend_from_slice(&body);
    let new = &mut out[start..];
    let batch_length = (new.len() - LOG_OVERHEAD_BYTES) as i32;
    new[BATCH_LENGTH_AT..BATCH_LENGTH_AT + 4].copy_from_slice(&batch_length.to_be_bytes());
    new[RECORDS_COUNT_AT..RECORDS_COUNT_AT + 4].copy_from_slice(&(keep.len() as i32).to_be_bytes());
    // An emptied batch keeps its max timestamp (Kafka's empty header does).
    if batch.timestamp_type() == TimestampType::CreateTime && !keep.is_empty() {
        let _ = set_max_timestamp(new, TimestampType::CreateTime, max_timestamp);
    }
    // Cannot fail: `new` holds a whole header.
    let _ = update_crc(new);
}
