//! Topic-level configs: the table of Kafka 4.0 topic config names with types
//! and validators ([`TOPIC_CONFIG_DEFS`]), validation for CreateTopics /
//! AlterConfigs ([`validate_topic_config`]), the effective values with
//! sources and synonyms for DescribeConfigs ([`effective_topic_configs`]),
//! and the typed [`TopicConfig`] the storage layer reads.

use std::collections::BTreeMap;

use super::broker::BrokerConfig;
use super::defs::{
    broker_config_def, broker_synonyms_of_topic_config, CLEANUP_POLICIES, COMPRESSION_TYPES,
    MIN_SEGMENT_BYTES, TIMESTAMP_TYPES,
};
use super::error::ConfigError;
use super::value::{parse_value, ConfigType, ConfigValue, Validator};
use super::{ConfigSource, ConfigSynonym, MAX_CONFIG_NAME_BYTES, MAX_SETTINGS_PER_SOURCE};

/// One topic-level config.
#[derive(Clone, Copy, Debug)]
pub struct TopicConfigDef {
    pub name: &'static str,
    pub ty: ConfigType,
    pub validator: Validator,
    /// Default for configs no broker setting provides (tiered storage,
    /// throttling); `None` means the default comes from the broker config.
    pub fixed_default: Option<&'static str>,
    pub doc: &'static str,
}

const fn def(
    name: &'static str,
    ty: ConfigType,
    validator: Validator,
    fixed_default: Option<&'static str>,
    doc: &'static str,
) -> TopicConfigDef {
    TopicConfigDef {
        name,
        ty,
        validator,
        fixed_default,
        doc,
    }
}

use ConfigType::String as Str;
use ConfigType::{Boolean, Double, Int, List, Long};
use Validator::{AtLeast, Between, DoubleBetween, ListOf, OneOf};

/// Every topic-level config of Kafka 4.0, by name.
#[rustfmt::skip]
pub static TOPIC_CONFIG_DEFS: &[TopicConfigDef] = &[
    def("cleanup.policy", List, ListOf(CLEANUP_POLICIES), None,
        "delete, compact, or both: what happens to segments beyond retention."),
    def("compression.gzip.level", Int, Validator::GzipLevel, None,
        "Gzip level used when compression.type is gzip."),
    def("compression.lz4.level", Int, Between(1, 17), None,
        "LZ4 level used when compression.type is lz4."),
    def("compression.type", Str, OneOf(COMPRESSION_TYPES), None,
        "Compression of stored batches; producer keeps the producer's codec."),
    def("compression.zstd.level", Int, Between(-131072, 22), None,
        "Zstd level used when compression.type is zstd."),
    def("delete.retention.ms", Long, AtLeast(0), None,
        "How long tombstones are kept in a compacted topic."),
    def("file.delete.delay.ms", Long, AtLeast(0), None,
        "Delay before a deleted segment's files are removed."),
    def("flush.messages", Long, AtLeast(1), None,
        "Force an fsync after this many messages."),
    def("flush.ms", Long, AtLeast(0), None,
        "Force an fsync after this many milliseconds."),
    def("follower.replication.throttled.replicas", List, Validator::ThrottledReplicas, Some(""),
        "Replicas whose follower replication is throttled (no effect on a single node)."),
    def("index.interval.bytes", Int, AtLeast(0), None,
        "Bytes of log between two offset index entries."),
    def("leader.replication.throttled.replicas", List, Validator::ThrottledReplicas, Some(""),
        "Replicas whose leader replication is throttled (no effect on a single node)."),
    def("local.retention.bytes", Long, AtLeast(-2), Some("-2"),
        "Local retention with tiered storage (not supported; -2 follows retention.bytes)."),
    def("local.retention.ms", Long, AtLeast(-2), Some("-2"),
        "Local retention with tiered storage (not supported; -2 follows retention.ms)."),
    def("max.compaction.lag.ms", Long, AtLeast(1), None,
        "Longest time a record stays uncompacted."),
    def("max.message.bytes", Int, AtLeast(0), None,
        "Largest record batch accepted, in bytes."),
    def("message.timestamp.after.max.ms", Long, AtLeast(0), None,
        "With CreateTime, reject records stamped more than this far in the future."),
    def("message.timestamp.before.max.ms", Long, AtLeast(0), None,
        "With CreateTime, reject records stamped more than this far in the past."),
    def("message.timestamp.type", Str, OneOf(TIMESTAMP_TYPES), None,
        "CreateTime (the producer's timestamp) or LogAppendTime (the broker's)."),
    def("min.cleanable.dirty.ratio", Double, DoubleBetween(0.0, 1.0), None,
        "Least dirty/total ratio before the log is compacted."),
    def("min.compaction.lag.ms", Long, AtLeast(0), None,
        "Least time a record stays uncompacted."),
    def("min.insync.replicas", Int, AtLeast(1), None,
        "Replicas that must acknowledge an acks=all write."),
    def("preallocate", Boolean, Validator::None, None,
        "Preallocate segment files when they are created."),
    def("remote.log.copy.disable", Boolean, Validator::None, Some("false"),
        "Stop copying to tiered storage (not supported)."),
    def("remote.log.delete.on.disable", Boolean, Validator::None, Some("false"),
        "Delete tiered data when tiered storage is turned off (not supported)."),
    def("remote.storage.enable", Boolean, Validator::None, Some("false"),
        "Tiered storage for this topic (not supported: must stay false)."),
    def("retention.bytes", Long, Validator::None, None,
        "Delete old segments when a partition grows beyond this many bytes (-1: no limit)."),
    def("retention.ms", Long, AtLeast(-1), None,
        "Delete segments older than this many milliseconds (-1: no limit)."),
    def("segment.bytes", Int, AtLeast(MIN_SEGMENT_BYTES), None,
        "Largest size of one segment file, in bytes."),
    def("segment.index.bytes", Int, AtLeast(4), None,
        "Largest size of one offset index file, in bytes."),
    def("segment.jitter.ms", Long, AtLeast(0), None,
        "Random jitter subtracted from segment.ms."),
    def("segment.ms", Long, AtLeast(1), None,
        "Roll a new segment after this many milliseconds."),
    def("unclean.leader.election.enable", Boolean, Validator::None, None,
        "Allow out-of-sync replicas to become leader (no effect on a single node)."),
];

