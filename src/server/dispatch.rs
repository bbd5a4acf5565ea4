//! Turns one request frame into one outcome: decodes the header, applies
//! the version rules (KIP-511 for ApiVersions, connection close for other
//! unsupported versions, as Kafka does), routes the body to its handler and
//! encodes the response with the right header version. A request's memory
//! reservation is returned once its body is decoded, so a long-polling
//! Fetch or a parked JoinGroup does not hold it.

use std::net::SocketAddr;
use std::sync::Arc;

use bytes::Bytes;

use super::listener::ListenerInfo;
use super::quotas::FrameMemory;
use crate::broker::Broker;
use crate::handlers::{self, RequestContext};
use crate::protocol::header::{encode_response_header, peek_ids, RequestHeader, API_VERSIONS_KEY};
use crate::protocol::{self, Reader, Writer};

/// What the connection does after a request.
#[derive(Debug)]
pub enum Outcome {
    /// Send this response body (header included; the size prefix is added by the writer).
    Respond(Vec<Bytes>),
    /// The request asked for no response (Produce with acks=0).
    NoResponse,
    /// Close the connection, for the given reason.
    Close(String),
    /// Send this response, then close (a failed SASL authentication).
    RespondThenClose(Vec<Bytes>, String),
}

/// `principal` is the connection's (Kafka style, `User:ANONYMOUS` before
/// or without authentication).
/// `memory` is the frame's reservation: the request context returns it as
/// soon as the body is decoded (Produce keeps it until the append, its
/// records being slices of the frame), and at the latest when this
/// returns.
pub async fn handle_frame(
    broker: &Arc<Broker>,
    listener: &Arc<ListenerInfo>,
    peer: SocketAddr,
    principal: &str,
    frame: Bytes,
    memory: FrameMemory,
) -> Outcome {
    let Some((api_key, version, correlation_id)) = peek_ids(&frame) else {
        return Outcome::Close("frame too short for a request header".into());
    };
    let Some(spec) = handlers::spec(api_key) else {
        return Outcome::Close(format!("unsupported api key {api_key}"));
    };
    let supported = version >= spec.min_version && version <= spec.max_version;
    if !supported {
        if api_key == API_VERSIONS_KEY {
            // KIP-511: answer an unknown ApiVersions version with error 35
            // and a v0 body listing our ranges, so the client can retry.
            let mut w = Writer::new();
            encode_response_header(&mut w, api_key, correlation_id, false);
            handlers::api_versions::unsupported_version_response().encode(&mut w, 0);
            return Outcome::Respond(w.finish());
        }
        return Outcome::Close(format!("unsupported version {version} of api key {api_key}"));
    }
    let mut reader = Reader::new(frame);
    let header = match RequestHeader::decode(&mut reader, protocol::is_flexible) {
        Ok(h) => h,
        Err(e) => return Outcome::Close(format!("bad request header: {e}")),
    };
    let ctx = RequestContext::new(broker, listener, peer, &header, principal).with_request_memory(memory);
    let flexible = protocol::is_flexible(api_key, version);
    let mut w = Writer::with_capacity(512);
    encode_response_header(&mut w, api_key, correlation_id, flexible);
    match handlers::dispatch(&ctx, &mut reader, &mut w).await {
        Ok(()) if ctx.connection_closed() => Outcome::Close(format!("{} failed with acks=0", spec.name)),
        Ok(()) if ctx.response_suppressed() => Outcome::NoResponse,
        Ok(()) => Outcome::Respond(w.finish()),
        Err(e) => Outcome::Close(format!("cannot decode {} v{version}: {e}", spec.name)),
    }
}
