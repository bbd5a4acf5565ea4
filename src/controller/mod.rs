//! The controller: the single writer of cluster metadata (topics with their
//! UUID ids, partition counts, leader epochs, topic configs, producer-id
//! blocks). Every change is appended to the durable `metadata_log` before
//! it is applied to an immutable `MetadataImage` that readers share through
//! an `Arc`, so request handlers never wait on a metadata write.
//! This node is the leader of every partition.

pub mod metadata_log;
pub mod topic_name;

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, RwLock};

use crate::protocol::{ErrorCode, Uuid};
use crate::security::authorizer::{AclBinding, AclFilter, AclIndex, MAX_ACLS};
use metadata_log::{MetadataLog, MetadataRecord};

/// Most partitions one topic may have.
pub const MAX_PARTITIONS_PER_TOPIC: i32 = 100_000;
/// Most partitions the whole broker may have.
pub const MAX_PARTITIONS_TOTAL: i64 = 1_000_000;
/// Kafka's controller writes at most this many metadata records for one
/// request (`QuorumController.MAX_RECORDS_PER_USER_OP`): CreateTopics counts
/// a TopicRecord, its ConfigRecords and one PartitionRecord per partition
/// for each valid topic, and over it every topic of the request gets
/// POLICY_VIOLATION with [`EXCESSIVE_BATCH_MESSAGE`]. CreatePartitions
/// counts one PartitionRecord per new partition; Kafka fails the topic that
/// overflows with UNKNOWN_SERVER_ERROR and no message (after committing the
/// partitions that fitted; klamm creates none of them). Nothing is created
/// for a refused topic.
pub const MAX_RECORDS_PER_USER_OP: usize = 10_000;
/// Kafka's message for a request over [`MAX_RECORDS_PER_USER_OP`].
pub const EXCESSIVE_BATCH_MESSAGE: &str = "Unable to perform excessively large batch operation.";
/// Kafka's controller refuses a CreateTopics request asking for more
/// partitions than this in all (`MAX_PARTITIONS_PER_BATCH`), before any
/// other check, with [`EXCESSIVE_PARTITIONS_MESSAGE`].
pub const MAX_PARTITIONS_PER_REQUEST: i64 = 10_000;
pub const EXCESSIVE_PARTITIONS_MESSAGE: &str = "Excessively large number of partitions per request.";
/// Producer ids are reserved durably in blocks of this many.
pub const PRODUCER_ID_BLOCK_SIZE: i64 = 1000;

/// One topic as the controller knows it.
#[derive(Clone, Debug, PartialEq)]
pub struct TopicInfo {
    pub name: String,
    pub id: Uuid,
    pub partitions: i32,
    pub leader_epoch: i32,
    /// Topic-level config overrides (Kafka's dynamic topic configs).
    pub configs: BTreeMap<String, String>,
}

impl TopicInfo {
    pub fn is_internal(&self) -> bool {
        topic_name::is_internal(&self.name)
    }
}

/// An immutable view of all metadata, swapped as a whole on each change.
#[derive(Clone, Debug, Default)]
pub struct MetadataImage {
    pub topics: BTreeMap<String, Arc<TopicInfo>>,
    pub ids: HashMap<Uuid, String>,
    pub total_partitions: i64,
    /// Dynamic configs of groups (GROUP resource), by group id; only
    /// groups with at least one.
    pub group_configs: BTreeMap<String, Arc<BTreeMap<String, String>>>,
    /// The ACL bindings (shared between images until one changes).
    pub acls: Arc<AclIndex>,
}

impl MetadataImage {
    pub fn topic(&self, name: &str) -> Option<&Arc<TopicInfo>> {
        self.topics.get(name)
    }

    pub fn topic_by_id(&self, id: &Uuid) -> Option<&Arc<TopicInfo>> {
        self.ids.get(id).and_then(|n| self.topics.get(n))
    }

