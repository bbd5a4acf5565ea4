//! The requests of a SASL listener's connection before it has
//! authenticated, as Kafka's `SaslServerAuthenticator` serves them:
//! ApiVersions (answered as usual) and SaslHandshake, then the mechanism's
//! tokens in SaslAuthenticate requests (handshake v1) or as raw frames
//! without a Kafka header (handshake v0). Any other request closes the
//! connection unanswered; an unsupported mechanism is answered with
//! UNSUPPORTED_SASL_MECHANISM and a failed exchange with
//! SASL_AUTHENTICATION_FAILED and Kafka's message, each after
//! `connection.failed.authentication.delay.ms`, and then the connection
//! closes.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;

use super::dispatch::{self, Outcome};
use super::listener::ListenerInfo;
use super::quotas::FrameMemory;
use crate::broker::Broker;
use crate::protocol::header::{encode_response_header, peek_ids, RequestHeader, API_VERSIONS_KEY};
use crate::protocol::messages::sasl_authenticate_request::SaslAuthenticateRequest;
use crate::protocol::messages::sasl_authenticate_response::SaslAuthenticateResponse;
use crate::protocol::messages::sasl_handshake_request::SaslHandshakeRequest;
use crate::protocol::messages::sasl_handshake_response::SaslHandshakeResponse;
use crate::protocol::{self, ErrorCode, Reader, Writer};
use crate::security::sasl::{Exchange, Mechanism, Session, SessionState, Step};

const SASL_HANDSHAKE_KEY: i16 = 17;
const SASL_AUTHENTICATE_KEY: i16 = 36;

/// Whether the next frame of this session is a raw SASL token (after
/// SaslHandshake v0), which may be shorter than a request header.
pub fn expects_raw_token(session: &Session) -> bool {
    matches!(session.state, SessionState::RawTokens { .. })
}

async fn failure_delay(broker: &Broker) {
    let ms = broker.config().connection_failed_authentication_delay_ms;
    if ms > 0 {
        tokio::time::sleep(Duration::from_millis(ms as u64)).await;
    }
}

