//! `LogManager`: every partition log of one log directory — loading them at
//! start (clean-shutdown marker, recovery-point and log-start checkpoints),
//! creating and deleting partitions, periodic flush/retention/checkpoint
//! helpers, and clean shutdown.
//!
//! The partition directories of Kafka's internal topics (`__cluster_metadata`,
//! `__consumer_offsets`, `__transaction_state`, `__share_group_state`), left
//! by an Apache Kafka broker that used the same directory, are never opened:
//! their files stay exactly as Kafka wrote them, and their entries in the
//! offset checkpoint files are carried over when klamm rewrites those files,
//! so the directory can go back to Kafka.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use tracing::{debug, info, warn};

use super::checkpoint::{
    read_checkpoint, write_checkpoint, LOG_START_OFFSET_CHECKPOINT_FILE,
    RECOVERY_POINT_CHECKPOINT_FILE,
};
use super::config::LogConfig;
use super::error::StorageError;
use super::files::{remove_if_exists, sync_dir};
use super::loader::OpenOptions;
use super::cleaner::{CleanReport, CleanerConfig, LogCleaner};
use super::partition_log::PartitionLog;
use crate::types::{is_kafka_internal_topic, Offset, TimestampMs, TopicPartition};

/// Marker written last on clean shutdown (Kafka's name and JSON content).
pub const CLEAN_SHUTDOWN_FILE: &str = ".kafka_cleanshutdown";
/// Suffix of partition directories scheduled for deletion.
pub const DELETE_DIR_SUFFIX: &str = "-delete";
/// Suffix of partition directories the metadata does not know, set aside
/// at start instead of deleted (Kafka's `LogFileUtils.STRAY_DIR_SUFFIX`).
pub const STRAY_DIR_SUFFIX: &str = "-stray";
/// Kafka's limit on topic name length.
pub const MAX_TOPIC_NAME_LEN: usize = 249;

/// A shared handle to one partition log.
pub type SharedLog = Arc<Mutex<PartitionLog>>;

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // A panic elsewhere must not make the storage unusable.
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Runs the fsyncs of segments that `log` rolled ([`PartitionLog::take_seal_work`])
/// without holding its lock, then records them (the recovery point moves
/// past each). Blocking: call it on the blocking pool.
pub fn finish_rolls(log: &SharedLog, jobs: Vec<super::roll::SealJob>) -> Result<(), StorageError> {
    if jobs.is_empty() {
        return Ok(());
    }
    let mut result = Ok(());
    for job in &jobs {
        if let Err(e) = job.run() {
            warn!(base_offset = job.base_offset().0, error = %e, "fsync of a rolled segment failed; retried at the next flush");
            result = Err(e);
            break;
        }
    }
    lock(log).seals_completed();
    result
}

/// Checks a topic name the way Kafka does (1..=249 of `[a-zA-Z0-9._-]`, not
/// `.` or `..`), which also makes it safe as a directory name.
pub fn validate_topic_name(name: &str) -> Result<(), StorageError> {
    let ok = !name.is_empty()
        && name.len() <= MAX_TOPIC_NAME_LEN
        && name != "."
        && name != ".."
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'.' || b == b'_' || b == b'-');
    if ok {
        Ok(())
    } else {
        Err(StorageError::InvalidTopic {
            name: name.to_string(),
        })
    }
}

/// Parses a `<topic>-<partition>` directory name (the partition follows the
/// last '-').
pub fn parse_partition_dir_name(name: &str) -> Option<TopicPartition> {
    let (topic, partition) = name.rsplit_once('-')?;
    if partition.is_empty()
        || partition.len() > 10
        || !partition.bytes().all(|b| b.is_ascii_digit())
    {
        return None;
    }
    let partition: i32 = partition.parse().ok()?;
    validate_topic_name(topic).ok()?;
    Some(TopicPartition::new(topic, partition))
}

/// The directory name of a partition.
pub fn partition_dir_name(tp: &TopicPartition) -> String {
    format!("{}-{}", tp.topic, tp.partition)
}

