//! DescribeGroups (key 15): state, protocol and members of classic groups.
//! Unknown groups are described as Dead: without error up to v5, with
//! GROUP_ID_NOT_FOUND from v6 (KIP-1043), as in Kafka.
//! With `include_authorized_operations` (v3+) a described group reports
//! the group operations its caller may do (all without an authorizer).

use super::{ApiSpec, RequestContext};
use crate::group;
use crate::protocol::ErrorCode;
use crate::protocol::messages::describe_groups_request::DescribeGroupsRequest;
use crate::protocol::messages::describe_groups_response::{
    DescribeGroupsResponse, DescribedGroup, DescribedGroupMember,
};
use crate::security::authorizer::{AclOperation, ResourceType};

pub const SPEC: ApiSpec = ApiSpec { api_key: 15, name: "DescribeGroups", min_version: 0, max_version: 6 };

/// "Not requested": the schema's default for `authorized_operations`.
const AUTHORIZED_OPERATIONS_OMITTED: i32 = i32::MIN;

/// The operations Kafka supports on a GROUP resource (READ 3, DELETE 6,
/// DESCRIBE 8, DESCRIBE_CONFIGS 10, ALTER_CONFIGS 11) as a bit field: all
/// are allowed without an authorizer.
const GROUP_AUTHORIZED_OPERATIONS: i32 = (1 << 3) | (1 << 6) | (1 << 8) | (1 << 10) | (1 << 11);

pub async fn handle(ctx: &RequestContext<'_>, req: DescribeGroupsRequest) -> DescribeGroupsResponse {
    let include_operations = ctx.version() >= 3 && req.include_authorized_operations;
    let described = ctx.broker.groups.describe_groups(&req.groups).await;
    let mut response = to_wire(described, include_operations);
    // As Kafka: DESCRIBE on each group, else only its error.
    if ctx.authorizing() {
        for g in &mut response.groups {
            if !ctx.authorized(AclOperation::Describe, ResourceType::Group, &g.group_id) {
                *g = DescribedGroup {
                    group_id: std::mem::take(&mut g.group_id),
                    error_code: ErrorCode::GroupAuthorizationFailed.code(),
                    ..Default::default()
                };
            } else if g.authorized_operations != AUTHORIZED_OPERATIONS_OMITTED {
                g.authorized_operations = ctx.authorized_operations(ResourceType::Group, &g.group_id);
            }
        }
    }
    // A KIP-848 consumer group is no classic group: Dead without error up
    // to v5, GROUP_ID_NOT_FOUND from v6, as Kafka answers.
    for g in &mut response.groups {
        if ctx.broker.consumer_groups.contains(&g.group_id) && ctx.version() >= 6 {
            g.error_code = ErrorCode::GroupIdNotFound.code();
            g.error_message = Some(format!("Group {} is not a classic group.", g.group_id));
        }
    }
    if ctx.version() >= 6 {
        mark_not_found(&mut response);
    }
    response
}

/// v6+: a group that does not exist is an error, not an empty Dead group.
fn mark_not_found(response: &mut DescribeGroupsResponse) {
    for g in &mut response.groups {
        if g.error_code == group::errors::NONE && g.group_state == "Dead" && g.members.is_empty() {
            g.error_code = ErrorCode::GroupIdNotFound.code();
            g.error_message = Some(format!("Group {} not found.", g.group_id));
        }
    }
}

fn to_wire(described: Vec<group::DescribedGroup>, include_operations: bool) -> DescribeGroupsResponse {
    let groups = described
        .into_iter()
        .map(|g| DescribedGroup {
            authorized_operations: if include_operations && g.error_code == group::errors::NONE {
                GROUP_AUTHORIZED_OPERATIONS
            } else {
                AUTHORIZED_OPERATIONS_OMITTED
            },
            error_code: g.error_code,
            error_message: None,
            group_id: g.group_id,
            group_state: g.group_state,
            protocol_type: g.protocol_type,
            protocol_data: g.protocol_data,
            members: g
                .members
                .into_iter()
                .map(|m| DescribedGroupMember {
                    member_id: m.member_id,
                    group_instance_id: m.group_instance_id,
                    client_id: m.client_id,
                    client_host: m.client_host,
                    member_metadata: m.member_metadata,
                    member_assignment: m.member_assignment,
                })
                .collect(),
        })
        .collect();
    DescribeGroupsResponse { throttle_time_ms: 0, groups }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn described(error_code: i16) -> group::DescribedGroup {
        group::DescribedGroup {
            error_code,
            group_id: "g".into(),
            group_state: "Empty".into(),
            protocol_type: "consumer".into(),
            protocol_data: String::new(),
            members: Vec::new(),
        }
    }

    #[test]
    fn authorized_operations_only_when_asked_and_ok() {
        assert_eq!(GROUP_AUTHORIZED_OPERATIONS, 3400);
        let w = to_wire(vec![described(0), described(15)], true);
        assert_eq!(w.groups[0].authorized_operations, 3400);
        assert_eq!(w.groups[1].authorized_operations, i32::MIN);
        let w = to_wire(vec![described(0)], false);
        assert_eq!(w.groups[0].authorized_operations, i32::MIN);
        assert_eq!(w.groups[0].group_state, "Empty");
    }

    #[test]
    fn v6_reports_unknown_groups_as_not_found() {
        let mut dead = described(0);
        dead.group_state = "Dead".into();
        let mut w = to_wire(vec![dead, described(0)], false);
        mark_not_found(&mut w);
        assert_eq!(w.groups[0].error_code, ErrorCode::GroupIdNotFound.code());
        assert_eq!(w.groups[0].error_message.as_deref(), Some("Group g not found."));
        assert_eq!(w.groups[1].error_code, 0);
    }
}
