//! Opening a partition directory: completion or roll-back of segment swaps
//! a crash interrupted (`.cleaned`/`.swap`, as Kafka's LogLoader: see
//! `cleaner::swap`), removal of stray files left by interrupted
//! operations, segment loading, crash recovery (CRC scan and
//! truncation at the first bad byte, rebuilding indexes) and the rebuild of
//! producer state from the newest usable snapshot plus a header scan.
//!
//! Recovery never panics on any byte pattern: every segment byte is read
//! through the bounds-checked batch iterator, and index and snapshot files
//! are validated before being trusted.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use tracing::{info, warn};

use super::config::LogConfig;
use super::error::StorageError;
use super::files::{
    parse_offset_file, remove_if_exists, sync_dir, INDEX_SUFFIX, LOG_SUFFIX, MAX_BASE_OFFSET,
    STRAY_SUFFIXES, SWAP_SUFFIX, TIME_INDEX_SUFFIX, TXN_INDEX_SUFFIX,
};
use super::producer_state::{list_snapshots, prune_snapshots, ProducerBatch, ProducerStateManager};
use super::segment::{OpenMode, Segment};
use crate::records::{BatchIter, Validation};
use crate::types::{Offset, TimestampMs};

/// How the previous run of the broker ended, and what was checkpointed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct OpenOptions {
    /// The log directory had the clean-shutdown marker.
    pub clean_shutdown: bool,
    /// Offset below which data was known flushed (recovery-point checkpoint).
    pub recovery_point: Offset,
    /// Checkpointed log start offset (0 if none).
    pub log_start_offset: Offset,
}

impl Default for OpenOptions {
    fn default() -> Self {
        OpenOptions {
            clean_shutdown: false,
            recovery_point: Offset(0),
            log_start_offset: Offset(0),
        }
    }
}

/// What loading found and did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct LoadReport {
    /// Segments scanned batch by batch with CRC checks.
    pub recovered_segments: usize,
    /// Bytes cut from segment ends (torn writes, preallocated tails).
    pub truncated_bytes: usize,
    /// Segments deleted because they followed corrupt data.
    pub deleted_segments: usize,
    /// Stray or orphaned files removed.
    pub removed_files: usize,
    /// Offset the producer state was rebuilt from (snapshot offset or the
    /// first segment's base).
    pub producer_state_from: Offset,
}

pub(crate) struct Loaded {
    pub segments: BTreeMap<i64, Segment>,
    pub producers: ProducerStateManager,
    pub log_start_offset: Offset,
    pub report: LoadReport,
}

/// Number of producer snapshots kept per partition.
pub(crate) const SNAPSHOTS_KEPT: usize = 2;

fn is_stray(name: &str) -> bool {
    STRAY_SUFFIXES.iter().any(|s| name.ends_with(s))
}

/// Lists the directory: returns segment base offsets (from `.log` files) and
/// removes stray files and index files without a log.
fn scan_directory(dir: &Path, report: &mut LoadReport) -> Result<Vec<Offset>, StorageError> {
    let mut logs = BTreeSet::new();
    let mut indexes = Vec::new();
    for entry in std::fs::read_dir(dir).map_err(StorageError::io("list directory", dir))? {
        let entry = entry.map_err(StorageError::io("list directory", dir))?;
        let Ok(name) = entry.file_name().into_string() else {
            continue;
        };
        let path = entry.path();
        if !entry.file_type().map(|t| t.is_file()).unwrap_or(false) {
            continue;
        }
        if is_stray(&name) {
            info!(path = %path.display(), "removing stray file");
            remove_if_exists(&path)?;
            report.removed_files += 1;
        } else if name.ends_with(SWAP_SUFFIX) {
            // `cleaner::swap::recover` ran first; a swap it could not
            // parse is left alone.
            warn!(path = %path.display(), "keeping an unrecognised .swap file");
        } else if let Some(o) = parse_offset_file(&name, LOG_SUFFIX) {
            logs.insert(o);
        } else if let Some(o) = [INDEX_SUFFIX, TIME_INDEX_SUFFIX, TXN_INDEX_SUFFIX]
            .iter()
            .find_map(|s| parse_offset_file(&name, s))
        {
            indexes.push((o, path));
        }
    }
    for (o, path) in indexes {
        if !logs.contains(&o) {
            info!(path = %path.display(), "removing orphaned index file");
            remove_if_exists(&path)?;
            report.removed_files += 1;
        }
    }
    Ok(logs.into_iter().collect())
}

