//! Failpoints for the torture suite (`tests/compat/test_torture.py`): an
//! in-process fault layer at the segment logs' write and fsync sites,
//! inert unless the `KLAMM_FAILPOINTS` environment variable is set when
//! the broker starts (then every hooked call takes one mutex; without it,
//! one load of a `OnceLock`).
//!
//! `KLAMM_FAILPOINTS` is a comma-separated list of `key=value`:
//! - `write_eio_at=N`: the Nth segment write (1-based, counted over every
//!   partition) fails with EIO, writing nothing.
//! - `sync_eio_at=N`: the Nth segment fsync fails with EIO. As Linux does
//!   after a failed writeback, the bytes it should have made durable are
//!   remembered as lost: a later power loss zeroes them even if a later
//!   fsync succeeds ("fsyncgate").
//! - `power_loss_at_write=N` / `power_loss_at_sync=N`: at the Nth write
//!   (before it runs) or fsync, simulate a power loss: every segment file
//!   written in this run is cut back to its last fsynced length (lost
//!   ranges zeroed), then the process exits with status 86 without running
//!   anything else.
//! - `torn=1`: a power loss keeps the first half of each file's unsynced
//!   tail instead of none of it (a torn write).
//!
//! Every fault fired is reported on stderr as one line starting with
//! `klamm failpoint:`. Files are told apart by (device, inode); each one
//! written in this run keeps a duplicated descriptor until exit, so this
//! layer is for tests, never production.

use std::collections::HashMap;
use std::fs::File;
use std::io;
use std::os::unix::fs::{FileExt, MetadataExt};
use std::path::{Path, PathBuf};
use std::sync::{Mutex, OnceLock};

/// The environment variable that turns the failpoints on.
pub const ENV_VAR: &str = "KLAMM_FAILPOINTS";

/// Exit status of a simulated power loss.
pub const POWER_LOSS_EXIT_CODE: i32 = 86;

/// EIO (the same number on Linux and macOS).
const EIO: i32 = 5;

/// What `KLAMM_FAILPOINTS` asks for; 0 means never.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Spec {
    pub write_eio_at: u64,
    pub sync_eio_at: u64,
    pub power_loss_at_write: u64,
    pub power_loss_at_sync: u64,
    pub torn: bool,
}

impl Spec {
    /// Parses `key=value,...` (see the module docs).
    pub fn parse(text: &str) -> Result<Spec, String> {
        let mut spec = Spec::default();
        for item in text.split(',').map(str::trim).filter(|s| !s.is_empty()) {
            let (key, value) = item.split_once('=').ok_or_else(|| format!("{item:?} is not key=value"))?;
            let n: u64 = value.trim().parse().map_err(|_| format!("{item:?}: value is not a number"))?;
            match key.trim() {
                "write_eio_at" => spec.write_eio_at = n,
                "sync_eio_at" => spec.sync_eio_at = n,
                "power_loss_at_write" => spec.power_loss_at_write = n,
                "power_loss_at_sync" => spec.power_loss_at_sync = n,
                "torn" => spec.torn = n != 0,
                other => return Err(format!("unknown failpoint {other:?}")),
            }
        }
        Ok(spec)
    }
}

/// One file written in this run.
struct Tracked {
    file: File,
    path: PathBuf,
    synced_len: u64,
    /// Ranges a failed fsync lost.
    lost: Vec<(u64, u64)>,
}

#[derive(Default)]
struct State {
    writes: u64,
    syncs: u64,
    files: HashMap<(u64, u64), Tracked>,
}

/// The fault layer: a spec and what it has seen.
pub struct Faults {
    spec: Spec,
    state: Mutex<State>,
}

/// What a hooked call should do.
#[derive(Debug, PartialEq, Eq)]
enum Outcome {
    Proceed,
    Eio,
    /// The files are cut; the caller exits.
    PowerLoss,
}

fn key(file: &File) -> io::Result<(u64, u64)> {
    let m = file.metadata()?;
    Ok((m.dev(), m.ino()))
}

