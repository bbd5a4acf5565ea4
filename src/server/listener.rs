//! Owns a bound TCP listener: accepts connections while a connection permit
//! is free, spawns one task per connection, and stops on shutdown.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use super::connection::Connection;
use crate::broker::Broker;

/// Bounds every connection and frame.
#[derive(Clone, Debug)]
pub struct Limits {
    /// `max.connections`: connections served at once on all listeners.
    pub max_connections: usize,
    /// `socket.request.max.bytes`: larger frames close the connection.
    pub request_max_bytes: usize,
    /// `connections.max.idle.ms`: a connection idle this long is closed.
    pub connections_max_idle_ms: u64,
    /// `queued.max.request.bytes`: request bytes held in memory at once,
    /// broker-wide; readers wait for room before allocating a frame.
    pub queued_max_request_bytes: usize,
}

/// A client-facing listener: its name (`PLAINTEXT`, `HOST`, …) and the
/// address it advertises in Metadata responses.
pub struct Listener {
    pub name: String,
    pub advertised_host: String,
    pub advertised_port: u16,
    pub tcp: TcpListener,
}

impl Listener {
    pub fn local_addr(&self) -> std::io::Result<SocketAddr> {
        self.tcp.local_addr()
    }

    /// Accepts connections until `shutdown` fires. Each connection task is
    /// tracked by `tracker` so shutdown can wait for in-flight requests.
    pub async fn run(
        self,
        broker: Arc<Broker>,
        connections: Arc<Semaphore>,
        tracker: TaskTracker,
        shutdown: CancellationToken,
    ) {
        let listener = Arc::new(ListenerInfo {
            name: self.name.clone(),
            advertised_host: self.advertised_host.clone(),
            advertised_port: self.advertised_port,
        });
        loop {
            // The permit is taken before accept: at the limit we stop
            // accepting and let the kernel backlog hold new clients.
            let permit = tokio::select! {
                _ = shutdown.cancelled() => return,
                p = connections.clone().acquire_owned() => match p {
                    Ok(p) => p,
                    Err(_) => return,
                },
            };
            let accepted = tokio::select! {
                _ = shutdown.cancelled() => return,
                a = self.tcp.accept() => a,
            };
            let (socket, peer) = match accepted {
                Ok(a) => a,
                Err(e) => {
                    // Out of file descriptors and similar: back off, keep serving.
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            };
            let _ = socket.set_nodelay(true);
            let conn = Connection::new(socket, peer, broker.clone(), listener.clone(), shutdown.clone());
            tracker.spawn(async move {
                conn.run().await;
                drop(permit);
            });
        }
    }
}

/// What a connection needs to know about the listener it came from.
#[derive(Debug, Clone)]
pub struct ListenerInfo {
    pub name: String,
    pub advertised_host: String,
    pub advertised_port: u16,
}
