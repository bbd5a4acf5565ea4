//! Fetch (key 1): reads record batches from partition logs, waiting up to
//! `max_wait_ms` for `min_bytes` to accumulate (long poll).
//!
//! Fetch sessions (KIP-227, from v7) are kept by
//! [`crate::fetch_session`]: a full fetch opens one, incremental fetches
//! list only changed partitions and are answered with only the partitions
//! that have news. Topic ids replace names from v13. Response sizes follow KIP-74: the
//! first batch of the first non-empty partition is returned whole even when
//! it exceeds `max_bytes` or `partition_max_bytes`, so a consumer can always
//! make progress; later partitions only get what fits. Record bytes are
//! slices of the memory-mapped segments: they reach the socket without a
//! copy. With a single replica the high watermark is the log end offset
//! and, without transactions, so is the last stable offset.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;

use super::{ApiSpec, RequestContext};
use crate::protocol::messages::fetch_request::FetchRequest;
use crate::protocol::messages::fetch_response::{AbortedTransaction, FetchResponse, FetchableTopicResponse, PartitionData};
use crate::metrics::count_records;
use crate::fetch_session::{FetchContext, FetchParams, PartitionKey, Summary, TopicKey, NO_SESSION};
use crate::protocol::{ErrorCode, Uuid};
use crate::replica::{check_leader_epoch, FetchWait, Partition};
use crate::storage::StorageError;
use crate::security::authorizer::{AclOperation, ResourceType};
use crate::types::{Offset, TopicPartition};

pub const SPEC: ApiSpec = ApiSpec { api_key: 1, name: "Fetch", min_version: 4, max_version: 18 };

/// The longest a fetch may wait, whatever the client asks.
const MAX_WAIT_MS: i32 = 60_000;
/// `isolation_level` READ_COMMITTED.
const READ_COMMITTED: i8 = 1;

/// One requested partition, resolved.
struct Wanted {
    partition: Option<Arc<Partition>>,
    /// Set when the partition cannot be read at all.
    error: ErrorCode,
    index: i32,
    fetch_offset: i64,
    current_leader_epoch: i32,
    partition_max_bytes: i32,
}

struct WantedTopic {
    name: String,
    id: Uuid,
    partitions: Vec<Wanted>,
}

pub async fn handle(ctx: &RequestContext<'_>, req: FetchRequest) -> FetchResponse {
    let version = ctx.version();
    let uses_ids = version >= 13;
    let topic_key = |name: &str, id: Uuid| if uses_ids { TopicKey::Id(id) } else { TopicKey::Name(name.to_string()) };
    let mut requested = Vec::new();
    for t in &req.topics {
        for p in &t.partitions {
            let params = FetchParams {
                fetch_offset: p.fetch_offset,
                current_leader_epoch: p.current_leader_epoch,
                partition_max_bytes: p.partition_max_bytes,
            };
            requested.push((PartitionKey { topic: topic_key(&t.topic, t.topic_id), partition: p.partition }, params));
        }
    }
    let forgotten: Vec<PartitionKey> = req
        .forgotten_topics_data
        .iter()
        .flat_map(|t| {
            let topic = topic_key(&t.topic, t.topic_id);
            t.partitions.iter().map(move |&partition| PartitionKey { topic: topic.clone(), partition })
        })
        .collect();
    let sessions = &ctx.broker.fetch_sessions;
    let context =
        sessions.new_context(version, req.session_id, req.session_epoch, &requested, &forgotten, Instant::now());
    let to_read = match &context {
        FetchContext::Error(code) => return top_level_error(*code),
        FetchContext::Sessionless | FetchContext::Full => requested,
        FetchContext::Incremental { partitions, .. } => partitions.clone(),
    };

    let topics = Arc::new(resolve(ctx, &to_read).await);
    let read_committed = req.isolation_level == READ_COMMITTED;
    let mut responses = long_poll(ctx, &topics, &req, read_committed).await;

    let summaries: Vec<Summary> = responses.iter().flat_map(|t| t.partitions.iter().map(summary)).collect();
    let session_id = match context {
        FetchContext::Error(_) | FetchContext::Sessionless => NO_SESSION,
        FetchContext::Full => {
            let parts = to_read.into_iter().zip(summaries).map(|((k, p), s)| (k, p, s)).collect();
            sessions.create(version, parts, Instant::now())
        }
        FetchContext::Incremental { session_id, request_epoch, .. } => {
            match sessions.select(session_id, request_epoch, &summaries) {
                Ok(include) => {
                    let mut include = include.into_iter();
                    for t in &mut responses {
                        t.partitions.retain(|_| include.next().unwrap_or(true));
                    }
                    responses.retain(|t| !t.partitions.is_empty());
                    session_id
                }
                Err(code) => return top_level_error(code),
            }
        }
    };
    count_out(ctx, &responses);
    FetchResponse { throttle_time_ms: 0, error_code: 0, session_id, responses, node_endpoints: Vec::new() }
}

