//! The consumer group coordinator (KIP-848): the map of consumer groups
//! behind one lock, heartbeats, session and revocation timeouts, and the
//! checks OffsetCommit / OffsetFetch make against member epochs. The
//! offsets themselves go through the classic coordinator's offsets store
//! (`GroupCoordinator::commit_offsets_unmanaged`), so the two group types
//! share one durable offsets file, as both share `__consumer_offsets` in Kafka.
//!
//! Each group's state is durable as one snapshot record in the same store
//! (`durable`), written whenever it changes (queued under the lock, so in
//! decision order, and awaited before the heartbeat is answered); a
//! restart restores the groups and their members carry on in their epochs.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex, MutexGuard};

use tokio::sync::oneshot;

use super::assignor::Assignors;
use super::state::*;
use crate::group::errors::*;
use crate::group::offsets_store::{OffsetsStore, StoreRecord};
use crate::group::coordinator::expired_offsets;
use crate::group::StoreError;
use crate::types::TimestampMs;

/// A durable write queued for a heartbeat's changes: await it before answering.
pub type PendingWrite = oneshot::Receiver<Result<(), StoreError>>;

/// Broker settings of consumer groups (Kafka property names in the docs).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ConsumerGroupConfig {
    /// `group.consumer.session.timeout.ms` (45000).
    pub session_timeout_ms: i32,
    /// `group.consumer.heartbeat.interval.ms` (5000).
    pub heartbeat_interval_ms: i32,
    /// `group.consumer.max.size` (Integer.MAX_VALUE).
    pub max_size: usize,
    /// `group.consumer.assignors` (uniform,range).
    pub assignors: Assignors,
}

impl Default for ConsumerGroupConfig {
    fn default() -> ConsumerGroupConfig {
        ConsumerGroupConfig {
            session_timeout_ms: 45_000,
            heartbeat_interval_ms: 5_000,
            max_size: i32::MAX as usize,
            assignors: Assignors::default(),
        }
    }
}

/// Upper bound on consumer groups (a join that would create more answers
/// COORDINATOR_NOT_AVAILABLE), as the classic coordinator's `MAX_GROUPS`.
pub const MAX_CONSUMER_GROUPS: usize = 100_000;

/// The largest snapshot kept durably (the store's record bound, less the
/// framing).
pub const MAX_SNAPSHOT_BYTES: usize = crate::group::offsets_store::MAX_RECORD_BYTES - 4096;

/// The consumer groups of this broker.
#[derive(Debug, Default)]
pub struct ConsumerGroupCoordinator {
    config: ConsumerGroupConfig,
    groups: Mutex<Groups>,
    /// Where snapshots go; None keeps the groups in memory only (tests).
    store: Option<Arc<OffsetsStore>>,
}

#[derive(Debug, Default)]
struct Groups {
    groups: BTreeMap<String, ConsumerGroup>,
    /// The last snapshot written of each group.
    persisted: HashMap<String, Vec<u8>>,
}

impl ConsumerGroupCoordinator {
    /// In memory only.
    pub fn new(config: ConsumerGroupConfig) -> ConsumerGroupCoordinator {
        ConsumerGroupCoordinator { config, groups: Mutex::new(Groups::default()), store: None }
    }

    /// Durable in `store`, with the groups it holds restored (members get
    /// a new session from now).
    pub fn open(config: ConsumerGroupConfig, store: Arc<OffsetsStore>, topics: &dyn Topics, now_ms: i64) -> ConsumerGroupCoordinator {
        let c = ConsumerGroupCoordinator { config, groups: Mutex::new(Groups::default()), store: Some(store.clone()) };
        let limits = c.limits();
        let mut state = c.groups();
        for (group_id, bytes) in store.consumer_groups() {
            match ConsumerGroup::restore(group_id.clone(), &bytes, now_ms, limits, topics) {
                Some(g) => {
                    state.persisted.insert(group_id.clone(), bytes);
                    state.groups.insert(group_id, g);
                }
                None => tracing::warn!(group = %group_id, "consumer group snapshot does not decode; group dropped"),
            }
        }
        if !state.groups.is_empty() {
            tracing::info!(groups = state.groups.len(), "restored consumer groups (KIP-848)");
        }
        drop(state);
        c
    }

