//! End-to-end tests of the group coordinator: rebalances with 1-3 members
//! on a multi-threaded runtime, MEMBER_ID_REQUIRED, leaves, session
//! expiry, generation checks, static members, offset commit/fetch/delete,
//! expiry, group deletion, persistence across a restart and shutdown.
//! Timeouts are tens of milliseconds so the whole file runs in seconds.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;

use crate::group::consumer_protocol::encode_subscription;
use crate::group::errors::*;
use crate::group::*;
use crate::types::TimestampMs;

const SESSION_MS: i32 = 2_000;
const REBALANCE_MS: i32 = 2_000;

fn cfg() -> GroupConfig {
    GroupConfig {
        min_session_timeout_ms: 10,
        max_session_timeout_ms: 60_000,
        // Long enough for concurrent joiners to share the first generation.
        initial_rebalance_delay_ms: 250,
        max_size: 100,
        offsets_retention_ms: 60_000,
        offset_metadata_max_bytes: 16,
    }
}

fn open(config: GroupConfig) -> (GroupCoordinator, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let c = GroupCoordinator::open(config, dir.path()).unwrap();
    (c, dir)
}

fn subscription(topics: &[&str]) -> Bytes {
    Bytes::from(encode_subscription(1, topics))
}

fn join_req(group: &str, member_id: &str, topics: &[&str]) -> JoinGroupRequest {
    JoinGroupRequest {
        group_id: group.into(),
        session_timeout_ms: SESSION_MS,
        rebalance_timeout_ms: REBALANCE_MS,
        member_id: member_id.into(),
        group_instance_id: None,
        protocol_type: "consumer".into(),
        protocols: vec![("range".into(), subscription(topics))],
        reason: None,
        api_version: 7,
        client_id: "client".into(),
        client_host: "/127.0.0.1".into(),
    }
}

/// Joins as a new dynamic member: MEMBER_ID_REQUIRED, then the real join.
async fn join_new(c: &GroupCoordinator, mut req: JoinGroupRequest) -> JoinGroupResponse {
    req.member_id.clear();
    let first = c.join_group(req.clone()).await;
    assert_eq!(first.error_code, MEMBER_ID_REQUIRED);
    assert!(
        first.member_id.starts_with("client-"),
        "{}",
        first.member_id
    );
    req.member_id = first.member_id;
    c.join_group(req).await
}

fn sync_req(
    group: &str,
    generation_id: i32,
    member_id: &str,
    assignments: Vec<(String, Bytes)>,
) -> SyncGroupRequest {
    SyncGroupRequest {
        group_id: group.into(),
        generation_id,
        member_id: member_id.into(),
        group_instance_id: None,
        protocol_type: Some("consumer".into()),
        protocol_name: Some("range".into()),
        assignments,
    }
}

fn hb(group: &str, generation_id: i32, member_id: &str) -> HeartbeatRequest {
    HeartbeatRequest {
        group_id: group.into(),
        generation_id,
        member_id: member_id.into(),
        group_instance_id: None,
    }
}

fn commit_req(
    group: &str,
    generation: i32,
    member_id: &str,
    topic: &str,
    offsets: &[(i32, i64)],
) -> OffsetCommitRequest {
    OffsetCommitRequest {
        group_id: group.into(),
        generation_id_or_member_epoch: generation,
        member_id: member_id.into(),
        group_instance_id: None,
        retention_time_ms: -1,
        topics: vec![OffsetCommitTopic {
            name: topic.into(),
            partitions: offsets
                .iter()
                .map(|&(p, o)| OffsetCommitPartition {
                    partition_index: p,
                    committed_offset: o,
                    committed_leader_epoch: 1,
                    committed_metadata: Some(format!("m{o}")),
                })
                .collect(),
        }],
        api_version: 8,
    }
}

fn codes(r: &OffsetCommitResponse) -> Vec<i16> {
    r.topics
        .iter()
        .flat_map(|t| t.partitions.iter().map(|p| p.error_code))
        .collect()
}

