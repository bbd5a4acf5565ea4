//! consumer: the consumer group protocol of KIP-848 (server-side
//! assignment, ConsumerGroupHeartbeat / ConsumerGroupDescribe). The classic
//! coordinator (`crate::group::coordinator`) stays as it is; this one owns
//! the group ids that consumer-protocol members created.
//!
//! - [`state`]: one group as a pure state machine (epochs, target
//!   assignment, incremental reconciliation), unit tested in `tests`.
//! - [`assignor`]: the `uniform` server assignor.
//! - [`coordinator`]: [`ConsumerGroupCoordinator`], the map of groups.
//! - [`durable`]: the snapshot each group keeps in the offsets store.

pub mod assignor;
pub mod coordinator;
pub mod durable;
pub mod state;

#[cfg(test)]
mod tests;

pub use coordinator::{ConsumerGroupConfig, ConsumerGroupCoordinator};
