//! `klamm topic | produce | consume | group | cluster`: a Kafka command-line
//! client built into the broker's binary. It speaks the Kafka protocol
//! with klamm's own codec (`protocol`, `records`) to any broker, klamm or
//! Apache Kafka, so it needs no JVM, no librdkafka and no C toolchain, and
//! starts in a few milliseconds. It uses nothing of the broker itself
//! (storage, controller, groups): the dependency arrow is
//! `main → cli → protocol/records`.
//!
//! Output conventions: aligned tables for people, `--format json` for
//! scripts, exit code 0 on success and 1 on error with Kafka's error name,
//! code and message on stderr (`error: TOPIC_ALREADY_EXISTS (36): ...`),
//! 2 for usage errors (clap's convention).

pub mod client;
mod cluster;
mod consume;
pub mod errors;
mod group;
pub mod output;
pub mod partitioner;
mod produce;
mod topic;

use std::process::ExitCode;
use std::time::Duration;

use clap::{Args, Subcommand};

pub use client::{Client, ClientConfig, Conn};
pub use output::OutputFormat;

/// The default bootstrap server when neither `-b` nor `KLAMM_BROKERS` is set.
pub const DEFAULT_BOOTSTRAP: &str = "localhost:9092";

/// Connection options of every client command.
#[derive(Clone, Debug, Args)]
pub struct ConnOpts {
    /// Broker(s) to bootstrap from, comma-separated `host:port`.
    #[arg(short = 'b', long = "bootstrap-server", env = "KLAMM_BROKERS", default_value = DEFAULT_BOOTSTRAP, global = true, value_name = "HOST:PORT")]
    pub bootstrap_server: String,
    /// Bound on connecting and on each request.
    #[arg(long = "timeout-ms", default_value_t = 30_000, global = true, value_name = "MS")]
    pub timeout_ms: u64,
}

impl ConnOpts {
    pub fn client_config(&self) -> ClientConfig {
        ClientConfig {
            bootstrap: self.bootstrap_server.split(',').map(|s| s.trim().to_string()).filter(|s| !s.is_empty()).collect(),
            timeout: Duration::from_millis(self.timeout_ms.max(1)),
        }
    }
}

/// Output options of the admin commands.
#[derive(Clone, Debug, Args)]
pub struct FormatOpts {
    /// `table` (aligned columns, for people) or `json` (for scripts).
    #[arg(long, value_enum, default_value_t = OutputFormat::Table, global = true)]
    pub format: OutputFormat,
}

/// The client subcommands (flattened into `klamm`'s own subcommands).
#[derive(Clone, Debug, Subcommand)]
pub enum Command {
    /// Creates, lists, describes, alters and deletes topics.
    Topic(topic::TopicArgs),
    /// Produces records: lines from stdin, or one `--value`.
    Produce(produce::ProduceArgs),
    /// Consumes records and prints them (follows new records until Ctrl-C).
    Consume(consume::ConsumeArgs),
    /// Lists, describes, resets and deletes consumer groups.
    Group(group::GroupArgs),
    /// Shows the cluster: brokers, controller, cluster id, API versions.
    Cluster(cluster::ClusterArgs),
}

/// What went wrong: a Kafka error code from the broker, bad usage, or
/// a network or protocol problem.
#[derive(Clone, Debug, PartialEq)]
pub enum CliError {
    Kafka { code: i16, message: Option<String> },
    Usage(String),
    Io(String),
}

impl std::fmt::Display for CliError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            CliError::Kafka { code, message } => {
                let text = message.as_deref().unwrap_or_else(|| errors::error_description(*code));
                write!(f, "{} ({code}): {text}", errors::error_name(*code))
            }
            CliError::Usage(s) | CliError::Io(s) => f.write_str(s),
        }
    }
}

impl std::error::Error for CliError {}

impl CliError {
    /// Adds what the error was about (`topic 'x': ...`) to a Kafka error
    /// that came without a message of its own.
    pub fn about(self, what: &str) -> CliError {
        match self {
            CliError::Kafka { code, message: None } => {
                CliError::Kafka { code, message: Some(format!("{what}: {}", errors::error_description(code))) }
            }
            e => e,
        }
    }
}

/// Runs one client command to completion on a single-threaded runtime and
/// returns the process exit code.
pub fn run(cmd: Command) -> ExitCode {
    let runtime = match tokio::runtime::Builder::new_current_thread().enable_all().build() {
        Ok(r) => r,
        Err(e) => {
            eprintln!("error: cannot start the runtime: {e}");
            return ExitCode::from(1);
        }
    };
    let result = runtime.block_on(async move {
        match cmd {
            Command::Topic(a) => topic::run(a).await,
            Command::Produce(a) => produce::run(a).await,
            Command::Consume(a) => consume::run(a).await,
            Command::Group(a) => group::run(a).await,
            Command::Cluster(a) => cluster::run(a).await,
        }
    });
    // Stdin readers may still be blocked: do not wait for them.
    runtime.shutdown_background();
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(CliError::Usage(s)) => {
            eprintln!("error: {s}");
            ExitCode::from(2)
        }
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::from(1)
        }
    }
}

