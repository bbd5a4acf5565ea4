//! AddPartitionsToTxn (key 24), the client form (v0-3): adds partitions
//! to the producer's ongoing transaction. Unknown partitions fail with
//! UNKNOWN_TOPIC_OR_PARTITION and the others with OPERATION_NOT_ATTEMPTED,
//! as in Kafka; otherwise every partition gets the coordinator's answer.
//! The broker-to-broker batched form (v4-5, KIP-890) is not served.

use super::{ApiSpec, RequestContext};
use crate::protocol::messages::add_partitions_to_txn_request::AddPartitionsToTxnRequest;
use crate::protocol::messages::add_partitions_to_txn_response::{
    AddPartitionsToTxnPartitionResult, AddPartitionsToTxnResponse, AddPartitionsToTxnTopicResult,
};
use crate::protocol::ErrorCode;
use crate::types::{TimestampMs, TopicPartition};

pub const SPEC: ApiSpec = ApiSpec { api_key: 24, name: "AddPartitionsToTxn", min_version: 0, max_version: 3 };

const PRODUCER_FENCED_SINCE: i16 = 2;

pub async fn handle(ctx: &RequestContext<'_>, req: AddPartitionsToTxnRequest) -> AddPartitionsToTxnResponse {
    let image = ctx.broker.controller.image();
    let mut partitions = Vec::new();
    let mut unknown = Vec::new();
    for t in &req.v3_and_below_topics {
        for &p in &t.partitions {
            let tp = TopicPartition::new(t.name.clone(), p);
            let exists = image.topic(&t.name).is_some_and(|info| p >= 0 && p < info.partitions);
            if exists {
                partitions.push(tp);
            } else {
                unknown.push(tp);
            }
        }
    }
    let code_of: Box<dyn Fn(&TopicPartition) -> ErrorCode + Send> = if !unknown.is_empty() {
        let unknown = unknown.clone();
        Box::new(move |tp| if unknown.contains(tp) { ErrorCode::UnknownTopicOrPartition } else { ErrorCode::OperationNotAttempted })
    } else {
        let broker = ctx.broker.clone();
        let id = req.v3_and_below_transactional_id.clone();
        let (pid, epoch) = (req.v3_and_below_producer_id, req.v3_and_below_producer_epoch);
        let parts = partitions.clone();
        let result = tokio::task::spawn_blocking(move || broker.txns.add_partitions(&id, pid, epoch, &parts, TimestampMs::now()))
            .await
            .unwrap_or(Err(ErrorCode::UnknownServerError));
        let code = match result {
            Ok(()) => ErrorCode::None,
            Err(e) => crate::txn::fenced_error_for(e, ctx.version(), PRODUCER_FENCED_SINCE),
        };
        Box::new(move |_| code)
    };
    let results_by_topic_v3_and_below = req
        .v3_and_below_topics
        .iter()
        .map(|t| AddPartitionsToTxnTopicResult {
            name: t.name.clone(),
            results_by_partition: t
                .partitions
                .iter()
                .map(|&p| AddPartitionsToTxnPartitionResult {
                    partition_index: p,
                    partition_error_code: code_of(&TopicPartition::new(t.name.clone(), p)).code(),
                })
                .collect(),
        })
        .collect();
    AddPartitionsToTxnResponse { results_by_topic_v3_and_below, ..Default::default() }
}
