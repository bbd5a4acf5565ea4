//! Decoder of Apache Kafka's KRaft metadata log (`__cluster_metadata-0`):
//! the newest usable snapshot (`<offset>-<epoch>.checkpoint`) and the log
//! segments after it, replayed into the topics Kafka had.
//!
//! Each record value is a metadata record: unsigned varint frame version
//! (1), unsigned varint api key, unsigned varint version, then the message
//! body in Kafka's flexible encoding (compact strings and arrays, tagged
//! fields at the end). Schemas, from Kafka's
//! `metadata/src/main/resources/common/metadata/`:
//!
//! | key | record | fields used |
//! | --- | --- | --- |
//! | 2 | TopicRecord v0 | Name, TopicId |
//! | 3 | PartitionRecord v0-2 | PartitionId, TopicId, LeaderEpoch |
//! | 4 | ConfigRecord v0 | ResourceType (2 = topic), ResourceName, Name, Value (null = delete) |
//! | 5 | PartitionChangeRecord v0-2 | PartitionId, TopicId, Leader (tag 1; -2 = unchanged) |
//! | 9 | RemoveTopicRecord v0 | TopicId |
//! | 15 | ProducerIdsRecord v0 | NextProducerId |
//! | 23/24/25 | Begin/End/AbortTransactionRecord | (records in between apply at End) |
//!
//! Every other record type is counted and ignored. A known record that does
//! not decode is an error: adopting half-understood metadata could drop
//! topics. Newer versions than these are read by their known prefix.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use bytes::Bytes;

use super::batches::{walk, Item, WalkReport};
use crate::protocol::{DecodeError, Reader, Uuid};
use crate::types::Offset;

/// The only frame version Kafka writes (and reads).
pub const FRAME_VERSION: u32 = 1;

const TOPIC_RECORD: u32 = 2;
const PARTITION_RECORD: u32 = 3;
const CONFIG_RECORD: u32 = 4;
const PARTITION_CHANGE_RECORD: u32 = 5;
const REMOVE_TOPIC_RECORD: u32 = 9;
const PRODUCER_IDS_RECORD: u32 = 15;
const BEGIN_TRANSACTION_RECORD: u32 = 23;
const END_TRANSACTION_RECORD: u32 = 24;
const ABORT_TRANSACTION_RECORD: u32 = 25;

/// ConfigRecord resource types (Kafka's `ConfigResource.Type`).
pub const CONFIG_RESOURCE_TOPIC: i8 = 2;
pub const CONFIG_RESOURCE_BROKER: i8 = 4;

/// PartitionChangeRecord's Leader value for "the leader did not change".
const NO_LEADER_CHANGE: i32 = -2;

/// Partitions accepted for one topic (far beyond what Kafka allows).
pub const MAX_PARTITION_ID: i32 = 1 << 20;
/// Records buffered in one metadata transaction before it is refused.
pub const MAX_TRANSACTION_RECORDS: usize = 1 << 20;

/// One decoded metadata record, reduced to what adoption needs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum KraftRecord {
    Topic { name: String, id: Uuid },
    Partition { topic_id: Uuid, partition: i32, leader_epoch: i32 },
    /// A partition change; Kafka bumps the leader epoch when the leader
    /// field is present (not -2).
    PartitionChange { topic_id: Uuid, partition: i32, leader_changed: bool },
    Config { resource_type: i8, resource_name: String, name: String, value: Option<String> },
    RemoveTopic { id: Uuid },
    ProducerIds { next_producer_id: i64 },
    BeginTransaction,
    EndTransaction,
    AbortTransaction,
    /// Any other record (brokers, features, ACLs, quotas, SCRAM, ...).
    Other { api_key: u32 },
}

/// Skips a compact array of `element_bytes`-sized elements (null allowed).
fn skip_compact_array(r: &mut Reader, element_bytes: usize) -> Result<(), DecodeError> {
    if let Some(n) = r.array_len(true)? {
        let len = n.checked_mul(element_bytes).ok_or(DecodeError::InvalidLength(n as i64))?;
        r.slice(len)?;
    }
    Ok(())
}