/// Splits `key=value` (the value may contain `=`).
pub fn parse_key_value(s: &str) -> Result<(String, String), String> {
    match s.split_once('=') {
        Some((k, v)) if !k.is_empty() => Ok((k.to_string(), v.to_string())),
        _ => Err(format!("expected KEY=VALUE, got '{s}'")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser, Debug)]
    struct T {
        #[command(subcommand)]
        cmd: Command,
    }

    fn parse(args: &[&str]) -> Result<Command, clap::Error> {
        T::try_parse_from(std::iter::once("klamm").chain(args.iter().copied())).map(|t| t.cmd)
    }

    #[test]
    fn kafka_errors_name_code_and_message() {
        let e = CliError::Kafka { code: 36, message: Some("Topic 'x' already exists.".into()) };
        assert_eq!(e.to_string(), "TOPIC_ALREADY_EXISTS (36): Topic 'x' already exists.");
        let e = CliError::Kafka { code: 3, message: None };
        assert_eq!(e.to_string(), "UNKNOWN_TOPIC_OR_PARTITION (3): This server does not host this topic-partition.");
        let e = CliError::Kafka { code: 69, message: None }.about("group 'g'");
        assert_eq!(e.to_string(), "GROUP_ID_NOT_FOUND (69): group 'g': The group id does not exist.");
    }

    #[test]
    fn key_values() {
        assert_eq!(parse_key_value("a=b=c"), Ok(("a".into(), "b=c".into())));
        assert_eq!(parse_key_value("a="), Ok(("a".into(), "".into())));
        assert!(parse_key_value("=b").is_err());
        assert!(parse_key_value("ab").is_err());
    }

    #[test]
    fn parses_every_command() {
        let c = parse(&["topic", "create", "t", "-p", "3", "-c", "retention.ms=1000", "-c", "cleanup.policy=compact", "--if-not-exists", "-b", "h:1"]).unwrap();
        let Command::Topic(t) = c else { panic!("{c:?}") };
        assert_eq!(t.conn.bootstrap_server, "h:1");
        let topic::TopicCommand::Create { name, partitions, configs, if_not_exists, .. } = t.command else { panic!() };
        assert_eq!((name.as_str(), partitions, if_not_exists), ("t", Some(3), true));
        assert_eq!(configs, vec![("retention.ms".to_string(), "1000".to_string()), ("cleanup.policy".into(), "compact".into())]);

        let c = parse(&["-b", "x:2", "produce", "t", "-k", "key", "-H", "a=1", "-H", "b=2", "--acks", "0"]);
        assert!(c.is_err(), "-b belongs after the subcommand");
        let c = parse(&["produce", "t", "-k", "key", "-H", "a=1", "-H", "b=2", "--acks", "0", "--value", "v"]).unwrap();
        let Command::Produce(p) = c else { panic!() };
        assert_eq!((p.key.as_deref(), p.acks, p.value.as_deref()), (Some("key"), 0, Some("v")));
        assert_eq!(p.headers.len(), 2);
        assert!(parse(&["produce", "t", "--acks", "2"]).is_err());

        let c = parse(&["consume", "t", "--from-beginning", "-n", "5", "-f", "%k=%v"]).unwrap();
        let Command::Consume(k) = c else { panic!() };
        assert!(k.from_beginning);
        assert_eq!(k.num, Some(5));
        assert!(parse(&["consume", "t", "--from-beginning", "--offset", "3"]).is_err());

        let c = parse(&["group", "reset-offsets", "g", "--topic", "t", "--to-offset", "4", "--execute"]).unwrap();
        let Command::Group(g) = c else { panic!() };
        let group::GroupCommand::ResetOffsets { to_offset, execute, .. } = g.command else { panic!() };
        assert_eq!((to_offset, execute), (Some(4), true));
        assert!(parse(&["group", "reset-offsets", "g", "--topic", "t"]).is_err(), "a target is required");
        assert!(parse(&["group", "reset-offsets", "g", "--topic", "t", "--to-earliest", "--to-latest"]).is_err());

        let c = parse(&["cluster", "info", "--format", "json"]).unwrap();
        let Command::Cluster(c) = c else { panic!() };
        assert_eq!(c.format.format, OutputFormat::Json);
    }
}
