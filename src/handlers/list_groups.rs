//! ListGroups (key 16): the groups this coordinator knows, filtered by
//! state (v4+) and type (v5+); older versions send no filters and get
//! neither state nor type back (the codec drops those fields).

use super::{ApiSpec, RequestContext};
use crate::group;
use crate::protocol::messages::list_groups_request::ListGroupsRequest;
use crate::protocol::messages::list_groups_response::{ListGroupsResponse, ListedGroup};
use crate::security::authorizer::{AclOperation, ResourceType};

/// The type (and protocol type) of a KIP-848 consumer group.
const CONSUMER_GROUP_TYPE: &str = "consumer";

pub const SPEC: ApiSpec = ApiSpec { api_key: 16, name: "ListGroups", min_version: 0, max_version: 5 };

pub async fn handle(ctx: &RequestContext<'_>, req: ListGroupsRequest) -> ListGroupsResponse {
    let version = ctx.version();
    // The codec leaves absent filters empty; be explicit anyway. Kafka
    // trims the state names (and compares them case-insensitively).
    let states: Vec<String> =
        if version >= 4 { req.states_filter.iter().map(|s| s.trim().to_string()).collect() } else { Vec::new() };
    let types: &[String] = if version >= 5 { &req.types_filter } else { &[] };
    let r = ctx.broker.groups.list_groups(&states, types).await;
    let mut groups: Vec<ListedGroup> = r
        .groups
        .into_iter()
        .map(|g| ListedGroup {
            group_id: g.group_id,
            protocol_type: g.protocol_type,
            group_state: g.group_state,
            group_type: g.group_type,
        })
        .collect();
    // KIP-848 consumer groups: type "consumer", protocol type "consumer".
    if r.error_code == group::errors::NONE
        && (types.is_empty() || types.iter().any(|t| t.trim().eq_ignore_ascii_case(CONSUMER_GROUP_TYPE)))
    {
        for (group_id, state) in ctx.broker.consumer_groups.list() {
            if !states.is_empty() && !states.iter().any(|s| s.eq_ignore_ascii_case(state.as_str())) {
                continue;
            }
            groups.push(ListedGroup {
                group_id,
                protocol_type: CONSUMER_GROUP_TYPE.to_string(),
                group_state: state.as_str().to_string(),
                group_type: CONSUMER_GROUP_TYPE.to_string(),
            });
        }
        groups.sort_by(|a, b| a.group_id.cmp(&b.group_id));
    }
    // As Kafka: all groups with DESCRIBE on the cluster, else those the
    // principal may DESCRIBE.
    if ctx.authorizing() && !ctx.authorized_cluster(AclOperation::Describe) {
        groups.retain(|g| ctx.authorized(AclOperation::Describe, ResourceType::Group, &g.group_id));
    }
    ListGroupsResponse { throttle_time_ms: 0, error_code: r.error_code, groups }
}