    fn apply(&mut self, record: &MetadataRecord) {
        match record {
            MetadataRecord::Topic { name, id, partitions, leader_epoch, configs } => {
                if let Some(old) = self.topics.get(name) {
                    self.total_partitions -= old.partitions as i64;
                    self.ids.remove(&old.id);
                }
                self.total_partitions += *partitions as i64;
                self.ids.insert(*id, name.clone());
                self.topics.insert(
                    name.clone(),
                    Arc::new(TopicInfo {
                        name: name.clone(),
                        id: *id,
                        partitions: *partitions,
                        leader_epoch: *leader_epoch,
                        configs: configs.clone(),
                    }),
                );
            }
            MetadataRecord::RemoveTopic { id } => {
                if let Some(name) = self.ids.remove(id) {
                    if let Some(t) = self.topics.remove(&name) {
                        self.total_partitions -= t.partitions as i64;
                    }
                }
            }
            MetadataRecord::ProducerIds { .. } => {}
            MetadataRecord::GroupConfig { group, configs } => {
                if configs.is_empty() {
                    self.group_configs.remove(group);
                } else {
                    self.group_configs.insert(group.clone(), Arc::new(configs.clone()));
                }
            }
            MetadataRecord::Acl(b) => Arc::make_mut(&mut self.acls).insert(b.clone()),
            MetadataRecord::RemoveAcl(b) => Arc::make_mut(&mut self.acls).remove(b),
        }
    }

    /// A group's dynamic configs, if it has any.
    pub fn group_config(&self, group: &str) -> Option<&BTreeMap<String, String>> {
        self.group_configs.get(group).map(|c| &**c)
    }

    fn as_records(&self) -> Vec<MetadataRecord> {
        self.topics
            .values()
            .map(|t| MetadataRecord::Topic {
                name: t.name.clone(),
                id: t.id,
                partitions: t.partitions,
                leader_epoch: t.leader_epoch,
                configs: t.configs.clone(),
            })
            .chain(self.group_configs.iter().map(|(group, configs)| MetadataRecord::GroupConfig {
                group: group.clone(),
                configs: (**configs).clone(),
            }))
            .chain(self.acls.iter().cloned().map(MetadataRecord::Acl))
            .collect()
    }
}

/// A refused metadata change: the Kafka error code and message to return.
#[derive(Clone, Debug, PartialEq, thiserror::Error)]
#[error("{code:?}: {message}")]
pub struct ControllerError {
    pub code: ErrorCode,
    pub message: String,
}

impl ControllerError {
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        ControllerError { code, message: message.into() }
    }
}

impl From<std::io::Error> for ControllerError {
    fn from(e: std::io::Error) -> Self {
        // InvalidInput is a record the log refuses (too large): the
        // request's fault, not the disk's.
        let code = if e.kind() == std::io::ErrorKind::InvalidInput {
            ErrorCode::InvalidConfig
        } else {
            ErrorCode::KafkaStorageError
        };
        ControllerError::new(code, format!("metadata log: {e}"))
    }
}

struct Writer {
    log: MetadataLog,
    next_producer_id: i64,
    reserved_producer_ids_end: i64,
}

/// What `create_topic` needs to know.
#[derive(Clone, Debug)]
pub struct NewTopic {
    pub name: String,
    /// -1 = the broker's `num.partitions`.
    pub partitions: i32,
    /// -1 = the broker's `default.replication.factor`.
    pub replication_factor: i16,
    /// Manual replica assignment: partition -> broker ids (only `[node_id]` is valid here).
    pub assignments: Vec<(i32, Vec<i32>)>,
    pub configs: BTreeMap<String, String>,
}

pub struct Controller {
    node_id: i32,
    cluster_id: String,
    default_partitions: i32,
    default_replication_factor: i16,
    image: RwLock<Arc<MetadataImage>>,
    writer: Mutex<Writer>,
}

