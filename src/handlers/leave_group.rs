//! LeaveGroup (key 13): members leave a classic group. v0-2 carry one
//! member id and answer one error code; v3+ are batched with per-member
//! results.

use super::{ApiSpec, RequestContext};
use crate::group;
use crate::protocol::messages::leave_group_request::LeaveGroupRequest;
use crate::protocol::messages::leave_group_response::{LeaveGroupResponse, MemberResponse};
use crate::security::authorizer::{AclOperation, ResourceType};

pub const SPEC: ApiSpec = ApiSpec { api_key: 13, name: "LeaveGroup", min_version: 0, max_version: 5 };

pub async fn handle(ctx: &RequestContext<'_>, req: LeaveGroupRequest) -> LeaveGroupResponse {
    let version = ctx.version();
    // As Kafka: READ on the group.
    if !ctx.authorized(AclOperation::Read, ResourceType::Group, &req.group_id) {
        return LeaveGroupResponse {
            error_code: group::errors::GROUP_AUTHORIZATION_FAILED,
            ..Default::default()
        };
    }
    let response = ctx.broker.groups.leave_group(to_group_request(req, version)).await;
    to_wire(response, version)
}

fn to_group_request(req: LeaveGroupRequest, version: i16) -> group::LeaveGroupRequest {
    let members = if version <= 2 {
        vec![group::LeaveGroupMember { member_id: req.member_id, group_instance_id: None, reason: None }]
    } else {
        req.members
            .into_iter()
            .map(|m| group::LeaveGroupMember {
                member_id: m.member_id,
                group_instance_id: m.group_instance_id,
                reason: m.reason,
            })
            .collect()
    };
    group::LeaveGroupRequest { group_id: req.group_id, members }
}

/// v0-2 answer a single error: the top-level one, else the first member
/// error (Kafka's `LeaveGroupResponse` for old versions).
fn to_wire(r: group::LeaveGroupResponse, version: i16) -> LeaveGroupResponse {
    if version <= 2 {
        let error_code = if r.error_code != group::errors::NONE {
            r.error_code
        } else {
            r.members.iter().map(|m| m.error_code).find(|&e| e != group::errors::NONE).unwrap_or(group::errors::NONE)
        };
        return LeaveGroupResponse { throttle_time_ms: 0, error_code, members: Vec::new() };
    }
    LeaveGroupResponse {
        throttle_time_ms: 0,
        error_code: r.error_code,
        members: r
            .members
            .into_iter()
            .map(|m| MemberResponse {
                member_id: m.member_id,
                group_instance_id: m.group_instance_id,
                error_code: m.error_code,
            })
            .collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::group::errors::{NONE, UNKNOWN_MEMBER_ID};
    use crate::protocol::messages::leave_group_request::MemberIdentity;

    fn member(id: &str, error_code: i16) -> group::LeaveGroupMemberResponse {
        group::LeaveGroupMemberResponse { member_id: id.into(), group_instance_id: None, error_code }
    }

    #[test]
    fn old_versions_leave_one_member() {
        let req = LeaveGroupRequest {
            group_id: "g".into(),
            member_id: "m".into(),
            members: vec![MemberIdentity { member_id: "ignored".into(), ..Default::default() }],
        };
        let r = to_group_request(req.clone(), 2);
        assert_eq!(r.members.len(), 1);
        assert_eq!(r.members[0].member_id, "m");
        let r = to_group_request(req, 3);
        assert_eq!(r.members[0].member_id, "ignored");
    }

    #[test]
    fn old_versions_answer_the_member_error() {
        let r = group::LeaveGroupResponse { error_code: NONE, members: vec![member("m", UNKNOWN_MEMBER_ID)] };
        let w = to_wire(r.clone(), 0);
        assert_eq!(w.error_code, UNKNOWN_MEMBER_ID);
        assert!(w.members.is_empty());
        let w = to_wire(r, 3);
        assert_eq!(w.error_code, NONE);
        assert_eq!(w.members[0].error_code, UNKNOWN_MEMBER_ID);
        let top = group::LeaveGroupResponse { error_code: 15, members: Vec::new() };
        assert_eq!(to_wire(top, 1).error_code, 15);
    }
}
