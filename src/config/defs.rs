//! The single table of broker config definitions: Kafka property name, type,
//! default, validator, a one-line doc, the topic-level synonym (if any), and
//! whether klamm acts on it. Defaults follow Apache Kafka 4.0 except where
//! the doc line says "klamm default".

use super::value::{ConfigType, Validator};

/// Whether klamm acts on a config.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Support {
    /// klamm reads and honours the value.
    Used,
    /// Accepted and validated for compatibility, but klamm ignores the value
    /// (thread counts, replication-only tuning, ...).
    Informational,
}

/// One broker config.
#[derive(Clone, Copy, Debug)]
pub struct BrokerConfigDef {
    /// Kafka property name, e.g. `log.retention.hours`.
    pub name: &'static str,
    pub ty: ConfigType,
    /// Default as Kafka would render it; `None` is Kafka's `null`.
    pub default: Option<&'static str>,
    pub validator: Validator,
    /// Topic-level config this broker config provides the default for.
    pub topic_config: Option<&'static str>,
    pub support: Support,
    /// One-line documentation (sent in DescribeConfigs when asked for).
    pub doc: &'static str,
}

const fn def(
    name: &'static str,
    ty: ConfigType,
    default: Option<&'static str>,
    validator: Validator,
    topic_config: Option<&'static str>,
    support: Support,
    doc: &'static str,
) -> BrokerConfigDef {
    BrokerConfigDef {
        name,
        ty,
        default,
        validator,
        topic_config,
        support,
        doc,
    }
}

const INT_MAX: &str = "2147483647";
const LONG_MAX: &str = "9223372036854775807";

use ConfigType::String as Str;
use ConfigType::{Boolean, Double, Int, List, Long, Short};
use Support::{Informational as Info, Used};
use Validator::{AtLeast, Between, DoubleBetween, ListOf, OneOf};

/// Compression codecs a topic (or the broker default) may name.
pub const COMPRESSION_TYPES: &[&str] =
    &["uncompressed", "zstd", "lz4", "snappy", "gzip", "producer"];
/// Values of `message.timestamp.type`.
pub const TIMESTAMP_TYPES: &[&str] = &["CreateTime", "LogAppendTime"];
/// Values of `cleanup.policy` list items.
pub const CLEANUP_POLICIES: &[&str] = &["compact", "delete"];
/// Kafka's security protocol names.
pub const SECURITY_PROTOCOLS: &[&str] = &["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"];

/// Kafka 4.0's minimum for `segment.bytes` / `log.segment.bytes` (KIP-1030).
pub const MIN_SEGMENT_BYTES: i64 = 1024 * 1024;

