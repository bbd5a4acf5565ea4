//! The `klamm` binary: parses the command line, resolves the configuration
//! (file < `KAFKA_*` environment < `--override`), prints it with
//! `--print-config`, and otherwise runs the broker until SIGINT/SIGTERM,
//! then shuts down gracefully. Exits with code 1 on any configuration or
//! start-up error: nothing starts half-configured.

use std::process::ExitCode;

use clap::Parser;
use klamm::broker::{self, BrokerSettings};
use klamm::config::{cli::process_env, CliArgs};

fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()))
        .with_writer(std::io::stderr)
        .init();
    let args = CliArgs::parse();
    let config = match args.resolve_config(process_env()) {
        Ok(config) => config,
        Err(e) => {
            for error in e.errors() {
                eprintln!("klamm: {error}");
            }
            return ExitCode::from(1);
        }
    };
    for warning in &config.warnings {
        eprintln!("klamm: warning: {warning}");
    }
    if args.print_config {
        print!("{}", config.to_toml());
        return ExitCode::SUCCESS;
    }
    let settings = match BrokerSettings::from_config(&config) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("klamm: {e}");
            return ExitCode::from(1);
        }
    };
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(r) => r,
        Err(e) => {
            eprintln!("klamm: cannot start the runtime: {e}");
            return ExitCode::from(1);
        }
    };
    runtime.block_on(async move {
        let running = match broker::start(settings).await {
            Ok(r) => r,
            Err(e) => {
                eprintln!("klamm: cannot start: {e}");
                return ExitCode::from(1);
            }
        };
        tracing::info!(version = env!("CARGO_PKG_VERSION"), bootstrap = %running.bootstrap(), "klamm started");
        let mut term = match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(t) => t,
            Err(e) => {
                eprintln!("klamm: cannot handle SIGTERM: {e}");
                return ExitCode::from(1);
            }
        };
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {}
            _ = term.recv() => {}
        }
        tracing::info!("shutting down");
        running.shutdown().await;
        ExitCode::SUCCESS
    })
}
