//! ApiVersions (key 18): the versions of every API we implement, taken from
//! the one handler table, so we never advertise what we do not serve.

use super::{ApiSpec, RequestContext, APIS};
use crate::protocol::messages::api_versions_request::ApiVersionsRequest;
use crate::protocol::messages::api_versions_response::{
    ApiVersion, ApiVersionsResponse, FinalizedFeatureKey, SupportedFeatureKey,
};
use crate::protocol::ErrorCode;

pub const SPEC: ApiSpec = ApiSpec { api_key: 18, name: "ApiVersions", min_version: 0, max_version: 4 };

/// Features (KIP-584) as Kafka 4.x advertises them (v3+): the range klamm
/// supports and the level in force. Feature levels decide behaviour, not
/// which APIs exist: `transaction.version` 2 tells 4.x clients to use
/// KIP-890 transactions (epoch bump per transaction, implicit partition
/// and group adds), which EndTxn v5, Produce v12+ and TxnOffsetCommit v5
/// serve; older clients keep transaction version 1.
pub const FEATURES: &[(&str, i16, i16, i16)] = &[
    // (name, min supported, max supported, finalized level)
    ("transaction.version", 0, 2, 2),
];

/// The epoch of the finalized features: they never change while klamm
/// runs, and clients only look for a newer epoch than the last they saw.
const FINALIZED_FEATURES_EPOCH: i64 = 1;

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
    ApiVersionsResponse {
        error_code: 0,
        api_keys: api_keys(),
        supported_features: FEATURES
            .iter()
            .map(|&(name, min_version, max_version, _)| SupportedFeatureKey {
                name: name.to_string(),
                min_version,
                max_version,
            })
            .collect(),
        finalized_features_epoch: FINALIZED_FEATURES_EPOCH,
        finalized_features: FEATURES
            .iter()
            .map(|&(name, _, _, level)| FinalizedFeatureKey {
                name: name.to_string(),
                max_version_level: level,
                min_version_level: level,
            })
            .collect(),
        ..Default::default()
    }
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