impl Controller {
    /// Opens the metadata log under `<log_dir>/.klamm/metadata`, replays it
    /// and establishes the cluster id (from `meta.properties`, created on
    /// first start; a configured `cluster_id` must match a stored one).
    pub fn open(
        log_dir: &Path,
        node_id: i32,
        configured_cluster_id: Option<&str>,
        default_partitions: i32,
        default_replication_factor: i16,
    ) -> std::io::Result<Controller> {
        std::fs::create_dir_all(log_dir)?;
        let cluster_id = meta_properties(log_dir, node_id, configured_cluster_id)?;
        let replay = MetadataLog::open(&metadata_dir(log_dir))?;
        let mut image = MetadataImage::default();
        let mut next_producer_id = 0;
        for r in &replay.records {
            if let MetadataRecord::ProducerIds { next_block_start } = r {
                next_producer_id = next_producer_id.max(*next_block_start);
            }
            image.apply(r);
        }
        Ok(Controller {
            node_id,
            cluster_id,
            default_partitions,
            default_replication_factor,
            image: RwLock::new(Arc::new(image)),
            writer: Mutex::new(Writer {
                log: replay.log,
                // Ids from the last durably reserved block may have been
                // handed out before a crash: start after it.
                next_producer_id,
                reserved_producer_ids_end: next_producer_id,
            }),
        })
    }

    pub fn node_id(&self) -> i32 {
        self.node_id
    }

    pub fn cluster_id(&self) -> &str {
        &self.cluster_id
    }

    /// The current metadata; cheap (an `Arc` clone).
    pub fn image(&self) -> Arc<MetadataImage> {
        self.image.read().unwrap_or_else(|e| e.into_inner()).clone()
    }

    fn commit(&self, w: &mut Writer, record: MetadataRecord) -> Result<(), ControllerError> {
        self.commit_all(w, vec![record])
    }

    /// Appends `records` with one fsync, then publishes them in one new
    /// image.
    fn commit_all(&self, w: &mut Writer, records: Vec<MetadataRecord>) -> Result<(), ControllerError> {
        w.log.append_all(&records)?;
        let mut guard = self.image.write().unwrap_or_else(|e| e.into_inner());
        let mut next = (**guard).clone();
        for record in &records {
            next.apply(record);
        }
        let next = Arc::new(next);
        *guard = next.clone();
        drop(guard);
        if w.log.wants_snapshot() {
            let mut records = next.as_records();
            records.push(MetadataRecord::ProducerIds { next_block_start: w.reserved_producer_ids_end });
            if let Err(e) = w.log.snapshot(&records) {
                tracing::warn!(error = %e, "metadata snapshot failed; the record log keeps growing");
            }
        }
        Ok(())
    }

    /// Checks a new topic as Kafka's controller does; `validate_only` stops
    /// before writing. Returns the created (or would-be) topic.
    pub fn create_topic(&self, t: NewTopic, validate_only: bool) -> Result<TopicInfo, ControllerError> {
        if validate_only {
            return self.check_new_topic(&self.image(), t);
        }
        self.create_topics(vec![t])
            .pop()
            .unwrap_or_else(|| Err(ControllerError::new(ErrorCode::UnknownServerError, "no result")))
    }

    /// Creates several topics with one durable write (one fsync) of the
    /// metadata log, each checked as [`Controller::create_topic`] checks
    /// one (against the topics before it in the batch too). Results are in
    /// input order; if the write fails, every topic the batch would have
    /// created fails with it.
    pub fn create_topics(&self, topics: Vec<NewTopic>) -> Vec<Result<TopicInfo, ControllerError>> {
        let mut w = self.writer.lock().unwrap_or_else(|e| e.into_inner());
        let mut next = (*self.image()).clone();
        let mut records = Vec::new();
        let mut results: Vec<Result<TopicInfo, ControllerError>> = Vec::with_capacity(topics.len());
        for t in topics {
            let checked = self.check_new_topic(&next, t);
            if let Ok(info) = &checked {
                let record = MetadataRecord::Topic {
                    name: info.name.clone(),
                    id: info.id,
                    partitions: info.partitions,
                    leader_epoch: info.leader_epoch,
                    configs: info.configs.clone(),
                };
                next.apply(&record);
                records.push(record);
            }
            results.push(checked);
        }
        if records.is_empty() {
            return results;
        }
        if let Err(e) = self.commit_all(&mut w, records) {
            for r in results.iter_mut().filter(|r| r.is_ok()) {
                *r = Err(e.clone());
            }
        }
        results
    }

