//! Durable committed offsets: klamm's stand-in for Kafka's compacted
//! `__consumer_offsets` topic.
//!
//! One append-only file, `<dir>/offsets.log`, starts with an 8-byte header
//! and holds length-prefixed, CRC-32C-checked records: offset commits,
//! group metadata (so groups with offsets survive a restart, as Kafka's
//! do), transactional offset commits (pending under their producer id
//! until that producer's transaction marker commits or drops them, as
//! Kafka's `__consumer_offsets` holds them) and tombstones (offset delete, group delete, topic delete). The
//! live state is materialized in memory.
//!
//! Writes go through one dedicated writer thread: it takes every queued
//! batch, writes them, issues a single fsync for all of them (group
//! commit), applies them to the in-memory state and only then answers the
//! waiters, so a commit is acknowledged only once it is durable and a
//! fetch never sees an offset that could be lost. When the file grows past
//! 4x its live size (and 1 MiB) the writer rewrites the live records into
//! a temporary file, fsyncs it and renames it over the old one.
//!
//! On open the file is replayed up to the first torn or corrupt record,
//! and truncated there. A whole record (its checksum right) that does not
//! decode is a newer klamm's or damage, with good records after it: open
//! refuses then and leaves the file as it is.
//!
//! Record framing: `body_bytes: u32 BE | crc32c(body): u32 BE | body`.
//! Body: a type byte, then fields; strings are `u32 BE length | UTF-8`,
//! optional strings use length -1 for none, integers are big-endian.

use std::collections::{BTreeMap, HashMap};
use std::fs::{self, File, OpenOptions};
use std::io::{self, BufReader, BufWriter, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc::{self, Receiver, SyncSender, TrySendError};
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread::JoinHandle;

use tokio::sync::oneshot;

use crate::group::errors::StoreError;
use crate::types::{Offset, TimestampMs};

/// Name of the offsets file inside the store directory.
pub const OFFSETS_FILE_NAME: &str = "offsets.log";
/// Name of the temporary file used while compacting.
const COMPACT_TMP_FILE_NAME: &str = "offsets.log.compact";
/// File header: format name and version.
const FILE_MAGIC: &[u8; 8] = b"KLMOFS01";
/// Upper bound of one record's body; anything larger read from disk is
/// treated as corruption.
pub const MAX_RECORD_BYTES: usize = 1 << 20;
/// Frame header: length + CRC.
const FRAME_HEADER_BYTES: usize = 8;
/// Compaction is considered only above this file size.
const COMPACT_MIN_FILE_BYTES: u64 = 1 << 20;
/// Compaction runs when the file exceeds this multiple of the live size.
const COMPACT_RATIO: u64 = 4;
/// Maximum number of queued write commands before `Busy` is returned.
const QUEUE_CAPACITY: usize = 4096;
/// Maximum number of commands merged into one group commit.
const MAX_COMMANDS_PER_SYNC: usize = 1024;

const TYPE_GROUP_META: u8 = 1;
const TYPE_OFFSET_COMMIT: u8 = 2;
const TYPE_OFFSET_TOMBSTONE: u8 = 3;
const TYPE_GROUP_TOMBSTONE: u8 = 4;
const TYPE_TOPIC_TOMBSTONE: u8 = 5;
const TYPE_TXN_OFFSET_COMMIT: u8 = 6;
const TYPE_TXN_MARKER: u8 = 7;
const TYPE_CONSUMER_GROUP: u8 = 8;

/// A committed offset as stored (Kafka's `OffsetAndMetadata`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CommittedOffset {
    pub offset: Offset,
    /// -1 when unknown.
    pub leader_epoch: i32,
    pub metadata: String,
    pub commit_timestamp: TimestampMs,
    /// Set only when the commit carried an explicit retention time
    /// (OffsetCommit v2-v4); then it overrides the broker's retention.
    pub expire_timestamp: Option<TimestampMs>,
}

/// The durable part of a group's metadata.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StoredGroupMeta {
    /// `None` for simple (offsets-only) groups.
    pub protocol_type: Option<String>,
    pub generation_id: i32,
    /// When the group last became Empty, if it was Empty when written.
    pub empty_since: Option<TimestampMs>,
}

/// One record of the offsets file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum StoreRecord {
    GroupMeta {
        group: String,
        meta: StoredGroupMeta,
    },
    OffsetCommit {
        group: String,
        topic: String,
        partition: i32,
        value: CommittedOffset,
    },
    OffsetTombstone {
        group: String,
        topic: String,
        partition: i32,
    },
    GroupTombstone {
        group: String,
    },
    TopicTombstone {
        topic: String,
    },
    /// An offset committed in `producer_id`'s open transaction (pending).
    TxnOffsetCommit {
        group: String,
        producer_id: i64,
        topic: String,
        partition: i32,
        value: CommittedOffset,
    },
    /// `producer_id`'s transaction ended: its pending offsets of `group`
    /// become committed offsets (`commit`) or are dropped.
    TxnMarker {
        group: String,
        producer_id: i64,
        commit: bool,
    },
    /// A KIP-848 consumer group's state (members, epochs, assignments) as
    /// `group::consumer::durable` encodes it; replaces the previous one.
    /// An empty snapshot or a GroupTombstone removes it.
    ConsumerGroup {
        group: String,
        snapshot: Vec<u8>,
    },
}

/// The live state of one group in the store.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct StoredGroup {
    pub meta: Option<StoredGroupMeta>,
    /// topic -> partition -> committed offset.
    pub offsets: BTreeMap<String, BTreeMap<i32, CommittedOffset>>,
}

impl StoredGroup {
    /// Number of committed offsets of the group.
    pub fn offset_count(&self) -> usize {
        self.offsets.values().map(BTreeMap::len).sum()
    }
}

/// Size figures, for tests and metrics.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct StoreStats {
    pub file_bytes: u64,
    pub live_bytes: u64,
    pub groups: usize,
    pub offsets: usize,
}

/// The materialized live state.
#[derive(Default)]
struct Materialized {
    groups: HashMap<String, StoredGroup>,
    /// Framed size of every live record (what a compacted file holds,
    /// minus the header).
    live_bytes: u64,
    offset_count: usize,
    /// group -> producer id -> (topic, partition) -> pending offset.
    pending: HashMap<String, HashMap<i64, BTreeMap<(String, i32), CommittedOffset>>>,
    /// KIP-848 consumer group snapshots.
    consumer_groups: BTreeMap<String, Vec<u8>>,
}

fn consumer_group_record_size(group: &str, snapshot: &[u8]) -> u64 {
    FRAME_HEADER_BYTES as u64 + 1 + str_size(group) + 4 + snapshot.len() as u64
}

fn str_size(s: &str) -> u64 {
    4 + s.len() as u64
}

