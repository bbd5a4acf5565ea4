//! Walking the v2 record batches of one Kafka log file (a segment or a KRaft
//! snapshot) for the importers: every batch is CRC-checked, records of
//! uncompressed data batches are handed over with their offsets, and
//! transaction markers are recognised. Compressed batches are skipped and
//! counted (klamm stores compressed batches as sent and has no codecs to
//! open them); the walk stops at the first byte that is not a valid batch.
//! No input makes it panic or allocate.

use crate::records::{BatchIter, CompressionType, RecordIter, Validation};
use crate::types::Offset;

/// Control record types (the `type` of a control record key).
const CONTROL_ABORT: i16 = 0;
const CONTROL_COMMIT: i16 = 1;

/// What the walk hands to its caller.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Item<'a> {
    /// One record of an uncompressed data batch.
    Record {
        offset: Offset,
        key: Option<&'a [u8]>,
        value: Option<&'a [u8]>,
        /// The producer id, if the batch is part of a transaction.
        transactional_producer: Option<i64>,
    },
    /// The end of a transaction (a control batch with a COMMIT or ABORT
    /// marker).
    TxnMarker { producer_id: i64, commit: bool },
}

/// What one walk saw.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct WalkReport {
    /// Valid batches, of every kind.
    pub batches: u64,
    /// Records handed over.
    pub records: u64,
    /// Control batches (transaction markers, KRaft leader changes,
    /// snapshot headers and footers).
    pub control_batches: u64,
    /// Compressed data batches skipped, and their codecs.
    pub compressed_batches: u64,
    pub compressed_codecs: Vec<&'static str>,
    /// Batches whose records did not parse (skipped).
    pub malformed_batches: u64,
    /// Bytes of valid batches at the front of the input.
    pub valid_bytes: usize,
    /// Bytes after them that are not all zero (a torn or corrupt tail);
    /// zeros are preallocation, not damage.
    pub garbage_bytes: usize,
}

fn codec_name(c: Option<CompressionType>) -> &'static str {
    match c {
        Some(CompressionType::None) => "none",
        Some(CompressionType::Gzip) => "gzip",
        Some(CompressionType::Snappy) => "snappy",
        Some(CompressionType::Lz4) => "lz4",
        Some(CompressionType::Zstd) => "zstd",
        None => "unknown",
    }
}

/// The control record type of a control record key (`version: i16, type:
/// i16`), if it has that shape.
fn control_type(key: Option<&[u8]>) -> Option<i16> {
    let key = key?;
    let t = key.get(2..4)?;
    Some(i16::from_be_bytes([t[0], t[1]]))
}

