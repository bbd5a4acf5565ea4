//! The requests of a SASL listener's connection before it has
//! authenticated, as Kafka's `SaslServerAuthenticator` serves them:
//! ApiVersions (answered as usual) and SaslHandshake, then the mechanism's
//! tokens in SaslAuthenticate requests (handshake v1) or as raw frames
//! without a Kafka header (handshake v0). Any other request closes the
//! connection unanswered; an unsupported mechanism is answered with
//! UNSUPPORTED_SASL_MECHANISM and a failed exchange with
//! SASL_AUTHENTICATION_FAILED and Kafka's message, each after
//! `connection.failed.authentication.delay.ms`, and then the connection
//! closes. Until a client has authenticated its frames are bounded by
//! `sasl.server.max.receive.size`
//! (checked in `connection`).

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
use crate::security::authorizer::ANONYMOUS;
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
        API_VERSIONS_KEY if handshaking => {
            dispatch::handle_frame(broker, listener, peer, ANONYMOUS, frame, memory).await
        }
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

#[cfg(test)]
mod tests {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::TcpStream;

    use super::*;
    use crate::broker::{BrokerSettings, RunningBroker};
    use crate::config::BrokerConfig;
    use crate::protocol::messages::metadata_request::MetadataRequest;
    use crate::protocol::messages::metadata_response::MetadataResponse;
    use crate::security::credentials::Change;
    use crate::security::sasl::scram::{ScramCredential, ScramHash};

    const JAAS: &str =
        r#"org.apache.kafka.common.security.plain.PlainLoginModule required user_alice="alice-secret";"#;

    async fn start(dir: &std::path::Path) -> RunningBroker {
        let log_dir = dir.to_string_lossy().into_owned();
        let config = BrokerConfig::with_settings(&[
            ("log.dirs", &log_dir),
            ("listeners", "PLAINTEXT://127.0.0.1:0,SASL_PLAINTEXT://127.0.0.1:0"),
            ("sasl.enabled.mechanisms", "PLAIN,SCRAM-SHA-256"),
            ("listener.name.sasl_plaintext.plain.sasl.jaas.config", JAAS),
            ("connection.failed.authentication.delay.ms", "0"),
        ])
        .unwrap();
        crate::broker::start(BrokerSettings::from_config(&config).unwrap()).await.unwrap()
    }

    struct Client {
        s: TcpStream,
        correlation_id: i32,
    }

    impl Client {
        async fn connect(addr: SocketAddr) -> Client {
            Client { s: TcpStream::connect(addr).await.unwrap(), correlation_id: 0 }
        }

        /// Sends one request; the response body (after its header), or
        /// `None` when the broker closed the connection instead.
        async fn call(&mut self, key: i16, version: i16, body: impl FnOnce(&mut Writer)) -> Option<Reader> {
            self.correlation_id += 1;
            let flexible = protocol::is_flexible(key, version);
            let mut w = Writer::new();
            RequestHeader { api_key: key, api_version: version, correlation_id: self.correlation_id, client_id: Some("t".into()) }
                .encode(&mut w, flexible);
            body(&mut w);
            let frame = w.finish_contiguous();
            self.s.write_all(&(frame.len() as u32).to_be_bytes()).await.unwrap();
            self.s.write_all(&frame).await.unwrap();
            let mut size = [0u8; 4];
            self.s.read_exact(&mut size).await.ok()?;
            let mut buf = vec![0u8; u32::from_be_bytes(size) as usize];
            self.s.read_exact(&mut buf).await.unwrap();
            let mut r = Reader::new(Bytes::from(buf));
            assert_eq!(r.i32().unwrap(), self.correlation_id);
            if flexible && key != API_VERSIONS_KEY {
                assert_eq!(r.tagged_count().unwrap(), 0);
            }
            Some(r)
        }

        async fn handshake(&mut self, mechanism: &str) -> SaslHandshakeResponse {
            let mut r = self
                .call(SASL_HANDSHAKE_KEY, 1, |w| SaslHandshakeRequest { mechanism: mechanism.into() }.encode(w, 1))
                .await
                .expect("a handshake response");
            SaslHandshakeResponse::decode(&mut r, 1).unwrap()
        }

        async fn authenticate(&mut self, token: &[u8]) -> Option<SaslAuthenticateResponse> {
            let req = SaslAuthenticateRequest { auth_bytes: Bytes::copy_from_slice(token) };
            let mut r = self.call(SASL_AUTHENTICATE_KEY, 2, |w| req.encode(w, 2)).await?;
            Some(SaslAuthenticateResponse::decode(&mut r, 2).unwrap())
        }

