//! group: klamm's classic consumer-group coordinator and durable committed
//! offsets (being built: state machine, error codes, messages, consumer
//! protocol parsing, offsets store).

pub mod consumer_protocol;
pub mod errors;
pub mod messages;
pub mod offsets_store;
pub mod state;

pub use errors::StoreError;
pub use messages::*;
pub use offsets_store::{CommittedOffset, OffsetsStore, StoredGroupMeta};
pub use state::GroupState;
