//! `Segment`: one `<base offset>.log` file of v2 batches plus its sparse
//! `.index` and `.timeindex`, all memory-mapped for reading. The active
//! segment's log grows by positioned writes (never preallocated, so a full
//! disk is an error, not a SIGBUS) and its indexes are preallocated and
//! written through their maps; sealing (roll or close) adds the final time
//! index entry, makes the files read-only and leaves their trim to the
//! logical size and fsync to a [`SegmentSync`], which a roll runs after the
//! partition lock is released. The files of a sealed segment are mapped
//! only while in use ([`super::map_cache`]): every read maps them again if
//! the cache unmapped them.

use std::ops::Deref;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use bytes::Bytes;

use super::config::LogConfig;
use super::error::StorageError;
use super::files::{
    offset_file, remove_if_exists, INDEX_SUFFIX, LOG_SUFFIX, TIME_INDEX_SUFFIX, TXN_INDEX_SUFFIX,
};
use super::index::{OffsetIndex, TimeIndex};
use super::map_cache::Lazy;
use super::mmap::{MappedFile, MappedRange, PendingSync, Prefaulter, WriteMode};
use crate::records::{
    BatchIter, CompressionType, RecordBatch, RecordIter, TimestampType, Validation,
    RECORD_BATCH_OVERHEAD_BYTES,
};
use crate::types::{FilePosition, Offset, TimestampMs};

/// A record's timestamp and offset, with the leader epoch of its batch
/// (-1 if unknown), as ListOffsets answers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TimestampAndOffset {
    pub timestamp: TimestampMs,
    pub offset: Offset,
    pub leader_epoch: i32,
}

/// Result of reading from one segment.
#[derive(Debug)]
pub enum SegmentRead {
    /// No batch in this segment reaches the requested offset.
    Beyond,
    /// Whole batches, starting with the one containing the offset (possibly
    /// empty if `max_offset_exclusive` cut everything), and the mapped
    /// range they are in, to prefault before they are sent
    /// ([`MappedRange::prefault`]; `None` when empty).
    Data(Bytes, Option<MappedRange>),
}

/// How to open an existing segment.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct OpenMode {
    /// Reopen the files for appends (the last segment).
    pub active: bool,
    /// CRC-check every batch from the start and rebuild both indexes;
    /// otherwise trust the indexes if they validate and check only the tail
    /// after the last index entry.
    pub recover: bool,
}

/// What opening a segment had to repair.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct OpenReport {
    /// Bytes cut from the end of the log.
    pub truncated_bytes: usize,
    /// The cut bytes were not all zero (a torn or corrupt write, not just a
    /// preallocated tail). Only computed for non-active segments.
    pub truncated_garbage: bool,
    /// The indexes were rebuilt from the log.
    pub rebuilt_indexes: bool,
}

/// Running statistics of a segment, updated per batch.
#[derive(Clone, Copy, Debug)]
struct Stats {
    bytes_since_last_index_entry: u32,
    max_timestamp: TimestampMs,
    offset_of_max_timestamp: Offset,
    first_batch_timestamp: Option<TimestampMs>,
    next_offset: Offset,
}

impl Stats {
    fn new(base_offset: Offset) -> Stats {
        Stats {
            bytes_since_last_index_entry: 0,
            max_timestamp: TimestampMs::NONE,
            offset_of_max_timestamp: base_offset,
            first_batch_timestamp: None,
            next_offset: base_offset,
        }
    }

    /// Kafka's per-append bookkeeping: track the max timestamp, and add
    /// index entries once more than `index_interval_bytes` were appended
    /// since the last one.
    fn on_batch(
        &mut self,
        indexes: Option<(&mut OffsetIndex, &mut TimeIndex)>,
        index_interval_bytes: u32,
        position: usize,
        batch: &RecordBatch<'_>,
    ) -> Result<(), StorageError> {
        if position == 0 {
            self.first_batch_timestamp = Some(batch.max_timestamp());
        }
        if batch.max_timestamp() > self.max_timestamp {
            self.max_timestamp = batch.max_timestamp();
            self.offset_of_max_timestamp = batch.last_offset();
        }
        if let Some((offset_index, time_index)) = indexes {
            if self.bytes_since_last_index_entry > index_interval_bytes {
                offset_index.append(batch.last_offset(), FilePosition(position as u32))?;
                time_index.maybe_append(self.max_timestamp, self.offset_of_max_timestamp)?;
                self.bytes_since_last_index_entry = 0;
            }
        }
        self.bytes_since_last_index_entry = self
            .bytes_since_last_index_entry
            .saturating_add(batch.size_bytes() as u32);
        self.next_offset = batch.next_offset();
        Ok(())
    }
}

