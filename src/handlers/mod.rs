//! One file per Kafka API, each declaring the version range it supports in
//! its `SPEC`. The `apis!` table below is the single list of implemented
//! handlers: it drives both request routing and the ApiVersions response,
//! so we advertise exactly what is implemented.

use std::sync::atomic::{AtomicBool, Ordering};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use crate::broker::Broker;
use crate::protocol::header::RequestHeader;
use crate::protocol::messages;
use crate::protocol::{DecodeError, Reader, Writer};
use crate::security::authorizer::{AclOperation, Requester, ResourceType, CLUSTER_NAME};
use crate::server::listener::ListenerInfo;
use crate::server::quotas::FrameMemory;

/// The versions of one API that klamm serves.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ApiSpec {
    pub api_key: i16,
    pub name: &'static str,
    pub min_version: i16,
    pub max_version: i16,
}

/// Everything a handler may need about the request beyond its body.
pub struct RequestContext<'a> {
    pub broker: &'a Arc<Broker>,
    pub listener: &'a Arc<ListenerInfo>,
    pub peer: SocketAddr,
    pub header: &'a RequestHeader,
    /// The connection's principal (`User:ANONYMOUS` unauthenticated).
    pub principal: &'a str,
    suppress_response: AtomicBool,
    close_connection: AtomicBool,
    /// The frame's share of the request-memory budgets, until released.
    request_memory: Mutex<Option<FrameMemory>>,
}

impl<'a> RequestContext<'a> {
    pub fn new(
        broker: &'a Arc<Broker>,
        listener: &'a Arc<ListenerInfo>,
        peer: SocketAddr,
        header: &'a RequestHeader,
        principal: &'a str,
    ) -> Self {
        RequestContext {
            broker,
            listener,
            peer,
            header,
            principal,
            suppress_response: AtomicBool::new(false),
            close_connection: AtomicBool::new(false),
            request_memory: Mutex::new(None),
        }
    }

    /// Attaches the frame's memory reservation (see `release_request_memory`).
    pub fn with_request_memory(self, memory: FrameMemory) -> Self {
        *self.request_memory.lock().unwrap_or_else(|e| e.into_inner()) = Some(memory);
        self
    }

    /// Returns the frame's memory to the budgets: called once the frame
    /// is no longer referenced, before a handler waits (long polls, parked
    /// joins).
    pub fn release_request_memory(&self) {
        drop(self.request_memory.lock().unwrap_or_else(|e| e.into_inner()).take());
    }

    /// Bytes of the broker-wide pool this request still holds.
    pub fn request_memory_held_bytes(&self) -> usize {
        self.request_memory.lock().unwrap_or_else(|e| e.into_inner()).as_ref().map_or(0, |m| m.held_bytes())
    }

    pub fn version(&self) -> i16 {
        self.header.api_version
    }

    pub fn client_id(&self) -> &str {
        self.header.client_id.as_deref().unwrap_or("")
    }

    /// Whether an authorizer is configured (without one everything is
    /// allowed).
    pub fn authorizing(&self) -> bool {
        self.broker.authorizer.is_some()
    }

    fn requester(&self) -> Requester<'_> {
        Requester { principal: self.principal, host: self.peer.ip() }
    }

    /// Whether this request's principal may do `op` on the resource
    /// (always, without an authorizer: no lookup, no allocation).
    pub fn authorized(&self, op: AclOperation, rt: ResourceType, name: &str) -> bool {
        match &self.broker.authorizer {
            None => true,
            Some(a) => a.authorize(&self.broker.controller.image().acls, &self.requester(), op, rt, name),
        }
    }

    /// `authorized` on the CLUSTER resource.
    pub fn authorized_cluster(&self, op: AclOperation) -> bool {
        self.authorized(op, ResourceType::Cluster, CLUSTER_NAME)
    }

    /// Kafka's `authorizeByResourceType`: `op` on some resource of `rt`.
    pub fn authorized_by_resource_type(&self, op: AclOperation, rt: ResourceType) -> bool {
        match &self.broker.authorizer {
            None => true,
            Some(a) => a.authorize_by_resource_type(&self.broker.controller.image().acls, &self.requester(), op, rt),
        }
    }

    /// Kafka's `authorizedOperations`: the operations of the resource's
    /// type this principal may do on it, as the 32-bit field of
    /// `*_authorized_operations` (every supported one without an
    /// authorizer).
    pub fn authorized_operations(&self, rt: ResourceType, name: &str) -> i32 {
        crate::security::authorizer::supported_operations(rt)
            .iter()
            .filter(|op| self.authorized(**op, rt, name))
            .fold(0, |bits, op| bits | (1i32 << op.code()))
    }

    /// Produce with acks=0: the client expects no response at all.
    pub fn suppress_response(&self) {
        self.suppress_response.store(true, Ordering::Relaxed)
    }

    pub fn response_suppressed(&self) -> bool {
        self.suppress_response.load(Ordering::Relaxed)
    }

    /// Closes the connection instead of responding: how Kafka tells an
    /// acks=0 producer that its request failed.
    pub fn close_connection(&self) {
        self.close_connection.store(true, Ordering::Relaxed)
    }

    pub fn connection_closed(&self) -> bool {
        self.close_connection.load(Ordering::Relaxed)
    }
}

