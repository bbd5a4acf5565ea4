//! Unit tests of the consumer group state machine: joins, incremental
//! reconciliation (revoke before reassign), fencing, leaving, timeouts,
//! offset-commit epochs and the uniform assignor.

use std::collections::{BTreeMap, BTreeSet};

use super::assignor;
use super::coordinator::*;
use super::state::*;
use crate::group::errors::*;
use crate::protocol::Uuid;

const T1: Uuid = Uuid([1; 16]);
const T2: Uuid = Uuid([2; 16]);

fn resolve(name: &str) -> Option<TopicMeta> {
    match name {
        "t1" => Some(TopicMeta { id: T1, partitions: 4 }),
        "t2" => Some(TopicMeta { id: T2, partitions: 2 }),
        _ => None,
    }
}

fn limits() -> Limits {
    Limits { session_timeout_ms: 45_000, max_size: 100, assignors: Default::default() }
}

fn parts(a: &Assignment) -> BTreeSet<(Uuid, i32)> {
    a.iter().flat_map(|(t, ps)| ps.iter().map(move |p| (*t, *p))).collect()
}

fn asg(topic: Uuid, ps: &[i32]) -> Assignment {
    let mut a = Assignment::new();
    if !ps.is_empty() {
        a.insert(topic, ps.iter().copied().collect());
    }
    a
}

fn join(g: &mut ConsumerGroup, member: &str, topics: &[&str], now: i64) -> HeartbeatOutcome {
    g.heartbeat(
        Heartbeat {
            member_id: member.into(),
            member_epoch: 0,
            rebalance_timeout_ms: 300_000,
            subscribed_topic_names: Some(topics.iter().map(|t| t.to_string()).collect()),
            owned: Some(Assignment::new()),
            ..Default::default()
        },
        now,
        limits(),
        &resolve,
    )
    .expect("join")
}

fn beat(g: &mut ConsumerGroup, member: &str, epoch: i32, owned: Option<Assignment>, now: i64) -> Result<HeartbeatOutcome, HeartbeatError> {
    g.heartbeat(
        Heartbeat { member_id: member.into(), member_epoch: epoch, rebalance_timeout_ms: -1, owned, ..Default::default() },
        now,
        limits(),
        &resolve,
    )
}

/// No partition is in two members' assigned or pending-revocation sets.
fn assert_exclusive(g: &ConsumerGroup) {
    let mut seen = BTreeSet::new();
    for m in g.members.values() {
        for tp in parts(&m.assigned).into_iter().chain(parts(&m.pending_revocation)) {
            assert!(seen.insert(tp), "{tp:?} owned twice: {:#?}", g.members);
        }
    }
}

#[test]
fn a_lone_member_gets_every_partition_at_epoch_one() {
    let mut g = ConsumerGroup::new("g".into());
    assert_eq!(g.state(), ConsumerGroupState::Empty);
    let r = join(&mut g, "a", &["t1"], 0);
    assert_eq!(r.member_epoch, 1);
    assert_eq!(r.assignment, Some(asg(T1, &[0, 1, 2, 3])));
    assert_eq!(g.group_epoch, 1);
    assert_eq!(g.state(), ConsumerGroupState::Stable);
    // A plain heartbeat changes nothing and sends no assignment.
    let r = beat(&mut g, "a", 1, None, 10).unwrap();
    assert_eq!((r.member_epoch, r.assignment), (1, None));
}

