//! The durable transaction log: klamm's stand-in for Kafka's
//! `__transaction_state` topic, in `<log.dir>/.klamm/transactions/`.
//!
//! One append-only file, `transactions.log`: an 8-byte header, then frames
//! `body_bytes: u32 BE | crc32c(body): u32 BE | body`, each the full
//! metadata of one transactional id (last one wins, as in Kafka's
//! compacted topic) or its tombstone. Every append is fsynced before the
//! new state is used; a failed write is rolled back to the last whole
//! frame (if that fails too, the log refuses further writes until the
//! broker restarts). Open replays the file up to the first torn or corrupt
//! frame and truncates there. A whole frame (its checksum right) that does
//! not decode is not a torn write but a newer klamm's record or damage,
//! with good records after it: open refuses then and leaves the file as it
//! is (as the metadata log does). When the file is larger than 4x its live
//! size (and 1 MiB) the live records are rewritten to a temporary file,
//! fsynced and renamed over it.
//!
//! Body: `type u8` (1 metadata, 2 tombstone), `transactional_id` string,
//! then for metadata: producer id i64, previous producer id i64, epoch
//! i16, last epoch i16, timeout ms i32, state u8, start ms i64, update ms
//! i64, partitions (u32 count, then topic string + partition i32), groups
//! (u32 count, strings). Strings are `u16 BE length | UTF-8`.

use std::collections::{BTreeSet, HashMap};
use std::fs::{self, File, OpenOptions};
use std::io::{self, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use super::state::{TransactionMetadata, TransactionState, MAX_GROUPS_PER_TXN, MAX_PARTITIONS_PER_TXN};
use crate::types::{TimestampMs, TopicPartition};

pub const LOG_FILE_NAME: &str = "transactions.log";
const COMPACT_TMP_FILE_NAME: &str = "transactions.log.compact";
const FILE_MAGIC: &[u8; 8] = b"KLMTXN01";
const FRAME_HEADER_BYTES: usize = 8;
/// Largest frame body accepted from disk (a transaction at its partition
/// limit with long topic names fits).
pub const MAX_RECORD_BYTES: usize = 4 << 20;
/// Transactional ids remembered at once; InitProducerId for a new id past
/// this is refused.
pub const MAX_TRANSACTIONAL_IDS: usize = 100_000;
const COMPACT_MIN_FILE_BYTES: u64 = 1 << 20;
const COMPACT_RATIO: u64 = 4;

const TYPE_METADATA: u8 = 1;
const TYPE_TOMBSTONE: u8 = 2;

/// One record of the log.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TxnRecord {
    Metadata(TransactionMetadata),
    Tombstone { transactional_id: String },
}

#[derive(Debug, thiserror::Error)]
pub enum TxnLogError {
    #[error("transaction log {path}: {source}")]
    Io { path: String, source: io::Error },
    #[error("transaction log {path} has a foreign header")]
    BadHeader { path: String },
    #[error(
        "transaction log {path} has a whole record at byte {position_bytes} that this klamm cannot read: written by a \
         newer klamm, or damaged. Refusing to start rather than cut off it and every record after it; start the klamm \
         that wrote it, or move the file aside to start afresh"
    )]
    Unreadable { path: String, position_bytes: u64 },
    #[error("transaction log record too large ({0} bytes)")]
    TooLarge(usize),
    #[error("the transaction log failed earlier and refuses writes until restart")]
    Failed,
}

fn put_str(out: &mut Vec<u8>, s: &str) -> Result<(), TxnLogError> {
    let len = u16::try_from(s.len()).map_err(|_| TxnLogError::TooLarge(s.len()))?;
    out.extend_from_slice(&len.to_be_bytes());
    out.extend_from_slice(s.as_bytes());
    Ok(())
}

