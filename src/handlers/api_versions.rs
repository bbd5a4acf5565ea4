//! ApiVersions (key 18): the versions of every API we implement, taken from
//! the one handler table, so we never advertise what we do not serve.

use super::{ApiSpec, RequestContext, APIS};
use crate::protocol::messages::api_versions_request::ApiVersionsRequest;
use crate::protocol::messages::api_versions_response::{ApiVersion, ApiVersionsResponse};
use crate::protocol::ErrorCode;

pub const SPEC: ApiSpec = ApiSpec { api_key: 18, name: "ApiVersions", min_version: 0, max_version: 4 };

fn api_keys() -> Vec<ApiVersion> {
    APIS.iter()
        .map(|s| ApiVersion { api_key: s.api_key, min_version: s.min_version, max_version: s.max_version })
        .collect()
}

/// KIP-511: the v0 body sent for an ApiVersions version we do not know.
/// As Kafka (`ApiVersionsRequest.getErrorResponse`), it lists only
/// ApiVersions itself, so the client can retry with a version we serve.
pub fn unsupported_version_response() -> ApiVersionsResponse {
    ApiVersionsResponse {
        error_code: ErrorCode::UnsupportedVersion.code(),
        api_keys: vec![ApiVersion { api_key: SPEC.api_key, min_version: SPEC.min_version, max_version: SPEC.max_version }],
        ..Default::default()
    }
}

/// Kafka's rule for client software name and version (v3+): letters,
/// digits, '-' and '.', starting and ending with a letter or digit.
fn valid_software_field(s: &str) -> bool {
    let b = s.as_bytes();
    !b.is_empty()
        && b[0].is_ascii_alphanumeric()
        && b[b.len() - 1].is_ascii_alphanumeric()
        && b.iter().all(|c| c.is_ascii_alphanumeric() || *c == b'-' || *c == b'.')
}

pub async fn handle(ctx: &RequestContext<'_>, req: ApiVersionsRequest) -> ApiVersionsResponse {
    if ctx.version() >= 3
        && !(valid_software_field(&req.client_software_name) && valid_software_field(&req.client_software_version))
    {
        return ApiVersionsResponse { error_code: ErrorCode::InvalidRequest.code(), ..Default::default() };
    }
    ApiVersionsResponse { error_code: 0, api_keys: api_keys(), ..Default::default() }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unsupported_version_lists_only_api_versions() {
        let r = unsupported_version_response();
        assert_eq!(r.error_code, 35);
        assert_eq!(r.api_keys, vec![ApiVersion { api_key: 18, min_version: 0, max_version: 4 }]);
    }

    #[test]
    fn software_names() {
        assert!(valid_software_field("apache-kafka-java"));
        assert!(valid_software_field("4.1.0"));
        assert!(!valid_software_field(""));
        assert!(!valid_software_field("-x"));
        assert!(!valid_software_field("a b"));
    }
}