/// What the session cache needs to know of one partition's answer.
fn summary(p: &PartitionData) -> Summary {
    Summary {
        has_records: p.records.as_ref().is_some_and(|r| !r.is_empty()),
        high_watermark: p.high_watermark,
        log_start_offset: p.log_start_offset,
        error: p.error_code != 0,
    }
}

/// Looks up the partitions to read, grouping consecutive partitions of a
/// topic as the response groups them.
async fn resolve(ctx: &RequestContext<'_>, to_read: &[(PartitionKey, FetchParams)]) -> Vec<WantedTopic> {
    let image = ctx.broker.controller.image();
    let mut topics: Vec<(TopicKey, WantedTopic)> = Vec::new();
    let mut last_checked: Option<(String, bool)> = None;
    for (key, params) in to_read {
        let info = match &key.topic {
            TopicKey::Id(id) => image.topic_by_id(id),
            TopicKey::Name(name) => image.topic(name),
        };
        // As Kafka: READ on the topic, checked before its existence (an
        // unknown id is UNKNOWN_TOPIC_ID first). One check per topic.
        let denied = ctx.authorizing() && {
            let name = match (info, &key.topic) {
                (Some(i), _) => Some(i.name.as_str()),
                (None, TopicKey::Name(n)) => Some(n.as_str()),
                (None, TopicKey::Id(_)) => None,
            };
            match (name, &last_checked) {
                (None, _) => false,
                (Some(n), Some((last, denied))) if last == n => *denied,
                (Some(n), _) => {
                    let denied = !ctx.authorized(AclOperation::Read, ResourceType::Topic, n);
                    last_checked = Some((n.to_string(), denied));
                    denied
                }
            }
        };
        let (partition, error) = match info {
            None if matches!(key.topic, TopicKey::Id(_)) => (None, ErrorCode::UnknownTopicId),
            _ if denied => (None, ErrorCode::TopicAuthorizationFailed),
            None => (None, ErrorCode::UnknownTopicOrPartition),
            Some(i) => match ctx.broker.partition(&TopicPartition::new(i.name.clone(), key.partition)).await {
                Some(part) => (Some(part), ErrorCode::None),
                None => (None, ErrorCode::UnknownTopicOrPartition),
            },
        };
        let wanted = Wanted {
            partition,
            error,
            index: key.partition,
            fetch_offset: params.fetch_offset,
            current_leader_epoch: params.current_leader_epoch,
            partition_max_bytes: params.partition_max_bytes,
        };
        match topics.last_mut() {
            Some((k, t)) if *k == key.topic => t.partitions.push(wanted),
            _ => {
                let (name, id) = match (info, &key.topic) {
                    (Some(i), _) => (i.name.clone(), i.id),
                    (None, TopicKey::Id(id)) => (String::new(), *id),
                    (None, TopicKey::Name(name)) => (name.clone(), Uuid::default()),
                };
                topics.push((key.topic.clone(), WantedTopic { name, id, partitions: vec![wanted] }));
            }
        }
    }
    topics.into_iter().map(|(_, t)| t).collect()
}

