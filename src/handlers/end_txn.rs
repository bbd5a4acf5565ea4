//! EndTxn (key 26): commits or aborts the producer's transaction. The
//! Prepare state is made durable first, then the markers are written to
//! every partition of the transaction and its group offsets are settled,
//! then the Complete state is recorded, all before the answer (Kafka
//! answers after the Prepare write and writes markers asynchronously;
//! answering later is allowed and keeps reads after EndTxn consistent).
//! v5 (KIP-890 epoch bump on every end) is not served: klamm does not
//! advertise `transaction.version`, so clients use transaction version 1.

use super::{ApiSpec, RequestContext};
use crate::protocol::messages::end_txn_request::EndTxnRequest;
use crate::protocol::messages::end_txn_response::EndTxnResponse;
use crate::protocol::ErrorCode;
use crate::types::TimestampMs;

pub const SPEC: ApiSpec = ApiSpec { api_key: 26, name: "EndTxn", min_version: 0, max_version: 4 };

const PRODUCER_FENCED_SINCE: i16 = 2;

pub async fn handle(ctx: &RequestContext<'_>, req: EndTxnRequest) -> EndTxnResponse {
    let broker = ctx.broker.clone();
    let result = tokio::task::spawn_blocking(move || {
        broker.txns.end_txn(&req.transactional_id, req.producer_id, req.producer_epoch, req.committed, TimestampMs::now())
    })
    .await
    .unwrap_or(Err(ErrorCode::UnknownServerError));
    let code = match result {
        Ok(None) => ErrorCode::None,
        Ok(Some(completion)) => match crate::txn::finish(ctx.broker, completion).await {
            Ok(()) => ErrorCode::None,
            // The decision is durable; housekeeping finishes the markers.
            Err(e) => {
                tracing::warn!(error = ?e, "completing a transaction failed; housekeeping retries it");
                ErrorCode::None
            }
        },
        Err(e) => crate::txn::fenced_error_for(e, ctx.version(), PRODUCER_FENCED_SINCE),
    };
    EndTxnResponse { error_code: code.code(), ..Default::default() }
}
