//! The HTTP listener (`http.listener`, e.g. `http://0.0.0.0:9644`): `GET
//! /health` (200 once the broker accepts Kafka connections, which is
//! before this listener starts) and `GET /metrics` (Prometheus text format).
//!
//! A deliberately small HTTP/1.1 server: one request per connection
//! (`Connection: close`), a bounded request head, a read timeout, a cap on
//! concurrent connections, and stopping with the broker's shutdown token.

use std::fmt::Write as _;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::broker::Broker;

/// Largest request head read.
const MAX_HEAD_BYTES: usize = 8 * 1024;
/// Concurrent HTTP connections.
const MAX_CONNECTIONS: usize = 64;
const READ_TIMEOUT: Duration = Duration::from_secs(5);

/// Parses `http.listener` (`http://host:port` or `host:port`; an empty host
/// means all interfaces).
pub fn parse_listener(value: &str) -> Result<SocketAddr, String> {
    use std::net::ToSocketAddrs;
    let rest = value.strip_prefix("http://").unwrap_or(value);
    let rest = rest.trim_end_matches('/');
    let with_host = if rest.starts_with(':') { format!("0.0.0.0{rest}") } else { rest.to_string() };
    with_host
        .to_socket_addrs()
        .map_err(|e| format!("http.listener '{value}': {e}"))?
        .next()
        .ok_or_else(|| format!("http.listener '{value}' does not resolve"))
}

