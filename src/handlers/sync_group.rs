//! SyncGroup (key 14): members fetch their assignment (the leader supplies
//! them all); from v5 the protocol type and name are mandatory.

use super::{ApiSpec, RequestContext};
use crate::group;
use crate::protocol::messages::sync_group_request::SyncGroupRequest;
use crate::protocol::messages::sync_group_response::SyncGroupResponse;
use crate::security::authorizer::{AclOperation, ResourceType};

pub const SPEC: ApiSpec = ApiSpec { api_key: 14, name: "SyncGroup", min_version: 0, max_version: 5 };

pub async fn handle(ctx: &RequestContext<'_>, req: SyncGroupRequest) -> SyncGroupResponse {
    let version = ctx.version();
    // Kafka rejects a v5+ request without protocol type and name before
    // the coordinator sees it.
    if version >= 5 && (req.protocol_type.is_none() || req.protocol_name.is_none()) {
        return to_wire(group::SyncGroupResponse::error(group::errors::INCONSISTENT_GROUP_PROTOCOL));
    }
    // As Kafka: READ on the group.
    if !ctx.authorized(AclOperation::Read, ResourceType::Group, &req.group_id) {
        return to_wire(group::SyncGroupResponse::error(group::errors::GROUP_AUTHORIZATION_FAILED));
    }
    let response = ctx.broker.groups.sync_group(to_group_request(req)).await;
    to_wire(response)
}

fn to_group_request(req: SyncGroupRequest) -> group::SyncGroupRequest {
    group::SyncGroupRequest {
        group_id: req.group_id,
        generation_id: req.generation_id,
        member_id: req.member_id,
        group_instance_id: req.group_instance_id,
        protocol_type: req.protocol_type,
        protocol_name: req.protocol_name,
        // Copied, like JoinGroup metadata: kept for the generation's life.
        assignments: req.assignments.into_iter().map(|a| (a.member_id, bytes::Bytes::copy_from_slice(&a.assignment))).collect(),
    }
}

fn to_wire(r: group::SyncGroupResponse) -> SyncGroupResponse {
    SyncGroupResponse {
        throttle_time_ms: 0,
        error_code: r.error_code,
        protocol_type: r.protocol_type,
        protocol_name: r.protocol_name,
        assignment: r.assignment,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::messages::sync_group_request::SyncGroupRequestAssignment;
    use bytes::Bytes;

    #[test]
    fn assignments_map_by_member() {
        let req = SyncGroupRequest {
            group_id: "g".into(),
            generation_id: 3,
            member_id: "m1".into(),
            group_instance_id: Some("i".into()),
            protocol_type: Some("consumer".into()),
            protocol_name: Some("range".into()),
            assignments: vec![
                SyncGroupRequestAssignment { member_id: "m1".into(), assignment: Bytes::from_static(b"a") },
                SyncGroupRequestAssignment { member_id: "m2".into(), assignment: Bytes::from_static(b"b") },
            ],
        };
        let r = to_group_request(req);
        assert_eq!(r.generation_id, 3);
        assert_eq!(r.group_instance_id.as_deref(), Some("i"));
        assert_eq!(r.assignments[1], ("m2".to_string(), Bytes::from_static(b"b")));
    }
}