impl Faults {
    pub fn new(spec: Spec) -> Faults {
        Faults { spec, state: Mutex::new(State::default()) }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Runs `write` (a write to `file`) unless a failpoint fires first.
    fn write(&self, file: &File, path: &Path, write: impl FnOnce() -> io::Result<()>) -> (io::Result<()>, Outcome) {
        let mut st = self.lock();
        st.writes += 1;
        let n = st.writes;
        if let Ok(k) = key(file) {
            if !st.files.contains_key(&k) {
                if let (Ok(dup), Ok(m)) = (file.try_clone(), file.metadata()) {
                    // What is on disk before this run's first write counts as durable.
                    st.files.insert(k, Tracked { file: dup, path: path.to_path_buf(), synced_len: m.len(), lost: Vec::new() });
                }
            }
        }
        if n == self.spec.power_loss_at_write {
            self.power_loss(&mut st, &format!("write #{n} to {}", path.display()));
            return (Err(io::Error::from_raw_os_error(EIO)), Outcome::PowerLoss);
        }
        if n == self.spec.write_eio_at {
            eprintln!("klamm failpoint: EIO on write #{n} to {}", path.display());
            return (Err(io::Error::from_raw_os_error(EIO)), Outcome::Eio);
        }
        // Under the lock, so a power loss cannot race a write.
        (write(), Outcome::Proceed)
    }

    /// Runs `sync` (an fsync/fdatasync of `file`) unless a failpoint fires.
    fn sync(&self, file: &File, sync: impl FnOnce() -> io::Result<()>) -> (io::Result<()>, Outcome) {
        let mut st = self.lock();
        st.syncs += 1;
        let n = st.syncs;
        let k = key(file).ok();
        let len = file.metadata().map(|m| m.len()).unwrap_or(0);
        if n == self.spec.power_loss_at_sync {
            self.power_loss(&mut st, &format!("fsync #{n}"));
            return (Err(io::Error::from_raw_os_error(EIO)), Outcome::PowerLoss);
        }
        let tracked = k.and_then(|k| st.files.get_mut(&k));
        if n == self.spec.sync_eio_at {
            if let Some(t) = tracked {
                eprintln!(
                    "klamm failpoint: EIO on fsync #{n} of {}, bytes [{}, {len}) lost",
                    t.path.display(),
                    t.synced_len
                );
                if len > t.synced_len {
                    t.lost.push((t.synced_len, len));
                }
            } else {
                eprintln!("klamm failpoint: EIO on fsync #{n}");
            }
            return (Err(io::Error::from_raw_os_error(EIO)), Outcome::Eio);
        }
        let result = sync();
        if let (Ok(()), Some(t)) = (&result, tracked) {
            t.synced_len = len;
        }
        (result, Outcome::Proceed)
    }

    /// Cuts every tracked file to what a power loss would leave.
    fn power_loss(&self, st: &mut State, at: &str) {
        let mut dropped_bytes = 0u64;
        for t in st.files.values() {
            let len = match t.file.metadata() {
                Ok(m) => m.len(),
                Err(_) => continue,
            };
            let keep = if self.spec.torn && len > t.synced_len {
                t.synced_len + (len - t.synced_len) / 2
            } else {
                t.synced_len.min(len)
            };
            for &(from, to) in &t.lost {
                let to = to.min(keep);
                if to > from {
                    let _ = t.file.write_all_at(&vec![0u8; (to - from) as usize], from);
                    dropped_bytes += to - from;
                }
            }
            if keep < len {
                let _ = t.file.set_len(keep);
                dropped_bytes += len - keep;
            }
            let _ = t.file.sync_all();
        }
        eprintln!(
            "klamm failpoint: power loss at {at}: {} files cut back to their last fsync, {dropped_bytes} bytes dropped",
            st.files.len()
        );
    }
}

/// The process's fault layer, if `KLAMM_FAILPOINTS` is set.
fn global() -> Option<&'static Faults> {
    static FAULTS: OnceLock<Option<Faults>> = OnceLock::new();
    FAULTS
        .get_or_init(|| {
            let text = std::env::var(ENV_VAR).ok()?;
            match Spec::parse(&text) {
                Ok(spec) => {
                    eprintln!("klamm failpoint: enabled: {spec:?}");
                    Some(Faults::new(spec))
                }
                Err(e) => {
                    eprintln!("klamm failpoint: ignoring {ENV_VAR}={text:?}: {e}");
                    None
                }
            }
        })
        .as_ref()
}

fn finish((result, outcome): (io::Result<()>, Outcome)) -> io::Result<()> {
    if outcome == Outcome::PowerLoss {
        std::process::exit(POWER_LOSS_EXIT_CODE);
    }
    result
}

