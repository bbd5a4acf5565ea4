//! Every advertised version of the ten consumer-group APIs, end to end over
//! TCP against an in-process broker, with requests built and responses
//! decoded by the independent `kafka-protocol` crate: for each JoinGroup
//! version one member joins (rejoining with the assigned id from v4),
//! syncs, heartbeats, commits (an unknown partition answers
//! UNKNOWN_TOPIC_OR_PARTITION), fetches, describes, lists, leaves, deletes
//! its offsets and the group, each API at the matching version.

use bytes::{Buf, BufMut, Bytes, BytesMut};
use kafka_protocol::messages::create_topics_request::CreatableTopic;
use kafka_protocol::messages::join_group_request::JoinGroupRequestProtocol;
use kafka_protocol::messages::leave_group_request::MemberIdentity;
use kafka_protocol::messages::offset_commit_request::{OffsetCommitRequestPartition, OffsetCommitRequestTopic};
use kafka_protocol::messages::offset_delete_request::{OffsetDeleteRequestPartition, OffsetDeleteRequestTopic};
use kafka_protocol::messages::offset_fetch_request::{
    OffsetFetchRequestGroup, OffsetFetchRequestTopic, OffsetFetchRequestTopics,
};
use kafka_protocol::messages::sync_group_request::SyncGroupRequestAssignment;
use kafka_protocol::messages::*;
use kafka_protocol::protocol::{Decodable, Encodable, HeaderVersion, StrBytes};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

const CLIENT_ID: &str = "group-versions-test";
const TOPIC: &str = "versions-topic";

struct Client {
    stream: TcpStream,
    correlation_id: i32,
}

impl Client {
    async fn call<Req, Resp>(&mut self, api_key: ApiKey, version: i16, req: &Req) -> Resp
    where
        Req: Encodable + HeaderVersion,
        Resp: Decodable + HeaderVersion,
    {
        self.correlation_id += 1;
        let header = RequestHeader::default()
            .with_request_api_key(api_key as i16)
            .with_request_api_version(version)
            .with_correlation_id(self.correlation_id)
            .with_client_id(Some(StrBytes::from_static_str(CLIENT_ID)));
        let mut body = BytesMut::new();
        header.encode(&mut body, Req::header_version(version)).expect("header encodes");
        req.encode(&mut body, version).unwrap_or_else(|e| panic!("{api_key:?} v{version} encodes: {e}"));
        let mut frame = BytesMut::new();
        frame.put_i32(body.len() as i32);
        frame.extend_from_slice(&body);
        self.stream.write_all(&frame).await.expect("send");
        let n = self.stream.read_i32().await.expect("response length");
        assert!((0..16 << 20).contains(&n), "response length {n}");
        let mut buf = vec![0u8; n as usize];
        self.stream.read_exact(&mut buf).await.expect("response body");
        let mut buf = Bytes::from(buf);
        let rh = ResponseHeader::decode(&mut buf, Resp::header_version(version)).expect("response header");
        assert_eq!(rh.correlation_id, self.correlation_id);
        let resp = Resp::decode(&mut buf, version).unwrap_or_else(|e| panic!("{api_key:?} v{version} decodes: {e}"));
        assert_eq!(buf.remaining(), 0, "{api_key:?} v{version}: trailing bytes");
        resp
    }
}

fn s(v: &str) -> StrBytes {
    StrBytes::from_string(v.to_string())
}

fn gid(v: &str) -> GroupId {
    GroupId(s(v))
}

fn tname(v: &str) -> TopicName {
    TopicName(s(v))
}

/// ConsumerProtocolSubscription v0 for TOPIC.
fn subscription() -> Bytes {
    let mut b = BytesMut::new();
    b.put_i16(0);
    b.put_i32(1);
    b.put_i16(TOPIC.len() as i16);
    b.put_slice(TOPIC.as_bytes());
    b.put_i32(-1);
    b.freeze()
}

async fn join(c: &mut Client, group: &str, v: i16, member_id: &str, instance: Option<&str>) -> JoinGroupResponse {
    let mut req = JoinGroupRequest::default()
        .with_group_id(gid(group))
        .with_group_instance_id(instance.map(s))
        .with_session_timeout_ms(10_000)
        .with_member_id(s(member_id))
        .with_protocol_type(s("consumer"))
        .with_protocols(vec![JoinGroupRequestProtocol::default().with_name(s("range")).with_metadata(subscription())]);
    if v >= 1 {
        req = req.with_rebalance_timeout_ms(10_000);
    }
    c.call(ApiKey::JoinGroup, v, &req).await
}