    /// Queues the group's snapshot if it changed since the last one.
    fn persist(&self, state: &mut Groups, group_id: &str) -> Result<Option<PendingWrite>, StoreError> {
        let Some(store) = &self.store else { return Ok(None) };
        let Some(g) = state.groups.get(group_id) else { return Ok(None) };
        let mut snapshot = g.snapshot();
        if snapshot.len() > MAX_SNAPSHOT_BYTES {
            // Too large for one store record: the group goes on in memory
            // only (its stale state is removed), as a restart would find it
            // gone and its members rejoin.
            tracing::warn!(group = group_id, bytes = snapshot.len(), "consumer group state too large to keep durably");
            snapshot = Vec::new();
        }
        if state.persisted.get(group_id) == Some(&snapshot) {
            return Ok(None);
        }
        let rx = store.submit(vec![StoreRecord::ConsumerGroup { group: group_id.to_string(), snapshot: snapshot.clone() }])?;
        state.persisted.insert(group_id.to_string(), snapshot);
        Ok(Some(rx))
    }

    pub fn config(&self) -> &ConsumerGroupConfig {
        &self.config
    }

    fn groups(&self) -> MutexGuard<'_, Groups> {
        self.groups.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn limits(&self) -> Limits {
        Limits {
            session_timeout_ms: self.config.session_timeout_ms,
            max_size: self.config.max_size,
            assignors: self.config.assignors,
        }
    }

    /// The limits of one heartbeat: the group's own session timeout
    /// (`consumer.session.timeout.ms`) when it has one.
    fn limits_with(&self, session_timeout_ms: Option<i32>) -> Limits {
        let mut limits = self.limits();
        if let Some(ms) = session_timeout_ms.filter(|ms| *ms > 0) {
            limits.session_timeout_ms = ms;
        }
        limits
    }

    /// One heartbeat of `group_id`. A group that does not exist is created
    /// by a joining member (epoch 0) once `take_over` agrees (no classic
    /// group of that id with members); other epochs answer UNKNOWN_MEMBER_ID
    /// so that the member rejoins. `session_timeout_ms` is the group's
    /// `consumer.session.timeout.ms` (None: the broker's).
    pub fn heartbeat(
        &self,
        group_id: &str,
        hb: Heartbeat,
        now_ms: i64,
        take_over: &dyn Fn() -> Result<(), i16>,
        topics: &dyn Topics,
    ) -> Result<(HeartbeatOutcome, Option<PendingWrite>), HeartbeatError> {
        self.heartbeat_with(group_id, hb, now_ms, None, take_over, topics)
    }

