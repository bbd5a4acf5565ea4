//! The log cleaner (Kafka's `LogCleaner`, `Cleaner`, `LogCleanerManager`):
//! compaction of the logs whose `cleanup.policy` contains `compact`.
//!
//! A pass picks the filthiest compacted log — dirty bytes (after the
//! cleaner checkpoint, below the first uncleanable offset: the active
//! segment, the last stable offset, records younger than
//! `min.compaction.lag.ms`) over all bytes from the log start, above
//! `min.cleanable.dirty.ratio`, or any dirty bytes once the oldest dirty
//! record is older than `max.compaction.lag.ms` — and, without holding the
//! partition lock: builds the key → latest offset map over the dirty
//! section (`offset_map`, bounded by `log.cleaner.dedupe.buffer.size`),
//! rewrites the inactive segments from the log start in groups of at most
//! `segment.bytes` (`clean`), each into one cleaned segment with the same
//! offsets, throttled to `log.cleaner.io.max.bytes.per.second`. The lock
//! is taken only to swap a cleaned group in (`swap`, crash-safe). Progress
//! is checkpointed in `<log.dir>/cleaner-offset-checkpoint` (`checkpoint`).
//!
//! Tombstones and transaction markers are removed as Kafka's cleaner does
//! since KIP-534 (see `clean`): the first clean that keeps one stamps its
//! batch with a delete horizon `delete.retention.ms` after that clean, and
//! a clean after the horizon removes it, so a consumer that read up to the
//! cleaned point has that long to see it. The data of aborted
//! transactions is removed, and the partition's aborted-transaction list
//! forgets a transaction once no data of it is left, so a READ_COMMITTED
//! fetch is never told of a transaction whose marker may be gone.
//!

mod checkpoint;
mod clean;
mod offset_map;
pub(crate) mod swap;
#[cfg(test)]
mod tests;

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use bytes::Bytes;
use tracing::{info, warn};

use super::error::StorageError;
use super::log_manager::SharedLog;
use super::partition_log::PartitionLog;
use clean::{filter_batches, records_region, CleanedTxns, FilterContext, FilterStats, LastRecord};
use offset_map::OffsetMap;
use crate::records::{BatchIter, CompressionType, RecordIter, Validation};
use crate::types::{Offset, TimestampMs, TopicPartition};

pub use checkpoint::CLEANER_CHECKPOINT_FILE;

/// The broker's `log.cleaner.*` settings.
#[derive(Clone, Debug, PartialEq)]
pub struct CleanerConfig {
    /// `log.cleaner.enable`.
    pub enable: bool,
    /// `log.cleaner.threads`.
    pub threads: usize,
    /// `log.cleaner.backoff.ms`: sleep when no log needs cleaning.
    pub backoff_ms: u64,
    /// `log.cleaner.dedupe.buffer.size`, shared by all cleaner threads.
    pub dedupe_buffer_bytes: u64,
    /// `log.cleaner.io.max.bytes.per.second` (read plus written).
    pub io_max_bytes_per_second: f64,
}

impl Default for CleanerConfig {
    fn default() -> Self {
        CleanerConfig {
            enable: true,
            threads: 1,
            backoff_ms: 15_000,
            dedupe_buffer_bytes: 128 * 1024 * 1024,
            io_max_bytes_per_second: f64::MAX,
        }
    }
}

impl CleanerConfig {
    fn map_bytes_per_thread(&self) -> usize {
        let per = self.dedupe_buffer_bytes / self.threads.max(1) as u64;
        usize::try_from(per).unwrap_or(usize::MAX)
    }
}

/// Cumulative counters, for `/metrics`.
#[derive(Debug, Default)]
pub struct CleanerStats {
    pub passes: AtomicU64,
    pub bytes_read: AtomicU64,
    pub bytes_written: AtomicU64,
    pub records_removed: AtomicU64,
    pub uncleanable_partitions: AtomicU64,
}

