//! `StorageError`: every failure of the storage layer, each mapped to the
//! Kafka error code a handler should answer with.

use std::path::PathBuf;

use crate::records::BatchError;
use crate::types::Offset;

/// Errors from partition logs and the log manager.
#[derive(Debug, thiserror::Error)]
pub enum StorageError {
    /// Produce input failed record-batch validation (CORRUPT_MESSAGE or
    /// INVALID_RECORD, see [`BatchError::error_code`]).
    #[error(transparent)]
    InvalidBatch(#[from] BatchError),

    /// OFFSET_OUT_OF_RANGE (1).
    #[error("offset {requested} is out of range [{log_start_offset}, {log_end_offset}]")]
    OffsetOutOfRange {
        requested: Offset,
        log_start_offset: Offset,
        log_end_offset: Offset,
    },

    /// MESSAGE_TOO_LARGE (10): one batch exceeds `max.message.bytes`.
    #[error("record batch of {batch_bytes} bytes exceeds max.message.bytes {max_message_bytes}")]
    MessageTooLarge {
        batch_bytes: usize,
        max_message_bytes: u32,
    },

    /// INVALID_TIMESTAMP (32): a CreateTime record outside
    /// `[now - message.timestamp.before.max.ms, now + message.timestamp.after.max.ms]`.
    #[error("Timestamp {timestamp} of message with offset {offset_delta} is out of range. The timestamp should be within [{lower}, {upper}]")]
    InvalidTimestamp {
        /// Index of the first such record in its batch (Kafka's
        /// `RecordError.batchIndex`).
        record_index: usize,
        timestamp: i64,
        /// The record's offset within its batch, as Kafka reports it
        /// before offsets are assigned.
        offset_delta: i64,
        lower: i64,
        upper: i64,
    },

    /// INVALID_RECORD (87): records without a key produced to a compacted
    /// topic (Kafka's LogValidator `validateKey`).
    #[error("One or more records have been rejected due to {} record errors in total, and only showing the first three errors at most: [{}]",
        record_indexes.len(),
        record_indexes.iter().take(3).map(|i| format!("RecordError(batchIndex={i}, message='{}')", keyless_message(partition))).collect::<Vec<_>>().join(", "))]
    KeylessRecords {
        /// `topic-partition`.
        partition: String,
        /// Indexes of the keyless records in their batch.
        record_indexes: Vec<usize>,
    },

    /// RECORD_LIST_TOO_LARGE (18): the append exceeds `segment.bytes`.
    #[error("append of {append_bytes} bytes exceeds segment.bytes {segment_bytes}")]
    RecordListTooLarge {
        append_bytes: usize,
        segment_bytes: u32,
    },

    /// INVALID_PRODUCER_EPOCH (47).
    #[error(
        "producer {producer_id} epoch {epoch} is older than the current epoch {current_epoch}"
    )]
    InvalidProducerEpoch {
        producer_id: i64,
        epoch: i16,
        current_epoch: i16,
    },

    /// TRANSACTION_COORDINATOR_FENCED (52): a marker from an older
    /// coordinator epoch than the producer's last marker.
    #[error("marker of producer {producer_id} from coordinator epoch {coordinator_epoch} is older than {current_coordinator_epoch}")]
    CoordinatorFenced {
        producer_id: i64,
        coordinator_epoch: i32,
        current_coordinator_epoch: i32,
    },

    /// TRANSACTION_ABORTABLE (120; INVALID_TXN_STATE for clients before
    /// Produce v11): a transactional batch would open a transaction whose
    /// verification ended before it arrived (its marker was written).
    #[error("transactional batch of producer {producer_id} arrived after its transaction ended in this partition")]
    TransactionNotVerified { producer_id: i64 },

    /// OUT_OF_ORDER_SEQUENCE_NUMBER (45).
    #[error("out of order sequence for producer {producer_id} epoch {epoch}: got {sequence}, last was {last_sequence}")]
    OutOfOrderSequence {
        producer_id: i64,
        epoch: i16,
        sequence: i32,
        last_sequence: i32,
    },

    /// INVALID_TOPIC_EXCEPTION (17): a name that cannot be a partition directory.
    #[error("invalid topic name {name:?}")]
    InvalidTopic { name: String },

    /// INVALID_CONFIG (40).
    #[error("invalid log config: {reason}")]
    InvalidConfig { reason: &'static str },

    /// KAFKA_STORAGE_ERROR (56): an operating-system I/O failure.
    #[error("I/O error during {op} on {path}: {source}")]
    Io {
        op: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },

    /// KAFKA_STORAGE_ERROR (56): a file on disk that cannot be understood
    /// (checkpoint, snapshot) and cannot be repaired automatically.
    #[error("corrupt file {path}: {reason}")]
    CorruptFile { path: PathBuf, reason: String },

    /// KAFKA_STORAGE_ERROR (56): the log was closed or deleted.
    #[error("log {path} is closed")]
    Closed { path: PathBuf },
}

