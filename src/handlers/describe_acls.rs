//! DescribeAcls (key 29): the ACL bindings matching a filter, grouped by
//! resource pattern (`kafka-acls --list`). Needs DESCRIBE on the cluster.
//! Without an authorizer (`authorizer.class.name` unset) Kafka answers
//! SECURITY_DISABLED with "No Authorizer is configured on the broker":
//! MirrorMaker 2 syncs topic ACLs this way and takes that answer as "no
//! ACLs" (an UNSUPPORTED_VERSION would log an error every sync interval).

use std::collections::BTreeMap;

use super::{ApiSpec, RequestContext};
use crate::protocol::messages::describe_acls_request::DescribeAclsRequest;
use crate::protocol::messages::describe_acls_response::{AclDescription, DescribeAclsResource, DescribeAclsResponse};
use crate::protocol::ErrorCode;
use crate::security::authorizer::{AclFilter, AclOperation};

/// Kafka 4 serves v1-3 (v0 removed by KIP-896).
pub const SPEC: ApiSpec = ApiSpec { api_key: 29, name: "DescribeAcls", min_version: 1, max_version: 3 };

/// Kafka's message of a CLUSTER_AUTHORIZATION_FAILED for an ACL request.
pub const NOT_AUTHORIZED: &str = "Request is not authorized: the principal lacks the cluster permission";

fn error(code: ErrorCode, message: &str) -> DescribeAclsResponse {
    DescribeAclsResponse { error_code: code.code(), error_message: Some(message.to_string()), ..Default::default() }
}

pub async fn handle(ctx: &RequestContext<'_>, req: DescribeAclsRequest) -> DescribeAclsResponse {
    if !ctx.authorizing() {
        return error(ErrorCode::SecurityDisabled, "No Authorizer is configured on the broker");
    }
    if !ctx.authorized_cluster(AclOperation::Describe) {
        return error(ErrorCode::ClusterAuthorizationFailed, NOT_AUTHORIZED);
    }
    let filter = match AclFilter::from_wire(
        req.resource_type_filter,
        req.resource_name_filter,
        req.pattern_type_filter,
        req.principal_filter,
        req.host_filter,
        req.operation,
        req.permission_type,
    ) {
        Ok(f) => f,
        Err(why) => return error(ErrorCode::InvalidRequest, &why),
    };
    let image = ctx.broker.controller.image();
    let mut resources: BTreeMap<(i8, &str, i8), Vec<AclDescription>> = BTreeMap::new();
    for b in image.acls.iter().filter(|b| filter.matches(b)) {
        resources
            .entry((b.resource_type.code(), b.resource_name.as_str(), b.pattern_type.code()))
            .or_default()
            .push(AclDescription {
                principal: b.principal.clone(),
                host: b.host.clone(),
                operation: b.operation.code(),
                permission_type: b.permission.code(),
            });
    }
    DescribeAclsResponse {
        throttle_time_ms: 0,
        error_code: 0,
        error_message: None,
        resources: resources
            .into_iter()
            .map(|((resource_type, name, pattern_type), acls)| DescribeAclsResource {
                resource_type,
                resource_name: name.to_string(),
                pattern_type,
                acls,
            })
            .collect(),
    }
}
