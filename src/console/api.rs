//! The console's read-only JSON API (`GET /api/...`, documented in
//! `docs/console.md`): answers built from the broker's own state (the
//! controller's metadata image, each partition log's offsets and sizes,
//! the group coordinators and the committed offsets), never through a
//! Kafka client. Partition logs are locked one at a time, briefly, on a
//! blocking thread; record reads take a `ReadPlan` under the lock and read
//! the pages after it.

use std::collections::HashMap;
use std::sync::Arc;

use base64::Engine as _;
use serde_json::{json, Value};

use super::Console;
use crate::broker::Broker;
use crate::config::ConfigSource;
use crate::http::Request;
use crate::records::compression::decompress;
use crate::records::{BatchError, BatchIter, CompressionType, RecordIter, Validation};
use crate::types::{Offset, TopicPartition};

/// Records one messages request returns by default.
pub const DEFAULT_MESSAGES_LIMIT: usize = 50;
/// Most records one messages request returns.
pub const MAX_MESSAGES_LIMIT: usize = 500;
/// Bytes of a key, value or header value shown; the rest is cut
/// (`"truncated": true`, `"size"` tells the whole length).
pub const MAX_SHOWN_BYTES: usize = 64 * 1024;
/// Bytes asked of the log per read, and reads per messages request.
const READ_MAX_BYTES: u32 = 1024 * 1024;
const MAX_READS_PER_REQUEST: usize = 64;
/// Largest records region a compressed batch may decompress to.
const MAX_DECOMPRESSED_BATCH_BYTES: usize = 64 * 1024 * 1024;
/// Most members and committed offsets listed on a group's page.
const MAX_LISTED_MEMBERS: usize = 10_000;

/// An API failure: the HTTP status, Kafka's error name, a message.
#[derive(Debug, PartialEq, Eq)]
pub struct ApiError {
    pub status: u16,
    pub error: &'static str,
    pub message: String,
}

impl ApiError {
    pub fn new(status: u16, error: &'static str, message: impl Into<String>) -> ApiError {
        ApiError { status, error, message: message.into() }
    }

    fn not_found(what: impl Into<String>) -> ApiError {
        ApiError::new(404, "NOT_FOUND", what)
    }

    fn unknown_topic(name: &str) -> ApiError {
        ApiError::new(404, "UNKNOWN_TOPIC_OR_PARTITION", format!("topic '{name}' does not exist"))
    }
}

/// Routes `GET /api/<path>`.
pub async fn get(console: &Console, path: &[String], req: &Request) -> Result<Value, ApiError> {
    let parts: Vec<&str> = path.iter().map(String::as_str).collect();
    let broker = console.broker();
    match parts.as_slice() {
        ["overview"] => Ok(overview(console).await),
        ["topics"] => Ok(topics(broker).await),
        ["topics", name] => topic(broker, name).await,
        ["topics", name, "messages"] => messages(broker, name, req).await,
        ["groups"] => Ok(groups(broker).await),
        ["groups", id] => group(broker, id).await,
        _ => Err(ApiError::not_found(format!("no API at /api/{}", path.join("/")))),
    }
}

/// One partition log's figures, read under its lock.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PartitionStat {
    pub tp: TopicPartition,
    pub start_offset: i64,
    pub end_offset: i64,
    pub size_bytes: u64,
    pub segments: usize,
}

/// Figures of the partitions of `topic` (all when `None`), in topic and
/// partition order. Blocking (it takes the logs' locks).
fn partition_stats(broker: &Broker, topic: Option<&str>) -> Vec<PartitionStat> {
    let partitions = match topic {
        None => broker.replicas.all(),
        Some(name) => {
            let image = broker.controller.image();
            let count = image.topic(name).map_or(0, |t| t.partitions);
            (0..count).filter_map(|p| broker.replicas.get(&TopicPartition::new(name, p))).collect()
        }
    };
    let mut stats: Vec<PartitionStat> = partitions
        .iter()
        .map(|p| {
            let log = p.log.lock().unwrap_or_else(|e| e.into_inner());
            PartitionStat {
                tp: p.tp.clone(),
                start_offset: log.log_start_offset().0,
                end_offset: log.log_end_offset().0,
                size_bytes: log.size_bytes(),
                segments: log.segment_count(),
            }
        })
        .collect();
    stats.sort_by(|a, b| (&a.tp.topic, a.tp.partition).cmp(&(&b.tp.topic, b.tp.partition)));
    stats
}

