//! The consumer group of KIP-848 as a pure state machine: members with
//! their epochs and subscriptions, the group epoch, the target assignment
//! (computed by [`assignor::uniform`]) and the incremental reconciliation
//! of each member towards its target (Kafka's `CurrentAssignmentBuilder`):
//! a member first revokes what it must give up, staying in its epoch
//! (UNREVOKED_PARTITIONS); it then moves to the target epoch, and gets a
//! partition only once no other member owns it (UNRELEASED_PARTITIONS
//! until then). No I/O and no clock here: time comes in as milliseconds.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use super::assignor::{self, Assignor, Assignors};
use super::durable::{self, GroupSnapshot, MemberSnapshot, SNAPSHOT_VERSION};
use crate::group::errors::*;
use crate::protocol::Uuid;

/// FENCED_MEMBER_EPOCH: the member's epoch is ahead of or behind the
/// coordinator's; it must rejoin with epoch 0.
pub const FENCED_MEMBER_EPOCH: i16 = 110;
/// UNRELEASED_INSTANCE_ID.
pub const UNRELEASED_INSTANCE_ID: i16 = 111;
/// UNSUPPORTED_ASSIGNOR: the server assignor asked for is unknown.
pub const UNSUPPORTED_ASSIGNOR: i16 = 112;
/// STALE_MEMBER_EPOCH: an offset commit or fetch with an older epoch.
pub const STALE_MEMBER_EPOCH: i16 = 113;
/// INVALID_REQUEST.
pub const INVALID_REQUEST: i16 = 42;
/// UNSUPPORTED_VERSION.
pub const UNSUPPORTED_VERSION: i16 = 35;

/// The epoch a member sends to leave the group.
pub const LEAVE_GROUP_MEMBER_EPOCH: i32 = -1;
/// The epoch a static member sends to leave for a while (it will rejoin).
pub const LEAVE_GROUP_STATIC_MEMBER_EPOCH: i32 = -2;

/// Upper bound on the topics one member may subscribe to.
pub const MAX_SUBSCRIBED_TOPICS: usize = 10_000;

/// Partitions by topic id.
pub type Assignment = BTreeMap<Uuid, BTreeSet<i32>>;

/// INVALID_REGULAR_EXPRESSION (v1 `subscribed_topic_regex`).
pub const INVALID_REGULAR_EXPRESSION: i16 = 128;
/// Bounds what one subscription regex may make the regex compiler build.
pub const MAX_REGEX_BYTES: usize = 4096;
const MAX_REGEX_SIZE_BYTES: usize = 1 << 20;

/// The topics a group can subscribe to: by name, and all names (for
/// regular expressions). Any `Fn(&str) -> Option<TopicMeta>` is one
/// without names.
pub trait Topics {
    fn topic(&self, name: &str) -> Option<TopicMeta>;
    /// Every topic a regular expression may match.
    fn names(&self) -> Vec<String> {
        Vec::new()
    }
}

impl<F: Fn(&str) -> Option<TopicMeta>> Topics for F {
    fn topic(&self, name: &str) -> Option<TopicMeta> {
        self(name)
    }
}

/// Compiles a subscription regex for whole-name matches (RE2/J's
/// `Matcher.matches`, as Kafka uses it).
pub fn compile_regex(pattern: &str) -> Result<regex::Regex, HeartbeatError> {
    if pattern.len() > MAX_REGEX_BYTES {
        return Err(err(INVALID_REGULAR_EXPRESSION, "SubscribedTopicRegex is too long."));
    }
    regex::RegexBuilder::new(&format!("^(?:{pattern})$"))
        .size_limit(MAX_REGEX_SIZE_BYTES)
        .build()
        .map_err(|e| err(INVALID_REGULAR_EXPRESSION, format!("SubscribedTopicRegex `{pattern}` is not a valid regular expression: {e}.")))
}

/// A topic as the assignor sees it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TopicMeta {
    pub id: Uuid,
    pub partitions: i32,
}