/// 32 hex digits, unique enough for naming a directory being deleted.
pub fn unique_hex() -> String {
    use std::collections::hash_map::RandomState;
    use std::hash::{BuildHasher, Hasher};
    use std::sync::atomic::{AtomicU64, Ordering};
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    let count = COUNTER.fetch_add(1, Ordering::Relaxed);
    let mut parts = [0u64; 2];
    for (i, part) in parts.iter_mut().enumerate() {
        let mut h = RandomState::new().build_hasher();
        h.write_u128(nanos);
        h.write_u64(count);
        h.write_u32(std::process::id());
        h.write_usize(i);
        *part = h.finish();
    }
    format!("{:016x}{:016x}", parts[0], parts[1])
}

/// All partition logs of one log directory.
pub struct LogManager {
    dir: PathBuf,
    default_config: LogConfig,
    logs: Mutex<HashMap<TopicPartition, SharedLog>>,
    had_clean_shutdown: bool,
    /// Serialises checkpoint file writes.
    checkpoint_lock: Mutex<()>,
    /// Checkpoint entries (recovery point, log start) of the Kafka-internal
    /// partitions found at open: written back unchanged with ours.
    foreign_checkpoints: (HashMap<TopicPartition, Offset>, HashMap<TopicPartition, Offset>),
    /// The log cleaner's state (`cleaner-offset-checkpoint`).
    cleaner: LogCleaner,
}

impl LogManager {
    /// Opens the log directory, loading (and, after an unclean shutdown,
    /// recovering) every partition in it with `default_config` (adjust per
    /// topic afterwards with [`PartitionLog::set_config`]). Entries that are
    /// not partition directories are left alone.
    pub fn open(
        dir: impl AsRef<Path>,
        default_config: LogConfig,
    ) -> Result<LogManager, StorageError> {
        Self::open_only(dir, default_config, &|_| true)
    }

