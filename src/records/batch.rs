//! The v2 record batch header: a zero-copy read view (`RecordBatch`) and
//! in-place patchers for the fields a broker rewrites on append.
//!
//! Layout (all big-endian), byte offsets from the start of the batch:
//! ```text
//!  0 baseOffset i64        8 batchLength i32     12 partitionLeaderEpoch i32
//! 16 magic i8             17 crc u32            21 attributes i16
//! 23 lastOffsetDelta i32  27 baseTimestamp i64  35 maxTimestamp i64
//! 43 producerId i64       51 producerEpoch i16  53 baseSequence i32
//! 57 recordsCount i32     61 records...
//! ```
//! The CRC-32C covers bytes 21 (attributes) to the end of the batch, so the
//! base offset and partition leader epoch can be patched without touching it.

use super::error::BatchError;
use crate::types::{Offset, TimestampMs};

/// The only supported record batch format.
pub const MAGIC_V2: i8 = 2;
/// baseOffset + batchLength: bytes before the length-counted part.
pub const LOG_OVERHEAD_BYTES: usize = 12;
/// Size of the v2 batch header (no records).
pub const RECORD_BATCH_OVERHEAD_BYTES: usize = 61;
/// Smallest legal `batchLength` (header bytes after the length field).
pub const MIN_BATCH_LENGTH: i32 = (RECORD_BATCH_OVERHEAD_BYTES - LOG_OVERHEAD_BYTES) as i32;
/// Kafka's "no producer id".
pub const NO_PRODUCER_ID: i64 = -1;
/// Kafka's "no producer epoch".
pub const NO_PRODUCER_EPOCH: i16 = -1;
/// Kafka's "no sequence".
pub const NO_SEQUENCE: i32 = -1;
/// Kafka's "no partition leader epoch".
pub const NO_PARTITION_LEADER_EPOCH: i32 = -1;

pub(crate) const BASE_OFFSET_AT: usize = 0;
pub(crate) const BATCH_LENGTH_AT: usize = 8;
pub(crate) const PARTITION_LEADER_EPOCH_AT: usize = 12;
pub(crate) const MAGIC_AT: usize = 16;
pub(crate) const CRC_AT: usize = 17;
pub(crate) const ATTRIBUTES_AT: usize = 21;
pub(crate) const LAST_OFFSET_DELTA_AT: usize = 23;
pub(crate) const BASE_TIMESTAMP_AT: usize = 27;
pub(crate) const MAX_TIMESTAMP_AT: usize = 35;
pub(crate) const PRODUCER_ID_AT: usize = 43;
pub(crate) const PRODUCER_EPOCH_AT: usize = 51;
pub(crate) const BASE_SEQUENCE_AT: usize = 53;
pub(crate) const RECORDS_COUNT_AT: usize = 57;

const COMPRESSION_MASK: i16 = 0x07;
const TIMESTAMP_TYPE_BIT: i16 = 0x08;
const TRANSACTIONAL_BIT: i16 = 0x10;
const CONTROL_BIT: i16 = 0x20;
const DELETE_HORIZON_BIT: i16 = 0x40;

/// Compression codec of a batch (attribute bits 0-2).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum CompressionType {
    None,
    Gzip,
    Snappy,
    Lz4,
    Zstd,
}

impl CompressionType {
    /// Maps Kafka's compression id; `None` for ids 5..=7.
    pub fn from_id(id: u8) -> Option<CompressionType> {
        match id {
            0 => Some(CompressionType::None),
            1 => Some(CompressionType::Gzip),
            2 => Some(CompressionType::Snappy),
            3 => Some(CompressionType::Lz4),
            4 => Some(CompressionType::Zstd),
            _ => None,
        }
    }

    pub fn id(self) -> u8 {
        match self {
            CompressionType::None => 0,
            CompressionType::Gzip => 1,
            CompressionType::Snappy => 2,
            CompressionType::Lz4 => 3,
            CompressionType::Zstd => 4,
        }
    }
}

/// Timestamp semantics of a batch (attribute bit 3) or of a topic
/// (`message.timestamp.type`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
pub enum TimestampType {
    #[default]
    CreateTime,
    LogAppendTime,
}