/// Skips a tagged-field section, returning the body of `wanted` if present.
fn tagged_fields(r: &mut Reader, wanted: Option<u32>) -> Result<Option<Reader>, DecodeError> {
    let mut found = None;
    for _ in 0..r.tagged_count()? {
        let (tag, body) = r.tagged_field()?;
        if Some(tag) == wanted {
            found = Some(body);
        }
    }
    Ok(found)
}

/// Known versions must be read to their last byte; newer ones only by
/// the prefix this decoder knows.
fn finish(r: &Reader, version: u32, known_max: u32) -> Result<(), DecodeError> {
    if version <= known_max && r.remaining() != 0 {
        return Err(DecodeError::InvalidLength(r.remaining() as i64));
    }
    Ok(())
}

/// Decodes one metadata record value.
pub fn decode_record(value: &[u8]) -> Result<KraftRecord, DecodeError> {
    let mut r = Reader::new(Bytes::copy_from_slice(value));
    let frame = r.uvarint()?;
    if frame != FRAME_VERSION {
        return Err(DecodeError::UnsupportedVersion { api_key: -1, version: frame.min(i16::MAX as u32) as i16 });
    }
    let api_key = r.uvarint()?;
    let version = r.uvarint()?;
    let rec = match api_key {
        TOPIC_RECORD => {
            let name = r.string(true)?;
            let id = r.uuid()?;
            tagged_fields(&mut r, None)?;
            finish(&r, version, 0)?;
            KraftRecord::Topic { name, id }
        }
        PARTITION_RECORD => {
            let partition = r.i32()?;
            let topic_id = r.uuid()?;
            for _ in 0..4 {
                // Replicas, Isr, RemovingReplicas, AddingReplicas.
                skip_compact_array(&mut r, 4)?;
            }
            let _leader = r.i32()?;
            let leader_epoch = r.i32()?;
            let _partition_epoch = r.i32()?;
            if version >= 1 {
                // Directories (KIP-858).
                skip_compact_array(&mut r, 16)?;
            }
            tagged_fields(&mut r, None)?;
            finish(&r, version, 2)?;
            KraftRecord::Partition { topic_id, partition, leader_epoch }
        }
        PARTITION_CHANGE_RECORD => {
            let partition = r.i32()?;
            let topic_id = r.uuid()?;
            let leader = match tagged_fields(&mut r, Some(1))? {
                Some(mut body) => {
                    let leader = body.i32()?;
                    if body.remaining() != 0 {
                        return Err(DecodeError::InvalidLength(body.remaining() as i64));
                    }
                    leader
                }
                None => NO_LEADER_CHANGE,
            };
            finish(&r, version, 2)?;
            KraftRecord::PartitionChange { topic_id, partition, leader_changed: leader != NO_LEADER_CHANGE }
        }
        CONFIG_RECORD => {
            let resource_type = r.i8()?;
            let resource_name = r.string(true)?;
            let name = r.string(true)?;
            let value = r.nullable_string(true)?;
            tagged_fields(&mut r, None)?;
            finish(&r, version, 0)?;
            KraftRecord::Config { resource_type, resource_name, name, value }
        }
        REMOVE_TOPIC_RECORD => {
            let id = r.uuid()?;
            tagged_fields(&mut r, None)?;
            finish(&r, version, 0)?;
            KraftRecord::RemoveTopic { id }
        }
        PRODUCER_IDS_RECORD => {
            let _broker_id = r.i32()?;
            let _broker_epoch = r.i64()?;
            let next_producer_id = r.i64()?;
            tagged_fields(&mut r, None)?;
            finish(&r, version, 0)?;
            KraftRecord::ProducerIds { next_producer_id }
        }
        BEGIN_TRANSACTION_RECORD => KraftRecord::BeginTransaction,
        END_TRANSACTION_RECORD => KraftRecord::EndTransaction,
        ABORT_TRANSACTION_RECORD => KraftRecord::AbortTransaction,
        api_key => KraftRecord::Other { api_key },
    };
    Ok(rec)
}

