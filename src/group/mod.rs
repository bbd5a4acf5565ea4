//! group: klamm's classic consumer-group coordinator and durable committed
//! offsets (being built: state machine, error codes, messages, consumer
//! protocol parsing).

pub mod consumer_protocol;
pub mod errors;
pub mod messages;
pub mod state;

pub use errors::StoreError;
pub use messages::*;
pub use state::GroupState;