/// Serves until `shutdown` fires.
pub async fn serve(tcp: TcpListener, broker: Arc<Broker>, tracker: TaskTracker, shutdown: CancellationToken) {
    let permits = Arc::new(Semaphore::new(MAX_CONNECTIONS));
    loop {
        let permit = tokio::select! {
            _ = shutdown.cancelled() => return,
            p = permits.clone().acquire_owned() => match p {
                Ok(p) => p,
                Err(_) => return,
            },
        };
        let stream = tokio::select! {
            _ = shutdown.cancelled() => return,
            r = tcp.accept() => match r {
                Ok((s, _)) => s,
                Err(e) => {
                    tracing::warn!(error = %e, "http accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
        };
        let broker = broker.clone();
        tracker.spawn(async move {
            let _permit = permit;
            if let Err(e) = handle(stream, &broker).await {
                tracing::debug!(error = %e, "http connection failed");
            }
        });
    }
}

async fn handle(mut stream: TcpStream, broker: &Arc<Broker>) -> std::io::Result<()> {
    let mut head = Vec::with_capacity(512);
    let mut buf = [0u8; 1024];
    let read = async {
        loop {
            let n = stream.read(&mut buf).await?;
            if n == 0 {
                break;
            }
            head.extend_from_slice(&buf[..n]);
            if head.windows(4).any(|w| w == b"\r\n\r\n") || head.len() >= MAX_HEAD_BYTES {
                break;
            }
        }
        Ok::<(), std::io::Error>(())
    };
    if tokio::time::timeout(READ_TIMEOUT, read).await.is_err() {
        return Ok(());
    }
    let line = head.split(|b| *b == b'\n').next().unwrap_or_default();
    let line = String::from_utf8_lossy(line);
    let mut parts = line.split_whitespace();
    let method = parts.next().unwrap_or("");
    let path = parts.next().unwrap_or("");
    let path = path.split('?').next().unwrap_or("");
    let (status, content_type, body) = match (method, path) {
        ("GET" | "HEAD", "/health") => ("200 OK", "text/plain; charset=utf-8", "ok\n".to_string()),
        ("GET" | "HEAD", "/metrics") => {
            ("200 OK", "text/plain; version=0.0.4; charset=utf-8", render_metrics(broker).await)
        }
        ("GET" | "HEAD", _) => ("404 Not Found", "text/plain; charset=utf-8", "not found\n".to_string()),
        _ => ("405 Method Not Allowed", "text/plain; charset=utf-8", "method not allowed\n".to_string()),
    };
    let mut response = format!(
        "HTTP/1.1 {status}\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    if method != "HEAD" {
        response.push_str(&body);
    }
    stream.write_all(response.as_bytes()).await?;
    stream.shutdown().await
}

/// The full `/metrics` page: counters plus gauges computed now.
pub async fn render_metrics(broker: &Arc<Broker>) -> String {
    let mut out = String::with_capacity(16 * 1024);
    broker.metrics.render(&mut out, |k| crate::handlers::spec(k).map(|s| s.name));
    let b = broker.clone();
    // Partition gauges take each log's lock: off the async workers.
    let partitions = tokio::task::spawn_blocking(move || {
        b.replicas
            .all()
            .into_iter()
            .map(|p| {
                let log = p.log.lock().unwrap_or_else(|e| e.into_inner());
                (p.tp.clone(), log.size_bytes(), log.log_start_offset().0, log.log_end_offset().0)
            })
            .collect::<Vec<_>>()
    })
    .await
    .unwrap_or_default();
    let cleaner = &broker.replicas.log_manager().cleaner().stats;
    for (name, help, value) in [
        ("klamm_log_cleaner_passes_total", "Logs the log cleaner has compacted.", &cleaner.passes),
        ("klamm_log_cleaner_read_bytes_total", "Bytes the log cleaner has read from segments it rewrote.", &cleaner.bytes_read),
        ("klamm_log_cleaner_written_bytes_total", "Bytes the log cleaner has written to cleaned segments.", &cleaner.bytes_written),
        ("klamm_log_cleaner_removed_records_total", "Records the log cleaner has removed.", &cleaner.records_removed),
    ] {
        let _ = writeln!(out, "# HELP {name} {help}");
        let _ = writeln!(out, "# TYPE {name} counter");
        let _ = writeln!(out, "{name} {}", value.load(std::sync::atomic::Ordering::Relaxed));
    }
    let _ = writeln!(out, "# HELP klamm_log_cleaner_uncleanable_partitions Compacted partitions the cleaner gave up on (see the log).");
    let _ = writeln!(out, "# TYPE klamm_log_cleaner_uncleanable_partitions gauge");
    let _ = writeln!(
        out,
        "klamm_log_cleaner_uncleanable_partitions {}",
        cleaner.uncleanable_partitions.load(std::sync::atomic::Ordering::Relaxed)
    );
    let b = broker.clone();
    let states = tokio::task::spawn_blocking(move || b.txns.count_by_state()).await.unwrap_or_default();
    let states: Vec<(&str, usize)> = states.iter().map(|(s, n)| (s.name(), *n)).collect();
    broker.metrics.txn.render(&mut out, &states);
    let (sessions, cached) = broker.fetch_sessions.sizes();
    let _ = writeln!(out, "# HELP klamm_fetch_sessions Incremental fetch sessions cached (KIP-227).");
    let _ = writeln!(out, "# TYPE klamm_fetch_sessions gauge");
    let _ = writeln!(out, "klamm_fetch_sessions {sessions}");
    let _ = writeln!(out, "# HELP klamm_fetch_session_partitions Partitions cached across all fetch sessions.");
    let _ = writeln!(out, "# TYPE klamm_fetch_session_partitions gauge");
    let _ = writeln!(out, "klamm_fetch_session_partitions {cached}");
    let _ = writeln!(out, "# HELP klamm_log_size_bytes Bytes in a partition's log segments.");
    let _ = writeln!(out, "# TYPE klamm_log_size_bytes gauge");
    for (tp, size, _, _) in &partitions {
        let _ = writeln!(out, "klamm_log_size_bytes{{topic=\"{}\",partition=\"{}\"}} {size}", tp.topic, tp.partition);
    }
    let _ = writeln!(out, "# HELP klamm_log_start_offset First offset still in a partition's log.");
    let _ = writeln!(out, "# TYPE klamm_log_start_offset gauge");
    for (tp, _, start, _) in &partitions {
        let _ = writeln!(out, "klamm_log_start_offset{{topic=\"{}\",partition=\"{}\"}} {start}", tp.topic, tp.partition);
    }
    let _ = writeln!(out, "# HELP klamm_log_end_offset Next offset to be written to a partition.");
    let _ = writeln!(out, "# TYPE klamm_log_end_offset gauge");
    for (tp, _, _, end) in &partitions {
        let _ = writeln!(out, "klamm_log_end_offset{{topic=\"{}\",partition=\"{}\"}} {end}", tp.topic, tp.partition);
    }
    let ends: std::collections::HashMap<(String, i32), i64> =
        partitions.iter().map(|(tp, _, _, end)| ((tp.topic.clone(), tp.partition), *end)).collect();
    let _ = writeln!(out, "# HELP klamm_consumer_group_lag Log end offset minus the group's committed offset.");
    let _ = writeln!(out, "# TYPE klamm_consumer_group_lag gauge");
    let store = broker.groups.store();
    for (group, _) in store.group_ids() {
        store.with_group(&group, |g| {
            let Some(g) = g else { return };
            for (topic, parts) in &g.offsets {
                for (partition, committed) in parts {
                    if let Some(end) = ends.get(&(topic.clone(), *partition)) {
                        let lag = (end - committed.offset.0).max(0);
                        let _ = writeln!(
                            out,
                            "klamm_consumer_group_lag{{group=\"{}\",topic=\"{topic}\",partition=\"{partition}\"}} {lag}",
                            escape(&group)
                        );
                    }
                }
            }
        });
    }
    out
}

/// Escapes a label value (group ids are arbitrary strings).
fn escape(s: &str) -> String {
    s.replace('\\', "\\\\").replace('"', "\\\"").replace('\n', "\\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn listener_values() {
        assert_eq!(parse_listener("http://127.0.0.1:9644").unwrap(), "127.0.0.1:9644".parse().unwrap());
        assert_eq!(parse_listener("http://:9644").unwrap(), "0.0.0.0:9644".parse().unwrap());
        assert_eq!(parse_listener("127.0.0.1:0").unwrap(), "127.0.0.1:0".parse().unwrap());
        assert!(parse_listener("http://nonsense").is_err());
    }

    #[test]
    fn label_values_are_escaped() {
        assert_eq!(escape("a\"b\\c\n"), "a\\\"b\\\\c\\n");
    }
}
