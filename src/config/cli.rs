//! The `klamm` command line (clap): `klamm [-c FILE] [--override k=v]...
//! [--print-config] [--ephemeral]`, `klamm healthcheck`, the client
//! subcommands of `crate::cli` (`topic`, `produce`, ...), and the glue that
//! turns it plus the process environment into a [`BrokerConfig`]. The
//! binary only calls this.

use std::path::PathBuf;

use clap::{Parser, Subcommand};

use super::broker::BrokerConfig;
use super::error::ConfigError;

/// Command-line arguments of the `klamm` binary.
#[derive(Clone, Debug, Default, Parser)]
#[command(
    name = "klamm",
    version,
    about = "A Kafka-compatible single-node broker",
    after_help = "Configuration sources, lowest to highest precedence: embedded defaults, \
                  the TOML file (--config; keys are Kafka property names), KAFKA_* environment \
                  variables (mapped as in the apache/kafka docker image, e.g. \
                  KAFKA_LOG_RETENTION_HOURS -> log.retention.hours; CLUSTER_ID sets the cluster \
                  id), then --override arguments."
)]
pub struct CliArgs {
    /// TOML config file whose keys are Kafka property names.
    #[arg(short = 'c', long = "config", value_name = "FILE")]
    pub config: Option<PathBuf>,

    /// Sets a config, overriding the file and the environment; repeatable.
    #[arg(long = "override", value_name = "KEY=VALUE")]
    pub overrides: Vec<String>,

    /// Prints the effective configuration as TOML and exits.
    #[arg(long)]
    pub print_config: bool,

    /// Runs with a temporary data directory that is deleted at exit, on
    /// 127.0.0.1 with a free port unless `listeners` is configured, and
    /// prints `bootstrap.servers=HOST:PORT` on stdout once it accepts
    /// connections. For CI.
    #[arg(long)]
    pub ephemeral: bool,

    /// Durable mode: every acknowledged record is on disk (fdatasync)
    /// before the producer hears of it, so it survives a power loss, not
    /// just a crash. Shorthand for `--override log.flush.interval.messages=1`
    /// (a later `--override` of that key wins); appends that arrive while
    /// a sync runs share the next one (group commit).
    #[arg(long)]
    pub durable: bool,

    /// Log line format on stderr: `text` (default) or `json` (one JSON
    /// object per line). Filter with RUST_LOG, e.g. `RUST_LOG=klamm=debug`.
    #[arg(long, value_enum, default_value_t = LogFormat::Text, env = "KLAMM_LOG_FORMAT")]
    pub log_format: LogFormat,

    #[command(subcommand)]
    pub command: Option<Command>,
}

/// How log lines are written.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum LogFormat {
    #[default]
    Text,
    Json,
}

/// Subcommands of `klamm`.
#[derive(Clone, Debug, Subcommand)]
pub enum Command {
    /// Sends ApiVersions to this configuration's first listener (or
    /// `--bootstrap`) and exits 0 if the broker answers without error, 1
    /// otherwise. For docker HEALTHCHECK.
    Healthcheck {
        /// `host:port` to check instead of the configured listener.
        #[arg(long, value_name = "HOST:PORT")]
        bootstrap: Option<String>,
        /// Gives up after this long.
        #[arg(long, default_value_t = 5000, value_name = "MS")]
        timeout_ms: u64,
    },
    /// The Kafka client commands (`klamm topic`, `produce`, `consume`,
    /// `group`, `cluster`), for any Kafka broker.
    #[command(flatten)]
    Client(crate::cli::Command),
}

impl CliArgs {
    /// Resolves the configuration from these arguments and `env` (pass
    /// [`process_env`] in the binary).
    pub fn resolve_config<I, K, V>(&self, env: I) -> Result<BrokerConfig, ConfigError>
    where
        I: IntoIterator<Item = (K, V)>,
        K: Into<String>,
        V: Into<String>,
    {
        if self.durable {
            let mut overrides = vec![DURABLE_OVERRIDE.to_string()];
            overrides.extend(self.overrides.iter().cloned());
            return BrokerConfig::load(self.config.as_deref(), env, &overrides);
        }
        BrokerConfig::load(self.config.as_deref(), env, &self.overrides)
    }
}

