//! The classic group coordinator: JoinGroup / SyncGroup / Heartbeat /
//! LeaveGroup rebalancing, offset commit and fetch, group listing,
//! description and deletion, offset deletion and expiry, following the
//! behaviour of Kafka's classic group coordinator (GroupMetadataManager's
//! classic parts and OffsetMetadataManager).
//!
//! Concurrency: one `std::sync::Mutex` over the group map and one per
//! group. Locks are never held across an `.await`; when both are needed the
//! map lock is taken first. Requests that must wait (JoinGroup until the
//! rebalance completes, SyncGroup until the leader's assignment) park a
//! `oneshot` sender in the member and await the receiver outside the lock.
//! Timers (initial rebalance delay, rebalance timeout, sync timeout,
//! session timeouts, pending member expiry) are tokio tasks that re-check
//! an epoch or token under the group lock when they fire, so cancelling a
//! timer is bumping a number. Durable writes are queued to the offsets
//! store while the group lock is held (so their order matches the order of
//! the decisions) and awaited after it is released.

use std::collections::{HashMap, HashSet};
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use bytes::Bytes;
use tokio::sync::oneshot;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::group::errors::*;
use crate::group::messages::*;
use crate::group::model::{generate_member_id, Group, Member};
use crate::group::offsets_store::{CommittedOffset, OffsetsStore, StoreRecord, StoredGroup};
use crate::group::state::GroupState;
use crate::types::{Offset, TimestampMs};

/// How long a new member may wait in a JoinGroup before it is dropped
/// (Kafka's classic new-member join timeout, 5 minutes).
pub const NEW_MEMBER_JOIN_TIMEOUT_MS: i32 = 5 * 60 * 1000;
/// Upper bound on the number of groups (joins or commits that would create
/// more answer COORDINATOR_NOT_AVAILABLE).
pub const MAX_GROUPS: usize = 100_000;
/// Upper bound on member ids handed out with MEMBER_ID_REQUIRED and not yet
/// used, per group.
pub const MAX_PENDING_MEMBERS_PER_GROUP: usize = 10_000;
/// Upper bound on the bytes one group's members keep alive (ids, protocol
/// metadata, assignments; `Member::retained_bytes`). A JoinGroup that would
/// pass it is refused with GROUP_MAX_SIZE_REACHED, as a join beyond
/// `group.max.size` is: counting members alone would let a few members
/// with 100 MB subscriptions hold gigabytes. Kafka has no such bound; its
/// subscriptions are a few hundred bytes, far below it.
pub const MAX_MEMBER_BYTES_PER_GROUP: usize = 64 * 1024 * 1024;
/// Upper bound on live committed offsets over all groups; commits that
/// would add new partitions beyond it fail with UNKNOWN_SERVER_ERROR.
pub const MAX_COMMITTED_OFFSETS: usize = 10_000_000;
/// The only group type this coordinator serves.
pub const CLASSIC_GROUP_TYPE: &str = "classic";

/// Broker settings of the group coordinator (Kafka property names in the
/// field docs).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GroupConfig {
    /// `group.min.session.timeout.ms` (6000).
    pub min_session_timeout_ms: i32,
    /// `group.max.session.timeout.ms` (1800000).
    pub max_session_timeout_ms: i32,
    /// `group.initial.rebalance.delay.ms` (3000).
    pub initial_rebalance_delay_ms: i32,
    /// `group.max.size` (Kafka: Integer.MAX_VALUE).
    pub max_size: usize,
    /// `offsets.retention.minutes` in ms (7 days).
    pub offsets_retention_ms: i64,
    /// `offset.metadata.max.bytes` (4096).
    pub offset_metadata_max_bytes: usize,
}

impl Default for GroupConfig {
    fn default() -> GroupConfig {
        GroupConfig {
            min_session_timeout_ms: 6_000,
            max_session_timeout_ms: 1_800_000,
            initial_rebalance_delay_ms: 3_000,
            max_size: i32::MAX as usize,
            offsets_retention_ms: 10_080 * 60 * 1000,
            offset_metadata_max_bytes: 4096,
        }
    }
}

type GroupRef = Arc<Mutex<Group>>;

fn lock_group(g: &GroupRef) -> MutexGuard<'_, Group> {
    // A panic under the lock (an asserted invariant) must not take the
    // whole group down with poisoning.
    g.lock().unwrap_or_else(|e| e.into_inner())
}

fn ms(ms: i64) -> Duration {
    Duration::from_millis(ms.max(0) as u64)
}

fn now() -> TimestampMs {
    TimestampMs::now()
}

struct Inner {
    config: GroupConfig,
    store: Arc<OffsetsStore>,
    groups: Mutex<HashMap<String, GroupRef>>,
    active: AtomicBool,
    cancel: CancellationToken,
    tasks: TaskTracker,
    next_timer_token: AtomicU64,
}

impl Inner {
    fn groups(&self) -> MutexGuard<'_, HashMap<String, GroupRef>> {
        self.groups.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn get_group(&self, group_id: &str) -> Option<GroupRef> {
        self.groups().get(group_id).cloned()
    }

    /// The group, created Empty if missing and `create` is set.
    fn get_or_create_group(&self, group_id: &str, create: bool) -> Result<Option<GroupRef>, i16> {
        let mut map = self.groups();
        if let Some(g) = map.get(group_id) {
            return Ok(Some(g.clone()));
        }
        if !create {
            return Ok(None);
        }
        if map.len() >= MAX_GROUPS {
            tracing::warn!(
                group = group_id,
                limit = MAX_GROUPS,
                "too many groups; refusing to create another"
            );
            return Err(COORDINATOR_NOT_AVAILABLE);
        }
        let g = Arc::new(Mutex::new(Group::new(
            group_id.to_string(),
            GroupState::Empty,
            now(),
        )));
        map.insert(group_id.to_string(), g.clone());
        Ok(Some(g))
    }

    /// Removes the map entry if it still is this group.
    fn remove_group_entry(map: &mut HashMap<String, GroupRef>, group_id: &str, g: &GroupRef) {
        if map.get(group_id).is_some_and(|cur| Arc::ptr_eq(cur, g)) {
            map.remove(group_id);
        }
    }

    fn all_groups(&self) -> Vec<GroupRef> {
        self.groups().values().cloned().collect()
    }
}

/// Outcome of the locked part of a JoinGroup or SyncGroup.
enum Outcome<T> {
    Done(T),
    Wait(oneshot::Receiver<T>),
}

impl<T> Outcome<T> {
    /// The response, waiting for it if the group must first complete a
    /// rebalance: `dropped` if the waiter was abandoned, `cancelled` if the
    /// coordinator shuts down meanwhile.
    async fn settle(
        self,
        cancel: &CancellationToken,
        dropped: impl FnOnce() -> T,
        cancelled: impl FnOnce() -> T,
    ) -> T {
        match self {
            Outcome::Done(r) => r,
            Outcome::Wait(rx) => tokio::select! {
                biased;
                r = rx => r.unwrap_or_else(|_| dropped()),
                _ = cancel.cancelled() => cancelled(),
            },
        }
    }
}

/// Which join-phase timer fired.
#[derive(Clone, Copy)]
enum JoinTimer {
    /// Rebalance timeout: complete the join phase with whoever joined.
    Complete,
    /// Initial delay of a group's first rebalance.
    Initial { delay_ms: i32, remaining_ms: i32 },
}

/// Everything the locked operations need besides the group itself.
struct Ctx<'a> {
    inner: &'a Arc<Inner>,
    group_ref: &'a GroupRef,
}

