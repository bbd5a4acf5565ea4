//! Plain request and response structs of the group APIs (JoinGroup,
//! SyncGroup, Heartbeat, LeaveGroup, OffsetCommit, OffsetFetch, ListGroups,
//! DescribeGroups, DeleteGroups, OffsetDelete). They mirror the fields of
//! Kafka's wire messages; the API handlers map the protocol codec's structs
//! to and from these.

use bytes::Bytes;

/// JoinGroup request (all versions folded into one shape).
#[derive(Clone, Debug, Default)]
pub struct JoinGroupRequest {
    pub group_id: String,
    pub session_timeout_ms: i32,
    /// v0 has no rebalance timeout: the handler passes the session timeout.
    pub rebalance_timeout_ms: i32,
    /// Empty for a member that does not have an id yet.
    pub member_id: String,
    pub group_instance_id: Option<String>,
    pub protocol_type: String,
    /// (protocol name, protocol metadata), in the member's preference order.
    pub protocols: Vec<(String, Bytes)>,
    pub reason: Option<String>,
    /// The request's API version: v4+ requires a known member id, v9+
    /// supports `skip_assignment`.
    pub api_version: i16,
    pub client_id: String,
    pub client_host: String,
}

/// One member as reported to the leader in a JoinGroup response.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct JoinGroupResponseMember {
    pub member_id: String,
    pub group_instance_id: Option<String>,
    pub metadata: Bytes,
}

/// JoinGroup response.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct JoinGroupResponse {
    pub error_code: i16,
    pub generation_id: i32,
    pub protocol_type: Option<String>,
    pub protocol_name: Option<String>,
    /// Empty when there is no leader (error responses).
    pub leader: String,
    pub skip_assignment: bool,
    pub member_id: String,
    /// Only filled in for the leader.
    pub members: Vec<JoinGroupResponseMember>,
}

impl JoinGroupResponse {
    /// An error response (generation -1, no leader, no members).
    pub fn error(member_id: impl Into<String>, error_code: i16) -> JoinGroupResponse {
        JoinGroupResponse {
            error_code,
            generation_id: -1,
            protocol_type: None,
            protocol_name: None,
            leader: String::new(),
            skip_assignment: false,
            member_id: member_id.into(),
            members: Vec::new(),
        }
    }
}

/// SyncGroup request.
#[derive(Clone, Debug, Default)]
pub struct SyncGroupRequest {
    pub group_id: String,
    pub generation_id: i32,
    pub member_id: String,
    pub group_instance_id: Option<String>,
    /// v5+ only; `None` skips the check.
    pub protocol_type: Option<String>,
    /// v5+ only; `None` skips the check.
    pub protocol_name: Option<String>,
    /// (member id, assignment); only the leader sends assignments.
    pub assignments: Vec<(String, Bytes)>,
}

/// SyncGroup response.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SyncGroupResponse {
    pub error_code: i16,
    pub protocol_type: Option<String>,
    pub protocol_name: Option<String>,
    pub assignment: Bytes,
}

impl SyncGroupResponse {
    /// An error response with an empty assignment.
    pub fn error(error_code: i16) -> SyncGroupResponse {
        SyncGroupResponse {
            error_code,
            protocol_type: None,
            protocol_name: None,
            assignment: Bytes::new(),
        }
    }
}

/// Heartbeat request.
#[derive(Clone, Debug, Default)]
pub struct HeartbeatRequest {
    pub group_id: String,
    pub generation_id: i32,
    pub member_id: String,
    pub group_instance_id: Option<String>,
}

/// One member leaving (LeaveGroup v3+ batch form; v0-2 is one member).
#[derive(Clone, Debug, Default)]
pub struct LeaveGroupMember {
    /// Empty when an admin removes a static member by instance id.
    pub member_id: String,
    pub group_instance_id: Option<String>,
    pub reason: Option<String>,
}

/// LeaveGroup request.
#[derive(Clone, Debug, Default)]
pub struct LeaveGroupRequest {
    pub group_id: String,
    pub members: Vec<LeaveGroupMember>,
}

/// Per-member outcome of a LeaveGroup.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LeaveGroupMemberResponse {
    pub member_id: String,
    pub group_instance_id: Option<String>,
    pub error_code: i16,
}

/// LeaveGroup response: a top-level error (when set, `members` is empty)
/// and per-member errors.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LeaveGroupResponse {
    pub error_code: i16,
    pub members: Vec<LeaveGroupMemberResponse>,
}

