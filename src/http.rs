//! The HTTP listener (`http.listener`, e.g. `http://0.0.0.0:9644`): `GET
//! /health` (200 once the broker accepts Kafka connections, which is
//! before this listener starts), `GET /metrics` (Prometheus text format),
//! and everything else to the web console (`crate::console`: its pages
//! and its JSON API under `/api/`).
//!
//! A deliberately small HTTP/1.1 server, kept hand-rolled rather than
//! hyper: it serves a handful of local routes, and this way the static
//! binary gains no dependency tree and keeps building with Rust 1.85.
//! One request per connection (`Connection: close`), a bounded request
//! line and head ([`MAX_HEAD_BYTES`], [`MAX_HEADERS`]), a bounded body
//! (`Content-Length` only, at most [`MAX_BODY_BYTES`]), a read timeout, a
//! cap on concurrent connections, and stopping with the broker's shutdown
//! token.

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
use crate::console::Console;

/// Largest request head (request line and headers) read.
pub const MAX_HEAD_BYTES: usize = 8 * 1024;
/// Most header lines in a request.
pub const MAX_HEADERS: usize = 64;
/// Largest request body accepted (the console's forms).
pub const MAX_BODY_BYTES: usize = 1024 * 1024;
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

/// A parsed request.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Request {
    pub method: String,
    /// The path, still percent-encoded, without the query.
    pub path: String,
    /// The query string after `?`, still encoded.
    pub query: String,
    /// Header names lower-cased.
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Request {
    /// The first header `name` (lower case).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
    }

    /// The decoded value of query parameter `name`.
    pub fn param(&self, name: &str) -> Option<String> {
        form_value(&self.query, name)
    }
}

/// The value of `name` in `a=1&b=2` (`application/x-www-form-urlencoded`).
pub fn form_value(form: &str, name: &str) -> Option<String> {
    form.split('&').find_map(|pair| {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        (percent_decode(k, true) == name).then(|| percent_decode(v, true))
    })
}

/// Decodes `%XX` escapes (and `+` as a space when `plus`); bad escapes are
/// kept as they are, bytes that are not UTF-8 become U+FFFD.
pub fn percent_decode(s: &str, plus: bool) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        let hex = |c: u8| (c as char).to_digit(16);
        match b[i] {
            b'%' if i + 2 < b.len() => {
                match (hex(b[i + 1]), hex(b[i + 2])) {
                    (Some(h), Some(l)) => {
                        out.push((h * 16 + l) as u8);
                        i += 3;
                        continue;
                    }
                    _ => out.push(b'%'),
                }
            }
            b'+' if plus => out.push(b' '),
            c => out.push(c),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// A response to send.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Response {
    pub status: u16,
    pub content_type: &'static str,
    pub body: Vec<u8>,
    /// Extra headers (security and caching headers of the console).
    pub headers: Vec<(&'static str, String)>,
}

impl Response {
    pub fn new(status: u16, content_type: &'static str, body: impl Into<Vec<u8>>) -> Response {
        Response { status, content_type, body: body.into(), headers: Vec::new() }
    }

    pub fn text(status: u16, body: &str) -> Response {
        Response::new(status, "text/plain; charset=utf-8", body)
    }

    pub fn with_header(mut self, name: &'static str, value: impl Into<String>) -> Response {
        self.headers.push((name, value.into()));
        self
    }
}

fn reason(status: u16) -> &'static str {
    match status {
        200 => "OK",
        201 => "Created",
        400 => "Bad Request",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        409 => "Conflict",
        411 => "Length Required",
        413 => "Payload Too Large",
        431 => "Request Header Fields Too Large",
        500 => "Internal Server Error",
        501 => "Not Implemented",
        503 => "Service Unavailable",
        _ => "Unknown",
    }
}

/// Why a request could not be parsed: the status to answer.
#[derive(Debug, PartialEq, Eq)]
pub struct BadRequest(pub u16, pub &'static str);

/// Parses a request head (everything before the blank line).
pub fn parse_head(head: &[u8]) -> Result<Request, BadRequest> {
    let head = std::str::from_utf8(head).map_err(|_| BadRequest(400, "request head is not UTF-8"))?;
    let mut lines = head.split("\r\n");
    let line = lines.next().unwrap_or("");
    let mut parts = line.split(' ');
    let (Some(method), Some(target), Some(version), None) = (parts.next(), parts.next(), parts.next(), parts.next()) else {
        return Err(BadRequest(400, "bad request line"));
    };
    if !version.starts_with("HTTP/1.") || method.is_empty() || !target.starts_with('/') {
        return Err(BadRequest(400, "bad request line"));
    }
    let (path, query) = target.split_once('?').unwrap_or((target, ""));
    let mut headers = Vec::new();
    for l in lines.filter(|l| !l.is_empty()) {
        if headers.len() >= MAX_HEADERS {
            return Err(BadRequest(431, "too many headers"));
        }
        let Some((k, v)) = l.split_once(':') else { return Err(BadRequest(400, "bad header line")) };
        headers.push((k.trim().to_ascii_lowercase(), v.trim().to_string()));
    }
    Ok(Request { method: method.to_string(), path: path.to_string(), query: query.to_string(), headers, body: Vec::new() })
}

/// Serves until `shutdown` fires. `listeners` are the Kafka listeners'
/// bound addresses (for the console's overview).
pub async fn serve(
    tcp: TcpListener,
    broker: Arc<Broker>,
    listeners: Vec<SocketAddr>,
    tracker: TaskTracker,
    shutdown: CancellationToken,
) {
    let http_addr = tcp.local_addr().ok();
    let console = Arc::new(Console::new(broker, listeners, http_addr));
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
        let console = console.clone();
        tracker.spawn(async move {
            let _permit = permit;
            if let Err(e) = handle(stream, &console).await {
                tracing::debug!(error = %e, "http connection failed");
            }
        });
    }
}

