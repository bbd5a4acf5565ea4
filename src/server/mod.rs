//! The network side of the broker, after tokio's mini-redis: `listener`
//! accepts connections (a semaphore bounds them, taken before accept),
//! `connection` reads size-prefixed frames and writes responses in request
//! order, `dispatch` decodes a frame and routes it to its handler.
//! `quotas` bounds what one client IP may hold (connections, request
//! memory counted as it arrives). `sasl` serves a SASL listener's
//! connections until they have authenticated. Shutdown is a `CancellationToken`:
//! listeners stop accepting, connections finish the request in flight and
//! close; one blocked writing a response is dropped after a short grace.

pub mod connection;
pub mod dispatch;
pub mod listener;
pub mod quotas;
pub mod sasl;

pub use listener::{bind_listener, configure_client_socket, Limits, Listener};