/// Every broker config klamm accepts, sorted by area.
#[rustfmt::skip]
pub static BROKER_CONFIG_DEFS: &[BrokerConfigDef] = &[
    // --- node identity and KRaft ---------------------------------------
    def("node.id", Int, Some("1"), Validator::None, None, Used,
        "The id of this node (klamm default: 1; Kafka requires it to be set)."),
    def("broker.id", Int, None, Validator::None, None, Used,
        "Legacy alias of node.id; if set it must equal node.id."),
    def("process.roles", List, Some("broker,controller"), ListOf(&["broker", "controller"]), None, Used,
        "Roles of this node; klamm is always a combined broker and controller (klamm default: broker,controller)."),
    def("controller.listener.names", Str, None, Validator::None, None, Used,
        "Comma-separated listener names used by the controller; klamm serves no Kafka clients on them."),
    def("controller.quorum.voters", List, Some(""), Validator::None, None, Used,
        "Static controller quorum as id@host:port entries; if set it must name exactly this node."),
    def("controller.quorum.bootstrap.servers", List, Some(""), Validator::None, None, Info,
        "Controller quorum bootstrap endpoints as host:port entries (accepted; a single node has no peers)."),
    def("metadata.log.dir", Str, None, Validator::None, None, Info,
        "Directory of the metadata log; klamm keeps metadata in the log directory, so it must equal it or be unset."),
    // --- listeners ------------------------------------------------------
    def("listeners", Str, Some("PLAINTEXT://:9092"), Validator::None, None, Used,
        "Comma-separated NAME://host:port endpoints to listen on; empty host binds all interfaces, port 0 is ephemeral."),
    def("advertised.listeners", Str, None, Validator::None, None, Used,
        "Endpoints given to clients, by listener name; unset means the listeners with wildcard hosts advertised as localhost."),
    def("listener.security.protocol.map", Str,
        Some("SASL_SSL:SASL_SSL,PLAINTEXT:PLAINTEXT,SSL:SSL,SASL_PLAINTEXT:SASL_PLAINTEXT"),
        Validator::None, None, Used,
        "Map of listener name to security protocol (NAME:PROTOCOL,...): PLAINTEXT, SSL, SASL_PLAINTEXT, SASL_SSL."),
    def("inter.broker.listener.name", Str, None, Validator::None, None, Used,
        "Listener used between brokers; on a single node it only has to name a client listener."),
    def("security.inter.broker.protocol", Str, Some("PLAINTEXT"), OneOf(SECURITY_PROTOCOLS), None, Used,
        "Security protocol between brokers when inter.broker.listener.name is unset; klamm supports PLAINTEXT only."),
    def("broker.rack", Str, None, Validator::None, None, Used,
        "Rack of this broker, reported in metadata responses."),
    def("http.listener", Str, None, Validator::None, None, Used,
        "klamm: http://host:port (or host:port) of the HTTP endpoint serving /health, /metrics and the web console; unset disables it."),
    def("console.write.enabled", Boolean, Some("false"), Validator::None, None, Used,
        "klamm: lets the web console change things (create and delete topics, produce records, reset an empty group's offsets); read-only when false."),
    // --- network --------------------------------------------------------
    def("socket.send.buffer.bytes", Int, Some("102400"), Validator::None, None, Used,
        "SO_SNDBUF of the listening and client sockets; -1 keeps the OS default."),
    def("socket.receive.buffer.bytes", Int, Some("102400"), Validator::None, None, Used,
        "SO_RCVBUF of the listening and client sockets; -1 keeps the OS default."),
    def("socket.request.max.bytes", Int, Some("104857600"), AtLeast(1), None, Used,
        "Largest request frame accepted, in bytes."),
    def("socket.listen.backlog.size", Int, Some("50"), AtLeast(1), None, Used,
        "Backlog of pending connections on each listening socket."),
    def("max.connections", Int, Some("10000"), AtLeast(0), None, Used,
        "Most client connections open at once (klamm default: 10000; Kafka's is 2147483647, i.e. unbounded)."),
    def("max.connections.per.ip", Int, Some(INT_MAX), AtLeast(0), None, Used,
        "Most connections from one IP address, on all listeners; a connection over it is closed right after accept."),
    def("max.connections.per.ip.overrides", Str, Some(""), Validator::None, None, Used,
        "Per-IP exceptions to max.connections.per.ip: 'ip:count,ip:count' (klamm takes IP addresses, not host names)."),
    def("connections.max.reauth.ms", Long, Some("0"), Validator::None, None, Info,
        "KIP-368 SASL session lifetime; accepted, klamm does not yet expire sessions (0: never)."),
    def("connection.failed.authentication.delay.ms", Int, Some("100"), AtLeast(0), None, Used,
        "A failed SASL authentication is answered (and the connection closed) after this many milliseconds."),
    def("sasl.server.max.receive.size", Int, Some("524288"), AtLeast(1), None, Used,
        "Largest request frame a SASL listener reads before the client has authenticated; a larger one closes the connection."),
    def("sasl.enabled.mechanisms", List, Some("GSSAPI"), Validator::None, None, Used,
        "SASL mechanisms SASL listeners accept (klamm: PLAIN, SCRAM-SHA-256, SCRAM-SHA-512); per listener with listener.name.<l>.sasl.enabled.mechanisms."),
    def("sasl.mechanism.inter.broker.protocol", Str, Some("GSSAPI"), Validator::None, None, Info,
        "SASL mechanism between brokers (accepted; klamm is a single node)."),
    def("authorizer.class.name", Str, Some(""), Validator::None, None, Used,
        "The authorizer: org.apache.kafka.metadata.authorizer.StandardAuthorizer (ACLs in the metadata log, managed with kafka-acls) or empty for none (everyone may do everything)."),
    def("super.users", Str, Some(""), Validator::None, None, Used,
        "Principals the authorizer allows everything, semicolon-separated (User:admin;User:ops)."),
    def("allow.everyone.if.no.acl.found", Boolean, Some("false"), Validator::None, None, Used,
        "With an authorizer: a resource no ACL matches is open to everyone (true) or to super users only (false)."),
    def("connections.max.idle.ms", Long, Some("600000"), Validator::None, None, Used,
        "Idle connections are closed after this many milliseconds; a request frame must arrive whole within it."),
    def("klamm.log.max.mapped.inactive.segments", Int, Some("4096"), AtLeast(1), None, Used,
        "klamm: most inactive (rolled) segments kept memory-mapped at once, broker-wide (three maps each); the least recently read are unmapped and mapped again on the next read."),
    def("klamm.log.mapped.segment.idle.ms", Long, Some("600000"), AtLeast(1000), None, Used,
        "klamm: an inactive (rolled) segment not read for this many milliseconds is unmapped (mapped again on the next read)."),
    def("klamm.socket.write.timeout.ms", Long, Some("30000"), AtLeast(1), None, Used,
        "klamm: a response not written within this many milliseconds (the client stopped reading) closes the connection."),
    def("num.network.threads", Int, Some("3"), AtLeast(1), None, Info,
        "Network threads in Kafka (accepted; klamm uses an async runtime)."),
    def("num.io.threads", Int, Some("8"), AtLeast(1), None, Info,
        "Request handler threads in Kafka (accepted; klamm uses an async runtime)."),
    def("background.threads", Int, Some("10"), AtLeast(1), None, Info,
        "Background task threads in Kafka (accepted; no effect in klamm)."),
    def("queued.max.requests", Int, Some("500"), AtLeast(1), None, Info,
        "Queued requests before network threads block (accepted; no effect in klamm)."),
    def("queued.max.request.bytes", Long, Some("-1"), Validator::None, None, Used,
        "Request bytes held in memory at once, broker-wide, counted as they arrive; at the bound connections stop being read until memory frees; -1 is klamm's bound of 512 MiB (Kafka's -1 is unbounded)."),
    def("klamm.queued.max.request.bytes.per.ip", Long, Some("-1"), Validator::None, None, Used,
        "klamm: request bytes held in memory at once for one client IP, counted as they arrive; -1 is a quarter of queued.max.request.bytes, at least socket.request.max.bytes."),
    def("message.max.bytes", Int, Some("1048588"), AtLeast(0), Some("max.message.bytes"), Used,
        "Largest record batch accepted, in bytes (topic default for max.message.bytes)."),
    def("fetch.max.bytes", Int, Some("57671680"), AtLeast(1024), None, Used,
        "Most bytes returned by one fetch request (caps the request's max_bytes)."),
    def("max.incremental.fetch.session.cache.slots", Int, Some("1000"), AtLeast(0), None, Used,
        "Most incremental fetch sessions kept."),
    // --- topics -----------------------------------------------------------
    def("num.partitions", Int, Some("1"), AtLeast(1), None, Used,
        "Default partition count of new topics."),
    def("default.replication.factor", Int, Some("1"), Validator::None, None, Used,
        "Default replication factor of new topics; a single node only supports 1."),
    def("auto.create.topics.enable", Boolean, Some("true"), Validator::None, None, Used,
        "Create a topic when a client asks for metadata of an unknown one."),
    def("delete.topic.enable", Boolean, Some("true"), Validator::None, None, Used,
        "Allow deleting topics."),
    def("min.insync.replicas", Int, Some("1"), AtLeast(1), Some("min.insync.replicas"), Used,
        "Replicas that must acknowledge an acks=all write; above 1 such writes fail on a single node."),
    def("unclean.leader.election.enable", Boolean, Some("false"), Validator::None, Some("unclean.leader.election.enable"), Info,
        "Allow out-of-sync replicas to become leader (no effect on a single node)."),
    def("compression.type", Str, Some("producer"), OneOf(COMPRESSION_TYPES), Some("compression.type"), Info,
        "Compression of stored batches; producer keeps what the producer sent."),
    def("compression.gzip.level", Int, Some("-1"), Validator::GzipLevel, Some("compression.gzip.level"), Info,
        "Gzip level when compression.type is gzip."),
    def("compression.lz4.level", Int, Some("9"), Between(1, 17), Some("compression.lz4.level"), Info,
        "LZ4 level when compression.type is lz4."),
    def("compression.zstd.level", Int, Some("3"), Between(-131072, 22), Some("compression.zstd.level"), Info,
        "Zstd level when compression.type is zstd."),
    // --- consumer groups and offsets -----------------------------------------
    def("group.initial.rebalance.delay.ms", Int, Some("3000"), Validator::None, None, Used,
        "How long the first rebalance of an empty group waits for more members, in milliseconds."),
    def("group.min.session.timeout.ms", Int, Some("6000"), Validator::None, None, Used,
        "Smallest session timeout a member may ask for."),
    def("group.max.session.timeout.ms", Int, Some("1800000"), Validator::None, None, Used,
        "Largest session timeout a member may ask for."),
    def("group.max.size", Int, Some(INT_MAX), AtLeast(1), None, Used,
        "Most members in one consumer group."),
    def("group.consumer.session.timeout.ms", Int, Some("45000"), AtLeast(1), None, Used,
        "Session timeout of consumer-protocol (KIP-848) group members, in milliseconds."),
    def("group.consumer.min.session.timeout.ms", Int, Some("45000"), AtLeast(1), None, Used,
        "Smallest consumer.session.timeout.ms a consumer group may be given, in milliseconds."),
    def("group.consumer.max.session.timeout.ms", Int, Some("60000"), AtLeast(1), None, Used,
        "Largest consumer.session.timeout.ms a consumer group may be given, in milliseconds."),
    def("group.consumer.heartbeat.interval.ms", Int, Some("5000"), AtLeast(1), None, Used,
        "Heartbeat interval given to consumer-protocol group members, in milliseconds."),
    def("group.consumer.min.heartbeat.interval.ms", Int, Some("5000"), AtLeast(1), None, Used,
        "Smallest consumer.heartbeat.interval.ms a consumer group may be given, in milliseconds."),
    def("group.consumer.max.heartbeat.interval.ms", Int, Some("15000"), AtLeast(1), None, Used,
        "Largest consumer.heartbeat.interval.ms a consumer group may be given, in milliseconds."),
    def("group.consumer.migration.policy", Str, Some("bidirectional"), Validator::None, None, Info,
        "Online (non-empty) group migration between protocols (disabled, downgrade, upgrade, bidirectional); klamm converts only empty groups, as Kafka does under every policy."),
    def("group.consumer.max.size", Int, Some(INT_MAX), AtLeast(1), None, Used,
        "Most members in one consumer-protocol group."),
    def("group.consumer.assignors", List, Some("uniform,range"), Validator::None, None, Used,
        "Server assignors of consumer-protocol groups (uniform, range, or Kafka's class names); the first is the default."),
    def("group.coordinator.rebalance.protocols", List, Some("classic,consumer"),
        ListOf(&["classic", "consumer", "share", "unknown"]), None, Info,
        "Enabled group protocols; must contain classic (consumer: KIP-848 groups)."),
    def("offsets.topic.num.partitions", Int, Some("50"), AtLeast(1), None, Info,
        "Partitions of the committed-offsets store."),
    def("offsets.topic.replication.factor", Short, Some("3"), AtLeast(1), None, Info,
        "Replication of the offsets topic (1 and Kafka's default 3 both mean: this node)."),
    def("offsets.topic.segment.bytes", Int, Some("104857600"), AtLeast(1), None, Info,
        "Segment size of the offsets topic, in bytes."),
    def("offsets.retention.minutes", Int, Some("10080"), AtLeast(1), None, Used,
        "Committed offsets of empty groups expire after this many minutes."),
    def("offsets.retention.check.interval.ms", Long, Some("600000"), AtLeast(1), None, Used,
        "How often expired offsets are looked for, in milliseconds."),
    def("offset.metadata.max.bytes", Int, Some("4096"), Validator::None, None, Used,
        "Longest metadata string allowed with a committed offset."),
    def("offsets.commit.timeout.ms", Int, Some("5000"), AtLeast(1), None, Info,
        "Offset commit timeout (accepted; commits are local in klamm)."),
    // --- transactions and producer ids ------------------------------------
    def("transaction.state.log.replication.factor", Short, Some("3"), AtLeast(1), None, Info,
        "Replication of the transaction state topic (1 and 3 both mean: this node)."),
    def("transaction.state.log.min.isr", Int, Some("2"), AtLeast(1), None, Info,
        "Min in-sync replicas of the transaction state topic (accepted; single node)."),
    def("transaction.state.log.num.partitions", Int, Some("50"), AtLeast(1), None, Info,
        "Partitions of the transaction state store."),
    def("transaction.state.log.segment.bytes", Int, Some("104857600"), AtLeast(1), None, Info,
        "Segment size of the transaction state topic, in bytes."),
    def("transaction.max.timeout.ms", Int, Some("900000"), AtLeast(1), None, Used,
        "Largest transaction timeout a producer may ask for."),
    def("transactional.id.expiration.ms", Int, Some("604800000"), AtLeast(1), None, Used,
        "Idle transactional ids expire after this many milliseconds."),
    def("transaction.partition.verification.enable", Boolean, Some("true"), Validator::None, None, Used,
        "Verify that a transactional batch of a transaction-version-1 client goes to a partition its transaction added (KIP-890)."),
    def("producer.id.expiration.ms", Int, Some("86400000"), AtLeast(1), None, Used,
        "Idle producer ids expire after this many milliseconds."),
    // --- log storage --------------------------------------------------------
    def("log.dir", Str, Some("/tmp/klamm-logs"), Validator::None, None, Used,
        "Directory holding the data (klamm default: /tmp/klamm-logs); used when log.dirs is unset."),
    def("log.dirs", Str, None, Validator::None, None, Used,
        "Data directory; Kafka allows several, klamm exactly one."),
    def("log.segment.bytes", Int, Some("1073741824"), AtLeast(MIN_SEGMENT_BYTES), Some("segment.bytes"), Used,
        "Largest size of one segment file, in bytes."),
    def("log.roll.ms", Long, None, Validator::None, Some("segment.ms"), Used,
        "Roll a new segment after this many milliseconds; unset uses log.roll.hours."),
    def("log.roll.hours", Int, Some("168"), AtLeast(1), Some("segment.ms"), Used,
        "Roll a new segment after this many hours (secondary to log.roll.ms)."),
    def("log.roll.jitter.ms", Long, None, Validator::None, Some("segment.jitter.ms"), Info,
        "Random jitter subtracted from the roll time, in milliseconds; unset uses log.roll.jitter.hours."),
    def("log.roll.jitter.hours", Int, Some("0"), AtLeast(0), Some("segment.jitter.ms"), Info,
        "Roll jitter in hours (secondary to log.roll.jitter.ms)."),
    def("log.retention.ms", Long, None, Validator::None, Some("retention.ms"), Used,
        "Delete segments older than this many milliseconds (-1: no limit); unset uses log.retention.minutes."),
    def("log.retention.minutes", Int, None, Validator::None, Some("retention.ms"), Used,
        "Retention in minutes (secondary to log.retention.ms); unset uses log.retention.hours."),
    def("log.retention.hours", Int, Some("168"), Validator::None, Some("retention.ms"), Used,
        "Retention in hours (tertiary to log.retention.ms)."),
    def("log.retention.bytes", Long, Some("-1"), Validator::None, Some("retention.bytes"), Used,
        "Delete old segments when a partition grows beyond this many bytes (-1: no limit)."),
    def("log.retention.check.interval.ms", Long, Some("300000"), AtLeast(1), None, Used,
        "How often retention is enforced, in milliseconds."),
    def("log.cleanup.policy", List, Some("delete"), ListOf(CLEANUP_POLICIES), Some("cleanup.policy"), Used,
        "Default cleanup policy: delete, compact, or both."),
    def("log.index.size.max.bytes", Int, Some("10485760"), AtLeast(4), Some("segment.index.bytes"), Used,
        "Largest size of one offset index file, in bytes."),
    def("log.index.interval.bytes", Int, Some("4096"), AtLeast(0), Some("index.interval.bytes"), Used,
        "Bytes of log between two offset index entries."),
    def("log.flush.interval.messages", Long, Some(LONG_MAX), AtLeast(1), Some("flush.messages"), Used,
        "Force an fsync after this many messages."),
    def("log.flush.interval.ms", Long, None, Validator::None, Some("flush.ms"), Used,
        "Force an fsync after this many milliseconds; unset uses log.flush.scheduler.interval.ms."),
    def("log.flush.scheduler.interval.ms", Long, Some(LONG_MAX), Validator::None, Some("flush.ms"), Used,
        "How often the flusher checks whether a log needs an fsync, in milliseconds."),
    def("log.flush.offset.checkpoint.interval.ms", Int, Some("60000"), AtLeast(0), None, Used,
        "How often the recovery point is checkpointed, in milliseconds."),
    def("log.flush.start.offset.checkpoint.interval.ms", Int, Some("60000"), AtLeast(0), None, Info,
        "How often log start offsets are checkpointed, in milliseconds."),
    def("log.segment.delete.delay.ms", Long, Some("60000"), AtLeast(0), Some("file.delete.delay.ms"), Info,
        "Delay before a deleted segment's files are removed, in milliseconds."),
    def("log.preallocate", Boolean, Some("false"), Validator::None, Some("preallocate"), Info,
        "Preallocate segment files when they are created."),
    def("log.message.timestamp.type", Str, Some("CreateTime"), OneOf(TIMESTAMP_TYPES), Some("message.timestamp.type"), Used,
        "Whether record timestamps are the producer's (CreateTime) or the broker's (LogAppendTime)."),
    def("log.message.timestamp.before.max.ms", Long, Some(LONG_MAX), AtLeast(0), Some("message.timestamp.before.max.ms"), Used,
        "With CreateTime, reject records whose timestamp is more than this far in the past."),
    def("log.message.timestamp.after.max.ms", Long, Some("3600000"), AtLeast(0), Some("message.timestamp.after.max.ms"), Used,
        "With CreateTime, reject records whose timestamp is more than this far in the future."),
    def("num.recovery.threads.per.data.dir", Int, Some("2"), AtLeast(1), None, Info,
        "Threads used for log recovery at startup (accepted; no effect in klamm)."),
    def("log.cleaner.enable", Boolean, Some("true"), Validator::None, None, Used,
        "Run the log cleaner for compacted topics."),
    def("log.cleaner.threads", Int, Some("1"), AtLeast(0), None, Used,
        "Log cleaner threads (0: none, as with log.cleaner.enable=false)."),
    def("log.cleaner.backoff.ms", Long, Some("15000"), AtLeast(0), None, Used,
        "Sleep of the log cleaner when there is nothing to clean, in milliseconds."),
    def("log.cleaner.dedupe.buffer.size", Long, Some("134217728"), Validator::None, None, Used,
        "Memory of the cleaner's key-to-offset map, shared by its threads, in bytes."),
    def("log.cleaner.io.max.bytes.per.second", Double, Some("1.7976931348623157E308"), Validator::None, None, Used,
        "Bytes the cleaner reads and writes per second at most."),
    def("log.cleaner.delete.retention.ms", Long, Some("86400000"), AtLeast(0), Some("delete.retention.ms"), Used,
        "How long tombstones are kept in compacted topics, in milliseconds."),
    def("log.cleaner.min.compaction.lag.ms", Long, Some("0"), AtLeast(0), Some("min.compaction.lag.ms"), Used,
        "Least time a record stays uncompacted, in milliseconds."),
    def("log.cleaner.max.compaction.lag.ms", Long, Some(LONG_MAX), AtLeast(1), Some("max.compaction.lag.ms"), Used,
        "Longest time a record stays uncompacted, in milliseconds."),
    def("log.cleaner.min.cleanable.ratio", Double, Some("0.5"), DoubleBetween(0.0, 1.0), Some("min.cleanable.dirty.ratio"), Used,
        "Least dirty/total ratio before a log is compacted."),
];

