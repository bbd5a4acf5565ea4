//! The in-memory model of one classic group and its members (Kafka's
//! `ClassicGroup` / `ClassicGroupMember`): membership, static members,
//! pending members, protocol selection, the leader, parked JoinGroup and
//! SyncGroup answers, and the subscribed topics of consumer groups.
//!
//! Pure bookkeeping: timers, storage and request handling live in
//! [`crate::group::coordinator`].

use std::collections::{HashMap, HashSet};
use std::fmt::Write as _;
use std::hash::{BuildHasher, Hasher};
use std::sync::atomic::{AtomicU64, Ordering};

use bytes::Bytes;
use tokio::sync::oneshot;
use tokio::time::Instant;

use crate::group::consumer_protocol::{parse_subscription_topics, CONSUMER_PROTOCOL_TYPE};
use crate::group::messages::{JoinGroupResponse, JoinGroupResponseMember, SyncGroupResponse};
use crate::group::offsets_store::StoredGroupMeta;
use crate::group::state::GroupState;
use crate::types::TimestampMs;

/// One member of a classic group.
/// Bytes a member with these ids and protocols keeps alive (its assignment
/// not counted): what the group's byte bound charges for it.
pub(crate) fn retained_bytes(
    member_id: &str,
    group_instance_id: Option<&str>,
    client_id: &str,
    client_host: &str,
    protocols: &[(String, Bytes)],
) -> usize {
    let protocols_bytes: usize = protocols.iter().map(|(name, meta)| name.len() + meta.len()).sum();
    member_id.len()
        + group_instance_id.map_or(0, str::len)
        + client_id.len()
        + client_host.len()
        + protocols_bytes
}

#[derive(Debug)]
pub(crate) struct Member {
    pub member_id: String,
    pub group_instance_id: Option<String>,
    pub client_id: String,
    pub client_host: String,
    pub rebalance_timeout_ms: i32,
    pub session_timeout_ms: i32,
    pub protocol_type: String,
    /// (name, metadata) in preference order.
    pub protocols: Vec<(String, Bytes)>,
    pub assignment: Bytes,
    /// The parked JoinGroup answer, while the member awaits a rebalance.
    pub awaiting_join: Option<oneshot::Sender<JoinGroupResponse>>,
    /// The parked SyncGroup answer, while the member awaits the assignment.
    pub awaiting_sync: Option<oneshot::Sender<SyncGroupResponse>>,
    /// Joined during the current rebalance and not yet given a generation.
    pub is_new: bool,
    /// When the member's session expires unless something renews it.
    pub heartbeat_deadline: Instant,
    /// Identifies the running session timer task (0 = none running).
    pub heartbeat_timer: u64,
    /// Order of joining, for stable listings.
    pub join_seq: u64,
}

impl Member {
    pub fn is_awaiting_join(&self) -> bool {
        self.awaiting_join.is_some()
    }

    pub fn is_awaiting_sync(&self) -> bool {
        self.awaiting_sync.is_some()
    }

    pub fn is_static(&self) -> bool {
        self.group_instance_id.is_some()
    }

    /// Kafka's `hasSatisfiedHeartbeat` when the session timer fires: new
    /// members must have completed their join; others are excused while
    /// they wait for a rebalance answer.
    pub fn has_satisfied_heartbeat(&self) -> bool {
        !self.is_new && (self.is_awaiting_join() || self.is_awaiting_sync())
    }

    /// Bytes this member keeps alive in the coordinator: its ids, its
    /// protocols' names and metadata, and its assignment.
    pub fn retained_bytes(&self) -> usize {
        retained_bytes(
            &self.member_id,
            self.group_instance_id.as_deref(),
            &self.client_id,
            &self.client_host,
            &self.protocols,
        ) + self.assignment.len()
    }

    /// Metadata for a protocol the member supports.
    pub fn metadata(&self, protocol: &str) -> Option<&Bytes> {
        self.protocols
            .iter()
            .find(|(p, _)| p == protocol)
            .map(|(_, m)| m)
    }

