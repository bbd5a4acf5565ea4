//! Encoding v2 record batches (for tests, for the CLI's producer, and for
//! brokers that write their own records, e.g. metadata or offset logs),
//! uncompressed or compressed with gzip, snappy or lz4.

use super::batch::{
    increment_sequence, update_crc, TimestampType, ATTRIBUTES_AT, BATCH_LENGTH_AT,
    LOG_OVERHEAD_BYTES, MAGIC_V2, NO_PARTITION_LEADER_EPOCH, NO_PRODUCER_EPOCH, NO_PRODUCER_ID,
    NO_SEQUENCE, RECORD_BATCH_OVERHEAD_BYTES,
};
use super::batch::CompressionType;
use super::compression::{self, CompressionError};
use super::record::{write_varint, write_varlong};

/// Attribute bits 0-2: the compression codec.
const COMPRESSION_MASK: i16 = 0x07;
use crate::types::TimestampMs;

/// Builds one uncompressed v2 batch record by record.
pub struct BatchBuilder {
    base_offset: i64,
    base_timestamp: i64,
    max_timestamp: i64,
    producer_id: i64,
    producer_epoch: i16,
    base_sequence: i32,
    partition_leader_epoch: i32,
    attributes: i16,
    count: i32,
    records: Vec<u8>,
    scratch: Vec<u8>,
}

impl BatchBuilder {
    /// A batch whose first record will have offset `base_offset` and whose
    /// timestamps are stored relative to `base_timestamp`.
    pub fn new(base_offset: i64, base_timestamp: TimestampMs) -> BatchBuilder {
        BatchBuilder {
            base_offset,
            base_timestamp: base_timestamp.0,
            max_timestamp: TimestampMs::NONE.0,
            producer_id: NO_PRODUCER_ID,
            producer_epoch: NO_PRODUCER_EPOCH,
            base_sequence: NO_SEQUENCE,
            partition_leader_epoch: NO_PARTITION_LEADER_EPOCH,
            attributes: 0,
            count: 0,
            records: Vec::new(),
            scratch: Vec::new(),
        }
    }

    /// Marks the batch idempotent.
    pub fn producer(
        &mut self,
        producer_id: i64,
        producer_epoch: i16,
        base_sequence: i32,
    ) -> &mut Self {
        self.producer_id = producer_id;
        self.producer_epoch = producer_epoch;
        self.base_sequence = base_sequence;
        self
    }

    pub fn partition_leader_epoch(&mut self, epoch: i32) -> &mut Self {
        self.partition_leader_epoch = epoch;
        self
    }

    pub fn transactional(&mut self, on: bool) -> &mut Self {
        self.set_bit(0x10, on)
    }

    pub fn control(&mut self, on: bool) -> &mut Self {
        self.set_bit(0x20, on)
    }

    pub fn timestamp_type(&mut self, t: TimestampType) -> &mut Self {
        self.set_bit(0x08, t == TimestampType::LogAppendTime)
    }

    fn set_bit(&mut self, bit: i16, on: bool) -> &mut Self {
        if on {
            self.attributes |= bit;
        } else {
            self.attributes &= !bit;
        }
        self
    }

    /// Number of records appended so far.
    pub fn len(&self) -> usize {
        self.count as usize
    }

    pub fn is_empty(&self) -> bool {
        self.count == 0
    }

    /// Appends one record; its offset delta is its index in the batch.
    pub fn append(
        &mut self,
        timestamp: TimestampMs,
        key: Option<&[u8]>,
        value: Option<&[u8]>,
        headers: &[(&str, Option<&[u8]>)],
    ) -> &mut Self {
        let body = &mut self.scratch;
        body.clear();
        body.push(0); // record attributes (unused)
        write_varlong(body, timestamp.0.wrapping_sub(self.base_timestamp));
        write_varint(body, self.count);
        write_bytes(body, key);
        write_bytes(body, value);
        write_varint(body, headers.len() as i32);
        for (k, v) in headers {
            write_varint(body, k.len() as i32);
            body.extend_from_slice(k.as_bytes());
            write_bytes(body, *v);
        }
        write_varint(&mut self.records, body.len() as i32);
        self.records.extend_from_slice(body);
        self.count += 1;
        if timestamp.0 > self.max_timestamp {
            self.max_timestamp = timestamp.0;
        }
        self
    }