    /// The topic `t` would create in `image`, or Kafka's error for it.
    fn check_new_topic(&self, image: &MetadataImage, t: NewTopic) -> Result<TopicInfo, ControllerError> {
        if let Err(msg) = topic_name::validate(&t.name) {
            return Err(ControllerError::new(ErrorCode::InvalidTopicException, msg));
        }
        if crate::types::is_kafka_internal_topic(&t.name) {
            // Kafka refuses `__cluster_metadata` this way; klamm also keeps
            // the others' names free, as their directories may be Kafka's.
            return Err(ControllerError::new(
                ErrorCode::InvalidRequest,
                format!("Creation of internal topic {} is prohibited.", t.name),
            ));
        }
        if image.topics.contains_key(&t.name) {
            return Err(ControllerError::new(
                ErrorCode::TopicAlreadyExists,
                format!("Topic '{}' already exists.", t.name),
            ));
        }
        let unified = topic_name::unify_collision_chars(&t.name);
        if let Some(other) = image.topics.keys().find(|n| topic_name::unify_collision_chars(n) == unified) {
            return Err(ControllerError::new(
                ErrorCode::InvalidTopicException,
                format!("Topic '{}' collides with existing topic: {other}", t.name),
            ));
        }
        let partitions = if !t.assignments.is_empty() {
            if t.partitions != -1 || t.replication_factor != -1 {
                return Err(ControllerError::new(
                    ErrorCode::InvalidRequest,
                    "Both numPartitions or replicationFactor and replicasAssignments were set. Both cannot be used at the same time.",
                ));
            }
            for (i, (p, replicas)) in t.assignments.iter().enumerate() {
                if *p != i as i32 {
                    return Err(ControllerError::new(
                        ErrorCode::InvalidReplicaAssignment,
                        "Partitions should be a consecutive 0-based integer sequence",
                    ));
                }
                if replicas.as_slice() != [self.node_id] {
                    return Err(ControllerError::new(
                        ErrorCode::InvalidReplicaAssignment,
                        format!("The manual partition assignment includes broker(s) other than {}: {replicas:?}", self.node_id),
                    ));
                }
            }
            t.assignments.len() as i32
        } else {
            let partitions = if t.partitions == -1 { self.default_partitions } else { t.partitions };
            if partitions <= 0 {
                return Err(ControllerError::new(
                    ErrorCode::InvalidPartitions,
                    "Number of partitions was set to an invalid non-positive value.",
                ));
            }
            let rf = if t.replication_factor == -1 { self.default_replication_factor } else { t.replication_factor };
            if rf <= 0 {
                return Err(ControllerError::new(
                    ErrorCode::InvalidReplicationFactor,
                    "Replication factor must be larger than 0, or -1 to use the default value.",
                ));
            }
            if rf != 1 {
                return Err(ControllerError::new(
                    ErrorCode::InvalidReplicationFactor,
                    format!(
                        "Unable to replicate the partition {rf} time(s): The target replication factor of {rf} cannot be reached because only 1 broker(s) are registered."
                    ),
                ));
            }
            partitions
        };
        if partitions > MAX_PARTITIONS_PER_TOPIC {
            return Err(ControllerError::new(
                ErrorCode::InvalidPartitions,
                format!("klamm allows at most {MAX_PARTITIONS_PER_TOPIC} partitions per topic."),
            ));
        }
        if image.total_partitions + partitions as i64 > MAX_PARTITIONS_TOTAL {
            return Err(ControllerError::new(
                ErrorCode::PolicyViolation,
                format!("klamm allows at most {MAX_PARTITIONS_TOTAL} partitions in all."),
            ));
        }
        let mut id = crate::util::random_uuid();
        while image.ids.contains_key(&id) {
            id = crate::util::random_uuid();
        }
        Ok(TopicInfo { name: t.name, id, partitions, leader_epoch: 0, configs: t.configs })
    }

