//! storage: mmap-backed segmented partition logs of v2 record batches, in
//! Kafka's on-disk layout (`<topic>-<partition>/<offset>.log|.index|
//! .timeindex`, offset checkpoint files, clean-shutdown marker), and the
//! data directory's `.lock` that keeps a second broker out.
//!
//! All APIs are synchronous; the broker calls them from `spawn_blocking`.

mod checkpoint;
pub mod cleaner;
mod config;
mod dir_lock;
mod error;
pub mod faults;
mod files;
mod index;
mod loader;
mod log_manager;
pub mod map_cache;
pub mod mmap;
mod partition_log;
mod producer_state;
mod roll;
mod segment;
pub mod txn_index;
mod verification;

pub use checkpoint::{
    read_checkpoint, read_leader_epoch_checkpoint, write_checkpoint, EpochEntry,
    LEADER_EPOCH_CHECKPOINT_FILE, LOG_START_OFFSET_CHECKPOINT_FILE, RECOVERY_POINT_CHECKPOINT_FILE,
};
pub use config::{LogConfig, NEVER};
pub use dir_lock::{DirLock, LOCK_FILE};
pub use error::{keyless_message, StorageError};
pub use files::{sync_dir, write_atomically};
pub use index::{OffsetIndex, OffsetPosition, TimeIndex, TimestampOffset};
pub use loader::{LoadReport, OpenOptions};
pub use log_manager::{
    finish_rolls, parse_partition_dir_name, partition_dir_name, validate_topic_name, LogManager, SharedLog,
    unique_hex, CLEAN_SHUTDOWN_FILE, DELETE_DIR_SUFFIX, MAX_TOPIC_NAME_LEN, STRAY_DIR_SUFFIX,
};
pub use partition_log::{AppendInfo, PartitionLog, ReadInfo, ReadPlan};
pub use producer_state::{
    BatchMetadata, PendingUpdates, ProducerBatch, ProducerEntry, ProducerStateManager,
    MAX_PRODUCERS, NUM_BATCHES_TO_RETAIN,
};
pub use roll::SealJob;
pub use verification::{VerificationGuard, Verifications, MAX_GUARDS_PER_PARTITION};
pub use segment::{OpenMode, OpenReport, Segment, SegmentRead, SegmentSnapshot, SegmentSync, TimeQuery, TimeSearch, TimestampAndOffset};
