//! Broker and topic configuration: Kafka property names and semantics,
//! collected from embedded defaults, a TOML file, `KAFKA_*` environment
//! variables and `--override key=value` arguments (in that order of
//! precedence), checked, and turned into a typed [`BrokerConfig`].
//!
//! Layout:
//! - [`defs`]: the single table of broker config definitions (type, default,
//!   validator, doc line, topic-level synonym).
//! - [`value`]: parsing and validating one value of a given Kafka config type.
//! - [`sources`]: the layered raw `name -> value` map ([`RawConfig`]): TOML
//!   flattening, the docker-image environment mapping, overrides.
//! - [`listener`]: `NAME://host:port` listeners and the security protocol map.
//! - [`broker`]: [`BrokerConfig::resolve`], cross-checks, DescribeConfigs
//!   entries for the broker resource.
//! - [`topic`]: topic-level configs: validation, effective values for
//!   DescribeConfigs, and the typed [`TopicConfig`] the storage layer reads.
//! - [`cli`]: the `klamm` command line (clap), kept here so the binary stays
//!   a thin shell.

pub mod broker;
pub mod cli;
pub mod defs;
pub mod error;
pub mod listener;
pub mod sasl;
pub mod sources;
pub mod tls;
pub mod topic;
pub mod value;

pub use broker::{BrokerConfig, BrokerConfigEntry, QuorumVoter};
pub use cli::CliArgs;
pub use defs::{broker_config_def, BrokerConfigDef, Support, BROKER_CONFIG_DEFS};
pub use error::ConfigError;
pub use listener::{Listener, SecurityProtocol};
pub use sources::{env_var_to_config_name, Origin, RawConfig, Setting};
pub use topic::{
    effective_topic_configs, kafka_check_topic_configs, topic_synonyms, validate_topic_config,
    validate_topic_configs, CleanupPolicy, CompressionType, MessageTimestampType, TopicConfig,
    TopicConfigDef, TopicConfigDefs, TopicConfigEntry, TOPIC_CONFIG_DEFS,
};
pub use value::{ConfigType, ConfigValue, Validator};

/// Largest config file we read (bytes). Real configs are a few KiB.
pub const MAX_CONFIG_FILE_BYTES: usize = 1024 * 1024;
/// Most `name = value` settings one source (file, environment, overrides)
/// may contribute.
pub const MAX_SETTINGS_PER_SOURCE: usize = 4096;
/// Longest config name accepted (bytes).
pub const MAX_CONFIG_NAME_BYTES: usize = 256;
/// Longest config value accepted (bytes), for broker and topic configs.
pub const MAX_CONFIG_VALUE_BYTES: usize = 64 * 1024;
/// Most items a list-typed value (listeners, voters, ...) may hold.
pub const MAX_LIST_ITEMS: usize = 256;
/// Deepest table nesting accepted in a TOML config file.
pub const MAX_TOML_DEPTH: usize = 16;

/// Kafka's `ConfigSource` as sent in DescribeConfigs responses.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ConfigSource {
    Unknown = 0,
    DynamicTopicConfig = 1,
    DynamicBrokerConfig = 2,
    DynamicDefaultBrokerConfig = 3,
    StaticBrokerConfig = 4,
    DefaultConfig = 5,
    DynamicBrokerLoggerConfig = 6,
    ClientMetricsConfig = 7,
    GroupConfig = 8,
}

impl ConfigSource {
    /// The wire code (DescribeConfigs `ConfigSource`, an int8).
    pub fn code(self) -> i8 {
        self as i8
    }
}

/// A synonym of a config entry, as listed in DescribeConfigs when the client
/// asks for synonyms: highest priority first.
#[derive(Clone, Debug, PartialEq)]
pub struct ConfigSynonym {
    pub name: String,
    pub value: Option<String>,
    pub source: ConfigSource,
}

/// Kafka's INVALID_CONFIG error code, which every [`ConfigError`] maps to on
/// the wire.
pub const INVALID_CONFIG_ERROR_CODE: i16 = 40;