    /// Whether the given protocols equal the member's (names, order and
    /// metadata).
    pub fn matches(&self, protocols: &[(String, Bytes)]) -> bool {
        self.protocols.as_slice() == protocols
    }

    /// The member's first protocol that is also a candidate.
    pub fn vote<'a>(&'a self, candidates: &HashSet<&str>) -> Option<&'a str> {
        self.protocols
            .iter()
            .map(|(p, _)| p.as_str())
            .find(|p| candidates.contains(p))
    }

    /// Answers a parked JoinGroup, if any.
    pub fn complete_join(&mut self, response: JoinGroupResponse) -> bool {
        match self.awaiting_join.take() {
            Some(tx) => {
                let _ = tx.send(response);
                true
            }
            None => false,
        }
    }

    /// Answers a parked SyncGroup, if any.
    pub fn complete_sync(&mut self, response: SyncGroupResponse) -> bool {
        match self.awaiting_sync.take() {
            Some(tx) => {
                let _ = tx.send(response);
                true
            }
            None => false,
        }
    }
}

/// One classic group.
#[derive(Debug)]
pub(crate) struct Group {
    pub group_id: String,
    state: GroupState,
    previous_state: GroupState,
    /// When the group entered its current state (wall clock).
    pub state_timestamp: Option<TimestampMs>,
    pub protocol_type: Option<String>,
    pub protocol_name: Option<String>,
    pub generation_id: i32,
    pub leader_id: Option<String>,
    pub members: HashMap<String, Member>,
    /// group.instance.id -> member id.
    pub static_members: HashMap<String, String>,
    /// Member ids handed out with MEMBER_ID_REQUIRED, not yet joined.
    pub pending_members: HashSet<String>,
    /// Members that got their JoinGroup answer but have not sent SyncGroup.
    pub pending_sync_members: HashSet<String>,
    /// A member joined during the initial (delayed) rebalance.
    pub new_member_added: bool,
    /// For "consumer" groups: topics the members subscribe to, `None` when
    /// unknown (unparseable metadata, other protocol types).
    pub subscribed_topics: Option<HashSet<String>>,
    /// Bumped to cancel the pending join-phase timer.
    pub join_timer_epoch: u64,
    /// Bumped to cancel the pending sync-phase timer.
    pub sync_timer_epoch: u64,
    /// What the offsets store holds for this group, if anything.
    pub persisted_meta: Option<StoredGroupMeta>,
    /// Offset commits queued to the store and not yet answered.
    pub pending_commits: u32,
    next_join_seq: u64,
}

impl Group {
    /// A new group in `state` (Empty for groups created by a join or a
    /// commit).
    pub fn new(group_id: String, state: GroupState, now: TimestampMs) -> Group {
        Group {
            group_id,
            state,
            previous_state: state,
            state_timestamp: Some(now),
            protocol_type: None,
            protocol_name: None,
            generation_id: 0,
            leader_id: None,
            members: HashMap::new(),
            static_members: HashMap::new(),
            pending_members: HashSet::new(),
            pending_sync_members: HashSet::new(),
            new_member_added: false,
            subscribed_topics: None,
            join_timer_epoch: 0,
            sync_timer_epoch: 0,
            persisted_meta: None,
            pending_commits: 0,
            next_join_seq: 0,
        }
    }

    /// A group restored from the offsets store: Empty, with the stored
    /// protocol type and generation. Members do not survive a restart.
    pub fn restored(group_id: String, meta: Option<StoredGroupMeta>, now: TimestampMs) -> Group {
        let mut g = Group::new(group_id, GroupState::Empty, now);
        if let Some(m) = &meta {
            g.protocol_type = m.protocol_type.clone();
            g.generation_id = m.generation_id;
            // A group stored while it had members is Empty from now on.
            g.state_timestamp = Some(m.empty_since.unwrap_or(now));
        } else {
            g.state_timestamp = None;
        }
        g.subscribed_topics = g.compute_subscribed_topics();
        g.persisted_meta = meta;
        g
    }