/// Lookup helpers over [`TOPIC_CONFIG_DEFS`].
pub struct TopicConfigDefs;

impl TopicConfigDefs {
    /// All topic configs, sorted by name.
    pub fn all() -> &'static [TopicConfigDef] {
        TOPIC_CONFIG_DEFS
    }

    /// The topic config called `name`.
    pub fn get(name: &str) -> Option<&'static TopicConfigDef> {
        TOPIC_CONFIG_DEFS.iter().find(|d| d.name == name)
    }

    /// Broker configs providing the default of `name`, highest priority
    /// first (e.g. `retention.ms` -> `log.retention.ms`,
    /// `log.retention.minutes`, `log.retention.hours`).
    pub fn broker_synonyms(name: &str) -> Vec<&'static str> {
        broker_synonyms_of_topic_config(name)
    }
}

/// `message.timestamp.type`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
pub enum MessageTimestampType {
    #[default]
    CreateTime,
    LogAppendTime,
}

impl MessageTimestampType {
    pub fn parse(s: &str) -> Option<MessageTimestampType> {
        match s {
            "CreateTime" => Some(MessageTimestampType::CreateTime),
            "LogAppendTime" => Some(MessageTimestampType::LogAppendTime),
            _ => None,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            MessageTimestampType::CreateTime => "CreateTime",
            MessageTimestampType::LogAppendTime => "LogAppendTime",
        }
    }
}

/// `compression.type` (topic or broker level): a codec, or `producer`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
pub enum CompressionType {
    Uncompressed,
    Zstd,
    Lz4,
    Snappy,
    Gzip,
    /// Keep whatever codec the producer used.
    #[default]
    Producer,
}

impl CompressionType {
    pub fn parse(s: &str) -> Option<CompressionType> {
        match s {
            "uncompressed" => Some(CompressionType::Uncompressed),
            "zstd" => Some(CompressionType::Zstd),
            "lz4" => Some(CompressionType::Lz4),
            "snappy" => Some(CompressionType::Snappy),
            "gzip" => Some(CompressionType::Gzip),
            "producer" => Some(CompressionType::Producer),
            _ => None,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            CompressionType::Uncompressed => "uncompressed",
            CompressionType::Zstd => "zstd",
            CompressionType::Lz4 => "lz4",
            CompressionType::Snappy => "snappy",
            CompressionType::Gzip => "gzip",
            CompressionType::Producer => "producer",
        }
    }
}

/// `cleanup.policy`: which of deletion and compaction apply. Both false (an
/// empty list) keeps everything.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct CleanupPolicy {
    pub delete: bool,
    pub compact: bool,
}

impl Default for CleanupPolicy {
    fn default() -> Self {
        CleanupPolicy {
            delete: true,
            compact: false,
        }
    }
}

impl CleanupPolicy {
    /// From the list items (already validated to be `delete`/`compact`).
    pub fn from_items(items: &[String]) -> CleanupPolicy {
        CleanupPolicy {
            delete: items.iter().any(|i| i == "delete"),
            compact: items.iter().any(|i| i == "compact"),
        }
    }

    /// Kafka's list rendering.
    pub fn to_kafka_string(self) -> String {
        match (self.compact, self.delete) {
            (true, true) => "compact,delete".into(),
            (true, false) => "compact".into(),
            (false, true) => "delete".into(),
            (false, false) => String::new(),
        }
    }
}

/// The effective configuration of one topic, typed, for the storage layer.
/// [`TopicConfig::default`] is Kafka 4.0's default; real topics get theirs
/// from [`TopicConfig::resolve`] (broker defaults plus topic overrides).
/// Fields can be set directly in tests (e.g. tiny segments), bypassing the
/// validation that applies to client-supplied values.
#[derive(Clone, Debug, PartialEq)]
pub struct TopicConfig {
    pub cleanup_policy: CleanupPolicy,
    pub compression_type: CompressionType,
    pub compression_gzip_level: i32,
    pub compression_lz4_level: i32,
    pub compression_zstd_level: i32,
    pub delete_retention_ms: i64,
    pub file_delete_delay_ms: i64,
    /// fsync after this many messages (`i64::MAX`: never by count).
    pub flush_messages: i64,
    /// fsync after this many milliseconds (`i64::MAX`: never by time).
    pub flush_ms: i64,
    pub index_interval_bytes: u32,
    pub max_compaction_lag_ms: i64,
    /// Largest record batch accepted.
    pub max_message_bytes: u32,
    pub message_timestamp_after_max_ms: i64,
    pub message_timestamp_before_max_ms: i64,
    pub message_timestamp_type: MessageTimestampType,
    pub min_cleanable_dirty_ratio: f64,
    pub min_compaction_lag_ms: i64,
    pub min_insync_replicas: i32,
    pub preallocate: bool,
    /// Size limit per partition; negative: no limit.
    pub retention_bytes: i64,
    /// Age limit; -1: no limit.
    pub retention_ms: i64,
    pub segment_bytes: u32,
    pub segment_index_bytes: u32,
    pub segment_jitter_ms: i64,
    pub segment_ms: i64,
    pub unclean_leader_election_enable: bool,
}

