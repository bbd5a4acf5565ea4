//! SASL/PLAIN (RFC 4616) against the listener's JAAS users, with Kafka's
//! `PlainSaslServer` messages. The password comparison takes the same
//! time wherever the strings differ (`subtle`).

use std::collections::BTreeMap;

use subtle::ConstantTimeEq;

use super::{AuthFailure, Mechanism, Step};

/// The longest PLAIN token accepted (authzid, user and password).
pub const MAX_PLAIN_TOKEN_BYTES: usize = 64 * 1024;

pub struct PlainServer {
    users: BTreeMap<String, String>,
    done: bool,
}

impl PlainServer {
    pub fn new(users: BTreeMap<String, String>) -> PlainServer {
        PlainServer { users, done: false }
    }

    /// `[authzid] NUL authcid NUL passwd`, split as Kafka does (into at
    /// most three parts).
    pub fn evaluate(&mut self, token: &[u8]) -> Result<Step, AuthFailure> {
        if self.done {
            return Err(AuthFailure::invalid_credentials(Mechanism::Plain));
        }
        self.done = true;
        if token.len() > MAX_PLAIN_TOKEN_BYTES {
            return Err(AuthFailure::invalid_credentials(Mechanism::Plain));
        }
        let text = String::from_utf8_lossy(token);
        let mut parts = text.splitn(3, '\0');
        let (Some(authzid), Some(user), Some(password)) = (parts.next(), parts.next(), parts.next()) else {
            // Kafka: SaslException "Invalid SASL/PLAIN response: expected 3
            // tokens", which the client sees as invalid credentials.
            return Err(AuthFailure::invalid_credentials(Mechanism::Plain));
        };
        if user.is_empty() || password.is_empty() {
            return Err(AuthFailure::invalid_credentials(Mechanism::Plain));
        }
        let ok = match self.users.get(user) {
            Some(expected) => bool::from(expected.as_bytes().ct_eq(password.as_bytes())),
            None => false,
        };
        if !ok {
            return Err(AuthFailure::new("Authentication failed: Invalid username or password"));
        }
        if !authzid.is_empty() && authzid != user {
            return Err(AuthFailure::new(
                "Authentication failed: Client requested an authorization id that is different from username",
            ));
        }
        Ok(Step::Done { response: Vec::new(), user: user.to_string() })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn server() -> PlainServer {
        PlainServer::new([("alice".to_string(), "alice-secret".to_string())].into_iter().collect())
    }

    #[test]
    fn accepts_the_right_password() {
        assert_eq!(
            server().evaluate(b"\0alice\0alice-secret"),
            Ok(Step::Done { response: vec![], user: "alice".into() })
        );
        assert!(server().evaluate(b"alice\0alice\0alice-secret").is_ok());
    }

    #[test]
    fn rejects_as_kafka_does() {
        let bad = "Authentication failed: Invalid username or password";
        assert_eq!(server().evaluate(b"\0alice\0wrong").unwrap_err().message, bad);
        assert_eq!(server().evaluate(b"\0bob\0alice-secret").unwrap_err().message, bad);
        assert!(server().evaluate(b"\0alice\0alice-secret\0x").is_err());
        let generic = AuthFailure::invalid_credentials(Mechanism::Plain);
        assert_eq!(server().evaluate(b"alice-secret").unwrap_err(), generic);
        assert_eq!(server().evaluate(b"\0\0alice-secret").unwrap_err(), generic);
        assert!(server().evaluate(b"bob\0alice\0alice-secret").unwrap_err().message.contains("authorization id"));
        let mut s = server();
        s.evaluate(b"\0alice\0alice-secret").unwrap();
        assert!(s.evaluate(b"\0alice\0alice-secret").is_err(), "one exchange per server");
    }
}