/// One topic as Kafka's metadata describes it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KraftTopic {
    pub name: String,
    pub id: Uuid,
    /// Partition id -> leader epoch.
    pub partitions: BTreeMap<i32, i32>,
}

impl KraftTopic {
    /// Partitions Kafka had (ids run from 0).
    pub fn partition_count(&self) -> i32 {
        self.partitions.keys().next_back().map_or(0, |last| last + 1)
    }

    /// Whether the partition ids are exactly `0..count`.
    pub fn partitions_contiguous(&self) -> bool {
        self.partitions.len() as i64 == i64::from(self.partition_count())
    }

    /// The newest leader epoch of any partition (0 if none is known).
    pub fn leader_epoch(&self) -> i32 {
        self.partitions.values().copied().max().unwrap_or(0).max(0)
    }
}

/// Why the metadata could not be read.
#[derive(Debug, thiserror::Error)]
pub enum KraftError {
    #[error("reading {path}: {error}")]
    Io { path: PathBuf, error: std::io::Error },
    #[error("record at offset {offset} of {path} does not decode: {error}")]
    BadRecord { path: PathBuf, offset: i64, error: DecodeError },
    #[error("{0}")]
    Inconsistent(String),
}

/// The metadata state replayed so far.
#[derive(Clone, Debug, Default)]
pub struct KraftImage {
    /// Live topics by id.
    pub topics: BTreeMap<Uuid, KraftTopic>,
    /// Topic config overrides by topic name.
    pub topic_configs: BTreeMap<String, BTreeMap<String, String>>,
    /// Dynamic configs of other resources (brokers, client metrics, groups), not adopted.
    pub other_configs: BTreeMap<(i8, String), BTreeMap<String, String>>,
    /// The first producer id Kafka had not handed out.
    pub next_producer_id: i64,
    /// Records applied, and other records seen by api key.
    pub records: u64,
    pub other_records: BTreeMap<u32, u64>,
    /// Records that referenced an unknown topic (ignored, as Kafka would
    /// have refused to write them).
    pub dangling_records: u64,
    /// Records of the metadata transaction in progress.
    transaction: Option<Vec<KraftRecord>>,
    /// Records of metadata transactions that were aborted (or never ended).
    pub discarded_records: u64,
}

impl KraftImage {
    /// Applies one record (buffered while a metadata transaction is open).
    pub fn apply(&mut self, rec: KraftRecord) -> Result<(), String> {
        match rec {
            KraftRecord::BeginTransaction => {
                if let Some(open) = self.transaction.replace(Vec::new()) {
                    self.discarded_records += open.len() as u64;
                }
                return Ok(());
            }
            KraftRecord::EndTransaction => {
                for r in self.transaction.take().unwrap_or_default() {
                    self.apply_now(r);
                }
                return Ok(());
            }
            KraftRecord::AbortTransaction => {
                self.discarded_records += self.transaction.take().map_or(0, |t| t.len() as u64);
                return Ok(());
            }
            _ => {}
        }
        match &mut self.transaction {
            Some(buffer) => {
                if buffer.len() >= MAX_TRANSACTION_RECORDS {
                    return Err(format!("a metadata transaction holds more than {MAX_TRANSACTION_RECORDS} records"));
                }
                buffer.push(rec);
            }
            None => self.apply_now(rec),
        }
        Ok(())
    }

