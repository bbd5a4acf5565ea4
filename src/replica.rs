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

use std::collections::HashMap;
use std::sync::{Arc, Mutex, RwLock};

use tokio::sync::Notify;
use tracing::{info, warn};

use crate::config::topic::{MessageTimestampType, TopicConfig};
use crate::config::BrokerConfig;
use crate::controller::{MetadataImage, TopicInfo};
use crate::protocol::{ErrorCode, Uuid};
use crate::records::TimestampType;
use crate::storage::{partition_dir_name, write_atomically, LogConfig, LogManager, SharedLog, StorageError, NEVER};
use crate::types::TopicPartition;

/// Kafka's per-partition file naming the topic id.
pub const PARTITION_METADATA_FILE: &str = "partition.metadata";

/// One partition this node leads.
pub struct Partition {
    pub tp: TopicPartition,
    pub topic_id: Uuid,
    pub log: SharedLog,
}

/// All partition logs, in step with the metadata image.
pub struct ReplicaManager {
    logs: LogManager,
    broker_config: Arc<BrokerConfig>,
    partitions: RwLock<HashMap<TopicPartition, Arc<Partition>>>,
    /// Serialises structural changes (create, delete, reconfigure).
    changes: Mutex<()>,
    /// Notified after every append; long-polling fetches wait on it.
    appended: Notify,
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
        retention_ms: t.retention_ms,
        retention_bytes: t.retention_bytes,
        max_message_bytes: t.max_message_bytes,
        message_timestamp_type: match t.message_timestamp_type {
            MessageTimestampType::CreateTime => TimestampType::CreateTime,
            MessageTimestampType::LogAppendTime => TimestampType::LogAppendTime,
        },
        preallocate: t.preallocate,
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
    /// Opens (and if needed recovers) every log under the broker's log
    /// directory, then reconciles them with `image`. Blocking.
    pub fn open(broker_config: Arc<BrokerConfig>, image: &MetadataImage) -> Result<ReplicaManager, StorageError> {
        let defaults = log_config(&broker_config.topic_defaults());
        let logs = LogManager::open(&broker_config.log_dir, defaults)?;
        let rm = ReplicaManager {
            logs,
            broker_config,
            partitions: RwLock::new(HashMap::new()),
            changes: Mutex::new(()),
            appended: Notify::new(),
        };
        rm.reconcile(image)?;
        Ok(rm)
    }

    pub fn log_manager(&self) -> &LogManager {
        &self.logs
    }

    /// Woken after every append.
    pub fn appended(&self) -> &Notify {
        &self.appended
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
    /// name), and applies each topic's config. Blocking.
    pub fn reconcile(&self, image: &MetadataImage) -> Result<(), StorageError> {
        let _guard = lock(&self.changes);
        // Delete logs whose topic is gone or was replaced.
        for tp in self.logs.partitions() {
            let keep = match image.topic(&tp.topic) {
                Some(t) if tp.partition < t.partitions => {
                    match self.stored_topic_id(&tp) {
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
                        let part = Arc::new(Partition { tp: tp.clone(), topic_id: topic.id, log });
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
        let path = self.logs.dir().join(partition_dir_name(tp)).join(PARTITION_METADATA_FILE);
        let text = std::fs::read_to_string(path).ok()?;
        text.lines().find_map(|l| l.strip_prefix("topic_id:")).and_then(|v| Uuid::from_base64(v.trim()))
    }

    fn write_topic_id(&self, tp: &TopicPartition, id: Uuid) -> Result<(), StorageError> {
        let path = self.logs.dir().join(partition_dir_name(tp)).join(PARTITION_METADATA_FILE);
        let text = format!("version: 0\ntopic_id: {}\n", id.to_base64());
        write_atomically(&path, text.as_bytes())
    }

    /// Wakes every waiting fetch (after an append).
    pub fn notify_appended(&self) {
        self.appended.notify_waiters();
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

        // The topic was deleted and recreated (new id) while we were down.
        let rm = ReplicaManager::open(config, &image(Some(topic(2, 1)))).unwrap();
        assert_eq!(rm.all().len(), 1);
        assert_eq!(rm.get(&tp).unwrap().topic_id, Uuid([2; 16]));
        assert_eq!(rm.get(&tp).unwrap().log.lock().unwrap().log_end_offset().0, 0, "the old log is gone");
        rm.reconcile(&image(None)).unwrap();
        assert!(rm.all().is_empty());
        assert!(!dir.path().join("t-0").exists());
    }
}
