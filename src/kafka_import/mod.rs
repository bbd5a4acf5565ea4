//! Adopting an Apache Kafka data directory: an operator swaps the
//! `apache/kafka` image for klamm on the same volume, and on its first
//! start klamm takes over Kafka's topics and committed offsets.
//!
//! It happens once, when the log dir has Kafka's `meta.properties` and
//! `__cluster_metadata-0` but no klamm metadata yet:
//!
//! 1. [`kraft`] replays Kafka's KRaft metadata (newest snapshot, then the
//!    log) into topics: name, id, partition count, leader epoch, topic
//!    configs;
//! 2. [`group_offsets`] replays the `__consumer_offsets-*` partitions into
//!    committed offsets and classic group metadata;
//! 3. the offsets go into klamm's offsets store, then the topics, with the
//!    same ids (the partition directories' `partition.metadata` hold them),
//!    are written as klamm's first metadata in one atomic step, with an
//!    `adopted-from-kafka` note beside it. From then on klamm's metadata is
//!    the source of truth; a crash before that step just adopts again.
//!
//! The topic partition directories are then served as they are. Kafka's
//! internal directories (`__cluster_metadata-0`, `__consumer_offsets-*`,
//! `__transaction_state-*`, `__share_group_state-*`) and the files klamm
//! does not use (Kafka's producer snapshots, `leader-epoch-checkpoint`,
//! which klamm only reads, `.txnindex`, Kafka's root checkpoint files) are
//! read at most, never changed, so the directory can go back to Kafka (an
//! unfinished `.swap` is completed at load, as Kafka itself would). Everything read from disk is bounds-checked: a
//! corrupt file is an error or a warning, never a panic.

pub mod batches;
pub mod group_offsets;
pub mod kraft;

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};

use tracing::{info, warn};

use crate::config::topic::validate_topic_config;
use crate::controller::TopicInfo;
use crate::group::offsets_store::{CommittedOffset, OffsetsStore, StoreRecord, StoredGroupMeta};
use crate::protocol::Uuid;
use crate::storage::{parse_partition_dir_name, validate_topic_name};
use crate::types::{is_kafka_internal_topic, TimestampMs};

use group_offsets::GroupState;

/// Kafka's metadata log partition directory.
pub const METADATA_DIR: &str = "__cluster_metadata-0";
/// Written beside klamm's metadata once a directory was adopted.
pub const ADOPTED_MARKER: &str = "adopted-from-kafka";
/// Committed offsets imported at most (klamm's store bound).
const MAX_IMPORTED_OFFSETS: usize = crate::group::coordinator::MAX_COMMITTED_OFFSETS;
/// Longest config value klamm's metadata log can hold (i16 length).
const MAX_CONFIG_VALUE_BYTES: usize = i16::MAX as usize;
/// A topic record must stay well below the metadata log's record bound.
const MAX_TOPIC_RECORD_BYTES: usize = crate::controller::metadata_log::MAX_RECORD_BYTES - 4096;
/// Records per write to the offsets store.
const OFFSETS_PER_WRITE: usize = 1024;

/// What was adopted.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Adoption {
    pub cluster_id: String,
    pub topics: usize,
    pub partitions: i64,
    pub committed_offsets: usize,
    pub groups: usize,
}

fn invalid(msg: String) -> std::io::Error {
    std::io::Error::new(std::io::ErrorKind::InvalidData, msg)
}

/// `key=value` lines of a Java properties file (comments skipped).
fn read_properties(path: &Path) -> std::io::Result<HashMap<String, String>> {
    let meta = std::fs::metadata(path)?;
    if meta.len() > 1 << 20 {
        return Err(invalid(format!("{} is larger than 1 MiB", path.display())));
    }
    let text = std::fs::read_to_string(path)?;
    Ok(text
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#') && !l.starts_with('!'))
        .filter_map(|l| l.split_once('='))
        .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
        .collect())
}

/// Whether `log_dir` is an Apache Kafka data directory klamm has not
/// adopted yet.
pub fn is_unadopted_kafka_dir(log_dir: &Path) -> std::io::Result<bool> {
    if !log_dir.join("meta.properties").is_file() || !log_dir.join(METADATA_DIR).is_dir() {
        return Ok(false);
    }
    Ok(!crate::controller::has_metadata(log_dir)?)
}

