//! ListConfigResources (key 74, KIP-1142; v0 was ListClientMetricsResources):
//! the names of the config resources of the requested types, as Kafka's
//! `KafkaApis.handleListConfigResources` lists them. GROUP lists the groups
//! that have dynamic configs (kafka-configs adds the groups that exist, so
//! `--describe --entity-type groups` shows a group that has configs but no
//! members, and names an unknown group as unknown); TOPIC every topic;
//! BROKER and BROKER_LOGGER this node; CLIENT_METRICS the client-metrics
//! subscriptions, of which klamm has none (KIP-714 is not served). v0 knows
//! only CLIENT_METRICS. A type outside the version's set is answered with
//! UNSUPPORTED_VERSION, as Kafka does.

use super::config_ops::{RESOURCE_BROKER, RESOURCE_BROKER_LOGGER, RESOURCE_GROUP, RESOURCE_TOPIC};
use super::{ApiSpec, RequestContext};
use crate::protocol::messages::list_config_resources_request::ListConfigResourcesRequest;
use crate::protocol::messages::list_config_resources_response::{ConfigResource, ListConfigResourcesResponse};
use crate::protocol::ErrorCode;

pub const SPEC: ApiSpec = ApiSpec { api_key: 74, name: "ListConfigResources", min_version: 0, max_version: 1 };

const RESOURCE_CLIENT_METRICS: i8 = 16;

/// The types each version lists (Kafka's `ListConfigResourcesRequest.supportedResourceTypes`).
fn supported_types(version: i16) -> &'static [i8] {
    if version == 0 {
        &[RESOURCE_CLIENT_METRICS]
    } else {
        &[RESOURCE_TOPIC, RESOURCE_BROKER, RESOURCE_BROKER_LOGGER, RESOURCE_CLIENT_METRICS, RESOURCE_GROUP]
    }
}

pub async fn handle(ctx: &RequestContext<'_>, req: ListConfigResourcesRequest) -> ListConfigResourcesResponse {
    let supported = supported_types(ctx.version());
    let wanted: &[i8] = if ctx.version() == 0 || req.resource_types.is_empty() { supported } else { &req.resource_types };
    if wanted.iter().any(|t| !supported.contains(t)) {
        return ListConfigResourcesResponse { error_code: ErrorCode::UnsupportedVersion.code(), ..Default::default() };
    }
    let image = ctx.broker.controller.image();
    let node = ctx.broker.controller.node_id().to_string();
    let resource = |resource_type: i8, resource_name: &str| ConfigResource { resource_name: resource_name.to_string(), resource_type };
    let mut config_resources = Vec::new();
    // In Kafka's order: groups, client metrics, broker loggers, brokers, topics.
    if wanted.contains(&RESOURCE_GROUP) {
        config_resources.extend(image.group_configs.keys().map(|g| resource(RESOURCE_GROUP, g)));
    }
    if wanted.contains(&RESOURCE_BROKER_LOGGER) {
        config_resources.push(resource(RESOURCE_BROKER_LOGGER, &node));
    }
    if wanted.contains(&RESOURCE_BROKER) {
        config_resources.push(resource(RESOURCE_BROKER, &node));
    }
    if wanted.contains(&RESOURCE_TOPIC) {
        config_resources.extend(image.topics.keys().map(|t| resource(RESOURCE_TOPIC, t)));
    }
    ListConfigResourcesResponse { config_resources, ..Default::default() }
}
