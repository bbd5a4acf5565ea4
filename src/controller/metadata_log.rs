//! The durable cluster-metadata log, KRaft-style: every metadata change is
//! a record appended (and fsynced) to `<log.dir>/.klamm/metadata/records`
//! before it takes effect, and replayed at start. When the log grows past
//! `SNAPSHOT_AFTER_BYTES` the whole state is written as a snapshot (temp +
//! fsync + rename) and the log restarts empty.
//!
//! On-disk frame: `[len u32 BE][crc32c u32 BE][payload]`, payload =
//! `[seq u64][type u8][fields]` with fields in Kafka's classic encoding.
//! Replay stops at the first torn or corrupt frame and truncates there. A
//! whole frame (its checksum right) that does not decode is not a torn
//! write: it was written by a newer klamm (a record type this one does not
//! know, after a downgrade) or the file is damaged, and every record after
//! it is still good. The log refuses to open then, rather than cut them
//! off (and, with them, topics whose data would then look stray).
//!
//! A failed append (ENOSPC, EIO) is rolled back to the last good frame
//! before the error is returned, so no later acknowledged record ever sits
//! behind a torn one (replay would cut it off). If the rollback fails too,
//! the log refuses every further append until the broker restarts.

use std::collections::BTreeMap;
use std::fs::{File, OpenOptions};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};

use bytes::Bytes;

use crate::protocol::{DecodeError, Reader, Uuid, Writer};
use crate::security::authorizer::{AclBinding, AclOperation, PatternType, Permission, ResourceType};

/// A snapshot is taken when the record log exceeds this size.
pub const SNAPSHOT_AFTER_BYTES: u64 = 4 * 1024 * 1024;
/// No single record may exceed this (a topic with many configs is far smaller).
pub const MAX_RECORD_BYTES: usize = 1024 * 1024;

const RECORDS_FILE: &str = "records";
const SNAPSHOT_FILE: &str = "snapshot";

/// One metadata change. Records are idempotent upserts/removals, so
/// replaying one twice is harmless.
#[derive(Clone, Debug, PartialEq)]
pub enum MetadataRecord {
    /// The full current state of a topic.
    Topic { name: String, id: Uuid, partitions: i32, leader_epoch: i32, configs: BTreeMap<String, String> },
    /// The topic with this id no longer exists.
    RemoveTopic { id: Uuid },
    /// Producer ids below this value have been handed out.
    ProducerIds { next_block_start: i64 },
    /// The whole set of a group's dynamic configs (GROUP resource); empty
    /// removes them.
    GroupConfig { group: String, configs: BTreeMap<String, String> },
    /// An ACL binding exists (CreateAcls).
    Acl(AclBinding),
    /// An ACL binding no longer exists (DeleteAcls).
    RemoveAcl(AclBinding),
}

const TYPE_TOPIC: u8 = 1;
const TYPE_REMOVE_TOPIC: u8 = 2;
const TYPE_PRODUCER_IDS: u8 = 3;
const TYPE_GROUP_CONFIG: u8 = 4;
const TYPE_ACL: u8 = 5;
const TYPE_REMOVE_ACL: u8 = 6;

fn encode_acl(w: &mut Writer, b: &AclBinding) {
    w.i8(b.resource_type.code());
    w.string(&b.resource_name, false);
    w.i8(b.pattern_type.code());
    w.string(&b.principal, false);
    w.string(&b.host, false);
    w.i8(b.operation.code());
    w.i8(b.permission.code());
}

fn decode_acl(r: &mut Reader) -> Result<AclBinding, DecodeError> {
    let bad = |c: i8| DecodeError::InvalidLength(c as i64);
    let rt = r.i8()?;
    let resource_type = ResourceType::from_code(rt).ok_or(bad(rt))?;
    let resource_name = r.string(false)?;
    let pt = r.i8()?;
    let pattern_type = PatternType::from_code(pt).ok_or(bad(pt))?;
    let principal = r.string(false)?;
    let host = r.string(false)?;
    let op = r.i8()?;
    let operation = AclOperation::from_code(op).ok_or(bad(op))?;
    let perm = r.i8()?;
    let permission = Permission::from_code(perm).ok_or(bad(perm))?;
    Ok(AclBinding { resource_type, resource_name, pattern_type, principal, host, operation, permission })
}