/// Adopts the Apache Kafka data directory `log_dir` if it is one and klamm
/// has no metadata there yet (see the module docs); otherwise does nothing.
/// Blocking: call it from a blocking thread, before the controller, the
/// logs and the group coordinator are opened. An error means nothing was
/// adopted (klamm then refuses to start rather than run without the
/// topics).
pub fn adopt_if_kafka_dir(log_dir: &Path, node_id: i32, configured_cluster_id: Option<&str>) -> std::io::Result<Option<Adoption>> {
    if !is_unadopted_kafka_dir(log_dir)? {
        return Ok(None);
    }
    let props = read_properties(&log_dir.join("meta.properties"))?;
    let cluster_id = props
        .get("cluster.id")
        .cloned()
        .ok_or_else(|| invalid(format!("{} has no cluster.id", log_dir.join("meta.properties").display())))?;
    if let Some(c) = configured_cluster_id {
        if c != cluster_id {
            return Err(invalid(format!("CLUSTER_ID {c} does not match the cluster.id {cluster_id} of the Kafka data in {}", log_dir.display())));
        }
    }
    if let Some(stored) = props.get("node.id") {
        if stored != &node_id.to_string() {
            return Err(invalid(format!(
                "node.id {node_id} does not match the node.id {stored} of the Kafka data in {}: start klamm with KAFKA_NODE_ID={stored}",
                log_dir.display()
            )));
        }
    }
    info!(dir = %log_dir.display(), cluster = %cluster_id, "found an Apache Kafka data directory without klamm metadata: adopting it");

    let metadata = kraft::read_metadata_dir(&log_dir.join(METADATA_DIR))
        .map_err(|e| invalid(format!("cannot adopt the Kafka data in {}: {e}", log_dir.display())))?;
    report_metadata(&metadata);
    let topics = adopted_topics(log_dir, &metadata.image);
    let partitions: i64 = topics.iter().map(|t| i64::from(t.partitions)).sum();

    let groups = read_group_offsets(log_dir)?;
    let (records, offsets, group_count) = offset_records(&groups, &topics);
    let groups_dir = log_dir.join(".klamm").join("groups"); // where broker::start opens it
    write_offsets(&groups_dir, records)?;

    let marker = format!(
        "# klamm adopted this Apache Kafka data directory; klamm's metadata is the source of truth since.\n\
         cluster.id={cluster_id}\nnode.id={node_id}\nadopted.at.ms={}\ntopics={}\npartitions={partitions}\ncommitted.offsets={offsets}\n",
        TimestampMs::now().0,
        topics.len()
    );
    std::fs::create_dir_all(log_dir.join(".klamm"))?;
    crate::util::write_atomic(&log_dir.join(".klamm").join(ADOPTED_MARKER), marker.as_bytes())?;
    crate::controller::write_initial_metadata(log_dir, &topics, metadata.image.next_producer_id)?;

    let names: Vec<&str> = topics.iter().map(|t| t.name.as_str()).collect();
    info!(
        cluster = %cluster_id,
        topics = topics.len(),
        partitions,
        committed_offsets = offsets,
        groups = group_count,
        names = %names.join(","),
        "adopted Apache Kafka data: topics keep their ids, partitions and configs; consumers resume from their committed offsets"
    );
    report_kept_files(log_dir, &topics);
    Ok(Some(Adoption { cluster_id, topics: topics.len(), partitions, committed_offsets: offsets, groups: group_count }))
}

fn report_metadata(read: &kraft::KraftRead) {
    let image = &read.image;
    info!(
        snapshot = ?read.snapshot,
        segments = read.segments,
        records = image.records,
        "read Kafka's KRaft metadata log"
    );
    if read.torn_tail_bytes > 0 {
        warn!(bytes = read.torn_tail_bytes, "ignoring a torn tail of Kafka's metadata log (an unclean stop)");
    }
    if image.discarded_records > 0 {
        warn!(records = image.discarded_records, "ignoring metadata records of aborted or unfinished metadata transactions");
    }
    for ((resource_type, name), configs) in &image.other_configs {
        let keys: Vec<&str> = configs.keys().map(String::as_str).collect();
        let what = if *resource_type == kraft::CONFIG_RESOURCE_BROKER { "broker" } else { "resource" };
        let name = if name.is_empty() { "(cluster-wide default)" } else { name.as_str() };
        warn!(
            resource_type,
            resource = %name,
            configs = %keys.join(","),
            "not adopting dynamic {what} configs (klamm takes broker settings from its configuration only)"
        );
    }
}