    pub fn state(&self) -> GroupState {
        self.state
    }

    pub fn previous_state(&self) -> GroupState {
        self.previous_state
    }

    pub fn is(&self, state: GroupState) -> bool {
        self.state == state
    }

    /// Moves to `next`, asserting the transition is legal.
    pub fn transition_to(&mut self, next: GroupState, now: TimestampMs) {
        assert!(
            self.state.can_transition_to(next),
            "group {}: illegal transition {} -> {}",
            self.group_id,
            self.state,
            next
        );
        self.previous_state = self.state;
        self.state = next;
        self.state_timestamp = Some(now);
    }

    pub fn has_member(&self, member_id: &str) -> bool {
        self.members.contains_key(member_id)
    }

    pub fn is_leader(&self, member_id: &str) -> bool {
        self.leader_id.as_deref() == Some(member_id)
    }

    pub fn is_pending_member(&self, member_id: &str) -> bool {
        self.pending_members.contains(member_id)
    }

    pub fn static_member_id(&self, group_instance_id: &str) -> Option<&str> {
        self.static_members
            .get(group_instance_id)
            .map(String::as_str)
    }

    pub fn uses_consumer_protocol(&self) -> bool {
        self.protocol_type.as_deref() == Some(CONSUMER_PROTOCOL_TYPE)
    }

    pub fn num_awaiting_join(&self) -> usize {
        self.members
            .values()
            .filter(|m| m.is_awaiting_join())
            .count()
    }

    /// Kafka's `hasAllMembersJoined`.
    pub fn has_all_members_joined(&self) -> bool {
        self.members.len() == self.num_awaiting_join() && self.pending_members.is_empty()
    }

    /// The largest rebalance timeout of all members.
    pub fn rebalance_timeout_ms(&self) -> i32 {
        self.members
            .values()
            .map(|m| m.rebalance_timeout_ms)
            .max()
            .unwrap_or(0)
    }

    /// Members in joining order.
    pub fn members_in_order(&self) -> Vec<&Member> {
        let mut v: Vec<&Member> = self.members.values().collect();
        v.sort_by_key(|m| m.join_seq);
        v
    }

    /// Member ids in joining order.
    pub fn member_ids_in_order(&self) -> Vec<String> {
        self.members_in_order()
            .into_iter()
            .map(|m| m.member_id.clone())
            .collect()
    }

    /// Whether a member with these protocols may join (Kafka's
    /// `supportsProtocols`): an Empty group accepts any non-empty protocol
    /// type and list; otherwise the type must match and at least one of the
    /// protocols must be supported by every current member.
    pub fn supports_protocols(&self, protocol_type: &str, protocols: &[(String, Bytes)]) -> bool {
        if self.is(GroupState::Empty) {
            return !protocol_type.is_empty() && !protocols.is_empty();
        }
        if self.protocol_type.as_deref() != Some(protocol_type) {
            return false;
        }
        let n = self.members.len();
        protocols.iter().any(|(p, _)| {
            self.members
                .values()
                .filter(|m| m.protocols.iter().any(|(mp, _)| mp == p))
                .count()
                == n
        })
    }

    /// Protocols every member supports.
    fn candidate_protocols(&self) -> HashSet<&str> {
        let mut it = self.members.values();
        let Some(first) = it.next() else {
            return HashSet::new();
        };
        let mut set: HashSet<&str> = first.protocols.iter().map(|(p, _)| p.as_str()).collect();
        for m in it {
            set.retain(|p| m.protocols.iter().any(|(mp, _)| mp == p));
        }
        set
    }