#[inline]
fn read_i64(b: &[u8], at: usize) -> i64 {
    let mut a = [0u8; 8];
    a.copy_from_slice(&b[at..at + 8]);
    i64::from_be_bytes(a)
}

#[inline]
fn read_i32(b: &[u8], at: usize) -> i32 {
    let mut a = [0u8; 4];
    a.copy_from_slice(&b[at..at + 4]);
    i32::from_be_bytes(a)
}

#[inline]
fn read_u32(b: &[u8], at: usize) -> u32 {
    read_i32(b, at) as u32
}

#[inline]
fn read_i16(b: &[u8], at: usize) -> i16 {
    i16::from_be_bytes([b[at], b[at + 1]])
}

/// Reads `(baseOffset, batchLength, magic)` from the first 17 bytes of a
/// buffer, or `None` if it is shorter than that.
#[inline]
pub(crate) fn peek_prefix(b: &[u8]) -> Option<(i64, i32, i8)> {
    if b.len() < MAGIC_AT + 1 {
        return None;
    }
    Some((
        read_i64(b, BASE_OFFSET_AT),
        read_i32(b, BATCH_LENGTH_AT),
        b[MAGIC_AT] as i8,
    ))
}

/// A zero-copy view of exactly one v2 record batch.
///
/// Construction guarantees the slice is at least the header size and that
/// its length equals `batchLength + 12`; nothing else (magic, CRC, counts) is
/// implied — that is the iterator's job.
#[derive(Clone, Copy)]
pub struct RecordBatch<'a> {
    bytes: &'a [u8],
}

