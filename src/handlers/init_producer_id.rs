//! InitProducerId (key 22): without a transactional id, a fresh producer
//! id (epoch 0) for an idempotent producer; with one, the transaction
//! coordinator's answer (Kafka's `handleInitProducerId`: epoch bump,
//! fencing and aborting what an earlier producer left open, KIP-360
//! retries). Producer ids are reserved durably by the controller and never
//! reused.

use super::{ApiSpec, RequestContext};
use crate::protocol::messages::init_producer_id_request::InitProducerIdRequest;
use crate::protocol::messages::init_producer_id_response::InitProducerIdResponse;
use crate::protocol::ErrorCode;
use crate::security::authorizer::{AclOperation, ResourceType};
use crate::txn::InitResult;
use crate::types::TimestampMs;

pub const SPEC: ApiSpec = ApiSpec { api_key: 22, name: "InitProducerId", min_version: 0, max_version: 5 };

/// First version that may answer PRODUCER_FENCED.
const PRODUCER_FENCED_SINCE: i16 = 4;

fn error(code: ErrorCode, version: i16) -> InitProducerIdResponse {
    InitProducerIdResponse {
        error_code: crate::txn::fenced_error_for(code, version, PRODUCER_FENCED_SINCE).code(),
        producer_id: -1,
        producer_epoch: -1,
        ..Default::default()
    }
}

pub async fn handle(ctx: &RequestContext<'_>, req: InitProducerIdRequest) -> InitProducerIdResponse {
    // As Kafka: WRITE on the transactional id; an idempotent producer
    // needs IDEMPOTENT_WRITE on the cluster or WRITE on some topic.
    let denied = match req.transactional_id.as_deref() {
        Some(id) => (!ctx.authorized(AclOperation::Write, ResourceType::TransactionalId, id))
            .then_some(ErrorCode::TransactionalIdAuthorizationFailed),
        None => (!ctx.authorized_cluster(AclOperation::IdempotentWrite)
            && !ctx.authorized_by_resource_type(AclOperation::Write, ResourceType::Topic))
        .then_some(ErrorCode::ClusterAuthorizationFailed),
    };
    if let Some(code) = denied {
        return InitProducerIdResponse { error_code: code.code(), producer_id: -1, producer_epoch: -1, ..Default::default() };
    }
    let Some(transactional_id) = req.transactional_id else {
        return match ctx.broker.allocate_producer_id().await {
            Ok(id) => InitProducerIdResponse { producer_id: id, producer_epoch: 0, ..Default::default() },
            Err(e) => InitProducerIdResponse { error_code: e.code.code(), ..Default::default() },
        };
    };
    let expected = (req.producer_id >= 0).then_some((req.producer_id, req.producer_epoch));
    let broker = ctx.broker.clone();
    let timeout_ms = req.transaction_timeout_ms;
    let result = tokio::task::spawn_blocking(move || {
        let mut allocate = || broker.controller.allocate_producer_id().map_err(|e| e.code);
        broker.txns.init_producer_id(&transactional_id, timeout_ms, expected, &mut allocate, TimestampMs::now())
    })
    .await
    .unwrap_or(Err(ErrorCode::UnknownServerError));
    match result {
        Ok(InitResult::Ready { producer_id, producer_epoch }) => {
            InitProducerIdResponse { producer_id, producer_epoch, ..Default::default() }
        }
        Ok(InitResult::Fenced(completion)) => {
            // Abort what the fenced producer left open; the client retries
            // on CONCURRENT_TRANSACTIONS and then gets the next epoch.
            tracing::info!(
                transactional_id = %completion.transactional_id,
                producer_id = completion.producer_id,
                epoch = completion.producer_epoch,
                "a new producer fenced the previous one: aborting its open transaction"
            );
            ctx.broker.metrics.txn.fenced.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            if let Err(e) = crate::txn::finish(ctx.broker, completion).await {
                tracing::warn!(error = ?e, "aborting a fenced transaction failed; retrying later");
            }
            error(ErrorCode::ConcurrentTransactions, ctx.version())
        }
        Err(code) => error(code, ctx.version()),
    }
}
