//! The state of one transactional id (Kafka's `TransactionMetadata` and
//! `TransactionState`) and its transitions, as pure functions: each
//! request handler computes the next metadata here, the coordinator makes
//! it durable and only then installs it.
//!
//! State machine (transaction version 1, Kafka's `TransactionState`):
//!
//! ```text
//!            InitProducerId                 AddPartitions/AddOffsets
//!  (none) ─────────────────► Empty ───────────────────────────────► Ongoing ──┐
//!                              ▲  ▲                                  │   ▲     │ AddPartitions
//!                              │  │ InitProducerId       EndTxn      │   └─────┘
//!                              │  │ (epoch + 1)    commit │  abort   │ InitProducerId / timeout
//!          CompleteCommit ◄────┼──┴── CompleteAbort      ▼   ▼       ▼ (PrepareEpochFence: epoch + 1)
//!                ▲   │ Add…    │            ▲     PrepareCommit  PrepareAbort
//!                │   └─────────┼──► Ongoing │           │            │
//!                └─────────────┼────────────┼───────────┘ markers    │ markers
//!                              │            └────────────────────────┘ written
//!                         Dead (expired: transactional.id.expiration.ms)
//! ```
//!
//! Transaction version 2 (KIP-890, EndTxn v5+) follows the same states;
//! EndTxn's move to a Prepare state also bumps the epoch (the markers and
//! the client's next transaction use the bumped one), and Produce v12+ /
//! TxnOffsetCommit v5 take the Add… edges themselves.
//!
//! `PrepareEpochFence` is transient: fencing an ongoing transaction bumps
//! the epoch and goes straight to `PrepareAbort` in the same durable
//! record, so it is never written to the transaction log. `Dead` is a
//! tombstone: the id is forgotten.

use std::collections::BTreeSet;

use crate::protocol::ErrorCode;
use crate::records::NO_PRODUCER_EPOCH;
use crate::types::{TimestampMs, TopicPartition};

/// No producer id (Kafka's `RecordBatch.NO_PRODUCER_ID`).
pub const NO_PRODUCER_ID: i64 = -1;
/// Partitions one transaction may span (bounds what a client can make us
/// hold and write).
pub const MAX_PARTITIONS_PER_TXN: usize = 10_000;
/// Consumer groups one transaction may commit offsets for.
pub const MAX_GROUPS_PER_TXN: usize = 1_000;

/// Kafka's `TransactionState`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum TransactionState {
    /// A producer id and epoch, no transaction.
    Empty,
    /// Partitions or offsets have been added; not yet ended.
    Ongoing,
    /// EndTxn(commit) accepted; commit markers are being written.
    PrepareCommit,
    /// EndTxn(abort), a fence or a timeout; abort markers are being written.
    PrepareAbort,
    /// Commit markers written everywhere.
    CompleteCommit,
    /// Abort markers written everywhere.
    CompleteAbort,
    /// Transient: the epoch is being bumped to fence an ongoing
    /// transaction (never persisted; see the module doc).
    PrepareEpochFence,
    /// The transactional id expired and is being removed.
    Dead,
}

impl TransactionState {
    /// The id stored in the transaction log (Kafka's state ids).
    pub fn id(self) -> u8 {
        match self {
            TransactionState::Empty => 0,
            TransactionState::Ongoing => 1,
            TransactionState::PrepareCommit => 2,
            TransactionState::PrepareAbort => 3,
            TransactionState::CompleteCommit => 4,
            TransactionState::CompleteAbort => 5,
            TransactionState::Dead => 6,
            TransactionState::PrepareEpochFence => 7,
        }
    }

    pub fn from_id(id: u8) -> Option<TransactionState> {
        Some(match id {
            0 => TransactionState::Empty,
            1 => TransactionState::Ongoing,
            2 => TransactionState::PrepareCommit,
            3 => TransactionState::PrepareAbort,
            4 => TransactionState::CompleteCommit,
            5 => TransactionState::CompleteAbort,
            6 => TransactionState::Dead,
            7 => TransactionState::PrepareEpochFence,
            _ => return None,
        })
    }

