//! Hostile and broken clients (issue 9, items 5 and 6) against an
//! in-process broker, with raw TCP clients: frames announcing 100 MB and
//! trickling bytes, one client IP sending large frames and stalling, a
//! parked JoinGroup under a tiny request-memory pool, a client that
//! pipelines requests and never reads, shutdown with such clients, and
//! `max.connections.per.ip` (127.0.0.2 is a second client address on
//! Linux loopback). Each well-behaved request must be answered within a
//! couple of seconds while the hostile clients are connected.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpSocket, TcpStream};

/// How long a well-behaved request may take while hostile clients are on.
const ANSWER_WITHIN: Duration = Duration::from_secs(2);

const API_VERSIONS: i16 = 18;
const METADATA: i16 = 3;
const JOIN_GROUP: i16 = 11;

fn string(out: &mut Vec<u8>, s: &str) {
    out.extend_from_slice(&(s.len() as i16).to_be_bytes());
    out.extend_from_slice(s.as_bytes());
}

/// A size-prefixed request with a v1 header (client id "hostile-test").
fn frame(api_key: i16, version: i16, correlation_id: i32, body: &[u8]) -> Vec<u8> {
    let mut inner = Vec::new();
    inner.extend_from_slice(&api_key.to_be_bytes());
    inner.extend_from_slice(&version.to_be_bytes());
    inner.extend_from_slice(&correlation_id.to_be_bytes());
    string(&mut inner, "hostile-test");
    inner.extend_from_slice(body);
    let mut out = (inner.len() as i32).to_be_bytes().to_vec();
    out.extend(inner);
    out
}

/// JoinGroup v0 for a new member of `group`.
fn join_group_body(group: &str) -> Vec<u8> {
    let mut b = Vec::new();
    string(&mut b, group);
    b.extend_from_slice(&10_000i32.to_be_bytes());
    string(&mut b, "");
    string(&mut b, "consumer");
    b.extend_from_slice(&1i32.to_be_bytes());
    string(&mut b, "range");
    b.extend_from_slice(&4i32.to_be_bytes());
    b.extend_from_slice(b"meta");
    b
}

/// Sends one request and reads its response; returns the response body
/// after the correlation id.
async fn call(s: &mut TcpStream, api_key: i16, version: i16, correlation_id: i32, body: &[u8]) -> std::io::Result<Vec<u8>> {
    s.write_all(&frame(api_key, version, correlation_id, body)).await?;
    let n = s.read_i32().await?;
    assert!((4..16 << 20).contains(&n), "response size {n}");
    let mut buf = vec![0u8; n as usize];
    s.read_exact(&mut buf).await?;
    assert_eq!(i32::from_be_bytes([buf[0], buf[1], buf[2], buf[3]]), correlation_id);
    Ok(buf.split_off(4))
}

/// A well-behaved client: a new connection, ApiVersions and Metadata,
/// each answered within `ANSWER_WITHIN`.
async fn well_behaved(addr: SocketAddr) {
    let started = Instant::now();
    let mut s = tokio::time::timeout(ANSWER_WITHIN, TcpStream::connect(addr)).await.expect("connect in time").unwrap();
    let r = tokio::time::timeout(ANSWER_WITHIN, call(&mut s, API_VERSIONS, 0, 1, &[])).await;
    let body = r.expect("ApiVersions answered in time").expect("ApiVersions");
    assert_eq!(&body[..2], &[0, 0], "ApiVersions error code");
    let r = tokio::time::timeout(ANSWER_WITHIN, call(&mut s, METADATA, 1, 2, &(-1i32).to_be_bytes())).await;
    r.expect("Metadata answered in time").expect("Metadata");
    assert!(started.elapsed() < ANSWER_WITHIN * 2);
}

/// A connection from `local` (127.0.0.2 for a second client IP).
async fn connect_from(local: &str, addr: SocketAddr) -> std::io::Result<TcpStream> {
    let socket = TcpSocket::new_v4()?;
    socket.bind(format!("{local}:0").parse().unwrap())?;
    socket.connect(addr).await
}

