//! The `klamm` binary: parses the command line, resolves the configuration
//! (file < `KAFKA_*` environment < `--override`), prints it with
//! `--print-config`, runs `klamm healthcheck`, and otherwise runs the
//! broker until SIGINT/SIGTERM, then shuts down gracefully. `--ephemeral`
//! runs on a temporary data directory (deleted at exit) and prints the
//! bootstrap address on stdout. Logs go to stderr, coloured only on a
//! terminal and without `NO_COLOR`. Exits with code 1 on any configuration
//! or start-up error: nothing starts half-configured.

use std::io::{IsTerminal, Write};
use std::process::ExitCode;
use std::time::Duration;

use clap::Parser;
use klamm::broker::{self, BrokerSettings};
use klamm::config::cli::{log_colours, process_env, Command, LogFormat};
use klamm::config::{BrokerConfig, CliArgs};
use klamm::platform::{self, OpenFilesLimit};
use klamm::testing::TempDir;

fn main() -> ExitCode {
    let mut args = CliArgs::parse();
    // Client commands talk to a broker: no broker configuration, no logs.
    if let Some(Command::Client(cmd)) = &args.command {
        return klamm::cli::run(cmd.clone());
    }
    let filter = tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into());
    let colours = log_colours(std::io::stderr().is_terminal(), std::env::var_os("NO_COLOR").as_deref());
    let logs = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(colours);
    match args.log_format {
        LogFormat::Text => logs.init(),
        LogFormat::Json => logs.json().init(),
    }
    let mut config = match resolve(&args) {
        Ok(c) => c,
        Err(code) => return code,
    };
    if let Some(Command::Healthcheck { bootstrap, timeout_ms }) = &args.command {
        return healthcheck(&config, bootstrap.as_deref(), *timeout_ms);
    }
    // Ephemeral: a temporary data directory, and a free local port unless
    // the listeners are configured.
    let mut ephemeral_dir = None;
    if args.ephemeral {
        let dir = match TempDir::new("klamm-ephemeral") {
            Ok(d) => d,
            Err(e) => {
                eprintln!("klamm: cannot create a temporary directory: {e}");
                return ExitCode::from(1);
            }
        };
        args.overrides.push(format!("log.dirs={}", dir.path().display()));
        if config.origin("listeners").is_none() && config.origin("advertised.listeners").is_none() {
            args.overrides.push("listeners=PLAINTEXT://127.0.0.1:0".into());
        }
        config = match resolve(&args) {
            Ok(c) => c,
            Err(code) => return code,
        };
        ephemeral_dir = Some(dir);
    }
    if args.print_config {
        print!("{}", config.to_toml());
        return ExitCode::SUCCESS;
    }
    raise_open_files_limit();
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
    let ephemeral = ephemeral_dir.is_some();
    let code = runtime.block_on(async move {
        // Signal handlers first: a SIGTERM that arrives while the broker
        // starts (a supervisor that read the printed address) must stop it
        // gracefully, not kill it.
        let mut signals = match Signals::install() {
            Ok(s) => s,
            Err(e) => {
                eprintln!("klamm: cannot handle signals: {e}");
                return ExitCode::from(1);
            }
        };
        let running = match broker::start(settings).await {
            Ok(r) => r,
            Err(e) => {
                eprintln!("klamm: cannot start: {e}");
                return ExitCode::from(1);
            }
        };
        tracing::info!(version = env!("CARGO_PKG_VERSION"), bootstrap = %running.bootstrap(), "klamm started");
        if ephemeral {
            let mut out = std::io::stdout().lock();
            let _ = writeln!(out, "bootstrap.servers={}", running.bootstrap());
            let _ = out.flush();
        }
        signals.next().await;
        tracing::info!("shutting down (a second Ctrl-C or SIGTERM exits at once)");
        let shutdown = running.shutdown();
        tokio::pin!(shutdown);
        tokio::select! {
            _ = &mut shutdown => ExitCode::SUCCESS,
            _ = signals.next() => {
                tracing::warn!("second signal: exiting without finishing the shutdown; the next start recovers the logs");
                ExitCode::from(130)
            }
            _ = tokio::time::sleep(SHUTDOWN_BOUND) => {
                tracing::error!(bound_s = SHUTDOWN_BOUND.as_secs(), "shutdown did not finish in time: exiting; the next start recovers the logs");
                ExitCode::from(1)
            }
        }
    });
    if code != ExitCode::SUCCESS {
        // Connections or blocking tasks may still hold the runtime: do not
        // wait for them.
        runtime.shutdown_background();
        drop(ephemeral_dir);
        return code;
    }
    // The runtime (and every log handle) goes first, then the directory.
    drop(runtime);
    drop(ephemeral_dir);
    code
}

/// How long a graceful shutdown may take before the process exits anyway.
const SHUTDOWN_BOUND: Duration = Duration::from_secs(60);

/// SIGINT and SIGTERM, installed once and awaited as often as needed.
struct Signals {
    interrupt: tokio::signal::unix::Signal,
    terminate: tokio::signal::unix::Signal,
}

impl Signals {
    fn install() -> std::io::Result<Signals> {
        use tokio::signal::unix::{signal, SignalKind};
        Ok(Signals { interrupt: signal(SignalKind::interrupt())?, terminate: signal(SignalKind::terminate())? })
    }

    async fn next(&mut self) {
        tokio::select! {
            _ = self.interrupt.recv() => {}
            _ = self.terminate.recv() => {}
        }
    }
}

/// Raises the soft open-files limit (see [`platform::raise_open_files_limit`]):
/// every active segment keeps its log open for writing, so a broker with
/// thousands of partitions needs thousands of descriptors, as Kafka's
/// documentation tells operators. Failure is not fatal (descriptors then
/// run out later, as an I/O error on the partition that needs one).
fn raise_open_files_limit() {
    match platform::raise_open_files_limit() {
        OpenFilesLimit::Unchanged { .. } => {}
        OpenFilesLimit::Raised { from, to } => tracing::debug!(from, ?to, "raised the open-files limit"),
        OpenFilesLimit::Refused { current, error } => {
            tracing::warn!(%error, current, "cannot raise the open-files limit")
        }
    }
}

/// Resolves the configuration, printing every problem found.
fn resolve(args: &CliArgs) -> Result<BrokerConfig, ExitCode> {
    match args.resolve_config(process_env()) {
        Ok(config) => {
            for warning in &config.warnings {
                eprintln!("klamm: warning: {warning}");
            }
            Ok(config)
        }
        Err(e) => {
            for error in e.errors() {
                eprintln!("klamm: {error}");
            }
            Err(ExitCode::from(1))
        }
    }
}

fn healthcheck(config: &BrokerConfig, bootstrap: Option<&str>, timeout_ms: u64) -> ExitCode {
    let target = match bootstrap {
        Some(b) => b.to_string(),
        None => match config.client_listeners.first() {
            Some(l) => klamm::healthcheck::local_target(l.bind_host(), l.port),
            None => {
                eprintln!("klamm healthcheck: no client listener is configured");
                return ExitCode::from(1);
            }
        },
    };
    match klamm::healthcheck::check(&target, Duration::from_millis(timeout_ms)) {
        Ok(()) => {
            println!("ok: {target}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("klamm healthcheck: {e}");
            ExitCode::from(1)
        }
    }
}