    /// Kafka's names (DescribeTransactions/ListTransactions use them).
    pub fn name(self) -> &'static str {
        match self {
            TransactionState::Empty => "Empty",
            TransactionState::Ongoing => "Ongoing",
            TransactionState::PrepareCommit => "PrepareCommit",
            TransactionState::PrepareAbort => "PrepareAbort",
            TransactionState::CompleteCommit => "CompleteCommit",
            TransactionState::CompleteAbort => "CompleteAbort",
            TransactionState::PrepareEpochFence => "PrepareEpochFence",
            TransactionState::Dead => "Dead",
        }
    }

    /// Every state, in id order.
    pub const ALL: [TransactionState; 8] = [
        TransactionState::Empty,
        TransactionState::Ongoing,
        TransactionState::PrepareCommit,
        TransactionState::PrepareAbort,
        TransactionState::CompleteCommit,
        TransactionState::CompleteAbort,
        TransactionState::Dead,
        TransactionState::PrepareEpochFence,
    ];

    /// The state Kafka names `name` (ListTransactions' state filters).
    pub fn from_name(name: &str) -> Option<TransactionState> {
        TransactionState::ALL.into_iter().find(|s| s.name() == name)
    }

    /// The transitions Kafka's `TransactionState.validPreviousStates` allows.
    pub fn can_follow(self, previous: TransactionState) -> bool {
        use TransactionState::*;
        match self {
            Empty => matches!(previous, Empty | CompleteCommit | CompleteAbort),
            Ongoing => matches!(previous, Ongoing | Empty | CompleteCommit | CompleteAbort),
            PrepareCommit => previous == Ongoing,
            PrepareAbort => matches!(previous, Ongoing | PrepareEpochFence),
            CompleteCommit => previous == PrepareCommit,
            CompleteAbort => previous == PrepareAbort,
            PrepareEpochFence => previous == Ongoing,
            Dead => matches!(previous, Empty | CompleteCommit | CompleteAbort),
        }
    }
}

/// Kafka's epoch-exhaustion rule: a new producer id is needed.
pub fn is_epoch_exhausted(epoch: i16) -> bool {
    epoch >= i16::MAX - 1
}

/// Everything the coordinator knows of one transactional id.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TransactionMetadata {
    pub transactional_id: String,
    pub producer_id: i64,
    /// The producer id before the last one (KIP-360 retries), or -1.
    pub prev_producer_id: i64,
    pub producer_epoch: i16,
    /// The epoch before the last bump (a retried InitProducerId gets the
    /// current epoch back), or -1.
    pub last_producer_epoch: i16,
    pub timeout_ms: i32,
    pub state: TransactionState,
    pub partitions: BTreeSet<TopicPartition>,
    /// Groups whose offsets this transaction commits (AddOffsetsToTxn).
    pub groups: BTreeSet<String>,
    /// When the current transaction began (-1 when none).
    pub txn_start_ms: TimestampMs,
    pub last_update_ms: TimestampMs,
}

/// What ending a transaction has to do: write markers to `partitions`,
/// settle the offsets of `groups`, then record the completion.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Completion {
    pub transactional_id: String,
    pub producer_id: i64,
    pub producer_epoch: i16,
    pub commit: bool,
    pub partitions: Vec<TopicPartition>,
    pub groups: Vec<String>,
}

impl TransactionMetadata {
    /// A new id with a fresh producer id; InitProducerId then bumps its
    /// epoch -1 to 0.
    pub fn new(transactional_id: &str, producer_id: i64, timeout_ms: i32, now: TimestampMs) -> TransactionMetadata {
        TransactionMetadata {
            transactional_id: transactional_id.to_string(),
            producer_id,
            prev_producer_id: NO_PRODUCER_ID,
            producer_epoch: NO_PRODUCER_EPOCH,
            last_producer_epoch: NO_PRODUCER_EPOCH,
            timeout_ms,
            state: TransactionState::Empty,
            partitions: BTreeSet::new(),
            groups: BTreeSet::new(),
            txn_start_ms: TimestampMs::NONE,
            last_update_ms: now,
        }
    }