/// What one cleaning of one log did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct CleanReport {
    pub partition: Option<TopicPartition>,
    pub first_dirty: Offset,
    /// The new cleaner checkpoint.
    pub end_offset: Offset,
    pub groups: usize,
    pub bytes_read: u64,
    pub bytes_written: u64,
    pub records_read: u64,
    pub records_kept: u64,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Why a log is (not) cleanable now.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) struct Assessment {
    pub first_dirty: Offset,
    pub first_uncleanable: Offset,
    pub clean_bytes: u64,
    pub dirty_bytes: u64,
    pub needs_now: bool,
}

impl Assessment {
    pub(crate) fn ratio(&self) -> f64 {
        let total = self.clean_bytes + self.dirty_bytes;
        if total == 0 {
            0.0
        } else {
            self.dirty_bytes as f64 / total as f64
        }
    }

    fn cleanable(&self, min_ratio_ppm: u32) -> bool {
        self.dirty_bytes > 0
            && (self.needs_now || self.ratio() > f64::from(min_ratio_ppm) / 1e6)
    }
}

/// Kafka's `LogCleanerManager.cleanableOffsets` and `calculateCleanableBytes`.
pub(crate) fn assess(log: &PartitionLog, checkpoint: Option<Offset>, now: TimestampMs) -> Assessment {
    let config = log.config();
    let segments: Vec<_> = log.segments().values().collect();
    let active_base = segments.last().map_or(log.log_end_offset(), |s| s.base_offset());
    let log_start = log.log_start_offset();
    let first_dirty = match checkpoint {
        Some(c) if c >= log_start && c <= log.log_end_offset() => c,
        _ => log_start,
    };
    let mut first_uncleanable = active_base.min(log.last_stable_offset());
    let inactive = &segments[..segments.len().saturating_sub(1)];
    let next_base = |i: usize| segments.get(i + 1).map_or(log.log_end_offset(), |s| s.base_offset());
    if config.min_compaction_lag_ms > 0 {
        let young = inactive.iter().enumerate().find(|(i, s)| {
            next_base(*i) > first_dirty
                && s.largest_timestamp().0 > now.0.saturating_sub(config.min_compaction_lag_ms)
        });
        if let Some((_, s)) = young {
            first_uncleanable = first_uncleanable.min(s.base_offset());
        }
    }
    let first_uncleanable = first_uncleanable.max(first_dirty);
    let mut clean_bytes = 0;
    let mut dirty_bytes = 0;
    let mut first_dirty_timestamp = None;
    for (i, s) in inactive.iter().enumerate() {
        let (lo, hi) = (s.base_offset(), next_base(i));
        if hi > log_start && lo < first_dirty {
            clean_bytes += s.size_bytes() as u64;
        }
        if hi > first_dirty && lo < first_uncleanable {
            dirty_bytes += s.size_bytes() as u64;
            if first_dirty_timestamp.is_none() {
                first_dirty_timestamp = s.log_bytes().ok().and_then(|data| {
                    BatchIter::new(&data, Validation::Structure)
                        .next()
                        .and_then(Result::ok)
                        .map(|b| b.max_timestamp())
                });
            }
        }
    }
    let needs_now = config.max_compaction_lag_ms < i64::MAX
        && first_dirty_timestamp
            .is_some_and(|ts| ts.0 >= 0 && ts.0 < now.0.saturating_sub(config.max_compaction_lag_ms));
    Assessment {
        first_dirty,
        first_uncleanable,
        clean_bytes,
        dirty_bytes,
        needs_now,
    }
}

/// One inactive segment, as the cleaner reads it without the lock.
struct SegmentView {
    base: Offset,
    /// The next segment's base offset.
    next_base: Offset,
    size_bytes: usize,
    data: Bytes,
}

/// What the cleaner copies from a log under its lock.
struct LogView {
    dir: PathBuf,
    config: super::config::LogConfig,
    segments: Vec<SegmentView>,
    last_records: HashMap<i64, LastRecord>,
    /// Every aborted transaction overlapping the segments, by first offset.
    aborted: Vec<super::txn_index::AbortedTxn>,
}

