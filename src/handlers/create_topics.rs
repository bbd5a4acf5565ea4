//! CreateTopics (key 19): validates names, configs, partition counts,
//! replication factor (only 1 exists on a single node) and manual
//! assignments as Kafka's controller does and in its order (name, existence,
//! null configs, config values, then partitions), then records the topics
//! durably. As Kafka's controller, it refuses a whole request with
//! POLICY_VIOLATION when it asks for more than 10,000 partitions in all, or
//! when its valid topics would take more than 10,000 metadata records (a
//! topic, its configs, its partitions). On success (v5+) every topic config is returned with its value
//! and source, as Kafka does; the Java AdminClient reads them.

use std::collections::{BTreeMap, HashSet};

use super::{ApiSpec, RequestContext};
use crate::config::{effective_topic_configs, kafka_check_topic_configs, BrokerConfig};
use crate::controller::{
    topic_name, NewTopic, TopicInfo, EXCESSIVE_BATCH_MESSAGE, EXCESSIVE_PARTITIONS_MESSAGE, MAX_PARTITIONS_PER_REQUEST,
    MAX_RECORDS_PER_USER_OP,
};
use crate::protocol::messages::create_topics_request::{CreatableTopic, CreateTopicsRequest};
use crate::protocol::messages::create_topics_response::{
    CreatableTopicConfigs, CreatableTopicResult, CreateTopicsResponse,
};
use crate::protocol::ErrorCode;
use crate::security::authorizer::{AclOperation, ResourceType};

pub const SPEC: ApiSpec = ApiSpec { api_key: 19, name: "CreateTopics", min_version: 2, max_version: 7 };

pub async fn handle(ctx: &RequestContext<'_>, req: CreateTopicsRequest) -> CreateTopicsResponse {
    let mut seen = HashSet::new();
    let duplicates: HashSet<String> =
        req.topics.iter().filter(|t| !seen.insert(t.name.clone())).map(|t| t.name.clone()).collect();
    // Kafka's first check: the partitions asked for in all.
    let default_partitions = ctx.broker.settings().num_partitions as i64;
    let asked: i64 = req
        .topics
        .iter()
        .filter(|t| !duplicates.contains(&t.name))
        .map(|t| match (t.assignments.is_empty(), t.num_partitions) {
            (false, _) => t.assignments.len() as i64,
            (true, -1) => default_partitions,
            (true, n) => n.max(0) as i64,
        })
        .sum();
    if asked > MAX_PARTITIONS_PER_REQUEST {
        let topics = req
            .topics
            .into_iter()
            .map(|t| CreatableTopicResult {
                name: t.name,
                error_code: ErrorCode::PolicyViolation.code(),
                error_message: Some(EXCESSIVE_PARTITIONS_MESSAGE.into()),
                configs: None,
                ..Default::default()
            })
            .collect();
        return CreateTopicsResponse { throttle_time_ms: 0, topics };
    }
    // Then every topic is checked (nothing written), counting the metadata
    // records the valid ones would take; then, if the request is within
    // Kafka's bound, the valid topics are created.
    let mut results = Vec::with_capacity(req.topics.len());
    let mut valid: Vec<(usize, NewTopic, TopicInfo)> = Vec::new();
    let mut records = 0usize;
    // As Kafka: CREATE on the cluster, or else on each topic (checked
    // after duplicates, before anything else).
    let may_create_all = !ctx.authorizing() || ctx.authorized_cluster(AclOperation::Create);
    for t in req.topics {
        let mut result = CreatableTopicResult { name: t.name.clone(), configs: None, ..Default::default() };
        let denied = !may_create_all
            && !duplicates.contains(&t.name)
            && !ctx.authorized(AclOperation::Create, ResourceType::Topic, &t.name);
        let checked = if denied {
            Err((ErrorCode::TopicAuthorizationFailed, "Authorization failed.".to_string()))
        } else {
            check(ctx, &duplicates, t).await
        };
        match checked {
            Err((code, msg)) => {
                result.error_code = code.code();
                result.error_message = Some(msg);
            }
            Ok(new_topic) => match ctx.broker.create_topic(new_topic.clone(), true).await {
                Ok(info) => {
                    records = records
                        .saturating_add(1 + new_topic.configs.len())
                        .saturating_add(info.partitions.max(0) as usize);
                    valid.push((results.len(), new_topic, info));
                }
                Err(e) => {
                    result.error_code = e.code.code();
                    result.error_message = Some(e.message);
                }
            },
        }
        results.push(result);
    }
    if records > MAX_RECORDS_PER_USER_OP {
        for r in &mut results {
            r.error_code = ErrorCode::PolicyViolation.code();
            r.error_message = Some(EXCESSIVE_BATCH_MESSAGE.into());
        }
        return CreateTopicsResponse { throttle_time_ms: 0, topics: results };
    }
    // The valid topics are created together: one metadata write, one fsync.
    let created: Vec<Result<TopicInfo, crate::controller::ControllerError>> = if req.validate_only {
        valid.iter().map(|(_, _, validated)| Ok(validated.clone())).collect()
    } else {
        ctx.broker.create_topics(valid.iter().map(|(_, t, _)| t.clone()).collect()).await
    };
    for ((i, _, _), created) in valid.into_iter().zip(created) {
        let result = &mut results[i];
        match created {
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
    }
    CreateTopicsResponse { throttle_time_ms: 0, topics: results }
}

/// The checks made before the controller's, in Kafka's order: duplicate in
/// the request, name, existence, null configs, config values.
async fn check(
    ctx: &RequestContext<'_>,
    duplicates: &HashSet<String>,
    t: CreatableTopic,
) -> Result<NewTopic, (ErrorCode, String)> {
    if duplicates.contains(&t.name) {
        return Err((ErrorCode::InvalidRequest, "Duplicate topic name.".into()));
    }
    topic_name::validate(&t.name).map_err(|msg| (ErrorCode::InvalidTopicException, msg))?;
    if ctx.broker.controller.image().topic(&t.name).is_some() {
        return Err((ErrorCode::TopicAlreadyExists, format!("Topic '{}' already exists.", t.name)));
    }
    let nulls: Vec<&str> = t.configs.iter().filter(|c| c.value.is_none()).map(|c| c.name.as_str()).collect();
    if !nulls.is_empty() {
        return Err((ErrorCode::InvalidConfig, format!("Null value not supported for topic configs: {}", nulls.join(","))));
    }
    let configs: BTreeMap<String, String> = t.configs.into_iter().filter_map(|c| Some((c.name, c.value?))).collect();
    kafka_check_topic_configs(ctx.broker.config(), &configs).map_err(|msg| (ErrorCode::InvalidConfig, msg))?;
    Ok(NewTopic {
        name: t.name,
        partitions: t.num_partitions,
        replication_factor: t.replication_factor,
        assignments: t.assignments.into_iter().map(|a| (a.partition_index, a.broker_ids)).collect(),
        configs,
    })
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