impl Ctx<'_> {
    fn config(&self) -> &GroupConfig {
        &self.inner.config
    }

    fn spawn<F>(&self, fut: F)
    where
        F: std::future::Future<Output = ()> + Send + 'static,
    {
        let cancel = self.inner.cancel.clone();
        self.inner.tasks.spawn(async move {
            tokio::select! {
                _ = cancel.cancelled() => {}
                _ = fut => {}
            }
        });
    }

    // ----- timers -----------------------------------------------------

    /// (Re)arms a member's session timer (Kafka's
    /// `rescheduleClassicGroupMemberHeartbeat`).
    fn schedule_heartbeat(&self, g: &mut Group, member_id: &str, timeout_ms: i32) {
        let Some(m) = g.members.get_mut(member_id) else {
            return;
        };
        let deadline = Instant::now() + ms(i64::from(timeout_ms));
        let shortened = deadline < m.heartbeat_deadline;
        m.heartbeat_deadline = deadline;
        if m.heartbeat_timer != 0 && !shortened {
            // The running task re-reads the deadline when it wakes.
            return;
        }
        let token = self.inner.next_timer_token.fetch_add(1, Ordering::Relaxed) + 1;
        m.heartbeat_timer = token;
        let inner = self.inner.clone();
        let group_ref = self.group_ref.clone();
        let member_id = member_id.to_string();
        self.spawn(async move {
            let mut wake_at = deadline;
            loop {
                tokio::time::sleep_until(wake_at).await;
                let mut g = lock_group(&group_ref);
                if g.is(GroupState::Dead) {
                    return;
                }
                let Some(m) = g.members.get_mut(&member_id) else {
                    return;
                };
                if m.heartbeat_timer != token {
                    return;
                }
                if m.heartbeat_deadline > Instant::now() {
                    wake_at = m.heartbeat_deadline;
                    continue;
                }
                m.heartbeat_timer = 0;
                if !m.has_satisfied_heartbeat() {
                    tracing::info!(group = %g.group_id, member = %member_id, "member session expired; removing it from the group");
                    let ctx = Ctx { inner: &inner, group_ref: &group_ref };
                    ctx.remove_member_and_update_group(&mut g, &member_id);
                }
                return;
            }
        });
    }

    /// Expires a member id handed out with MEMBER_ID_REQUIRED that was not
    /// used within the session timeout.
    fn schedule_pending_member_expiry(&self, member_id: &str, timeout_ms: i32) {
        let inner = self.inner.clone();
        let group_ref = self.group_ref.clone();
        let member_id = member_id.to_string();
        self.spawn(async move {
            tokio::time::sleep(ms(i64::from(timeout_ms))).await;
            let mut g = lock_group(&group_ref);
            if g.is(GroupState::Dead) || !g.is_pending_member(&member_id) {
                return;
            }
            tracing::info!(group = %g.group_id, member = %member_id, "pending member expired");
            g.remove_member(&member_id);
            if g.is(GroupState::PreparingRebalance) && g.has_all_members_joined() {
                Ctx {
                    inner: &inner,
                    group_ref: &group_ref,
                }
                .complete_join(&mut g);
            }
        });
    }

    fn schedule_join_timer(&self, g: &mut Group, delay_ms: i32, kind: JoinTimer) {
        g.join_timer_epoch += 1;
        let epoch = g.join_timer_epoch;
        let inner = self.inner.clone();
        let group_ref = self.group_ref.clone();
        self.spawn(async move {
            tokio::time::sleep(ms(i64::from(delay_ms))).await;
            let mut g = lock_group(&group_ref);
            if g.join_timer_epoch != epoch || g.is(GroupState::Dead) {
                return;
            }
            let ctx = Ctx {
                inner: &inner,
                group_ref: &group_ref,
            };
            match kind {
                JoinTimer::Complete => ctx.complete_join(&mut g),
                JoinTimer::Initial {
                    delay_ms,
                    remaining_ms,
                } => ctx.try_complete_initial_rebalance(&mut g, delay_ms, remaining_ms),
            }
        });
    }

    fn cancel_join_timer(&self, g: &mut Group) {
        g.join_timer_epoch += 1;
    }

    fn schedule_pending_sync(&self, g: &mut Group) {
        g.sync_timer_epoch += 1;
        let epoch = g.sync_timer_epoch;
        let generation_id = g.generation_id;
        let timeout_ms = g.rebalance_timeout_ms();
        let inner = self.inner.clone();
        let group_ref = self.group_ref.clone();
        self.spawn(async move {
            tokio::time::sleep(ms(i64::from(timeout_ms))).await;
            let mut g = lock_group(&group_ref);
            if g.sync_timer_epoch != epoch {
                return;
            }
            Ctx {
                inner: &inner,
                group_ref: &group_ref,
            }
            .expire_pending_sync(&mut g, generation_id);
        });
    }

    fn remove_sync_expiration(&self, g: &mut Group) {
        g.pending_sync_members.clear();
        g.sync_timer_epoch += 1;
    }

    // ----- rebalance machinery ----------------------------------------

    fn try_complete_initial_rebalance(&self, g: &mut Group, delay_ms: i32, remaining_ms: i32) {
        if g.new_member_added && remaining_ms != 0 {
            // Another member arrived: wait a little longer.
            g.new_member_added = false;
            let new_delay_ms = self.config().initial_rebalance_delay_ms.min(remaining_ms);
            let new_remaining_ms = (remaining_ms - delay_ms).max(0);
            self.schedule_join_timer(
                g,
                new_delay_ms,
                JoinTimer::Initial {
                    delay_ms: new_delay_ms,
                    remaining_ms: new_remaining_ms,
                },
            );
        } else {
            self.complete_join(g);
        }
    }

    fn prepare_rebalance(&self, g: &mut Group, reason: &str) {
        if g.is(GroupState::CompletingRebalance) {
            self.reset_and_propagate_assignment_error(g, REBALANCE_IN_PROGRESS);
        }
        self.remove_sync_expiration(g);
        let initial = g.is(GroupState::Empty);
        if initial {
            let delay_ms = self.config().initial_rebalance_delay_ms;
            let remaining_ms = (g.rebalance_timeout_ms() - delay_ms).max(0);
            self.schedule_join_timer(
                g,
                delay_ms,
                JoinTimer::Initial {
                    delay_ms,
                    remaining_ms,
                },
            );
        }
        let old_state = g.state();
        g.transition_to(GroupState::PreparingRebalance, now());
        tracing::info!(group = %g.group_id, from = %old_state, generation = g.generation_id, reason, "preparing to rebalance group");
        if !initial {
            self.maybe_complete_join_else_schedule(g);
        }
    }

    fn maybe_complete_join_else_schedule(&self, g: &mut Group) {
        if g.has_all_members_joined() {
            self.complete_join(g);
        } else {
            let timeout_ms = g.rebalance_timeout_ms();
            self.schedule_join_timer(g, timeout_ms, JoinTimer::Complete);
        }
    }

    fn maybe_prepare_rebalance_or_complete_join(&self, g: &mut Group, reason: &str) {
        if g.state().can_rebalance() {
            self.prepare_rebalance(g, reason);
        } else {
            self.maybe_complete_join_phase(g);
        }
    }

    /// Completes the join phase if everybody joined, except during the
    /// initial (delayed) rebalance.
    fn maybe_complete_join_phase(&self, g: &mut Group) {
        if g.is(GroupState::PreparingRebalance)
            && g.previous_state() != GroupState::Empty
            && g.has_all_members_joined()
        {
            self.complete_join(g);
        }
    }

    /// Kafka's `completeClassicGroupJoin`.
    fn complete_join(&self, g: &mut Group) {
        self.cancel_join_timer(g);
        if !g.is(GroupState::PreparingRebalance) {
            return;
        }
        let not_rejoined: Vec<String> = g
            .members
            .values()
            .filter(|m| !m.is_awaiting_join() && !m.is_static())
            .map(|m| m.member_id.clone())
            .collect();
        if !not_rejoined.is_empty() {
            for id in &not_rejoined {
                g.remove_member(id);
            }
            tracing::info!(group = %g.group_id, members = ?not_rejoined, "removed dynamic members that did not rejoin");
        }
        if !g.maybe_elect_new_joined_leader() && !g.members.is_empty() {
            tracing::warn!(group = %g.group_id, "no member rejoined; waiting another rebalance timeout");
            let timeout_ms = g.rebalance_timeout_ms();
            self.schedule_join_timer(g, timeout_ms, JoinTimer::Complete);
            return;
        }
        g.init_next_generation(now());
        if g.is(GroupState::Empty) {
            tracing::info!(group = %g.group_id, generation = g.generation_id, "group is now empty");
            self.maybe_persist_meta(g);
            return;
        }
        tracing::info!(group = %g.group_id, generation = g.generation_id, members = g.members.len(), "stabilized group");
        let leader_members = g.current_member_metadata();
        let ids = g.member_ids_in_order();
        for id in ids {
            let is_leader = g.is_leader(&id);
            let response = JoinGroupResponse {
                error_code: NONE,
                generation_id: g.generation_id,
                protocol_type: g.protocol_type.clone(),
                protocol_name: g.protocol_name.clone(),
                leader: g.leader_id.clone().unwrap_or_default(),
                skip_assignment: false,
                member_id: id.clone(),
                members: if is_leader {
                    leader_members.clone()
                } else {
                    Vec::new()
                },
            };
            let session_timeout_ms = match g.members.get_mut(&id) {
                Some(m) => {
                    m.complete_join(response);
                    m.is_new = false;
                    m.session_timeout_ms
                }
                None => continue,
            };
            self.schedule_heartbeat(g, &id, session_timeout_ms);
            g.pending_sync_members.insert(id);
        }
        self.schedule_pending_sync(g);
    }

    fn expire_pending_sync(&self, g: &mut Group, generation_id: i32) {
        if generation_id != g.generation_id {
            return;
        }
        if !matches!(
            g.state(),
            GroupState::CompletingRebalance | GroupState::Stable
        ) {
            return;
        }
        if g.pending_sync_members.is_empty() {
            return;
        }
        let pending: Vec<String> = g.pending_sync_members.iter().cloned().collect();
        for id in &pending {
            g.remove_member(id);
        }
        tracing::info!(group = %g.group_id, members = ?pending, "removed members that did not send SyncGroup in time");
        self.prepare_rebalance(g, "members did not sync in time");
    }

    fn remove_pending_sync_member(&self, g: &mut Group, member_id: &str) {
        g.pending_sync_members.remove(member_id);
        match g.state() {
            GroupState::Dead | GroupState::Empty | GroupState::PreparingRebalance => {
                g.sync_timer_epoch += 1
            }
            GroupState::CompletingRebalance | GroupState::Stable => {
                if g.pending_sync_members.is_empty() {
                    g.sync_timer_epoch += 1;
                }
            }
        }
    }

    fn reset_and_propagate_assignment_error(&self, g: &mut Group, error_code: i16) {
        assert!(
            g.is(GroupState::CompletingRebalance),
            "group {} must be CompletingRebalance",
            g.group_id
        );
        for m in g.members.values_mut() {
            m.assignment = Bytes::new();
        }
        self.propagate_assignment(g, error_code);
    }

    fn set_and_propagate_assignment(&self, g: &mut Group, mut assignment: HashMap<String, Bytes>) {
        assert!(
            g.is(GroupState::CompletingRebalance),
            "group {} must be CompletingRebalance",
            g.group_id
        );
        for (id, m) in g.members.iter_mut() {
            m.assignment = assignment.remove(id).unwrap_or_default();
        }
        self.propagate_assignment(g, NONE);
    }

    fn propagate_assignment(&self, g: &mut Group, error_code: i16) {
        let (protocol_type, protocol_name) = if error_code == NONE {
            (g.protocol_type.clone(), g.protocol_name.clone())
        } else {
            (None, None)
        };
        let ids = g.member_ids_in_order();
        for id in ids {
            let Some(m) = g.members.get_mut(&id) else {
                continue;
            };
            let response = SyncGroupResponse {
                error_code,
                protocol_type: protocol_type.clone(),
                protocol_name: protocol_name.clone(),
                assignment: m.assignment.clone(),
            };
            if m.complete_sync(response) {
                let session_timeout_ms = m.session_timeout_ms;
                self.schedule_heartbeat(g, &id, session_timeout_ms);
            }
        }
    }

    /// Removes a failed member (session expiry) and reacts like Kafka.
    fn remove_member_and_update_group(&self, g: &mut Group, member_id: &str) {
        if let Some(m) = g.members.get_mut(member_id) {
            m.complete_join(JoinGroupResponse::error("", UNKNOWN_MEMBER_ID));
        }
        g.remove_member(member_id);
        match g.state() {
            GroupState::Stable | GroupState::CompletingRebalance => {
                self.maybe_prepare_rebalance_or_complete_join(g, "member session expired")
            }
            GroupState::PreparingRebalance if g.has_all_members_joined() => self.complete_join(g),
            _ => {}
        }
    }

    /// Writes the group's metadata if the store already knows the group
    /// and it changed (fire and forget: used when a group becomes Empty so
    /// its Empty-since time survives a restart).
    fn maybe_persist_meta(&self, g: &mut Group) {
        if g.persisted_meta.is_none() {
            return;
        }
        let meta = g.stored_meta();
        if g.persisted_meta.as_ref() == Some(&meta) {
            return;
        }
        match self.inner.store.submit(vec![StoreRecord::GroupMeta {
            group: g.group_id.clone(),
            meta: meta.clone(),
        }]) {
            Ok(_rx) => g.persisted_meta = Some(meta),
            Err(e) => {
                tracing::warn!(group = %g.group_id, error = %e, "could not persist group metadata")
            }
        }
    }

    // ----- JoinGroup ---------------------------------------------------

    fn accept_joining_member(&self, g: &Group, member_id: &str) -> bool {
        let max = self.config().max_size;
        match g.state() {
            GroupState::Empty | GroupState::Dead => true,
            GroupState::PreparingRebalance => {
                g.members
                    .get(member_id)
                    .is_some_and(Member::is_awaiting_join)
                    || g.num_awaiting_join() < max
            }
            GroupState::CompletingRebalance | GroupState::Stable => {
                g.has_member(member_id) || g.members.len() < max
            }
        }
    }

    /// Whether the group's members, with this join's member as the request
    /// describes it, stay within `MAX_MEMBER_BYTES_PER_GROUP`.
    fn join_fits_byte_bound(g: &Group, req: &JoinGroupRequest) -> bool {
        // A new member's id is not chosen yet; charge the longest Kafka
        // generates (client id or instance id, '-', a 36-character UUID).
        let member_id_len = if req.member_id.is_empty() {
            req.group_instance_id.as_deref().unwrap_or(&req.client_id).len() + 37
        } else {
            req.member_id.len()
        };
        let joining = crate::group::model::retained_bytes(
            "",
            req.group_instance_id.as_deref(),
            &req.client_id,
            &req.client_host,
            &req.protocols,
        ) + member_id_len;
        g.retained_member_bytes_except(&req.member_id)
            .saturating_add(joining)
            <= MAX_MEMBER_BYTES_PER_GROUP
    }

    fn join(&self, g: &mut Group, req: &JoinGroupRequest) -> Outcome<JoinGroupResponse> {
        if !self.accept_joining_member(g, &req.member_id) || !Self::join_fits_byte_bound(g, req) {
            if !req.member_id.is_empty() && g.remove_member(&req.member_id).is_some() {
                self.maybe_complete_join_phase(g);
            }
            return Outcome::Done(JoinGroupResponse::error("", GROUP_MAX_SIZE_REACHED));
        }
        if req.member_id.is_empty() {
            self.join_new_member(g, req)
        } else {
            self.join_existing_member(g, req)
        }
    }

    fn join_new_member(&self, g: &mut Group, req: &JoinGroupRequest) -> Outcome<JoinGroupResponse> {
        if g.is(GroupState::Dead) {
            return Outcome::Done(JoinGroupResponse::error("", COORDINATOR_NOT_AVAILABLE));
        }
        if !g.supports_protocols(&req.protocol_type, &req.protocols) {
            return Outcome::Done(JoinGroupResponse::error("", INCONSISTENT_GROUP_PROTOCOL));
        }
        let new_member_id = generate_member_id(&req.client_id, req.group_instance_id.as_deref());
        if let Some(instance_id) = &req.group_instance_id {
            if let Some(old_member_id) = g.static_member_id(instance_id).map(str::to_string) {
                tracing::info!(group = %g.group_id, instance = %instance_id, old = %old_member_id, new = %new_member_id, "static member rejoins with a new member id");
                return self.update_static_member(
                    g,
                    req,
                    instance_id,
                    &old_member_id,
                    &new_member_id,
                );
            }
            return self.add_member_then_rebalance_or_complete_join(g, req, new_member_id);
        }
        if req.api_version >= 4 {
            if g.pending_members.len() >= MAX_PENDING_MEMBERS_PER_GROUP {
                return Outcome::Done(JoinGroupResponse::error("", GROUP_MAX_SIZE_REACHED));
            }
            g.pending_members.insert(new_member_id.clone());
            self.schedule_pending_member_expiry(&new_member_id, req.session_timeout_ms);
            return Outcome::Done(JoinGroupResponse::error(new_member_id, MEMBER_ID_REQUIRED));
        }
        self.add_member_then_rebalance_or_complete_join(g, req, new_member_id)
    }

    fn join_existing_member(
        &self,
        g: &mut Group,
        req: &JoinGroupRequest,
    ) -> Outcome<JoinGroupResponse> {
        let member_id = req.member_id.as_str();
        if g.is(GroupState::Dead) {
            return Outcome::Done(JoinGroupResponse::error(
                member_id,
                COORDINATOR_NOT_AVAILABLE,
            ));
        }
        if !g.supports_protocols(&req.protocol_type, &req.protocols) {
            return Outcome::Done(JoinGroupResponse::error(
                member_id,
                INCONSISTENT_GROUP_PROTOCOL,
            ));
        }
        if g.is_pending_member(member_id) {
            if req.group_instance_id.is_some() {
                // Pending ids are only handed to dynamic members.
                return Outcome::Done(JoinGroupResponse::error(member_id, UNKNOWN_SERVER_ERROR));
            }
            return self.add_member_then_rebalance_or_complete_join(g, req, member_id.to_string());
        }
        if let Some(error_code) = validate_member(g, member_id, req.group_instance_id.as_deref()) {
            return Outcome::Done(JoinGroupResponse::error(member_id, error_code));
        }
        let Some(member) = g.members.get(member_id) else {
            return Outcome::Done(JoinGroupResponse::error(member_id, UNKNOWN_MEMBER_ID));
        };
        let matches = member.matches(&req.protocols);
        match g.state() {
            GroupState::PreparingRebalance => self.update_member_then_rebalance_or_complete_join(
                g,
                req,
                "rejoin during rebalance",
            ),
            GroupState::CompletingRebalance => {
                if matches {
                    // The member missed its JoinGroup answer: repeat it.
                    Outcome::Done(self.current_generation_response(
                        g,
                        member_id,
                        g.is_leader(member_id),
                    ))
                } else {
                    self.update_member_then_rebalance_or_complete_join(
                        g,
                        req,
                        "metadata changed during CompletingRebalance",
                    )
                }
            }
            GroupState::Stable => {
                if g.is_leader(member_id) {
                    self.update_member_then_rebalance_or_complete_join(g, req, "leader rejoined")
                } else if !matches {
                    self.update_member_then_rebalance_or_complete_join(
                        g,
                        req,
                        "member metadata changed",
                    )
                } else {
                    Outcome::Done(self.current_generation_response(g, member_id, false))
                }
            }
            GroupState::Empty | GroupState::Dead => {
                Outcome::Done(JoinGroupResponse::error(member_id, UNKNOWN_MEMBER_ID))
            }
        }
    }

    fn current_generation_response(
        &self,
        g: &Group,
        member_id: &str,
        with_members: bool,
    ) -> JoinGroupResponse {
        JoinGroupResponse {
            error_code: NONE,
            generation_id: g.generation_id,
            protocol_type: g.protocol_type.clone(),
            protocol_name: g.protocol_name.clone(),
            leader: g.leader_id.clone().unwrap_or_default(),
            skip_assignment: false,
            member_id: member_id.to_string(),
            members: if with_members {
                g.current_member_metadata()
            } else {
                Vec::new()
            },
        }
    }

    fn add_member_then_rebalance_or_complete_join(
        &self,
        g: &mut Group,
        req: &JoinGroupRequest,
        member_id: String,
    ) -> Outcome<JoinGroupResponse> {
        let (tx, rx) = oneshot::channel();
        let member = Member {
            member_id: member_id.clone(),
            group_instance_id: req.group_instance_id.clone(),
            client_id: req.client_id.clone(),
            client_host: req.client_host.clone(),
            rebalance_timeout_ms: req.rebalance_timeout_ms,
            session_timeout_ms: req.session_timeout_ms,
            protocol_type: req.protocol_type.clone(),
            protocols: req.protocols.clone(),
            assignment: Bytes::new(),
            awaiting_join: Some(tx),
            awaiting_sync: None,
            is_new: true,
            heartbeat_deadline: Instant::now(),
            heartbeat_timer: 0,
            join_seq: 0,
        };
        if g.is(GroupState::PreparingRebalance) && g.previous_state() == GroupState::Empty {
            g.new_member_added = true;
        }
        g.add_member(member);
        // New members cannot heartbeat yet; they get the (long) new-member
        // join timeout instead of the session timeout.
        self.schedule_heartbeat(g, &member_id, NEW_MEMBER_JOIN_TIMEOUT_MS);
        self.maybe_prepare_rebalance_or_complete_join(g, "new member joined");
        Outcome::Wait(rx)
    }

    fn update_member(
        &self,
        g: &mut Group,
        member_id: &str,
        req: &JoinGroupRequest,
    ) -> Option<oneshot::Receiver<JoinGroupResponse>> {
        let m = g.members.get_mut(member_id)?;
        let (tx, rx) = oneshot::channel();
        m.protocols = req.protocols.clone();
        m.rebalance_timeout_ms = req.rebalance_timeout_ms;
        m.session_timeout_ms = req.session_timeout_ms;
        // A second JoinGroup replaces the first (whose answer is dropped).
        m.awaiting_join = Some(tx);
        Some(rx)
    }

    fn update_member_then_rebalance_or_complete_join(
        &self,
        g: &mut Group,
        req: &JoinGroupRequest,
        reason: &str,
    ) -> Outcome<JoinGroupResponse> {
        let Some(rx) = self.update_member(g, &req.member_id, req) else {
            return Outcome::Done(JoinGroupResponse::error(
                req.member_id.as_str(),
                UNKNOWN_MEMBER_ID,
            ));
        };
        self.maybe_prepare_rebalance_or_complete_join(g, reason);
        Outcome::Wait(rx)
    }

    fn update_static_member(
        &self,
        g: &mut Group,
        req: &JoinGroupRequest,
        instance_id: &str,
        old_member_id: &str,
        new_member_id: &str,
    ) -> Outcome<JoinGroupResponse> {
        let current_leader = g.leader_id.clone().unwrap_or_default();
        if !g.replace_static_member(instance_id, old_member_id, new_member_id) {
            return Outcome::Done(JoinGroupResponse::error("", UNKNOWN_MEMBER_ID));
        }
        let Some(rx) = self.update_member(g, new_member_id, req) else {
            return Outcome::Done(JoinGroupResponse::error("", UNKNOWN_MEMBER_ID));
        };
        self.schedule_heartbeat(g, new_member_id, req.session_timeout_ms);
        match g.state() {
            GroupState::Stable => {
                let selected = g.select_protocol();
                if selected.is_some() && g.protocol_name == selected {
                    // Same protocol: no rebalance; hand back the current
                    // generation. From JoinGroup v9 the leader is told it
                    // leads but may skip the assignment.
                    let response = if req.api_version >= 9 {
                        let is_leader = g.is_leader(new_member_id);
                        let mut r = self.current_generation_response(g, new_member_id, is_leader);
                        r.skip_assignment = is_leader;
                        r
                    } else {
                        let mut r = self.current_generation_response(g, new_member_id, false);
                        r.leader = current_leader;
                        r
                    };
                    if let Some(m) = g.members.get_mut(new_member_id) {
                        m.complete_join(response);
                    }
                } else {
                    self.maybe_prepare_rebalance_or_complete_join(
                        g,
                        "static member changed the group's protocol",
                    );
                }
            }
            GroupState::CompletingRebalance => {
                // The leader may already have assigned the old member id.
                self.prepare_rebalance(g, "static member rejoined during CompletingRebalance");
            }
            GroupState::PreparingRebalance => self.maybe_complete_join_phase(g),
            GroupState::Empty | GroupState::Dead => {
                if let Some(m) = g.members.get_mut(new_member_id) {
                    m.complete_join(JoinGroupResponse::error(
                        new_member_id,
                        UNKNOWN_SERVER_ERROR,
                    ));
                }
            }
        }
        Outcome::Wait(rx)
    }

    // ----- SyncGroup -----------------------------------------------------

    fn sync(&self, g: &mut Group, req: &SyncGroupRequest) -> Outcome<SyncGroupResponse> {
        if g.is(GroupState::Empty) {
            return Outcome::Done(SyncGroupResponse::error(UNKNOWN_MEMBER_ID));
        }
        if g.is(GroupState::Dead) {
            return Outcome::Done(SyncGroupResponse::error(COORDINATOR_NOT_AVAILABLE));
        }
        if let Some(e) = validate_member(g, &req.member_id, req.group_instance_id.as_deref()) {
            return Outcome::Done(SyncGroupResponse::error(e));
        }
        if req.generation_id != g.generation_id {
            return Outcome::Done(SyncGroupResponse::error(ILLEGAL_GENERATION));
        }
        if protocol_inconsistent(req.protocol_type.as_deref(), g.protocol_type.as_deref())
            || protocol_inconsistent(req.protocol_name.as_deref(), g.protocol_name.as_deref())
        {
            return Outcome::Done(SyncGroupResponse::error(INCONSISTENT_GROUP_PROTOCOL));
        }
        match g.state() {
            GroupState::PreparingRebalance => {
                Outcome::Done(SyncGroupResponse::error(REBALANCE_IN_PROGRESS))
            }
            GroupState::CompletingRebalance => {
                let (tx, rx) = oneshot::channel();
                if let Some(m) = g.members.get_mut(&req.member_id) {
                    m.awaiting_sync = Some(tx);
                }
                self.remove_pending_sync_member(g, &req.member_id);
                if g.is_leader(&req.member_id) {
                    tracing::info!(group = %g.group_id, generation = g.generation_id, leader = %req.member_id, "assignment received from leader");
                    let mut assignment = HashMap::with_capacity(g.members.len());
                    for (id, a) in &req.assignments {
                        if g.members.contains_key(id) {
                            assignment.insert(id.clone(), a.clone());
                        }
                    }
                    self.set_and_propagate_assignment(g, assignment);
                    g.transition_to(GroupState::Stable, now());
                }
                Outcome::Wait(rx)
            }
            GroupState::Stable => {
                self.remove_pending_sync_member(g, &req.member_id);
                let assignment = g
                    .members
                    .get(&req.member_id)
                    .map(|m| m.assignment.clone())
                    .unwrap_or_default();
                Outcome::Done(SyncGroupResponse {
                    error_code: NONE,
                    protocol_type: g.protocol_type.clone(),
                    protocol_name: g.protocol_name.clone(),
                    assignment,
                })
            }
            GroupState::Empty | GroupState::Dead => {
                Outcome::Done(SyncGroupResponse::error(UNKNOWN_MEMBER_ID))
            }
        }
    }

    // ----- LeaveGroup ----------------------------------------------------

    fn remove_current_member(&self, g: &mut Group, member_id: &str, reason: &str) {
        tracing::info!(group = %g.group_id, member = %member_id, reason, "member left the group");
        if let Some(m) = g.members.get_mut(member_id) {
            m.complete_join(JoinGroupResponse::error("", UNKNOWN_MEMBER_ID));
        }
        g.remove_member(member_id);
    }

    fn leave(&self, g: &mut Group, members: &[LeaveGroupMember]) -> LeaveGroupResponse {
        if g.is(GroupState::Dead) {
            return LeaveGroupResponse {
                error_code: COORDINATOR_NOT_AVAILABLE,
                members: Vec::new(),
            };
        }
        let mut responses = Vec::with_capacity(members.len());
        let mut any_left = false;
        for leaving in members {
            let reason = leaving.reason.as_deref().unwrap_or("not provided");
            let error_code = if leaving.member_id.is_empty() {
                // Admin removal of a static member by instance id.
                match leaving
                    .group_instance_id
                    .as_deref()
                    .and_then(|i| g.static_member_id(i))
                    .map(str::to_string)
                {
                    Some(current) => {
                        self.remove_current_member(g, &current, reason);
                        NONE
                    }
                    None => UNKNOWN_MEMBER_ID,
                }
            } else if g.is_pending_member(&leaving.member_id) {
                g.remove_member(&leaving.member_id);
                NONE
            } else {
                match validate_member(g, &leaving.member_id, leaving.group_instance_id.as_deref()) {
                    Some(e) => e,
                    None => {
                        self.remove_current_member(g, &leaving.member_id, reason);
                        NONE
                    }
                }
            };
            any_left |= error_code == NONE;
            responses.push(LeaveGroupMemberResponse {
                member_id: leaving.member_id.clone(),
                group_instance_id: leaving.group_instance_id.clone(),
                error_code,
            });
        }
        if any_left {
            match g.state() {
                GroupState::Stable | GroupState::CompletingRebalance => {
                    self.maybe_prepare_rebalance_or_complete_join(g, "members left the group")
                }
                GroupState::PreparingRebalance => self.maybe_complete_join_phase(g),
                _ => {}
            }
        }
        LeaveGroupResponse {
            error_code: NONE,
            members: responses,
        }
    }
}