/// Appends the frame of `rec` to `out`.
pub fn encode(rec: &TxnRecord, out: &mut Vec<u8>) -> Result<(), TxnLogError> {
    let start = out.len();
    out.extend_from_slice(&[0u8; FRAME_HEADER_BYTES]);
    match rec {
        TxnRecord::Tombstone { transactional_id } => {
            out.push(TYPE_TOMBSTONE);
            put_str(out, transactional_id)?;
        }
        TxnRecord::Metadata(m) => {
            out.push(TYPE_METADATA);
            put_str(out, &m.transactional_id)?;
            out.extend_from_slice(&m.producer_id.to_be_bytes());
            out.extend_from_slice(&m.prev_producer_id.to_be_bytes());
            out.extend_from_slice(&m.producer_epoch.to_be_bytes());
            out.extend_from_slice(&m.last_producer_epoch.to_be_bytes());
            out.extend_from_slice(&m.timeout_ms.to_be_bytes());
            out.push(m.state.id());
            out.extend_from_slice(&m.txn_start_ms.0.to_be_bytes());
            out.extend_from_slice(&m.last_update_ms.0.to_be_bytes());
            out.extend_from_slice(&(m.partitions.len() as u32).to_be_bytes());
            for tp in &m.partitions {
                put_str(out, &tp.topic)?;
                out.extend_from_slice(&tp.partition.to_be_bytes());
            }
            out.extend_from_slice(&(m.groups.len() as u32).to_be_bytes());
            for g in &m.groups {
                put_str(out, g)?;
            }
        }
    }
    let body_bytes = out.len() - start - FRAME_HEADER_BYTES;
    if body_bytes > MAX_RECORD_BYTES {
        out.truncate(start);
        return Err(TxnLogError::TooLarge(body_bytes));
    }
    let crc = crc32c::crc32c(&out[start + FRAME_HEADER_BYTES..]);
    out[start..start + 4].copy_from_slice(&(body_bytes as u32).to_be_bytes());
    out[start + 4..start + 8].copy_from_slice(&crc.to_be_bytes());
    Ok(())
}

struct Body<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Body<'a> {
    fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        let s = self.buf.get(self.pos..self.pos.checked_add(n)?)?;
        self.pos += n;
        Some(s)
    }
    fn u8(&mut self) -> Option<u8> {
        Some(self.take(1)?[0])
    }
    fn i16(&mut self) -> Option<i16> {
        Some(i16::from_be_bytes(self.take(2)?.try_into().ok()?))
    }
    fn i32(&mut self) -> Option<i32> {
        Some(i32::from_be_bytes(self.take(4)?.try_into().ok()?))
    }
    fn u32(&mut self) -> Option<u32> {
        Some(u32::from_be_bytes(self.take(4)?.try_into().ok()?))
    }
    fn i64(&mut self) -> Option<i64> {
        Some(i64::from_be_bytes(self.take(8)?.try_into().ok()?))
    }
    fn string(&mut self) -> Option<String> {
        let len = u16::from_be_bytes(self.take(2)?.try_into().ok()?) as usize;
        String::from_utf8(self.take(len)?.to_vec()).ok()
    }
}

/// Decodes one frame body; `None` if it is malformed or out of bounds.
/// What [`TransactionLog::replay`] found.
enum Replayed {
    /// The length of the valid prefix (a torn or corrupt tail after it).
    Valid(u64),
    /// Not a transaction log.
    ForeignHeader,
    /// A whole frame at this position that does not decode.
    Unreadable(u64),
}

pub fn decode_body(body: &[u8]) -> Option<TxnRecord> {
    let mut r = Body { buf: body, pos: 0 };
    let kind = r.u8()?;
    let transactional_id = r.string()?;
    let rec = match kind {
        TYPE_TOMBSTONE => TxnRecord::Tombstone { transactional_id },
        TYPE_METADATA => {
            let producer_id = r.i64()?;
            let prev_producer_id = r.i64()?;
            let producer_epoch = r.i16()?;
            let last_producer_epoch = r.i16()?;
            let timeout_ms = r.i32()?;
            let state = TransactionState::from_id(r.u8()?)?;
            let txn_start_ms = TimestampMs(r.i64()?);
            let last_update_ms = TimestampMs(r.i64()?);
            let n = r.u32()? as usize;
            if n > MAX_PARTITIONS_PER_TXN {
                return None;
            }
            let mut partitions = BTreeSet::new();
            for _ in 0..n {
                let topic = r.string()?;
                partitions.insert(TopicPartition::new(topic, r.i32()?));
            }
            let n = r.u32()? as usize;
            if n > MAX_GROUPS_PER_TXN {
                return None;
            }
            let mut groups = BTreeSet::new();
            for _ in 0..n {
                groups.insert(r.string()?);
            }
            TxnRecord::Metadata(TransactionMetadata {
                transactional_id,
                producer_id,
                prev_producer_id,
                producer_epoch,
                last_producer_epoch,
                timeout_ms,
                state,
                partitions,
                groups,
                txn_start_ms,
                last_update_ms,
            })
        }
        _ => return None,
    };
    (r.pos == body.len()).then_some(rec)
}

