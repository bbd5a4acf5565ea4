//! Differential tests: every message version we can encode is decoded and
//! re-encoded by the independent `kafka-protocol` crate (a dev-dependency
//! used only as an oracle), and must come back byte for byte; our decoder
//! must read the same bytes back into the same value.

use super::codec::{Reader, Writer};
use super::messages;
use bytes::BytesMut;
use kafka_protocol::protocol::{Decodable, Encodable, Message};

const SAMPLES_PER_VERSION: u64 = 40;

macro_rules! oracle {
    ($($module:ident => $ty:ident),* $(,)?) => {
        $(
            #[test]
            fn $module() {
                use messages::$module as ours;
                type Theirs = kafka_protocol::messages::$ty;
                let lo = ours::MIN_VERSION.max(<Theirs as Message>::VERSIONS.min);
                let hi = ours::MAX_VERSION.min(<Theirs as Message>::VERSIONS.max);
                assert!(lo <= hi, "no common versions");
                for version in lo..=hi {
                    for seed in 1..=SAMPLES_PER_VERSION {
                        let mut rng = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ (version as u64 + 1);
                        let msg = ours::$ty::sample(&mut rng, version, 0);
                        let mut w = Writer::new();
                        msg.encode(&mut w, version);
                        let encoded = w.finish_contiguous();
                        let mut buf = encoded.clone();
                        let theirs = <Theirs as Decodable>::decode(&mut buf, version)
                            .unwrap_or_else(|e| panic!("oracle cannot decode v{version}: {e}\n{msg:?}"));
                        assert!(buf.is_empty(), "oracle left {} bytes at v{version}", buf.len());
                        let mut again = BytesMut::new();
                        theirs.encode(&mut again, version).expect("oracle encodes");
                        assert_eq!(&again[..], &encoded[..], "v{version} differs from the oracle\n{msg:?}");
                        let back = ours::$ty::decode(&mut Reader::new(encoded), version).expect("we decode our own bytes");
                        assert_eq!(back, msg, "v{version} does not round-trip");
                    }
                }
            }
        )*
    };
}

