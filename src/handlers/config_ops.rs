//! The logic shared by AlterConfigs (key 33) and IncrementalAlterConfigs
//! (key 44), kept free of I/O so it can be tested: Kafka's per-resource
//! preprocessing (duplicate keys, null values), the incremental operations
//! on a topic's overrides (SET / DELETE / APPEND / SUBTRACT, as Kafka's
//! `ConfigurationControlManager`), the topic checks in Kafka's order and
//! wording, and the answers for the broker and broker-logger resources.
//!
//! klamm has no dynamic broker configuration: every broker setting is
//! static (file, environment, `--override`). A change to a broker config is
//! therefore rejected the way Kafka rejects a read-only one (INVALID_REQUEST
//! "Cannot update these configs dynamically: Set(...)"); deleting dynamic
//! broker configs succeeds, since there are none. klamm has no log4j
//! loggers either, so every BROKER_LOGGER logger name is unknown.

use std::collections::{BTreeMap, HashSet};

use super::RequestContext;
use crate::config::{kafka_check_topic_configs, BrokerConfig, TopicConfig, TopicConfigDefs};
use crate::controller::topic_name;
use crate::protocol::ErrorCode;
use crate::security::authorizer::{AclOperation, ResourceType, CLUSTER_NAME};

/// Kafka's `ConfigResource.Type` codes.
pub const RESOURCE_TOPIC: i8 = 2;
pub const RESOURCE_BROKER: i8 = 4;
pub const RESOURCE_BROKER_LOGGER: i8 = 8;
pub const RESOURCE_GROUP: i8 = 32;

/// Most config entries one resource of an alter request may carry.
pub const MAX_ENTRIES_PER_RESOURCE: usize = 1024;

/// As Kafka: DESCRIBE_CONFIGS / ALTER_CONFIGS (`op`) on the topic or the
/// group, on the cluster for the broker resources; the error of a refusal.
pub fn authorize_resource(ctx: &RequestContext<'_>, resource_type: i8, name: &str, op: AclOperation) -> Result<(), ApiError> {
    let (rt, name, code) = match resource_type {
        RESOURCE_TOPIC => (ResourceType::Topic, name, ErrorCode::TopicAuthorizationFailed),
        RESOURCE_GROUP => (ResourceType::Group, name, ErrorCode::GroupAuthorizationFailed),
        _ => (ResourceType::Cluster, CLUSTER_NAME, ErrorCode::ClusterAuthorizationFailed),
    };
    if ctx.authorized(op, rt, name) {
        Ok(())
    } else {
        Err(ApiError { code, message: Some(crate::cli::errors::error_description(code.code()).to_string()) })
    }
}

/// An error for one resource, as Kafka's `ApiError`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ApiError {
    pub code: ErrorCode,
    pub message: Option<String>,
}

impl ApiError {
    pub fn new(code: ErrorCode, message: impl Into<String>) -> ApiError {
        ApiError { code, message: Some(message.into()) }
    }

    fn invalid_request(message: impl Into<String>) -> ApiError {
        ApiError::new(ErrorCode::InvalidRequest, message)
    }

    fn invalid_config(message: impl Into<String>) -> ApiError {
        ApiError::new(ErrorCode::InvalidConfig, message)
    }
}

/// Kafka's `AlterConfigOp.OpType`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OpType {
    Set = 0,
    Delete = 1,
    Append = 2,
    Subtract = 3,
}

impl OpType {
    pub fn from_code(code: i8) -> Option<OpType> {
        match code {
            0 => Some(OpType::Set),
            1 => Some(OpType::Delete),
            2 => Some(OpType::Append),
            3 => Some(OpType::Subtract),
            _ => None,
        }
    }

    /// Kafka's enum name, as its messages print it.
    pub fn name(self) -> &'static str {
        match self {
            OpType::Set => "SET",
            OpType::Delete => "DELETE",
            OpType::Append => "APPEND",
            OpType::Subtract => "SUBTRACT",
        }
    }
}