/// Runs a full rebalance of `n` concurrent new members; returns
/// (member id, join response, assignment) for each, sorted by member id.
async fn form_group(
    c: &GroupCoordinator,
    group: &str,
    n: usize,
) -> Vec<(String, JoinGroupResponse, Bytes)> {
    let mut joins = Vec::new();
    for i in 0..n {
        let c = c.clone();
        let group = group.to_string();
        joins.push(tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(5 * i as u64)).await;
            join_new(&c, join_req(&group, "", &["t1", "t2"])).await
        }));
    }
    let mut responses = Vec::new();
    for j in joins {
        responses.push(j.await.unwrap());
    }
    let generation = responses[0].generation_id;
    let leader = responses[0].leader.clone();
    for r in &responses {
        assert_eq!(r.error_code, NONE, "{r:?}");
        assert_eq!(r.generation_id, generation);
        assert_eq!(r.leader, leader);
        assert_eq!(r.protocol_name.as_deref(), Some("range"));
        assert_eq!(r.protocol_type.as_deref(), Some("consumer"));
        if r.member_id == leader {
            assert_eq!(r.members.len(), n, "the leader sees every member");
        } else {
            assert!(r.members.is_empty(), "followers see no members");
        }
    }
    assert_eq!(
        responses.iter().filter(|r| r.member_id == leader).count(),
        1
    );
    // Everybody syncs concurrently; the leader hands out assignments.
    let assignments: Vec<(String, Bytes)> = responses
        .iter()
        .map(|r| {
            (
                r.member_id.clone(),
                Bytes::from(format!("assign-{}", r.member_id)),
            )
        })
        .collect();
    let mut syncs = Vec::new();
    for r in &responses {
        let c = c.clone();
        let req = sync_req(
            group,
            generation,
            &r.member_id,
            if r.member_id == leader {
                assignments.clone()
            } else {
                Vec::new()
            },
        );
        syncs.push(tokio::spawn(async move { c.sync_group(req).await }));
    }
    let mut out = Vec::new();
    for (r, s) in responses.into_iter().zip(syncs) {
        let s = s.await.unwrap();
        assert_eq!(s.error_code, NONE, "{s:?}");
        assert_eq!(s.assignment, Bytes::from(format!("assign-{}", r.member_id)));
        assert_eq!(s.protocol_name.as_deref(), Some("range"));
        out.push((r.member_id.clone(), r, s.assignment));
    }
    out.sort_by(|a, b| a.0.cmp(&b.0));
    assert_eq!(c.group_state(group), Some(GroupState::Stable));
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_member_join_sync_heartbeat_describe() {
    let (c, _dir) = open(cfg());
    let members = form_group(&c, "g1", 1).await;
    let (id, join, assignment) = &members[0];
    assert_eq!(join.generation_id, 1);
    assert_eq!(&join.leader, id);
    assert_eq!(join.members[0].metadata, subscription(&["t1", "t2"]));
    assert_eq!(c.heartbeat(hb("g1", 1, id)).await, NONE);

    let d = c
        .describe_groups(&["g1".to_string(), "nope".to_string()])
        .await;
    assert_eq!(d[0].error_code, NONE);
    assert_eq!(d[0].group_state, "Stable");
    assert_eq!(d[0].protocol_type, "consumer");
    assert_eq!(d[0].protocol_data, "range");
    assert_eq!(d[0].members.len(), 1);
    assert_eq!(&d[0].members[0].member_assignment, assignment);
    assert_eq!(d[0].members[0].member_metadata, subscription(&["t1", "t2"]));
    assert_eq!(d[0].members[0].client_host, "/127.0.0.1");
    assert_eq!((d[1].error_code, d[1].group_state.as_str()), (NONE, "Dead"));

    // A follower-less leader rejoining forces a new generation.
    let mut again = join_req("g1", id, &["t1", "t2"]);
    again.member_id = id.clone();
    let r = c.join_group(again).await;
    assert_eq!((r.error_code, r.generation_id), (NONE, 2));

    let listed = c.list_groups(&[], &[]).await;
    assert_eq!(listed.groups.len(), 1);
    assert_eq!(listed.groups[0].group_state, "CompletingRebalance");
    assert_eq!(listed.groups[0].group_type, "classic");
    assert!(c
        .list_groups(&["stable".into()], &[])
        .await
        .groups
        .is_empty());
    assert_eq!(
        c.list_groups(&["completingrebalance".into()], &["Classic".into()])
            .await
            .groups
            .len(),
        1
    );
    assert!(c
        .list_groups(&[], &["consumer".into()])
        .await
        .groups
        .is_empty());
    c.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_and_three_members_rebalance_concurrently() {
    let (c, _dir) = open(cfg());
    let two = form_group(&c, "g2", 2).await;
    assert_eq!(two[0].1.generation_id, 1);
    let three = form_group(&c, "g3", 3).await;
    assert_eq!(three[0].1.generation_id, 1);
    let ids: std::collections::HashSet<_> = three.iter().map(|m| m.0.clone()).collect();
    assert_eq!(ids.len(), 3);
    c.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn member_id_required_flow_and_old_join_versions() {
    let (c, _dir) = open(cfg());
    let mut req = join_req("g", "", &["t"]);
    let first = c.join_group(req.clone()).await;
    assert_eq!(first.error_code, MEMBER_ID_REQUIRED);
    assert_eq!(first.generation_id, -1);
    // The pending id is what makes the second join a member.
    assert_eq!(c.group_state("g"), Some(GroupState::Empty));
    req.member_id = first.member_id.clone();
    let second = c.join_group(req).await;
    assert_eq!(second.error_code, NONE);
    assert_eq!(second.member_id, first.member_id);

    // JoinGroup v3 (before KIP-394) is admitted straight away.
    let mut old = join_req("g-old", "", &["t"]);
    old.api_version = 3;
    let r = c.join_group(old).await;
    assert_eq!(r.error_code, NONE);
    assert!(r.member_id.starts_with("client-"));
    c.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn leave_triggers_rebalance_and_survivors_rejoin() {
    let (c, _dir) = open(cfg());
    let members = form_group(&c, "g", 3).await;
    let generation = members[0].1.generation_id;
    let leaver = &members[0].0;
    let resp = c
        .leave_group(LeaveGroupRequest {
            group_id: "g".into(),
            members: vec![
                LeaveGroupMember {
                    member_id: leaver.clone(),
                    group_instance_id: None,
                    reason: Some("bye".into()),
                },
                LeaveGroupMember {
                    member_id: "ghost".into(),
                    group_instance_id: None,
                    reason: None,
                },
            ],
        })
        .await;
    assert_eq!(resp.error_code, NONE);
    assert_eq!(resp.members[0].error_code, NONE);
    assert_eq!(resp.members[1].error_code, UNKNOWN_MEMBER_ID);
    assert_eq!(c.group_state("g"), Some(GroupState::PreparingRebalance));
    for (id, _, _) in &members[1..] {
        assert_eq!(
            c.heartbeat(hb("g", generation, id)).await,
            REBALANCE_IN_PROGRESS
        );
        let s = c
            .sync_group(sync_req("g", generation, id, Vec::new()))
            .await;
        assert_eq!(s.error_code, REBALANCE_IN_PROGRESS);
    }
    // The departed member is gone.
    assert_eq!(
        c.heartbeat(hb("g", generation, leaver)).await,
        UNKNOWN_MEMBER_ID
    );
    // Both survivors rejoin and get the next generation together.
    let mut rejoins = Vec::new();
    for (id, _, _) in &members[1..] {
        let c = c.clone();
        let req = join_req("g", id, &["t1", "t2"]);
        rejoins.push(tokio::spawn(async move { c.join_group(req).await }));
    }
    let mut leaders = 0;
    for r in rejoins {
        let r = r.await.unwrap();
        assert_eq!((r.error_code, r.generation_id), (NONE, generation + 1));
        if r.leader == r.member_id {
            leaders += 1;
            assert_eq!(r.members.len(), 2);
        }
    }
    assert_eq!(leaders, 1);
    assert_eq!(c.group_state("g"), Some(GroupState::CompletingRebalance));

    // Unknown group: top-level UNKNOWN_MEMBER_ID (Kafka 4 coordinator).
    let r = c
        .leave_group(LeaveGroupRequest {
            group_id: "nope".into(),
            members: vec![],
        })
        .await;
    assert_eq!(r.error_code, UNKNOWN_MEMBER_ID);
    c.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn new_member_joining_stable_group_rebalances_everyone() {
    let (c, _dir) = open(cfg());
    let members = form_group(&c, "g", 2).await;
    let generation = members[0].1.generation_id;
    let c2 = c.clone();
    let newcomer = tokio::spawn(async move { join_new(&c2, join_req("g", "", &["t3"])).await });
    // The existing members learn about the rebalance from heartbeats.
    let mut seen = false;
    for _ in 0..100 {
        if c.heartbeat(hb("g", generation, &members[0].0)).await == REBALANCE_IN_PROGRESS {
            seen = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    assert!(seen, "heartbeat must report the rebalance");
    let mut rejoins = Vec::new();
    for (id, _, _) in &members {
        let c = c.clone();
        let req = join_req("g", id, &["t1", "t2"]);
        rejoins.push(tokio::spawn(async move { c.join_group(req).await }));
    }
    let n = newcomer.await.unwrap();
    assert_eq!((n.error_code, n.generation_id), (NONE, generation + 1));
    for r in rejoins {
        let r = r.await.unwrap();
        assert_eq!((r.error_code, r.generation_id), (NONE, generation + 1));
    }
    c.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn session_expiry_removes_member() {
    let (c, _dir) = open(cfg());
    let short = |member: &str| JoinGroupRequest {
        session_timeout_ms: 300,
        rebalance_timeout_ms: 600,
        ..join_req("g", member, &["t"])
    };
    let (a, b) = {
        let c1 = c.clone();
        let c2 = c.clone();
        let ja = tokio::spawn(async move { join_new(&c1, short("")).await });
        let jb = tokio::spawn(async move { join_new(&c2, short("")).await });
        (ja.await.unwrap(), jb.await.unwrap())
    };
    assert_eq!(a.generation_id, b.generation_id);
    let generation = a.generation_id;
    let leader = if a.leader == a.member_id { &a } else { &b };
    let follower = if a.leader == a.member_id { &b } else { &a };
    let assignments = vec![
        (a.member_id.clone(), Bytes::from_static(b"A")),
        (b.member_id.clone(), Bytes::from_static(b"B")),
    ];
    let c2 = c.clone();
    let fid = follower.member_id.clone();
    let follower_sync = tokio::spawn(async move {
        c2.sync_group(sync_req("g", generation, &fid, Vec::new()))
            .await
    });
    let ls = c
        .sync_group(sync_req("g", generation, &leader.member_id, assignments))
        .await;
    assert_eq!(ls.error_code, NONE);
    assert_eq!(follower_sync.await.unwrap().error_code, NONE);

    // Only the leader keeps heartbeating; the follower's session expires.
    let mut got = NONE;
    for _ in 0..100 {
        tokio::time::sleep(Duration::from_millis(30)).await;
        got = c.heartbeat(hb("g", generation, &leader.member_id)).await;
        if got != NONE {
            break;
        }
    }
    assert_eq!(got, REBALANCE_IN_PROGRESS);
    assert_eq!(
        c.heartbeat(hb("g", generation, &follower.member_id)).await,
        UNKNOWN_MEMBER_ID
    );
    let r = c.join_group(short(&leader.member_id)).await;
    assert_eq!((r.error_code, r.generation_id), (NONE, generation + 1));
    assert_eq!(r.members.len(), 1);

    // Without any heartbeat at all, the last member expires too and the
    // group becomes Empty.
    let mut state = None;
    for _ in 0..100 {
        tokio::time::sleep(Duration::from_millis(25)).await;
        state = c.group_state("g");
        if state == Some(GroupState::Empty) {
            break;
        }
    }
    assert_eq!(state, Some(GroupState::Empty));
    c.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn members_that_do_not_rejoin_within_the_rebalance_timeout_are_removed() {
    let (c, _dir) = open(cfg());
    // Sessions outlive the test: only the rebalance timeout can remove anyone.
    let req = |member: &str| JoinGroupRequest {
        session_timeout_ms: 30_000,
        rebalance_timeout_ms: 500,
        ..join_req("g", member, &["t"])
    };
    let (a, b) = {
        let (c1, c2) = (c.clone(), c.clone());
        let ja = tokio::spawn(async move { join_new(&c1, req("")).await });
        let jb = tokio::spawn(async move { join_new(&c2, req("")).await });
        (ja.await.unwrap(), jb.await.unwrap())
    };
    assert_eq!((a.error_code, b.error_code), (NONE, NONE));
    assert_eq!(a.generation_id, b.generation_id);
    let generation = a.generation_id;

    // A newcomer starts a rebalance; `a` rejoins, `b` never does.
    let c2 = c.clone();
    let newcomer = tokio::spawn(async move { join_new(&c2, req("")).await });
    let mut rebalancing = false;
    for _ in 0..100 {
        if c.heartbeat(hb("g", generation, &a.member_id)).await == REBALANCE_IN_PROGRESS {
            rebalancing = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    assert!(rebalancing);
    let started = std::time::Instant::now();
    let rejoin = c.join_group(req(&a.member_id)).await;
    let n = newcomer.await.unwrap();
    assert!(started.elapsed() >= Duration::from_millis(300), "completed by the timeout, not by `b`");
    assert_eq!((rejoin.error_code, rejoin.generation_id), (NONE, generation + 1));
    assert_eq!((n.error_code, n.generation_id), (NONE, generation + 1));
    let leader = if rejoin.leader == rejoin.member_id { &rejoin } else { &n };
    let mut ids: Vec<&str> = leader.members.iter().map(|m| m.member_id.as_str()).collect();
    ids.sort();
    let mut want = vec![a.member_id.as_str(), n.member_id.as_str()];
    want.sort();
    assert_eq!(ids, want, "`b` is gone from the new generation");
    assert_eq!(c.heartbeat(hb("g", generation, &b.member_id)).await, UNKNOWN_MEMBER_ID);
    c.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn generation_and_membership_checks() {
    let (c, _dir) = open(cfg());
    let members = form_group(&c, "g", 1).await;
    let id = &members[0].0;
    assert_eq!(c.heartbeat(hb("g", 7, id)).await, ILLEGAL_GENERATION);
    assert_eq!(c.heartbeat(hb("g", 1, "stranger")).await, UNKNOWN_MEMBER_ID);
    assert_eq!(c.heartbeat(hb("nope", 1, id)).await, UNKNOWN_MEMBER_ID);
    assert_eq!(c.heartbeat(hb("", 1, id)).await, INVALID_GROUP_ID);
    assert_eq!(
        c.sync_group(sync_req("g", 7, id, Vec::new()))
            .await
            .error_code,
        ILLEGAL_GENERATION
    );
    let mut wrong_proto = sync_req("g", 1, id, Vec::new());
    wrong_proto.protocol_name = Some("roundrobin".into());
    assert_eq!(
        c.sync_group(wrong_proto).await.error_code,
        INCONSISTENT_GROUP_PROTOCOL
    );
    assert_eq!(
        c.sync_group(sync_req("nope", 1, id, Vec::new()))
            .await
            .error_code,
        UNKNOWN_MEMBER_ID
    );
    // Stable: SyncGroup again returns the current assignment.
    let s = c.sync_group(sync_req("g", 1, id, Vec::new())).await;
    assert_eq!((s.error_code, &s.assignment), (NONE, &members[0].2));

    assert_eq!(
        codes(
            &c.offset_commit(commit_req("g", 7, id, "t", &[(0, 1)]))
                .await
        ),
        vec![ILLEGAL_GENERATION]
    );
    assert_eq!(
        codes(
            &c.offset_commit(commit_req("g", 1, "stranger", "t", &[(0, 1)]))
                .await
        ),
        vec![UNKNOWN_MEMBER_ID]
    );
    // A simple commit to a group with members is refused.
    assert_eq!(
        codes(
            &c.offset_commit(commit_req("g", -1, "", "t", &[(0, 1)]))
                .await
        ),
        vec![UNKNOWN_MEMBER_ID]
    );
    // During CompletingRebalance commits answer REBALANCE_IN_PROGRESS.
    let r = c.join_group(join_req("g", id, &["t1", "t2"])).await;
    assert_eq!(r.generation_id, 2);
    assert_eq!(
        codes(
            &c.offset_commit(commit_req("g", 2, id, "t", &[(0, 1)]))
                .await
        ),
        vec![REBALANCE_IN_PROGRESS]
    );
    // Heartbeats are fine in CompletingRebalance.
    assert_eq!(c.heartbeat(hb("g", 2, id)).await, NONE);

    // Join validation.
    let mut bad = join_req("", "", &["t"]);
    assert_eq!(c.join_group(bad.clone()).await.error_code, INVALID_GROUP_ID);
    bad.group_id = "g".into();
    bad.session_timeout_ms = 5;
    assert_eq!(
        c.join_group(bad.clone()).await.error_code,
        INVALID_SESSION_TIMEOUT
    );
    bad.session_timeout_ms = 1_000_000;
    assert_eq!(c.join_group(bad).await.error_code, INVALID_SESSION_TIMEOUT);
    assert_eq!(
        c.join_group(join_req("other", "m-1", &["t"]))
            .await
            .error_code,
        UNKNOWN_MEMBER_ID
    );
    let mut other_type = join_req("g", "", &["t"]);
    other_type.protocol_type = "connect".into();
    other_type.api_version = 3;
    assert_eq!(
        c.join_group(other_type).await.error_code,
        INCONSISTENT_GROUP_PROTOCOL
    );
    let mut other_proto = join_req("g", "", &["t"]);
    other_proto.protocols = vec![("sticky".into(), Bytes::new())];
    other_proto.api_version = 3;
    assert_eq!(
        c.join_group(other_proto).await.error_code,
        INCONSISTENT_GROUP_PROTOCOL
    );
    c.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn group_max_size_is_enforced() {
    let (c, _dir) = open(GroupConfig {
        max_size: 1,
        ..cfg()
    });
    form_group(&c, "g", 1).await;
    // A full group refuses before handing out a member id.
    let r = c.join_group(join_req("g", "", &["t1", "t2"])).await;
    assert_eq!(
        (r.error_code, r.member_id.as_str()),
        (GROUP_MAX_SIZE_REACHED, "")
    );
    c.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn group_member_bytes_are_bounded() {
    let (c, _dir) = open(cfg());
    let members = form_group(&c, "g", 1).await;
    // A newcomer whose subscription alone passes the group's byte bound is
    // refused before it is given a member id; so is a member that rejoins
    // with one; a normal newcomer still gets in.
    let huge = Bytes::from(vec![0u8; coordinator::MAX_MEMBER_BYTES_PER_GROUP]);
    let mut big = join_req("g", "", &["t1"]);
    big.protocols = vec![("range".into(), huge.clone())];
    let r = c.join_group(big).await;
    assert_eq!(
        (r.error_code, r.member_id.as_str()),
        (GROUP_MAX_SIZE_REACHED, "")
    );
    let mut rejoin = join_req("g", &members[0].0, &["t1"]);
    rejoin.protocols = vec![("range".into(), huge)];
    assert_eq!(c.join_group(rejoin).await.error_code, GROUP_MAX_SIZE_REACHED);
    let r = c.join_group(join_req("g", "", &["t1"])).await;
    assert_eq!(r.error_code, MEMBER_ID_REQUIRED);
    c.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn offset_commit_and_fetch() {
    let (c, _dir) = open(cfg());
    let members = form_group(&c, "g", 1).await;
    let id = &members[0].0;
    let r = c
        .offset_commit(commit_req("g", 1, id, "t1", &[(0, 10), (1, 20)]))
        .await;
    assert_eq!(codes(&r), vec![NONE, NONE]);
    let mut big = commit_req("g", 1, id, "t1", &[(2, 30), (3, 40)]);
    big.topics[0].partitions[1].committed_metadata = Some("x".repeat(17));
    assert_eq!(
        codes(&c.offset_commit(big).await),
        vec![NONE, OFFSET_METADATA_TOO_LARGE]
    );

    let f = c
        .offset_fetch(OffsetFetchRequest {
            group_id: "g".into(),
            topics: Some(vec![
                ("t1".into(), vec![0, 1, 2, 3]),
                ("unknown".into(), vec![0]),
            ]),
            require_stable: true,
        })
        .await;
    assert_eq!(f.error_code, NONE);
    let p = &f.topics[0].partitions;
    assert_eq!(
        (
            p[0].committed_offset,
            p[0].committed_leader_epoch,
            p[0].metadata.as_deref()
        ),
        (10, 1, Some("m10"))
    );
    assert_eq!(p[1].committed_offset, 20);
    assert_eq!(p[2].committed_offset, 30);
    assert_eq!(
        (
            p[3].committed_offset,
            p[3].committed_leader_epoch,
            p[3].metadata.as_deref(),
            p[3].error_code
        ),
        (-1, -1, Some(""), NONE)
    );
    assert_eq!(f.topics[1].partitions[0].committed_offset, -1);

    let all = c
        .offset_fetch(OffsetFetchRequest {
            group_id: "g".into(),
            topics: None,
            require_stable: false,
        })
        .await;
    assert_eq!(all.topics.len(), 1);
    assert_eq!(
        all.topics[0]
            .partitions
            .iter()
            .map(|p| p.partition_index)
            .collect::<Vec<_>>(),
        vec![0, 1, 2]
    );
    let none = c
        .offset_fetch(OffsetFetchRequest {
            group_id: "nope".into(),
            topics: None,
            require_stable: false,
        })
        .await;
    assert!(none.topics.is_empty());
    c.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn simple_commits_create_empty_groups() {
    let (c, _dir) = open(cfg());
    let r = c
        .offset_commit(commit_req("simple", -1, "", "t", &[(0, 5)]))
        .await;
    assert_eq!(codes(&r), vec![NONE]);
    assert_eq!(c.group_state("simple"), Some(GroupState::Empty));
    let listed = c.list_groups(&[], &[]).await;
    assert_eq!(listed.groups[0].group_id, "simple");
    assert_eq!(listed.groups[0].protocol_type, "");
    assert_eq!(listed.groups[0].group_state, "Empty");
    // Simple commits keep working on the Empty group.
    assert_eq!(
        codes(
            &c.offset_commit(commit_req("simple", -1, "", "t", &[(0, 6)]))
                .await
        ),
        vec![NONE]
    );
    assert_eq!(
        c.stored_offsets("simple").get(&("t".to_string(), 0)),
        Some(&6)
    );
    // A generation-aware commit to an unknown group is refused.
    assert_eq!(
        codes(
            &c.offset_commit(commit_req("ghost", 3, "m", "t", &[(0, 1)]))
                .await
        ),
        vec![ILLEGAL_GENERATION]
    );
    let mut v9 = commit_req("ghost", 3, "m", "t", &[(0, 1)]);
    v9.api_version = 9;
    assert_eq!(codes(&c.offset_commit(v9).await), vec![GROUP_ID_NOT_FOUND]);
    assert_eq!(c.group_state("ghost"), None);
    c.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn offsets_and_groups_survive_restart() {
    let dir = tempfile::tempdir().unwrap();
    {
        let c = GroupCoordinator::open(cfg(), dir.path()).unwrap();
        let members = form_group(&c, "g", 1).await;
        let id = &members[0].0;
        assert_eq!(
            codes(
                &c.offset_commit(commit_req("g", 1, id, "t1", &[(0, 42)]))
                    .await
            ),
            vec![NONE]
        );
        assert_eq!(
            codes(
                &c.offset_commit(commit_req("simple", -1, "", "t1", &[(3, 7)]))
                    .await
            ),
            vec![NONE]
        );
        c.shutdown().await;
        assert_eq!(c.heartbeat(hb("g", 1, id)).await, COORDINATOR_NOT_AVAILABLE);
    }
    let c = GroupCoordinator::open(cfg(), dir.path()).unwrap();
    let listed = c.list_groups(&[], &[]).await;
    let names: Vec<_> = listed
        .groups
        .iter()
        .map(|g| {
            (
                g.group_id.as_str(),
                g.group_state.as_str(),
                g.protocol_type.as_str(),
            )
        })
        .collect();
    assert_eq!(
        names,
        vec![("g", "Empty", "consumer"), ("simple", "Empty", "")]
    );
    assert_eq!(c.generation("g"), Some(1));
    let f = c
        .offset_fetch(OffsetFetchRequest {
            group_id: "g".into(),
            topics: Some(vec![("t1".into(), vec![0])]),
            require_stable: false,
        })
        .await;
    assert_eq!(f.topics[0].partitions[0].committed_offset, 42);
    assert_eq!(f.topics[0].partitions[0].metadata.as_deref(), Some("m42"));
    // A new member after restart starts the next generation.
    let r = join_new(&c, join_req("g", "", &["t1"])).await;
    assert_eq!((r.error_code, r.generation_id), (NONE, 2));
    c.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn delete_groups_rules() {
    let (c, _dir) = open(cfg());
    form_group(&c, "busy", 1).await;
    assert_eq!(
        codes(
            &c.offset_commit(commit_req("idle", -1, "", "t", &[(0, 1)]))
                .await
        ),
        vec![NONE]
    );
    let r = c
        .delete_groups(&["busy".into(), "idle".into(), "nope".into(), "idle".into()])
        .await;
    let got: Vec<_> = r
        .iter()
        .map(|d| (d.group_id.as_str(), d.error_code))
        .collect();
    assert_eq!(
        got,
        vec![
            ("busy", NON_EMPTY_GROUP),
            ("idle", NONE),
            ("nope", GROUP_ID_NOT_FOUND),
            ("idle", GROUP_ID_NOT_FOUND)
        ]
    );
    assert!(c.stored_offsets("idle").is_empty());
    assert_eq!(c.group_state("idle"), None);
    assert_eq!(
        c.describe_groups(&["idle".into()]).await[0].group_state,
        "Dead"
    );
    c.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn offset_delete_respects_subscriptions() {
    let (c, _dir) = open(cfg());
    let members = form_group(&c, "g", 1).await; // subscribed to t1, t2
    let id = &members[0].0;
    assert_eq!(
        codes(
            &c.offset_commit(commit_req("g", 1, id, "t1", &[(0, 1)]))
                .await
        ),
        vec![NONE]
    );
    assert_eq!(
        codes(
            &c.offset_commit(commit_req("g", 1, id, "old", &[(0, 2), (1, 3)]))
                .await
        ),
        vec![NONE, NONE]
    );
    let r = c
        .offset_delete(OffsetDeleteRequest {
            group_id: "g".into(),
            topics: vec![("t1".into(), vec![0]), ("old".into(), vec![0, 5])],
        })
        .await;
    assert_eq!(r.error_code, NONE);
    assert_eq!(
        r.topics[0].partitions[0].error_code,
        GROUP_SUBSCRIBED_TO_TOPIC
    );
    assert_eq!(
        r.topics[1]
            .partitions
            .iter()
            .map(|p| p.error_code)
            .collect::<Vec<_>>(),
        vec![NONE, NONE]
    );
    let left: Vec<_> = c.stored_offsets("g").into_keys().collect();
    assert_eq!(left, vec![("old".to_string(), 1), ("t1".to_string(), 0)]);
    let unknown = c
        .offset_delete(OffsetDeleteRequest {
            group_id: "nope".into(),
            topics: vec![],
        })
        .await;
    assert_eq!(unknown.error_code, GROUP_ID_NOT_FOUND);

    // A non-consumer group with members cannot have offsets deleted.
    let mut connect = join_req("w", "", &[]);
    connect.protocol_type = "connect".into();
    connect.api_version = 3;
    let j = c.join_group(connect).await;
    assert_eq!(j.error_code, NONE);
    let r = c
        .offset_delete(OffsetDeleteRequest {
            group_id: "w".into(),
            topics: vec![("t".into(), vec![0])],
        })
        .await;
    assert_eq!(r.error_code, NON_EMPTY_GROUP);
    c.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn offsets_expire_and_deleted_topics_are_purged() {
    let (c, _dir) = open(cfg()); // retention 60 s
    assert_eq!(
        codes(
            &c.offset_commit(commit_req("simple", -1, "", "t", &[(0, 1), (1, 2)]))
                .await
        ),
        vec![NONE, NONE]
    );
    let mut explicit = commit_req("short", -1, "", "t", &[(0, 1)]);
    explicit.retention_time_ms = 1_000;
    assert_eq!(codes(&c.offset_commit(explicit).await), vec![NONE]);
    let members = form_group(&c, "live", 1).await; // subscribed to t1, t2
    let id = &members[0].0;
    assert_eq!(
        codes(
            &c.offset_commit(commit_req("live", 1, id, "t1", &[(0, 1)]))
                .await
        ),
        vec![NONE]
    );
    assert_eq!(
        codes(
            &c.offset_commit(commit_req("live", 1, id, "gone", &[(0, 1)]))
                .await
        ),
        vec![NONE]
    );

    let t0 = TimestampMs::now();
    assert_eq!(c.cleanup_expired_offsets(t0).await, 0);
    // After 2 s only the explicit 1 s retention has passed.
    assert_eq!(
        c.cleanup_expired_offsets(TimestampMs(t0.0 + 2_000)).await,
        1
    );
    assert_eq!(
        c.group_state("short"),
        None,
        "an Empty group without offsets is removed"
    );
    // After the broker retention: the simple group's offsets and the live
    // group's unsubscribed topic go; its subscribed topic stays.
    assert_eq!(
        c.cleanup_expired_offsets(TimestampMs(t0.0 + 61_000)).await,
        3
    );
    assert_eq!(c.group_state("simple"), None);
    assert_eq!(c.group_state("live"), Some(GroupState::Stable));
    let left: Vec<_> = c.stored_offsets("live").into_keys().collect();
    assert_eq!(left, vec![("t1".to_string(), 0)]);

    c.on_topics_deleted(&["t1".into(), "never".into()])
        .await
        .unwrap();
    assert!(c.stored_offsets("live").is_empty());
    c.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn static_member_rejoin_fences_old_id_without_rebalance() {
    let (c, _dir) = open(cfg());
    let mut req = join_req("g", "", &["t"]);
    req.group_instance_id = Some("instance-1".into());
    let j = c.join_group(req.clone()).await;
    assert_eq!(j.error_code, NONE, "static members skip MEMBER_ID_REQUIRED");
    assert!(j.member_id.starts_with("instance-1-"));
    let mut s = sync_req(
        "g",
        j.generation_id,
        &j.member_id,
        vec![(j.member_id.clone(), Bytes::from_static(b"A"))],
    );
    s.group_instance_id = Some("instance-1".into());
    assert_eq!(c.sync_group(s).await.error_code, NONE);

    // The same instance restarts: new member id, same generation.
    let j2 = c.join_group(req.clone()).await;
    assert_eq!(j2.error_code, NONE);
    assert_ne!(j2.member_id, j.member_id);
    assert_eq!(j2.generation_id, j.generation_id);
    assert_eq!(c.group_state("g"), Some(GroupState::Stable));
    let mut old = hb("g", j.generation_id, &j.member_id);
    old.group_instance_id = Some("instance-1".into());
    assert_eq!(c.heartbeat(old).await, FENCED_INSTANCE_ID);
    let mut new = hb("g", j.generation_id, &j2.member_id);
    new.group_instance_id = Some("instance-1".into());
    assert_eq!(c.heartbeat(new).await, NONE);

    // An admin removes the static member by instance id.
    let r = c
        .leave_group(LeaveGroupRequest {
            group_id: "g".into(),
            members: vec![LeaveGroupMember {
                member_id: String::new(),
                group_instance_id: Some("instance-1".into()),
                reason: None,
            }],
        })
        .await;
    assert_eq!(r.members[0].error_code, NONE);
    assert_eq!(c.group_state("g"), Some(GroupState::Empty));
    c.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_answers_parked_requests() {
    let (c, _dir) = open(GroupConfig {
        initial_rebalance_delay_ms: 10_000,
        ..cfg()
    });
    let c2 = c.clone();
    let parked = tokio::spawn(async move { join_new(&c2, join_req("g", "", &["t"])).await });
    tokio::time::sleep(Duration::from_millis(50)).await;
    c.shutdown().await;
    assert_eq!(parked.await.unwrap().error_code, NOT_COORDINATOR);
    assert_eq!(
        c.join_group(join_req("g", "", &["t"])).await.error_code,
        COORDINATOR_NOT_AVAILABLE
    );
    assert_eq!(
        c.list_groups(&[], &[]).await.error_code,
        COORDINATOR_NOT_AVAILABLE
    );
    assert_eq!(
        codes(
            &c.offset_commit(commit_req("g", -1, "", "t", &[(0, 1)]))
                .await
        ),
        vec![COORDINATOR_NOT_AVAILABLE]
    );
}

#[test]
fn coordinator_futures_are_send() {
    fn assert_send<T: Send>(_: &T) {}
    fn assert_send_sync<T: Send + Sync>() {}
    assert_send_sync::<GroupCoordinator>();
    assert_send_sync::<OffsetsStore>();
    let dir = tempfile::tempdir().unwrap();
    let c = GroupCoordinator::new(cfg(), Arc::new(OffsetsStore::open(dir.path()).unwrap()));
    assert_send(&c.join_group(JoinGroupRequest::default()));
    assert_send(&c.sync_group(SyncGroupRequest::default()));
    assert_send(&c.heartbeat(HeartbeatRequest::default()));
    assert_send(&c.leave_group(LeaveGroupRequest::default()));
    assert_send(&c.offset_commit(OffsetCommitRequest::default()));
    assert_send(&c.offset_fetch(OffsetFetchRequest::default()));
    assert_send(&c.list_groups(&[], &[]));
    assert_send(&c.describe_groups(&[]));
    assert_send(&c.delete_groups(&[]));
    assert_send(&c.offset_delete(OffsetDeleteRequest::default()));
    assert_send(&c.on_topics_deleted(&[]));
    assert_send(&c.cleanup_expired_offsets(TimestampMs(0)));
    assert_send(&c.shutdown());
}
