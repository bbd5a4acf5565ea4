//! Per-group dynamic configs (Kafka's `GroupConfig`, the GROUP config
//! resource, type 32): the names Kafka 4.1 knows, their types, static
//! defaults and broker synonyms (`group.` + name), the checks Kafka's
//! controller makes on an alter (`GroupConfig.validate`, in its order and
//! wording), and the effective values DescribeConfigs lists. The overrides
//! are kept in the metadata log (`MetadataRecord::GroupConfig`), as Kafka
//! keeps them as ConfigRecords of the GROUP resource.
//!
//! klamm acts on `consumer.session.timeout.ms` and
//! `consumer.heartbeat.interval.ms` (consumer-protocol groups); the share
//! and streams names are stored and described for compatibility, against
//! Kafka's default bounds, without effect (klamm has no such groups).

use std::collections::BTreeMap;

use crate::config::{BrokerConfig, ConfigSource, ConfigSynonym, ConfigType};

/// One group config.
#[derive(Clone, Copy, Debug)]
pub struct GroupConfigDef {
    pub name: &'static str,
    pub ty: ConfigType,
    /// `GroupConfig`'s static default (what an alter's check fills in for
    /// names the group does not set).
    pub default: &'static str,
    /// Smallest value of an INT config (Kafka's `atLeast`).
    pub at_least: i64,
    /// The allowed values of a STRING config (empty: any).
    pub one_of: &'static [&'static str],
    pub doc: &'static str,
}

const fn int(name: &'static str, default: &'static str, at_least: i64, doc: &'static str) -> GroupConfigDef {
    GroupConfigDef { name, ty: ConfigType::Int, default, at_least, one_of: &[], doc }
}

pub const CONSUMER_SESSION_TIMEOUT_MS: &str = "consumer.session.timeout.ms";
pub const CONSUMER_HEARTBEAT_INTERVAL_MS: &str = "consumer.heartbeat.interval.ms";

/// Kafka 4.1's group configs, by name.
pub const GROUP_CONFIG_DEFS: [GroupConfigDef; 10] = [
    int(CONSUMER_HEARTBEAT_INTERVAL_MS, "5000", 1, "The heartbeat interval given to the members of a consumer group."),
    int(CONSUMER_SESSION_TIMEOUT_MS, "45000", 1, "The timeout to detect client failures when using the consumer group protocol."),
    GroupConfigDef {
        name: "share.auto.offset.reset",
        ty: ConfigType::String,
        default: "latest",
        at_least: 0,
        one_of: &[],
        doc: "The strategy to initialize the share-partition start offset (no effect in klamm).",
    },
    int("share.heartbeat.interval.ms", "5000", 1, "The heartbeat interval given to the members of a share group (no effect in klamm)."),
    GroupConfigDef {
        name: "share.isolation.level",
        ty: ConfigType::String,
        default: "read_uncommitted",
        at_least: 0,
        one_of: &["read_committed", "read_uncommitted"],
        doc: "Controls how to read records written transactionally (no effect in klamm).",
    },
    int("share.record.lock.duration.ms", "30000", 1000, "The record acquisition lock duration in milliseconds for share groups (no effect in klamm)."),
    int("share.session.timeout.ms", "45000", 1, "The timeout to detect client failures when using the share group protocol (no effect in klamm)."),
    int("streams.heartbeat.interval.ms", "5000", 1, "The heartbeat interval given to the members (no effect in klamm)."),
    int("streams.num.standby.replicas", "0", 0, "The number of standby replicas for each task (no effect in klamm)."),
    int("streams.session.timeout.ms", "45000", 1, "The timeout to detect client failures when using the streams group protocol (no effect in klamm)."),
];

pub fn group_config_def(name: &str) -> Option<&'static GroupConfigDef> {
    GROUP_CONFIG_DEFS.iter().find(|d| d.name == name)
}

/// Kafka's broker-side bounds of the group configs klamm has no broker
/// setting for (their Kafka defaults): (name, min name, min, max name, max).
const FIXED_BOUNDS: [(&str, &str, i64, &str, i64); 5] = [
    ("share.heartbeat.interval.ms", "group.share.min.heartbeat.interval.ms", 5_000, "group.share.max.heartbeat.interval.ms", 15_000),
    ("share.session.timeout.ms", "group.share.min.session.timeout.ms", 45_000, "group.share.max.session.timeout.ms", 60_000),
    ("share.record.lock.duration.ms", "group.share.min.record.lock.duration.ms", 15_000, "group.share.max.record.lock.duration.ms", 60_000),
    ("streams.heartbeat.interval.ms", "group.streams.min.heartbeat.interval.ms", 5_000, "group.streams.max.heartbeat.interval.ms", 15_000),
    ("streams.session.timeout.ms", "group.streams.min.session.timeout.ms", 45_000, "group.streams.max.session.timeout.ms", 60_000),
];

/// The broker config that gives a group config its default (`group.` +
/// name, as Kafka's `GroupCoordinatorConfig.GROUP_PREFIX`).
pub fn broker_synonym(name: &str) -> String {
    format!("group.{name}")
}