async fn stats_of(broker: &Arc<Broker>, topic: Option<&str>) -> Vec<PartitionStat> {
    let b = broker.clone();
    let topic = topic.map(str::to_string);
    tokio::task::spawn_blocking(move || partition_stats(&b, topic.as_deref())).await.unwrap_or_default()
}

async fn overview(console: &Console) -> Value {
    let broker = console.broker();
    let stats = stats_of(broker, None).await;
    let image = broker.controller.image();
    let settings = broker.settings();
    let dir = settings.log_dir.clone();
    let space = tokio::task::spawn_blocking(move || crate::platform::volume_space(&dir).ok()).await.ok().flatten();
    let listeners: Vec<Value> = settings
        .listeners
        .iter()
        .enumerate()
        .map(|(i, l)| {
            let bound = console.listeners().get(i).copied();
            let port = if l.advertised_port == 0 { bound.map_or(0, |a| a.port()) } else { l.advertised_port };
            json!({
                "name": l.name,
                "bind": bound.map_or_else(|| l.bind.to_string(), |a| a.to_string()),
                "advertised": format!("{}:{port}", l.advertised_host),
                "security_protocol": match (l.sasl.is_some(), l.tls.is_some()) {
                    (false, false) => "PLAINTEXT",
                    (false, true) => "SSL",
                    (true, false) => "SASL_PLAINTEXT",
                    (true, true) => "SASL_SSL",
                },
            })
        })
        .collect();
    let (records_in, bytes_in, records_out, bytes_out) = broker.metrics.topic_totals();
    json!({
        "broker_id": settings.node_id,
        "cluster_id": broker.controller.cluster_id(),
        "version": env!("CARGO_PKG_VERSION"),
        "uptime_ms": u64::try_from(broker.metrics.uptime().as_millis()).unwrap_or(u64::MAX),
        "listeners": listeners,
        "http_listener": console.http_addr().map(|a| a.to_string()),
        "log_dir": settings.log_dir.display().to_string(),
        "log_dir_total_bytes": space.as_ref().map(|s| s.total_bytes),
        "log_dir_usable_bytes": space.as_ref().map(|s| s.usable_bytes),
        "log_size_bytes": stats.iter().map(|s| s.size_bytes).sum::<u64>(),
        "topics": image.topics.len(),
        "partitions": image.total_partitions,
        "groups": group_ids(broker).await.len(),
        "produced_records_total": records_in,
        "produced_bytes_total": bytes_in,
        "fetched_records_total": records_out,
        "fetched_bytes_total": bytes_out,
        "connections_open": broker.metrics.connections_open.load(std::sync::atomic::Ordering::Relaxed).max(0),
        "write_enabled": console.write_enabled(),
    })
}

/// A topic config's effective value: its override, else the broker's default.
fn topic_setting(
    defaults: &crate::config::topic::TopicConfig,
    overrides: &std::collections::BTreeMap<String, String>,
    name: &str,
) -> Option<String> {
    overrides.get(name).cloned().or_else(|| defaults.value_of(name).and_then(|v| v.to_kafka_string()))
}

async fn topics(broker: &Arc<Broker>) -> Value {
    let stats = stats_of(broker, None).await;
    let image = broker.controller.image();
    let defaults = broker.config().topic_defaults();
    let mut by_topic: HashMap<&str, (i64, u64, usize)> = HashMap::new();
    for s in &stats {
        let e = by_topic.entry(s.tp.topic.as_str()).or_default();
        e.0 += (s.end_offset - s.start_offset).max(0);
        e.1 += s.size_bytes;
        e.2 += s.segments;
    }
    let list: Vec<Value> = image
        .topics
        .values()
        .map(|t| {
            let (records, size, segments) = by_topic.get(t.name.as_str()).copied().unwrap_or_default();
            json!({
                "name": t.name,
                "id": t.id.to_string(),
                "internal": t.is_internal(),
                "partitions": t.partitions,
                "records": records,
                "size_bytes": size,
                "segments": segments,
                "retention_ms": topic_setting(&defaults, &t.configs, "retention.ms"),
                "cleanup_policy": topic_setting(&defaults, &t.configs, "cleanup.policy"),
            })
        })
        .collect();
    json!({ "topics": list })
}