fn meta_record_size(group: &str, meta: &StoredGroupMeta) -> u64 {
    FRAME_HEADER_BYTES as u64
        + 1
        + str_size(group)
        + 4
        + meta.protocol_type.as_deref().map_or(0, |p| p.len() as u64)
        + 4
        + 8
}

fn commit_record_size(group: &str, topic: &str, value: &CommittedOffset) -> u64 {
    FRAME_HEADER_BYTES as u64
        + 1
        + str_size(group)
        + str_size(topic)
        + 4
        + 8
        + 4
        + str_size(&value.metadata)
        + 8
        + 8
}

impl Materialized {
    fn remove_group_if_unused(&mut self, group: &str) {
        if let Some(g) = self.groups.get(group) {
            if g.meta.is_none() && g.offsets.is_empty() {
                self.groups.remove(group);
            }
        }
    }

    fn drop_group_bytes(&mut self, group: &str, g: &StoredGroup) {
        if let Some(meta) = &g.meta {
            self.live_bytes = self
                .live_bytes
                .saturating_sub(meta_record_size(group, meta));
        }
        for (topic, parts) in &g.offsets {
            for value in parts.values() {
                self.live_bytes = self
                    .live_bytes
                    .saturating_sub(commit_record_size(group, topic, value));
                self.offset_count = self.offset_count.saturating_sub(1);
            }
        }
    }

    fn apply(&mut self, rec: StoreRecord) {
        match rec {
            StoreRecord::GroupMeta { group, meta } => {
                let added = meta_record_size(&group, &meta);
                let entry = self.groups.entry(group.clone()).or_default();
                let removed = entry
                    .meta
                    .as_ref()
                    .map_or(0, |old| meta_record_size(&group, old));
                entry.meta = Some(meta);
                self.live_bytes = self.live_bytes.saturating_sub(removed) + added;
            }
            StoreRecord::OffsetCommit {
                group,
                topic,
                partition,
                value,
            } => {
                let added = commit_record_size(&group, &topic, &value);
                let entry = self.groups.entry(group.clone()).or_default();
                let parts = entry.offsets.entry(topic.clone()).or_default();
                match parts.insert(partition, value) {
                    Some(old) => {
                        self.live_bytes = self
                            .live_bytes
                            .saturating_sub(commit_record_size(&group, &topic, &old))
                    }
                    None => self.offset_count += 1,
                }
                self.live_bytes += added;
            }
            StoreRecord::OffsetTombstone {
                group,
                topic,
                partition,
            } => {
                let mut removed = None;
                if let Some(entry) = self.groups.get_mut(&group) {
                    if let Some(parts) = entry.offsets.get_mut(&topic) {
                        removed = parts.remove(&partition);
                        if parts.is_empty() {
                            entry.offsets.remove(&topic);
                        }
                    }
                }
                if let Some(old) = removed {
                    self.live_bytes = self
                        .live_bytes
                        .saturating_sub(commit_record_size(&group, &topic, &old));
                    self.offset_count = self.offset_count.saturating_sub(1);
                }
                self.remove_group_if_unused(&group);
            }
            StoreRecord::TxnOffsetCommit { group, producer_id, topic, partition, value } => {
                let added = commit_record_size(&group, &topic, &value) + 8;
                let parts = self.pending.entry(group.clone()).or_default().entry(producer_id).or_default();
                if let Some(old) = parts.insert((topic.clone(), partition), value) {
                    self.live_bytes = self.live_bytes.saturating_sub(commit_record_size(&group, &topic, &old) + 8);
                }
                self.live_bytes += added;
            }
            StoreRecord::TxnMarker { group, producer_id, commit } => {
                let Some(by_producer) = self.pending.get_mut(&group) else { return };
                let Some(parts) = by_producer.remove(&producer_id) else { return };
                if by_producer.is_empty() {
                    self.pending.remove(&group);
                }
                for ((topic, partition), value) in parts {
                    self.live_bytes = self.live_bytes.saturating_sub(commit_record_size(&group, &topic, &value) + 8);
                    if commit {
                        self.apply(StoreRecord::OffsetCommit { group: group.clone(), topic, partition, value });
                    }
                }
            }
            StoreRecord::ConsumerGroup { group, snapshot } => {
                // An empty snapshot removes the group's state (not its offsets).
                let added = if snapshot.is_empty() { 0 } else { consumer_group_record_size(&group, &snapshot) };
                let old = if snapshot.is_empty() {
                    self.consumer_groups.remove(&group)
                } else {
                    self.consumer_groups.insert(group.clone(), snapshot)
                };
                if let Some(old) = old {
                    self.live_bytes = self.live_bytes.saturating_sub(consumer_group_record_size(&group, &old));
                }
                self.live_bytes += added;
            }
            StoreRecord::GroupTombstone { group } => {
                if let Some(old) = self.consumer_groups.remove(&group) {
                    self.live_bytes = self.live_bytes.saturating_sub(consumer_group_record_size(&group, &old));
                }
                if let Some(by_producer) = self.pending.remove(&group) {
                    for ((topic, _), value) in by_producer.values().flatten() {
                        self.live_bytes = self.live_bytes.saturating_sub(commit_record_size(&group, topic, value) + 8);
                    }
                }
                if let Some(g) = self.groups.remove(&group) {
                    self.drop_group_bytes(&group, &g);
                }
            }
            StoreRecord::TopicTombstone { topic } => {
                let mut emptied = Vec::new();
                let mut freed_bytes = 0;
                let mut freed_count = 0;
                for (group, entry) in self.groups.iter_mut() {
                    if let Some(parts) = entry.offsets.remove(&topic) {
                        for value in parts.values() {
                            freed_bytes += commit_record_size(group, &topic, value);
                            freed_count += 1;
                        }
                        if entry.meta.is_none() && entry.offsets.is_empty() {
                            emptied.push(group.clone());
                        }
                    }
                }
                self.live_bytes = self.live_bytes.saturating_sub(freed_bytes);
                self.offset_count = self.offset_count.saturating_sub(freed_count);
                for g in emptied {
                    self.groups.remove(&g);
                }
            }
        }
    }

    /// Every live record, for compaction.
    fn live_records(&self) -> Vec<StoreRecord> {
        let mut out = Vec::with_capacity(self.offset_count + self.groups.len());
        for (group, entry) in &self.groups {
            if let Some(meta) = &entry.meta {
                out.push(StoreRecord::GroupMeta {
                    group: group.clone(),
                    meta: meta.clone(),
                });
            }
            for (topic, parts) in &entry.offsets {
                for (partition, value) in parts {
                    out.push(StoreRecord::OffsetCommit {
                        group: group.clone(),
                        topic: topic.clone(),
                        partition: *partition,
                        value: value.clone(),
                    });
                }
            }
        }
        for (group, snapshot) in &self.consumer_groups {
            out.push(StoreRecord::ConsumerGroup { group: group.clone(), snapshot: snapshot.clone() });
        }
        for (group, by_producer) in &self.pending {
            for (producer_id, parts) in by_producer {
                for ((topic, partition), value) in parts {
                    out.push(StoreRecord::TxnOffsetCommit {
                        group: group.clone(),
                        producer_id: *producer_id,
                        topic: topic.clone(),
                        partition: *partition,
                        value: value.clone(),
                    });
                }
            }
        }
        out
    }
}

