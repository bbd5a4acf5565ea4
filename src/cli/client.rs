//! A small async Kafka client over klamm's own codec: one TCP connection
//! per broker, ApiVersions negotiation on connect (each request is sent at
//! the highest version both sides know, capped at the version this CLI
//! was written for), correlation ids checked on every response, responses
//! bounded in size, and every call bounded in time. [`Client`] adds the
//! cluster view: bootstrap servers, per-node connections from Metadata,
//! and group coordinators from FindCoordinator.

use std::collections::HashMap;
use std::time::Duration;

use bytes::Bytes;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use super::CliError;
use crate::protocol::messages as m;
use crate::protocol::{is_flexible, DecodeError, Reader, Writer};

/// Largest response frame accepted from a broker (a fetch asks for far
/// less; see `consume::FETCH_MAX_BYTES`).
pub const MAX_RESPONSE_BYTES: usize = 128 * 1024 * 1024;
const CLIENT_ID: &str = "klamm-cli";
const API_VERSIONS_KEY: i16 = 18;
const UNSUPPORTED_VERSION: i16 = 35;

/// One request type: its api key, the versions our codec knows, the
/// highest version this CLI fills in correctly, and its response type.
pub trait Api {
    const KEY: i16;
    const NAME: &'static str;
    const MIN: i16;
    /// Highest version the CLI uses (fields of later versions are not set).
    const MAX_USED: i16;
    type Response;
    fn encode_body(&self, w: &mut Writer, version: i16);
    fn decode_response(r: &mut Reader, version: i16) -> Result<Self::Response, DecodeError>;
}

macro_rules! api {
    ($req:ident :: $Req:ident => $resp:ident :: $Resp:ident, $name:literal, max $max:literal) => {
        impl Api for m::$req::$Req {
            const KEY: i16 = m::$req::API_KEY;
            const NAME: &'static str = $name;
            const MIN: i16 = m::$req::MIN_VERSION;
            const MAX_USED: i16 = if $max < m::$req::MAX_VERSION { $max } else { m::$req::MAX_VERSION };
            type Response = m::$resp::$Resp;
            fn encode_body(&self, w: &mut Writer, version: i16) {
                self.encode(w, version)
            }
            fn decode_response(r: &mut Reader, version: i16) -> Result<Self::Response, DecodeError> {
                m::$resp::$Resp::decode(r, version)
            }
        }
    };
}

api!(api_versions_request::ApiVersionsRequest => api_versions_response::ApiVersionsResponse, "ApiVersions", max 3);
api!(metadata_request::MetadataRequest => metadata_response::MetadataResponse, "Metadata", max 12);
api!(create_topics_request::CreateTopicsRequest => create_topics_response::CreateTopicsResponse, "CreateTopics", max 7);
api!(delete_topics_request::DeleteTopicsRequest => delete_topics_response::DeleteTopicsResponse, "DeleteTopics", max 6);
api!(create_partitions_request::CreatePartitionsRequest => create_partitions_response::CreatePartitionsResponse, "CreatePartitions", max 3);
api!(describe_configs_request::DescribeConfigsRequest => describe_configs_response::DescribeConfigsResponse, "DescribeConfigs", max 4);
api!(incremental_alter_configs_request::IncrementalAlterConfigsRequest => incremental_alter_configs_response::IncrementalAlterConfigsResponse, "IncrementalAlterConfigs", max 1);
// Produce v13 and Fetch v13 name topics by id only: stay below.
api!(produce_request::ProduceRequest => produce_response::ProduceResponse, "Produce", max 12);
api!(fetch_request::FetchRequest => fetch_response::FetchResponse, "Fetch", max 12);
api!(list_offsets_request::ListOffsetsRequest => list_offsets_response::ListOffsetsResponse, "ListOffsets", max 9);
api!(find_coordinator_request::FindCoordinatorRequest => find_coordinator_response::FindCoordinatorResponse, "FindCoordinator", max 4);
api!(offset_commit_request::OffsetCommitRequest => offset_commit_response::OffsetCommitResponse, "OffsetCommit", max 9);
// OffsetFetch v8+ batches groups; one group is enough here.
api!(offset_fetch_request::OffsetFetchRequest => offset_fetch_response::OffsetFetchResponse, "OffsetFetch", max 7);
api!(list_groups_request::ListGroupsRequest => list_groups_response::ListGroupsResponse, "ListGroups", max 5);
api!(describe_groups_request::DescribeGroupsRequest => describe_groups_response::DescribeGroupsResponse, "DescribeGroups", max 5);
api!(delete_groups_request::DeleteGroupsRequest => delete_groups_response::DeleteGroupsResponse, "DeleteGroups", max 2);
api!(describe_cluster_request::DescribeClusterRequest => describe_cluster_response::DescribeClusterResponse, "DescribeCluster", max 1);

