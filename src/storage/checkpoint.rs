//! Kafka-format offset checkpoint files of a log directory
//! (`recovery-point-offset-checkpoint`, `log-start-offset-checkpoint`):
//! line 1 the version `0`, line 2 the entry count, then one
//! `topic partition offset` line per partition. Also the reader of Kafka's
//! per-partition `leader-epoch-checkpoint` (same framing, `epoch
//! start_offset` lines), which klamm reads but never writes.

use std::collections::HashMap;
use std::fmt::Write as _;
use std::path::Path;

use super::error::StorageError;
use super::files::{read_bounded, write_atomically};
use crate::types::{Offset, TopicPartition};

pub const RECOVERY_POINT_CHECKPOINT_FILE: &str = "recovery-point-offset-checkpoint";
pub const LOG_START_OFFSET_CHECKPOINT_FILE: &str = "log-start-offset-checkpoint";

/// Kafka's leader-epoch cache of one partition directory.
pub const LEADER_EPOCH_CHECKPOINT_FILE: &str = "leader-epoch-checkpoint";
/// Entries accepted in a leader-epoch checkpoint (one per leader change).
pub const MAX_LEADER_EPOCH_ENTRIES: usize = 100_000;

const VERSION: i32 = 0;
/// Entries accepted when reading (a bound, not a Kafka limit).
pub const MAX_CHECKPOINT_ENTRIES: usize = 1_000_000;
const MAX_CHECKPOINT_BYTES: u64 = 300 * MAX_CHECKPOINT_ENTRIES as u64;

fn corrupt(path: &Path, reason: impl Into<String>) -> StorageError {
    StorageError::CorruptFile {
        path: path.to_path_buf(),
        reason: reason.into(),
    }
}

/// Reads a checkpoint file. A missing file is an empty map (as is an empty
/// file, like Kafka); anything malformed is [`StorageError::CorruptFile`].
pub fn read_checkpoint(path: &Path) -> Result<HashMap<TopicPartition, Offset>, StorageError> {
    if !path.exists() {
        return Ok(HashMap::new());
    }
    let bytes = read_bounded(path, MAX_CHECKPOINT_BYTES)?;
    let text = std::str::from_utf8(&bytes).map_err(|_| corrupt(path, "not UTF-8"))?;
    parse_checkpoint(text).map_err(|reason| corrupt(path, reason))
}

fn parse_checkpoint(text: &str) -> Result<HashMap<TopicPartition, Offset>, String> {
    let mut lines = text.lines();
    let Some(version) = lines.next() else {
        return Ok(HashMap::new());
    };
    let version: i32 = version
        .trim()
        .parse()
        .map_err(|_| format!("malformed version line {version:?}"))?;
    if version != VERSION {
        return Err(format!(
            "unrecognised version {version}, expected {VERSION}"
        ));
    }
    let Some(count) = lines.next() else {
        return Ok(HashMap::new());
    };
    let expected: usize = count
        .trim()
        .parse()
        .map_err(|_| format!("malformed count line {count:?}"))?;
    if expected > MAX_CHECKPOINT_ENTRIES {
        return Err(format!(
            "entry count {expected} exceeds {MAX_CHECKPOINT_ENTRIES}"
        ));
    }
    // Each entry line takes at least 5 bytes ("t 0 0"): a count the text
    // cannot hold is rejected before the map is sized by it.
    if expected > text.len() / 5 {
        return Err(format!(
            "entry count {expected} cannot fit in {} bytes",
            text.len()
        ));
    }
    let mut out = HashMap::with_capacity(expected);
    let mut found = 0usize;
    for line in lines {
        let mut parts = line.split_whitespace();
        let (Some(topic), Some(partition), Some(offset), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(format!("malformed line {line:?}"));
        };
        let partition: i32 = partition
            .parse()
            .map_err(|_| format!("malformed line {line:?}"))?;
        let offset: i64 = offset
            .parse()
            .map_err(|_| format!("malformed line {line:?}"))?;
        found += 1;
        if found > expected {
            return Err(format!("more than the {expected} entries announced"));
        }
        out.insert(TopicPartition::new(topic, partition), Offset(offset));
    }
    if found != expected {
        return Err(format!("expected {expected} entries but found {found}"));
    }
    Ok(out)
}

/// Writes a checkpoint file atomically (temp, fsync, rename, fsync dir).
/// Entries are sorted for stable output.
pub fn write_checkpoint(
    path: &Path,
    entries: &HashMap<TopicPartition, Offset>,
) -> Result<(), StorageError> {
    let mut sorted: Vec<(&TopicPartition, &Offset)> = entries.iter().collect();
    sorted.sort();
    let mut text = String::with_capacity(16 + sorted.len() * 40);
    let _ = writeln!(text, "{VERSION}");
    let _ = writeln!(text, "{}", sorted.len());
    for (tp, offset) in sorted {
        let _ = writeln!(text, "{} {} {}", tp.topic, tp.partition, offset.0);
    }
    write_atomically(path, text.as_bytes())
}

/// One entry of Kafka's leader-epoch cache: `epoch` began at `start_offset`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct EpochEntry {
    pub epoch: i32,
    pub start_offset: Offset,
}

/// Reads Kafka's `leader-epoch-checkpoint` (missing: empty). Entries must
/// have non-negative, increasing epochs and non-decreasing start offsets,
/// as Kafka's cache keeps them; anything else is `CorruptFile`.
pub fn read_leader_epoch_checkpoint(path: &Path) -> Result<Vec<EpochEntry>, StorageError> {
    if !path.exists() {
        return Ok(Vec::new());
    }
    let bytes = read_bounded(path, 40 * MAX_LEADER_EPOCH_ENTRIES as u64)?;
    let text = std::str::from_utf8(&bytes).map_err(|_| corrupt(path, "not UTF-8"))?;
    parse_leader_epochs(text).map_err(|reason| corrupt(path, reason))
}