// ---------------------------------------------------------------------
// Encoding

fn put_str(out: &mut Vec<u8>, s: &str) {
    out.extend_from_slice(&(s.len() as u32).to_be_bytes());
    out.extend_from_slice(s.as_bytes());
}

fn put_opt_str(out: &mut Vec<u8>, s: Option<&str>) {
    match s {
        Some(s) => put_str(out, s),
        None => out.extend_from_slice(&(-1i32).to_be_bytes()),
    }
}

/// Encodes one framed record (header + body) onto `out`.
fn encode_record(rec: &StoreRecord, out: &mut Vec<u8>) -> Result<(), StoreError> {
    let start = out.len();
    out.extend_from_slice(&[0u8; FRAME_HEADER_BYTES]);
    match rec {
        StoreRecord::GroupMeta { group, meta } => {
            out.push(TYPE_GROUP_META);
            put_str(out, group);
            put_opt_str(out, meta.protocol_type.as_deref());
            out.extend_from_slice(&meta.generation_id.to_be_bytes());
            out.extend_from_slice(&meta.empty_since.map_or(-1, |t| t.0).to_be_bytes());
        }
        StoreRecord::OffsetCommit {
            group,
            topic,
            partition,
            value,
        } => {
            out.push(TYPE_OFFSET_COMMIT);
            put_str(out, group);
            put_str(out, topic);
            out.extend_from_slice(&partition.to_be_bytes());
            out.extend_from_slice(&value.offset.0.to_be_bytes());
            out.extend_from_slice(&value.leader_epoch.to_be_bytes());
            put_str(out, &value.metadata);
            out.extend_from_slice(&value.commit_timestamp.0.to_be_bytes());
            out.extend_from_slice(&value.expire_timestamp.map_or(-1, |t| t.0).to_be_bytes());
        }
        StoreRecord::OffsetTombstone {
            group,
            topic,
            partition,
        } => {
            out.push(TYPE_OFFSET_TOMBSTONE);
            put_str(out, group);
            put_str(out, topic);
            out.extend_from_slice(&partition.to_be_bytes());
        }
        StoreRecord::GroupTombstone { group } => {
            out.push(TYPE_GROUP_TOMBSTONE);
            put_str(out, group);
        }
        StoreRecord::TopicTombstone { topic } => {
            out.push(TYPE_TOPIC_TOMBSTONE);
            put_str(out, topic);
        }
        StoreRecord::TxnOffsetCommit { group, producer_id, topic, partition, value } => {
            out.push(TYPE_TXN_OFFSET_COMMIT);
            put_str(out, group);
            out.extend_from_slice(&producer_id.to_be_bytes());
            put_str(out, topic);
            out.extend_from_slice(&partition.to_be_bytes());
            out.extend_from_slice(&value.offset.0.to_be_bytes());
            out.extend_from_slice(&value.leader_epoch.to_be_bytes());
            put_str(out, &value.metadata);
            out.extend_from_slice(&value.commit_timestamp.0.to_be_bytes());
            out.extend_from_slice(&value.expire_timestamp.map_or(-1, |t| t.0).to_be_bytes());
        }
        StoreRecord::ConsumerGroup { group, snapshot } => {
            out.push(TYPE_CONSUMER_GROUP);
            put_str(out, group);
            out.extend_from_slice(&(snapshot.len() as u32).to_be_bytes());
            out.extend_from_slice(snapshot);
        }
        StoreRecord::TxnMarker { group, producer_id, commit } => {
            out.push(TYPE_TXN_MARKER);
            put_str(out, group);
            out.extend_from_slice(&producer_id.to_be_bytes());
            out.push(u8::from(*commit));
        }
    }
    let body_bytes = out.len() - start - FRAME_HEADER_BYTES;
    if body_bytes > MAX_RECORD_BYTES {
        out.truncate(start);
        return Err(StoreError::RecordTooLarge {
            size_bytes: body_bytes,
            limit_bytes: MAX_RECORD_BYTES,
        });
    }
    let crc = crc32c::crc32c(&out[start + FRAME_HEADER_BYTES..]);
    out[start..start + 4].copy_from_slice(&(body_bytes as u32).to_be_bytes());
    out[start + 4..start + 8].copy_from_slice(&crc.to_be_bytes());
    Ok(())
}

/// Why a body could not be decoded (only ever reported as "stop here").
#[derive(Debug)]
struct DecodeError;

struct BodyReader<'a> {
    buf: &'a [u8],
}

impl<'a> BodyReader<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], DecodeError> {
        if self.buf.len() < n {
            return Err(DecodeError);
        }
        let (head, tail) = self.buf.split_at(n);
        self.buf = tail;
        Ok(head)
    }
    fn u8(&mut self) -> Result<u8, DecodeError> {
        Ok(self.take(1)?[0])
    }
    fn i32(&mut self) -> Result<i32, DecodeError> {
        let b = self.take(4)?;
        Ok(i32::from_be_bytes([b[0], b[1], b[2], b[3]]))
    }
    fn i64(&mut self) -> Result<i64, DecodeError> {
        let b = self.take(8)?;
        let mut a = [0u8; 8];
        a.copy_from_slice(b);
        Ok(i64::from_be_bytes(a))
    }
    fn string(&mut self) -> Result<String, DecodeError> {
        let len = self.i32()?;
        if len < 0 {
            return Err(DecodeError);
        }
        let b = self.take(len as usize)?;
        std::str::from_utf8(b)
            .map(str::to_string)
            .map_err(|_| DecodeError)
    }
    fn opt_string(&mut self) -> Result<Option<String>, DecodeError> {
        let len = self.i32()?;
        if len == -1 {
            return Ok(None);
        }
        if len < 0 {
            return Err(DecodeError);
        }
        let b = self.take(len as usize)?;
        std::str::from_utf8(b)
            .map(|s| Some(s.to_string()))
            .map_err(|_| DecodeError)
    }
    fn opt_timestamp(&mut self) -> Result<Option<TimestampMs>, DecodeError> {
        let t = self.i64()?;
        Ok(if t < 0 { None } else { Some(TimestampMs(t)) })
    }
}

