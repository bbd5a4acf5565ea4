//! `PartitionLog`: the log of one `<topic>-<partition>` directory — ordered
//! segments with one active segment, log start/end offsets, append with
//! validation, offset assignment and idempotence checks, zero-copy reads,
//! timestamp lookups, rolling, flushing, retention and DeleteRecords, and
//! transactions: COMMIT/ABORT markers, the last stable offset and the
//! aborted transactions of READ_COMMITTED reads (see `txn_index`).

use std::collections::{BTreeMap, VecDeque};
use std::path::{Path, PathBuf};

use bytes::Bytes;
use tracing::{debug, info, warn};

use super::checkpoint::{read_leader_epoch_checkpoint, EpochEntry, LEADER_EPOCH_CHECKPOINT_FILE};
use super::config::LogConfig;
use super::error::StorageError;
use super::loader::{self, LoadReport, OpenOptions, SNAPSHOTS_KEPT};
use super::producer_state::{prune_snapshots, PendingUpdates, ProducerBatch, ProducerStateManager, NO_COORDINATOR_EPOCH};
use super::roll::SealJob;
use super::verification::{VerificationGuard, Verifications};
use super::segment::{Segment, SegmentRead, SegmentSnapshot, TimeQuery, TimeSearch, TimestampAndOffset};
use super::txn_index::{marker_coordinator_epoch, AbortedTxn, TxnIndex, CONTROL_TYPE_ABORT, CONTROL_TYPE_COMMIT};
use crate::records::{
    BatchBuilder, BatchIter, Validation, set_base_offset, set_log_append_time, set_max_timestamp, set_partition_leader_epoch,
    ProduceBatches, ProduceCheck, RecordBatch, RecordIter, TimestampType, NO_PARTITION_LEADER_EPOCH,
};
use crate::types::{Offset, TimestampMs};

/// Result of an append (what a produce response needs).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AppendInfo {
    /// Offset of the first record written (or of the original batch for a
    /// duplicate).
    pub first_offset: Offset,
    pub last_offset: Offset,
    /// The stamped append time if the topic uses LogAppendTime, else -1.
    pub log_append_time: TimestampMs,
    pub log_start_offset: Offset,
    /// The batch retried an already-written one: nothing was written and the
    /// offsets are the original ones.
    pub duplicate: bool,
    /// Largest batch max timestamp of the append.
    pub max_timestamp: TimestampMs,
    /// Last offset of the first batch that carried `max_timestamp`.
    pub offset_of_max_timestamp: Offset,
    /// Records appended.
    pub records_count: u64,
    /// Bytes appended.
    pub size_bytes: usize,
}

/// Result of a read.
#[derive(Clone, Debug)]
pub struct ReadInfo {
    /// Whole batches, zero-copy from the map; empty at the log end.
    pub records: Bytes,
    pub log_start_offset: Offset,
    pub log_end_offset: Offset,
}

/// A read taken under the log's lock without disk I/O
/// ([`PartitionLog::read_plan`]), to be done after the lock is released
/// ([`ReadPlan::execute`]): that faults the pages in, so the disk is read
/// there, and a failed read is KAFKA_STORAGE_ERROR instead of SIGBUS where
/// the platform reports it (see `platform::populate_read`).
pub struct ReadPlan {
    info: ReadInfo,
    fetch_offset: Offset,
    max_bytes: u32,
    max_offset_exclusive: Option<Offset>,
    segment: Option<SegmentSnapshot>,
}

impl ReadPlan {
    /// Reads the planned batches, faulting them in. Blocking.
    pub fn execute(self) -> Result<ReadInfo, StorageError> {
        let mut info = self.info;
        if let Some(segment) = &self.segment {
            if let SegmentRead::Data(bytes, _) =
                segment.read(self.fetch_offset, self.max_bytes, self.max_offset_exclusive)?
            {
                info.records = bytes;
            }
        }
        Ok(info)
    }
}

/// One batch of an append, located in the input buffer.
struct PendingBatch {
    start: usize,
    len: usize,
    base_offset: Offset,
    max_timestamp: TimestampMs,
    /// The producer id of a transactional batch.
    transactional_producer: Option<i64>,
}