impl Default for TopicConfig {
    fn default() -> Self {
        TopicConfig {
            cleanup_policy: CleanupPolicy::default(),
            compression_type: CompressionType::Producer,
            compression_gzip_level: -1,
            compression_lz4_level: 9,
            compression_zstd_level: 3,
            delete_retention_ms: 86_400_000,
            file_delete_delay_ms: 60_000,
            flush_messages: i64::MAX,
            flush_ms: i64::MAX,
            index_interval_bytes: 4096,
            max_compaction_lag_ms: i64::MAX,
            max_message_bytes: 1_048_588,
            message_timestamp_after_max_ms: 3_600_000,
            message_timestamp_before_max_ms: i64::MAX,
            message_timestamp_type: MessageTimestampType::CreateTime,
            min_cleanable_dirty_ratio: 0.5,
            min_compaction_lag_ms: 0,
            min_insync_replicas: 1,
            preallocate: false,
            retention_bytes: -1,
            retention_ms: 7 * 24 * 60 * 60 * 1000,
            segment_bytes: 1024 * 1024 * 1024,
            segment_index_bytes: 10 * 1024 * 1024,
            segment_jitter_ms: 0,
            segment_ms: 7 * 24 * 60 * 60 * 1000,
            unclean_leader_election_enable: false,
        }
    }
}

impl TopicConfig {
    /// Broker defaults plus the topic's `overrides` (validated; an invalid
    /// override is an error, as are conflicting lag settings).
    pub fn resolve(
        broker: &BrokerConfig,
        overrides: &BTreeMap<String, String>,
    ) -> Result<TopicConfig, ConfigError> {
        if overrides.len() > MAX_SETTINGS_PER_SOURCE {
            return Err(ConfigError::TooLarge {
                what: "the number of topic configs".into(),
                limit: MAX_SETTINGS_PER_SOURCE,
            });
        }
        let mut config = broker.topic_defaults();
        let mut errors = Vec::new();
        for (name, raw) in overrides {
            match parse_topic_value(name, raw).and_then(|v| config.apply(name, &v)) {
                Ok(()) => {}
                Err(e) => errors.push(e),
            }
        }
        if let Some(e) = ConfigError::from_list(errors) {
            return Err(e);
        }
        config.check_consistency()?;
        Ok(config)
    }

    /// Kafka's cross-field check (`LogConfig.validateValues`).
    fn check_consistency(&self) -> Result<(), ConfigError> {
        if self.min_compaction_lag_ms > self.max_compaction_lag_ms {
            return Err(ConfigError::invalid(
                "min.compaction.lag.ms",
                format!(
                    "conflicting topic settings: min.compaction.lag.ms ({}) > max.compaction.lag.ms ({})",
                    self.min_compaction_lag_ms, self.max_compaction_lag_ms
                ),
            ));
        }
        Ok(())
    }

    /// Sets the field for topic config `name` from a parsed value.
    fn apply(&mut self, name: &str, value: &ConfigValue) -> Result<(), ConfigError> {
        let mismatch =
            || ConfigError::internal(format!("type mismatch applying topic config '{name}'"));
        let long = || match value {
            ConfigValue::Long(v) => Ok(*v),
            _ => Err(mismatch()),
        };
        let int = || match value {
            ConfigValue::Int(v) => Ok(*v),
            _ => Err(mismatch()),
        };
        let uint = || int().and_then(|v| u32::try_from(v).map_err(|_| mismatch()));
        let boolean = || match value {
            ConfigValue::Bool(v) => Ok(*v),
            _ => Err(mismatch()),
        };
        let string = || match value {
            ConfigValue::Str(s) => Ok(s.as_str()),
            _ => Err(mismatch()),
        };
        match name {
            "cleanup.policy" => match value {
                ConfigValue::List(items) => self.cleanup_policy = CleanupPolicy::from_items(items),
                _ => return Err(mismatch()),
            },
            "compression.gzip.level" => self.compression_gzip_level = int()?,
            "compression.lz4.level" => self.compression_lz4_level = int()?,
            "compression.type" => {
                self.compression_type = CompressionType::parse(string()?).ok_or_else(mismatch)?
            }
            "compression.zstd.level" => self.compression_zstd_level = int()?,
            "delete.retention.ms" => self.delete_retention_ms = long()?,
            "file.delete.delay.ms" => self.file_delete_delay_ms = long()?,
            "flush.messages" => self.flush_messages = long()?,
            "flush.ms" => self.flush_ms = long()?,
            "index.interval.bytes" => self.index_interval_bytes = uint()?,
            "max.compaction.lag.ms" => self.max_compaction_lag_ms = long()?,
            "max.message.bytes" => self.max_message_bytes = uint()?,
            "message.timestamp.after.max.ms" => self.message_timestamp_after_max_ms = long()?,
            "message.timestamp.before.max.ms" => self.message_timestamp_before_max_ms = long()?,
            "message.timestamp.type" => {
                self.message_timestamp_type =
                    MessageTimestampType::parse(string()?).ok_or_else(mismatch)?
            }
            "min.cleanable.dirty.ratio" => match value {
                ConfigValue::Double(d) => self.min_cleanable_dirty_ratio = *d,
                _ => return Err(mismatch()),
            },
            "min.compaction.lag.ms" => self.min_compaction_lag_ms = long()?,
            "min.insync.replicas" => self.min_insync_replicas = int()?,
            "preallocate" => self.preallocate = boolean()?,
            "retention.bytes" => self.retention_bytes = long()?,
            "retention.ms" => self.retention_ms = long()?,
            "segment.bytes" => self.segment_bytes = uint()?,
            "segment.index.bytes" => self.segment_index_bytes = uint()?,
            "segment.jitter.ms" => self.segment_jitter_ms = long()?,
            "segment.ms" => self.segment_ms = long()?,
            "unclean.leader.election.enable" => self.unclean_leader_election_enable = boolean()?,
            // Accepted but not modelled (tiered storage, throttling).
            _ => {}
        }
        Ok(())
    }