/// Kafka's `validateMember`: a given instance id must map to this member
/// id, and the member must exist.
fn validate_member(g: &Group, member_id: &str, group_instance_id: Option<&str>) -> Option<i16> {
    if let Some(instance) = group_instance_id {
        match g.static_member_id(instance) {
            None => return Some(UNKNOWN_MEMBER_ID),
            Some(current) if current != member_id => {
                tracing::info!(group = %g.group_id, instance, member = member_id, current, "fenced static member");
                return Some(FENCED_INSTANCE_ID);
            }
            Some(_) => {}
        }
    }
    if !g.has_member(member_id) {
        return Some(UNKNOWN_MEMBER_ID);
    }
    None
}

fn protocol_inconsistent(requested: Option<&str>, group: Option<&str>) -> bool {
    matches!((requested, group), (Some(r), Some(g)) if r != g)
}

/// Kafka's offset-commit validation for classic groups.
fn validate_offset_commit(g: &Group, req: &OffsetCommitRequest) -> Option<i16> {
    if g.is(GroupState::Dead) {
        return Some(COORDINATOR_NOT_AVAILABLE);
    }
    let generation_id = req.generation_id_or_member_epoch;
    if generation_id < 0 && g.is(GroupState::Empty) {
        // A simple (standalone) commit.
        return None;
    }
    if generation_id >= 0 || !req.member_id.is_empty() || req.group_instance_id.is_some() {
        if let Some(e) = validate_member(g, &req.member_id, req.group_instance_id.as_deref()) {
            return Some(e);
        }
        if generation_id != g.generation_id {
            return Some(ILLEGAL_GENERATION);
        }
    } else if !g.is(GroupState::Empty) {
        // Only members may commit to a group that has members.
        return Some(UNKNOWN_MEMBER_ID);
    }
    if g.is(GroupState::CompletingRebalance) {
        return Some(REBALANCE_IN_PROGRESS);
    }
    None
}