impl MetadataRecord {
    fn encode(&self, seq: u64) -> Bytes {
        let mut w = Writer::new();
        w.i64(seq as i64);
        match self {
            MetadataRecord::Topic { name, id, partitions, leader_epoch, configs } => {
                w.i8(TYPE_TOPIC as i8);
                w.string(name, false);
                w.uuid(id);
                w.i32(*partitions);
                w.i32(*leader_epoch);
                w.i32(configs.len() as i32);
                for (k, v) in configs {
                    w.string(k, false);
                    w.string(v, false);
                }
            }
            MetadataRecord::RemoveTopic { id } => {
                w.i8(TYPE_REMOVE_TOPIC as i8);
                w.uuid(id);
            }
            MetadataRecord::ProducerIds { next_block_start } => {
                w.i8(TYPE_PRODUCER_IDS as i8);
                w.i64(*next_block_start);
            }
            MetadataRecord::GroupConfig { group, configs } => {
                w.i8(TYPE_GROUP_CONFIG as i8);
                w.string(group, false);
                w.i32(configs.len() as i32);
                for (k, v) in configs {
                    w.string(k, false);
                    w.string(v, false);
                }
            }
            MetadataRecord::Acl(b) => {
                w.i8(TYPE_ACL as i8);
                encode_acl(&mut w, b);
            }
            MetadataRecord::RemoveAcl(b) => {
                w.i8(TYPE_REMOVE_ACL as i8);
                encode_acl(&mut w, b);
            }
        }
        w.finish_contiguous()
    }

    fn decode(payload: Bytes) -> Result<(u64, MetadataRecord), DecodeError> {
        let mut r = Reader::new(payload);
        // Written from a u64 counter that starts at 1; a negative value
        // is corruption (and would overflow `seq + 1` on replay).
        let seq = r.i64()?;
        if seq < 0 {
            return Err(DecodeError::InvalidLength(seq));
        }
        let seq = seq as u64;
        let rec = match r.i8()? as u8 {
            TYPE_TOPIC => {
                let name = r.string(false)?;
                let id = r.uuid()?;
                let partitions = r.i32()?;
                let leader_epoch = r.i32()?;
                let n = r.array_len(false)?.ok_or(DecodeError::UnexpectedNull)?;
                let mut configs = BTreeMap::new();
                for _ in 0..n {
                    let k = r.string(false)?;
                    let v = r.string(false)?;
                    configs.insert(k, v);
                }
                MetadataRecord::Topic { name, id, partitions, leader_epoch, configs }
            }
            TYPE_REMOVE_TOPIC => MetadataRecord::RemoveTopic { id: r.uuid()? },
            TYPE_PRODUCER_IDS => MetadataRecord::ProducerIds { next_block_start: r.i64()? },
            TYPE_GROUP_CONFIG => {
                let group = r.string(false)?;
                let n = r.array_len(false)?.ok_or(DecodeError::UnexpectedNull)?;
                let mut configs = BTreeMap::new();
                for _ in 0..n {
                    let k = r.string(false)?;
                    let v = r.string(false)?;
                    configs.insert(k, v);
                }
                MetadataRecord::GroupConfig { group, configs }
            }
            TYPE_ACL => MetadataRecord::Acl(decode_acl(&mut r)?),
            TYPE_REMOVE_ACL => MetadataRecord::RemoveAcl(decode_acl(&mut r)?),
            t => return Err(DecodeError::InvalidLength(t as i64)),
        };
        Ok((seq, rec))
    }
}

fn frame(payload: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(8 + payload.len());
    out.extend_from_slice(&(payload.len() as u32).to_be_bytes());
    out.extend_from_slice(&crc32c::crc32c(payload).to_be_bytes());
    out.extend_from_slice(payload);
    out
}

/// Parses frames from `data`; returns the records and the length of the
/// valid prefix (everything after it is torn or corrupt).
fn parse_frames(data: &[u8]) -> (Vec<(u64, MetadataRecord)>, usize) {
    let (recs, valid, _) = parse_frames_checked(data);
    (recs, valid)
}

