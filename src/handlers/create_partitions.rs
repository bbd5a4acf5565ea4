//! CreatePartitions (key 37): grows topics (kafka-topics --alter
//! --partitions). Manual assignments may only name this node. As in Kafka,
//! a request may add at most 10,000 partitions in all: the topic that goes
//! over (and every later one) gets UNKNOWN_SERVER_ERROR with no message.
//! Kafka has by then committed the partitions that fitted; klamm creates
//! none for a refused topic.

use super::{ApiSpec, RequestContext};
use crate::controller::MAX_RECORDS_PER_USER_OP;
use crate::protocol::messages::create_partitions_request::CreatePartitionsRequest;
use crate::protocol::messages::create_partitions_response::{CreatePartitionsResponse, CreatePartitionsTopicResult};
use crate::protocol::ErrorCode;
use crate::security::authorizer::{AclOperation, ResourceType};

pub const SPEC: ApiSpec = ApiSpec { api_key: 37, name: "CreatePartitions", min_version: 0, max_version: 3 };

pub async fn handle(ctx: &RequestContext<'_>, req: CreatePartitionsRequest) -> CreatePartitionsResponse {
    let node_id = ctx.broker.controller.node_id();
    // Every topic is checked first (nothing written), counting the new
    // partitions of the valid ones against Kafka's per-request bound.
    let mut results = Vec::with_capacity(req.topics.len());
    let mut records = 0usize;
    for t in req.topics {
        let bad_assignment = t
            .assignments
            .as_ref()
            .is_some_and(|a| a.iter().any(|x| x.broker_ids.as_slice() != [node_id]));
        let mut outcome = if !ctx.authorized(AclOperation::Alter, ResourceType::Topic, &t.name) {
            // As Kafka: ALTER on the topic, before anything else.
            Err((ErrorCode::TopicAuthorizationFailed, None))
        } else if bad_assignment {
            Err((ErrorCode::InvalidReplicaAssignment, Some(format!("Assignments may only name broker {node_id}."))))
        } else {
            ctx.broker.create_partitions(&t.name, t.count, true).await.map_err(|e| (e.code, Some(e.message)))
        };
        if outcome.is_ok() {
            // Kafka's bound on the records of one request, counted in order.
            let current = ctx.broker.controller.image().topic(&t.name).map_or(0, |i| i.partitions);
            records = records.saturating_add((t.count - current).max(0) as usize);
            if records > MAX_RECORDS_PER_USER_OP {
                outcome = Err((ErrorCode::UnknownServerError, None));
            } else if !req.validate_only {
                outcome =
                    ctx.broker.create_partitions(&t.name, t.count, false).await.map_err(|e| (e.code, Some(e.message)));
            }
        }
        let (error_code, error_message) = match outcome {
            Ok(()) => (0, None),
            Err((code, msg)) => (code.code(), msg),
        };
        results.push(CreatePartitionsTopicResult { name: t.name, error_code, error_message });
    }
    CreatePartitionsResponse { throttle_time_ms: 0, results }
}