    /// The value of topic config `name` (`None` for configs not modelled
    /// here, whose value is their fixed default).
    pub fn value_of(&self, name: &str) -> Option<ConfigValue> {
        let u = |v: u32| ConfigValue::Int(i32::try_from(v).unwrap_or(i32::MAX));
        Some(match name {
            "cleanup.policy" => {
                let mut items = Vec::new();
                if self.cleanup_policy.compact {
                    items.push("compact".to_string());
                }
                if self.cleanup_policy.delete {
                    items.push("delete".to_string());
                }
                ConfigValue::List(items)
            }
            "compression.gzip.level" => ConfigValue::Int(self.compression_gzip_level),
            "compression.lz4.level" => ConfigValue::Int(self.compression_lz4_level),
            "compression.type" => ConfigValue::Str(self.compression_type.name().into()),
            "compression.zstd.level" => ConfigValue::Int(self.compression_zstd_level),
            "delete.retention.ms" => ConfigValue::Long(self.delete_retention_ms),
            "file.delete.delay.ms" => ConfigValue::Long(self.file_delete_delay_ms),
            "flush.messages" => ConfigValue::Long(self.flush_messages),
            "flush.ms" => ConfigValue::Long(self.flush_ms),
            "index.interval.bytes" => u(self.index_interval_bytes),
            "max.compaction.lag.ms" => ConfigValue::Long(self.max_compaction_lag_ms),
            "max.message.bytes" => u(self.max_message_bytes),
            "message.timestamp.after.max.ms" => {
                ConfigValue::Long(self.message_timestamp_after_max_ms)
            }
            "message.timestamp.before.max.ms" => {
                ConfigValue::Long(self.message_timestamp_before_max_ms)
            }
            "message.timestamp.type" => ConfigValue::Str(self.message_timestamp_type.name().into()),
            "min.cleanable.dirty.ratio" => ConfigValue::Double(self.min_cleanable_dirty_ratio),
            "min.compaction.lag.ms" => ConfigValue::Long(self.min_compaction_lag_ms),
            "min.insync.replicas" => ConfigValue::Int(self.min_insync_replicas),
            "preallocate" => ConfigValue::Bool(self.preallocate),
            "retention.bytes" => ConfigValue::Long(self.retention_bytes),
            "retention.ms" => ConfigValue::Long(self.retention_ms),
            "segment.bytes" => u(self.segment_bytes),
            "segment.index.bytes" => u(self.segment_index_bytes),
            "segment.jitter.ms" => ConfigValue::Long(self.segment_jitter_ms),
            "segment.ms" => ConfigValue::Long(self.segment_ms),
            "unclean.leader.election.enable" => {
                ConfigValue::Bool(self.unclean_leader_election_enable)
            }
            _ => return None,
        })
    }

    /// Whether records older than `retention_ms` are deleted (time-based
    /// retention applies).
    pub fn has_time_retention(&self) -> bool {
        self.cleanup_policy.delete && self.retention_ms >= 0
    }

    /// Whether size-based retention applies.
    pub fn has_size_retention(&self) -> bool {
        self.cleanup_policy.delete && self.retention_bytes >= 0
    }
}

/// Parses and validates one topic config value.
fn parse_topic_value(name: &str, value: &str) -> Result<ConfigValue, ConfigError> {
    let Some(def) = TopicConfigDefs::get(name) else {
        return Err(unknown_topic_config(name));
    };
    let parsed = parse_value(name, value, def.ty, def.validator)?;
    if name == "remote.storage.enable" && parsed == ConfigValue::Bool(true) {
        return Err(ConfigError::unsupported(
            name,
            "tiered storage is not supported",
        ));
    }
    Ok(parsed)
}

fn unknown_topic_config(name: &str) -> ConfigError {
    let mut detail = String::from(" (not a topic configuration)");
    if name.len() <= MAX_CONFIG_NAME_BYTES {
        if let Some(def) = broker_config_def(name).and_then(|d| d.topic_config) {
            detail = format!(" (a broker setting; the topic-level name is '{def}')");
        }
    }
    ConfigError::UnknownConfig {
        name: super::error::shorten(name),
        detail,
    }
}

/// Validates one topic config (CreateTopics / AlterConfigs): an unknown name
/// or an invalid value is an error mapping to Kafka's INVALID_CONFIG (40).
pub fn validate_topic_config(name: &str, value: &str) -> Result<(), ConfigError> {
    parse_topic_value(name, value).map(|_| ())
}

/// Validates a whole set of topic configs against the broker defaults,
/// including cross-field checks (min vs max compaction lag).
pub fn validate_topic_configs(
    broker: &BrokerConfig,
    configs: &BTreeMap<String, String>,
) -> Result<(), ConfigError> {
    TopicConfig::resolve(broker, configs).map(|_| ())
}

/// One topic config as DescribeConfigs reports it.
#[derive(Clone, Debug, PartialEq)]
pub struct TopicConfigEntry {
    pub name: &'static str,
    pub value: Option<String>,
    pub source: ConfigSource,
    pub config_type: ConfigType,
    pub is_sensitive: bool,
    pub read_only: bool,
    pub documentation: &'static str,
    /// Highest priority first: the topic override, broker settings given
    /// explicitly, then broker defaults.
    pub synonyms: Vec<ConfigSynonym>,
}

