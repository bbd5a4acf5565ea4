//! AddPartitionsToTxn (key 24). v0-3 are the client form: partitions join
//! the producer's ongoing transaction. v4-5 are the broker form of KIP-890
//! (a partition leader asking the coordinator, batched over transactions):
//! each transaction either adds its partitions or, with `verify_only`,
//! asks whether they are in it (NONE, or TRANSACTION_ABORTABLE, in v4 too,
//! as Kafka 4.1 answers). As in Kafka, a transaction naming a
//! partition that does not exist gets UNKNOWN_TOPIC_OR_PARTITION for it
//! and OPERATION_NOT_ATTEMPTED for the others; otherwise every partition
//! gets the coordinator's answer.

use super::{ApiSpec, RequestContext};
use crate::protocol::messages::add_partitions_to_txn_request::{AddPartitionsToTxnRequest, AddPartitionsToTxnTopic};
use crate::protocol::messages::add_partitions_to_txn_response::{
    AddPartitionsToTxnPartitionResult, AddPartitionsToTxnResponse, AddPartitionsToTxnResult,
    AddPartitionsToTxnTopicResult,
};
use crate::protocol::ErrorCode;
use crate::security::authorizer::{AclOperation, ResourceType};
use crate::types::{TimestampMs, TopicPartition};

pub const SPEC: ApiSpec = ApiSpec { api_key: 24, name: "AddPartitionsToTxn", min_version: 0, max_version: 5 };

const PRODUCER_FENCED_SINCE: i16 = 2;
/// The first version of the batched broker form.
const BATCHED_SINCE: i16 = 4;
/// Transactions one batched request may name (Kafka bounds them by the
/// request size only; this bounds the work one request can ask for).
const MAX_TRANSACTIONS_PER_REQUEST: usize = 10_000;

/// One transaction of the request.
struct Txn<'a> {
    transactional_id: &'a str,
    producer_id: i64,
    producer_epoch: i16,
    verify_only: bool,
    topics: &'a [AddPartitionsToTxnTopic],
}

pub async fn handle(ctx: &RequestContext<'_>, req: AddPartitionsToTxnRequest) -> AddPartitionsToTxnResponse {
    let version = ctx.version();
    if version < BATCHED_SINCE {
        let txn = Txn {
            transactional_id: &req.v3_and_below_transactional_id,
            producer_id: req.v3_and_below_producer_id,
            producer_epoch: req.v3_and_below_producer_epoch,
            verify_only: false,
            topics: &req.v3_and_below_topics,
        };
        let results_by_topic_v3_and_below = answer(ctx, &txn).await;
        return AddPartitionsToTxnResponse { results_by_topic_v3_and_below, ..Default::default() };
    }
    if req.transactions.len() > MAX_TRANSACTIONS_PER_REQUEST {
        return AddPartitionsToTxnResponse { error_code: ErrorCode::InvalidRequest.code(), ..Default::default() };
    }
    let mut results_by_transaction = Vec::with_capacity(req.transactions.len());
    for t in &req.transactions {
        let txn = Txn {
            transactional_id: &t.transactional_id,
            producer_id: t.producer_id,
            producer_epoch: t.producer_epoch,
            verify_only: t.verify_only,
            topics: &t.topics,
        };
        let topic_results = answer(ctx, &txn).await;
        results_by_transaction.push(AddPartitionsToTxnResult { transactional_id: t.transactional_id.clone(), topic_results });
    }
    AddPartitionsToTxnResponse { results_by_transaction, ..Default::default() }
}

/// The per-partition answers for one transaction, in request order.
async fn answer(ctx: &RequestContext<'_>, txn: &Txn<'_>) -> Vec<AddPartitionsToTxnTopicResult> {
    let version = ctx.version();
    let image = ctx.broker.controller.image();
    let requested: Vec<TopicPartition> = txn
        .topics
        .iter()
        .flat_map(|t| t.partitions.iter().map(|&p| TopicPartition::new(t.name.clone(), p)))
        .collect();
    let exists =
        |tp: &TopicPartition| image.topic(&tp.topic).is_some_and(|info| tp.partition >= 0 && tp.partition < info.partitions);
    // As Kafka: WRITE on the transactional id, then on every topic (a
    // refused topic fails the request, the others not attempted).
    let may_write = |tp: &TopicPartition| ctx.authorized(AclOperation::Write, ResourceType::Topic, &tp.topic);
    let codes: Vec<ErrorCode> = if !ctx.authorized(AclOperation::Write, ResourceType::TransactionalId, txn.transactional_id) {
        vec![ErrorCode::TransactionalIdAuthorizationFailed; requested.len()]
    } else if ctx.authorizing() && requested.iter().any(|tp| !may_write(tp)) {
        requested
            .iter()
            .map(|tp| if may_write(tp) { ErrorCode::OperationNotAttempted } else { ErrorCode::TopicAuthorizationFailed })
            .collect()
    } else if requested.iter().any(|tp| !exists(tp)) {
        requested
            .iter()
            .map(|tp| if exists(tp) { ErrorCode::OperationNotAttempted } else { ErrorCode::UnknownTopicOrPartition })
            .collect()
    } else {
        let broker = ctx.broker.clone();
        let (id, pid, epoch, verify_only) =
            (txn.transactional_id.to_string(), txn.producer_id, txn.producer_epoch, txn.verify_only);
        let parts = requested.clone();
        let n = parts.len();
        let result = tokio::task::spawn_blocking(move || {
            if verify_only {
                broker.txns.verify_partitions(&id, pid, epoch, &parts)
            } else {
                broker.txns.add_partitions(&id, pid, epoch, &parts, TimestampMs::now()).map(|()| vec![ErrorCode::None; n])
            }
        })
        .await
        .unwrap_or(Err(ErrorCode::UnknownServerError));
        result.unwrap_or_else(|e| vec![crate::txn::fenced_error_for(e, version, PRODUCER_FENCED_SINCE); n])
    };
    let mut codes = codes.into_iter();
    txn.topics
        .iter()
        .map(|t| AddPartitionsToTxnTopicResult {
            name: t.name.clone(),
            results_by_partition: t
                .partitions
                .iter()
                .map(|&p| AddPartitionsToTxnPartitionResult {
                    partition_index: p,
                    partition_error_code: codes.next().unwrap_or(ErrorCode::UnknownServerError).code(),
                })
                .collect(),
        })
        .collect()
}
