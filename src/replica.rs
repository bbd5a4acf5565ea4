//! The replica manager: the partition logs this node leads (all of them, on
//! a single node) kept in step with the controller's metadata image.
//!
//! It owns the [`LogManager`], maps each topic partition to its log and its
//! topic id, creates logs for new topics and partitions, deletes the logs of
//! deleted topics, applies topic configs to logs, and wakes long-polling
//! fetches when records are appended. Every method here may do disk I/O:
//! call them from blocking threads (`spawn_blocking`), never from an async
//! worker.
//!
//! Each partition directory holds Kafka's `partition.metadata` file with the
//! topic id, so a log left behind by a deleted topic (a crash between the
//! metadata change and the directory removal) is never mistaken for the log
//! of a new topic with the same name.
//!
//! Nothing is deleted at start. A partition directory the metadata does not
//! claim (an unknown topic, a partition past the topic's count, another
//! topic id) is renamed to `<topic>-<partition>.<hex>-stray`, as Kafka does,
//! and never opened; directories of Kafka's internal topics
//! ([`KAFKA_INTERNAL_TOPICS`]) that klamm's metadata does not know are left
//! exactly as they are. Logs are deleted only when their topic is deleted.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, RwLock};

use tokio::sync::Notify;
use tracing::{info, warn};

use crate::config::topic::{MessageTimestampType, TopicConfig};
use crate::config::BrokerConfig;
use crate::controller::{MetadataImage, TopicInfo};
use crate::protocol::{ErrorCode, Uuid};
use crate::records::TimestampType;
use crate::storage::{
    parse_partition_dir_name, partition_dir_name, write_atomically, LogConfig, LogManager, SharedLog, StorageError,
    DELETE_DIR_SUFFIX, NEVER, STRAY_DIR_SUFFIX,
};
use crate::types::TopicPartition;

/// Kafka's per-partition file naming the topic id.
pub const PARTITION_METADATA_FILE: &str = "partition.metadata";

/// Kafka's internal topics. Their directories, when klamm's metadata does
/// not know them, are neither loaded nor set aside: they stay as Kafka left
/// them, so the data directory can be handed back to Kafka.
pub const KAFKA_INTERNAL_TOPICS: [&str; 4] =
    ["__cluster_metadata", "__consumer_offsets", "__transaction_state", "__share_group_state"];

/// What start does with one partition directory found in the log directory.
#[derive(Debug, PartialEq, Eq)]
pub enum Claim {
    /// The metadata has this partition: open (and recover) it.
    Load,
    /// A Kafka internal topic klamm does not own: do not touch it.
    LeaveAlone,
    /// Not ours: rename it to `…-stray` and do not open it. The reason is
    /// logged.
    SetAside(String),
}

/// Decides what start does with the directory of `tp`, whose
/// `partition.metadata` names `stored_id` (if it has one).
pub fn claim(image: &MetadataImage, tp: &TopicPartition, stored_id: Option<Uuid>) -> Claim {
    match image.topic(&tp.topic) {
        Some(t) if tp.partition >= t.partitions => {
            Claim::SetAside(format!("topic '{}' has {} partitions in the metadata", t.name, t.partitions))
        }
        Some(t) => match stored_id {
            Some(id) if id != t.id => Claim::SetAside(format!(
                "its partition.metadata names topic id {}, the metadata's '{}' is {}",
                id.to_base64(),
                t.name,
                t.id.to_base64()
            )),
            _ => Claim::Load,
        },
        None if KAFKA_INTERNAL_TOPICS.contains(&tp.topic.as_str()) => Claim::LeaveAlone,
        None => Claim::SetAside(format!("the metadata has no topic '{}'", tp.topic)),
    }
}

/// Reads the topic id from a partition directory's `partition.metadata`.
fn read_topic_id(partition_dir: &std::path::Path) -> Option<Uuid> {
    let text = std::fs::read_to_string(partition_dir.join(PARTITION_METADATA_FILE)).ok()?;
    text.lines().find_map(|l| l.strip_prefix("topic_id:")).and_then(|v| Uuid::from_base64(v.trim()))
}

