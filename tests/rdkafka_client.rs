//! A real client (librdkafka through the `rdkafka` crate) against klamm
//! brokers started on port 0: in-process with `TestBroker`, and the
//! `klamm` binary in `--ephemeral` mode and with a docker-style two-listener
//! environment. The wider client matrix (Java tools, kcat, kafka-python,
//! confluent-kafka, franz-go) lives in tests/compat.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::{Header, Headers, OwnedHeaders};
use rdkafka::producer::{FutureProducer, FutureRecord};
use rdkafka::{ClientConfig, Message, Offset, TopicPartitionList};

const TIMEOUT: Duration = Duration::from_secs(30);

fn producer(bootstrap: &str, compression: &str) -> FutureProducer {
    ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .set("compression.type", compression)
        .set("linger.ms", "5")
        .create()
        .expect("producer")
}

/// Reads `count` records of `topic`/`partition` from the beginning,
/// without a consumer group.
fn read_partition(bootstrap: &str, topic: &str, partition: i32, count: usize) -> Vec<(Option<Vec<u8>>, Vec<u8>, Vec<(String, Vec<u8>)>, i64)> {
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .set("group.id", "unused")
        .set("enable.auto.commit", "false")
        .create()
        .expect("consumer");
    let mut tpl = TopicPartitionList::new();
    tpl.add_partition_offset(topic, partition, Offset::Beginning).unwrap();
    consumer.assign(&tpl).unwrap();
    let deadline = Instant::now() + TIMEOUT;
    let mut out = Vec::new();
    while out.len() < count && Instant::now() < deadline {
        if let Some(m) = consumer.poll(Duration::from_millis(100)) {
            let m = m.expect("no consumer error");
            let headers = m
                .headers()
                .map(|h| h.iter().map(|h| (h.key.to_string(), h.value.unwrap_or_default().to_vec())).collect())
                .unwrap_or_default();
            out.push((m.key().map(<[u8]>::to_vec), m.payload().unwrap_or_default().to_vec(), headers, m.offset()));
        }
    }
    out
}