/// Kafka's `doTxnCommitOffsets` checks: a member id, when given, must be
/// a member; a generation, when given, must be the group's.
fn validate_txn_offset_commit(g: &Group, req: &OffsetCommitRequest) -> Option<i16> {
    if g.is(GroupState::Dead) {
        return Some(COORDINATOR_NOT_AVAILABLE);
    }
    if !req.member_id.is_empty() || req.group_instance_id.is_some() {
        if let Some(e) = validate_member(g, &req.member_id, req.group_instance_id.as_deref()) {
            return Some(e);
        }
    }
    if req.generation_id_or_member_epoch >= 0 && req.generation_id_or_member_epoch != g.generation_id {
        return Some(ILLEGAL_GENERATION);
    }
    None
}

/// Decrements a group's in-flight commit count however the commit future
/// ends (completion or cancellation).
struct PendingCommitGuard {
    group_ref: GroupRef,
}

impl Drop for PendingCommitGuard {
    fn drop(&mut self) {
        let mut g = lock_group(&self.group_ref);
        g.pending_commits = g.pending_commits.saturating_sub(1);
    }
}

/// Every partition of `req` answered with `error_code`.
pub fn commit_error_response(req: &OffsetCommitRequest, error_code: i16) -> OffsetCommitResponse {
    OffsetCommitResponse {
        topics: req
            .topics
            .iter()
            .map(|t| OffsetCommitTopicResponse {
                name: t.name.clone(),
                partitions: t
                    .partitions
                    .iter()
                    .map(|p| OffsetCommitPartitionResponse {
                        partition_index: p.partition_index,
                        error_code,
                    })
                    .collect(),
            })
            .collect(),
    }
}