#[test]
fn a_second_member_gets_partitions_only_after_the_first_revoked_them() {
    let mut g = ConsumerGroup::new("g".into());
    join(&mut g, "a", &["t1"], 0);
    let rb = join(&mut g, "b", &["t1"], 1);
    assert_eq!(g.group_epoch, 2);
    // b is at the new epoch but its partitions are still a's.
    assert_eq!(rb.member_epoch, 2);
    assert_eq!(rb.assignment, Some(Assignment::new()));
    assert_eq!(g.members["b"].state, MemberState::UnreleasedPartitions);
    assert_eq!(g.state(), ConsumerGroupState::Reconciling);
    assert_exclusive(&g);

    // a must revoke two partitions, staying in epoch 1.
    let ra = beat(&mut g, "a", 1, Some(asg(T1, &[0, 1, 2, 3])), 2).unwrap();
    assert_eq!(ra.member_epoch, 1);
    let kept = ra.assignment.clone().expect("new assignment");
    assert_eq!(parts(&kept).len(), 2);
    assert_eq!(g.members["a"].state, MemberState::UnrevokedPartitions);
    assert_exclusive(&g);
    // A commit in epoch 1 is still a's; epoch 2 is ahead.
    assert_eq!(g.validate_offset_commit("a", 1, 9, false), None);
    assert_eq!(g.validate_offset_commit("a", 2, 9, false), Some(FENCED_MEMBER_EPOCH));

    // b heartbeats: still nothing, a has not revoked.
    let rb = beat(&mut g, "b", 2, Some(Assignment::new()), 3).unwrap();
    assert_eq!(rb.assignment, None);
    // a says it still owns everything: it stays revoking.
    let ra = beat(&mut g, "a", 1, Some(asg(T1, &[0, 1, 2, 3])), 4).unwrap();
    assert_eq!((ra.member_epoch, ra.assignment), (1, None));

    // a has revoked: it moves to epoch 2.
    let ra = beat(&mut g, "a", 1, Some(kept.clone()), 5).unwrap();
    assert_eq!(ra.member_epoch, 2);
    assert_eq!(g.members["a"].state, MemberState::Stable);
    assert_eq!(g.validate_offset_commit("a", 1, 9, false), Some(STALE_MEMBER_EPOCH));
    // b gets the released partitions.
    let rb = beat(&mut g, "b", 2, Some(Assignment::new()), 6).unwrap();
    let got = rb.assignment.expect("b's partitions");
    assert_eq!(parts(&got).len(), 2);
    assert!(parts(&got).is_disjoint(&parts(&kept)));
    assert_eq!(g.state(), ConsumerGroupState::Stable);
    assert_exclusive(&g);
}

#[test]
fn leaving_gives_the_partitions_to_the_others() {
    let mut g = ConsumerGroup::new("g".into());
    join(&mut g, "a", &["t1"], 0);
    join(&mut g, "b", &["t1"], 0);
    let ra = beat(&mut g, "a", 1, Some(asg(T1, &[0, 1, 2, 3])), 1).unwrap();
    beat(&mut g, "a", 1, ra.assignment.clone(), 2).unwrap();
    beat(&mut g, "b", 2, Some(Assignment::new()), 3).unwrap();
    assert_eq!(g.state(), ConsumerGroupState::Stable);

    let r = beat(&mut g, "b", LEAVE_GROUP_MEMBER_EPOCH, None, 4).unwrap();
    assert_eq!(r.member_epoch, -1);
    assert_eq!(g.group_epoch, 3);
    assert!(!g.members.contains_key("b"));
    // b's partitions are free: a gets them at once.
    let ra = beat(&mut g, "a", 2, None, 5).unwrap();
    assert_eq!(ra.member_epoch, 3);
    assert_eq!(ra.assignment, Some(asg(T1, &[0, 1, 2, 3])));
    // Leaving twice is an unknown member.
    assert_eq!(beat(&mut g, "b", -1, None, 6).unwrap_err().code, UNKNOWN_MEMBER_ID);
}