/// Renames every partition directory under `dir` that `image` does not
/// claim to `<name>.<hex>-stray`, before any log is opened. Returns the new
/// names. Blocking.
pub fn set_aside_unclaimed(dir: &std::path::Path, image: &MetadataImage) -> Result<Vec<std::path::PathBuf>, StorageError> {
    let mut set_aside = Vec::new();
    let entries = match std::fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(set_aside),
        Err(e) => return Err(StorageError::io("list directory", dir)(e)),
    };
    let mut left_alone = Vec::new();
    for entry in entries {
        let entry = entry.map_err(StorageError::io("list directory", dir))?;
        if !entry.file_type().map(|t| t.is_dir()).unwrap_or(false) {
            continue;
        }
        let Ok(name) = entry.file_name().into_string() else { continue };
        if name.starts_with('.') || name.ends_with(DELETE_DIR_SUFFIX) || name.ends_with(STRAY_DIR_SUFFIX) {
            continue;
        }
        let Some(tp) = parse_partition_dir_name(&name) else { continue };
        let path = entry.path();
        match claim(image, &tp, read_topic_id(&path)) {
            Claim::Load => {}
            Claim::LeaveAlone => left_alone.push(name),
            Claim::SetAside(why) => {
                let renamed = dir.join(format!("{name}.{}{STRAY_DIR_SUFFIX}", crate::storage::unique_hex()));
                std::fs::rename(&path, &renamed).map_err(StorageError::io("rename stray partition directory", &path))?;
                tracing::error!(
                    partition = %tp,
                    reason = %why,
                    kept_as = %renamed.display(),
                    "partition directory not in the metadata: set aside, not deleted (klamm never deletes data at start; remove it by hand if it is not needed)"
                );
                set_aside.push(renamed);
            }
        }
    }
    if !set_aside.is_empty() {
        crate::storage::sync_dir(dir)?;
    }
    if !left_alone.is_empty() {
        left_alone.sort();
        info!(directories = %left_alone.join(","), "left Kafka's internal topic directories untouched");
    }
    Ok(set_aside)
}

/// One partition this node leads.
pub struct Partition {
    pub tp: TopicPartition,
    pub topic_id: Uuid,
    pub log: SharedLog,
    /// Long-polling fetches waiting for an append to this partition.
    pub waiters: FetchWaiters,
    /// Group commit of appends that `flush.messages` asks to make durable.
    pub sync: GroupSync,
}

impl Partition {
    pub fn new(tp: TopicPartition, topic_id: Uuid, log: SharedLog) -> Partition {
        Partition { tp, topic_id, log, waiters: FetchWaiters::default(), sync: GroupSync::default() }
    }

    /// Makes every record below `end` durable, sharing one fdatasync with
    /// the appends that arrived while the previous one ran; the partition
    /// lock is held only to take the descriptor and to record the result.
    /// Blocking.
    pub fn sync_through(&self, end: crate::types::Offset) -> Result<(), StorageError> {
        self.sync.sync_through(&self.log, end)
    }
}

/// One partition's group commit. At most one fdatasync runs at a time;
/// an append that finds one running waits for it and, if that one did not
/// cover it, the next covers every append made meanwhile. So with
/// `flush.messages=1` (durable mode) concurrent producers share fsyncs and
/// none waits on the partition lock while the disk works.
///
/// A failed fdatasync poisons the partition until restart: Linux may drop
/// the dirty pages of a failed writeback and report the next fdatasync as
/// a success, so a later sync proves nothing about the bytes before it.
/// Every later sync and append ([`GroupSync::check_healthy`]) fails
/// (KAFKA_STORAGE_ERROR) instead of acknowledging records that sit after a
/// possible hole; the next start recovers the log (as Kafka takes a failed
/// log directory offline).
#[derive(Default)]
pub struct GroupSync {
    state: Mutex<SyncState>,
    done: std::sync::Condvar,
    /// Makes the next fdatasync fail (tests only).
    #[cfg(test)]
    fail_next: std::sync::atomic::AtomicBool,
}

#[derive(Default)]
struct SyncState {
    /// Everything below this offset is durable.
    synced_end: i64,
    running: bool,
    /// fdatasyncs run (for tests and metrics).
    syncs: u64,
    /// The first fdatasync failure, after which nothing is acknowledged.
    failed: Option<String>,
}

fn poisoned_error(log: &SharedLog, first: &str) -> StorageError {
    StorageError::Io {
        op: "fdatasync",
        path: lock(log).dir().to_path_buf(),
        source: std::io::Error::other(format!("an earlier fdatasync failed ({first}); restart to recover the log")),
    }
}