/// Replaces every NONE in a commit response by `error_code`.
fn fail_successes(resp: &mut OffsetCommitResponse, error_code: i16) {
    for t in &mut resp.topics {
        for p in &mut t.partitions {
            if p.error_code == NONE {
                p.error_code = error_code;
            }
        }
    }
}

fn unknown_offset(partition_index: i32) -> OffsetFetchPartitionResponse {
    OffsetFetchPartitionResponse {
        partition_index,
        committed_offset: -1,
        committed_leader_epoch: -1,
        metadata: Some(String::new()),
        error_code: NONE,
    }
}

fn fetched_offset(partition_index: i32, c: &CommittedOffset) -> OffsetFetchPartitionResponse {
    OffsetFetchPartitionResponse {
        partition_index,
        committed_offset: c.offset.get(),
        committed_leader_epoch: c.leader_epoch,
        metadata: Some(c.metadata.clone()),
        error_code: NONE,
    }
}

/// Kafka's metadata size check counts UTF-16 code units (Java's
/// `String.length()`).
fn metadata_too_large(metadata: Option<&str>, max_chars: usize) -> bool {
    metadata.is_some_and(|m| m.len() > max_chars && m.encode_utf16().count() > max_chars)
}

/// The classic group coordinator. Cheap to clone; `Send + Sync`.
#[derive(Clone)]
pub struct GroupCoordinator {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for GroupCoordinator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GroupCoordinator")
            .field("config", &self.inner.config)
            .finish()
    }
}

impl GroupCoordinator {
    /// A coordinator over an opened offsets store. Groups known to the
    /// store are restored as Empty groups (members do not survive a
    /// restart, as with Kafka after their sessions expire).
    pub fn new(config: GroupConfig, store: Arc<OffsetsStore>) -> GroupCoordinator {
        let at = now();
        let mut groups = HashMap::new();
        // KIP-848 consumer groups are restored by their own coordinator.
        let consumer: HashSet<String> = store.consumer_groups().into_iter().map(|(g, _)| g).collect();
        for (group_id, meta) in store.group_ids() {
            if consumer.contains(&group_id) {
                continue;
            }
            let g = Group::restored(group_id.clone(), meta, at);
            groups.insert(group_id, Arc::new(Mutex::new(g)));
        }
        if !groups.is_empty() {
            tracing::info!(
                groups = groups.len(),
                offsets = store.offset_count(),
                "restored consumer groups"
            );
        }
        GroupCoordinator {
            inner: Arc::new(Inner {
                config,
                store,
                groups: Mutex::new(groups),
                active: AtomicBool::new(true),
                cancel: CancellationToken::new(),
                tasks: TaskTracker::new(),
                next_timer_token: AtomicU64::new(0),
            }),
        }
    }

    /// Opens the offsets store in `dir` (e.g. `<log.dir>/.klamm/groups`)
    /// and builds the coordinator. Blocking (file replay).
    pub fn open(config: GroupConfig, dir: &Path) -> Result<GroupCoordinator, StoreError> {
        let store = Arc::new(OffsetsStore::open(dir)?);
        Ok(GroupCoordinator::new(config, store))
    }

    /// The coordinator's settings.
    pub fn config(&self) -> &GroupConfig {
        &self.inner.config
    }

    /// The durable offsets store.
    pub fn store(&self) -> &Arc<OffsetsStore> {
        &self.inner.store
    }

    fn is_active(&self) -> bool {
        self.inner.active.load(Ordering::Acquire)
    }

    /// JoinGroup. Resolves when the rebalance completes (or at once for
    /// errors and MEMBER_ID_REQUIRED).
    pub async fn join_group(&self, req: JoinGroupRequest) -> JoinGroupResponse {
        if !self.is_active() {
            return JoinGroupResponse::error(req.member_id, COORDINATOR_NOT_AVAILABLE);
        }
        if req.group_id.is_empty() {
            return JoinGroupResponse::error(req.member_id, INVALID_GROUP_ID);
        }
        let cfg = &self.inner.config;
        if req.session_timeout_ms < cfg.min_session_timeout_ms
            || req.session_timeout_ms > cfg.max_session_timeout_ms
        {
            return JoinGroupResponse::error(req.member_id, INVALID_SESSION_TIMEOUT);
        }
        let group_ref = match self
            .inner
            .get_or_create_group(&req.group_id, req.member_id.is_empty())
        {
            Ok(Some(g)) => g,
            Ok(None) => return JoinGroupResponse::error(req.member_id, UNKNOWN_MEMBER_ID),
            Err(e) => return JoinGroupResponse::error(req.member_id, e),
        };
        let outcome = {
            let mut g = lock_group(&group_ref);
            Ctx {
                inner: &self.inner,
                group_ref: &group_ref,
            }
            .join(&mut g, &req)
        };
        outcome
            .settle(
                &self.inner.cancel,
                || JoinGroupResponse::error("", UNKNOWN_MEMBER_ID),
                || JoinGroupResponse::error(req.member_id, NOT_COORDINATOR),
            )
            .await
    }

    /// SyncGroup. Followers wait for the leader's assignment.
    pub async fn sync_group(&self, req: SyncGroupRequest) -> SyncGroupResponse {
        if !self.is_active() {
            return SyncGroupResponse::error(COORDINATOR_NOT_AVAILABLE);
        }
        if req.group_id.is_empty() {
            return SyncGroupResponse::error(INVALID_GROUP_ID);
        }
        let Some(group_ref) = self.inner.get_group(&req.group_id) else {
            return SyncGroupResponse::error(UNKNOWN_MEMBER_ID);
        };
        let outcome = {
            let mut g = lock_group(&group_ref);
            Ctx {
                inner: &self.inner,
                group_ref: &group_ref,
            }
            .sync(&mut g, &req)
        };
        outcome
            .settle(
                &self.inner.cancel,
                || SyncGroupResponse::error(UNKNOWN_MEMBER_ID),
                || SyncGroupResponse::error(NOT_COORDINATOR),
            )
            .await
    }