#[tokio::test(flavor = "multi_thread")]
async fn every_codec_round_trips_with_keys_and_headers() {
    let broker = klamm::TestBroker::start().await.unwrap();
    for codec in ["none", "gzip", "snappy", "lz4", "zstd"] {
        let topic = format!("codec-{codec}");
        let p = producer(broker.bootstrap_servers(), codec);
        for i in 0..50 {
            let key = format!("key-{i}");
            let value = format!("{codec} value {i} {}", "x".repeat(i * 10));
            let headers = OwnedHeaders::new().insert(Header { key: "n", value: Some(&i.to_string()) });
            p.send(FutureRecord::to(&topic).partition(0).key(&key).payload(&value).headers(headers), TIMEOUT)
                .await
                .unwrap_or_else(|(e, _)| panic!("{codec}: {e}"));
        }
        let bootstrap = broker.bootstrap_servers().to_string();
        let got = tokio::task::spawn_blocking(move || read_partition(&bootstrap, &topic, 0, 50)).await.unwrap();
        assert_eq!(got.len(), 50, "{codec}");
        for (i, (key, value, headers, offset)) in got.into_iter().enumerate() {
            assert_eq!(offset, i as i64, "{codec}");
            assert_eq!(key.unwrap(), format!("key-{i}").into_bytes(), "{codec}");
            assert_eq!(value, format!("{codec} value {i} {}", "x".repeat(i * 10)).into_bytes());
            assert_eq!(headers, vec![("n".to_string(), i.to_string().into_bytes())]);
        }
    }
    broker.shutdown().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn brokers_in_one_process_do_not_clash() {
    let a = klamm::TestBroker::start().await.unwrap();
    let b = klamm::TestBroker::start().await.unwrap();
    assert_ne!(a.bootstrap_servers(), b.bootstrap_servers());
    assert_ne!(a.data_dir(), b.data_dir());
    let dir = a.data_dir().to_path_buf();
    for broker in [&a, &b] {
        producer(broker.bootstrap_servers(), "none")
            .send(FutureRecord::to("same-name").key("k").payload(broker.bootstrap_servers()), TIMEOUT)
            .await
            .unwrap();
    }
    for broker in [&a, &b] {
        let bootstrap = broker.bootstrap_servers().to_string();
        let got = tokio::task::spawn_blocking(move || read_partition(&bootstrap, "same-name", 0, 1)).await.unwrap();
        assert_eq!(got[0].1, broker.bootstrap_servers().as_bytes());
    }
    a.shutdown().await;
    b.shutdown().await;
    assert!(!dir.exists(), "the data directory is removed");
}

/// GET `path` from `addr` with a plain socket; returns (status line, body).
fn http_get(addr: std::net::SocketAddr, path: &str) -> (String, String) {
    let mut s = TcpStream::connect_timeout(&addr, TIMEOUT).unwrap();
    s.set_read_timeout(Some(TIMEOUT)).unwrap();
    write!(s, "GET {path} HTTP/1.1\r\nHost: localhost\r\n\r\n").unwrap();
    let mut text = String::new();
    s.read_to_string(&mut text).unwrap();
    let (head, body) = text.split_once("\r\n\r\n").unwrap();
    (head.lines().next().unwrap().to_string(), body.to_string())
}

/// The value of the sample named exactly `series` (name plus labels).
fn sample(metrics: &str, series: &str) -> Option<f64> {
    metrics.lines().find_map(|l| l.strip_prefix(series)?.strip_prefix(' ')?.parse().ok())
}

#[tokio::test(flavor = "multi_thread")]
async fn metrics_follow_real_traffic() {
    let broker = klamm::TestBroker::builder().config("http.listener", "127.0.0.1:0").start().await.unwrap();
    let http = broker.http_addr().expect("http listener");
    let (status, body) = tokio::task::spawn_blocking(move || http_get(http, "/health")).await.unwrap();
    assert_eq!(status, "HTTP/1.1 200 OK");
    assert_eq!(body, "ok\n");

    let p = producer(broker.bootstrap_servers(), "lz4");
    for i in 0..20 {
        p.send(FutureRecord::to("metered").partition(0).key("k").payload(&format!("v{i}")), TIMEOUT).await.unwrap();
        if i == 9 {
            // Mid-run: the counters follow the traffic as it happens.
            let (_, metrics) = tokio::task::spawn_blocking(move || http_get(http, "/metrics")).await.unwrap();
            assert_eq!(sample(&metrics, r#"klamm_topic_records_in_total{topic="metered"}"#), Some(10.0));
            assert_eq!(sample(&metrics, r#"klamm_log_end_offset{topic="metered",partition="0"}"#), Some(10.0));
        }
    }
    let bootstrap = broker.bootstrap_servers().to_string();
    let got = tokio::task::spawn_blocking(move || {
        let got = read_partition(&bootstrap, "metered", 0, 20);
        // A group that has consumed 15 of the 20 records lags by 5.
        let consumer: BaseConsumer =
            ClientConfig::new().set("bootstrap.servers", &bootstrap).set("group.id", "meters").create().unwrap();
        let mut tpl = TopicPartitionList::new();
        tpl.add_partition_offset("metered", 0, Offset::Offset(15)).unwrap();
        consumer.commit(&tpl, rdkafka::consumer::CommitMode::Sync).unwrap();
        got
    })
    .await
    .unwrap();
    assert_eq!(got.len(), 20);

    let (status, metrics) = tokio::task::spawn_blocking(move || http_get(http, "/metrics")).await.unwrap();
    assert_eq!(status, "HTTP/1.1 200 OK");
    // Every non-comment line parses as `name{labels} value`.
    for line in metrics.lines().filter(|l| !l.starts_with('#')) {
        let (_, value) = line.rsplit_once(' ').unwrap();
        value.parse::<f64>().unwrap_or_else(|_| panic!("bad sample line {line:?}"));
    }
    assert_eq!(sample(&metrics, r#"klamm_topic_records_in_total{topic="metered"}"#), Some(20.0));
    assert_eq!(sample(&metrics, r#"klamm_topic_records_out_total{topic="metered"}"#), Some(20.0));
    assert_eq!(sample(&metrics, r#"klamm_log_end_offset{topic="metered",partition="0"}"#), Some(20.0));
    assert!(sample(&metrics, r#"klamm_requests_total{api="Produce"}"#).unwrap() >= 1.0);
    assert!(sample(&metrics, r#"klamm_request_duration_seconds_count{api="Fetch"}"#).unwrap() >= 1.0);
    assert!(sample(&metrics, "klamm_connections_open").unwrap() >= 1.0);
    assert!(sample(&metrics, "klamm_uptime_seconds").unwrap() > 0.0);
    assert!(sample(&metrics, r#"klamm_log_size_bytes{topic="metered",partition="0"}"#).unwrap() > 0.0);
    assert_eq!(sample(&metrics, r#"klamm_log_start_offset{topic="metered",partition="0"}"#), Some(0.0));
    assert!(sample(&metrics, r#"klamm_topic_bytes_in_total{topic="metered"}"#).unwrap() > 0.0);
    assert!(sample(&metrics, r#"klamm_topic_bytes_out_total{topic="metered"}"#).unwrap() > 0.0);
    assert_eq!(
        sample(&metrics, r#"klamm_consumer_group_lag{group="meters",topic="metered",partition="0"}"#),
        Some(5.0)
    );
    broker.shutdown().await;
}

/// Kills the child on drop, so a failing test leaves no broker behind.
struct Broker(Child);

impl Drop for Broker {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn sigterm(child: &Child) {
    let status = Command::new("kill").arg("-TERM").arg(child.id().to_string()).status().unwrap();
    assert!(status.success());
}

fn wait_exit(child: &mut Child) -> std::process::ExitStatus {
    let deadline = Instant::now() + TIMEOUT;
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return status;
        }
        assert!(Instant::now() < deadline, "klamm did not exit after SIGTERM");
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn ephemeral_binary_prints_its_address_and_leaves_nothing() {
    let child = Command::new(env!("CARGO_BIN_EXE_klamm"))
        .arg("--ephemeral")
        .env_remove("RUST_LOG")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut child = Broker(child);
    let pid = child.0.id();
    let mut line = String::new();
    BufReader::new(child.0.stdout.take().unwrap()).read_line(&mut line).unwrap();
    let bootstrap = line.trim().strip_prefix("bootstrap.servers=").expect("address line").to_string();
    assert!(bootstrap.starts_with("127.0.0.1:"), "{bootstrap}");
    let tmp_dirs = || -> Vec<String> {
        std::fs::read_dir(std::env::temp_dir())
            .unwrap()
            .filter_map(|e| e.ok()?.file_name().into_string().ok())
            .filter(|n| n.starts_with(&format!("klamm-ephemeral-{pid}-")))
            .collect()
    };
    assert_eq!(tmp_dirs().len(), 1, "one data directory while running");

    producer(&bootstrap, "none").send(FutureRecord::to("ci").key("k").payload("v"), TIMEOUT).await.unwrap();
    let b = bootstrap.clone();
    let got = tokio::task::spawn_blocking(move || read_partition(&b, "ci", 0, 1)).await.unwrap();
    assert_eq!(got[0].1, b"v");

    // `klamm healthcheck` (the docker HEALTHCHECK) through the binary.
    let healthcheck = |target: &str| {
        Command::new(env!("CARGO_BIN_EXE_klamm"))
            .args(["healthcheck", "--bootstrap", target, "--timeout-ms", "2000"])
            .output()
            .unwrap()
    };
    let ok = healthcheck(&bootstrap);
    assert!(ok.status.success(), "{ok:?}");
    assert_eq!(String::from_utf8_lossy(&ok.stdout).trim(), format!("ok: {bootstrap}"));

    sigterm(&child.0);
    assert!(wait_exit(&mut child.0).success());
    assert!(tmp_dirs().is_empty(), "the data directory is deleted at exit");
    let down = healthcheck(&bootstrap);
    assert_eq!(down.status.code(), Some(1), "a stopped broker is unhealthy: {down:?}");
}

/// A free TCP port on 127.0.0.1 (released before use; fine for tests).
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

#[tokio::test(flavor = "multi_thread")]
async fn docker_style_environment_with_two_listeners() {
    let data = tempfile::tempdir().unwrap();
    let (controller, host, docker) = (free_port(), free_port(), free_port());
    let child = Command::new(env!("CARGO_BIN_EXE_klamm"))
        .env("KAFKA_NODE_ID", "1")
        .env("KAFKA_PROCESS_ROLES", "broker,controller")
        .env("KAFKA_LISTENERS", format!("CONTROLLER://localhost:{controller},HOST://0.0.0.0:{host},DOCKER://0.0.0.0:{docker}"))
        .env("KAFKA_ADVERTISED_LISTENERS", format!("HOST://localhost:{host},DOCKER://127.0.0.1:{docker}"))
        .env("KAFKA_LISTENER_SECURITY_PROTOCOL_MAP", "CONTROLLER:PLAINTEXT,HOST:PLAINTEXT,DOCKER:PLAINTEXT")
        .env("KAFKA_CONTROLLER_LISTENER_NAMES", "CONTROLLER")
        .env("KAFKA_CONTROLLER_QUORUM_VOTERS", format!("1@localhost:{controller}"))
        .env("KAFKA_INTER_BROKER_LISTENER_NAME", "DOCKER")
        .env("KAFKA_OFFSETS_TOPIC_REPLICATION_FACTOR", "1")
        .env("KAFKA_LOG_DIRS", data.path())
        .env("CLUSTER_ID", "4L6g3nShT-eMCtK--X86sw")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut child = Broker(child);
    for (port, advertised) in [(host, format!("localhost:{host}")), (docker, format!("127.0.0.1:{docker}"))] {
        let bootstrap = format!("127.0.0.1:{port}");
        let deadline = Instant::now() + TIMEOUT;
        while TcpStream::connect(&bootstrap).is_err() {
            assert!(Instant::now() < deadline, "listener {port} never came up");
            std::thread::sleep(Duration::from_millis(20));
        }
        let b = bootstrap.clone();
        let brokers = tokio::task::spawn_blocking(move || {
            let consumer: BaseConsumer = ClientConfig::new().set("bootstrap.servers", &b).create().unwrap();
            let md = consumer.fetch_metadata(None, TIMEOUT).unwrap();
            md.brokers().iter().map(|b| format!("{}:{}", b.host(), b.port())).collect::<Vec<_>>()
        })
        .await
        .unwrap();
        assert_eq!(brokers, vec![advertised.clone()], "each listener advertises its own address");
        producer(&bootstrap, "none")
            .send(FutureRecord::to("via-listeners").partition(0).key("k").payload(&advertised), TIMEOUT)
            .await
            .unwrap();
    }
    let got = tokio::task::spawn_blocking(move || read_partition(&format!("127.0.0.1:{docker}"), "via-listeners", 0, 2))
        .await
        .unwrap();
    assert_eq!(got.len(), 2);
    sigterm(&child.0);
    assert!(wait_exit(&mut child.0).success());
    assert!(data.path().join(".kafka_cleanshutdown").exists(), "clean shutdown marker");
}

#[tokio::test(flavor = "multi_thread")]
async fn consumer_group_commits_and_resumes() {
    use rdkafka::consumer::CommitMode;
    let broker = klamm::TestBroker::builder().config("num.partitions", "3").start().await.unwrap();
    let p = producer(broker.bootstrap_servers(), "none");
    for i in 0..30 {
        p.send(FutureRecord::to("grouped").key(&format!("k{i}")).payload(&format!("v{i}")), TIMEOUT).await.unwrap();
    }
    let bootstrap = broker.bootstrap_servers().to_string();
    let consume = move |n: usize| -> Vec<String> {
        let consumer: BaseConsumer = ClientConfig::new()
            .set("bootstrap.servers", &bootstrap)
            .set("group.id", "resumers")
            .set("auto.offset.reset", "earliest")
            .set("enable.auto.commit", "false")
            .create()
            .unwrap();
        consumer.subscribe(&["grouped"]).unwrap();
        let deadline = Instant::now() + TIMEOUT;
        let mut got = Vec::new();
        while got.len() < n && Instant::now() < deadline {
            if let Some(m) = consumer.poll(Duration::from_millis(100)) {
                let m = m.expect("no consumer error");
                got.push(String::from_utf8_lossy(m.payload().unwrap()).into_owned());
            }
        }
        consumer.commit_consumer_state(CommitMode::Sync).unwrap();
        got
    };
    let c = consume.clone();
    let first = tokio::task::spawn_blocking(move || c(30)).await.unwrap();
    assert_eq!(first.len(), 30);
    for i in 30..40 {
        p.send(FutureRecord::to("grouped").key(&format!("k{i}")).payload(&format!("v{i}")), TIMEOUT).await.unwrap();
    }
    // A new member of the same group starts after the committed offsets.
    let mut second = tokio::task::spawn_blocking(move || consume(10)).await.unwrap();
    second.sort();
    let mut expected: Vec<String> = (30..40).map(|i| format!("v{i}")).collect();
    expected.sort();
    assert_eq!(second, expected);
    broker.shutdown().await;
}

#[test]
fn json_log_lines_and_version() {
    let out = Command::new(env!("CARGO_BIN_EXE_klamm")).arg("--version").output().unwrap();
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), format!("klamm {}", env!("CARGO_PKG_VERSION")));

    let child = Command::new(env!("CARGO_BIN_EXE_klamm"))
        .args(["--ephemeral", "--log-format", "json"])
        .env("RUST_LOG", "info")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut child = Broker(child);
    let mut address = String::new();
    BufReader::new(child.0.stdout.take().unwrap()).read_line(&mut address).unwrap();
    assert!(address.starts_with("bootstrap.servers="));
    sigterm(&child.0);
    assert!(wait_exit(&mut child.0).success());
    let mut logs = String::new();
    child.0.stderr.take().unwrap().read_to_string(&mut logs).unwrap();
    let lines: Vec<&str> = logs.lines().collect();
    assert!(lines.len() >= 3, "{logs}");
    for line in lines {
        assert!(line.starts_with("{\"timestamp\":") && line.ends_with('}'), "not a JSON line: {line}");
        assert!(line.contains("\"level\":\"INFO\""), "{line}");
    }
}

#[test]
fn text_logs_off_a_terminal_have_no_colour_codes() {
    // stderr is a pipe here, not a terminal: plain text, whatever NO_COLOR says.
    let child = Command::new(env!("CARGO_BIN_EXE_klamm"))
        .arg("--ephemeral")
        .env("RUST_LOG", "info")
        .env_remove("NO_COLOR")
        .env_remove("KLAMM_LOG_FORMAT")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut child = Broker(child);
    let mut address = String::new();
    BufReader::new(child.0.stdout.take().unwrap()).read_line(&mut address).unwrap();
    assert!(address.starts_with("bootstrap.servers="));
    sigterm(&child.0);
    assert!(wait_exit(&mut child.0).success());
    let mut logs = String::new();
    child.0.stderr.take().unwrap().read_to_string(&mut logs).unwrap();
    assert!(logs.contains("klamm started") && logs.contains("shutting down"), "{logs}");
    assert!(!logs.contains('\x1b'), "escape codes in logs written to a pipe: {logs:?}");
}
