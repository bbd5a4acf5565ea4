//! CreateTopics (key 19): validates names, configs, partition counts,
//! replication factor (only 1 exists on a single node) and manual
//! assignments as Kafka's controller does and in its order (name, existence,
//! null configs, config values, then partitions), then records the topics
//! durably. On success (v5+) every topic config is returned with its value
//! and source, as Kafka does; the Java AdminClient reads them.

use std::collections::{BTreeMap, HashSet};

use super::{ApiSpec, RequestContext};
use crate::config::{effective_topic_configs, kafka_check_topic_configs, BrokerConfig};
use crate::controller::{topic_name, NewTopic};
use crate::protocol::messages::create_topics_request::CreateTopicsRequest;
use crate::protocol::messages::create_topics_response::{
    CreatableTopicConfigs, CreatableTopicResult, CreateTopicsResponse,
};
use crate::protocol::ErrorCode;

pub const SPEC: ApiSpec = ApiSpec { api_key: 19, name: "CreateTopics", min_version: 2, max_version: 7 };

pub async fn handle(ctx: &RequestContext<'_>, req: CreateTopicsRequest) -> CreateTopicsResponse {
    let mut seen = HashSet::new();
    let duplicates: HashSet<String> =
        req.topics.iter().filter(|t| !seen.insert(t.name.clone())).map(|t| t.name.clone()).collect();
    let mut results = Vec::with_capacity(req.topics.len());
    for t in req.topics {
        let mut result = CreatableTopicResult { name: t.name.clone(), configs: None, ..Default::default() };
        if duplicates.contains(&t.name) {
            result.error_code = ErrorCode::InvalidRequest.code();
            result.error_message = Some("Duplicate topic name.".into());
            results.push(result);
            continue;
        }
        if let Err(msg) = topic_name::validate(&t.name) {
            result.error_code = ErrorCode::InvalidTopicException.code();
            result.error_message = Some(msg);
            results.push(result);
            continue;
        }
        if ctx.broker.controller.image().topic(&t.name).is_some() {
            result.error_code = ErrorCode::TopicAlreadyExists.code();
            result.error_message = Some(format!("Topic '{}' already exists.", t.name));
            results.push(result);
            continue;
        }
        let nulls: Vec<&str> = t.configs.iter().filter(|c| c.value.is_none()).map(|c| c.name.as_str()).collect();
        if !nulls.is_empty() {
            result.error_code = ErrorCode::InvalidConfig.code();
            result.error_message = Some(format!("Null value not supported for topic configs: {}", nulls.join(",")));
            results.push(result);
            continue;
        }
        let configs: BTreeMap<String, String> =
            t.configs.into_iter().filter_map(|c| Some((c.name, c.value?))).collect();
        if let Err(msg) = kafka_check_topic_configs(ctx.broker.config(), &configs) {
            result.error_code = ErrorCode::InvalidConfig.code();
            result.error_message = Some(msg);
            results.push(result);
            continue;
        }
        let new_topic = NewTopic {
            name: t.name,
            partitions: t.num_partitions,
            replication_factor: t.replication_factor,
            assignments: t.assignments.into_iter().map(|a| (a.partition_index, a.broker_ids)).collect(),
            configs,
        };
        match ctx.broker.create_topic(new_topic, req.validate_only).await {
            Ok(info) => {
                result.topic_id = info.id;
                result.num_partitions = info.partitions;
                result.replication_factor = 1;
                // The Java AdminClient reads this list on success (v5+).
                result.configs = Some(created_configs(ctx.broker.config(), &info.configs));
            }
            Err(e) => {
                result.error_code = e.code.code();
                result.error_message = Some(e.message);
            }
        }
        results.push(result);
    }
    CreateTopicsResponse { throttle_time_ms: 0, topics: results }
}

/// Every topic config of a new topic with `overrides`, sorted by name, as
/// Kafka's controller returns them.
fn created_configs(broker: &BrokerConfig, overrides: &BTreeMap<String, String>) -> Vec<CreatableTopicConfigs> {
    effective_topic_configs(broker, overrides)
        .into_iter()
        .map(|e| CreatableTopicConfigs {
            name: e.name.to_string(),
            value: if e.is_sensitive { None } else { e.value },
            read_only: e.read_only,
            config_source: e.source.code(),
            is_sensitive: e.is_sensitive,
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn created_configs_list_every_topic_config_with_sources() {
        let b = BrokerConfig::default();
        let overrides: BTreeMap<String, String> = [("retention.ms".to_string(), "1234".to_string())].into();
        let configs = created_configs(&b, &overrides);
        assert_eq!(configs.len(), crate::config::TOPIC_CONFIG_DEFS.len());
        assert!(configs.windows(2).all(|w| w[0].name < w[1].name));
        let ret = configs.iter().find(|c| c.name == "retention.ms").unwrap();
        assert_eq!(ret.value.as_deref(), Some("1234"));
        assert_eq!(ret.config_source, 1);
        let seg = configs.iter().find(|c| c.name == "segment.bytes").unwrap();
        assert_eq!(seg.value.as_deref(), Some("1073741824"));
        assert_eq!(seg.config_source, 5);
        assert!(configs.iter().all(|c| !c.read_only && !c.is_sensitive));
    }
}