/// Parses one value as its definition's type; Kafka's messages.
fn parse(def: &GroupConfigDef, raw: &str) -> Result<i64, String> {
    let trimmed = raw.trim();
    let bad = |why: &str| Err(format!("Invalid value {trimmed} for configuration {}: {why}", def.name));
    match def.ty {
        ConfigType::Int => {
            let Ok(v) = trimmed.parse::<i32>() else { return bad("Not a number of type INT") };
            if i64::from(v) < def.at_least {
                return bad(&format!("Value must be at least {}", def.at_least));
            }
            Ok(i64::from(v))
        }
        _ => {
            if !def.one_of.is_empty() && !def.one_of.contains(&trimmed) {
                return bad(&format!("String must be one of: {}", def.one_of.join(", ")));
            }
            Ok(0)
        }
    }
}

/// Kafka's `GroupConfig.validate` of a group's whole set of overrides
/// after an alter: known names, parsable values, then the bounds (names
/// not set take `GroupConfig`'s static defaults, as Kafka's parse does).
/// The error is an INVALID_CONFIG message.
pub fn validate(broker: &BrokerConfig, overrides: &BTreeMap<String, String>) -> Result<(), String> {
    for name in overrides.keys() {
        if group_config_def(name).is_none() {
            return Err(format!("Unknown group config name: {name}"));
        }
    }
    let mut values: BTreeMap<&str, i64> = BTreeMap::new();
    for def in &GROUP_CONFIG_DEFS {
        let raw = overrides.get(def.name).map_or(def.default, String::as_str);
        values.insert(def.name, parse(def, raw)?);
    }
    let hb = values[CONSUMER_HEARTBEAT_INTERVAL_MS];
    let session = values[CONSUMER_SESSION_TIMEOUT_MS];
    let b = broker;
    let checks = [
        (hb >= i64::from(b.group_consumer_min_heartbeat_interval_ms), "consumer.heartbeat.interval.ms must be greater than or equal to group.consumer.min.heartbeat.interval.ms"),
        (hb <= i64::from(b.group_consumer_max_heartbeat_interval_ms), "consumer.heartbeat.interval.ms must be less than or equal to group.consumer.max.heartbeat.interval.ms"),
        (session >= i64::from(b.group_consumer_min_session_timeout_ms), "consumer.session.timeout.ms must be greater than or equal to group.consumer.min.session.timeout.ms"),
        (session <= i64::from(b.group_consumer_max_session_timeout_ms), "consumer.session.timeout.ms must be less than or equal to group.consumer.max.session.timeout.ms"),
    ];
    for (ok, message) in checks {
        if !ok {
            return Err(message.to_string());
        }
    }
    for (name, min_name, min, max_name, max) in FIXED_BOUNDS {
        let v = values[name];
        if v < min {
            return Err(format!("{name} must be greater than or equal to {min_name}"));
        }
        if v > max {
            return Err(format!("{name} must be less than or equal to {max_name}"));
        }
    }
    if values["streams.num.standby.replicas"] > 2 {
        return Err("streams.num.standby.replicas must be less than or equal to group.streams.max.standby.replicas".into());
    }
    for kind in ["consumer", "share", "streams"] {
        let session = values[format!("{kind}.session.timeout.ms").as_str()];
        let hb = values[format!("{kind}.heartbeat.interval.ms").as_str()];
        if session <= hb {
            return Err(format!("{kind}.session.timeout.ms must be greater than {kind}.heartbeat.interval.ms"));
        }
    }
    Ok(())
}

/// One entry of a GROUP resource in DescribeConfigs.
#[derive(Clone, Debug, PartialEq)]
pub struct GroupConfigEntry {
    pub name: &'static str,
    pub value: String,
    pub source: ConfigSource,
    pub synonyms: Vec<ConfigSynonym>,
    pub config_type: ConfigType,
    pub documentation: &'static str,
}

/// The broker's value of group config `def` (its `group.` setting; the
/// static default for the names klamm has no broker setting for).
fn broker_value(broker: &BrokerConfig, def: &GroupConfigDef) -> String {
    let name = broker_synonym(def.name);
    match crate::config::broker_config_def(&name) {
        Some(_) => broker.value(&name).unwrap_or_else(|| def.default.to_string()),
        None => def.default.to_string(),
    }
}

/// Every group config of a group with `overrides`, as Kafka 4.1's
/// `ConfigHelper.createGroupConfigEntry`: the override (source
/// GROUP_CONFIG) or the broker's value (DEFAULT_CONFIG), each with itself
/// as its one synonym (4.1 lists no broker synonyms for group configs).
pub fn describe(broker: &BrokerConfig, overrides: &BTreeMap<String, String>) -> Vec<GroupConfigEntry> {
    GROUP_CONFIG_DEFS
        .iter()
        .map(|def| {
            let (value, source, synonyms) = match overrides.get(def.name) {
                Some(v) => {
                    let v = v.trim().to_string();
                    let synonym =
                        ConfigSynonym { name: def.name.to_string(), value: Some(v.clone()), source: ConfigSource::GroupConfig };
                    (v, ConfigSource::GroupConfig, vec![synonym])
                }
                None => {
                    let v = broker_value(broker, def);
                    let synonym =
                        ConfigSynonym { name: def.name.to_string(), value: Some(v.clone()), source: ConfigSource::DefaultConfig };
                    (v, ConfigSource::DefaultConfig, vec![synonym])
                }
            };
            GroupConfigEntry { name: def.name, value, source, synonyms, config_type: def.ty, documentation: def.doc }
        })
        .collect()
}