/// The version to send: the highest in both our range (capped at
/// `max_used`) and the broker's, if they overlap.
pub fn pick_version(ours: (i16, i16), broker: Option<(i16, i16)>) -> Option<i16> {
    let (lo, hi) = broker?;
    let v = ours.1.min(hi);
    (v >= ours.0.max(lo)).then_some(v)
}

/// A request sent whose response has not been read yet.
#[must_use]
pub struct Pending {
    correlation_id: i32,
    version: i16,
}

/// One connection to one broker.
pub struct Conn {
    stream: TcpStream,
    addr: String,
    next_correlation_id: i32,
    /// Broker's (min, max) version per api key, from ApiVersions.
    versions: HashMap<i16, (i16, i16)>,
    timeout: Duration,
}

impl Conn {
    /// Connects to `addr` (`host:port`) and negotiates versions.
    pub async fn connect(addr: &str, timeout: Duration) -> Result<Conn, CliError> {
        let stream = match tokio::time::timeout(timeout, TcpStream::connect(addr)).await {
            Ok(Ok(s)) => s,
            Ok(Err(e)) => return Err(CliError::Io(format!("cannot connect to {addr}: {e}"))),
            Err(_) => return Err(CliError::Io(format!("cannot connect to {addr}: timed out after {} ms", timeout.as_millis()))),
        };
        let _ = stream.set_nodelay(true);
        let mut conn = Conn { stream, addr: addr.to_string(), next_correlation_id: 1, versions: HashMap::new(), timeout };
        conn.negotiate().await?;
        Ok(conn)
    }

    pub fn addr(&self) -> &str {
        &self.addr
    }

    /// The broker's supported versions, sorted by api key.
    pub fn broker_versions(&self) -> Vec<(i16, i16, i16)> {
        let mut v: Vec<_> = self.versions.iter().map(|(k, (lo, hi))| (*k, *lo, *hi)).collect();
        v.sort();
        v
    }

    async fn negotiate(&mut self) -> Result<(), CliError> {
        // ApiVersions v3 first; a broker that does not know it answers
        // UNSUPPORTED_VERSION in v0 format with its own range (KIP-511).
        let req = m::api_versions_request::ApiVersionsRequest {
            client_software_name: CLIENT_ID.into(),
            client_software_version: env!("CARGO_PKG_VERSION").into(),
            ..Default::default()
        };
        let mut resp = self.call_at(&req, 3).await;
        if let Ok(r) = &resp {
            if r.error_code == UNSUPPORTED_VERSION {
                resp = self.call_at(&req, 0).await;
            }
        }
        let resp = resp?;
        check(resp.error_code, None)?;
        self.versions = resp.api_keys.iter().map(|k| (k.api_key, (k.min_version, k.max_version))).collect();
        Ok(())
    }

    /// The version `R` is sent at on this connection.
    pub fn version_of<R: Api>(&self) -> Result<i16, CliError> {
        pick_version((R::MIN, R::MAX_USED), self.versions.get(&R::KEY).copied()).ok_or_else(|| {
            CliError::Io(format!("broker {} supports no version of {} that this CLI can send", self.addr, R::NAME))
        })
    }

    /// Sends a request at the negotiated version and reads its response.
    pub async fn call<R: Api>(&mut self, req: &R) -> Result<R::Response, CliError> {
        let version = self.version_of::<R>()?;
        self.call_at(req, version).await
    }

    async fn call_at<R: Api>(&mut self, req: &R, version: i16) -> Result<R::Response, CliError> {
        let p = self.send_at(req, version).await?;
        self.recv::<R>(p).await
    }

    /// Sends without waiting for the response (for pipelining, and for
    /// produce with acks=0, which has none).
    pub async fn send<R: Api>(&mut self, req: &R) -> Result<Pending, CliError> {
        let version = self.version_of::<R>()?;
        self.send_at(req, version).await
    }

    async fn send_at<R: Api>(&mut self, req: &R, version: i16) -> Result<Pending, CliError> {
        let correlation_id = self.next_correlation_id;
        self.next_correlation_id = self.next_correlation_id.wrapping_add(1).max(1);
        let frame = encode_request(req, version, correlation_id);
        match tokio::time::timeout(self.timeout, self.stream.write_all(&frame)).await {
            Ok(Ok(())) => Ok(Pending { correlation_id, version }),
            Ok(Err(e)) => Err(CliError::Io(format!("cannot send {} to {}: {e}", R::NAME, self.addr))),
            Err(_) => Err(CliError::Io(format!("sending {} to {} timed out", R::NAME, self.addr))),
        }
    }

