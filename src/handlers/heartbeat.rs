//! Heartbeat (key 12): a classic group member signals it is alive; the
//! answer tells it whether to rejoin (REBALANCE_IN_PROGRESS).

use super::{ApiSpec, RequestContext};
use crate::group;
use crate::protocol::messages::heartbeat_request::HeartbeatRequest;
use crate::protocol::messages::heartbeat_response::HeartbeatResponse;
use crate::security::authorizer::{AclOperation, ResourceType};

pub const SPEC: ApiSpec = ApiSpec { api_key: 12, name: "Heartbeat", min_version: 0, max_version: 4 };

pub async fn handle(ctx: &RequestContext<'_>, req: HeartbeatRequest) -> HeartbeatResponse {
    // As Kafka: READ on the group.
    if !ctx.authorized(AclOperation::Read, ResourceType::Group, &req.group_id) {
        return HeartbeatResponse { throttle_time_ms: 0, error_code: group::errors::GROUP_AUTHORIZATION_FAILED };
    }
    let request = group::HeartbeatRequest {
        group_id: req.group_id,
        generation_id: req.generation_id,
        member_id: req.member_id,
        group_instance_id: req.group_instance_id,
    };
    let error_code = ctx.broker.groups.heartbeat(request).await;
    HeartbeatResponse { throttle_time_ms: 0, error_code }
}