/// [`parse_frames`], also saying why it stopped when the frame at the end
/// of the valid prefix is whole (checksum right) but does not decode.
fn parse_frames_checked(data: &[u8]) -> (Vec<(u64, MetadataRecord)>, usize, Option<DecodeError>) {
    let mut out = Vec::new();
    let mut pos = 0;
    while data.len() - pos >= 8 {
        let len = u32::from_be_bytes(data[pos..pos + 4].try_into().unwrap()) as usize;
        let crc = u32::from_be_bytes(data[pos + 4..pos + 8].try_into().unwrap());
        if len > MAX_RECORD_BYTES || data.len() - pos - 8 < len {
            break;
        }
        let payload = &data[pos + 8..pos + 8 + len];
        if crc32c::crc32c(payload) != crc {
            break;
        }
        match MetadataRecord::decode(Bytes::copy_from_slice(payload)) {
            Ok(r) => out.push(r),
            Err(e) => return (out, pos, Some(e)),
        }
        pos += 8 + len;
    }
    (out, pos, None)
}

/// The append side of the metadata log.
pub struct MetadataLog {
    dir: PathBuf,
    file: File,
    /// Bytes of whole, durable frames: where the file ends when no append
    /// is in progress.
    size_bytes: u64,
    next_seq: u64,
    /// Set when a failed append could not be rolled back: the file may end
    /// in a torn frame, so nothing more may be appended behind it.
    failed: bool,
    #[cfg(test)]
    faults: Faults,
}

/// Failures to inject in tests: the next append writes only this many
/// bytes and fails; the rollback after it fails too.
#[cfg(test)]
#[derive(Default)]
struct Faults {
    torn_write_bytes: Option<usize>,
    fail_rollback: bool,
}

/// What `MetadataLog::open` replays.
pub struct Replay {
    pub log: MetadataLog,
    /// Snapshot records first, then log records newer than the snapshot.
    pub records: Vec<MetadataRecord>,
}

impl MetadataLog {
    /// Opens (creating if needed) the metadata log in `dir` and returns
    /// every record to replay, truncating a torn tail.
    pub fn open(dir: &Path) -> std::io::Result<Replay> {
        std::fs::create_dir_all(dir)?;
        let _ = std::fs::remove_file(dir.join(SNAPSHOT_FILE).with_extension("tmp"));
        let mut records = Vec::new();
        let mut snapshot_seq = 0u64;
        let snap_path = dir.join(SNAPSHOT_FILE);
        if snap_path.exists() {
            let mut data = Vec::new();
            File::open(&snap_path)?.read_to_end(&mut data)?;
            let (recs, valid) = parse_frames(&data);
            if valid != data.len() {
                // Snapshots are written atomically: a bad one is real corruption.
                return Err(std::io::Error::new(
                    std::io::ErrorKind::InvalidData,
                    format!("metadata snapshot {} is corrupt at byte {valid}", snap_path.display()),
                ));
            }
            for (seq, r) in recs {
                snapshot_seq = snapshot_seq.max(seq);
                records.push(r);
            }
        }
        let path = dir.join(RECORDS_FILE);
        let mut file = OpenOptions::new().read(true).append(true).create(true).open(&path)?;
        let mut data = Vec::new();
        file.read_to_end(&mut data)?;
        let (recs, valid, unreadable) = parse_frames_checked(&data);
        if let Some(e) = unreadable {
            return Err(std::io::Error::new(
                std::io::ErrorKind::InvalidData,
                format!(
                    "metadata log {} has a whole record at byte {valid} that this klamm cannot read ({e}): \
                     written by a newer klamm, or damaged. Refusing to start rather than cut off it and every \
                     record after it; start the klamm that wrote it, or move the file aside to start afresh",
                    path.display()
                ),
            ));
        }
        if valid != data.len() {
            tracing::warn!(
                file = %path.display(),
                valid_bytes = valid,
                file_bytes = data.len(),
                "truncating torn tail of the metadata log"
            );
            file.set_len(valid as u64)?;
            file.sync_all()?;
        }
        let mut next_seq = snapshot_seq + 1;
        for (seq, r) in recs {
            if seq > snapshot_seq {
                records.push(r);
            }
            next_seq = next_seq.max(seq + 1);
        }
        crate::util::fsync_dir(dir)?;
        let log = MetadataLog {
            dir: dir.to_path_buf(),
            file,
            size_bytes: valid as u64,
            next_seq,
            failed: false,
            #[cfg(test)]
            faults: Faults::default(),
        };
        Ok(Replay { log, records })
    }