    /// [`Self::heartbeat`] with the group's own session timeout.
    pub fn heartbeat_with(
        &self,
        group_id: &str,
        hb: Heartbeat,
        now_ms: i64,
        session_timeout_ms: Option<i32>,
        take_over: &dyn Fn() -> Result<(), i16>,
        topics: &dyn Topics,
    ) -> Result<(HeartbeatOutcome, Option<PendingWrite>), HeartbeatError> {
        let mut state = self.groups();
        let groups = &mut state.groups;
        if !groups.contains_key(group_id) {
            if hb.member_epoch != 0 {
                return Err(HeartbeatError {
                    code: UNKNOWN_MEMBER_ID,
                    message: format!("Consumer group {group_id} not found."),
                });
            }
            if groups.len() >= MAX_CONSUMER_GROUPS {
                return Err(HeartbeatError {
                    code: COORDINATOR_NOT_AVAILABLE,
                    message: "Too many consumer groups.".to_string(),
                });
            }
            if let Err(code) = take_over() {
                return Err(HeartbeatError { code, message: format!("Group {group_id} is not a consumer group.") });
            }
            tracing::info!(group = group_id, "creating consumer group (KIP-848)");
            groups.insert(group_id.to_string(), ConsumerGroup::new(group_id.to_string()));
        }
        let Some(group) = groups.get_mut(group_id) else {
            return Err(HeartbeatError { code: UNKNOWN_SERVER_ERROR, message: String::new() });
        };
        let member_id = hb.member_id.clone();
        let before = group.group_epoch;
        let result = group.heartbeat(hb, now_ms, self.limits_with(session_timeout_ms), topics);
        if group.group_epoch != before {
            tracing::info!(
                group = group_id,
                member = %member_id,
                group_epoch = group.group_epoch,
                members = group.members.len(),
                "consumer group epoch bumped"
            );
        }
        let outcome = result?;
        let write = self.persist(&mut state, group_id).map_err(|e| {
            tracing::warn!(group = group_id, error = %e, "consumer group state not queued");
            HeartbeatError { code: e.error_code(), message: e.to_string() }
        })?;
        Ok((outcome, write))
    }

    /// Removes the members whose session (or revocation time) ended by
    /// `now_ms`, and moves groups whose subscribed topics changed to a new
    /// target; returns how many members were removed.
    pub fn expire_members(&self, now_ms: i64, topics: &dyn Topics) -> usize {
        let mut state = self.groups();
        let mut removed = 0;
        let mut changed = Vec::new();
        for group in state.groups.values_mut() {
            let before = group.group_epoch;
            for member_id in group.expired_members(now_ms) {
                tracing::info!(group = %group.group_id, member = %member_id, "consumer group member fenced: session or rebalance timeout");
                group.remove_member(&member_id, topics);
                removed += 1;
            }
            if group.refresh(topics) {
                tracing::info!(group = %group.group_id, group_epoch = group.group_epoch, "consumer group topics changed");
            }
            if group.group_epoch != before {
                changed.push(group.group_id.clone());
            }
        }
        for group_id in changed {
            if let Err(e) = self.persist(&mut state, &group_id) {
                tracing::warn!(group = %group_id, error = %e, "consumer group state not queued");
                state.persisted.remove(&group_id);
            }
        }
        removed
    }

    /// Expires committed offsets of consumer groups as Kafka does (its
    /// `ConsumerGroup.offsetExpirationCondition`, with the classic groups'
    /// rule in `coordinator::expired_offsets`): offsets of topics no member
    /// subscribes to expire `retention_ms` after their commit (or at their
    /// explicit expire time), so every offset of an empty group does; an
    /// empty group left without offsets is deleted (state and offsets).
    /// Groups with offsets pending in a transaction are left alone. Returns
    /// the offsets removed and the writes to await.
    pub fn expire_offsets(&self, now: TimestampMs, retention_ms: i64) -> (usize, Vec<PendingWrite>) {
        let Some(store) = &self.store else { return (0, Vec::new()) };
        let mut state = self.groups();
        let mut removed = 0;
        let mut writes = Vec::new();
        let group_ids: Vec<String> = state.groups.keys().cloned().collect();
        for group_id in group_ids {
            if !store.pending_partitions(&group_id).is_empty() {
                continue;
            }
            let Some(group) = state.groups.get(&group_id) else { continue };
            let (expired, all_expired) = store.with_group(&group_id, |stored| match stored {
                None => (Vec::new(), true),
                Some(stored) => expired_offsets(stored, now, retention_ms, &|c| c.commit_timestamp, &|topic| {
                    group.is_subscribed_to_topic(topic)
                }),
            });
            let records = if all_expired && group.members.is_empty() {
                tracing::info!(group = %group_id, expired = expired.len(), "consumer group expired: no members and no offsets left");
                state.groups.remove(&group_id);
                state.persisted.remove(&group_id);
                vec![StoreRecord::GroupTombstone { group: group_id.clone() }]
            } else {
                expired
                    .iter()
                    .map(|(topic, partition)| StoreRecord::OffsetTombstone {
                        group: group_id.clone(),
                        topic: topic.clone(),
                        partition: *partition,
                    })
                    .collect()
            };
            removed += expired.len();
            if records.is_empty() {
                continue;
            }
            match store.submit(records) {
                Ok(rx) => writes.push(rx),
                Err(e) => tracing::warn!(group = %group_id, error = %e, "consumer group offset expiry not written"),
            }
        }
        (removed, writes)
    }