    /// [`LogManager::open`] that loads only the partitions `load` accepts;
    /// the others are not opened at all (no recovery runs on them, nothing
    /// in them is read or written).
    pub fn open_only(
        dir: impl AsRef<Path>,
        default_config: LogConfig,
        load: &dyn Fn(&TopicPartition) -> bool,
    ) -> Result<LogManager, StorageError> {
        default_config.validate()?;
        let dir = dir.as_ref().to_path_buf();
        std::fs::create_dir_all(&dir).map_err(StorageError::io("create directory", &dir))?;
        let marker = dir.join(CLEAN_SHUTDOWN_FILE);
        let had_clean_shutdown = marker.exists();
        let read_or_empty = |name: &str| {
            let path = dir.join(name);
            read_checkpoint(&path).unwrap_or_else(|e| {
                warn!(path = %path.display(), error = %e, "unreadable checkpoint; recovering as if it were empty");
                HashMap::new()
            })
        };
        let recovery_points = read_or_empty(RECOVERY_POINT_CHECKPOINT_FILE);
        let log_starts = read_or_empty(LOG_START_OFFSET_CHECKPOINT_FILE);
        let now = TimestampMs::now();
        let cleaner = LogCleaner::open(&dir);

        let mut logs = HashMap::new();
        let mut foreign: Vec<TopicPartition> = Vec::new();
        for entry in std::fs::read_dir(&dir).map_err(StorageError::io("list directory", &dir))? {
            let entry = entry.map_err(StorageError::io("list directory", &dir))?;
            if !entry.file_type().map(|t| t.is_dir()).unwrap_or(false) {
                continue;
            }
            let Ok(name) = entry.file_name().into_string() else {
                continue;
            };
            if name.starts_with('.') {
                continue;
            }
            let path = entry.path();
            if name.ends_with(DELETE_DIR_SUFFIX) {
                info!(path = %path.display(), "removing partition directory scheduled for deletion");
                if let Err(e) = std::fs::remove_dir_all(&path) {
                    warn!(path = %path.display(), error = %e, "could not remove directory");
                }
                continue;
            }
            if name.ends_with(STRAY_DIR_SUFFIX) {
                continue;
            }
            let Some(tp) = parse_partition_dir_name(&name) else {
                warn!(path = %path.display(), "ignoring directory that is not a partition");
                continue;
            };
            if is_kafka_internal_topic(&tp.topic) {
                debug!(path = %path.display(), "leaving Apache Kafka's internal partition directory untouched");
                foreign.push(tp);
                continue;
            }
            if !load(&tp) {
                continue;
            }
            let opts = OpenOptions {
                clean_shutdown: had_clean_shutdown,
                recovery_point: recovery_points.get(&tp).copied().unwrap_or(Offset(0)),
                log_start_offset: log_starts.get(&tp).copied().unwrap_or(Offset(0)),
            };
            // A partition the cleaner has compacted has offset gaps: load it
            // as compacted whatever its policy now (set_config follows).
            let config = if cleaner.checkpoint(&tp).is_some() {
                LogConfig { compact: true, ..default_config.clone() }
            } else {
                default_config.clone()
            };
            let log = PartitionLog::open_with(&path, config, opts, now)?;
            logs.insert(tp, Arc::new(Mutex::new(log)));
        }
        if had_clean_shutdown {
            remove_if_exists(&marker)?;
            sync_dir(&dir)?;
        }
        if !foreign.is_empty() {
            info!(dirs = foreign.len(), "left Apache Kafka's internal partition directories untouched");
        }
        info!(dir = %dir.display(), partitions = logs.len(), clean = had_clean_shutdown, "loaded logs");
        let keep = |all: &HashMap<TopicPartition, Offset>| -> HashMap<TopicPartition, Offset> {
            foreign.iter().filter_map(|tp| all.get(tp).map(|o| (tp.clone(), *o))).collect()
        };
        let foreign_checkpoints = (keep(&recovery_points), keep(&log_starts));
        Ok(LogManager {
            dir,
            default_config,
            logs: Mutex::new(logs),
            had_clean_shutdown,
            checkpoint_lock: Mutex::new(()),
            foreign_checkpoints,
            cleaner,
        })
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Whether the previous run ended with [`LogManager::shutdown`].
    pub fn had_clean_shutdown(&self) -> bool {
        self.had_clean_shutdown
    }

    pub fn default_config(&self) -> &LogConfig {
        &self.default_config
    }

    pub fn get(&self, tp: &TopicPartition) -> Option<SharedLog> {
        lock(&self.logs).get(tp).cloned()
    }

    /// The log of `tp`, creating its directory with `config` if needed (an
    /// existing log keeps its config).
    pub fn get_or_create(
        &self,
        tp: &TopicPartition,
        config: LogConfig,
    ) -> Result<SharedLog, StorageError> {
        validate_topic_name(&tp.topic)?;
        if tp.partition < 0 || is_kafka_internal_topic(&tp.topic) {
            return Err(StorageError::InvalidTopic {
                name: partition_dir_name(tp),
            });
        }
        let mut logs = lock(&self.logs);
        if let Some(log) = logs.get(tp) {
            return Ok(Arc::clone(log));
        }
        let path = self.dir.join(partition_dir_name(tp));
        // Loaded as compacted if the cleaner has been at it (offset gaps),
        // then given its own config.
        let load_config = LogConfig { compact: config.compact || self.cleaner.checkpoint(tp).is_some(), ..config.clone() };
        let mut log =
            PartitionLog::open_with(&path, load_config, OpenOptions::default(), TimestampMs::now())?;
        log.set_config(config)?;
        sync_dir(&self.dir)?;
        let log = Arc::new(Mutex::new(log));
        logs.insert(tp.clone(), Arc::clone(&log));
        Ok(log)
    }

    /// The log cleaner's state and counters.
    pub fn cleaner(&self) -> &LogCleaner {
        &self.cleaner
    }

    /// One cleaner pass: compacts the filthiest compacted log, if one needs
    /// it (see [`LogCleaner::clean_filthiest`]). Blocking.
    pub fn clean_filthiest(
        &self,
        config: &CleanerConfig,
        now: TimestampMs,
    ) -> Result<Option<CleanReport>, StorageError> {
        self.cleaner.clean_filthiest(&self.all_logs(), config, now)
    }

    /// Partitions currently loaded.
    pub fn partitions(&self) -> Vec<TopicPartition> {
        let mut v: Vec<TopicPartition> = lock(&self.logs).keys().cloned().collect();
        v.sort();
        v
    }

    fn all_logs(&self) -> Vec<(TopicPartition, SharedLog)> {
        lock(&self.logs)
            .iter()
            .map(|(tp, l)| (tp.clone(), Arc::clone(l)))
            .collect()
    }

    /// Deletes a partition: closes it, renames its directory to
    /// `<topic>-<partition>.<hex>-delete` and removes it. Outstanding read
    /// `Bytes` stay valid. Returns whether it existed.
    pub fn delete(&self, tp: &TopicPartition) -> Result<bool, StorageError> {
        let Some(log) = lock(&self.logs).remove(tp) else {
            return Ok(false);
        };
        let mut log = lock(&log);
        let path = log.dir().to_path_buf();
        log.close_for_delete();
        let renamed = self.dir.join(format!(
            "{}.{}{}",
            partition_dir_name(tp),
            unique_hex(),
            DELETE_DIR_SUFFIX
        ));
        std::fs::rename(&path, &renamed).map_err(StorageError::io("rename for deletion", &path))?;
        sync_dir(&self.dir)?;
        if let Err(e) = std::fs::remove_dir_all(&renamed) {
            // Retried at the next start.
            warn!(path = %renamed.display(), error = %e, "could not remove deleted partition directory");
        }
        self.cleaner.forget(tp);
        info!(partition = %tp, "deleted partition log");
        Ok(true)
    }

    /// Writes both checkpoint files from every log's recovery point and log
    /// start offset (plus the entries of Kafka's internal partitions, as
    /// they were read).
    pub fn checkpoint_all(&self) -> Result<(), StorageError> {
        let _guard = lock(&self.checkpoint_lock);
        let mut recovery_points = self.foreign_checkpoints.0.clone();
        let mut log_starts = self.foreign_checkpoints.1.clone();
        for (tp, log) in self.all_logs() {
            let log = lock(&log);
            recovery_points.insert(tp.clone(), log.recovery_point());
            log_starts.insert(tp, log.log_start_offset());
        }
        write_checkpoint(
            &self.dir.join(RECOVERY_POINT_CHECKPOINT_FILE),
            &recovery_points,
        )?;
        write_checkpoint(
            &self.dir.join(LOG_START_OFFSET_CHECKPOINT_FILE),
            &log_starts,
        )
    }

    /// Flushes every open log.
    pub fn flush_all(&self) -> Result<(), StorageError> {
        for (_, log) in self.all_logs() {
            let mut log = lock(&log);
            if !log.is_closed() {
                log.flush()?;
            }
        }
        Ok(())
    }

    /// Runs the fsyncs that rolls left (those no produce ran already, e.g.
    /// of rolls by transaction markers or retention) without the logs'
    /// locks, then applies every log's `flush.ms`/`flush.messages`;
    /// returns how many logs were flushed.
    pub fn flush_due(&self, now: TimestampMs) -> Result<usize, StorageError> {
        let mut flushed = 0;
        for (_, log) in self.all_logs() {
            let jobs = lock(&log).take_seal_work();
            finish_rolls(&log, jobs)?;
            let mut log = lock(&log);
            if !log.is_closed() && log.flush_if_due(now)? {
                flushed += 1;
            }
        }
        Ok(flushed)
    }

    /// Applies every log's retention settings; returns segments deleted.
    pub fn enforce_retention_all(&self, now: TimestampMs) -> Result<usize, StorageError> {
        let mut deleted = 0;
        for (_, log) in self.all_logs() {
            let mut log = lock(&log);
            if !log.is_closed() {
                deleted += log.enforce_configured_retention(now)?;
            }
        }
        Ok(deleted)
    }

    /// Forgets idle producers in every log (`producer.id.expiration.ms`).
    pub fn expire_producers_all(&self, now: TimestampMs, expiration_ms: i64) -> usize {
        self.all_logs()
            .iter()
            .map(|(_, log)| lock(log).expire_producers(now, expiration_ms))
            .sum()
    }

    /// Closes every log, writes the checkpoints, then the clean-shutdown
    /// marker (fsynced). Logs are unusable afterwards.
    pub fn shutdown(&self) -> Result<(), StorageError> {
        self.cleaner.stop();
        for (tp, log) in self.all_logs() {
            if let Err(e) = lock(&log).close() {
                warn!(partition = %tp, error = %e, "closing log failed; not marking the shutdown clean");
                self.checkpoint_all()?;
                return Err(e);
            }
        }
        self.checkpoint_all()?;
        super::files::write_atomically(
            &self.dir.join(CLEAN_SHUTDOWN_FILE),
            br#"{"version":0,"brokerEpoch":-1}"#,
        )?;
        info!(dir = %self.dir.display(), "log manager shut down cleanly");
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::records::builder::test_batch;
    use crate::records::{BatchIter, Validation};

    fn append(log: &SharedLog, n: usize) -> Offset {
        let mut b = test_batch(n, 1_000, None);
        lock(log)
            .append(&mut b, TimestampMs(1_000))
            .unwrap()
            .first_offset
    }

    fn count_batches(log: &SharedLog) -> usize {
        let log = lock(log);
        let data = log
            .read(log.log_start_offset(), 1 << 20, None)
            .unwrap()
            .records;
        BatchIter::new(&data, Validation::Crc)
            .filter(|b| b.is_ok())
            .count()
    }

    fn cfg() -> LogConfig {
        LogConfig {
            segment_bytes: 64 * 1024,
            segment_index_bytes: 4096,
            ..LogConfig::default()
        }
    }

    #[test]
    fn handles_are_send_and_sync() {
        fn check<T: Send + Sync>() {}
        check::<LogManager>();
        check::<PartitionLog>();
        check::<SharedLog>();
        check::<crate::storage::mmap::MappedFile>();
    }

    #[test]
    fn dir_names_parse_after_the_last_dash() {
        assert_eq!(
            parse_partition_dir_name("orders-3"),
            Some(TopicPartition::new("orders", 3))
        );
        assert_eq!(
            parse_partition_dir_name("my.topic-with-dashes-12"),
            Some(TopicPartition::new("my.topic-with-dashes", 12))
        );
        assert_eq!(
            parse_partition_dir_name("orders--1"),
            Some(TopicPartition::new("orders-", 1))
        );
        assert_eq!(
            parse_partition_dir_name("__cluster_metadata-0"),
            Some(TopicPartition::new("__cluster_metadata", 0))
        );
        for bad in [
            "orders",
            "orders-",
            "-3",
            "orders-x",
            "a b-1",
            "t-99999999999",
            "meta.properties",
        ] {
            assert_eq!(parse_partition_dir_name(bad), None, "{bad}");
        }
        assert!(validate_topic_name("../etc").is_err());
        assert!(validate_topic_name("..").is_err());
        assert!(validate_topic_name("a/b").is_err());
        assert!(validate_topic_name(&"x".repeat(250)).is_err());
        assert!(validate_topic_name("ok_topic.v1-x").is_ok());
    }

    #[test]
    fn clean_shutdown_and_reopen() {
        let dir = tempfile::tempdir().unwrap();
        let a = TopicPartition::new("orders.v1-eu", 0);
        let b = TopicPartition::new("orders.v1-eu", 1);
        {
            let m = LogManager::open(dir.path(), cfg()).unwrap();
            assert!(!m.had_clean_shutdown());
            let la = m.get_or_create(&a, cfg()).unwrap();
            let lb = m.get_or_create(&b, cfg()).unwrap();
            assert!(Arc::ptr_eq(&la, &m.get_or_create(&a, cfg()).unwrap()));
            for _ in 0..5 {
                append(&la, 3);
            }
            append(&lb, 1);
            lock(&la).delete_records_before(Offset(4)).unwrap();
            m.shutdown().unwrap();
            assert!(dir.path().join(CLEAN_SHUTDOWN_FILE).exists());
            assert!(lock(&la)
                .append(&mut test_batch(1, 0, None), TimestampMs(0))
                .is_err());
        }
        let rp = read_checkpoint(&dir.path().join(RECOVERY_POINT_CHECKPOINT_FILE)).unwrap();
        assert_eq!(rp[&a], Offset(15));
        assert_eq!(rp[&b], Offset(1));
        let ls = read_checkpoint(&dir.path().join(LOG_START_OFFSET_CHECKPOINT_FILE)).unwrap();
        assert_eq!(ls[&a], Offset(4));

        let m = LogManager::open(dir.path(), cfg()).unwrap();
        assert!(m.had_clean_shutdown());
        assert!(
            !dir.path().join(CLEAN_SHUTDOWN_FILE).exists(),
            "marker is consumed at start"
        );
        assert_eq!(m.partitions(), vec![a.clone(), b.clone()]);
        let la = m.get(&a).unwrap();
        assert_eq!(lock(&la).log_start_offset(), Offset(4));
        assert_eq!(lock(&la).log_end_offset(), Offset(15));
        assert_eq!(lock(&la).load_report().recovered_segments, 0);
        assert_eq!(count_batches(&la), 4);
        assert_eq!(append(&la, 1), Offset(15));
    }

    #[test]
    fn unclean_shutdown_recovers_data() {
        let dir = tempfile::tempdir().unwrap();
        let tp = TopicPartition::new("t", 0);
        {
            let m = LogManager::open(dir.path(), cfg()).unwrap();
            let log = m.get_or_create(&tp, cfg()).unwrap();
            for _ in 0..10 {
                append(&log, 2);
            }
            m.flush_all().unwrap();
            m.checkpoint_all().unwrap();
            append(&log, 2);
            // kill -9: no shutdown.
        }
        let m = LogManager::open(dir.path(), cfg()).unwrap();
        assert!(!m.had_clean_shutdown());
        let log = m.get(&tp).unwrap();
        assert_eq!(lock(&log).log_end_offset(), Offset(22));
        assert_eq!(lock(&log).load_report().recovered_segments, 1);
        assert_eq!(count_batches(&log), 11);
    }

    #[test]
    fn foreign_entries_are_left_alone_and_delete_dirs_removed() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        std::fs::write(root.join("meta.properties"), b"node.id=1\n").unwrap();
        std::fs::create_dir_all(root.join(".klamm/state")).unwrap();
        std::fs::create_dir_all(root.join("not-a-partition")).unwrap();
        std::fs::write(root.join("not-a-partition/keep"), b"x").unwrap();
        std::fs::create_dir_all(root.join("lost+found")).unwrap();
        std::fs::create_dir_all(root.join("old-0.0123456789abcdef0123456789abcdef-delete"))
            .unwrap();
        std::fs::write(root.join("recovery-point-offset-checkpoint"), b"garbage").unwrap();
        let m = LogManager::open(root, cfg()).unwrap();
        assert!(m.partitions().is_empty());
        assert!(root.join("meta.properties").exists());
        assert!(root.join(".klamm/state").exists());
        assert!(root.join("not-a-partition/keep").exists());
        assert!(!root
            .join("old-0.0123456789abcdef0123456789abcdef-delete")
            .exists());
        m.checkpoint_all().unwrap();
        assert!(
            read_checkpoint(&root.join("recovery-point-offset-checkpoint"))
                .unwrap()
                .is_empty()
        );
    }

    #[test]
    fn kafka_internal_partitions_are_never_opened_and_keep_their_checkpoints() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        // Kafka's files, including ones the loader would otherwise remove
        // (an orphaned index, a stray .deleted) or rewrite (a torn log).
        let mut files = Vec::new();
        for name in ["__cluster_metadata-0", "__consumer_offsets-3", "__transaction_state-0", "__share_group_state-1"] {
            let d = root.join(name);
            std::fs::create_dir_all(&d).unwrap();
            for (file, bytes) in [
                ("00000000000000000000.log", &b"torn"[..]),
                ("00000000000000000007.index", &[0u8; 64][..]),
                ("00000000000000000000.log.deleted", &b"x"[..]),
                ("00000000000000000000.snapshot", &b"kafka"[..]),
                ("leader-epoch-checkpoint", &b"0\n1\n0 0\n"[..]),
            ] {
                std::fs::write(d.join(file), bytes).unwrap();
                files.push((d.join(file), bytes.to_vec()));
            }
        }
        let offsets = TopicPartition::new("__consumer_offsets", 3);
        let metadata = TopicPartition::new("__cluster_metadata", 0);
        let mut cp = HashMap::new();
        cp.insert(offsets.clone(), Offset(42));
        cp.insert(metadata.clone(), Offset(7));
        write_checkpoint(&root.join(RECOVERY_POINT_CHECKPOINT_FILE), &cp).unwrap();
        write_checkpoint(&root.join(LOG_START_OFFSET_CHECKPOINT_FILE), &cp).unwrap();

        let m = LogManager::open(root, cfg()).unwrap();
        assert!(m.partitions().is_empty());
        assert!(m.get_or_create(&offsets, cfg()).is_err(), "never a klamm log");
        let ours = TopicPartition::new("orders", 0);
        let log = m.get_or_create(&ours, cfg()).unwrap();
        append(&log, 2);
        m.shutdown().unwrap();
        for (path, bytes) in &files {
            assert_eq!(&std::fs::read(path).unwrap(), bytes, "{}", path.display());
        }
        for file in [RECOVERY_POINT_CHECKPOINT_FILE, LOG_START_OFFSET_CHECKPOINT_FILE] {
            let back = read_checkpoint(&root.join(file)).unwrap();
            assert_eq!(back.get(&offsets), Some(&Offset(42)), "{file}");
            assert_eq!(back.get(&metadata), Some(&Offset(7)), "{file}");
            assert!(back.contains_key(&ours), "{file}");
        }
    }

