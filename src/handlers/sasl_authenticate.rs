//! SaslAuthenticate (key 36) on a connection that is not authenticating
//! (a PLAINTEXT listener, or after a successful authentication): Kafka's
//! `KafkaApis` answers ILLEGAL_SASL_STATE. The exchange itself is
//! `server::sasl`, before requests reach here.

use super::{ApiSpec, RequestContext};
use crate::protocol::messages::sasl_authenticate_request::SaslAuthenticateRequest;
use crate::protocol::messages::sasl_authenticate_response::SaslAuthenticateResponse;
use crate::protocol::ErrorCode;

pub const SPEC: ApiSpec = ApiSpec { api_key: 36, name: "SaslAuthenticate", min_version: 0, max_version: 2 };

pub async fn handle(_ctx: &RequestContext<'_>, _req: SaslAuthenticateRequest) -> SaslAuthenticateResponse {
    SaslAuthenticateResponse {
        error_code: ErrorCode::IllegalSaslState.code(),
        error_message: Some("SaslAuthenticate request received after successful authentication".into()),
        auth_bytes: Default::default(),
        session_lifetime_ms: 0,
    }
}