/// The log of one partition. Not internally synchronised: the log manager
/// wraps it in a mutex. `Bytes` returned by reads stay valid after the lock
/// is released, even across rolls, retention and deletion.
pub struct PartitionLog {
    dir: PathBuf,
    config: LogConfig,
    /// Keyed by base offset; never empty while open; the last is active.
    segments: BTreeMap<i64, Segment>,
    log_start_offset: Offset,
    log_end_offset: Offset,
    /// Everything below this offset is flushed to disk.
    recovery_point: Offset,
    /// Everything below this offset is in the log file on disk (a group
    /// commit fdatasynced it, [`PartitionLog::mark_data_synced`]); its
    /// indexes may not be, so the recovery point stays where it is.
    data_synced_through: Offset,
    last_flush_ms: TimestampMs,
    leader_epoch: i32,
    /// Kafka's leader-epoch history of this partition, when Apache Kafka
    /// wrote the directory (its `leader-epoch-checkpoint`, read once, never
    /// written): the epochs before klamm's.
    kafka_epochs: Vec<EpochEntry>,
    producers: ProducerStateManager,
    /// Open and aborted transactions (rebuilt from the log at open).
    txns: TxnIndex,
    /// Produce verifications awaiting their batch (KIP-890's guards;
    /// memory only: a restart fails them, and clients retry).
    verifications: Verifications,
    load_report: LoadReport,
    closed: bool,
    /// Rolled segments whose flush and fsync have not completed, oldest
    /// first: the recovery point stays at or below the first one's base.
    unsynced_seals: VecDeque<SealJob>,
    /// Test hook run by each roll's job before its I/O.
    #[cfg(test)]
    pub(crate) seal_hook: Option<std::sync::Arc<dyn Fn() + Send + Sync>>,
}

impl PartitionLog {
    /// Opens (creating if needed) the log in `dir`, recovering segments at
    /// or after `recovery_point` unless the shutdown was clean.
    pub fn open(
        dir: impl AsRef<Path>,
        config: LogConfig,
        clean_shutdown: bool,
        recovery_point: Offset,
    ) -> Result<PartitionLog, StorageError> {
        let opts = OpenOptions {
            clean_shutdown,
            recovery_point,
            log_start_offset: Offset(0),
        };
        Self::open_with(dir, config, opts, TimestampMs::now())
    }

    /// [`PartitionLog::open`] with every option, including the checkpointed
    /// log start offset.
    pub fn open_with(
        dir: impl AsRef<Path>,
        config: LogConfig,
        opts: OpenOptions,
        now: TimestampMs,
    ) -> Result<PartitionLog, StorageError> {
        config.validate()?;
        let dir = dir.as_ref().to_path_buf();
        let loaded = loader::load(&dir, &config, &opts, now)?;
        let log_end_offset = loaded
            .segments
            .values()
            .next_back()
            .map(Segment::next_offset)
            .unwrap_or_default();
        let r = loaded.report;
        if r.recovered_segments + r.truncated_bytes + r.deleted_segments + r.removed_files > 0 {
            info!(dir = %dir.display(), report = ?loaded.report, "loaded partition log");
        }
        let epochs_path = dir.join(LEADER_EPOCH_CHECKPOINT_FILE);
        let kafka_epochs = read_leader_epoch_checkpoint(&epochs_path).unwrap_or_else(|e| {
            warn!(path = %epochs_path.display(), error = %e, "ignoring Kafka's unreadable leader-epoch checkpoint");
            Vec::new()
        });
        let log = PartitionLog {
            dir,
            config,
            segments: loaded.segments,
            log_start_offset: loaded.log_start_offset,
            log_end_offset,
            // Recovery validated everything; what it rewrote is flushed below.
            recovery_point: Offset(0),
            data_synced_through: Offset(0),
            last_flush_ms: now,
            leader_epoch: 0,
            kafka_epochs,
            producers: loaded.producers,
            txns: TxnIndex::new(),
            verifications: Verifications::default(),
            load_report: loaded.report,
            closed: false,
            unsynced_seals: VecDeque::new(),
            #[cfg(test)]
            seal_hook: None,
        };
        let mut log = log;
        log.rebuild_txns()?;
        log.flush_at(now)?;
        log.check_invariants();
        Ok(log)
    }

    fn check_invariants(&self) {
        debug_assert!(!self.segments.is_empty() || self.closed);
        debug_assert!(self.log_start_offset <= self.log_end_offset);
        debug_assert!(self
            .segments
            .values()
            .next()
            .map_or(true, |s| s.base_offset() <= self.log_start_offset));
        debug_assert!(self
            .segments
            .values()
            .next_back()
            .map_or(true, |s| s.next_offset() == self.log_end_offset));
    }

    fn ensure_open(&self) -> Result<(), StorageError> {
        if self.closed {
            return Err(StorageError::Closed {
                path: self.dir.clone(),
            });
        }
        Ok(())
    }

    fn active(&self) -> &Segment {
        self.segments
            .values()
            .next_back()
            .expect("an open log always has an active segment")
    }

