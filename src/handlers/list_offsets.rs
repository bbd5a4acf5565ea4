//! ListOffsets (key 2): the offset for a timestamp, or one of the special
//! targets: -1 latest (the log end; the last stable offset is the same
//! without transactions), -2 earliest (the log start), -3 the record with
//! the largest timestamp (v7+), -4 earliest local (v8+; no tiered storage,
//! so the log start), -5 latest tiered (v9+, KIP-1005) and -6 earliest
//! pending upload (v11+, KIP-1023): nothing is ever tiered, so no offset
//! for either, as Kafka answers for a topic without remote storage.

use std::collections::HashSet;
use std::sync::Arc;

use super::{ApiSpec, RequestContext};
use crate::protocol::messages::list_offsets_request::ListOffsetsRequest;
use crate::protocol::messages::list_offsets_response::{
    ListOffsetsPartitionResponse, ListOffsetsResponse, ListOffsetsTopicResponse,
};
use crate::protocol::ErrorCode;
use crate::replica::{check_leader_epoch, Partition};
use crate::security::authorizer::{AclOperation, ResourceType};
use crate::storage::{StorageError, TimeSearch};
use crate::types::{TimestampMs, TopicPartition};

pub const SPEC: ApiSpec = ApiSpec { api_key: 2, name: "ListOffsets", min_version: 1, max_version: 11 };

const LATEST: i64 = -1;
const EARLIEST: i64 = -2;
const MAX_TIMESTAMP: i64 = -3;
const EARLIEST_LOCAL: i64 = -4;
const LATEST_TIERED: i64 = -5;
const EARLIEST_PENDING_UPLOAD: i64 = -6;

struct Query {
    partition: Result<Arc<Partition>, ErrorCode>,
    index: i32,
    current_leader_epoch: i32,
    timestamp: i64,
    /// READ_COMMITTED: "latest" is the last stable offset.
    read_committed: bool,
}

pub async fn handle(ctx: &RequestContext<'_>, req: ListOffsetsRequest) -> ListOffsetsResponse {
    let mut seen = HashSet::new();
    let mut topics = Vec::with_capacity(req.topics.len());
    for t in req.topics {
        // As Kafka: DESCRIBE on the topic, before its existence.
        let denied = !ctx.authorized(AclOperation::Describe, ResourceType::Topic, &t.name);
        let mut queries = Vec::with_capacity(t.partitions.len());
        for p in t.partitions {
            let tp = TopicPartition::new(t.name.clone(), p.partition_index);
            let partition = if denied {
                Err(ErrorCode::TopicAuthorizationFailed)
            } else if !seen.insert(tp.clone()) {
                Err(ErrorCode::InvalidRequest)
            } else {
                ctx.broker.partition(&tp).await.ok_or(ErrorCode::UnknownTopicOrPartition)
            };
            queries.push(Query {
                partition,
                index: p.partition_index,
                current_leader_epoch: p.current_leader_epoch,
                timestamp: p.timestamp,
                read_committed: req.isolation_level == 1,
            });
        }
        topics.push((t.name, queries));
    }
    let responses = tokio::task::spawn_blocking(move || {
        topics
            .into_iter()
            .map(|(name, queries)| ListOffsetsTopicResponse {
                name,
                partitions: queries.iter().map(answer).collect(),
            })
            .collect()
    })
    .await
    .unwrap_or_default();
    ListOffsetsResponse { throttle_time_ms: 0, topics: responses }
}

/// What the partition lock yields for one query.
enum Found {
    /// (timestamp, offset, leader epoch), known without a search.
    At(i64, i64, i32),
    Nothing,
    Search(Result<TimeSearch, StorageError>),
}

/// Answers one partition (blocking: may search the time index).
fn answer(q: &Query) -> ListOffsetsPartitionResponse {
    let mut r = ListOffsetsPartitionResponse {
        partition_index: q.index,
        timestamp: -1,
        offset: -1,
        leader_epoch: -1,
        ..Default::default()
    };
    let partition = match &q.partition {
        Ok(p) => p,
        Err(code) => {
            r.error_code = code.code();
            return r;
        }
    };
    let log = partition.log.lock().unwrap_or_else(|e| e.into_inner());
    let epoch = log.leader_epoch();
    if let Err(code) = check_leader_epoch(q.current_leader_epoch, epoch) {
        r.error_code = code.code();
        return r;
    }
    // Special targets are answered under the lock; a search by time is
    // prepared under it and run after it is released, so faulting a cold
    // segment in blocks no producer of this partition.
    let found = match q.timestamp {
        LATEST if q.read_committed => Found::At(-1, log.last_stable_offset().0, epoch),
        LATEST => Found::At(-1, log.log_end_offset().0, epoch),
        EARLIEST | EARLIEST_LOCAL => Found::At(-1, log.log_start_offset().0, epoch),
        LATEST_TIERED | EARLIEST_PENDING_UPLOAD => Found::Nothing,
        MAX_TIMESTAMP => Found::Search(log.max_timestamp_search()),
        ts if ts >= 0 => Found::Search(log.offset_for_timestamp_search(TimestampMs(ts))),
        _ => {
            r.error_code = ErrorCode::InvalidRequest.code();
            return r;
        }
    };
    drop(log);
    let found = match found {
        Found::At(timestamp, offset, leader_epoch) => Ok(Some((timestamp, offset, leader_epoch))),
        Found::Nothing => Ok(None),
        Found::Search(search) => search
            .and_then(TimeSearch::run)
            .map(|t| t.map(|t| (t.timestamp.0, t.offset.0, t.leader_epoch))),
    };
    match found {
        Ok(Some((timestamp, offset, leader_epoch))) => {
            r.timestamp = timestamp;
            r.offset = offset;
            r.leader_epoch = leader_epoch;
        }
        Ok(None) => {}
        Err(e) => r.error_code = e.error_code(),
    }
    r
}