fn parse_leader_epochs(text: &str) -> Result<Vec<EpochEntry>, String> {
    let mut lines = text.lines();
    let Some(version) = lines.next() else {
        return Ok(Vec::new());
    };
    if version.trim().parse::<i32>().ok() != Some(VERSION) {
        return Err(format!("unrecognised version line {version:?}"));
    }
    let Some(count) = lines.next() else {
        return Ok(Vec::new());
    };
    let expected: usize = count
        .trim()
        .parse()
        .map_err(|_| format!("malformed count line {count:?}"))?;
    // Each entry line takes at least 3 bytes ("0 0").
    if expected > MAX_LEADER_EPOCH_ENTRIES || expected > text.len() / 3 {
        return Err(format!("entry count {expected} is out of range"));
    }
    let mut out: Vec<EpochEntry> = Vec::with_capacity(expected);
    for line in lines {
        let mut parts = line.split_whitespace();
        let (Some(epoch), Some(offset), None) = (parts.next(), parts.next(), parts.next()) else {
            return Err(format!("malformed line {line:?}"));
        };
        let (Ok(epoch), Ok(offset)) = (epoch.parse::<i32>(), offset.parse::<i64>()) else {
            return Err(format!("malformed line {line:?}"));
        };
        let entry = EpochEntry { epoch, start_offset: Offset(offset) };
        let ordered = out
            .last()
            .map_or(true, |last| last.epoch < epoch && last.start_offset <= entry.start_offset);
        if epoch < 0 || offset < 0 || !ordered {
            return Err(format!("entry {line:?} is out of order or negative"));
        }
        if out.len() == expected {
            return Err(format!("more than the {expected} entries announced"));
        }
        out.push(entry);
    }
    if out.len() != expected {
        return Err(format!("expected {expected} entries but found {}", out.len()));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn count_is_checked_against_the_text_before_allocating() {
        // A 10-byte file announcing a million entries must not size a map
        // for them (the state_files fuzz target's allocation limit).
        let e = parse_checkpoint("0\n1000000\n").unwrap_err();
        assert!(e.contains("cannot fit"), "{e}");
        // The shortest possible entries still fit.
        let m = parse_checkpoint("0\n2\na 0 0\nb 1 2").unwrap();
        assert_eq!(m.len(), 2);
    }

    #[test]
    fn round_trip() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(RECOVERY_POINT_CHECKPOINT_FILE);
        assert!(read_checkpoint(&path).unwrap().is_empty());
        let mut m = HashMap::new();
        m.insert(TopicPartition::new("orders", 0), Offset(42));
        m.insert(TopicPartition::new("my.topic-with-dash", 12), Offset(7));
        m.insert(TopicPartition::new("__cluster_metadata", 0), Offset(0));
        write_checkpoint(&path, &m).unwrap();
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(text.starts_with("0\n3\n"));
        assert!(text.contains("orders 0 42\n"));
        assert_eq!(read_checkpoint(&path).unwrap(), m);
    }

    #[test]
    fn kafka_written_file_parses() {
        let m = parse_checkpoint("0\n2\nfoo 0 10\nbar-baz 3 99\n").unwrap();
        assert_eq!(m[&TopicPartition::new("bar-baz", 3)], Offset(99));
        assert!(parse_checkpoint("").unwrap().is_empty());
        assert!(parse_checkpoint("0\n").unwrap().is_empty());
    }

    #[test]
    fn kafka_leader_epoch_checkpoints_parse() {
        let e = |epoch, offset| EpochEntry { epoch, start_offset: Offset(offset) };
        assert_eq!(parse_leader_epochs("0\n3\n0 0\n2 150\n5 150\n").unwrap(), vec![e(0, 0), e(2, 150), e(5, 150)]);
        assert!(parse_leader_epochs("").unwrap().is_empty());
        assert!(parse_leader_epochs("0\n0\n").unwrap().is_empty());
        for bad in [
            "1\n0\n",
            "0\n1\n",
            "0\n1\n0 0\n1 1\n",
            "0\n2\n1 0\n1 5\n",
            "0\n2\n1 5\n2 4\n",
            "0\n1\n-1 0\n",
            "0\n1\n0 -3\n",
            "0\n1\n0 0 0\n",
            "0\n1\nx 0\n",
            "0\n4000000000\n",
            "0\n9\n0 0\n",
        ] {
            assert!(parse_leader_epochs(bad).is_err(), "{bad:?}");
        }
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(LEADER_EPOCH_CHECKPOINT_FILE);
        assert!(read_leader_epoch_checkpoint(&path).unwrap().is_empty());
        std::fs::write(&path, b"0\n1\n3 7\n").unwrap();
        assert_eq!(read_leader_epoch_checkpoint(&path).unwrap(), vec![e(3, 7)]);
    }

    #[test]
    fn corrupt_files_are_errors() {
        for bad in [
            "1\n0\n",
            "x\n0\n",
            "0\nfoo\n",
            "0\n2\nfoo 0 1\n",
            "0\n1\nfoo 0 1\nbar 0 2\n",
            "0\n1\nfoo 0\n",
            "0\n1\nfoo zero 1\n",
            "0\n1\nfoo 0 1 extra\n",
            "0\n99999999999\n",
        ] {
            assert!(parse_checkpoint(bad).is_err(), "{bad:?}");
        }
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("c");
        std::fs::write(&path, [0xffu8, 0xfe, 0x00]).unwrap();
        let e = read_checkpoint(&path).unwrap_err();
        assert!(matches!(e, StorageError::CorruptFile { .. }));
    }
}
