//! storage: mmap-backed segmented partition logs of v2 record batches, in
//! Kafka's on-disk layout (`<topic>-<partition>/<offset>.log|.index|
//! .timeindex`, offset checkpoint files, clean-shutdown marker).
//!
//! All APIs are synchronous; the broker calls them from `spawn_blocking`.

mod config;
mod error;
mod files;
mod index;
pub mod mmap;
mod segment;

pub use config::{LogConfig, NEVER};
pub use error::StorageError;
pub use index::{OffsetIndex, OffsetPosition, TimeIndex, TimestampOffset};
pub use segment::{OpenMode, OpenReport, Segment, SegmentRead, TimestampAndOffset};