    /// Encodes the batch with a valid CRC. A batch with no records gets
    /// `lastOffsetDelta = -1`, which produce validation rejects.
    pub fn build(&self) -> Vec<u8> {
        self.encode(self.attributes, &self.records)
    }

    /// Encodes the batch with its records compressed by `codec`.
    pub fn build_compressed(&self, codec: CompressionType) -> Result<Vec<u8>, CompressionError> {
        if codec == CompressionType::None {
            return Ok(self.build());
        }
        let records = compression::compress(codec, &self.records)?;
        Ok(self.encode((self.attributes & !COMPRESSION_MASK) | codec.id() as i16, &records))
    }

    /// Bytes of the (uncompressed) records appended so far.
    pub fn records_bytes(&self) -> usize {
        self.records.len()
    }

    fn encode(&self, attributes: i16, records: &[u8]) -> Vec<u8> {
        let total = RECORD_BATCH_OVERHEAD_BYTES + records.len();
        let mut out = Vec::with_capacity(total);
        out.extend_from_slice(&self.base_offset.to_be_bytes());
        out.extend_from_slice(&((total - LOG_OVERHEAD_BYTES) as i32).to_be_bytes());
        out.extend_from_slice(&self.partition_leader_epoch.to_be_bytes());
        out.push(MAGIC_V2 as u8);
        out.extend_from_slice(&[0u8; 4]); // CRC, filled below
        out.extend_from_slice(&attributes.to_be_bytes());
        out.extend_from_slice(&(self.count - 1).to_be_bytes());
        out.extend_from_slice(&self.base_timestamp.to_be_bytes());
        out.extend_from_slice(&self.max_timestamp.to_be_bytes());
        out.extend_from_slice(&self.producer_id.to_be_bytes());
        out.extend_from_slice(&self.producer_epoch.to_be_bytes());
        out.extend_from_slice(&self.base_sequence.to_be_bytes());
        out.extend_from_slice(&self.count.to_be_bytes());
        debug_assert_eq!(out.len(), RECORD_BATCH_OVERHEAD_BYTES);
        debug_assert_eq!(ATTRIBUTES_AT, 21);
        debug_assert_eq!(BATCH_LENGTH_AT, 8);
        out.extend_from_slice(records);
        // Cannot fail: `out` is at least a header long.
        let _ = update_crc(&mut out);
        out
    }

    /// The base sequence the next batch of this producer should use.
    pub fn next_sequence(&self) -> i32 {
        increment_sequence(self.base_sequence, self.count)
    }
}

fn write_bytes(out: &mut Vec<u8>, bytes: Option<&[u8]>) {
    match bytes {
        None => write_varint(out, -1),
        Some(b) => {
            write_varint(out, b.len() as i32);
            out.extend_from_slice(b);
        }
    }
}