/// Where a member is in its reconciliation (Kafka's `MemberState`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MemberState {
    /// At the target epoch with the whole target assignment.
    Stable,
    /// Still in its epoch: must revoke `pending_revocation` first.
    UnrevokedPartitions,
    /// At the target epoch, waiting for partitions other members still own.
    UnreleasedPartitions,
}

impl MemberState {
    pub fn as_str(self) -> &'static str {
        match self {
            MemberState::Stable => "STABLE",
            MemberState::UnrevokedPartitions => "UNREVOKED_PARTITIONS",
            MemberState::UnreleasedPartitions => "UNRELEASED_PARTITIONS",
        }
    }
}

/// One member of a consumer group.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Member {
    pub member_id: String,
    pub instance_id: Option<String>,
    pub rack_id: Option<String>,
    pub client_id: String,
    pub client_host: String,
    pub member_epoch: i32,
    pub previous_member_epoch: i32,
    pub state: MemberState,
    pub subscribed_topic_names: BTreeSet<String>,
    /// v1: topics matching it are subscribed too.
    pub subscribed_topic_regex: Option<String>,
    pub server_assignor: Option<String>,
    pub rebalance_timeout_ms: i32,
    /// What the member may own now (sent to it).
    pub assigned: Assignment,
    /// What it still owns and must revoke.
    pub pending_revocation: Assignment,
    /// The session ends at this time unless a heartbeat comes.
    pub session_deadline_ms: i64,
    /// Set while revoking: the member is fenced if it has not revoked by then.
    pub revocation_deadline_ms: Option<i64>,
}

impl Member {
    fn new(member_id: String) -> Member {
        Member {
            member_id,
            instance_id: None,
            rack_id: None,
            client_id: String::new(),
            client_host: String::new(),
            member_epoch: 0,
            previous_member_epoch: -1,
            state: MemberState::Stable,
            subscribed_topic_names: BTreeSet::new(),
            subscribed_topic_regex: None,
            server_assignor: None,
            rebalance_timeout_ms: 0,
            assigned: Assignment::new(),
            pending_revocation: Assignment::new(),
            session_deadline_ms: 0,
            revocation_deadline_ms: None,
        }
    }
}

/// The group's state as Kafka names it (`ConsumerGroupState`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ConsumerGroupState {
    Empty,
    Assigning,
    Reconciling,
    Stable,
}

impl ConsumerGroupState {
    pub fn as_str(self) -> &'static str {
        match self {
            ConsumerGroupState::Empty => "Empty",
            ConsumerGroupState::Assigning => "Assigning",
            ConsumerGroupState::Reconciling => "Reconciling",
            ConsumerGroupState::Stable => "Stable",
        }
    }
}

/// A heartbeat as the state machine sees it (names resolved by the caller).
#[derive(Clone, Debug, Default)]
pub struct Heartbeat {
    pub member_id: String,
    pub member_epoch: i32,
    pub instance_id: Option<String>,
    pub rack_id: Option<String>,
    /// -1: unchanged.
    pub rebalance_timeout_ms: i32,
    /// None: unchanged.
    pub subscribed_topic_names: Option<Vec<String>>,
    /// None: unchanged; "": no regex any more.
    pub subscribed_topic_regex: Option<String>,
    pub server_assignor: Option<String>,
    /// None: unchanged since the last heartbeat.
    pub owned: Option<Assignment>,
    pub client_id: String,
    pub client_host: String,
}

/// What a successful heartbeat answers.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HeartbeatOutcome {
    pub member_id: String,
    pub member_epoch: i32,
    /// Sent when the member joins, sends a full request or its assignment changed.
    pub assignment: Option<Assignment>,
}

/// A refused heartbeat: error code and message.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HeartbeatError {
    pub code: i16,
    pub message: String,
}

fn err(code: i16, message: impl Into<String>) -> HeartbeatError {
    HeartbeatError { code, message: message.into() }
}

/// Settings the state machine needs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limits {
    pub session_timeout_ms: i32,
    pub max_size: usize,
    pub assignors: Assignors,
}

