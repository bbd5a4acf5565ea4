//! The SCRAM credentials store: user → mechanism → salted keys, changed
//! with AlterUserScramCredentials (`kafka-configs --alter --add-config
//! 'SCRAM-SHA-256=[password=...]' --entity-type users`) and read by the
//! SCRAM exchanges. Only what RFC 5802 lets a server keep is stored
//! (salt, StoredKey, ServerKey, iterations), as JSON in
//! `<log.dirs>/.klamm/scram-credentials.json`, replaced atomically on
//! each change (temp file, fsync, rename) before the change is
//! acknowledged. Bounded: `MAX_SCRAM_USERS` users, a file of at most
//! `MAX_STORE_BYTES`.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard};

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine as _;
use serde::{Deserialize, Serialize};

use super::sasl::scram::{ScramCredential, ScramHash};

/// Most users with SCRAM credentials.
pub const MAX_SCRAM_USERS: usize = 100_000;
/// Largest store file read at startup.
pub const MAX_STORE_BYTES: u64 = 256 * 1024 * 1024;
/// Longest user name.
pub const MAX_USER_NAME_BYTES: usize = 1024;
/// Longest salt or salted password accepted.
pub const MAX_KEY_BYTES: usize = 1024;

/// The store's file under the data directory.
pub fn store_path(log_dir: &Path) -> PathBuf {
    log_dir.join(".klamm").join("scram-credentials.json")
}

type Users = BTreeMap<String, BTreeMap<ScramHash, ScramCredential>>;

pub struct ScramStore {
    path: Option<PathBuf>,
    users: Mutex<Users>,
    /// Serialises writers, so the file always holds the latest state.
    write: Mutex<()>,
}

impl std::fmt::Debug for ScramStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ScramStore").field("path", &self.path).field("users", &self.users().len()).finish()
    }
}

#[derive(Serialize, Deserialize)]
struct FileFormat {
    version: u32,
    users: BTreeMap<String, BTreeMap<String, FileCredential>>,
}

#[derive(Serialize, Deserialize)]
struct FileCredential {
    salt: String,
    stored_key: String,
    server_key: String,
    iterations: i32,
}

fn hash_name(h: ScramHash) -> &'static str {
    h.mechanism().name()
}

/// One change of AlterUserScramCredentials.
pub enum Change {
    Delete { user: String, hash: ScramHash },
    Upsert { user: String, hash: ScramHash, credential: ScramCredential },
}

impl ScramStore {
    /// A store that is never written (tests).
    pub fn in_memory() -> ScramStore {
        ScramStore { path: None, users: Mutex::new(BTreeMap::new()), write: Mutex::new(()) }
    }