impl GroupSync {
    /// Fails once an fdatasync of this partition has failed: no more
    /// appends until restart (Kafka takes the log directory offline), so
    /// that at most the appends already in flight sit after a possible hole
    /// and an idempotent producer's retries of them are still recognised.
    pub fn check_healthy(&self, log: &SharedLog) -> Result<(), StorageError> {
        let first = lock(&self.state).failed.clone();
        match first {
            Some(first) => Err(poisoned_error(log, &first)),
            None => Ok(()),
        }
    }

    fn sync_through(&self, log: &SharedLog, end: crate::types::Offset) -> Result<(), StorageError> {
        let mut st = lock(&self.state);
        loop {
            if let Some(first) = &st.failed {
                let first = first.clone();
                drop(st);
                return Err(poisoned_error(log, &first));
            }
            if st.synced_end >= end.0 {
                return Ok(());
            }
            if !st.running {
                st.running = true;
                break;
            }
            st = self.done.wait(st).unwrap_or_else(|e| e.into_inner());
        }
        drop(st);
        // Every append below `covered` is in the file the handle names, or
        // in a sealed segment, whose roll fsynced it or left a job to
        // (run, or waited for, here: off the lock too).
        let (handle, seals, covered) = {
            let l = lock(log);
            (l.data_sync_handle(), l.unsynced_seals(), l.log_end_offset())
        };
        let sync_data = |file: &std::fs::File| {
            #[cfg(test)]
            if self.fail_next.swap(false, std::sync::atomic::Ordering::Relaxed) {
                return Err(std::io::Error::other("injected failure"));
            }
            file.sync_data()
        };
        let sealed = seals.iter().try_for_each(|job| job.run());
        let result = sealed.and_then(|()| match handle {
            Some(file) => crate::storage::faults::sync(&file, || sync_data(&file)).map_err(|e| StorageError::Io {
                op: "fdatasync",
                path: lock(log).dir().to_path_buf(),
                source: e,
            }),
            // Not written with pwrite (or closed): flush under the lock.
            None => lock(log).flush(),
        });
        if result.is_ok() {
            let mut l = lock(log);
            l.seals_completed();
            l.mark_data_synced(covered);
        }
        let mut st = lock(&self.state);
        st.running = false;
        st.syncs += 1;
        match &result {
            Ok(()) => st.synced_end = st.synced_end.max(covered.0),
            Err(e) => {
                tracing::error!(error = %e, "fdatasync failed: no more appends to this partition are acknowledged until restart");
                st.failed.get_or_insert_with(|| e.to_string());
            }
        }
        drop(st);
        self.done.notify_all();
        result
    }

    /// fdatasyncs run so far.
    pub fn syncs(&self) -> u64 {
        lock(&self.state).syncs
    }
}

/// The fetches waiting on one partition. Each waiting fetch registers one
/// `Notify` with every partition it reads; an append wakes only the
/// fetches registered with its partition (`notify_one` keeps a permit, so
/// an append between a fetch's read and its wait is not missed).
#[derive(Default)]
pub struct FetchWaiters {
    next_id: std::sync::atomic::AtomicU64,
    waiting: Mutex<HashMap<u64, Arc<Notify>>>,
}

impl FetchWaiters {
    /// Registers `waker` until the returned id is passed to `unregister`.
    pub fn register(&self, waker: &Arc<Notify>) -> u64 {
        let id = self.next_id.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        lock(&self.waiting).insert(id, waker.clone());
        id
    }

    pub fn unregister(&self, id: u64) {
        lock(&self.waiting).remove(&id);
    }

    /// Wakes every fetch waiting on this partition.
    pub fn wake(&self) {
        for w in lock(&self.waiting).values() {
            w.notify_one();
        }
    }

