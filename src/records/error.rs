//! Typed errors for malformed record batches, each mapped to the Kafka error
//! code a broker answers with.

/// Why a record batch (or the buffer holding it) was rejected.
///
/// `position` fields are byte offsets from the start of the buffer that was
/// being iterated, so a caller can truncate a log at the first bad byte.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BatchError {
    /// Fewer bytes are left than a batch header (or its declared length) needs.
    #[error(
        "record batch truncated at byte {position}: {needed} bytes needed, {available} available"
    )]
    Truncated {
        position: usize,
        needed: usize,
        available: usize,
    },

    /// `batchLength` is below the v2 header size (49) or not representable.
    #[error("invalid record batch length {batch_length} at byte {position}")]
    InvalidBatchLength { position: usize, batch_length: i32 },

    /// The batch is not magic v2. Kafka 4 answers INVALID_RECORD for
    /// produce input with an older magic (ProduceRequest.validateRecords).
    #[error("unsupported record batch magic {magic} at byte {position} (only v2 is supported)")]
    UnsupportedMagic { position: usize, magic: i8 },

    /// The stored CRC-32C does not match the batch contents.
    #[error("record batch CRC mismatch at byte {position}: stored {stored:#010x}, computed {computed:#010x}")]
    CrcMismatch {
        position: usize,
        stored: u32,
        computed: u32,
    },

    /// `recordsCount` is not positive or disagrees with `lastOffsetDelta + 1`.
    #[error("inconsistent record batch: recordsCount {records_count}, lastOffsetDelta {last_offset_delta}")]
    InvalidRecordCount {
        records_count: i32,
        last_offset_delta: i32,
    },

    /// Compression id 5..=7 in the attributes.
    #[error("unknown compression type id {id}")]
    UnknownCompression { id: u8 },

    /// Clients may not write control batches.
    #[error("clients may not produce control batches")]
    ControlBatchFromClient,

    /// An idempotent batch (producerId >= 0) with a negative base sequence.
    #[error("invalid base sequence {base_sequence} for producer {producer_id}")]
    InvalidSequence {
        producer_id: i64,
        base_sequence: i32,
    },

    /// A record inside an uncompressed batch does not parse.
    #[error("malformed record {index} in batch: {reason}")]
    MalformedRecord { index: i32, reason: &'static str },

    /// The records of an uncompressed batch do not add up to `recordsCount`.
    #[error("record batch declares {declared} records but holds {found}")]
    RecordCountMismatch { declared: i32, found: i32 },

    /// The buffer held no batch at all.
    #[error("no record batch in input")]
    Empty,
}

/// Kafka error code CORRUPT_MESSAGE.
pub const CORRUPT_MESSAGE: i16 = 2;
/// Kafka error code INVALID_RECORD.
pub const INVALID_RECORD: i16 = 87;

impl BatchError {
    /// The Kafka error code a produce response should carry for this error.
    pub fn error_code(&self) -> i16 {
        match self {
            BatchError::Truncated { .. }
            | BatchError::InvalidBatchLength { .. }
            | BatchError::CrcMismatch { .. } => CORRUPT_MESSAGE,
            BatchError::UnsupportedMagic { .. }
            | BatchError::InvalidRecordCount { .. }
            | BatchError::UnknownCompression { .. }
            | BatchError::ControlBatchFromClient
            | BatchError::InvalidSequence { .. }
            | BatchError::MalformedRecord { .. }
            | BatchError::RecordCountMismatch { .. }
            | BatchError::Empty => INVALID_RECORD,
        }
    }
}
