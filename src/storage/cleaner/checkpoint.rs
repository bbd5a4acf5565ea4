//! `<log.dir>/cleaner-offset-checkpoint`: per partition, the offset up to
//! which the log is clean (Kafka's format, as the other offset checkpoints:
//! version 0, the entry count, then `topic partition offset` lines),
//! written atomically (temp file, fsync, rename, directory fsync).

use std::collections::HashMap;
use std::path::Path;

use super::super::checkpoint::{read_checkpoint, write_checkpoint};
use super::super::error::StorageError;
use crate::types::{Offset, TopicPartition};

/// Kafka's file name.
pub const CLEANER_CHECKPOINT_FILE: &str = "cleaner-offset-checkpoint";

/// The checkpoint, empty if the file does not exist.
pub(crate) fn read(path: &Path) -> Result<HashMap<TopicPartition, Offset>, StorageError> {
    if !path.exists() {
        return Ok(HashMap::new());
    }
    read_checkpoint(path)
}

pub(crate) fn write(path: &Path, entries: &HashMap<TopicPartition, Offset>) -> Result<(), StorageError> {
    write_checkpoint(path, entries)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_in_kafkas_format() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(CLEANER_CHECKPOINT_FILE);
        assert!(read(&path).unwrap().is_empty());
        let mut m = HashMap::new();
        m.insert(TopicPartition::new("t", 0), Offset(42));
        m.insert(TopicPartition::new("t", 1), Offset(7));
        write(&path, &m).unwrap();
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "0\n2\nt 0 42\nt 1 7\n");
        assert_eq!(read(&path).unwrap(), m);
    }
}
