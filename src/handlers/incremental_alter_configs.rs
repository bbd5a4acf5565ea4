//! IncrementalAlterConfigs (key 44): SET / DELETE / APPEND / SUBTRACT on a
//! topic's config overrides (validated, stored durably by the controller,
//! applied to the logs) and on a group's dynamic configs (GROUP resource),
//! with `validate_only`. Broker and broker-logger
//! resources get Kafka's answers for what klamm cannot change (see
//! `config_ops`).

use super::config_ops::{
    alter_broker, alter_broker_logger, alter_topic, apply_topic_ops, duplicate_resource_error, duplicate_resources,
    preprocess, alter_group, AlterEntry, ApiError, RESOURCE_BROKER, RESOURCE_BROKER_LOGGER, RESOURCE_GROUP, RESOURCE_TOPIC,
};
use super::{ApiSpec, RequestContext};
use crate::protocol::messages::incremental_alter_configs_request::{AlterConfigsResource, IncrementalAlterConfigsRequest};
use crate::protocol::messages::incremental_alter_configs_response::{
    AlterConfigsResourceResponse, IncrementalAlterConfigsResponse,
};
use crate::protocol::ErrorCode;
use crate::security::authorizer::AclOperation;

pub const SPEC: ApiSpec = ApiSpec { api_key: 44, name: "IncrementalAlterConfigs", min_version: 0, max_version: 1 };

async fn alter(ctx: &RequestContext<'_>, r: &AlterConfigsResource, validate_only: bool) -> Result<(), ApiError> {
    let entries: Vec<AlterEntry> = r
        .configs
        .iter()
        .map(|c| AlterEntry { name: c.name.clone(), op: c.config_operation, value: c.value.clone() })
        .collect();
    preprocess(&entries, true)?;
    let node_id = ctx.broker.settings().node_id;
    match r.resource_type {
        RESOURCE_TOPIC => {
            alter_topic(ctx.broker, &r.resource_name, |current| apply_topic_ops(current, &entries), validate_only).await
        }
        RESOURCE_BROKER => alter_broker(node_id, &r.resource_name, &entries, true),
        RESOURCE_BROKER_LOGGER => alter_broker_logger(node_id, &r.resource_name, &entries),
        RESOURCE_GROUP => alter_group(ctx.broker, &r.resource_name, &entries, true, validate_only).await,
        other => Err(ApiError::new(ErrorCode::InvalidRequest, format!("Unknown resource type {other}"))),
    }
}

pub async fn handle(ctx: &RequestContext<'_>, req: IncrementalAlterConfigsRequest) -> IncrementalAlterConfigsResponse {
    let dups = duplicate_resources(req.resources.iter().map(|r| (r.resource_type, r.resource_name.as_str())));
    let mut responses = Vec::with_capacity(req.resources.len());
    for r in &req.resources {
        let outcome = if dups.contains(&(r.resource_type, r.resource_name.clone())) {
            Err(duplicate_resource_error())
        } else if let Err(e) =
            super::config_ops::authorize_resource(ctx, r.resource_type, &r.resource_name, AclOperation::AlterConfigs)
        {
            Err(e)
        } else {
            alter(ctx, r, req.validate_only).await
        };
        let (error_code, error_message) = match outcome {
            Ok(()) => (0, None),
            Err(e) => (e.code.code(), e.message),
        };
        responses.push(AlterConfigsResourceResponse {
            error_code,
            error_message,
            resource_type: r.resource_type,
            resource_name: r.resource_name.clone(),
        });
    }
    IncrementalAlterConfigsResponse { throttle_time_ms: 0, responses }
}