    /// Deletes a topic by name; returns what it was.
    pub fn delete_topic(&self, name: &str) -> Result<Arc<TopicInfo>, ControllerError> {
        let mut w = self.writer.lock().unwrap_or_else(|e| e.into_inner());
        let Some(t) = self.image().topic(name).cloned() else {
            return Err(ControllerError::new(
                ErrorCode::UnknownTopicOrPartition,
                "This server does not host this topic-partition.",
            ));
        };
        self.commit(&mut w, MetadataRecord::RemoveTopic { id: t.id })?;
        Ok(t)
    }

    /// Grows a topic to `count` partitions (Kafka never shrinks them).
    pub fn create_partitions(&self, name: &str, count: i32, validate_only: bool) -> Result<(), ControllerError> {
        let mut w = self.writer.lock().unwrap_or_else(|e| e.into_inner());
        let image = self.image();
        let Some(t) = image.topic(name) else {
            return Err(ControllerError::new(
                ErrorCode::UnknownTopicOrPartition,
                "This server does not host this topic-partition.",
            ));
        };
        if count < t.partitions {
            return Err(ControllerError::new(
                ErrorCode::InvalidPartitions,
                format!("The topic {name} currently has {} partition(s); {count} would not be an increase.", t.partitions),
            ));
        }
        if count == t.partitions {
            return Err(ControllerError::new(
                ErrorCode::InvalidPartitions,
                format!("Topic already has {} partition(s).", t.partitions),
            ));
        }
        if count > MAX_PARTITIONS_PER_TOPIC
            || image.total_partitions + (count - t.partitions) as i64 > MAX_PARTITIONS_TOTAL
        {
            return Err(ControllerError::new(
                ErrorCode::InvalidPartitions,
                format!("klamm allows at most {MAX_PARTITIONS_PER_TOPIC} partitions per topic and {MAX_PARTITIONS_TOTAL} in all."),
            ));
        }
        if validate_only {
            return Ok(());
        }
        let rec = MetadataRecord::Topic {
            name: t.name.clone(),
            id: t.id,
            partitions: count,
            leader_epoch: t.leader_epoch,
            configs: t.configs.clone(),
        };
        self.commit(&mut w, rec)
    }

    /// Replaces a topic's config overrides with `configs`.
    pub fn set_topic_configs(&self, name: &str, configs: BTreeMap<String, String>) -> Result<(), ControllerError> {
        let mut w = self.writer.lock().unwrap_or_else(|e| e.into_inner());
        let Some(t) = self.image().topic(name).cloned() else {
            return Err(ControllerError::new(
                ErrorCode::UnknownTopicOrPartition,
                "This server does not host this topic-partition.",
            ));
        };
        let rec = MetadataRecord::Topic {
            name: t.name.clone(),
            id: t.id,
            partitions: t.partitions,
            leader_epoch: t.leader_epoch,
            configs,
        };
        self.commit(&mut w, rec)
    }

    /// Replaces a group's dynamic configs with `configs` (empty: none).
    pub fn set_group_configs(&self, group: &str, configs: BTreeMap<String, String>) -> Result<(), ControllerError> {
        let mut w = self.writer.lock().unwrap_or_else(|e| e.into_inner());
        self.commit(&mut w, MetadataRecord::GroupConfig { group: group.to_string(), configs })
    }

    /// Adds ACL bindings (each checked by the caller; an existing one is
    /// a no-op), durably and all at once.
    pub fn create_acls(&self, bindings: Vec<AclBinding>) -> Result<(), ControllerError> {
        let mut w = self.writer.lock().unwrap_or_else(|e| e.into_inner());
        let image = self.image();
        let mut seen = std::collections::HashSet::new();
        let new: Vec<MetadataRecord> = bindings
            .into_iter()
            .filter(|b| !image.acls.contains(b) && seen.insert(b.clone()))
            .map(MetadataRecord::Acl)
            .collect();
        if new.is_empty() {
            return Ok(());
        }
        if image.acls.len() + new.len() > MAX_ACLS {
            return Err(ControllerError::new(
                ErrorCode::PolicyViolation,
                format!("at most {MAX_ACLS} ACL bindings may exist"),
            ));
        }
        self.commit_all(&mut w, new)
    }

