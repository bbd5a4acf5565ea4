//! Fuzz target `sasl`: the parsers of what an unauthenticated client and
//! the operator send (`klamm::security`).
//!
//! Input: a selector byte, then by `selector % 5`:
//! 0 a `sasl.jaas.config` value through `jaas::parse`;
//! 1 a SASL/PLAIN token against the users {alice: alice-secret};
//! 2, 3 a SCRAM-SHA-256 / -512 exchange with user `user` (4096
//!   iterations, RFC 7677's salt, but not its password, so the RFC's
//!   messages in the seeds get as far as the proof check) and RFC 7677's
//!   server nonce: a u16-BE-length client-first message, then the
//!   client-final message;
//! 4 the SCRAM credential store's file, opened with `ScramStore::open`.
//! Nothing may panic; PLAIN authenticates only with alice's password;
//! SCRAM never authenticates (the proof would need the password).
#![no_main]

mod common;

use std::sync::{Arc, OnceLock};

use klamm::security::credentials::{store_path, Change, ScramStore};
use klamm::security::jaas;
use klamm::security::sasl::plain::PlainServer;
use klamm::security::sasl::scram::{ScramCredential, ScramHash, ScramServer};
use klamm::security::sasl::Step;
use libfuzzer_sys::fuzz_target;

const SALT: &[u8] = b"[m\x99h\x9d\x125\x8e\xec\xa0K\x14\x126\xfa\x81";

fn store() -> &'static Arc<ScramStore> {
    static STORE: OnceLock<Arc<ScramStore>> = OnceLock::new();
    STORE.get_or_init(|| {
        let store = ScramStore::in_memory();
        let changes = [ScramHash::Sha256, ScramHash::Sha512]
            .into_iter()
            .map(|hash| Change::Upsert {
                user: "user".into(),
                hash,
                credential: ScramCredential::from_password(hash, "not-pencil", SALT, 4096),
            })
            .collect();
        store.apply(changes).expect("an in-memory store takes changes");
        Arc::new(store)
    })
}

fuzz_target!(|data: &[u8]| {
    let Some((&selector, rest)) = data.split_first() else { return };
    match selector % 5 {
        0 => {
            if let Ok(entry) = jaas::parse(&String::from_utf8_lossy(rest)) {
                assert!(!entry.login_module.is_empty());
            }
        }
        1 => {
            let users = [("alice".to_string(), "alice-secret".to_string())].into_iter().collect();
            if let Ok(Step::Done { user, .. }) = PlainServer::new(users).evaluate(rest) {
                assert_eq!(user, "alice");
                assert!(rest.ends_with(b"\0alice\0alice-secret"));
            }
        }
        s @ (2 | 3) => {
            let hash = if s == 2 { ScramHash::Sha256 } else { ScramHash::Sha512 };
            let mut input = common::Input::new(rest);
            let first = input.section();
            let last = input.rest();
            let mut server = ScramServer::with_nonce(hash, store().clone(), "%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0".into());
            match server.evaluate(first) {
                Ok(Step::Continue(_)) => {
                    let r = server.evaluate(last);
                    assert!(!matches!(r, Ok(Step::Done { .. })), "authenticated without the password");
                    assert!(server.evaluate(last).is_err(), "an exchange ends after its final message");
                }
                Ok(Step::Done { .. }) => panic!("authenticated on the first message"),
                Err(_) => {}
            }
        }
        _ => {
            let dir = common::scratch_dir("sasl");
            let path = store_path(&dir);
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(&path, rest).unwrap();
            if let Ok(store) = ScramStore::open(path.clone()) {
                for user in store.user_names() {
                    assert!(store.describe(&user).is_some());
                }
                store.apply(Vec::new()).expect("rewriting what was read");
                assert!(ScramStore::open(path).is_ok(), "what is written reads back");
            }
        }
    }
});