    /// Appends and fsyncs one record; it is durable when this returns. On
    /// error nothing of the record is left in the file (or, if that cannot
    /// be ensured, the log refuses further appends).
    pub fn append(&mut self, record: &MetadataRecord) -> std::io::Result<()> {
        self.append_all(std::slice::from_ref(record))
    }

    /// Appends `records` with one write and one fsync (a group commit):
    /// all of them are durable when this returns, or none is in the file.
    pub fn append_all(&mut self, records: &[MetadataRecord]) -> std::io::Result<()> {
        if self.failed {
            return Err(std::io::Error::other(
                "an earlier write to the metadata log failed and could not be undone; restart the broker",
            ));
        }
        let mut bytes = Vec::new();
        for (i, record) in records.iter().enumerate() {
            let payload = record.encode(self.next_seq + i as u64);
            if payload.len() > MAX_RECORD_BYTES {
                return Err(std::io::Error::new(
                    std::io::ErrorKind::InvalidInput,
                    format!("metadata record of {} bytes is over the limit of {MAX_RECORD_BYTES}", payload.len()),
                ));
            }
            bytes.extend_from_slice(&frame(&payload));
        }
        if bytes.is_empty() {
            return Ok(());
        }
        if let Err(e) = self.write_frame(&bytes).and_then(|_| self.file.sync_data()) {
            self.roll_back();
            return Err(e);
        }
        self.size_bytes += bytes.len() as u64;
        self.next_seq += records.len() as u64;
        Ok(())
    }

    fn write_frame(&mut self, bytes: &[u8]) -> std::io::Result<()> {
        #[cfg(test)]
        if let Some(n) = self.faults.torn_write_bytes.take() {
            self.file.write_all(&bytes[..n.min(bytes.len())])?;
            return Err(std::io::Error::new(std::io::ErrorKind::StorageFull, "injected: no space left on device"));
        }
        self.file.write_all(bytes)
    }

    /// Cuts the file back to its last whole frame after a failed append.
    fn roll_back(&mut self) {
        let result = (|| {
            #[cfg(test)]
            if self.faults.fail_rollback {
                return Err(std::io::Error::other("injected: rollback failed"));
            }
            self.file.set_len(self.size_bytes)?;
            self.file.sync_all()
        })();
        if let Err(e) = result {
            self.failed = true;
            tracing::error!(
                dir = %self.dir.display(),
                error = %e,
                "could not undo a failed metadata log write: refusing metadata changes until restart"
            );
        }
    }

    pub fn wants_snapshot(&self) -> bool {
        self.size_bytes > SNAPSHOT_AFTER_BYTES
    }

    /// Replaces snapshot + log by a snapshot of `state` (all records that
    /// rebuild the current state), then empties the log.
    pub fn snapshot(&mut self, state: &[MetadataRecord]) -> std::io::Result<()> {
        let seq = self.next_seq - 1;
        let mut data = Vec::new();
        for r in state {
            data.extend_from_slice(&frame(&r.encode(seq)));
        }
        crate::util::write_atomic(&self.dir.join(SNAPSHOT_FILE), &data)?;
        // Records up to `seq` are in the snapshot; the replay skips them
        // even if the truncate below does not happen before a crash.
        self.file.set_len(0)?;
        self.file.sync_all()?;
        self.size_bytes = 0;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_sequence_number_beyond_i64_is_corruption_not_an_overflow() {
        // Found by the state_files fuzz target: seq u64::MAX overflowed
        // `seq + 1` in `open`.
        let bad = frame(&MetadataRecord::ProducerIds { next_block_start: 5 }.encode(u64::MAX));
        let good = frame(&MetadataRecord::ProducerIds { next_block_start: 7 }.encode(3));
        let mut data = good.clone();
        data.extend_from_slice(&bad);
        let (recs, valid) = parse_frames(&data);
        assert_eq!(recs.len(), 1);
        assert_eq!(valid, good.len());
        // A whole frame that does not decode is not a torn tail: the log
        // refuses to open and leaves the file as it is.
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join(RECORDS_FILE), &data).unwrap();
        let err = MetadataLog::open(dir.path()).err().expect("refused");
        assert_eq!(err.kind(), std::io::ErrorKind::InvalidData);
        assert_eq!(std::fs::read(dir.path().join(RECORDS_FILE)).unwrap(), data);
    }

