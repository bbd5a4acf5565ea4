//! The `klamm` binary: parses the command line, resolves the configuration
//! (file < `KAFKA_*` environment < `--override`), prints it with
//! `--print-config`, and otherwise reports a one-line summary. Exits with
//! code 1 on any configuration error.

use std::process::ExitCode;

use clap::Parser;
use klamm::config::{cli::process_env, CliArgs};

fn main() -> ExitCode {
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
    println!(
        "klamm {}: configuration OK: {}",
        env!("CARGO_PKG_VERSION"),
        config.summary()
    );
    ExitCode::SUCCESS
}
