//! AddOffsetsToTxn (key 25): makes a consumer group's offsets part of the
//! producer's ongoing transaction (Kafka adds the group's
//! `__consumer_offsets` partition; klamm records the group).

use super::{ApiSpec, RequestContext};
use crate::protocol::messages::add_offsets_to_txn_request::AddOffsetsToTxnRequest;
use crate::protocol::messages::add_offsets_to_txn_response::AddOffsetsToTxnResponse;
use crate::protocol::ErrorCode;
use crate::security::authorizer::{AclOperation, ResourceType};
use crate::types::TimestampMs;

pub const SPEC: ApiSpec = ApiSpec { api_key: 25, name: "AddOffsetsToTxn", min_version: 0, max_version: 4 };

const PRODUCER_FENCED_SINCE: i16 = 2;

pub async fn handle(ctx: &RequestContext<'_>, req: AddOffsetsToTxnRequest) -> AddOffsetsToTxnResponse {
    // As Kafka: WRITE on the transactional id, READ on the group.
    if !ctx.authorized(AclOperation::Write, ResourceType::TransactionalId, &req.transactional_id) {
        let error_code = ErrorCode::TransactionalIdAuthorizationFailed.code();
        return AddOffsetsToTxnResponse { error_code, ..Default::default() };
    }
    if !ctx.authorized(AclOperation::Read, ResourceType::Group, &req.group_id) {
        return AddOffsetsToTxnResponse { error_code: ErrorCode::GroupAuthorizationFailed.code(), ..Default::default() };
    }
    let broker = ctx.broker.clone();
    let result = tokio::task::spawn_blocking(move || {
        broker.txns.add_offsets(&req.transactional_id, req.producer_id, req.producer_epoch, &req.group_id, TimestampMs::now())
    })
    .await
    .unwrap_or(Err(ErrorCode::UnknownServerError));
    let code = match result {
        Ok(()) => ErrorCode::None,
        Err(e) => crate::txn::fenced_error_for(e, ctx.version(), PRODUCER_FENCED_SINCE),
    };
    AddOffsetsToTxnResponse { error_code: code.code(), ..Default::default() }
}