fn decode_body(body: &[u8]) -> Result<StoreRecord, DecodeError> {
    let mut r = BodyReader { buf: body };
    let rec = match r.u8()? {
        TYPE_GROUP_META => StoreRecord::GroupMeta {
            group: r.string()?,
            meta: StoredGroupMeta {
                protocol_type: r.opt_string()?,
                generation_id: r.i32()?,
                empty_since: r.opt_timestamp()?,
            },
        },
        TYPE_OFFSET_COMMIT => StoreRecord::OffsetCommit {
            group: r.string()?,
            topic: r.string()?,
            partition: r.i32()?,
            value: CommittedOffset {
                offset: Offset(r.i64()?),
                leader_epoch: r.i32()?,
                metadata: r.string()?,
                commit_timestamp: TimestampMs(r.i64()?),
                expire_timestamp: r.opt_timestamp()?,
            },
        },
        TYPE_OFFSET_TOMBSTONE => StoreRecord::OffsetTombstone {
            group: r.string()?,
            topic: r.string()?,
            partition: r.i32()?,
        },
        TYPE_GROUP_TOMBSTONE => StoreRecord::GroupTombstone { group: r.string()? },
        TYPE_TOPIC_TOMBSTONE => StoreRecord::TopicTombstone { topic: r.string()? },
        TYPE_TXN_OFFSET_COMMIT => StoreRecord::TxnOffsetCommit {
            group: r.string()?,
            producer_id: r.i64()?,
            topic: r.string()?,
            partition: r.i32()?,
            value: CommittedOffset {
                offset: Offset(r.i64()?),
                leader_epoch: r.i32()?,
                metadata: r.string()?,
                commit_timestamp: TimestampMs(r.i64()?),
                expire_timestamp: r.opt_timestamp()?,
            },
        },
        TYPE_CONSUMER_GROUP => StoreRecord::ConsumerGroup {
            group: r.string()?,
            snapshot: {
                let len = r.i32()?;
                if len < 0 {
                    return Err(DecodeError);
                }
                r.take(len as usize)?.to_vec()
            },
        },
        TYPE_TXN_MARKER => StoreRecord::TxnMarker {
            group: r.string()?,
            producer_id: r.i64()?,
            commit: match r.u8()? {
                0 => false,
                1 => true,
                _ => return Err(DecodeError),
            },
        },
        _ => return Err(DecodeError),
    };
    if !r.buf.is_empty() {
        return Err(DecodeError);
    }
    Ok(rec)
}

// ---------------------------------------------------------------------
// Opening and replay

fn fsync_dir(dir: &Path) -> io::Result<()> {
    File::open(dir)?.sync_all()
}


/// Replays the file into `state`; returns the length of the valid prefix.
fn replay(file: &mut File, path: &Path, state: &mut Materialized) -> Result<u64, StoreError> {
    let file_bytes = file.metadata()?.len();
    file.seek(SeekFrom::Start(0))?;
    let mut reader = BufReader::with_capacity(256 * 1024, &mut *file);
    let mut magic = [0u8; FILE_MAGIC.len()];
    let got = crate::util::read_full(&mut reader, &mut magic)?;
    if got < FILE_MAGIC.len() {
        // A file torn while it was being created: only a prefix of our
        // header (or nothing) is acceptable.
        if magic[..got] == FILE_MAGIC[..got] {
            return Ok(0);
        }
        return Err(StoreError::BadHeader {
            path: path.display().to_string(),
        });
    }
    if &magic != FILE_MAGIC {
        return Err(StoreError::BadHeader {
            path: path.display().to_string(),
        });
    }
    let mut valid_bytes = FILE_MAGIC.len() as u64;
    let mut body = Vec::new();
    loop {
        let mut header = [0u8; FRAME_HEADER_BYTES];
        let got = crate::util::read_full(&mut reader, &mut header)?;
        if got == 0 {
            break;
        }
        if got < FRAME_HEADER_BYTES {
            tracing::warn!(path = %path.display(), position = valid_bytes, "torn record header in offsets file");
            break;
        }
        let body_bytes = u32::from_be_bytes([header[0], header[1], header[2], header[3]]) as usize;
        let crc = u32::from_be_bytes([header[4], header[5], header[6], header[7]]);
        if body_bytes == 0
            || body_bytes > MAX_RECORD_BYTES
            || valid_bytes + (FRAME_HEADER_BYTES + body_bytes) as u64 > file_bytes
        {
            tracing::warn!(path = %path.display(), position = valid_bytes, body_bytes, "bad or torn record length in offsets file");
            break;
        }
        body.resize(body_bytes, 0);
        if crate::util::read_full(&mut reader, &mut body)? < body_bytes {
            tracing::warn!(path = %path.display(), position = valid_bytes, "torn record in offsets file");
            break;
        }
        if crc32c::crc32c(&body) != crc {
            tracing::warn!(path = %path.display(), position = valid_bytes, "CRC mismatch in offsets file");
            break;
        }
        let Ok(rec) = decode_body(&body) else {
            return Err(StoreError::Unreadable { path: path.display().to_string(), position_bytes: valid_bytes });
        };
        state.apply(rec);
        valid_bytes += (FRAME_HEADER_BYTES + body_bytes) as u64;
    }
    Ok(valid_bytes)
}

// ---------------------------------------------------------------------
// The store

type Reply = oneshot::Sender<Result<(), StoreError>>;

enum Command {
    Append(Vec<StoreRecord>, Reply),
    Compact(Reply),
    Shutdown,
}

struct Shared {
    state: Mutex<Materialized>,
    file_bytes: AtomicU64,
    failed: AtomicBool,
}

impl Shared {
    fn state(&self) -> MutexGuard<'_, Materialized> {
        // A panic while holding the lock leaves a consistent map (applies
        // are single inserts/removes); keep serving.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// The durable offsets store. `Send + Sync`; reads are served from memory,
/// writes are queued to the writer thread.
pub struct OffsetsStore {
    shared: Arc<Shared>,
    tx: SyncSender<Command>,
    writer: Mutex<Option<JoinHandle<()>>>,
    path: PathBuf,
}

impl std::fmt::Debug for OffsetsStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OffsetsStore")
            .field("path", &self.path)
            .finish()
    }
}

impl OffsetsStore {
    /// Opens (creating if needed) the store in `dir`, replays it and
    /// truncates a torn or corrupt tail. Blocking: call it at startup or
    /// from `spawn_blocking`.
    pub fn open(dir: &Path) -> Result<OffsetsStore, StoreError> {
        fs::create_dir_all(dir)?;
        let path = dir.join(OFFSETS_FILE_NAME);
        let tmp = dir.join(COMPACT_TMP_FILE_NAME);
        if tmp.exists() {
            // Left over by a crash during compaction; the main file is intact.
            fs::remove_file(&tmp)?;
        }
        let existed = path.exists();
        let mut file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&path)?;
        let mut state = Materialized::default();
        let valid_bytes = replay(&mut file, &path, &mut state)?;
        if valid_bytes == 0 {
            // New (or torn at creation): write the header.
            file.set_len(0)?;
            file.seek(SeekFrom::Start(0))?;
            file.write_all(FILE_MAGIC)?;
            file.sync_all()?;
            if !existed {
                fsync_dir(dir)?;
            }
        } else if valid_bytes < file.metadata()?.len() {
            tracing::warn!(path = %path.display(), valid_bytes, "truncating offsets file after its last valid record");
            file.set_len(valid_bytes)?;
            file.sync_all()?;
        }
        let file_bytes = file.seek(SeekFrom::End(0))?;
        debug_assert!(file_bytes >= FILE_MAGIC.len() as u64);