    /// Loads the store at `path` (missing: empty). Blocking.
    pub fn open(path: PathBuf) -> Result<ScramStore, String> {
        let users = match std::fs::metadata(&path) {
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => BTreeMap::new(),
            Err(e) => return Err(format!("cannot read {}: {e}", path.display())),
            Ok(m) if m.len() > MAX_STORE_BYTES => {
                return Err(format!("{} is larger than {MAX_STORE_BYTES} bytes", path.display()))
            }
            Ok(_) => {
                let data = std::fs::read(&path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
                decode(&data).map_err(|e| format!("{} is damaged: {e}", path.display()))?
            }
        };
        Ok(ScramStore { path: Some(path), users: Mutex::new(users), write: Mutex::new(()) })
    }

    fn users(&self) -> MutexGuard<'_, Users> {
        self.users.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub fn get(&self, user: &str, hash: ScramHash) -> Option<ScramCredential> {
        self.users().get(user).and_then(|m| m.get(&hash)).cloned()
    }

    /// Each user's (mechanism, iterations), for DescribeUserScramCredentials.
    pub fn describe(&self, user: &str) -> Option<Vec<(ScramHash, i32)>> {
        self.users().get(user).map(|m| m.iter().map(|(h, c)| (*h, c.iterations)).collect())
    }

    pub fn user_names(&self) -> Vec<String> {
        self.users().keys().cloned().collect()
    }

    pub fn exists(&self, user: &str, hash: ScramHash) -> bool {
        self.users().get(user).is_some_and(|m| m.contains_key(&hash))
    }

    #[cfg(test)]
    pub fn put_for_test(&self, user: &str, hash: ScramHash, credential: ScramCredential) {
        self.users().entry(user.to_string()).or_default().insert(hash, credential);
    }

    /// Applies `changes` and makes them durable before returning
    /// (blocking: call from `spawn_blocking`). On a write error nothing
    /// changes in memory either.
    pub fn apply(&self, changes: Vec<Change>) -> Result<(), String> {
        let _w = self.write.lock().unwrap_or_else(|e| e.into_inner());
        let mut next = self.users().clone();
        for c in changes {
            match c {
                Change::Delete { user, hash } => {
                    if let Some(m) = next.get_mut(&user) {
                        m.remove(&hash);
                        if m.is_empty() {
                            next.remove(&user);
                        }
                    }
                }
                Change::Upsert { user, hash, credential } => {
                    if !next.contains_key(&user) && next.len() >= MAX_SCRAM_USERS {
                        return Err(format!("at most {MAX_SCRAM_USERS} users may have SCRAM credentials"));
                    }
                    next.entry(user).or_default().insert(hash, credential);
                }
            }
        }
        if let Some(path) = &self.path {
            if let Some(dir) = path.parent() {
                std::fs::create_dir_all(dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
            }
            crate::util::write_atomic(path, &encode(&next))
                .map_err(|e| format!("cannot write {}: {e}", path.display()))?;
        }
        *self.users() = next;
        Ok(())
    }
}

fn encode(users: &Users) -> Vec<u8> {
    let file = FileFormat {
        version: 1,
        users: users
            .iter()
            .map(|(u, m)| {
                let creds = m
                    .iter()
                    .map(|(h, c)| {
                        (
                            hash_name(*h).to_string(),
                            FileCredential {
                                salt: B64.encode(&c.salt),
                                stored_key: B64.encode(&c.stored_key),
                                server_key: B64.encode(&c.server_key),
                                iterations: c.iterations,
                            },
                        )
                    })
                    .collect();
                (u.clone(), creds)
            })
            .collect(),
    };
    serde_json::to_vec_pretty(&file).unwrap_or_default()
}

fn decode(data: &[u8]) -> Result<Users, String> {
    let file: FileFormat = serde_json::from_slice(data).map_err(|e| e.to_string())?;
    if file.version != 1 {
        return Err(format!("unknown version {}", file.version));
    }
    if file.users.len() > MAX_SCRAM_USERS {
        return Err(format!("more than {MAX_SCRAM_USERS} users"));
    }
    let mut users = Users::new();
    for (user, creds) in file.users {
        let mut m = BTreeMap::new();
        for (mech, c) in creds {
            let hash = super::sasl::Mechanism::parse(&mech)
                .and_then(|m| m.scram())
                .ok_or_else(|| format!("unknown mechanism '{mech}' for user '{user}'"))?;
            let b = |s: &str| B64.decode(s).map_err(|e| format!("user '{user}': {e}"));
            m.insert(
                hash,
                ScramCredential {
                    salt: b(&c.salt)?,
                    stored_key: b(&c.stored_key)?,
                    server_key: b(&c.server_key)?,
                    iterations: c.iterations,
                },
            );
        }
        users.insert(user, m);
    }
    Ok(users)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn changes_survive_reopening() {
        let dir = tempfile::tempdir().unwrap();
        let path = store_path(dir.path());
        let store = ScramStore::open(path.clone()).unwrap();
        let c = ScramCredential::from_password(ScramHash::Sha256, "correct-horse-battery", b"salt", 4096);
        store
            .apply(vec![
                Change::Upsert { user: "alice".into(), hash: ScramHash::Sha256, credential: c.clone() },
                Change::Upsert { user: "bob".into(), hash: ScramHash::Sha512, credential: c.clone() },
            ])
            .unwrap();
        store.apply(vec![Change::Delete { user: "bob".into(), hash: ScramHash::Sha512 }]).unwrap();
        let again = ScramStore::open(path.clone()).unwrap();
        assert_eq!(again.get("alice", ScramHash::Sha256), Some(c));
        assert_eq!(again.get("alice", ScramHash::Sha512), None);
        assert_eq!(again.user_names(), vec!["alice".to_string()]);
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(!text.contains("correct-horse"), "no password is stored");
        std::fs::write(&path, b"{not json").unwrap();
        assert!(ScramStore::open(path).unwrap_err().contains("damaged"));
    }
}