/// Opens `n` connections that each announce a `size`-byte frame, send
/// `burst` bytes of it at once, then one byte every 200 ms for as long as
/// the returned task runs.
async fn slow_senders(local: &'static str, addr: SocketAddr, n: usize, size: i32, burst: usize) -> tokio::task::JoinHandle<()> {
    let mut conns = Vec::new();
    for _ in 0..n {
        let mut s = connect_from(local, addr).await.unwrap();
        let mut start = size.to_be_bytes().to_vec();
        // A plausible header (ApiVersions v0), then filler.
        start.extend_from_slice(&frame(API_VERSIONS, 0, 7, &[])[4..]);
        start.resize(4 + burst.max(start.len() - 4), 0);
        s.write_all(&start).await.unwrap();
        conns.push(s);
    }
    tokio::spawn(async move {
        loop {
            tokio::time::sleep(Duration::from_millis(200)).await;
            for s in conns.iter_mut() {
                let _ = s.write_all(&[0]).await;
            }
        }
    })
}

#[tokio::test(flavor = "multi_thread")]
async fn slow_senders_announcing_100_mb_do_not_starve_others() {
    // The reproduction: with the pool taken in full at the size
    // prefix, 8 x 100 MB exceeded the 512 MiB default and every other
    // client waited behind them.
    let broker = klamm::TestBroker::start().await.unwrap();
    let addr = broker.addr();
    let trickle = slow_senders("127.0.0.1", addr, 8, 104_857_600, 0).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    for _ in 0..3 {
        well_behaved(addr).await;
    }
    // A real client too (librdkafka: "all broker connections are down").
    let bootstrap = broker.bootstrap_servers().to_string();
    let metadata = tokio::task::spawn_blocking(move || {
        use rdkafka::consumer::{BaseConsumer, Consumer};
        let c: BaseConsumer = rdkafka::ClientConfig::new().set("bootstrap.servers", &bootstrap).create().unwrap();
        c.fetch_metadata(None, Duration::from_secs(3)).map(|m| m.brokers().len())
    });
    assert_eq!(metadata.await.unwrap().expect("librdkafka gets metadata"), 1);
    trickle.abort();
    broker.shutdown().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn one_ip_sending_large_frames_and_stalling_holds_only_its_budget() {
    // 6 connections from 127.0.0.2 each send 1.5 MiB of a 2 MiB frame and
    // stall. The pool (4 MiB) would be exhausted; the IP's budget (1 MiB,
    // one frame may exceed it) keeps most of it for 127.0.0.1.
    let broker = klamm::TestBroker::builder()
        .config("socket.request.max.bytes", "2097152")
        .config("queued.max.request.bytes", "4194304")
        .config("klamm.queued.max.request.bytes.per.ip", "1048576")
        .start()
        .await
        .unwrap();
    let addr = broker.addr();
    let trickle = slow_senders("127.0.0.2", addr, 6, 2 << 20, 3 << 19).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    for _ in 0..3 {
        well_behaved(addr).await;
    }
    trickle.abort();
    broker.shutdown().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_parked_join_group_does_not_hold_request_memory() {
    // A one-byte pool: every frame takes all of it while it holds it. The
    // JoinGroup waits out the 3 s initial rebalance delay; others must not
    // wait with it.
    let broker = klamm::TestBroker::builder()
        .config("queued.max.request.bytes", "1")
        .config("group.initial.rebalance.delay.ms", "3000")
        .start()
        .await
        .unwrap();
    let addr = broker.addr();
    let mut joiner = TcpStream::connect(addr).await.unwrap();
    joiner.write_all(&frame(JOIN_GROUP, 0, 1, &join_group_body("parked"))).await.unwrap();
    tokio::time::sleep(Duration::from_millis(300)).await;
    well_behaved(addr).await;
    let joined = tokio::time::timeout(Duration::from_secs(10), joiner.read_i32()).await;
    assert!(joined.expect("the join is answered").unwrap() > 0);
    broker.shutdown().await;
}

/// A connection with a small receive buffer that pipelines ApiVersions
/// requests from a task and never reads; the task ends with the error its
/// writes got once the broker dropped the connection.
async fn never_reads(addr: SocketAddr) -> tokio::task::JoinHandle<(Duration, std::io::Error)> {
    let socket = TcpSocket::new_v4().unwrap();
    socket.set_recv_buffer_size(4096).unwrap();
    let mut s = socket.connect(addr).await.unwrap();
    tokio::spawn(async move {
        let started = Instant::now();
        let mut id = 0;
        loop {
            id += 1;
            if let Err(e) = s.write_all(&frame(API_VERSIONS, 0, id, &[])).await {
                return (started.elapsed(), e);
            }
        }
    })
}

#[tokio::test(flavor = "multi_thread")]
async fn a_client_that_never_reads_is_dropped_after_the_write_timeout() {
    let broker = klamm::TestBroker::builder()
        .config("klamm.socket.write.timeout.ms", "500")
        .config("socket.send.buffer.bytes", "4096")
        .start()
        .await
        .unwrap();
    let addr = broker.addr();
    let writer = never_reads(addr).await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    well_behaved(addr).await;
    let (after, error) = tokio::time::timeout(Duration::from_secs(10), writer).await.expect("dropped in time").unwrap();
    assert!(after < Duration::from_secs(5), "dropped after {after:?} ({error})");
    well_behaved(addr).await;
    let started = Instant::now();
    broker.shutdown().await;
    assert!(started.elapsed() < Duration::from_secs(3));
}

#[tokio::test(flavor = "multi_thread")]
async fn shutdown_is_bounded_with_blocked_writers_and_slow_senders() {
    // A write timeout far beyond the test: shutdown must not wait for it.
    let broker = klamm::TestBroker::builder()
        .config("klamm.socket.write.timeout.ms", "600000")
        .config("socket.send.buffer.bytes", "4096")
        .start()
        .await
        .unwrap();
    let addr = broker.addr();
    let writers = [never_reads(addr).await, never_reads(addr).await];
    let trickle = slow_senders("127.0.0.1", addr, 2, 1 << 20, 100).await;
    tokio::time::sleep(Duration::from_millis(1000)).await;
    for w in &writers {
        assert!(!w.is_finished(), "the writers are blocked, not dropped, before shutdown");
    }
    let started = Instant::now();
    let done = tokio::time::timeout(Duration::from_secs(10), broker.shutdown()).await;
    let took = started.elapsed();
    assert!(done.is_ok(), "shutdown hangs with blocked writers");
    // The grace for writers blocked in a write is 2 s.
    assert!(took < Duration::from_secs(4), "shutdown took {took:?}");
    trickle.abort();
    for w in writers {
        let _ = w.await;
    }
}

/// Whether the broker closes `s` without answering an ApiVersions.
async fn closed_at_accept(mut s: TcpStream) -> bool {
    let _ = s.write_all(&frame(API_VERSIONS, 0, 1, &[])).await;
    let mut buf = [0u8; 4];
    match tokio::time::timeout(ANSWER_WITHIN, s.read(&mut buf)).await {
        Ok(Ok(0)) | Ok(Err(_)) => true,
        Ok(Ok(_)) => false,
        Err(_) => panic!("neither answered nor closed"),
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn max_connections_per_ip_closes_the_extra_connection() {
    let broker = klamm::TestBroker::builder()
        .config("max.connections.per.ip", "2")
        .config("max.connections.per.ip.overrides", "127.0.0.2:3")
        .start()
        .await
        .unwrap();
    let addr = broker.addr();
    let mut first = connect_from("127.0.0.1", addr).await.unwrap();
    let mut second = connect_from("127.0.0.1", addr).await.unwrap();
    call(&mut first, API_VERSIONS, 0, 1, &[]).await.unwrap();
    call(&mut second, API_VERSIONS, 0, 1, &[]).await.unwrap();
    assert!(closed_at_accept(connect_from("127.0.0.1", addr).await.unwrap()).await, "a third from 127.0.0.1");

    // The override: three from 127.0.0.2, the fourth closed.
    let mut others = Vec::new();
    for _ in 0..3 {
        let mut s = connect_from("127.0.0.2", addr).await.unwrap();
        call(&mut s, API_VERSIONS, 0, 1, &[]).await.unwrap();
        others.push(s);
    }
    assert!(closed_at_accept(connect_from("127.0.0.2", addr).await.unwrap()).await, "a fourth from 127.0.0.2");

    // A closed connection frees its slot (once the broker has seen it go).
    drop(first);
    let deadline = Instant::now() + ANSWER_WITHIN;
    loop {
        let mut s = connect_from("127.0.0.1", addr).await.unwrap();
        if let Ok(Ok(_)) = tokio::time::timeout(ANSWER_WITHIN, call(&mut s, API_VERSIONS, 0, 1, &[])).await {
            break;
        }
        assert!(Instant::now() < deadline, "the slot was not freed");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    call(&mut second, API_VERSIONS, 0, 2, &[]).await.unwrap();
    broker.shutdown().await;
}