    pub fn len(&self) -> usize {
        lock(&self.waiting).len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// A fetch's registrations with the partitions it waits on, undone on drop.
pub struct FetchWait {
    waker: Arc<Notify>,
    registered: Vec<(Arc<Partition>, u64)>,
}

impl FetchWait {
    pub fn new(partitions: Vec<Arc<Partition>>) -> FetchWait {
        let waker = Arc::new(Notify::new());
        let registered = partitions
            .into_iter()
            .map(|p| {
                let id = p.waiters.register(&waker);
                (p, id)
            })
            .collect();
        FetchWait { waker, registered }
    }

    /// Completes after an append to one of the partitions since the last
    /// call (or since `new`).
    pub async fn appended(&self) {
        self.waker.notified().await
    }
}

impl Drop for FetchWait {
    fn drop(&mut self) {
        for (p, id) in &self.registered {
            p.waiters.unregister(*id);
        }
    }
}

/// All partition logs, in step with the metadata image.
pub struct ReplicaManager {
    logs: LogManager,
    broker_config: Arc<BrokerConfig>,
    partitions: RwLock<HashMap<TopicPartition, Arc<Partition>>>,
    /// Serialises structural changes (create, delete, reconfigure).
    changes: Mutex<()>,
}

/// The log settings a topic config describes.
pub fn log_config(t: &TopicConfig) -> LogConfig {
    let never_if_max = |v: i64| if v == i64::MAX || v < 0 { NEVER } else { v as u64 };
    LogConfig {
        segment_bytes: t.segment_bytes,
        segment_ms: t.segment_ms,
        segment_index_bytes: t.segment_index_bytes,
        index_interval_bytes: t.index_interval_bytes,
        flush_interval_messages: never_if_max(t.flush_messages),
        flush_interval_ms: never_if_max(t.flush_ms),
        // `compact` alone never deletes by time or size.
        retention_ms: if t.cleanup_policy.delete { t.retention_ms } else { -1 },
        retention_bytes: if t.cleanup_policy.delete { t.retention_bytes } else { -1 },
        max_message_bytes: t.max_message_bytes,
        message_timestamp_type: match t.message_timestamp_type {
            MessageTimestampType::CreateTime => TimestampType::CreateTime,
            MessageTimestampType::LogAppendTime => TimestampType::LogAppendTime,
        },
        message_timestamp_before_max_ms: t.message_timestamp_before_max_ms,
        message_timestamp_after_max_ms: t.message_timestamp_after_max_ms,
        preallocate: t.preallocate,
        compact: t.cleanup_policy.compact,
        min_cleanable_dirty_ratio_ppm: (t.min_cleanable_dirty_ratio.clamp(0.0, 1.0) * 1e6).round() as u32,
        min_compaction_lag_ms: t.min_compaction_lag_ms,
        max_compaction_lag_ms: t.max_compaction_lag_ms,
        delete_retention_ms: t.delete_retention_ms,
    }
}

/// Checks a client's `current_leader_epoch` against the partition's (-1:
/// the client does not say): older is FENCED_LEADER_EPOCH, newer is
/// UNKNOWN_LEADER_EPOCH, as in Kafka.
pub fn check_leader_epoch(requested: i32, current: i32) -> Result<(), ErrorCode> {
    if requested < 0 || requested == current {
        Ok(())
    } else if requested < current {
        Err(ErrorCode::FencedLeaderEpoch)
    } else {
        Err(ErrorCode::UnknownLeaderEpoch)
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl ReplicaManager {
    /// Sets aside the partition directories `image` does not claim, opens
    /// (and if needed recovers) the others, then reconciles them with
    /// `image`. Blocking.
    pub fn open(broker_config: Arc<BrokerConfig>, image: &MetadataImage) -> Result<ReplicaManager, StorageError> {
        let defaults = log_config(&broker_config.topic_defaults());
        crate::storage::map_cache::set_max_mapped_inactive_segments(broker_config.max_mapped_inactive_segments);
        std::fs::create_dir_all(&broker_config.log_dir)
            .map_err(StorageError::io("create directory", &broker_config.log_dir))?;
        set_aside_unclaimed(&broker_config.log_dir, image)?;
        let claimed = |tp: &TopicPartition| image.topic(&tp.topic).is_some_and(|t| tp.partition < t.partitions);
        let logs = LogManager::open_only(&broker_config.log_dir, defaults, &claimed)?;
        let rm = ReplicaManager {
            logs,
            broker_config,
            partitions: RwLock::new(HashMap::new()),
            changes: Mutex::new(()),
        };
        rm.reconcile(image)?;
        Ok(rm)
    }

    pub fn log_manager(&self) -> &LogManager {
        &self.logs
    }

    /// The partition, if its log exists.
    pub fn get(&self, tp: &TopicPartition) -> Option<Arc<Partition>> {
        self.partitions.read().unwrap_or_else(|e| e.into_inner()).get(tp).cloned()
    }

    /// Every partition, sorted.
    pub fn all(&self) -> Vec<Arc<Partition>> {
        let mut v: Vec<Arc<Partition>> =
            self.partitions.read().unwrap_or_else(|e| e.into_inner()).values().cloned().collect();
        v.sort_by(|a, b| a.tp.cmp(&b.tp));
        v
    }

    /// The log config a topic gets: broker defaults plus its overrides (an
    /// override that no longer validates falls back to the default).
    pub fn topic_log_config(&self, topic: &TopicInfo) -> LogConfig {
        match TopicConfig::resolve(&self.broker_config, &topic.configs) {
            Ok(t) => log_config(&t),
            Err(e) => {
                warn!(topic = %topic.name, error = %e, "invalid stored topic config; using broker defaults");
                log_config(&self.broker_config.topic_defaults())
            }
        }
    }

    /// Makes the logs match `image`: creates the logs of new partitions,
    /// deletes those of deleted topics (or of an older topic with the same
    /// name), and applies each topic's config. Every loaded log was claimed
    /// by the image at start, so a log deleted here is one whose topic a
    /// DeleteTopics removed. Blocking.
    pub fn reconcile(&self, image: &MetadataImage) -> Result<(), StorageError> {
        let _guard = lock(&self.changes);
        // Delete logs whose topic is gone or was replaced.
        for tp in self.logs.partitions() {
            // The id of a partition already served is in memory; only logs
            // loaded at start and not yet reconciled read partition.metadata.
            let known_id = self.get(&tp).map(|p| p.topic_id);
            let keep = match image.topic(&tp.topic) {
                Some(t) if tp.partition < t.partitions => {
                    match known_id.or_else(|| self.stored_topic_id(&tp)) {
                        Some(id) => id == t.id,
                        // A log without the file is ours from before it was
                        // written: adopt it.
                        None => true,
                    }
                }
                _ => false,
            };
            if !keep {
                self.partitions.write().unwrap_or_else(|e| e.into_inner()).remove(&tp);
                self.logs.delete(&tp)?;
            }
        }
        // Create the missing ones and apply configs.
        let mut created = 0usize;
        for topic in image.topics.values() {
            let config = self.topic_log_config(topic);
            for p in 0..topic.partitions {
                let tp = TopicPartition::new(topic.name.clone(), p);
                let existing = self.get(&tp).filter(|part| part.topic_id == topic.id);
                let part = match existing {
                    Some(part) => part,
                    None => {
                        let existed = self.logs.get(&tp).is_some();
                        let log = self.logs.get_or_create(&tp, config.clone())?;
                        if self.stored_topic_id(&tp) != Some(topic.id) {
                            self.write_topic_id(&tp, topic.id)?;
                        }
                        if !existed {
                            created += 1;
                        }
                        let part = Arc::new(Partition::new(tp.clone(), topic.id, log));
                        self.partitions.write().unwrap_or_else(|e| e.into_inner()).insert(tp, part.clone());
                        part
                    }
                };
                let mut log = lock(&part.log);
                if log.config() != &config {
                    log.set_config(config.clone())?;
                }
                if log.leader_epoch() != topic.leader_epoch {
                    log.set_leader_epoch(topic.leader_epoch);
                }
            }
        }
        if created > 0 {
            info!(created, "created partition logs");
        }
        Ok(())
    }

    fn stored_topic_id(&self, tp: &TopicPartition) -> Option<Uuid> {
        read_topic_id(&self.logs.dir().join(partition_dir_name(tp)))
    }

    fn write_topic_id(&self, tp: &TopicPartition, id: Uuid) -> Result<(), StorageError> {
        let path = self.logs.dir().join(partition_dir_name(tp)).join(PARTITION_METADATA_FILE);
        let text = format!("version: 0\ntopic_id: {}\n", id.to_base64());
        write_atomically(&path, text.as_bytes())
    }

    /// Closes every log, writes checkpoints and the clean-shutdown marker.
    pub fn shutdown(&self) -> Result<(), StorageError> {
        let _guard = lock(&self.changes);
        self.logs.shutdown()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn leader_epoch_checks_follow_kafka() {
        assert_eq!(check_leader_epoch(-1, 5), Ok(()));
        assert_eq!(check_leader_epoch(5, 5), Ok(()));
        assert_eq!(check_leader_epoch(4, 5), Err(ErrorCode::FencedLeaderEpoch));
        assert_eq!(check_leader_epoch(6, 5), Err(ErrorCode::UnknownLeaderEpoch));
    }

    #[test]
    fn topic_config_maps_to_log_config() {
        let mut t = TopicConfig::default();
        assert_eq!(log_config(&t).flush_interval_messages, NEVER);
        t.flush_messages = 1;
        t.message_timestamp_type = MessageTimestampType::LogAppendTime;
        t.retention_ms = 1000;
        let l = log_config(&t);
        assert_eq!(l.flush_interval_messages, 1);
        assert_eq!(l.message_timestamp_type, TimestampType::LogAppendTime);
        assert_eq!(l.retention_ms, 1000);
        assert!(!l.compact);
        t.cleanup_policy.compact = true;
        t.min_cleanable_dirty_ratio = 0.01;
        assert_eq!(log_config(&t).retention_ms, 1000, "compact,delete keeps time retention");
        assert_eq!(log_config(&t).min_cleanable_dirty_ratio_ppm, 10_000);
        t.cleanup_policy.delete = false;
        let l = log_config(&t);
        assert!(l.compact);
        assert_eq!((l.retention_ms, l.retention_bytes), (-1, -1), "compact alone never deletes");
    }

    fn stray_dirs(dir: &std::path::Path) -> Vec<String> {
        let mut v: Vec<String> = std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .filter(|n| n.ends_with(STRAY_DIR_SUFFIX))
            .collect();
        v.sort();
        v
    }

    /// Every file under `dir` with its contents, for before/after checks.
    fn tree(dir: &std::path::Path) -> Vec<(String, Vec<u8>)> {
        let mut out = Vec::new();
        for e in std::fs::read_dir(dir).unwrap() {
            let e = e.unwrap();
            let name = e.file_name().into_string().unwrap();
            if e.file_type().unwrap().is_dir() {
                out.extend(tree(&e.path()).into_iter().map(|(n, d)| (format!("{name}/{n}"), d)));
            } else {
                out.push((name, std::fs::read(e.path()).unwrap()));
            }
        }
        out.sort();
        out
    }

    #[test]
    fn start_never_deletes_a_directory_the_metadata_does_not_know() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().to_str().unwrap();
        let config = Arc::new(BrokerConfig::with_settings(&[("log.dirs", path)]).unwrap());
        // A log written by klamm for a topic whose metadata is lost (the
        // metadata directory was removed, or this is another broker's data).
        {
            let mut i = MetadataImage::default();
            let t = Arc::new(TopicInfo { name: "orders".into(), id: Uuid([9; 16]), partitions: 1, leader_epoch: 0, configs: Default::default() });
            i.ids.insert(t.id, t.name.clone());
            i.topics.insert(t.name.clone(), t);
            let rm = ReplicaManager::open(config.clone(), &i).unwrap();
            let mut b = crate::records::builder::test_batch(5, 1_000, None);
            let tp = TopicPartition::new("orders", 0);
            rm.get(&tp).unwrap().log.lock().unwrap().append(&mut b, crate::types::TimestampMs(1_000)).unwrap();
            rm.shutdown().unwrap();
        }
        // Kafka's own metadata log and offsets partitions, as Kafka leaves them.
        for d in ["__cluster_metadata-0", "__consumer_offsets-7"] {
            std::fs::create_dir(dir.path().join(d)).unwrap();
            std::fs::write(dir.path().join(d).join("00000000000000000000.log"), b"kafka's bytes").unwrap();
            std::fs::write(dir.path().join(d).join("00000000000000000000.snapshot"), b"not ours").unwrap();
        }
        let orders_before = tree(&dir.path().join("orders-0"));
        let internal_before = [tree(&dir.path().join("__cluster_metadata-0")), tree(&dir.path().join("__consumer_offsets-7"))];

        let rm = ReplicaManager::open(config, &MetadataImage::default()).unwrap();
        assert!(rm.all().is_empty(), "nothing unclaimed is served");
        let stray = stray_dirs(dir.path());
        assert_eq!(stray.len(), 1, "{stray:?}");
        assert!(stray[0].starts_with("orders-0.") && stray[0].len() == "orders-0.".len() + 32 + "-stray".len());
        assert_eq!(tree(&dir.path().join(&stray[0])), orders_before, "set aside byte for byte");
        assert!(!dir.path().join("orders-0").exists());
        assert_eq!(
            [tree(&dir.path().join("__cluster_metadata-0")), tree(&dir.path().join("__consumer_offsets-7"))],
            internal_before,
            "Kafka's internal directories stay where and as they are"
        );
        rm.shutdown().unwrap();
        // A stray directory is never loaded or renamed again.
        let config = Arc::new(BrokerConfig::with_settings(&[("log.dirs", path)]).unwrap());
        let rm = ReplicaManager::open(config, &MetadataImage::default()).unwrap();
        assert!(rm.all().is_empty());
        assert_eq!(stray_dirs(dir.path()), stray);
    }

    #[tokio::test]
    async fn an_append_wakes_only_the_fetches_waiting_on_its_partition() {
        use std::time::Duration;
        let dir = tempfile::tempdir().unwrap();
        let logs = LogManager::open(dir.path(), LogConfig::default()).unwrap();
        let part = |p: i32| {
            let tp = TopicPartition::new("t", p);
            let log = logs.get_or_create(&tp, LogConfig::default()).unwrap();
            Arc::new(Partition::new(tp, Uuid([1; 16]), log))
        };
        let (a, b) = (part(0), part(1));
        let on_a = FetchWait::new(vec![a.clone()]);
        let on_b = FetchWait::new(vec![b.clone()]);
        let on_both = FetchWait::new(vec![a.clone(), b.clone()]);
        assert_eq!((a.waiters.len(), b.waiters.len()), (2, 2));
        // An append before the wait starts is not missed.
        a.waiters.wake();
        async fn soon(w: &FetchWait) -> bool {
            tokio::time::timeout(Duration::from_millis(50), w.appended()).await.is_ok()
        }
        assert!(soon(&on_a).await);
        assert!(soon(&on_both).await);
        assert!(!soon(&on_b).await, "an append to t-0 does not wake a fetch of t-1");
        drop((on_a, on_b, on_both));
        assert!(a.waiters.is_empty() && b.waiters.is_empty(), "registrations end with the fetch");
    }

    #[test]
    fn group_commit_makes_every_acknowledged_append_durable_and_shares_syncs() {
        let dir = tempfile::tempdir().unwrap();
        let cfg = LogConfig { flush_interval_messages: 1, ..LogConfig::default() };
        let logs = LogManager::open(dir.path(), cfg.clone()).unwrap();
        let tp = TopicPartition::new("t", 0);
        let part = Arc::new(Partition::new(tp.clone(), Uuid([1; 16]), logs.get_or_create(&tp, cfg).unwrap()));
        let threads: Vec<_> = (0..8)
            .map(|_| {
                let part = part.clone();
                std::thread::spawn(move || {
                    for _ in 0..50 {
                        let mut b = crate::records::builder::test_batch(1, 1_000, None);
                        let (info, needs_sync) =
                            lock(&part.log).append_deferring_flush(&mut b, crate::types::TimestampMs(1_000), None).unwrap();
                        assert!(needs_sync, "flush.messages=1: every append waits for its sync");
                        part.sync_through(info.last_offset.next()).unwrap();
                        assert!(lock(&part.sync.state).synced_end > info.last_offset.0);
                    }
                })
            })
            .collect();
        for t in threads {
            t.join().unwrap();
        }
        assert_eq!(lock(&part.log).log_end_offset().0, 400);
        let syncs = part.sync.syncs();
        assert!((1..=400).contains(&syncs), "{syncs} fdatasyncs for 400 appends");
        // The lock was not held for the syncs: the log kept its recovery
        // point (indexes unflushed) but knows its data is on disk.
        let mut b = crate::records::builder::test_batch(1, 1_000, None);
        let (_, needs_sync) = lock(&part.log).append_deferring_flush(&mut b, crate::types::TimestampMs(1_000), None).unwrap();
        assert!(needs_sync);
    }

    #[test]
    fn a_failed_fdatasync_poisons_the_partition_until_restart() {
        // Linux may drop the pages of a failed writeback and let the next
        // fdatasync succeed: nothing after a failure may be acknowledged.
        let dir = tempfile::tempdir().unwrap();
        let cfg = LogConfig { flush_interval_messages: 1, ..LogConfig::default() };
        let logs = LogManager::open(dir.path(), cfg.clone()).unwrap();
        let tp = TopicPartition::new("t", 0);
        let part = Partition::new(tp.clone(), Uuid([1; 16]), logs.get_or_create(&tp, cfg).unwrap());
        let append = || {
            let mut b = crate::records::builder::test_batch(1, 1_000, None);
            let (info, _) = lock(&part.log).append_deferring_flush(&mut b, crate::types::TimestampMs(1_000), None).unwrap();
            info.last_offset.next()
        };
        let end = append();
        part.sync.check_healthy(&part.log).unwrap();
        part.sync_through(end).unwrap();
        part.sync.fail_next.store(true, std::sync::atomic::Ordering::Relaxed);
        let end = append();
        assert!(part.sync_through(end).is_err());
        let end = append();
        let err = part.sync_through(end).unwrap_err();
        assert!(err.to_string().contains("an earlier fdatasync failed"), "{err}");
        assert_eq!(err.error_code(), 56, "KAFKA_STORAGE_ERROR");
        assert_eq!(part.sync.syncs(), 2, "no fdatasync runs once poisoned");
        assert_eq!(part.sync.check_healthy(&part.log).unwrap_err().error_code(), 56, "appends refused");
    }

    #[test]
    fn claims_follow_the_metadata() {
        let mut i = MetadataImage::default();
        let t = Arc::new(TopicInfo { name: "t".into(), id: Uuid([1; 16]), partitions: 2, leader_epoch: 0, configs: Default::default() });
        i.ids.insert(t.id, t.name.clone());
        i.topics.insert(t.name.clone(), t);
        let tp = |t: &str, p| TopicPartition::new(t, p);
        assert_eq!(claim(&i, &tp("t", 1), None), Claim::Load);
        assert_eq!(claim(&i, &tp("t", 1), Some(Uuid([1; 16]))), Claim::Load);
        assert!(matches!(claim(&i, &tp("t", 1), Some(Uuid([2; 16]))), Claim::SetAside(_)));
        assert!(matches!(claim(&i, &tp("t", 2), None), Claim::SetAside(_)));
        assert!(matches!(claim(&i, &tp("u", 0), None), Claim::SetAside(_)));
        for internal in KAFKA_INTERNAL_TOPICS {
            assert_eq!(claim(&i, &tp(internal, 0), None), Claim::LeaveAlone);
        }
    }

    #[test]
    fn reconcile_creates_deletes_and_never_adopts_another_topics_log() {
        use crate::controller::TopicInfo;
        let dir = tempfile::tempdir().unwrap();
        let config = Arc::new(BrokerConfig::with_settings(&[("log.dirs", dir.path().to_str().unwrap())]).unwrap());
        let topic = |id: u8, partitions| {
            Arc::new(TopicInfo { name: "t".into(), id: Uuid([id; 16]), partitions, leader_epoch: 0, configs: Default::default() })
        };
        let image = |t: Option<Arc<TopicInfo>>| {
            let mut i = MetadataImage::default();
            if let Some(t) = t {
                i.ids.insert(t.id, t.name.clone());
                i.topics.insert(t.name.clone(), t);
            }
            i
        };
        let rm = ReplicaManager::open(config.clone(), &image(Some(topic(1, 2)))).unwrap();
        assert_eq!(rm.all().len(), 2);
        let tp = TopicPartition::new("t", 0);
        let mut b = crate::records::builder::test_batch(3, 1_000, None);
        rm.get(&tp).unwrap().log.lock().unwrap().append(&mut b, crate::types::TimestampMs(1_000)).unwrap();
        rm.reconcile(&image(Some(topic(1, 3)))).unwrap();
        assert_eq!(rm.all().len(), 3);
        assert_eq!(rm.get(&tp).unwrap().log.lock().unwrap().log_end_offset().0, 3, "kept");
        rm.shutdown().unwrap();

        // The topic was deleted and recreated (new id) while we were down:
        // the old log is set aside, not deleted, and never served.
        let rm = ReplicaManager::open(config, &image(Some(topic(2, 1)))).unwrap();
        assert_eq!(rm.all().len(), 1);
        assert_eq!(rm.get(&tp).unwrap().topic_id, Uuid([2; 16]));
        assert_eq!(rm.get(&tp).unwrap().log.lock().unwrap().log_end_offset().0, 0, "the old log is not served");
        let stray = stray_dirs(dir.path());
        assert_eq!(stray.len(), 3, "t-0 (another topic id), t-1 and t-2 (past the count): {stray:?}");
        rm.reconcile(&image(None)).unwrap();
        assert!(rm.all().is_empty());
        assert!(!dir.path().join("t-0").exists());
    }
}