/// One requested change. The legacy AlterConfigs API is SET of every entry
/// (the given set replaces the resource's configs).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AlterEntry {
    pub name: String,
    /// The raw operation code (incremental) or 0 (legacy).
    pub op: i8,
    pub value: Option<String>,
}

/// The resources of a request that appear more than once (Kafka answers
/// each copy with INVALID_REQUEST).
pub fn duplicate_resources<'a>(resources: impl Iterator<Item = (i8, &'a str)>) -> HashSet<(i8, String)> {
    let mut seen = HashSet::new();
    let mut dups = HashSet::new();
    for (t, n) in resources {
        if !seen.insert((t, n.to_string())) {
            dups.insert((t, n.to_string()));
        }
    }
    dups
}

/// The error for a resource listed more than once.
pub fn duplicate_resource_error() -> ApiError {
    ApiError::invalid_request("Each resource must appear at most once.")
}

/// Kafka's `ConfigAdminManager.preprocess` checks common to every resource
/// type: at most one entry per key, and no null value except for DELETE.
pub fn preprocess(entries: &[AlterEntry], incremental: bool) -> Result<(), ApiError> {
    if entries.len() > MAX_ENTRIES_PER_RESOURCE {
        return Err(ApiError::invalid_request(format!(
            "At most {MAX_ENTRIES_PER_RESOURCE} configs may be altered at once"
        )));
    }
    let mut names = HashSet::new();
    if !entries.iter().all(|e| names.insert(e.name.as_str())) {
        return Err(ApiError::invalid_request("Error due to duplicate config keys"));
    }
    let nulls: Vec<&str> = entries
        .iter()
        .filter(|e| e.value.is_none() && !(incremental && e.op == OpType::Delete as i8))
        .map(|e| e.name.as_str())
        .collect();
    if !nulls.is_empty() {
        return Err(ApiError::invalid_request(format!("Null value not supported for : {}", nulls.join(", "))));
    }
    Ok(())
}

/// The static Kafka default of a topic config (what APPEND and SUBTRACT
/// start from when the topic has no override, as Kafka's `getParts`).
fn topic_static_default(name: &str) -> Option<String> {
    let def = TopicConfigDefs::get(name)?;
    match def.fixed_default {
        Some(d) => Some(d.to_string()),
        None => TopicConfig::default().value_of(name).and_then(|v| v.to_kafka_string()),
    }
}

fn split_parts(value: &str) -> Vec<String> {
    value.split(',').filter(|s| !s.is_empty()).map(str::to_string).collect()
}

/// Applies incremental operations to a topic's overrides, as Kafka's
/// controller does: SET replaces, DELETE removes, APPEND adds list items not
/// yet present and SUBTRACT removes items (both only for LIST configs,
/// starting from the default when the key has no override).
pub fn apply_topic_ops(current: &BTreeMap<String, String>, entries: &[AlterEntry]) -> Result<BTreeMap<String, String>, ApiError> {
    apply_ops(
        current,
        entries,
        |name| TopicConfigDefs::get(name).is_some_and(|d| d.ty == crate::config::ConfigType::List),
        topic_static_default,
    )
}