/// One consumer group.
#[derive(Clone, Debug)]
pub struct ConsumerGroup {
    pub group_id: String,
    pub group_epoch: i32,
    pub assignment_epoch: i32,
    pub members: BTreeMap<String, Member>,
    /// The target assignment of each member, at `assignment_epoch`.
    pub target: BTreeMap<String, Assignment>,
    /// The assignor of the last target.
    pub assignor: Assignor,
    /// The enabled assignors (from the last heartbeat's limits).
    assignors: Assignors,
    /// The subscribed topics that exist, as the last target saw them.
    pub subscribed_metadata: BTreeMap<String, TopicMeta>,
    /// Which member owns (assigned or pending revocation) each partition.
    owners: HashMap<(Uuid, i32), String>,
    /// Each member's topics: its names and what its regex matches.
    member_topics: BTreeMap<String, BTreeSet<String>>,
    /// The members' regexes, compiled.
    regexes: HashMap<String, regex::Regex>,
}

impl ConsumerGroup {
    pub fn new(group_id: String) -> ConsumerGroup {
        ConsumerGroup {
            group_id,
            group_epoch: 0,
            assignment_epoch: 0,
            members: BTreeMap::new(),
            target: BTreeMap::new(),
            assignor: Assignor::Uniform,
            assignors: Assignors::default(),
            subscribed_metadata: BTreeMap::new(),
            owners: HashMap::new(),
            member_topics: BTreeMap::new(),
            regexes: HashMap::new(),
        }
    }

    pub fn state(&self) -> ConsumerGroupState {
        if self.members.is_empty() {
            ConsumerGroupState::Empty
        } else if self.group_epoch > self.assignment_epoch {
            ConsumerGroupState::Assigning
        } else if self
            .members
            .values()
            .any(|m| m.state != MemberState::Stable || m.member_epoch != self.assignment_epoch)
        {
            ConsumerGroupState::Reconciling
        } else {
            ConsumerGroupState::Stable
        }
    }

    /// The member that owns a partition, if any.
    pub fn owner(&self, topic: Uuid, partition: i32) -> Option<&str> {
        self.owners.get(&(topic, partition)).map(String::as_str)
    }