#[test]
fn wrong_epochs_and_unknown_members_are_refused() {
    let mut g = ConsumerGroup::new("g".into());
    join(&mut g, "a", &["t1"], 0);
    assert_eq!(beat(&mut g, "a", 5, None, 1).unwrap_err().code, FENCED_MEMBER_EPOCH);
    assert_eq!(beat(&mut g, "zz", 1, None, 1).unwrap_err().code, UNKNOWN_MEMBER_ID);
    join(&mut g, "b", &["t1"], 2);
    let ra = beat(&mut g, "a", 1, Some(asg(T1, &[0, 1, 2, 3])), 3).unwrap();
    let kept = ra.assignment.unwrap();
    beat(&mut g, "a", 1, Some(kept.clone()), 4).unwrap();
    assert_eq!(g.members["a"].member_epoch, 2);
    // The response with epoch 2 was lost: epoch 1 with a subset of the
    // assignment is accepted...
    assert!(beat(&mut g, "a", 1, Some(kept), 5).is_ok());
    // ...but not with partitions it does not have.
    assert_eq!(beat(&mut g, "a", 1, Some(asg(T1, &[0, 1, 2, 3])), 6).unwrap_err().code, FENCED_MEMBER_EPOCH);
    assert_eq!(beat(&mut g, "a", 0, None, 7).map(|r| r.member_epoch), Ok(2));
}

#[test]
fn sessions_and_revocations_time_out() {
    let mut g = ConsumerGroup::new("g".into());
    join(&mut g, "a", &["t1"], 0);
    join(&mut g, "b", &["t1"], 40_000);
    assert_eq!(g.expired_members(44_999), Vec::<String>::new());
    assert_eq!(g.expired_members(45_000), vec!["a".to_string()]);
    g.remove_member("a", &resolve);
    let rb = beat(&mut g, "b", 2, Some(Assignment::new()), 45_001).unwrap();
    assert_eq!(rb.assignment, Some(asg(T1, &[0, 1, 2, 3])));

    // A member that does not revoke within its rebalance timeout is fenced.
    join(&mut g, "c", &["t1"], 50_000);
    beat(&mut g, "b", 3, Some(asg(T1, &[0, 1, 2, 3])), 50_001).unwrap();
    assert_eq!(g.members["b"].state, MemberState::UnrevokedPartitions);
    assert_eq!(g.members["b"].revocation_deadline_ms, Some(50_001 + 300_000));
    assert!(g.expired_members(50_001 + 300_000).contains(&"b".to_string()));
}

#[test]
fn offset_commits_follow_member_epochs() {
    let mut g = ConsumerGroup::new("g".into());
    // An admin commit (epoch -1) to an empty group is allowed.
    assert_eq!(g.validate_offset_commit("", -1, 9, false), None);
    join(&mut g, "a", &["t1"], 0);
    assert_eq!(g.validate_offset_commit("", -1, 9, false), Some(UNKNOWN_MEMBER_ID));
    assert_eq!(g.validate_offset_commit("a", 1, 9, false), None);
    assert_eq!(g.validate_offset_commit("a", 1, 8, false), Some(UNSUPPORTED_VERSION));
    assert_eq!(g.validate_offset_commit("a", 1, 3, true), None);
    assert_eq!(g.validate_offset_commit("a", 0, 9, false), Some(STALE_MEMBER_EPOCH));
    assert_eq!(g.validate_offset_fetch(None, -1), None);
    assert_eq!(g.validate_offset_fetch(Some("a"), 1), None);
    assert_eq!(g.validate_offset_fetch(Some("b"), 1), Some(UNKNOWN_MEMBER_ID));
}

#[test]
fn new_partitions_and_topics_move_the_group_epoch() {
    let mut g = ConsumerGroup::new("g".into());
    let r = join(&mut g, "a", &["t1", "missing"], 0);
    assert_eq!(r.assignment, Some(asg(T1, &[0, 1, 2, 3])));
    let grown = |name: &str| match name {
        "missing" => Some(TopicMeta { id: T2, partitions: 1 }),
        other => resolve(other),
    };
    assert!(g.metadata_changed(&grown));
    let r = g
        .heartbeat(Heartbeat { member_id: "a".into(), member_epoch: 1, rebalance_timeout_ms: -1, ..Default::default() }, 1, limits(), &grown)
        .unwrap();
    assert_eq!(r.member_epoch, 2);
    let mut want = asg(T1, &[0, 1, 2, 3]);
    want.insert(T2, [0].into());
    assert_eq!(r.assignment, Some(want));
}