/// The open log and the live state it describes.
pub struct TransactionLog {
    dir: PathBuf,
    path: PathBuf,
    file: File,
    file_bytes: u64,
    failed: bool,
}

impl TransactionLog {
    /// Opens (creating) the log in `dir` and returns it with every live
    /// transactional id. Blocking.
    pub fn open(dir: &Path) -> Result<(TransactionLog, HashMap<String, TransactionMetadata>), TxnLogError> {
        let io_err = |path: &Path| {
            let path = path.display().to_string();
            move |source| TxnLogError::Io { path: path.clone(), source }
        };
        fs::create_dir_all(dir).map_err(io_err(dir))?;
        let path = dir.join(LOG_FILE_NAME);
        let _ = fs::remove_file(dir.join(COMPACT_TMP_FILE_NAME));
        let mut file = OpenOptions::new().read(true).write(true).create(true).truncate(false).open(&path).map_err(io_err(&path))?;
        let mut live = HashMap::new();
        let valid = match Self::replay(&mut file, &path, &mut live).map_err(io_err(&path))? {
            Replayed::Valid(v) => v,
            Replayed::ForeignHeader => return Err(TxnLogError::BadHeader { path: path.display().to_string() }),
            Replayed::Unreadable(position_bytes) => {
                return Err(TxnLogError::Unreadable { path: path.display().to_string(), position_bytes })
            }
        };
        let file_bytes = if valid < FILE_MAGIC.len() as u64 {
            file.set_len(0).map_err(io_err(&path))?;
            file.seek(SeekFrom::Start(0)).map_err(io_err(&path))?;
            file.write_all(FILE_MAGIC).map_err(io_err(&path))?;
            file.sync_all().map_err(io_err(&path))?;
            File::open(dir).and_then(|d| d.sync_all()).map_err(io_err(dir))?;
            FILE_MAGIC.len() as u64
        } else {
            if valid < file.metadata().map_err(io_err(&path))?.len() {
                tracing::warn!(path = %path.display(), valid_bytes = valid, "truncating the transaction log after its last whole record");
                file.set_len(valid).map_err(io_err(&path))?;
                file.sync_all().map_err(io_err(&path))?;
            }
            valid
        };
        file.seek(SeekFrom::Start(file_bytes)).map_err(io_err(&path))?;
        let mut log = TransactionLog { dir: dir.to_path_buf(), path, file, file_bytes, failed: false };
        log.maybe_compact(&live)?;
        Ok((log, live))
    }