/// Kafka's live user topics as klamm topics: internal ones left out, names
/// and configs checked (configs klamm does not accept are dropped, loudly).
fn adopted_topics(log_dir: &Path, image: &kraft::KraftImage) -> Vec<TopicInfo> {
    let mut out = Vec::new();
    for t in image.topics.values() {
        if is_kafka_internal_topic(&t.name) {
            continue;
        }
        if validate_topic_name(&t.name).is_err() || t.id.is_nil() {
            warn!(topic = %t.name, "not adopting a topic whose name or id klamm cannot use");
            continue;
        }
        if t.partition_count() == 0 {
            warn!(topic = %t.name, "not adopting a topic without partitions");
            continue;
        }
        if t.partition_count() > crate::controller::MAX_PARTITIONS_PER_TOPIC {
            warn!(
                topic = %t.name,
                partitions = t.partition_count(),
                limit = crate::controller::MAX_PARTITIONS_PER_TOPIC,
                "not adopting a topic with more partitions than klamm allows per topic"
            );
            continue;
        }
        if !t.partitions_contiguous() {
            warn!(topic = %t.name, partitions = t.partition_count(), "Kafka's metadata lacks some partition ids of this topic; adopting 0..count");
        }
        let mut configs = BTreeMap::new();
        let mut record_bytes = 64 + t.name.len();
        for (k, v) in image.configs_of(&t.name) {
            if let Err(e) = validate_topic_config(&k, &v) {
                warn!(topic = %t.name, config = %k, value = %v, error = %e, "dropping a topic config klamm does not accept");
                continue;
            }
            record_bytes += 4 + k.len() + v.len();
            if v.len() > MAX_CONFIG_VALUE_BYTES || record_bytes > MAX_TOPIC_RECORD_BYTES {
                warn!(topic = %t.name, config = %k, "dropping a topic config too large for klamm's metadata");
                continue;
            }
            configs.insert(k, v);
        }
        if configs.get("cleanup.policy").is_some_and(|p| p.contains("compact")) {
            warn!(topic = %t.name, "topic uses log compaction, which klamm does not do: its log is kept as is and only grows");
        }
        // One line per kind of surprise, naming the first few partitions:
        // a topic may have up to MAX_PARTITIONS_PER_TOPIC of them.
        const NAMED: usize = 5;
        let (mut other_id, mut no_metadata, mut missing) = (Vec::new(), Vec::new(), 0usize);
        for p in 0..t.partition_count() {
            let dir = log_dir.join(format!("{}-{p}", t.name));
            match stored_topic_id(&dir) {
                Some(id) if id == t.id => {}
                Some(_) => other_id.push(p),
                None if dir.is_dir() => no_metadata.push(p),
                None => missing += 1,
            }
        }
        let first = |v: &[i32]| v.iter().take(NAMED).map(|p| p.to_string()).collect::<Vec<_>>().join(",");
        if !other_id.is_empty() {
            warn!(topic = %t.name, partitions = other_id.len(), first = %first(&other_id), expected = %t.id, "partition directories belong to another topic id; klamm will not serve them");
        }
        if !no_metadata.is_empty() {
            warn!(topic = %t.name, partitions = no_metadata.len(), first = %first(&no_metadata), "partition directories have no partition.metadata; klamm takes them as this topic's");
        }
        if missing > 0 {
            warn!(topic = %t.name, partitions = missing, "Kafka left no directory for these partitions; they start empty");
        }
        out.push(TopicInfo {
            name: t.name.clone(),
            id: t.id,
            partitions: t.partition_count(),
            leader_epoch: t.leader_epoch(),
            configs,
        });
    }
    out
}

/// The topic id in a partition directory's `partition.metadata`.
fn stored_topic_id(dir: &Path) -> Option<Uuid> {
    let path = dir.join("partition.metadata");
    if std::fs::metadata(&path).ok()?.len() > 4096 {
        return None;
    }
    let text = std::fs::read_to_string(path).ok()?;
    text.lines().find_map(|l| l.strip_prefix("topic_id:")).and_then(|v| Uuid::from_base64(v.trim()))
}