/// Incremental operations on a resource's dynamic configs: `is_list`
/// tells the keys APPEND and SUBTRACT may change, `default_of` the value
/// they start from when the key has no override.
fn apply_ops(
    current: &BTreeMap<String, String>,
    entries: &[AlterEntry],
    is_list: impl Fn(&str) -> bool,
    default_of: impl Fn(&str) -> Option<String>,
) -> Result<BTreeMap<String, String>, ApiError> {
    let mut next = current.clone();
    for e in entries {
        let Some(op) = OpType::from_code(e.op) else {
            return Err(ApiError::invalid_request(format!("Unknown operations type {}", e.op)));
        };
        match op {
            OpType::Set => {
                if let Some(v) = &e.value {
                    next.insert(e.name.clone(), v.clone());
                }
            }
            OpType::Delete => {
                next.remove(&e.name);
            }
            OpType::Append | OpType::Subtract => {
                if !is_list(&e.name) {
                    return Err(ApiError::invalid_config(format!(
                        "Can't {} to key {} because its type is not LIST.",
                        op.name(),
                        e.name
                    )));
                }
                let old = current.get(&e.name).cloned().or_else(|| default_of(&e.name));
                let mut parts = old.as_deref().map(split_parts).unwrap_or_default();
                let given = e.value.as_deref().unwrap_or("");
                for item in given.split(',') {
                    if op == OpType::Append {
                        if !parts.iter().any(|p| p == item) {
                            parts.push(item.to_string());
                        }
                    } else if let Some(i) = parts.iter().position(|p| p == item) {
                        parts.remove(i);
                    }
                }
                next.insert(e.name.clone(), parts.join(","));
            }
        }
    }
    Ok(next)
}

/// Kafka's checks of a topic resource's new overrides, in its order: the
/// name (`Default topic resources are not allowed.` for the empty name,
/// INVALID_TOPIC_EXCEPTION otherwise), the values (INVALID_CONFIG), then
/// existence (UNKNOWN_TOPIC_OR_PARTITION).
pub fn check_topic_resource(broker: &BrokerConfig, name: &str, configs: &BTreeMap<String, String>, exists: bool) -> Result<(), ApiError> {
    if name.is_empty() {
        return Err(ApiError::invalid_request("Default topic resources are not allowed."));
    }
    topic_name::validate(name).map_err(|m| ApiError::new(ErrorCode::InvalidTopicException, m))?;
    kafka_check_topic_configs(broker, configs).map_err(ApiError::invalid_config)?;
    if !exists {
        return Err(ApiError::new(
            ErrorCode::UnknownTopicOrPartition,
            format!("The topic '{name}' does not exist."),
        ));
    }
    Ok(())
}

/// Kafka's check of a broker resource name: empty (the cluster default) or
/// this node's id.
pub fn check_broker_name(node_id: i32, name: &str) -> Result<(), ApiError> {
    if name.is_empty() {
        return Ok(());
    }
    let id: i32 = name
        .parse()
        .map_err(|_| ApiError::invalid_request(format!("Node id must be an integer, but it is: {name}")))?;
    if id != node_id {
        return Err(ApiError::invalid_request(format!(
            "Unexpected broker id, expected {node_id}, but received {name}"
        )));
    }
    Ok(())
}

/// Scala's `Set(...)` rendering, as Kafka's message prints the names.
fn scala_set(names: &[&str]) -> String {
    format!("Set({})", names.join(", "))
}

/// An alter of the broker resource. Nothing can change (no dynamic broker
/// configs); removing dynamic configs is a no-op success.
pub fn alter_broker(node_id: i32, name: &str, entries: &[AlterEntry], incremental: bool) -> Result<(), ApiError> {
    check_broker_name(node_id, name)?;
    let mut changed = Vec::new();
    for e in entries {
        let op = if incremental {
            OpType::from_code(e.op).ok_or_else(|| ApiError::invalid_request(format!("Unknown operations type {}", e.op)))?
        } else {
            OpType::Set
        };
        match op {
            OpType::Delete => {}
            OpType::Set => changed.push(e.name.as_str()),
            OpType::Append | OpType::Subtract => {
                let Some(def) = crate::config::broker_config_def(&e.name) else {
                    return Err(ApiError::invalid_config(format!("Unknown config name: {}", e.name)));
                };
                if def.ty != crate::config::ConfigType::List {
                    let verb = if op == OpType::Append { "append" } else { "subtract" };
                    return Err(ApiError::invalid_config(format!(
                        "Config value {verb} is not allowed for config key: {}",
                        e.name
                    )));
                }
                changed.push(e.name.as_str());
            }
        }
    }
    if changed.is_empty() {
        return Ok(());
    }
    Err(ApiError::invalid_request(format!("Cannot update these configs dynamically: {}", scala_set(&changed))))
}

