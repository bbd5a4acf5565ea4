//! SaslHandshake (key 17) on a connection that needs no handshake: a
//! PLAINTEXT listener, or a SASL one already authenticated (klamm has no
//! KIP-368 re-authentication yet). As Kafka's `KafkaApis`: ILLEGAL_SASL_STATE.
//! The handshake itself is `server::sasl`, before requests reach here.

use super::{ApiSpec, RequestContext};
use crate::protocol::messages::sasl_handshake_request::SaslHandshakeRequest;
use crate::protocol::messages::sasl_handshake_response::SaslHandshakeResponse;
use crate::protocol::ErrorCode;

pub const SPEC: ApiSpec = ApiSpec { api_key: 17, name: "SaslHandshake", min_version: 0, max_version: 1 };

pub async fn handle(_ctx: &RequestContext<'_>, _req: SaslHandshakeRequest) -> SaslHandshakeResponse {
    SaslHandshakeResponse { error_code: ErrorCode::IllegalSaslState.code(), mechanisms: Vec::new() }
}