/// Looks up a broker config by its Kafka name.
pub fn broker_config_def(name: &str) -> Option<&'static BrokerConfigDef> {
    BROKER_CONFIG_DEFS.iter().find(|d| d.name == name)
}

/// Broker configs that also set a given topic-level config, highest priority
/// first (Kafka's synonym order, e.g. `retention.ms` ->
/// `log.retention.ms`, `log.retention.minutes`, `log.retention.hours`).
pub fn broker_synonyms_of_topic_config(topic_config: &str) -> Vec<&'static str> {
    BROKER_CONFIG_DEFS
        .iter()
        .filter(|d| d.topic_config == Some(topic_config))
        .map(|d| d.name)
        .collect()
}

/// Kafka's `brokerConfigSynonyms`: the broker configs that set the same
/// thing as `name`, highest priority first (`name` need not be first; the
/// describer drops the entries before `name`).
pub fn broker_config_synonyms(name: &str) -> Vec<&'static str> {
    const RETENTION: &[&str] = &[
        "log.retention.ms",
        "log.retention.minutes",
        "log.retention.hours",
    ];
    const ROLL: &[&str] = &["log.roll.ms", "log.roll.hours"];
    const JITTER: &[&str] = &["log.roll.jitter.ms", "log.roll.jitter.hours"];
    let chain: &[&'static str] = match name {
        "log.retention.ms" | "log.retention.minutes" | "log.retention.hours" => RETENTION,
        "log.roll.ms" | "log.roll.hours" => ROLL,
        "log.roll.jitter.ms" | "log.roll.jitter.hours" => JITTER,
        "log.flush.interval.ms" => &["log.flush.interval.ms", "log.flush.scheduler.interval.ms"],
        _ => {
            return broker_config_def(name)
                .map(|d| vec![d.name])
                .unwrap_or_default()
        }
    };
    chain.to_vec()
}

