//! The resolved broker configuration: [`BrokerConfig::resolve`] types every
//! setting against the definitions table, applies Kafka's derivations
//! (retention ms > minutes > hours, roll ms > hours, flush interval >
//! scheduler interval, broker.id <-> node.id), runs the cross-checks
//! (listeners, controller names, advertised listeners, quorum voters, log
//! directory, single-node limits), and lists every config with its value
//! and source for DescribeConfigs.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use super::defs::{
    broker_config_def, broker_config_synonyms, unknown_config_hint, unsupported_prefix,
    BrokerConfigDef, Support, BROKER_CONFIG_DEFS,
};
use super::error::ConfigError;
use super::listener::{
    check_distinct, host_port, is_wildcard_host, parse_endpoints, parse_protocol_map,
    split_host_port, Endpoint, Listener, SecurityProtocol, WILDCARD_ADVERTISED_HOST,
};
use super::sources::{listeners_from_advertised, Origin, RawConfig, Setting};
use super::topic::{CleanupPolicy, CompressionType, MessageTimestampType, TopicConfig};
use super::value::{parse_value, ConfigType, ConfigValue};
use super::{ConfigSource, ConfigSynonym};

const MS_PER_MINUTE: i64 = 60 * 1000;
const MS_PER_HOUR: i64 = 60 * MS_PER_MINUTE;

/// A member of the static controller quorum (`controller.quorum.voters`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct QuorumVoter {
    pub node_id: i32,
    pub host: String,
    pub port: u16,
}

/// The checked, typed broker configuration. Field names carry their units;
/// `i32`/`i64` follow Kafka's `int`/`long` where Kafka allows sentinels
/// (-1), `usize`/`u32` where the value is a size validated non-negative.
#[derive(Clone, Debug, PartialEq)]
pub struct BrokerConfig {
    // --- identity ----------------------------------------------------------
    pub node_id: i32,
    /// From the `CLUSTER_ID` environment variable (22-char base64url), if
    /// set; otherwise the broker picks or loads one from its log directory.
    pub cluster_id: Option<String>,
    pub broker_rack: Option<String>,

    // --- listeners ---------------------------------------------------------
    /// Every configured listener, controller ones included.
    pub listeners: Vec<Listener>,
    /// Listeners that serve Kafka clients (all but the controller ones).
    pub client_listeners: Vec<Listener>,
    /// Listeners named in `controller.listener.names`; klamm serves no Kafka
    /// clients on them and need not bind them.
    pub controller_listeners: Vec<Listener>,
    /// Upper-cased names from `controller.listener.names`.
    pub controller_listener_names: Vec<String>,
    /// Effective listener name -> security protocol map.
    pub listener_security_protocol_map: BTreeMap<String, SecurityProtocol>,
    /// `inter.broker.listener.name`, or the PLAINTEXT / first client
    /// listener when unset.
    pub inter_broker_listener_name: Option<String>,
    pub controller_quorum_voters: Vec<QuorumVoter>,
    /// `host:port` entries of `controller.quorum.bootstrap.servers`.
    pub controller_quorum_bootstrap_servers: Vec<String>,
    /// klamm's HTTP endpoint (`http.listener`, `host:port`), if enabled.
    pub http_listener: Option<String>,
    /// `console.write.enabled`: the web console's actions that change
    /// anything (create or delete a topic, produce, reset offsets).
    pub console_write_enabled: bool,

    // --- network -----------------------------------------------------------
    pub socket_request_max_bytes: usize,
    /// `None`: keep the OS default (Kafka's -1).
    pub socket_send_buffer_bytes: Option<usize>,
    pub socket_receive_buffer_bytes: Option<usize>,
    pub socket_listen_backlog_size: u32,
    pub max_connections: usize,
    pub max_connections_per_ip: usize,
    /// `max.connections.per.ip.overrides`, by IP address.
    pub max_connections_per_ip_overrides: BTreeMap<std::net::IpAddr, usize>,
    pub connections_max_idle_ms: i64,
    /// `connections.max.reauth.ms` (KIP-368): accepted; klamm does not
    /// yet expire SASL sessions (0, Kafka's default, means never).
    pub connections_max_reauth_ms: i64,
    /// `connection.failed.authentication.delay.ms`.
    pub connection_failed_authentication_delay_ms: i32,
    /// `sasl.server.max.receive.size`: frames before authentication.
    pub sasl_server_max_receive_size: usize,
    /// Each SASL_PLAINTEXT client listener's mechanisms and PLAIN users,
    /// by listener name.
    pub sasl_listeners: BTreeMap<String, crate::security::sasl::ListenerSasl>,
    /// `authorizer.class.name`, `super.users`,
    /// `allow.everyone.if.no.acl.found`: `None` without an authorizer.
    pub authorizer: Option<crate::security::authorizer::AuthorizerConfig>,
    /// Each SSL / SASL_SSL client listener's TLS settings, by listener name.
    pub tls_listeners: BTreeMap<String, super::tls::ListenerTlsConfig>,
    /// `klamm.socket.write.timeout.ms`: a response not written in this
    /// long closes the connection.
    pub socket_write_timeout_ms: i64,
    /// `klamm.log.max.mapped.inactive.segments`: the broker-wide bound of
    /// `storage::map_cache`.
    pub max_mapped_inactive_segments: usize,
    /// `klamm.log.mapped.segment.idle.ms`: inactive segments unused this
    /// long are unmapped (`storage::map_cache::unmap_idle`).
    pub mapped_segment_idle_ms: i64,
    pub num_network_threads: i32,
    pub num_io_threads: i32,
    pub queued_max_requests: usize,
    /// `queued.max.request.bytes`; `None` (Kafka's -1, unbounded) means
    /// klamm's own bound, `broker::DEFAULT_QUEUED_MAX_REQUEST_BYTES`.
    pub queued_max_request_bytes: Option<usize>,
    /// `klamm.queued.max.request.bytes.per.ip`; `None` (-1): a quarter of
    /// the broker-wide bound, at least `socket.request.max.bytes`.
    pub queued_max_request_bytes_per_ip: Option<usize>,
    pub message_max_bytes: usize,
    pub fetch_max_bytes: usize,
    pub max_incremental_fetch_session_cache_slots: usize,

    // --- topics --------------------------------------------------------------
    pub num_partitions: i32,
    pub default_replication_factor: i16,
    pub auto_create_topics_enable: bool,
    pub delete_topic_enable: bool,
    pub min_insync_replicas: i32,
    pub unclean_leader_election_enable: bool,
    pub compression_type: CompressionType,
    pub compression_gzip_level: i32,
    pub compression_lz4_level: i32,
    pub compression_zstd_level: i32,

    // --- groups and offsets ----------------------------------------------------
    pub group_initial_rebalance_delay_ms: i32,
    pub group_min_session_timeout_ms: i32,
    pub group_max_session_timeout_ms: i32,
    pub group_max_size: i32,
    pub group_consumer_session_timeout_ms: i32,
    pub group_consumer_heartbeat_interval_ms: i32,
    pub group_consumer_max_size: i32,
    pub group_consumer_min_session_timeout_ms: i32,
    pub group_consumer_max_session_timeout_ms: i32,
    pub group_consumer_min_heartbeat_interval_ms: i32,
    pub group_consumer_max_heartbeat_interval_ms: i32,
    /// `group.consumer.migration.policy`, lower case.
    pub group_consumer_migration_policy: String,
    pub group_consumer_assignors: Vec<String>,
    pub group_coordinator_rebalance_protocols: Vec<String>,
    pub offsets_topic_num_partitions: i32,
    pub offsets_topic_replication_factor: i16,
    pub offsets_topic_segment_bytes: u32,
    /// `offsets.retention.minutes` in milliseconds.
    pub offsets_retention_ms: i64,
    pub offsets_retention_check_interval_ms: i64,
    pub offset_metadata_max_bytes: i32,

    // --- transactions ------------------------------------------------------------
    pub transaction_state_log_num_partitions: i32,
    pub transaction_state_log_replication_factor: i16,
    pub transaction_state_log_min_isr: i32,
    pub transaction_state_log_segment_bytes: u32,
    pub transaction_max_timeout_ms: i32,
    pub transactional_id_expiration_ms: i32,
    pub transaction_partition_verification_enable: bool,
    pub producer_id_expiration_ms: i32,

    // --- log storage -----------------------------------------------------------------
    /// The single data directory (`log.dirs`, else `log.dir`).
    pub log_dir: PathBuf,
    pub log_segment_bytes: u32,
    /// Effective roll time (`log.roll.ms`, else `log.roll.hours`).
    pub log_roll_ms: i64,
    pub log_roll_jitter_ms: i64,
    /// Effective retention (`log.retention.ms` > `.minutes` > `.hours`); -1
    /// is unlimited.
    pub log_retention_ms: i64,
    pub log_retention_bytes: i64,
    pub log_retention_check_interval_ms: i64,
    pub log_cleanup_policy: CleanupPolicy,
    pub log_index_size_max_bytes: u32,
    pub log_index_interval_bytes: u32,
    pub log_flush_interval_messages: i64,
    /// Effective flush interval (`log.flush.interval.ms`, else
    /// `log.flush.scheduler.interval.ms`).
    pub log_flush_interval_ms: i64,
    pub log_flush_scheduler_interval_ms: i64,
    pub log_flush_offset_checkpoint_interval_ms: i64,
    pub log_flush_start_offset_checkpoint_interval_ms: i64,
    pub log_segment_delete_delay_ms: i64,
    pub log_preallocate: bool,
    pub log_message_timestamp_type: MessageTimestampType,
    pub log_message_timestamp_before_max_ms: i64,
    pub log_message_timestamp_after_max_ms: i64,
    pub log_cleaner_enable: bool,
    pub log_cleaner_delete_retention_ms: i64,
    pub log_cleaner_min_compaction_lag_ms: i64,
    pub log_cleaner_max_compaction_lag_ms: i64,
    pub log_cleaner_min_cleanable_ratio: f64,
    pub log_cleaner_threads: i32,
    pub log_cleaner_backoff_ms: i64,
    pub log_cleaner_dedupe_buffer_size: i64,
    pub log_cleaner_io_max_bytes_per_second: f64,
    pub num_recovery_threads_per_data_dir: i32,

    /// Non-fatal problems found while resolving (ignored environment
    /// variables, unusual replication factors, ...).
    pub warnings: Vec<String>,

    /// Settings given explicitly (file, environment, overrides).
    explicit: BTreeMap<String, Setting>,
    /// Every config's typed value (explicit or default).
    values: BTreeMap<&'static str, ConfigValue>,
}

/// One broker config as DescribeConfigs reports it.
#[derive(Clone, Debug, PartialEq)]
pub struct BrokerConfigEntry {
    pub name: &'static str,
    pub value: Option<String>,
    /// `STATIC_BROKER_CONFIG` if set in the file, environment or an
    /// override; `DEFAULT_CONFIG` otherwise.
    pub source: ConfigSource,
    pub config_type: ConfigType,
    pub is_sensitive: bool,
    /// Always true: klamm has no dynamic broker configuration.
    pub read_only: bool,
    pub documentation: &'static str,
    /// Highest priority first: explicit settings, then defaults.
    pub synonyms: Vec<ConfigSynonym>,
    pub support: Support,
}

impl Default for BrokerConfig {
    /// The configuration with nothing set: embedded defaults only.
    fn default() -> Self {
        // The embedded defaults are constant data checked by unit tests.
        BrokerConfig::resolve(&RawConfig::new()).expect("embedded defaults must resolve")
    }
}