/// A test helper: `n` records with small keys/values and timestamps
/// `ts, ts+1, ...`, optionally idempotent.
#[cfg(test)]
pub(crate) fn test_batch(n: usize, ts: i64, producer: Option<(i64, i16, i32)>) -> Vec<u8> {
    let mut b = BatchBuilder::new(0, TimestampMs(ts));
    if let Some((id, epoch, seq)) = producer {
        b.producer(id, epoch, seq);
    }
    for i in 0..n {
        let v = format!("value-{i}");
        b.append(
            TimestampMs(ts + i as i64),
            Some(b"k"),
            Some(v.as_bytes()),
            &[],
        );
    }
    b.build()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::records::{ProduceBatches, RecordBatch};

    #[test]
    fn compressed_batches_decompress_to_the_same_records() {
        use crate::records::{BatchIter, RecordIter, Validation};
        let mut b = BatchBuilder::new(0, TimestampMs(1_000));
        for i in 0..50 {
            let v = format!("value-{i}");
            b.append(TimestampMs(1_000 + i), Some(b"k"), Some(v.as_bytes()), &[("h", Some(b"x"))]);
        }
        let plain = b.build();
        for codec in [CompressionType::Gzip, CompressionType::Snappy, CompressionType::Lz4] {
            let bytes = b.build_compressed(codec).unwrap();
            let batch = BatchIter::new(&bytes, Validation::Crc).next().unwrap().unwrap();
            assert_eq!(batch.compression(), Some(codec));
            assert_eq!((batch.records_count(), batch.last_offset_delta()), (50, 49));
            let records = compression::decompress(codec, batch.records_bytes(), 1 << 20).unwrap();
            let got: Vec<_> = RecordIter::over(&records, batch.records_count()).map(|r| r.unwrap().value.unwrap().to_vec()).collect();
            assert_eq!(got.len(), 50);
            assert_eq!(got[49], b"value-49");
            assert_eq!(records, RecordBatch::new(&plain).unwrap().records_bytes());
        }
    }

    #[test]
    fn built_batches_validate() {
        let bytes = test_batch(5, 100, Some((1, 0, 0)));
        let (batch, check) = ProduceBatches::new(&bytes).next().unwrap().unwrap();
        assert_eq!(batch.records_count(), 5);
        assert_eq!(check.records_max_timestamp, Some(TimestampMs(104)));
        assert_eq!(batch.max_timestamp(), TimestampMs(104));
        assert!(RecordBatch::new(&bytes).unwrap().is_crc_valid());
    }

    /// Our encoder and validator agree with an independent implementation
    /// (the `kafka-protocol` crate) in both directions.
    #[test]
    fn interoperates_with_kafka_protocol_crate() {
        use bytes::{Bytes, BytesMut};
        use kafka_protocol::records::{
            Compression, Record as KRecord, RecordBatchDecoder, RecordBatchEncoder,
            RecordEncodeOptions, TimestampType as KTs,
        };
        // Ours -> theirs.
        let mut b = BatchBuilder::new(40, TimestampMs(1_000));
        b.producer(9, 2, 100);
        b.append(
            TimestampMs(1_000),
            Some(b"k"),
            Some(b"v"),
            &[("h", Some(b"x"))],
        );
        b.append(TimestampMs(1_002), None, Some(b"w"), &[]);
        let mut buf = Bytes::from(b.build());
        let set = RecordBatchDecoder::decode(&mut buf).unwrap();
        assert_eq!(set.records.len(), 2);
        assert_eq!(set.records[0].offset, 40);
        assert_eq!(set.records[1].offset, 41);
        assert_eq!(set.records[1].timestamp, 1_002);
        assert_eq!(set.records[0].producer_id, 9);
        assert_eq!(set.records[1].sequence, 101);
        assert_eq!(set.records[0].headers.len(), 1);
        // Theirs -> ours.
        let records: Vec<KRecord> = (0..3)
            .map(|i| KRecord {
                transactional: false,
                control: false,
                delete_horizon: false,
                partition_leader_epoch: 0,
                producer_id: 4,
                producer_epoch: 1,
                timestamp_type: KTs::Creation,
                offset: i,
                sequence: 7 + i as i32,
                timestamp: 5_000 + i,
                key: Some(Bytes::from_static(b"key")),
                value: None,
                headers: Default::default(),
            })
            .collect();
        let mut out = BytesMut::new();
        RecordBatchEncoder::encode(
            &mut out,
            &records,
            &RecordEncodeOptions {
                version: 2,
                compression: Compression::None,
            },
        )
        .unwrap();
        let (batch, check) = ProduceBatches::new(&out).next().unwrap().unwrap();
        assert_eq!(batch.records_count(), 3);
        assert_eq!(batch.producer_id(), 4);
        assert_eq!(batch.base_sequence(), 7);
        assert_eq!(batch.last_sequence(), 9);
        assert_eq!(check.records_max_timestamp, Some(TimestampMs(5_002)));
        assert_eq!(batch.max_timestamp(), TimestampMs(5_002));
    }
}