/// Every topic config of a topic with the given `overrides`: its value,
/// source (`DYNAMIC_TOPIC_CONFIG` if overridden, `STATIC_BROKER_CONFIG` if a
/// broker synonym was set explicitly, `DEFAULT_CONFIG` otherwise), type and
/// synonyms. Invalid stored overrides are shown as stored.
pub fn effective_topic_configs(
    broker: &BrokerConfig,
    overrides: &BTreeMap<String, String>,
) -> Vec<TopicConfigEntry> {
    let mut config = broker.topic_defaults();
    let mut parsed: BTreeMap<&str, ConfigValue> = BTreeMap::new();
    for (name, raw) in overrides {
        if let Ok(value) = parse_topic_value(name, raw) {
            if config.apply(name, &value).is_ok() {
                parsed.insert(name.as_str(), value);
            }
        }
    }
    TOPIC_CONFIG_DEFS
        .iter()
        .map(|def| {
            let overridden = overrides.get(def.name);
            let value = match overridden {
                Some(raw) => parsed
                    .get(def.name)
                    .and_then(ConfigValue::to_kafka_string)
                    .or_else(|| Some(raw.clone())),
                None => config
                    .value_of(def.name)
                    .and_then(|v| v.to_kafka_string())
                    .or_else(|| def.fixed_default.map(str::to_string)),
            };
            let synonyms = topic_synonyms(
                broker,
                def.name,
                overridden.is_some().then(|| value.clone()),
            );
            let source = synonyms
                .first()
                .map_or(ConfigSource::DefaultConfig, |s| s.source);
            TopicConfigEntry {
                name: def.name,
                value,
                source,
                config_type: def.ty,
                is_sensitive: def.ty.is_sensitive(),
                read_only: false,
                documentation: def.doc,
                synonyms,
            }
        })
        .collect()
}

/// Broker-level defaults of topic configs that klamm's broker table does
/// not carry (tiered storage), as Kafka lists them among the synonyms.
const EXTRA_DEFAULT_SYNONYMS: &[(&str, &str, &str)] = &[
    ("local.retention.bytes", "log.local.retention.bytes", "-2"),
    ("local.retention.ms", "log.local.retention.ms", "-2"),
];

/// Kafka's synonym list of topic config `name` (ConfigHelper
/// `createTopicConfigEntry`): the topic override (if `override_value` is
/// given), then the broker synonyms of its primary broker config (e.g.
/// `retention.ms` -> `log.retention.ms`), starting at that primary name.
/// The first entry's source is the config's source.
pub fn topic_synonyms(
    broker: &BrokerConfig,
    name: &str,
    override_value: Option<Option<String>>,
) -> Vec<ConfigSynonym> {
    let mut synonyms = Vec::new();
    if let Some(value) = override_value {
        synonyms.push(ConfigSynonym {
            name: name.to_string(),
            value,
            source: ConfigSource::DynamicTopicConfig,
        });
    }
    if let Some(primary) = broker_synonyms_of_topic_config(name).first() {
        let chain = super::defs::broker_config_synonyms(primary);
        synonyms.extend(broker.synonyms(primary, &chain));
    } else if let Some((_, broker_name, default)) =
        EXTRA_DEFAULT_SYNONYMS.iter().find(|(t, _, _)| *t == name)
    {
        synonyms.push(ConfigSynonym {
            name: (*broker_name).to_string(),
            value: Some((*default).to_string()),
            source: ConfigSource::DefaultConfig,
        });
    }
    synonyms
}

/// The INVALID_CONFIG message Kafka's controller gives for a topic's
/// complete set of overrides (`LogConfig.validate`): unknown names first,
/// then each value's type and range (`ConfigDef` wording), then the
/// cross-field and tiered-storage checks. `Ok` if Kafka would accept it.
pub fn kafka_check_topic_configs(
    broker: &BrokerConfig,
    configs: &BTreeMap<String, String>,
) -> Result<(), String> {
    if configs.len() > MAX_SETTINGS_PER_SOURCE {
        return Err(format!(
            "Too many topic configs: at most {MAX_SETTINGS_PER_SOURCE} are allowed"
        ));
    }
    for name in configs.keys() {
        if TopicConfigDefs::get(name).is_none() {
            return Err(format!(
                "Unknown topic config name: {}",
                super::error::shorten(name)
            ));
        }
    }
    for (name, raw) in configs {
        if let Some(def) = TopicConfigDefs::get(name) {
            kafka_check_value(def, raw)?;
        }
    }
    if let Some(raw) = configs.get("remote.storage.enable") {
        if raw.trim().eq_ignore_ascii_case("true") {
            return Err("Tiered Storage functionality is disabled in the broker. \
                 Topic cannot be configured with remote log storage."
                .into());
        }
    }
    let defaults = broker.topic_defaults();
    let lag = |name: &str, default: i64| {
        configs
            .get(name)
            .and_then(|v| v.trim().parse::<i64>().ok())
            .unwrap_or(default)
    };
    let min_lag_ms = lag("min.compaction.lag.ms", defaults.min_compaction_lag_ms);
    let max_lag_ms = lag("max.compaction.lag.ms", defaults.max_compaction_lag_ms);
    if min_lag_ms > max_lag_ms {
        return Err(format!(
            "conflict topic config setting min.compaction.lag.ms ({min_lag_ms}) > max.compaction.lag.ms ({max_lag_ms})"
        ));
    }
    // Anything else klamm's own typed check rejects (it should not).
    TopicConfig::resolve(broker, configs)
        .map(|_| ())
        .map_err(|e| e.to_string())
}

