//! CreateTopics (key 19): validates names, partition counts, replication
//! factor (only 1 exists on a single node) and manual assignments as
//! Kafka's controller does, then records the topics durably.

use std::collections::{BTreeMap, HashSet};

use super::{ApiSpec, RequestContext};
use crate::controller::NewTopic;
use crate::protocol::messages::create_topics_request::CreateTopicsRequest;
use crate::protocol::messages::create_topics_response::{CreatableTopicResult, CreateTopicsResponse};
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
        let mut configs = BTreeMap::new();
        let mut config_error = None;
        for c in t.configs {
            match c.value {
                Some(v) => match ctx.broker.validate_topic_config(&c.name, &v) {
                    Ok(()) => {
                        configs.insert(c.name, v);
                    }
                    Err(msg) => {
                        config_error = Some(msg);
                        break;
                    }
                },
                None => {
                    config_error = Some(format!("Null value not supported for topic configs: {}", c.name));
                    break;
                }
            }
        }
        if let Some(msg) = config_error {
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
                result.configs = Some(Vec::new());
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