/// Walks batches from `start`, CRC-checking them and checking that offsets
/// are contiguous (base offsets lie outside the CRC, so contiguity is what
/// catches a corrupted one) — or, with `allow_gaps` (a compacted log, whose
/// cleaned segments have gaps as Kafka's do), only that they increase —
/// and stay within `[base_offset, base_offset + i32::MAX]`.
/// `expected_first` is the base offset the first batch must have (with
/// `allow_gaps`, the least it may have; `None`: any, for a trusted start).
/// Calls `on_batch` for each valid batch; returns where the valid prefix ends.
fn scan_valid(
    log: &[u8],
    start: usize,
    base_offset: Offset,
    expected_first: Option<Offset>,
    allow_gaps: bool,
    mut on_batch: impl FnMut(usize, &RecordBatch<'_>) -> Result<(), StorageError>,
) -> Result<usize, StorageError> {
    let mut iter = BatchIter::starting_at(log, start, Validation::Crc);
    let mut expected = expected_first;
    loop {
        let position = iter.position();
        match iter.next() {
            Some(Ok(batch)) => {
                let rel_last = batch.last_offset().0 - base_offset.0;
                if expected.is_some_and(|e| batch.base_offset() < e || (!allow_gaps && batch.base_offset() != e))
                    || batch.base_offset() < base_offset
                    || batch.last_offset_delta() < 0
                    || !(0..=i32::MAX as i64).contains(&rel_last)
                {
                    return Ok(position);
                }
                expected = Some(batch.next_offset());
                on_batch(position, &batch)?;
            }
            Some(Err(_)) => return Ok(position),
            None => return Ok(iter.position()),
        }
    }
}

/// The first record of `batch` with timestamp `>= target` and offset `>=
/// starting`, given that `batch.max_timestamp() >= target`.
fn search_batch(
    batch: &RecordBatch<'_>,
    target: TimestampMs,
    starting: Offset,
) -> Option<TimestampAndOffset> {
    if batch.last_offset() < starting {
        return None;
    }
    let epoch = batch.partition_leader_epoch();
    let whole_batch = TimestampAndOffset {
        timestamp: batch.max_timestamp(),
        offset: batch.base_offset().max(starting),
        leader_epoch: epoch,
    };
    if batch.timestamp_type() == TimestampType::LogAppendTime {
        return Some(whole_batch);
    }
    if batch.compression() != Some(CompressionType::None) {
        // Compressed batches are stored as sent and not decompressed: answer
        // with the batch (a consumer seeking there sees the record).
        return Some(whole_batch);
    }
    for record in RecordIter::new(batch) {
        let Ok(record) = record else {
            return Some(whole_batch);
        };
        let (ts, off) = (record.timestamp(batch), record.offset(batch));
        if ts >= target && off >= starting {
            return Some(TimestampAndOffset {
                timestamp: ts,
                offset: off,
                leader_epoch: epoch,
            });
        }
    }
    None
}

/// The position and header of the first batch of `files` whose last
/// offset is `>= target`.
fn translate(files: &SegmentFiles, target: Offset) -> Option<(usize, RecordBatch<'_>)> {
    let start = files.offset_index.lookup(target).position.as_usize();
    let mut iter = BatchIter::starting_at(files.log.as_slice(), start, Validation::Structure);
    loop {
        let position = iter.position();
        match iter.next()? {
            Ok(batch) if batch.last_offset() >= target => return Some((position, batch)),
            Ok(_) => continue,
            Err(_) => return None,
        }
    }
}

/// Offset of the first record carrying the batch's max timestamp.
fn offset_of_max_timestamp(batch: &RecordBatch<'_>) -> Offset {
    if batch.timestamp_type() == TimestampType::LogAppendTime
        || batch.compression() != Some(CompressionType::None)
    {
        return batch.base_offset();
    }
    let max = batch.max_timestamp();
    RecordIter::new(batch)
        .map_while(Result::ok)
        .find(|r| r.timestamp(batch) == max)
        .map(|r| r.offset(batch))
        .unwrap_or(batch.base_offset())
}

fn file_mtime_ms(path: &Path) -> TimestampMs {
    std::fs::metadata(path)
        .and_then(|m| m.modified())
        .ok()
        .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
        .map(|d| TimestampMs(d.as_millis() as i64))
        .unwrap_or(TimestampMs(0))
}

/// A segment's three mapped files.
pub(crate) struct SegmentFiles {
    log: MappedFile,
    offset_index: OffsetIndex,
    time_index: TimeIndex,
}

/// The files of a segment: owned while active, behind the cache of mapped
/// inactive segments once sealed.
enum Files {
    Active(Box<SegmentFiles>),
    Sealed(Arc<Lazy<SegmentFiles>>),
}

/// The mapped files for one operation: borrowed from the active segment,
/// or an `Arc` that keeps a sealed segment's maps valid while the cache
/// unmaps it for others.
enum View<'a> {
    Borrowed(&'a SegmentFiles),
    Shared(Arc<SegmentFiles>),
}

impl Deref for View<'_> {
    type Target = SegmentFiles;
    fn deref(&self) -> &SegmentFiles {
        match self {
            View::Borrowed(f) => f,
            View::Shared(f) => f,
        }
    }
}

/// The I/O a sealed segment still owes (flush, trim, fsync of its three
/// files), to run without the partition lock ([`Segment::begin_seal`]).
pub struct SegmentSync {
    files: Vec<PendingSync>,
}

impl SegmentSync {
    /// Runs it; idempotent, so a retry after an error or a second runner is
    /// harmless.
    pub fn run(&self) -> Result<(), StorageError> {
        for f in &self.files {
            f.run()?;
        }
        Ok(())
    }
}

/// A search of one segment by time (ListOffsets).
#[derive(Clone, Copy, Debug)]
pub enum TimeQuery {
    /// The first record with timestamp `>= target` and offset `>=
    /// starting_offset`.
    ByTimestamp { target: TimestampMs, starting_offset: Offset },
    /// The earliest record whose timestamp is `max`, the segment's largest;
    /// `near` is the offset its stats remember for it.
    MaxTimestamp { max: TimestampMs, near: Offset },
}

impl TimeQuery {
    fn run(self, files: &SegmentFiles) -> Option<TimestampAndOffset> {
        match self {
            TimeQuery::ByTimestamp { target, starting_offset } => {
                let entry = files.time_index.lookup(target);
                let start = files
                    .offset_index
                    .lookup(entry.offset.max(starting_offset))
                    .position
                    .as_usize();
                for batch in BatchIter::starting_at(files.log.as_slice(), start, Validation::Structure) {
                    let Ok(batch) = batch else { break };
                    if batch.max_timestamp() >= target {
                        if let Some(found) = search_batch(&batch, target, starting_offset) {
                            return Some(found);
                        }
                    }
                }
                None
            }
            TimeQuery::MaxTimestamp { max, near } => {
                let start = files.offset_index.lookup(near).position.as_usize();
                for from in [start, 0] {
                    for batch in BatchIter::starting_at(files.log.as_slice(), from, Validation::Structure) {
                        let Ok(batch) = batch else { break };
                        if batch.max_timestamp() == max {
                            return Some(TimestampAndOffset {
                                timestamp: max,
                                offset: offset_of_max_timestamp(&batch),
                                leader_epoch: batch.partition_leader_epoch(),
                            });
                        }
                    }
                }
                None
            }
        }
    }
}