fn view(log: &PartitionLog, below: Offset) -> LogView {
    let segments: Vec<_> = log.segments().values().collect();
    let mut views = Vec::new();
    for (i, s) in segments.iter().enumerate() {
        let Some(next) = segments.get(i + 1) else { break };
        if s.base_offset() >= below {
            break;
        }
        // Mapping it may fail (the map bound, an I/O error): clean only
        // the segments before it.
        let Ok(data) = s.log_bytes() else { break };
        views.push(SegmentView {
            base: s.base_offset(),
            next_base: next.base_offset(),
            size_bytes: s.size_bytes(),
            data,
        });
    }
    LogView {
        dir: log.dir().to_path_buf(),
        config: log.config().clone(),
        segments: views,
        last_records: log
            .producer_state()
            .entries()
            .iter()
            .map(|e| {
                let data_offset = e.batches().last().map(|b| b.last_offset);
                (e.producer_id, LastRecord { data_offset, epoch: e.epoch })
            })
            .collect(),
        aborted: log.aborted_transactions(Offset(0), below),
    }
}

/// `log.cleaner.io.max.bytes.per.second`.
struct Throttler {
    bytes_per_second: f64,
    start: Instant,
    bytes: u64,
}

impl Throttler {
    fn new(bytes_per_second: f64) -> Throttler {
        Throttler { bytes_per_second, start: Instant::now(), bytes: 0 }
    }

    fn charge(&mut self, bytes: u64) {
        self.bytes = self.bytes.saturating_add(bytes);
        if !(self.bytes_per_second.is_finite() && self.bytes_per_second > 0.0) || self.bytes_per_second >= f64::MAX {
            return;
        }
        let due_s = self.bytes as f64 / self.bytes_per_second;
        let elapsed_s = self.start.elapsed().as_secs_f64();
        if due_s > elapsed_s {
            std::thread::sleep(Duration::from_secs_f64((due_s - elapsed_s).min(1.0)));
        }
    }
}

/// Bytes the filter hands to the cleaned segment at a time.
const WRITE_CHUNK_BYTES: usize = 1 << 20;

/// Builds the offset map over `[first_dirty, first_uncleanable)`; returns
/// where it stopped (the new checkpoint), or `None` if not even one batch
/// fit (the dedupe buffer is too small for this log).
fn build_offset_map(
    view: &LogView,
    first_dirty: Offset,
    first_uncleanable: Offset,
    map: &mut OffsetMap,
    throttler: &mut Throttler,
    stopping: &AtomicBool,
) -> Option<Offset> {
    let mut end = first_dirty;
    let overlapping: Vec<_> = view.aborted.iter().filter(|t| t.last_offset >= first_dirty).copied().collect();
    let mut txns = CleanedTxns::new(&overlapping);
    for s in view.segments.iter().filter(|s| s.next_base > first_dirty) {
        if s.base >= first_uncleanable || stopping.load(Ordering::Relaxed) {
            return (end > first_dirty).then_some(end);
        }
        throttler.charge(s.size_bytes as u64);
        for batch in BatchIter::new(&s.data, Validation::Structure) {
            let Ok(batch) = batch else { break };
            if batch.base_offset() >= first_uncleanable {
                return Some(first_uncleanable);
            }
            let aborted = if batch.is_control() {
                txns.on_control_batch_read(&batch);
                true
            } else {
                txns.on_batch_read(&batch)
            };
            if batch.last_offset() < first_dirty {
                continue;
            }
            let region = if aborted { None } else { records_region(&batch) };
            // (A batch that does not decompress is left out: the filter
            // keeps it whole and then keeps the tombstones after it.)
            if let Some(region) = region {
                if !map.has_room_for(batch.records_count().max(0) as usize) {
                    return (end > first_dirty).then_some(end);
                }
                for record in RecordIter::over(&region, batch.records_count()) {
                    let Ok(record) = record else { break };
                    let offset = record.offset(&batch);
                    if let (Some(key), true) = (record.key, offset >= first_dirty) {
                        map.put(key, offset);
                    }
                }
            }
            end = batch.next_offset();
        }
    }
    Some(first_uncleanable.max(end))
}