    fn with_state(&self, state: TransactionState, now: TimestampMs) -> TransactionMetadata {
        debug_assert!(state.can_follow(self.state), "{:?} after {:?}", state, self.state);
        TransactionMetadata { state, last_update_ms: now, ..self.clone() }
    }

    /// The completion a Prepare state still owes.
    pub fn completion(&self) -> Option<Completion> {
        let commit = match self.state {
            TransactionState::PrepareCommit => true,
            TransactionState::PrepareAbort => false,
            _ => return None,
        };
        Some(Completion {
            transactional_id: self.transactional_id.clone(),
            producer_id: self.producer_id,
            producer_epoch: self.producer_epoch,
            commit,
            partitions: self.partitions.iter().cloned().collect(),
            groups: self.groups.iter().cloned().collect(),
        })
    }

    /// Kafka's `isValidProducerId` (KIP-360) for an InitProducerId that
    /// names the producer id and epoch it had.
    fn is_valid_expected(&self, expected_id: i64, expected_epoch: i16) -> bool {
        self.producer_epoch == NO_PRODUCER_EPOCH
            || expected_id == self.producer_id
            || (expected_id == self.prev_producer_id && is_epoch_exhausted(expected_epoch))
    }

    /// Checks a request's producer id and epoch (AddPartitions, AddOffsets,
    /// EndTxn from a client, TxnOffsetCommit).
    pub fn check_producer(&self, producer_id: i64, producer_epoch: i16) -> Result<(), ErrorCode> {
        if producer_id != self.producer_id {
            return Err(ErrorCode::InvalidProducerIdMapping);
        }
        if producer_epoch != self.producer_epoch {
            return Err(ErrorCode::ProducerFenced);
        }
        Ok(())
    }
}

/// What InitProducerId does to an existing id.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum InitTransition {
    /// The next metadata (state Empty) to persist, answering with its
    /// producer id and epoch. `needs_new_producer_id`: the epoch is
    /// exhausted; the caller allocates a producer id and calls
    /// [`with_new_producer_id`].
    Ready { next: TransactionMetadata, needs_new_producer_id: bool },
    /// An ongoing transaction must be aborted first, under a bumped epoch:
    /// persist `next` (PrepareAbort), complete it, and answer
    /// CONCURRENT_TRANSACTIONS (the client retries).
    Fence { next: TransactionMetadata },
}

/// Kafka's `TransactionCoordinator.handleInitProducerId` for an existing
/// id (timeout already validated).
pub fn init_producer_id(
    current: &TransactionMetadata,
    timeout_ms: i32,
    expected: Option<(i64, i16)>,
    now: TimestampMs,
) -> Result<InitTransition, ErrorCode> {
    use TransactionState::*;
    if let Some((id, epoch)) = expected {
        if !is_epoch_exhausted(current.producer_epoch) && !current.is_valid_expected(id, epoch) {
            return Err(ErrorCode::ProducerFenced);
        }
    }
    match current.state {
        PrepareCommit | PrepareAbort => Err(ErrorCode::ConcurrentTransactions),
        Ongoing => {
            // Fence: bump the epoch, abort under it (never returned to a
            // client: the retry bumps again).
            let mut fenced = current.with_state(PrepareEpochFence, now);
            fenced.last_producer_epoch = current.producer_epoch;
            fenced.producer_epoch = current.producer_epoch.saturating_add(1);
            let mut next = fenced.with_state(PrepareAbort, now);
            next.timeout_ms = current.timeout_ms;
            Ok(InitTransition::Fence { next })
        }
        Empty | CompleteCommit | CompleteAbort => {
            let mut next = current.with_state(Empty, now);
            next.timeout_ms = timeout_ms;
            next.partitions.clear();
            next.groups.clear();
            next.txn_start_ms = TimestampMs::NONE;
            if is_epoch_exhausted(current.producer_epoch) {
                return Ok(InitTransition::Ready { next, needs_new_producer_id: true });
            }
            match expected {
                Some((_, epoch)) if current.producer_epoch != NO_PRODUCER_EPOCH && epoch != current.producer_epoch => {
                    if epoch == current.last_producer_epoch {
                        // A retry of a bump whose answer was lost: the
                        // current epoch again.
                        Ok(InitTransition::Ready { next, needs_new_producer_id: false })
                    } else {
                        Err(ErrorCode::ProducerFenced)
                    }
                }
                _ => {
                    next.last_producer_epoch = current.producer_epoch;
                    next.producer_epoch = current.producer_epoch.saturating_add(1);
                    Ok(InitTransition::Ready { next, needs_new_producer_id: false })
                }
            }
        }
        PrepareEpochFence | Dead => Err(ErrorCode::UnknownServerError),
    }
}