    /// Handles a ConsumerGroupHeartbeat (Kafka's `consumerGroupHeartbeat`).
    /// `resolve` gives a topic's id and partition count by name.
    pub fn heartbeat(
        &mut self,
        hb: Heartbeat,
        now_ms: i64,
        limits: Limits,
        topics: &dyn Topics,
    ) -> Result<HeartbeatOutcome, HeartbeatError> {
        if hb.member_epoch == LEAVE_GROUP_MEMBER_EPOCH || hb.member_epoch == LEAVE_GROUP_STATIC_MEMBER_EPOCH {
            if !self.members.contains_key(&hb.member_id) {
                return Err(err(
                    UNKNOWN_MEMBER_ID,
                    format!("Member {} is not a member of group {}.", hb.member_id, self.group_id),
                ));
            }
            let static_member = self.members.get(&hb.member_id).is_some_and(|m| m.instance_id.is_some());
            if hb.member_epoch == LEAVE_GROUP_STATIC_MEMBER_EPOCH && static_member {
                // A static member leaving for a while keeps its partitions
                // (no rebalance) until it rejoins or its session ends.
                if let Some(m) = self.members.get_mut(&hb.member_id) {
                    m.member_epoch = LEAVE_GROUP_STATIC_MEMBER_EPOCH;
                }
            } else {
                self.remove_member(&hb.member_id, topics);
            }
            return Ok(HeartbeatOutcome { member_id: hb.member_id, member_epoch: hb.member_epoch, assignment: None });
        }
        if hb.member_epoch == 0 {
            if let Some(instance_id) = hb.instance_id.as_deref() {
                self.replace_static_member(instance_id, &hb.member_id)?;
            }
        }
        self.assignors = limits.assignors;
        if let Some(assignor) = &hb.server_assignor {
            if limits.assignors.get(assignor).is_none() {
                return Err(err(UNSUPPORTED_ASSIGNOR, format!("ServerAssignor {assignor} is not supported.")));
            }
        }
        if hb.subscribed_topic_names.as_ref().is_some_and(|t| t.len() > MAX_SUBSCRIBED_TOPICS) {
            return Err(err(INVALID_REQUEST, "Too many subscribed topics."));
        }
        let regex = match hb.subscribed_topic_regex.as_deref() {
            Some(p) if !p.is_empty() && !self.regexes.contains_key(p) => Some((p.to_string(), compile_regex(p)?)),
            _ => None,
        };
        let joining = hb.member_epoch == 0;
        let mut bump = false;
        let mut member = match self.members.get(&hb.member_id) {
            Some(m) => {
                if !joining {
                    check_member_epoch(m, hb.member_epoch, hb.owned.as_ref())?;
                }
                m.clone()
            }
            None if joining => {
                if self.members.len() >= limits.max_size {
                    return Err(err(
                        GROUP_MAX_SIZE_REACHED,
                        format!("The consumer group has reached its maximum capacity of {} members.", limits.max_size),
                    ));
                }
                bump = true;
                Member::new(hb.member_id.clone())
            }
            None => {
                return Err(err(
                    UNKNOWN_MEMBER_ID,
                    format!("Member {} is not a member of group {}.", hb.member_id, self.group_id),
                ))
            }
        };
        let previous = member.clone();
        if let Some(names) = hb.subscribed_topic_names {
            let names: BTreeSet<String> = names.into_iter().collect();
            if names != member.subscribed_topic_names {
                member.subscribed_topic_names = names;
                bump = true;
            }
        }
        if let Some(pattern) = hb.subscribed_topic_regex {
            let pattern = Some(pattern).filter(|p| !p.is_empty());
            if pattern != member.subscribed_topic_regex {
                member.subscribed_topic_regex = pattern;
                bump = true;
            }
        }
        if let Some((pattern, re)) = regex {
            self.regexes.insert(pattern, re);
        }
        if hb.rebalance_timeout_ms != -1 {
            member.rebalance_timeout_ms = hb.rebalance_timeout_ms;
        }
        if hb.server_assignor.is_some() && hb.server_assignor != member.server_assignor {
            member.server_assignor = hb.server_assignor;
            bump = true;
        }
        if hb.instance_id.is_some() {
            member.instance_id = hb.instance_id;
        }
        if hb.rack_id.is_some() {
            member.rack_id = hb.rack_id;
        }
        member.client_id = hb.client_id;
        member.client_host = hb.client_host;
        member.session_deadline_ms = now_ms.saturating_add(i64::from(limits.session_timeout_ms));
        let member_id = member.member_id.clone();
        self.members.insert(member_id.clone(), member);

        if self.refresh_metadata(topics) {
            bump = true;
        }
        if bump {
            self.group_epoch += 1;
        }
        if self.group_epoch > self.assignment_epoch {
            self.compute_target();
        }
        self.reconcile(&member_id, hb.owned.as_ref(), now_ms);
        let updated = &self.members[&member_id];
        let full_request = hb.rebalance_timeout_ms != -1 && hb.owned.is_some();
        let send = joining || full_request || updated.assigned != previous.assigned;
        Ok(HeartbeatOutcome {
            member_id,
            member_epoch: updated.member_epoch,
            assignment: send.then(|| updated.assigned.clone()),
        })
    }

