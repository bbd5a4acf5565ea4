//! DeleteAcls (key 31): deletes the bindings matching each filter
//! (`kafka-acls --remove`), durably in the metadata log, and returns them
//! per filter. Needs ALTER on the cluster; a filter with an UNKNOWN value
//! gets INVALID_REQUEST. Without an authorizer every filter gets
//! SECURITY_DISABLED.

use super::describe_acls::NOT_AUTHORIZED;
use super::{ApiSpec, RequestContext};
use crate::protocol::messages::delete_acls_request::DeleteAclsRequest;
use crate::protocol::messages::delete_acls_response::{DeleteAclsFilterResult, DeleteAclsMatchingAcl, DeleteAclsResponse};
use crate::protocol::ErrorCode;
use crate::security::authorizer::{AclFilter, AclOperation};

/// Kafka 4 serves v1-3 (v0 removed by KIP-896).
pub const SPEC: ApiSpec = ApiSpec { api_key: 31, name: "DeleteAcls", min_version: 1, max_version: 3 };

fn failed(code: ErrorCode, message: String) -> DeleteAclsFilterResult {
    DeleteAclsFilterResult { error_code: code.code(), error_message: Some(message), matching_acls: Vec::new() }
}

pub async fn handle(ctx: &RequestContext<'_>, req: DeleteAclsRequest) -> DeleteAclsResponse {
    let all = |code: ErrorCode, message: &str| DeleteAclsResponse {
        throttle_time_ms: 0,
        filter_results: req.filters.iter().map(|_| failed(code, message.to_string())).collect(),
    };
    if !ctx.authorizing() {
        return all(ErrorCode::SecurityDisabled, "No Authorizer is configured.");
    }
    if !ctx.authorized_cluster(AclOperation::Alter) {
        return all(ErrorCode::ClusterAuthorizationFailed, NOT_AUTHORIZED);
    }
    let checked: Vec<Result<AclFilter, String>> = req
        .filters
        .into_iter()
        .map(|f| {
            AclFilter::from_wire(
                f.resource_type_filter,
                f.resource_name_filter,
                f.pattern_type_filter,
                f.principal_filter,
                f.host_filter,
                f.operation,
                f.permission_type,
            )
        })
        .collect();
    let valid: Vec<AclFilter> = checked.iter().filter_map(|r| r.as_ref().ok().cloned()).collect();
    let broker = ctx.broker.clone();
    let deleted = tokio::task::spawn_blocking(move || broker.controller.delete_acls(&valid))
        .await
        .unwrap_or_else(|e| Err(crate::controller::ControllerError::new(ErrorCode::UnknownServerError, e.to_string())));
    let mut deleted = match deleted {
        Ok(d) => d.into_iter(),
        Err(e) => {
            return DeleteAclsResponse {
                throttle_time_ms: 0,
                filter_results: checked.iter().map(|_| failed(e.code, e.message.clone())).collect(),
            }
        }
    };
    let filter_results = checked
        .into_iter()
        .map(|r| match r {
            Err(why) => failed(ErrorCode::InvalidRequest, why),
            Ok(_) => DeleteAclsFilterResult {
                error_code: 0,
                error_message: None,
                matching_acls: deleted
                    .next()
                    .unwrap_or_default()
                    .into_iter()
                    .map(|b| DeleteAclsMatchingAcl {
                        error_code: 0,
                        error_message: None,
                        resource_type: b.resource_type.code(),
                        resource_name: b.resource_name,
                        pattern_type: b.pattern_type.code(),
                        principal: b.principal,
                        host: b.host,
                        operation: b.operation.code(),
                        permission_type: b.permission.code(),
                    })
                    .collect(),
            },
        })
        .collect();
    DeleteAclsResponse { throttle_time_ms: 0, filter_results }
}
