//! CreatePartitions (key 37): grows topics (kafka-topics --alter
//! --partitions). Manual assignments may only name this node.

use super::{ApiSpec, RequestContext};
use crate::protocol::messages::create_partitions_request::CreatePartitionsRequest;
use crate::protocol::messages::create_partitions_response::{CreatePartitionsResponse, CreatePartitionsTopicResult};
use crate::protocol::ErrorCode;

pub const SPEC: ApiSpec = ApiSpec { api_key: 37, name: "CreatePartitions", min_version: 0, max_version: 3 };

pub async fn handle(ctx: &RequestContext<'_>, req: CreatePartitionsRequest) -> CreatePartitionsResponse {
    let node_id = ctx.broker.controller.node_id();
    let mut results = Vec::with_capacity(req.topics.len());
    for t in req.topics {
        let bad_assignment = t
            .assignments
            .as_ref()
            .is_some_and(|a| a.iter().any(|x| x.broker_ids.as_slice() != [node_id]));
        let outcome = if bad_assignment {
            Err((ErrorCode::InvalidReplicaAssignment, format!("Assignments may only name broker {node_id}.")))
        } else {
            ctx.broker.create_partitions(&t.name, t.count, req.validate_only).await.map_err(|e| (e.code, e.message))
        };
        let (error_code, error_message) = match outcome {
            Ok(()) => (0, None),
            Err((code, msg)) => (code.code(), Some(msg)),
        };
        results.push(CreatePartitionsTopicResult { name: t.name, error_code, error_message });
    }
    CreatePartitionsResponse { throttle_time_ms: 0, results }
}
