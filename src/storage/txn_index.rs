//! Transactions as one partition sees them (Kafka's ongoing-transaction
//! tracking in `ProducerStateManager` plus its `.txnindex`): the first
//! offset of every producer's open transaction, which bounds the last
//! stable offset (LSO), and the aborted transactions (producer id, first
//! and last offset) a READ_COMMITTED fetch must be told about.
//!
//! Built from batch headers: a transactional data batch opens its
//! producer's transaction (if not open), a control batch (COMMIT/ABORT
//! marker) closes it, recording it as aborted for an ABORT. The state is
//! rebuilt at open from the log's batches, so it is exactly what the log
//! says, however the broker stopped.

use std::collections::{BTreeMap, HashMap};

use crate::records::RecordBatch;
use crate::types::Offset;

/// Aborted transactions kept per partition; the oldest are forgotten
/// beyond this (their data is normally long gone by retention).
pub const MAX_ABORTED_TXNS: usize = 100_000;

/// Control record types (the key's second i16).
pub const CONTROL_TYPE_ABORT: i16 = 0;
pub const CONTROL_TYPE_COMMIT: i16 = 1;

/// One aborted transaction (Kafka's `AbortedTxn`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AbortedTxn {
    pub producer_id: i64,
    pub first_offset: Offset,
    /// The offset of the ABORT marker.
    pub last_offset: Offset,
}

/// The transaction state of one partition.
#[derive(Clone, Debug, Default)]
pub struct TxnIndex {
    /// Producer id -> first offset of its open transaction.
    ongoing: HashMap<i64, Offset>,
    /// First offsets of open transactions, with how many start there.
    ongoing_firsts: BTreeMap<Offset, usize>,
    /// Ordered by last offset (markers are appended in offset order).
    aborted: Vec<AbortedTxn>,
}

/// What a control batch's single record says: `Some(true)` commit,
/// `Some(false)` abort, `None` when it is not a transaction marker.
pub fn marker_kind(batch: &RecordBatch<'_>) -> Option<bool> {
    let record = crate::records::RecordIter::new(batch).next()?.ok()?;
    let key = record.key?;
    if key.len() < 4 {
        return None;
    }
    match i16::from_be_bytes([key[2], key[3]]) {
        CONTROL_TYPE_ABORT => Some(false),
        CONTROL_TYPE_COMMIT => Some(true),
        _ => None,
    }
}

/// The coordinator epoch a marker's value carries (version i16, then
/// the epoch i32), or `None` when the batch is not a marker.
pub fn marker_coordinator_epoch(batch: &RecordBatch<'_>) -> Option<i32> {
    let record = crate::records::RecordIter::new(batch).next()?.ok()?;
    let value = record.value?;
    let epoch: [u8; 4] = value.get(2..6)?.try_into().ok()?;
    Some(i32::from_be_bytes(epoch))
}

impl TxnIndex {
    pub fn new() -> TxnIndex {
        TxnIndex::default()
    }

    /// A transactional data batch of `producer_id` starting at `first`.
    pub fn on_data(&mut self, producer_id: i64, first: Offset) {
        if let std::collections::hash_map::Entry::Vacant(e) = self.ongoing.entry(producer_id) {
            e.insert(first);
            *self.ongoing_firsts.entry(first).or_insert(0) += 1;
        }
    }

    /// A marker of `producer_id` at `offset`.
    pub fn on_marker(&mut self, producer_id: i64, offset: Offset, commit: bool) {
        let Some(first) = self.ongoing.remove(&producer_id) else {
            return;
        };
        if let Some(n) = self.ongoing_firsts.get_mut(&first) {
            *n -= 1;
            if *n == 0 {
                self.ongoing_firsts.remove(&first);
            }
        }
        if !commit {
            if self.aborted.len() >= MAX_ABORTED_TXNS {
                self.aborted.remove(0);
            }
            self.aborted.push(AbortedTxn { producer_id, first_offset: first, last_offset: offset });
        }
    }

