//! The console's actions (`POST /api/...`, JSON bodies), reached only when
//! `console.write.enabled=true` and the request passed the CSRF, Host and
//! Origin checks (`Console::check_write`): create a topic, delete a topic,
//! produce a record, reset an empty group's committed offsets. Each runs the
//! same checks as the Kafka API doing the same (topic names and configs as
//! CreateTopics checks them, the batch through Produce's append path,
//! `kafka-consumer-groups --reset-offsets`' guard that the group is empty).

use std::collections::BTreeMap;

use bytes::Bytes;
use serde::Deserialize;
use serde_json::{json, Value};

use super::api::ApiError;
use super::Console;
use crate::controller::{topic_name, NewTopic};
use crate::group::messages::{OffsetCommitPartition, OffsetCommitRequest, OffsetCommitTopic};
use crate::http::Request;
use crate::records::BatchBuilder;
use crate::types::{TimestampMs, TopicPartition};

/// Most headers of a record produced from the console.
const MAX_HEADERS: usize = 64;

/// Routes `POST /api/<path>`.
pub async fn post(console: &Console, path: &[String], req: &Request) -> Result<Value, ApiError> {
    let parts: Vec<&str> = path.iter().map(String::as_str).collect();
    match parts.as_slice() {
        ["topics"] => create_topic(console, body(req)?).await,
        ["topics", name, "delete"] => delete_topic(console, name).await,
        ["topics", name, "messages"] => produce(console, name, body(req)?).await,
        ["groups", id, "reset-offsets"] => reset_offsets(console, id, body(req)?).await,
        _ => Err(ApiError::new(404, "NOT_FOUND", format!("no action at /api/{}", path.join("/")))),
    }
}

fn body<T: for<'de> Deserialize<'de>>(req: &Request) -> Result<T, ApiError> {
    let b: &[u8] = if req.body.is_empty() { b"{}" } else { &req.body };
    serde_json::from_slice(b).map_err(|e| ApiError::new(400, "INVALID_REQUEST", format!("bad JSON body: {e}")))
}

/// An error with Kafka's name for `code`.
fn kafka_error(code: i16, message: Option<String>) -> ApiError {
    let status = match code {
        3 | 69 => 404,
        36 => 409,
        _ => 400,
    };
    let name = crate::cli::errors::error_name(code);
    ApiError::new(status, name, message.unwrap_or_else(|| crate::cli::errors::error_description(code).to_string()))
}

#[derive(Deserialize)]
struct CreateTopic {
    name: String,
    #[serde(default)]
    partitions: Option<i32>,
    #[serde(default)]
    configs: BTreeMap<String, String>,
}

async fn create_topic(console: &Console, t: CreateTopic) -> Result<Value, ApiError> {
    let broker = console.broker();
    topic_name::validate(&t.name).map_err(|m| kafka_error(17, Some(m)))?;
    if broker.controller.image().topic(&t.name).is_some() {
        return Err(kafka_error(36, Some(format!("Topic '{}' already exists.", t.name))));
    }
    crate::config::topic::kafka_check_topic_configs(broker.config(), &t.configs).map_err(|m| kafka_error(40, Some(m)))?;
    let new = NewTopic {
        name: t.name,
        partitions: t.partitions.unwrap_or(-1),
        replication_factor: -1,
        assignments: Vec::new(),
        configs: t.configs,
    };
    let info = broker.create_topic(new, false).await.map_err(|e| kafka_error(e.code.code(), Some(e.message)))?;
    Ok(json!({ "name": info.name, "id": info.id.to_string(), "partitions": info.partitions }))
}

async fn delete_topic(console: &Console, name: &str) -> Result<Value, ApiError> {
    let broker = console.broker();
    if !broker.settings().delete_topic_enable {
        return Err(kafka_error(73, Some("Topic deletion is disabled.".into())));
    }
    if topic_name::is_internal(name) {
        return Err(kafka_error(29, Some(format!("Topic '{name}' is internal."))));
    }
    let deleted = broker.delete_topic(name).await.map_err(|e| kafka_error(e.code.code(), Some(e.message)))?;
    Ok(json!({ "name": deleted.name, "deleted": true }))
}

#[derive(Deserialize)]
struct Header {
    key: String,
    value: Option<String>,
}

#[derive(Deserialize)]
struct Produce {
    #[serde(default)]
    partition: i32,
    key: Option<String>,
    value: Option<String>,
    #[serde(default)]
    headers: Vec<Header>,
}

