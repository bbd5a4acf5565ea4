//! Adopting an Apache Kafka data directory: an operator swaps the
//! `apache/kafka` image for klamm on the same volume, and on its first
//! start klamm takes over Kafka's topics and committed offsets.
//!
//! It happens once, when the log dir has Kafka's `meta.properties` and
//! `__cluster_metadata-0` but no klamm metadata yet:
//!
//! 1. [`kraft`] replays Kafka's KRaft metadata (newest snapshot, then the
//!    log) into topics: name, id, partition count, leader epoch, topic
//!    configs;
//! 2. [`group_offsets`] replays the `__consumer_offsets-*` partitions into
//!    committed offsets and classic group metadata;
//! 3. the offsets go into klamm's offsets store, then the topics, with the
//!    same ids (the partition directories' `partition.metadata` hold them),
//!    are written as klamm's first metadata in one atomic step, with an
//!    `adopted-from-kafka` note beside it. From then on klamm's metadata is
//!    the source of truth; a crash before that step just adopts again.
//!
//! The topic partition directories are then served as they are. Kafka's
//! internal directories (`__cluster_metadata-0`, `__consumer_offsets-*`,
//! `__transaction_state-*`, `__share_group_state-*`) and the files klamm
//! does not use (Kafka's producer snapshots, `leader-epoch-checkpoint`,
//! which klamm only reads, `.txnindex`, unfinished `.swap` files, Kafka's
//! root checkpoint files) are read at most, never changed, so the directory
//! can go back to Kafka. Everything read from disk is bounds-checked: a
//! corrupt file is an error or a warning, never a panic.

pub mod batches;
pub mod group_offsets;
pub mod kraft;
