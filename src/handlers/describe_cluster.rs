//! DescribeCluster (key 60): this node as the only broker and controller
//! (never fenced, so `include_fenced_brokers`, v2+, changes nothing).

use super::{ApiSpec, RequestContext};
use crate::protocol::messages::describe_cluster_request::DescribeClusterRequest;
use crate::protocol::messages::describe_cluster_response::{DescribeClusterBroker, DescribeClusterResponse};
use crate::protocol::ErrorCode;

pub const SPEC: ApiSpec = ApiSpec { api_key: 60, name: "DescribeCluster", min_version: 0, max_version: 2 };

/// Kafka's `endpoint_type` for brokers (2 = controllers).
const ENDPOINT_TYPE_BROKERS: i8 = 1;

pub async fn handle(ctx: &RequestContext<'_>, req: DescribeClusterRequest) -> DescribeClusterResponse {
    let node_id = ctx.broker.controller.node_id();
    let mut resp = DescribeClusterResponse {
        cluster_id: ctx.broker.controller.cluster_id().to_string(),
        controller_id: node_id,
        ..Default::default()
    };
    if ctx.version() >= 1 && req.endpoint_type != ENDPOINT_TYPE_BROKERS {
        resp.error_code = ErrorCode::UnsupportedEndpointType.code();
        resp.error_message = Some("klamm only serves the broker endpoint type".into());
        return resp;
    }
    if req.include_cluster_authorized_operations {
        resp.cluster_authorized_operations =
            ctx.authorized_operations(crate::security::authorizer::ResourceType::Cluster, crate::security::authorizer::CLUSTER_NAME);
    }
    resp.brokers = vec![DescribeClusterBroker {
        broker_id: node_id,
        host: ctx.listener.advertised_host.clone(),
        port: ctx.listener.advertised_port as i32,
        rack: ctx.broker.config().broker_rack.clone(),
        is_fenced: false,
    }];
    resp
}
