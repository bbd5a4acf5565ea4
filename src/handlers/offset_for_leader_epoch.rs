//! OffsetForLeaderEpoch (key 23): the end offset of a leader epoch, which
//! consumers use to detect log truncation after a leader change.
//!
//! This node has led every partition since it was created, and a topic's
//! leader epoch only changes through the controller, so each log is one
//! epoch (the current one) starting at its log start offset. Answers follow
//! Kafka's leader-epoch cache: the current epoch ends at the log end; an
//! older epoch ends where the current one starts; a newer one is unknown.
//! A log adopted from Apache Kafka also answers from the epoch history
//! Kafka left in it (`PartitionLog::end_offset_for_epoch`).

use super::{ApiSpec, RequestContext};
use crate::protocol::messages::offset_for_leader_epoch_request::OffsetForLeaderEpochRequest;
use crate::protocol::messages::offset_for_leader_epoch_response::{
    EpochEndOffset, OffsetForLeaderEpochResponse, OffsetForLeaderTopicResult,
};
use crate::protocol::ErrorCode;
use crate::replica::check_leader_epoch;
use crate::types::TopicPartition;

pub const SPEC: ApiSpec = ApiSpec { api_key: 23, name: "OffsetForLeaderEpoch", min_version: 2, max_version: 4 };

pub async fn handle(ctx: &RequestContext<'_>, req: OffsetForLeaderEpochRequest) -> OffsetForLeaderEpochResponse {
    let mut topics = Vec::with_capacity(req.topics.len());
    for t in req.topics {
        let mut partitions = Vec::with_capacity(t.partitions.len());
        for p in t.partitions {
            let mut r = EpochEndOffset { partition: p.partition, leader_epoch: -1, end_offset: -1, ..Default::default() };
            match ctx.broker.partition(&TopicPartition::new(t.topic.clone(), p.partition)).await {
                None => r.error_code = ErrorCode::UnknownTopicOrPartition.code(),
                Some(part) => {
                    // Reads in-memory state only: no disk access.
                    let log = part.log.lock().unwrap_or_else(|e| e.into_inner());
                    let epoch = log.leader_epoch();
                    if let Err(code) = check_leader_epoch(p.current_leader_epoch, epoch) {
                        r.error_code = code.code();
                    } else if let Some((leader_epoch, end_offset)) = log.end_offset_for_epoch(p.leader_epoch) {
                        r.leader_epoch = leader_epoch;
                        r.end_offset = end_offset.0;
                    }
                }
            }
            partitions.push(r);
        }
        topics.push(OffsetForLeaderTopicResult { topic: t.topic, partitions });
    }
    OffsetForLeaderEpochResponse { throttle_time_ms: 0, topics }
}