    fn active_mut(&mut self) -> &mut Segment {
        self.segments
            .values_mut()
            .next_back()
            .expect("an open log always has an active segment")
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    pub fn config(&self) -> &LogConfig {
        &self.config
    }

    /// Replaces the config (AlterConfigs); sizes apply from the next roll.
    pub fn set_config(&mut self, config: LogConfig) -> Result<(), StorageError> {
        config.validate()?;
        self.config = config;
        Ok(())
    }

    /// The partition leader epoch stamped into appended batches.
    pub fn leader_epoch(&self) -> i32 {
        self.leader_epoch
    }

    pub fn set_leader_epoch(&mut self, epoch: i32) {
        self.leader_epoch = epoch.max(NO_PARTITION_LEADER_EPOCH);
    }

    /// OffsetForLeaderEpoch's answer for `requested`: the epoch the answer
    /// is about and the end offset of that epoch (the start of the next),
    /// or `None` for an epoch newer than the current one. Kafka's
    /// `LeaderEpochFileCache.endOffsetFor` over Kafka's epoch history (if
    /// Apache Kafka wrote this directory) followed by klamm's current epoch.
    /// Without a history the log is one epoch, starting at the log start.
    /// When klamm's epoch is newer than the history's last, where it began
    /// is not recorded: the log end offset stands in for it, which is never
    /// below a position reached in an older epoch, so no consumer is told
    /// its log was truncated.
    pub fn end_offset_for_epoch(&self, requested: i32) -> Option<(i32, Offset)> {
        let current = self.leader_epoch;
        if requested == current {
            return Some((current, self.log_end_offset));
        }
        if requested < 0 || requested > current {
            return None;
        }
        let history = self.kafka_epochs.iter().filter(|e| e.epoch < current);
        if self.kafka_epochs.is_empty() {
            return Some((requested, self.log_start_offset));
        }
        let floor = history.clone().rfind(|e| e.epoch <= requested);
        let next_start = match history.clone().find(|e| e.epoch > requested) {
            Some(e) => e.start_offset,
            None => self
                .kafka_epochs
                .iter()
                .find(|e| e.epoch == current)
                .map_or(self.log_end_offset, |e| e.start_offset),
        };
        let end = next_start.clamp(self.log_start_offset, self.log_end_offset);
        Some((floor.map_or(requested, |e| e.epoch), end))
    }

    pub fn log_start_offset(&self) -> Offset {
        self.log_start_offset
    }

    /// The next offset to be assigned (also the high watermark: one node).
    pub fn log_end_offset(&self) -> Offset {
        self.log_end_offset
    }

    /// Offset below which everything is flushed (for the checkpoint).
    pub fn recovery_point(&self) -> Offset {
        self.recovery_point
    }

    /// Total bytes of all segments.
    pub fn size_bytes(&self) -> u64 {
        self.segments.values().map(|s| s.size_bytes() as u64).sum()
    }

    /// The segments by base offset, the last active (for the cleaner).
    pub(crate) fn segments(&self) -> &BTreeMap<i64, Segment> {
        &self.segments
    }

    /// For the cleaner's swap, under this log's lock: it replaces inactive
    /// segments by cleaned ones with the same offsets.
    pub(crate) fn segments_mut(&mut self) -> &mut BTreeMap<i64, Segment> {
        &mut self.segments
    }

    pub fn segment_count(&self) -> usize {
        self.segments.len()
    }

    /// Base offsets of the segments, oldest first.
    pub fn segment_base_offsets(&self) -> Vec<Offset> {
        self.segments.values().map(Segment::base_offset).collect()
    }

    pub fn producer_state(&self) -> &ProducerStateManager {
        &self.producers
    }

    /// What opening the log had to repair.
    pub fn load_report(&self) -> LoadReport {
        self.load_report
    }

    pub fn is_closed(&self) -> bool {
        self.closed
    }

    /// Rebuilds the transaction state from every batch header in the log
    /// (markers also raise their producer's epoch, as Kafka's do).
    fn rebuild_txns(&mut self) -> Result<(), StorageError> {
        let mut txns = TxnIndex::new();
        for segment in self.segments.values() {
            for batch in BatchIter::new(&segment.log_bytes()?, Validation::Structure).flatten() {
                if batch.last_offset() < self.log_start_offset {
                    continue;
                }
                txns.replay(&batch);
                if batch.is_control() && batch.has_producer_id() {
                    let coordinator_epoch = marker_coordinator_epoch(&batch).unwrap_or(NO_COORDINATOR_EPOCH);
                    self.producers.apply_marker(batch.producer_id(), batch.producer_epoch(), coordinator_epoch, batch.max_timestamp());
                }
            }
        }
        self.txns = txns;
        Ok(())
    }

    /// The last stable offset: below it every transaction is decided.
    pub fn last_stable_offset(&self) -> Offset {
        self.txns.last_stable_offset(self.log_end_offset)
    }

    /// Aborted transactions overlapping `[start, end)`.
    pub fn aborted_transactions(&self, start: Offset, end: Offset) -> Vec<AbortedTxn> {
        self.txns.aborted_in(start, end)
    }

    /// See [`TxnIndex::forget_aborted`] (the log cleaner).
    pub(crate) fn forget_aborted_txns(&mut self, markers: &[(i64, Offset)]) {
        self.txns.forget_aborted(markers);
    }

    pub fn txn_index(&self) -> &TxnIndex {
        &self.txns
    }

    /// Writes a COMMIT or ABORT marker (a v2 control batch) for the
    /// transaction of `producer_id` (Kafka's WriteTxnMarkers on a leader).
    /// Returns the marker's offset.
    pub fn append_marker(
        &mut self,
        producer_id: i64,
        producer_epoch: i16,
        commit: bool,
        coordinator_epoch: i32,
        now: TimestampMs,
    ) -> Result<Offset, StorageError> {
        self.ensure_open()?;
        if let Some(e) = self.producers.entry(producer_id) {
            if producer_epoch < e.epoch {
                return Err(StorageError::InvalidProducerEpoch {
                    producer_id,
                    epoch: producer_epoch,
                    current_epoch: e.epoch,
                });
            }
            // Kafka's `checkCoordinatorEpoch`: a marker from an older
            // coordinator than the last one is fenced.
            if coordinator_epoch < e.coordinator_epoch {
                return Err(StorageError::CoordinatorFenced {
                    producer_id,
                    coordinator_epoch,
                    current_coordinator_epoch: e.coordinator_epoch,
                });
            }
        }
        let offset = self.log_end_offset;
        let kind = if commit { CONTROL_TYPE_COMMIT } else { CONTROL_TYPE_ABORT };
        let mut key = Vec::with_capacity(4);
        key.extend_from_slice(&0i16.to_be_bytes());
        key.extend_from_slice(&kind.to_be_bytes());
        let mut value = Vec::with_capacity(6);
        value.extend_from_slice(&0i16.to_be_bytes());
        value.extend_from_slice(&coordinator_epoch.to_be_bytes());
        let mut b = BatchBuilder::new(offset.0, now);
        b.producer(producer_id, producer_epoch, crate::records::NO_SEQUENCE)
            .transactional(true)
            .control(true)
            .partition_leader_epoch(self.leader_epoch)
            .append(now, Some(&key), Some(&value), &[]);
        let bytes = b.build();
        if self.active().should_roll(&self.config, bytes.len(), now, offset, now) {
            self.roll_at(now)?;
        }
        self.active_mut().append(&bytes, now)?;
        self.log_end_offset = offset.next();
        self.producers.apply_marker(producer_id, producer_epoch, coordinator_epoch, now);
        self.verifications.end(producer_id);
        self.producers.set_map_end_offset(self.log_end_offset);
        self.txns.on_marker(producer_id, offset, commit);
        self.flush_if_due(now)?;
        self.check_invariants();
        Ok(offset)
    }

    /// Forgets producers idle for `expiration_ms`.
    pub fn expire_producers(&mut self, now: TimestampMs, expiration_ms: i64) -> usize {
        self.verifications.expire(now, expiration_ms);
        self.producers.remove_expired(now, expiration_ms)
    }

    /// The guard a produce takes before asking the transaction coordinator
    /// whether this partition is in `producer_id`'s transaction; the append
    /// that starts the transaction here must bring it back
    /// ([`PartitionLog::append_deferring_flush`], see
    /// [`super::verification`]).
    pub fn begin_verification(&mut self, producer_id: i64, producer_epoch: i16, now: TimestampMs) -> VerificationGuard {
        self.verifications.begin(producer_id, producer_epoch, now)
    }

    /// Validates and appends produce input (one or more v2 batches, patched
    /// in place: offsets, leader epoch, LogAppendTime, CRC). Nothing is
    /// written unless every batch passes.
    pub fn append(
        &mut self,
        input: &mut [u8],
        now: TimestampMs,
    ) -> Result<AppendInfo, StorageError> {
        self.append_with(input, now, false, None).map(|(info, _)| info)
    }

    /// [`PartitionLog::append`] that leaves the flush `flush.messages` asks
    /// for to the caller, to be done without this log's lock and shared
    /// with concurrent appends (a group commit): `true` means the append
    /// must be made durable (fdatasync of [`PartitionLog::data_sync_handle`])
    /// before it is acknowledged. `flush.ms` flushes as usual.
    ///
    /// With `verified`, a transactional batch that would open its
    /// producer's transaction in this partition is refused
    /// (TransactionNotVerified) unless that guard from
    /// [`PartitionLog::begin_verification`] is still live: the transaction
    /// it was verified for has not ended since.
    pub fn append_deferring_flush(
        &mut self,
        input: &mut [u8],
        now: TimestampMs,
        verified: Option<VerificationGuard>,
    ) -> Result<(AppendInfo, bool), StorageError> {
        self.append_with(input, now, true, verified)
    }

    /// Records that a group commit made everything below `offset` durable
    /// in the log file.
    pub fn mark_data_synced(&mut self, offset: Offset) {
        self.data_synced_through = self.data_synced_through.max(offset.min(self.log_end_offset));
    }

    /// The active segment's log descriptor, for a group commit; `None` when
    /// the log is not written with `pwrite` (then flush under the lock).
    pub fn data_sync_handle(&self) -> Option<std::sync::Arc<std::fs::File>> {
        if self.closed {
            return None;
        }
        self.active().data_sync_handle()
    }

    fn append_with(
        &mut self,
        input: &mut [u8],
        now: TimestampMs,
        defer_message_flush: bool,
        verified: Option<VerificationGuard>,
    ) -> Result<(AppendInfo, bool), StorageError> {
        self.ensure_open()?;
        if input.len() > self.config.segment_bytes as usize {
            return Err(StorageError::RecordListTooLarge {
                append_bytes: input.len(),
                segment_bytes: self.config.segment_bytes,
            });
        }
        let log_append_time = self.config.message_timestamp_type == TimestampType::LogAppendTime;
        let mut batches: Vec<PendingBatch> = Vec::new();
        let mut pending = PendingUpdates::default();
        let mut next = self.log_end_offset;
        let mut max_timestamp = TimestampMs::NONE;
        let mut offset_of_max_timestamp = Offset(-1);
        let mut records_count = 0u64;
        {
            let mut iter = ProduceBatches::new(input);
            loop {
                let start = iter.position();
                let Some(item) = iter.next() else { break };
                let (batch, check) = item?;
                if batch.size_bytes() > self.config.max_message_bytes as usize {
                    return Err(StorageError::MessageTooLarge {
                        batch_bytes: batch.size_bytes(),
                        max_message_bytes: self.config.max_message_bytes,
                    });
                }
                if self.config.compact {
                    super::cleaner::check_keys(&self.dir, &batch)?;
                }
                if !log_append_time {
                    check_timestamps(&self.config, &batch, &check, now)?;
                }
                let base_offset = next;
                let last_offset = Offset(base_offset.0 + batch.last_offset_delta() as i64);
                next = last_offset.next();
                let batch_max_timestamp = if log_append_time {
                    now
                } else {
                    check.records_max_timestamp.unwrap_or(batch.max_timestamp())
                };
                if batch_max_timestamp > max_timestamp {
                    max_timestamp = batch_max_timestamp;
                    offset_of_max_timestamp = last_offset;
                }
                records_count += batch.records_count() as u64;
                if let Some(mut pb) = ProducerBatch::from_batch(&batch) {
                    pb.first_offset = base_offset;
                    pb.last_offset = last_offset;
                    pb.max_timestamp = batch_max_timestamp;
                    if let Some(dup) = self.producers.find_duplicate(&pb) {
                        debug!(dir = %self.dir.display(), producer_id = pb.producer_id, "duplicate batch");
                        return Ok((AppendInfo {
                            first_offset: dup.first_offset,
                            last_offset: dup.last_offset,
                            log_append_time: if log_append_time {
                                dup.timestamp
                            } else {
                                TimestampMs::NONE
                            },
                            log_start_offset: self.log_start_offset,
                            duplicate: true,
                            max_timestamp: dup.timestamp,
                            offset_of_max_timestamp: dup.last_offset,
                            records_count: 0,
                            size_bytes: 0,
                        }, false));
                    }
                    if let Some(guard) = verified {
                        let opens_transaction = batch.is_transactional()
                            && !batch.is_control()
                            && self.txns.ongoing_first_offset(pb.producer_id).is_none();
                        if opens_transaction && !self.verifications.holds(pb.producer_id, guard) {
                            return Err(StorageError::TransactionNotVerified { producer_id: pb.producer_id });
                        }
                    }
                    self.producers.stage(&mut pending, &pb)?;
                }
                batches.push(PendingBatch {
                    start,
                    len: batch.size_bytes(),
                    base_offset,
                    max_timestamp: batch_max_timestamp,
                    transactional_producer: (batch.is_transactional() && batch.has_producer_id())
                        .then(|| batch.producer_id()),
                });
            }
        }
        debug_assert_eq!(batches.iter().map(|b| b.len).sum::<usize>(), input.len());

        for b in &batches {
            let bytes = &mut input[b.start..b.start + b.len];
            set_base_offset(bytes, b.base_offset)?;
            set_partition_leader_epoch(bytes, self.leader_epoch)?;
            if log_append_time {
                set_log_append_time(bytes, now)?;
            } else {
                set_max_timestamp(bytes, TimestampType::CreateTime, b.max_timestamp)?;
            }
        }

        let last_offset = Offset(next.0 - 1);
        if self
            .active()
            .should_roll(&self.config, input.len(), max_timestamp, last_offset, now)
        {
            self.roll_at(now)?;
        }
        self.active_mut().append(input, now)?;
        self.producers.commit(pending, next);
        for b in &batches {
            if let Some(pid) = b.transactional_producer {
                self.txns.on_data(pid, b.base_offset);
            }
        }
        self.log_end_offset = next;
        let needs_sync = if defer_message_flush {
            let since_ms = now.0.saturating_sub(self.last_flush_ms.0).max(0) as u64;
            if since_ms >= self.config.flush_interval_ms {
                self.flush_at(now)?;
            }
            let synced = self.recovery_point.max(self.data_synced_through);
            (self.log_end_offset.0 - synced.0).max(0) as u64 >= self.config.flush_interval_messages
        } else {
            self.flush_if_due(now)?;
            false
        };
        self.check_invariants();
        let info = AppendInfo {
            first_offset: batches.first().map(|b| b.base_offset).unwrap_or(next),
            last_offset,
            log_append_time: if log_append_time {
                now
            } else {
                TimestampMs::NONE
            },
            log_start_offset: self.log_start_offset,
            duplicate: false,
            max_timestamp,
            offset_of_max_timestamp,
            records_count,
            size_bytes: input.len(),
        };
        Ok((info, needs_sync))
    }

    /// Reads whole batches starting with the one that contains
    /// `fetch_offset`, from a single segment, up to `max_bytes` (the first
    /// batch is returned whole even if larger), stopping before any batch at
    /// or beyond `max_offset_exclusive`. Does the disk I/O in the caller's
    /// lock: the fetch path uses [`PartitionLog::read_plan`] instead.
    pub fn read(
        &self,
        fetch_offset: Offset,
        max_bytes: u32,
        max_offset_exclusive: Option<Offset>,
    ) -> Result<ReadInfo, StorageError> {
        self.read_plan(fetch_offset, max_bytes, max_offset_exclusive)?
            .execute()
    }

    /// [`PartitionLog::read`] split at the lock: the offsets are checked
    /// and the segments picked here, without touching a page (mapping a
    /// sealed segment again is the only system call); the returned plan
    /// reads after the lock is released.
    pub fn read_plan(
        &self,
        fetch_offset: Offset,
        max_bytes: u32,
        max_offset_exclusive: Option<Offset>,
    ) -> Result<ReadPlan, StorageError> {
        self.ensure_open()?;
        if fetch_offset < self.log_start_offset || fetch_offset > self.log_end_offset {
            return Err(StorageError::OffsetOutOfRange {
                requested: fetch_offset,
                log_start_offset: self.log_start_offset,
                log_end_offset: self.log_end_offset,
            });
        }
        let mut plan = ReadPlan {
            info: ReadInfo {
                records: Bytes::new(),
                log_start_offset: self.log_start_offset,
                log_end_offset: self.log_end_offset,
            },
            fetch_offset,
            max_bytes,
            max_offset_exclusive,
            segment: None,
        };
        if fetch_offset == self.log_end_offset
            || max_offset_exclusive.is_some_and(|m| fetch_offset >= m)
        {
            return Ok(plan);
        }
        let floor = self
            .segments
            .range(..=fetch_offset.0)
            .next_back()
            .map(|(k, _)| *k)
            .unwrap_or(i64::MIN);
        // The first segment with data at or after the offset (the one
        // holding it, or the next after a gap Kafka's compaction left).
        if let Some(segment) = self
            .segments
            .range(floor..)
            .map(|(_, s)| s)
            .find(|s| s.next_offset() > fetch_offset)
        {
            plan.segment = Some(segment.snapshot()?);
        }
        Ok(plan)
    }

    /// The earliest record with timestamp `>= timestamp` at or after the log
    /// start (ListOffsets by time); `None` if there is none. The special
    /// targets (-1 latest, -2 earliest, -3 max timestamp) are the caller's:
    /// see [`PartitionLog::max_timestamp_and_offset`].
    pub fn offset_for_timestamp(
        &self,
        timestamp: TimestampMs,
    ) -> Result<Option<TimestampAndOffset>, StorageError> {
        self.offset_for_timestamp_search(timestamp)?.run()
    }

    /// [`PartitionLog::offset_for_timestamp`] prepared under the lock, to
    /// [`TimeSearch::run`] after it is released.
    pub fn offset_for_timestamp_search(&self, timestamp: TimestampMs) -> Result<TimeSearch, StorageError> {
        self.ensure_open()?;
        let Some(segment) = self
            .segments
            .values()
            .find(|s| s.largest_timestamp() >= timestamp)
        else {
            return Ok(TimeSearch::nothing());
        };
        segment.time_search(TimeQuery::ByTimestamp { target: timestamp, starting_offset: self.log_start_offset })
    }

    /// The record with the largest timestamp (ListOffsets -3).
    pub fn max_timestamp_and_offset(&self) -> Result<Option<TimestampAndOffset>, StorageError> {
        self.max_timestamp_search()?.run()
    }

    /// [`PartitionLog::max_timestamp_and_offset`] prepared under the lock,
    /// to [`TimeSearch::run`] after it is released.
    pub fn max_timestamp_search(&self) -> Result<TimeSearch, StorageError> {
        self.ensure_open()?;
        let mut best: Option<&Segment> = None;
        for s in self.segments.values() {
            if best.is_none_or(|b| s.max_timestamp() > b.max_timestamp()) {
                best = Some(s);
            }
        }
        match best {
            Some(s) => s.max_timestamp_search(),
            None => Ok(TimeSearch::nothing()),
        }
    }

    /// Flushes if `flush.messages` or `flush.ms` says so.
    pub fn flush_if_due(&mut self, now: TimestampMs) -> Result<bool, StorageError> {
        self.ensure_open()?;
        let unflushed = (self.log_end_offset.0 - self.recovery_point.0).max(0) as u64;
        let since_ms = now.0.saturating_sub(self.last_flush_ms.0).max(0) as u64;
        if unflushed > 0
            && (unflushed >= self.config.flush_interval_messages
                || since_ms >= self.config.flush_interval_ms)
        {
            self.flush_at(now)?;
            return Ok(true);
        }
        Ok(false)
    }

    /// msyncs the active segment and its indexes; everything up to the log
    /// end becomes the recovery point.
    pub fn flush(&mut self) -> Result<(), StorageError> {
        self.ensure_open()?;
        self.flush_at(TimestampMs::now())
    }

    fn flush_at(&mut self, now: TimestampMs) -> Result<(), StorageError> {
        // Rolled segments first (usually done already, off the lock).
        for job in &self.unsynced_seals {
            job.run()?;
        }
        self.unsynced_seals.clear();
        self.active_mut().flush()?;
        self.recovery_point = self.log_end_offset;
        self.last_flush_ms = now;
        Ok(())
    }

    /// The fsyncs rolls left to do that no one runs yet: the caller runs
    /// each ([`SealJob::run`]) after releasing this log's lock, then calls
    /// [`PartitionLog::seals_completed`] (see `storage::finish_rolls`).
    pub fn take_seal_work(&mut self) -> Vec<SealJob> {
        self.unsynced_seals.iter().filter(|j| j.claim()).cloned().collect()
    }

    /// Every roll fsync not done yet (a group commit waits for them: the
    /// records in those segments are durable only after them).
    pub fn unsynced_seals(&self) -> Vec<SealJob> {
        self.unsynced_seals.iter().filter(|j| !j.is_done()).cloned().collect()
    }

    /// Moves the recovery point past the rolled segments whose fsync is
    /// done, oldest first.
    pub fn seals_completed(&mut self) {
        while self.unsynced_seals.front().is_some_and(SealJob::is_done) {
            if let Some(job) = self.unsynced_seals.pop_front() {
                self.recovery_point = self.recovery_point.max(job.end_offset());
            }
        }
    }

    /// Starts a new active segment at the log end (no-op if the active one
    /// is empty).
    pub fn roll(&mut self) -> Result<(), StorageError> {
        self.ensure_open()?;
        self.roll_at(TimestampMs::now())
    }

    fn roll_at(&mut self, now: TimestampMs) -> Result<(), StorageError> {
        if self.active().is_empty() {
            return Ok(());
        }
        let base = self.log_end_offset;
        // The new segment first: if that fails, the old one stays active.
        let segment = Segment::create(&self.dir, base, &self.config, now)?;
        let old_base = self.active().base_offset();
        if let Some(sync) = self.active_mut().begin_seal()? {
            // The old segment's fsync runs after the lock is released; the
            // recovery point moves past it only then (`seals_completed`).
            self.unsynced_seals.push_back(SealJob::new(
                old_base,
                base,
                sync,
                #[cfg(test)]
                self.seal_hook.clone(),
            ));
        }
        self.segments.insert(base.0, segment);
        self.producers.set_map_end_offset(base);
        self.producers.write_snapshot(&self.dir, base)?;
        prune_snapshots(&self.dir, base, SNAPSHOTS_KEPT)?;
        debug!(dir = %self.dir.display(), base_offset = base.0, "rolled new segment");
        Ok(())
    }

    /// Advances the log start offset (DeleteRecords) and deletes segments
    /// entirely below it. Returns the new log start offset (low watermark).
    pub fn delete_records_before(&mut self, offset: Offset) -> Result<Offset, StorageError> {
        self.ensure_open()?;
        if offset.0 < 0 || offset > self.log_end_offset {
            return Err(StorageError::OffsetOutOfRange {
                requested: offset,
                log_start_offset: self.log_start_offset,
                log_end_offset: self.log_end_offset,
            });
        }
        if offset > self.log_start_offset {
            self.log_start_offset = offset;
        }
        self.delete_log_start_breached_segments()?;
        Ok(self.log_start_offset)
    }

    /// Deletes whole segments beyond `retention_ms` (by their largest
    /// timestamp) or while the log exceeds `retention_bytes` (-1 = unlimited
    /// for both), plus segments below the log start offset; never the active
    /// segment unless it is itself deletable, in which case it is rolled
    /// first. Returns the number of segments deleted.
    pub fn enforce_retention(
        &mut self,
        now: TimestampMs,
        retention_ms: i64,
        retention_bytes: i64,
    ) -> Result<usize, StorageError> {
        self.ensure_open()?;
        let mut deleted = self.delete_log_start_breached_segments()?;
        if retention_bytes >= 0 {
            let size = self.size_bytes() as i64;
            if size >= retention_bytes {
                let mut diff = size - retention_bytes;
                let n = self.deletable_prefix(|s, _| {
                    let fits = diff - s.size_bytes() as i64 >= 0;
                    if fits {
                        diff -= s.size_bytes() as i64;
                    }
                    fits
                });
                deleted += self.delete_oldest(n, now)?;
            }
        }
        if retention_ms >= 0 {
            let n = self.deletable_prefix(|s, _| {
                now.0.saturating_sub(s.largest_timestamp().0) > retention_ms
            });
            deleted += self.delete_oldest(n, now)?;
        }
        Ok(deleted)
    }

    /// Applies this log's own `retention.ms` / `retention.bytes`.
    pub fn enforce_configured_retention(
        &mut self,
        now: TimestampMs,
    ) -> Result<usize, StorageError> {
        let (ms, bytes) = (self.config.retention_ms, self.config.retention_bytes);
        self.enforce_retention(now, ms, bytes)
    }

    fn delete_log_start_breached_segments(&mut self) -> Result<usize, StorageError> {
        let log_start = self.log_start_offset;
        let n = self.deletable_prefix(|_, next| next.is_some_and(|n| n.base_offset() <= log_start));
        self.delete_oldest(n, TimestampMs::now())
    }

    /// Kafka's `deletableSegments`: the longest prefix of segments for which
    /// `predicate(segment, next)` holds, never including an empty active
    /// segment.
    fn deletable_prefix(
        &self,
        mut predicate: impl FnMut(&Segment, Option<&Segment>) -> bool,
    ) -> usize {
        let all: Vec<&Segment> = self.segments.values().collect();
        let mut n = 0;
        for (i, s) in all.iter().enumerate() {
            let next = all.get(i + 1).copied();
            if next.is_none() && s.is_empty() {
                break;
            }
            if !predicate(s, next) {
                break;
            }
            n += 1;
        }
        n
    }

    /// Deletes the `n` oldest segments, rolling first if that is all of them.
    fn delete_oldest(&mut self, n: usize, now: TimestampMs) -> Result<usize, StorageError> {
        if n == 0 {
            return Ok(0);
        }
        if n >= self.segments.len() {
            self.roll_at(now)?;
        }
        let victims: Vec<i64> = self.segments.keys().take(n).copied().collect();
        // Advance the log start before the segments disappear from lookups.
        if let Some(next_base) = self.segments.keys().nth(n) {
            self.log_start_offset = self.log_start_offset.max(Offset(*next_base));
        }
        for base in &victims {
            if let Some(segment) = self.segments.remove(base) {
                info!(dir = %self.dir.display(), base_offset = base, "deleting segment");
                segment.delete()?;
            }
        }
        self.txns.truncate_before(self.log_start_offset);
        self.check_invariants();
        Ok(victims.len())
    }

    /// Flushes, seals the active segment (trimming preallocated files) and
    /// writes a producer snapshot. Further calls fail with `Closed`.
    pub fn close(&mut self) -> Result<(), StorageError> {
        if self.closed {
            return Ok(());
        }
        self.flush_at(TimestampMs::now())?;
        self.active_mut().seal()?;
        self.producers.set_map_end_offset(self.log_end_offset);
        self.producers
            .write_snapshot(&self.dir, self.log_end_offset)?;
        prune_snapshots(&self.dir, self.log_end_offset, SNAPSHOTS_KEPT)?;
        self.closed = true;
        Ok(())
    }

    /// Closes without flushing or trimming, dropping every file handle and
    /// map (before the directory is deleted).
    pub(crate) fn close_for_delete(&mut self) {
        self.closed = true;
        self.segments.clear();
        self.unsynced_seals.clear();
    }
}

/// Kafka's LogValidator rule for CreateTime topics: every record's
/// timestamp (other than -1, none) lies within
/// `[now - message.timestamp.before.max.ms, now + message.timestamp.after.max.ms]`.
/// Without it one far-future timestamp holds back time retention of its
/// segment and every later one. A compressed batch (stored as sent) is
/// judged by its header's first and max timestamps, which are the ones
/// the time index and retention use.
fn check_timestamps(
    config: &LogConfig,
    batch: &RecordBatch<'_>,
    check: &ProduceCheck,
    now: TimestampMs,
) -> Result<(), StorageError> {
    let lower = now.0.saturating_sub(config.message_timestamp_before_max_ms.max(0));
    let upper = now.0.saturating_add(config.message_timestamp_after_max_ms.max(0));
    let outside = |ts: i64| ts != TimestampMs::NONE.0 && (ts < lower || ts > upper);
    let error = |record_index: usize, timestamp: i64, offset_delta: i64| StorageError::InvalidTimestamp {
        record_index,
        timestamp,
        offset_delta,
        lower,
        upper,
    };
    match check.records_max_timestamp {
        // Uncompressed: the records were walked; find the first one out of
        // range only when the bounds say there is one.
        Some(max) => {
            let min = check.records_min_timestamp.unwrap_or(TimestampMs::NONE);
            if outside(min.0) || outside(max.0) {
                for (i, record) in RecordIter::new(batch).flatten().enumerate() {
                    let ts = record.timestamp(batch).0;
                    if outside(ts) {
                        return Err(error(i, ts, i64::from(record.offset_delta)));
                    }
                }
            }
            Ok(())
        }
        None => {
            if outside(batch.base_timestamp().0) {
                Err(error(0, batch.base_timestamp().0, 0))
            } else if outside(batch.max_timestamp().0) {
                let last = batch.last_offset_delta();
                Err(error(usize::try_from(last).unwrap_or(0), batch.max_timestamp().0, i64::from(last)))
            } else {
                Ok(())
            }
        }
    }
}

#[cfg(test)]
mod tests;