        let shared = Arc::new(Shared {
            state: Mutex::new(state),
            file_bytes: AtomicU64::new(file_bytes),
            failed: AtomicBool::new(false),
        });
        let (tx, rx) = mpsc::sync_channel(QUEUE_CAPACITY);
        let writer = Writer {
            shared: shared.clone(),
            file,
            file_bytes,
            dir: dir.to_path_buf(),
            path: path.clone(),
        };
        let handle = std::thread::Builder::new()
            .name("klamm-offsets-writer".to_string())
            .spawn(move || writer.run(rx))?;
        Ok(OffsetsStore {
            shared,
            tx,
            writer: Mutex::new(Some(handle)),
            path,
        })
    }

    /// Path of the offsets file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Queues records for a durable write without blocking. The returned
    /// receiver resolves once they are fsynced and visible to readers.
    /// Records queued earlier are applied earlier.
    pub fn submit(
        &self,
        records: Vec<StoreRecord>,
    ) -> Result<oneshot::Receiver<Result<(), StoreError>>, StoreError> {
        if self.shared.failed.load(Ordering::Acquire) {
            return Err(StoreError::Failed);
        }
        let (reply, rx) = oneshot::channel();
        match self.tx.try_send(Command::Append(records, reply)) {
            Ok(()) => Ok(rx),
            Err(TrySendError::Full(_)) => Err(StoreError::Busy),
            Err(TrySendError::Disconnected(_)) => Err(StoreError::Closed),
        }
    }

    /// Writes records durably and waits for it.
    pub async fn append(&self, records: Vec<StoreRecord>) -> Result<(), StoreError> {
        let rx = self.submit(records)?;
        rx.await.unwrap_or(Err(StoreError::Closed))
    }

    /// Forces a compaction now (tests, admin).
    pub async fn compact(&self) -> Result<(), StoreError> {
        let (reply, rx) = oneshot::channel();
        match self.tx.try_send(Command::Compact(reply)) {
            Ok(()) => {}
            Err(TrySendError::Full(_)) => return Err(StoreError::Busy),
            Err(TrySendError::Disconnected(_)) => return Err(StoreError::Closed),
        }
        rx.await.unwrap_or(Err(StoreError::Closed))
    }

    /// Stops the writer after it has written everything queued so far.
    /// Blocking (joins the writer thread).
    pub fn close_blocking(&self) {
        // A full queue still drains: the blocking send waits for room.
        let _ = self.tx.send(Command::Shutdown);
        let handle = self.writer.lock().unwrap_or_else(|e| e.into_inner()).take();
        if let Some(h) = handle {
            if h.join().is_err() {
                tracing::error!("offsets writer thread panicked");
            }
        }
    }

    /// Async form of [`OffsetsStore::close_blocking`].
    pub async fn close(self: &Arc<Self>) {
        let this = self.clone();
        let _ = tokio::task::spawn_blocking(move || this.close_blocking()).await;
    }

    /// The committed offset of one partition.
    pub fn committed_offset(
        &self,
        group: &str,
        topic: &str,
        partition: i32,
    ) -> Option<CommittedOffset> {
        self.shared
            .state()
            .groups
            .get(group)?
            .offsets
            .get(topic)?
            .get(&partition)
            .cloned()
    }

    /// Runs `f` on the live state of a group (`None` if the store knows
    /// nothing of it), under the store's lock: keep `f` short.
    pub fn with_group<R>(&self, group: &str, f: impl FnOnce(Option<&StoredGroup>) -> R) -> R {
        f(self.shared.state().groups.get(group))
    }

    /// A copy of a group's live state.
    pub fn group(&self, group: &str) -> Option<StoredGroup> {
        self.shared.state().groups.get(group).cloned()
    }

    /// Every group the store knows of, with its stored metadata.
    /// The KIP-848 consumer group snapshots, by group id.
    pub fn consumer_groups(&self) -> Vec<(String, Vec<u8>)> {
        self.shared.state().consumer_groups.iter().map(|(g, s)| (g.clone(), s.clone())).collect()
    }

    pub fn group_ids(&self) -> Vec<(String, Option<StoredGroupMeta>)> {
        let mut out: Vec<_> = self
            .shared
            .state()
            .groups
            .iter()
            .map(|(g, e)| (g.clone(), e.meta.clone()))
            .collect();
        out.sort_by(|a, b| a.0.cmp(&b.0));
        out
    }

    /// Whether any group has committed offsets for `topic`.
    /// The partitions for which an open transaction holds a pending offset
    /// of `group`.
    pub fn pending_partitions(&self, group: &str) -> std::collections::HashSet<(String, i32)> {
        self.shared
            .state()
            .pending
            .get(group)
            .map(|by_producer| by_producer.values().flat_map(|parts| parts.keys().cloned()).collect())
            .unwrap_or_default()
    }

    pub fn topic_has_offsets(&self, topic: &str) -> bool {
        self.shared
            .state()
            .groups
            .values()
            .any(|g| g.offsets.contains_key(topic))
    }

    /// Total number of live committed offsets.
    pub fn offset_count(&self) -> usize {
        self.shared.state().offset_count
    }

    /// Current size figures.
    pub fn stats(&self) -> StoreStats {
        let st = self.shared.state();
        StoreStats {
            file_bytes: self.shared.file_bytes.load(Ordering::Acquire),
            live_bytes: st.live_bytes,
            groups: st.groups.len(),
            offsets: st.offset_count,
        }
    }
}

impl Drop for OffsetsStore {
    fn drop(&mut self) {
        // Let the writer finish what is queued; it exits when the channel
        // closes. Do not join here (drop may run on an async thread).
        let _ = self.tx.try_send(Command::Shutdown);
    }
}

fn clone_error(e: &StoreError) -> StoreError {
    match e {
        StoreError::Io(io) => StoreError::Io(io::Error::new(io.kind(), io.to_string())),
        StoreError::BadHeader { path } => StoreError::BadHeader { path: path.clone() },
        StoreError::Unreadable { path, position_bytes } => {
            StoreError::Unreadable { path: path.clone(), position_bytes: *position_bytes }
        }
        StoreError::RecordTooLarge {
            size_bytes,
            limit_bytes,
        } => StoreError::RecordTooLarge {
            size_bytes: *size_bytes,
            limit_bytes: *limit_bytes,
        },
        StoreError::Busy => StoreError::Busy,
        StoreError::Closed => StoreError::Closed,
        StoreError::Failed => StoreError::Failed,
    }
}

/// The writer thread's state.
struct Writer {
    shared: Arc<Shared>,
    file: File,
    file_bytes: u64,
    dir: PathBuf,
    path: PathBuf,
}

