//! The `klamm` binary: parses the command line and runs the broker.

fn main() {
    println!("klamm {}", env!("CARGO_PKG_VERSION"));
}
