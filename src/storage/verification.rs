//! Kafka's `VerificationGuard` (KIP-890): closes the window between the
//! transaction coordinator saying "this partition is in the producer's
//! ongoing transaction" and the batch reaching the log.
//!
//! Produce asks the coordinator (AddPartitionsToTxn `verify_only`, or the
//! implicit add of transaction version 2) without the partition lock held,
//! then appends under it. If the transaction ends in between, its marker
//! is written first and the late batch would open a transaction no one
//! ends (a hanging transaction: the last stable offset stuck until the
//! transaction timeout of a producer that has moved on). So before asking,
//! the partition hands out a guard for the producer; writing a marker for
//! the producer forgets it; and a transactional batch that would *start* a
//! transaction in this partition is appended only with the guard still
//! there. A batch continuing an open transaction needs no guard: the
//! marker has not been written.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};

use crate::types::TimestampMs;

/// Guards kept per partition: one per producer between its verification
/// and its transaction's marker, so bounded by open transactions. Past the
/// bound the oldest guard is dropped (that producer's next transactional
/// batch is refused as unverified and retried after an abort, never
/// written unverified).
pub const MAX_GUARDS_PER_PARTITION: usize = 100_000;

/// One verification, unique broker-wide (never 0).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct VerificationGuard(u64);

impl VerificationGuard {
    fn next() -> VerificationGuard {
        static NEXT: AtomicU64 = AtomicU64::new(1);
        VerificationGuard(NEXT.fetch_add(1, Ordering::Relaxed))
    }
}

#[derive(Clone, Copy, Debug)]
struct Entry {
    guard: VerificationGuard,
    producer_epoch: i16,
    created: TimestampMs,
}

/// The live guards of one partition, by producer id (Kafka's
/// `VerificationStateEntry` in `ProducerStateManager`).
#[derive(Debug, Default)]
pub struct Verifications {
    by_producer: HashMap<i64, Entry>,
}

impl Verifications {
    /// The guard for a verification of `producer_id` at `producer_epoch`:
    /// the live one when there is one for this epoch (pipelined produce
    /// requests of one transaction share it, as in Kafka's
    /// `maybeCreateVerificationStateEntry`), else a new one.
    pub fn begin(&mut self, producer_id: i64, producer_epoch: i16, now: TimestampMs) -> VerificationGuard {
        if let Some(e) = self.by_producer.get(&producer_id) {
            if e.producer_epoch == producer_epoch {
                return e.guard;
            }
        }
        if self.by_producer.len() >= MAX_GUARDS_PER_PARTITION && !self.by_producer.contains_key(&producer_id) {
            if let Some(oldest) = self.by_producer.iter().min_by_key(|(_, e)| e.created.0).map(|(pid, _)| *pid) {
                self.by_producer.remove(&oldest);
            }
        }
        let guard = VerificationGuard::next();
        self.by_producer.insert(producer_id, Entry { guard, producer_epoch, created: now });
        debug_assert!(self.by_producer.len() <= MAX_GUARDS_PER_PARTITION);
        guard
    }

    /// Whether `guard` is still the live guard of `producer_id`.
    pub fn holds(&self, producer_id: i64, guard: VerificationGuard) -> bool {
        self.by_producer.get(&producer_id).is_some_and(|e| e.guard == guard)
    }

    /// A marker for `producer_id` was written: its transaction here ended.
    pub fn end(&mut self, producer_id: i64) {
        self.by_producer.remove(&producer_id);
    }

    /// Forgets guards older than `expiration_ms` (producers that verified
    /// and never came back; `transactional.id.expiration.ms` and
    /// `producer.id.expiration.ms` bound a transaction's life long before).
    pub fn expire(&mut self, now: TimestampMs, expiration_ms: i64) {
        self.by_producer.retain(|_, e| now.0.saturating_sub(e.created.0) < expiration_ms);
    }

    pub fn len(&self) -> usize {
        self.by_producer.len()
    }

    pub fn is_empty(&self) -> bool {
        self.by_producer.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_guard_per_producer_epoch_until_its_marker() {
        let mut v = Verifications::default();
        let now = TimestampMs(1_000);
        let g = v.begin(7, 0, now);
        assert_eq!(v.begin(7, 0, now), g, "pipelined requests share the guard");
        assert!(v.holds(7, g));
        assert!(!v.holds(8, g));
        v.end(7);
        assert!(!v.holds(7, g), "a marker ends the guard");
        let g2 = v.begin(7, 0, now);
        assert_ne!(g2, g);
        let g3 = v.begin(7, 1, now);
        assert_ne!(g3, g2, "a new epoch is a new verification");
        assert!(!v.holds(7, g2));
    }

    #[test]
    fn expiry_and_the_bound() {
        let mut v = Verifications::default();
        let g = v.begin(1, 0, TimestampMs(0));
        v.expire(TimestampMs(10), 100);
        assert!(v.holds(1, g));
        v.expire(TimestampMs(100), 100);
        assert!(v.is_empty());
        for pid in 0..MAX_GUARDS_PER_PARTITION as i64 {
            v.begin(pid, 0, TimestampMs(pid));
        }
        assert_eq!(v.len(), MAX_GUARDS_PER_PARTITION);
        v.begin(-5, 0, TimestampMs(i64::MAX));
        assert_eq!(v.len(), MAX_GUARDS_PER_PARTITION);
        assert!(v.by_producer.get(&0).is_none(), "the oldest went");
    }
}