/// One value checked the way Kafka's `ConfigDef.parseType` and the
/// config's validator do, with their messages.
fn kafka_check_value(def: &TopicConfigDef, raw: &str) -> Result<(), String> {
    let name = def.name;
    let shown = super::error::shorten(raw);
    let bad = |value: &str, why: &str| {
        Err(format!(
            "Invalid value {value} for configuration {name}: {why}"
        ))
    };
    if raw.len() > super::MAX_CONFIG_VALUE_BYTES {
        return bad(
            &shown,
            &format!(
                "values are limited to {} bytes",
                super::MAX_CONFIG_VALUE_BYTES
            ),
        );
    }
    let trimmed = raw.trim();
    let number: Option<f64> = match def.ty {
        ConfigType::Boolean => {
            if !trimmed.eq_ignore_ascii_case("true") && !trimmed.eq_ignore_ascii_case("false") {
                return bad(&shown, "Expected value to be either true or false");
            }
            None
        }
        ConfigType::Int => match trimmed.parse::<i32>() {
            Ok(v) => Some(f64::from(v)),
            Err(_) => return bad(&shown, "Not a number of type INT"),
        },
        ConfigType::Short => match trimmed.parse::<i16>() {
            Ok(v) => Some(f64::from(v)),
            Err(_) => return bad(&shown, "Not a number of type SHORT"),
        },
        ConfigType::Long => match trimmed.parse::<i64>() {
            // The range checks below compare as Kafka does (doubleValue).
            Ok(v) => Some(v as f64),
            Err(_) => return bad(&shown, "Not a number of type LONG"),
        },
        ConfigType::Double => match trimmed.parse::<f64>() {
            Ok(v) => Some(v),
            Err(_) => return bad(&shown, "Not a number of type DOUBLE"),
        },
        _ => None,
    };
    let rendered = || match def.ty {
        ConfigType::Double => number.map(super::value::format_double).unwrap_or_default(),
        _ => trimmed.to_string(),
    };
    let items = || -> Vec<&str> {
        if trimmed.is_empty() {
            Vec::new()
        } else {
            trimmed.split(',').map(str::trim).collect()
        }
    };
    match def.validator {
        Validator::None => Ok(()),
        Validator::AtLeast(min) => match number {
            Some(n) if n < min as f64 => bad(&rendered(), &format!("Value must be at least {min}")),
            _ => Ok(()),
        },
        Validator::Between(min, max) => match number {
            Some(n) if n < min as f64 => bad(&rendered(), &format!("Value must be at least {min}")),
            Some(n) if n > max as f64 => {
                bad(&rendered(), &format!("Value must be no more than {max}"))
            }
            _ => Ok(()),
        },
        Validator::DoubleBetween(min, max) => match number {
            Some(n) if n < min => bad(
                &rendered(),
                &format!(
                    "Value must be at least {}",
                    super::value::format_double(min)
                ),
            ),
            Some(n) if n > max => bad(
                &rendered(),
                &format!(
                    "Value must be no more than {}",
                    super::value::format_double(max)
                ),
            ),
            _ => Ok(()),
        },
        Validator::OneOf(allowed) => {
            if allowed.contains(&trimmed) {
                Ok(())
            } else {
                bad(
                    &super::error::shorten(trimmed),
                    &format!("String must be one of: {}", allowed.join(", ")),
                )
            }
        }
        Validator::ListOf(allowed) => {
            for item in items() {
                if !allowed.contains(&item) {
                    return bad(
                        &super::error::shorten(item),
                        &format!("String must be one of: {}", allowed.join(", ")),
                    );
                }
            }
            Ok(())
        }
        Validator::GzipLevel => match number {
            Some(n) if (1.0..=9.0).contains(&n) || n == -1.0 => Ok(()),
            Some(_) => bad(&rendered(), "Value must be between 1 and 9 or equal to -1"),
            None => Ok(()),
        },
        Validator::ThrottledReplicas => {
            let list = items();
            let pair = |s: &str| {
                s.is_empty()
                    || s.split_once(':').is_some_and(|(p, b)| {
                        !p.is_empty()
                            && !b.is_empty()
                            && p.bytes().all(|c| c.is_ascii_digit())
                            && b.bytes().all(|c| c.is_ascii_digit())
                    })
            };
            if list.iter().all(|s| pair(s)) || list.concat() == "*" {
                Ok(())
            } else {
                bad(
                    &format!("[{}]", super::error::shorten(&list.join(", "))),
                    &format!("{name} must be the literal '*' or a list of replicas in the following format: [partitionId]:[brokerId],[partitionId]:[brokerId],..."),
                )
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::sources::RawConfig;

    fn broker(overrides: &[&str]) -> BrokerConfig {
        let mut raw = RawConfig::new();
        let args: Vec<String> = overrides.iter().map(|s| s.to_string()).collect();
        raw.add_overrides(&args).unwrap();
        BrokerConfig::resolve(&raw).unwrap()
    }

    fn map(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn table_is_sorted_unique_and_synonyms_exist() {
        for pair in TOPIC_CONFIG_DEFS.windows(2) {
            assert!(
                pair[0].name < pair[1].name,
                "{} / {}",
                pair[0].name,
                pair[1].name
            );
        }
        for d in crate::config::defs::BROKER_CONFIG_DEFS {
            if let Some(t) = d.topic_config {
                assert!(TopicConfigDefs::get(t).is_some(), "{} -> {t}", d.name);
            }
        }
        // Every topic config either has a broker synonym or a fixed default,
        // and every modelled one has a typed value.
        let defaults = TopicConfig::default();
        for d in TOPIC_CONFIG_DEFS {
            let synonyms = TopicConfigDefs::broker_synonyms(d.name);
            assert!(
                synonyms.is_empty() != d.fixed_default.is_none(),
                "{}",
                d.name
            );
            assert_eq!(
                defaults.value_of(d.name).is_some(),
                d.fixed_default.is_none(),
                "{}",
                d.name
            );
        }
    }

    #[test]
    fn validates_topic_configs() {
        assert!(validate_topic_config("cleanup.policy", "compact,delete").is_ok());
        assert!(validate_topic_config("cleanup.policy", "compact,nope").is_err());
        assert!(validate_topic_config("retention.ms", "-1").is_ok());
        assert!(validate_topic_config("retention.ms", "-2").is_err());
        assert!(validate_topic_config("segment.bytes", "1048576").is_ok());
        assert!(validate_topic_config("segment.bytes", "1048575").is_err());
        assert!(validate_topic_config("segment.bytes", "14").is_err());
        assert!(validate_topic_config("max.message.bytes", "0").is_ok());
        assert!(validate_topic_config("max.message.bytes", "-1").is_err());
        assert!(validate_topic_config("message.timestamp.type", "LogAppendTime").is_ok());
        assert!(validate_topic_config("message.timestamp.type", "Now").is_err());
        for c in ["uncompressed", "zstd", "lz4", "snappy", "gzip", "producer"] {
            assert!(validate_topic_config("compression.type", c).is_ok(), "{c}");
        }
        assert!(validate_topic_config("compression.type", "brotli").is_err());
        assert!(validate_topic_config("min.insync.replicas", "0").is_err());
        assert!(validate_topic_config("segment.ms", "0").is_err());
        assert!(validate_topic_config("min.cleanable.dirty.ratio", "0.1").is_ok());
        assert!(validate_topic_config("min.cleanable.dirty.ratio", "2").is_err());
        assert!(validate_topic_config("preallocate", "maybe").is_err());
        assert!(validate_topic_config("remote.storage.enable", "false").is_ok());
        let e = validate_topic_config("remote.storage.enable", "true").unwrap_err();
        assert!(matches!(e, ConfigError::Unsupported { .. }));

        let e = validate_topic_config("foo.bar", "1").unwrap_err();
        assert_eq!(e.kafka_error_code(), 40);
        assert!(
            e.to_string().starts_with("unknown configuration 'foo.bar'"),
            "{e}"
        );
        let e = validate_topic_config("log.retention.ms", "1").unwrap_err();
        assert!(e.to_string().contains("'retention.ms'"), "{e}");
        let e = validate_topic_config("retention.ms", "soon").unwrap_err();
        assert_eq!(e.kafka_error_code(), 40);
        assert_eq!(
            e.to_string(),
            "invalid value 'soon' for configuration 'retention.ms': expected a long integer"
        );
    }

    #[test]
    fn resolve_merges_broker_defaults_and_overrides() {
        let b = broker(&["log.retention.hours=1", "log.segment.bytes=2097152"]);
        let t = TopicConfig::resolve(&b, &BTreeMap::new()).unwrap();
        assert_eq!(t.retention_ms, 3_600_000);
        assert_eq!(t.segment_bytes, 2_097_152);
        let t = TopicConfig::resolve(
            &b,
            &map(&[
                ("retention.ms", "1000"),
                ("cleanup.policy", "compact"),
                ("max.message.bytes", "10"),
            ]),
        )
        .unwrap();
        assert_eq!(t.retention_ms, 1000);
        assert_eq!(
            t.cleanup_policy,
            CleanupPolicy {
                delete: false,
                compact: true
            }
        );
        assert_eq!(t.max_message_bytes, 10);
        assert!(!t.has_time_retention());
        let e = TopicConfig::resolve(
            &b,
            &map(&[
                ("min.compaction.lag.ms", "10"),
                ("max.compaction.lag.ms", "5"),
            ]),
        )
        .unwrap_err();
        assert!(e
            .to_string()
            .contains("min.compaction.lag.ms (10) > max.compaction.lag.ms (5)"));
        let e = validate_topic_configs(&b, &map(&[("segment.ms", "x"), ("foo", "1")])).unwrap_err();
        assert_eq!(e.errors().len(), 2, "{e}");
        let many: BTreeMap<String, String> = (0..=MAX_SETTINGS_PER_SOURCE)
            .map(|i| (format!("k{i}"), String::new()))
            .collect();
        assert!(matches!(
            TopicConfig::resolve(&b, &many),
            Err(ConfigError::TooLarge { .. })
        ));
    }

    #[test]
    fn kafka_defaults_match_broker_defaults() {
        let b = BrokerConfig::default();
        assert_eq!(b.topic_defaults(), TopicConfig::default());
        let t = TopicConfig::resolve(&b, &BTreeMap::new()).unwrap();
        assert_eq!(t.retention_ms, 604_800_000);
        assert_eq!(t.segment_ms, 604_800_000);
        assert_eq!(t.flush_ms, i64::MAX);
        assert_eq!(t.flush_messages, i64::MAX);
        assert_eq!(t.max_message_bytes, 1_048_588);
        assert_eq!(t.index_interval_bytes, 4096);
        assert_eq!(t.segment_index_bytes, 10_485_760);
        assert_eq!(t.message_timestamp_type, MessageTimestampType::CreateTime);
        assert_eq!(
            t.cleanup_policy,
            CleanupPolicy {
                delete: true,
                compact: false
            }
        );
    }

    #[test]
    fn describe_sources_and_synonyms() {
        let b = broker(&["log.retention.hours=24"]);
        let entries = effective_topic_configs(&b, &map(&[("segment.bytes", "2097152")]));
        assert_eq!(entries.len(), TOPIC_CONFIG_DEFS.len());
        let get = |n: &str| entries.iter().find(|e| e.name == n).unwrap().clone();

        let seg = get("segment.bytes");
        assert_eq!(seg.value.as_deref(), Some("2097152"));
        assert_eq!(seg.source, ConfigSource::DynamicTopicConfig);
        assert_eq!(seg.source.code(), 1);
        assert_eq!(seg.config_type.code(), 3);
        assert_eq!(seg.synonyms[0].source, ConfigSource::DynamicTopicConfig);
        assert_eq!(seg.synonyms[1].name, "log.segment.bytes");
        assert_eq!(seg.synonyms[1].source, ConfigSource::DefaultConfig);

        // As Kafka 4.1 answers with log.retention.hours=24: the value
        // follows the broker setting, but the synonym list starts at the
        // primary broker name (log.retention.ms, unset), so it is empty and
        // the source is DEFAULT_CONFIG.
        let ret = get("retention.ms");
        assert_eq!(ret.value.as_deref(), Some("86400000"));
        assert_eq!(ret.source, ConfigSource::DefaultConfig);
        assert_eq!(ret.config_type, ConfigType::Long);
        assert!(ret.synonyms.is_empty(), "{:?}", ret.synonyms);

        let flush = get("flush.ms");
        assert_eq!(flush.value.as_deref(), Some("9223372036854775807"));
        assert_eq!(flush.source, ConfigSource::DefaultConfig);
        assert!(flush.synonyms.is_empty());

        let local = get("local.retention.bytes");
        assert_eq!(local.synonyms[0].name, "log.local.retention.bytes");
        assert_eq!(local.synonyms[0].value.as_deref(), Some("-2"));

        let b2 = broker(&["message.max.bytes=2000"]);
        let entries2 = effective_topic_configs(&b2, &map(&[("max.message.bytes", "1000")]));
        let max = entries2
            .iter()
            .find(|e| e.name == "max.message.bytes")
            .unwrap();
        let names: Vec<(&str, Option<&str>, ConfigSource)> = max
            .synonyms
            .iter()
            .map(|s| (s.name.as_str(), s.value.as_deref(), s.source))
            .collect();
        assert_eq!(
            names,
            vec![
                (
                    "max.message.bytes",
                    Some("1000"),
                    ConfigSource::DynamicTopicConfig
                ),
                (
                    "message.max.bytes",
                    Some("2000"),
                    ConfigSource::StaticBrokerConfig
                ),
                (
                    "message.max.bytes",
                    Some("1048588"),
                    ConfigSource::DefaultConfig
                ),
            ]
        );
        let max2 = effective_topic_configs(&b2, &BTreeMap::new())
            .into_iter()
            .find(|e| e.name == "max.message.bytes")
            .unwrap();
        assert_eq!(max2.source, ConfigSource::StaticBrokerConfig);
        assert_eq!(max2.value.as_deref(), Some("2000"));

        let ratio = get("min.cleanable.dirty.ratio");
        assert_eq!(ratio.value.as_deref(), Some("0.5"));
        assert_eq!(ratio.config_type, ConfigType::Double);

        let remote = get("remote.storage.enable");
        assert_eq!(remote.value.as_deref(), Some("false"));
        assert_eq!(remote.source, ConfigSource::DefaultConfig);
        assert!(remote.synonyms.is_empty());

        assert_eq!(
            get("max.message.bytes").synonyms[0].name,
            "message.max.bytes"
        );
        assert_eq!(get("cleanup.policy").value.as_deref(), Some("delete"));
        assert_eq!(
            get("follower.replication.throttled.replicas")
                .value
                .as_deref(),
            Some("")
        );
    }

    #[test]
    fn kafka_messages_for_bad_topic_configs() {
        let b = BrokerConfig::default();
        let check = |pairs: &[(&str, &str)]| kafka_check_topic_configs(&b, &map(pairs));
        assert!(check(&[
            ("retention.ms", "1000"),
            ("cleanup.policy", "compact,delete")
        ])
        .is_ok());
        let err = |pairs: &[(&str, &str)]| check(pairs).unwrap_err();
        assert_eq!(
            err(&[("foo.bar", "1")]),
            "Unknown topic config name: foo.bar"
        );
        assert_eq!(
            err(&[("retention.ms", "abc")]),
            "Invalid value abc for configuration retention.ms: Not a number of type LONG"
        );
        assert_eq!(
            err(&[("segment.bytes", "10")]),
            "Invalid value 10 for configuration segment.bytes: Value must be at least 1048576"
        );
        assert_eq!(
            err(&[("cleanup.policy", "compact,nope")]),
            "Invalid value nope for configuration cleanup.policy: String must be one of: compact, delete"
        );
        assert_eq!(
            err(&[("compression.type", "brotli")]),
            "Invalid value brotli for configuration compression.type: String must be one of: uncompressed, zstd, lz4, snappy, gzip, producer"
        );
        assert_eq!(
            err(&[("preallocate", "maybe")]),
            "Invalid value maybe for configuration preallocate: Expected value to be either true or false"
        );
        assert_eq!(
            err(&[("min.cleanable.dirty.ratio", "2")]),
            "Invalid value 2.0 for configuration min.cleanable.dirty.ratio: Value must be no more than 1.0"
        );
        assert_eq!(
            err(&[
                ("min.compaction.lag.ms", "10"),
                ("max.compaction.lag.ms", "5")
            ]),
            "conflict topic config setting min.compaction.lag.ms (10) > max.compaction.lag.ms (5)"
        );
        assert!(err(&[("remote.storage.enable", "true")])
            .starts_with("Tiered Storage functionality is disabled"));
        assert!(check(&[("leader.replication.throttled.replicas", "0:1,1:1")]).is_ok());
        assert!(check(&[("leader.replication.throttled.replicas", "*")]).is_ok());
        assert!(err(&[("leader.replication.throttled.replicas", "x")])
            .contains("must be the literal '*'"));
    }

    #[test]
    fn describe_shows_invalid_stored_overrides_raw() {
        let b = BrokerConfig::default();
        let entries = effective_topic_configs(&b, &map(&[("retention.ms", "bogus"), ("x.y", "1")]));
        let ret = entries.iter().find(|e| e.name == "retention.ms").unwrap();
        assert_eq!(ret.value.as_deref(), Some("bogus"));
        assert_eq!(ret.source, ConfigSource::DynamicTopicConfig);
        assert!(entries.iter().all(|e| e.name != "x.y"));
    }
}