    /// A static member (`group.instance.id`) rejoining under a new member
    /// id: the one that left with epoch -2 is replaced, its target
    /// assignment passes to the new id (no new group epoch, so no
    /// rebalance); one still active is UNRELEASED_INSTANCE_ID.
    fn replace_static_member(&mut self, instance_id: &str, new_member_id: &str) -> Result<(), HeartbeatError> {
        let Some(old) = self.members.values().find(|m| m.instance_id.as_deref() == Some(instance_id)) else {
            return Ok(());
        };
        if old.member_id == new_member_id {
            return Ok(());
        }
        if old.member_epoch != LEAVE_GROUP_STATIC_MEMBER_EPOCH {
            return Err(err(
                UNRELEASED_INSTANCE_ID,
                format!("Static member {} with instance id {instance_id} is not released yet.", old.member_id),
            ));
        }
        let old = old.clone();
        self.members.remove(&old.member_id);
        self.owners.retain(|_, owner| owner != &old.member_id);
        if let Some(topics) = self.member_topics.remove(&old.member_id) {
            self.member_topics.insert(new_member_id.to_string(), topics);
        }
        let target = self.target.remove(&old.member_id).unwrap_or_default();
        self.target.insert(new_member_id.to_string(), target);
        let mut member = Member::new(new_member_id.to_string());
        member.instance_id = old.instance_id;
        member.rack_id = old.rack_id;
        member.subscribed_topic_names = old.subscribed_topic_names;
        member.subscribed_topic_regex = old.subscribed_topic_regex;
        member.server_assignor = old.server_assignor;
        member.rebalance_timeout_ms = old.rebalance_timeout_ms;
        self.members.insert(new_member_id.to_string(), member);
        Ok(())
    }

    /// Removes a member (left, session expired or fenced): its partitions
    /// are free, the group epoch moves and a new target is computed.
    pub fn remove_member(&mut self, member_id: &str, topics: &dyn Topics) {
        if self.members.remove(member_id).is_none() {
            return;
        }
        self.owners.retain(|_, owner| owner != member_id);
        self.target.remove(member_id);
        self.member_topics.remove(member_id);
        self.refresh_metadata(topics);
        self.group_epoch += 1;
        self.compute_target();
    }

    /// Whether a member subscribes to `topic`, by name or through a regex
    /// (Kafka's `isSubscribedToTopic`: such offsets never expire).
    pub fn is_subscribed_to_topic(&self, topic: &str) -> bool {
        self.subscribed_metadata.contains_key(topic)
            || self.members.values().any(|m| m.subscribed_topic_names.contains(topic))
            || self.member_topics.values().any(|t| t.contains(topic))
    }

    /// Members whose session or revocation time ran out at `now_ms`.
    pub fn expired_members(&self, now_ms: i64) -> Vec<String> {
        self.members
            .values()
            .filter(|m| m.session_deadline_ms <= now_ms || m.revocation_deadline_ms.is_some_and(|d| d <= now_ms))
            .map(|m| m.member_id.clone())
            .collect()
    }

    /// Each member's topics and the metadata of those that exist.
    fn resolve_subscriptions(&self, topics: &dyn Topics) -> (BTreeMap<String, BTreeSet<String>>, BTreeMap<String, TopicMeta>) {
        let all_names = if self.members.values().any(|m| m.subscribed_topic_regex.is_some()) {
            topics.names()
        } else {
            Vec::new()
        };
        let mut matched: HashMap<&str, Vec<String>> = HashMap::new();
        for m in self.members.values() {
            if let Some(p) = m.subscribed_topic_regex.as_deref() {
                if matched.contains_key(p) {
                    continue;
                }
                let names = match self.regexes.get(p) {
                    Some(re) => all_names.iter().filter(|n| re.is_match(n)).cloned().collect(),
                    None => Vec::new(),
                };
                matched.insert(p, names);
            }
        }
        let mut member_topics = BTreeMap::new();
        let mut metadata = BTreeMap::new();
        for m in self.members.values() {
            let mut names = m.subscribed_topic_names.clone();
            if let Some(p) = m.subscribed_topic_regex.as_deref() {
                names.extend(matched.get(p).into_iter().flatten().cloned());
            }
            for n in &names {
                if !metadata.contains_key(n) {
                    if let Some(t) = topics.topic(n) {
                        metadata.insert(n.clone(), t);
                    }
                }
            }
            member_topics.insert(m.member_id.clone(), names);
        }
        (member_topics, metadata)
    }

    /// Re-reads the subscriptions (regexes included) and their topics'
    /// metadata; true when they changed.
    fn refresh_metadata(&mut self, topics: &dyn Topics) -> bool {
        let (member_topics, metadata) = self.resolve_subscriptions(topics);
        let in_use: BTreeSet<&str> = self.members.values().filter_map(|m| m.subscribed_topic_regex.as_deref()).collect();
        self.regexes.retain(|p, _| in_use.contains(p.as_str()));
        if metadata == self.subscribed_metadata && member_topics == self.member_topics {
            return false;
        }
        self.subscribed_metadata = metadata;
        self.member_topics = member_topics;
        true
    }