    /// Heartbeat: returns the error code (REBALANCE_IN_PROGRESS tells the
    /// member to rejoin).
    pub async fn heartbeat(&self, req: HeartbeatRequest) -> i16 {
        if !self.is_active() {
            return COORDINATOR_NOT_AVAILABLE;
        }
        if req.group_id.is_empty() {
            return INVALID_GROUP_ID;
        }
        let Some(group_ref) = self.inner.get_group(&req.group_id) else {
            return UNKNOWN_MEMBER_ID;
        };
        let mut g = lock_group(&group_ref);
        if g.is(GroupState::Dead) {
            return COORDINATOR_NOT_AVAILABLE;
        }
        if let Some(e) = validate_member(&g, &req.member_id, req.group_instance_id.as_deref()) {
            return e;
        }
        if req.generation_id != g.generation_id {
            return ILLEGAL_GENERATION;
        }
        let ctx = Ctx {
            inner: &self.inner,
            group_ref: &group_ref,
        };
        let session_timeout_ms = g
            .members
            .get(&req.member_id)
            .map_or(0, |m| m.session_timeout_ms);
        match g.state() {
            GroupState::Empty | GroupState::Dead => UNKNOWN_MEMBER_ID,
            GroupState::PreparingRebalance => {
                ctx.schedule_heartbeat(&mut g, &req.member_id, session_timeout_ms);
                REBALANCE_IN_PROGRESS
            }
            GroupState::CompletingRebalance | GroupState::Stable => {
                ctx.schedule_heartbeat(&mut g, &req.member_id, session_timeout_ms);
                NONE
            }
        }
    }

    /// LeaveGroup (batch form). A group that does not exist answers a
    /// top-level UNKNOWN_MEMBER_ID, as Kafka 4's coordinator does.
    pub async fn leave_group(&self, req: LeaveGroupRequest) -> LeaveGroupResponse {
        if !self.is_active() {
            return LeaveGroupResponse {
                error_code: COORDINATOR_NOT_AVAILABLE,
                members: Vec::new(),
            };
        }
        if req.group_id.is_empty() {
            return LeaveGroupResponse {
                error_code: INVALID_GROUP_ID,
                members: Vec::new(),
            };
        }
        let Some(group_ref) = self.inner.get_group(&req.group_id) else {
            return LeaveGroupResponse {
                error_code: UNKNOWN_MEMBER_ID,
                members: Vec::new(),
            };
        };
        let mut g = lock_group(&group_ref);
        Ctx {
            inner: &self.inner,
            group_ref: &group_ref,
        }
        .leave(&mut g, &req.members)
    }

    /// OffsetCommit. Answers once the offsets are durable.
    pub async fn offset_commit(&self, req: OffsetCommitRequest) -> OffsetCommitResponse {
        self.commit_offsets(req, None).await
    }

    /// TxnOffsetCommit (Kafka's `handleTxnCommitOffsets`): the offsets are
    /// stored pending under `producer_id` and become committed offsets
    /// only when its transaction commits ([`Self::complete_txn_offsets`]).
    /// A group that does not exist is created, as Kafka does.
    pub async fn txn_offset_commit(&self, req: OffsetCommitRequest, producer_id: i64) -> OffsetCommitResponse {
        self.commit_offsets(req, Some(producer_id)).await
    }

    /// Ends `producer_id`'s pending offsets of `group`: committed
    /// (visible to OffsetFetch) or dropped. Answers once durable.
    pub async fn complete_txn_offsets(&self, group: &str, producer_id: i64, commit: bool) -> Result<(), StoreError> {
        self.inner
            .store
            .append(vec![StoreRecord::TxnMarker { group: group.to_string(), producer_id, commit }])
            .await
    }

    async fn commit_offsets(&self, req: OffsetCommitRequest, txn_producer: Option<i64>) -> OffsetCommitResponse {
        if !self.is_active() {
            return commit_error_response(&req, COORDINATOR_NOT_AVAILABLE);
        }
        let group_ref = match self.inner.get_group(&req.group_id) {
            Some(g) => g,
            None if req.generation_id_or_member_epoch < 0 || txn_producer.is_some() => {
                match self.inner.get_or_create_group(&req.group_id, true) {
                    Ok(Some(g)) => {
                        tracing::info!(group = %req.group_id, "creating simple consumer group via offset commit");
                        g
                    }
                    Ok(None) => return commit_error_response(&req, UNKNOWN_SERVER_ERROR),
                    Err(e) => return commit_error_response(&req, e),
                }
            }
            None => {
                let e = if req.api_version >= 9 {
                    GROUP_ID_NOT_FOUND
                } else {
                    ILLEGAL_GENERATION
                };
                return commit_error_response(&req, e);
            }
        };
        let (mut response, rx) = {
            let mut g = lock_group(&group_ref);
            let invalid = match txn_producer {
                None => validate_offset_commit(&g, &req),
                Some(_) => validate_txn_offset_commit(&g, &req),
            };
            if let Some(e) = invalid {
                return commit_error_response(&req, e);
            }
            let ctx = Ctx {
                inner: &self.inner,
                group_ref: &group_ref,
            };
            if matches!(
                g.state(),
                GroupState::Stable | GroupState::PreparingRebalance
            ) {
                if let Some(session_timeout_ms) =
                    g.members.get(&req.member_id).map(|m| m.session_timeout_ms)
                {
                    ctx.schedule_heartbeat(&mut g, &req.member_id, session_timeout_ms);
                }
            }
            let (mut response, mut records) = self.commit_records(&req, txn_producer);
            if records.is_empty() {
                return response;
            }
            let meta = g.stored_meta();
            let previous_meta = g.persisted_meta.clone();
            if previous_meta.as_ref() != Some(&meta) {
                records.insert(
                    0,
                    StoreRecord::GroupMeta {
                        group: req.group_id.clone(),
                        meta: meta.clone(),
                    },
                );
                g.persisted_meta = Some(meta);
            }
            match self.inner.store.submit(records) {
                Ok(rx) => {
                    g.pending_commits += 1;
                    (response, rx)
                }
                Err(e) => {
                    g.persisted_meta = previous_meta;
                    tracing::warn!(group = %req.group_id, error = %e, "offset commit not queued");
                    fail_successes(&mut response, e.error_code());
                    return response;
                }
            }
        };
        let _guard = PendingCommitGuard {
            group_ref: group_ref.clone(),
        };
        let result = rx.await.unwrap_or(Err(StoreError::Closed));
        if let Err(e) = result {
            tracing::warn!(group = %req.group_id, error = %e, "offset commit failed");
            fail_successes(&mut response, e.error_code());
            // Make the next commit rewrite the group's metadata.
            lock_group(&group_ref).persisted_meta = None;
        }
        response
    }

    /// The store records of a commit and the response for it (per
    /// partition: metadata too large, or too many committed offsets).
    fn commit_records(&self, req: &OffsetCommitRequest, txn_producer: Option<i64>) -> (OffsetCommitResponse, Vec<StoreRecord>) {
        let commit_ts = now();
        let expire_ts = if req.retention_time_ms == -1 {
            None
        } else {
            Some(TimestampMs(
                commit_ts.0.saturating_add(req.retention_time_ms),
            ))
        };
        let max_metadata = self.inner.config.offset_metadata_max_bytes;
        let store = &self.inner.store;
        let room = MAX_COMMITTED_OFFSETS.saturating_sub(store.offset_count());
        let mut new_keys = 0usize;
        let mut records = Vec::new();
        let mut response = OffsetCommitResponse {
            topics: Vec::with_capacity(req.topics.len()),
        };
        for t in &req.topics {
            let mut parts = Vec::with_capacity(t.partitions.len());
            for p in &t.partitions {
                let error_code =
                    if metadata_too_large(p.committed_metadata.as_deref(), max_metadata) {
                        OFFSET_METADATA_TOO_LARGE
                    } else {
                        let is_new = store
                            .committed_offset(&req.group_id, &t.name, p.partition_index)
                            .is_none();
                        if is_new && new_keys >= room {
                            tracing::warn!(
                                limit = MAX_COMMITTED_OFFSETS,
                                "too many committed offsets; refusing new partitions"
                            );
                            UNKNOWN_SERVER_ERROR
                        } else {
                            new_keys += usize::from(is_new);
                            let value = CommittedOffset {
                                offset: Offset(p.committed_offset),
                                leader_epoch: p.committed_leader_epoch,
                                metadata: p.committed_metadata.clone().unwrap_or_default(),
                                commit_timestamp: commit_ts,
                                expire_timestamp: expire_ts,
                            };
                            records.push(match txn_producer {
                                None => StoreRecord::OffsetCommit {
                                    group: req.group_id.clone(),
                                    topic: t.name.clone(),
                                    partition: p.partition_index,
                                    value,
                                },
                                Some(producer_id) => StoreRecord::TxnOffsetCommit {
                                    group: req.group_id.clone(),
                                    producer_id,
                                    topic: t.name.clone(),
                                    partition: p.partition_index,
                                    value,
                                },
                            });
                            NONE
                        }
                    };
                parts.push(OffsetCommitPartitionResponse {
                    partition_index: p.partition_index,
                    error_code,
                });
            }
            response.topics.push(OffsetCommitTopicResponse {
                name: t.name.clone(),
                partitions: parts,
            });
        }
        (response, records)
    }

    /// OffsetCommit / TxnOffsetCommit for a group this coordinator does
    /// not manage (a KIP-848 consumer group, already validated by its
    /// coordinator): the offsets go to the same store, without group
    /// metadata. Answers once durable.
    pub async fn commit_offsets_unmanaged(&self, req: OffsetCommitRequest, txn_producer: Option<i64>) -> OffsetCommitResponse {
        if !self.is_active() {
            return commit_error_response(&req, COORDINATOR_NOT_AVAILABLE);
        }
        let (mut response, records) = self.commit_records(&req, txn_producer);
        if records.is_empty() {
            return response;
        }
        if let Err(e) = self.inner.store.append(records).await {
            tracing::warn!(group = %req.group_id, error = %e, "offset commit failed");
            fail_successes(&mut response, e.error_code());
        }
        response
    }

