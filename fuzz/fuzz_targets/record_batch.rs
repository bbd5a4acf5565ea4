//! Fuzz target `record_batch`: produce input (one or more v2 batches) as a
//! broker sees it — `ProduceBatches` with every check, `BatchIter` at both
//! validation levels, `RecordBatch::new`, and the records and headers of
//! uncompressed batches — plus the in-place patches an append applies,
//! which must leave a CRC-valid batch. Each input runs twice: as given,
//! and with the CRC of every batch recomputed so mutations get past it.
#![no_main]

mod common;

use klamm::records::{
    check_produce_batch, set_base_offset, set_log_append_time, set_max_timestamp,
    set_partition_leader_epoch, update_crc, BatchIter, CompressionType, ProduceBatches,
    RecordBatch, RecordIter, TimestampType, Validation,
};
use klamm::types::{Offset, TimestampMs};
use libfuzzer_sys::fuzz_target;

/// Walks every record and header of `batch`, checking what the iterators
/// promise; returns the number of records seen.
fn walk_records(batch: &RecordBatch<'_>) -> usize {
    let mut n = 0usize;
    for record in RecordIter::new(batch) {
        let Ok(record) = record else { break };
        n += 1;
        let _ = record.offset(batch);
        let _ = record.timestamp(batch);
        let headers = record.headers().count();
        assert_eq!(headers, record.headers_count() as usize, "header iterator and count disagree");
        let _ = (record.key.map(<[u8]>::len), record.value.map(<[u8]>::len));
    }
    assert!(n <= batch.records_count().max(0) as usize, "more records than declared");
    n
}

fn accessors(batch: &RecordBatch<'_>) {
    let _ = (
        batch.base_offset(),
        batch.partition_leader_epoch(),
        batch.magic(),
        batch.attributes(),
        batch.compression(),
        batch.timestamp_type(),
        batch.is_transactional(),
        batch.is_control(),
        batch.has_delete_horizon(),
        batch.base_timestamp(),
        batch.max_timestamp(),
        batch.producer_id(),
        batch.producer_epoch(),
        batch.base_sequence(),
        batch.has_producer_id(),
        batch.last_offset(),
        batch.next_offset(),
        batch.last_sequence(),
        batch.is_crc_valid(),
    );
    assert_eq!(batch.size_bytes(), batch.as_bytes().len());
    assert!(batch.records_bytes().len() <= batch.size_bytes());
}

fuzz_target!(|data: &[u8]| {
    check(data);
    let mut fixed = data.to_vec();
    common::fix_batch_crcs(&mut fixed);
    if fixed != data {
        check(&fixed);
    }
});

fn check(data: &[u8]) {
    // Produce validation, as PartitionLog::append runs it.
    let mut accepted = 0usize;
    let mut iter = ProduceBatches::new(data);
    while let Some(item) = iter.next() {
        let Ok((batch, check)) = item else { break };
        accepted += batch.size_bytes();
        assert!(batch.is_crc_valid());
        accessors(&batch);
        if batch.compression() == Some(CompressionType::None) {
            let n = walk_records(&batch);
            assert_eq!(n, batch.records_count() as usize, "accepted batch with a record count mismatch");
            assert!(check.records_max_timestamp.is_some());
        }
        // The patches an append applies keep the batch valid.
        let mut copy = batch.as_bytes().to_vec();
        set_base_offset(&mut copy, Offset(12_345)).expect("patchable");
        set_partition_leader_epoch(&mut copy, 7).expect("patchable");
        set_max_timestamp(&mut copy, TimestampType::CreateTime, TimestampMs(99)).expect("patchable");
        let patched = RecordBatch::new(&copy).expect("patched batch keeps its length");
        assert!(patched.is_crc_valid(), "CRC not updated by set_max_timestamp");
        check_produce_batch(&patched).expect("patching keeps a valid batch valid");
        set_log_append_time(&mut copy, TimestampMs(1_000)).expect("patchable");
        let patched = RecordBatch::new(&copy).expect("patched batch keeps its length");
        assert!(patched.is_crc_valid(), "CRC not updated by set_log_append_time");
        assert_eq!(patched.base_offset(), Offset(12_345));
        assert_eq!(patched.timestamp_type(), TimestampType::LogAppendTime);
    }
    assert!(accepted <= data.len());

    // Segment-style scans: the CRC level accepts a prefix of what the
    // structure level accepts.
    let mut structure = BatchIter::new(data, Validation::Structure);
    for batch in structure.by_ref() {
        let Ok(batch) = batch else { break };
        accessors(&batch);
        if batch.compression() == Some(CompressionType::None) {
            walk_records(&batch);
        }
    }
    let mut crc = BatchIter::new(data, Validation::Crc);
    for batch in crc.by_ref() {
        if batch.is_err() {
            break;
        }
    }
    assert!(crc.valid_bytes() <= structure.valid_bytes());
    assert!(structure.valid_bytes() <= data.len());
    assert!(accepted <= crc.valid_bytes());

    // A single batch by its exact length; patches on garbage are errors or
    // harmless, never panics.
    if let Ok(batch) = RecordBatch::new(data) {
        accessors(&batch);
        let _ = check_produce_batch(&batch);
        walk_records(&batch);
    }
    let mut copy = data.to_vec();
    let _ = update_crc(&mut copy);
    let _ = set_log_append_time(&mut copy, TimestampMs(5));
    let _ = set_base_offset(&mut copy, Offset(1));
}