async fn produce(console: &Console, name: &str, r: Produce) -> Result<Value, ApiError> {
    let broker = console.broker().clone();
    if r.headers.len() > MAX_HEADERS {
        return Err(ApiError::new(400, "INVALID_REQUEST", format!("at most {MAX_HEADERS} headers")));
    }
    let Some(topic) = broker.controller.image().topic(name).cloned() else {
        return Err(kafka_error(3, Some(format!("topic '{name}' does not exist"))));
    };
    if topic.is_internal() {
        return Err(kafka_error(29, Some(format!("Topic '{name}' is internal."))));
    }
    let Some(partition) = broker.partition(&TopicPartition::new(name, r.partition)).await else {
        return Err(kafka_error(3, Some(format!("topic '{name}' has no partition {}", r.partition))));
    };
    let now = TimestampMs::now();
    let headers: Vec<(&str, Option<&[u8]>)> =
        r.headers.iter().map(|h| (h.key.as_str(), h.value.as_deref().map(str::as_bytes))).collect();
    let mut b = BatchBuilder::new(0, now);
    b.append(now, r.key.as_deref().map(str::as_bytes), r.value.as_deref().map(str::as_bytes), &headers);
    let batch = Bytes::from(b.build());
    let index = r.partition;
    let topic_name = name.to_string();
    let offset = tokio::task::spawn_blocking(move || {
        crate::handlers::produce::append_one(&broker, &topic_name, topic.id, partition, batch)
    })
    .await
    .map_err(|e| ApiError::new(500, "UNKNOWN_SERVER_ERROR", e.to_string()))?
    .map_err(|(code, m)| kafka_error(code, m))?;
    Ok(json!({ "topic": name, "partition": index, "offset": offset }))
}

#[derive(Deserialize)]
struct Reset {
    /// `earliest`, `latest` or `offset`.
    to: String,
    offset: Option<i64>,
    /// Only this topic's committed partitions; all the group's when unset.
    topic: Option<String>,
}

async fn reset_offsets(console: &Console, id: &str, r: Reset) -> Result<Value, ApiError> {
    let broker = console.broker();
    // kafka-consumer-groups' guard: only a group without members.
    let state = if broker.consumer_groups.contains(id) {
        broker.consumer_groups.snapshot(id).map(|g| (g.state().as_str().to_string(), g.members.len()))
    } else {
        broker.groups.describe_groups(&[id.to_string()]).await.pop().map(|d| (d.group_state, d.members.len()))
    };
    let store = broker.groups.store().clone();
    let committed: Vec<(String, i32)> = store.with_group(id, |g| {
        g.map(|g| {
            g.offsets.iter().flat_map(|(t, ps)| ps.keys().map(move |p| (t.clone(), *p))).collect()
        })
        .unwrap_or_default()
    });
    if let Some((state, members)) = &state {
        if *members > 0 || !(state == "Empty" || state == "Dead") {
            return Err(ApiError::new(
                409,
                "NON_EMPTY_GROUP",
                format!("Assignments can only be reset if the group '{id}' is inactive, but the current state is {state}."),
            ));
        }
    }
    let targets: Vec<(String, i32)> =
        committed.into_iter().filter(|(t, _)| r.topic.as_deref().is_none_or(|want| want == t)).collect();
    if targets.is_empty() {
        return Err(ApiError::new(404, "GROUP_ID_NOT_FOUND", format!("group '{id}' has no committed offsets to reset")));
    }
    let mut topics: BTreeMap<String, Vec<OffsetCommitPartition>> = BTreeMap::new();
    for (topic, partition) in &targets {
        let Some(p) = broker.replicas.get(&TopicPartition::new(topic.clone(), *partition)) else { continue };
        let (start, end) = {
            let log = p.log.lock().unwrap_or_else(|e| e.into_inner());
            (log.log_start_offset().0, log.log_end_offset().0)
        };
        let offset = match (r.to.as_str(), r.offset) {
            ("earliest", _) => start,
            ("latest", _) => end,
            ("offset", Some(o)) => o.clamp(start, end),
            _ => return Err(ApiError::new(400, "INVALID_REQUEST", "to: earliest, latest, or offset with an offset")),
        };
        topics.entry(topic.clone()).or_default().push(OffsetCommitPartition {
            partition_index: *partition,
            committed_offset: offset,
            committed_leader_epoch: -1,
            committed_metadata: Some(String::new()),
        });
    }
    let req = OffsetCommitRequest {
        group_id: id.to_string(),
        generation_id_or_member_epoch: -1,
        member_id: String::new(),
        group_instance_id: None,
        retention_time_ms: -1,
        topics: topics.into_iter().map(|(name, partitions)| OffsetCommitTopic { name, partitions }).collect(),
        api_version: 8,
    };
    let response = if broker.consumer_groups.contains(id) {
        broker.groups.commit_offsets_unmanaged(req, None).await
    } else {
        broker.groups.offset_commit(req).await
    };
    let mut reset = Vec::new();
    for t in response.topics {
        for p in t.partitions {
            if p.error_code != 0 {
                return Err(kafka_error(p.error_code, None));
            }
            reset.push(json!({ "topic": t.name, "partition": p.partition_index }));
        }
    }
    Ok(json!({ "group_id": id, "reset": reset }))
}