enum SearchState {
    Done(Option<TimestampAndOffset>),
    Pending { files: Arc<SegmentFiles>, query: TimeQuery },
}

/// A time search prepared under the partition lock
/// ([`Segment::time_search`]): answered already, or holding a sealed
/// segment's maps to search without the lock.
pub struct TimeSearch(SearchState);

impl TimeSearch {
    /// No record to search for.
    pub fn nothing() -> TimeSearch {
        TimeSearch(SearchState::Done(None))
    }

    /// Whether running it would read a sealed segment's pages.
    pub fn is_pending(&self) -> bool {
        matches!(self.0, SearchState::Pending { .. })
    }

    /// Runs the search (blocking: may fault the segment's pages in).
    pub fn run(self) -> Result<Option<TimestampAndOffset>, StorageError> {
        Ok(match self.0 {
            SearchState::Done(found) => found,
            SearchState::Pending { files, query } => query.run(&files),
        })
    }
}

/// Maps a sealed segment's files again, each over its logical length.
fn open_sealed_files(
    dir: &Path,
    base_offset: Offset,
    lens: (usize, usize, usize),
) -> Result<SegmentFiles, StorageError> {
    Ok(SegmentFiles {
        log: MappedFile::open_log_read_only_prefix(&Segment::log_path(dir, base_offset), Some(lens.0))?,
        offset_index: OffsetIndex::open_sealed(&offset_file(dir, base_offset, INDEX_SUFFIX), base_offset, lens.1)?,
        time_index: TimeIndex::open_sealed(&offset_file(dir, base_offset, TIME_INDEX_SUFFIX), base_offset, lens.2)?,
    })
}

/// A segment's bytes for one read, used after the partition lock is
/// released ([`Segment::snapshot`]): every page is faulted in before it is
/// read, so the disk I/O happens here, off the lock, and a failed read is
/// an error (KAFKA_STORAGE_ERROR) where the platform reports one.
pub struct SegmentSnapshot {
    base_offset: Offset,
    log: MappedRange,
    offset_index: MappedRange,
}

impl SegmentSnapshot {
    pub fn base_offset(&self) -> Offset {
        self.base_offset
    }

    /// [`Segment::read`] over the snapshot, with the record bytes faulted
    /// in (the returned range needs no further prefault).
    pub fn read(
        &self,
        offset: Offset,
        max_bytes: u32,
        max_offset_exclusive: Option<Offset>,
    ) -> Result<SegmentRead, StorageError> {
        self.offset_index.prefault()?;
        let start = OffsetIndex::lookup_in(self.offset_index.as_slice(), self.base_offset, offset)
            .position
            .as_usize();
        let log = self.log.as_slice();
        let mut faults = Prefaulter::new(&self.log);
        // Walk the headers to the batch holding `offset`.
        let mut at = start;
        let first = loop {
            faults.ensure(at, at.saturating_add(RECORD_BATCH_OVERHEAD_BYTES))?;
            let Some(Ok(batch)) = BatchIter::starting_at(log, at, Validation::Structure).next() else {
                return Ok(SegmentRead::Beyond);
            };
            if batch.last_offset() >= offset {
                break batch;
            }
            at += batch.size_bytes();
        };
        if max_offset_exclusive.is_some_and(|m| first.base_offset() >= m) {
            return Ok(SegmentRead::Data(Bytes::new(), None));
        }
        let limit = max_bytes as usize;
        let mut end = at + first.size_bytes();
        loop {
            faults.ensure(end, end.saturating_add(RECORD_BATCH_OVERHEAD_BYTES))?;
            let Some(Ok(batch)) = BatchIter::starting_at(log, end, Validation::Structure).next() else {
                break;
            };
            if max_offset_exclusive.is_some_and(|m| batch.base_offset() >= m)
                || end + batch.size_bytes() - at > limit
            {
                break;
            }
            end += batch.size_bytes();
        }
        let range = self.log.sub_range(at, end - at);
        if let Some(range) = &range {
            range.prefault()?;
        }
        let bytes = self.log.slice_bytes(at, end - at).unwrap_or_default();
        Ok(SegmentRead::Data(bytes, range))
    }
}

/// One log segment.
pub struct Segment {
    base_offset: Offset,
    dir: PathBuf,
    files: Files,
    /// Logical size of the log (kept here so a sealed segment answers
    /// without being mapped).
    sealed_size_bytes: usize,
    index_interval_bytes: u32,
    stats: Stats,
    created_ms: TimestampMs,
    last_modified_ms: TimestampMs,
}

impl Segment {
    pub fn log_path(dir: &Path, base_offset: Offset) -> PathBuf {
        offset_file(dir, base_offset, LOG_SUFFIX)
    }

