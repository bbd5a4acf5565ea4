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
//! the last marker's TRANSACTION_COORDINATOR_FENCED. v2 (KIP-1228, Kafka
//! 4.4) tells the marker's transaction version: from version 2 the
//! coordinator has bumped the epoch for the marker, so an epoch that is
//! not above the producer's is INVALID_PRODUCER_EPOCH, as Kafka's
//! `ProducerAppendInfo` checks; the admin client's abort sends version 0.

use super::{ApiSpec, RequestContext};
use crate::protocol::messages::write_txn_markers_request::WriteTxnMarkersRequest;
use crate::protocol::messages::write_txn_markers_response::{
    WritableTxnMarkerPartitionResult, WritableTxnMarkerResult, WritableTxnMarkerTopicResult, WriteTxnMarkersResponse,
};
use crate::protocol::ErrorCode;
use crate::types::{TimestampMs, TopicPartition};

pub const SPEC: ApiSpec = ApiSpec { api_key: 27, name: "WriteTxnMarkers", min_version: 1, max_version: 2 };

/// A topic's partitions, each with the partition if it exists.
type TopicWork = (String, Vec<(i32, Option<std::sync::Arc<crate::replica::Partition>>)>);

/// One marker's work: its producer, result and partitions (resolved).
struct MarkerWork {
    producer_id: i64,
    producer_epoch: i16,
    commit: bool,
    coordinator_epoch: i32,
    /// KIP-1228: 2+ requires an epoch above the producer's.
    transaction_version: i8,
    topics: Vec<TopicWork>,
}

/// The first marker transaction version whose epoch must be bumped.
const STRICT_EPOCH_TRANSACTION_VERSION: i8 = 2;

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
            transaction_version: m.transaction_version,
            topics,
        });
    }
    // Appends are file I/O: off the async workers.
    let markers = tokio::task::spawn_blocking(move || work.into_iter().map(write).collect())
        .await
        .unwrap_or_default();
    WriteTxnMarkersResponse { markers }
}

/// KIP-1228: a transaction-version-2 marker whose epoch is not above the
/// producer's is refused; other markers are checked by `write_marker`.
fn stale_bumped_epoch(current_epoch: Option<i16>, marker_epoch: i16, transaction_version: i8) -> bool {
    transaction_version >= STRICT_EPOCH_TRANSACTION_VERSION && current_epoch.is_some_and(|e| marker_epoch <= e)
}

/// A marker's fields, without its partitions.
#[derive(Clone, Copy)]
struct Marker {
    producer_id: i64,
    producer_epoch: i16,
    commit: bool,
    coordinator_epoch: i32,
    transaction_version: i8,
}

fn write_checked(
    p: &crate::replica::Partition,
    m: Marker,
    now: TimestampMs,
) -> Result<crate::types::Offset, crate::storage::StorageError> {
    // The partition's markers are written by this broker's coordinator and
    // by this request only; the check under its own lock sees the epoch the
    // append then checks again.
    let current = p.log.lock().unwrap_or_else(|e| e.into_inner()).producer_state().entry(m.producer_id).map(|e| e.epoch);
    if stale_bumped_epoch(current, m.producer_epoch, m.transaction_version) {
        return Err(crate::storage::StorageError::InvalidProducerEpoch {
            producer_id: m.producer_id,
            epoch: m.producer_epoch,
            current_epoch: current.unwrap_or(-1),
        });
    }
    crate::txn::write_marker(p, m.producer_id, m.producer_epoch, m.commit, m.coordinator_epoch, now)
}

fn write(m: MarkerWork) -> WritableTxnMarkerResult {
    let now = TimestampMs::now();
    let marker = Marker {
        producer_id: m.producer_id,
        producer_epoch: m.producer_epoch,
        commit: m.commit,
        coordinator_epoch: m.coordinator_epoch,
        transaction_version: m.transaction_version,
    };
    let topics = m
        .topics
        .into_iter()
        .map(|(name, parts)| WritableTxnMarkerTopicResult {
            partitions: parts
                .into_iter()
                .map(|(index, partition)| {
                    let code = match partition {
                        None => ErrorCode::UnknownTopicOrPartition.code(),
                        Some(p) => match write_checked(&p, marker, now) {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_version_2_marker_needs_a_bumped_epoch() {
        assert!(stale_bumped_epoch(Some(5), 5, 2));
        assert!(stale_bumped_epoch(Some(5), 4, 2));
        assert!(!stale_bumped_epoch(Some(5), 6, 2));
        assert!(!stale_bumped_epoch(None, 0, 2), "no producer state: nothing to compare");
        assert!(!stale_bumped_epoch(Some(5), 5, 1), "older versions keep Kafka's >= check");
        assert!(!stale_bumped_epoch(Some(5), 5, 0));
    }

    #[test]
    fn v2_carries_the_transaction_version() {
        use crate::protocol::messages::write_txn_markers_request::WritableTxnMarker;
        use crate::protocol::{Reader, Writer};
        let req = WriteTxnMarkersRequest {
            markers: vec![WritableTxnMarker { producer_id: 1, transaction_version: 2, ..Default::default() }],
        };
        let encode = |v| {
            let mut w = Writer::new();
            req.encode(&mut w, v);
            w.finish_contiguous()
        };
        let (v1, v2) = (encode(1), encode(2));
        assert_eq!(v2.len(), v1.len() + 1);
        // ... coordinator_epoch (4), transaction_version, marker tags, body tags.
        assert_eq!(&v2[v2.len() - 3..], &[2, 0, 0][..]);
        let back = WriteTxnMarkersRequest::decode(&mut Reader::new(v2), 2).unwrap();
        assert_eq!(back.markers[0].transaction_version, 2);
    }
}