    /// Kafka's protocol vote: every member votes for its most preferred
    /// protocol among those all members support; most votes wins (ties go
    /// to the protocol first voted for, in joining order).
    pub fn select_protocol(&self) -> Option<String> {
        let candidates = self.candidate_protocols();
        let mut votes: Vec<(&str, usize)> = Vec::new();
        for m in self.members_in_order() {
            let vote = m.vote(&candidates)?;
            match votes.iter_mut().find(|(p, _)| *p == vote) {
                Some((_, n)) => *n += 1,
                None => votes.push((vote, 1)),
            }
        }
        let mut best: Option<(&str, usize)> = None;
        for (p, n) in votes {
            if best.map_or(true, |(_, bn)| n > bn) {
                best = Some((p, n));
            }
        }
        best.map(|(p, _)| p.to_string())
    }

    /// Adds a member (Kafka's `add`); the first member sets the group's
    /// protocol type and the first member becomes leader.
    pub fn add_member(&mut self, mut member: Member) {
        debug_assert!(!self.members.contains_key(&member.member_id));
        if let Some(instance) = &member.group_instance_id {
            debug_assert!(!self.static_members.contains_key(instance));
            self.static_members
                .insert(instance.clone(), member.member_id.clone());
        }
        if self.members.is_empty() {
            self.protocol_type = Some(member.protocol_type.clone());
        }
        debug_assert_eq!(
            self.protocol_type.as_deref(),
            Some(member.protocol_type.as_str())
        );
        if self.leader_id.is_none() {
            self.leader_id = Some(member.member_id.clone());
        }
        self.next_join_seq += 1;
        member.join_seq = self.next_join_seq;
        self.pending_members.remove(&member.member_id);
        self.members.insert(member.member_id.clone(), member);
    }

    /// Removes a member (or a pending member id) and picks a new leader if
    /// needed. Parked answers of the removed member are dropped.
    /// Bytes kept for all members but `except` (ids, protocol metadata,
    /// assignments); O(members), like the other per-join checks.
    pub fn retained_member_bytes_except(&self, except: &str) -> usize {
        self.members
            .values()
            .filter(|m| m.member_id != except)
            .map(Member::retained_bytes)
            .sum()
    }

    pub fn remove_member(&mut self, member_id: &str) -> Option<Member> {
        let removed = self.members.remove(member_id);
        if let Some(m) = &removed {
            if let Some(instance) = &m.group_instance_id {
                if self.static_members.get(instance).map(String::as_str) == Some(member_id) {
                    self.static_members.remove(instance);
                }
            }
        }
        if self.is_leader(member_id) {
            self.leader_id = self.members_in_order().first().map(|m| m.member_id.clone());
        }
        self.pending_members.remove(member_id);
        self.pending_sync_members.remove(member_id);
        removed
    }

    /// Kafka's `maybeElectNewJoinedLeader`: keep the leader if it rejoined,
    /// else pick any member that rejoined. False if there is no leader or
    /// nobody rejoined.
    pub fn maybe_elect_new_joined_leader(&mut self) -> bool {
        let Some(leader) = self.leader_id.clone() else {
            return false;
        };
        if self
            .members
            .get(&leader)
            .is_some_and(Member::is_awaiting_join)
        {
            return true;
        }
        let new_leader = self
            .members_in_order()
            .into_iter()
            .find(|m| m.is_awaiting_join())
            .map(|m| m.member_id.clone());
        match new_leader {
            Some(id) => {
                self.leader_id = Some(id);
                true
            }
            None => false,
        }
    }

    /// Moves a static member to a new member id, fencing parked requests
    /// of the old id. Returns false if the old id is unknown.
    pub fn replace_static_member(
        &mut self,
        instance_id: &str,
        old_member_id: &str,
        new_member_id: &str,
    ) -> bool {
        let Some(mut member) = self.members.remove(old_member_id) else {
            return false;
        };
        member.complete_join(JoinGroupResponse::error(
            old_member_id,
            crate::group::errors::FENCED_INSTANCE_ID,
        ));
        member.complete_sync(SyncGroupResponse::error(
            crate::group::errors::FENCED_INSTANCE_ID,
        ));
        member.member_id = new_member_id.to_string();
        // The old id's timer task ends when it finds the id gone.
        member.heartbeat_timer = 0;
        self.members.insert(new_member_id.to_string(), member);
        if self.is_leader(old_member_id) {
            self.leader_id = Some(new_member_id.to_string());
        }
        if self.pending_sync_members.remove(old_member_id) {
            self.pending_sync_members.insert(new_member_id.to_string());
        }
        self.static_members
            .insert(instance_id.to_string(), new_member_id.to_string());
        true
    }