/// The cleaner's state: checkpoints, which logs are being cleaned, and
/// which cannot be.
pub struct LogCleaner {
    checkpoint_path: PathBuf,
    checkpoints: Mutex<HashMap<TopicPartition, Offset>>,
    in_progress: Mutex<HashSet<TopicPartition>>,
    uncleanable: Mutex<HashSet<TopicPartition>>,
    /// Set at shutdown: a pass in progress stops at its next segment.
    stopping: AtomicBool,
    pub stats: CleanerStats,
}

impl LogCleaner {
    /// Reads `<log_dir>/cleaner-offset-checkpoint` (an unreadable one is
    /// ignored: cleaning starts over from each log start).
    pub fn open(log_dir: &Path) -> LogCleaner {
        let checkpoint_path = log_dir.join(CLEANER_CHECKPOINT_FILE);
        let checkpoints = checkpoint::read(&checkpoint_path).unwrap_or_else(|e| {
            warn!(path = %checkpoint_path.display(), error = %e, "ignoring an unreadable cleaner checkpoint");
            HashMap::new()
        });
        LogCleaner {
            checkpoint_path,
            checkpoints: Mutex::new(checkpoints),
            in_progress: Mutex::new(HashSet::new()),
            uncleanable: Mutex::new(HashSet::new()),
            stopping: AtomicBool::new(false),
            stats: CleanerStats::default(),
        }
    }

    /// Stops cleaning: a pass in progress ends at its next segment, its
    /// unfinished cleaned segment discarded; later passes do nothing.
    pub fn stop(&self) {
        self.stopping.store(true, Ordering::Relaxed);
    }

    fn stopped(&self) -> bool {
        self.stopping.load(Ordering::Relaxed)
    }

    /// The checkpointed first dirty offset of `tp`.
    pub fn checkpoint(&self, tp: &TopicPartition) -> Option<Offset> {
        lock(&self.checkpoints).get(tp).copied()
    }

    /// Forgets a deleted partition.
    pub fn forget(&self, tp: &TopicPartition) {
        let removed = lock(&self.checkpoints).remove(tp).is_some();
        lock(&self.uncleanable).remove(tp);
        if removed {
            if let Err(e) = self.write_checkpoint() {
                warn!(error = %e, "writing the cleaner checkpoint failed");
            }
        }
    }

    fn write_checkpoint(&self) -> Result<(), StorageError> {
        let entries = lock(&self.checkpoints).clone();
        checkpoint::write(&self.checkpoint_path, &entries)
    }

    /// Cleans the filthiest cleanable log of `logs`, if any. Returns what
    /// it did, or `None` when nothing needed cleaning.
    pub fn clean_filthiest(
        &self,
        logs: &[(TopicPartition, SharedLog)],
        config: &CleanerConfig,
        now: TimestampMs,
    ) -> Result<Option<CleanReport>, StorageError> {
        if self.stopped() {
            return Ok(None);
        }
        let mut best: Option<(f64, &TopicPartition, &SharedLog, Assessment)> = None;
        {
            let in_progress = lock(&self.in_progress);
            let uncleanable = lock(&self.uncleanable);
            for (tp, shared) in logs {
                if in_progress.contains(tp) || uncleanable.contains(tp) {
                    continue;
                }
                let log = lock(shared);
                if log.is_closed() || !log.config().compact {
                    continue;
                }
                let a = assess(&log, self.checkpoint(tp), now);
                if a.cleanable(log.config().min_cleanable_dirty_ratio_ppm)
                    && best.as_ref().is_none_or(|(r, ..)| a.ratio() > *r)
                {
                    best = Some((a.ratio(), tp, shared, a));
                }
            }
        }
        let Some((_, tp, shared, assessment)) = best else {
            return Ok(None);
        };
        if !lock(&self.in_progress).insert(tp.clone()) {
            return Ok(None);
        }
        let result = self.clean_log(tp, shared, assessment, config, now);
        lock(&self.in_progress).remove(tp);
        if self.stopped() {
            return Ok(None);
        }
        match result {
            Ok(Some(report)) => {
                self.stats.passes.fetch_add(1, Ordering::Relaxed);
                Ok(Some(report))
            }
            Ok(None) => {
                warn!(partition = %tp, "log.cleaner.dedupe.buffer.size is too small to clean this partition; marking it uncleanable");
                lock(&self.uncleanable).insert(tp.clone());
                self.stats.uncleanable_partitions.store(lock(&self.uncleanable).len() as u64, Ordering::Relaxed);
                Ok(None)
            }
            Err(e) => {
                warn!(partition = %tp, error = %e, "cleaning failed; marking the partition uncleanable");
                lock(&self.uncleanable).insert(tp.clone());
                self.stats.uncleanable_partitions.store(lock(&self.uncleanable).len() as u64, Ordering::Relaxed);
                Err(e)
            }
        }
    }

