//! Where settings come from: the layered raw `name -> value` map
//! ([`RawConfig`]) fed, lowest precedence first, by a TOML file (nested
//! tables flattened back to dotted Kafka names), `KAFKA_*` environment
//! variables (mapped the way the apache/kafka docker image does) and
//! `--override key=value` arguments. Values stay strings here; typing and
//! checking happen in [`super::broker`].

use std::collections::BTreeMap;
use std::fmt;
use std::io::Read;
use std::path::{Path, PathBuf};

use super::defs::{broker_config_def, unsupported_prefix};
use super::error::ConfigError;
use super::{
    MAX_CONFIG_FILE_BYTES, MAX_CONFIG_NAME_BYTES, MAX_SETTINGS_PER_SOURCE, MAX_TOML_DEPTH,
};

/// Environment variables of the apache/kafka image that configure the JVM
/// or the image itself, not the broker; they are skipped silently.
const IMAGE_INTERNAL_ENV: &[&str] = &[
    "KAFKA_VERSION",
    "KAFKA_HOME",
    "KAFKA_HEAP_OPTS",
    "KAFKA_LOG4J_OPTS",
    "KAFKA_OPTS",
    "KAFKA_JMX_OPTS",
    "KAFKA_JMX_PORT",
    "KAFKA_JMX_HOSTNAME",
    "KAFKA_JVM_PERFORMANCE_OPTS",
    "KAFKA_GC_LOG_OPTS",
    "KAFKA_LOG4J_ROOT_LOGLEVEL",
    "KAFKA_LOG4J_LOGGERS",
    "KAFKA_TOOLS_LOG4J_LOGLEVEL",
    "KAFKA_DEBUG",
];

/// The environment variable carrying the cluster id (as in the docker image).
pub const CLUSTER_ID_ENV: &str = "CLUSTER_ID";

/// Where one setting came from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Origin {
    /// A TOML config file (or a named TOML text in tests).
    File(PathBuf),
    /// An environment variable, by its name.
    Env(String),
    /// A `--override key=value` argument.
    Override,
}

impl fmt::Display for Origin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Origin::File(p) => write!(f, "config file '{}'", p.display()),
            Origin::Env(var) => write!(f, "environment variable {var}"),
            Origin::Override => write!(f, "--override"),
        }
    }
}

/// One explicitly given setting: its raw value and origin.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Setting {
    pub value: String,
    pub origin: Origin,
}

/// All explicitly given settings, later sources overwriting earlier ones.
#[derive(Clone, Debug, Default)]
pub struct RawConfig {
    settings: BTreeMap<String, Setting>,
    cluster_id: Option<String>,
    warnings: Vec<String>,
}

impl RawConfig {
    pub fn new() -> RawConfig {
        RawConfig::default()
    }

    /// Builds the standard layering: `config_file` (if any) < `env` <
    /// `overrides` (each `key=value`).
    pub fn load<I, K, V>(
        config_file: Option<&Path>,
        env: I,
        overrides: &[String],
    ) -> Result<RawConfig, ConfigError>
    where
        I: IntoIterator<Item = (K, V)>,
        K: Into<String>,
        V: Into<String>,
    {
        let mut raw = RawConfig::new();
        if let Some(path) = config_file {
            raw.add_toml_file(path)?;
        }
        raw.add_env(env);
        raw.add_overrides(overrides)?;
        Ok(raw)
    }

    /// Reads and adds a TOML config file (at most
    /// [`MAX_CONFIG_FILE_BYTES`]).
    pub fn add_toml_file(&mut self, path: &Path) -> Result<(), ConfigError> {
        let io_err = |source| ConfigError::Io {
            path: path.to_path_buf(),
            source,
        };
        let file = std::fs::File::open(path).map_err(io_err)?;
        let mut bytes = Vec::new();
        file.take(MAX_CONFIG_FILE_BYTES as u64 + 1)
            .read_to_end(&mut bytes)
            .map_err(io_err)?;
        if bytes.len() > MAX_CONFIG_FILE_BYTES {
            return Err(ConfigError::TooLarge {
                what: format!("config file '{}'", path.display()),
                limit: MAX_CONFIG_FILE_BYTES,
            });
        }
        let text = String::from_utf8(bytes).map_err(|_| ConfigError::Parse {
            origin: format!("config file '{}'", path.display()),
            message: "not valid UTF-8".into(),
        })?;
        self.add_toml(&text, Origin::File(path.to_path_buf()))
    }