macro_rules! apis {
    ($($module:ident: $req:ident::$req_ty:ident => $resp:ident::$resp_ty:ident),* $(,)?) => {
        $(pub mod $module;)*

        /// Every implemented API, in api-key order of declaration.
        pub const APIS: &[ApiSpec] = &[$($module::SPEC),*];

        /// Decodes the body of the request in `ctx`, runs its handler and
        /// encodes the response body into `w`.
        pub async fn dispatch(ctx: &RequestContext<'_>, r: &mut Reader, w: &mut Writer) -> Result<(), DecodeError> {
            let version = ctx.version();
            match ctx.header.api_key {
                $(
                    k if k == $module::SPEC.api_key => {
                        let request = messages::$req::$req_ty::decode(r, version)?;
                        if k != produce::SPEC.api_key {
                            // Decoded: only Produce keeps slices of the
                            // frame (its records, until the append;
                            // JoinGroup and SyncGroup copy what they keep).
                            // Drop our reference and return the memory.
                            *r = Reader::new(bytes::Bytes::new());
                            ctx.release_request_memory();
                        }
                        let response: messages::$resp::$resp_ty = $module::handle(ctx, request).await;
                        response.encode(w, version);
                        Ok(())
                    }
                )*
                k => Err(DecodeError::UnknownApiKey(k)),
            }
        }
    };
}

