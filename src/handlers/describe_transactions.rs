//! DescribeTransactions (key 65): the coordinator's view of transactional
//! ids (`kafka-transactions describe`): state by Kafka's name, producer id
//! and epoch, timeout, the start time of the open transaction (-1 when
//! none) and its partitions by topic. An unknown id is
//! TRANSACTIONAL_ID_NOT_FOUND, an empty one INVALID_REQUEST, as Kafka's
//! `TransactionCoordinator.handleDescribeTransactions`.

use std::collections::BTreeMap;

use super::{ApiSpec, RequestContext};
use crate::protocol::messages::describe_transactions_request::DescribeTransactionsRequest;
use crate::protocol::messages::describe_transactions_response::{
    DescribeTransactionsResponse, TopicData, TransactionState as StateResponse,
};
use crate::protocol::ErrorCode;
use crate::txn::state::TransactionMetadata;
use crate::txn::TransactionState;

pub const SPEC: ApiSpec = ApiSpec { api_key: 65, name: "DescribeTransactions", min_version: 0, max_version: 0 };

pub async fn handle(ctx: &RequestContext<'_>, req: DescribeTransactionsRequest) -> DescribeTransactionsResponse {
    let broker = ctx.broker.clone();
    // The coordinator's lock may be held across an fsync: off the workers.
    let transaction_states = tokio::task::spawn_blocking(move || {
        req.transactional_ids.into_iter().map(|id| describe(id.clone(), broker.txns.describe(&id))).collect()
    })
    .await
    .unwrap_or_default();
    DescribeTransactionsResponse { throttle_time_ms: 0, transaction_states }
}

fn describe(transactional_id: String, metadata: Option<TransactionMetadata>) -> StateResponse {
    // On an error only the code is set, the rest keeps the schema's
    // defaults, as Kafka answers.
    let mut r = StateResponse { transactional_id, ..Default::default() };
    if r.transactional_id.is_empty() {
        r.error_code = ErrorCode::InvalidRequest.code();
        return r;
    }
    let Some(m) = metadata.filter(|m| m.state != TransactionState::Dead) else {
        r.error_code = ErrorCode::TransactionalIdNotFound.code();
        return r;
    };
    let mut by_topic: BTreeMap<&str, Vec<i32>> = BTreeMap::new();
    for tp in &m.partitions {
        by_topic.entry(&tp.topic).or_default().push(tp.partition);
    }
    r.topics = by_topic.into_iter().map(|(topic, partitions)| TopicData { topic: topic.to_string(), partitions }).collect();
    r.transaction_state = m.state.name().to_string();
    r.transaction_timeout_ms = m.timeout_ms;
    r.transaction_start_time_ms = m.txn_start_ms.0;
    r.producer_id = m.producer_id;
    r.producer_epoch = m.producer_epoch;
    r
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::types::{TimestampMs, TopicPartition};

    #[test]
    fn describes_state_partitions_and_errors() {
        let mut m = TransactionMetadata::new("x", 7, 60_000, TimestampMs(5));
        m.producer_epoch = 2;
        m.state = TransactionState::Ongoing;
        m.txn_start_ms = TimestampMs(10);
        m.partitions.insert(TopicPartition::new("b", 1));
        m.partitions.insert(TopicPartition::new("a", 3));
        m.partitions.insert(TopicPartition::new("b", 0));
        let r = describe("x".into(), Some(m.clone()));
        assert_eq!((r.error_code, r.transaction_state.as_str(), r.producer_id, r.producer_epoch), (0, "Ongoing", 7, 2));
        assert_eq!((r.transaction_timeout_ms, r.transaction_start_time_ms), (60_000, 10));
        assert_eq!(r.topics.len(), 2);
        assert_eq!((r.topics[0].topic.as_str(), r.topics[0].partitions.clone()), ("a", vec![3]));
        assert_eq!((r.topics[1].topic.as_str(), r.topics[1].partitions.clone()), ("b", vec![0, 1]));
        assert_eq!(describe("y".into(), None).error_code, ErrorCode::TransactionalIdNotFound.code());
        assert_eq!(describe(String::new(), None).error_code, ErrorCode::InvalidRequest.code());
        m.state = TransactionState::Dead;
        assert_eq!(describe("x".into(), Some(m)).error_code, ErrorCode::TransactionalIdNotFound.code());
    }
}
