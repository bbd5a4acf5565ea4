//! Owns a bound TCP listener: accepts connections while a connection permit
//! is free, spawns one task per connection, and stops on shutdown.

use std::collections::BTreeMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::Ordering;
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
    /// `max.connections.per.ip`: connections from one IP address at once,
    /// on all listeners; one over it is closed right after accept.
    pub max_connections_per_ip: usize,
    /// `max.connections.per.ip.overrides`: per-IP exceptions.
    pub max_connections_per_ip_overrides: BTreeMap<IpAddr, usize>,
    /// `socket.request.max.bytes`: larger frames close the connection.
    pub request_max_bytes: usize,
    /// `connections.max.idle.ms`: a connection idle this long is closed,
    /// and a request frame must arrive whole within it.
    pub connections_max_idle_ms: u64,
    /// `klamm.socket.write.timeout.ms`: a response not written within
    /// this long (the client stopped reading) closes the connection.
    pub write_timeout_ms: u64,
    /// `queued.max.request.bytes`: request bytes held in memory at once,
    /// broker-wide, counted as they arrive.
    pub queued_max_request_bytes: usize,
    /// `klamm.queued.max.request.bytes.per.ip`: the same for one client IP.
    pub queued_max_request_bytes_per_ip: usize,
}

/// How long a response may take to be written (`klamm.socket.write.timeout.ms`
/// default). Kafka has no write timeout of its own: a client that stops
/// reading holds its socket until `connections.max.idle.ms` (10 minutes)
/// because Kafka's selector counts a blocked write as activity. 30 s is
/// what Kafka clients use as `request.timeout.ms`: a client that has not
/// read a response in that long has given up on it anyway.
pub const DEFAULT_WRITE_TIMEOUT_MS: u64 = 30_000;

/// At shutdown, how long a connection may go on writing the response it
/// is blocked on before it is dropped.
pub const SHUTDOWN_WRITE_GRACE_MS: u64 = 2_000;

impl Limits {
    /// Kafka's defaults, with klamm's bound on request memory.
    pub fn defaults() -> Limits {
        let queued = crate::broker::DEFAULT_QUEUED_MAX_REQUEST_BYTES;
        let request_max_bytes = 104_857_600;
        Limits {
            max_connections: 10_000,
            max_connections_per_ip: i32::MAX as usize,
            max_connections_per_ip_overrides: BTreeMap::new(),
            request_max_bytes,
            connections_max_idle_ms: 600_000,
            write_timeout_ms: DEFAULT_WRITE_TIMEOUT_MS,
            queued_max_request_bytes: queued,
            queued_max_request_bytes_per_ip: default_per_ip_bytes(queued, request_max_bytes),
        }
    }
}

/// `klamm.queued.max.request.bytes.per.ip = -1`: a quarter of the pool (so
/// at least four client hosts share it), but at least one largest frame,
/// and never more than the pool.
pub fn default_per_ip_bytes(queued_max_request_bytes: usize, request_max_bytes: usize) -> usize {
    (queued_max_request_bytes / 4).max(request_max_bytes).min(queued_max_request_bytes)
}

/// A client-facing listener: its name (`PLAINTEXT`, `HOST`, …) and the
/// address it advertises in Metadata responses.
pub struct Listener {
    pub name: String,
    pub advertised_host: String,
    pub advertised_port: u16,
    /// Set on SASL_PLAINTEXT listeners.
    pub sasl: Option<Arc<crate::security::sasl::ListenerSasl>>,
    /// Set on SSL and SASL_SSL listeners.
    pub tls: Option<crate::security::tls::ServerTls>,
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
            sasl: self.sasl.clone(),
            tls: self.tls.clone(),
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
            // As Kafka: a connection over max.connections.per.ip is
            // closed right after accept (debug only: a client retrying
            // in a loop must not flood the log).
            let Some(slot) = broker.client_quotas().admit(peer.ip()) else {
                tracing::debug!(%peer, limit = broker.client_quotas().connection_limit(peer.ip()), "closed: max.connections.per.ip reached");
                broker.metrics.connections_rejected_per_ip.fetch_add(1, Ordering::Relaxed);
                drop(socket);
                continue;
            };
            let _ = socket.set_nodelay(true);
            let conn = Connection::new(socket, peer, broker.clone(), listener.clone(), shutdown.clone(), slot);
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
    /// Set on SASL listeners: clients must authenticate first.
    pub sasl: Option<Arc<crate::security::sasl::ListenerSasl>>,
    /// Set on SSL and SASL_SSL listeners: the TLS handshake comes first.
    pub tls: Option<crate::security::tls::ServerTls>,
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