impl BrokerConfig {
    /// Collects the standard sources (`config_file` < `env` < `overrides`)
    /// and resolves them.
    pub fn load<I, K, V>(
        config_file: Option<&Path>,
        env: I,
        overrides: &[String],
    ) -> Result<BrokerConfig, ConfigError>
    where
        I: IntoIterator<Item = (K, V)>,
        K: Into<String>,
        V: Into<String>,
    {
        BrokerConfig::resolve(&RawConfig::load(config_file, env, overrides)?)
    }

    /// Defaults plus the given `(name, value)` settings, as if passed with
    /// `--override`. Convenient for tests.
    pub fn with_settings(settings: &[(&str, &str)]) -> Result<BrokerConfig, ConfigError> {
        let mut raw = RawConfig::new();
        for (name, value) in settings {
            raw.set(name, (*value).to_string(), Origin::Override);
        }
        BrokerConfig::resolve(&raw)
    }

    /// Types, derives and cross-checks `raw`. Every problem found is
    /// reported (several at once as [`ConfigError::Multiple`]); nothing is
    /// returned half-configured.
    pub fn resolve(raw: &RawConfig) -> Result<BrokerConfig, ConfigError> {
        let mut explicit = raw.settings().clone();
        // The docker image derives `listeners` from `advertised.listeners`
        // (hosts replaced by 0.0.0.0) when only the latter is given.
        if !explicit.contains_key("listeners") {
            if let Some(Setting {
                value,
                origin: origin @ Origin::Env(_),
            }) = explicit.get("advertised.listeners")
            {
                let derived = Setting {
                    value: listeners_from_advertised(value),
                    origin: origin.clone(),
                };
                explicit.insert("listeners".to_string(), derived);
            }
        }

        // Per-listener SASL settings (`listener.name.<l>.sasl.enabled.mechanisms`,
        // `listener.name.<l>.<mechanism>.sasl.jaas.config`) have open-ended
        // names: they are kept apart and checked with the listeners.
        let sasl_settings: BTreeMap<String, Setting> = explicit
            .iter()
            .filter(|(name, _)| super::sasl::is_listener_sasl_key(name))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        explicit.retain(|name, _| !sasl_settings.contains_key(name));
        // TLS settings (`ssl.*`, `listener.name.<l>.ssl.*`) likewise.
        let tls_settings: BTreeMap<String, Setting> = explicit
            .iter()
            .filter(|(name, _)| super::tls::is_tls_key(name))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        explicit.retain(|name, _| !tls_settings.contains_key(name));

        let mut errors = Vec::new();
        let mut values: BTreeMap<&'static str, ConfigValue> = BTreeMap::new();
        for (name, setting) in &explicit {
            match broker_config_def(name) {
                None => errors.push(unknown_broker_config(name, &setting.origin)),
                Some(def) => match parse_value(def.name, &setting.value, def.ty, def.validator) {
                    Ok(v) => {
                        values.insert(def.name, v);
                    }
                    Err(e) => errors.push(e.with_origin(&setting.origin.to_string())),
                },
            }
        }
        for def in BROKER_CONFIG_DEFS {
            if values.contains_key(def.name) {
                continue;
            }
            let value = match def.default {
                None => ConfigValue::Null,
                Some(d) => parse_value(def.name, d, def.ty, def.validator)
                    .map_err(|e| ConfigError::internal(format!("bad embedded default: {e}")))?,
            };
            values.insert(def.name, value);
        }
        if let Some(e) = ConfigError::from_list(errors) {
            return Err(e);
        }
        build(explicit, values, raw.cluster_id(), raw.warnings().to_vec(), &sasl_settings, &tls_settings)
    }

    /// The log cleaner's settings (`log.cleaner.*`).
    pub fn cleaner_config(&self) -> crate::storage::cleaner::CleanerConfig {
        crate::storage::cleaner::CleanerConfig {
            enable: self.log_cleaner_enable && self.log_cleaner_threads > 0,
            threads: usize::try_from(self.log_cleaner_threads).unwrap_or(0).min(64),
            backoff_ms: u64::try_from(self.log_cleaner_backoff_ms).unwrap_or(0),
            dedupe_buffer_bytes: u64::try_from(self.log_cleaner_dedupe_buffer_size).unwrap_or(0),
            io_max_bytes_per_second: self.log_cleaner_io_max_bytes_per_second,
        }
    }

    /// The topic-level defaults this broker gives new topics (Kafka's
    /// `extractLogConfigMap`).
    pub fn topic_defaults(&self) -> TopicConfig {
        TopicConfig {
            cleanup_policy: self.log_cleanup_policy,
            compression_type: self.compression_type,
            compression_gzip_level: self.compression_gzip_level,
            compression_lz4_level: self.compression_lz4_level,
            compression_zstd_level: self.compression_zstd_level,
            delete_retention_ms: self.log_cleaner_delete_retention_ms,
            file_delete_delay_ms: self.log_segment_delete_delay_ms,
            flush_messages: self.log_flush_interval_messages,
            flush_ms: self.log_flush_interval_ms,
            index_interval_bytes: self.log_index_interval_bytes,
            max_compaction_lag_ms: self.log_cleaner_max_compaction_lag_ms,
            max_message_bytes: u32::try_from(self.message_max_bytes).unwrap_or(u32::MAX),
            message_timestamp_after_max_ms: self.log_message_timestamp_after_max_ms,
            message_timestamp_before_max_ms: self.log_message_timestamp_before_max_ms,
            message_timestamp_type: self.log_message_timestamp_type,
            min_cleanable_dirty_ratio: self.log_cleaner_min_cleanable_ratio,
            min_compaction_lag_ms: self.log_cleaner_min_compaction_lag_ms,
            min_insync_replicas: self.min_insync_replicas,
            preallocate: self.log_preallocate,
            retention_bytes: self.log_retention_bytes,
            retention_ms: self.log_retention_ms,
            segment_bytes: self.log_segment_bytes,
            segment_index_bytes: self.log_index_size_max_bytes,
            segment_jitter_ms: self.log_roll_jitter_ms,
            segment_ms: self.log_roll_ms,
            unclean_leader_election_enable: self.unclean_leader_election_enable,
        }
    }

    /// The value of config `name` if it was set explicitly (normalised the
    /// way Kafka renders it).
    pub fn configured_value(&self, name: &str) -> Option<String> {
        if !self.explicit.contains_key(name) {
            return None;
        }
        self.values.get(name).and_then(ConfigValue::to_kafka_string)
    }

    /// The current value of config `name` (explicit or default), as Kafka
    /// renders it; `None` for unknown names and null values.
    pub fn value(&self, name: &str) -> Option<String> {
        match name {
            "node.id" | "broker.id" => Some(self.node_id.to_string()),
            _ => self.values.get(name).and_then(ConfigValue::to_kafka_string),
        }
    }

    /// Where config `name` was set, if explicitly.
    pub fn origin(&self, name: &str) -> Option<&Origin> {
        self.explicit.get(name).map(|s| &s.origin)
    }

    /// Every broker config for DescribeConfigs, sorted by name.
    pub fn describe(&self) -> Vec<BrokerConfigEntry> {
        let mut entries: Vec<BrokerConfigEntry> = BROKER_CONFIG_DEFS
            .iter()
            .map(|def| self.describe_def(def))
            .collect();
        entries.sort_by(|a, b| a.name.cmp(b.name));
        entries
    }

    /// One broker config for DescribeConfigs (`None` if unknown).
    pub fn describe_config(&self, name: &str) -> Option<BrokerConfigEntry> {
        broker_config_def(name).map(|def| self.describe_def(def))
    }

    /// Kafka's `configSynonyms` (ConfigHelper): for each name of `chain` in
    /// order the explicit (static) settings, then for each name its
    /// non-null default; everything before the first entry named `primary`
    /// is dropped. klamm has no dynamic broker configs, so those sources
    /// never appear.
    pub fn synonyms(&self, primary: &str, chain: &[&str]) -> Vec<ConfigSynonym> {
        let mut all = Vec::new();
        for name in chain {
            let configured = match *name {
                // Kafka copies node.id into broker.id.
                "broker.id"
                    if self.configured_value("broker.id").is_none()
                        && self.explicit.contains_key("node.id") =>
                {
                    Some(self.node_id.to_string())
                }
                _ => self.configured_value(name),
            };
            if let Some(v) = configured {
                all.push(ConfigSynonym {
                    name: (*name).to_string(),
                    value: Some(v),
                    source: ConfigSource::StaticBrokerConfig,
                });
            }
        }
        for name in chain {
            if let Some(d) = broker_config_def(name).and_then(|d| d.default) {
                all.push(ConfigSynonym {
                    name: (*name).to_string(),
                    value: Some(d.to_string()),
                    source: ConfigSource::DefaultConfig,
                });
            }
        }
        match all.iter().position(|s| s.name == primary) {
            Some(i) => all.split_off(i),
            None => Vec::new(),
        }
    }

    fn describe_def(&self, def: &'static BrokerConfigDef) -> BrokerConfigEntry {
        let chain = broker_config_synonyms(def.name);
        let mut synonyms = self.synonyms(def.name, &chain);
        if def.ty.is_sensitive() {
            for s in &mut synonyms {
                s.value = None;
            }
        }
        BrokerConfigEntry {
            name: def.name,
            value: if def.ty.is_sensitive() {
                None
            } else {
                self.value(def.name)
            },
            source: synonyms
                .first()
                .map_or(ConfigSource::DefaultConfig, |s| s.source),
            config_type: def.ty,
            is_sensitive: def.ty.is_sensitive(),
            read_only: true,
            documentation: def.doc,
            synonyms,
            support: def.support,
        }
    }

    /// A one-line description for the startup log.
    pub fn summary(&self) -> String {
        let listeners: Vec<String> = self
            .client_listeners
            .iter()
            .map(|l| format!("{l} (advertised {})", l.advertised_address()))
            .collect();
        format!(
            "node {}, client listeners {}, log dir {}",
            self.node_id,
            listeners.join(", "),
            self.log_dir.display()
        )
    }

    /// Settings given explicitly (file, environment, override) that klamm
    /// accepts for compatibility but does not act on.
    pub fn ignored_settings(&self) -> Vec<&'static str> {
        BROKER_CONFIG_DEFS
            .iter()
            .filter(|d| d.support == Support::Informational && self.origin(d.name).is_some())
            .map(|d| d.name)
            .collect()
    }

    /// The effective configuration as TOML that klamm itself accepts:
    /// every config (unset ones commented out), explicit ones annotated with
    /// their source.
    pub fn to_toml(&self) -> String {
        let mut out = String::new();
        out.push_str("# klamm effective configuration.\n");
        out.push_str(
            "# Settings given explicitly are marked with their source; the rest are defaults.\n",
        );
        for def in BROKER_CONFIG_DEFS {
            let key = toml::Value::String(def.name.to_string()).to_string();
            let value = if def.name == "listener.security.protocol.map" {
                Some(
                    self.listener_security_protocol_map
                        .iter()
                        .map(|(n, p)| format!("{n}:{p}"))
                        .collect::<Vec<_>>()
                        .join(","),
                )
            } else {
                self.value(def.name)
            };
            let Some(value) = value else {
                out.push_str(&format!("# {key} =   (unset)\n"));
                continue;
            };
            let rendered = match def.ty {
                ConfigType::Boolean
                | ConfigType::Int
                | ConfigType::Short
                | ConfigType::Long
                | ConfigType::Double => value,
                _ => toml::Value::String(value).to_string(),
            };
            out.push_str(&format!("{key} = {rendered}"));
            let note = match (self.origin(def.name), def.support) {
                (Some(origin), Support::Used) => format!("  # from {origin}"),
                (Some(origin), Support::Informational) => {
                    format!("  # from {origin}; no effect in klamm")
                }
                (None, Support::Informational) => "  # no effect in klamm".to_string(),
                (None, Support::Used) => String::new(),
            };
            out.push_str(&note);
            out.push('\n');
        }
        out
    }
}

