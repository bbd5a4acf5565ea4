//! DescribeConfigs (key 32): the configs of topics (every topic config with
//! its value, source and Kafka's synonym list), of this broker (every broker
//! config; all static, so read-only), of the cluster-wide broker default
//! (empty name: the dynamic defaults, of which klamm has none), and of the
//! broker loggers (none: klamm has no log4j loggers), and of groups (every
//! group config: the group's override or the broker's `group.` setting,
//! whether or not the group exists). Errors follow Kafka's
//! `ConfigHelper`: invalid topic names, unknown topics, a broker name that
//! is not this node's id.

use super::config_ops::{RESOURCE_BROKER, RESOURCE_BROKER_LOGGER, RESOURCE_GROUP, RESOURCE_TOPIC};
use super::{ApiSpec, RequestContext};
use crate::config::{effective_topic_configs, ConfigSynonym};
use crate::controller::topic_name;
use crate::protocol::messages::describe_configs_request::{DescribeConfigsRequest, DescribeConfigsResource};
use crate::protocol::messages::describe_configs_response::{
    DescribeConfigsResourceResult, DescribeConfigsResponse, DescribeConfigsResult, DescribeConfigsSynonym,
};
use crate::protocol::ErrorCode;
use crate::security::authorizer::AclOperation;

/// Kafka 4.0 removed v0 (KIP-896).
pub const SPEC: ApiSpec = ApiSpec { api_key: 32, name: "DescribeConfigs", min_version: 1, max_version: 4 };

/// One config entry before the request's options are applied.
struct Entry {
    name: &'static str,
    value: Option<String>,
    read_only: bool,
    source: i8,
    is_sensitive: bool,
    synonyms: Vec<ConfigSynonym>,
    config_type: i8,
    documentation: &'static str,
}

/// What the request asks to include.
#[derive(Clone, Copy)]
struct Options {
    synonyms: bool,
    documentation: bool,
}

fn to_result(e: Entry, opts: Options) -> DescribeConfigsResourceResult {
    DescribeConfigsResourceResult {
        name: e.name.to_string(),
        value: e.value,
        read_only: e.read_only,
        is_default: e.source == crate::config::ConfigSource::DefaultConfig.code(),
        config_source: e.source,
        is_sensitive: e.is_sensitive,
        synonyms: if opts.synonyms {
            e.synonyms
                .into_iter()
                .map(|s| DescribeConfigsSynonym { name: s.name, value: s.value, source: s.source.code() })
                .collect()
        } else {
            Vec::new()
        },
        config_type: e.config_type,
        documentation: opts.documentation.then(|| e.documentation.to_string()),
    }
}

fn error(code: ErrorCode, message: Option<String>) -> DescribeConfigsResult {
    DescribeConfigsResult { error_code: code.code(), error_message: message, ..Default::default() }
}

fn invalid_request(message: String) -> DescribeConfigsResult {
    error(ErrorCode::InvalidRequest, Some(message))
}

/// Keeps the entries the resource asks for (all when the key list is null
/// or empty), in the broker's order.
fn filtered(entries: Vec<Entry>, keys: &Option<Vec<String>>, opts: Options) -> Vec<DescribeConfigsResourceResult> {
    entries
        .into_iter()
        .filter(|e| match keys {
            Some(k) if !k.is_empty() => k.iter().any(|n| n == e.name),
            _ => true,
        })
        .map(|e| to_result(e, opts))
        .collect()
}