    /// Deletes, for each filter, the bindings it matches; returns them per
    /// filter (a binding matched by two filters is reported by both, as
    /// Kafka does).
    pub fn delete_acls(&self, filters: &[AclFilter]) -> Result<Vec<Vec<AclBinding>>, ControllerError> {
        let mut w = self.writer.lock().unwrap_or_else(|e| e.into_inner());
        let image = self.image();
        let matched: Vec<Vec<AclBinding>> =
            filters.iter().map(|f| image.acls.iter().filter(|b| f.matches(b)).cloned().collect()).collect();
        let gone: std::collections::BTreeSet<&AclBinding> = matched.iter().flatten().collect();
        if !gone.is_empty() {
            self.commit_all(&mut w, gone.into_iter().cloned().map(MetadataRecord::RemoveAcl).collect())?;
        }
        Ok(matched)
    }

    /// A producer id never handed out before, even across restarts.
    pub fn allocate_producer_id(&self) -> Result<i64, ControllerError> {
        let mut w = self.writer.lock().unwrap_or_else(|e| e.into_inner());
        if w.next_producer_id >= w.reserved_producer_ids_end {
            let end = w.next_producer_id + PRODUCER_ID_BLOCK_SIZE;
            let rec = MetadataRecord::ProducerIds { next_block_start: end };
            w.log.append(&rec)?;
            w.reserved_producer_ids_end = end;
        }
        let id = w.next_producer_id;
        w.next_producer_id += 1;
        Ok(id)
    }
}

fn metadata_dir(log_dir: &Path) -> PathBuf {
    log_dir.join(".klamm").join("metadata")
}

/// Whether `log_dir` holds klamm metadata (any record, even only a
/// producer-id reservation). Blocking; may truncate a torn tail of the
/// metadata log, as [`Controller::open`] would.
pub fn has_metadata(log_dir: &Path) -> std::io::Result<bool> {
    let dir = metadata_dir(log_dir);
    if !dir.exists() {
        return Ok(false);
    }
    Ok(!MetadataLog::open(&dir)?.records.is_empty())
}

/// Writes the first metadata of `log_dir` in one step (adopting another
/// broker's data): `topics` with their ids, epochs and configs, and producer
/// ids reserved below `next_producer_id`. They go into a staging directory
/// as one snapshot which is then renamed into place, so a crash leaves
/// either no metadata (the next start adopts again) or all of it. Refuses
/// if klamm metadata exists.
pub fn write_initial_metadata(log_dir: &Path, topics: &[TopicInfo], next_producer_id: i64) -> std::io::Result<()> {
    if has_metadata(log_dir)? {
        return Err(std::io::Error::new(
            std::io::ErrorKind::AlreadyExists,
            format!("{} already holds klamm metadata", metadata_dir(log_dir).display()),
        ));
    }
    let dir = metadata_dir(log_dir);
    let parent = dir.parent().unwrap_or(log_dir).to_path_buf();
    let staging = parent.join("metadata.adopting");
    if staging.exists() {
        std::fs::remove_dir_all(&staging)?;
    }
    let mut records: Vec<MetadataRecord> = topics
        .iter()
        .map(|t| MetadataRecord::Topic {
            name: t.name.clone(),
            id: t.id,
            partitions: t.partitions,
            leader_epoch: t.leader_epoch,
            configs: t.configs.clone(),
        })
        .collect();
    records.push(MetadataRecord::ProducerIds { next_block_start: next_producer_id.max(0) });
    {
        let mut replay = MetadataLog::open(&staging)?;
        replay.log.snapshot(&records)?;
    }
    if dir.exists() {
        std::fs::remove_dir_all(&dir)?;
    }
    std::fs::rename(&staging, &dir)?;
    crate::util::fsync_dir(&parent)
}