    /// Whether the subscribed topics differ from what the target was
    /// computed with (partitions added, topics created, matched or deleted).
    pub fn metadata_changed(&self, topics: &dyn Topics) -> bool {
        let (member_topics, metadata) = self.resolve_subscriptions(topics);
        metadata != self.subscribed_metadata || member_topics != self.member_topics
    }

    /// A new target at a new group epoch when the subscribed topics
    /// changed (topic created, partitions added) without any heartbeat.
    pub fn refresh(&mut self, topics: &dyn Topics) -> bool {
        if self.members.is_empty() || !self.refresh_metadata(topics) {
            return false;
        }
        self.group_epoch += 1;
        self.compute_target();
        true
    }

    /// A new target assignment at the group epoch.
    fn compute_target(&mut self) {
        let empty = BTreeSet::new();
        let subscriptions: BTreeMap<&str, &BTreeSet<String>> = self
            .members
            .keys()
            .map(|id| (id.as_str(), self.member_topics.get(id).unwrap_or(&empty)))
            .collect();
        self.assignor = self.assignors.choose(self.members.values().map(|m| m.server_assignor.as_deref()));
        self.target = match self.assignor {
            Assignor::Uniform => assignor::uniform(&subscriptions, &self.subscribed_metadata, &self.target),
            Assignor::Range => assignor::range(&subscriptions, &self.subscribed_metadata),
        };
        self.assignment_epoch = self.group_epoch;
    }

    /// Moves one member towards its target (Kafka's `CurrentAssignmentBuilder`).
    fn reconcile(&mut self, member_id: &str, owned: Option<&Assignment>, now_ms: i64) {
        let Some(member) = self.members.get(member_id) else { return };
        let next = match member.state {
            MemberState::Stable if member.member_epoch == self.assignment_epoch => return,
            MemberState::UnrevokedPartitions if owns_any(owned, &member.pending_revocation) => return,
            _ => self.next_assignment(member, owned, now_ms),
        };
        self.set_member(next);
    }

    fn next_assignment(&self, member: &Member, owned: Option<&Assignment>, now_ms: i64) -> Member {
        let empty = Assignment::new();
        let target = self.target.get(&member.member_id).unwrap_or(&empty);
        let mut assigned = Assignment::new();
        let mut pending_revocation = Assignment::new();
        let mut unreleased = false;
        let topics: BTreeSet<&Uuid> = target.keys().chain(member.assigned.keys()).collect();
        for topic in topics {
            let want = target.get(topic);
            let have = member.assigned.get(topic);
            for &p in have.into_iter().flatten() {
                if want.is_some_and(|w| w.contains(&p)) {
                    assigned.entry(*topic).or_default().insert(p);
                } else {
                    pending_revocation.entry(*topic).or_default().insert(p);
                }
            }
            for &p in want.into_iter().flatten() {
                if have.is_some_and(|h| h.contains(&p)) {
                    continue;
                }
                match self.owners.get(&(*topic, p)) {
                    Some(owner) if owner != &member.member_id => unreleased = true,
                    _ => {
                        assigned.entry(*topic).or_default().insert(p);
                    }
                }
            }
        }
        let mut next = member.clone();
        if !pending_revocation.is_empty() && owns_any(owned, &pending_revocation) {
            // Revoke first, in the current epoch; what must be revoked is
            // not given again, and nothing new is given yet.
            for (topic, parts) in &mut assigned {
                if let Some(have) = member.assigned.get(topic) {
                    parts.retain(|p| have.contains(p));
                } else {
                    parts.clear();
                }
            }
            assigned.retain(|_, p| !p.is_empty());
            next.state = MemberState::UnrevokedPartitions;
            next.assigned = assigned;
            next.pending_revocation = pending_revocation;
            if member.state != MemberState::UnrevokedPartitions {
                next.revocation_deadline_ms = Some(now_ms.saturating_add(i64::from(member.rebalance_timeout_ms.max(0))));
            }
            return next;
        }
        next.state = if unreleased { MemberState::UnreleasedPartitions } else { MemberState::Stable };
        if next.member_epoch != self.assignment_epoch {
            next.previous_member_epoch = next.member_epoch;
            next.member_epoch = self.assignment_epoch;
        }
        next.assigned = assigned;
        next.pending_revocation = Assignment::new();
        next.revocation_deadline_ms = None;
        next
    }

