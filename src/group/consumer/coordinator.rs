//! The consumer group coordinator (KIP-848): the map of consumer groups
//! behind one lock, heartbeats, session and revocation timeouts, and the
//! checks OffsetCommit / OffsetFetch make against member epochs. The
//! offsets themselves go through the classic coordinator's offsets store
//! (`GroupCoordinator::commit_offsets_unmanaged`), so the two group types
//! share one durable offsets file, as both share `__consumer_offsets` in Kafka.
//!
//! Groups are not durable yet: after a restart a consumer group's offsets
//! are there (as an empty classic group, which the first consumer-protocol
//! member takes over) but its members rejoin from epoch 0.

use std::collections::BTreeMap;
use std::sync::{Mutex, MutexGuard};

use super::assignor::Assignors;
use super::state::*;
use crate::group::errors::*;

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

/// The consumer groups of this broker.
#[derive(Debug, Default)]
pub struct ConsumerGroupCoordinator {
    config: ConsumerGroupConfig,
    groups: Mutex<BTreeMap<String, ConsumerGroup>>,
}

impl ConsumerGroupCoordinator {
    pub fn new(config: ConsumerGroupConfig) -> ConsumerGroupCoordinator {
        ConsumerGroupCoordinator { config, groups: Mutex::new(BTreeMap::new()) }
    }

    pub fn config(&self) -> &ConsumerGroupConfig {
        &self.config
    }

    fn groups(&self) -> MutexGuard<'_, BTreeMap<String, ConsumerGroup>> {
        self.groups.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn limits(&self) -> Limits {
        Limits {
            session_timeout_ms: self.config.session_timeout_ms,
            max_size: self.config.max_size,
            assignors: self.config.assignors,
        }
    }

    /// One heartbeat of `group_id`. A group that does not exist is created
    /// by a joining member (epoch 0) once `take_over` agrees (no classic
    /// group of that id with members); other epochs answer UNKNOWN_MEMBER_ID
    /// so that the member rejoins.
    pub fn heartbeat(
        &self,
        group_id: &str,
        hb: Heartbeat,
        now_ms: i64,
        take_over: &dyn Fn() -> Result<(), i16>,
        topics: &dyn Topics,
    ) -> Result<HeartbeatOutcome, HeartbeatError> {
        let mut groups = self.groups();
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
        let result = group.heartbeat(hb, now_ms, self.limits(), topics);
        if group.group_epoch != before {
            tracing::info!(
                group = group_id,
                member = %member_id,
                group_epoch = group.group_epoch,
                members = group.members.len(),
                "consumer group epoch bumped"
            );
        }
        result
    }

    /// Removes the members whose session (or revocation time) ended by
    /// `now_ms`, and moves groups whose subscribed topics changed to a new
    /// target; returns how many members were removed.
    pub fn expire_members(&self, now_ms: i64, topics: &dyn Topics) -> usize {
        let mut groups = self.groups();
        let mut removed = 0;
        for group in groups.values_mut() {
            for member_id in group.expired_members(now_ms) {
                tracing::info!(group = %group.group_id, member = %member_id, "consumer group member fenced: session or rebalance timeout");
                group.remove_member(&member_id, topics);
                removed += 1;
            }
            if group.refresh(topics) {
                tracing::info!(group = %group.group_id, group_epoch = group.group_epoch, "consumer group topics changed");
            }
        }
        removed
    }

    /// Whether `group_id` is a consumer group.
    pub fn contains(&self, group_id: &str) -> bool {
        self.groups().contains_key(group_id)
    }

    /// A classic member wants `group_id`: refused (INCONSISTENT_GROUP_PROTOCOL)
    /// while the consumer group has members; an empty one is dropped so
    /// that the classic protocol can take the id (its offsets stay).
    pub fn release_to_classic(&self, group_id: &str) -> Result<(), i16> {
        let mut groups = self.groups();
        match groups.get(group_id) {
            None => Ok(()),
            Some(g) if g.members.is_empty() => {
                groups.remove(group_id);
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
        let groups = self.groups();
        let group = groups.get(group_id)?;
        Some(group.validate_offset_commit(member_id, member_epoch, api_version, transactional))
    }

    /// OffsetFetch check (v9+ member id and epoch); None when not a consumer group.
    pub fn validate_offset_fetch(&self, group_id: &str, member_id: Option<&str>, member_epoch: i32) -> Option<Option<i16>> {
        let groups = self.groups();
        let group = groups.get(group_id)?;
        Some(group.validate_offset_fetch(member_id, member_epoch))
    }

    /// (group id, state) of every consumer group, in id order.
    pub fn list(&self) -> Vec<(String, ConsumerGroupState)> {
        self.groups().values().map(|g| (g.group_id.clone(), g.state())).collect()
    }

    /// A copy of one group, for describing it.
    pub fn snapshot(&self, group_id: &str) -> Option<ConsumerGroup> {
        self.groups().get(group_id).cloned()
    }

    /// DeleteGroups of a consumer group: Some(true) deleted (it was
    /// empty), Some(false) not empty, None not a consumer group.
    pub fn delete(&self, group_id: &str) -> Option<bool> {
        let mut groups = self.groups();
        let empty = groups.get(group_id)?.members.is_empty();
        if empty {
            groups.remove(group_id);
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