/// Reads or creates Kafka's `meta.properties` in the log dir and returns
/// the cluster id.
fn meta_properties(log_dir: &Path, node_id: i32, configured: Option<&str>) -> std::io::Result<String> {
    let path = log_dir.join("meta.properties");
    let invalid = |msg: String| std::io::Error::new(std::io::ErrorKind::InvalidData, msg);
    if let Ok(text) = std::fs::read_to_string(&path) {
        let mut props = HashMap::new();
        for line in text.lines() {
            let line = line.trim();
            if line.starts_with('#') || line.is_empty() {
                continue;
            }
            if let Some((k, v)) = line.split_once('=') {
                props.insert(k.trim().to_string(), v.trim().to_string());
            }
        }
        let stored = props
            .get("cluster.id")
            .cloned()
            .ok_or_else(|| invalid(format!("{} has no cluster.id", path.display())))?;
        if let Some(c) = configured {
            if c != stored {
                return Err(invalid(format!(
                    "CLUSTER_ID {c} does not match the cluster.id {stored} stored in {}",
                    path.display()
                )));
            }
        }
        if let Some(stored_node) = props.get("node.id") {
            if stored_node != &node_id.to_string() {
                return Err(invalid(format!(
                    "node.id {node_id} does not match the node.id {stored_node} stored in {}",
                    path.display()
                )));
            }
        }
        return Ok(stored);
    }
    let cluster_id = match configured {
        Some(c) => c.to_string(),
        None => crate::util::random_uuid().to_base64(),
    };
    let directory_id = crate::util::random_uuid().to_base64();
    let text = format!(
        "#\n#Written by klamm\nnode.id={node_id}\ndirectory.id={directory_id}\nversion=1\ncluster.id={cluster_id}\n"
    );
    crate::util::write_atomic(&path, text.as_bytes())?;
    Ok(cluster_id)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn new_topic(name: &str, partitions: i32) -> NewTopic {
        NewTopic { name: name.into(), partitions, replication_factor: -1, assignments: vec![], configs: BTreeMap::new() }
    }

    #[test]
    fn topics_survive_reopen() {
        let dir = tempfile::tempdir().unwrap();
        let (id, cluster) = {
            let c = Controller::open(dir.path(), 1, None, 1, 1).unwrap();
            let t = c.create_topic(new_topic("orders", 3), false).unwrap();
            c.create_topic(new_topic("gone", -1), false).unwrap();
            c.delete_topic("gone").unwrap();
            c.create_partitions("orders", 6, false).unwrap();
            (t.id, c.cluster_id().to_string())
        };
        let c = Controller::open(dir.path(), 1, None, 1, 1).unwrap();
        assert_eq!(c.cluster_id(), cluster);
        let img = c.image();
        assert_eq!(img.topics.len(), 1);
        let t = img.topic("orders").unwrap();
        assert_eq!((t.id, t.partitions), (id, 6));
        assert_eq!(img.topic_by_id(&id).unwrap().name, "orders");
        assert_eq!(img.total_partitions, 6);
    }

    #[test]
    fn kafka_errors() {
        let dir = tempfile::tempdir().unwrap();
        let c = Controller::open(dir.path(), 1, None, 1, 1).unwrap();
        let err = |r: Result<TopicInfo, ControllerError>| r.unwrap_err().code;
        assert_eq!(err(c.create_topic(new_topic("bad name", 1), false)), ErrorCode::InvalidTopicException);
        let mut rf3 = new_topic("x", 1);
        rf3.replication_factor = 3;
        assert_eq!(err(c.create_topic(rf3, false)), ErrorCode::InvalidReplicationFactor);
        assert_eq!(err(c.create_topic(new_topic("x", 0), false)), ErrorCode::InvalidPartitions);
        c.create_topic(new_topic("a.b", 1), false).unwrap();
        assert_eq!(err(c.create_topic(new_topic("a.b", 1), false)), ErrorCode::TopicAlreadyExists);
        assert_eq!(err(c.create_topic(new_topic("a_b", 1), false)), ErrorCode::InvalidTopicException);
        assert_eq!(c.create_partitions("a.b", 1, false).unwrap_err().code, ErrorCode::InvalidPartitions);
        assert_eq!(c.delete_topic("nope").unwrap_err().code, ErrorCode::UnknownTopicOrPartition);
        for internal in crate::types::KAFKA_INTERNAL_TOPICS {
            assert_eq!(err(c.create_topic(new_topic(internal, 1), false)), ErrorCode::InvalidRequest);
        }
        // validate_only writes nothing.
        c.create_topic(new_topic("v", 1), true).unwrap();
        assert!(c.image().topic("v").is_none());
    }

    #[test]
    fn initial_metadata_is_written_once_and_replays() {
        let dir = tempfile::tempdir().unwrap();
        assert!(!has_metadata(dir.path()).unwrap());
        let topic = |name: &str, id: u8, partitions| TopicInfo {
            name: name.into(),
            id: Uuid([id; 16]),
            partitions,
            leader_epoch: 7,
            configs: [("retention.ms".to_string(), "60000".to_string())].into(),
        };
        let topics = [topic("orders", 1, 3), topic("audit", 2, 1)];
        // A leftover staging directory from a crash is replaced.
        std::fs::create_dir_all(dir.path().join(".klamm/metadata.adopting/junk")).unwrap();
        write_initial_metadata(dir.path(), &topics, 5000).unwrap();
        assert!(has_metadata(dir.path()).unwrap());
        assert!(!dir.path().join(".klamm/metadata.adopting").exists());
        assert!(write_initial_metadata(dir.path(), &topics, 0).is_err(), "only once");
        let c = Controller::open(dir.path(), 1, None, 1, 1).unwrap();
        let img = c.image();
        assert_eq!(img.topics.len(), 2);
        assert_eq!(**img.topic("orders").unwrap(), topics[0]);
        assert_eq!(img.topic_by_id(&Uuid([2; 16])).unwrap().name, "audit");
        assert_eq!(img.total_partitions, 4);
        assert_eq!(c.allocate_producer_id().unwrap(), 5000);
        c.create_topic(new_topic("more", 1), false).unwrap();
        drop(c);
        let c = Controller::open(dir.path(), 1, None, 1, 1).unwrap();
        assert_eq!(c.image().topics.len(), 3);
        assert!(c.allocate_producer_id().unwrap() > 5000);
    }

    #[test]
    fn producer_ids_are_never_reused() {
        let dir = tempfile::tempdir().unwrap();
        let first = {
            let c = Controller::open(dir.path(), 1, None, 1, 1).unwrap();
            (0..5).map(|_| c.allocate_producer_id().unwrap()).collect::<Vec<_>>()
        };
        let c = Controller::open(dir.path(), 1, None, 1, 1).unwrap();
        let next = c.allocate_producer_id().unwrap();
        assert!(next > *first.iter().max().unwrap());
    }

    #[test]
    fn cluster_id_must_match() {
        let dir = tempfile::tempdir().unwrap();
        Controller::open(dir.path(), 1, Some("abc"), 1, 1).unwrap();
        assert!(Controller::open(dir.path(), 1, Some("other"), 1, 1).is_err());
        assert!(Controller::open(dir.path(), 2, None, 1, 1).is_err());
        assert_eq!(Controller::open(dir.path(), 1, None, 1, 1).unwrap().cluster_id(), "abc");
    }

    #[test]
    fn topics_are_created_in_batches_checked_one_after_another() {
        let dir = tempfile::tempdir().unwrap();
        {
            let c = Controller::open(dir.path(), 1, None, 1, 1).unwrap();
            let results = c.create_topics(vec![
                new_topic("a", 2),
                new_topic("b", 1),
                new_topic("a", 1),
                new_topic("bad name", 1),
                new_topic("a_b", 1),
                new_topic("a.b", 1),
            ]);
            let codes: Vec<ErrorCode> = results.iter().map(|r| r.as_ref().map(|_| ErrorCode::None).unwrap_or_else(|e| e.code)).collect();
            assert_eq!(
                codes,
                vec![
                    ErrorCode::None,
                    ErrorCode::None,
                    ErrorCode::TopicAlreadyExists,
                    ErrorCode::InvalidTopicException,
                    ErrorCode::None,
                    ErrorCode::InvalidTopicException, // collides with a_b, created just before
                ]
            );
            assert_eq!(c.image().total_partitions, 4);
        }
        let c = Controller::open(dir.path(), 1, None, 1, 1).unwrap();
        let names: Vec<String> = c.image().topics.keys().cloned().collect();
        assert_eq!(names, ["a", "a_b", "b"]);
    }

}
