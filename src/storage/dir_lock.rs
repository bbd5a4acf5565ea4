//! `DirLock`: one broker per data directory. Taken on `<log.dirs>/.lock`
//! (Kafka's file name) before anything in the directory is read, and held
//! for the broker's life, as Kafka does: a second broker on the same
//! directory would otherwise run recovery and truncate the files the first
//! has mapped (SIGBUS in the first, lost records in both).
//!
//! The lock is an exclusive `flock` ([`crate::platform::try_lock_exclusive`]),
//! so it excludes other processes and other brokers in this process alike,
//! and the kernel releases it when the holder exits, however it exits. The
//! holder writes its pid into the file for the other's error message; the
//! file itself stays (removing it would let two processes lock two
//! different files of the same name).

use std::fs::{File, OpenOptions};
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};

use crate::platform::{self, LockError};

/// The lock file's name in the data directory (Kafka's).
pub const LOCK_FILE: &str = ".lock";

/// Bytes of the lock file read for the holder's pid (a pid and a newline;
/// the file is another process's, so its size is not trusted).
const MAX_PID_BYTES: u64 = 32;

/// An exclusive lock on a data directory; released when dropped.
#[derive(Debug)]
pub struct DirLock {
    // Closing the file releases the lock.
    _file: File,
    path: PathBuf,
}

impl DirLock {
    /// Creates `dir` if needed and locks it without waiting. A directory
    /// another broker holds is an error naming the directory and the
    /// holder's pid. Where the file system cannot lock files (some network
    /// file systems) klamm runs unlocked and warns, as it did before.
    /// Blocking (file system calls).
    pub fn acquire(dir: &Path) -> io::Result<DirLock> {
        let context = |what: &str, e: io::Error| io::Error::new(e.kind(), format!("cannot {what} log.dirs {}: {e}", dir.display()));
        std::fs::create_dir_all(dir).map_err(|e| context("create", e))?;
        let path = dir.join(LOCK_FILE);
        // Not truncated on open: until we hold the lock, the pid in it is
        // the holder's.
        let mut file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&path)
            .map_err(|e| context("lock", e))?;
        match platform::try_lock_exclusive(&file) {
            Ok(()) => {}
            Err(LockError::Held) => {
                let holder = match read_pid(&mut file) {
                    Some(pid) => format!("another klamm (pid {pid})"),
                    None => "another process".to_string(),
                };
                return Err(io::Error::other(format!(
                    "log.dirs {} is in use by {holder}, which holds {}; stop it first or set another log.dirs",
                    dir.display(),
                    path.display()
                )));
            }
            Err(LockError::Unsupported(e)) => {
                tracing::warn!(path = %path.display(), error = %e,
                    "the file system cannot lock files: nothing stops a second broker from using this log.dirs");
            }
            Err(LockError::Io(e)) => return Err(context("lock", e)),
        }
        file.set_len(0).map_err(|e| context("write the lock file of", e))?;
        file.write_all(format!("{}\n", std::process::id()).as_bytes())
            .map_err(|e| context("write the lock file of", e))?;
        Ok(DirLock { _file: file, path })
    }

    /// The lock file.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

/// The pid the holder wrote, if the file holds one (the holder may not have
/// written it yet, or be Kafka, whose lock file is empty).
fn read_pid(file: &mut File) -> Option<u32> {
    let mut text = String::new();
    file.take(MAX_PID_BYTES).read_to_string(&mut text).ok()?;
    text.trim().parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_held_directory_names_the_holder_and_frees_on_drop() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("new").join("data");
        let lock = DirLock::acquire(&dir).unwrap();
        assert_eq!(lock.path(), dir.join(".lock"));
        assert_eq!(std::fs::read_to_string(dir.join(".lock")).unwrap(), format!("{}\n", std::process::id()));
        let err = DirLock::acquire(&dir).unwrap_err().to_string();
        assert!(
            err.starts_with(&format!("log.dirs {} is in use by another klamm (pid {})", dir.display(), std::process::id())),
            "{err}"
        );
        // The failed attempt left the holder's pid in place.
        assert_eq!(std::fs::read_to_string(dir.join(".lock")).unwrap(), format!("{}\n", std::process::id()));
        drop(lock);
        let again = DirLock::acquire(&dir).unwrap();
        drop(again);
    }

    #[test]
    fn a_lock_file_without_a_pid_is_another_process() {
        let tmp = tempfile::tempdir().unwrap();
        let lock = DirLock::acquire(tmp.path()).unwrap();
        // What a holder that has not written its pid yet (or Kafka) leaves.
        std::fs::write(tmp.path().join(".lock"), b"not a pid\n").unwrap();
        let err = DirLock::acquire(tmp.path()).unwrap_err().to_string();
        assert!(err.contains("is in use by another process, which holds"), "{err}");
        drop(lock);
    }

    #[test]
    fn a_stale_pid_from_a_dead_holder_is_overwritten() {
        let tmp = tempfile::tempdir().unwrap();
        std::fs::write(tmp.path().join(".lock"), b"4194304999\n").unwrap();
        let _lock = DirLock::acquire(tmp.path()).unwrap();
        assert_eq!(std::fs::read_to_string(tmp.path().join(".lock")).unwrap(), format!("{}\n", std::process::id()));
    }

    #[test]
    fn a_path_that_is_a_file_is_an_error_naming_it() {
        let tmp = tempfile::tempdir().unwrap();
        let file = tmp.path().join("file");
        std::fs::write(&file, b"x").unwrap();
        let err = DirLock::acquire(&file).unwrap_err().to_string();
        assert!(err.contains(&format!("log.dirs {}", file.display())), "{err}");
    }
}
