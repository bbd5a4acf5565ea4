//! SASL/SCRAM-SHA-256 and SCRAM-SHA-512 (RFC 5802, RFC 7677) as Kafka's
//! `ScramSaslServer` serves them: the GS2 header must be `n` (no channel
//! binding), the client's authorization id, when given, must be the user
//! name, credentials with fewer than 4096 iterations are refused, and
//! every failure but the authorization id one reaches the client as
//! Kafka's generic "invalid credentials" message. The server holds only
//! the salted keys (`ScramCredential`), never a password.

use std::sync::Arc;

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine as _;
use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256, Sha512};
use subtle::ConstantTimeEq;

use super::{AuthFailure, Mechanism, Step};
use crate::security::credentials::ScramStore;

/// Kafka's bounds on a credential's iterations (`ScramMechanism`).
pub const MIN_ITERATIONS: i32 = 4096;
pub const MAX_ITERATIONS: i32 = 16384;

/// The longest SCRAM message accepted from a client.
pub const MAX_SCRAM_MESSAGE_BYTES: usize = 16 * 1024;

/// The hash of a SCRAM mechanism.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum ScramHash {
    Sha256,
    Sha512,
}

impl ScramHash {
    pub fn mechanism(self) -> Mechanism {
        match self {
            ScramHash::Sha256 => Mechanism::ScramSha256,
            ScramHash::Sha512 => Mechanism::ScramSha512,
        }
    }

    /// Kafka's `ScramMechanism` type id in the admin APIs (0 is UNKNOWN).
    pub fn type_id(self) -> i8 {
        match self {
            ScramHash::Sha256 => 1,
            ScramHash::Sha512 => 2,
        }
    }

    pub fn from_type_id(id: i8) -> Option<ScramHash> {
        match id {
            1 => Some(ScramHash::Sha256),
            2 => Some(ScramHash::Sha512),
            _ => None,
        }
    }

    pub fn hash(self, data: &[u8]) -> Vec<u8> {
        match self {
            ScramHash::Sha256 => Sha256::digest(data).to_vec(),
            ScramHash::Sha512 => Sha512::digest(data).to_vec(),
        }
    }

    pub fn hmac(self, key: &[u8], data: &[u8]) -> Vec<u8> {
        match self {
            ScramHash::Sha256 => hmac_once::<Hmac<Sha256>>(key, data),
            ScramHash::Sha512 => hmac_once::<Hmac<Sha512>>(key, data),
        }
    }

    /// RFC 5802's `Hi(str, salt, i)`: PBKDF2 with this HMAC, one block.
    pub fn hi(self, password: &[u8], salt: &[u8], iterations: u32) -> Vec<u8> {
        match self {
            ScramHash::Sha256 => hi_with::<Hmac<Sha256>>(password, salt, iterations),
            ScramHash::Sha512 => hi_with::<Hmac<Sha512>>(password, salt, iterations),
        }
    }
}

fn hmac_once<M: Mac + hmac::digest::KeyInit>(key: &[u8], data: &[u8]) -> Vec<u8> {
    // HMAC takes keys of any length: new_from_slice cannot fail.
    let mut m = <M as Mac>::new_from_slice(key).expect("HMAC accepts any key length");
    m.update(data);
    m.finalize().into_bytes().to_vec()
}

fn hi_with<M: Mac + hmac::digest::KeyInit + Clone>(password: &[u8], salt: &[u8], iterations: u32) -> Vec<u8> {
    let keyed = <M as Mac>::new_from_slice(password).expect("HMAC accepts any key length");
    let mut m = keyed.clone();
    m.update(salt);
    m.update(&1u32.to_be_bytes());
    let mut u = m.finalize().into_bytes().to_vec();
    let mut out = u.clone();
    for _ in 1..iterations.max(1) {
        let mut m = keyed.clone();
        m.update(&u);
        u = m.finalize().into_bytes().to_vec();
        for (o, x) in out.iter_mut().zip(&u) {
            *o ^= x;
        }
    }
    out
}

/// What the broker keeps of a SCRAM password (RFC 5802 section 3).
#[derive(Clone, PartialEq, Eq)]
pub struct ScramCredential {
    pub salt: Vec<u8>,
    pub stored_key: Vec<u8>,
    pub server_key: Vec<u8>,
    pub iterations: i32,
}

impl std::fmt::Debug for ScramCredential {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ScramCredential").field("iterations", &self.iterations).finish_non_exhaustive()
    }
}

