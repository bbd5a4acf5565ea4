//! The transaction coordinator: every transactional id's metadata behind
//! one mutex, each change written to the transaction log (fsynced) before
//! it is installed, so what a client is told is what a restart finds.
//!
//! Every method may block (fsync, producer-id allocation through the
//! controller): call them from `spawn_blocking`. Ending a transaction is
//! two steps: [`TransactionCoordinator::end_txn`] persists the Prepare
//! state and returns the [`Completion`] owed; the caller writes the
//! markers and settles the group offsets, then calls
//! [`TransactionCoordinator::complete`]. While a completion is owed the id
//! answers CONCURRENT_TRANSACTIONS; completions left owed by a crash or a
//! failed marker write are retried from [`TransactionCoordinator::owed`].

use std::collections::HashMap;
use std::path::Path;
use std::sync::{Mutex, MutexGuard};

use super::log::{TransactionLog, TxnLogError, TxnRecord, MAX_TRANSACTIONAL_IDS};
use super::state::{self, Completion, EndTransition, InitTransition, TransactionMetadata, TransactionState};
use crate::protocol::ErrorCode;
use crate::types::{TimestampMs, TopicPartition};

/// What InitProducerId answers.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum InitResult {
    Ready { producer_id: i64, producer_epoch: i16 },
    /// An ongoing transaction was fenced: complete this abort, then answer
    /// CONCURRENT_TRANSACTIONS (the client retries and gets a new epoch).
    Fenced(Completion),
}

struct Inner {
    txns: HashMap<String, TransactionMetadata>,
    log: TransactionLog,
}

pub struct TransactionCoordinator {
    inner: Mutex<Inner>,
    /// `transaction.max.timeout.ms`.
    max_timeout_ms: i32,
}

impl std::fmt::Debug for TransactionCoordinator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TransactionCoordinator").field("max_timeout_ms", &self.max_timeout_ms).finish()
    }
}