    /// Adds TOML text; `name` stands in for the file name in messages.
    pub fn add_toml_str(&mut self, text: &str, name: &str) -> Result<(), ConfigError> {
        self.add_toml(text, Origin::File(PathBuf::from(name)))
    }

    fn add_toml(&mut self, text: &str, origin: Origin) -> Result<(), ConfigError> {
        if text.len() > MAX_CONFIG_FILE_BYTES {
            return Err(ConfigError::TooLarge {
                what: origin.to_string(),
                limit: MAX_CONFIG_FILE_BYTES,
            });
        }
        let entries = flatten_toml(text, &origin.to_string())?;
        for (key, value) in entries {
            self.set(&key, value, origin.clone());
        }
        Ok(())
    }

    /// Adds `KAFKA_*` variables (docker-image mapping, see
    /// [`env_var_to_config_name`]) and `CLUSTER_ID`. Other variables are
    /// ignored; image-internal ones silently, unknown configs with a
    /// warning (images carry such variables, so they are not errors).
    pub fn add_env<I, K, V>(&mut self, vars: I)
    where
        I: IntoIterator<Item = (K, V)>,
        K: Into<String>,
        V: Into<String>,
    {
        let mut taken = 0usize;
        for (key, value) in vars {
            let key: String = key.into();
            if key == CLUSTER_ID_ENV {
                self.cluster_id = Some(value.into());
                continue;
            }
            let Some(name) = env_var_to_config_name(&key) else {
                continue;
            };
            if taken == MAX_SETTINGS_PER_SOURCE {
                self.warn(format!(
                    "ignoring environment variable {key} and any further KAFKA_* variables: \
                     more than {MAX_SETTINGS_PER_SOURCE}"
                ));
                break;
            }
            taken += 1;
            if broker_config_def(&name).is_some() || super::sasl::is_listener_sasl_key(&name) || super::tls::is_tls_key(&name) {
                self.set(&name, value.into(), Origin::Env(key));
            } else if let Some(why) = unsupported_prefix(&name) {
                self.warn(format!(
                    "ignoring environment variable {key} ('{name}'): {why}"
                ));
            } else {
                self.warn(format!(
                    "ignoring environment variable {key}: '{name}' is not a known configuration"
                ));
            }
        }
    }

    /// Adds `--override key=value` arguments in order.
    pub fn add_overrides(&mut self, args: &[String]) -> Result<(), ConfigError> {
        if args.len() > MAX_SETTINGS_PER_SOURCE {
            return Err(ConfigError::TooLarge {
                what: "the number of --override arguments".into(),
                limit: MAX_SETTINGS_PER_SOURCE,
            });
        }
        for arg in args {
            self.add_override(arg)?;
        }
        Ok(())
    }

    /// Adds one `--override key=value` argument (split at the first `=`).
    pub fn add_override(&mut self, arg: &str) -> Result<(), ConfigError> {
        let Some((key, value)) = arg.split_once('=') else {
            return Err(ConfigError::BadOverride {
                arg: super::error::shorten(arg),
            });
        };
        let key = key.trim();
        if key.is_empty() {
            return Err(ConfigError::BadOverride {
                arg: super::error::shorten(arg),
            });
        }
        self.set(key, value.to_string(), Origin::Override);
        Ok(())
    }

    /// Sets one value, replacing any earlier one.
    pub fn set(&mut self, key: &str, value: String, origin: Origin) {
        self.settings
            .insert(key.to_string(), Setting { value, origin });
    }

    /// The setting for `key`, if given explicitly.
    pub fn get(&self, key: &str) -> Option<&Setting> {
        self.settings.get(key)
    }

    /// All explicit settings, by name.
    pub fn settings(&self) -> &BTreeMap<String, Setting> {
        &self.settings
    }

    /// The cluster id from `CLUSTER_ID`, if set.
    pub fn cluster_id(&self) -> Option<&str> {
        self.cluster_id.as_deref()
    }

    /// Sets the cluster id (as `CLUSTER_ID` would).
    pub fn set_cluster_id(&mut self, cluster_id: impl Into<String>) {
        self.cluster_id = Some(cluster_id.into());
    }

    /// Non-fatal problems found while collecting (ignored variables, ...).
    pub fn warnings(&self) -> &[String] {
        &self.warnings
    }

    fn warn(&mut self, message: String) {
        tracing::warn!("{message}");
        self.warnings.push(message);
    }
}