oracle! {
    add_offsets_to_txn_request => AddOffsetsToTxnRequest,
    add_offsets_to_txn_response => AddOffsetsToTxnResponse,
    add_partitions_to_txn_request => AddPartitionsToTxnRequest,
    add_partitions_to_txn_response => AddPartitionsToTxnResponse,
    alter_user_scram_credentials_request => AlterUserScramCredentialsRequest,
    alter_user_scram_credentials_response => AlterUserScramCredentialsResponse,
    alter_configs_request => AlterConfigsRequest,
    alter_configs_response => AlterConfigsResponse,
    alter_partition_reassignments_request => AlterPartitionReassignmentsRequest,
    alter_partition_reassignments_response => AlterPartitionReassignmentsResponse,
    api_versions_request => ApiVersionsRequest,
    api_versions_response => ApiVersionsResponse,
    consumer_group_describe_request => ConsumerGroupDescribeRequest,
    consumer_group_describe_response => ConsumerGroupDescribeResponse,
    consumer_group_heartbeat_request => ConsumerGroupHeartbeatRequest,
    consumer_group_heartbeat_response => ConsumerGroupHeartbeatResponse,
    create_acls_request => CreateAclsRequest,
    create_acls_response => CreateAclsResponse,
    create_partitions_request => CreatePartitionsRequest,
    create_partitions_response => CreatePartitionsResponse,
    create_topics_request => CreateTopicsRequest,
    create_topics_response => CreateTopicsResponse,
    delete_acls_request => DeleteAclsRequest,
    delete_acls_response => DeleteAclsResponse,
    delete_groups_request => DeleteGroupsRequest,
    delete_groups_response => DeleteGroupsResponse,
    delete_records_request => DeleteRecordsRequest,
    delete_records_response => DeleteRecordsResponse,
    delete_topics_request => DeleteTopicsRequest,
    delete_topics_response => DeleteTopicsResponse,
    describe_acls_request => DescribeAclsRequest,
    describe_acls_response => DescribeAclsResponse,
    describe_cluster_request => DescribeClusterRequest,
    describe_cluster_response => DescribeClusterResponse,
    describe_configs_request => DescribeConfigsRequest,
    describe_configs_response => DescribeConfigsResponse,
    describe_groups_request => DescribeGroupsRequest,
    describe_groups_response => DescribeGroupsResponse,
    describe_log_dirs_request => DescribeLogDirsRequest,
    describe_log_dirs_response => DescribeLogDirsResponse,
    describe_producers_request => DescribeProducersRequest,
    describe_producers_response => DescribeProducersResponse,
    describe_topic_partitions_request => DescribeTopicPartitionsRequest,
    describe_topic_partitions_response => DescribeTopicPartitionsResponse,
    describe_user_scram_credentials_request => DescribeUserScramCredentialsRequest,
    describe_user_scram_credentials_response => DescribeUserScramCredentialsResponse,
    describe_transactions_request => DescribeTransactionsRequest,
    describe_transactions_response => DescribeTransactionsResponse,
    elect_leaders_request => ElectLeadersRequest,
    elect_leaders_response => ElectLeadersResponse,
    end_txn_request => EndTxnRequest,
    end_txn_response => EndTxnResponse,
    fetch_request => FetchRequest,
    fetch_response => FetchResponse,
    find_coordinator_request => FindCoordinatorRequest,
    find_coordinator_response => FindCoordinatorResponse,
    get_telemetry_subscriptions_request => GetTelemetrySubscriptionsRequest,
    get_telemetry_subscriptions_response => GetTelemetrySubscriptionsResponse,
    heartbeat_request => HeartbeatRequest,
    heartbeat_response => HeartbeatResponse,
    incremental_alter_configs_request => IncrementalAlterConfigsRequest,
    incremental_alter_configs_response => IncrementalAlterConfigsResponse,
    init_producer_id_request => InitProducerIdRequest,
    init_producer_id_response => InitProducerIdResponse,
    join_group_request => JoinGroupRequest,
    join_group_response => JoinGroupResponse,
    leave_group_request => LeaveGroupRequest,
    leave_group_response => LeaveGroupResponse,
    list_groups_request => ListGroupsRequest,
    list_groups_response => ListGroupsResponse,
    list_offsets_request => ListOffsetsRequest,
    list_offsets_response => ListOffsetsResponse,
    list_partition_reassignments_request => ListPartitionReassignmentsRequest,
    list_partition_reassignments_response => ListPartitionReassignmentsResponse,
    list_transactions_request => ListTransactionsRequest,
    list_transactions_response => ListTransactionsResponse,
    metadata_request => MetadataRequest,
    metadata_response => MetadataResponse,
    offset_commit_request => OffsetCommitRequest,
    offset_commit_response => OffsetCommitResponse,
    offset_delete_request => OffsetDeleteRequest,
    offset_delete_response => OffsetDeleteResponse,
    offset_fetch_request => OffsetFetchRequest,
    offset_fetch_response => OffsetFetchResponse,
    offset_for_leader_epoch_request => OffsetForLeaderEpochRequest,
    offset_for_leader_epoch_response => OffsetForLeaderEpochResponse,
    produce_request => ProduceRequest,
    produce_response => ProduceResponse,
    sasl_authenticate_request => SaslAuthenticateRequest,
    sasl_authenticate_response => SaslAuthenticateResponse,
    sasl_handshake_request => SaslHandshakeRequest,
    sasl_handshake_response => SaslHandshakeResponse,
    sync_group_request => SyncGroupRequest,
    sync_group_response => SyncGroupResponse,
    txn_offset_commit_request => TxnOffsetCommitRequest,
    txn_offset_commit_response => TxnOffsetCommitResponse,
    write_txn_markers_request => WriteTxnMarkersRequest,
    write_txn_markers_response => WriteTxnMarkersResponse,
}
