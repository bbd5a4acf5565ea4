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

/// Binds a client listener the way Kafka configures its sockets:
/// `socket.listen.backlog.size`, and `socket.receive.buffer.bytes` /
/// `socket.send.buffer.bytes` (-1: the OS default) set on the listening
/// socket, which accepted sockets inherit.
pub fn bind_listener(addr: SocketAddr, config: &crate::config::BrokerConfig) -> std::io::Result<TcpListener> {
    let socket = if addr.is_ipv4() { tokio::net::TcpSocket::new_v4()? } else { tokio::net::TcpSocket::new_v6()? };
    // As std and tokio do on Unix: a restarted broker rebinds its port at
    // once, even with connections of the previous run in TIME_WAIT.
    socket.set_reuseaddr(true)?;
    configure_client_socket(&socket, config)?;
    socket.bind(addr)?;
    socket.listen(config.socket_listen_backlog_size.max(1))
}

/// Sets `socket.receive.buffer.bytes` / `socket.send.buffer.bytes` on a
/// listening socket before it binds (accepted sockets inherit them).
pub fn configure_client_socket(socket: &tokio::net::TcpSocket, config: &crate::config::BrokerConfig) -> std::io::Result<()> {
    if let Some(n) = config.socket_receive_buffer_bytes {
        socket.set_recv_buffer_size(u32::try_from(n).unwrap_or(u32::MAX))?;
    }
    if let Some(n) = config.socket_send_buffer_bytes {
        socket.set_send_buffer_size(u32::try_from(n).unwrap_or(u32::MAX))?;
    }
    Ok(())
}

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

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn accepted_sockets_get_the_configured_buffer_sizes() {
        let config = crate::config::BrokerConfig::with_settings(&[
            ("socket.receive.buffer.bytes", "65536"),
            ("socket.send.buffer.bytes", "32768"),
            ("socket.listen.backlog.size", "7"),
        ])
        .unwrap();
        let listener = bind_listener("127.0.0.1:0".parse().unwrap(), &config).unwrap();
        let addr = listener.local_addr().unwrap();
        let _client = tokio::net::TcpStream::connect(addr).await.unwrap();
        let (accepted, _) = listener.accept().await.unwrap();
        let socket = tokio::net::TcpSocket::from_std_stream(accepted.into_std().unwrap());
        // Linux reports twice the size asked for (its bookkeeping overhead).
        let (recv, send) = (socket.recv_buffer_size().unwrap(), socket.send_buffer_size().unwrap());
        assert!((65_536..=131_072).contains(&recv), "SO_RCVBUF {recv}");
        assert!((32_768..=65_536).contains(&send), "SO_SNDBUF {send}");
    }

    #[tokio::test]
    async fn a_taken_port_is_an_error() {
        let config = crate::config::BrokerConfig::with_settings(&[]).unwrap();
        let first = bind_listener("127.0.0.1:0".parse().unwrap(), &config).unwrap();
        assert!(bind_listener(first.local_addr().unwrap(), &config).is_err());
    }
}