#[test]
fn uniform_is_balanced_and_sticky() {
    let subs: BTreeSet<String> = ["t1".to_string(), "t2".to_string()].into();
    let meta: BTreeMap<String, TopicMeta> =
        ["t1", "t2"].iter().map(|n| (n.to_string(), resolve(n).unwrap())).collect();
    let members = |ids: &[&'static str]| -> BTreeMap<&'static str, &BTreeSet<String>> {
        ids.iter().map(|id| (*id, &subs)).collect()
    };
    let one = assignor::uniform(&members(&["a"]), &meta, &BTreeMap::new());
    assert_eq!(parts(&one["a"]).len(), 6);
    let two = assignor::uniform(&members(&["a", "b"]), &meta, &one);
    assert_eq!((parts(&two["a"]).len(), parts(&two["b"]).len()), (3, 3));
    assert!(parts(&two["a"]).is_subset(&parts(&one["a"])));
    let three = assignor::uniform(&members(&["a", "b", "c"]), &meta, &two);
    for m in ["a", "b", "c"] {
        assert_eq!(parts(&three[m]).len(), 2, "{three:?}");
    }
    assert!(parts(&three["a"]).is_subset(&parts(&two["a"])));
    assert!(parts(&three["b"]).is_subset(&parts(&two["b"])));
    let all: BTreeSet<_> = three.values().flat_map(parts).collect();
    assert_eq!(all.len(), 6);
    // Five members over six partitions: counts differ by at most one.
    let five = assignor::uniform(&members(&["a", "b", "c", "d", "e"]), &meta, &three);
    let counts: Vec<usize> = five.values().map(|a| parts(a).len()).collect();
    assert_eq!(counts.iter().sum::<usize>(), 6);
    assert!(counts.iter().max().unwrap() - counts.iter().min().unwrap() <= 1, "{counts:?}");
    // Only subscribers of a topic get its partitions.
    let only_t2: BTreeSet<String> = ["t2".to_string()].into();
    let mixed: BTreeMap<&str, &BTreeSet<String>> = [("a", &subs), ("b", &only_t2)].into();
    let m = assignor::uniform(&mixed, &meta, &BTreeMap::new());
    assert!(parts(&m["b"]).iter().all(|(t, _)| *t == T2));
    assert_eq!(parts(&m["a"]).len() + parts(&m["b"]).len(), 6);
}

#[test]
fn the_coordinator_creates_groups_only_for_joins_it_may_take_over() {
    let c = ConsumerGroupCoordinator::new(ConsumerGroupConfig::default());
    let hb = |epoch| Heartbeat {
        member_id: "a".into(),
        member_epoch: epoch,
        rebalance_timeout_ms: 1000,
        subscribed_topic_names: Some(vec!["t1".into()]),
        ..Default::default()
    };
    assert_eq!(c.heartbeat("g", hb(3), 0, &|| Ok(()), &resolve).unwrap_err().code, UNKNOWN_MEMBER_ID);
    assert_eq!(c.heartbeat("g", hb(0), 0, &|| Err(GROUP_ID_NOT_FOUND), &resolve).unwrap_err().code, GROUP_ID_NOT_FOUND);
    assert!(!c.contains("g"));
    assert_eq!(c.heartbeat("g", hb(0), 0, &|| Ok(()), &resolve).unwrap().0.member_epoch, 1);
    assert_eq!(c.release_to_classic("g"), Err(INCONSISTENT_GROUP_PROTOCOL));
    assert_eq!(c.validate_offset_commit("g", "a", 1, 9, false), Some(None));
    assert_eq!(c.validate_offset_commit("other", "a", 1, 9, false), None);
    assert_eq!(c.list(), vec![("g".to_string(), ConsumerGroupState::Stable)]);
    assert_eq!(c.delete("g"), Some(false));
    assert_eq!(c.expire_members(45_000, &resolve), 1);
    assert_eq!(c.list()[0].1, ConsumerGroupState::Empty);
    assert_eq!(c.release_to_classic("g"), Ok(()));
    assert!(!c.contains("g"));
}

/// Topics by name and all names, for regex subscriptions.
struct Catalog(Vec<(&'static str, TopicMeta)>);

impl Topics for Catalog {
    fn topic(&self, name: &str) -> Option<TopicMeta> {
        self.0.iter().find(|(n, _)| *n == name).map(|(_, t)| *t)
    }
    fn names(&self) -> Vec<String> {
        self.0.iter().map(|(n, _)| n.to_string()).collect()
    }
}

#[test]
fn a_regex_subscription_picks_up_topics_created_later() {
    let mut catalog = Catalog(vec![("orders-eu", TopicMeta { id: T1, partitions: 4 }), ("other", TopicMeta { id: T2, partitions: 2 })]);
    let mut g = ConsumerGroup::new("g".into());
    let hb = Heartbeat {
        member_id: "a".into(),
        member_epoch: 0,
        rebalance_timeout_ms: 1000,
        subscribed_topic_regex: Some("orders-.*".into()),
        owned: Some(Assignment::new()),
        ..Default::default()
    };
    let r = g.heartbeat(hb.clone(), 0, limits(), &catalog).unwrap();
    assert_eq!(r.assignment, Some(asg(T1, &[0, 1, 2, 3])));
    // Whole-name matches only.
    assert!(!g.metadata_changed(&catalog));
    // A matching topic appears: a new target at a new epoch.
    const T3: Uuid = Uuid([3; 16]);
    catalog.0.push(("orders-us", TopicMeta { id: T3, partitions: 1 }));
    catalog.0.push(("xorders-us", TopicMeta { id: Uuid([4; 16]), partitions: 1 }));
    assert!(g.refresh(&catalog));
    assert!(!g.refresh(&catalog));
    let r = g
        .heartbeat(Heartbeat { member_id: "a".into(), member_epoch: 1, rebalance_timeout_ms: -1, ..Default::default() }, 1, limits(), &catalog)
        .unwrap();
    assert_eq!(r.member_epoch, 2);
    let mut want = asg(T1, &[0, 1, 2, 3]);
    want.insert(T3, [0].into());
    assert_eq!(r.assignment, Some(want));
    // A bad pattern is refused before anything changes.
    let bad = Heartbeat { member_id: "b".into(), subscribed_topic_regex: Some("(".into()), ..hb };
    assert_eq!(g.heartbeat(bad, 2, limits(), &catalog).unwrap_err().code, INVALID_REGULAR_EXPRESSION);
    assert!(!g.members.contains_key("b"));
}

#[test]
fn a_static_member_rejoins_without_a_rebalance() {
    let mut g = ConsumerGroup::new("g".into());
    let join_static = |g: &mut ConsumerGroup, member: &str, now| {
        g.heartbeat(
            Heartbeat {
                member_id: member.into(),
                member_epoch: 0,
                instance_id: Some("i1".into()),
                rebalance_timeout_ms: 1000,
                subscribed_topic_names: Some(vec!["t1".into()]),
                owned: Some(Assignment::new()),
                ..Default::default()
            },
            now,
            limits(),
            &resolve,
        )
    };
    join_static(&mut g, "a", 0).unwrap();
    join(&mut g, "b", &["t1"], 0);
    let ra = beat(&mut g, "a", 1, Some(asg(T1, &[0, 1, 2, 3])), 1).unwrap();
    let kept = ra.assignment.unwrap();
    beat(&mut g, "a", 1, Some(kept.clone()), 2).unwrap();
    beat(&mut g, "b", 2, Some(Assignment::new()), 3).unwrap();
    assert_eq!(g.state(), ConsumerGroupState::Stable);
    // Another process with the same instance id while "a" is active.
    assert_eq!(join_static(&mut g, "a2", 4).unwrap_err().code, UNRELEASED_INSTANCE_ID);
    // "a" leaves for a while: no new epoch, its partitions stay its own.
    let r = beat(&mut g, "a", LEAVE_GROUP_STATIC_MEMBER_EPOCH, None, 5).unwrap();
    assert_eq!(r.member_epoch, -2);
    assert_eq!(g.group_epoch, 2);
    assert!(parts(&kept).iter().all(|(t, p)| g.owner(*t, *p) == Some("a")));
    // It comes back as "a2" and gets the same partitions at once.
    let r = join_static(&mut g, "a2", 6).unwrap();
    assert_eq!(g.group_epoch, 2);
    assert_eq!((r.member_epoch, r.assignment), (2, Some(kept)));
    assert!(!g.members.contains_key("a"));
    assert_exclusive(&g);
}

#[test]
fn range_gives_contiguous_ranges_and_members_choose_it() {
    let subs: BTreeSet<String> = ["t1".to_string(), "t2".to_string()].into();
    let meta: BTreeMap<String, TopicMeta> =
        ["t1", "t2"].iter().map(|n| (n.to_string(), resolve(n).unwrap())).collect();
    let members: BTreeMap<&str, &BTreeSet<String>> = [("a", &subs), ("b", &subs), ("c", &subs)].into();
    let r = assignor::range(&members, &meta);
    assert_eq!(r["a"], { let mut x = asg(T1, &[0, 1]); x.insert(T2, [0].into()); x });
    assert_eq!(r["b"], { let mut x = asg(T1, &[2]); x.insert(T2, [1].into()); x });
    assert_eq!(r["c"], asg(T1, &[3]));

    let only_uniform = assignor::Assignors::new(&[assignor::Assignor::Uniform]).unwrap();
    assert_eq!(only_uniform.get("range"), None);
    assert_eq!(only_uniform.get("org.apache.kafka.coordinator.group.assignor.UniformAssignor"), Some(assignor::Assignor::Uniform));
    let both = assignor::Assignors::default();
    assert_eq!(both.choose([None, Some("range"), Some("range"), Some("uniform")].into_iter()), assignor::Assignor::Range);
    assert_eq!(both.choose([None, None].into_iter()), assignor::Assignor::Uniform);

    let mut g = ConsumerGroup::new("g".into());
    let r = g
        .heartbeat(
            Heartbeat {
                member_id: "a".into(),
                member_epoch: 0,
                rebalance_timeout_ms: 1000,
                subscribed_topic_names: Some(vec!["t1".into()]),
                server_assignor: Some("range".into()),
                owned: Some(Assignment::new()),
                ..Default::default()
            },
            0,
            limits(),
            &resolve,
        )
        .unwrap();
    assert_eq!(g.assignor, assignor::Assignor::Range);
    assert_eq!(r.assignment, Some(asg(T1, &[0, 1, 2, 3])));
    let bad = Heartbeat { member_id: "b".into(), member_epoch: 0, server_assignor: Some("sticky".into()), ..Default::default() };
    let only = Limits { assignors: only_uniform, ..limits() };
    assert_eq!(g.heartbeat(bad, 1, only, &resolve).unwrap_err().code, UNSUPPORTED_ASSIGNOR);
}

#[test]
fn a_snapshot_restores_epochs_members_and_assignments() {
    let mut g = ConsumerGroup::new("g".into());
    join(&mut g, "a", &["t1"], 0);
    join(&mut g, "b", &["t1", "t2"], 0);
    // Mid-reconciliation: a revoking, b waiting.
    beat(&mut g, "a", 1, Some(asg(T1, &[0, 1, 2, 3])), 1).unwrap();
    let bytes = g.snapshot();
    let r = ConsumerGroup::restore("g".into(), &bytes, 1_000, limits(), &resolve).expect("restores");
    assert_eq!((r.group_epoch, r.assignment_epoch, r.assignor), (g.group_epoch, g.assignment_epoch, g.assignor));
    assert_eq!(r.target, g.target);
    for (id, m) in &g.members {
        let back = &r.members[id];
        assert_eq!((back.member_epoch, back.state, &back.assigned, &back.pending_revocation), (m.member_epoch, m.state, &m.assigned, &m.pending_revocation));
        assert_eq!(back.subscribed_topic_names, m.subscribed_topic_names);
        assert_eq!(back.session_deadline_ms, 1_000 + 45_000);
    }
    for p in 0..4 {
        assert_eq!(r.owner(T1, p), g.owner(T1, p));
    }
    assert_eq!(r.snapshot(), bytes);
    // Nothing changed on the way: the next heartbeat needs no new epoch.
    let mut r = r;
    assert!(!r.refresh(&resolve));
    let kept = r.members["a"].assigned.clone();
    let ra = beat(&mut r, "a", 1, Some(kept), 2_000).unwrap();
    assert_eq!(ra.member_epoch, 2);
    assert!(ConsumerGroup::restore("g".into(), b"garbage", 0, limits(), &resolve).is_none());
}

#[tokio::test]
async fn offsets_of_consumer_groups_expire_as_kafka_does() {
    use crate::group::offsets_store::{CommittedOffset, OffsetsStore, StoreRecord};
    use crate::types::{Offset, TimestampMs};
    let dir = tempfile::tempdir().unwrap();
    let store = std::sync::Arc::new(OffsetsStore::open(dir.path()).unwrap());
    let c = ConsumerGroupCoordinator::open(ConsumerGroupConfig::default(), store.clone(), &resolve, 0);
    let ok = || Ok(());
    let hb = |member: &str| Heartbeat {
        member_id: member.into(),
        member_epoch: 0,
        rebalance_timeout_ms: 300_000,
        subscribed_topic_names: Some(vec!["t1".into()]),
        owned: Some(Assignment::new()),
        ..Default::default()
    };
    for g in ["live", "idle"] {
        let (_, w) = c.heartbeat(g, hb("m"), 0, &ok, &resolve).unwrap();
        w.unwrap().await.unwrap().unwrap();
    }
    let commit = |group: &str, topic: &str, at: i64| StoreRecord::OffsetCommit {
        group: group.into(),
        topic: topic.into(),
        partition: 0,
        value: CommittedOffset {
            offset: Offset(5),
            leader_epoch: -1,
            metadata: String::new(),
            commit_timestamp: TimestampMs(at),
            expire_timestamp: None,
        },
    };
    store
        .append(vec![commit("live", "t1", 1_000), commit("live", "t2", 1_000), commit("idle", "t1", 1_000)])
        .await
        .unwrap();
    // "idle" loses its member: nothing subscribes to its topic any more.
    let leave = Heartbeat { member_id: "m".into(), member_epoch: LEAVE_GROUP_MEMBER_EPOCH, ..Default::default() };
    c.heartbeat("idle", leave, 10, &ok, &resolve).unwrap();

    let retention_ms = 60_000;
    let (n, writes) = c.expire_offsets(TimestampMs(30_000), retention_ms);
    assert_eq!((n, writes.len()), (0, 0), "nothing is past the retention yet");
    let (n, writes) = c.expire_offsets(TimestampMs(61_000), retention_ms);
    for w in writes {
        w.await.unwrap().unwrap();
    }
    assert_eq!(n, 2, "t2 of the live group (not subscribed) and t1 of the empty group");
    assert!(c.contains("live"));
    assert!(!c.contains("idle"), "an empty group without offsets is deleted");
    assert!(store.group("idle").is_none());
    assert!(!store.consumer_groups().iter().any(|(g, _)| g == "idle"), "its state is gone too");
    let left: Vec<String> = store.group("live").unwrap().offsets.into_keys().collect();
    assert_eq!(left, vec!["t1".to_string()], "a subscribed topic's offsets stay");
}