    /// Applies a batch read back from the log (recovery).
    pub fn replay(&mut self, batch: &RecordBatch<'_>) {
        if !batch.is_transactional() || !batch.has_producer_id() {
            return;
        }
        if batch.is_control() {
            if let Some(commit) = marker_kind(batch) {
                self.on_marker(batch.producer_id(), batch.base_offset(), commit);
            }
        } else {
            self.on_data(batch.producer_id(), batch.base_offset());
        }
    }

    /// The last stable offset: the first offset of the oldest open
    /// transaction, or `high_watermark` when none is open.
    pub fn last_stable_offset(&self, high_watermark: Offset) -> Offset {
        self.ongoing_firsts.keys().next().map_or(high_watermark, |o| (*o).min(high_watermark))
    }

    /// Aborted transactions overlapping `[start, end)` (Kafka's
    /// `collectAbortedTransactions`).
    pub fn aborted_in(&self, start: Offset, end: Offset) -> Vec<AbortedTxn> {
        let from = self.aborted.partition_point(|a| a.last_offset < start);
        self.aborted[from..].iter().filter(|a| a.first_offset < end).copied().collect()
    }

    /// Forgets aborted transactions wholly below the log start.
    pub fn truncate_before(&mut self, log_start: Offset) {
        let n = self.aborted.partition_point(|a| a.last_offset < log_start);
        self.aborted.drain(..n);
    }

    /// Forgets the aborted transactions whose ABORT markers are at these
    /// (producer id, offset): the log cleaner removed every batch of them,
    /// and may remove the marker, so a READ_COMMITTED fetch must no longer
    /// be told of them (Kafka rebuilds a cleaned segment's `.txnindex`
    /// with the retained ones only).
    pub fn forget_aborted(&mut self, markers: &[(i64, Offset)]) {
        if markers.is_empty() {
            return;
        }
        let gone: std::collections::HashSet<(i64, Offset)> = markers.iter().copied().collect();
        self.aborted.retain(|a| !gone.contains(&(a.producer_id, a.last_offset)));
    }

    pub fn ongoing_count(&self) -> usize {
        self.ongoing.len()
    }

    /// First offset of `producer_id`'s open transaction.
    pub fn ongoing_first_offset(&self, producer_id: i64) -> Option<Offset> {
        self.ongoing.get(&producer_id).copied()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lso_and_aborted_ranges() {
        let mut t = TxnIndex::new();
        assert_eq!(t.last_stable_offset(Offset(10)), Offset(10));
        t.on_data(1, Offset(3));
        t.on_data(1, Offset(5));
        t.on_data(2, Offset(4));
        assert_eq!(t.last_stable_offset(Offset(10)), Offset(3));
        t.on_marker(1, Offset(6), false);
        assert_eq!(t.last_stable_offset(Offset(10)), Offset(4));
        t.on_marker(2, Offset(7), true);
        assert_eq!(t.last_stable_offset(Offset(10)), Offset(10));
        assert_eq!(t.ongoing_count(), 0);
        let a = AbortedTxn { producer_id: 1, first_offset: Offset(3), last_offset: Offset(6) };
        assert_eq!(t.aborted_in(Offset(0), Offset(10)), vec![a]);
        assert_eq!(t.aborted_in(Offset(6), Offset(10)), vec![a]);
        assert!(t.aborted_in(Offset(7), Offset(10)).is_empty());
        assert!(t.aborted_in(Offset(0), Offset(3)).is_empty());
        // A marker without an open transaction changes nothing.
        t.on_marker(9, Offset(8), false);
        assert_eq!(t.aborted_in(Offset(0), Offset(100)).len(), 1);
        t.forget_aborted(&[(1, Offset(5))]);
        assert_eq!(t.aborted_in(Offset(0), Offset(100)), vec![a], "not that marker");
        t.forget_aborted(&[(1, Offset(6))]);
        assert!(t.aborted_in(Offset(0), Offset(100)).is_empty());
        t.on_data(1, Offset(9));
        t.on_marker(1, Offset(10), false);
        t.truncate_before(Offset(11));
        assert!(t.aborted_in(Offset(0), Offset(100)).is_empty());
    }
}
