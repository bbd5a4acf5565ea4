//! EndTxn (key 26): commits or aborts the producer's transaction. The
//! Prepare state is made durable first, then the markers are written to
//! every partition of the transaction and its group offsets are settled,
//! then the Complete state is recorded, all before the answer (Kafka
//! answers after the Prepare write and writes markers asynchronously;
//! answering later is allowed and keeps reads after EndTxn consistent).
//! v5 is transaction version 2 (KIP-890), as Kafka decides it, by the
//! request's version: every end bumps the producer epoch, the markers carry
//! the bumped epoch, and the answer names the producer id and epoch the
//! client goes on with.

use super::{ApiSpec, RequestContext};
use crate::protocol::messages::end_txn_request::EndTxnRequest;
use crate::protocol::messages::end_txn_response::EndTxnResponse;
use crate::protocol::ErrorCode;
use crate::security::authorizer::{AclOperation, ResourceType};
use crate::types::TimestampMs;

pub const SPEC: ApiSpec = ApiSpec { api_key: 26, name: "EndTxn", min_version: 0, max_version: 5 };

const PRODUCER_FENCED_SINCE: i16 = 2;
/// The first version of transaction version 2 (epoch bump per end).
const EPOCH_BUMP_SINCE: i16 = 5;

pub async fn handle(ctx: &RequestContext<'_>, req: EndTxnRequest) -> EndTxnResponse {
    // As Kafka: WRITE on the transactional id.
    if !ctx.authorized(AclOperation::Write, ResourceType::TransactionalId, &req.transactional_id) {
        return EndTxnResponse { error_code: ErrorCode::TransactionalIdAuthorizationFailed.code(), ..Default::default() };
    }
    let broker = ctx.broker.clone();
    let bump_epoch = ctx.version() >= EPOCH_BUMP_SINCE;
    let result = tokio::task::spawn_blocking(move || {
        broker.txns.end_txn(
            &req.transactional_id,
            req.producer_id,
            req.producer_epoch,
            req.committed,
            bump_epoch,
            TimestampMs::now(),
        )
    })
    .await
    .unwrap_or(Err(ErrorCode::UnknownServerError));
    match result {
        Ok((completion, producer_id, producer_epoch)) => {
            if let Some(completion) = completion {
                if let Err(e) = crate::txn::finish(ctx.broker, completion).await {
                    // The decision is durable; housekeeping finishes the markers.
                    tracing::warn!(error = ?e, "completing a transaction failed; housekeeping retries it");
                }
            }
            EndTxnResponse { error_code: 0, producer_id, producer_epoch, ..Default::default() }
        }
        Err(e) => EndTxnResponse {
            error_code: crate::txn::fenced_error_for(e, ctx.version(), PRODUCER_FENCED_SINCE).code(),
            producer_id: -1,
            producer_epoch: -1,
            ..Default::default()
        },
    }
}