    /// Stores a member's new state and the partitions it owns.
    fn set_member(&mut self, member: Member) {
        let id = member.member_id.clone();
        self.owners.retain(|_, owner| owner != &id);
        for (topic, parts) in member.assigned.iter().chain(member.pending_revocation.iter()) {
            for &p in parts {
                self.owners.insert((*topic, p), id.clone());
            }
        }
        self.members.insert(id, member);
    }

    /// OffsetCommit validation for this group (Kafka's
    /// `ConsumerGroup.validateOffsetCommit`): None when allowed.
    pub fn validate_offset_commit(&self, member_id: &str, member_epoch: i32, api_version: i16, transactional: bool) -> Option<i16> {
        if member_epoch < 0 && self.members.is_empty() {
            return None;
        }
        let Some(member) = self.members.get(member_id) else { return Some(UNKNOWN_MEMBER_ID) };
        if !transactional && api_version < 9 {
            return Some(UNSUPPORTED_VERSION);
        }
        epoch_error(member_epoch, member.member_epoch)
    }

    /// OffsetFetch validation (`ConsumerGroup.validateOffsetFetch`).
    pub fn validate_offset_fetch(&self, member_id: Option<&str>, member_epoch: i32) -> Option<i16> {
        let member_id = member_id?;
        if member_epoch < 0 && member_id.is_empty() {
            return None;
        }
        let Some(member) = self.members.get(member_id) else { return Some(UNKNOWN_MEMBER_ID) };
        epoch_error(member_epoch, member.member_epoch)
    }
}

fn epoch_error(received: i32, expected: i32) -> Option<i16> {
    if received > expected {
        Some(FENCED_MEMBER_EPOCH)
    } else if received < expected {
        Some(STALE_MEMBER_EPOCH)
    } else {
        None
    }
}

/// Kafka's `throwIfMemberEpochIsInvalid`: an epoch ahead is fenced; one
/// behind is accepted only if it is the previous epoch and the member owns
/// no more than it is assigned (the response with the new epoch was lost).
fn check_member_epoch(member: &Member, received: i32, owned: Option<&Assignment>) -> Result<(), HeartbeatError> {
    let fenced = || {
        err(
            FENCED_MEMBER_EPOCH,
            format!("The consumer group member has a smaller member epoch ({received}) than the one known by the group coordinator ({}). The member must abandon all its partitions and rejoin.", member.member_epoch),
        )
    };
    if received > member.member_epoch {
        return Err(err(
            FENCED_MEMBER_EPOCH,
            format!("The consumer group member has a greater member epoch ({received}) than the one known by the group coordinator ({}). The member must abandon all its partitions and rejoin.", member.member_epoch),
        ));
    }
    if received < member.member_epoch {
        let subset = owned.is_some_and(|o| {
            o.iter().all(|(t, ps)| ps.iter().all(|p| member.assigned.get(t).is_some_and(|a| a.contains(p))))
        });
        if received != member.previous_member_epoch || !subset {
            return Err(fenced());
        }
    }
    Ok(())
}

/// Kafka's `ownsRevokedPartitions`: unknown (null) owned partitions count as owning them.
fn owns_any(owned: Option<&Assignment>, revoking: &Assignment) -> bool {
    let Some(owned) = owned else { return true };
    revoking.iter().any(|(t, ps)| owned.get(t).is_some_and(|o| ps.iter().any(|p| o.contains(p))))
}