/// Serves one frame of a connection that has not authenticated yet.
pub async fn handle_unauthenticated(
    broker: &Arc<Broker>,
    listener: &Arc<ListenerInfo>,
    peer: SocketAddr,
    session: &mut Session,
    frame: Bytes,
    memory: FrameMemory,
) -> Outcome {
    if let SessionState::RawTokens { mechanism, exchange } = &mut session.state {
        drop(memory);
        let mechanism = *mechanism;
        return match exchange.evaluate(&frame) {
            Ok(Step::Continue(challenge)) => Outcome::Respond(vec![Bytes::from(challenge)]),
            Ok(Step::Done { response, user }) => {
                tracing::debug!(%peer, user = %user, mechanism = mechanism.name(), "authenticated");
                session.state = SessionState::Authenticated { mechanism, user };
                Outcome::Respond(vec![Bytes::from(response)])
            }
            Err(e) => {
                // No Kafka framing to carry an error: Kafka closes too.
                failure_delay(broker).await;
                Outcome::Close(format!("SASL authentication failed: {}", e.message))
            }
        };
    }
    let Some((api_key, version, correlation_id)) = peek_ids(&frame) else {
        return Outcome::Close("frame too short for a request header".into());
    };
    let handshaking = matches!(session.state, SessionState::Handshake);
    match api_key {
        API_VERSIONS_KEY if handshaking => dispatch::handle_frame(broker, listener, peer, frame, memory).await,
        SASL_HANDSHAKE_KEY if handshaking => {
            drop(memory);
            let Some(spec) = crate::handlers::spec(api_key) else { return Outcome::Close("no SaslHandshake".into()) };
            if version < spec.min_version || version > spec.max_version {
                return Outcome::Close(format!("unsupported version {version} of SaslHandshake"));
            }
            let mut r = Reader::new(frame);
            let req = match RequestHeader::decode(&mut r, protocol::is_flexible)
                .and_then(|_| SaslHandshakeRequest::decode(&mut r, version))
            {
                Ok(req) => req,
                Err(e) => return Outcome::Close(format!("cannot decode SaslHandshake v{version}: {e}")),
            };
            let enabled = session.enabled_mechanism_names();
            let mechanism = Mechanism::parse(&req.mechanism)
                .filter(|m| session.listener.enabled_mechanisms.contains(m));
            let mut w = Writer::new();
            encode_response_header(&mut w, api_key, correlation_id, false);
            match mechanism {
                Some(m) => {
                    SaslHandshakeResponse { error_code: 0, mechanisms: enabled }.encode(&mut w, version);
                    let exchange = Box::new(Exchange::new(m, &session.listener, &broker.scram));
                    session.state = if version >= 1 {
                        SessionState::Authenticating { mechanism: m, exchange }
                    } else {
                        SessionState::RawTokens { mechanism: m, exchange }
                    };
                    Outcome::Respond(w.finish())
                }
                None => {
                    SaslHandshakeResponse { error_code: ErrorCode::UnsupportedSaslMechanism.code(), mechanisms: enabled }
                        .encode(&mut w, version);
                    failure_delay(broker).await;
                    Outcome::RespondThenClose(w.finish(), format!("unsupported SASL mechanism {}", req.mechanism))
                }
            }
        }
        SASL_AUTHENTICATE_KEY if matches!(session.state, SessionState::Authenticating { .. }) => {
            drop(memory);
            let Some(spec) = crate::handlers::spec(api_key) else { return Outcome::Close("no SaslAuthenticate".into()) };
            if version < spec.min_version || version > spec.max_version {
                return Outcome::Close(format!("unsupported version {version} of SaslAuthenticate"));
            }
            let mut r = Reader::new(frame);
            let req = match RequestHeader::decode(&mut r, protocol::is_flexible)
                .and_then(|_| SaslAuthenticateRequest::decode(&mut r, version))
            {
                Ok(req) => req,
                Err(e) => return Outcome::Close(format!("cannot decode SaslAuthenticate v{version}: {e}")),
            };
            let SessionState::Authenticating { mechanism, exchange } = &mut session.state else {
                return Outcome::Close("not authenticating".into());
            };
            let mechanism = *mechanism;
            let mut w = Writer::new();
            encode_response_header(&mut w, api_key, correlation_id, protocol::is_flexible(api_key, version));
            match exchange.evaluate(&req.auth_bytes) {
                Ok(step) => {
                    let auth_bytes = match step {
                        Step::Continue(challenge) => challenge,
                        Step::Done { response, user } => {
                            tracing::debug!(%peer, user = %user, mechanism = mechanism.name(), "authenticated");
                            session.state = SessionState::Authenticated { mechanism, user };
                            response
                        }
                    };
                    SaslAuthenticateResponse {
                        error_code: 0,
                        // Kafka's default for the field: empty, not null.
                        error_message: Some(String::new()),
                        auth_bytes: Bytes::from(auth_bytes),
                        session_lifetime_ms: 0,
                    }
                    .encode(&mut w, version);
                    Outcome::Respond(w.finish())
                }
                Err(e) => {
                    tracing::info!(%peer, listener = %listener.name, mechanism = mechanism.name(), reason = %e.message, "failed authentication");
                    broker.metrics.failed_authentications.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    SaslAuthenticateResponse {
                        error_code: ErrorCode::SaslAuthenticationFailed.code(),
                        error_message: Some(e.message.clone()),
                        auth_bytes: Bytes::new(),
                        session_lifetime_ms: 0,
                    }
                    .encode(&mut w, version);
                    failure_delay(broker).await;
                    Outcome::RespondThenClose(w.finish(), format!("SASL authentication failed: {}", e.message))
                }
            }
        }
        _ => {
            let name = crate::handlers::spec(api_key).map_or("unknown", |s| s.name);
            let during = if handshaking { "handshake" } else { "authentication" };
            Outcome::Close(format!("unexpected request {name} (key {api_key}) during SASL {during}"))
        }
    }
}