/// A segment log write: runs `write` unless a failpoint fires.
pub fn write(file: &File, path: &Path, write: impl FnOnce() -> io::Result<()>) -> io::Result<()> {
    match global() {
        None => write(),
        Some(f) => finish(f.write(file, path, write)),
    }
}

/// A segment log fsync/fdatasync: runs `sync` unless a failpoint fires.
pub fn sync(file: &File, sync: impl FnOnce() -> io::Result<()>) -> io::Result<()> {
    match global() {
        None => sync(),
        Some(f) => finish(f.sync(file, sync)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_spec_and_rejects_unknown_keys() {
        let s = Spec::parse("write_eio_at=3, power_loss_at_sync=7,torn=1").unwrap();
        assert_eq!(s, Spec { write_eio_at: 3, power_loss_at_sync: 7, torn: true, ..Spec::default() });
        assert_eq!(Spec::parse("").unwrap(), Spec::default());
        assert!(Spec::parse("nope=1").is_err());
        assert!(Spec::parse("write_eio_at").is_err());
        assert!(Spec::parse("write_eio_at=x").is_err());
    }

    fn append(f: &Faults, file: &File, path: &Path, data: &[u8]) -> (io::Result<()>, Outcome) {
        let at = file.metadata().unwrap().len();
        f.write(file, path, || file.write_all_at(data, at))
    }

    #[test]
    fn eio_fires_once_at_its_count_and_writes_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("a.log");
        let file = File::options().create(true).read(true).write(true).open(&p).unwrap();
        let f = Faults::new(Spec { write_eio_at: 2, sync_eio_at: 1, ..Spec::default() });
        assert_eq!(append(&f, &file, &p, b"one").1, Outcome::Proceed);
        let (r, o) = append(&f, &file, &p, b"two");
        assert_eq!((r.unwrap_err().raw_os_error(), o), (Some(EIO), Outcome::Eio));
        assert_eq!(append(&f, &file, &p, b"three").1, Outcome::Proceed);
        assert_eq!(std::fs::read(&p).unwrap(), b"onethree");
        assert_eq!(f.sync(&file, || file.sync_data()).1, Outcome::Eio);
        assert_eq!(f.sync(&file, || file.sync_data()).1, Outcome::Proceed);
    }

    #[test]
    fn power_loss_keeps_only_what_was_synced_and_zeroes_what_a_failed_sync_lost() {
        let dir = tempfile::tempdir().unwrap();
        let (pa, pb) = (dir.path().join("a.log"), dir.path().join("b.log"));
        std::fs::write(&pa, b"old-").unwrap();
        let a = File::options().read(true).write(true).open(&pa).unwrap();
        let b = File::options().create(true).read(true).write(true).open(&pb).unwrap();
        let f = Faults::new(Spec { sync_eio_at: 2, power_loss_at_write: 6, ..Spec::default() });
        append(&f, &a, &pa, b"synced").0.unwrap();
        f.sync(&a, || a.sync_data()).0.unwrap(); // sync 1: a = "old-synced"
        append(&f, &a, &pa, b"LOST").0.unwrap();
        assert_eq!(f.sync(&a, || a.sync_data()).1, Outcome::Eio); // sync 2 fails
        append(&f, &a, &pa, b"later").0.unwrap();
        f.sync(&a, || a.sync_data()).0.unwrap(); // sync 3 succeeds
        append(&f, &b, &pb, b"never synced").0.unwrap();
        append(&f, &a, &pa, b"unsynced").0.unwrap();
        assert_eq!(append(&f, &a, &pa, b"not written").1, Outcome::PowerLoss);
        assert_eq!(std::fs::read(&pa).unwrap(), b"old-synced\0\0\0\0later");
        assert_eq!(std::fs::read(&pb).unwrap(), b"");
    }

    #[test]
    fn a_torn_power_loss_keeps_half_of_the_unsynced_tail() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("a.log");
        let a = File::options().create(true).read(true).write(true).open(&p).unwrap();
        let f = Faults::new(Spec { power_loss_at_sync: 2, torn: true, ..Spec::default() });
        append(&f, &a, &p, b"durable").0.unwrap();
        f.sync(&a, || a.sync_data()).0.unwrap();
        append(&f, &a, &p, b"12345678").0.unwrap();
        assert_eq!(f.sync(&a, || a.sync_data()).1, Outcome::PowerLoss);
        assert_eq!(std::fs::read(&p).unwrap(), b"durable1234");
    }
}
