//! Build script: generates the protocol message codec (placeholder).
fn main() {}