impl Writer {
    fn run(mut self, rx: Receiver<Command>) {
        let mut buf = Vec::with_capacity(64 * 1024);
        loop {
            let first = match rx.recv() {
                Ok(c) => c,
                Err(_) => break,
            };
            let mut appends: Vec<(Vec<StoreRecord>, Reply)> = Vec::new();
            let mut compacts: Vec<Reply> = Vec::new();
            let mut shutdown = false;
            let mut next = Some(first);
            while let Some(cmd) = next.take() {
                match cmd {
                    Command::Append(recs, reply) => appends.push((recs, reply)),
                    Command::Compact(reply) => compacts.push(reply),
                    Command::Shutdown => {
                        shutdown = true;
                        break;
                    }
                }
                if appends.len() + compacts.len() >= MAX_COMMANDS_PER_SYNC {
                    break;
                }
                next = rx.try_recv().ok();
            }
            self.write_batch(appends, &mut buf);
            let forced = !compacts.is_empty();
            if forced || self.should_compact() {
                let result = self.compact();
                if let Err(e) = &result {
                    tracing::warn!(path = %self.path.display(), error = %e, "offsets file compaction failed");
                }
                for reply in compacts {
                    let _ = reply.send(result.as_ref().map(|_| ()).map_err(clone_error));
                }
            }
            if shutdown {
                break;
            }
        }
        if let Err(e) = self.file.sync_all() {
            tracing::warn!(path = %self.path.display(), error = %e, "final fsync of offsets file failed");
        }
    }

    fn write_batch(&mut self, appends: Vec<(Vec<StoreRecord>, Reply)>, buf: &mut Vec<u8>) {
        if appends.is_empty() {
            return;
        }
        if self.shared.failed.load(Ordering::Acquire) {
            for (_, reply) in appends {
                let _ = reply.send(Err(StoreError::Failed));
            }
            return;
        }
        // Encode; a command with an oversized record fails alone.
        buf.clear();
        let mut accepted = Vec::with_capacity(appends.len());
        for (recs, reply) in appends {
            let mark = buf.len();
            let mut err = None;
            for r in &recs {
                if let Err(e) = encode_record(r, buf) {
                    err = Some(e);
                    break;
                }
            }
            match err {
                Some(e) => {
                    buf.truncate(mark);
                    let _ = reply.send(Err(e));
                }
                None => accepted.push((recs, reply)),
            }
        }
        if accepted.is_empty() {
            return;
        }
        let before = self.file_bytes;
        let io_result = self.file.write_all(buf).and_then(|_| self.file.sync_data());
        if let Err(e) = io_result {
            tracing::error!(path = %self.path.display(), error = %e, "writing offsets file failed");
            // Roll back the partial write so later records stay readable.
            let rollback = self
                .file
                .set_len(before)
                .and_then(|_| self.file.seek(SeekFrom::Start(before)).map(|_| ()))
                .and_then(|_| self.file.sync_all());
            if rollback.is_err() {
                self.shared.failed.store(true, Ordering::Release);
            }
            for (_, reply) in accepted {
                let _ = reply.send(Err(StoreError::Io(io::Error::new(e.kind(), e.to_string()))));
            }
            return;
        }
        self.file_bytes += buf.len() as u64;
        self.shared
            .file_bytes
            .store(self.file_bytes, Ordering::Release);
        let mut replies = Vec::with_capacity(accepted.len());
        {
            let mut st = self.shared.state();
            for (recs, reply) in accepted {
                for r in recs {
                    st.apply(r);
                }
                replies.push(reply);
            }
        }
        for reply in replies {
            let _ = reply.send(Ok(()));
        }
    }

    fn should_compact(&self) -> bool {
        let live = self.shared.state().live_bytes + FILE_MAGIC.len() as u64;
        self.file_bytes > COMPACT_MIN_FILE_BYTES
            && self.file_bytes > COMPACT_RATIO.saturating_mul(live)
    }