/// Reads until `min_bytes` are there, a partition fails, or `max_wait_ms`
/// passes (woken by appends in between).
async fn long_poll(
    ctx: &RequestContext<'_>,
    topics: &Arc<Vec<WantedTopic>>,
    req: &FetchRequest,
    read_committed: bool,
) -> Vec<FetchableTopicResponse> {
    // The broker's fetch.max.bytes caps what the client asks for, as in Kafka.
    let broker_max = i32::try_from(ctx.broker.config().fetch_max_bytes).unwrap_or(i32::MAX);
    let max_bytes = req.max_bytes.max(0).min(broker_max);
    let min_bytes = req.min_bytes.max(0) as usize;
    let wait = Duration::from_millis(req.max_wait_ms.clamp(0, MAX_WAIT_MS) as u64);
    let deadline = tokio::time::Instant::now() + wait;
    let read = |topics: Arc<Vec<WantedTopic>>| async move {
        tokio::task::spawn_blocking(move || read_all(&topics, max_bytes, read_committed)).await
    };
    // Registered before the first read with every partition read, so an
    // append between a read and the wait is not missed; appends to other
    // partitions do not wake this fetch.
    let wait_for_appends = (!wait.is_zero()).then(|| {
        FetchWait::new(topics.iter().flat_map(|t| t.partitions.iter().filter_map(|w| w.partition.clone())).collect())
    });
    loop {
        let (responses, bytes, errors) = match read(topics.clone()).await {
            Ok(r) => r,
            Err(e) => {
                tracing::error!(error = %e, "fetch task failed");
                return failed_read(topics);
            }
        };
        let Some(waiting) = wait_for_appends.as_ref() else { return responses };
        if bytes >= min_bytes || errors || tokio::time::Instant::now() >= deadline {
            return responses;
        }
        let woken = tokio::select! {
            r = tokio::time::timeout_at(deadline, waiting.appended()) => r.is_ok(),
            _ = ctx.broker.shutting_down().cancelled() => false,
        };
        if !woken {
            // Timed out (or shutting down): one last read answers with
            // whatever is there.
            return match read(topics.clone()).await {
                Ok((r, _, _)) => r,
                Err(_) => failed_read(topics),
            };
        }
    }
}

/// Every partition answered UNKNOWN_SERVER_ERROR (the read task failed).
fn failed_read(topics: &[WantedTopic]) -> Vec<FetchableTopicResponse> {
    topics
        .iter()
        .map(|t| FetchableTopicResponse {
            topic: t.name.clone(),
            topic_id: t.id,
            partitions: t
                .partitions
                .iter()
                .map(|w| PartitionData {
                    partition_index: w.index,
                    error_code: ErrorCode::UnknownServerError.code(),
                    high_watermark: -1,
                    last_stable_offset: -1,
                    log_start_offset: -1,
                    records: Some(Bytes::new()),
                    ..Default::default()
                })
                .collect(),
        })
        .collect()
}

/// Adds what is about to be sent to the per-topic counters.
fn count_out(ctx: &RequestContext<'_>, responses: &[FetchableTopicResponse]) {
    for t in responses {
        let (bytes, records) = t
            .partitions
            .iter()
            .filter_map(|p| p.records.as_ref())
            .fold((0u64, 0u64), |(b, r), rec| (b + rec.len() as u64, r + count_records(rec)));
        if bytes > 0 {
            let c = ctx.broker.metrics.topic(&t.topic);
            c.bytes_out.fetch_add(bytes, Ordering::Relaxed);
            c.records_out.fetch_add(records, Ordering::Relaxed);
        }
    }
}

