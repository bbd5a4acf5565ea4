//! The configuration error type: one variant per kind of problem, each
//! message naming the offending key and what was expected.

use std::path::PathBuf;

use super::INVALID_CONFIG_ERROR_CODE;

/// Longest value echoed back in an error message; longer values are cut.
const MAX_ECHOED_VALUE_CHARS: usize = 120;

/// Everything that can be wrong with a configuration.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// A name that is not a (supported) Kafka or klamm config.
    #[error("unknown configuration '{name}'{detail}")]
    UnknownConfig {
        name: String,
        /// Pre-formatted suffix: a hint and/or where the key came from.
        detail: String,
    },

    /// A value that does not parse as the config's type or fails its
    /// validator.
    #[error("invalid value '{value}' for configuration '{name}': {expected}{origin}")]
    InvalidValue {
        name: String,
        value: String,
        expected: String,
        /// Pre-formatted suffix naming the source, e.g. ` (from --override)`.
        origin: String,
    },

    /// A cross-check between configs failed.
    #[error("invalid configuration '{name}': {message}")]
    Invalid { name: String, message: String },

    /// A valid Kafka setting that klamm does not implement (yet).
    #[error("unsupported configuration '{name}': {message}")]
    Unsupported { name: String, message: String },

    /// The same key given twice within one source (e.g. a dotted and a
    /// quoted spelling in one TOML file).
    #[error("configuration '{name}' is set more than once in {origin}")]
    DuplicateKey { name: String, origin: String },

    #[error("cannot read config file '{path}': {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },

    #[error("cannot parse {origin}: {message}")]
    Parse { origin: String, message: String },

    #[error("invalid --override '{arg}': expected key=value")]
    BadOverride { arg: String },

    #[error("{what} exceeds the limit of {limit}")]
    TooLarge { what: String, limit: usize },

    /// A bug in klamm's own tables (e.g. a getter asking for the wrong type).
    #[error("internal configuration error: {message}")]
    Internal { message: String },

    /// Several independent problems, reported together.
    #[error("{}", join_errors(.0))]
    Multiple(Vec<ConfigError>),
}

fn join_errors(errors: &[ConfigError]) -> String {
    let mut out = String::new();
    for (i, e) in errors.iter().enumerate() {
        if i > 0 {
            out.push('\n');
        }
        out.push_str(&e.to_string());
    }
    out
}

impl ConfigError {
    /// The Kafka error code a request failing with this error should carry
    /// (CreateTopics, AlterConfigs, ...): always INVALID_CONFIG (40).
    pub fn kafka_error_code(&self) -> i16 {
        INVALID_CONFIG_ERROR_CODE
    }

    /// Builds an [`ConfigError::InvalidValue`], shortening huge values.
    pub fn invalid_value(name: &str, value: &str, expected: impl Into<String>) -> ConfigError {
        ConfigError::InvalidValue {
            name: name.to_string(),
            value: shorten(value),
            expected: expected.into(),
            origin: String::new(),
        }
    }

    /// Builds an [`ConfigError::Invalid`] (a failed cross-check).
    pub fn invalid(name: &str, message: impl Into<String>) -> ConfigError {
        ConfigError::Invalid {
            name: name.to_string(),
            message: message.into(),
        }
    }

    /// Builds an [`ConfigError::Unsupported`].
    pub fn unsupported(name: &str, message: impl Into<String>) -> ConfigError {
        ConfigError::Unsupported {
            name: name.to_string(),
            message: message.into(),
        }
    }

    pub(crate) fn internal(message: impl Into<String>) -> ConfigError {
        ConfigError::Internal {
            message: message.into(),
        }
    }

    /// Attaches a source description (` (from ...)`) to value errors.
    pub(crate) fn with_origin(self, origin: &str) -> ConfigError {
        match self {
            ConfigError::InvalidValue {
                name,
                value,
                expected,
                ..
            } => ConfigError::InvalidValue {
                name,
                value,
                expected,
                origin: format!(" (from {origin})"),
            },
            other => other,
        }
    }

    /// Folds a list of errors into one: `None` if empty, the error itself if
    /// alone, [`ConfigError::Multiple`] otherwise.
    pub fn from_list(mut errors: Vec<ConfigError>) -> Option<ConfigError> {
        match errors.len() {
            0 => None,
            1 => errors.pop(),
            _ => Some(ConfigError::Multiple(errors)),
        }
    }

    /// The individual errors (one, or the members of `Multiple`).
    pub fn errors(&self) -> Vec<&ConfigError> {
        match self {
            ConfigError::Multiple(list) => list.iter().collect(),
            other => vec![other],
        }
    }
}

/// Cuts a value for display in an error message.
pub(crate) fn shorten(value: &str) -> String {
    if value.chars().count() <= MAX_ECHOED_VALUE_CHARS {
        value.to_string()
    } else {
        let mut s: String = value.chars().take(MAX_ECHOED_VALUE_CHARS).collect();
        s.push_str("...");
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_name_key_and_expectation() {
        let e = ConfigError::invalid_value("log.retention.hours", "x", "expected an integer");
        assert_eq!(
            e.to_string(),
            "invalid value 'x' for configuration 'log.retention.hours': expected an integer"
        );
        let e = e.with_origin("--override");
        assert_eq!(
            e.to_string(),
            "invalid value 'x' for configuration 'log.retention.hours': expected an integer (from --override)"
        );
        let e = ConfigError::UnknownConfig {
            name: "foo.bar".into(),
            detail: String::new(),
        };
        assert_eq!(e.to_string(), "unknown configuration 'foo.bar'");
        assert_eq!(e.kafka_error_code(), 40);
    }

    #[test]
    fn long_values_are_shortened() {
        let long = "a".repeat(10_000);
        let e = ConfigError::invalid_value("k", &long, "expected something");
        assert!(e.to_string().len() < 300);
    }

    #[test]
    fn from_list_folds() {
        assert!(ConfigError::from_list(vec![]).is_none());
        let one = ConfigError::from_list(vec![ConfigError::invalid("a", "b")]).unwrap();
        assert!(matches!(one, ConfigError::Invalid { .. }));
        let two = ConfigError::from_list(vec![
            ConfigError::invalid("a", "first"),
            ConfigError::invalid("b", "second"),
        ])
        .unwrap();
        assert_eq!(two.errors().len(), 2);
        assert_eq!(
            two.to_string(),
            "invalid configuration 'a': first\ninvalid configuration 'b': second"
        );
    }
}