/// Walks the batches of `data` in order and calls `f` for each item.
pub fn walk(data: &[u8], mut f: impl FnMut(Item<'_>)) -> WalkReport {
    let mut report = WalkReport::default();
    let mut iter = BatchIter::new(data, Validation::Crc);
    for batch in iter.by_ref() {
        let Ok(batch) = batch else { break };
        report.batches += 1;
        let compression = batch.compression();
        if compression != Some(CompressionType::None) {
            if batch.is_control() {
                report.control_batches += 1;
            } else {
                report.compressed_batches += 1;
                let name = codec_name(compression);
                if !report.compressed_codecs.contains(&name) {
                    report.compressed_codecs.push(name);
                }
            }
            continue;
        }
        if batch.is_control() {
            report.control_batches += 1;
            if !batch.has_producer_id() {
                continue;
            }
            // A transaction marker batch holds one control record.
            if let Some(Ok(record)) = RecordIter::new(&batch).next() {
                match control_type(record.key) {
                    Some(CONTROL_COMMIT) => f(Item::TxnMarker { producer_id: batch.producer_id(), commit: true }),
                    Some(CONTROL_ABORT) => f(Item::TxnMarker { producer_id: batch.producer_id(), commit: false }),
                    _ => {}
                }
            }
            continue;
        }
        let transactional_producer = batch.is_transactional().then(|| batch.producer_id());
        // Records are handed over only once the whole batch parsed, so a
        // malformed batch contributes nothing rather than a prefix.
        if RecordIter::new(&batch).any(|r| r.is_err()) {
            report.malformed_batches += 1;
            continue;
        }
        for record in RecordIter::new(&batch).flatten() {
            report.records += 1;
            f(Item::Record {
                offset: record.offset(&batch),
                key: record.key,
                value: record.value,
                transactional_producer,
            });
        }
    }
    report.valid_bytes = iter.valid_bytes();
    report.garbage_bytes = data[report.valid_bytes..].iter().filter(|&&b| b != 0).count();
    report
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::records::{update_crc, BatchBuilder};
    use crate::types::TimestampMs;

    /// A record's key and value.
    pub(crate) type KeyValue<'a> = (Option<&'a [u8]>, Option<&'a [u8]>);

    /// An uncompressed batch at `base` with `(key, value)` records.
    pub(crate) fn batch(base: i64, records: &[KeyValue<'_>]) -> Vec<u8> {
        let mut b = BatchBuilder::new(base, TimestampMs(1_000));
        for (k, v) in records {
            b.append(TimestampMs(1_000), *k, *v, &[]);
        }
        b.build()
    }

    /// A transactional batch of producer `pid`.
    pub(crate) fn txn_batch(base: i64, pid: i64, records: &[KeyValue<'_>]) -> Vec<u8> {
        let mut b = BatchBuilder::new(base, TimestampMs(1_000));
        b.producer(pid, 0, 0).transactional(true);
        for (k, v) in records {
            b.append(TimestampMs(1_000), *k, *v, &[]);
        }
        b.build()
    }

    /// A control batch: a transaction marker of `pid` (type 0 abort, 1
    /// commit), or with `pid` -1 a KRaft control record (e.g. 3, a
    /// snapshot header).
    pub(crate) fn control_batch(base: i64, pid: i64, control_type: i16) -> Vec<u8> {
        let mut b = BatchBuilder::new(base, TimestampMs(1_000));
        if pid >= 0 {
            b.producer(pid, 0, -1).transactional(true);
        }
        b.control(true);
        let key = [0, 0, (control_type >> 8) as u8, control_type as u8];
        b.append(TimestampMs(1_000), Some(&key), Some(&[0, 0, 0, 0, 0, 0]), &[]);
        b.build()
    }

    /// Marks a batch compressed with `codec` (its records are then opaque).
    pub(crate) fn compressed(mut batch: Vec<u8>, codec: u8) -> Vec<u8> {
        // Attributes are at byte 21 (low byte at 22).
        batch[22] = (batch[22] & !0x07) | codec;
        update_crc(&mut batch).unwrap();
        batch
    }

    fn collect(data: &[u8]) -> (Vec<String>, WalkReport) {
        let mut out = Vec::new();
        let report = walk(data, |item| {
            out.push(match item {
                Item::Record { offset, value, transactional_producer, .. } => {
                    format!("{}:{:?}:{:?}", offset.0, value.map(|v| v.len()), transactional_producer)
                }
                Item::TxnMarker { producer_id, commit } => format!("marker {producer_id} {commit}"),
            })
        });
        (out, report)
    }

    #[test]
    fn records_markers_compressed_and_torn_tails() {
        let mut data = batch(0, &[(None, Some(b"a")), (None, None)]);
        data.extend(control_batch(2, -1, 3));
        data.extend(compressed(batch(3, &[(None, Some(b"zz"))]), 4));
        data.extend(txn_batch(4, 9, &[(Some(b"k"), Some(b"xyz"))]));
        data.extend(control_batch(5, 9, 1));
        let valid = data.len();
        data.extend([0u8; 40]);
        let (items, report) = collect(&data);
        assert_eq!(items, ["0:Some(1):None", "1:None:None", "4:Some(3):Some(9)", "marker 9 true"]);
        assert_eq!(report.batches, 5);
        assert_eq!(report.control_batches, 2);
        assert_eq!(report.compressed_batches, 1);
        assert_eq!(report.compressed_codecs, ["zstd"]);
        assert_eq!((report.valid_bytes, report.garbage_bytes), (valid, 0));

        // A torn last batch: everything before it, and the tail is garbage.
        let cut = &data[..valid - 3];
        let (items, report) = collect(cut);
        assert_eq!(items.len(), 3);
        assert!(report.garbage_bytes > 0);
        // A flipped byte fails the CRC and stops the walk there.
        let mut bad = data.clone();
        bad[30] ^= 1;
        assert_eq!(collect(&bad).0, Vec::<String>::new());
    }

    #[test]
    fn garbage_never_panics() {
        let mut seed = 11u64;
        let good = batch(0, &[(Some(b"k"), Some(b"v"))]);
        for n in 0..300 {
            let mut data: Vec<u8> = (0..n).map(|_| crate::protocol::sample::next(&mut seed) as u8).collect();
            if n % 3 == 0 {
                data.splice(0..0, good.iter().copied());
            }
            let report = walk(&data, |_| {});
            assert!(report.valid_bytes <= data.len());
        }
    }
}