impl ScramCredential {
    /// From the salted password a client sends in AlterUserScramCredentials.
    pub fn from_salted_password(hash: ScramHash, salt: &[u8], salted_password: &[u8], iterations: i32) -> ScramCredential {
        let client_key = hash.hmac(salted_password, b"Client Key");
        ScramCredential {
            salt: salt.to_vec(),
            stored_key: hash.hash(&client_key),
            server_key: hash.hmac(salted_password, b"Server Key"),
            iterations,
        }
    }

    /// From a password (tests, bootstrap users).
    pub fn from_password(hash: ScramHash, password: &str, salt: &[u8], iterations: i32) -> ScramCredential {
        let salted = hash.hi(password.as_bytes(), salt, iterations.max(1) as u32);
        ScramCredential::from_salted_password(hash, salt, &salted, iterations)
    }
}

/// RFC 5802 `saslname`: `=2C` is `,` and `=3D` is `=`; any other `=` is an error.
fn decode_sasl_name(name: &str) -> Option<String> {
    let mut out = String::with_capacity(name.len());
    let mut rest = name;
    while let Some(i) = rest.find('=') {
        out.push_str(&rest[..i]);
        let esc = rest.get(i..i + 3)?;
        match esc {
            "=2C" => out.push(','),
            "=3D" => out.push('='),
            _ => return None,
        }
        rest = &rest[i + 3..];
    }
    out.push_str(rest);
    Some(out)
}

/// A printable nonce: RFC 5802 excludes only `,`; base64 has none.
fn is_printable_nonce(s: &str) -> bool {
    !s.is_empty() && s.bytes().all(|c| (0x21..=0x7e).contains(&c) && c != b',')
}

enum State {
    ClientFirst,
    ClientFinal {
        user: String,
        credential: ScramCredential,
        gs2_header: String,
        client_first_bare: String,
        server_first: String,
        nonce: String,
    },
    Finished,
}

pub struct ScramServer {
    hash: ScramHash,
    store: Arc<ScramStore>,
    state: State,
    /// The server's part of the nonce (random unless set by a test).
    server_nonce: String,
}

impl ScramServer {
    pub fn new(hash: ScramHash, store: Arc<ScramStore>) -> ScramServer {
        let mut raw = [0u8; 24];
        raw[..16].copy_from_slice(&crate::util::random_bytes());
        raw[16..].copy_from_slice(&crate::util::random_bytes()[..8]);
        ScramServer::with_nonce(hash, store, B64.encode(raw))
    }

    pub fn with_nonce(hash: ScramHash, store: Arc<ScramStore>, server_nonce: String) -> ScramServer {
        ScramServer { hash, store, state: State::ClientFirst, server_nonce }
    }

    fn generic(&self) -> AuthFailure {
        AuthFailure::invalid_credentials(self.hash.mechanism())
    }

    pub fn evaluate(&mut self, token: &[u8]) -> Result<Step, AuthFailure> {
        let state = std::mem::replace(&mut self.state, State::Finished);
        if token.len() > MAX_SCRAM_MESSAGE_BYTES {
            return Err(self.generic());
        }
        let Ok(msg) = std::str::from_utf8(token) else { return Err(self.generic()) };
        match state {
            State::ClientFirst => self.client_first(msg),
            State::ClientFinal { user, credential, gs2_header, client_first_bare, server_first, nonce } => {
                self.client_final(msg, &user, &credential, &gs2_header, &client_first_bare, &server_first, &nonce)
            }
            State::Finished => Err(self.generic()),
        }
    }

    /// `n,[a=authzid],n=user,r=nonce[,ext...]`
    fn client_first(&mut self, msg: &str) -> Result<Step, AuthFailure> {
        let generic = self.generic();
        let Some(rest) = msg.strip_prefix("n,") else { return Err(generic) };
        let Some(comma) = rest.find(',') else { return Err(generic) };
        let authzid_part = &rest[..comma];
        let client_first_bare = &rest[comma + 1..];
        let authzid = match authzid_part {
            "" => String::new(),
            a => match a.strip_prefix("a=").and_then(decode_sasl_name) {
                Some(a) => a,
                None => return Err(generic),
            },
        };
        let gs2_header = format!("n,{authzid_part},");
        let mut attrs = client_first_bare.split(',');
        let user = match attrs.next().and_then(|a| a.strip_prefix("n=")).and_then(decode_sasl_name) {
            Some(u) if !u.is_empty() => u,
            _ => return Err(generic),
        };
        let client_nonce = match attrs.next().and_then(|a| a.strip_prefix("r=")) {
            Some(n) if is_printable_nonce(n) => n.to_string(),
            _ => return Err(generic),
        };
        // Extensions (`tokenauth=...` for delegation tokens) follow; klamm
        // has no delegation tokens, so a token login fails as an unknown user.
        let token_auth = attrs.any(|a| a.split_once('=').is_some_and(|(k, v)| k == "tokenauth" && v == "true"));
        if token_auth {
            return Err(generic);
        }
        let Some(credential) = self.store.get(&user, self.hash) else { return Err(generic) };
        if !authzid.is_empty() && authzid != user {
            return Err(AuthFailure::new(
                "Authentication failed: Client requested an authorization id that is different from username",
            ));
        }
        if credential.iterations < MIN_ITERATIONS {
            return Err(generic);
        }
        let nonce = format!("{client_nonce}{}", self.server_nonce);
        let server_first = format!("r={nonce},s={},i={}", B64.encode(&credential.salt), credential.iterations);
        let response = server_first.clone().into_bytes();
        self.state = State::ClientFinal {
            user,
            credential,
            gs2_header,
            client_first_bare: client_first_bare.to_string(),
            server_first,
            nonce,
        };
        Ok(Step::Continue(response))
    }