/// The `__consumer_offsets-N` directories of `log_dir`, sorted.
fn offsets_dirs(log_dir: &Path) -> std::io::Result<Vec<PathBuf>> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(log_dir)? {
        let entry = entry?;
        let Ok(name) = entry.file_name().into_string() else { continue };
        if parse_partition_dir_name(&name).is_some_and(|tp| tp.topic == "__consumer_offsets") && entry.path().is_dir() {
            out.push(entry.path());
        }
    }
    out.sort();
    Ok(out)
}

/// The `<20 digits>.log` segments of a directory, by base offset.
fn segments(dir: &Path) -> std::io::Result<Vec<PathBuf>> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir)? {
        let entry = entry?;
        let Ok(name) = entry.file_name().into_string() else { continue };
        if let Some(stem) = name.strip_suffix(".log") {
            if stem.len() == 20 && stem.bytes().all(|b| b.is_ascii_digit()) {
                out.push(entry.path());
            }
        }
    }
    out.sort();
    Ok(out)
}

/// Replays every `__consumer_offsets` partition (read only).
fn read_group_offsets(log_dir: &Path) -> std::io::Result<GroupState> {
    let mut state = GroupState::default();
    let mut compressed = 0u64;
    let mut codecs: Vec<&str> = Vec::new();
    let dirs = offsets_dirs(log_dir)?;
    for dir in &dirs {
        let segs = segments(dir)?;
        for (i, seg) in segs.iter().enumerate() {
            let map = crate::storage::mmap::MappedFile::open_read_only(seg).map_err(|e| std::io::Error::other(e.to_string()))?;
            let report = state.apply_file(map.as_slice());
            compressed += report.compressed_batches;
            for c in report.compressed_codecs {
                if !codecs.contains(&c) {
                    codecs.push(c);
                }
            }
            if report.garbage_bytes > 0 {
                let last = i + 1 == segs.len();
                warn!(
                    segment = %seg.display(),
                    valid_bytes = report.valid_bytes,
                    "{}",
                    if last { "ignoring a torn tail of a __consumer_offsets segment (an unclean stop)" } else { "a __consumer_offsets segment is corrupt; reading the next one" }
                );
            }
        }
        state.finish_partition();
    }
    info!(partitions = dirs.len(), offsets = state.offsets.len(), groups = state.groups.len(), "read Kafka's __consumer_offsets");
    if compressed > 0 {
        warn!(
            batches = compressed,
            codecs = %codecs.join(","),
            "skipped compressed __consumer_offsets batches (klamm cannot decompress; set offsets.topic.compression.codec=0 in Kafka to avoid them): offsets committed only in them are not adopted"
        );
    }
    if state.malformed_records > 0 {
        warn!(records = state.malformed_records, "skipped __consumer_offsets records that do not decode");
    }
    if state.aborted_offsets > 0 {
        info!(offsets = state.aborted_offsets, "not adopting offsets of aborted or unfinished transactions");
    }
    if !state.other_records.is_empty() {
        info!(records = ?state.other_records, "not adopting records of consumer-protocol (KIP-848) and share groups; their committed offsets are adopted");
    }
    Ok(state)
}

