//! ApiVersions (key 18): the versions of every API we implement, taken from
//! the one handler table, so we never advertise what we do not serve.
//! v5 (KIP-1242): a client that names the cluster and node it means to
//! reach is told REBOOTSTRAP_REQUIRED when this is not that node, as Kafka
//! does (`KafkaApis.handleApiVersionsRequest`).

use super::{ApiSpec, RequestContext, APIS};
use crate::protocol::messages::api_versions_request::ApiVersionsRequest;
use crate::protocol::messages::api_versions_response::{
    ApiVersion, ApiVersionsResponse, FinalizedFeatureKey, SupportedFeatureKey,
};
use crate::protocol::ErrorCode;

pub const SPEC: ApiSpec = ApiSpec { api_key: 18, name: "ApiVersions", min_version: 0, max_version: 5 };

/// Features (KIP-584) as Kafka 4.x advertises them (v3+): the range klamm
/// supports and the level in force. Feature levels decide behaviour, not
/// which APIs exist: `transaction.version` 2 tells 4.x clients to use
/// KIP-890 transactions (epoch bump per transaction, implicit partition
/// and group adds), which EndTxn v5, Produce v12+ and TxnOffsetCommit v5
/// serve; older clients keep transaction version 1.
/// `group.version` (KIP-848) follows `group.coordinator.rebalance.protocols`
/// (see [`features`]).
pub const FEATURES: &[(&str, i16, i16, i16)] = &[
    // (name, min supported, max supported, finalized level)
    ("transaction.version", 0, 2, 2),
];

/// The epoch of the finalized features: they never change while klamm
/// runs, and clients only look for a newer epoch than the last they saw.
const FINALIZED_FEATURES_EPOCH: i64 = 1;

/// The APIs of the KIP-848 consumer group protocol, served only while
/// `group.coordinator.rebalance.protocols` contains `consumer`.
const CONSUMER_PROTOCOL_APIS: [i16; 2] = [
    super::consumer_group_heartbeat::SPEC.api_key,
    super::consumer_group_describe::SPEC.api_key,
];

/// Whether the broker serves the consumer group protocol (KIP-848).
pub fn consumer_protocol_enabled(ctx: &RequestContext<'_>) -> bool {
    ctx.broker.config().group_coordinator_rebalance_protocols.iter().any(|p| p == "consumer")
}

/// `group.version` as Kafka 4.x advertises it: 1 = the consumer protocol.
const GROUP_VERSION_FEATURE: &str = "group.version";

/// Every feature with its supported range and finalized level.
fn features(consumer_protocol: bool) -> Vec<(&'static str, i16, i16, i16)> {
    let mut out = FEATURES.to_vec();
    out.push((GROUP_VERSION_FEATURE, 0, 1, i16::from(consumer_protocol)));
    out
}

fn api_keys(consumer_protocol: bool) -> Vec<ApiVersion> {
    APIS.iter()
        .filter(|s| consumer_protocol || !CONSUMER_PROTOCOL_APIS.contains(&s.api_key))
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

/// Kafka's `clusterIdOrNodeIdIsInvalid` (v5+): the client named a cluster
/// (and node; the node is only checked with a cluster) that is not this one.
fn names_another_node(version: i16, req: &ApiVersionsRequest, cluster_id: &str, node_id: i32) -> bool {
    version >= 5 && req.cluster_id.as_deref().is_some_and(|c| c != cluster_id || req.node_id != node_id)
}

pub async fn handle(ctx: &RequestContext<'_>, req: ApiVersionsRequest) -> ApiVersionsResponse {
    if ctx.version() >= 3
        && !(valid_software_field(&req.client_software_name) && valid_software_field(&req.client_software_version))
    {
        return ApiVersionsResponse { error_code: ErrorCode::InvalidRequest.code(), ..Default::default() };
    }
    let controller = &ctx.broker.controller;
    if names_another_node(ctx.version(), &req, controller.cluster_id(), controller.node_id()) {
        return ApiVersionsResponse { error_code: ErrorCode::RebootstrapRequired.code(), ..Default::default() };
    }
    let consumer_protocol = consumer_protocol_enabled(ctx);
    let features = features(consumer_protocol);
    ApiVersionsResponse {
        error_code: 0,
        api_keys: api_keys(consumer_protocol),
        supported_features: features
            .iter()
            .map(|&(name, min_version, max_version, _)| SupportedFeatureKey {
                name: name.to_string(),
                min_version,
                max_version,
            })
            .collect(),
        finalized_features_epoch: FINALIZED_FEATURES_EPOCH,
        finalized_features: features
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
        assert_eq!(r.api_keys, vec![ApiVersion { api_key: 18, min_version: 0, max_version: 5 }]);
    }

    #[test]
    fn the_consumer_protocol_apis_are_listed_only_when_enabled() {
        let with: Vec<i16> = api_keys(true).iter().map(|k| k.api_key).collect();
        let without: Vec<i16> = api_keys(false).iter().map(|k| k.api_key).collect();
        assert!(with.contains(&68) && with.contains(&69));
        assert!(!without.contains(&68) && !without.contains(&69));
        assert_eq!(with.len(), without.len() + 2);
    }

    #[test]
    fn v5_checks_the_cluster_and_node_the_client_names() {
        let req = |cluster_id: Option<&str>, node_id| ApiVersionsRequest {
            cluster_id: cluster_id.map(str::to_string),
            node_id,
            ..Default::default()
        };
        assert!(!names_another_node(5, &req(None, -1), "c", 1));
        assert!(!names_another_node(5, &req(None, 7), "c", 1), "a node alone is not checked");
        assert!(!names_another_node(5, &req(Some("c"), 1), "c", 1));
        assert!(names_another_node(5, &req(Some("c"), -1), "c", 1));
        assert!(names_another_node(5, &req(Some("x"), 1), "c", 1));
        assert!(!names_another_node(4, &req(Some("x"), 1), "c", 1));
    }

    #[test]
    fn v5_request_fields_on_the_wire() {
        use crate::protocol::{Reader, Writer};
        // ApiVersionsRequest v5: client name, version (compact strings),
        // cluster id (compact nullable string), node id (int32), tags.
        let mut bytes = vec![4u8];
        bytes.extend_from_slice(b"kcj");
        bytes.push(4);
        bytes.extend_from_slice(b"4.4");
        bytes.push(3);
        bytes.extend_from_slice(b"id");
        bytes.extend_from_slice(&7i32.to_be_bytes());
        bytes.push(0);
        let req = ApiVersionsRequest::decode(&mut Reader::new(bytes::Bytes::from(bytes.clone())), 5).unwrap();
        assert_eq!(req.cluster_id.as_deref(), Some("id"));
        assert_eq!(req.node_id, 7);
        let mut w = Writer::new();
        req.encode(&mut w, 5);
        assert_eq!(&w.finish_contiguous()[..], &bytes[..]);
        // A null cluster id is length 0.
        let null = ApiVersionsRequest { cluster_id: None, node_id: -1, ..Default::default() };
        let mut w = Writer::new();
        null.encode(&mut w, 5);
        assert_eq!(&w.finish_contiguous()[..], &[1, 1, 0, 0xff, 0xff, 0xff, 0xff, 0][..]);
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