/// Loads (and if needed recovers) every segment of `dir`.
pub(crate) fn load(
    dir: &Path,
    config: &LogConfig,
    opts: &OpenOptions,
    now: TimestampMs,
) -> Result<Loaded, StorageError> {
    std::fs::create_dir_all(dir).map_err(StorageError::io("create directory", dir))?;
    let mut report = LoadReport::default();
    report.removed_files += super::cleaner::swap::recover(dir)?;
    let mut bases = scan_directory(dir, &mut report)?;
    // Kafka recovers from the segment containing the recovery point.
    let recover_from = if opts.clean_shutdown {
        bases.len()
    } else {
        bases
            .iter()
            .rposition(|b| *b <= opts.recovery_point)
            .unwrap_or(0)
    };

    let mut segments: BTreeMap<i64, Segment> = BTreeMap::new();
    let mut i = 0;
    while i < bases.len() {
        let base = bases[i];
        let is_last = i + 1 == bases.len();
        let mode = OpenMode {
            active: is_last,
            recover: i >= recover_from,
        };
        if mode.recover {
            report.recovered_segments += 1;
        }
        let (mut segment, seg_report) = Segment::open(dir, base, config, mode, now)?;
        report.truncated_bytes += seg_report.truncated_bytes;
        if seg_report.truncated_bytes > 0 {
            warn!(
                dir = %dir.display(), base_offset = base.0, bytes = seg_report.truncated_bytes,
                garbage = seg_report.truncated_garbage, "truncated invalid bytes at the end of a segment"
            );
        }
        // Data after a corrupt (not merely zero-padded) tail, after a
        // segment that overlaps the next one, or after a truncated segment
        // that no longer ends where the next one starts, cannot be trusted:
        // drop the rest. (A compacted segment may end before the next
        // begins: the cleaner drops records but never moves offsets.)
        let discontinuous = bases.get(i + 1).is_some_and(|next| {
            *next < segment.next_offset()
                || (seg_report.truncated_bytes > 0 && *next != segment.next_offset())
        });
        if !is_last && (seg_report.truncated_garbage || discontinuous) {
            for later in bases.drain(i + 1..) {
                warn!(dir = %dir.display(), base_offset = later.0, "deleting segment after corrupt data");
                let mode = OpenMode {
                    active: false,
                    recover: false,
                };
                match Segment::open(dir, later, config, mode, now) {
                    Ok((s, _)) => s.delete()?,
                    Err(_) => remove_segment_files(dir, later)?,
                }
                report.deleted_segments += 1;
            }
            drop(segment);
            let mode = OpenMode {
                active: true,
                recover: false,
            };
            segment = Segment::open(dir, base, config, mode, now)?.0;
        }
        segments.insert(base.0, segment);
        i += 1;
    }

    let first_base = segments.values().next().map(|s| s.base_offset());
    let checkpointed_start = if (0..=MAX_BASE_OFFSET).contains(&opts.log_start_offset.0) {
        opts.log_start_offset
    } else {
        warn!(dir = %dir.display(), log_start = opts.log_start_offset.0, "ignoring out-of-range log start offset");
        Offset(0)
    };
    let log_end = segments.values().next_back().map(|s| s.next_offset());
    let mut log_start = match first_base {
        Some(b) => checkpointed_start.max(b),
        None => checkpointed_start,
    };
    if log_end.map_or(true, |end| end < log_start) {
        // Nothing usable, or the log start is ahead of the data (Kafka
        // deletes everything and starts an empty log at the log start).
        if log_end.is_some() {
            warn!(dir = %dir.display(), log_start = log_start.0, "log end is below the log start offset; emptying the log");
        }
        for (_, s) in std::mem::take(&mut segments) {
            s.delete()?;
            report.deleted_segments += 1;
        }
        segments.insert(log_start.0, Segment::create(dir, log_start, config, now)?);
    }
    log_start = log_start.max(
        segments
            .values()
            .next()
            .map(|s| s.base_offset())
            .unwrap_or(log_start),
    );

    let producers = rebuild_producer_state(dir, &segments, &mut report)?;
    sync_dir(dir)?;
    Ok(Loaded {
        segments,
        producers,
        log_start_offset: log_start,
        report,
    })
}

fn remove_segment_files(dir: &Path, base: Offset) -> Result<(), StorageError> {
    for suffix in [
        LOG_SUFFIX,
        INDEX_SUFFIX,
        TIME_INDEX_SUFFIX,
        TXN_INDEX_SUFFIX,
    ] {
        remove_if_exists(&super::files::offset_file(dir, base, suffix))?;
    }
    Ok(())
}

/// Newest valid snapshot at or below the log end, then a header-only scan
/// of every batch from its offset on.
fn rebuild_producer_state(
    dir: &Path,
    segments: &BTreeMap<i64, Segment>,
    report: &mut LoadReport,
) -> Result<ProducerStateManager, StorageError> {
    let log_end = segments
        .values()
        .next_back()
        .map(|s| s.next_offset())
        .unwrap_or(Offset(0));
    prune_snapshots(dir, log_end, usize::MAX)?;
    let mut state = ProducerStateManager::new();
    let mut from = Offset(0);
    for (offset, path) in list_snapshots(dir)?.into_iter().rev() {
        match ProducerStateManager::read_snapshot(&path) {
            Ok((o, s)) if o == offset => {
                state = s;
                from = o;
                break;
            }
            Ok(_) | Err(_) => {
                warn!(path = %path.display(), "ignoring unreadable producer snapshot");
                remove_if_exists(&path)?;
            }
        }
    }
    report.producer_state_from = from;
    for segment in segments.values() {
        if segment.next_offset() <= from {
            continue;
        }
        let data = segment.log_bytes()?;
        for batch in BatchIter::new(&data, Validation::Structure) {
            let Ok(batch) = batch else { break };
            if batch.base_offset() < from {
                continue;
            }
            if let Some(pb) = ProducerBatch::from_batch(&batch) {
                state.replay(&pb);
            }
        }
    }
    state.set_map_end_offset(log_end);
    prune_snapshots(dir, log_end, SNAPSHOTS_KEPT)?;
    Ok(state)
}