    /// Rewrites the live records into a new file and swaps it in.
    fn compact(&mut self) -> Result<(), StoreError> {
        if self.shared.failed.load(Ordering::Acquire) {
            return Err(StoreError::Failed);
        }
        let records = self.shared.state().live_records();
        let tmp = self.dir.join(COMPACT_TMP_FILE_NAME);
        let result = (|| -> Result<u64, StoreError> {
            let f = OpenOptions::new()
                .write(true)
                .create(true)
                .truncate(true)
                .open(&tmp)?;
            let mut w = BufWriter::with_capacity(256 * 1024, f);
            w.write_all(FILE_MAGIC)?;
            let mut len = FILE_MAGIC.len() as u64;
            let mut buf = Vec::with_capacity(4096);
            for r in &records {
                buf.clear();
                encode_record(r, &mut buf)?;
                w.write_all(&buf)?;
                len += buf.len() as u64;
            }
            let f = w.into_inner().map_err(|e| e.into_error())?;
            f.sync_all()?;
            Ok(len)
        })();
        let new_bytes = match result {
            Ok(len) => len,
            Err(e) => {
                let _ = fs::remove_file(&tmp);
                return Err(e);
            }
        };
        fs::rename(&tmp, &self.path)?;
        // From here on the new file is the store; a failure to reopen it
        // leaves us unable to append.
        let reopened = fsync_dir(&self.dir).and_then(|_| {
            let mut f = OpenOptions::new().read(true).write(true).open(&self.path)?;
            let end = f.seek(SeekFrom::End(0))?;
            Ok((f, end))
        });
        match reopened {
            Ok((f, end)) => {
                debug_assert_eq!(end, new_bytes);
                tracing::info!(path = %self.path.display(), old_bytes = self.file_bytes, new_bytes = end, "compacted offsets file");
                self.file = f;
                self.file_bytes = end;
                self.shared.file_bytes.store(end, Ordering::Release);
                Ok(())
            }
            Err(e) => {
                self.shared.failed.store(true, Ordering::Release);
                Err(StoreError::Io(e))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn commit(
        group: &str,
        topic: &str,
        partition: i32,
        offset: i64,
        metadata: &str,
    ) -> StoreRecord {
        StoreRecord::OffsetCommit {
            group: group.into(),
            topic: topic.into(),
            partition,
            value: CommittedOffset {
                offset: Offset(offset),
                leader_epoch: 3,
                metadata: metadata.into(),
                commit_timestamp: TimestampMs(1_000),
                expire_timestamp: None,
            },
        }
    }

    fn meta(group: &str, generation_id: i32) -> StoreRecord {
        StoreRecord::GroupMeta {
            group: group.into(),
            meta: StoredGroupMeta {
                protocol_type: Some("consumer".into()),
                generation_id,
                empty_since: Some(TimestampMs(5)),
            },
        }
    }

    #[test]
    fn records_round_trip_and_sizes_match() {
        let recs = vec![
            meta("g", 7),
            StoreRecord::GroupMeta {
                group: "s".into(),
                meta: StoredGroupMeta {
                    protocol_type: None,
                    generation_id: 0,
                    empty_since: None,
                },
            },
            commit("g", "t", 1, 42, "meta"),
            StoreRecord::OffsetCommit {
                group: "g".into(),
                topic: "t".into(),
                partition: 2,
                value: CommittedOffset {
                    offset: Offset(-1),
                    leader_epoch: -1,
                    metadata: String::new(),
                    commit_timestamp: TimestampMs(9),
                    expire_timestamp: Some(TimestampMs(99)),
                },
            },
            StoreRecord::OffsetTombstone {
                group: "g".into(),
                topic: "t".into(),
                partition: 1,
            },
            StoreRecord::GroupTombstone { group: "g".into() },
            StoreRecord::TopicTombstone { topic: "t".into() },
            StoreRecord::ConsumerGroup { group: "c".into(), snapshot: vec![1, 2, 3] },
        ];
        for r in recs {
            let mut buf = Vec::new();
            encode_record(&r, &mut buf).unwrap();
            let len = u32::from_be_bytes(buf[0..4].try_into().unwrap()) as usize;
            assert_eq!(len + FRAME_HEADER_BYTES, buf.len());
            assert_eq!(decode_body(&buf[FRAME_HEADER_BYTES..]).unwrap(), r);
            match &r {
                StoreRecord::GroupMeta { group, meta } => {
                    assert_eq!(meta_record_size(group, meta), buf.len() as u64)
                }
                StoreRecord::OffsetCommit {
                    group,
                    topic,
                    value,
                    ..
                } => {
                    assert_eq!(commit_record_size(group, topic, value), buf.len() as u64)
                }
                StoreRecord::ConsumerGroup { group, snapshot } => {
                    assert_eq!(consumer_group_record_size(group, snapshot), buf.len() as u64)
                }
                _ => {}
            }
        }
    }

    #[test]
    fn oversized_record_is_refused() {
        let mut buf = Vec::new();
        let big = "x".repeat(MAX_RECORD_BYTES);
        assert!(matches!(
            encode_record(&commit("g", "t", 0, 1, &big), &mut buf),
            Err(StoreError::RecordTooLarge { .. })
        ));
        assert!(buf.is_empty());
    }

    #[test]
    fn materialized_apply_and_accounting() {
        let mut m = Materialized::default();
        m.apply(meta("g", 1));
        m.apply(commit("g", "t", 0, 1, ""));
        m.apply(commit("g", "t", 0, 2, "longer"));
        m.apply(commit("g", "u", 0, 3, ""));
        m.apply(commit("h", "t", 5, 3, ""));
        assert_eq!(m.offset_count, 3);
        let expected: u64 = m
            .live_records()
            .iter()
            .map(|r| {
                let mut b = Vec::new();
                encode_record(r, &mut b).unwrap();
                b.len() as u64
            })
            .sum();
        assert_eq!(m.live_bytes, expected);
        m.apply(StoreRecord::TopicTombstone { topic: "t".into() });
        assert_eq!(m.offset_count, 1);
        assert!(
            !m.groups.contains_key("h"),
            "a group with neither meta nor offsets is gone"
        );
        assert!(m.groups.contains_key("g"));
        m.apply(StoreRecord::OffsetTombstone {
            group: "g".into(),
            topic: "u".into(),
            partition: 0,
        });
        assert_eq!(m.offset_count, 0);
        assert!(m.groups.contains_key("g"), "meta keeps the group");
        m.apply(StoreRecord::GroupTombstone { group: "g".into() });
        assert!(m.groups.is_empty());
        assert_eq!(m.live_bytes, 0);
    }

    fn txn_commit(group: &str, producer_id: i64, partition: i32, offset: i64) -> StoreRecord {
        let StoreRecord::OffsetCommit { group, topic, partition, value } = commit(group, "t", partition, offset, "") else {
            unreachable!()
        };
        StoreRecord::TxnOffsetCommit { group, producer_id, topic, partition, value }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn transactional_offsets_stay_pending_until_their_marker_and_survive_reopen() {
        let dir = tempfile::tempdir().unwrap();
        for rec in [txn_commit("g", 7, 0, 5), StoreRecord::TxnMarker { group: "g".into(), producer_id: 7, commit: true }] {
            let mut buf = Vec::new();
            encode_record(&rec, &mut buf).unwrap();
            assert_eq!(decode_body(&buf[FRAME_HEADER_BYTES..]).unwrap(), rec);
        }
        let store = Arc::new(OffsetsStore::open(dir.path()).unwrap());
        store.append(vec![txn_commit("g", 7, 0, 5), txn_commit("g", 8, 1, 9)]).await.unwrap();
        assert!(store.committed_offset("g", "t", 0).is_none());
        assert!(store.pending_partitions("g").contains(&("t".to_string(), 0)));
        store.append(vec![StoreRecord::TxnMarker { group: "g".into(), producer_id: 7, commit: true }]).await.unwrap();
        assert_eq!(store.committed_offset("g", "t", 0).unwrap().offset, Offset(5));
        assert!(!store.pending_partitions("g").contains(&("t".to_string(), 0)));
        store.close().await;
        drop(store);
        let store = Arc::new(OffsetsStore::open(dir.path()).unwrap());
        assert_eq!(store.committed_offset("g", "t", 0).unwrap().offset, Offset(5));
        assert!(store.pending_partitions("g").contains(&("t".to_string(), 1)), "still pending after reopen");
        store.append(vec![StoreRecord::TxnMarker { group: "g".into(), producer_id: 8, commit: false }]).await.unwrap();
        assert!(store.committed_offset("g", "t", 1).is_none());
        assert!(store.pending_partitions("g").is_empty());
        store.close().await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn offsets_survive_reopen() {
        let dir = tempfile::tempdir().unwrap();
        {
            let store = Arc::new(OffsetsStore::open(dir.path()).unwrap());
            store
                .append(vec![meta("g", 3), commit("g", "t", 0, 10, "a")])
                .await
                .unwrap();
            store
                .append(vec![
                    commit("g", "t", 1, 11, "b"),
                    commit("g", "t", 0, 12, "c"),
                ])
                .await
                .unwrap();
            store
                .append(vec![commit("simple", "t", 0, 5, "")])
                .await
                .unwrap();
            store
                .append(vec![StoreRecord::OffsetTombstone {
                    group: "g".into(),
                    topic: "t".into(),
                    partition: 1,
                }])
                .await
                .unwrap();
            store
                .append(vec![
                    commit("gone", "t", 0, 5, ""),
                    StoreRecord::GroupTombstone {
                        group: "gone".into(),
                    },
                ])
                .await
                .unwrap();
            assert_eq!(
                store.committed_offset("g", "t", 0).unwrap().offset,
                Offset(12)
            );
            store.close().await;
            assert!(matches!(
                store.append(vec![commit("g", "t", 0, 1, "")]).await,
                Err(StoreError::Closed)
            ));
        }
        let store = OffsetsStore::open(dir.path()).unwrap();
        let g = store.group("g").unwrap();
        assert_eq!(g.meta.as_ref().unwrap().generation_id, 3);
        assert_eq!(g.offset_count(), 1);
        let c = store.committed_offset("g", "t", 0).unwrap();
        assert_eq!(
            (c.offset, c.leader_epoch, c.metadata.as_str()),
            (Offset(12), 3, "c")
        );
        assert!(store.committed_offset("g", "t", 1).is_none());
        assert!(store.group("gone").is_none());
        assert_eq!(
            store
                .group_ids()
                .iter()
                .map(|(g, _)| g.as_str())
                .collect::<Vec<_>>(),
            vec!["g", "simple"]
        );
        store.close_blocking();
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn torn_and_corrupt_tails_are_truncated() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(OFFSETS_FILE_NAME);
        {
            let store = Arc::new(OffsetsStore::open(dir.path()).unwrap());
            store
                .append(vec![commit("g", "t", 0, 1, "")])
                .await
                .unwrap();
            store
                .append(vec![commit("g", "t", 1, 2, "")])
                .await
                .unwrap();
            store.close().await;
        }
        let good_len = fs::metadata(&path).unwrap().len();
        // A torn record: a header promising more bytes than exist.
        {
            let mut f = OpenOptions::new().append(true).open(&path).unwrap();
            let mut buf = Vec::new();
            encode_record(&commit("g", "t", 2, 3, ""), &mut buf).unwrap();
            f.write_all(&buf[..buf.len() - 3]).unwrap();
        }
        {
            let store = OffsetsStore::open(dir.path()).unwrap();
            assert_eq!(store.stats().offsets, 2);
            assert!(store.committed_offset("g", "t", 2).is_none());
            store.close_blocking();
        }
        assert_eq!(fs::metadata(&path).unwrap().len(), good_len);
        // A record with a flipped bit (bad CRC), followed by a good one:
        // replay stops at the bad one.
        {
            let mut f = OpenOptions::new().append(true).open(&path).unwrap();
            let mut buf = Vec::new();
            encode_record(&commit("g", "t", 3, 4, ""), &mut buf).unwrap();
            let last = buf.len() - 1;
            buf[last] ^= 0x40;
            encode_record(&commit("g", "t", 4, 5, ""), &mut buf).unwrap();
            f.write_all(&buf).unwrap();
        }
        {
            let store = OffsetsStore::open(dir.path()).unwrap();
            assert_eq!(store.stats().offsets, 2);
            assert!(store.committed_offset("g", "t", 4).is_none());
            // The store keeps working after truncation.
            store
                .append(vec![commit("g", "t", 5, 6, "")])
                .await
                .unwrap();
            store.close_blocking();
        }
        let store = OffsetsStore::open(dir.path()).unwrap();
        assert_eq!(
            store.committed_offset("g", "t", 5).unwrap().offset,
            Offset(6)
        );
        assert_eq!(store.stats().offsets, 3);
        store.close_blocking();
    }

    #[test]
    fn a_record_from_a_newer_klamm_refuses_the_open_and_keeps_every_record() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(OFFSETS_FILE_NAME);
        OffsetsStore::open(dir.path()).unwrap().close_blocking();
        let mut data = fs::read(&path).unwrap();
        encode_record(&commit("g", "t", 0, 1, ""), &mut data).unwrap();
        // A whole frame (checksum right) of a record type this klamm does
        // not know, then a good record after it.
        let body = b"\xc8 fields of the future";
        data.extend_from_slice(&(body.len() as u32).to_be_bytes());
        data.extend_from_slice(&crc32c::crc32c(body).to_be_bytes());
        data.extend_from_slice(body);
        encode_record(&commit("g", "t", 1, 2, ""), &mut data).unwrap();
        fs::write(&path, &data).unwrap();
        let err = OffsetsStore::open(dir.path()).err().expect("refused");
        assert!(matches!(err, StoreError::Unreadable { .. }), "{err}");
        assert_eq!(fs::read(&path).unwrap(), data, "nothing cut off");
    }

    #[test]
    fn foreign_file_is_an_error_and_torn_header_is_repaired() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(OFFSETS_FILE_NAME);
        fs::write(&path, b"not ours at all").unwrap();
        assert!(matches!(
            OffsetsStore::open(dir.path()),
            Err(StoreError::BadHeader { .. })
        ));
        fs::write(&path, &FILE_MAGIC[..3]).unwrap();
        let store = OffsetsStore::open(dir.path()).unwrap();
        assert_eq!(store.stats().file_bytes, FILE_MAGIC.len() as u64);
        store.close_blocking();
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn compaction_keeps_live_data() {
        let dir = tempfile::tempdir().unwrap();
        let store = Arc::new(OffsetsStore::open(dir.path()).unwrap());
        // Overwrite the same few keys many times: > 1 MiB of file for a
        // tiny live set triggers automatic compaction.
        let metadata = "m".repeat(200);
        let mut waits = Vec::new();
        for round in 0..1500i64 {
            let recs = (0..4)
                .map(|p| commit("g", "t", p, round, &metadata))
                .collect();
            waits.push(store.submit(recs).unwrap());
            if waits.len() >= 256 {
                for w in waits.drain(..) {
                    w.await.unwrap().unwrap();
                }
            }
        }
        for w in waits.drain(..) {
            w.await.unwrap().unwrap();
        }
        store
            .append(vec![meta("g", 9), commit("h", "u", 0, 77, "")])
            .await
            .unwrap();
        let stats = store.stats();
        assert!(
            stats.file_bytes < COMPACT_MIN_FILE_BYTES * 2,
            "compaction ran: {stats:?}"
        );
        store.compact().await.unwrap();
        let stats = store.stats();
        assert_eq!(stats.file_bytes, stats.live_bytes + FILE_MAGIC.len() as u64);
        assert_eq!(stats.offsets, 5);
        for p in 0..4 {
            assert_eq!(
                store.committed_offset("g", "t", p).unwrap().offset,
                Offset(1499)
            );
        }
        // Appends after compaction land in the new file.
        store
            .append(vec![commit("g", "t", 0, 2000, "")])
            .await
            .unwrap();
        store.close().await;
        let reopened = OffsetsStore::open(dir.path()).unwrap();
        assert_eq!(
            reopened.committed_offset("g", "t", 0).unwrap().offset,
            Offset(2000)
        );
        assert_eq!(
            reopened.committed_offset("g", "t", 3).unwrap().offset,
            Offset(1499)
        );
        assert_eq!(
            reopened.committed_offset("h", "u", 0).unwrap().offset,
            Offset(77)
        );
        assert_eq!(reopened.group("g").unwrap().meta.unwrap().generation_id, 9);
        assert!(!dir.path().join(COMPACT_TMP_FILE_NAME).exists());
        reopened.close_blocking();
    }
}
