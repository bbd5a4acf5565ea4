//! `klamm healthcheck`: a minimal blocking Kafka client that sends one
//! ApiVersions v0 request and checks for an error-free answer with the same
//! correlation id. Used by the docker image's HEALTHCHECK, so it needs
//! nothing but the binary.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream, ToSocketAddrs};
use std::time::{Duration, Instant};

/// Largest ApiVersions response accepted (a real one is ~500 bytes).
const MAX_RESPONSE_BYTES: usize = 64 * 1024;
const CORRELATION_ID: i32 = 0x6b6c_6d6d;

/// The address to check for a listener `host:port` (a wildcard host means
/// this machine).
pub fn local_target(bind_host: &str, port: u16) -> String {
    let host = if bind_host.is_empty() || bind_host == "0.0.0.0" || bind_host == "::" || bind_host == "[::]" {
        "127.0.0.1"
    } else {
        bind_host
    };
    crate::config::listener::host_port(host, port)
}

/// Checks that a Kafka broker at `target` answers ApiVersions.
pub fn check(target: &str, timeout: Duration) -> Result<(), String> {
    let deadline = Instant::now() + timeout;
    let addrs: Vec<SocketAddr> = target
        .to_socket_addrs()
        .map_err(|e| format!("cannot resolve {target}: {e}"))?
        .collect();
    let addr = addrs.first().ok_or_else(|| format!("cannot resolve {target}"))?;
    let mut stream = TcpStream::connect_timeout(addr, timeout).map_err(|e| format!("cannot connect to {addr}: {e}"))?;
    let left = || deadline.saturating_duration_since(Instant::now()).max(Duration::from_millis(1));
    stream.set_write_timeout(Some(left())).map_err(|e| e.to_string())?;

    // Request header v1: api key 18, version 0, correlation id, client id.
    let client_id = b"klamm-healthcheck";
    let mut frame = Vec::with_capacity(4 + 10 + client_id.len());
    let size = 2 + 2 + 4 + 2 + client_id.len();
    frame.extend_from_slice(&(size as i32).to_be_bytes());
    frame.extend_from_slice(&18i16.to_be_bytes());
    frame.extend_from_slice(&0i16.to_be_bytes());
    frame.extend_from_slice(&CORRELATION_ID.to_be_bytes());
    frame.extend_from_slice(&(client_id.len() as i16).to_be_bytes());
    frame.extend_from_slice(client_id);
    stream.write_all(&frame).map_err(|e| format!("cannot send to {addr}: {e}"))?;

    stream.set_read_timeout(Some(left())).map_err(|e| e.to_string())?;
    let mut len = [0u8; 4];
    stream.read_exact(&mut len).map_err(|e| format!("no answer from {addr}: {e}"))?;
    let len = i32::from_be_bytes(len);
    if len < 6 || len as usize > MAX_RESPONSE_BYTES {
        return Err(format!("bad response size {len} from {addr}"));
    }
    let mut body = vec![0u8; len as usize];
    stream.set_read_timeout(Some(left())).map_err(|e| e.to_string())?;
    stream.read_exact(&mut body).map_err(|e| format!("short answer from {addr}: {e}"))?;
    let correlation = i32::from_be_bytes([body[0], body[1], body[2], body[3]]);
    if correlation != CORRELATION_ID {
        return Err(format!("wrong correlation id {correlation} from {addr}"));
    }
    let error = i16::from_be_bytes([body[4], body[5]]);
    if error != 0 {
        return Err(format!("ApiVersions answered error {error}"));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wildcards_mean_this_machine() {
        assert_eq!(local_target("0.0.0.0", 9092), "127.0.0.1:9092");
        assert_eq!(local_target("", 9092), "127.0.0.1:9092");
        assert_eq!(local_target("kafka", 9093), "kafka:9093");
    }

    #[test]
    fn a_closed_port_fails() {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = l.local_addr().unwrap().port();
        drop(l);
        assert!(check(&format!("127.0.0.1:{port}"), Duration::from_millis(500)).is_err());
    }

    #[tokio::test(flavor = "multi_thread")]
    async fn a_running_broker_passes() {
        let broker = crate::TestBroker::start().await.unwrap();
        let target = broker.bootstrap_servers().to_string();
        let r = tokio::task::spawn_blocking(move || check(&target, Duration::from_secs(5))).await.unwrap();
        assert_eq!(r, Ok(()));
        broker.shutdown().await;
    }
}
