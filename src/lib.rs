//! klamm: a Kafka-compatible single-node broker (KRaft-style: broker and
//! controller in one process).
//!
//! The crate is laid out the way a request travels:
//! `server` (listener → connection → dispatch) decodes frames with
//! `protocol`, hands them to one `handlers` file per API, which append to and
//! read from `storage` (mmap-backed segmented partition logs of `records`
//! batches). `controller` owns topic/partition metadata, `group` the classic
//! consumer-group protocol and committed offsets, and `config` turns Kafka
//! property names (file, overrides, `KAFKA_*` environment) into a checked
//! `BrokerConfig`. `platform` holds every difference between operating
//! systems (memory-map hints, the open-files limit, file locks);
//! `kafka_import` adopts a data directory Apache Kafka left (its topics and
//! committed offsets) on the first start.

pub mod cli;
pub mod config;
pub mod console;
pub mod controller;
pub mod fetch_session;
pub mod group;
pub mod handlers;
pub mod healthcheck;
pub mod http;
pub mod kafka_import;
pub mod metrics;
pub mod platform;
pub mod protocol;
pub mod records;
pub mod replica;
pub mod security;
pub mod server;
pub mod storage;
pub mod testing;
pub mod txn;
pub mod types;
pub mod util;
pub mod broker;

pub use testing::{TestBroker, TestBrokerBuilder};

#[cfg(test)]
mod fuzz_seeds;