/// Moves `next` (from an exhausted epoch) to a fresh producer id, epoch 0.
pub fn with_new_producer_id(mut next: TransactionMetadata, producer_id: i64) -> TransactionMetadata {
    next.prev_producer_id = next.producer_id;
    next.producer_id = producer_id;
    next.producer_epoch = 0;
    next.last_producer_epoch = NO_PRODUCER_EPOCH;
    next
}

/// Kafka's `handleAddPartitionsToTransaction` (also AddOffsetsToTxn, whose
/// group stands for its `__consumer_offsets` partition). `Ok(None)`: the
/// partitions are already in the ongoing transaction, nothing to write.
pub fn add_to_transaction(
    current: &TransactionMetadata,
    producer_id: i64,
    producer_epoch: i16,
    partitions: &[TopicPartition],
    group: Option<&str>,
    now: TimestampMs,
) -> Result<Option<TransactionMetadata>, ErrorCode> {
    use TransactionState::*;
    current.check_producer(producer_id, producer_epoch)?;
    match current.state {
        PrepareCommit | PrepareAbort => return Err(ErrorCode::ConcurrentTransactions),
        PrepareEpochFence | Dead => return Err(ErrorCode::UnknownServerError),
        Empty | Ongoing | CompleteCommit | CompleteAbort => {}
    }
    let already = current.state == Ongoing
        && partitions.iter().all(|p| current.partitions.contains(p))
        && group.map_or(true, |g| current.groups.contains(g));
    if already {
        return Ok(None);
    }
    let mut next = current.with_state(Ongoing, now);
    if current.state != Ongoing {
        next.partitions.clear();
        next.groups.clear();
        next.txn_start_ms = now;
    }
    next.partitions.extend(partitions.iter().cloned());
    if let Some(g) = group {
        next.groups.insert(g.to_string());
    }
    if next.partitions.len() > MAX_PARTITIONS_PER_TXN || next.groups.len() > MAX_GROUPS_PER_TXN {
        return Err(ErrorCode::InvalidRequest);
    }
    Ok(Some(next))
}

/// What EndTxn does.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum EndTransition {
    /// Persist `next` (a Prepare state), then run its completion.
    Prepare { next: TransactionMetadata },
    /// Already ended this way (a retry): answer success.
    AlreadyDone,
}