/// Why a name is not a klamm config, for the error message: a pointer to
/// what to do instead, if there is one.
pub fn unknown_config_hint(name: &str) -> Option<String> {
    const REMOVED_IN_4_0: &[&str] = &[
        "log.message.format.version",
        "message.format.version",
        "log.message.downconversion.enable",
        "log.message.timestamp.difference.max.ms",
        "offsets.commit.required.acks",
        "inter.broker.protocol.version",
        "control.plane.listener.name",
    ];
    if name.starts_with("zookeeper.") {
        return Some("ZooKeeper mode is gone in Kafka 4.0; klamm is KRaft-style only".into());
    }
    if REMOVED_IN_4_0.contains(&name) {
        return Some("removed or not applicable in Kafka 4.0 KRaft mode".into());
    }
    if let Some(stripped) = name.strip_prefix("klamm.") {
        return Some(format!("no klamm-specific setting '{stripped}' exists"));
    }
    closest_name(name).map(|n| format!("did you mean '{n}'?"))
}

/// Prefixes of Kafka settings that configure features klamm lacks (TLS,
/// SASL, per-listener overrides); such keys are rejected as unsupported.
pub fn unsupported_prefix(name: &str) -> Option<&'static str> {
    const PREFIXES: &[(&str, &str)] = &[
        (
            "ssl.",
            "not a TLS setting klamm knows: see the ssl.* keys in the README",
        ),
        (
            "sasl.",
            "not a SASL setting klamm knows: it reads sasl.enabled.mechanisms and, per listener, \
             listener.name.<listener>.sasl.enabled.mechanisms and \
             listener.name.<listener>.<mechanism>.sasl.jaas.config",
        ),
        (
            "listener.name.",
            "per-listener settings are not supported yet",
        ),
        ("remote.log.", "tiered storage is not supported"),
    ];
    PREFIXES
        .iter()
        .find(|(p, _)| name.starts_with(p))
        .map(|(_, why)| *why)
}