    /// Kafka's `initNextGeneration`: bumps the generation, selects the
    /// protocol and moves to CompletingRebalance (or Empty when nobody is
    /// left).
    pub fn init_next_generation(&mut self, now: TimestampMs) {
        self.generation_id = self.generation_id.wrapping_add(1);
        if self.members.is_empty() {
            self.protocol_name = None;
            self.subscribed_topics = self.compute_subscribed_topics();
            self.transition_to(GroupState::Empty, now);
        } else {
            self.protocol_name = self.select_protocol();
            debug_assert!(
                self.protocol_name.is_some(),
                "members always share a protocol"
            );
            self.subscribed_topics = self.compute_subscribed_topics();
            self.transition_to(GroupState::CompletingRebalance, now);
        }
        self.pending_sync_members.clear();
    }

    /// Kafka's `computeSubscribedTopics`.
    pub fn compute_subscribed_topics(&self) -> Option<HashSet<String>> {
        if !self.uses_consumer_protocol() {
            return None;
        }
        if self.members.is_empty() {
            return Some(HashSet::new());
        }
        let protocol = self.protocol_name.as_deref()?;
        let mut topics = HashSet::new();
        for m in self.members.values() {
            let metadata = m.metadata(protocol)?;
            match parse_subscription_topics(metadata) {
                Ok(ts) => topics.extend(ts),
                Err(e) => {
                    tracing::warn!(group = %self.group_id, error = %e, "cannot parse consumer subscription; subscribed topics unknown");
                    return None;
                }
            }
        }
        Some(topics)
    }

    /// Kafka's `isSubscribedToTopic`: unknown counts as subscribed for
    /// consumer groups and as not subscribed otherwise.
    pub fn is_subscribed_to_topic(&self, topic: &str) -> bool {
        match &self.subscribed_topics {
            Some(ts) => ts.contains(topic),
            None => self.uses_consumer_protocol(),
        }
    }

    /// The member list the leader gets (metadata for the chosen protocol).
    pub fn current_member_metadata(&self) -> Vec<JoinGroupResponseMember> {
        let protocol = self.protocol_name.as_deref().unwrap_or("");
        self.members_in_order()
            .into_iter()
            .map(|m| JoinGroupResponseMember {
                member_id: m.member_id.clone(),
                group_instance_id: m.group_instance_id.clone(),
                metadata: m.metadata(protocol).cloned().unwrap_or_default(),
            })
            .collect()
    }

    /// The durable metadata of the group as it is now.
    pub fn stored_meta(&self) -> StoredGroupMeta {
        StoredGroupMeta {
            protocol_type: self.protocol_type.clone(),
            generation_id: self.generation_id,
            empty_since: if self.is(GroupState::Empty) {
                self.state_timestamp
            } else {
                None
            },
        }
    }
}

static MEMBER_ID_COUNTER: AtomicU64 = AtomicU64::new(0);

/// 128 unpredictable bits: SipHash keyed from the OS's randomness (std's
/// `RandomState`) over a process-wide counter and the clock.
fn random_u128() -> u128 {
    let counter = MEMBER_ID_COUNTER.fetch_add(1, Ordering::Relaxed);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or_default();
    let state = std::collections::hash_map::RandomState::new();
    let mut h1 = state.build_hasher();
    h1.write_u64(counter);
    h1.write_u128(nanos);
    let a = h1.finish();
    let mut h2 = state.build_hasher();
    h2.write_u64(a);
    h2.write_u64(!counter);
    let b = h2.finish();
    (u128::from(a) << 64) | u128::from(b)
}