impl<'a> RecordBatch<'a> {
    /// Views `bytes` as one batch; fails unless `bytes` holds exactly one
    /// batch by its length field.
    pub fn new(bytes: &'a [u8]) -> Result<RecordBatch<'a>, BatchError> {
        if bytes.len() < RECORD_BATCH_OVERHEAD_BYTES {
            return Err(BatchError::Truncated {
                position: 0,
                needed: RECORD_BATCH_OVERHEAD_BYTES,
                available: bytes.len(),
            });
        }
        let batch_length = read_i32(bytes, BATCH_LENGTH_AT);
        if batch_length < MIN_BATCH_LENGTH {
            return Err(BatchError::InvalidBatchLength {
                position: 0,
                batch_length,
            });
        }
        let total = batch_length as usize + LOG_OVERHEAD_BYTES;
        if total != bytes.len() {
            return Err(BatchError::Truncated {
                position: 0,
                needed: total,
                available: bytes.len(),
            });
        }
        Ok(RecordBatch { bytes })
    }

    /// Internal constructor for callers that already checked the length.
    #[inline]
    pub(crate) fn new_unchecked(bytes: &'a [u8]) -> RecordBatch<'a> {
        debug_assert!(bytes.len() >= RECORD_BATCH_OVERHEAD_BYTES);
        debug_assert_eq!(
            read_i32(bytes, BATCH_LENGTH_AT) as usize + LOG_OVERHEAD_BYTES,
            bytes.len()
        );
        RecordBatch { bytes }
    }

    /// The whole batch, header included.
    #[inline]
    pub fn as_bytes(&self) -> &'a [u8] {
        self.bytes
    }
    /// Total size in bytes (`batchLength + 12`).
    #[inline]
    pub fn size_bytes(&self) -> usize {
        self.bytes.len()
    }
    #[inline]
    pub fn base_offset(&self) -> Offset {
        Offset(read_i64(self.bytes, BASE_OFFSET_AT))
    }
    #[inline]
    pub fn batch_length(&self) -> i32 {
        read_i32(self.bytes, BATCH_LENGTH_AT)
    }
    #[inline]
    pub fn partition_leader_epoch(&self) -> i32 {
        read_i32(self.bytes, PARTITION_LEADER_EPOCH_AT)
    }
    #[inline]
    pub fn magic(&self) -> i8 {
        self.bytes[MAGIC_AT] as i8
    }
    /// The CRC stored in the header.
    #[inline]
    pub fn crc(&self) -> u32 {
        read_u32(self.bytes, CRC_AT)
    }
    #[inline]
    pub fn attributes(&self) -> i16 {
        read_i16(self.bytes, ATTRIBUTES_AT)
    }
    /// Raw compression id (0..=7).
    #[inline]
    pub fn compression_id(&self) -> u8 {
        (self.attributes() & COMPRESSION_MASK) as u8
    }
    /// The compression codec, `None` if the id is unknown.
    #[inline]
    pub fn compression(&self) -> Option<CompressionType> {
        CompressionType::from_id(self.compression_id())
    }
    #[inline]
    pub fn timestamp_type(&self) -> TimestampType {
        if self.attributes() & TIMESTAMP_TYPE_BIT != 0 {
            TimestampType::LogAppendTime
        } else {
            TimestampType::CreateTime
        }
    }
    #[inline]
    pub fn is_transactional(&self) -> bool {
        self.attributes() & TRANSACTIONAL_BIT != 0
    }
    #[inline]
    pub fn is_control(&self) -> bool {
        self.attributes() & CONTROL_BIT != 0
    }
    #[inline]
    pub fn has_delete_horizon(&self) -> bool {
        self.attributes() & DELETE_HORIZON_BIT != 0
    }
    #[inline]
    pub fn last_offset_delta(&self) -> i32 {
        read_i32(self.bytes, LAST_OFFSET_DELTA_AT)
    }
    #[inline]
    pub fn base_timestamp(&self) -> TimestampMs {
        TimestampMs(read_i64(self.bytes, BASE_TIMESTAMP_AT))
    }
    #[inline]
    pub fn max_timestamp(&self) -> TimestampMs {
        TimestampMs(read_i64(self.bytes, MAX_TIMESTAMP_AT))
    }
    #[inline]
    pub fn producer_id(&self) -> i64 {
        read_i64(self.bytes, PRODUCER_ID_AT)
    }
    #[inline]
    pub fn producer_epoch(&self) -> i16 {
        read_i16(self.bytes, PRODUCER_EPOCH_AT)
    }
    #[inline]
    pub fn base_sequence(&self) -> i32 {
        read_i32(self.bytes, BASE_SEQUENCE_AT)
    }
    #[inline]
    pub fn records_count(&self) -> i32 {
        read_i32(self.bytes, RECORDS_COUNT_AT)
    }
    /// True if the batch carries a producer id (idempotent/transactional).
    #[inline]
    pub fn has_producer_id(&self) -> bool {
        self.producer_id() >= 0
    }
    /// `baseOffset + lastOffsetDelta` (saturating, so garbage cannot overflow).
    #[inline]
    pub fn last_offset(&self) -> Offset {
        Offset(
            self.base_offset()
                .0
                .saturating_add(self.last_offset_delta() as i64),
        )
    }
    /// The offset after this batch.
    #[inline]
    pub fn next_offset(&self) -> Offset {
        Offset(self.last_offset().0.saturating_add(1))
    }
    /// The last sequence number of the batch, wrapping at `i32::MAX` as Kafka
    /// does (`NO_SEQUENCE` if the batch has none).
    #[inline]
    pub fn last_sequence(&self) -> i32 {
        let base = self.base_sequence();
        if base == NO_SEQUENCE {
            return NO_SEQUENCE;
        }
        increment_sequence(base, self.last_offset_delta())
    }
    /// The bytes after the 61-byte header (possibly compressed).
    #[inline]
    pub fn records_bytes(&self) -> &'a [u8] {
        &self.bytes[RECORD_BATCH_OVERHEAD_BYTES..]
    }
    /// CRC-32C over attributes..end, as it should be stored.
    #[inline]
    pub fn compute_crc(&self) -> u32 {
        crc32c::crc32c(&self.bytes[ATTRIBUTES_AT..])
    }
    #[inline]
    pub fn is_crc_valid(&self) -> bool {
        self.crc() == self.compute_crc()
    }
}

/// `sequence + increment`, wrapping past `i32::MAX` to 0 like Kafka's
/// `DefaultRecordBatch.incrementSequence`.
#[inline]
pub fn increment_sequence(sequence: i32, increment: i32) -> i32 {
    // i64 arithmetic: garbage input (negative deltas) must not overflow.
    let (s, inc, max) = (sequence as i64, increment as i64, i32::MAX as i64);
    if s > max - inc {
        (inc - (max - s) - 1) as i32
    } else {
        (s + inc) as i32
    }
}