/// The known broker config closest to `name` (edit distance at most 3).
fn closest_name(name: &str) -> Option<&'static str> {
    if name.len() > super::MAX_CONFIG_NAME_BYTES {
        return None;
    }
    BROKER_CONFIG_DEFS
        .iter()
        .map(|d| (edit_distance(name, d.name), d.name))
        .filter(|(dist, _)| *dist <= 3)
        .min()
        .map(|(_, n)| n)
}

/// Levenshtein distance over bytes; inputs are bounded by the caller.
fn edit_distance(a: &str, b: &str) -> usize {
    let (a, b) = (a.as_bytes(), b.as_bytes());
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    let mut cur = vec![0; b.len() + 1];
    for (i, &ca) in a.iter().enumerate() {
        cur[0] = i + 1;
        for (j, &cb) in b.iter().enumerate() {
            let subst = prev[j] + usize::from(ca != cb);
            cur[j + 1] = subst.min(prev[j + 1] + 1).min(cur[j] + 1);
        }
        std::mem::swap(&mut prev, &mut cur);
    }
    prev[b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::value::parse_value;

    #[test]
    fn names_are_unique_and_defaults_valid() {
        let mut names: Vec<&str> = BROKER_CONFIG_DEFS.iter().map(|d| d.name).collect();
        names.sort_unstable();
        let before = names.len();
        names.dedup();
        assert_eq!(before, names.len(), "duplicate broker config name");
        for d in BROKER_CONFIG_DEFS {
            assert!(!d.doc.is_empty(), "{} has no doc", d.name);
            assert!(d.name.len() <= crate::config::MAX_CONFIG_NAME_BYTES);
            if let Some(default) = d.default {
                parse_value(d.name, default, d.ty, d.validator)
                    .unwrap_or_else(|e| panic!("default of {} is invalid: {e}", d.name));
            }
        }
    }

    #[test]
    fn kafka_4_defaults() {
        let default = |n: &str| broker_config_def(n).unwrap().default;
        assert_eq!(default("log.retention.hours"), Some("168"));
        assert_eq!(default("log.segment.bytes"), Some("1073741824"));
        assert_eq!(default("message.max.bytes"), Some("1048588"));
        assert_eq!(default("socket.request.max.bytes"), Some("104857600"));
        assert_eq!(
            default("log.message.timestamp.after.max.ms"),
            Some("3600000")
        );
        assert_eq!(default("num.recovery.threads.per.data.dir"), Some("2"));
        assert_eq!(default("offsets.retention.minutes"), Some("10080"));
        assert_eq!(default("log.flush.interval.ms"), None);
        assert_eq!(default("log.flush.interval.messages"), Some(LONG_MAX));
    }

    #[test]
    fn synonyms() {
        assert_eq!(
            broker_synonyms_of_topic_config("retention.ms"),
            vec![
                "log.retention.ms",
                "log.retention.minutes",
                "log.retention.hours"
            ]
        );
        assert_eq!(
            broker_synonyms_of_topic_config("segment.ms"),
            vec!["log.roll.ms", "log.roll.hours"]
        );
        assert_eq!(
            broker_synonyms_of_topic_config("flush.ms"),
            vec!["log.flush.interval.ms", "log.flush.scheduler.interval.ms"]
        );
        assert_eq!(
            broker_synonyms_of_topic_config("max.message.bytes"),
            vec!["message.max.bytes"]
        );
        assert!(broker_synonyms_of_topic_config("remote.storage.enable").is_empty());
        assert_eq!(
            broker_config_synonyms("num.partitions"),
            vec!["num.partitions"]
        );
        assert!(broker_config_synonyms("nope").is_empty());
    }

    #[test]
    fn hints() {
        assert_eq!(
            unknown_config_hint("log.retention.houres").as_deref(),
            Some("did you mean 'log.retention.hours'?")
        );
        assert!(unknown_config_hint("zookeeper.connect")
            .unwrap()
            .contains("ZooKeeper"));
        assert!(unknown_config_hint("completely.different.thing.entirely").is_none());
        assert!(unsupported_prefix("ssl.keystore.location").is_some());
        assert!(unsupported_prefix("log.dir").is_none());
        assert_eq!(edit_distance("kitten", "sitting"), 3);
    }
}