impl TransactionCoordinator {
    /// Opens the transaction log in `dir` (blocking).
    pub fn open(dir: &Path, max_timeout_ms: i32) -> Result<TransactionCoordinator, TxnLogError> {
        let (log, txns) = TransactionLog::open(dir)?;
        let owed = txns.values().filter(|m| m.completion().is_some()).count();
        if owed > 0 {
            tracing::info!(transactions = owed, "transactions were ending when the broker stopped; finishing them");
        }
        Ok(TransactionCoordinator { inner: Mutex::new(Inner { txns, log }), max_timeout_ms })
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Makes `next` durable, then installs it.
    fn persist(inner: &mut Inner, next: TransactionMetadata) -> Result<(), ErrorCode> {
        if let Err(e) = inner.log.append(&[TxnRecord::Metadata(next.clone())]) {
            tracing::warn!(transactional_id = %next.transactional_id, error = %e, "transaction state not written");
            return Err(ErrorCode::CoordinatorNotAvailable);
        }
        inner.txns.insert(next.transactional_id.clone(), next);
        let Inner { txns, log } = inner;
        if let Err(e) = log.maybe_compact(txns) {
            tracing::warn!(error = %e, "compacting the transaction log failed");
        }
        Ok(())
    }

    /// The metadata of one id.
    pub fn describe(&self, transactional_id: &str) -> Option<TransactionMetadata> {
        self.lock().txns.get(transactional_id).cloned()
    }

    /// The ids whose metadata `keep` accepts (ListTransactions), with
    /// their producer id and state, ascending by id. Bounded by
    /// `MAX_TRANSACTIONAL_IDS`.
    pub fn list(&self, keep: &dyn Fn(&TransactionMetadata) -> bool) -> Vec<(String, i64, TransactionState)> {
        let inner = self.lock();
        let mut out: Vec<(String, i64, TransactionState)> = inner
            .txns
            .values()
            .filter(|m| keep(m))
            .map(|m| (m.transactional_id.clone(), m.producer_id, m.state))
            .collect();
        drop(inner);
        out.sort_by(|a, b| a.0.cmp(&b.0));
        out
    }

    /// Kafka's `handleInitProducerId` for a transactional id.
    /// `allocate_producer_id` is called (under the lock) when a producer
    /// id is needed.
    pub fn init_producer_id(
        &self,
        transactional_id: &str,
        timeout_ms: i32,
        expected: Option<(i64, i16)>,
        allocate_producer_id: &mut dyn FnMut() -> Result<i64, ErrorCode>,
        now: TimestampMs,
    ) -> Result<InitResult, ErrorCode> {
        if transactional_id.is_empty() {
            return Err(ErrorCode::InvalidRequest);
        }
        if timeout_ms <= 0 || timeout_ms > self.max_timeout_ms {
            return Err(ErrorCode::InvalidTransactionTimeout);
        }
        let mut inner = self.lock();
        let current = match inner.txns.get(transactional_id) {
            Some(m) => m.clone(),
            None => {
                if inner.txns.len() >= MAX_TRANSACTIONAL_IDS {
                    tracing::warn!(limit = MAX_TRANSACTIONAL_IDS, "too many transactional ids; refusing a new one");
                    return Err(ErrorCode::CoordinatorNotAvailable);
                }
                TransactionMetadata::new(transactional_id, allocate_producer_id()?, timeout_ms, now)
            }
        };
        match state::init_producer_id(&current, timeout_ms, expected, now)? {
            InitTransition::Ready { next, needs_new_producer_id } => {
                let next = if needs_new_producer_id { state::with_new_producer_id(next, allocate_producer_id()?) } else { next };
                let answer = InitResult::Ready { producer_id: next.producer_id, producer_epoch: next.producer_epoch };
                Self::persist(&mut inner, next)?;
                Ok(answer)
            }
            InitTransition::Fence { next } => {
                let completion = next.completion().ok_or(ErrorCode::UnknownServerError)?;
                Self::persist(&mut inner, next)?;
                Ok(InitResult::Fenced(completion))
            }
        }
    }

    fn existing(inner: &Inner, transactional_id: &str) -> Result<TransactionMetadata, ErrorCode> {
        if transactional_id.is_empty() {
            return Err(ErrorCode::InvalidRequest);
        }
        inner.txns.get(transactional_id).cloned().ok_or(ErrorCode::InvalidProducerIdMapping)
    }

    /// AddPartitionsToTxn (client form).
    pub fn add_partitions(
        &self,
        transactional_id: &str,
        producer_id: i64,
        producer_epoch: i16,
        partitions: &[TopicPartition],
        now: TimestampMs,
    ) -> Result<(), ErrorCode> {
        let mut inner = self.lock();
        let current = Self::existing(&inner, transactional_id)?;
        match state::add_to_transaction(&current, producer_id, producer_epoch, partitions, None, now)? {
            Some(next) => Self::persist(&mut inner, next),
            None => Ok(()),
        }
    }

    /// AddOffsetsToTxn: the group's offsets become part of the transaction.
    pub fn add_offsets(
        &self,
        transactional_id: &str,
        producer_id: i64,
        producer_epoch: i16,
        group_id: &str,
        now: TimestampMs,
    ) -> Result<(), ErrorCode> {
        let mut inner = self.lock();
        let current = Self::existing(&inner, transactional_id)?;
        match state::add_to_transaction(&current, producer_id, producer_epoch, &[], Some(group_id), now)? {
            Some(next) => Self::persist(&mut inner, next),
            None => Ok(()),
        }
    }

    /// TxnOffsetCommit's check: the producer is current and the group was
    /// added to its ongoing transaction.
    pub fn check_offset_commit(
        &self,
        transactional_id: &str,
        producer_id: i64,
        producer_epoch: i16,
        group_id: &str,
    ) -> Result<(), ErrorCode> {
        let inner = self.lock();
        let current = Self::existing(&inner, transactional_id)?;
        current.check_producer(producer_id, producer_epoch)?;
        if current.state != TransactionState::Ongoing || !current.groups.contains(group_id) {
            return Err(ErrorCode::InvalidTxnState);
        }
        Ok(())
    }

    /// EndTxn from a client; `bump_epoch` for transaction version 2
    /// (see [`state::end_transaction`]). Returns the completion owed
    /// (`None`: already ended this way) and the producer id and epoch the
    /// client goes on with.
    pub fn end_txn(
        &self,
        transactional_id: &str,
        producer_id: i64,
        producer_epoch: i16,
        commit: bool,
        bump_epoch: bool,
        now: TimestampMs,
    ) -> Result<(Option<Completion>, i64, i16), ErrorCode> {
        let mut inner = self.lock();
        let current = Self::existing(&inner, transactional_id)?;
        match state::end_transaction(&current, producer_id, producer_epoch, commit, bump_epoch, now)? {
            EndTransition::AlreadyDone => Ok((None, current.producer_id, current.producer_epoch)),
            EndTransition::Prepare { next } => {
                let completion = next.completion().ok_or(ErrorCode::UnknownServerError)?;
                let (id, epoch) = (next.producer_id, next.producer_epoch);
                Self::persist(&mut inner, next)?;
                Ok((Some(completion), id, epoch))
            }
        }
    }

    /// Kafka's `handleVerifyPartitionsInTransaction` (AddPartitionsToTxn
    /// v4+ with `verify_only`, and produce verification for clients on
    /// transaction version 1, `transaction.partition.verification.enable`):
    /// per partition NONE when the ongoing transaction has it, else
    /// TRANSACTION_ABORTABLE; CONCURRENT_TRANSACTIONS while it ends.
    pub fn verify_partitions(
        &self,
        transactional_id: &str,
        producer_id: i64,
        producer_epoch: i16,
        partitions: &[TopicPartition],
    ) -> Result<Vec<ErrorCode>, ErrorCode> {
        let inner = self.lock();
        let current = Self::existing(&inner, transactional_id)?;
        current.check_producer(producer_id, producer_epoch)?;
        if matches!(current.state, TransactionState::PrepareCommit | TransactionState::PrepareAbort) {
            return Err(ErrorCode::ConcurrentTransactions);
        }
        Ok(partitions
            .iter()
            .map(|tp| if current.partitions.contains(tp) { ErrorCode::None } else { ErrorCode::TransactionAbortable })
            .collect())
    }

    /// Records that `c`'s markers are written and its offsets settled.
    pub fn complete(&self, c: &Completion, now: TimestampMs) -> Result<(), ErrorCode> {
        let mut inner = self.lock();
        let Some(current) = inner.txns.get(&c.transactional_id).cloned() else {
            return Err(ErrorCode::InvalidProducerIdMapping);
        };
        if current.producer_id != c.producer_id || current.producer_epoch != c.producer_epoch || current.completion().as_ref() != Some(c) {
            // Someone else completed it already.
            return Ok(());
        }
        match state::complete(&current, now) {
            Some(next) => Self::persist(&mut inner, next),
            None => Ok(()),
        }
    }

    /// Completions owed (Prepare states): after a restart or a failed
    /// marker write.
    pub fn owed(&self) -> Vec<Completion> {
        self.lock().txns.values().filter_map(TransactionMetadata::completion).collect()
    }

    /// Fences and aborts ongoing transactions past their timeout; returns
    /// the completions to run.
    pub fn abort_timed_out(&self, now: TimestampMs) -> Vec<Completion> {
        let mut inner = self.lock();
        let due: Vec<TransactionMetadata> = inner.txns.values().filter_map(|m| state::abort_timed_out(m, now)).collect();
        let mut out = Vec::new();
        for next in due {
            tracing::info!(transactional_id = %next.transactional_id, "aborting a transaction past its timeout");
            let completion = next.completion();
            if Self::persist(&mut inner, next).is_ok() {
                out.extend(completion);
            }
        }
        out
    }

    /// Forgets ids idle past `transactional.id.expiration.ms` (Dead: a
    /// tombstone in the log). Returns how many.
    pub fn expire(&self, now: TimestampMs, expiration_ms: i64) -> usize {
        let mut inner = self.lock();
        let expired: Vec<String> =
            inner.txns.values().filter(|m| state::is_expired(m, now, expiration_ms)).map(|m| m.transactional_id.clone()).collect();
        let mut n = 0;
        for id in expired {
            if inner.log.append(&[TxnRecord::Tombstone { transactional_id: id.clone() }]).is_ok() {
                inner.txns.remove(&id);
                n += 1;
            }
        }
        n
    }

    /// How many ids are in each state now (for `/metrics`).
    pub fn count_by_state(&self) -> Vec<(TransactionState, usize)> {
        let inner = self.lock();
        let mut counts: Vec<(TransactionState, usize)> = Vec::new();
        for m in inner.txns.values() {
            match counts.iter_mut().find(|(s, _)| *s == m.state) {
                Some((_, n)) => *n += 1,
                None => counts.push((m.state, 1)),
            }
        }
        drop(inner);
        counts.sort_by_key(|(s, _)| s.id());
        counts
    }

    pub fn len(&self) -> usize {
        self.lock().txns.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: TimestampMs = TimestampMs(10_000);

    fn open(dir: &Path) -> TransactionCoordinator {
        TransactionCoordinator::open(dir, 900_000).unwrap()
    }

    fn counter() -> impl FnMut() -> Result<i64, ErrorCode> {
        let mut next = 1000;
        move || {
            next += 1;
            Ok(next)
        }
    }

    fn tp(p: i32) -> TopicPartition {
        TopicPartition::new("t", p)
    }

    #[test]
    fn timeout_and_id_validation() {
        let dir = tempfile::tempdir().unwrap();
        let c = open(dir.path());
        let mut alloc = counter();
        assert_eq!(c.init_producer_id("x", 0, None, &mut alloc, NOW), Err(ErrorCode::InvalidTransactionTimeout));
        assert_eq!(c.init_producer_id("x", 900_001, None, &mut alloc, NOW), Err(ErrorCode::InvalidTransactionTimeout));
        assert_eq!(c.init_producer_id("", 1000, None, &mut alloc, NOW), Err(ErrorCode::InvalidRequest));
        assert_eq!(c.add_partitions("nope", 1, 0, &[tp(0)], NOW), Err(ErrorCode::InvalidProducerIdMapping));
        assert_eq!(c.end_txn("nope", 1, 0, true, false, NOW), Err(ErrorCode::InvalidProducerIdMapping));
        assert!(c.is_empty());
    }

    #[test]
    fn full_cycle_fencing_and_restart() {
        let dir = tempfile::tempdir().unwrap();
        let c = open(dir.path());
        let mut alloc = counter();
        let r = c.init_producer_id("x", 60_000, None, &mut alloc, NOW).unwrap();
        assert_eq!(r, InitResult::Ready { producer_id: 1001, producer_epoch: 0 });
        c.add_partitions("x", 1001, 0, &[tp(0), tp(1)], NOW).unwrap();
        c.add_offsets("x", 1001, 0, "g", NOW).unwrap();
        c.check_offset_commit("x", 1001, 0, "g").unwrap();
        assert_eq!(c.check_offset_commit("x", 1001, 0, "other"), Err(ErrorCode::InvalidTxnState));
        assert_eq!(
            c.verify_partitions("x", 1001, 0, &[tp(1), tp(5)]),
            Ok(vec![ErrorCode::None, ErrorCode::TransactionAbortable])
        );
        assert_eq!(c.verify_partitions("x", 1001, 1, &[tp(1)]), Err(ErrorCode::ProducerFenced));
        let done = c.end_txn("x", 1001, 0, true, false, NOW).unwrap().0.unwrap();
        assert!(done.commit);
        assert_eq!(done.partitions, vec![tp(0), tp(1)]);
        assert_eq!(done.groups, vec!["g".to_string()]);
        assert_eq!(c.add_partitions("x", 1001, 0, &[tp(0)], NOW), Err(ErrorCode::ConcurrentTransactions));
        assert_eq!(c.owed(), vec![done.clone()]);
        c.complete(&done, NOW).unwrap();
        assert!(c.owed().is_empty());
        assert_eq!(c.end_txn("x", 1001, 0, true, false, NOW), Ok((None, 1001, 0)));
        // A second producer fences the first's open transaction.
        c.add_partitions("x", 1001, 0, &[tp(2)], NOW).unwrap();
        let InitResult::Fenced(abort) = c.init_producer_id("x", 60_000, None, &mut alloc, NOW).unwrap() else { panic!() };
        assert_eq!((abort.commit, abort.producer_epoch, abort.partitions.clone()), (false, 1, vec![tp(2)]));
        assert_eq!(c.init_producer_id("x", 60_000, None, &mut alloc, NOW), Err(ErrorCode::ConcurrentTransactions));
        drop(c);
        // The owed abort survives a restart.
        let c = open(dir.path());
        assert_eq!(c.owed(), vec![abort.clone()]);
        c.complete(&abort, NOW).unwrap();
        let r = c.init_producer_id("x", 60_000, None, &mut alloc, NOW).unwrap();
        assert_eq!(r, InitResult::Ready { producer_id: 1001, producer_epoch: 2 });
        assert_eq!(c.add_partitions("x", 1001, 0, &[tp(0)], NOW), Err(ErrorCode::ProducerFenced));
        assert_eq!(c.end_txn("x", 1001, 1, false, false, NOW), Err(ErrorCode::ProducerFenced));
        assert_eq!(c.end_txn("x", 1001, 2, false, false, NOW), Err(ErrorCode::InvalidTxnState));
        drop(c);
        let c = open(dir.path());
        assert_eq!(c.describe("x").unwrap().producer_epoch, 2);
        assert_eq!(c.describe("x").unwrap().state, TransactionState::Empty);
    }

    #[test]
    fn transaction_version_2_ends_bump_the_epoch_durably() {
        let dir = tempfile::tempdir().unwrap();
        let c = open(dir.path());
        let mut alloc = counter();
        c.init_producer_id("x", 60_000, None, &mut alloc, NOW).unwrap();
        c.add_partitions("x", 1001, 0, &[tp(0)], NOW).unwrap();
        let (done, id, epoch) = c.end_txn("x", 1001, 0, true, true, NOW).unwrap();
        let done = done.unwrap();
        assert_eq!((id, epoch, done.producer_epoch), (1001, 1, 1));
        c.complete(&done, NOW).unwrap();
        // The lost answer's retry gets the bumped epoch again.
        assert_eq!(c.end_txn("x", 1001, 0, true, true, NOW), Ok((None, 1001, 1)));
        drop(c);
        let c = open(dir.path());
        let m = c.describe("x").unwrap();
        assert_eq!((m.state, m.producer_epoch), (TransactionState::CompleteCommit, 1));
        c.add_partitions("x", 1001, 1, &[tp(0)], NOW).unwrap();
        assert_eq!(c.end_txn("x", 1001, 1, false, true, NOW).unwrap().2, 2);
    }

    #[test]
    fn timeouts_abort_and_idle_ids_expire() {
        let dir = tempfile::tempdir().unwrap();
        let c = open(dir.path());
        let mut alloc = counter();
        c.init_producer_id("x", 1_000, None, &mut alloc, NOW).unwrap();
        c.add_partitions("x", 1001, 0, &[tp(0)], NOW).unwrap();
        assert!(c.abort_timed_out(TimestampMs(NOW.0 + 1_000)).is_empty());
        let aborts = c.abort_timed_out(TimestampMs(NOW.0 + 1_001));
        assert_eq!(aborts.len(), 1);
        assert_eq!(aborts[0].producer_epoch, 1);
        assert_eq!(c.end_txn("x", 1001, 0, true, false, NOW), Err(ErrorCode::ProducerFenced));
        assert_eq!(c.expire(TimestampMs(i64::MAX), 1), 0, "an owed completion keeps the id");
        c.complete(&aborts[0], NOW).unwrap();
        assert_eq!(c.expire(TimestampMs(NOW.0 + 5), 1_000_000), 0);
        assert_eq!(c.expire(TimestampMs(i64::MAX), 1), 1);
        drop(c);
        assert!(open(dir.path()).describe("x").is_none());
    }
}