/// Kafka's record error for a keyless record in a compacted topic.
pub fn keyless_message(partition: &str) -> String {
    format!("Compacted topic cannot accept message without key in topic partition {partition}")
}

impl StorageError {
    /// The Kafka error code for this error.
    pub fn error_code(&self) -> i16 {
        match self {
            StorageError::InvalidBatch(e) => e.error_code(),
            StorageError::OffsetOutOfRange { .. } => 1,
            StorageError::MessageTooLarge { .. } => 10,
            StorageError::RecordListTooLarge { .. } => 18,
            StorageError::InvalidTimestamp { .. } => 32,
            StorageError::KeylessRecords { .. } => 87,
            StorageError::InvalidProducerEpoch { .. } => 47,
            StorageError::CoordinatorFenced { .. } => 52,
            StorageError::TransactionNotVerified { .. } => 120,
            StorageError::OutOfOrderSequence { .. } => 45,
            StorageError::InvalidTopic { .. } => 17,
            StorageError::InvalidConfig { .. } => 40,
            StorageError::Io { .. }
            | StorageError::CorruptFile { .. }
            | StorageError::Closed { .. } => 56,
        }
    }

    /// Builds a closure mapping an `io::Error` to [`StorageError::Io`].
    pub(crate) fn io(
        op: &'static str,
        path: impl Into<PathBuf>,
    ) -> impl FnOnce(std::io::Error) -> StorageError {
        let path = path.into();
        move |source| StorageError::Io { op, path, source }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_match_kafka() {
        let oor = StorageError::OffsetOutOfRange {
            requested: Offset(5),
            log_start_offset: Offset(0),
            log_end_offset: Offset(1),
        };
        assert_eq!(oor.error_code(), 1);
        assert_eq!(
            StorageError::from(BatchError::CrcMismatch {
                position: 0,
                stored: 1,
                computed: 2
            })
            .error_code(),
            2
        );
        assert_eq!(StorageError::from(BatchError::Empty).error_code(), 87);
        assert_eq!(
            StorageError::MessageTooLarge {
                batch_bytes: 2,
                max_message_bytes: 1
            }
            .error_code(),
            10
        );
        assert_eq!(
            StorageError::RecordListTooLarge {
                append_bytes: 2,
                segment_bytes: 1
            }
            .error_code(),
            18
        );
        assert_eq!(
            StorageError::InvalidProducerEpoch {
                producer_id: 1,
                epoch: 0,
                current_epoch: 1
            }
            .error_code(),
            47
        );
        let oos = StorageError::OutOfOrderSequence {
            producer_id: 1,
            epoch: 0,
            sequence: 5,
            last_sequence: 1,
        };
        assert_eq!(oos.error_code(), 45);
        let io = StorageError::io("read", "/x")(std::io::Error::other("boom"));
        assert_eq!(io.error_code(), 56);
    }
}
