//! AlterConfigs (key 33, the legacy API): the given configs replace a
//! topic's whole set of overrides (validated and stored as for
//! IncrementalAlterConfigs), with `validate_only`. Broker resources get
//! Kafka's answer for configs that cannot change dynamically; Kafka's
//! legacy API does not support broker loggers.

use std::collections::BTreeMap;

use super::config_ops::{
    alter_broker, alter_topic, duplicate_resource_error, duplicate_resources, preprocess, AlterEntry, ApiError,
    RESOURCE_BROKER, RESOURCE_TOPIC,
};
use super::{ApiSpec, RequestContext};
use crate::protocol::messages::alter_configs_request::{AlterConfigsRequest, AlterConfigsResource};
use crate::protocol::messages::alter_configs_response::{AlterConfigsResourceResponse, AlterConfigsResponse};
use crate::protocol::ErrorCode;
use crate::security::authorizer::AclOperation;

pub const SPEC: ApiSpec = ApiSpec { api_key: 33, name: "AlterConfigs", min_version: 0, max_version: 2 };

async fn alter(ctx: &RequestContext<'_>, r: &AlterConfigsResource, validate_only: bool) -> Result<(), ApiError> {
    let entries: Vec<AlterEntry> =
        r.configs.iter().map(|c| AlterEntry { name: c.name.clone(), op: 0, value: c.value.clone() }).collect();
    preprocess(&entries, false)?;
    match r.resource_type {
        RESOURCE_TOPIC => {
            let replacement: BTreeMap<String, String> =
                entries.iter().filter_map(|e| Some((e.name.clone(), e.value.clone()?))).collect();
            alter_topic(ctx.broker, &r.resource_name, move |_| Ok(replacement), validate_only).await
        }
        RESOURCE_BROKER => alter_broker(ctx.broker.settings().node_id, &r.resource_name, &entries, false),
        other => Err(ApiError::new(ErrorCode::InvalidRequest, format!("Unknown resource type {other}"))),
    }
}

pub async fn handle(ctx: &RequestContext<'_>, req: AlterConfigsRequest) -> AlterConfigsResponse {
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
    AlterConfigsResponse { throttle_time_ms: 0, responses }
}