/// `sequence - decrement`, the inverse of [`increment_sequence`].
#[inline]
pub fn decrement_sequence(sequence: i32, decrement: i32) -> i32 {
    let (s, dec, max) = (sequence as i64, decrement as i64, i32::MAX as i64);
    if s < dec {
        (max - (dec - s) + 1) as i32
    } else {
        (s - dec) as i32
    }
}

fn check_patchable(batch: &[u8]) -> Result<(), BatchError> {
    if batch.len() < RECORD_BATCH_OVERHEAD_BYTES {
        return Err(BatchError::Truncated {
            position: 0,
            needed: RECORD_BATCH_OVERHEAD_BYTES,
            available: batch.len(),
        });
    }
    Ok(())
}

/// Writes `baseOffset` in place (outside the CRC).
pub fn set_base_offset(batch: &mut [u8], base_offset: Offset) -> Result<(), BatchError> {
    check_patchable(batch)?;
    batch[BASE_OFFSET_AT..BASE_OFFSET_AT + 8].copy_from_slice(&base_offset.0.to_be_bytes());
    Ok(())
}

/// Writes `partitionLeaderEpoch` in place (outside the CRC).
pub fn set_partition_leader_epoch(batch: &mut [u8], epoch: i32) -> Result<(), BatchError> {
    check_patchable(batch)?;
    batch[PARTITION_LEADER_EPOCH_AT..PARTITION_LEADER_EPOCH_AT + 4]
        .copy_from_slice(&epoch.to_be_bytes());
    Ok(())
}

/// Recomputes and stores the CRC-32C of a batch.
pub fn update_crc(batch: &mut [u8]) -> Result<(), BatchError> {
    check_patchable(batch)?;
    let crc = crc32c::crc32c(&batch[ATTRIBUTES_AT..]);
    batch[CRC_AT..CRC_AT + 4].copy_from_slice(&crc.to_be_bytes());
    Ok(())
}

/// Sets the timestamp type bit and `maxTimestamp`, recomputing the CRC when
/// anything changed (Kafka's `DefaultRecordBatch.setMaxTimestamp`).
pub fn set_max_timestamp(
    batch: &mut [u8],
    timestamp_type: TimestampType,
    max_timestamp: TimestampMs,
) -> Result<(), BatchError> {
    check_patchable(batch)?;
    let attributes = read_i16(batch, ATTRIBUTES_AT);
    let new_attributes = match timestamp_type {
        TimestampType::CreateTime => attributes & !TIMESTAMP_TYPE_BIT,
        TimestampType::LogAppendTime => attributes | TIMESTAMP_TYPE_BIT,
    };
    let current_max = read_i64(batch, MAX_TIMESTAMP_AT);
    if new_attributes == attributes && current_max == max_timestamp.0 {
        return Ok(());
    }
    batch[ATTRIBUTES_AT..ATTRIBUTES_AT + 2].copy_from_slice(&new_attributes.to_be_bytes());
    batch[MAX_TIMESTAMP_AT..MAX_TIMESTAMP_AT + 8].copy_from_slice(&max_timestamp.0.to_be_bytes());
    update_crc(batch)
}