    /// Reads the response to `p` (responses arrive in request order).
    pub async fn recv<R: Api>(&mut self, p: Pending) -> Result<R::Response, CliError> {
        let frame = match tokio::time::timeout(self.timeout, read_frame(&mut self.stream)).await {
            Ok(Ok(f)) => f,
            Ok(Err(e)) => return Err(CliError::Io(format!("{} from {}: {e}", R::NAME, self.addr))),
            Err(_) => {
                return Err(CliError::Io(format!(
                    "no {} response from {} within {} ms",
                    R::NAME,
                    self.addr,
                    self.timeout.as_millis()
                )))
            }
        };
        decode_response::<R>(frame, p.correlation_id, p.version)
            .map_err(|e| CliError::Io(format!("bad {} v{} response from {}: {e}", R::NAME, p.version, self.addr)))
    }
}

/// A size-prefixed request frame: header v1 (v2 for flexible versions)
/// and the body.
pub fn encode_request<R: Api>(req: &R, version: i16, correlation_id: i32) -> Bytes {
    let mut w = Writer::new();
    w.i32(0); // size, patched below
    let header = crate::protocol::header::RequestHeader {
        api_key: R::KEY,
        api_version: version,
        correlation_id,
        client_id: Some(CLIENT_ID.into()),
    };
    header.encode(&mut w, is_flexible(R::KEY, version));
    req.encode_body(&mut w, version);
    let mut out = w.finish_contiguous().to_vec();
    let size = (out.len() - 4) as i32;
    out[..4].copy_from_slice(&size.to_be_bytes());
    Bytes::from(out)
}

/// Decodes a response frame (without its size prefix).
pub fn decode_response<R: Api>(frame: Bytes, correlation_id: i32, version: i16) -> Result<R::Response, String> {
    let mut r = Reader::new(frame);
    let got = r.i32().map_err(|e| e.to_string())?;
    if got != correlation_id {
        return Err(format!("correlation id {got}, expected {correlation_id}"));
    }
    // Response header v1 (tagged fields) for flexible versions, except
    // ApiVersions, whose response header is always v0.
    if is_flexible(R::KEY, version) && R::KEY != API_VERSIONS_KEY {
        let n = r.tagged_count().map_err(|e| e.to_string())?;
        for _ in 0..n {
            r.tagged_field().map_err(|e| e.to_string())?;
        }
    }
    R::decode_response(&mut r, version).map_err(|e| e.to_string())
}

async fn read_frame(stream: &mut TcpStream) -> std::io::Result<Bytes> {
    let mut len = [0u8; 4];
    stream.read_exact(&mut len).await?;
    let len = i32::from_be_bytes(len);
    if len < 4 || len as usize > MAX_RESPONSE_BYTES {
        return Err(std::io::Error::new(std::io::ErrorKind::InvalidData, format!("response size {len} out of bounds")));
    }
    let mut body = vec![0u8; len as usize];
    stream.read_exact(&mut body).await?;
    Ok(Bytes::from(body))
}

/// `host:port`, with brackets around an IPv6 host.
pub fn host_port(host: &str, port: u16) -> String {
    if host.contains(':') {
        format!("[{host}]:{port}")
    } else {
        format!("{host}:{port}")
    }
}

/// `Ok` for error code 0, else the Kafka error.
pub fn check(code: i16, message: Option<&str>) -> Result<(), CliError> {
    if code == 0 {
        Ok(())
    } else {
        Err(CliError::Kafka { code, message: message.filter(|m| !m.is_empty()).map(str::to_string) })
    }
}

/// Connection options shared by every command.
#[derive(Clone, Debug)]
pub struct ClientConfig {
    pub bootstrap: Vec<String>,
    pub timeout: Duration,
}

/// The cluster as the CLI sees it: a bootstrap connection, the brokers
/// from the last Metadata, and connections to them opened on demand.
pub struct Client {
    config: ClientConfig,
    bootstrap: Conn,
    nodes: HashMap<i32, String>,
    conns: HashMap<i32, Conn>,
}

impl Client {
    /// Connects to the first bootstrap server that answers.
    pub async fn connect(config: ClientConfig) -> Result<Client, CliError> {
        let mut last = CliError::Usage("no bootstrap server given".into());
        for addr in &config.bootstrap {
            match Conn::connect(addr, config.timeout).await {
                Ok(bootstrap) => {
                    return Ok(Client { config, bootstrap, nodes: HashMap::new(), conns: HashMap::new() })
                }
                Err(e) => last = e,
            }
        }
        Err(last)
    }