/// Kafka's name of a config source (`ConfigEntry.ConfigSource`).
fn source_name(s: ConfigSource) -> &'static str {
    match s {
        ConfigSource::Unknown => "UNKNOWN",
        ConfigSource::DynamicTopicConfig => "DYNAMIC_TOPIC_CONFIG",
        ConfigSource::DynamicBrokerConfig => "DYNAMIC_BROKER_CONFIG",
        ConfigSource::DynamicDefaultBrokerConfig => "DYNAMIC_DEFAULT_BROKER_CONFIG",
        ConfigSource::StaticBrokerConfig => "STATIC_BROKER_CONFIG",
        ConfigSource::DefaultConfig => "DEFAULT_CONFIG",
        ConfigSource::DynamicBrokerLoggerConfig => "DYNAMIC_BROKER_LOGGER_CONFIG",
        ConfigSource::ClientMetricsConfig => "CLIENT_METRICS_CONFIG",
        ConfigSource::GroupConfig => "GROUP_CONFIG",
    }
}

async fn topic(broker: &Arc<Broker>, name: &str) -> Result<Value, ApiError> {
    let image = broker.controller.image();
    let Some(t) = image.topic(name).cloned() else { return Err(ApiError::unknown_topic(name)) };
    let stats = stats_of(broker, Some(name)).await;
    let partitions: Vec<Value> = stats
        .iter()
        .map(|s| {
            json!({
                "partition": s.tp.partition,
                "start_offset": s.start_offset,
                "end_offset": s.end_offset,
                "records": (s.end_offset - s.start_offset).max(0),
                "size_bytes": s.size_bytes,
                "segments": s.segments,
            })
        })
        .collect();
    let configs: Vec<Value> = crate::config::topic::effective_topic_configs(broker.config(), &t.configs)
        .into_iter()
        .map(|e| {
            json!({
                "name": e.name,
                "value": if e.is_sensitive { None } else { e.value },
                "source": source_name(e.source),
                "sensitive": e.is_sensitive,
            })
        })
        .collect();
    Ok(json!({
        "name": t.name,
        "id": t.id.to_string(),
        "internal": t.is_internal(),
        "leader_epoch": t.leader_epoch,
        "partitions": partitions,
        "configs": configs,
    }))
}

/// Bytes as JSON: `{"encoding": "text", "data": ...}` when UTF-8, else
/// base64; at most [`MAX_SHOWN_BYTES`], with `truncated` and `size`.
pub fn shown_bytes(bytes: Option<&[u8]>) -> Value {
    let Some(bytes) = bytes else { return Value::Null };
    let cut = &bytes[..bytes.len().min(MAX_SHOWN_BYTES)];
    let text = match std::str::from_utf8(cut) {
        Ok(s) => Some(s),
        // Cut inside a character: what precedes it is text.
        Err(e) if e.error_len().is_none() && cut.len() < bytes.len() => std::str::from_utf8(&cut[..e.valid_up_to()]).ok(),
        Err(_) => None,
    };
    let truncated = cut.len() < bytes.len();
    match text {
        Some(s) => json!({ "encoding": "text", "data": s, "size": bytes.len(), "truncated": truncated }),
        None => json!({
            "encoding": "base64",
            "data": base64::engine::general_purpose::STANDARD.encode(cut),
            "size": bytes.len(),
            "truncated": truncated,
        }),
    }
}