/// Kafka's `handleEndTransaction` from a client. `bump_epoch`: the client
/// speaks transaction version 2 (EndTxn v5+, KIP-890): every end bumps
/// the producer epoch, the markers are written under the bumped epoch,
/// and the client continues with it (EndTxn v5 returns it). A retry of an
/// end whose answer was lost then names the epoch before the bump.
pub fn end_transaction(
    current: &TransactionMetadata,
    producer_id: i64,
    producer_epoch: i16,
    commit: bool,
    bump_epoch: bool,
    now: TimestampMs,
) -> Result<EndTransition, ErrorCode> {
    use TransactionState::*;
    if bump_epoch {
        let retry_of_bump = i32::from(current.producer_epoch) == i32::from(producer_epoch) + 1
            && current.last_producer_epoch == producer_epoch;
        if producer_id != current.producer_id {
            return Err(ErrorCode::InvalidProducerIdMapping);
        }
        let valid_epoch = match current.state {
            Ongoing | Empty => producer_epoch == current.producer_epoch,
            PrepareCommit | PrepareAbort | CompleteCommit | CompleteAbort => {
                retry_of_bump || (producer_epoch == current.producer_epoch && !bumps(current))
            }
            PrepareEpochFence | Dead => false,
        };
        if !valid_epoch {
            return Err(ErrorCode::ProducerFenced);
        }
    } else {
        current.check_producer(producer_id, producer_epoch)?;
    }
    match (current.state, commit) {
        (Ongoing, _) => {
            let mut next = current.with_state(if commit { PrepareCommit } else { PrepareAbort }, now);
            if bump_epoch && bumps(current) {
                next.last_producer_epoch = current.producer_epoch;
                next.producer_epoch = current.producer_epoch + 1;
            }
            Ok(EndTransition::Prepare { next })
        }
        (CompleteCommit, true) | (CompleteAbort, false) => Ok(EndTransition::AlreadyDone),
        (PrepareCommit, true) | (PrepareAbort, false) => Err(ErrorCode::ConcurrentTransactions),
        (CompleteCommit, false) | (CompleteAbort, true) | (PrepareCommit, false) | (PrepareAbort, true) => {
            Err(ErrorCode::InvalidTxnState)
        }
        (Empty, _) => Err(ErrorCode::InvalidTxnState),
        (PrepareEpochFence | Dead, _) => Err(ErrorCode::UnknownServerError),
    }
}

/// Whether a transaction-version-2 end bumps this epoch. An epoch one
/// bump short of exhaustion is kept instead (Kafka moves to a new
/// producer id there; klamm's producer then stays on its last epoch, and
/// the next InitProducerId gives it a new id), so the epoch never
/// overflows.
fn bumps(current: &TransactionMetadata) -> bool {
    !is_epoch_exhausted(current.producer_epoch)
}

/// The Complete state after the markers of `current` (a Prepare state)
/// are written; the transaction's partitions and groups are cleared.
pub fn complete(current: &TransactionMetadata, now: TimestampMs) -> Option<TransactionMetadata> {
    let state = match current.state {
        TransactionState::PrepareCommit => TransactionState::CompleteCommit,
        TransactionState::PrepareAbort => TransactionState::CompleteAbort,
        _ => return None,
    };
    let mut next = current.with_state(state, now);
    next.partitions.clear();
    next.groups.clear();
    next.txn_start_ms = TimestampMs::NONE;
    Some(next)
}

/// Kafka's timeout abort: an ongoing transaction past its timeout is
/// fenced (epoch + 1) and aborted, so its producer is fenced too.
pub fn abort_timed_out(current: &TransactionMetadata, now: TimestampMs) -> Option<TransactionMetadata> {
    if current.state != TransactionState::Ongoing
        || now.0.saturating_sub(current.txn_start_ms.0) <= i64::from(current.timeout_ms)
        || is_epoch_exhausted(current.producer_epoch)
    {
        return None;
    }
    let mut fenced = current.with_state(TransactionState::PrepareEpochFence, now);
    fenced.last_producer_epoch = current.producer_epoch;
    fenced.producer_epoch = current.producer_epoch.saturating_add(1);
    Some(fenced.with_state(TransactionState::PrepareAbort, now))
}