/// Maps an environment variable name to a Kafka property name the way the
/// apache/kafka docker image does: strip `KAFKA_`, lowercase, `_` -> `.`,
/// `__` -> `_`, `___` -> `-` (e.g. `KAFKA_LOG_RETENTION_HOURS` ->
/// `log.retention.hours`). `None` for other variables and for the image's
/// own (`KAFKA_HEAP_OPTS`, `KAFKA_OPTS`, ...).
pub fn env_var_to_config_name(var: &str) -> Option<String> {
    let rest = var.strip_prefix("KAFKA_")?;
    if IMAGE_INTERNAL_ENV.contains(&var) || rest.is_empty() || var.len() > MAX_CONFIG_NAME_BYTES {
        return None;
    }
    let dotted = rest.to_lowercase().replace('_', ".");
    Some(dotted.replace("...", "-").replace("..", "_"))
}

/// The docker image's default for `listeners` when only
/// `advertised.listeners` is given: the advertised endpoints with every
/// host replaced by `0.0.0.0`.
pub fn listeners_from_advertised(advertised: &str) -> String {
    advertised
        .split(',')
        .map(|entry| {
            let entry = entry.trim();
            match (entry.split_once("://"), entry.rsplit_once(':')) {
                (Some((name, _)), Some((_, port))) => format!("{name}://0.0.0.0:{port}"),
                _ => entry.to_string(),
            }
        })
        .collect::<Vec<_>>()
        .join(",")
}

/// Parses TOML text into flat `(dotted.name, value)` pairs.
fn flatten_toml(text: &str, origin: &str) -> Result<Vec<(String, String)>, ConfigError> {
    let table: toml::Table = toml::from_str(text).map_err(|e| ConfigError::Parse {
        origin: origin.to_string(),
        message: e.to_string().trim_end().to_string(),
    })?;
    let mut out = BTreeMap::new();
    flatten_table("", &table, 0, origin, &mut out)?;
    Ok(out.into_iter().collect())
}

