//! Crash-safe replacement of a group of segments by its cleaned version,
//! with Kafka's file protocol (`LocalLog.replaceSegments`, `LogLoader`):
//!
//! 1. the cleaned segment is built in `<dir>/.klamm-cleaner/` (log and
//!    indexes, sealed and fsynced) and renamed to `<base>.log.cleaned`,
//!    `<base>.index.cleaned`, `<base>.timeindex.cleaned`;
//! 2. under the partition lock, each is renamed to `….swap` (the directory
//!    fsynced): from here on the swap is decided and a restart completes it;
//! 3. the old segments' files are deleted;
//! 4. the `.swap` files are renamed to their final names.
//!
//! At load ([`recover`]), exactly as Kafka's `LogLoader`: `.cleaned` files
//! are deleted (the old segments are untouched: roll back), as is any
//! `.swap` whose base offset is above the lowest `.cleaned` one (an
//! unfinished split); index `.swap` files are deleted (rebuilt from the
//! log); each log `.swap` then replaces the old segments whose base offset
//! lies in its offset range, and is renamed into place (roll forward).
//! Offsets never move, so every step leaves, for each offset range, either
//! the old segment or the new one, never both.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use super::super::config::LogConfig;
use super::super::error::StorageError;
use super::super::files::{
    offset_file, parse_offset_file, remove_if_exists, sync_dir, INDEX_SUFFIX, LOG_SUFFIX,
    TIME_INDEX_SUFFIX, TXN_INDEX_SUFFIX,
};
use super::super::mmap::MappedFile;
use super::super::segment::{OpenMode, Segment};
use crate::records::{BatchIter, Validation};
use crate::types::{Offset, TimestampMs};

pub(crate) const CLEANED_SUFFIX: &str = ".cleaned";
pub(crate) const SWAP_SUFFIX: &str = ".swap";
/// Where a cleaned segment is built before it becomes `.cleaned`.
pub(crate) const SCRATCH_DIR: &str = ".klamm-cleaner";

/// The segment files a swap moves (the transaction index is klamm's in
/// memory; a Kafka `.txnindex` of an old segment is deleted with it).
const SWAPPED_SUFFIXES: [&str; 3] = [LOG_SUFFIX, INDEX_SUFFIX, TIME_INDEX_SUFFIX];

fn with_suffix(dir: &Path, base: Offset, file_suffix: &str, stage: &str) -> PathBuf {
    let mut p = offset_file(dir, base, file_suffix).into_os_string();
    p.push(stage);
    PathBuf::from(p)
}

fn rename(from: &Path, to: &Path) -> Result<(), StorageError> {
    std::fs::rename(from, to).map_err(StorageError::io("rename", from))
}

/// Builds a cleaned segment at `base` from what `fill` appends, and leaves
/// it as `<base>.*.cleaned` files in `dir`. `capacity_bytes` bounds its log,
/// `max_batches` the batches it gets (each adds at most one index entry).
pub(crate) fn write_cleaned(
    dir: &Path,
    base: Offset,
    config: &LogConfig,
    capacity_bytes: u64,
    max_batches: u64,
    now: TimestampMs,
    fill: impl FnOnce(&mut Segment) -> Result<(), StorageError>,
) -> Result<(), StorageError> {
    let scratch = dir.join(SCRATCH_DIR);
    let _ = std::fs::remove_dir_all(&scratch);
    std::fs::create_dir_all(&scratch).map_err(StorageError::io("create directory", &scratch))?;
    let config = LogConfig {
        segment_bytes: capacity_bytes.clamp(u64::from(config.segment_bytes), i32::MAX as u64) as u32,
        // A group may hold more index entries than one segment's index
        // takes; the sealed files are trimmed to what is used.
        segment_index_bytes: max_batches
            .saturating_add(1)
            .saturating_mul(12)
            .clamp(u64::from(config.segment_index_bytes), i32::MAX as u64) as u32,
        ..config.clone()
    };
    let mut segment = Segment::create(&scratch, base, &config, now)?;
    fill(&mut segment)?;
    segment.seal()?;
    drop(segment);
    for suffix in SWAPPED_SUFFIXES {
        let from = offset_file(&scratch, base, suffix);
        let f = std::fs::File::open(&from).map_err(StorageError::io("open", &from))?;
        f.sync_all().map_err(StorageError::io("fsync", &from))?;
        rename(&from, &with_suffix(dir, base, suffix, CLEANED_SUFFIX))?;
    }
    sync_dir(dir)?;
    let _ = std::fs::remove_dir_all(&scratch);
    Ok(())
}

/// Deletes the `.cleaned` files of `base` (an abandoned cleaning).
pub(crate) fn discard_cleaned(dir: &Path, base: Offset) -> Result<(), StorageError> {
    for suffix in SWAPPED_SUFFIXES {
        remove_if_exists(&with_suffix(dir, base, suffix, CLEANED_SUFFIX))?;
    }
    Ok(())
}

/// Step 2: `.cleaned` → `.swap`, log first, then the directory fsync.
pub(crate) fn cleaned_to_swap(dir: &Path, base: Offset) -> Result<(), StorageError> {
    for suffix in SWAPPED_SUFFIXES {
        rename(
            &with_suffix(dir, base, suffix, CLEANED_SUFFIX),
            &with_suffix(dir, base, suffix, SWAP_SUFFIX),
        )?;
    }
    sync_dir(dir)
}

