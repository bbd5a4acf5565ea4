//! File naming and durable-write helpers shared by the storage modules:
//! 20-digit offset file names, atomic temp+fsync+rename writes, directory
//! fsync.

use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};

use super::error::StorageError;
use crate::types::Offset;

pub const LOG_SUFFIX: &str = ".log";
pub const INDEX_SUFFIX: &str = ".index";
pub const TIME_INDEX_SUFFIX: &str = ".timeindex";
/// klamm's producer-state snapshots. Not Kafka's `.snapshot`: Kafka writes
/// its own (different) format under that name, at the same offsets klamm
/// would choose, and its files must survive a klamm run untouched.
pub const SNAPSHOT_SUFFIX: &str = ".klamm-snapshot";
/// Kafka's producer-state snapshots (and klamm's before it used
/// [`SNAPSHOT_SUFFIX`]; those start with klamm's magic).
pub const KAFKA_SNAPSHOT_SUFFIX: &str = ".snapshot";
pub const TXN_INDEX_SUFFIX: &str = ".txnindex";
/// Suffixes of files left behind by interrupted operations, removed at load
/// (Kafka removes its `.cleaned` and `.deleted` files at load too).
pub const STRAY_SUFFIXES: [&str; 3] = [".cleaned", ".deleted", ".tmp"];
/// Half-done segment swaps (log compaction, Kafka's segment splits),
/// completed at load by `cleaner::swap::recover` as Kafka's LogLoader does.
pub const SWAP_SUFFIX: &str = ".swap";

/// `00000000000000000042` for offset 42.
pub fn offset_file_stem(offset: Offset) -> String {
    format!("{:020}", offset.0.max(0))
}

pub fn offset_file(dir: &Path, offset: Offset, suffix: &str) -> PathBuf {
    dir.join(format!("{}{}", offset_file_stem(offset), suffix))
}

/// Largest base offset accepted from a file name or checkpoint: far beyond
/// any real log, and low enough that offset arithmetic cannot overflow.
pub const MAX_BASE_OFFSET: i64 = i64::MAX / 4;

/// Parses `<20 digits><suffix>` into the offset, if the name has that shape
/// and the offset is at most [`MAX_BASE_OFFSET`].
pub fn parse_offset_file(name: &str, suffix: &str) -> Option<Offset> {
    let stem = name.strip_suffix(suffix)?;
    if stem.len() != 20 || !stem.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    stem.parse::<i64>()
        .ok()
        .filter(|o| *o <= MAX_BASE_OFFSET)
        .map(Offset)
}

/// fsyncs a directory so renames and creations in it are durable.
pub fn sync_dir(dir: &Path) -> Result<(), StorageError> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(StorageError::io("fsync directory", dir))
}

/// Writes `contents` to `path` atomically: `path.tmp`, fsync, rename, fsync
/// of the directory.
pub fn write_atomically(path: &Path, contents: &[u8]) -> Result<(), StorageError> {
    let mut tmp = path.as_os_str().to_owned();
    tmp.push(".tmp");
    let tmp = PathBuf::from(tmp);
    let mut f = OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .open(&tmp)
        .map_err(StorageError::io("create temp file", &tmp))?;
    f.write_all(contents)
        .map_err(StorageError::io("write temp file", &tmp))?;
    f.sync_all()
        .map_err(StorageError::io("fsync temp file", &tmp))?;
    drop(f);
    fs::rename(&tmp, path).map_err(StorageError::io("rename temp file", path))?;
    if let Some(dir) = path.parent() {
        sync_dir(dir)?;
    }
    Ok(())
}

/// Reads a whole small file, refusing anything over `max_bytes`.
pub fn read_bounded(path: &Path, max_bytes: u64) -> Result<Vec<u8>, StorageError> {
    let meta = fs::metadata(path).map_err(StorageError::io("stat", path))?;
    if meta.len() > max_bytes {
        return Err(StorageError::CorruptFile {
            path: path.to_path_buf(),
            reason: format!("file is {} bytes, limit is {max_bytes}", meta.len()),
        });
    }
    fs::read(path).map_err(StorageError::io("read", path))
}

/// Removes a file, treating "already gone" as success.
pub fn remove_if_exists(path: &Path) -> Result<(), StorageError> {
    match fs::remove_file(path) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(StorageError::io("delete file", path)(e)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn offset_names_round_trip() {
        assert_eq!(offset_file_stem(Offset(42)), "00000000000000000042");
        assert_eq!(
            parse_offset_file("00000000000000000042.log", LOG_SUFFIX),
            Some(Offset(42))
        );
        assert_eq!(
            parse_offset_file("0000000000000000042.log", LOG_SUFFIX),
            None
        );
        assert_eq!(
            parse_offset_file("0000000000000000004x.log", LOG_SUFFIX),
            None
        );
        assert_eq!(
            parse_offset_file("00000000000000000042.index", LOG_SUFFIX),
            None
        );
        assert_eq!(
            parse_offset_file("99999999999999999999.log", LOG_SUFFIX),
            None
        );
    }

    #[test]
    fn atomic_write_replaces_contents() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("f");
        write_atomically(&p, b"one").unwrap();
        write_atomically(&p, b"two").unwrap();
        assert_eq!(fs::read(&p).unwrap(), b"two");
        assert!(!dir.path().join("f.tmp").exists());
        assert!(read_bounded(&p, 2).is_err());
        remove_if_exists(&p).unwrap();
        remove_if_exists(&p).unwrap();
    }
}
