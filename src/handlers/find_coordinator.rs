//! FindCoordinator (key 10): this node coordinates every consumer group.
//! Transaction coordinators (key type 1) are not available yet.

use super::{ApiSpec, RequestContext};
use crate::protocol::messages::find_coordinator_request::FindCoordinatorRequest;
use crate::protocol::messages::find_coordinator_response::{Coordinator, FindCoordinatorResponse};
use crate::protocol::ErrorCode;

pub const SPEC: ApiSpec = ApiSpec { api_key: 10, name: "FindCoordinator", min_version: 0, max_version: 6 };

const KEY_TYPE_GROUP: i8 = 0;
const KEY_TYPE_TRANSACTION: i8 = 1;

/// Why a coordinator of another key type is not available.
const TRANSACTIONS_UNSUPPORTED: &str = "klamm does not support transactions yet (issue 10): there is no transaction coordinator";

/// Says in the log, at most once a minute, that a client asked for a
/// transaction coordinator: such a client retries every ~100 ms until its
/// max.block.ms and would otherwise fail without a word on the broker.
pub(crate) fn warn_transactions_unsupported(transactional_id: &str) {
    use std::sync::atomic::{AtomicI64, Ordering};
    static LAST_WARNED_MS: AtomicI64 = AtomicI64::new(i64::MIN);
    let now = crate::types::TimestampMs::now().0;
    let last = LAST_WARNED_MS.load(Ordering::Relaxed);
    if now.saturating_sub(last) >= 60_000
        && LAST_WARNED_MS.compare_exchange(last, now, Ordering::Relaxed, Ordering::Relaxed).is_ok()
    {
        tracing::warn!(
            transactional_id,
            "a transactional producer asked for its coordinator: {TRANSACTIONS_UNSUPPORTED}; it gets COORDINATOR_NOT_AVAILABLE (repeats are not logged for a minute)"
        );
    }
}

pub async fn handle(ctx: &RequestContext<'_>, req: FindCoordinatorRequest) -> FindCoordinatorResponse {
    let node_id = ctx.broker.controller.node_id();
    let host = ctx.listener.advertised_host.clone();
    let port = ctx.listener.advertised_port as i32;
    let error = if req.key_type == KEY_TYPE_GROUP { ErrorCode::None } else { ErrorCode::CoordinatorNotAvailable };
    let ok = error.is_ok();
    let message = match req.key_type {
        KEY_TYPE_GROUP => None,
        KEY_TYPE_TRANSACTION => {
            let first = req.coordinator_keys.first().map(String::as_str).unwrap_or(req.key.as_str());
            warn_transactions_unsupported(first);
            Some(TRANSACTIONS_UNSUPPORTED.to_string())
        }
        _ => Some(format!("klamm has no coordinator of key type {}", req.key_type)),
    };
    if ctx.version() >= 4 {
        let coordinators = req
            .coordinator_keys
            .into_iter()
            .map(|key| Coordinator {
                key,
                node_id: if ok { node_id } else { -1 },
                host: if ok { host.clone() } else { String::new() },
                port: if ok { port } else { -1 },
                error_code: error.code(),
                error_message: message.clone(),
            })
            .collect();
        return FindCoordinatorResponse { coordinators, ..Default::default() };
    }
    FindCoordinatorResponse {
        error_code: error.code(),
        error_message: message,
        node_id: if ok { node_id } else { -1 },
        host: if ok { host } else { String::new() },
        port: if ok { port } else { -1 },
        ..Default::default()
    }
}