/// A random (version 4) UUID in its usual text form.
pub(crate) fn random_uuid() -> String {
    let mut bits = random_u128();
    bits &= !(0xf_u128 << 76);
    bits |= 0x4_u128 << 76; // version 4
    bits &= !(0x3_u128 << 62);
    bits |= 0x2_u128 << 62; // RFC 4122 variant
    let hex = format!("{bits:032x}");
    let mut out = String::with_capacity(36);
    for (i, part) in [
        &hex[0..8],
        &hex[8..12],
        &hex[12..16],
        &hex[16..20],
        &hex[20..32],
    ]
    .iter()
    .enumerate()
    {
        if i > 0 {
            out.push('-');
        }
        let _ = write!(out, "{part}");
    }
    out
}

/// Kafka's member id: `{client_id}-{uuid}`, or `{group_instance_id}-{uuid}`
/// for static members.
pub(crate) fn generate_member_id(client_id: &str, group_instance_id: Option<&str>) -> String {
    format!(
        "{}-{}",
        group_instance_id.unwrap_or(client_id),
        random_uuid()
    )
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    pub(crate) fn member(id: &str, protocols: &[&str]) -> Member {
        Member {
            member_id: id.to_string(),
            group_instance_id: None,
            client_id: "c".into(),
            client_host: "/127.0.0.1".into(),
            rebalance_timeout_ms: 1000,
            session_timeout_ms: 1000,
            protocol_type: "consumer".into(),
            protocols: protocols
                .iter()
                .map(|p| (p.to_string(), Bytes::from(p.to_string())))
                .collect(),
            assignment: Bytes::new(),
            awaiting_join: None,
            awaiting_sync: None,
            is_new: false,
            heartbeat_deadline: Instant::now(),
            heartbeat_timer: 0,
            join_seq: 0,
        }
    }

    fn protos(names: &[&str]) -> Vec<(String, Bytes)> {
        names
            .iter()
            .map(|p| (p.to_string(), Bytes::new()))
            .collect()
    }

    #[test]
    fn protocol_support_and_vote() {
        let mut g = Group::new("g".into(), GroupState::Empty, TimestampMs(0));
        assert!(g.supports_protocols("consumer", &protos(&["range"])));
        assert!(!g.supports_protocols("", &protos(&["range"])));
        assert!(!g.supports_protocols("consumer", &[]));
        g.add_member(member("a", &["range", "roundrobin"]));
        g.transition_to(GroupState::PreparingRebalance, TimestampMs(1));
        g.add_member(member("b", &["roundrobin", "range"]));
        g.add_member(member("c", &["roundrobin"]));
        assert!(!g.supports_protocols("other", &protos(&["roundrobin"])));
        assert!(
            !g.supports_protocols("consumer", &protos(&["range"])),
            "c lacks range"
        );
        assert!(g.supports_protocols("consumer", &protos(&["sticky", "roundrobin"])));
        assert_eq!(g.select_protocol().as_deref(), Some("roundrobin"));
        assert_eq!(g.leader_id.as_deref(), Some("a"));
        assert_eq!(g.member_ids_in_order(), vec!["a", "b", "c"]);
    }

    #[test]
    fn vote_tie_goes_to_first_vote() {
        let mut g = Group::new("g".into(), GroupState::Empty, TimestampMs(0));
        g.add_member(member("a", &["x", "y"]));
        g.add_member(member("b", &["y", "x"]));
        assert_eq!(g.select_protocol().as_deref(), Some("x"));
    }

    #[test]
    fn leader_moves_when_removed_and_static_mapping_follows() {
        let mut g = Group::new("g".into(), GroupState::Empty, TimestampMs(0));
        let mut s = member("s1", &["p"]);
        s.group_instance_id = Some("inst".into());
        g.add_member(s);
        g.add_member(member("d1", &["p"]));
        assert!(g.is_leader("s1"));
        assert!(g.replace_static_member("inst", "s1", "s2"));
        assert!(g.is_leader("s2"));
        assert_eq!(g.static_member_id("inst"), Some("s2"));
        assert!(!g.replace_static_member("inst", "nope", "s3"));
        g.remove_member("s2");
        assert!(g.is_leader("d1"));
        assert!(g.static_members.is_empty());
        g.remove_member("d1");
        assert!(g.leader_id.is_none());
    }

    #[test]
    fn next_generation_and_elections() {
        let mut g = Group::new("g".into(), GroupState::Empty, TimestampMs(0));
        g.transition_to(GroupState::PreparingRebalance, TimestampMs(1));
        assert!(!g.maybe_elect_new_joined_leader());
        g.init_next_generation(TimestampMs(2));
        assert!(g.is(GroupState::Empty));
        assert_eq!(g.generation_id, 1);
        g.transition_to(GroupState::PreparingRebalance, TimestampMs(3));
        g.add_member(member("a", &["p"]));
        let mut b = member("b", &["p"]);
        let (tx, _rx) = oneshot::channel();
        b.awaiting_join = Some(tx);
        g.add_member(b);
        assert!(!g.has_all_members_joined());
        assert!(g.maybe_elect_new_joined_leader());
        assert!(g.is_leader("b"), "a did not rejoin: b leads");
        g.init_next_generation(TimestampMs(4));
        assert!(g.is(GroupState::CompletingRebalance));
        assert_eq!(g.generation_id, 2);
        assert_eq!(g.protocol_name.as_deref(), Some("p"));
    }

    #[test]
    #[should_panic(expected = "illegal transition")]
    fn illegal_transition_is_caught() {
        let mut g = Group::new("g".into(), GroupState::Empty, TimestampMs(0));
        g.transition_to(GroupState::Stable, TimestampMs(1));
    }

    #[test]
    fn subscribed_topics_of_consumer_groups() {
        use crate::group::consumer_protocol::encode_subscription;
        let mut g = Group::new("g".into(), GroupState::Empty, TimestampMs(0));
        assert_eq!(g.compute_subscribed_topics(), None);
        let mut a = member("a", &[]);
        a.protocols = vec![(
            "range".into(),
            Bytes::from(encode_subscription(1, &["t1", "t2"])),
        )];
        let mut b = member("b", &[]);
        b.protocols = vec![("range".into(), Bytes::from(encode_subscription(0, &["t3"])))];
        g.add_member(a);
        g.add_member(b);
        g.transition_to(GroupState::PreparingRebalance, TimestampMs(1));
        g.init_next_generation(TimestampMs(2));
        assert!(g.is_subscribed_to_topic("t1"));
        assert!(g.is_subscribed_to_topic("t3"));
        assert!(!g.is_subscribed_to_topic("t9"));
        // Garbage metadata: unknown, which counts as subscribed.
        g.members.get_mut("b").unwrap().protocols[0].1 = Bytes::from_static(b"\xff");
        g.subscribed_topics = g.compute_subscribed_topics();
        assert!(g.is_subscribed_to_topic("t9"));
        // Other protocol types are never "subscribed".
        g.protocol_type = Some("connect".into());
        g.subscribed_topics = g.compute_subscribed_topics();
        assert!(!g.is_subscribed_to_topic("t1"));
    }

    #[test]
    fn member_ids_look_like_kafkas() {
        let a = generate_member_id("client-1", None);
        let b = generate_member_id("client-1", None);
        assert_ne!(a, b);
        assert!(a.starts_with("client-1-"));
        let uuid = &a["client-1-".len()..];
        assert_eq!(uuid.len(), 36);
        assert_eq!(&uuid[14..15], "4");
        assert!(generate_member_id("c", Some("inst")).starts_with("inst-"));
    }
}