    /// Creates a new, empty, active segment (replacing stale files with the
    /// same base offset, which can only hold data beyond the log end).
    pub fn create(
        dir: &Path,
        base_offset: Offset,
        config: &LogConfig,
        now: TimestampMs,
    ) -> Result<Segment, StorageError> {
        for suffix in [
            LOG_SUFFIX,
            INDEX_SUFFIX,
            TIME_INDEX_SUFFIX,
            TXN_INDEX_SUFFIX,
        ] {
            remove_if_exists(&offset_file(dir, base_offset, suffix))?;
        }
        let log = MappedFile::create(
            &Self::log_path(dir, base_offset),
            config.segment_bytes as usize,
            WriteMode::Pwrite,
        )?;
        let offset_index = OffsetIndex::create(
            &offset_file(dir, base_offset, INDEX_SUFFIX),
            base_offset,
            config.index_capacity_bytes(OffsetIndex::ENTRY_BYTES),
        )?;
        let time_index = TimeIndex::create(
            &offset_file(dir, base_offset, TIME_INDEX_SUFFIX),
            base_offset,
            config.index_capacity_bytes(TimeIndex::ENTRY_BYTES),
        )?;
        Ok(Segment {
            base_offset,
            dir: dir.to_path_buf(),
            files: Files::Active(Box::new(SegmentFiles {
                log,
                offset_index,
                time_index,
            })),
            sealed_size_bytes: 0,
            index_interval_bytes: config.index_interval_bytes,
            stats: Stats::new(base_offset),
            created_ms: now,
            last_modified_ms: now,
        })
    }

    /// Opens an existing segment, truncating the log at its first invalid
    /// byte and rebuilding indexes that are missing or inconsistent.
    pub fn open(
        dir: &Path,
        base_offset: Offset,
        config: &LogConfig,
        mode: OpenMode,
        now: TimestampMs,
    ) -> Result<(Segment, OpenReport), StorageError> {
        let log_path = Self::log_path(dir, base_offset);
        let index_path = offset_file(dir, base_offset, INDEX_SUFFIX);
        let time_index_path = offset_file(dir, base_offset, TIME_INDEX_SUFFIX);
        let last_modified_ms = file_mtime_ms(&log_path);
        let ro_log = MappedFile::open_read_only(&log_path)?;
        let file_len = ro_log.len();
        // Positions are u32 and segments are capped at i32::MAX bytes: data
        // beyond that cannot be ours and is treated as invalid.
        let scan_len = file_len.min(i32::MAX as usize);
        let interval = config.index_interval_bytes;
        let mut report = OpenReport::default();

        // Fast path: trusted indexes, scan only the tail after the last entry.
        let mut trusted: Option<(OffsetIndex, TimeIndex, Stats, usize)> = None;
        if !mode.recover && index_path.exists() && time_index_path.exists() {
            let offset_index = OffsetIndex::open(&index_path, base_offset, None)?;
            let time_index = TimeIndex::open(&time_index_path, base_offset, None)?;
            if offset_index.validate(file_len).is_ok() {
                let mut stats = Stats::new(base_offset);
                if let Some(last) = time_index.last_entry() {
                    stats.max_timestamp = last.timestamp;
                    stats.offset_of_max_timestamp = last.offset;
                }
                let start = offset_index
                    .last_entry()
                    .map(|e| e.position.as_usize())
                    .unwrap_or(0);
                let expected_last = offset_index.last_entry().map(|e| e.offset);
                let mut first = true;
                let mut consistent = true;
                let expected_first = if start == 0 { Some(base_offset) } else { None };
                let valid_end = scan_valid(
                    &ro_log.as_slice()[..scan_len],
                    start,
                    base_offset,
                    expected_first,
                    config.compact,
                    |pos, batch| {
                        if first {
                            first = false;
                            if expected_last.is_some_and(|o| o != batch.last_offset()) {
                                consistent = false;
                            }
                        }
                        stats.on_batch(None, interval, pos, batch)
                    },
                )?;
                if start > 0 && first {
                    consistent = false; // the indexed batch itself is bad
                }
                if consistent && time_index.validate(stats.next_offset).is_ok() {
                    stats.bytes_since_last_index_entry = 0;
                    trusted = Some((offset_index, time_index, stats, valid_end));
                }
            }
        }

        let (mut offset_index, mut time_index, mut stats, valid_end) = match trusted {
            Some(t) => t,
            None => {
                report.rebuilt_indexes = true;
                let mut offset_index = OffsetIndex::create(
                    &index_path,
                    base_offset,
                    config.index_capacity_bytes(OffsetIndex::ENTRY_BYTES),
                )?;
                let mut time_index = TimeIndex::create(
                    &time_index_path,
                    base_offset,
                    config.index_capacity_bytes(TimeIndex::ENTRY_BYTES),
                )?;
                let mut stats = Stats::new(base_offset);
                let valid_end = scan_valid(
                    &ro_log.as_slice()[..scan_len],
                    0,
                    base_offset,
                    Some(base_offset),
                    config.compact,
                    |pos, batch| {
                        stats.on_batch(
                            Some((&mut offset_index, &mut time_index)),
                            interval,
                            pos,
                            batch,
                        )
                    },
                )?;
                (offset_index, time_index, stats, valid_end)
            }
        };
        // The first batch's timestamp drives time-based rolling.
        if valid_end > 0 {
            if let Some(Ok(first)) = BatchIter::new(ro_log.as_slice(), Validation::Structure).next()
            {
                stats.first_batch_timestamp = Some(first.max_timestamp());
            }
        }

        debug_assert!(valid_end <= file_len);
        if valid_end < file_len {
            report.truncated_bytes = file_len - valid_end;
            if !mode.active {
                report.truncated_garbage = ro_log.as_slice()[valid_end..].iter().any(|&b| b != 0);
            }
        }
        drop(ro_log);

        let log = if mode.active {
            // Cuts any tail, including zeros preallocated by klamm versions
            // that wrote the log through its map.
            let capacity = (config.segment_bytes as usize).max(valid_end);
            MappedFile::open_writable(&log_path, valid_end, capacity, WriteMode::Pwrite)?
        } else {
            if report.truncated_bytes > 0 {
                let f = std::fs::OpenOptions::new()
                    .write(true)
                    .open(&log_path)
                    .map_err(StorageError::io("open", &log_path))?;
                f.set_len(valid_end as u64)
                    .map_err(StorageError::io("truncate", &log_path))?;
                f.sync_all().map_err(StorageError::io("fsync", &log_path))?;
            }
            MappedFile::open_log_read_only_prefix(&log_path, None)?
        };

        if mode.active {
            if !report.rebuilt_indexes {
                // Reopen the trusted (sealed) indexes writable and preallocated.
                drop(offset_index);
                drop(time_index);
                offset_index = OffsetIndex::open(
                    &index_path,
                    base_offset,
                    Some(config.index_capacity_bytes(OffsetIndex::ENTRY_BYTES)),
                )?;
                time_index = TimeIndex::open(
                    &time_index_path,
                    base_offset,
                    Some(config.index_capacity_bytes(TimeIndex::ENTRY_BYTES)),
                )?;
            }
        } else if report.rebuilt_indexes {
            time_index.maybe_append(stats.max_timestamp, stats.offset_of_max_timestamp)?;
            offset_index.seal()?;
            time_index.seal()?;
        }

        let files = SegmentFiles {
            log,
            offset_index,
            time_index,
        };
        let files = if mode.active {
            Files::Active(Box::new(files))
        } else {
            Files::Sealed(Self::lazy(dir, base_offset, files))
        };
        let segment = Segment {
            base_offset,
            dir: dir.to_path_buf(),
            files,
            sealed_size_bytes: valid_end,
            index_interval_bytes: interval,
            stats,
            created_ms: now,
            last_modified_ms,
        };
        debug_assert_eq!(segment.size_bytes(), valid_end);
        Ok((segment, report))
    }