fn flatten_table(
    prefix: &str,
    table: &toml::Table,
    depth: usize,
    origin: &str,
    out: &mut BTreeMap<String, String>,
) -> Result<(), ConfigError> {
    if depth > MAX_TOML_DEPTH {
        return Err(ConfigError::Parse {
            origin: origin.to_string(),
            message: format!("tables nested deeper than {MAX_TOML_DEPTH} levels under '{prefix}'"),
        });
    }
    for (key, value) in table {
        let name = if prefix.is_empty() {
            key.clone()
        } else {
            format!("{prefix}.{key}")
        };
        if name.len() > MAX_CONFIG_NAME_BYTES {
            return Err(ConfigError::TooLarge {
                what: format!("a configuration name in {origin}"),
                limit: MAX_CONFIG_NAME_BYTES,
            });
        }
        let bad_type = |what: &str| ConfigError::Parse {
            origin: origin.to_string(),
            message: format!(
                "'{name}': {what} values are not supported; use a string, integer, float, \
                 boolean or array of strings"
            ),
        };
        let flat = match value {
            toml::Value::Table(inner) => {
                flatten_table(&name, inner, depth + 1, origin, out)?;
                continue;
            }
            toml::Value::String(s) => s.clone(),
            toml::Value::Integer(i) => i.to_string(),
            toml::Value::Float(f) => f.to_string(),
            toml::Value::Boolean(b) => b.to_string(),
            toml::Value::Datetime(_) => return Err(bad_type("date-time")),
            toml::Value::Array(items) => {
                let mut parts = Vec::with_capacity(items.len());
                for item in items {
                    let part = match item {
                        toml::Value::String(s) => s.clone(),
                        toml::Value::Integer(i) => i.to_string(),
                        _ => return Err(bad_type("array-of-non-string")),
                    };
                    if part.contains(',') {
                        return Err(ConfigError::Parse {
                            origin: origin.to_string(),
                            message: format!("'{name}': list items may not contain ','"),
                        });
                    }
                    parts.push(part);
                }
                parts.join(",")
            }
        };
        if out.len() >= MAX_SETTINGS_PER_SOURCE {
            return Err(ConfigError::TooLarge {
                what: format!("the number of settings in {origin}"),
                limit: MAX_SETTINGS_PER_SOURCE,
            });
        }
        if out.insert(name.clone(), flat).is_some() {
            return Err(ConfigError::DuplicateKey {
                name,
                origin: origin.to_string(),
            });
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn value(raw: &RawConfig, key: &str) -> Option<String> {
        raw.get(key).map(|s| s.value.clone())
    }

    #[test]
    fn env_names_map_like_the_docker_image() {
        let m = |v: &str| env_var_to_config_name(v);
        assert_eq!(
            m("KAFKA_LOG_RETENTION_HOURS").as_deref(),
            Some("log.retention.hours")
        );
        assert_eq!(
            m("KAFKA_ADVERTISED_LISTENERS").as_deref(),
            Some("advertised.listeners")
        );
        assert_eq!(m("KAFKA_NODE_ID").as_deref(), Some("node.id"));
        assert_eq!(m("KAFKA_FOO__BAR").as_deref(), Some("foo_bar"));
        assert_eq!(m("KAFKA_FOO___BAR").as_deref(), Some("foo-bar"));
        assert_eq!(m("KAFKA_A_B__C___D").as_deref(), Some("a.b_c-d"));
        assert_eq!(m("KAFKA_HEAP_OPTS"), None);
        assert_eq!(m("KAFKA_OPTS"), None);
        assert_eq!(m("KAFKA_HOME"), None);
        assert_eq!(m("KAFKA_"), None);
        assert_eq!(m("PATH"), None);
        assert_eq!(m("CLUSTER_ID"), None);
    }

    #[test]
    fn env_source_keeps_known_and_warns_on_unknown() {
        let mut raw = RawConfig::new();
        raw.add_env(vec![
            ("KAFKA_LOG_RETENTION_HOURS", "24"),
            ("KAFKA_HEAP_OPTS", "-Xmx1G"),
            ("KAFKA_JVM_PERFORMANCE_OPTS", "-server"),
            ("KAFKA_CONFLUENT_SUPPORT_METRICS_ENABLE", "false"),
            ("KAFKA_SSL_KEYSTORE_FLAVOUR", "/x"),
            ("CLUSTER_ID", "MkU3OEVBNTcwNTJENDM2Qk"),
            ("HOME", "/root"),
        ]);
        assert_eq!(value(&raw, "log.retention.hours").as_deref(), Some("24"));
        assert_eq!(
            raw.get("log.retention.hours").unwrap().origin,
            Origin::Env("KAFKA_LOG_RETENTION_HOURS".into())
        );
        assert_eq!(raw.settings().len(), 1);
        assert_eq!(raw.cluster_id(), Some("MkU3OEVBNTcwNTJENDM2Qk"));
        assert_eq!(raw.warnings().len(), 2, "{:?}", raw.warnings());
        assert!(raw.warnings()[0].contains("confluent.support.metrics.enable"));
        assert!(raw.warnings()[1].contains("TLS"));
    }

    #[test]
    fn toml_dotted_nested_and_quoted_keys_flatten() {
        let mut raw = RawConfig::new();
        raw.add_toml_str(
            r#"
            log.retention.hours = 168
            "log.segment.bytes" = 1073741824
            num.partitions = 3
            auto.create.topics.enable = false
            process.roles = ["broker", "controller"]
            log.cleaner.min.cleanable.ratio = 0.25

            [socket]
            request.max.bytes = 1000

            [group.initial.rebalance]
            "delay.ms" = 0
            "#,
            "t.toml",
        )
        .unwrap();
        assert_eq!(value(&raw, "log.retention.hours").as_deref(), Some("168"));
        assert_eq!(
            value(&raw, "log.segment.bytes").as_deref(),
            Some("1073741824")
        );
        assert_eq!(
            value(&raw, "auto.create.topics.enable").as_deref(),
            Some("false")
        );
        assert_eq!(
            value(&raw, "process.roles").as_deref(),
            Some("broker,controller")
        );
        assert_eq!(
            value(&raw, "log.cleaner.min.cleanable.ratio").as_deref(),
            Some("0.25")
        );
        assert_eq!(
            value(&raw, "socket.request.max.bytes").as_deref(),
            Some("1000")
        );
        assert_eq!(
            value(&raw, "group.initial.rebalance.delay.ms").as_deref(),
            Some("0")
        );
        assert_eq!(
            raw.get("num.partitions").unwrap().origin,
            Origin::File(PathBuf::from("t.toml"))
        );
    }

    #[test]
    fn toml_errors() {
        let mut raw = RawConfig::new();
        let e = raw
            .add_toml_str(
                "log.retention.hours = 1\n\"log.retention.hours\" = 2\n",
                "t.toml",
            )
            .unwrap_err();
        assert!(
            matches!(
                e,
                ConfigError::DuplicateKey { .. } | ConfigError::Parse { .. }
            ),
            "{e}"
        );
        let e = raw.add_toml_str("a = 1979-05-27\n", "t.toml").unwrap_err();
        assert!(e.to_string().contains("date-time"), "{e}");
        let e = raw.add_toml_str("a = [1.5]\n", "t.toml").unwrap_err();
        assert!(e.to_string().contains("'a'"), "{e}");
        let e = raw.add_toml_str("a = [\"x,y\"]\n", "t.toml").unwrap_err();
        assert!(e.to_string().contains("','"), "{e}");
        let e = raw.add_toml_str("this is not toml", "t.toml").unwrap_err();
        assert!(
            e.to_string()
                .starts_with("cannot parse config file 't.toml'"),
            "{e}"
        );
        let deep = format!("{} = 1", vec!["a"; MAX_TOML_DEPTH + 3].join("."));
        assert!(raw.add_toml_str(&deep, "t.toml").is_err());
    }

    #[test]
    fn quoted_and_dotted_duplicate_is_rejected() {
        // `a.b` as a dotted key and `"a.b"` as one quoted key flatten to the
        // same Kafka name.
        let mut raw = RawConfig::new();
        let e = raw.add_toml_str("[a]\nb = 1\n[x]\ny = 2\n", "t.toml");
        assert!(e.is_ok());
        let e = raw
            .add_toml_str("\"a.b\" = 1\na.b = 2\n", "t.toml")
            .unwrap_err();
        assert!(
            matches!(e, ConfigError::DuplicateKey { ref name, .. } if name == "a.b"),
            "{e}"
        );
    }

    #[test]
    fn overrides() {
        let mut raw = RawConfig::new();
        raw.add_overrides(&["num.partitions=3".into(), "listeners=A://:1,B://:2".into()])
            .unwrap();
        assert_eq!(value(&raw, "num.partitions").as_deref(), Some("3"));
        assert_eq!(value(&raw, "listeners").as_deref(), Some("A://:1,B://:2"));
        raw.add_override("x=a=b").unwrap();
        assert_eq!(value(&raw, "x").as_deref(), Some("a=b"));
        assert!(matches!(
            raw.add_override("novalue"),
            Err(ConfigError::BadOverride { .. })
        ));
        assert!(matches!(
            raw.add_override("=1"),
            Err(ConfigError::BadOverride { .. })
        ));
    }

    #[test]
    fn precedence_file_env_override() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("klamm.toml");
        std::fs::write(
            &path,
            "num.partitions = 2\nlog.retention.hours = 10\nlog.dir = \"/a\"\n",
        )
        .unwrap();
        let raw = RawConfig::load(
            Some(&path),
            vec![
                ("KAFKA_NUM_PARTITIONS", "3"),
                ("KAFKA_LOG_RETENTION_HOURS", "20"),
            ],
            &["num.partitions=4".to_string()],
        )
        .unwrap();
        assert_eq!(value(&raw, "num.partitions").as_deref(), Some("4"));
        assert_eq!(raw.get("num.partitions").unwrap().origin, Origin::Override);
        assert_eq!(value(&raw, "log.retention.hours").as_deref(), Some("20"));
        assert_eq!(value(&raw, "log.dir").as_deref(), Some("/a"));
        assert_eq!(
            raw.get("log.dir").unwrap().origin,
            Origin::File(path.clone())
        );
    }

    #[test]
    fn missing_and_oversized_files() {
        let dir = tempfile::tempdir().unwrap();
        let mut raw = RawConfig::new();
        let e = raw
            .add_toml_file(&dir.path().join("nope.toml"))
            .unwrap_err();
        assert!(matches!(e, ConfigError::Io { .. }), "{e}");
        let big = dir.path().join("big.toml");
        std::fs::write(&big, vec![b'#'; MAX_CONFIG_FILE_BYTES + 1]).unwrap();
        assert!(matches!(
            raw.add_toml_file(&big),
            Err(ConfigError::TooLarge { .. })
        ));
    }

    #[test]
    fn advertised_to_listeners() {
        assert_eq!(
            listeners_from_advertised("PLAINTEXT://broker:19092, PLAINTEXT_HOST://localhost:9092"),
            "PLAINTEXT://0.0.0.0:19092,PLAINTEXT_HOST://0.0.0.0:9092"
        );
        assert_eq!(
            listeners_from_advertised("A://[::1]:9092"),
            "A://0.0.0.0:9092"
        );
    }
}