/// An alter of the broker-logger resource: klamm has no loggers, so every
/// SET or DELETE names an unknown logger.
pub fn alter_broker_logger(node_id: i32, name: &str, entries: &[AlterEntry]) -> Result<(), ApiError> {
    let id: i32 = name
        .parse()
        .map_err(|_| ApiError::invalid_request(format!("Node id must be an integer, but it is: {name}")))?;
    if id != node_id {
        // Kafka's message prints its own id twice.
        return Err(ApiError::invalid_request(format!(
            "Unexpected node id. Expected {node_id}, but received {node_id}"
        )));
    }
    // Every logger name is unknown, so the first entry decides.
    let Some(e) = entries.first() else {
        return Ok(());
    };
    match OpType::from_code(e.op) {
        Some(OpType::Set | OpType::Delete) => {
            Err(ApiError::invalid_config(format!("Logger {} does not exist!", e.name)))
        }
        Some(op) => Err(ApiError::invalid_request(format!(
            "{} operation is not allowed for the BROKER_LOGGER resource",
            op.name()
        ))),
        None => Err(ApiError::invalid_request(format!(
            "Unknown operation type {} is not allowed for the BROKER_LOGGER resource",
            e.op
        ))),
    }
}

/// Applies incremental operations to a group's dynamic configs: SET and
/// DELETE (no group config is a LIST, so APPEND and SUBTRACT are refused as
/// Kafka's controller refuses them); the legacy API replaces the whole set.
pub fn apply_group_ops(
    current: &BTreeMap<String, String>,
    entries: &[AlterEntry],
    incremental: bool,
) -> Result<BTreeMap<String, String>, ApiError> {
    if incremental {
        return apply_ops(current, entries, |_| false, |_| None);
    }
    // The legacy API: every entry sets its key, starting from nothing.
    Ok(entries.iter().filter_map(|e| Some((e.name.clone(), e.value.clone()?))).collect())
}

/// Serialises read-modify-write changes of group configs.
static GROUP_ALTER_LOCK: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// Alters a group's dynamic configs (the GROUP resource): the new set is
/// checked as Kafka's controller does (`GroupConfig.validate` against the
/// broker's bounds) and, unless `validate_only`, stored in the metadata log.
/// The group need not exist.
pub async fn alter_group(
    broker: &std::sync::Arc<crate::broker::Broker>,
    name: &str,
    entries: &[AlterEntry],
    incremental: bool,
    validate_only: bool,
) -> Result<(), ApiError> {
    if name.is_empty() {
        return Err(ApiError::invalid_request("Default group resources are not allowed."));
    }
    let _guard = GROUP_ALTER_LOCK.lock().await;
    let image = broker.controller.image();
    let empty = BTreeMap::new();
    let current = image.group_config(name).unwrap_or(&empty);
    let next = apply_group_ops(current, entries, incremental)?;
    crate::group::group_config::validate(broker.config(), &next).map_err(ApiError::invalid_config)?;
    if validate_only || &next == current {
        return Ok(());
    }
    broker.set_group_configs(name, next).await.map_err(|e| ApiError::new(e.code, e.message))
}

