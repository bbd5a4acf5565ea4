//! DeleteTopics (key 20): by name (v0-5) or by name or topic id (v6+);
//! refused with TOPIC_DELETION_DISABLED when `delete.topic.enable=false`.

use super::{ApiSpec, RequestContext};
use crate::protocol::messages::delete_topics_request::DeleteTopicsRequest;
use crate::protocol::messages::delete_topics_response::{DeletableTopicResult, DeleteTopicsResponse};
use crate::protocol::{ErrorCode, Uuid};
use crate::security::authorizer::{AclOperation, ResourceType};

pub const SPEC: ApiSpec = ApiSpec { api_key: 20, name: "DeleteTopics", min_version: 1, max_version: 6 };

pub async fn handle(ctx: &RequestContext<'_>, req: DeleteTopicsRequest) -> DeleteTopicsResponse {
    let wanted: Vec<(Option<String>, Uuid)> = if ctx.version() >= 6 {
        req.topics.into_iter().map(|t| (t.name, t.topic_id)).collect()
    } else {
        req.topic_names.into_iter().map(|n| (Some(n), Uuid::NIL)).collect()
    };
    let mut responses = Vec::with_capacity(wanted.len());
    for (name, id) in wanted {
        let image = ctx.broker.controller.image();
        let resolved = match (&name, id.is_nil()) {
            (Some(n), _) if !n.is_empty() => Some(n.clone()),
            (_, false) => image.topic_by_id(&id).map(|t| t.name.clone()),
            _ => None,
        };
        let mut result = DeletableTopicResult { name: name.clone(), topic_id: id, ..Default::default() };
        // As Kafka: DELETE on the topic, checked before its existence.
        if resolved.as_deref().is_some_and(|t| !ctx.authorized(AclOperation::Delete, ResourceType::Topic, t)) {
            result.error_code = ErrorCode::TopicAuthorizationFailed.code();
            responses.push(result);
            continue;
        }
        let Some(topic) = resolved else {
            result.error_code =
                if id.is_nil() { ErrorCode::UnknownTopicOrPartition } else { ErrorCode::UnknownTopicId }.code();
            responses.push(result);
            continue;
        };
        if !ctx.broker.settings().delete_topic_enable {
            result.error_code = ErrorCode::TopicDeletionDisabled.code();
            responses.push(result);
            continue;
        }
        match ctx.broker.delete_topic(&topic).await {
            Ok(info) => {
                result.name = Some(info.name.clone());
                result.topic_id = info.id;
            }
            Err(e) => {
                result.error_code = e.code.code();
                result.error_message = Some(e.message);
            }
        }
        responses.push(result);
    }
    DeleteTopicsResponse { throttle_time_ms: 0, responses }
}