/// The error for a name that is not a broker config.
fn unknown_broker_config(name: &str, origin: &Origin) -> ConfigError {
    let shown = super::error::shorten(name);
    if let Some(why) = unsupported_prefix(name) {
        return ConfigError::unsupported(&shown, format!("{why} (from {origin})"));
    }
    let detail = match unknown_config_hint(name) {
        Some(hint) => format!(" ({hint}; from {origin})"),
        None => format!(" (from {origin})"),
    };
    ConfigError::UnknownConfig {
        name: shown,
        detail,
    }
}

/// Typed access to the resolved values; type mismatches are bugs in the
/// tables and surface as [`ConfigError::Internal`].
struct Values<'a>(&'a BTreeMap<&'static str, ConfigValue>);

impl Values<'_> {
    fn get(&self, name: &str) -> Result<&ConfigValue, ConfigError> {
        self.0
            .get(name)
            .ok_or_else(|| ConfigError::internal(format!("no value for '{name}'")))
    }

    fn mismatch(name: &str, want: &str) -> ConfigError {
        ConfigError::internal(format!("'{name}' is not of type {want}"))
    }

    fn opt_int(&self, name: &str) -> Result<Option<i32>, ConfigError> {
        match self.get(name)? {
            ConfigValue::Int(v) => Ok(Some(*v)),
            ConfigValue::Null => Ok(None),
            _ => Err(Self::mismatch(name, "int")),
        }
    }

    fn int(&self, name: &str) -> Result<i32, ConfigError> {
        self.opt_int(name)?
            .ok_or_else(|| Self::mismatch(name, "int"))
    }

    fn short(&self, name: &str) -> Result<i16, ConfigError> {
        match self.get(name)? {
            ConfigValue::Short(v) => Ok(*v),
            _ => Err(Self::mismatch(name, "short")),
        }
    }

    fn opt_long(&self, name: &str) -> Result<Option<i64>, ConfigError> {
        match self.get(name)? {
            ConfigValue::Long(v) => Ok(Some(*v)),
            ConfigValue::Null => Ok(None),
            _ => Err(Self::mismatch(name, "long")),
        }
    }

    fn long(&self, name: &str) -> Result<i64, ConfigError> {
        self.opt_long(name)?
            .ok_or_else(|| Self::mismatch(name, "long"))
    }

    fn boolean(&self, name: &str) -> Result<bool, ConfigError> {
        match self.get(name)? {
            ConfigValue::Bool(v) => Ok(*v),
            _ => Err(Self::mismatch(name, "boolean")),
        }
    }

    fn double(&self, name: &str) -> Result<f64, ConfigError> {
        match self.get(name)? {
            ConfigValue::Double(v) => Ok(*v),
            _ => Err(Self::mismatch(name, "double")),
        }
    }

    fn opt_string(&self, name: &str) -> Result<Option<&str>, ConfigError> {
        match self.get(name)? {
            ConfigValue::Str(s) => Ok(Some(s.as_str())),
            ConfigValue::Null => Ok(None),
            _ => Err(Self::mismatch(name, "string")),
        }
    }

    fn string(&self, name: &str) -> Result<&str, ConfigError> {
        self.opt_string(name)?
            .ok_or_else(|| Self::mismatch(name, "string"))
    }

    fn list(&self, name: &str) -> Result<&[String], ConfigError> {
        match self.get(name)? {
            ConfigValue::List(items) => Ok(items),
            _ => Err(Self::mismatch(name, "list")),
        }
    }

    /// A size validated `>= 0` by its definition.
    fn usize(&self, name: &str) -> Result<usize, ConfigError> {
        let v = self.int(name)?;
        usize::try_from(v).map_err(|_| ConfigError::internal(format!("'{name}' is negative")))
    }

    /// A size validated `>= 0` by its definition.
    fn u32(&self, name: &str) -> Result<u32, ConfigError> {
        let v = self.int(name)?;
        u32::try_from(v).map_err(|_| ConfigError::internal(format!("'{name}' is negative")))
    }
}

/// Most entries in `max.connections.per.ip.overrides` (a limit, like
/// everything).
const MAX_PER_IP_OVERRIDES: usize = 10_000;

/// Parses `max.connections.per.ip.overrides`: `ip:count` entries separated
/// by commas, split at the last `:` so IPv6 addresses work (`::1:5`).
/// Kafka also takes host names and resolves them; klamm takes addresses
/// only, so a name is an error rather than a silent lookup.
fn parse_per_ip_overrides(text: &str) -> Result<BTreeMap<std::net::IpAddr, usize>, String> {
    let mut map = BTreeMap::new();
    for entry in text.split(',').map(str::trim).filter(|e| !e.is_empty()) {
        if map.len() >= MAX_PER_IP_OVERRIDES {
            return Err(format!("more than {MAX_PER_IP_OVERRIDES} entries"));
        }
        let (ip, count) = entry.rsplit_once(':').ok_or_else(|| format!("'{entry}' is not ip:count"))?;
        let ip = ip.trim().trim_start_matches('[').trim_end_matches(']');
        let ip: std::net::IpAddr = ip.parse().map_err(|_| format!("'{ip}' is not an IP address (klamm takes addresses, not host names)"))?;
        let count: usize = count.trim().parse().map_err(|_| format!("'{count}' is not a connection count"))?;
        map.insert(ip, count);
    }
    Ok(map)
}

/// The listener-related part of the configuration.
struct ListenerSetup {
    listeners: Vec<Listener>,
    client: Vec<Listener>,
    controller: Vec<Listener>,
    controller_names: Vec<String>,
    protocol_map: BTreeMap<String, SecurityProtocol>,
    inter_broker: Option<String>,
}

fn resolve_listeners(
    v: &Values<'_>,
    explicit: &BTreeMap<String, Setting>,
    errors: &mut Vec<ConfigError>,
) -> Result<ListenerSetup, ConfigError> {
    let mut controller_names: Vec<String> = Vec::new();
    for name in v
        .opt_string("controller.listener.names")?
        .unwrap_or("")
        .split(',')
    {
        let name = name.trim().to_ascii_uppercase();
        if !name.is_empty() && !controller_names.contains(&name) {
            controller_names.push(name);
        }
    }

    let map_value = v.string("listener.security.protocol.map")?;
    let mut protocol_map = match parse_protocol_map("listener.security.protocol.map", map_value) {
        Ok(m) => m,
        Err(e) => {
            errors.push(e);
            BTreeMap::new()
        }
    };
    if !explicit.contains_key("listener.security.protocol.map") {
        // Kafka (KRaft) maps controller listeners to PLAINTEXT when the map
        // is left at its default.
        for name in &controller_names {
            protocol_map
                .entry(name.clone())
                .or_insert(SecurityProtocol::Plaintext);
        }
    }

    let mut setup = ListenerSetup {
        listeners: Vec::new(),
        client: Vec::new(),
        controller: Vec::new(),
        controller_names,
        protocol_map,
        inter_broker: None,
    };

    let endpoints = match parse_endpoints("listeners", v.string("listeners")?) {
        Ok(eps) => eps,
        Err(e) => {
            errors.push(e);
            return Ok(setup);
        }
    };
    if endpoints.is_empty() {
        errors.push(ConfigError::invalid(
            "listeners",
            "at least one listener is required",
        ));
        return Ok(setup);
    }
    if let Err(e) = check_distinct("listeners", &endpoints) {
        errors.push(e);
    }
    let defined: Vec<&str> = endpoints.iter().map(|e| e.name.as_str()).collect();

    for name in &setup.controller_names {
        if !defined.contains(&name.as_str()) {
            errors.push(ConfigError::invalid(
                "controller.listener.names",
                format!(
                    "'{name}' is not a listener defined in 'listeners' (defined: {})",
                    defined.join(", ")
                ),
            ));
        }
    }

    let advertised = resolve_advertised(v, &defined, &setup.controller_names, errors)?;

    for ep in &endpoints {
        let Some(&protocol) = setup.protocol_map.get(&ep.name) else {
            errors.push(ConfigError::invalid(
                "listener.security.protocol.map",
                format!(
                    "no security protocol for listener '{}': add '{}:PLAINTEXT'",
                    ep.name, ep.name
                ),
            ));
            continue;
        };
        let (advertised_host, advertised_port) = match advertised.iter().find(|a| a.name == ep.name)
        {
            Some(a) if a.host.is_empty() => (WILDCARD_ADVERTISED_HOST.to_string(), a.port),
            Some(a) => (a.host.clone(), a.port),
            None if is_wildcard_host(&ep.host) => (WILDCARD_ADVERTISED_HOST.to_string(), ep.port),
            None => (ep.host.clone(), ep.port),
        };
        let listener = Listener {
            name: ep.name.clone(),
            host: ep.host.clone(),
            port: ep.port,
            security_protocol: protocol,
            advertised_host,
            advertised_port,
        };
        if setup.controller_names.contains(&ep.name) {
            setup.controller.push(listener.clone());
        } else {
            setup.client.push(listener.clone());
        }
        setup.listeners.push(listener);
    }

    if setup.client.is_empty() && errors.is_empty() {
        errors.push(ConfigError::invalid(
            "listeners",
            "no listener is left for Kafka clients: every listener is named in \
             controller.listener.names",
        ));
    }

    // inter.broker.listener.name / security.inter.broker.protocol
    let ibl_explicit = explicit.contains_key("inter.broker.listener.name");
    let proto_name = v.string("security.inter.broker.protocol")?;
    if ibl_explicit && explicit.contains_key("security.inter.broker.protocol") {
        errors.push(ConfigError::invalid(
            "inter.broker.listener.name",
            "set only one of inter.broker.listener.name and security.inter.broker.protocol",
        ));
    }
    if let (true, Some(name)) = (ibl_explicit, v.opt_string("inter.broker.listener.name")?) {
        let name = name.to_ascii_uppercase();
        if setup.controller_names.contains(&name) {
            errors.push(ConfigError::invalid(
                "inter.broker.listener.name",
                format!("'{name}' is a controller listener; name a client listener"),
            ));
        } else if !defined.contains(&name.as_str()) {
            errors.push(ConfigError::invalid(
                "inter.broker.listener.name",
                format!(
                    "'{name}' is not a listener defined in 'listeners' (defined: {})",
                    defined.join(", ")
                ),
            ));
        }
        setup.inter_broker = Some(name);
    } else {
        if proto_name != "PLAINTEXT" {
            errors.push(ConfigError::unsupported(
                "security.inter.broker.protocol",
                format!("{proto_name} is not supported yet (only PLAINTEXT is)"),
            ));
        }
        setup.inter_broker = setup
            .client
            .iter()
            .find(|l| l.name == proto_name)
            .or_else(|| setup.client.first())
            .map(|l| l.name.clone());
    }
    Ok(setup)
}

