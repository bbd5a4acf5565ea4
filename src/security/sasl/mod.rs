//! SASL mechanisms a SASL listener serves and the per-connection state
//! Kafka's `SaslServerAuthenticator` keeps: before a client has
//! authenticated only ApiVersions, SaslHandshake and SaslAuthenticate are
//! answered (anything else closes the connection, as Kafka does). A
//! mechanism's exchange is a [`Exchange`]: tokens in, tokens out, until it
//! completes with a principal or fails with the message Kafka sends in
//! SASL_AUTHENTICATION_FAILED.

pub mod plain;
pub mod scram;

use std::collections::BTreeMap;
use std::sync::Arc;

use super::credentials::ScramStore;

/// The SASL mechanisms klamm implements, by Kafka's names.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Mechanism {
    Plain,
    ScramSha256,
    ScramSha512,
}

impl Mechanism {
    pub const ALL: [Mechanism; 3] = [Mechanism::Plain, Mechanism::ScramSha256, Mechanism::ScramSha512];

    /// Parses a mechanism name exactly (Kafka's names are case-sensitive).
    pub fn parse(name: &str) -> Option<Mechanism> {
        match name {
            "PLAIN" => Some(Mechanism::Plain),
            "SCRAM-SHA-256" => Some(Mechanism::ScramSha256),
            "SCRAM-SHA-512" => Some(Mechanism::ScramSha512),
            _ => None,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Mechanism::Plain => "PLAIN",
            Mechanism::ScramSha256 => "SCRAM-SHA-256",
            Mechanism::ScramSha512 => "SCRAM-SHA-512",
        }
    }

    /// The SCRAM hash, for the SCRAM mechanisms.
    pub fn scram(self) -> Option<scram::ScramHash> {
        match self {
            Mechanism::Plain => None,
            Mechanism::ScramSha256 => Some(scram::ScramHash::Sha256),
            Mechanism::ScramSha512 => Some(scram::ScramHash::Sha512),
        }
    }
}

/// What one SASL listener accepts (`sasl.enabled.mechanisms`, per
/// listener with `listener.name.<l>.sasl.enabled.mechanisms`) and its
/// PLAIN users (`user_<name>="<password>"` of the listener's
/// `plain.sasl.jaas.config`).
#[derive(Clone, Default, PartialEq, Eq)]
pub struct ListenerSasl {
    /// In configured order: the SaslHandshake response lists them so.
    pub enabled_mechanisms: Vec<Mechanism>,
    pub plain_users: BTreeMap<String, String>,
}

impl std::fmt::Debug for ListenerSasl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ListenerSasl")
            .field("enabled_mechanisms", &self.enabled_mechanisms)
            .field("plain_users", &self.plain_users.keys().collect::<Vec<_>>())
            .finish()
    }
}

/// Why an exchange failed: `message` is what the client is told in the
/// SASL_AUTHENTICATION_FAILED response (Kafka's wording).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuthFailure {
    pub message: String,
}

impl AuthFailure {
    pub fn new(message: impl Into<String>) -> AuthFailure {
        AuthFailure { message: message.into() }
    }

    /// What Kafka sends when the mechanism raised a plain `SaslException`
    /// (it hides the detail, which might tell whether the user exists).
    pub fn invalid_credentials(mechanism: Mechanism) -> AuthFailure {
        AuthFailure::new(format!(
            "Authentication failed during authentication due to invalid credentials with SASL mechanism {}",
            mechanism.name()
        ))
    }
}

/// One step of an exchange.
#[derive(Debug, PartialEq, Eq)]
pub enum Step {
    /// Send this challenge and wait for the next client token.
    Continue(Vec<u8>),
    /// Authenticated as `principal` (a user name); send `response` (may be empty).
    Done { response: Vec<u8>, user: String },
}

/// A mechanism's server side, fed one client token at a time.
pub enum Exchange {
    Plain(plain::PlainServer),
    Scram(Box<scram::ScramServer>),
}

impl Exchange {
    pub fn new(mechanism: Mechanism, listener: &ListenerSasl, scram_store: &Arc<ScramStore>) -> Exchange {
        match mechanism.scram() {
            None => Exchange::Plain(plain::PlainServer::new(listener.plain_users.clone())),
            Some(hash) => Exchange::Scram(Box::new(scram::ScramServer::new(hash, scram_store.clone()))),
        }
    }

    pub fn evaluate(&mut self, token: &[u8]) -> Result<Step, AuthFailure> {
        match self {
            Exchange::Plain(p) => p.evaluate(token),
            Exchange::Scram(s) => s.evaluate(token),
        }
    }
}

/// Where a connection of a SASL listener is in Kafka's authentication
/// sequence.
pub enum SessionState {
    /// Only ApiVersions and SaslHandshake are answered.
    Handshake,
    /// After SaslHandshake v1: SaslAuthenticate requests carry the tokens.
    Authenticating { mechanism: Mechanism, exchange: Box<Exchange> },
    /// After SaslHandshake v0: the next frames are raw SASL tokens with no
    /// Kafka header, answered with raw tokens.
    RawTokens { mechanism: Mechanism, exchange: Box<Exchange> },
    /// Authenticated: every request is served.
    Authenticated { mechanism: Mechanism, user: String },
}

/// One SASL connection's authentication state and configuration.
pub struct Session {
    pub listener: Arc<ListenerSasl>,
    pub state: SessionState,
}

impl Session {
    pub fn new(listener: Arc<ListenerSasl>) -> Session {
        Session { listener, state: SessionState::Handshake }
    }

    pub fn is_authenticated(&self) -> bool {
        matches!(self.state, SessionState::Authenticated { .. })
    }

    /// The authenticated principal, Kafka style (`User:alice`).
    pub fn principal(&self) -> Option<String> {
        match &self.state {
            SessionState::Authenticated { user, .. } => Some(format!("User:{user}")),
            _ => None,
        }
    }

    /// The enabled mechanisms in the order Kafka lists them in a
    /// SaslHandshake response (see [`kafka_listing_order`]).
    pub fn enabled_mechanism_names(&self) -> Vec<String> {
        kafka_listing_order(&self.listener.enabled_mechanisms).into_iter().map(|m| m.name().to_string()).collect()
    }
}

/// Kafka answers SaslHandshake with the key set of a `java.util.HashMap`
/// filled in configured order: for so few keys (16 buckets) that is the
/// order of `(h ^ h >>> 16) & 15` of each name's `String.hashCode`, ties
/// in insertion order (PLAIN, SCRAM-SHA-512, SCRAM-SHA-256 for
/// `PLAIN,SCRAM-SHA-256,SCRAM-SHA-512`). Clients do not care; tests
/// comparing with Kafka do.
pub fn kafka_listing_order(mechanisms: &[Mechanism]) -> Vec<Mechanism> {
    fn bucket(name: &str) -> u32 {
        let h = name.encode_utf16().fold(0u32, |h, c| h.wrapping_mul(31).wrapping_add(u32::from(c)));
        (h ^ (h >> 16)) & 15
    }
    let mut out = mechanisms.to_vec();
    out.sort_by_key(|m| bucket(m.name()));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn handshake_lists_mechanisms_in_kafkas_order() {
        use Mechanism::*;
        assert_eq!(kafka_listing_order(&[Plain, ScramSha256, ScramSha512]), vec![Plain, ScramSha512, ScramSha256]);
        assert_eq!(kafka_listing_order(&[ScramSha512, Plain]), vec![ScramSha512, Plain]);
        assert_eq!(kafka_listing_order(&[ScramSha256, Plain]), vec![Plain, ScramSha256]);
    }
}
