//! WriteTxnMarkers (key 27, v1 as Kafka 4 serves it; v0 was removed in
//! 4.0): writes a COMMIT or ABORT control batch of the given producer id
//! and epoch into each listed partition. Kafka's coordinators send it to
//! partition leaders; here the coordinator writes its own markers
//! directly, and this request comes from the admin client's
//! `abortTransaction` (`kafka-transactions abort` of a hanging
//! transaction). Each marker takes the coordinator's own path,
//! `txn::write_marker`, so producer state, last stable offset and
//! aborted index move exactly as for a completion. Per partition: an
//! unknown partition is UNKNOWN_TOPIC_OR_PARTITION, an epoch older than
//! the producer's INVALID_PRODUCER_EPOCH, a coordinator epoch older than
//! the last marker's TRANSACTION_COORDINATOR_FENCED.

use super::{ApiSpec, RequestContext};
use crate::protocol::messages::write_txn_markers_request::WriteTxnMarkersRequest;
use crate::protocol::messages::write_txn_markers_response::{
    WritableTxnMarkerPartitionResult, WritableTxnMarkerResult, WritableTxnMarkerTopicResult, WriteTxnMarkersResponse,
};
use crate::protocol::ErrorCode;
use crate::types::{TimestampMs, TopicPartition};

pub const SPEC: ApiSpec = ApiSpec { api_key: 27, name: "WriteTxnMarkers", min_version: 1, max_version: 1 };

/// A topic's partitions, each with the partition if it exists.
type TopicWork = (String, Vec<(i32, Option<std::sync::Arc<crate::replica::Partition>>)>);

/// One marker's work: its producer, result and partitions (resolved).
struct MarkerWork {
    producer_id: i64,
    producer_epoch: i16,
    commit: bool,
    coordinator_epoch: i32,
    topics: Vec<TopicWork>,
}

pub async fn handle(ctx: &RequestContext<'_>, req: WriteTxnMarkersRequest) -> WriteTxnMarkersResponse {
    let mut work = Vec::with_capacity(req.markers.len());
    for m in req.markers {
        let mut topics = Vec::with_capacity(m.topics.len());
        for t in m.topics {
            let mut parts = Vec::with_capacity(t.partition_indexes.len());
            for index in t.partition_indexes {
                let partition = ctx.broker.partition(&TopicPartition::new(t.name.clone(), index)).await;
                parts.push((index, partition));
            }
            topics.push((t.name, parts));
        }
        work.push(MarkerWork {
            producer_id: m.producer_id,
            producer_epoch: m.producer_epoch,
            commit: m.transaction_result,
            coordinator_epoch: m.coordinator_epoch,
            topics,
        });
    }
    // Appends are file I/O: off the async workers.
    let markers = tokio::task::spawn_blocking(move || work.into_iter().map(write).collect())
        .await
        .unwrap_or_default();
    WriteTxnMarkersResponse { markers }
}

fn write(m: MarkerWork) -> WritableTxnMarkerResult {
    let now = TimestampMs::now();
    let topics = m
        .topics
        .into_iter()
        .map(|(name, parts)| WritableTxnMarkerTopicResult {
            partitions: parts
                .into_iter()
                .map(|(index, partition)| {
                    let code = match partition {
                        None => ErrorCode::UnknownTopicOrPartition.code(),
                        Some(p) => match crate::txn::write_marker(&p, m.producer_id, m.producer_epoch, m.commit, m.coordinator_epoch, now) {
                            Ok(offset) => {
                                tracing::info!(
                                    partition = %p.tp, producer_id = m.producer_id, producer_epoch = m.producer_epoch,
                                    commit = m.commit, offset = offset.0, "transaction marker written on request (WriteTxnMarkers)"
                                );
                                ErrorCode::None.code()
                            }
                            Err(e) => {
                                tracing::info!(partition = %p.tp, producer_id = m.producer_id, error = %e, "transaction marker refused");
                                e.error_code()
                            }
                        },
                    };
                    WritableTxnMarkerPartitionResult { partition_index: index, error_code: code }
                })
                .collect(),
            name,
        })
        .collect();
    WritableTxnMarkerResult { producer_id: m.producer_id, topics }
}