async fn one_version(c: &mut Client, jv: i16) {
    let group = format!("versions-g{jv}");
    let g = group.as_str();

    // From v5 the member is static (group.instance.id): it gets its id at
    // once. A dynamic member from v4 gets MEMBER_ID_REQUIRED first, then
    // rejoins with the id.
    let instance_id = format!("instance-{jv}");
    let instance = (jv >= 5).then_some(instance_id.as_str());
    let mut r = join(c, g, jv, "", instance).await;
    if jv == 4 {
        assert_eq!(r.error_code, 79, "v{jv}");
        assert!(!r.member_id.is_empty());
        let id = r.member_id.to_string();
        r = join(c, g, jv, &id, None).await;
    }
    assert_eq!(r.error_code, 0, "JoinGroup v{jv}");
    assert_eq!(r.generation_id, 1);
    assert_eq!(r.leader, r.member_id);
    assert_eq!(r.protocol_name.as_ref().map(|p| p.as_str()), Some("range"));
    if jv >= 7 {
        assert_eq!(r.protocol_type.as_ref().map(|p| p.as_str()), Some("consumer"));
    }
    assert_eq!(r.members.len(), 1);
    assert_eq!(r.members[0].metadata, subscription());
    assert_eq!(r.members[0].group_instance_id.as_ref().map(|i| i.as_str()), instance);
    let member = r.member_id.to_string();

    // SyncGroup.
    let sv = jv.min(5);
    let mut sync = SyncGroupRequest::default()
        .with_group_id(gid(g))
        .with_generation_id(1)
        .with_member_id(s(&member))
        .with_assignments(vec![SyncGroupRequestAssignment::default()
            .with_member_id(s(&member))
            .with_assignment(Bytes::from_static(b"assigned"))]);
    if sv >= 5 {
        sync = sync
            .with_protocol_type(Some(s("consumer")))
            .with_protocol_name(Some(s("range")))
            .with_group_instance_id(instance.map(s));
    }
    let r: SyncGroupResponse = c.call(ApiKey::SyncGroup, sv, &sync).await;
    assert_eq!((r.error_code, &r.assignment[..]), (0, &b"assigned"[..]), "SyncGroup v{sv}");
    if sv >= 5 {
        assert_eq!(r.protocol_name.as_ref().map(|p| p.as_str()), Some("range"));
    }

    // Heartbeat.
    let hv = jv.min(4);
    let hb = HeartbeatRequest::default().with_group_id(gid(g)).with_generation_id(1).with_member_id(s(&member));
    let r: HeartbeatResponse = c.call(ApiKey::Heartbeat, hv, &hb).await;
    assert_eq!(r.error_code, 0, "Heartbeat v{hv}");

    // OffsetCommit: partition 0 exists, 7 does not.
    let cv = jv.clamp(2, 9);
    let commit = OffsetCommitRequest::default()
        .with_group_id(gid(g))
        .with_generation_id_or_member_epoch(1)
        .with_member_id(s(&member))
        .with_topics(vec![OffsetCommitRequestTopic::default().with_name(tname(TOPIC)).with_partitions(vec![
            OffsetCommitRequestPartition::default().with_partition_index(0).with_committed_offset(5),
            OffsetCommitRequestPartition::default().with_partition_index(7).with_committed_offset(1),
        ])]);
    let r: OffsetCommitResponse = c.call(ApiKey::OffsetCommit, cv, &commit).await;
    let mut errors: Vec<(i32, i16)> =
        r.topics.iter().flat_map(|t| t.partitions.iter().map(|p| (p.partition_index, p.error_code))).collect();
    errors.sort();
    assert_eq!(errors, vec![(0, 0), (7, 3)], "OffsetCommit v{cv}");

    // OffsetFetch: top-level shape before v8, batched groups from v8.
    let fv = jv.clamp(1, 9);
    let fetch = if fv < 8 {
        OffsetFetchRequest::default().with_group_id(gid(g)).with_topics(Some(vec![OffsetFetchRequestTopic::default()
            .with_name(tname(TOPIC))
            .with_partition_indexes(vec![0, 1])]))
    } else {
        OffsetFetchRequest::default().with_groups(vec![OffsetFetchRequestGroup::default()
            .with_group_id(gid(g))
            .with_topics(Some(vec![OffsetFetchRequestTopics::default()
                .with_name(tname(TOPIC))
                .with_partition_indexes(vec![0, 1])]))])
    };
    let r: OffsetFetchResponse = c.call(ApiKey::OffsetFetch, fv, &fetch).await;
    let offsets: Vec<(i32, i64, i16)> = if fv < 8 {
        assert_eq!(r.error_code, 0);
        r.topics
            .iter()
            .flat_map(|t| t.partitions.iter().map(|p| (p.partition_index, p.committed_offset, p.error_code)))
            .collect()
    } else {
        assert_eq!(r.groups.len(), 1);
        assert_eq!((r.groups[0].group_id.as_str(), r.groups[0].error_code), (g, 0));
        r.groups[0]
            .topics
            .iter()
            .flat_map(|t| t.partitions.iter().map(|p| (p.partition_index, p.committed_offset, p.error_code)))
            .collect()
    };
    assert_eq!(offsets, vec![(0, 5, 0), (1, -1, 0)], "OffsetFetch v{fv}");

    // DescribeGroups.
    let dv = jv.min(5);
    let mut describe = DescribeGroupsRequest::default().with_groups(vec![gid(g)]);
    if dv >= 3 {
        describe = describe.with_include_authorized_operations(true);
    }
    let r: DescribeGroupsResponse = c.call(ApiKey::DescribeGroups, dv, &describe).await;
    let d = &r.groups[0];
    assert_eq!((d.error_code, d.group_state.as_str(), d.protocol_data.as_str()), (0, "Stable", "range"), "v{dv}");
    assert_eq!(d.members.len(), 1);
    assert_eq!(d.members[0].member_id.as_str(), member);
    assert_eq!(d.members[0].client_id.as_str(), CLIENT_ID);
    assert_eq!(d.members[0].client_host.as_str(), "/127.0.0.1");
    assert_eq!(&d.members[0].member_assignment[..], b"assigned");
    if dv >= 4 {
        assert_eq!(d.members[0].group_instance_id.as_ref().map(|i| i.as_str()), instance);
    }
    if dv >= 3 {
        assert_eq!(d.authorized_operations, 3400);
    }

    // ListGroups (states filter from v4).
    let lv = jv.min(5);
    let mut list = ListGroupsRequest::default();
    if lv >= 4 {
        list = list.with_states_filter(vec![s(" stable ")]);
    }
    let r: ListGroupsResponse = c.call(ApiKey::ListGroups, lv, &list).await;
    assert_eq!(r.error_code, 0);
    let listed = r.groups.iter().find(|l| l.group_id.as_str() == g).expect("group listed");
    assert_eq!(listed.protocol_type.as_str(), "consumer");
    if lv >= 4 {
        assert_eq!(listed.group_state.as_str(), "Stable");
        assert!(r.groups.iter().all(|l| l.group_state.as_str() == "Stable"));
    }
    if lv >= 5 {
        assert_eq!(listed.group_type.as_str(), "classic");
    }

    // LeaveGroup (single member before v3, batched from v3).
    let lgv = jv.min(5);
    let leave = if lgv < 3 {
        LeaveGroupRequest::default().with_group_id(gid(g)).with_member_id(s(&member))
    } else {
        LeaveGroupRequest::default().with_group_id(gid(g)).with_members(vec![MemberIdentity::default()
            .with_member_id(s(&member))
            .with_group_instance_id(instance.map(s))])
    };
    let r: LeaveGroupResponse = c.call(ApiKey::LeaveGroup, lgv, &leave).await;
    assert_eq!(r.error_code, 0, "LeaveGroup v{lgv}");
    if lgv >= 3 {
        assert_eq!(r.members.len(), 1);
        assert_eq!((r.members[0].member_id.as_str(), r.members[0].error_code), (member.as_str(), 0));
    }
    let r: LeaveGroupResponse = c.call(ApiKey::LeaveGroup, lgv, &leave).await;
    let again = if lgv < 3 { r.error_code } else { r.members[0].error_code };
    assert_eq!(again, 25, "LeaveGroup v{lgv} of a member that left");

    // OffsetDelete (v0 only) on the now Empty group.
    let del =
        OffsetDeleteRequest::default().with_group_id(gid(g)).with_topics(vec![OffsetDeleteRequestTopic::default()
            .with_name(tname(TOPIC))
            .with_partitions(vec![OffsetDeleteRequestPartition::default().with_partition_index(0)])]);
    let r: OffsetDeleteResponse = c.call(ApiKey::OffsetDelete, 0, &del).await;
    assert_eq!(r.error_code, 0);
    assert_eq!(r.topics[0].partitions[0].error_code, 0);

    // DeleteGroups.
    let dgv = jv.min(2);
    let r: DeleteGroupsResponse = c
        .call(ApiKey::DeleteGroups, dgv, &DeleteGroupsRequest::default().with_groups_names(vec![gid(g), gid(g)]))
        .await;
    assert_eq!(r.results.len(), 1, "repeated names are answered once");
    assert_eq!(r.results[0].error_code, 0);
    let r: DeleteGroupsResponse =
        c.call(ApiKey::DeleteGroups, dgv, &DeleteGroupsRequest::default().with_groups_names(vec![gid(g)])).await;
    assert_eq!(r.results[0].error_code, 69, "GROUP_ID_NOT_FOUND after deletion");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_group_api_version_round_trips() {
    let broker = klamm::TestBroker::start().await.expect("broker starts");
    let stream = TcpStream::connect(broker.addr()).await.expect("connect");
    let mut c = Client { stream, correlation_id: 0 };

    let create = CreateTopicsRequest::default().with_timeout_ms(10_000).with_topics(vec![CreatableTopic::default()
        .with_name(tname(TOPIC))
        .with_num_partitions(2)
        .with_replication_factor(1)]);
    let r: CreateTopicsResponse = c.call(ApiKey::CreateTopics, 5, &create).await;
    assert_eq!(r.topics[0].error_code, 0);

    for jv in 0..=9 {
        one_version(&mut c, jv).await;
    }

    // An empty group id is refused where Kafka refuses it.
    let r = join(&mut c, "", 5, "", None).await;
    assert_eq!(r.error_code, 24);
    drop(c);
    broker.shutdown().await;
}
