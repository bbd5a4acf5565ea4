//! DescribeAcls (key 29), as Kafka answers it without an authorizer
//! (`authorizer.class.name` unset, klamm's only mode until issue 13's
//! authorizer lands): SECURITY_DISABLED with "No Authorizer is configured on the broker".
//! MirrorMaker 2 syncs topic ACLs this way and takes that answer as "no
//! ACLs"; an UNSUPPORTED_VERSION would log an error every sync interval.

use super::{ApiSpec, RequestContext};
use crate::protocol::messages::describe_acls_request::DescribeAclsRequest;
use crate::protocol::messages::describe_acls_response::DescribeAclsResponse;
use crate::protocol::ErrorCode;

/// Kafka 4 serves v1-3 (v0 removed by KIP-896).
pub const SPEC: ApiSpec = ApiSpec { api_key: 29, name: "DescribeAcls", min_version: 1, max_version: 3 };

pub async fn handle(_ctx: &RequestContext<'_>, _req: DescribeAclsRequest) -> DescribeAclsResponse {
    DescribeAclsResponse {
        error_code: ErrorCode::SecurityDisabled.code(),
        error_message: Some("No Authorizer is configured on the broker".to_string()),
        ..Default::default()
    }
}