    /// Cleans one log (Kafka's `Cleaner.doClean`). `None`: the dedupe
    /// buffer cannot hold one batch of it.
    pub(crate) fn clean_log(
        &self,
        tp: &TopicPartition,
        shared: &SharedLog,
        assessment: Assessment,
        config: &CleanerConfig,
        now: TimestampMs,
    ) -> Result<Option<CleanReport>, StorageError> {
        let view = {
            let log = lock(shared);
            if log.is_closed() {
                return Ok(Some(CleanReport::default()));
            }
            view(&log, assessment.first_uncleanable)
        };
        let mut throttler = Throttler::new(config.io_max_bytes_per_second);
        let mut map = OffsetMap::new(config.map_bytes_per_thread());
        let Some(end) = build_offset_map(
            &view,
            assessment.first_dirty,
            assessment.first_uncleanable,
            &mut map,
            &mut throttler,
            &self.stopping,
        ) else {
            return Ok(None);
        };
        let mut report = CleanReport {
            partition: Some(tp.clone()),
            first_dirty: assessment.first_dirty,
            end_offset: end,
            ..CleanReport::default()
        };
        // Named in the checkpoint before its first swap: a log with gaps
        // must be loaded as compacted (see `LogManager::open_only`).
        if self.checkpoint(tp).is_none() {
            lock(&self.checkpoints).insert(tp.clone(), assessment.first_dirty);
            self.write_checkpoint()?;
        }
        let to_clean: Vec<&SegmentView> = view.segments.iter().filter(|s| s.base < end).collect();
        let mut unjudged_seen = false;
        let mut txns = CleanedTxns::new(&view.aborted);
        for group in group_by_size(&to_clean, view.config.segment_bytes as u64) {
            let mut stats = FilterStats::default();
            let base = group[0].base;
            // Rewritten batches may grow (re-encoded timestamp deltas, zstd
            // as stored blocks): room for twice the group.
            let capacity: u64 = group.iter().map(|s| s.size_bytes as u64).sum::<u64>().saturating_mul(2);
            let batches: u64 = group
                .iter()
                .map(|s| BatchIter::new(&s.data, Validation::Structure).count() as u64)
                .sum();
            swap::write_cleaned(&view.dir, base, &view.config, capacity, batches, now, |segment| {
                let mut buf = Vec::new();
                for s in &group {
                    if self.stopped() {
                        return Err(StorageError::Closed { path: view.dir.clone() });
                    }
                    let mut ctx = FilterContext {
                        map: &map,
                        map_end: end,
                        now,
                        delete_retention_ms: view.config.delete_retention_ms,
                        round_end: assessment.first_uncleanable,
                        last_records: &view.last_records,
                        txns: &mut txns,
                        unjudged_seen: &mut unjudged_seen,
                    };
                    let written_before = stats.bytes_written;
                    filter_batches(&s.data, &mut ctx, &mut stats, &mut |bytes: &[u8]| {
                        buf.extend_from_slice(bytes);
                        if buf.len() >= WRITE_CHUNK_BYTES {
                            segment.append(&buf, now)?;
                            buf.clear();
                        }
                        Ok(())
                    })?;
                    throttler.charge(s.size_bytes as u64 + (stats.bytes_written - written_before));
                }
                if !buf.is_empty() {
                    segment.append(&buf, now)?;
                }
                Ok(())
            })?;
            let old_bases: Vec<Offset> = group.iter().map(|s| s.base).collect();
            let forgotten = std::mem::take(&mut txns.forgotten);
            let installed = {
                let mut log = lock(shared);
                let still_there = !log.is_closed() && {
                    let segs = log.segments();
                    let active = segs.keys().next_back().copied();
                    group.iter().all(|s| {
                        segs.get(&s.base.0).is_some_and(|seg| seg.size_bytes() == s.size_bytes)
                            && Some(s.base.0) != active
                    })
                };
                if still_there {
                    let dir = log.dir().to_path_buf();
                    let config = log.config().clone();
                    swap::install(&dir, log.segments_mut(), &config, &old_bases, base, now)?;
                    log.forget_aborted_txns(&forgotten);
                }
                still_there
            };
            if !installed {
                swap::discard_cleaned(&view.dir, base)?;
                info!(partition = %tp, "segments changed while being cleaned; cleaning stops here");
                return Ok(Some(report));
            }
            report.groups += 1;
            report.bytes_read += stats.bytes_read;
            report.bytes_written += stats.bytes_written;
            report.records_read += stats.records_read;
            report.records_kept += stats.records_kept;
            self.stats.bytes_read.fetch_add(stats.bytes_read, Ordering::Relaxed);
            self.stats.bytes_written.fetch_add(stats.bytes_written, Ordering::Relaxed);
            self.stats
                .records_removed
                .fetch_add(stats.records_read.saturating_sub(stats.records_kept), Ordering::Relaxed);
        }
        lock(&self.checkpoints).insert(tp.clone(), end);
        self.write_checkpoint()?;
        info!(
            partition = %tp, first_dirty = assessment.first_dirty.0, end_offset = end.0,
            groups = report.groups, bytes_read = report.bytes_read, bytes_written = report.bytes_written,
            "cleaned log"
        );
        Ok(Some(report))
    }
}