    fn replay(file: &mut File, path: &Path, live: &mut HashMap<String, TransactionMetadata>) -> io::Result<Replayed> {
        let file_bytes = file.metadata()?.len();
        file.seek(SeekFrom::Start(0))?;
        let mut reader = io::BufReader::with_capacity(256 * 1024, &mut *file);
        let mut magic = [0u8; FILE_MAGIC.len()];
        let got = crate::util::read_full(&mut reader, &mut magic)?;
        if got < FILE_MAGIC.len() {
            return Ok(if magic[..got] == FILE_MAGIC[..got] { Replayed::Valid(0) } else { Replayed::ForeignHeader });
        }
        if &magic != FILE_MAGIC {
            return Ok(Replayed::ForeignHeader);
        }
        let mut valid = FILE_MAGIC.len() as u64;
        let mut body = Vec::new();
        loop {
            let mut header = [0u8; FRAME_HEADER_BYTES];
            let got = crate::util::read_full(&mut reader, &mut header)?;
            if got == 0 {
                break;
            }
            let body_bytes = u32::from_be_bytes([header[0], header[1], header[2], header[3]]) as usize;
            let crc = u32::from_be_bytes([header[4], header[5], header[6], header[7]]);
            if got < FRAME_HEADER_BYTES
                || body_bytes == 0
                || body_bytes > MAX_RECORD_BYTES
                || valid + (FRAME_HEADER_BYTES + body_bytes) as u64 > file_bytes
            {
                tracing::warn!(path = %path.display(), position = valid, "torn record in the transaction log");
                break;
            }
            body.resize(body_bytes, 0);
            if crate::util::read_full(&mut reader, &mut body)? < body_bytes || crc32c::crc32c(&body) != crc {
                tracing::warn!(path = %path.display(), position = valid, "corrupt record in the transaction log");
                break;
            }
            let Some(rec) = decode_body(&body) else {
                return Ok(Replayed::Unreadable(valid));
            };
            match rec {
                TxnRecord::Metadata(m) => {
                    // InitProducerId refuses new ids past the limit, so
                    // only a file from a klamm with a higher limit gets
                    // here. Its ids are kept (the file's size bounds them),
                    // never cut off with the records after them.
                    if live.len() == MAX_TRANSACTIONAL_IDS && !live.contains_key(&m.transactional_id) {
                        tracing::warn!(path = %path.display(), limit = MAX_TRANSACTIONAL_IDS, "the transaction log holds more transactional ids than this klamm admits; new ones are refused");
                    }
                    live.insert(m.transactional_id.clone(), m);
                }
                TxnRecord::Tombstone { transactional_id } => {
                    live.remove(&transactional_id);
                }
            }
            valid += (FRAME_HEADER_BYTES + body_bytes) as u64;
        }
        Ok(Replayed::Valid(valid))
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Appends and fsyncs `records`; on failure the file is rolled back to
    /// its previous length. Blocking.
    pub fn append(&mut self, records: &[TxnRecord]) -> Result<(), TxnLogError> {
        if self.failed {
            return Err(TxnLogError::Failed);
        }
        let mut buf = Vec::new();
        for r in records {
            encode(r, &mut buf)?;
        }
        let before = self.file_bytes;
        if let Err(source) = self.file.write_all(&buf).and_then(|_| self.file.sync_data()) {
            tracing::error!(path = %self.path.display(), error = %source, "writing the transaction log failed");
            let rollback = self
                .file
                .set_len(before)
                .and_then(|_| self.file.seek(SeekFrom::Start(before)).map(|_| ()))
                .and_then(|_| self.file.sync_all());
            if rollback.is_err() {
                self.failed = true;
            }
            return Err(TxnLogError::Io { path: self.path.display().to_string(), source });
        }
        self.file_bytes += buf.len() as u64;
        Ok(())
    }

    /// Rewrites the live records when the file has grown well past them.
    pub fn maybe_compact(&mut self, live: &HashMap<String, TransactionMetadata>) -> Result<(), TxnLogError> {
        if self.file_bytes <= COMPACT_MIN_FILE_BYTES {
            return Ok(());
        }
        let mut buf = FILE_MAGIC.to_vec();
        for m in live.values() {
            encode(&TxnRecord::Metadata(m.clone()), &mut buf)?;
        }
        if self.file_bytes <= COMPACT_RATIO.saturating_mul(buf.len() as u64) {
            return Ok(());
        }
        let tmp = self.dir.join(COMPACT_TMP_FILE_NAME);
        let io_err = |source| TxnLogError::Io { path: self.path.display().to_string(), source };
        let mut f = File::create(&tmp).map_err(io_err)?;
        f.write_all(&buf).and_then(|_| f.sync_all()).map_err(io_err)?;
        fs::rename(&tmp, &self.path).map_err(io_err)?;
        File::open(&self.dir).and_then(|d| d.sync_all()).map_err(io_err)?;
        let mut file = OpenOptions::new().read(true).write(true).open(&self.path).map_err(io_err)?;
        file.seek(SeekFrom::End(0)).map_err(io_err)?;
        self.file = file;
        self.file_bytes = buf.len() as u64;
        Ok(())
    }

    pub fn file_bytes(&self) -> u64 {
        self.file_bytes
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn meta(id: &str, state: TransactionState) -> TransactionMetadata {
        let mut m = TransactionMetadata::new(id, 42, 60_000, TimestampMs(5));
        m.state = state;
        m.producer_epoch = 3;
        m.partitions.insert(TopicPartition::new("a", 1));
        m.groups.insert("g".into());
        m.txn_start_ms = TimestampMs(4);
        m
    }

    #[test]
    fn records_round_trip() {
        for rec in [TxnRecord::Metadata(meta("x", TransactionState::Ongoing)), TxnRecord::Tombstone { transactional_id: "y".into() }] {
            let mut buf = Vec::new();
            encode(&rec, &mut buf).unwrap();
            assert_eq!(decode_body(&buf[FRAME_HEADER_BYTES..]), Some(rec));
        }
        assert_eq!(decode_body(&[9, 0, 0]), None);
        assert_eq!(decode_body(&[]), None);
    }

    #[test]
    fn survives_reopen_truncates_torn_tails_and_refuses_foreign_files() {
        let dir = tempfile::tempdir().unwrap();
        let (mut log, live) = TransactionLog::open(dir.path()).unwrap();
        assert!(live.is_empty());
        log.append(&[TxnRecord::Metadata(meta("a", TransactionState::Ongoing))]).unwrap();
        log.append(&[TxnRecord::Metadata(meta("b", TransactionState::PrepareCommit))]).unwrap();
        log.append(&[TxnRecord::Tombstone { transactional_id: "a".into() }]).unwrap();
        let good = log.file_bytes();
        drop(log);
        // A torn frame at the end.
        let path = dir.path().join(LOG_FILE_NAME);
        let mut f = OpenOptions::new().append(true).open(&path).unwrap();
        f.write_all(&[0, 0, 0, 50, 1, 2, 3]).unwrap();
        drop(f);
        let (log, live) = TransactionLog::open(dir.path()).unwrap();
        assert_eq!(live.len(), 1);
        assert_eq!(live["b"], meta("b", TransactionState::PrepareCommit));
        assert_eq!(log.file_bytes(), good);
        assert_eq!(fs::metadata(&path).unwrap().len(), good);
        drop(log);
        // A flipped byte ends the replay there.
        let mut bytes = fs::read(&path).unwrap();
        let last = bytes.len() - 1;
        bytes[last] ^= 0xff;
        fs::write(&path, &bytes).unwrap();
        let (_, live) = TransactionLog::open(dir.path()).unwrap();
        assert_eq!(live.len(), 2, "the tombstone of a was cut off: a is back, b stays");
        assert!(live.contains_key("a"));
        fs::write(&path, b"NOTATXNLOG").unwrap();
        assert!(matches!(TransactionLog::open(dir.path()), Err(TxnLogError::BadHeader { .. })));
    }

    #[test]
    fn a_record_from_a_newer_klamm_refuses_the_open_and_keeps_every_record() {
        let dir = tempfile::tempdir().unwrap();
        let (mut log, _) = TransactionLog::open(dir.path()).unwrap();
        log.append(&[TxnRecord::Metadata(meta("a", TransactionState::Ongoing))]).unwrap();
        drop(log);
        let path = dir.path().join(LOG_FILE_NAME);
        // A whole frame (checksum right) of a record type this klamm does
        // not know, then a good record after it.
        let body = b"\xc8 fields of the future";
        let mut f = OpenOptions::new().append(true).open(&path).unwrap();
        f.write_all(&(body.len() as u32).to_be_bytes()).unwrap();
        f.write_all(&crc32c::crc32c(body).to_be_bytes()).unwrap();
        f.write_all(body).unwrap();
        let mut after = Vec::new();
        encode(&TxnRecord::Metadata(meta("b", TransactionState::Empty)), &mut after).unwrap();
        f.write_all(&after).unwrap();
        drop(f);
        let before = fs::read(&path).unwrap();
        let err = TransactionLog::open(dir.path()).err().expect("refused");
        assert!(matches!(err, TxnLogError::Unreadable { .. }), "{err}");
        assert!(err.to_string().contains("cannot read"), "{err}");
        assert_eq!(fs::read(&path).unwrap(), before, "nothing cut off");
    }

    #[test]
    fn compaction_keeps_the_live_records() {
        let dir = tempfile::tempdir().unwrap();
        let (mut log, _) = TransactionLog::open(dir.path()).unwrap();
        let m = meta("a", TransactionState::Empty);
        let mut live = HashMap::new();
        live.insert("a".to_string(), m.clone());
        while log.file_bytes() <= COMPACT_MIN_FILE_BYTES {
            log.append(&vec![TxnRecord::Metadata(m.clone()); 1000]).unwrap();
        }
        log.maybe_compact(&live).unwrap();
        assert!(log.file_bytes() < 1000);
        log.append(&[TxnRecord::Metadata(meta("b", TransactionState::Ongoing))]).unwrap();
        drop(log);
        let (_, reopened) = TransactionLog::open(dir.path()).unwrap();
        assert_eq!(reopened.len(), 2);
        assert_eq!(reopened["a"], m);
    }
}