    /// The bootstrap connection (for requests any broker answers).
    pub fn any(&mut self) -> &mut Conn {
        &mut self.bootstrap
    }

    /// Metadata for `topics` (all topics for `None`), remembering the
    /// brokers' addresses. Never creates topics.
    pub async fn metadata(&mut self, topics: Option<&[String]>) -> Result<m::metadata_response::MetadataResponse, CliError> {
        let req = m::metadata_request::MetadataRequest {
            topics: topics.map(|ts| {
                ts.iter()
                    .map(|t| m::metadata_request::MetadataRequestTopic { name: Some(t.clone()), ..Default::default() })
                    .collect()
            }),
            allow_auto_topic_creation: false,
            ..Default::default()
        };
        let resp = self.bootstrap.call(&req).await?;
        for b in &resp.brokers {
            self.nodes.insert(b.node_id, host_port(&b.host, b.port as u16));
        }
        Ok(resp)
    }

    /// A connection to broker `node_id` (known from a Metadata call). The
    /// bootstrap connection is reused when it is that broker.
    pub async fn node(&mut self, node_id: i32) -> Result<&mut Conn, CliError> {
        let Some(addr) = self.nodes.get(&node_id).cloned() else {
            return Err(CliError::Io(format!("broker {node_id} is not in the metadata")));
        };
        if addr == self.bootstrap.addr && self.nodes.len() == 1 {
            return Ok(&mut self.bootstrap);
        }
        if !self.conns.contains_key(&node_id) {
            let c = Conn::connect(&addr, self.config.timeout).await?;
            self.conns.insert(node_id, c);
        }
        self.conns.get_mut(&node_id).ok_or_else(|| CliError::Io(format!("no connection to broker {node_id}")))
    }

    /// A connection to the coordinator of consumer group `group`.
    pub async fn coordinator(&mut self, group: &str) -> Result<&mut Conn, CliError> {
        let req = m::find_coordinator_request::FindCoordinatorRequest {
            key: group.to_string(),
            key_type: 0,
            coordinator_keys: vec![group.to_string()],
        };
        let version = self.bootstrap.version_of::<m::find_coordinator_request::FindCoordinatorRequest>()?;
        let mut attempts = 0;
        let (node_id, host, port) = loop {
            let resp = self.bootstrap.call(&req).await?;
            let (code, message, found) = if version >= 4 {
                match resp.coordinators.first() {
                    Some(c) => (c.error_code, c.error_message.clone(), (c.node_id, c.host.clone(), c.port)),
                    None => return Err(CliError::Io("FindCoordinator answered no coordinator".into())),
                }
            } else {
                (resp.error_code, resp.error_message.clone(), (resp.node_id, resp.host.clone(), resp.port))
            };
            // The coordinator may still be loading right after start.
            if (code == 14 || code == 15) && attempts < 20 {
                attempts += 1;
                tokio::time::sleep(Duration::from_millis(250)).await;
                continue;
            }
            check(code, message.as_deref())?;
            break found;
        };
        self.nodes.insert(node_id, host_port(&host, port as u16));
        self.node(node_id).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn version_is_the_highest_both_know() {
        assert_eq!(pick_version((0, 12), Some((3, 13))), Some(12));
        assert_eq!(pick_version((0, 12), Some((3, 9))), Some(9));
        assert_eq!(pick_version((4, 12), Some((0, 3))), None);
        assert_eq!(pick_version((0, 12), None), None);
    }

    #[test]
    fn request_frames_and_responses_round_trip() {
        let req = m::metadata_request::MetadataRequest::default();
        let frame = encode_request(&req, 12, 77);
        let size = i32::from_be_bytes([frame[0], frame[1], frame[2], frame[3]]);
        assert_eq!(size as usize, frame.len() - 4);
        assert_eq!(crate::protocol::header::peek_ids(&frame[4..]), Some((3, 12, 77)));

        let resp = m::metadata_response::MetadataResponse { controller_id: 5, ..Default::default() };
        let mut w = Writer::new();
        w.i32(77);
        w.uvarint(0);
        resp.encode(&mut w, 12);
        let got = decode_response::<m::metadata_request::MetadataRequest>(w.finish_contiguous(), 77, 12).unwrap();
        assert_eq!(got.controller_id, 5);
        let mut w = Writer::new();
        w.i32(78);
        assert!(decode_response::<m::metadata_request::MetadataRequest>(w.finish_contiguous(), 77, 12).is_err());
    }
}
