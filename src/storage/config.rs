//! `LogConfig`: the per-topic settings a partition log obeys (Kafka's
//! `segment.bytes`, `retention.ms`, `message.timestamp.type`, ...).

use super::error::StorageError;
use crate::records::{TimestampType, RECORD_BATCH_OVERHEAD_BYTES};

/// Kafka's "never" for the flush intervals.
pub const NEVER: u64 = u64::MAX;

/// Per-partition log settings. Defaults are Kafka's.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LogConfig {
    /// `segment.bytes`: roll when the active segment would exceed this.
    pub segment_bytes: u32,
    /// `segment.ms`: roll when the active segment is older than this.
    pub segment_ms: i64,
    /// `segment.index.bytes`: capacity of each active index file.
    pub segment_index_bytes: u32,
    /// `index.interval.bytes`: log bytes between sparse index entries.
    pub index_interval_bytes: u32,
    /// `flush.messages`: flush after this many unflushed messages ([`NEVER`]).
    pub flush_interval_messages: u64,
    /// `flush.ms`: flush when the last flush is older than this ([`NEVER`]).
    pub flush_interval_ms: u64,
    /// `retention.ms` (-1 = unlimited).
    pub retention_ms: i64,
    /// `retention.bytes` (-1 = unlimited).
    pub retention_bytes: i64,
    /// `max.message.bytes`: largest batch accepted.
    pub max_message_bytes: u32,
    /// `message.timestamp.type`.
    pub message_timestamp_type: TimestampType,
    /// `message.timestamp.before.max.ms`: a CreateTime record may be at
    /// most this much older than the broker's clock.
    pub message_timestamp_before_max_ms: i64,
    /// `message.timestamp.after.max.ms`: a CreateTime record may be at
    /// most this much ahead of the broker's clock (Kafka 4 default: 1 hour).
    pub message_timestamp_after_max_ms: i64,
    /// `preallocate`. Accepted for compatibility, no effect: the active log
    /// grows by positioned writes, and Kafka's preallocation (a sparse
    /// `setLength` on Linux) would only change the file's apparent size.
    pub preallocate: bool,
    /// `cleanup.policy` contains `compact`: the log cleaner keeps the last
    /// record of each key, and records without a key are refused. At load
    /// it also means the segments may have offset gaps (set when the
    /// cleaner checkpoint names the partition, whatever the policy now).
    pub compact: bool,
    /// `min.cleanable.dirty.ratio`, in millionths (the struct is `Eq`).
    pub min_cleanable_dirty_ratio_ppm: u32,
    /// `min.compaction.lag.ms`: records younger than this are not cleaned.
    pub min_compaction_lag_ms: i64,
    /// `max.compaction.lag.ms`: a log with dirty records older than this
    /// is cleaned whatever its dirty ratio.
    pub max_compaction_lag_ms: i64,
    /// `delete.retention.ms`: how long tombstones outlive the cleaned point.
    pub delete_retention_ms: i64,
}

impl Default for LogConfig {
    fn default() -> Self {
        LogConfig {
            segment_bytes: 1 << 30,
            segment_ms: 7 * 24 * 60 * 60 * 1000,
            segment_index_bytes: 10 * 1024 * 1024,
            index_interval_bytes: 4096,
            flush_interval_messages: NEVER,
            flush_interval_ms: NEVER,
            retention_ms: 7 * 24 * 60 * 60 * 1000,
            retention_bytes: -1,
            max_message_bytes: 1_048_588,
            message_timestamp_type: TimestampType::CreateTime,
            message_timestamp_before_max_ms: i64::MAX,
            message_timestamp_after_max_ms: 3_600_000,
            preallocate: false,
            compact: false,
            min_cleanable_dirty_ratio_ppm: 500_000,
            min_compaction_lag_ms: 0,
            max_compaction_lag_ms: i64::MAX,
            delete_retention_ms: 86_400_000,
        }
    }
}

impl LogConfig {
    /// Checks the ranges Kafka enforces (and the ones our file formats need).
    pub fn validate(&self) -> Result<(), StorageError> {
        let invalid = |reason| Err(StorageError::InvalidConfig { reason });
        if (self.segment_bytes as usize) < RECORD_BATCH_OVERHEAD_BYTES
            || self.segment_bytes > i32::MAX as u32
        {
            return invalid("segment.bytes must be between 61 and 2147483647");
        }
        if self.segment_ms < 1 {
            return invalid("segment.ms must be at least 1");
        }
        if self.segment_index_bytes < 8 || self.segment_index_bytes > i32::MAX as u32 {
            return invalid("segment.index.bytes must be between 8 and 2147483647");
        }
        if self.index_interval_bytes > i32::MAX as u32 {
            return invalid("index.interval.bytes must be at most 2147483647");
        }
        if self.flush_interval_messages == 0 {
            return invalid("flush.messages must be at least 1");
        }
        if self.retention_ms < -1 {
            return invalid("retention.ms must be -1 or more");
        }
        if self.retention_bytes < -1 {
            return invalid("retention.bytes must be -1 or more");
        }
        if self.max_message_bytes > i32::MAX as u32 {
            return invalid("max.message.bytes must be at most 2147483647");
        }
        Ok(())
    }

    /// `segment.index.bytes` rounded down to whole entries of `entry_bytes`.
    pub(crate) fn index_capacity_bytes(&self, entry_bytes: usize) -> usize {
        let bytes = self.segment_index_bytes as usize;
        (bytes / entry_bytes).max(1) * entry_bytes
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_kafkas_and_valid() {
        let c = LogConfig::default();
        assert_eq!(c.segment_bytes, 1_073_741_824);
        assert_eq!(c.segment_index_bytes, 10_485_760);
        assert_eq!(c.max_message_bytes, 1_048_588);
        assert_eq!(c.retention_ms, 604_800_000);
        c.validate().unwrap();
        assert_eq!(c.index_capacity_bytes(12), 10_485_756);
    }

    #[test]
    fn rejects_out_of_range() {
        let c = LogConfig {
            segment_bytes: 10,
            ..LogConfig::default()
        };
        assert!(c.validate().is_err());
        let c = LogConfig {
            retention_ms: -2,
            ..LogConfig::default()
        };
        assert!(c.validate().is_err());
        let c = LogConfig {
            segment_index_bytes: 4,
            ..LogConfig::default()
        };
        assert!(c.validate().is_err());
    }
}