    /// Whether `group_id` is a consumer group.
    pub fn contains(&self, group_id: &str) -> bool {
        self.groups().groups.contains_key(group_id)
    }

    /// A classic member wants `group_id`: refused (INCONSISTENT_GROUP_PROTOCOL)
    /// while the consumer group has members; an empty one is dropped so
    /// that the classic protocol can take the id (its offsets stay).
    pub fn release_to_classic(&self, group_id: &str) -> Result<(), i16> {
        let mut state = self.groups();
        match state.groups.get(group_id) {
            None => Ok(()),
            Some(g) if g.members.is_empty() => {
                state.groups.remove(group_id);
                if state.persisted.remove(group_id).is_some() {
                    if let Some(store) = &self.store {
                        // The offsets stay; only the group's state goes.
                        let _ = store.submit(vec![StoreRecord::ConsumerGroup { group: group_id.to_string(), snapshot: Vec::new() }]);
                    }
                }
                Ok(())
            }
            Some(_) => Err(INCONSISTENT_GROUP_PROTOCOL),
        }
    }

    /// OffsetCommit / TxnOffsetCommit check: None when `group_id` is not a
    /// consumer group, else the error (or None = allowed).
    pub fn validate_offset_commit(
        &self,
        group_id: &str,
        member_id: &str,
        member_epoch: i32,
        api_version: i16,
        transactional: bool,
    ) -> Option<Option<i16>> {
        let state = self.groups();
        let group = state.groups.get(group_id)?;
        Some(group.validate_offset_commit(member_id, member_epoch, api_version, transactional))
    }

    /// OffsetFetch check (v9+ member id and epoch); None when not a consumer group.
    pub fn validate_offset_fetch(&self, group_id: &str, member_id: Option<&str>, member_epoch: i32) -> Option<Option<i16>> {
        let state = self.groups();
        let group = state.groups.get(group_id)?;
        Some(group.validate_offset_fetch(member_id, member_epoch))
    }

    /// (group id, state) of every consumer group, in id order.
    pub fn list(&self) -> Vec<(String, ConsumerGroupState)> {
        self.groups().groups.values().map(|g| (g.group_id.clone(), g.state())).collect()
    }

    /// A copy of one group, for describing it.
    pub fn snapshot(&self, group_id: &str) -> Option<ConsumerGroup> {
        self.groups().groups.get(group_id).cloned()
    }

    /// DeleteGroups of a consumer group: Some(true) deleted (it was
    /// empty), Some(false) not empty, None not a consumer group.
    pub fn delete(&self, group_id: &str) -> Option<bool> {
        let mut state = self.groups();
        let empty = state.groups.get(group_id)?.members.is_empty();
        if empty {
            // The caller writes the group tombstone (state and offsets).
            state.groups.remove(group_id);
            state.persisted.remove(group_id);
        }
        Some(empty)
    }
}

/// The metadata image as the state machine's topics (internal topics are
/// never matched by a regex).
impl Topics for crate::controller::MetadataImage {
    fn topic(&self, name: &str) -> Option<TopicMeta> {
        crate::controller::MetadataImage::topic(self, name).map(|t| TopicMeta { id: t.id, partitions: t.partitions })
    }

    fn names(&self) -> Vec<String> {
        self.topics.values().filter(|t| !t.is_internal()).map(|t| t.name.clone()).collect()
    }
}