    fn apply_now(&mut self, rec: KraftRecord) {
        self.records += 1;
        match rec {
            KraftRecord::Topic { name, id } => {
                // A name reused by a new id replaces the old topic (Kafka
                // removes the old one first; be robust to either order).
                self.topics.retain(|_, t| t.name != name);
                self.topics.insert(id, KraftTopic { name, id, partitions: BTreeMap::new() });
            }
            KraftRecord::Partition { topic_id, partition, leader_epoch } => {
                match self.topics.get_mut(&topic_id) {
                    Some(t) if (0..MAX_PARTITION_ID).contains(&partition) => {
                        t.partitions.insert(partition, leader_epoch);
                    }
                    _ => self.dangling_records += 1,
                }
            }
            KraftRecord::PartitionChange { topic_id, partition, leader_changed } => {
                match self.topics.get_mut(&topic_id).and_then(|t| t.partitions.get_mut(&partition)) {
                    Some(epoch) => {
                        if leader_changed {
                            *epoch = epoch.saturating_add(1);
                        }
                    }
                    None => self.dangling_records += 1,
                }
            }
            KraftRecord::Config { resource_type, resource_name, name, value } => {
                let configs = if resource_type == CONFIG_RESOURCE_TOPIC {
                    self.topic_configs.entry(resource_name).or_default()
                } else {
                    self.other_configs.entry((resource_type, resource_name)).or_default()
                };
                match value {
                    Some(v) => {
                        configs.insert(name, v);
                    }
                    None => {
                        configs.remove(&name);
                    }
                }
                self.topic_configs.retain(|_, c| !c.is_empty());
                self.other_configs.retain(|_, c| !c.is_empty());
            }
            KraftRecord::RemoveTopic { id } => match self.topics.remove(&id) {
                Some(t) => {
                    self.topic_configs.remove(&t.name);
                }
                None => self.dangling_records += 1,
            },
            KraftRecord::ProducerIds { next_producer_id } => {
                self.next_producer_id = self.next_producer_id.max(next_producer_id);
            }
            KraftRecord::Other { api_key } => *self.other_records.entry(api_key).or_default() += 1,
            KraftRecord::BeginTransaction | KraftRecord::EndTransaction | KraftRecord::AbortTransaction => {}
        }
    }

    /// Replays the records of one log file (segment or snapshot) at offsets
    /// `>= from`. `path` names the file in errors.
    pub fn apply_file(&mut self, path: &Path, data: &[u8], from: Offset) -> Result<WalkReport, KraftError> {
        let mut failed = None;
        let report = walk(data, |item| {
            let Item::Record { offset, value, .. } = item else { return };
            if failed.is_some() || offset < from {
                return;
            }
            let Some(value) = value else { return };
            let result = decode_record(value)
                .map_err(|error| KraftError::BadRecord { path: path.to_path_buf(), offset: offset.0, error })
                .and_then(|rec| self.apply(rec).map_err(KraftError::Inconsistent));
            if let Err(e) = result {
                failed = Some(e);
            }
        });
        match failed {
            Some(e) => Err(e),
            None => Ok(report),
        }
    }

    /// Ends the replay: a transaction still open at the log end never
    /// committed.
    pub fn finish(&mut self) {
        self.discarded_records += self.transaction.take().map_or(0, |t| t.len() as u64);
    }

    /// The configs of a topic.
    pub fn configs_of(&self, name: &str) -> BTreeMap<String, String> {
        self.topic_configs.get(name).cloned().unwrap_or_default()
    }
}

/// Kafka's snapshot file name `<20-digit offset>-<10-digit epoch>.checkpoint`
/// parsed to (offset, epoch).
pub fn parse_snapshot_name(name: &str) -> Option<(i64, i32)> {
    let stem = name.strip_suffix(".checkpoint")?;
    let (offset, epoch) = stem.split_once('-')?;
    if offset.len() != 20 || epoch.len() != 10 || !offset.bytes().chain(epoch.bytes()).all(|b| b.is_ascii_digit()) {
        return None;
    }
    Some((offset.parse().ok()?, epoch.parse().ok()?))
}

/// What reading the metadata directory found.
#[derive(Debug)]
pub struct KraftRead {
    pub image: KraftImage,
    /// The snapshot used (offset, epoch), if any.
    pub snapshot: Option<(i64, i32)>,
    pub segments: usize,
    /// Compressed batches skipped (klamm cannot read them).
    pub compressed_batches: u64,
    /// Non-zero bytes after the last valid batch of the newest segment.
    pub torn_tail_bytes: usize,
}

fn read_file(path: &Path) -> Result<crate::storage::mmap::MappedFile, KraftError> {
    crate::storage::mmap::MappedFile::open_read_only(path).map_err(|e| KraftError::Io {
        path: path.to_path_buf(),
        error: std::io::Error::other(e.to_string()),
    })
}

