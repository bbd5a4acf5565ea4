//! FindCoordinator (key 10): this node coordinates every consumer group
//! (key type 0) and every transactional id (key type 1).

use super::{ApiSpec, RequestContext};
use crate::protocol::messages::find_coordinator_request::FindCoordinatorRequest;
use crate::protocol::messages::find_coordinator_response::{Coordinator, FindCoordinatorResponse};
use crate::protocol::ErrorCode;
use crate::security::authorizer::{AclOperation, ResourceType};

pub const SPEC: ApiSpec = ApiSpec { api_key: 10, name: "FindCoordinator", min_version: 0, max_version: 6 };

const KEY_TYPE_GROUP: i8 = 0;
const KEY_TYPE_TRANSACTION: i8 = 1;

pub async fn handle(ctx: &RequestContext<'_>, req: FindCoordinatorRequest) -> FindCoordinatorResponse {
    let node_id = ctx.broker.controller.node_id();
    let host = ctx.listener.advertised_host.clone();
    let port = ctx.listener.advertised_port as i32;
    let known = matches!(req.key_type, KEY_TYPE_GROUP | KEY_TYPE_TRANSACTION);
    // Kafka answers INVALID_REQUEST for an unknown key type.
    let error = if known { ErrorCode::None } else { ErrorCode::InvalidRequest };
    let message = (!known).then(|| format!("klamm has no coordinator of key type {}", req.key_type));
    // As Kafka: DESCRIBE on the group or the transactional id.
    let denied = |key: &str| match req.key_type {
        KEY_TYPE_GROUP if !ctx.authorized(AclOperation::Describe, ResourceType::Group, key) => {
            Some((ErrorCode::GroupAuthorizationFailed, "Group authorization failed."))
        }
        KEY_TYPE_TRANSACTION if !ctx.authorized(AclOperation::Describe, ResourceType::TransactionalId, key) => {
            Some((ErrorCode::TransactionalIdAuthorizationFailed, "Transactional Id authorization failed."))
        }
        _ => None,
    };
    let answer = |key: &str| match denied(key) {
        Some((code, msg)) => (code, Some(msg.to_string())),
        None => (error, message.clone()),
    };
    if ctx.version() >= 4 {
        let coordinators = req
            .coordinator_keys
            .iter()
            .map(|key| (key.clone(), answer(key)))
            .map(|(key, (error, message))| (key, error.is_ok(), error, message))
            .map(|(key, ok, error, message)| Coordinator {
                key,
                node_id: if ok { node_id } else { -1 },
                host: if ok { host.clone() } else { String::new() },
                port: if ok { port } else { -1 },
                error_code: error.code(),
                error_message: message,
            })
            .collect();
        return FindCoordinatorResponse { coordinators, ..Default::default() };
    }
    let (error, message) = answer(&req.key);
    let ok = error.is_ok();
    FindCoordinatorResponse {
        error_code: error.code(),
        error_message: message,
        node_id: if ok { node_id } else { -1 },
        host: if ok { host } else { String::new() },
        port: if ok { port } else { -1 },
        ..Default::default()
    }
}