    fn topic(name: &str, partitions: i32) -> MetadataRecord {
        MetadataRecord::Topic {
            name: name.into(),
            id: crate::util::random_uuid(),
            partitions,
            leader_epoch: 0,
            configs: [("retention.ms".to_string(), "1000".to_string())].into(),
        }
    }

    #[test]
    fn records_replay_in_order() {
        let dir = tempfile::tempdir().unwrap();
        let a = topic("a", 3);
        let b = MetadataRecord::ProducerIds { next_block_start: 1000 };
        let c = MetadataRecord::GroupConfig {
            group: "g".into(),
            configs: [("consumer.heartbeat.interval.ms".to_string(), "6000".to_string())].into(),
        };
        let acl = AclBinding {
            resource_type: ResourceType::Topic,
            resource_name: "orders-".into(),
            pattern_type: PatternType::Prefixed,
            principal: "User:alice".into(),
            host: "*".into(),
            operation: AclOperation::Write,
            permission: Permission::Allow,
        };
        let d = MetadataRecord::Acl(acl.clone());
        let e = MetadataRecord::RemoveAcl(acl);
        {
            let mut rp = MetadataLog::open(dir.path()).unwrap();
            assert!(rp.records.is_empty());
            rp.log.append(&a).unwrap();
            rp.log.append(&b).unwrap();
            rp.log.append(&c).unwrap();
            rp.log.append_all(&[d.clone(), e.clone()]).unwrap();
        }
        let rp = MetadataLog::open(dir.path()).unwrap();
        assert_eq!(rp.records, vec![a, b, c, d, e]);
    }

    #[test]
    fn torn_tail_is_truncated() {
        let dir = tempfile::tempdir().unwrap();
        let a = topic("a", 1);
        {
            let mut rp = MetadataLog::open(dir.path()).unwrap();
            rp.log.append(&a).unwrap();
            rp.log.append(&topic("b", 2)).unwrap();
        }
        let path = dir.path().join(RECORDS_FILE);
        let len = std::fs::metadata(&path).unwrap().len();
        let f = OpenOptions::new().write(true).open(&path).unwrap();
        f.set_len(len - 3).unwrap();
        let mut rp = MetadataLog::open(dir.path()).unwrap();
        assert_eq!(rp.records, vec![a.clone()]);
        // Appends after the truncation replay fine.
        let c = topic("c", 1);
        rp.log.append(&c).unwrap();
        drop(rp);
        assert_eq!(MetadataLog::open(dir.path()).unwrap().records, vec![a, c]);
    }

    #[test]
    fn a_failed_append_leaves_no_torn_frame_before_later_records() {
        let dir = tempfile::tempdir().unwrap();
        let (a, b, c) = (topic("a", 1), topic("b", 1), topic("c", 1));
        {
            let mut rp = MetadataLog::open(dir.path()).unwrap();
            rp.log.append(&a).unwrap();
            rp.log.faults.torn_write_bytes = Some(11);
            assert!(rp.log.append(&b).is_err(), "ENOSPC is reported");
            // The disk has room again: this one is acknowledged.
            rp.log.append(&c).unwrap();
        }
        assert_eq!(MetadataLog::open(dir.path()).unwrap().records, vec![a, c], "c survives the restart");
    }

    #[test]
    fn a_log_that_cannot_be_rolled_back_refuses_appends() {
        let dir = tempfile::tempdir().unwrap();
        let a = topic("a", 1);
        {
            let mut rp = MetadataLog::open(dir.path()).unwrap();
            rp.log.append(&a).unwrap();
            rp.log.faults.torn_write_bytes = Some(5);
            rp.log.faults.fail_rollback = true;
            assert!(rp.log.append(&topic("b", 1)).is_err());
            assert!(rp.log.append(&topic("c", 1)).is_err(), "nothing is acknowledged behind a torn frame");
        }
        let mut rp = MetadataLog::open(dir.path()).unwrap();
        assert_eq!(rp.records, vec![a.clone()], "the torn tail is cut at the next start");
        let d = topic("d", 1);
        rp.log.append(&d).unwrap();
        drop(rp);
        assert_eq!(MetadataLog::open(dir.path()).unwrap().records, vec![a, d]);
    }