    /// A consumer-protocol member wants `group_id`: Ok when no classic
    /// group has it, or the classic group is Empty (it is dropped; its
    /// offsets stay in the store), GROUP_ID_NOT_FOUND while it has members.
    pub fn take_over_empty_group(&self, group_id: &str) -> Result<(), i16> {
        let mut map = self.inner.groups();
        let Some(group_ref) = map.get(group_id).cloned() else { return Ok(()) };
        let g = lock_group(&group_ref);
        if !(g.is(GroupState::Empty) || g.is(GroupState::Dead)) || !g.members.is_empty() || g.pending_commits > 0 {
            return Err(GROUP_ID_NOT_FOUND);
        }
        drop(g);
        map.remove(group_id);
        tracing::info!(group = group_id, "empty classic group taken over by the consumer protocol");
        Ok(())
    }

    /// OffsetFetch for one group. Partitions without a committed offset get
    /// offset -1, metadata "" and no error, as in Kafka.
    pub async fn offset_fetch(&self, req: OffsetFetchRequest) -> OffsetFetchResponse {
        if !self.is_active() {
            return OffsetFetchResponse {
                group_id: req.group_id,
                error_code: COORDINATOR_NOT_AVAILABLE,
                topics: Vec::new(),
            };
        }
        // Offsets pending in an open transaction are UNSTABLE_OFFSET_COMMIT
        // for a caller that requires stable offsets (KIP-447).
        let pending = if req.require_stable { self.inner.store.pending_partitions(&req.group_id) } else { Default::default() };
        let unstable = |topic: &str, p: i32| pending.contains(&(topic.to_string(), p));
        let topics = self
            .inner
            .store
            .with_group(&req.group_id, |stored| match &req.topics {
                Some(requested) => requested
                    .iter()
                    .map(|(topic, partitions)| {
                        let known = stored.and_then(|s| s.offsets.get(topic));
                        OffsetFetchTopicResponse {
                            name: topic.clone(),
                            partitions: partitions
                                .iter()
                                .map(|&p| match known.and_then(|k| k.get(&p)) {
                                    _ if unstable(topic, p) => OffsetFetchPartitionResponse {
                                        error_code: UNSTABLE_OFFSET_COMMIT,
                                        ..unknown_offset(p)
                                    },
                                    Some(c) => fetched_offset(p, c),
                                    None => unknown_offset(p),
                                })
                                .collect(),
                        }
                    })
                    .collect(),
                None => stored
                    .map(|s| {
                        s.offsets
                            .iter()
                            .map(|(topic, parts)| OffsetFetchTopicResponse {
                                name: topic.clone(),
                                partitions: parts
                                    .iter()
                                    .map(|(&p, c)| fetched_offset(p, c))
                                    .collect(),
                            })
                            .collect()
                    })
                    .unwrap_or_default(),
            });
        OffsetFetchResponse {
            group_id: req.group_id,
            error_code: NONE,
            topics,
        }
    }

    /// ListGroups, filtered by state names (case-insensitive) and group
    /// types ("classic" is the only type served).
    pub async fn list_groups(
        &self,
        states_filter: &[String],
        types_filter: &[String],
    ) -> ListGroupsResponse {
        if !self.is_active() {
            return ListGroupsResponse {
                error_code: COORDINATOR_NOT_AVAILABLE,
                groups: Vec::new(),
            };
        }
        if !types_filter.is_empty()
            && !types_filter
                .iter()
                .any(|t| t.eq_ignore_ascii_case(CLASSIC_GROUP_TYPE))
        {
            return ListGroupsResponse {
                error_code: NONE,
                groups: Vec::new(),
            };
        }
        let states: HashSet<String> = states_filter
            .iter()
            .map(|s| s.to_ascii_lowercase())
            .collect();
        let mut groups = Vec::new();
        for group_ref in self.inner.all_groups() {
            let g = lock_group(&group_ref);
            if g.is(GroupState::Dead) {
                continue;
            }
            if !states.is_empty() && !states.contains(&g.state().as_str().to_ascii_lowercase()) {
                continue;
            }
            groups.push(ListedGroup {
                group_id: g.group_id.clone(),
                protocol_type: g.protocol_type.clone().unwrap_or_default(),
                group_state: g.state().as_str().to_string(),
                group_type: CLASSIC_GROUP_TYPE.to_string(),
            });
        }
        groups.sort_by(|a, b| a.group_id.cmp(&b.group_id));
        ListGroupsResponse {
            error_code: NONE,
            groups,
        }
    }

    /// DescribeGroups. Unknown groups are reported as "Dead" without error,
    /// as Kafka does.
    pub async fn describe_groups(&self, group_ids: &[String]) -> Vec<DescribedGroup> {
        let active = self.is_active();
        group_ids
            .iter()
            .map(|group_id| {
                let dead = |error_code| DescribedGroup {
                    error_code,
                    group_id: group_id.clone(),
                    group_state: GroupState::Dead.as_str().to_string(),
                    protocol_type: String::new(),
                    protocol_data: String::new(),
                    members: Vec::new(),
                };
                if !active {
                    let mut d = dead(COORDINATOR_NOT_AVAILABLE);
                    d.group_state = String::new();
                    return d;
                }
                let Some(group_ref) = self.inner.get_group(group_id) else {
                    return dead(NONE);
                };
                let g = lock_group(&group_ref);
                if g.is(GroupState::Dead) {
                    return dead(NONE);
                }
                let stable = g.is(GroupState::Stable);
                let protocol = if stable {
                    g.protocol_name.clone().unwrap_or_default()
                } else {
                    String::new()
                };
                let members = g
                    .members_in_order()
                    .into_iter()
                    .map(|m| DescribedMember {
                        member_id: m.member_id.clone(),
                        group_instance_id: m.group_instance_id.clone(),
                        client_id: m.client_id.clone(),
                        client_host: m.client_host.clone(),
                        member_metadata: if stable {
                            m.metadata(&protocol).cloned().unwrap_or_default()
                        } else {
                            Bytes::new()
                        },
                        member_assignment: if stable {
                            m.assignment.clone()
                        } else {
                            Bytes::new()
                        },
                    })
                    .collect();
                DescribedGroup {
                    error_code: NONE,
                    group_id: group_id.clone(),
                    group_state: g.state().as_str().to_string(),
                    protocol_type: g.protocol_type.clone().unwrap_or_default(),
                    protocol_data: protocol,
                    members,
                }
            })
            .collect()
    }

    /// DeleteGroups: only Empty groups can be deleted (NON_EMPTY_GROUP),
    /// unknown ones answer GROUP_ID_NOT_FOUND. Their offsets go too.
    pub async fn delete_groups(&self, group_ids: &[String]) -> Vec<DeletedGroup> {
        let mut results: Vec<DeletedGroup> = Vec::with_capacity(group_ids.len());
        let mut waits = Vec::new();
        for group_id in group_ids {
            let error_code = if !self.is_active() {
                COORDINATOR_NOT_AVAILABLE
            } else {
                let mut map = self.inner.groups();
                match map.get(group_id).cloned() {
                    None => GROUP_ID_NOT_FOUND,
                    Some(group_ref) => {
                        let mut g = lock_group(&group_ref);
                        match g.state() {
                            GroupState::Dead => GROUP_ID_NOT_FOUND,
                            GroupState::Stable
                            | GroupState::PreparingRebalance
                            | GroupState::CompletingRebalance => NON_EMPTY_GROUP,
                            GroupState::Empty => {
                                g.transition_to(GroupState::Dead, now());
                                g.join_timer_epoch += 1;
                                g.sync_timer_epoch += 1;
                                Inner::remove_group_entry(&mut map, group_id, &group_ref);
                                match self.inner.store.submit(vec![StoreRecord::GroupTombstone {
                                    group: group_id.clone(),
                                }]) {
                                    Ok(rx) => {
                                        waits.push((results.len(), rx));
                                        NONE
                                    }
                                    Err(e) => e.error_code(),
                                }
                            }
                        }
                    }
                }
            };
            results.push(DeletedGroup {
                group_id: group_id.clone(),
                error_code,
            });
        }
        for (i, rx) in waits {
            if let Err(e) = rx.await.unwrap_or(Err(StoreError::Closed)) {
                tracing::warn!(group = %results[i].group_id, error = %e, "group tombstone not written");
                results[i].error_code = e.error_code();
            } else {
                tracing::info!(group = %results[i].group_id, "deleted group");
            }
        }
        results
    }