/// One partition of an OffsetCommit.
#[derive(Clone, Debug, Default)]
pub struct OffsetCommitPartition {
    pub partition_index: i32,
    pub committed_offset: i64,
    /// -1 when unknown.
    pub committed_leader_epoch: i32,
    pub committed_metadata: Option<String>,
}

/// One topic of an OffsetCommit.
#[derive(Clone, Debug, Default)]
pub struct OffsetCommitTopic {
    pub name: String,
    pub partitions: Vec<OffsetCommitPartition>,
}

/// OffsetCommit request.
#[derive(Clone, Debug, Default)]
pub struct OffsetCommitRequest {
    pub group_id: String,
    /// -1 for a simple (standalone) commit.
    pub generation_id_or_member_epoch: i32,
    /// Empty for a simple commit.
    pub member_id: String,
    pub group_instance_id: Option<String>,
    /// v2-v4 only; -1 means the broker's `offsets.retention.minutes`.
    pub retention_time_ms: i64,
    pub topics: Vec<OffsetCommitTopic>,
    /// v9+ answers GROUP_ID_NOT_FOUND instead of ILLEGAL_GENERATION for a
    /// non-simple commit to a group that does not exist.
    pub api_version: i16,
}

/// Per-partition outcome of an OffsetCommit.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OffsetCommitPartitionResponse {
    pub partition_index: i32,
    pub error_code: i16,
}

/// Per-topic outcome of an OffsetCommit.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OffsetCommitTopicResponse {
    pub name: String,
    pub partitions: Vec<OffsetCommitPartitionResponse>,
}

/// OffsetCommit response.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OffsetCommitResponse {
    pub topics: Vec<OffsetCommitTopicResponse>,
}

/// OffsetFetch request for one group.
#[derive(Clone, Debug, Default)]
pub struct OffsetFetchRequest {
    pub group_id: String,
    /// (topic, partitions); `None` fetches every committed offset.
    pub topics: Option<Vec<(String, Vec<i32>)>>,
    pub require_stable: bool,
}

/// One partition of an OffsetFetch response.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OffsetFetchPartitionResponse {
    pub partition_index: i32,
    /// -1 when nothing is committed.
    pub committed_offset: i64,
    /// -1 when unknown.
    pub committed_leader_epoch: i32,
    /// "" when nothing is committed (Kafka answers an empty string).
    pub metadata: Option<String>,
    pub error_code: i16,
}

/// One topic of an OffsetFetch response.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OffsetFetchTopicResponse {
    pub name: String,
    pub partitions: Vec<OffsetFetchPartitionResponse>,
}

/// OffsetFetch response for one group.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OffsetFetchResponse {
    pub group_id: String,
    /// Group-level error (v2+); per-partition errors are in `topics`.
    pub error_code: i16,
    pub topics: Vec<OffsetFetchTopicResponse>,
}

/// One group of a ListGroups response.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ListedGroup {
    pub group_id: String,
    pub protocol_type: String,
    pub group_state: String,
    /// Always "classic".
    pub group_type: String,
}

/// ListGroups response.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ListGroupsResponse {
    pub error_code: i16,
    pub groups: Vec<ListedGroup>,
}

/// One member of a DescribeGroups response.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DescribedMember {
    pub member_id: String,
    pub group_instance_id: Option<String>,
    pub client_id: String,
    pub client_host: String,
    /// The metadata for the group's protocol (empty unless Stable).
    pub member_metadata: Bytes,
    /// The member's assignment (empty unless Stable).
    pub member_assignment: Bytes,
}

/// One group of a DescribeGroups response.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DescribedGroup {
    pub error_code: i16,
    pub group_id: String,
    pub group_state: String,
    pub protocol_type: String,
    /// The selected protocol (empty unless Stable).
    pub protocol_data: String,
    pub members: Vec<DescribedMember>,
}

/// Per-group outcome of DeleteGroups.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DeletedGroup {
    pub group_id: String,
    pub error_code: i16,
}

/// OffsetDelete request.
#[derive(Clone, Debug, Default)]
pub struct OffsetDeleteRequest {
    pub group_id: String,
    pub topics: Vec<(String, Vec<i32>)>,
}

/// Per-partition outcome of OffsetDelete.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OffsetDeletePartitionResponse {
    pub partition_index: i32,
    pub error_code: i16,
}

/// Per-topic outcome of OffsetDelete.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OffsetDeleteTopicResponse {
    pub name: String,
    pub partitions: Vec<OffsetDeletePartitionResponse>,
}

/// OffsetDelete response: a group-level error (then `topics` is empty) or
/// per-partition errors.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OffsetDeleteResponse {
    pub error_code: i16,
    pub topics: Vec<OffsetDeleteTopicResponse>,
}