/// Whether an idle id has expired (`transactional.id.expiration.ms`):
/// only ids with no transaction in flight.
pub fn is_expired(current: &TransactionMetadata, now: TimestampMs, expiration_ms: i64) -> bool {
    matches!(
        current.state,
        TransactionState::Empty | TransactionState::CompleteCommit | TransactionState::CompleteAbort
    ) && now.0.saturating_sub(current.last_update_ms.0) >= expiration_ms
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn state_names_round_trip() {
        for s in TransactionState::ALL {
            assert_eq!(TransactionState::from_name(s.name()), Some(s));
            assert_eq!(TransactionState::from_id(s.id()), Some(s));
        }
        assert_eq!(TransactionState::from_name("ongoing"), None, "names are case-sensitive, as Kafka's");
    }
    use TransactionState::*;

    const NOW: TimestampMs = TimestampMs(1_000);

    fn tp(p: i32) -> TopicPartition {
        TopicPartition::new("t", p)
    }

    fn ready(t: InitTransition) -> TransactionMetadata {
        match t {
            InitTransition::Ready { next, needs_new_producer_id: false } => next,
            other => panic!("not ready: {other:?}"),
        }
    }

    fn fresh() -> TransactionMetadata {
        ready(init_producer_id(&TransactionMetadata::new("tx", 7, 60_000, NOW), 60_000, None, NOW).unwrap())
    }

    fn ongoing() -> TransactionMetadata {
        add_to_transaction(&fresh(), 7, 0, &[tp(0)], None, NOW).unwrap().unwrap()
    }

    #[test]
    fn state_ids_round_trip_and_transitions_follow_kafka() {
        for s in [Empty, Ongoing, PrepareCommit, PrepareAbort, CompleteCommit, CompleteAbort, PrepareEpochFence, Dead] {
            assert_eq!(TransactionState::from_id(s.id()), Some(s));
        }
        assert_eq!(TransactionState::from_id(8), None);
        assert!(PrepareCommit.can_follow(Ongoing));
        assert!(!PrepareCommit.can_follow(Empty));
        assert!(PrepareAbort.can_follow(PrepareEpochFence));
        assert!(!CompleteCommit.can_follow(PrepareAbort));
        assert!(!Dead.can_follow(Ongoing));
    }

    #[test]
    fn first_init_gives_epoch_zero_and_reinit_bumps() {
        let m = fresh();
        assert_eq!((m.producer_id, m.producer_epoch, m.state), (7, 0, Empty));
        let again = ready(init_producer_id(&m, 30_000, None, NOW).unwrap());
        assert_eq!((again.producer_epoch, again.last_producer_epoch, again.timeout_ms), (1, 0, 30_000));
    }

    #[test]
    fn init_on_ongoing_fences_and_aborts() {
        let m = ongoing();
        let InitTransition::Fence { next } = init_producer_id(&m, 60_000, None, NOW).unwrap() else { panic!() };
        assert_eq!((next.state, next.producer_epoch), (PrepareAbort, 1));
        assert_eq!(next.completion().unwrap().commit, false);
        assert_eq!(next.completion().unwrap().partitions, vec![tp(0)]);
        assert_eq!(init_producer_id(&next, 60_000, None, NOW), Err(ErrorCode::ConcurrentTransactions));
        let done = complete(&next, NOW).unwrap();
        assert_eq!(done.state, CompleteAbort);
        let retried = ready(init_producer_id(&done, 60_000, None, NOW).unwrap());
        assert_eq!(retried.producer_epoch, 2);
    }

    #[test]
    fn exhausted_epoch_needs_a_new_producer_id() {
        let mut m = fresh();
        m.producer_epoch = i16::MAX - 1;
        let InitTransition::Ready { next, needs_new_producer_id: true } = init_producer_id(&m, 1, None, NOW).unwrap() else {
            panic!()
        };
        let next = with_new_producer_id(next, 8);
        assert_eq!((next.producer_id, next.prev_producer_id, next.producer_epoch), (8, 7, 0));
    }

    #[test]
    fn kip_360_expected_producer_checks() {
        let m = ready(init_producer_id(&fresh(), 1, None, NOW).unwrap()); // epoch 1, last 0
        assert_eq!(init_producer_id(&m, 1, Some((99, 1)), NOW), Err(ErrorCode::ProducerFenced));
        assert_eq!(ready(init_producer_id(&m, 1, Some((7, 1)), NOW).unwrap()).producer_epoch, 2);
        // The retry of the bump 0 -> 1 gets epoch 1 again.
        assert_eq!(ready(init_producer_id(&m, 1, Some((7, 0)), NOW).unwrap()).producer_epoch, 1);
        assert_eq!(init_producer_id(&m, 1, Some((7, 5)), NOW), Err(ErrorCode::ProducerFenced));
    }

    #[test]
    fn add_partitions_rules() {
        let m = fresh();
        assert_eq!(add_to_transaction(&m, 8, 0, &[tp(0)], None, NOW), Err(ErrorCode::InvalidProducerIdMapping));
        assert_eq!(add_to_transaction(&m, 7, 1, &[tp(0)], None, NOW), Err(ErrorCode::ProducerFenced));
        let on = ongoing();
        assert_eq!((on.state, on.txn_start_ms), (Ongoing, NOW));
        assert_eq!(add_to_transaction(&on, 7, 0, &[tp(0)], None, NOW), Ok(None));
        let more = add_to_transaction(&on, 7, 0, &[tp(1)], Some("g"), TimestampMs(2_000)).unwrap().unwrap();
        assert_eq!(more.partitions.len(), 2);
        assert_eq!(more.txn_start_ms, NOW, "adding keeps the start time");
        assert!(more.groups.contains("g"));
        let EndTransition::Prepare { next } = end_transaction(&more, 7, 0, true, false, NOW).unwrap() else { panic!() };
        assert_eq!(add_to_transaction(&next, 7, 0, &[tp(2)], None, NOW), Err(ErrorCode::ConcurrentTransactions));
        let done = complete(&next, NOW).unwrap();
        assert!(done.partitions.is_empty() && done.groups.is_empty());
        let again = add_to_transaction(&done, 7, 0, &[tp(2)], None, TimestampMs(5_000)).unwrap().unwrap();
        assert_eq!((again.partitions.len(), again.txn_start_ms), (1, TimestampMs(5_000)));
        let too_many: Vec<_> = (0..=MAX_PARTITIONS_PER_TXN as i32).map(tp).collect();
        assert_eq!(add_to_transaction(&done, 7, 0, &too_many, None, NOW), Err(ErrorCode::InvalidRequest));
    }

    #[test]
    fn end_txn_rules() {
        let e = fresh();
        assert_eq!(end_transaction(&e, 7, 0, true, false, NOW), Err(ErrorCode::InvalidTxnState));
        assert_eq!(end_transaction(&e, 9, 0, true, false, NOW), Err(ErrorCode::InvalidProducerIdMapping));
        let on = ongoing();
        assert_eq!(end_transaction(&on, 7, 1, true, false, NOW), Err(ErrorCode::ProducerFenced));
        let EndTransition::Prepare { next: pc } = end_transaction(&on, 7, 0, true, false, NOW).unwrap() else { panic!() };
        assert_eq!(pc.state, PrepareCommit);
        assert_eq!(end_transaction(&pc, 7, 0, true, false, NOW), Err(ErrorCode::ConcurrentTransactions));
        assert_eq!(end_transaction(&pc, 7, 0, false, false, NOW), Err(ErrorCode::InvalidTxnState));
        let cc = complete(&pc, NOW).unwrap();
        assert_eq!(cc.state, CompleteCommit);
        assert_eq!(end_transaction(&cc, 7, 0, true, false, NOW), Ok(EndTransition::AlreadyDone));
        assert_eq!(end_transaction(&cc, 7, 0, false, false, NOW), Err(ErrorCode::InvalidTxnState));
        let EndTransition::Prepare { next: pa } = end_transaction(&on, 7, 0, false, false, NOW).unwrap() else { panic!() };
        assert_eq!(pa.state, PrepareAbort);
        assert_eq!(end_transaction(&pa, 7, 0, false, false, NOW), Err(ErrorCode::ConcurrentTransactions));
        assert_eq!(end_transaction(&pa, 7, 0, true, false, NOW), Err(ErrorCode::InvalidTxnState));
        let ca = complete(&pa, NOW).unwrap();
        assert_eq!(end_transaction(&ca, 7, 0, false, false, NOW), Ok(EndTransition::AlreadyDone));
        assert_eq!(end_transaction(&ca, 7, 0, true, false, NOW), Err(ErrorCode::InvalidTxnState));
        assert_eq!(complete(&ca, NOW), None);
    }

    #[test]
    fn transaction_version_2_bumps_the_epoch_on_every_end() {
        let on = ongoing();
        // A stale epoch is fenced, the current one bumps.
        assert_eq!(end_transaction(&on, 7, 1, true, true, NOW), Err(ErrorCode::ProducerFenced));
        let EndTransition::Prepare { next: pc } = end_transaction(&on, 7, 0, true, true, NOW).unwrap() else { panic!() };
        assert_eq!((pc.state, pc.producer_epoch, pc.last_producer_epoch), (PrepareCommit, 1, 0));
        // The markers go out under the bumped epoch.
        assert_eq!(pc.completion().unwrap().producer_epoch, 1);
        // A retry with the epoch before the bump: still completing, then done.
        assert_eq!(end_transaction(&pc, 7, 0, true, true, NOW), Err(ErrorCode::ConcurrentTransactions));
        let cc = complete(&pc, NOW).unwrap();
        assert_eq!(end_transaction(&cc, 7, 0, true, true, NOW), Ok(EndTransition::AlreadyDone));
        assert_eq!(end_transaction(&cc, 7, 0, false, true, NOW), Err(ErrorCode::InvalidTxnState));
        // The bumped epoch itself cannot end a completed transaction again
        // (Kafka: fenced), nor can an epoch two behind.
        assert_eq!(end_transaction(&cc, 7, 1, true, true, NOW), Err(ErrorCode::ProducerFenced));
        let mut older = cc.clone();
        older.producer_epoch = 2;
        assert_eq!(end_transaction(&older, 7, 0, true, true, NOW), Err(ErrorCode::ProducerFenced));
        // The next transaction under the bumped epoch bumps again.
        let on2 = add_to_transaction(&cc, 7, 1, &[tp(0)], None, NOW).unwrap().unwrap();
        let EndTransition::Prepare { next: pa } = end_transaction(&on2, 7, 1, false, true, NOW).unwrap() else { panic!() };
        assert_eq!((pa.state, pa.producer_epoch), (PrepareAbort, 2));
        assert_eq!(end_transaction(&on2, 8, 1, false, true, NOW), Err(ErrorCode::InvalidProducerIdMapping));
        // Near exhaustion the epoch stays, so it never overflows.
        let mut high = on2.clone();
        high.producer_epoch = i16::MAX - 1;
        let EndTransition::Prepare { next } = end_transaction(&high, 7, i16::MAX - 1, true, true, NOW).unwrap() else { panic!() };
        assert_eq!(next.producer_epoch, i16::MAX - 1);
        let done = complete(&next, NOW).unwrap();
        assert_eq!(end_transaction(&done, 7, i16::MAX - 1, true, true, NOW), Ok(EndTransition::AlreadyDone));
    }

    #[test]
    fn timeouts_fence_and_ids_expire() {
        let on = ongoing();
        assert_eq!(abort_timed_out(&on, TimestampMs(NOW.0 + 60_000)), None);
        let aborted = abort_timed_out(&on, TimestampMs(NOW.0 + 60_001)).unwrap();
        assert_eq!((aborted.state, aborted.producer_epoch), (PrepareAbort, 1));
        assert!(!is_expired(&on, TimestampMs(i64::MAX), 1));
        let e = fresh();
        assert!(!is_expired(&e, TimestampMs(NOW.0 + 9), 10));
        assert!(is_expired(&e, TimestampMs(NOW.0 + 10), 10));
    }
}
