//! FindCoordinator (key 10): this node coordinates every consumer group.
//! Transaction coordinators (key type 1) are not available yet.

use super::{ApiSpec, RequestContext};
use crate::protocol::messages::find_coordinator_request::FindCoordinatorRequest;
use crate::protocol::messages::find_coordinator_response::{Coordinator, FindCoordinatorResponse};
use crate::protocol::ErrorCode;

pub const SPEC: ApiSpec = ApiSpec { api_key: 10, name: "FindCoordinator", min_version: 0, max_version: 6 };

const KEY_TYPE_GROUP: i8 = 0;

pub async fn handle(ctx: &RequestContext<'_>, req: FindCoordinatorRequest) -> FindCoordinatorResponse {
    let node_id = ctx.broker.controller.node_id();
    let host = ctx.listener.advertised_host.clone();
    let port = ctx.listener.advertised_port as i32;
    let error = if req.key_type == KEY_TYPE_GROUP { ErrorCode::None } else { ErrorCode::CoordinatorNotAvailable };
    let ok = error.is_ok();
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
                error_message: None,
            })
            .collect();
        return FindCoordinatorResponse { coordinators, ..Default::default() };
    }
    FindCoordinatorResponse {
        error_code: error.code(),
        node_id: if ok { node_id } else { -1 },
        host: if ok { host } else { String::new() },
        port: if ok { port } else { -1 },
        ..Default::default()
    }
}