    /// OffsetDelete: removes committed offsets of a group, refusing topics
    /// an active consumer group subscribes to (GROUP_SUBSCRIBED_TO_TOPIC).
    pub async fn offset_delete(&self, req: OffsetDeleteRequest) -> OffsetDeleteResponse {
        let group_error = |error_code| OffsetDeleteResponse {
            error_code,
            topics: Vec::new(),
        };
        if !self.is_active() {
            return group_error(COORDINATOR_NOT_AVAILABLE);
        }
        if req.group_id.is_empty() {
            return group_error(INVALID_GROUP_ID);
        }
        let Some(group_ref) = self.inner.get_group(&req.group_id) else {
            return group_error(GROUP_ID_NOT_FOUND);
        };
        let (mut response, rx) = {
            let g = lock_group(&group_ref);
            match g.state() {
                GroupState::Dead => return group_error(GROUP_ID_NOT_FOUND),
                GroupState::Stable
                | GroupState::PreparingRebalance
                | GroupState::CompletingRebalance
                    if !g.uses_consumer_protocol() =>
                {
                    return group_error(NON_EMPTY_GROUP)
                }
                _ => {}
            }
            let mut records = Vec::new();
            let mut topics = Vec::with_capacity(req.topics.len());
            let stored = self.inner.store.group(&req.group_id);
            for (topic, partitions) in &req.topics {
                let subscribed = g.is_subscribed_to_topic(topic);
                let parts = partitions
                    .iter()
                    .map(|&p| {
                        if subscribed {
                            return OffsetDeletePartitionResponse {
                                partition_index: p,
                                error_code: GROUP_SUBSCRIBED_TO_TOPIC,
                            };
                        }
                        let has = stored
                            .as_ref()
                            .and_then(|s| s.offsets.get(topic))
                            .is_some_and(|k| k.contains_key(&p));
                        if has {
                            records.push(StoreRecord::OffsetTombstone {
                                group: req.group_id.clone(),
                                topic: topic.clone(),
                                partition: p,
                            });
                        }
                        OffsetDeletePartitionResponse {
                            partition_index: p,
                            error_code: NONE,
                        }
                    })
                    .collect();
                topics.push(OffsetDeleteTopicResponse {
                    name: topic.clone(),
                    partitions: parts,
                });
            }
            let response = OffsetDeleteResponse {
                error_code: NONE,
                topics,
            };
            if records.is_empty() {
                return response;
            }
            match self.inner.store.submit(records) {
                Ok(rx) => (response, rx),
                Err(e) => return group_error(e.error_code()),
            }
        };
        if let Err(e) = rx.await.unwrap_or(Err(StoreError::Closed)) {
            tracing::warn!(group = %req.group_id, error = %e, "offset delete failed");
            response = group_error(e.error_code());
        }
        response
    }

    /// Removes every committed offset of deleted topics (call it when a
    /// topic is deleted).
    pub async fn on_topics_deleted(&self, topics: &[String]) -> Result<(), StoreError> {
        let records: Vec<StoreRecord> = topics
            .iter()
            .filter(|t| self.inner.store.topic_has_offsets(t))
            .map(|t| StoreRecord::TopicTombstone { topic: t.clone() })
            .collect();
        if records.is_empty() {
            return Ok(());
        }
        tracing::info!(topics = ?topics, "removing committed offsets of deleted topics");
        self.inner.store.append(records).await
    }

    /// Expires committed offsets as Kafka's periodic cleanup does
    /// (`offsets.retention.check.interval.ms`, default 10 minutes): for an
    /// Empty group, offsets older than the retention counted from when the
    /// group became Empty; for a Stable consumer group, offsets of topics
    /// it no longer subscribes to, counted from their commit; for simple
    /// groups, counted from their commit; an explicit expire timestamp
    /// (OffsetCommit v2-v4) wins. Empty groups left without offsets are
    /// deleted. Returns the number of offsets removed.
    pub async fn cleanup_expired_offsets(&self, now: TimestampMs) -> usize {
        if !self.is_active() {
            return 0;
        }
        let retention_ms = self.inner.config.offsets_retention_ms;
        let mut expired_total = 0usize;
        let mut waits = Vec::new();
        for group_ref in self.inner.all_groups() {
            // Map lock first (a group may be removed), then the group.
            let mut map = self.inner.groups();
            let mut g = lock_group(&group_ref);
            if g.is(GroupState::Dead) || g.pending_commits > 0 {
                continue;
            }
            // The time an offset's retention counts from, or None when the
            // group's offsets do not expire in its current state.
            let base_is_state_time = match &g.protocol_type {
                Some(_) if g.is(GroupState::Empty) => Some(true),
                Some(_)
                    if g.uses_consumer_protocol()
                        && g.subscribed_topics.is_some()
                        && g.is(GroupState::Stable) =>
                {
                    Some(false)
                }
                Some(_) => None,
                None => Some(false),
            };
            let state_ts = g.state_timestamp;
            let (expired, all_expired) = self.inner.store.with_group(&g.group_id, |stored| {
                let Some(stored) = stored else {
                    return (Vec::new(), true);
                };
                let Some(use_state_time) = base_is_state_time else {
                    return (Vec::new(), stored.offsets.is_empty());
                };
                let base = |c: &CommittedOffset| {
                    if use_state_time {
                        state_ts.unwrap_or(c.commit_timestamp)
                    } else {
                        c.commit_timestamp
                    }
                };
                expired_offsets(stored, now, retention_ms, &base, &|topic| g.is_subscribed_to_topic(topic))
            });
            expired_total += expired.len();
            let group_id = g.group_id.clone();
            let records: Vec<StoreRecord> = if all_expired && g.is(GroupState::Empty) {
                tracing::info!(group = %group_id, expired = expired.len(), "group expired: no members and no offsets left");
                g.transition_to(GroupState::Dead, now);
                g.join_timer_epoch += 1;
                g.sync_timer_epoch += 1;
                Inner::remove_group_entry(&mut map, &group_id, &group_ref);
                vec![StoreRecord::GroupTombstone {
                    group: group_id.clone(),
                }]
            } else {
                expired
                    .into_iter()
                    .map(|(topic, partition)| StoreRecord::OffsetTombstone {
                        group: group_id.clone(),
                        topic,
                        partition,
                    })
                    .collect()
            };
            drop(g);
            drop(map);
            if records.is_empty() {
                continue;
            }
            match self.inner.store.submit(records) {
                Ok(rx) => waits.push(rx),
                Err(e) => {
                    tracing::warn!(group = %group_id, error = %e, "offset expiry not written")
                }
            }
        }
        for rx in waits {
            if let Err(e) = rx.await.unwrap_or(Err(StoreError::Closed)) {
                tracing::warn!(error = %e, "offset expiry write failed");
            }
        }
        if expired_total > 0 {
            tracing::info!(expired = expired_total, "expired committed offsets");
        }
        expired_total
    }

    /// The offsets store both coordinators share.
    pub fn offsets_store(&self) -> &Arc<OffsetsStore> {
        &self.inner.store
    }

    /// Number of groups currently known (all states but Dead).
    pub fn group_count(&self) -> usize {
        self.inner.groups().len()
    }

    /// Stops the coordinator: parked JoinGroup/SyncGroup requests answer
    /// NOT_COORDINATOR, timers stop, queued writes are flushed and the
    /// store is closed. Later requests answer COORDINATOR_NOT_AVAILABLE.
    pub async fn shutdown(&self) {
        if !self.inner.active.swap(false, Ordering::AcqRel) {
            return;
        }
        self.inner.cancel.cancel();
        for group_ref in self.inner.all_groups() {
            let mut g = lock_group(&group_ref);
            for m in g.members.values_mut() {
                m.complete_join(JoinGroupResponse::error(
                    m.member_id.clone(),
                    NOT_COORDINATOR,
                ));
                m.complete_sync(SyncGroupResponse::error(NOT_COORDINATOR));
            }
        }
        self.inner.tasks.close();
        self.inner.tasks.wait().await;
        self.inner.store.close().await;
        tracing::info!("group coordinator stopped");
    }
}

#[cfg(test)]
impl GroupCoordinator {
    /// Test helper: the state of a group.
    pub(crate) fn group_state(&self, group_id: &str) -> Option<GroupState> {
        self.inner
            .get_group(group_id)
            .map(|g| lock_group(&g).state())
    }

    /// Test helper: the generation of a group.
    pub(crate) fn generation(&self, group_id: &str) -> Option<i32> {
        self.inner
            .get_group(group_id)
            .map(|g| lock_group(&g).generation_id)
    }

    /// Test helper: stored offsets keyed by (topic, partition).
    pub(crate) fn stored_offsets(
        &self,
        group_id: &str,
    ) -> std::collections::BTreeMap<(String, i32), i64> {
        let mut out = std::collections::BTreeMap::new();
        if let Some(s) = self.inner.store.group(group_id) {
            for (t, parts) in s.offsets {
                for (p, c) in parts {
                    out.insert((t.clone(), p), c.offset.get());
                }
            }
        }
        out
    }
}

/// Kafka's `OffsetExpirationCondition` over one group's stored offsets
/// (shared by the classic and the consumer-protocol groups): offsets of
/// topics the group subscribes to never expire; the others do at their
/// explicit expire timestamp (OffsetCommit v2-v4) or `retention_ms` after
/// `base` (the commit, or when a classic group became Empty). Returns the
/// expired (topic, partition)s and whether no offset is left after them.
pub(crate) fn expired_offsets(
    stored: &StoredGroup,
    now: TimestampMs,
    retention_ms: i64,
    base: &dyn Fn(&CommittedOffset) -> TimestampMs,
    subscribed: &dyn Fn(&str) -> bool,
) -> (Vec<(String, i32)>, bool) {
    let mut expired = Vec::new();
    let mut all = true;
    for (topic, parts) in &stored.offsets {
        if subscribed(topic) {
            all = false;
            continue;
        }
        for (&p, c) in parts {
            let is_expired = match c.expire_timestamp {
                Some(exp) => now.0 >= exp.0,
                None => now.0.saturating_sub(base(c).0) >= retention_ms,
            };
            if is_expired {
                expired.push((topic.clone(), p));
            } else {
                all = false;
            }
        }
    }
    (expired, all)
}
