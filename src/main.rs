//! The `klamm` binary: resolves the configuration, starts the broker and
//! shuts it down gracefully on SIGINT/SIGTERM.

use std::net::{SocketAddr, ToSocketAddrs};
use std::path::PathBuf;

use clap::Parser;
use klamm::broker::{self, BrokerSettings};

#[derive(Parser, Debug)]
#[command(name = "klamm", version, about = "A Kafka-compatible broker in one small binary")]
struct Cli {
    /// Set a Kafka property, e.g. `--override log.dirs=/data` (repeatable).
    #[arg(long = "override", value_name = "KEY=VALUE")]
    overrides: Vec<String>,
}

fn parse_listener(value: &str) -> Result<(String, SocketAddr), String> {
    let (name, rest) = value.split_once("://").ok_or(format!("invalid listener '{value}': expected NAME://host:port"))?;
    let (host, port) = rest.rsplit_once(':').ok_or(format!("invalid listener '{value}': missing port"))?;
    let host = if host.is_empty() { "0.0.0.0" } else { host.trim_matches(|c| c == '[' || c == ']') };
    let port: u16 = port.parse().map_err(|_| format!("invalid port in listener '{value}'"))?;
    let addr = (host, port)
        .to_socket_addrs()
        .map_err(|e| format!("cannot resolve listener '{value}': {e}"))?
        .next()
        .ok_or(format!("cannot resolve listener '{value}'"))?;
    Ok((name.to_string(), addr))
}

fn settings(cli: &Cli) -> Result<BrokerSettings, String> {
    let mut s = BrokerSettings::new("0.0.0.0:9092".parse().unwrap(), PathBuf::from("/tmp/klamm-logs"));
    let mut advertised: Option<String> = None;
    for o in &cli.overrides {
        let (k, v) = o.split_once('=').ok_or(format!("invalid override '{o}': expected key=value"))?;
        let bad = |what: &str| format!("invalid value '{v}' for configuration '{k}': expected {what}");
        match k {
            "listeners" => {
                let (name, addr) = parse_listener(v.split(',').next().unwrap_or(""))?;
                s.listeners[0].name = name;
                s.listeners[0].bind = addr;
                s.listeners[0].advertised_host =
                    if addr.ip().is_unspecified() { "localhost".into() } else { addr.ip().to_string() };
            }
            "advertised.listeners" => advertised = Some(v.to_string()),
            "log.dirs" | "log.dir" => s.log_dir = PathBuf::from(v),
            "node.id" => s.node_id = v.parse().map_err(|_| bad("an integer"))?,
            "auto.create.topics.enable" => s.auto_create_topics_enable = v.parse().map_err(|_| bad("true or false"))?,
            "delete.topic.enable" => s.delete_topic_enable = v.parse().map_err(|_| bad("true or false"))?,
            "num.partitions" => s.num_partitions = v.parse().map_err(|_| bad("an integer"))?,
            "socket.request.max.bytes" => s.limits.request_max_bytes = v.parse().map_err(|_| bad("an integer"))?,
            _ => tracing::warn!(key = k, "configuration not applied yet by this build"),
        }
    }
    if let Some(a) = advertised {
        let first = a.split(',').next().unwrap_or("");
        let (_, rest) = first.split_once("://").ok_or(format!("invalid advertised.listeners '{a}'"))?;
        let (host, port) = rest.rsplit_once(':').ok_or(format!("invalid advertised.listeners '{a}'"))?;
        s.listeners[0].advertised_host = host.to_string();
        s.listeners[0].advertised_port = port.parse().map_err(|_| format!("invalid advertised.listeners '{a}'"))?;
    }
    Ok(s)
}

fn main() {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()),
        )
        .init();
    let cli = Cli::parse();
    let settings = match settings(&cli) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("klamm: {e}");
            std::process::exit(1);
        }
    };
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build().expect("tokio runtime");
    let code = runtime.block_on(async move {
        let running = match broker::start(settings).await {
            Ok(r) => r,
            Err(e) => {
                eprintln!("klamm: cannot start: {e}");
                return 1;
            }
        };
        tracing::info!(bootstrap = %running.bootstrap(), "klamm started");
        let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).expect("SIGTERM handler");
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {}
            _ = term.recv() => {}
        }
        tracing::info!("shutting down");
        running.shutdown().await;
        0
    });
    std::process::exit(code);
}