/// Kafka's `groupSegmentsBySize`: consecutive segments whose logs add up
/// to at most `max_bytes` and whose offsets fit one segment (relative
/// offsets are 32 bits).
fn group_by_size<'a>(segments: &[&'a SegmentView], max_bytes: u64) -> Vec<Vec<&'a SegmentView>> {
    let mut groups: Vec<Vec<&SegmentView>> = Vec::new();
    let mut bytes = 0u64;
    for s in segments {
        let fits = groups.last().is_some_and(|g| {
            bytes + s.size_bytes as u64 <= max_bytes
                && s.next_base.0.saturating_sub(g[0].base.0) <= i64::from(i32::MAX)
        });
        if fits {
            bytes += s.size_bytes as u64;
            if let Some(g) = groups.last_mut() {
                g.push(s);
            }
        } else {
            bytes = s.size_bytes as u64;
            groups.push(vec![s]);
        }
    }
    groups
}

/// Kafka's LogValidator `validateKey` for a compacted topic: every record
/// must have a key, whatever the batch's codec. A compressed batch is
/// decompressed for this (once: produce stores it as sent), within the
/// cleaner's bound; one that does not decompress or parse is refused with
/// INVALID_RECORD.
pub(crate) fn check_keys(dir: &Path, batch: &crate::records::RecordBatch<'_>) -> Result<(), StorageError> {
    let unreadable = |reason| StorageError::InvalidBatch(crate::records::BatchError::MalformedRecord { index: 0, reason });
    let region = match batch.compression() {
        Some(CompressionType::None) | None => std::borrow::Cow::Borrowed(batch.records_bytes()),
        Some(_) => records_region(batch).ok_or_else(|| unreadable("the compressed records do not decompress"))?,
    };
    let mut record_indexes = Vec::new();
    for (i, r) in RecordIter::over(&region, batch.records_count()).enumerate() {
        match r {
            Ok(r) if r.key.is_none() => record_indexes.push(i),
            Ok(_) => {}
            Err(_) => return Err(unreadable("a compressed record does not parse")),
        }
    }
    if record_indexes.is_empty() {
        return Ok(());
    }
    let partition = dir.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    Err(StorageError::KeylessRecords { partition, record_indexes })
}