/// Parses and checks `advertised.listeners` (empty when unset).
fn resolve_advertised(
    v: &Values<'_>,
    defined: &[&str],
    controller_names: &[String],
    errors: &mut Vec<ConfigError>,
) -> Result<Vec<Endpoint>, ConfigError> {
    let Some(value) = v.opt_string("advertised.listeners")? else {
        return Ok(Vec::new());
    };
    let advertised = match parse_endpoints("advertised.listeners", value) {
        Ok(a) => a,
        Err(e) => {
            errors.push(e);
            return Ok(Vec::new());
        }
    };
    for (i, a) in advertised.iter().enumerate() {
        if advertised[..i].iter().any(|b| b.name == a.name) {
            errors.push(ConfigError::invalid(
                "advertised.listeners",
                format!("listener name '{}' is used more than once", a.name),
            ));
        }
        if !defined.contains(&a.name.as_str()) {
            errors.push(ConfigError::invalid(
                "advertised.listeners",
                format!(
                    "listener '{}' is not defined in 'listeners' (defined: {})",
                    a.name,
                    defined.join(", ")
                ),
            ));
        }
        // Kafka 4.0 combined nodes may advertise their controller listener
        // too; klamm accepts that and simply does not give it to clients.
        let is_controller = controller_names.contains(&a.name);
        if !a.host.is_empty() && is_wildcard_host(&a.host) && !is_controller {
            errors.push(ConfigError::invalid(
                "advertised.listeners",
                format!(
                    "listener '{}' advertises the non-routable address '{}'; use a host name \
                     or address clients can reach",
                    a.name, a.host
                ),
            ));
        }
    }
    Ok(advertised)
}

/// Parses `controller.quorum.voters` entries (`id@host:port`).
fn parse_voters(items: &[String]) -> Result<Vec<QuorumVoter>, ConfigError> {
    items
        .iter()
        .map(|item| {
            let bad = |why: &str| {
                ConfigError::invalid_value(
                    "controller.quorum.voters",
                    item,
                    format!("expected id@host:port ({why})"),
                )
            };
            let (id, address) = item.split_once('@').ok_or_else(|| bad("missing '@'"))?;
            let node_id: i32 = id
                .trim()
                .parse()
                .ok()
                .filter(|id| *id >= 0)
                .ok_or_else(|| bad("the id must be a non-negative integer"))?;
            let (host, port) = split_host_port(address.trim()).map_err(|why| bad(&why))?;
            if host.is_empty() {
                return Err(bad("the host is empty"));
            }
            Ok(QuorumVoter {
                node_id,
                host,
                port,
            })
        })
        .collect()
}

/// Checks a cluster id the way `kafka-storage.sh format` does: a 16-byte
/// UUID in unpadded base64url, i.e. 22 characters of `[A-Za-z0-9_-]`.
fn valid_cluster_id(id: &str) -> bool {
    id.len() == 22
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
}