/// What `--durable` stands for.
pub const DURABLE_OVERRIDE: &str = "log.flush.interval.messages=1";

/// The process environment, skipping variables whose name or value is not
/// valid UTF-8 (`std::env::vars` would panic on them).
pub fn process_env() -> impl Iterator<Item = (String, String)> {
    std::env::vars_os().filter_map(|(k, v)| Some((k.into_string().ok()?, v.into_string().ok()?)))
}

/// Whether text log lines get ANSI colours: only when stderr is a terminal
/// (a file, a pipe, `docker logs` or a CI log would get escape codes), and
/// never when `NO_COLOR` is set to anything but the empty string
/// (<https://no-color.org>).
pub fn log_colours(stderr_is_terminal: bool, no_color: Option<&std::ffi::OsStr>) -> bool {
    stderr_is_terminal && no_color.map_or(true, |v| v.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durable_is_flush_per_message_and_an_explicit_override_wins() {
        let args = CliArgs::parse_from(["klamm", "--durable"]);
        let c = args.resolve_config(Vec::<(String, String)>::new()).unwrap();
        assert_eq!(c.topic_defaults().flush_messages, 1);
        let args = CliArgs::parse_from(["klamm", "--durable", "--override", "log.flush.interval.messages=10"]);
        let c = args.resolve_config(Vec::<(String, String)>::new()).unwrap();
        assert_eq!(c.topic_defaults().flush_messages, 10);
    }

    #[test]
    fn colours_only_on_a_terminal_without_no_color() {
        use std::ffi::OsStr;
        assert!(log_colours(true, None));
        assert!(log_colours(true, Some(OsStr::new(""))), "an empty NO_COLOR does not count");
        assert!(!log_colours(true, Some(OsStr::new("1"))));
        assert!(!log_colours(false, None));
        assert!(!log_colours(false, Some(OsStr::new(""))));
    }

    fn parse(args: &[&str]) -> Result<CliArgs, clap::Error> {
        CliArgs::try_parse_from(std::iter::once("klamm").chain(args.iter().copied()))
    }

    #[test]
    fn parses_arguments() {
        let a = parse(&[]).unwrap();
        assert!(a.config.is_none() && a.overrides.is_empty() && !a.print_config);
        let a = parse(&[
            "-c",
            "k.toml",
            "--override",
            "num.partitions=3",
            "--override=log.retention.ms=-1",
            "--print-config",
        ])
        .unwrap();
        assert_eq!(a.config, Some(PathBuf::from("k.toml")));
        assert_eq!(a.overrides, vec!["num.partitions=3", "log.retention.ms=-1"]);
        assert!(a.print_config);
        assert_eq!(
            parse(&["--config", "x.toml"]).unwrap().config,
            Some(PathBuf::from("x.toml"))
        );
        assert!(parse(&["--bogus"]).is_err());
        let v = parse(&["--version"]).unwrap_err();
        assert_eq!(v.kind(), clap::error::ErrorKind::DisplayVersion);
    }

    #[test]
    fn resolves_defaults_without_arguments() {
        let c = parse(&[])
            .unwrap()
            .resolve_config(Vec::<(String, String)>::new())
            .unwrap();
        assert_eq!(c.client_listeners[0].port, 9092);
        assert_eq!(c.log_dir, PathBuf::from("/tmp/klamm-logs"));
    }

    #[test]
    fn overrides_beat_environment() {
        let a = parse(&["--override", "num.partitions=5"]).unwrap();
        let c = a
            .resolve_config(vec![("KAFKA_NUM_PARTITIONS", "4")])
            .unwrap();
        assert_eq!(c.num_partitions, 5);
        let a = parse(&["--override", "num.partitions"]).unwrap();
        assert!(matches!(
            a.resolve_config(Vec::<(String, String)>::new()),
            Err(ConfigError::BadOverride { .. })
        ));
    }
}