        async fn metadata(&mut self) -> Option<MetadataResponse> {
            let mut r = self.call(3, 12, |w| MetadataRequest::default().encode(w, 12)).await?;
            Some(MetadataResponse::decode(&mut r, 12).unwrap())
        }

        async fn closed(&mut self) -> bool {
            let mut b = [0u8; 1];
            matches!(tokio::time::timeout(Duration::from_secs(5), self.s.read(&mut b)).await, Ok(Ok(0)) | Ok(Err(_)))
        }
    }

    #[tokio::test]
    async fn plain_and_scram_authenticate_and_nothing_else_is_served_before() {
        let dir = tempfile::tempdir().unwrap();
        let running = start(dir.path()).await;
        let (plain_addr, sasl_addr) = (running.local_addrs()[0], running.local_addrs()[1]);

        // PLAINTEXT is served as before; SASL requests there are refused.
        let mut c = Client::connect(plain_addr).await;
        assert!(c.metadata().await.is_some());
        assert_eq!(c.handshake("PLAIN").await.error_code, ErrorCode::IllegalSaslState.code());

        // Before authentication: Metadata closes the connection, and so
        // does a frame over sasl.server.max.receive.size.
        let mut c = Client::connect(sasl_addr).await;
        assert!(c.metadata().await.is_none());
        let mut c = Client::connect(sasl_addr).await;
        c.s.write_all(&(600_000u32).to_be_bytes()).await.unwrap();
        assert!(c.closed().await);

        // An unknown mechanism: error 33 with the enabled ones, then closed.
        let mut c = Client::connect(sasl_addr).await;
        let r = c.handshake("GSSAPI").await;
        assert_eq!(r.error_code, ErrorCode::UnsupportedSaslMechanism.code());
        assert_eq!(r.mechanisms, vec!["PLAIN".to_string(), "SCRAM-SHA-256".to_string()]);
        assert!(c.closed().await);

        // A wrong password: error 58 with Kafka's message, then closed.
        let mut c = Client::connect(sasl_addr).await;
        assert_eq!(c.handshake("PLAIN").await.error_code, 0);
        let r = c.authenticate(b"\0alice\0nope").await.unwrap();
        assert_eq!(r.error_code, ErrorCode::SaslAuthenticationFailed.code());
        assert_eq!(r.error_message.as_deref(), Some("Authentication failed: Invalid username or password"));
        assert!(c.closed().await);

        // The right one: then everything is served.
        let mut c = Client::connect(sasl_addr).await;
        assert_eq!(c.handshake("PLAIN").await.error_code, 0);
        let r = c.authenticate(b"\0alice\0alice-secret").await.unwrap();
        assert_eq!((r.error_code, r.session_lifetime_ms), (0, 0));
        let md = c.metadata().await.unwrap();
        assert_eq!(md.brokers[0].port, i32::from(sasl_addr.port()), "the SASL listener is advertised to its clients");
        let r = c.authenticate(b"\0alice\0alice-secret").await.unwrap();
        assert_eq!(r.error_code, ErrorCode::IllegalSaslState.code());

        // SCRAM-SHA-256 against a stored credential.
        let salt = b"0123456789abcdef";
        let hash = ScramHash::Sha256;
        running
            .broker
            .scram
            .apply(vec![Change::Upsert {
                user: "bob".into(),
                hash,
                credential: ScramCredential::from_password(hash, "bob-secret", salt, 4096),
            }])
            .unwrap();
        let mut c = Client::connect(sasl_addr).await;
        assert_eq!(c.handshake("SCRAM-SHA-256").await.error_code, 0);
        let first = c.authenticate(b"n,,n=bob,r=clientnonce").await.unwrap();
        assert_eq!(first.error_code, 0);
        let server_first = String::from_utf8(first.auth_bytes.to_vec()).unwrap();
        let nonce = server_first.split(',').next().unwrap().strip_prefix("r=").unwrap().to_string();
        let salted = hash.hi(b"bob-secret", salt, 4096);
        let client_key = hash.hmac(&salted, b"Client Key");
        let without_proof = format!("c=biws,r={nonce}");
        let auth = format!("n=bob,r=clientnonce,{server_first},{without_proof}");
        let sig = hash.hmac(&hash.hash(&client_key), auth.as_bytes());
        let proof: Vec<u8> = client_key.iter().zip(&sig).map(|(a, b)| a ^ b).collect();
        use base64::Engine as _;
        let last = format!("{without_proof},p={}", base64::engine::general_purpose::STANDARD.encode(proof));
        let r = c.authenticate(last.as_bytes()).await.unwrap();
        assert_eq!(r.error_code, 0, "{:?}", r.error_message);
        assert!(r.auth_bytes.starts_with(b"v="));
        assert!(c.metadata().await.is_some());
        running.shutdown().await;
    }
}