/// The session timeout and heartbeat interval of a consumer group: its
/// overrides, else the broker's `group.consumer.*` settings.
pub fn consumer_timeouts_ms(broker: &BrokerConfig, overrides: Option<&BTreeMap<String, String>>) -> (i32, i32) {
    let get = |name: &str, fallback: i32| {
        overrides.and_then(|o| o.get(name)).and_then(|v| v.trim().parse::<i32>().ok()).filter(|v| *v > 0).unwrap_or(fallback)
    };
    (
        get(CONSUMER_SESSION_TIMEOUT_MS, broker.group_consumer_session_timeout_ms),
        get(CONSUMER_HEARTBEAT_INTERVAL_MS, broker.group_consumer_heartbeat_interval_ms),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn map(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }

    #[test]
    fn alters_are_checked_as_kafka_does() {
        let b = BrokerConfig::default();
        assert_eq!(validate(&b, &map(&[])), Ok(()));
        assert_eq!(validate(&b, &map(&[(CONSUMER_HEARTBEAT_INTERVAL_MS, "6000")])), Ok(()));
        assert_eq!(validate(&b, &map(&[("nope", "1")])), Err("Unknown group config name: nope".into()));
        assert_eq!(
            validate(&b, &map(&[(CONSUMER_SESSION_TIMEOUT_MS, "abc")])),
            Err("Invalid value abc for configuration consumer.session.timeout.ms: Not a number of type INT".into())
        );
        assert_eq!(
            validate(&b, &map(&[(CONSUMER_HEARTBEAT_INTERVAL_MS, "1000")])),
            Err("consumer.heartbeat.interval.ms must be greater than or equal to group.consumer.min.heartbeat.interval.ms".into())
        );
        assert_eq!(
            validate(&b, &map(&[(CONSUMER_SESSION_TIMEOUT_MS, "90000")])),
            Err("consumer.session.timeout.ms must be less than or equal to group.consumer.max.session.timeout.ms".into())
        );
        assert_eq!(
            validate(&b, &map(&[("share.isolation.level", "dirty")])).map_err(|e| e.starts_with("Invalid value dirty")),
            Err(true)
        );
        assert_eq!(
            validate(&b, &map(&[("streams.num.standby.replicas", "3")])),
            Err("streams.num.standby.replicas must be less than or equal to group.streams.max.standby.replicas".into())
        );
        // Bounds follow the broker's settings.
        let mut raw = crate::config::RawConfig::new();
        raw.add_override("group.consumer.min.session.timeout.ms=1000").unwrap();
        raw.add_override("group.consumer.min.heartbeat.interval.ms=100").unwrap();
        let low = BrokerConfig::resolve(&raw).unwrap();
        let small = map(&[(CONSUMER_SESSION_TIMEOUT_MS, "2000"), (CONSUMER_HEARTBEAT_INTERVAL_MS, "2000")]);
        assert_eq!(validate(&low, &small), Err("consumer.session.timeout.ms must be greater than consumer.heartbeat.interval.ms".into()));
        let small = map(&[(CONSUMER_SESSION_TIMEOUT_MS, "2000"), (CONSUMER_HEARTBEAT_INTERVAL_MS, "500")]);
        assert_eq!(validate(&low, &small), Ok(()));
        assert_eq!(consumer_timeouts_ms(&low, Some(&small)), (2000, 500));
        assert_eq!(consumer_timeouts_ms(&low, None), (45_000, 5_000));
    }

    #[test]
    fn describe_lists_every_name_with_its_source() {
        let b = BrokerConfig::default();
        let entries = describe(&b, &map(&[(CONSUMER_HEARTBEAT_INTERVAL_MS, "6000")]));
        assert_eq!(entries.len(), GROUP_CONFIG_DEFS.len());
        let hb = entries.iter().find(|e| e.name == CONSUMER_HEARTBEAT_INTERVAL_MS).unwrap();
        assert_eq!((hb.value.as_str(), hb.source), ("6000", ConfigSource::GroupConfig));
        assert_eq!(hb.synonyms.len(), 1);
        let session = entries.iter().find(|e| e.name == CONSUMER_SESSION_TIMEOUT_MS).unwrap();
        assert_eq!((session.value.as_str(), session.source), ("45000", ConfigSource::DefaultConfig));
        assert_eq!(session.synonyms[0].name, CONSUMER_SESSION_TIMEOUT_MS);
        let lock = entries.iter().find(|e| e.name == "share.record.lock.duration.ms").unwrap();
        assert_eq!(lock.value, "30000");
    }
}
