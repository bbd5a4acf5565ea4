//! group: klamm's classic consumer-group coordinator and durable committed
//! offsets.
//!
//! - [`state`]: the group state machine ([`GroupState`]).
//! - [`coordinator`]: [`GroupCoordinator`], serving JoinGroup, SyncGroup,
//!   Heartbeat, LeaveGroup, OffsetCommit, OffsetFetch, ListGroups,
//!   DescribeGroups, DeleteGroups and OffsetDelete with Kafka's classic
//!   coordinator semantics and error codes.
//! - [`offsets_store`]: the append-only, CRC-checked, fsynced offsets file
//!   that replaces Kafka's `__consumer_offsets` topic.
//! - [`messages`]: the plain request/response structs the API handlers
//!   map the wire messages to.
//! - [`errors`]: Kafka error codes and the store's typed errors.
//! - [`consumer`]: the KIP-848 consumer group coordinator
//!   (ConsumerGroupHeartbeat), beside the classic one.
//! - [`group_config`]: the per-group dynamic configs (GROUP resource).
//! - [`consumer_protocol`]: parsing of "consumer" subscriptions (for
//!   OffsetDelete and offset expiry).

pub mod consumer;
pub mod consumer_protocol;
pub mod coordinator;
pub mod errors;
pub mod group_config;
pub mod messages;
mod model;
pub mod offsets_store;
pub mod state;

#[cfg(test)]
mod coordinator_tests;

pub use coordinator::{GroupConfig, GroupCoordinator};
pub use errors::StoreError;
pub use messages::*;
pub use offsets_store::{CommittedOffset, OffsetsStore, StoredGroupMeta};
pub use state::GroupState;