/// Where a messages request starts: `offset=N`, or `from=beginning|end`
/// (`end`: the last `limit` records).
fn start_offset(req: &Request, start: i64, end: i64, limit: usize) -> Result<i64, ApiError> {
    if let Some(o) = req.param("offset").filter(|o| !o.is_empty()) {
        let o: i64 = o.parse().map_err(|_| ApiError::new(400, "INVALID_REQUEST", format!("offset '{o}' is not a number")))?;
        return Ok(o.clamp(start, end));
    }
    match req.param("from").as_deref() {
        None | Some("" | "beginning") => Ok(start),
        Some("end") => Ok((end - limit as i64).max(start)),
        Some(other) => Err(ApiError::new(400, "INVALID_REQUEST", format!("from '{other}': expected beginning or end"))),
    }
}

async fn messages(broker: &Arc<Broker>, name: &str, req: &Request) -> Result<Value, ApiError> {
    let bad = |m: String| ApiError::new(400, "INVALID_REQUEST", m);
    let partition: i32 = match req.param("partition").filter(|p| !p.is_empty()) {
        None => 0,
        Some(p) => p.parse().map_err(|_| bad(format!("partition '{p}' is not a number")))?,
    };
    let limit: usize = match req.param("limit").filter(|l| !l.is_empty()) {
        None => DEFAULT_MESSAGES_LIMIT,
        Some(l) => l.parse::<usize>().map_err(|_| bad(format!("limit '{l}' is not a number")))?.clamp(1, MAX_MESSAGES_LIMIT),
    };
    if broker.controller.image().topic(name).is_none() {
        return Err(ApiError::unknown_topic(name));
    }
    let tp = TopicPartition::new(name, partition);
    let Some(p) = broker.partition(&tp).await else {
        return Err(ApiError::new(404, "UNKNOWN_TOPIC_OR_PARTITION", format!("topic '{name}' has no partition {partition}")));
    };
    let (start, end) = {
        let log = p.log.lock().unwrap_or_else(|e| e.into_inner());
        (log.log_start_offset().0, log.log_end_offset().0)
    };
    let from = start_offset(req, start, end, limit)?;
    let read = tokio::task::spawn_blocking(move || read_records(&p, from, limit))
        .await
        .map_err(|e| ApiError::new(500, "UNKNOWN_SERVER_ERROR", e.to_string()))??;
    Ok(json!({
        "topic": name,
        "partition": partition,
        "start_offset": start,
        "end_offset": end,
        "from_offset": from,
        "next_offset": read.next_offset,
        "records": read.records,
    }))
}

struct ReadRecords {
    records: Vec<Value>,
    next_offset: i64,
}

/// Up to `limit` records at or after `from` (control batches skipped).
/// Blocking: the lock is taken only to plan each read.
fn read_records(p: &crate::replica::Partition, from: i64, limit: usize) -> Result<ReadRecords, ApiError> {
    let storage = |e: crate::storage::StorageError| match e {
        crate::storage::StorageError::OffsetOutOfRange { .. } => ApiError::new(409, "OFFSET_OUT_OF_RANGE", e.to_string()),
        e => ApiError::new(500, "KAFKA_STORAGE_ERROR", e.to_string()),
    };
    let corrupt = |offset: i64, e: String| ApiError::new(500, "CORRUPT_MESSAGE", format!("offset {offset}: {e}"));
    let mut records = Vec::new();
    let mut pos = from;
    for _ in 0..MAX_READS_PER_REQUEST {
        let plan = {
            let log = p.log.lock().unwrap_or_else(|e| e.into_inner());
            if pos >= log.log_end_offset().0 {
                break;
            }
            log.read_plan(Offset(pos), READ_MAX_BYTES, None).map_err(storage)?
        };
        let info = plan.execute().map_err(storage)?;
        if info.records.is_empty() {
            break;
        }
        let before = pos;
        for batch in BatchIter::new(&info.records, Validation::Structure) {
            let batch = match batch {
                Ok(b) => b,
                Err(BatchError::Truncated { .. }) => break,
                Err(e) => return Err(corrupt(pos, e.to_string())),
            };
            let next = batch.next_offset().0;
            if next <= pos {
                continue;
            }
            if batch.is_control() {
                pos = next;
                continue;
            }
            let decompressed;
            let iter = match batch.compression() {
                Some(CompressionType::None) => RecordIter::new(&batch),
                Some(codec) => {
                    decompressed = decompress(codec, batch.records_bytes(), MAX_DECOMPRESSED_BATCH_BYTES)
                        .map_err(|e| corrupt(batch.base_offset().0, e.to_string()))?;
                    RecordIter::over(&decompressed, batch.records_count())
                }
                None => return Err(corrupt(batch.base_offset().0, format!("unknown codec {}", batch.compression_id()))),
            };
            let timestamp_type = match batch.timestamp_type() {
                crate::records::TimestampType::CreateTime => "CreateTime",
                crate::records::TimestampType::LogAppendTime => "LogAppendTime",
            };
            for record in iter {
                let record = record.map_err(|e| corrupt(batch.base_offset().0, e.to_string()))?;
                let offset = record.offset(&batch).0;
                if offset < pos {
                    continue;
                }
                if records.len() >= limit {
                    return Ok(ReadRecords { records, next_offset: pos });
                }
                let headers: Vec<Value> = record
                    .headers()
                    .map(|(k, v)| json!({ "key": String::from_utf8_lossy(k), "value": shown_bytes(v) }))
                    .collect();
                records.push(json!({
                    "partition": p.tp.partition,
                    "offset": offset,
                    "timestamp": record.timestamp(&batch).0,
                    "timestamp_type": timestamp_type,
                    "key": shown_bytes(record.key),
                    "value": shown_bytes(record.value),
                    "headers": headers,
                }));
                pos = offset + 1;
            }
            pos = pos.max(next);
            if records.len() >= limit {
                return Ok(ReadRecords { records, next_offset: pos });
            }
        }
        if pos == before {
            break;
        }
    }
    Ok(ReadRecords { records, next_offset: pos })
}