fn build(
    explicit: BTreeMap<String, Setting>,
    values: BTreeMap<&'static str, ConfigValue>,
    cluster_id: Option<&str>,
    mut warnings: Vec<String>,
    sasl_settings: &BTreeMap<String, Setting>,
    tls_settings: &BTreeMap<String, Setting>,
) -> Result<BrokerConfig, ConfigError> {
    let v = Values(&values);
    let mut errors = Vec::new();

    // node.id <-> broker.id
    let node_explicit = explicit.contains_key("node.id");
    let mut node_id = v.int("node.id")?;
    if let Some(broker_id) = v.opt_int("broker.id")? {
        if node_explicit && broker_id != node_id {
            errors.push(ConfigError::invalid(
                "broker.id",
                format!("must equal node.id ({node_id}) when both are set, got {broker_id}"),
            ));
        } else {
            node_id = broker_id;
        }
    }
    if node_id < 0 {
        errors.push(ConfigError::invalid(
            "node.id",
            format!("must be at least 0, got {node_id}"),
        ));
    }

    // process.roles
    let roles = v.list("process.roles")?;
    let has = |r: &str| roles.iter().filter(|x| *x == r).count();
    if has("broker") != 1 || has("controller") != 1 || roles.len() != 2 {
        errors.push(ConfigError::invalid(
            "process.roles",
            format!(
                "klamm is a combined node: expected 'broker,controller', got '{}'",
                roles.join(",")
            ),
        ));
    }

    let setup = resolve_listeners(&v, &explicit, &mut errors)?;

    // controller quorum
    let voters = match parse_voters(v.list("controller.quorum.voters")?) {
        Ok(voters) => voters,
        Err(e) => {
            errors.push(e);
            Vec::new()
        }
    };
    if !voters.is_empty() && (voters.len() != 1 || voters[0].node_id != node_id) {
        let got: Vec<String> = voters
            .iter()
            .map(|q| format!("{}@{}", q.node_id, host_port(&q.host, q.port)))
            .collect();
        errors.push(ConfigError::invalid(
            "controller.quorum.voters",
            format!(
                "klamm is a single node: expected exactly one voter with this node's id, e.g. \
                 '{node_id}@localhost:9093', got '{}'",
                got.join(",")
            ),
        ));
    }
    let mut bootstrap_servers = Vec::new();
    for item in v.list("controller.quorum.bootstrap.servers")? {
        match split_host_port(item) {
            Ok((host, port)) if !host.is_empty() => bootstrap_servers.push(host_port(&host, port)),
            Ok(_) => errors.push(ConfigError::invalid_value(
                "controller.quorum.bootstrap.servers",
                item,
                "expected host:port (the host is empty)",
            )),
            Err(why) => errors.push(ConfigError::invalid_value(
                "controller.quorum.bootstrap.servers",
                item,
                format!("expected host:port ({why})"),
            )),
        }
    }

    // log directory
    let (dirs_key, dirs_value) = match v.opt_string("log.dirs")? {
        Some(dirs) => ("log.dirs", dirs),
        None => ("log.dir", v.string("log.dir")?),
    };
    let dirs: Vec<&str> = dirs_value
        .split(',')
        .map(str::trim)
        .filter(|d| !d.is_empty())
        .collect();
    let log_dir = match dirs.as_slice() {
        [one] => PathBuf::from(one),
        [] => {
            errors.push(ConfigError::invalid(
                dirs_key,
                "a log directory is required",
            ));
            PathBuf::new()
        }
        many => {
            errors.push(ConfigError::unsupported(
                dirs_key,
                format!(
                    "klamm supports exactly one log directory, got {}: {}",
                    many.len(),
                    many.join(", ")
                ),
            ));
            PathBuf::from(many[0])
        }
    };
    if let Some(meta) = v.opt_string("metadata.log.dir")? {
        if Path::new(meta) != log_dir {
            errors.push(ConfigError::invalid(
                "metadata.log.dir",
                format!(
                    "klamm keeps metadata in the log directory: must be unset or '{}', got '{meta}'",
                    log_dir.display()
                ),
            ));
        }
    }

    // single-node replication
    let default_replication_factor = v.int("default.replication.factor")?;
    if default_replication_factor != 1 {
        errors.push(ConfigError::invalid(
            "default.replication.factor",
            format!("a single node only supports replication factor 1, got {default_replication_factor}"),
        ));
    }
    for key in [
        "offsets.topic.replication.factor",
        "transaction.state.log.replication.factor",
    ] {
        let rf = v.short(key)?;
        if rf != 1 && rf != 3 {
            let message =
                format!("{key}={rf} has no effect: klamm is a single node and keeps one copy");
            tracing::warn!("{message}");
            warnings.push(message);
        }
    }

    // retention: ms > minutes > hours (Kafka's logRetentionTimeMillis)
    let (mut log_retention_ms, retention_key) = if let Some(ms) = v.opt_long("log.retention.ms")? {
        (ms, "log.retention.ms")
    } else if let Some(minutes) = v.opt_int("log.retention.minutes")? {
        (i64::from(minutes) * MS_PER_MINUTE, "log.retention.minutes")
    } else {
        (
            i64::from(v.int("log.retention.hours")?) * MS_PER_HOUR,
            "log.retention.hours",
        )
    };
    if log_retention_ms < 0 {
        log_retention_ms = -1;
    }
    if log_retention_ms == 0 {
        errors.push(ConfigError::invalid(
            retention_key,
            "retention must be unlimited (-1) or at least 1 millisecond, got 0",
        ));
    }

    let (log_roll_ms, roll_key) = match v.opt_long("log.roll.ms")? {
        Some(ms) => (ms, "log.roll.ms"),
        None => (
            i64::from(v.int("log.roll.hours")?) * MS_PER_HOUR,
            "log.roll.hours",
        ),
    };
    if log_roll_ms < 1 {
        errors.push(ConfigError::invalid(
            roll_key,
            format!("the roll time must be at least 1 millisecond, got {log_roll_ms}"),
        ));
    }
    let (log_roll_jitter_ms, jitter_key) = match v.opt_long("log.roll.jitter.ms")? {
        Some(ms) => (ms, "log.roll.jitter.ms"),
        None => (
            i64::from(v.int("log.roll.jitter.hours")?) * MS_PER_HOUR,
            "log.roll.jitter.hours",
        ),
    };
    if log_roll_jitter_ms < 0 {
        errors.push(ConfigError::invalid(
            jitter_key,
            format!("the roll jitter must be at least 0, got {log_roll_jitter_ms}"),
        ));
    }
    let log_flush_scheduler_interval_ms = v.long("log.flush.scheduler.interval.ms")?;
    let log_flush_interval_ms = v
        .opt_long("log.flush.interval.ms")?
        .unwrap_or(log_flush_scheduler_interval_ms);

    // groups
    let group_min_session_timeout_ms = v.int("group.min.session.timeout.ms")?;
    let group_max_session_timeout_ms = v.int("group.max.session.timeout.ms")?;
    if group_min_session_timeout_ms > group_max_session_timeout_ms {
        errors.push(ConfigError::invalid(
            "group.min.session.timeout.ms",
            format!(
                "must not exceed group.max.session.timeout.ms ({group_max_session_timeout_ms}), \
                 got {group_min_session_timeout_ms}"
            ),
        ));
    }
    // Kafka's GroupCoordinatorConfig checks, in its order and wording.
    let consumer_session = v.int("group.consumer.session.timeout.ms")?;
    let consumer_min_session = v.int("group.consumer.min.session.timeout.ms")?;
    let consumer_max_session = v.int("group.consumer.max.session.timeout.ms")?;
    let consumer_heartbeat = v.int("group.consumer.heartbeat.interval.ms")?;
    let consumer_min_heartbeat = v.int("group.consumer.min.heartbeat.interval.ms")?;
    let consumer_max_heartbeat = v.int("group.consumer.max.heartbeat.interval.ms")?;
    for (ok, key, message) in [
        (
            consumer_max_heartbeat >= consumer_min_heartbeat,
            "group.consumer.max.heartbeat.interval.ms",
            "group.consumer.max.heartbeat.interval.ms must be greater than or equal to group.consumer.min.heartbeat.interval.ms",
        ),
        (
            consumer_heartbeat >= consumer_min_heartbeat,
            "group.consumer.heartbeat.interval.ms",
            "group.consumer.heartbeat.interval.ms must be greater than or equal to group.consumer.min.heartbeat.interval.ms",
        ),
        (
            consumer_heartbeat <= consumer_max_heartbeat,
            "group.consumer.heartbeat.interval.ms",
            "group.consumer.heartbeat.interval.ms must be less than or equal to group.consumer.max.heartbeat.interval.ms",
        ),
        (
            consumer_max_session >= consumer_min_session,
            "group.consumer.max.session.timeout.ms",
            "group.consumer.max.session.timeout.ms must be greater than or equal to group.consumer.min.session.timeout.ms",
        ),
        (
            consumer_session >= consumer_min_session,
            "group.consumer.session.timeout.ms",
            "group.consumer.session.timeout.ms must be greater than or equal to group.consumer.min.session.timeout.ms",
        ),
        (
            consumer_session <= consumer_max_session,
            "group.consumer.session.timeout.ms",
            "group.consumer.session.timeout.ms must be less than or equal to group.consumer.max.session.timeout.ms",
        ),
        (
            consumer_heartbeat < consumer_session,
            "group.consumer.heartbeat.interval.ms",
            "group.consumer.heartbeat.interval.ms must be less than group.consumer.session.timeout.ms",
        ),
    ] {
        if !ok {
            errors.push(ConfigError::invalid(key, message));
        }
    }
    let migration_policy = v.string("group.consumer.migration.policy")?.to_ascii_lowercase();
    if !["disabled", "downgrade", "upgrade", "bidirectional"].contains(&migration_policy.as_str()) {
        errors.push(ConfigError::invalid_value(
            "group.consumer.migration.policy",
            &migration_policy,
            "String must be one of (case insensitive): DISABLED, DOWNGRADE, UPGRADE, BIDIRECTIONAL",
        ));
    }
    let assignors = v.list("group.consumer.assignors")?.to_vec();
    if assignors.is_empty() {
        errors.push(ConfigError::invalid("group.consumer.assignors", "at least one assignor is required"));
    }
    for a in &assignors {
        if crate::group::consumer::assignor::Assignor::from_name(a).is_none() {
            errors.push(ConfigError::invalid_value("group.consumer.assignors", a, "uniform or range"));
        }
    }
    let protocols = v.list("group.coordinator.rebalance.protocols")?.to_vec();
    if !protocols.iter().any(|p| p == "classic") {
        errors.push(ConfigError::invalid(
            "group.coordinator.rebalance.protocols",
            "disabling the 'classic' protocol is not supported",
        ));
    }

    // socket buffers: -1 keeps the OS default
    let mut buffer = |key: &'static str| -> Result<Option<usize>, ConfigError> {
        let bytes = v.int(key)?;
        if bytes == -1 {
            return Ok(None);
        }
        match usize::try_from(bytes) {
            Ok(b) if b > 0 => Ok(Some(b)),
            _ => {
                errors.push(ConfigError::invalid(
                    key,
                    format!("expected -1 (OS default) or a positive size, got {bytes}"),
                ));
                Ok(None)
            }
        }
    };
    let socket_send_buffer_bytes = buffer("socket.send.buffer.bytes")?;
    let socket_receive_buffer_bytes = buffer("socket.receive.buffer.bytes")?;

    // Connections per client IP (Kafka's ConnectionQuotas)
    let max_connections_per_ip = v.usize("max.connections.per.ip")?;
    let overrides_text = v.opt_string("max.connections.per.ip.overrides")?.unwrap_or("");
    let max_connections_per_ip_overrides = match parse_per_ip_overrides(overrides_text) {
        Ok(map) => map,
        Err(why) => {
            errors.push(ConfigError::invalid_value("max.connections.per.ip.overrides", overrides_text, why));
            BTreeMap::new()
        }
    };
    if max_connections_per_ip == 0 && overrides_text.trim().is_empty() {
        errors.push(ConfigError::invalid(
            "max.connections.per.ip",
            "can be set to zero only if max.connections.per.ip.overrides is set (as in Kafka)",
        ));
    }

    // klamm's HTTP endpoint
    let http_listener = match v.opt_string("http.listener")? {
        None | Some("") => None,
        Some(addr) => match split_host_port(addr.strip_prefix("http://").unwrap_or(addr).trim_end_matches('/')) {
            Ok((host, port)) => Some(host_port(
                if host.is_empty() { "0.0.0.0" } else { &host },
                port,
            )),
            Err(why) => {
                errors.push(ConfigError::invalid_value(
                    "http.listener",
                    addr,
                    format!("expected http://host:port or host:port, e.g. http://0.0.0.0:9644 ({why})"),
                ));
                None
            }
        },
    };

    if let Some(id) = cluster_id {
        if !valid_cluster_id(id) {
            errors.push(ConfigError::invalid(
                super::sources::CLUSTER_ID_ENV,
                format!(
                    "expected a 22-character base64url cluster id (as printed by \
                     'kafka-storage.sh random-uuid'), got '{}'",
                    super::error::shorten(id)
                ),
            ));
        }
    }

    let compression_type =
        CompressionType::parse(v.string("compression.type")?).ok_or_else(|| {
            ConfigError::internal("compression.type passed validation but is unknown")
        })?;
    let log_message_timestamp_type =
        MessageTimestampType::parse(v.string("log.message.timestamp.type")?).ok_or_else(|| {
            ConfigError::internal("log.message.timestamp.type passed validation but is unknown")
        })?;

    let sasl_listeners = super::sasl::resolve(
        &setup.client,
        v.list("sasl.enabled.mechanisms")?,
        sasl_settings,
        &mut errors,
        &mut warnings,
    );
    let tls_listeners = super::tls::resolve(&setup.client, tls_settings, &mut errors, &mut warnings);
    let authorizer = match crate::security::authorizer::AuthorizerConfig::parse(
        v.string("authorizer.class.name")?,
        v.string("super.users")?,
        v.boolean("allow.everyone.if.no.acl.found")?,
    ) {
        Ok(a) => a,
        Err(e) => {
            errors.push(e);
            None
        }
    };

    if let Some(e) = ConfigError::from_list(errors) {
        return Err(e);
    }

    let config = BrokerConfig {
        node_id,
        cluster_id: cluster_id.map(str::to_string),
        broker_rack: v.opt_string("broker.rack")?.map(str::to_string),
        listeners: setup.listeners,
        client_listeners: setup.client,
        controller_listeners: setup.controller,
        controller_listener_names: setup.controller_names,
        listener_security_protocol_map: setup.protocol_map,
        inter_broker_listener_name: setup.inter_broker,
        controller_quorum_voters: voters,
        controller_quorum_bootstrap_servers: bootstrap_servers,
        http_listener,
        console_write_enabled: v.boolean("console.write.enabled")?,
        socket_request_max_bytes: v.usize("socket.request.max.bytes")?,
        socket_send_buffer_bytes,
        socket_receive_buffer_bytes,
        socket_listen_backlog_size: v.u32("socket.listen.backlog.size")?,
        max_connections: v.usize("max.connections")?,
        max_connections_per_ip,
        max_connections_per_ip_overrides,
        connections_max_idle_ms: v.long("connections.max.idle.ms")?,
        connections_max_reauth_ms: v.long("connections.max.reauth.ms")?,
        connection_failed_authentication_delay_ms: v.int("connection.failed.authentication.delay.ms")?,
        sasl_server_max_receive_size: v.usize("sasl.server.max.receive.size")?,
        sasl_listeners,
        authorizer,
        tls_listeners,
        socket_write_timeout_ms: v.long("klamm.socket.write.timeout.ms")?,
        max_mapped_inactive_segments: v.usize("klamm.log.max.mapped.inactive.segments")?,
        mapped_segment_idle_ms: v.long("klamm.log.mapped.segment.idle.ms")?,
        num_network_threads: v.int("num.network.threads")?,
        num_io_threads: v.int("num.io.threads")?,
        queued_max_requests: v.usize("queued.max.requests")?,
        queued_max_request_bytes: match v.long("queued.max.request.bytes")? {
            n if n <= 0 => None,
            n => Some(usize::try_from(n).unwrap_or(usize::MAX)),
        },
        queued_max_request_bytes_per_ip: match v.long("klamm.queued.max.request.bytes.per.ip")? {
            n if n <= 0 => None,
            n => Some(usize::try_from(n).unwrap_or(usize::MAX)),
        },
        message_max_bytes: v.usize("message.max.bytes")?,
        fetch_max_bytes: v.usize("fetch.max.bytes")?,
        max_incremental_fetch_session_cache_slots: v
            .usize("max.incremental.fetch.session.cache.slots")?,
        num_partitions: v.int("num.partitions")?,
        default_replication_factor: 1,
        auto_create_topics_enable: v.boolean("auto.create.topics.enable")?,
        delete_topic_enable: v.boolean("delete.topic.enable")?,
        min_insync_replicas: v.int("min.insync.replicas")?,
        unclean_leader_election_enable: v.boolean("unclean.leader.election.enable")?,
        compression_type,
        compression_gzip_level: v.int("compression.gzip.level")?,
        compression_lz4_level: v.int("compression.lz4.level")?,
        compression_zstd_level: v.int("compression.zstd.level")?,
        group_initial_rebalance_delay_ms: v.int("group.initial.rebalance.delay.ms")?,
        group_min_session_timeout_ms,
        group_max_session_timeout_ms,
        group_max_size: v.int("group.max.size")?,
        group_consumer_session_timeout_ms: v.int("group.consumer.session.timeout.ms")?,
        group_consumer_heartbeat_interval_ms: v.int("group.consumer.heartbeat.interval.ms")?,
        group_consumer_max_size: v.int("group.consumer.max.size")?,
        group_consumer_min_session_timeout_ms: consumer_min_session,
        group_consumer_max_session_timeout_ms: consumer_max_session,
        group_consumer_min_heartbeat_interval_ms: consumer_min_heartbeat,
        group_consumer_max_heartbeat_interval_ms: consumer_max_heartbeat,
        group_consumer_migration_policy: migration_policy,
        group_consumer_assignors: assignors,
        group_coordinator_rebalance_protocols: protocols,
        offsets_topic_num_partitions: v.int("offsets.topic.num.partitions")?,
        offsets_topic_replication_factor: v.short("offsets.topic.replication.factor")?,
        offsets_topic_segment_bytes: v.u32("offsets.topic.segment.bytes")?,
        offsets_retention_ms: i64::from(v.int("offsets.retention.minutes")?) * MS_PER_MINUTE,
        offsets_retention_check_interval_ms: v.long("offsets.retention.check.interval.ms")?,
        offset_metadata_max_bytes: v.int("offset.metadata.max.bytes")?,
        transaction_state_log_num_partitions: v.int("transaction.state.log.num.partitions")?,
        transaction_state_log_replication_factor: v
            .short("transaction.state.log.replication.factor")?,
        transaction_state_log_min_isr: v.int("transaction.state.log.min.isr")?,
        transaction_state_log_segment_bytes: v.u32("transaction.state.log.segment.bytes")?,
        transaction_max_timeout_ms: v.int("transaction.max.timeout.ms")?,
        transactional_id_expiration_ms: v.int("transactional.id.expiration.ms")?,
        transaction_partition_verification_enable: v.boolean("transaction.partition.verification.enable")?,
        producer_id_expiration_ms: v.int("producer.id.expiration.ms")?,
        log_dir,
        log_segment_bytes: v.u32("log.segment.bytes")?,
        log_roll_ms,
        log_roll_jitter_ms,
        log_retention_ms,
        log_retention_bytes: v.long("log.retention.bytes")?,
        log_retention_check_interval_ms: v.long("log.retention.check.interval.ms")?,
        log_cleanup_policy: CleanupPolicy::from_items(v.list("log.cleanup.policy")?),
        log_index_size_max_bytes: v.u32("log.index.size.max.bytes")?,
        log_index_interval_bytes: v.u32("log.index.interval.bytes")?,
        log_flush_interval_messages: v.long("log.flush.interval.messages")?,
        log_flush_interval_ms,
        log_flush_scheduler_interval_ms,
        log_flush_offset_checkpoint_interval_ms: i64::from(
            v.int("log.flush.offset.checkpoint.interval.ms")?,
        ),
        log_flush_start_offset_checkpoint_interval_ms: i64::from(
            v.int("log.flush.start.offset.checkpoint.interval.ms")?,
        ),
        log_segment_delete_delay_ms: v.long("log.segment.delete.delay.ms")?,
        log_preallocate: v.boolean("log.preallocate")?,
        log_message_timestamp_type,
        log_message_timestamp_before_max_ms: v.long("log.message.timestamp.before.max.ms")?,
        log_message_timestamp_after_max_ms: v.long("log.message.timestamp.after.max.ms")?,
        log_cleaner_enable: v.boolean("log.cleaner.enable")?,
        log_cleaner_delete_retention_ms: v.long("log.cleaner.delete.retention.ms")?,
        log_cleaner_min_compaction_lag_ms: v.long("log.cleaner.min.compaction.lag.ms")?,
        log_cleaner_max_compaction_lag_ms: v.long("log.cleaner.max.compaction.lag.ms")?,
        log_cleaner_min_cleanable_ratio: v.double("log.cleaner.min.cleanable.ratio")?,
        log_cleaner_threads: v.int("log.cleaner.threads")?,
        log_cleaner_backoff_ms: v.long("log.cleaner.backoff.ms")?,
        log_cleaner_dedupe_buffer_size: v.long("log.cleaner.dedupe.buffer.size")?,
        log_cleaner_io_max_bytes_per_second: v.double("log.cleaner.io.max.bytes.per.second")?,
        num_recovery_threads_per_data_dir: v.int("num.recovery.threads.per.data.dir")?,
        warnings,
        explicit,
        values,
    };
    debug_assert!(!config.client_listeners.is_empty());
    debug_assert!(config.log_retention_ms == -1 || config.log_retention_ms >= 1);
    debug_assert!(i64::from(config.log_segment_bytes) >= super::defs::MIN_SEGMENT_BYTES);
    Ok(config)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn resolve(settings: &[(&str, &str)]) -> Result<BrokerConfig, ConfigError> {
        BrokerConfig::with_settings(settings)
    }

    fn error(settings: &[(&str, &str)]) -> String {
        match resolve(settings) {
            Ok(_) => panic!("expected an error for {settings:?}"),
            Err(e) => e.to_string(),
        }
    }

    #[test]
    fn defaults() {
        let c = BrokerConfig::default();
        assert_eq!(c.node_id, 1);
        assert_eq!(c.log_dir, PathBuf::from("/tmp/klamm-logs"));
        assert_eq!(c.client_listeners.len(), 1);
        let l = &c.client_listeners[0];
        assert_eq!(
            (l.name.as_str(), l.host.as_str(), l.port),
            ("PLAINTEXT", "", 9092)
        );
        assert_eq!(l.advertised_address(), "localhost:9092");
        assert_eq!(l.bind_address(), "0.0.0.0:9092");
        assert_eq!(c.inter_broker_listener_name.as_deref(), Some("PLAINTEXT"));
        assert!(c.controller_listeners.is_empty());
        assert_eq!(c.log_retention_ms, 168 * MS_PER_HOUR);
        assert_eq!(c.log_roll_ms, 168 * MS_PER_HOUR);
        assert_eq!(c.log_flush_interval_ms, i64::MAX);
        assert_eq!(c.log_segment_bytes, 1 << 30);
        assert_eq!(c.message_max_bytes, 1_048_588);
        assert_eq!(c.socket_request_max_bytes, 104_857_600);
        assert_eq!(c.socket_send_buffer_bytes, Some(102_400));
        assert_eq!(c.max_connections, 10_000);
        assert_eq!(c.connections_max_idle_ms, 600_000);
        assert_eq!(c.group_initial_rebalance_delay_ms, 3000);
        assert_eq!(c.group_min_session_timeout_ms, 6000);
        assert_eq!(c.group_max_session_timeout_ms, 1_800_000);
        assert_eq!(c.offsets_topic_num_partitions, 50);
        assert_eq!(c.offsets_retention_ms, 10_080 * MS_PER_MINUTE);
        assert_eq!(c.num_partitions, 1);
        assert!(c.auto_create_topics_enable && c.delete_topic_enable);
        assert_eq!(
            c.log_cleanup_policy,
            CleanupPolicy {
                delete: true,
                compact: false
            }
        );
        assert_eq!(c.cluster_id, None);
        assert!(c.warnings.is_empty(), "{:?}", c.warnings);
    }

    #[test]
    fn apache_kafka_single_node_config_is_accepted() {
        let c = resolve(&[
            ("process.roles", "broker,controller"),
            ("node.id", "1"),
            ("listeners", "PLAINTEXT://:9092,CONTROLLER://:9093"),
            ("advertised.listeners", "PLAINTEXT://localhost:9092"),
            ("controller.listener.names", "CONTROLLER"),
            ("controller.quorum.voters", "1@localhost:9093"),
            (
                "listener.security.protocol.map",
                "CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT",
            ),
        ])
        .unwrap();
        assert_eq!(c.listeners.len(), 2);
        assert_eq!(c.client_listeners.len(), 1);
        assert_eq!(c.client_listeners[0].name, "PLAINTEXT");
        assert_eq!(c.controller_listeners[0].name, "CONTROLLER");
        assert_eq!(c.controller_listener_names, vec!["CONTROLLER".to_string()]);
        assert_eq!(
            c.controller_quorum_voters,
            vec![QuorumVoter {
                node_id: 1,
                host: "localhost".into(),
                port: 9093
            }]
        );
    }

    #[test]
    fn kafka_4_server_properties_are_accepted() {
        // Kafka 4.0's config/server.properties advertises the controller
        // listener as well and relies on the default protocol map.
        let c = resolve(&[
            ("process.roles", "broker,controller"),
            ("node.id", "1"),
            ("controller.quorum.bootstrap.servers", "localhost:9093"),
            ("listeners", "PLAINTEXT://:9092,CONTROLLER://:9093"),
            ("inter.broker.listener.name", "PLAINTEXT"),
            (
                "advertised.listeners",
                "PLAINTEXT://localhost:9092,CONTROLLER://localhost:9093",
            ),
            ("controller.listener.names", "CONTROLLER"),
            ("num.network.threads", "3"),
            ("log.dirs", "/tmp/kraft-combined-logs"),
            ("offsets.topic.replication.factor", "1"),
            ("transaction.state.log.replication.factor", "1"),
            ("transaction.state.log.min.isr", "1"),
        ])
        .unwrap();
        assert_eq!(c.client_listeners.len(), 1);
        assert_eq!(
            c.controller_quorum_bootstrap_servers,
            vec!["localhost:9093".to_string()]
        );
        assert_eq!(c.log_dir, PathBuf::from("/tmp/kraft-combined-logs"));
        assert_eq!(
            c.listener_security_protocol_map.get("CONTROLLER"),
            Some(&SecurityProtocol::Plaintext)
        );
    }

    #[test]
    fn docker_compose_environment_is_accepted() {
        // The apache/kafka single-node example compose file.
        let c = BrokerConfig::load(
            None,
            vec![
                ("KAFKA_NODE_ID", "1"),
                (
                    "KAFKA_LISTENER_SECURITY_PROTOCOL_MAP",
                    "CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT,PLAINTEXT_HOST:PLAINTEXT",
                ),
                (
                    "KAFKA_ADVERTISED_LISTENERS",
                    "PLAINTEXT_HOST://localhost:9092,PLAINTEXT://broker:19092",
                ),
                ("KAFKA_PROCESS_ROLES", "broker,controller"),
                ("KAFKA_CONTROLLER_QUORUM_VOTERS", "1@broker:29093"),
                (
                    "KAFKA_LISTENERS",
                    "CONTROLLER://:29093,PLAINTEXT_HOST://:9092,PLAINTEXT://:19092",
                ),
                ("KAFKA_INTER_BROKER_LISTENER_NAME", "PLAINTEXT"),
                ("KAFKA_CONTROLLER_LISTENER_NAMES", "CONTROLLER"),
                ("CLUSTER_ID", "4L6g3nShT-eMCtK--X86sw"),
                ("KAFKA_OFFSETS_TOPIC_REPLICATION_FACTOR", "1"),
                ("KAFKA_GROUP_INITIAL_REBALANCE_DELAY_MS", "0"),
                ("KAFKA_TRANSACTION_STATE_LOG_MIN_ISR", "1"),
                ("KAFKA_TRANSACTION_STATE_LOG_REPLICATION_FACTOR", "1"),
                ("KAFKA_LOG_DIRS", "/tmp/kraft-combined-logs"),
                ("KAFKA_HEAP_OPTS", "-Xmx512m"),
                (
                    "KAFKA_SHARE_COORDINATOR_STATE_TOPIC_REPLICATION_FACTOR",
                    "1",
                ),
            ],
            &[],
        )
        .unwrap();
        assert_eq!(c.cluster_id.as_deref(), Some("4L6g3nShT-eMCtK--X86sw"));
        assert_eq!(c.group_initial_rebalance_delay_ms, 0);
        let names: Vec<&str> = c.client_listeners.iter().map(|l| l.name.as_str()).collect();
        assert_eq!(names, vec!["PLAINTEXT_HOST", "PLAINTEXT"]);
        assert_eq!(c.client_listeners[0].advertised_address(), "localhost:9092");
        assert_eq!(c.client_listeners[1].advertised_address(), "broker:19092");
        assert_eq!(c.warnings.len(), 1, "{:?}", c.warnings);
        assert!(c.warnings[0].contains("share.coordinator.state.topic.replication.factor"));
        assert_eq!(
            c.origin("node.id"),
            Some(&Origin::Env("KAFKA_NODE_ID".to_string()))
        );
    }

    #[test]
    fn docker_listeners_default_from_advertised() {
        let c = BrokerConfig::load(
            None,
            vec![
                (
                    "KAFKA_ADVERTISED_LISTENERS",
                    "PLAINTEXT://kafka:9092,EXTERNAL://localhost:29092",
                ),
                (
                    "KAFKA_LISTENER_SECURITY_PROTOCOL_MAP",
                    "PLAINTEXT:PLAINTEXT,EXTERNAL:PLAINTEXT",
                ),
            ],
            &[],
        )
        .unwrap();
        let binds: Vec<String> = c
            .client_listeners
            .iter()
            .map(|l| l.bind_address())
            .collect();
        assert_eq!(binds, vec!["0.0.0.0:9092", "0.0.0.0:29092"]);
        assert_eq!(
            c.client_listeners[1].advertised_address(),
            "localhost:29092"
        );
    }

    #[test]
    fn precedence_and_origins_reach_describe() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("klamm.toml");
        std::fs::write(
            &path,
            "num.partitions = 2\nlog.retention.hours = 10\nmessage.max.bytes = 5\n",
        )
        .unwrap();
        let c = BrokerConfig::load(
            Some(&path),
            vec![
                ("KAFKA_NUM_PARTITIONS", "3"),
                ("KAFKA_LOG_RETENTION_HOURS", "20"),
            ],
            &["num.partitions=4".to_string()],
        )
        .unwrap();
        assert_eq!(c.num_partitions, 4);
        assert_eq!(c.log_retention_ms, 20 * MS_PER_HOUR);
        assert_eq!(c.message_max_bytes, 5);
        assert_eq!(
            c.origin("message.max.bytes"),
            Some(&Origin::File(path.clone()))
        );
        let e = c.describe_config("num.partitions").unwrap();
        assert_eq!(e.value.as_deref(), Some("4"));
        assert_eq!(e.source, ConfigSource::StaticBrokerConfig);
        assert_eq!(e.source.code(), 4);
        let e = c.describe_config("num.io.threads").unwrap();
        assert_eq!(e.value.as_deref(), Some("8"));
        assert_eq!(e.source, ConfigSource::DefaultConfig);
        assert_eq!(e.source.code(), 5);
    }

    #[test]
    fn retention_resolution_order() {
        let ms = |s: &[(&str, &str)]| resolve(s).unwrap().log_retention_ms;
        assert_eq!(ms(&[]), 168 * MS_PER_HOUR);
        assert_eq!(ms(&[("log.retention.hours", "1")]), MS_PER_HOUR);
        assert_eq!(
            ms(&[("log.retention.hours", "1"), ("log.retention.minutes", "5")]),
            5 * MS_PER_MINUTE
        );
        assert_eq!(
            ms(&[
                ("log.retention.hours", "1"),
                ("log.retention.minutes", "5"),
                ("log.retention.ms", "42")
            ]),
            42
        );
        assert_eq!(ms(&[("log.retention.ms", "-1")]), -1);
        assert_eq!(ms(&[("log.retention.hours", "-5")]), -1);
        let e = error(&[("log.retention.minutes", "0")]);
        assert!(
            e.starts_with("invalid configuration 'log.retention.minutes'"),
            "{e}"
        );
        assert_eq!(
            resolve(&[("log.roll.hours", "2")]).unwrap().log_roll_ms,
            2 * MS_PER_HOUR
        );
        assert_eq!(
            resolve(&[("log.roll.ms", "5"), ("log.roll.hours", "2")])
                .unwrap()
                .log_roll_ms,
            5
        );
        assert!(error(&[("log.roll.ms", "0")]).contains("'log.roll.ms'"));
        assert_eq!(
            resolve(&[("log.flush.interval.ms", "7")])
                .unwrap()
                .log_flush_interval_ms,
            7
        );
        assert_eq!(
            resolve(&[("log.flush.scheduler.interval.ms", "9")])
                .unwrap()
                .log_flush_interval_ms,
            9
        );
    }

    #[test]
    fn unknown_keys_and_bad_values() {
        assert_eq!(
            error(&[("foo.bar", "1")]),
            "unknown configuration 'foo.bar' (from --override)"
        );
        let e = error(&[("log.retention.houres", "1")]);
        assert!(e.contains("did you mean 'log.retention.hours'?"), "{e}");
        assert_eq!(
            error(&[("log.retention.hours", "x")]),
            "invalid value 'x' for configuration 'log.retention.hours': expected an integer \
             (from --override)"
        );
        let e = error(&[("auto.create.topics.enable", "yes")]);
        assert!(e.contains("expected a boolean"), "{e}");
        let e = error(&[("ssl.keystore.flavour", "/x")]);
        assert!(
            e.starts_with("unsupported configuration 'ssl.keystore.flavour'"),
            "{e}"
        );
        let e = error(&[("zookeeper.connect", "zk:2181")]);
        assert!(e.contains("ZooKeeper"), "{e}");
        let e = error(&[("klamm.nothing", "1")]);
        assert!(
            e.starts_with("unknown configuration 'klamm.nothing'"),
            "{e}"
        );
        // Several problems are reported together.
        let err = resolve(&[("foo", "1"), ("num.partitions", "0")]).unwrap_err();
        assert_eq!(err.errors().len(), 2, "{err}");
    }

    #[test]
    fn file_and_env_errors_name_their_source() {
        let mut raw = RawConfig::new();
        raw.add_toml_str("num.partitions = \"many\"\n", "k.toml")
            .unwrap();
        let e = BrokerConfig::resolve(&raw).unwrap_err().to_string();
        assert!(e.ends_with("(from config file 'k.toml')"), "{e}");
        let mut raw = RawConfig::new();
        raw.add_env(vec![("KAFKA_NUM_PARTITIONS", "-3")]);
        let e = BrokerConfig::resolve(&raw).unwrap_err().to_string();
        assert!(e.contains("expected a value of at least 1"), "{e}");
        assert!(
            e.ends_with("(from environment variable KAFKA_NUM_PARTITIONS)"),
            "{e}"
        );
    }

    #[test]
    fn node_and_broker_id() {
        assert_eq!(resolve(&[("broker.id", "7")]).unwrap().node_id, 7);
        assert_eq!(
            resolve(&[("broker.id", "7"), ("node.id", "7")])
                .unwrap()
                .node_id,
            7
        );
        let e = error(&[("broker.id", "7"), ("node.id", "8")]);
        assert!(e.starts_with("invalid configuration 'broker.id'"), "{e}");
        let e = error(&[("node.id", "-1")]);
        assert!(e.starts_with("invalid configuration 'node.id'"), "{e}");
        let c = resolve(&[("broker.id", "7")]).unwrap();
        assert_eq!(
            c.describe_config("node.id").unwrap().value.as_deref(),
            Some("7")
        );
        assert_eq!(
            c.describe_config("broker.id").unwrap().value.as_deref(),
            Some("7")
        );
    }

    #[test]
    fn process_roles() {
        assert!(resolve(&[("process.roles", "controller, broker")]).is_ok());
        for bad in [
            "broker",
            "controller",
            "",
            "broker,broker",
            "broker,controller,broker",
        ] {
            let e = error(&[("process.roles", bad)]);
            assert!(e.contains("klamm is a combined node"), "{bad}: {e}");
        }
        assert!(error(&[("process.roles", "worker")]).contains("expected a comma-separated list"));
    }

    #[test]
    fn listener_cross_checks() {
        let e = error(&[("listeners", "PLAINTEXT://:9092,PLAINTEXT://:9093")]);
        assert!(e.contains("'PLAINTEXT' is used more than once"), "{e}");
        let e = error(&[
            ("listeners", "A://:9092,B://:9092"),
            ("listener.security.protocol.map", "A:PLAINTEXT,B:PLAINTEXT"),
        ]);
        assert!(e.contains("port 9092"), "{e}");
        let e = error(&[("listeners", "CLIENT://:9092")]);
        assert!(
            e.starts_with("invalid configuration 'listener.security.protocol.map'"),
            "{e}"
        );
        assert!(e.contains("CLIENT:PLAINTEXT"), "{e}");
        let e = error(&[("listeners", "SSL://:9093")]);
        assert!(e.contains("has no keystore"), "{e}");
        let e = error(&[("listeners", "SASL_PLAINTEXT://:9093")]);
        assert!(e.contains("GSSAPI"), "{e}");
        let e = error(&[("listeners", "SASL_SSL://:9093")]);
        assert!(e.contains("has no keystore") && e.contains("GSSAPI"), "{e}");
        let e = error(&[("listeners", "PLAINTEXT://:70000")]);
        assert!(e.contains("between 0 and 65535"), "{e}");
        let e = error(&[("listeners", "")]);
        assert!(e.contains("at least one listener"), "{e}");
        let e = error(&[("controller.listener.names", "CONTROLLER")]);
        assert!(
            e.starts_with("invalid configuration 'controller.listener.names'"),
            "{e}"
        );
        let e = error(&[
            ("listeners", "CONTROLLER://:9093"),
            ("controller.listener.names", "CONTROLLER"),
        ]);
        assert!(e.contains("no listener is left for Kafka clients"), "{e}");
        // Port 0 (ephemeral) and IPv6 are fine.
        let c = resolve(&[("listeners", "PLAINTEXT://[::1]:0")]).unwrap();
        assert_eq!(c.client_listeners[0].advertised_address(), "[::1]:0");
        // Lower-case names are normalised.
        let c = resolve(&[
            ("listeners", "plaintext://:9092,controller://:9093"),
            ("controller.listener.names", "controller"),
        ])
        .unwrap();
        assert_eq!(c.controller_listeners[0].name, "CONTROLLER");
    }

    #[test]
    fn advertised_listener_checks() {
        let c = resolve(&[
            ("listeners", "PLAINTEXT://0.0.0.0:9092"),
            ("advertised.listeners", "PLAINTEXT://kafka.example:19092"),
        ])
        .unwrap();
        assert_eq!(
            c.client_listeners[0].advertised_address(),
            "kafka.example:19092"
        );
        assert_eq!(c.client_listeners[0].bind_address(), "0.0.0.0:9092");
        let c = resolve(&[("listeners", "PLAINTEXT://10.0.0.5:9092")]).unwrap();
        assert_eq!(c.client_listeners[0].advertised_address(), "10.0.0.5:9092");
        let c = resolve(&[("advertised.listeners", "PLAINTEXT://:9092")]).unwrap();
        assert_eq!(c.client_listeners[0].advertised_address(), "localhost:9092");
        let e = error(&[("advertised.listeners", "OTHER://h:1")]);
        assert!(
            e.contains("listener 'OTHER' is not defined in 'listeners'"),
            "{e}"
        );
        let e = error(&[("advertised.listeners", "PLAINTEXT://0.0.0.0:9092")]);
        assert!(e.contains("non-routable"), "{e}");
        let e = error(&[("advertised.listeners", "PLAINTEXT://a:1,PLAINTEXT://b:2")]);
        assert!(e.contains("more than once"), "{e}");
    }

    #[test]
    fn inter_broker_listener_checks() {
        let e = error(&[("inter.broker.listener.name", "NOPE")]);
        assert!(
            e.starts_with("invalid configuration 'inter.broker.listener.name'"),
            "{e}"
        );
        let e = error(&[
            ("listeners", "PLAINTEXT://:9092,CONTROLLER://:9093"),
            ("controller.listener.names", "CONTROLLER"),
            ("inter.broker.listener.name", "CONTROLLER"),
        ]);
        assert!(e.contains("is a controller listener"), "{e}");
        let e = error(&[
            ("inter.broker.listener.name", "PLAINTEXT"),
            ("security.inter.broker.protocol", "PLAINTEXT"),
        ]);
        assert!(e.contains("only one of"), "{e}");
        let e = error(&[("security.inter.broker.protocol", "SSL")]);
        assert!(
            e.starts_with("unsupported configuration 'security.inter.broker.protocol'"),
            "{e}"
        );
        let c = resolve(&[
            ("listeners", "CLIENT://:9092"),
            ("listener.security.protocol.map", "CLIENT:PLAINTEXT"),
        ])
        .unwrap();
        assert_eq!(c.inter_broker_listener_name.as_deref(), Some("CLIENT"));
    }

    #[test]
    fn quorum_voters() {
        let e = error(&[("controller.quorum.voters", "2@localhost:9093")]);
        assert!(
            e.starts_with("invalid configuration 'controller.quorum.voters'"),
            "{e}"
        );
        assert!(e.contains("'1@localhost:9093'"), "{e}");
        let e = error(&[("controller.quorum.voters", "1@a:9093,2@b:9093")]);
        assert!(e.contains("exactly one voter"), "{e}");
        let e = error(&[("controller.quorum.voters", "localhost:9093")]);
        assert!(e.contains("expected id@host:port"), "{e}");
        let c = resolve(&[
            ("node.id", "3"),
            ("controller.quorum.voters", "3@[::1]:9093"),
        ])
        .unwrap();
        assert_eq!(c.controller_quorum_voters[0].host, "::1");
        let e = error(&[("controller.quorum.bootstrap.servers", "nohostport")]);
        assert!(e.contains("controller.quorum.bootstrap.servers"), "{e}");
    }

    #[test]
    fn log_dirs() {
        assert_eq!(
            resolve(&[("log.dir", "/a")]).unwrap().log_dir,
            PathBuf::from("/a")
        );
        assert_eq!(
            resolve(&[("log.dir", "/a"), ("log.dirs", " /b ")])
                .unwrap()
                .log_dir,
            PathBuf::from("/b")
        );
        let e = error(&[("log.dirs", "/a,/b")]);
        assert!(e.starts_with("unsupported configuration 'log.dirs'"), "{e}");
        assert!(e.contains("exactly one log directory"), "{e}");
        assert!(error(&[("log.dirs", " , ")]).contains("a log directory is required"));
        assert!(resolve(&[("log.dir", "/a"), ("metadata.log.dir", "/a/")]).is_ok());
        let e = error(&[("log.dir", "/a"), ("metadata.log.dir", "/m")]);
        assert!(
            e.starts_with("invalid configuration 'metadata.log.dir'"),
            "{e}"
        );
    }

    #[test]
    fn single_node_limits() {
        let e = error(&[("default.replication.factor", "3")]);
        assert!(
            e.starts_with("invalid configuration 'default.replication.factor'"),
            "{e}"
        );
        let c = resolve(&[("offsets.topic.replication.factor", "1")]).unwrap();
        assert!(c.warnings.is_empty());
        let c = resolve(&[("offsets.topic.replication.factor", "3")]).unwrap();
        assert!(c.warnings.is_empty());
        let c = resolve(&[("offsets.topic.replication.factor", "2")]).unwrap();
        assert_eq!(c.warnings.len(), 1);
        assert!(error(&[("offsets.topic.replication.factor", "0")]).contains("at least 1"));
    }

    #[test]
    fn consumer_group_bounds_are_checked_as_kafka_does() {
        let c = resolve(&[]).unwrap();
        assert_eq!(
            (c.group_consumer_min_session_timeout_ms, c.group_consumer_max_session_timeout_ms),
            (45_000, 60_000)
        );
        assert_eq!(
            (c.group_consumer_min_heartbeat_interval_ms, c.group_consumer_max_heartbeat_interval_ms),
            (5_000, 15_000)
        );
        assert_eq!(c.group_consumer_migration_policy, "bidirectional");
        let e = error(&[("group.consumer.session.timeout.ms", "30000")]);
        assert!(e.contains("group.consumer.session.timeout.ms must be greater than or equal to group.consumer.min.session.timeout.ms"), "{e}");
        let e = error(&[("group.consumer.heartbeat.interval.ms", "20000")]);
        assert!(e.contains("must be less than or equal to group.consumer.max.heartbeat.interval.ms"), "{e}");
        let e = error(&[("group.consumer.min.heartbeat.interval.ms", "20000")]);
        assert!(e.contains("group.consumer.max.heartbeat.interval.ms must be greater than or equal to"), "{e}");
        let e = error(&[
            ("group.consumer.min.session.timeout.ms", "1000"),
            ("group.consumer.session.timeout.ms", "5000"),
        ]);
        assert!(e.contains("must be less than group.consumer.session.timeout.ms"), "{e}");
        let c = resolve(&[
            ("group.consumer.min.session.timeout.ms", "1000"),
            ("group.consumer.session.timeout.ms", "6000"),
            ("group.consumer.min.heartbeat.interval.ms", "100"),
            ("group.consumer.heartbeat.interval.ms", "500"),
            ("group.consumer.migration.policy", "Upgrade"),
        ])
        .unwrap();
        assert_eq!(c.group_consumer_session_timeout_ms, 6000);
        assert_eq!(c.group_consumer_migration_policy, "upgrade");
        assert!(error(&[("group.consumer.migration.policy", "sideways")]).contains("group.consumer.migration.policy"));
    }

    #[test]
    fn misc_checks() {
        let e = error(&[
            ("group.min.session.timeout.ms", "10"),
            ("group.max.session.timeout.ms", "5"),
        ]);
        assert!(
            e.starts_with("invalid configuration 'group.min.session.timeout.ms'"),
            "{e}"
        );
        assert!(
            error(&[("group.coordinator.rebalance.protocols", "consumer")]).contains("classic")
        );
        assert_eq!(
            resolve(&[("socket.send.buffer.bytes", "-1")])
                .unwrap()
                .socket_send_buffer_bytes,
            None
        );
        assert!(error(&[("socket.send.buffer.bytes", "0")]).contains("socket.send.buffer.bytes"));
        assert_eq!(
            resolve(&[("http.listener", ":8080")])
                .unwrap()
                .http_listener
                .as_deref(),
            Some("0.0.0.0:8080")
        );
        assert!(error(&[("http.listener", "8080")]).contains("http.listener"));
        assert!(error(&[("log.segment.bytes", "1000")]).contains("at least 1048576"));
        let mut raw = RawConfig::new();
        raw.set_cluster_id("not a uuid");
        let e = BrokerConfig::resolve(&raw).unwrap_err().to_string();
        assert!(e.starts_with("invalid configuration 'CLUSTER_ID'"), "{e}");
    }

    #[test]
    fn per_ip_connection_overrides() {
        let c = resolve(&[
            ("max.connections.per.ip", "3"),
            ("max.connections.per.ip.overrides", "127.0.0.2:5, ::1:7,[fe80::1]:0"),
        ])
        .unwrap();
        assert_eq!(c.max_connections_per_ip, 3);
        let get = |ip: &str| c.max_connections_per_ip_overrides.get(&ip.parse().unwrap()).copied();
        assert_eq!((get("127.0.0.2"), get("::1"), get("fe80::1")), (Some(5), Some(7), Some(0)));
        assert!(error(&[("max.connections.per.ip.overrides", "localhost:5")]).contains("not an IP address"));
        assert!(error(&[("max.connections.per.ip.overrides", "127.0.0.1")]).contains("ip:count"));
        assert!(error(&[("max.connections.per.ip", "0")]).contains("overrides"));
        assert!(resolve(&[("max.connections.per.ip", "0"), ("max.connections.per.ip.overrides", "127.0.0.1:2")]).is_ok());
        let d = resolve(&[]).unwrap();
        assert_eq!((d.socket_write_timeout_ms, d.queued_max_request_bytes_per_ip), (30_000, None));
        assert_eq!(d.max_mapped_inactive_segments, crate::storage::map_cache::DEFAULT_MAX_MAPPED_INACTIVE_SEGMENTS);
        assert_eq!(d.mapped_segment_idle_ms, 600_000);
    }

    #[test]
    fn describe_lists_every_config() {
        let c = resolve(&[("log.retention.hours", "24")]).unwrap();
        let all = c.describe();
        assert_eq!(all.len(), BROKER_CONFIG_DEFS.len());
        assert!(all.windows(2).all(|w| w[0].name < w[1].name));
        assert!(all.iter().all(|e| e.read_only && !e.is_sensitive));
        // As Kafka: log.retention.ms is unset (null) and its synonym list
        // starts at its own name, so the hours entries are dropped.
        let ms = c.describe_config("log.retention.ms").unwrap();
        assert_eq!(ms.value, None);
        assert_eq!(ms.source, ConfigSource::DefaultConfig);
        assert_eq!(ms.config_type.code(), 5);
        assert!(ms.synonyms.is_empty(), "{:?}", ms.synonyms);
        let hours = c.describe_config("log.retention.hours").unwrap();
        assert_eq!(hours.value.as_deref(), Some("24"));
        assert_eq!(hours.source, ConfigSource::StaticBrokerConfig);
        let names: Vec<(&str, ConfigSource)> = hours
            .synonyms
            .iter()
            .map(|s| (s.name.as_str(), s.source))
            .collect();
        assert_eq!(
            names,
            vec![
                ("log.retention.hours", ConfigSource::StaticBrokerConfig),
                ("log.retention.hours", ConfigSource::DefaultConfig)
            ]
        );
        let minutes = c.describe_config("log.retention.minutes").unwrap();
        assert!(minutes.synonyms.is_empty());
        let listeners = c.describe_config("listeners").unwrap();
        assert_eq!(listeners.value.as_deref(), Some("PLAINTEXT://:9092"));
        assert_eq!(listeners.config_type, ConfigType::String);
        assert_eq!(
            c.describe_config("process.roles")
                .unwrap()
                .config_type
                .code(),
            7
        );
        assert!(c.describe_config("nope").is_none());
        assert_eq!(
            c.value("log.cleaner.min.cleanable.ratio").as_deref(),
            Some("0.5")
        );
        assert_eq!(
            c.configured_value("log.retention.hours").as_deref(),
            Some("24")
        );
        assert_eq!(c.configured_value("num.partitions"), None);
    }

    #[test]
    fn to_toml_round_trips() {
        let c = resolve(&[
            ("listeners", "PLAINTEXT://:9092,CONTROLLER://:9093"),
            ("controller.listener.names", "CONTROLLER"),
            ("log.retention.minutes", "30"),
            ("log.dir", "/data/klamm"),
        ])
        .unwrap();
        let text = c.to_toml();
        assert!(
            text.contains("\"log.retention.minutes\" = 30  # from --override"),
            "{text}"
        );
        assert!(
            text.contains("# \"log.retention.ms\" =   (unset)"),
            "{text}"
        );
        assert!(
            text.contains("\"num.io.threads\" = 8  # no effect in klamm"),
            "{text}"
        );
        let mut raw = RawConfig::new();
        raw.add_toml_str(&text, "printed.toml").unwrap();
        let again = BrokerConfig::resolve(&raw).unwrap();
        assert_eq!(again.topic_defaults(), c.topic_defaults());
        assert_eq!(again.listeners, c.listeners);
        assert_eq!(again.log_dir, c.log_dir);
        assert_eq!(again.log_retention_ms, 30 * MS_PER_MINUTE);
    }

    #[test]
    fn summary_mentions_the_essentials() {
        let s = BrokerConfig::default().summary();
        assert!(s.contains("node 1"), "{s}");
        assert!(
            s.contains("PLAINTEXT://:9092 (advertised localhost:9092)"),
            "{s}"
        );
        assert!(s.contains("/tmp/klamm-logs"), "{s}");
    }

    #[test]
    fn example_config_file_is_accepted() {
        let text = include_str!("../../config/klamm.toml");
        let mut raw = RawConfig::new();
        raw.add_toml_str(text, "config/klamm.toml").unwrap();
        let c = BrokerConfig::resolve(&raw).unwrap();
        let defaults = BrokerConfig::default();
        // The example spells out the defaults.
        assert_eq!(c.topic_defaults(), defaults.topic_defaults());
        assert_eq!(c.client_listeners, defaults.client_listeners);
        assert_eq!(c.log_dir, defaults.log_dir);
        assert_eq!(c.node_id, defaults.node_id);
        assert!(c.warnings.is_empty(), "{:?}", c.warnings);
    }
}