/// Reads `__cluster_metadata-0`: the newest snapshot whose every batch is
/// valid, then every log record at or after its offset. Without a snapshot
/// the log must start at offset 0. Never writes.
pub fn read_metadata_dir(dir: &Path) -> Result<KraftRead, KraftError> {
    let io = |error| KraftError::Io { path: dir.to_path_buf(), error };
    let mut snapshots = Vec::new();
    let mut segments = Vec::new();
    for entry in std::fs::read_dir(dir).map_err(io)? {
        let entry = entry.map_err(io)?;
        let Ok(name) = entry.file_name().into_string() else { continue };
        if let Some(id) = parse_snapshot_name(&name) {
            snapshots.push((id, entry.path()));
        } else if let Some(stem) = name.strip_suffix(".log") {
            if stem.len() == 20 && stem.bytes().all(|b| b.is_ascii_digit()) {
                if let Ok(base) = stem.parse::<i64>() {
                    segments.push((base, entry.path()));
                }
            }
        }
    }
    snapshots.sort();
    segments.sort();
    let mut read = KraftRead { image: KraftImage::default(), snapshot: None, segments: segments.len(), compressed_batches: 0, torn_tail_bytes: 0 };
    let mut from = Offset(0);
    for ((offset, epoch), path) in snapshots.iter().rev() {
        let map = read_file(path)?;
        let mut image = KraftImage::default();
        let report = image.apply_file(path, map.as_slice(), Offset(0))?;
        if report.valid_bytes != map.len() || report.compressed_batches > 0 {
            tracing::warn!(path = %path.display(), "skipping an incomplete or compressed KRaft snapshot");
            continue;
        }
        image.finish();
        read.image = image;
        read.snapshot = Some((*offset, *epoch));
        from = Offset(*offset);
        break;
    }
    let first_base = segments.first().map(|(b, _)| *b);
    if let Some(base) = first_base {
        if base > from.0 {
            return Err(KraftError::Inconsistent(format!(
                "the metadata log in {} starts at offset {base}, after its newest usable snapshot (offset {}): \
                 records in between are missing",
                dir.display(),
                from.0
            )));
        }
    }
    let last = segments.len().saturating_sub(1);
    for (i, (_, path)) in segments.iter().enumerate() {
        let map = read_file(path)?;
        let report = read.image.apply_file(path, map.as_slice(), from)?;
        read.compressed_batches += report.compressed_batches;
        if report.garbage_bytes > 0 {
            if i != last {
                return Err(KraftError::Inconsistent(format!(
                    "{} is corrupt at byte {} and is not the newest segment",
                    path.display(),
                    report.valid_bytes
                )));
            }
            read.torn_tail_bytes = report.garbage_bytes;
        }
    }
    read.image.finish();
    if read.compressed_batches > 0 {
        return Err(KraftError::Inconsistent(format!(
            "the metadata log in {} has {} compressed batches, which klamm cannot read",
            dir.display(),
            read.compressed_batches
        )));
    }
    Ok(read)
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::kafka_import::batches::tests::{batch, compressed, control_batch, KeyValue};
    use crate::protocol::Writer;

    fn frame(api_key: u32, version: u32, body: impl FnOnce(&mut Writer)) -> Vec<u8> {
        let mut w = Writer::new();
        w.uvarint(FRAME_VERSION);
        w.uvarint(api_key);
        w.uvarint(version);
        body(&mut w);
        w.finish_contiguous().to_vec()
    }

    fn no_tags(w: &mut Writer) {
        w.uvarint(0);
    }

    pub(crate) fn topic_record(name: &str, id: Uuid) -> Vec<u8> {
        frame(TOPIC_RECORD, 0, |w| {
            w.string(name, true);
            w.uuid(&id);
            no_tags(w);
        })
    }

    /// PartitionRecord v2 with a LeaderRecoveryState and an ELR tag, as
    /// Kafka 4 writes with ELR enabled.
    pub(crate) fn partition_record(id: Uuid, partition: i32, leader_epoch: i32, version: u32) -> Vec<u8> {
        frame(PARTITION_RECORD, version, |w| {
            w.i32(partition);
            w.uuid(&id);
            for _ in 0..2 {
                w.array_len(Some(1), true);
                w.i32(1);
            }
            w.array_len(Some(0), true);
            w.array_len(Some(0), true);
            w.i32(1);
            w.i32(leader_epoch);
            w.i32(leader_epoch + 3);
            if version >= 1 {
                w.array_len(Some(1), true);
                w.uuid(&Uuid([7; 16]));
            }
            if version >= 2 {
                w.uvarint(2);
                w.uvarint(0); // LeaderRecoveryState
                w.uvarint(1);
                w.i8(0);
                w.uvarint(1); // EligibleLeaderReplicas: [1]
                w.uvarint(5);
                w.array_len(Some(1), true);
                w.i32(1);
            } else {
                no_tags(w);
            }
        })
    }

    pub(crate) fn partition_change(id: Uuid, partition: i32, leader: Option<i32>) -> Vec<u8> {
        frame(PARTITION_CHANGE_RECORD, 0, |w| {
            w.i32(partition);
            w.uuid(&id);
            // Isr (tag 0) then, maybe, Leader (tag 1).
            w.uvarint(if leader.is_some() { 2 } else { 1 });
            w.uvarint(0);
            w.uvarint(5);
            w.array_len(Some(1), true);
            w.i32(1);
            if let Some(l) = leader {
                w.uvarint(1);
                w.uvarint(4);
                w.i32(l);
            }
        })
    }

    pub(crate) fn config_record(resource_type: i8, resource: &str, name: &str, value: Option<&str>) -> Vec<u8> {
        frame(CONFIG_RECORD, 0, |w| {
            w.i8(resource_type);
            w.string(resource, true);
            w.string(name, true);
            w.nullable_string(value, true);
            no_tags(w);
        })
    }

    pub(crate) fn remove_topic(id: Uuid) -> Vec<u8> {
        frame(REMOVE_TOPIC_RECORD, 0, |w| {
            w.uuid(&id);
            no_tags(w);
        })
    }

    fn producer_ids(next: i64) -> Vec<u8> {
        frame(PRODUCER_IDS_RECORD, 0, |w| {
            w.i32(1);
            w.i64(5);
            w.i64(next);
            no_tags(w);
        })
    }

    fn other(api_key: u32) -> Vec<u8> {
        frame(api_key, 0, |w| w.raw(&[1, 2, 3]))
    }

    fn values(base: i64, values: &[Vec<u8>]) -> Vec<u8> {
        let records: Vec<KeyValue<'_>> = values.iter().map(|v| (None, Some(&v[..]))).collect();
        batch(base, &records)
    }

    #[test]
    fn records_decode() {
        let id = Uuid([3; 16]);
        assert_eq!(decode_record(&topic_record("orders", id)).unwrap(), KraftRecord::Topic { name: "orders".into(), id });
        for v in 0..=2 {
            assert_eq!(
                decode_record(&partition_record(id, 4, 9, v)).unwrap(),
                KraftRecord::Partition { topic_id: id, partition: 4, leader_epoch: 9 },
                "v{v}"
            );
        }
        assert_eq!(
            decode_record(&partition_change(id, 1, Some(-1))).unwrap(),
            KraftRecord::PartitionChange { topic_id: id, partition: 1, leader_changed: true }
        );
        assert_eq!(
            decode_record(&partition_change(id, 1, None)).unwrap(),
            KraftRecord::PartitionChange { topic_id: id, partition: 1, leader_changed: false }
        );
        assert_eq!(
            decode_record(&config_record(2, "orders", "retention.ms", None)).unwrap(),
            KraftRecord::Config { resource_type: 2, resource_name: "orders".into(), name: "retention.ms".into(), value: None }
        );
        assert_eq!(decode_record(&remove_topic(id)).unwrap(), KraftRecord::RemoveTopic { id });
        assert_eq!(decode_record(&producer_ids(2000)).unwrap(), KraftRecord::ProducerIds { next_producer_id: 2000 });
        assert_eq!(decode_record(&other(12)).unwrap(), KraftRecord::Other { api_key: 12 });
        // A newer TopicRecord with an extra field decodes by its prefix; a
        // known version with trailing bytes is refused.
        let mut newer = frame(TOPIC_RECORD, 1, |w| {
            w.string("t", true);
            w.uuid(&id);
            no_tags(w);
        });
        newer.push(9);
        assert!(decode_record(&newer).is_ok());
        let mut trailing = topic_record("t", id);
        trailing.push(0);
        assert!(decode_record(&trailing).is_err());
        // Frame version 0 (KRaft preview) is refused.
        let mut v0 = topic_record("t", id);
        v0[0] = 0;
        assert!(decode_record(&v0).is_err());
    }

    #[test]
    fn truncated_and_garbage_records_never_panic() {
        let id = Uuid([1; 16]);
        for rec in [topic_record("orders", id), partition_record(id, 1, 2, 2), partition_change(id, 0, Some(1)), config_record(2, "a", "b", Some("c")), remove_topic(id), producer_ids(7)] {
            for cut in 0..rec.len() {
                assert!(decode_record(&rec[..cut]).is_err(), "cut at {cut} of {rec:?}");
            }
        }
        let mut seed = 5u64;
        for n in 0..500 {
            let mut data: Vec<u8> = (0..n % 64).map(|_| crate::protocol::sample::next(&mut seed) as u8).collect();
            if let Some(b) = data.first_mut() {
                *b = 1;
            }
            let _ = decode_record(&data);
        }
    }

    #[test]
    fn replay_builds_topics_partitions_configs_and_epochs() {
        let (a, b, c) = (Uuid([1; 16]), Uuid([2; 16]), Uuid([3; 16]));
        let mut log = values(0, &[
            topic_record("orders", a),
            config_record(2, "orders", "retention.ms", Some("1000")),
            config_record(2, "orders", "cleanup.policy", Some("delete")),
            partition_record(a, 0, 0, 2),
            partition_record(a, 1, 0, 2),
            partition_record(a, 2, 0, 2),
            topic_record("gone", b),
            config_record(2, "gone", "retention.ms", Some("5")),
            partition_record(b, 0, 0, 1),
        ]);
        log.extend(control_batch(9, -1, 2)); // a LeaderChange control batch
        log.extend(values(10, &[
            partition_change(a, 0, Some(-1)),
            partition_change(a, 0, Some(1)),
            partition_change(a, 1, None),
            config_record(2, "orders", "cleanup.policy", None),
            config_record(4, "1", "log.cleaner.threads", Some("2")),
            remove_topic(b),
            producer_ids(1000),
            producer_ids(2000),
            other(12),
        ]));
        // A metadata transaction that was aborted, and one that committed.
        log.extend(values(19, &[
            frame(BEGIN_TRANSACTION_RECORD, 0, |w| { w.nullable_string(Some("x"), true); no_tags(w) }),
            topic_record("aborted", c),
            frame(ABORT_TRANSACTION_RECORD, 0, no_tags),
            frame(BEGIN_TRANSACTION_RECORD, 0, no_tags),
            topic_record("big", c),
            partition_record(c, 0, 4, 0),
            frame(END_TRANSACTION_RECORD, 0, no_tags),
        ]));
        let mut image = KraftImage::default();
        let report = image.apply_file(Path::new("x"), &log, Offset(0)).unwrap();
        image.finish();
        assert_eq!(report.valid_bytes, log.len());
        let names: Vec<_> = image.topics.values().map(|t| (t.name.as_str(), t.partition_count(), t.leader_epoch())).collect();
        assert_eq!(names, [("orders", 3, 2), ("big", 1, 4)]);
        assert!(image.topics[&a].partitions_contiguous());
        assert_eq!(image.configs_of("orders"), [("retention.ms".to_string(), "1000".to_string())].into());
        assert!(image.configs_of("gone").is_empty(), "configs go with their topic");
        assert_eq!(image.other_configs.len(), 1);
        assert_eq!(image.next_producer_id, 2000);
        assert_eq!(image.other_records[&12], 1);
        assert_eq!(image.discarded_records, 1);

        // Only records at or after `from` apply (a snapshot covers the rest).
        let mut late = KraftImage::default();
        late.apply_file(Path::new("x"), &log, Offset(10)).unwrap();
        let names: Vec<_> = late.topics.values().map(|t| t.name.as_str()).collect();
        assert_eq!(names, ["big"]);
        assert_eq!(late.dangling_records, 4);
    }

    #[test]
    fn a_bad_known_record_is_an_error_and_compressed_batches_are_counted() {
        let id = Uuid([1; 16]);
        let mut bad = topic_record("t", id);
        bad.truncate(bad.len() - 3);
        let log = values(0, &[topic_record("ok", id), bad]);
        let err = KraftImage::default().apply_file(Path::new("seg"), &log, Offset(0)).unwrap_err();
        assert!(matches!(err, KraftError::BadRecord { offset: 1, .. }), "{err}");
        let zipped = compressed(values(0, &[topic_record("t", id)]), 1);
        let report = KraftImage::default().apply_file(Path::new("seg"), &zipped, Offset(0)).unwrap();
        assert_eq!(report.compressed_batches, 1);
    }

    #[test]
    fn reads_the_newest_snapshot_then_the_log_after_it() {
        let dir = tempfile::tempdir().unwrap();
        let (a, b) = (Uuid([1; 16]), Uuid([2; 16]));
        // Snapshot at offset 5: header, topic a with one partition, footer.
        let mut snap = control_batch(0, -1, 3);
        snap.extend(values(1, &[topic_record("a", a), partition_record(a, 0, 1, 2)]));
        snap.extend(control_batch(3, -1, 4));
        std::fs::write(dir.path().join("00000000000000000005-0000000001.checkpoint"), &snap).unwrap();
        // An older snapshot that knows nothing, and a partial one.
        std::fs::write(dir.path().join("00000000000000000000-0000000000.checkpoint"), control_batch(0, -1, 3)).unwrap();
        std::fs::write(dir.path().join("00000000000000000009-0000000001.checkpoint.part"), b"junk").unwrap();
        // The log from 3: records below 5 are in the snapshot already.
        let mut seg = values(3, &[topic_record("old", b), remove_topic(b)]);
        seg.extend(values(5, &[topic_record("b", b), partition_record(b, 0, 0, 2), partition_record(b, 1, 0, 2)]));
        seg.extend([0u8; 100]);
        std::fs::write(dir.path().join("00000000000000000003.log"), &seg).unwrap();
        std::fs::write(dir.path().join("00000000000000000003.index"), [0u8; 80]).unwrap();
        let read = read_metadata_dir(dir.path()).unwrap();
        assert_eq!(read.snapshot, Some((5, 1)));
        let topics: Vec<_> = read.image.topics.values().map(|t| (t.name.clone(), t.partition_count())).collect();
        assert_eq!(topics, [("a".to_string(), 1), ("b".to_string(), 2)]);
        assert_eq!(read.torn_tail_bytes, 0);

        // A corrupt newest snapshot falls back to the older one, which
        // the log (starting at 3) does not continue: refused.
        let mut broken = snap.clone();
        broken.truncate(snap.len() - 5);
        std::fs::write(dir.path().join("00000000000000000005-0000000001.checkpoint"), &broken).unwrap();
        assert!(matches!(read_metadata_dir(dir.path()), Err(KraftError::Inconsistent(_))));
    }

    #[test]
    fn snapshot_names() {
        assert_eq!(parse_snapshot_name("00000000000000000042-0000000003.checkpoint"), Some((42, 3)));
        for bad in ["00000000000000000042-0000000003.checkpoint.part", "42-3.checkpoint", "bootstrap.checkpoint", "0000000000000000004x-0000000003.checkpoint"] {
            assert_eq!(parse_snapshot_name(bad), None, "{bad}");
        }
    }
}