fn top_level_error(code: ErrorCode) -> FetchResponse {
    FetchResponse { throttle_time_ms: 0, error_code: code.code(), session_id: 0, responses: Vec::new(), node_endpoints: Vec::new() }
}

/// Reads every partition (blocking: index lookups fault pages in). Returns
/// the responses, the record bytes gathered and whether any partition
/// failed.
fn read_all(topics: &[WantedTopic], max_bytes: i32, read_committed: bool) -> (Vec<FetchableTopicResponse>, usize, bool) {
    let mut remaining = max_bytes as usize;
    let mut total = 0usize;
    let mut errors = false;
    let mut responses = Vec::with_capacity(topics.len());
    for t in topics {
        let mut partitions = Vec::with_capacity(t.partitions.len());
        for w in &t.partitions {
            let (data, error) = read_one(w, &mut remaining, total == 0, read_committed);
            if error {
                errors = true;
            }
            total += data.records.as_ref().map_or(0, Bytes::len);
            partitions.push(data);
        }
        responses.push(FetchableTopicResponse { topic: t.name.clone(), topic_id: t.id, partitions });
    }
    (responses, total, errors)
}

fn read_one(w: &Wanted, remaining: &mut usize, first: bool, read_committed: bool) -> (PartitionData, bool) {
    let mut data = PartitionData {
        partition_index: w.index,
        error_code: w.error.code(),
        high_watermark: -1,
        last_stable_offset: -1,
        log_start_offset: -1,
        aborted_transactions: if read_committed { Some(Vec::new()) } else { None },
        records: Some(Bytes::new()),
        ..Default::default()
    };
    let Some(partition) = &w.partition else {
        return (data, true);
    };
    let log = partition.log.lock().unwrap_or_else(|e| e.into_inner());
    if let Err(code) = check_leader_epoch(w.current_leader_epoch, log.leader_epoch()) {
        data.error_code = code.code();
        return (data, true);
    }
    let end = log.log_end_offset().0;
    let lso = log.last_stable_offset();
    data.high_watermark = end;
    data.last_stable_offset = lso.0;
    data.log_start_offset = log.log_start_offset().0;
    let limit = (w.partition_max_bytes.max(0) as usize).min(*remaining);
    if limit == 0 && !first {
        return (data, false);
    }
    // READ_COMMITTED reads stop at the last stable offset and name the
    // aborted transactions they may contain.
    let upper = read_committed.then_some(lso);
    let plan = log.read_plan(Offset(w.fetch_offset), limit.min(u32::MAX as usize) as u32, upper);
    let aborted = (read_committed && plan.is_ok()).then(|| log.aborted_transactions(Offset(w.fetch_offset), lso));
    // The disk is read (the pages faulted in) after the partition lock is
    // released; a failed read is KAFKA_STORAGE_ERROR for this partition.
    drop(log);
    match plan.and_then(crate::storage::ReadPlan::execute) {
        Ok(read) => {
            if let Some(aborted) = aborted.filter(|_| !read.records.is_empty()) {
                data.aborted_transactions = Some(
                    aborted
                        .into_iter()
                        .map(|a| AbortedTransaction { producer_id: a.producer_id, first_offset: a.first_offset.0 })
                        .collect(),
                );
            }
            let mut records = read.records;
            // Only the very first batch of the response may exceed a limit.
            if records.len() > limit && !first {
                records = Bytes::new();
            }
            *remaining = remaining.saturating_sub(records.len());
            data.records = Some(records);
            (data, false)
        }
        Err(e) => {
            if matches!(e, StorageError::Io { .. }) {
                tracing::warn!(partition = %partition.tp, error = %e, "reading the log failed");
            }
            data.error_code = match e {
                StorageError::OffsetOutOfRange { .. } => ErrorCode::OffsetOutOfRange.code(),
                ref other => other.error_code(),
            };
            (data, true)
        }
    }
}