    /// `c=base64(gs2 header),r=nonce[,ext...],p=base64(proof)`
    #[allow(clippy::too_many_arguments)]
    fn client_final(
        &mut self,
        msg: &str,
        user: &str,
        credential: &ScramCredential,
        gs2_header: &str,
        client_first_bare: &str,
        server_first: &str,
        nonce: &str,
    ) -> Result<Step, AuthFailure> {
        let generic = self.generic();
        let Some(p_at) = msg.rfind(",p=") else { return Err(generic) };
        let without_proof = &msg[..p_at];
        let Ok(proof) = B64.decode(&msg[p_at + 3..]) else { return Err(generic) };
        let mut attrs = without_proof.split(',');
        let binding = attrs.next().and_then(|a| a.strip_prefix("c=")).and_then(|c| B64.decode(c).ok());
        if binding.as_deref() != Some(gs2_header.as_bytes()) {
            return Err(generic);
        }
        if attrs.next().and_then(|a| a.strip_prefix("r=")) != Some(nonce) {
            return Err(generic);
        }
        let auth_message = format!("{client_first_bare},{server_first},{without_proof}");
        let client_signature = self.hash.hmac(&credential.stored_key, auth_message.as_bytes());
        if proof.len() != client_signature.len() {
            return Err(generic);
        }
        let client_key: Vec<u8> = proof.iter().zip(&client_signature).map(|(a, b)| a ^ b).collect();
        let computed = self.hash.hash(&client_key);
        if !bool::from(computed.ct_eq(&credential.stored_key)) {
            return Err(generic);
        }
        let server_signature = self.hash.hmac(&credential.server_key, auth_message.as_bytes());
        let response = format!("v={}", B64.encode(server_signature)).into_bytes();
        Ok(Step::Done { response, user: user.to_string() })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// RFC 7677 section 3's example exchange (SCRAM-SHA-256).
    #[test]
    fn rfc7677_test_vector() {
        let salt = B64.decode("W22ZaJ0SNY7soEsUEjb6gQ==").unwrap();
        let store = Arc::new(ScramStore::in_memory());
        store.put_for_test("user", ScramHash::Sha256, ScramCredential::from_password(ScramHash::Sha256, "pencil", &salt, 4096));
        let mut server = ScramServer::with_nonce(ScramHash::Sha256, store, "%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0".into());
        let first = server.evaluate(b"n,,n=user,r=rOprNGfwEbeRWgbNEkqO").unwrap();
        assert_eq!(
            first,
            Step::Continue(b"r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096".to_vec())
        );
        let last = server
            .evaluate(b"c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=")
            .unwrap();
        assert_eq!(
            last,
            Step::Done { response: b"v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4=".to_vec(), user: "user".into() }
        );
    }

    /// RFC 7677's vector with a wrong proof, and other malformed finals.
    #[test]
    fn rfc7677_wrong_proof_fails() {
        let salt = B64.decode("W22ZaJ0SNY7soEsUEjb6gQ==").unwrap();
        let store = Arc::new(ScramStore::in_memory());
        store.put_for_test("user", ScramHash::Sha256, ScramCredential::from_password(ScramHash::Sha256, "pencil", &salt, 4096));
        let nonce = "rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0";
        for last in [
            format!("c=biws,r={nonce},p=eHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ="),
            format!("c=biws,r={nonce}x,p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ="),
            format!("c=eSws,r={nonce},p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ="),
            format!("c=biws,r={nonce}"),
            format!("c=biws,r={nonce},p=!!"),
        ] {
            let mut server = ScramServer::with_nonce(ScramHash::Sha256, store.clone(), "%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0".into());
            server.evaluate(b"n,,n=user,r=rOprNGfwEbeRWgbNEkqO").unwrap();
            let e = server.evaluate(last.as_bytes()).unwrap_err();
            assert_eq!(
                e.message,
                "Authentication failed during authentication due to invalid credentials with SASL mechanism SCRAM-SHA-256",
                "{last}"
            );
        }
    }

    /// A client side written from RFC 5802, for SHA-512 (RFC 7677 has
    /// only a SHA-256 vector).
    fn client_final(hash: ScramHash, password: &str, client_first_bare: &str, server_first: &str) -> (String, Vec<u8>) {
        let mut attrs = server_first.split(',');
        let nonce = attrs.next().unwrap().strip_prefix("r=").unwrap();
        let salt = B64.decode(attrs.next().unwrap().strip_prefix("s=").unwrap()).unwrap();
        let iterations: u32 = attrs.next().unwrap().strip_prefix("i=").unwrap().parse().unwrap();
        let salted = hash.hi(password.as_bytes(), &salt, iterations);
        let client_key = hash.hmac(&salted, b"Client Key");
        let stored_key = hash.hash(&client_key);
        let without_proof = format!("c=biws,r={nonce}");
        let auth = format!("{client_first_bare},{server_first},{without_proof}");
        let sig = hash.hmac(&stored_key, auth.as_bytes());
        let proof: Vec<u8> = client_key.iter().zip(&sig).map(|(a, b)| a ^ b).collect();
        let server_sig = hash.hmac(&hash.hmac(&salted, b"Server Key"), auth.as_bytes());
        (format!("{without_proof},p={}", B64.encode(proof)), format!("v={}", B64.encode(server_sig)).into_bytes())
    }

    #[test]
    fn sha512_round_trip_and_failures() {
        let store = Arc::new(ScramStore::in_memory());
        store.put_for_test("al,ice", ScramHash::Sha512, ScramCredential::from_password(ScramHash::Sha512, "secret", b"salty", 4096));
        let bare = "n=al=2Cice,r=abcdef";
        let mut server = ScramServer::new(ScramHash::Sha512, store.clone());
        let Step::Continue(first) = server.evaluate(format!("n,,{bare}").as_bytes()).unwrap() else { panic!() };
        let first = String::from_utf8(first).unwrap();
        assert!(first.starts_with("r=abcdef") && first.ends_with(",i=4096"), "{first}");
        let (last, want) = client_final(ScramHash::Sha512, "secret", bare, &first);
        assert_eq!(server.evaluate(last.as_bytes()).unwrap(), Step::Done { response: want, user: "al,ice".into() });

        let generic = AuthFailure::invalid_credentials(Mechanism::ScramSha512);
        let mut server = ScramServer::new(ScramHash::Sha512, store.clone());
        let Step::Continue(first) = server.evaluate(format!("n,,{bare}").as_bytes()).unwrap() else { panic!() };
        let (last, _) = client_final(ScramHash::Sha512, "wrong", bare, std::str::from_utf8(&first).unwrap());
        assert_eq!(server.evaluate(last.as_bytes()).unwrap_err(), generic);
        // Unknown user, the other hash, channel binding, malformed names.
        for first in ["n,,n=bob,r=abc", "y,,n=al=2Cice,r=abc", "p=tls-unique,,n=al=2Cice,r=abc", "n,,n=al=2Xice,r=abc", "n,,r=abc"] {
            let mut server = ScramServer::new(ScramHash::Sha512, store.clone());
            assert_eq!(server.evaluate(first.as_bytes()).unwrap_err(), generic, "{first}");
        }
        let mut server = ScramServer::new(ScramHash::Sha256, store.clone());
        assert!(server.evaluate(b"n,,n=al=2Cice,r=abc").is_err());
        let mut server = ScramServer::new(ScramHash::Sha512, store.clone());
        let e = server.evaluate(b"n,a=bob,n=al=2Cice,r=abc").unwrap_err();
        assert!(e.message.contains("authorization id"), "{e:?}");
        let mut server = ScramServer::new(ScramHash::Sha512, store);
        assert!(matches!(server.evaluate(b"n,a=al=2Cice,n=al=2Cice,r=abc"), Ok(Step::Continue(_))));
    }

    #[test]
    fn too_few_iterations_are_refused() {
        let store = Arc::new(ScramStore::in_memory());
        store.put_for_test("u", ScramHash::Sha256, ScramCredential::from_password(ScramHash::Sha256, "p", b"s", 1000));
        let mut server = ScramServer::new(ScramHash::Sha256, store);
        assert!(server.evaluate(b"n,,n=u,r=abc").is_err());
    }
}