/// A listed group: id, type, protocol type, state.
struct GroupRow {
    id: String,
    group_type: &'static str,
    protocol_type: String,
    state: String,
}

/// Every group: the classic coordinator's, the KIP-848 ones, and groups
/// that only have committed offsets.
async fn group_ids(broker: &Arc<Broker>) -> Vec<GroupRow> {
    let mut rows: Vec<GroupRow> = broker
        .groups
        .list_groups(&[], &[])
        .await
        .groups
        .into_iter()
        .map(|g| GroupRow { id: g.group_id, group_type: "classic", protocol_type: g.protocol_type, state: g.group_state })
        .collect();
    for (id, state) in broker.consumer_groups.list() {
        rows.push(GroupRow { id, group_type: "consumer", protocol_type: "consumer".into(), state: state.as_str().into() });
    }
    let known: std::collections::HashSet<String> = rows.iter().map(|r| r.id.clone()).collect();
    for (id, meta) in broker.groups.store().group_ids() {
        if !known.contains(&id) {
            let protocol_type = meta.and_then(|m| m.protocol_type).unwrap_or_default();
            rows.push(GroupRow { id, group_type: "classic", protocol_type, state: "Empty".into() });
        }
    }
    rows.sort_by(|a, b| a.id.cmp(&b.id));
    rows.dedup_by(|a, b| a.id == b.id);
    rows
}

/// End offsets of every partition, by topic and partition.
fn end_offsets(stats: &[PartitionStat]) -> HashMap<(&str, i32), i64> {
    stats.iter().map(|s| ((s.tp.topic.as_str(), s.tp.partition), s.end_offset)).collect()
}

/// `(committed offsets, total lag)` of a group; a partition without a log
/// has no lag.
fn committed_offsets(broker: &Broker, group: &str, ends: &HashMap<(&str, i32), i64>) -> (Vec<Value>, i64) {
    broker.groups.store().with_group(group, |g| {
        let Some(g) = g else { return (Vec::new(), 0) };
        let mut total = 0i64;
        let mut rows = Vec::new();
        for (topic, parts) in &g.offsets {
            for (partition, c) in parts {
                let end = ends.get(&(topic.as_str(), *partition)).copied();
                let lag = end.map(|e| (e - c.offset.0).max(0));
                total += lag.unwrap_or(0);
                if rows.len() < MAX_LISTED_MEMBERS {
                    rows.push(json!({
                        "topic": topic,
                        "partition": partition,
                        "committed_offset": c.offset.0,
                        "end_offset": end,
                        "lag": lag,
                        "metadata": c.metadata,
                        "commit_timestamp": c.commit_timestamp.0,
                    }));
                }
            }
        }
        (rows, total)
    })
}