fn describe_resource(ctx: &RequestContext<'_>, r: &DescribeConfigsResource, opts: Options) -> DescribeConfigsResult {
    if let Err(e) = super::config_ops::authorize_resource(ctx, r.resource_type, &r.resource_name, AclOperation::DescribeConfigs) {
        return error(e.code, e.message);
    }
    let broker = ctx.broker.config();
    let node_id = ctx.broker.settings().node_id;
    let ok = |configs| DescribeConfigsResult { error_code: 0, error_message: None, configs, ..Default::default() };
    match r.resource_type {
        RESOURCE_TOPIC => {
            if let Err(m) = topic_name::validate(&r.resource_name) {
                return error(ErrorCode::InvalidTopicException, Some(m));
            }
            let image = ctx.broker.controller.image();
            let Some(topic) = image.topic(&r.resource_name) else {
                return error(ErrorCode::UnknownTopicOrPartition, None);
            };
            let entries = effective_topic_configs(broker, &topic.configs)
                .into_iter()
                .map(|e| Entry {
                    name: e.name,
                    value: if e.is_sensitive { None } else { e.value },
                    read_only: e.read_only,
                    source: e.source.code(),
                    is_sensitive: e.is_sensitive,
                    synonyms: e.synonyms,
                    config_type: e.config_type.code(),
                    documentation: e.documentation,
                })
                .collect();
            ok(filtered(entries, &r.configuration_keys, opts))
        }
        RESOURCE_BROKER => {
            if r.resource_name.is_empty() {
                // The cluster-wide dynamic defaults: klamm has none.
                return ok(Vec::new());
            }
            match r.resource_name.parse::<i32>() {
                Err(_) => invalid_request(format!("Broker id must be an integer, but it is: {}", r.resource_name)),
                Ok(id) if id != node_id => invalid_request(format!(
                    "Unexpected broker id, expected {node_id} or empty string, but received {}",
                    r.resource_name
                )),
                Ok(_) => {
                    let entries = broker
                        .describe()
                        .into_iter()
                        .map(|e| Entry {
                            name: e.name,
                            value: e.value,
                            read_only: e.read_only,
                            source: e.source.code(),
                            is_sensitive: e.is_sensitive,
                            synonyms: e.synonyms,
                            config_type: e.config_type.code(),
                            documentation: e.documentation,
                        })
                        .collect();
                    ok(filtered(entries, &r.configuration_keys, opts))
                }
            }
        }
        RESOURCE_BROKER_LOGGER => {
            if r.resource_name.is_empty() {
                return invalid_request("Broker id must not be empty".into());
            }
            match r.resource_name.parse::<i32>() {
                Err(_) => invalid_request(format!("Broker id must be an integer, but it is: {}", r.resource_name)),
                Ok(id) if id != node_id => {
                    invalid_request(format!("Unexpected broker id, expected {node_id} but received {}", r.resource_name))
                }
                // klamm has no log4j loggers to list.
                Ok(_) => ok(Vec::new()),
            }
        }
        RESOURCE_GROUP => {
            if r.resource_name.is_empty() {
                return invalid_request("Group name must not be empty".into());
            }
            let image = ctx.broker.controller.image();
            let empty = std::collections::BTreeMap::new();
            let overrides = image.group_config(&r.resource_name).unwrap_or(&empty);
            let entries = crate::group::group_config::describe(broker, overrides)
                .into_iter()
                .map(|e| Entry {
                    name: e.name,
                    value: Some(e.value),
                    read_only: false,
                    source: e.source.code(),
                    is_sensitive: false,
                    synonyms: e.synonyms,
                    config_type: e.config_type.code(),
                    documentation: e.documentation,
                })
                .collect();
            ok(filtered(entries, &r.configuration_keys, opts))
        }
        other => invalid_request(format!("Unsupported resource type: {}", resource_type_name(other))),
    }
}

/// Kafka's `ConfigResource.Type` names, for messages.
fn resource_type_name(code: i8) -> String {
    match code {
        16 => "CLIENT_METRICS".into(),
        32 => "GROUP".into(),
        _ => "UNKNOWN".into(),
    }
}

pub async fn handle(ctx: &RequestContext<'_>, req: DescribeConfigsRequest) -> DescribeConfigsResponse {
    let opts = Options { synonyms: req.include_synonyms, documentation: req.include_documentation && ctx.version() >= 3 };
    let results = req
        .resources
        .iter()
        .map(|r| {
            let mut result = describe_resource(ctx, r, opts);
            result.resource_type = r.resource_type;
            result.resource_name = r.resource_name.clone();
            result
        })
        .collect();
    DescribeConfigsResponse { throttle_time_ms: 0, results }
}