/// The store records for the offsets of adopted topic partitions, and the
/// metadata of the groups; returns them with the offset and group counts.
fn offset_records(state: &GroupState, topics: &[TopicInfo]) -> (Vec<StoreRecord>, usize, usize) {
    let partitions: HashMap<&str, i32> = topics.iter().map(|t| (t.name.as_str(), t.partitions)).collect();
    let now = TimestampMs::now();
    let mut records = Vec::new();
    for (group, g) in &state.groups {
        records.push(StoreRecord::GroupMeta {
            group: group.clone(),
            meta: StoredGroupMeta {
                protocol_type: Some(g.protocol_type.clone()).filter(|p| !p.is_empty()),
                generation_id: g.generation,
                // An Empty group's offsets expire from when it became
                // Empty, as in Kafka; one with members is Empty from now.
                empty_since: (g.members == 0)
                    .then_some(if g.current_state_timestamp.0 >= 0 { g.current_state_timestamp } else { now }),
            },
        });
    }
    let (mut offsets, mut skipped) = (0usize, 0usize);
    let mut groups_with_offsets = std::collections::BTreeSet::new();
    for ((group, topic, partition), v) in &state.offsets {
        let known = partitions.get(topic.as_str()).is_some_and(|n| (0..*n).contains(partition));
        if !known || offsets >= MAX_IMPORTED_OFFSETS {
            skipped += 1;
            continue;
        }
        offsets += 1;
        groups_with_offsets.insert(group.as_str());
        records.push(StoreRecord::OffsetCommit {
            group: group.clone(),
            topic: topic.clone(),
            partition: *partition,
            value: CommittedOffset {
                offset: v.offset,
                leader_epoch: v.leader_epoch,
                metadata: v.metadata.clone(),
                commit_timestamp: v.commit_timestamp,
                expire_timestamp: v.expire_timestamp,
            },
        });
    }
    if skipped > 0 {
        info!(offsets = skipped, "not adopting committed offsets of topics or partitions that no longer exist");
    }
    let groups = state.groups.len() + groups_with_offsets.iter().filter(|g| !state.groups.contains_key(**g)).count();
    (records, offsets, groups)
}

/// Writes the records into klamm's offsets store (durably) and closes it.
fn write_offsets(dir: &Path, records: Vec<StoreRecord>) -> std::io::Result<()> {
    if records.is_empty() {
        return Ok(());
    }
    let store = OffsetsStore::open(dir).map_err(std::io::Error::other)?;
    let mut result = Ok(());
    for chunk in records.chunks(OFFSETS_PER_WRITE) {
        let written = match store.submit(chunk.to_vec()) {
            Ok(rx) => rx.blocking_recv().unwrap_or(Err(crate::group::StoreError::Closed)),
            Err(e) => Err(e),
        };
        if let Err(e) = written {
            result = Err(std::io::Error::other(e));
            break;
        }
    }
    store.close_blocking();
    result
}

/// Logs the Kafka files klamm keeps but does not use.
fn report_kept_files(log_dir: &Path, topics: &[TopicInfo]) {
    let mut internal: BTreeMap<String, usize> = BTreeMap::new();
    let mut root = Vec::new();
    if let Ok(entries) = std::fs::read_dir(log_dir) {
        for entry in entries.flatten() {
            let Ok(name) = entry.file_name().into_string() else { continue };
            if let Some(tp) = parse_partition_dir_name(&name).filter(|tp| is_kafka_internal_topic(&tp.topic)) {
                *internal.entry(tp.topic).or_default() += 1;
            } else if entry.path().is_file()
                && !matches!(name.as_str(), "meta.properties" | "recovery-point-offset-checkpoint" | "log-start-offset-checkpoint" | ".kafka_cleanshutdown")
            {
                root.push(name);
            }
        }
    }
    for (topic, dirs) in &internal {
        info!(topic = %topic, partition_dirs = dirs, "keeping Kafka's internal partition directories untouched (not loaded, not renamed)");
    }
    if internal.contains_key("__transaction_state") {
        warn!("Kafka's transaction state is kept but not used: klamm has no transactions, so open transactions stay open");
    }
    if !root.is_empty() {
        root.sort();
        info!(files = %root.join(","), "keeping Kafka's files in the log directory untouched");
    }
    let mut kept: BTreeMap<&str, usize> = BTreeMap::new();
    for t in topics {
        for p in 0..t.partitions {
            let Ok(entries) = std::fs::read_dir(log_dir.join(format!("{}-{p}", t.name))) else { continue };
            for entry in entries.flatten() {
                let Ok(name) = entry.file_name().into_string() else { continue };
                let kind = if name == "leader-epoch-checkpoint" {
                    "leader-epoch-checkpoint (read for OffsetForLeaderEpoch, never written)"
                } else if name.ends_with(".snapshot") {
                    ".snapshot (Kafka's producer state)"
                } else if name.ends_with(".txnindex") {
                    ".txnindex"
                } else if name.ends_with(".swap") {
                    ".swap (unfinished compaction, completed at load)"
                } else {
                    continue;
                };
                *kept.entry(kind).or_default() += 1;
            }
        }
    }
    for (kind, files) in kept {
        info!(files, kind, "keeping Kafka's partition files klamm does not use");
    }
}

#[cfg(test)]
mod tests;