async fn groups(broker: &Arc<Broker>) -> Value {
    let rows = group_ids(broker).await;
    let stats = stats_of(broker, None).await;
    let ends = end_offsets(&stats);
    let classic: Vec<String> = rows.iter().filter(|r| r.group_type == "classic").map(|r| r.id.clone()).collect();
    let members: HashMap<String, usize> =
        broker.groups.describe_groups(&classic).await.into_iter().map(|d| (d.group_id, d.members.len())).collect();
    let list: Vec<Value> = rows
        .iter()
        .map(|r| {
            let (offsets, lag) = committed_offsets(broker, &r.id, &ends);
            let member_count = match r.group_type {
                "consumer" => broker.consumer_groups.snapshot(&r.id).map_or(0, |g| g.members.len()),
                _ => members.get(&r.id).copied().unwrap_or(0),
            };
            json!({
                "group_id": r.id,
                "type": r.group_type,
                "protocol_type": r.protocol_type,
                "state": r.state,
                "members": member_count,
                "partitions": offsets.len(),
                "total_lag": lag,
            })
        })
        .collect();
    json!({ "groups": list })
}

/// The partitions of a classic consumer's assignment
/// (`ConsumerProtocolAssignment`: version, [topic, [partition]], ...);
/// `None` if it does not parse.
pub fn parse_assignment(b: &[u8]) -> Option<Vec<(String, Vec<i32>)>> {
    fn take<'a>(b: &mut &'a [u8], n: usize) -> Option<&'a [u8]> {
        if b.len() < n {
            return None;
        }
        let (head, rest) = b.split_at(n);
        *b = rest;
        Some(head)
    }
    fn i16_(b: &mut &[u8]) -> Option<i16> {
        take(b, 2).map(|s| i16::from_be_bytes([s[0], s[1]]))
    }
    fn i32_(b: &mut &[u8]) -> Option<i32> {
        take(b, 4).map(|s| i32::from_be_bytes([s[0], s[1], s[2], s[3]]))
    }
    let mut b = b;
    if b.is_empty() {
        return Some(Vec::new());
    }
    let _version = i16_(&mut b)?;
    let topics = usize::try_from(i32_(&mut b)?).ok()?;
    // Each topic takes at least 6 bytes: the count cannot outgrow the input.
    if topics > b.len() / 6 {
        return None;
    }
    let mut out = Vec::with_capacity(topics);
    for _ in 0..topics {
        let len = usize::try_from(i16_(&mut b)?).ok()?;
        let name = String::from_utf8_lossy(take(&mut b, len)?).into_owned();
        let n = usize::try_from(i32_(&mut b)?).ok()?;
        if n > b.len() / 4 {
            return None;
        }
        let parts = (0..n).map(|_| i32_(&mut b)).collect::<Option<Vec<i32>>>()?;
        out.push((name, parts));
    }
    Some(out)
}

fn assignment_json(topics: Vec<(String, Vec<i32>)>) -> Value {
    Value::Array(topics.into_iter().map(|(t, p)| json!({ "topic": t, "partitions": p })).collect())
}