apis! {
    produce: produce_request::ProduceRequest => produce_response::ProduceResponse,
    fetch: fetch_request::FetchRequest => fetch_response::FetchResponse,
    list_offsets: list_offsets_request::ListOffsetsRequest => list_offsets_response::ListOffsetsResponse,
    offset_for_leader_epoch: offset_for_leader_epoch_request::OffsetForLeaderEpochRequest => offset_for_leader_epoch_response::OffsetForLeaderEpochResponse,
    metadata: metadata_request::MetadataRequest => metadata_response::MetadataResponse,
    api_versions: api_versions_request::ApiVersionsRequest => api_versions_response::ApiVersionsResponse,
    create_topics: create_topics_request::CreateTopicsRequest => create_topics_response::CreateTopicsResponse,
    delete_topics: delete_topics_request::DeleteTopicsRequest => delete_topics_response::DeleteTopicsResponse,
    create_partitions: create_partitions_request::CreatePartitionsRequest => create_partitions_response::CreatePartitionsResponse,
    find_coordinator: find_coordinator_request::FindCoordinatorRequest => find_coordinator_response::FindCoordinatorResponse,
    init_producer_id: init_producer_id_request::InitProducerIdRequest => init_producer_id_response::InitProducerIdResponse,
    delete_records: delete_records_request::DeleteRecordsRequest => delete_records_response::DeleteRecordsResponse,
    describe_cluster: describe_cluster_request::DescribeClusterRequest => describe_cluster_response::DescribeClusterResponse,
    offset_commit: offset_commit_request::OffsetCommitRequest => offset_commit_response::OffsetCommitResponse,
    offset_fetch: offset_fetch_request::OffsetFetchRequest => offset_fetch_response::OffsetFetchResponse,
    join_group: join_group_request::JoinGroupRequest => join_group_response::JoinGroupResponse,
    heartbeat: heartbeat_request::HeartbeatRequest => heartbeat_response::HeartbeatResponse,
    leave_group: leave_group_request::LeaveGroupRequest => leave_group_response::LeaveGroupResponse,
    sync_group: sync_group_request::SyncGroupRequest => sync_group_response::SyncGroupResponse,
    describe_groups: describe_groups_request::DescribeGroupsRequest => describe_groups_response::DescribeGroupsResponse,
    list_groups: list_groups_request::ListGroupsRequest => list_groups_response::ListGroupsResponse,
    delete_groups: delete_groups_request::DeleteGroupsRequest => delete_groups_response::DeleteGroupsResponse,
    offset_delete: offset_delete_request::OffsetDeleteRequest => offset_delete_response::OffsetDeleteResponse,
    describe_configs: describe_configs_request::DescribeConfigsRequest => describe_configs_response::DescribeConfigsResponse,
    alter_configs: alter_configs_request::AlterConfigsRequest => alter_configs_response::AlterConfigsResponse,
    incremental_alter_configs: incremental_alter_configs_request::IncrementalAlterConfigsRequest => incremental_alter_configs_response::IncrementalAlterConfigsResponse,
    add_partitions_to_txn: add_partitions_to_txn_request::AddPartitionsToTxnRequest => add_partitions_to_txn_response::AddPartitionsToTxnResponse,
    add_offsets_to_txn: add_offsets_to_txn_request::AddOffsetsToTxnRequest => add_offsets_to_txn_response::AddOffsetsToTxnResponse,
    end_txn: end_txn_request::EndTxnRequest => end_txn_response::EndTxnResponse,
    txn_offset_commit: txn_offset_commit_request::TxnOffsetCommitRequest => txn_offset_commit_response::TxnOffsetCommitResponse,
    describe_acls: describe_acls_request::DescribeAclsRequest => describe_acls_response::DescribeAclsResponse,
    create_acls: create_acls_request::CreateAclsRequest => create_acls_response::CreateAclsResponse,
    delete_acls: delete_acls_request::DeleteAclsRequest => delete_acls_response::DeleteAclsResponse,
    describe_log_dirs: describe_log_dirs_request::DescribeLogDirsRequest => describe_log_dirs_response::DescribeLogDirsResponse,
    describe_producers: describe_producers_request::DescribeProducersRequest => describe_producers_response::DescribeProducersResponse,
    describe_transactions: describe_transactions_request::DescribeTransactionsRequest => describe_transactions_response::DescribeTransactionsResponse,
    list_transactions: list_transactions_request::ListTransactionsRequest => list_transactions_response::ListTransactionsResponse,
    write_txn_markers: write_txn_markers_request::WriteTxnMarkersRequest => write_txn_markers_response::WriteTxnMarkersResponse,
    consumer_group_heartbeat: consumer_group_heartbeat_request::ConsumerGroupHeartbeatRequest => consumer_group_heartbeat_response::ConsumerGroupHeartbeatResponse,
    consumer_group_describe: consumer_group_describe_request::ConsumerGroupDescribeRequest => consumer_group_describe_response::ConsumerGroupDescribeResponse,
    sasl_handshake: sasl_handshake_request::SaslHandshakeRequest => sasl_handshake_response::SaslHandshakeResponse,
    sasl_authenticate: sasl_authenticate_request::SaslAuthenticateRequest => sasl_authenticate_response::SaslAuthenticateResponse,
    describe_user_scram_credentials: describe_user_scram_credentials_request::DescribeUserScramCredentialsRequest => describe_user_scram_credentials_response::DescribeUserScramCredentialsResponse,
    alter_user_scram_credentials: alter_user_scram_credentials_request::AlterUserScramCredentialsRequest => alter_user_scram_credentials_response::AlterUserScramCredentialsResponse,
    describe_topic_partitions: describe_topic_partitions_request::DescribeTopicPartitionsRequest => describe_topic_partitions_response::DescribeTopicPartitionsResponse,
    list_config_resources: list_config_resources_request::ListConfigResourcesRequest => list_config_resources_response::ListConfigResourcesResponse,
}

pub mod config_ops;
pub mod topic_ids;

/// The spec of an implemented API.
pub fn spec(api_key: i16) -> Option<&'static ApiSpec> {
    APIS.iter().find(|s| s.api_key == api_key)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_advertised_range_is_within_its_schema() {
        for spec in APIS {
            let schema = crate::protocol::request_schema(spec.api_key).expect("schema exists");
            assert!(spec.min_version >= schema.min_version, "{}", spec.name);
            assert!(spec.max_version <= schema.max_version, "{}", spec.name);
            assert!(spec.min_version <= spec.max_version, "{}", spec.name);
        }
        let mut keys: Vec<i16> = APIS.iter().map(|s| s.api_key).collect();
        keys.sort();
        keys.dedup();
        assert_eq!(keys.len(), APIS.len(), "an api key is listed twice");
    }
}