/// Serialises read-modify-write changes of topic overrides, so two
/// concurrent alters cannot lose each other's update.
static TOPIC_ALTER_LOCK: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// Alters a topic's overrides: `change` computes the new set from the
/// current one; the result is checked as Kafka does and, unless
/// `validate_only`, stored durably and applied to the topic's logs.
pub async fn alter_topic(
    broker: &std::sync::Arc<crate::broker::Broker>,
    name: &str,
    change: impl FnOnce(&BTreeMap<String, String>) -> Result<BTreeMap<String, String>, ApiError>,
    validate_only: bool,
) -> Result<(), ApiError> {
    let _guard = TOPIC_ALTER_LOCK.lock().await;
    let image = broker.controller.image();
    let topic = image.topic(name);
    let empty = BTreeMap::new();
    let current = topic.map_or(&empty, |t| &t.configs);
    let next = change(current)?;
    check_topic_resource(broker.config(), name, &next, topic.is_some())?;
    if validate_only || &next == current {
        return Ok(());
    }
    broker
        .set_topic_configs(name, next)
        .await
        .map_err(|e| ApiError::new(e.code, e.message))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(name: &str, op: OpType, value: Option<&str>) -> AlterEntry {
        AlterEntry { name: name.into(), op: op as i8, value: value.map(str::to_string) }
    }

    fn map(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }

    #[test]
    fn incremental_operations() {
        let cur = map(&[("retention.ms", "1000"), ("cleanup.policy", "compact,delete")]);
        let next = apply_topic_ops(
            &cur,
            &[entry("retention.ms", OpType::Delete, None), entry("segment.ms", OpType::Set, Some("5"))],
        )
        .unwrap();
        assert_eq!(next, map(&[("cleanup.policy", "compact,delete"), ("segment.ms", "5")]));

        // SUBTRACT down to the empty list, as Kafka stores it.
        let next = apply_topic_ops(&cur, &[entry("cleanup.policy", OpType::Subtract, Some("delete"))]).unwrap();
        assert_eq!(next["cleanup.policy"], "compact");
        let next = apply_topic_ops(&next, &[entry("cleanup.policy", OpType::Subtract, Some("compact"))]).unwrap();
        assert_eq!(next["cleanup.policy"], "");

        // APPEND starts from the static default ("delete") without override
        // and does not repeat items.
        let next = apply_topic_ops(&BTreeMap::new(), &[entry("cleanup.policy", OpType::Append, Some("compact"))]).unwrap();
        assert_eq!(next["cleanup.policy"], "delete,compact");
        let again = apply_topic_ops(&next, &[entry("cleanup.policy", OpType::Append, Some("compact,delete"))]).unwrap();
        assert_eq!(again["cleanup.policy"], "delete,compact");

        let e = apply_topic_ops(&cur, &[entry("retention.ms", OpType::Append, Some("5"))]).unwrap_err();
        assert_eq!(e.code, ErrorCode::InvalidConfig);
        assert_eq!(e.message.as_deref(), Some("Can't APPEND to key retention.ms because its type is not LIST."));
        let e = apply_topic_ops(&cur, &[AlterEntry { name: "x".into(), op: 9, value: None }]).unwrap_err();
        assert_eq!(e.code, ErrorCode::InvalidRequest);
    }

    #[test]
    fn group_operations() {
        let cur = map(&[("consumer.session.timeout.ms", "50000")]);
        let next = apply_group_ops(&cur, &[entry("consumer.heartbeat.interval.ms", OpType::Set, Some("6000"))], true).unwrap();
        assert_eq!(next, map(&[("consumer.heartbeat.interval.ms", "6000"), ("consumer.session.timeout.ms", "50000")]));
        let next = apply_group_ops(&next, &[entry("consumer.session.timeout.ms", OpType::Delete, None)], true).unwrap();
        assert_eq!(next, map(&[("consumer.heartbeat.interval.ms", "6000")]));
        // The legacy API replaces the whole set.
        let next = apply_group_ops(&cur, &[entry("consumer.heartbeat.interval.ms", OpType::Set, Some("6000"))], false).unwrap();
        assert_eq!(next, map(&[("consumer.heartbeat.interval.ms", "6000")]));
        let e = apply_group_ops(&cur, &[entry("consumer.session.timeout.ms", OpType::Append, Some("1"))], true).unwrap_err();
        assert_eq!(e, ApiError::invalid_config("Can't APPEND to key consumer.session.timeout.ms because its type is not LIST."));
    }

    #[test]
    fn preprocessing() {
        assert!(preprocess(&[entry("a", OpType::Delete, None)], true).is_ok());
        let e = preprocess(&[entry("a", OpType::Delete, None)], false).unwrap_err();
        assert_eq!(e.message.as_deref(), Some("Null value not supported for : a"));
        let e = preprocess(&[entry("a", OpType::Set, None), entry("b", OpType::Append, None)], true).unwrap_err();
        assert_eq!(e, ApiError::invalid_request("Null value not supported for : a, b"));
        let e = preprocess(&[entry("a", OpType::Set, Some("1")), entry("a", OpType::Set, Some("2"))], true).unwrap_err();
        assert_eq!(e, ApiError::invalid_request("Error due to duplicate config keys"));
        let dups = duplicate_resources([(2, "t"), (4, "1"), (2, "t"), (2, "u")].into_iter());
        assert_eq!(dups.len(), 1);
        assert!(dups.contains(&(2, "t".to_string())));
    }

    #[test]
    fn topic_checks_in_kafka_order() {
        let b = BrokerConfig::default();
        let ok = map(&[("retention.ms", "1000")]);
        assert!(check_topic_resource(&b, "t", &ok, true).is_ok());
        let e = check_topic_resource(&b, "t", &ok, false).unwrap_err();
        assert_eq!(e, ApiError::new(ErrorCode::UnknownTopicOrPartition, "The topic 't' does not exist."));
        // Values are checked before existence.
        let bad = map(&[("retention.ms", "abc")]);
        let e = check_topic_resource(&b, "t", &bad, false).unwrap_err();
        assert_eq!(e, ApiError::invalid_config("Invalid value abc for configuration retention.ms: Not a number of type LONG"));
        let e = check_topic_resource(&b, "", &ok, true).unwrap_err();
        assert_eq!(e, ApiError::invalid_request("Default topic resources are not allowed."));
        let e = check_topic_resource(&b, "a b", &ok, true).unwrap_err();
        assert_eq!(e.code, ErrorCode::InvalidTopicException);
        let e = check_topic_resource(&b, "t", &map(&[("foo.bar", "1")]), true).unwrap_err();
        assert_eq!(e, ApiError::invalid_config("Unknown topic config name: foo.bar"));
    }

    #[test]
    fn broker_resources() {
        assert!(alter_broker(1, "1", &[], true).is_ok());
        assert!(alter_broker(1, "", &[entry("log.retention.ms", OpType::Delete, None)], true).is_ok());
        let e = alter_broker(1, "1", &[entry("log.dirs", OpType::Set, Some("/x"))], true).unwrap_err();
        assert_eq!(e, ApiError::invalid_request("Cannot update these configs dynamically: Set(log.dirs)"));
        let e = alter_broker(1, "2", &[], true).unwrap_err();
        assert_eq!(e, ApiError::invalid_request("Unexpected broker id, expected 1, but received 2"));
        let e = alter_broker(1, "x", &[], false).unwrap_err();
        assert_eq!(e, ApiError::invalid_request("Node id must be an integer, but it is: x"));
        let e = alter_broker(1, "1", &[entry("nope.nope", OpType::Append, Some("a"))], true).unwrap_err();
        assert_eq!(e, ApiError::invalid_config("Unknown config name: nope.nope"));
        let e = alter_broker(1, "1", &[entry("num.partitions", OpType::Subtract, Some("a"))], true).unwrap_err();
        assert_eq!(e, ApiError::invalid_config("Config value subtract is not allowed for config key: num.partitions"));

        assert!(alter_broker_logger(1, "1", &[]).is_ok());
        let e = alter_broker_logger(1, "1", &[entry("kafka", OpType::Set, Some("INFO"))]).unwrap_err();
        assert_eq!(e, ApiError::invalid_config("Logger kafka does not exist!"));
        let e = alter_broker_logger(1, "1", &[entry("kafka", OpType::Append, Some("INFO"))]).unwrap_err();
        assert_eq!(e.code, ErrorCode::InvalidRequest);
    }
}