async fn group(broker: &Arc<Broker>, id: &str) -> Result<Value, ApiError> {
    let row = group_ids(broker).await.into_iter().find(|r| r.id == id);
    let Some(row) = row else {
        return Err(ApiError::new(404, "GROUP_ID_NOT_FOUND", format!("group '{id}' does not exist")));
    };
    let stats = stats_of(broker, None).await;
    let ends = end_offsets(&stats);
    let (offsets, total_lag) = committed_offsets(broker, id, &ends);
    let (protocol, members) = if row.group_type == "consumer" {
        let image = broker.controller.image();
        let g = broker.consumer_groups.snapshot(id);
        let members: Vec<Value> = g
            .map(|g| {
                g.members
                    .values()
                    .take(MAX_LISTED_MEMBERS)
                    .map(|m| {
                        let assigned = m
                            .assigned
                            .iter()
                            .map(|(tid, ps)| {
                                let name = image.topic_by_id(tid).map_or_else(|| tid.to_string(), |t| t.name.clone());
                                (name, ps.iter().copied().collect())
                            })
                            .collect();
                        json!({
                            "member_id": m.member_id,
                            "instance_id": m.instance_id,
                            "client_id": m.client_id,
                            "client_host": m.client_host,
                            "assignment": assignment_json(assigned),
                        })
                    })
                    .collect()
            })
            .unwrap_or_default();
        (String::new(), members)
    } else {
        let d = broker.groups.describe_groups(&[id.to_string()]).await.pop();
        let protocol = d.as_ref().map(|d| d.protocol_data.clone()).unwrap_or_default();
        let members = d
            .map(|d| {
                d.members
                    .into_iter()
                    .take(MAX_LISTED_MEMBERS)
                    .map(|m| {
                        json!({
                            "member_id": m.member_id,
                            "instance_id": m.group_instance_id,
                            "client_id": m.client_id,
                            "client_host": m.client_host,
                            "assignment": parse_assignment(&m.member_assignment).map(assignment_json),
                        })
                    })
                    .collect()
            })
            .unwrap_or_default();
        (protocol, members)
    };
    Ok(json!({
        "group_id": row.id,
        "type": row.group_type,
        "protocol_type": row.protocol_type,
        "protocol": protocol,
        "state": row.state,
        "members": members,
        "offsets": offsets,
        "total_lag": total_lag,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bytes_are_text_or_base64() {
        assert_eq!(shown_bytes(None), Value::Null);
        let v = shown_bytes(Some(b"<script>alert(1)</script>"));
        assert_eq!(v["encoding"], "text");
        assert_eq!(v["data"], "<script>alert(1)</script>");
        assert_eq!(v["truncated"], false);
        let v = shown_bytes(Some(&[0xff, 0x00, 0x01]));
        assert_eq!(v["encoding"], "base64");
        assert_eq!(v["data"], "/wAB");
        assert_eq!(v["size"], 3);
    }

    #[test]
    fn long_values_are_cut_at_a_character() {
        let mut long = "a".repeat(MAX_SHOWN_BYTES - 1);
        long.push('\u{2713}');
        let v = shown_bytes(Some(long.as_bytes()));
        assert_eq!(v["encoding"], "text");
        assert_eq!(v["truncated"], true);
        assert_eq!(v["data"].as_str().unwrap().len(), MAX_SHOWN_BYTES - 1);
        assert_eq!(v["size"], MAX_SHOWN_BYTES + 2);
    }

    #[test]
    fn assignments() {
        let mut b = vec![0, 1, 0, 0, 0, 1, 0, 1, b't', 0, 0, 0, 2, 0, 0, 0, 0, 0, 0, 0, 3];
        assert_eq!(parse_assignment(&b), Some(vec![("t".to_string(), vec![0, 3])]));
        b.extend_from_slice(&[0xff, 0xff, 0xff, 0xff]); // user data: null
        assert_eq!(parse_assignment(&b).unwrap().len(), 1);
        assert_eq!(parse_assignment(&[]), Some(Vec::new()));
        assert_eq!(parse_assignment(&[0, 1, 0x7f, 0xff, 0xff, 0xff]), None);
        assert_eq!(parse_assignment(&b[..10]), None);
    }

    #[test]
    fn messages_start() {
        let req = |q: &str| Request { query: q.into(), ..Request::default() };
        assert_eq!(start_offset(&req(""), 5, 100, 10), Ok(5));
        assert_eq!(start_offset(&req("from=end"), 5, 100, 10), Ok(90));
        assert_eq!(start_offset(&req("from=end"), 95, 100, 10), Ok(95));
        assert_eq!(start_offset(&req("offset=7&from=end"), 5, 100, 10), Ok(7));
        assert_eq!(start_offset(&req("offset=1000"), 5, 100, 10), Ok(100));
        assert_eq!(start_offset(&req("offset=-3"), 5, 100, 10), Ok(5));
        assert_eq!(start_offset(&req("offset=x"), 5, 100, 10).unwrap_err().status, 400);
        assert_eq!(start_offset(&req("from=middle"), 5, 100, 10).unwrap_err().status, 400);
    }
}
