//! InitProducerId (key 22): gives idempotent producers a fresh producer id
//! (epoch 0), as Kafka does when there is no transactional id. Producer ids
//! are reserved durably by the controller and never reused.
//! Transactional ids are not supported yet.

use super::{ApiSpec, RequestContext};
use crate::protocol::messages::init_producer_id_request::InitProducerIdRequest;
use crate::protocol::messages::init_producer_id_response::InitProducerIdResponse;
use crate::protocol::ErrorCode;

pub const SPEC: ApiSpec = ApiSpec { api_key: 22, name: "InitProducerId", min_version: 0, max_version: 5 };

pub async fn handle(ctx: &RequestContext<'_>, req: InitProducerIdRequest) -> InitProducerIdResponse {
    if let Some(id) = &req.transactional_id {
        // No transaction coordinator yet: tell the client it is unavailable.
        super::find_coordinator::warn_transactions_unsupported(id);
        return InitProducerIdResponse { error_code: ErrorCode::CoordinatorNotAvailable.code(), ..Default::default() };
    }
    match ctx.broker.allocate_producer_id().await {
        Ok(id) => InitProducerIdResponse { producer_id: id, producer_epoch: 0, ..Default::default() },
        Err(e) => InitProducerIdResponse { error_code: e.code.code(), ..Default::default() },
    }
}
