//! DeleteRecords (key 21): advances partitions' log start offsets (what
//! `kafka-delete-records` does). Offset -1 means the high watermark; an
//! offset beyond it, or negative, is OFFSET_OUT_OF_RANGE. Whole segments
//! below the new start are deleted at once; reads below it are out of range
//! from now on.

use super::{ApiSpec, RequestContext};
use crate::protocol::messages::delete_records_request::DeleteRecordsRequest;
use crate::protocol::messages::delete_records_response::{
    DeleteRecordsPartitionResult, DeleteRecordsResponse, DeleteRecordsTopicResult,
};
use crate::protocol::ErrorCode;
use crate::types::{Offset, TopicPartition};

pub const SPEC: ApiSpec = ApiSpec { api_key: 21, name: "DeleteRecords", min_version: 0, max_version: 2 };

/// `offset = -1`: up to the high watermark.
const HIGH_WATERMARK: i64 = -1;

pub async fn handle(ctx: &RequestContext<'_>, req: DeleteRecordsRequest) -> DeleteRecordsResponse {
    let mut work = Vec::with_capacity(req.topics.len());
    for t in req.topics {
        let mut parts = Vec::with_capacity(t.partitions.len());
        for p in t.partitions {
            let partition = ctx.broker.partition(&TopicPartition::new(t.name.clone(), p.partition_index)).await;
            parts.push((p.partition_index, p.offset, partition));
        }
        work.push((t.name, parts));
    }
    // Deleting segments is file I/O: off the async workers.
    let topics = tokio::task::spawn_blocking(move || {
        work.into_iter()
            .map(|(name, parts)| DeleteRecordsTopicResult {
                name,
                partitions: parts
                    .into_iter()
                    .map(|(index, offset, partition)| {
                        let mut r = DeleteRecordsPartitionResult { partition_index: index, low_watermark: -1, error_code: 0 };
                        let Some(partition) = partition else {
                            r.error_code = ErrorCode::UnknownTopicOrPartition.code();
                            return r;
                        };
                        let mut log = partition.log.lock().unwrap_or_else(|e| e.into_inner());
                        let target = if offset == HIGH_WATERMARK { log.log_end_offset() } else { Offset(offset) };
                        match log.delete_records_before(target) {
                            Ok(start) => r.low_watermark = start.0,
                            Err(e) => r.error_code = e.error_code(),
                        }
                        r
                    })
                    .collect(),
            })
            .collect()
    })
    .await
    .unwrap_or_default();
    DeleteRecordsResponse { throttle_time_ms: 0, topics }
}