impl ConsumerGroup {
    /// The durable snapshot (see `durable`); session deadlines are not in it.
    pub fn snapshot(&self) -> Vec<u8> {
        let snap = GroupSnapshot {
            version: SNAPSHOT_VERSION,
            group_epoch: self.group_epoch,
            assignment_epoch: self.assignment_epoch,
            assignor: self.assignor.name().to_string(),
            members: self
                .members
                .values()
                .map(|m| MemberSnapshot {
                    member_id: m.member_id.clone(),
                    instance_id: m.instance_id.clone(),
                    rack_id: m.rack_id.clone(),
                    client_id: m.client_id.clone(),
                    client_host: m.client_host.clone(),
                    member_epoch: m.member_epoch,
                    previous_member_epoch: m.previous_member_epoch,
                    state: match m.state {
                        MemberState::Stable => 0,
                        MemberState::UnrevokedPartitions => 1,
                        MemberState::UnreleasedPartitions => 2,
                    },
                    subscribed_topic_names: m.subscribed_topic_names.iter().cloned().collect(),
                    subscribed_topic_regex: m.subscribed_topic_regex.clone(),
                    server_assignor: m.server_assignor.clone(),
                    rebalance_timeout_ms: m.rebalance_timeout_ms,
                    assigned: durable::to_wire(&m.assigned),
                    pending_revocation: durable::to_wire(&m.pending_revocation),
                })
                .collect(),
            target: self.target.iter().map(|(m, a)| (m.clone(), durable::to_wire(a))).collect(),
        };
        serde_json::to_vec(&snap).unwrap_or_default()
    }

    /// A group back from its snapshot: every member gets a new session
    /// (from `now_ms`), a revoking member a new rebalance timeout; the
    /// subscriptions are resolved against `topics` without a new epoch
    /// (a change found there moves the group at the next heartbeat).
    /// None for a snapshot that does not decode.
    pub fn restore(group_id: String, bytes: &[u8], now_ms: i64, limits: Limits, topics: &dyn Topics) -> Option<ConsumerGroup> {
        let snap: GroupSnapshot = serde_json::from_slice(bytes).ok()?;
        if snap.version != SNAPSHOT_VERSION {
            return None;
        }
        let mut g = ConsumerGroup::new(group_id);
        g.group_epoch = snap.group_epoch;
        g.assignment_epoch = snap.assignment_epoch;
        g.assignor = Assignor::from_name(&snap.assignor).unwrap_or(Assignor::Uniform);
        g.assignors = limits.assignors;
        for m in snap.members {
            let state = match m.state {
                0 => MemberState::Stable,
                1 => MemberState::UnrevokedPartitions,
                _ => MemberState::UnreleasedPartitions,
            };
            if let Some(p) = m.subscribed_topic_regex.as_deref() {
                if let Ok(re) = compile_regex(p) {
                    g.regexes.insert(p.to_string(), re);
                }
            }
            let member = Member {
                member_id: m.member_id,
                instance_id: m.instance_id,
                rack_id: m.rack_id,
                client_id: m.client_id,
                client_host: m.client_host,
                member_epoch: m.member_epoch,
                previous_member_epoch: m.previous_member_epoch,
                state,
                subscribed_topic_names: m.subscribed_topic_names.into_iter().collect(),
                subscribed_topic_regex: m.subscribed_topic_regex,
                server_assignor: m.server_assignor,
                rebalance_timeout_ms: m.rebalance_timeout_ms,
                assigned: durable::from_wire(m.assigned),
                pending_revocation: durable::from_wire(m.pending_revocation),
                session_deadline_ms: now_ms.saturating_add(i64::from(limits.session_timeout_ms)),
                revocation_deadline_ms: (state == MemberState::UnrevokedPartitions)
                    .then(|| now_ms.saturating_add(i64::from(m.rebalance_timeout_ms.max(0)))),
            };
            g.set_member(member);
        }
        g.target = snap.target.into_iter().map(|(m, a)| (m, durable::from_wire(a))).collect();
        g.target.retain(|m, _| g.members.contains_key(m));
        let (member_topics, metadata) = g.resolve_subscriptions(topics);
        g.member_topics = member_topics;
        g.subscribed_metadata = metadata;
        Some(g)
    }
}
