//! The network side of the broker, after tokio's mini-redis: `listener`
//! accepts connections (a semaphore bounds them, taken before accept),
//! `connection` reads size-prefixed frames and writes responses in request
//! order, `dispatch` decodes a frame and routes it to its handler.
//! Shutdown is a `CancellationToken`: listeners stop accepting, connections
//! finish the request in flight and close.

pub mod connection;
pub mod dispatch;
pub mod listener;

pub use listener::{bind_listener, configure_client_socket, Limits, Listener};