    #[test]
    fn an_oversized_record_is_an_error_not_a_panic() {
        let dir = tempfile::tempdir().unwrap();
        let mut rp = MetadataLog::open(dir.path()).unwrap();
        let huge = MetadataRecord::Topic {
            name: "t".into(),
            id: Uuid::NIL,
            partitions: 1,
            leader_epoch: 0,
            configs: [("k".to_string(), "v".repeat(MAX_RECORD_BYTES))].into(),
        };
        let e = rp.log.append(&huge).unwrap_err();
        assert_eq!(e.kind(), std::io::ErrorKind::InvalidInput);
        rp.log.append(&topic("a", 1)).unwrap();
    }

    #[test]
    fn corrupt_byte_stops_replay() {
        let dir = tempfile::tempdir().unwrap();
        {
            let mut rp = MetadataLog::open(dir.path()).unwrap();
            rp.log.append(&topic("a", 1)).unwrap();
        }
        let path = dir.path().join(RECORDS_FILE);
        let mut data = std::fs::read(&path).unwrap();
        let last = data.len() - 1;
        data[last] ^= 0xff;
        std::fs::write(&path, &data).unwrap();
        assert!(MetadataLog::open(dir.path()).unwrap().records.is_empty());
    }

    #[test]
    fn snapshot_then_more_records() {
        let dir = tempfile::tempdir().unwrap();
        let a = topic("a", 1);
        let b = topic("b", 1);
        {
            let mut rp = MetadataLog::open(dir.path()).unwrap();
            rp.log.append(&a).unwrap();
            rp.log.append(&MetadataRecord::RemoveTopic { id: Uuid::NIL }).unwrap();
            rp.log.snapshot(std::slice::from_ref(&a)).unwrap();
            rp.log.append(&b).unwrap();
        }
        assert_eq!(MetadataLog::open(dir.path()).unwrap().records, vec![a, b]);
    }

    #[test]
    fn a_record_type_from_a_newer_klamm_refuses_the_start_and_keeps_every_record() {
        let mut unknown = 9u64.to_be_bytes().to_vec();
        unknown.push(200); // a record type this klamm does not know
        unknown.extend_from_slice(b"fields of the future");
        let mut data = frame(&MetadataRecord::ProducerIds { next_block_start: 7 }.encode(8));
        data.extend_from_slice(&frame(&unknown));
        data.extend_from_slice(&frame(&MetadataRecord::ProducerIds { next_block_start: 9 }.encode(10)));
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join(RECORDS_FILE), &data).unwrap();
        let err = MetadataLog::open(dir.path()).err().expect("refused");
        assert!(err.to_string().contains("cannot read"), "{err}");
        assert_eq!(std::fs::read(dir.path().join(RECORDS_FILE)).unwrap(), data, "nothing cut off");
        // A torn tail after good frames is still cut off as before.
        let good = frame(&MetadataRecord::ProducerIds { next_block_start: 7 }.encode(8));
        let mut torn = good.clone();
        torn.extend_from_slice(&frame(&MetadataRecord::ProducerIds { next_block_start: 9 }.encode(10))[..5]);
        std::fs::write(dir.path().join(RECORDS_FILE), &torn).unwrap();
        assert_eq!(MetadataLog::open(dir.path()).unwrap().records.len(), 1);
        assert_eq!(std::fs::read(dir.path().join(RECORDS_FILE)).unwrap(), good);
    }

    #[test]
    fn garbage_never_panics() {
        let mut seed = 7u64;
        for n in 0..200 {
            let data: Vec<u8> = (0..n).map(|_| crate::protocol::sample::next(&mut seed) as u8).collect();
            let (_, valid) = parse_frames(&data);
            assert!(valid <= data.len());
        }
    }
}
