//! JoinGroup (key 11): maps the wire request to the group coordinator's
//! join (which parks until the rebalance completes) and its answer back to
//! the version's shape. Also owns the formatting of a client's address the
//! way Kafka reports it in DescribeGroups (`/127.0.0.1`).

use std::net::IpAddr;

use super::{ApiSpec, RequestContext};
use crate::group;
use crate::protocol::messages::join_group_request::JoinGroupRequest;
use crate::protocol::messages::join_group_response::{JoinGroupResponse, JoinGroupResponseMember};
use crate::security::authorizer::{AclOperation, ResourceType};

pub const SPEC: ApiSpec = ApiSpec { api_key: 11, name: "JoinGroup", min_version: 0, max_version: 9 };

pub async fn handle(ctx: &RequestContext<'_>, req: JoinGroupRequest) -> JoinGroupResponse {
    let version = ctx.version();
    // As Kafka: READ on the group.
    if !ctx.authorized(AclOperation::Read, ResourceType::Group, &req.group_id) {
        return to_wire(group::JoinGroupResponse::error(req.member_id, group::errors::GROUP_AUTHORIZATION_FAILED), version);
    }
    // A KIP-848 consumer group with members keeps its id; an empty one is
    // given up to the classic protocol (its offsets stay).
    if let Err(error_code) = ctx.broker.consumer_groups.release_to_classic(&req.group_id) {
        return to_wire(group::JoinGroupResponse::error(req.member_id, error_code), version);
    }
    let request = to_group_request(req, version, ctx.client_id(), ctx.peer.ip());
    let response = ctx.broker.groups.join_group(request).await;
    to_wire(response, version)
}

/// The coordinator's request for a wire request of `version`.
fn to_group_request(req: JoinGroupRequest, version: i16, client_id: &str, peer: IpAddr) -> group::JoinGroupRequest {
    group::JoinGroupRequest {
        group_id: req.group_id,
        session_timeout_ms: req.session_timeout_ms,
        // v0 has no rebalance timeout: Kafka uses the session timeout.
        rebalance_timeout_ms: if version == 0 { req.session_timeout_ms } else { req.rebalance_timeout_ms },
        member_id: req.member_id,
        group_instance_id: req.group_instance_id,
        protocol_type: req.protocol_type,
        // Copied: the group keeps member metadata for the member's life,
        // and a slice would keep the whole request frame (up to
        // socket.request.max.bytes) alive with it.
        protocols: req.protocols.into_iter().map(|p| (p.name, bytes::Bytes::copy_from_slice(&p.metadata))).collect(),
        reason: req.reason,
        api_version: version,
        client_id: client_id.to_string(),
        client_host: client_host(peer),
    }
}

/// The wire response: before v7 the protocol name is not nullable (an
/// unknown one is ""), from v7 an empty one is sent as null, as Kafka does.
fn to_wire(r: group::JoinGroupResponse, version: i16) -> JoinGroupResponse {
    let protocol_name = match r.protocol_name {
        None if version < 7 => Some(String::new()),
        Some(n) if version >= 7 && n.is_empty() => None,
        other => other,
    };
    JoinGroupResponse {
        throttle_time_ms: 0,
        error_code: r.error_code,
        generation_id: r.generation_id,
        protocol_type: r.protocol_type,
        protocol_name,
        leader: r.leader,
        skip_assignment: r.skip_assignment,
        member_id: r.member_id,
        members: r
            .members
            .into_iter()
            .map(|m| JoinGroupResponseMember {
                member_id: m.member_id,
                group_instance_id: m.group_instance_id,
                metadata: m.metadata,
            })
            .collect(),
    }
}

/// A client address as Java's `InetAddress.toString()` prints an address
/// without a host name: `/127.0.0.1`, `/0:0:0:0:0:0:0:1` (IPv6 in full,
/// lower-case hex without leading zeros). IPv4-mapped IPv6 addresses are
/// shown as IPv4, as Java accepts them.
pub(crate) fn client_host(ip: IpAddr) -> String {
    match ip {
        IpAddr::V4(v4) => format!("/{v4}"),
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => format!("/{v4}"),
            None => {
                let groups: Vec<String> = v6.segments().iter().map(|s| format!("{s:x}")).collect();
                format!("/{}", groups.join(":"))
            }
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::messages::join_group_request::JoinGroupRequestProtocol;
    use bytes::Bytes;

    #[test]
    fn client_host_is_formatted_as_java_does() {
        assert_eq!(client_host("127.0.0.1".parse().unwrap()), "/127.0.0.1");
        assert_eq!(client_host("::1".parse().unwrap()), "/0:0:0:0:0:0:0:1");
        assert_eq!(client_host("fe80::1:ab".parse().unwrap()), "/fe80:0:0:0:0:0:1:ab");
        assert_eq!(client_host("::ffff:10.0.0.2".parse().unwrap()), "/10.0.0.2");
    }

    fn request() -> JoinGroupRequest {
        JoinGroupRequest {
            group_id: "g".into(),
            session_timeout_ms: 10_000,
            rebalance_timeout_ms: 60_000,
            member_id: String::new(),
            group_instance_id: None,
            protocol_type: "consumer".into(),
            protocols: vec![JoinGroupRequestProtocol { name: "range".into(), metadata: Bytes::from_static(b"m") }],
            reason: None,
        }
    }

    #[test]
    fn v0_uses_the_session_timeout_as_rebalance_timeout() {
        let ip = "127.0.0.1".parse().unwrap();
        let r = to_group_request(request(), 0, "c", ip);
        assert_eq!(r.rebalance_timeout_ms, 10_000);
        assert_eq!(r.client_id, "c");
        assert_eq!(r.client_host, "/127.0.0.1");
        assert_eq!(r.protocols, vec![("range".to_string(), Bytes::from_static(b"m"))]);
        let frame = Bytes::from(vec![7u8; 1 << 16]);
        let mut big = request();
        big.protocols[0].metadata = frame.slice(100..110);
        let kept = to_group_request(big, 5, "c", ip).protocols.remove(0).1;
        let frame_range = frame.as_ptr() as usize..frame.as_ptr() as usize + frame.len();
        assert!(!frame_range.contains(&(kept.as_ptr() as usize)), "member metadata must not pin the request frame");
        let r = to_group_request(request(), 1, "c", ip);
        assert_eq!(r.rebalance_timeout_ms, 60_000);
        assert_eq!(r.api_version, 1);
    }

    #[test]
    fn protocol_name_nullability_follows_the_version() {
        let err = group::JoinGroupResponse::error("m", group::errors::UNKNOWN_MEMBER_ID);
        assert_eq!(to_wire(err.clone(), 6).protocol_name.as_deref(), Some(""));
        assert_eq!(to_wire(err.clone(), 7).protocol_name, None);
        let mut ok = err;
        ok.protocol_name = Some(String::new());
        assert_eq!(to_wire(ok.clone(), 9).protocol_name, None);
        ok.protocol_name = Some("range".into());
        assert_eq!(to_wire(ok.clone(), 5).protocol_name.as_deref(), Some("range"));
        assert_eq!(to_wire(ok, 9).protocol_name.as_deref(), Some("range"));
    }
}