    #[inline]
    pub fn base_offset(&self) -> Offset {
        self.base_offset
    }

    /// Offset after the last batch (the base offset if empty).
    #[inline]
    pub fn next_offset(&self) -> Offset {
        self.stats.next_offset
    }

    /// Puts sealed, mapped files behind the cache of mapped inactive
    /// segments (they count against its bound from now).
    fn lazy(dir: &Path, base_offset: Offset, files: SegmentFiles) -> Arc<Lazy<SegmentFiles>> {
        let lens = (files.log.len(), files.offset_index.size_bytes(), files.time_index.size_bytes());
        let dir = dir.to_path_buf();
        Lazy::new(move || open_sealed_files(&dir, base_offset, lens), Some(files))
    }

    /// The mapped files, mapping a sealed segment's again if the cache
    /// unmapped them.
    fn view(&self) -> Result<View<'_>, StorageError> {
        match &self.files {
            Files::Active(f) => Ok(View::Borrowed(f)),
            Files::Sealed(lazy) => lazy.get().map(View::Shared),
        }
    }

    fn active_files(&self) -> Option<&SegmentFiles> {
        match &self.files {
            Files::Active(f) => Some(f),
            Files::Sealed(_) => None,
        }
    }

    /// Whether a sealed segment's files are mapped now (always true for the
    /// active one).
    pub fn is_mapped(&self) -> bool {
        match &self.files {
            Files::Active(_) => true,
            Files::Sealed(lazy) => lazy.is_open(),
        }
    }

    /// Logical size of the log in bytes.
    #[inline]
    pub fn size_bytes(&self) -> usize {
        match &self.files {
            Files::Active(f) => f.log.len(),
            Files::Sealed(_) => self.sealed_size_bytes,
        }
    }

    #[inline]
    pub fn is_empty(&self) -> bool {
        self.size_bytes() == 0
    }

    /// Sealed segments accept no more appends.
    pub fn is_sealed(&self) -> bool {
        !self.active_files().is_some_and(|f| f.log.is_writable())
    }

    /// Bytes the log can still take without rolling.
    pub fn remaining_bytes(&self) -> usize {
        self.active_files().map_or(0, |f| f.log.remaining())
    }

    pub fn max_timestamp(&self) -> TimestampMs {
        self.stats.max_timestamp
    }

    /// Kafka's `largestTimestamp`: the max batch timestamp, or the file's
    /// last modification if no batch has a timestamp.
    pub fn largest_timestamp(&self) -> TimestampMs {
        if self.stats.max_timestamp.0 >= 0 {
            self.stats.max_timestamp
        } else {
            self.last_modified_ms
        }
    }

    /// The log's valid bytes, zero-copy from the map (which they keep
    /// alive).
    pub fn log_bytes(&self) -> Result<Bytes, StorageError> {
        let view = self.view()?;
        Ok(view.log.slice_bytes(0, view.log.len()).unwrap_or_default())
    }

    /// Entries of the offset index and of the time index.
    pub fn index_entries(&self) -> Result<(usize, usize), StorageError> {
        let view = self.view()?;
        Ok((view.offset_index.entries(), view.time_index.entries()))
    }

    /// Appends validated batches whose offsets are already assigned, and
    /// updates the indexes. The caller made sure they fit.
    pub fn append(&mut self, data: &[u8], now: TimestampMs) -> Result<(), StorageError> {
        let Files::Active(files) = &mut self.files else {
            return Err(StorageError::io("append", &Self::log_path(&self.dir, self.base_offset))(
                std::io::Error::new(std::io::ErrorKind::PermissionDenied, "segment is sealed"),
            ));
        };
        // Each batch adds at most one entry to each index. Their blocks are
        // allocated first: once the log is written, nothing may fail.
        let batches = BatchIter::new(data, Validation::Structure).count();
        files.offset_index.reserve(batches)?;
        files.time_index.reserve(batches)?;
        let start = files.log.append(data)?;
        let interval = self.index_interval_bytes;
        let mut iter = BatchIter::new(data, Validation::Structure);
        loop {
            let position = start + iter.position();
            let Some(batch) = iter.next() else { break };
            let batch = batch?;
            self.stats.on_batch(
                Some((&mut files.offset_index, &mut files.time_index)),
                interval,
                position,
                &batch,
            )?;
        }
        self.last_modified_ms = now;
        Ok(())
    }

    /// The position, base offset and last offset of the first batch whose
    /// last offset is `>= target`.
    pub fn translate_offset(&self, target: Offset) -> Result<Option<(usize, Offset, Offset)>, StorageError> {
        let view = self.view()?;
        Ok(translate(&view, target).map(|(p, b)| (p, b.base_offset(), b.last_offset())))
    }

    /// Whole batches from the one containing `offset`, up to `max_bytes`
    /// (the first batch is always returned whole), stopping before any batch
    /// whose base offset is `>= max_offset_exclusive`, faulted in. Does the
    /// disk I/O where it is called: under a lock, prefer
    /// [`Segment::snapshot`] and read the snapshot after releasing it.
    pub fn read(
        &self,
        offset: Offset,
        max_bytes: u32,
        max_offset_exclusive: Option<Offset>,
    ) -> Result<SegmentRead, StorageError> {
        self.snapshot()?.read(offset, max_bytes, max_offset_exclusive)
    }

    /// What a read needs of this segment, taken under the partition lock
    /// without touching a page: handles on the log's and the offset
    /// index's published bytes, valid without the lock and whatever the
    /// cache of mapped segments unmaps meanwhile. Mapping a sealed segment
    /// again (open and mmap, no read) is the only system call.
    pub fn snapshot(&self) -> Result<SegmentSnapshot, StorageError> {
        let view = self.view()?;
        let empty = || {
            StorageError::io("snapshot", &Self::log_path(&self.dir, self.base_offset))(std::io::Error::other(
                "published range not mapped",
            ))
        };
        Ok(SegmentSnapshot {
            base_offset: self.base_offset,
            log: view.log.range(0, view.log.len()).ok_or_else(empty)?,
            offset_index: view.offset_index.range().ok_or_else(empty)?,
        })
    }

    /// The first record with timestamp `>= target` and offset `>=
    /// starting_offset` (Kafka's `findOffsetByTimestamp`). Reads pages
    /// where it is called: under a lock, prefer [`Segment::time_search`].
    pub fn find_offset_by_timestamp(
        &self,
        target: TimestampMs,
        starting_offset: Offset,
    ) -> Result<Option<TimestampAndOffset>, StorageError> {
        self.time_search(TimeQuery::ByTimestamp { target, starting_offset })?.run()
    }

    /// The record with the segment's max timestamp (earliest such), if any
    /// batch has a timestamp. Reads pages where it is called: under a
    /// lock, prefer [`Segment::max_timestamp_search`].
    pub fn max_timestamp_and_offset(&self) -> Result<Option<TimestampAndOffset>, StorageError> {
        self.max_timestamp_search()?.run()
    }

    /// The search for the record with this segment's max timestamp, to run
    /// after the partition lock is released.
    pub fn max_timestamp_search(&self) -> Result<TimeSearch, StorageError> {
        let max = self.stats.max_timestamp;
        if max.0 < 0 {
            return Ok(TimeSearch(SearchState::Done(None)));
        }
        self.time_search(TimeQuery::MaxTimestamp { max, near: self.stats.offset_of_max_timestamp })
    }

    /// Prepares a search of the indexes and the log under the partition
    /// lock: the active segment (whose pages are hot, and whose maps the
    /// lock guards) is searched now; a sealed one is handed out as an `Arc`
    /// on its maps, to be searched by [`TimeSearch::run`] after the lock is
    /// released, so faulting a cold segment in blocks no producer.
    pub fn time_search(&self, query: TimeQuery) -> Result<TimeSearch, StorageError> {
        match self.view()? {
            View::Borrowed(files) => Ok(TimeSearch(SearchState::Done(query.run(files)))),
            View::Shared(files) => Ok(TimeSearch(SearchState::Pending { files, query })),
        }
    }

    /// Kafka's `shouldRoll`: the append would overflow `segment.bytes` (or
    /// this segment's mapped capacity), the segment is older than
    /// `segment.ms`, an index is full, or the offsets no longer fit.
    pub fn should_roll(
        &self,
        config: &LogConfig,
        messages_bytes: usize,
        max_timestamp_in_messages: TimestampMs,
        max_offset_in_messages: Offset,
        now: TimestampMs,
    ) -> bool {
        let size = self.size_bytes();
        let waited_ms = match self.stats.first_batch_timestamp {
            Some(ts) if ts.0 >= 0 => max_timestamp_in_messages.0.saturating_sub(ts.0),
            _ => now.0.saturating_sub(self.created_ms.0),
        };
        let rel = max_offset_in_messages.0.saturating_sub(self.base_offset.0);
        size as u64 + messages_bytes as u64 > config.segment_bytes as u64
            || messages_bytes > self.remaining_bytes()
            || (size > 0 && waited_ms > config.segment_ms)
            || self.active_files().is_none_or(|f| f.offset_index.is_full() || f.time_index.is_full())
            || !(0..=i32::MAX as i64).contains(&rel)
    }

    /// The log's descriptor for a group commit (see
    /// [`MappedFile::data_sync_handle`]); `None` once sealed.
    pub fn data_sync_handle(&self) -> Option<std::sync::Arc<std::fs::File>> {
        self.active_files().and_then(|f| f.log.data_sync_handle())
    }

    /// msyncs the log and both indexes of the active segment (a sealed one
    /// owes its flush to its [`SegmentSync`]).
    pub fn flush(&mut self) -> Result<(), StorageError> {
        let Files::Active(files) = &mut self.files else {
            return Ok(());
        };
        files.log.flush()?;
        files.offset_index.flush()?;
        files.time_index.flush()
    }

    /// Makes the segment immutable: final time index entry, flush, trim all
    /// files to their logical size and fsync them.
    pub fn seal(&mut self) -> Result<(), StorageError> {
        match self.begin_seal()? {
            Some(sync) => sync.run(),
            None => Ok(()),
        }
    }

    /// The part of [`Segment::seal`] that must happen under the partition
    /// lock, without disk I/O: the final time index entry (a write through
    /// its map), then the files become read-only in place and move behind
    /// the cache of mapped inactive segments. The flush, trim and fsync
    /// are returned, to run after the lock is released; until they have,
    /// the segment's data is not durable and the recovery point must stay
    /// at or below its base offset. `None` if already sealed.
    pub fn begin_seal(&mut self) -> Result<Option<SegmentSync>, StorageError> {
        let Files::Active(files) = &mut self.files else {
            return Ok(None);
        };
        files
            .time_index
            .maybe_append(self.stats.max_timestamp, self.stats.offset_of_max_timestamp)?;
        let syncs = vec![
            files.log.seal_in_place(),
            files.offset_index.seal_in_place(),
            files.time_index.seal_in_place(),
        ];
        self.sealed_size_bytes = files.log.len();
        // Swapped for a moment with a slot that maps nothing (and is not in
        // the cache), to move the files out.
        let (dir, base) = (self.dir.clone(), self.base_offset);
        let placeholder = Files::Sealed(Lazy::new(move || open_sealed_files(&dir, base, (0, 0, 0)), None));
        if let Files::Active(files) = std::mem::replace(&mut self.files, placeholder) {
            self.files = Files::Sealed(Self::lazy(&self.dir, self.base_offset, *files));
        }
        Ok(Some(SegmentSync { files: syncs }))
    }

    /// Deletes the segment's files. Outstanding `Bytes` stay readable.
    pub fn delete(self) -> Result<(), StorageError> {
        let dir = self.dir.clone();
        let base = self.base_offset;
        drop(self);
        for suffix in [
            LOG_SUFFIX,
            INDEX_SUFFIX,
            TIME_INDEX_SUFFIX,
            TXN_INDEX_SUFFIX,
        ] {
            remove_if_exists(&offset_file(&dir, base, suffix))?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::records::builder::test_batch;
    use crate::records::{set_base_offset, set_log_append_time};

    fn config() -> LogConfig {
        LogConfig {
            segment_bytes: 64 * 1024,
            segment_index_bytes: 1024,
            index_interval_bytes: 256,
            ..LogConfig::default()
        }
    }

    /// Appends `count` batches of `per` records with timestamps from `ts`.
    fn fill(seg: &mut Segment, count: usize, per: usize, ts: i64) {
        for i in 0..count {
            let mut b = test_batch(per, ts + (i * per) as i64, None);
            set_base_offset(&mut b, seg.next_offset()).unwrap();
            seg.append(&b, TimestampMs(0)).unwrap();
        }
    }

    fn offsets_in(bytes: &Bytes) -> Vec<(i64, i64)> {
        BatchIter::new(bytes, Validation::Crc)
            .map(|b| b.unwrap())
            .map(|b| (b.base_offset().0, b.last_offset().0))
            .collect()
    }

    #[test]
    fn append_read_and_lookup() {
        let dir = tempfile::tempdir().unwrap();
        let mut seg = Segment::create(dir.path(), Offset(100), &config(), TimestampMs(0)).unwrap();
        fill(&mut seg, 50, 4, 1_000);
        assert_eq!(seg.next_offset(), Offset(300));
        assert!(
            seg.index_entries().unwrap().0 > 3,
            "sparse index should have entries"
        );
        // Every offset maps to the batch containing it.
        for off in [100, 101, 103, 104, 150, 299] {
            let (_, base, last) = seg.translate_offset(Offset(off)).unwrap().unwrap();
            assert!(
                base.0 <= off && off <= last.0,
                "offset {off}"
            );
        }
        assert!(seg.translate_offset(Offset(300)).unwrap().is_none());
        let SegmentRead::Data(bytes, _) = seg.read(Offset(151), 1, None).unwrap() else {
            panic!()
        };
        assert_eq!(
            offsets_in(&bytes),
            vec![(148, 151)],
            "first batch returned whole even over max_bytes"
        );
        let SegmentRead::Data(bytes, _) = seg.read(Offset(148), 10_000, Some(Offset(160))).unwrap() else {
            panic!()
        };
        assert_eq!(offsets_in(&bytes), vec![(148, 151), (152, 155), (156, 159)]);
        let SegmentRead::Data(bytes, _) = seg.read(Offset(148), 10_000, Some(Offset(148))).unwrap() else {
            panic!()
        };
        assert!(bytes.is_empty());
        assert!(matches!(
            seg.read(Offset(300), 100, None).unwrap(),
            SegmentRead::Beyond
        ));
        // max_bytes cuts at whole batches.
        let size = RecordBatch::new(&test_batch(4, 0, None))
            .unwrap()
            .size_bytes() as u32;
        let SegmentRead::Data(bytes, _) = seg.read(Offset(100), 3 * size + size / 2, None).unwrap() else {
            panic!()
        };
        assert_eq!(offsets_in(&bytes).len(), 3);
    }

    #[test]
    fn timestamp_lookup_finds_first_record_at_or_after() {
        let dir = tempfile::tempdir().unwrap();
        let mut seg = Segment::create(dir.path(), Offset(0), &config(), TimestampMs(0)).unwrap();
        fill(&mut seg, 40, 5, 10_000); // record i has timestamp 10_000 + i, offset i
        for target in [0i64, 10_000, 10_001, 10_057, 10_199] {
            let found = seg
                .find_offset_by_timestamp(TimestampMs(target), Offset(0))
                .unwrap()
                .unwrap();
            let expect = (target - 10_000).max(0);
            assert_eq!(found.offset, Offset(expect), "target {target}");
            assert_eq!(found.timestamp, TimestampMs(10_000 + expect));
        }
        assert!(seg
            .find_offset_by_timestamp(TimestampMs(10_200), Offset(0))
            .unwrap()
            .is_none());
        let found = seg
            .find_offset_by_timestamp(TimestampMs(10_003), Offset(50))
            .unwrap()
            .unwrap();
        assert_eq!(found.offset, Offset(50));
        let max = seg.max_timestamp_and_offset().unwrap().unwrap();
        assert_eq!(
            (max.timestamp, max.offset),
            (TimestampMs(10_199), Offset(199))
        );
    }

    #[test]
    fn log_append_time_batches_search_as_a_whole() {
        let dir = tempfile::tempdir().unwrap();
        let mut seg = Segment::create(dir.path(), Offset(0), &config(), TimestampMs(0)).unwrap();
        let mut b = test_batch(3, 5, None);
        set_log_append_time(&mut b, TimestampMs(777)).unwrap();
        seg.append(&b, TimestampMs(0)).unwrap();
        let found = seg
            .find_offset_by_timestamp(TimestampMs(700), Offset(1))
            .unwrap()
            .unwrap();
        assert_eq!(
            (found.timestamp, found.offset),
            (TimestampMs(777), Offset(1))
        );
        assert_eq!(seg.max_timestamp_and_offset().unwrap().unwrap().offset, Offset(0));
    }

    #[test]
    fn seal_trims_and_reopen_trusts_indexes() {
        let dir = tempfile::tempdir().unwrap();
        let cfg = config();
        let mut seg = Segment::create(dir.path(), Offset(0), &cfg, TimestampMs(0)).unwrap();
        fill(&mut seg, 30, 3, 500);
        let size = seg.size_bytes();
        let entries = seg.index_entries().unwrap().0;
        assert_eq!(
            std::fs::metadata(Segment::log_path(dir.path(), Offset(0)))
                .unwrap()
                .len() as usize,
            size,
            "the active log grows with its data"
        );
        seg.seal().unwrap();
        assert!(seg.is_sealed());
        assert_eq!(
            std::fs::metadata(Segment::log_path(dir.path(), Offset(0)))
                .unwrap()
                .len() as usize,
            size
        );
        assert_eq!(
            std::fs::metadata(dir.path().join("00000000000000000000.index"))
                .unwrap()
                .len() as usize,
            entries * 8
        );
        drop(seg);
        let mode = OpenMode {
            active: false,
            recover: false,
        };
        let (seg, report) =
            Segment::open(dir.path(), Offset(0), &cfg, mode, TimestampMs(0)).unwrap();
        assert_eq!(report, OpenReport::default());
        assert_eq!(seg.next_offset(), Offset(90));
        assert_eq!(seg.max_timestamp(), TimestampMs(589));
        assert_eq!(seg.index_entries().unwrap().0, entries);
        // Reopened active: writable again, appends continue.
        drop(seg);
        let mode = OpenMode {
            active: true,
            recover: false,
        };
        let (mut seg, _) =
            Segment::open(dir.path(), Offset(0), &cfg, mode, TimestampMs(0)).unwrap();
        fill(&mut seg, 2, 3, 600);
        assert_eq!(seg.next_offset(), Offset(96));
        let (_, _, last) = seg.translate_offset(Offset(95)).unwrap().unwrap();
        assert_eq!(last, Offset(95));
    }

    #[test]
    fn recover_rebuilds_identical_indexes() {
        let dir = tempfile::tempdir().unwrap();
        let cfg = config();
        let mut seg = Segment::create(dir.path(), Offset(0), &cfg, TimestampMs(0)).unwrap();
        fill(&mut seg, 30, 3, 500);
        seg.seal().unwrap();
        let idx = std::fs::read(dir.path().join("00000000000000000000.index")).unwrap();
        let tidx = std::fs::read(dir.path().join("00000000000000000000.timeindex")).unwrap();
        drop(seg);
        std::fs::remove_file(dir.path().join("00000000000000000000.timeindex")).unwrap();
        let mode = OpenMode {
            active: false,
            recover: false,
        };
        let (_seg, report) =
            Segment::open(dir.path(), Offset(0), &cfg, mode, TimestampMs(0)).unwrap();
        assert!(report.rebuilt_indexes);
        assert_eq!(
            std::fs::read(dir.path().join("00000000000000000000.index")).unwrap(),
            idx
        );
        assert_eq!(
            std::fs::read(dir.path().join("00000000000000000000.timeindex")).unwrap(),
            tidx
        );
    }

    #[test]
    fn should_roll_rules() {
        let dir = tempfile::tempdir().unwrap();
        let cfg = LogConfig {
            segment_ms: 1_000,
            ..config()
        };
        let mut seg = Segment::create(dir.path(), Offset(0), &cfg, TimestampMs(0)).unwrap();
        assert!(
            !seg.should_roll(&cfg, 100, TimestampMs(5_000), Offset(0), TimestampMs(5_000)),
            "empty segment never rolls by time"
        );
        assert!(seg.should_roll(
            &cfg,
            64 * 1024 + 1,
            TimestampMs(0),
            Offset(0),
            TimestampMs(0)
        ));
        fill(&mut seg, 1, 1, 100);
        assert!(!seg.should_roll(&cfg, 100, TimestampMs(1_100), Offset(1), TimestampMs(0)));
        assert!(seg.should_roll(&cfg, 100, TimestampMs(1_101), Offset(1), TimestampMs(0)));
        assert!(seg.should_roll(
            &cfg,
            100,
            TimestampMs(200),
            Offset(i32::MAX as i64 + 1),
            TimestampMs(0)
        ));
    }
}
