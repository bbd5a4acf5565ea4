//! DescribeGroups (key 15): state, protocol and members of classic groups
//! (unknown groups are described as Dead without error, as in Kafka).
//! With `include_authorized_operations` (v3+) a described group reports
//! every group operation, since klamm has no authorizer.

use super::{ApiSpec, RequestContext};
use crate::group;
use crate::protocol::messages::describe_groups_request::DescribeGroupsRequest;
use crate::protocol::messages::describe_groups_response::{
    DescribeGroupsResponse, DescribedGroup, DescribedGroupMember,
};

pub const SPEC: ApiSpec = ApiSpec { api_key: 15, name: "DescribeGroups", min_version: 0, max_version: 5 };

/// "Not requested": the schema's default for `authorized_operations`.
const AUTHORIZED_OPERATIONS_OMITTED: i32 = i32::MIN;

/// The operations Kafka supports on a GROUP resource (READ 3, DELETE 6,
/// DESCRIBE 8, DESCRIBE_CONFIGS 10, ALTER_CONFIGS 11) as a bit field: all
/// are allowed without an authorizer.
const GROUP_AUTHORIZED_OPERATIONS: i32 = (1 << 3) | (1 << 6) | (1 << 8) | (1 << 10) | (1 << 11);

pub async fn handle(ctx: &RequestContext<'_>, req: DescribeGroupsRequest) -> DescribeGroupsResponse {
    let include_operations = ctx.version() >= 3 && req.include_authorized_operations;
    let described = ctx.broker.groups.describe_groups(&req.groups).await;
    to_wire(described, include_operations)
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
}