    #[test]
    fn delete_partition_keeps_outstanding_reads_valid() {
        let dir = tempfile::tempdir().unwrap();
        let m = LogManager::open(dir.path(), cfg()).unwrap();
        let tp = TopicPartition::new("gone", 2);
        let log = m.get_or_create(&tp, cfg()).unwrap();
        append(&log, 3);
        let held = lock(&log).read(Offset(0), 1 << 20, None).unwrap().records;
        assert!(m.delete(&tp).unwrap());
        assert!(!m.delete(&tp).unwrap());
        assert!(m.get(&tp).is_none());
        assert!(!dir.path().join("gone-2").exists());
        assert_eq!(BatchIter::new(&held, Validation::Crc).count(), 1);
        assert!(lock(&log).read(Offset(0), 10, None).is_err());
        let again = m.get_or_create(&tp, cfg()).unwrap();
        assert_eq!(lock(&again).log_end_offset(), Offset(0));
        assert!(m
            .get_or_create(&TopicPartition::new("../evil", 0), cfg())
            .is_err());
        assert!(m
            .get_or_create(&TopicPartition::new("t", -1), cfg())
            .is_err());
    }

    #[test]
    fn concurrent_appends_and_reads() {
        let dir = tempfile::tempdir().unwrap();
        let m = Arc::new(LogManager::open(dir.path(), cfg()).unwrap());
        let writers: Vec<_> = (0..4)
            .map(|p| {
                let m = Arc::clone(&m);
                std::thread::spawn(move || {
                    let log = m
                        .get_or_create(&TopicPartition::new("c", p), cfg())
                        .unwrap();
                    for _ in 0..50 {
                        append(&log, 2);
                    }
                })
            })
            .collect();
        let readers: Vec<_> = (0..2)
            .map(|_| {
                let m = Arc::clone(&m);
                std::thread::spawn(move || {
                    let mut held = Vec::new();
                    for i in 0..200 {
                        if let Some(log) = m.get(&TopicPartition::new("c", i % 4)) {
                            let log = lock(&log);
                            held.push(
                                log.read(log.log_start_offset(), 4096, None)
                                    .unwrap()
                                    .records,
                            );
                        }
                    }
                    // Slices taken under the lock stay valid and intact after it.
                    held.iter()
                        .all(|b| BatchIter::new(b, Validation::Crc).all(|r| r.is_ok()))
                })
            })
            .collect();
        for w in writers {
            w.join().unwrap();
        }
        for r in readers {
            assert!(r.join().unwrap());
        }
        for p in 0..4 {
            assert_eq!(
                lock(&m.get(&TopicPartition::new("c", p)).unwrap()).log_end_offset(),
                Offset(100)
            );
        }
    }

    #[test]
    fn periodic_helpers() {
        let dir = tempfile::tempdir().unwrap();
        let m = LogManager::open(dir.path(), cfg()).unwrap();
        let tp = TopicPartition::new("t", 0);
        let c = LogConfig {
            flush_interval_ms: 10,
            retention_ms: 1_000,
            ..cfg()
        };
        let log = m.get_or_create(&tp, c).unwrap();
        append(&log, 1);
        assert_eq!(m.flush_due(TimestampMs(i64::MAX / 2)).unwrap(), 1);
        assert_eq!(lock(&log).recovery_point(), Offset(1));
        assert_eq!(
            m.enforce_retention_all(TimestampMs(i64::MAX / 2)).unwrap(),
            1
        );
        assert_eq!(lock(&log).log_start_offset(), Offset(1));
        assert_eq!(m.expire_producers_all(TimestampMs(0), 1), 0);
    }
}
