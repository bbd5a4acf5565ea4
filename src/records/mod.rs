//! Kafka record batches, magic v2 only: a zero-copy header view, iteration
//! with typed validation errors, in-place patchers for the fields a broker
//! rewrites on append, record parsing (of uncompressed batches and of
//! decompressed records regions), Kafka's compression codecs
//! (`compression`), and a builder for batches.
//!
//! The hot path (iterate, validate, patch) never allocates per record.

mod batch;
pub mod builder;
pub mod compression;
mod error;
mod iter;
mod record;

pub use batch::{
    decrement_sequence, increment_sequence, set_base_offset, set_log_append_time,
    set_max_timestamp, set_partition_leader_epoch, update_crc, CompressionType, RecordBatch,
    TimestampType, LOG_OVERHEAD_BYTES, MAGIC_V2, MIN_BATCH_LENGTH, NO_PARTITION_LEADER_EPOCH,
    NO_PRODUCER_EPOCH, NO_PRODUCER_ID, NO_SEQUENCE, RECORD_BATCH_OVERHEAD_BYTES,
};
pub use builder::BatchBuilder;
pub use compression::CompressionError;
pub use error::{BatchError, CORRUPT_MESSAGE, INVALID_RECORD};
pub use iter::{check_produce_batch, BatchIter, ProduceBatches, ProduceCheck, Validation};
pub use record::{
    read_varint, read_varlong, write_varint, write_varlong, HeaderIter, Record, RecordIter,
};