/// Stamps LogAppendTime: sets attribute bit 3 and `maxTimestamp = append_time`,
/// recomputing the CRC.
pub fn set_log_append_time(batch: &mut [u8], append_time: TimestampMs) -> Result<(), BatchError> {
    set_max_timestamp(batch, TimestampType::LogAppendTime, append_time)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::records::builder::BatchBuilder;

    fn sample() -> Vec<u8> {
        let mut b = BatchBuilder::new(0, TimestampMs(1_000));
        b.producer(7, 3, 11);
        b.append(TimestampMs(1_000), Some(b"k1"), Some(b"v1"), &[]);
        b.append(TimestampMs(1_005), None, Some(b"v2"), &[("h", Some(b"x"))]);
        b.build()
    }

    #[test]
    fn header_fields_read_back() {
        let bytes = sample();
        let batch = RecordBatch::new(&bytes).unwrap();
        assert_eq!(batch.base_offset(), Offset(0));
        assert_eq!(batch.magic(), MAGIC_V2);
        assert_eq!(batch.size_bytes(), bytes.len());
        assert_eq!(batch.records_count(), 2);
        assert_eq!(batch.last_offset_delta(), 1);
        assert_eq!(batch.last_offset(), Offset(1));
        assert_eq!(batch.base_timestamp(), TimestampMs(1_000));
        assert_eq!(batch.max_timestamp(), TimestampMs(1_005));
        assert_eq!(batch.producer_id(), 7);
        assert_eq!(batch.producer_epoch(), 3);
        assert_eq!(batch.base_sequence(), 11);
        assert_eq!(batch.last_sequence(), 12);
        assert_eq!(batch.compression(), Some(CompressionType::None));
        assert_eq!(batch.timestamp_type(), TimestampType::CreateTime);
        assert!(!batch.is_control() && !batch.is_transactional() && !batch.has_delete_horizon());
        assert!(batch.is_crc_valid());
    }

    #[test]
    fn new_rejects_wrong_lengths() {
        let bytes = sample();
        assert!(matches!(
            RecordBatch::new(&bytes[..60]),
            Err(BatchError::Truncated { .. })
        ));
        assert!(matches!(
            RecordBatch::new(&bytes[..bytes.len() - 1]),
            Err(BatchError::Truncated { .. })
        ));
        let mut bad = bytes.clone();
        bad[BATCH_LENGTH_AT..BATCH_LENGTH_AT + 4].copy_from_slice(&48i32.to_be_bytes());
        assert!(matches!(
            RecordBatch::new(&bad),
            Err(BatchError::InvalidBatchLength { .. })
        ));
    }

    #[test]
    fn base_offset_and_epoch_patch_outside_crc() {
        let mut bytes = sample();
        let crc_before = RecordBatch::new(&bytes).unwrap().crc();
        set_base_offset(&mut bytes, Offset(42)).unwrap();
        set_partition_leader_epoch(&mut bytes, 9).unwrap();
        let batch = RecordBatch::new(&bytes).unwrap();
        assert_eq!(batch.base_offset(), Offset(42));
        assert_eq!(batch.last_offset(), Offset(43));
        assert_eq!(batch.partition_leader_epoch(), 9);
        assert_eq!(batch.crc(), crc_before);
        assert!(batch.is_crc_valid());
    }

    #[test]
    fn log_append_time_patch_recomputes_crc() {
        let mut bytes = sample();
        set_log_append_time(&mut bytes, TimestampMs(99_999)).unwrap();
        let batch = RecordBatch::new(&bytes).unwrap();
        assert_eq!(batch.timestamp_type(), TimestampType::LogAppendTime);
        assert_eq!(batch.max_timestamp(), TimestampMs(99_999));
        assert!(batch.is_crc_valid());
        // And back to CreateTime.
        set_max_timestamp(&mut bytes, TimestampType::CreateTime, TimestampMs(1_005)).unwrap();
        let batch = RecordBatch::new(&bytes).unwrap();
        assert_eq!(batch.timestamp_type(), TimestampType::CreateTime);
        assert!(batch.is_crc_valid());
        assert_eq!(bytes, sample());
    }

    #[test]
    fn patchers_reject_short_input() {
        let mut short = [0u8; 10];
        assert!(set_base_offset(&mut short, Offset(1)).is_err());
        assert!(set_partition_leader_epoch(&mut short, 1).is_err());
        assert!(set_log_append_time(&mut short, TimestampMs(1)).is_err());
        assert!(update_crc(&mut short).is_err());
    }

    #[test]
    fn sequence_wraps_like_kafka() {
        assert_eq!(increment_sequence(5, 3), 8);
        assert_eq!(increment_sequence(i32::MAX, 1), 0);
        assert_eq!(increment_sequence(i32::MAX - 1, 3), 1);
        assert_eq!(decrement_sequence(8, 3), 5);
        assert_eq!(decrement_sequence(1, 3), i32::MAX - 1);
        assert_eq!(decrement_sequence(0, 1), i32::MAX);
    }
}
