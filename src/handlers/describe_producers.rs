//! DescribeProducers (key 61): the producers a partition's log tracks
//! (what `kafka-transactions describe-producers` and `find-hanging`
//! read): producer id and epoch, last sequence and timestamp, the
//! coordinator epoch of the last marker and the first offset of the open
//! transaction, as Kafka's `ReplicaManager.activeProducerState`. A
//! partition that does not exist is UNKNOWN_TOPIC_OR_PARTITION.

use super::{ApiSpec, RequestContext};
use crate::protocol::messages::describe_producers_request::DescribeProducersRequest;
use crate::protocol::messages::describe_producers_response::{
    DescribeProducersResponse, PartitionResponse, ProducerState, TopicResponse,
};
use crate::protocol::ErrorCode;
use crate::types::TopicPartition;

pub const SPEC: ApiSpec = ApiSpec { api_key: 61, name: "DescribeProducers", min_version: 0, max_version: 0 };

/// No open transaction (Kafka's `currentTxnStartOffset` absent).
const NO_TXN_START_OFFSET: i64 = -1;

pub async fn handle(ctx: &RequestContext<'_>, req: DescribeProducersRequest) -> DescribeProducersResponse {
    let mut topics = Vec::with_capacity(req.topics.len());
    for t in req.topics {
        let mut partitions = Vec::with_capacity(t.partition_indexes.len());
        for index in t.partition_indexes {
            let tp = TopicPartition::new(t.name.clone(), index);
            let partition = ctx.broker.partition(&tp).await;
            partitions.push(describe(index, partition.as_deref()));
        }
        topics.push(TopicResponse { name: t.name, partitions });
    }
    DescribeProducersResponse { throttle_time_ms: 0, topics }
}

fn describe(index: i32, partition: Option<&crate::replica::Partition>) -> PartitionResponse {
    let mut r = PartitionResponse { partition_index: index, ..Default::default() };
    let Some(partition) = partition else {
        r.error_code = ErrorCode::UnknownTopicOrPartition.code();
        return r;
    };
    // Only the log's in-memory state is read: no I/O under the lock.
    let log = partition.log.lock().unwrap_or_else(|e| e.into_inner());
    r.active_producers = log
        .producer_state()
        .entries()
        .into_iter()
        .map(|e| ProducerState {
            producer_id: e.producer_id,
            producer_epoch: i32::from(e.epoch),
            last_sequence: e.last_seq(),
            last_timestamp: e.last_timestamp.0,
            coordinator_epoch: e.coordinator_epoch,
            current_txn_start_offset: log
                .txn_index()
                .ongoing_first_offset(e.producer_id)
                .map_or(NO_TXN_START_OFFSET, |o| o.0),
        })
        .collect();
    r
}
