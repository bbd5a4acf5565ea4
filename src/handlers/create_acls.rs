//! CreateAcls (key 30): adds ACL bindings (`kafka-acls --add`), durably in
//! the metadata log. Needs ALTER on the cluster; each creation is checked
//! as Kafka's controller checks it (INVALID_REQUEST with its message); a
//! binding that exists already is a success. Without an authorizer every
//! creation gets SECURITY_DISABLED.

use super::describe_acls::NOT_AUTHORIZED;
use super::{ApiSpec, RequestContext};
use crate::protocol::messages::create_acls_request::{AclCreation, CreateAclsRequest};
use crate::protocol::messages::create_acls_response::{AclCreationResult, CreateAclsResponse};
use crate::protocol::ErrorCode;
use crate::security::authorizer::{AclBinding, AclOperation, PatternType, Permission, ResourceType};

/// Kafka 4 serves v1-3 (v0 removed by KIP-896).
pub const SPEC: ApiSpec = ApiSpec { api_key: 30, name: "CreateAcls", min_version: 1, max_version: 3 };

fn binding(c: AclCreation) -> Result<AclBinding, String> {
    let b = AclBinding {
        resource_type: ResourceType::from_code(c.resource_type)
            .ok_or_else(|| format!("Invalid resourceType {}", c.resource_type))?,
        resource_name: c.resource_name,
        pattern_type: PatternType::from_code(c.resource_pattern_type)
            .ok_or_else(|| format!("Invalid patternType {}", c.resource_pattern_type))?,
        principal: c.principal,
        host: c.host,
        operation: AclOperation::from_code(c.operation).ok_or_else(|| format!("Invalid operation {}", c.operation))?,
        permission: Permission::from_code(c.permission_type)
            .ok_or_else(|| format!("Invalid permissionType {}", c.permission_type))?,
    };
    b.validate()?;
    Ok(b)
}

pub async fn handle(ctx: &RequestContext<'_>, req: CreateAclsRequest) -> CreateAclsResponse {
    let all = |code: ErrorCode, message: &str| CreateAclsResponse {
        throttle_time_ms: 0,
        results: req
            .creations
            .iter()
            .map(|_| AclCreationResult { error_code: code.code(), error_message: Some(message.to_string()) })
            .collect(),
    };
    if !ctx.authorizing() {
        return all(ErrorCode::SecurityDisabled, "No Authorizer is configured.");
    }
    if !ctx.authorized_cluster(AclOperation::Alter) {
        return all(ErrorCode::ClusterAuthorizationFailed, NOT_AUTHORIZED);
    }
    let checked: Vec<Result<AclBinding, String>> = req.creations.into_iter().map(binding).collect();
    let valid: Vec<AclBinding> = checked.iter().filter_map(|r| r.as_ref().ok().cloned()).collect();
    let broker = ctx.broker.clone();
    let written = if valid.is_empty() {
        Ok(())
    } else {
        tokio::task::spawn_blocking(move || broker.controller.create_acls(valid))
            .await
            .unwrap_or_else(|e| Err(crate::controller::ControllerError::new(ErrorCode::UnknownServerError, e.to_string())))
    };
    let results = checked
        .into_iter()
        .map(|r| match (r, &written) {
            (Err(why), _) => AclCreationResult { error_code: ErrorCode::InvalidRequest.code(), error_message: Some(why) },
            (Ok(_), Ok(())) => AclCreationResult { error_code: 0, error_message: None },
            (Ok(_), Err(e)) => AclCreationResult { error_code: e.code.code(), error_message: Some(e.message.clone()) },
        })
        .collect();
    CreateAclsResponse { throttle_time_ms: 0, results }
}