/// Reads one request: the head up to [`MAX_HEAD_BYTES`], then a body of
/// `Content-Length` bytes.
async fn read_request(stream: &mut TcpStream) -> std::io::Result<Result<Request, BadRequest>> {
    let mut buf = Vec::with_capacity(1024);
    let mut chunk = [0u8; 4096];
    let head_end = loop {
        if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break i;
        }
        if buf.len() >= MAX_HEAD_BYTES {
            return Ok(Err(BadRequest(431, "request head too large")));
        }
        let n = stream.read(&mut chunk).await?;
        if n == 0 {
            return Err(std::io::ErrorKind::UnexpectedEof.into());
        }
        buf.extend_from_slice(&chunk[..n]);
    };
    if head_end > MAX_HEAD_BYTES {
        return Ok(Err(BadRequest(431, "request head too large")));
    }
    let mut request = match parse_head(&buf[..head_end]) {
        Ok(r) => r,
        Err(e) => return Ok(Err(e)),
    };
    if request.header("transfer-encoding").is_some() {
        return Ok(Err(BadRequest(411, "send a Content-Length")));
    }
    let length = match request.header("content-length").map(str::parse::<usize>) {
        None => 0,
        Some(Ok(n)) if n <= MAX_BODY_BYTES => n,
        Some(Ok(_)) => return Ok(Err(BadRequest(413, "request body too large"))),
        Some(Err(_)) => return Ok(Err(BadRequest(400, "bad Content-Length"))),
    };
    let mut body = buf.split_off(head_end + 4);
    body.truncate(length);
    while body.len() < length {
        let n = stream.read(&mut chunk).await?;
        if n == 0 {
            return Err(std::io::ErrorKind::UnexpectedEof.into());
        }
        let take = n.min(length - body.len());
        body.extend_from_slice(&chunk[..take]);
    }
    request.body = body;
    Ok(Ok(request))
}

async fn handle(mut stream: TcpStream, console: &Arc<Console>) -> std::io::Result<()> {
    let request = match tokio::time::timeout(READ_TIMEOUT, read_request(&mut stream)).await {
        Err(_) => return Ok(()),
        Ok(r) => r?,
    };
    let (head_only, response) = match request {
        Err(BadRequest(status, why)) => (false, Response::text(status, &format!("{why}\n"))),
        Ok(req) => (req.method == "HEAD", route(console, req).await),
    };
    let mut out = format!(
        "HTTP/1.1 {} {}\r\nContent-Type: {}\r\nContent-Length: {}\r\nConnection: close\r\n",
        response.status,
        reason(response.status),
        response.content_type,
        response.body.len()
    );
    for (name, value) in &response.headers {
        let _ = write!(out, "{name}: {value}\r\n");
    }
    out.push_str("\r\n");
    let mut bytes = out.into_bytes();
    if !head_only {
        bytes.extend_from_slice(&response.body);
    }
    stream.write_all(&bytes).await?;
    stream.shutdown().await
}

/// `/health` and `/metrics` here; everything else is the console's.
async fn route(console: &Arc<Console>, req: Request) -> Response {
    match (req.method.as_str(), req.path.as_str()) {
        ("GET" | "HEAD", "/health") => Response::text(200, "ok\n"),
        ("GET" | "HEAD", "/metrics") => Response::new(
            200,
            "text/plain; version=0.0.4; charset=utf-8",
            render_metrics(console.broker()).await,
        ),
        (_, "/health" | "/metrics") => Response::text(405, "method not allowed\n"),
        _ => console.handle(&req).await,
    }
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
    fn request_heads() {
        let r = parse_head(b"GET /api/topics/a%2Eb?limit=5&x=a+b HTTP/1.1\r\nHost: h:1\r\nOrigin: http://h:1").unwrap();
        assert_eq!((r.method.as_str(), r.path.as_str(), r.query.as_str()), ("GET", "/api/topics/a%2Eb", "limit=5&x=a+b"));
        assert_eq!(r.header("host"), Some("h:1"));
        assert_eq!(r.header("origin"), Some("http://h:1"));
        assert_eq!(r.param("limit").as_deref(), Some("5"));
        assert_eq!(r.param("x").as_deref(), Some("a b"));
        assert_eq!(r.param("y"), None);
        assert_eq!(parse_head(b"GET /\r\n").unwrap_err().0, 400);
        assert_eq!(parse_head(b"GET x HTTP/1.1").unwrap_err().0, 400);
        assert_eq!(parse_head(b"GET / HTTP/1.1\r\nnocolon").unwrap_err().0, 400);
        let many: String = (0..=MAX_HEADERS).map(|i| format!("\r\nh{i}: v")).collect();
        assert_eq!(parse_head(format!("GET / HTTP/1.1{many}").as_bytes()).unwrap_err().0, 431);
    }

    #[test]
    fn percent_decoding() {
        assert_eq!(percent_decode("a%20b%2", false), "a b%2");
        assert_eq!(percent_decode("%zz+%", true), "%zz %");
        assert_eq!(percent_decode("%E2%9C%93", false), "\u{2713}");
        assert_eq!(percent_decode("%FF", false), "\u{FFFD}");
    }

    #[test]
    fn label_values_are_escaped() {
        assert_eq!(escape("a\"b\\c\n"), "a\\\"b\\\\c\\n");
    }
}