/// Step 4: `.swap` → final names (the old files of `base` are gone).
pub(crate) fn swap_to_final(dir: &Path, base: Offset) -> Result<(), StorageError> {
    for suffix in SWAPPED_SUFFIXES {
        let from = with_suffix(dir, base, suffix, SWAP_SUFFIX);
        if from.exists() {
            rename(&from, &offset_file(dir, base, suffix))?;
        }
    }
    sync_dir(dir)
}

fn remove_segment_files(dir: &Path, base: Offset) -> Result<(), StorageError> {
    for suffix in [LOG_SUFFIX, INDEX_SUFFIX, TIME_INDEX_SUFFIX, TXN_INDEX_SUFFIX] {
        remove_if_exists(&offset_file(dir, base, suffix))?;
    }
    Ok(())
}

/// Steps 2-4 on an open log: replaces the segments at `old_bases` (all
/// present, none active, the first at `new_base`) by the cleaned segment
/// waiting as `.cleaned` files. Readers holding data of the old segments
/// keep it (their maps outlive the files).
pub(crate) fn install(
    dir: &Path,
    segments: &mut BTreeMap<i64, Segment>,
    config: &LogConfig,
    old_bases: &[Offset],
    new_base: Offset,
    now: TimestampMs,
) -> Result<(), StorageError> {
    cleaned_to_swap(dir, new_base)?;
    for base in old_bases {
        if let Some(old) = segments.remove(&base.0) {
            old.delete()?;
        }
    }
    swap_to_final(dir, new_base)?;
    let mode = OpenMode {
        active: false,
        recover: false,
    };
    // Opened as compacted whatever the policy is now: it has offset gaps.
    let config = LogConfig { compact: true, ..config.clone() };
    let (segment, _) = Segment::open(dir, new_base, &config, mode, now)?;
    segments.insert(new_base.0, segment);
    Ok(())
}

/// `<20 digits><file suffix><stage>` → (base, file suffix).
fn parse_staged(name: &str, stage: &str) -> Option<(Offset, &'static str)> {
    let rest = name.strip_suffix(stage)?;
    [LOG_SUFFIX, INDEX_SUFFIX, TIME_INDEX_SUFFIX, TXN_INDEX_SUFFIX]
        .into_iter()
        .find_map(|s| parse_offset_file(rest, s).map(|o| (o, s)))
}

/// The offset after the last valid batch of a log file (its base if none).
fn next_offset_of(path: &Path, base: Offset) -> Result<Offset, StorageError> {
    let file = MappedFile::open_read_only(path)?;
    let mut next = base;
    for batch in BatchIter::new(file.as_slice(), Validation::Crc) {
        let Ok(batch) = batch else { break };
        if batch.base_offset() < next {
            break;
        }
        next = batch.next_offset();
    }
    Ok(next)
}

/// Completes or rolls back the swaps a crash interrupted (see the module
/// doc), before the segments are loaded. Returns the files it removed or
/// renamed.
pub(crate) fn recover(dir: &Path) -> Result<usize, StorageError> {
    let mut changed = 0;
    let scratch = dir.join(SCRATCH_DIR);
    if scratch.exists() {
        std::fs::remove_dir_all(&scratch).map_err(StorageError::io("remove directory", &scratch))?;
        changed += 1;
    }
    let mut cleaned = Vec::new();
    let mut swaps = Vec::new();
    let mut logs = Vec::new();
    for entry in std::fs::read_dir(dir).map_err(StorageError::io("list directory", dir))? {
        let entry = entry.map_err(StorageError::io("list directory", dir))?;
        let Ok(name) = entry.file_name().into_string() else { continue };
        if let Some((base, _)) = parse_staged(&name, CLEANED_SUFFIX) {
            cleaned.push((base, entry.path()));
        } else if let Some((base, suffix)) = parse_staged(&name, SWAP_SUFFIX) {
            swaps.push((base, suffix, entry.path()));
        } else if let Some(base) = parse_offset_file(&name, LOG_SUFFIX) {
            logs.push(base);
        }
    }
    let min_cleaned = cleaned.iter().map(|(b, _)| *b).min();
    for (_, path) in &cleaned {
        tracing::info!(path = %path.display(), "removing an unfinished cleaned segment");
        remove_if_exists(path)?;
        changed += 1;
    }
    let mut log_swaps = Vec::new();
    for (base, suffix, path) in swaps {
        if min_cleaned.is_some_and(|m| base > m) || suffix != LOG_SUFFIX {
            remove_if_exists(&path)?;
            changed += 1;
        } else {
            log_swaps.push((base, path));
        }
    }
    log_swaps.sort();
    logs.sort();
    for (base, path) in log_swaps {
        let end = next_offset_of(&path, base)?.max(Offset(base.0 + 1));
        for old in logs.iter().filter(|o| **o >= base && **o < end) {
            tracing::info!(dir = %dir.display(), base_offset = old.0, "completing a segment swap: deleting a replaced segment");
            remove_segment_files(dir, *old)?;
        }
        remove_segment_files(dir, base)?;
        sync_dir(dir)?;
        rename(&path, &offset_file(dir, base, LOG_SUFFIX))?;
        tracing::info!(dir = %dir.display(), base_offset = base.0, "completed a segment swap left by a crash");
        changed += 1;
    }
    if changed > 0 {
        sync_dir(dir)?;
    }
    Ok(changed)
}
