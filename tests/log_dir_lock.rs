//! One broker per data directory (issue 9): a second broker started on a
//! `log.dirs` another one is using must fail at once, naming the directory
//! and the other process, before it recovers (and so truncates) anything,
//! while the first keeps serving. In-process through `klamm::broker::start`
//! and with two `klamm` processes. A port in use is reported before
//! recovery too.

use std::io::Read;
use std::net::SocketAddr;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use klamm::broker::{self, BrokerSettings};
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::producer::{FutureProducer, FutureRecord};
use rdkafka::{ClientConfig, Message, Offset, TopicPartitionList};

const TIMEOUT: Duration = Duration::from_secs(30);

fn local() -> SocketAddr {
    ([127, 0, 0, 1], 0).into()
}

async fn produce(bootstrap: &str, value: &str) {
    let p: FutureProducer = ClientConfig::new().set("bootstrap.servers", bootstrap).create().expect("producer");
    p.send(FutureRecord::to("locked").partition(0).key("k").payload(value), TIMEOUT)
        .await
        .unwrap_or_else(|(e, _)| panic!("produce {value}: {e}"));
}

/// The values of partition 0 of `locked`, read from the beginning until
/// `count` arrived (or the timeout).
async fn values(bootstrap: &str, count: usize) -> Vec<String> {
    let bootstrap = bootstrap.to_string();
    tokio::task::spawn_blocking(move || {
        let consumer: BaseConsumer = ClientConfig::new()
            .set("bootstrap.servers", &bootstrap)
            .set("group.id", "unused")
            .set("enable.auto.commit", "false")
            .create()
            .expect("consumer");
        let mut tpl = TopicPartitionList::new();
        tpl.add_partition_offset("locked", 0, Offset::Beginning).unwrap();
        consumer.assign(&tpl).unwrap();
        let deadline = Instant::now() + TIMEOUT;
        let mut out = Vec::new();
        while out.len() < count && Instant::now() < deadline {
            if let Some(m) = consumer.poll(Duration::from_millis(100)) {
                out.push(String::from_utf8_lossy(m.expect("no consumer error").payload().unwrap_or_default()).into_owned());
            }
        }
        out
    })
    .await
    .unwrap()
}

/// Length of every file under `dir`, recursively (what recovery would cut).
fn file_lengths(dir: &Path) -> Vec<(String, u64)> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).unwrap() {
        let e = e.unwrap();
        let meta = e.metadata().unwrap();
        if meta.is_dir() {
            out.extend(file_lengths(&e.path()));
        } else if e.file_name() != ".lock" {
            out.push((e.path().display().to_string(), meta.len()));
        }
    }
    out.sort();
    out
}

#[tokio::test(flavor = "multi_thread")]
async fn a_second_broker_on_the_same_directory_fails_and_the_first_keeps_serving() {
    let dir = tempfile::tempdir().unwrap();
    let first = broker::start(BrokerSettings::new(local(), dir.path().to_path_buf())).await.unwrap();
    let bootstrap = first.bootstrap();
    produce(&bootstrap, "before").await;
    let files_before = file_lengths(dir.path());

    let started = Instant::now();
    let second = broker::start(BrokerSettings::new(local(), dir.path().to_path_buf())).await;
    let err = match second {
        Ok(running) => {
            running.shutdown().await;
            panic!("a second broker started on a directory in use");
        }
        Err(e) => e.to_string(),
    };
    assert!(started.elapsed() < Duration::from_secs(5), "fails fast: {:?}", started.elapsed());
    let expected = format!(
        "log.dirs {} is in use by another klamm (pid {})",
        dir.path().display(),
        std::process::id()
    );
    assert!(err.contains(&expected), "error {err:?} does not contain {expected:?}");
    assert_eq!(file_lengths(dir.path()), files_before, "the failed start changed nothing");

    // The first broker is untouched and keeps serving.
    produce(&bootstrap, "after").await;
    assert_eq!(values(&bootstrap, 2).await, ["before", "after"]);

    // Shutdown releases the lock: the directory opens again, data intact.
    first.shutdown().await;
    let again = broker::start(BrokerSettings::new(local(), dir.path().to_path_buf())).await.expect("restart after shutdown");
    assert_eq!(values(&again.bootstrap(), 2).await, ["before", "after"]);
    again.shutdown().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_port_in_use_is_reported_before_recovery_and_frees_the_directory() {
    let dir = tempfile::tempdir().unwrap();
    let taken = std::net::TcpListener::bind(local()).unwrap();
    let addr = taken.local_addr().unwrap();
    let err = match broker::start(BrokerSettings::new(addr, dir.path().to_path_buf())).await {
        Ok(running) => {
            running.shutdown().await;
            panic!("started on a port in use");
        }
        Err(e) => e.to_string(),
    };
    assert!(err.starts_with(&format!("cannot listen on {addr} for listener PLAINTEXT: ")), "{err}");
    // Nothing was opened (no metadata written), and the lock is released.
    assert!(!dir.path().join("meta.properties").exists(), "recovery ran before the bind");
    drop(taken);
    let running = broker::start(BrokerSettings::new(addr, dir.path().to_path_buf())).await.expect("start once the port is free");
    running.shutdown().await;
}

/// Kills the child on drop, so a failing test leaves no broker behind.
struct Klamm(Child);

impl Drop for Klamm {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn klamm(dir: &Path) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_klamm"));
    c.arg("--override")
        .arg(format!("log.dirs={}", dir.display()))
        .args(["--override", "listeners=PLAINTEXT://127.0.0.1:0"])
        .env("RUST_LOG", "info")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    c
}

fn wait_exit(child: &mut Child, within: Duration) -> std::process::ExitStatus {
    let deadline = Instant::now() + within;
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return status;
        }
        assert!(Instant::now() < deadline, "klamm did not exit within {within:?}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn a_second_klamm_process_on_the_same_directory_exits_at_once() {
    let dir = tempfile::tempdir().unwrap();
    let mut first = Klamm(klamm(dir.path()).spawn().unwrap());
    // Started once it logged its bootstrap address.
    let mut first_err = first.0.stderr.take().unwrap();
    let mut logs = Vec::new();
    let deadline = Instant::now() + TIMEOUT;
    let mut buf = [0u8; 4096];
    while !String::from_utf8_lossy(&logs).contains("klamm started") {
        assert!(Instant::now() < deadline, "the first klamm did not start: {}", String::from_utf8_lossy(&logs));
        let n = first_err.read(&mut buf).unwrap();
        assert!(n > 0, "the first klamm exited: {}", String::from_utf8_lossy(&logs));
        logs.extend_from_slice(&buf[..n]);
    }

    let started = Instant::now();
    let mut second = Klamm(klamm(dir.path()).spawn().unwrap());
    let status = wait_exit(&mut second.0, Duration::from_secs(10));
    let elapsed = started.elapsed();
    let mut second_err = String::new();
    second.0.stderr.take().unwrap().read_to_string(&mut second_err).unwrap();
    assert_eq!(status.code(), Some(1), "{second_err}");
    assert!(elapsed < Duration::from_secs(5), "fails fast: {elapsed:?}");
    let expected = format!("log.dirs {} is in use by another klamm (pid {})", dir.path().display(), first.0.id());
    assert!(second_err.contains(&expected), "stderr {second_err:?} does not contain {expected:?}");

    // The first still runs and stops cleanly.
    assert!(first.0.try_wait().unwrap().is_none(), "the first klamm died");
    let kill = Command::new("kill").arg("-TERM").arg(first.0.id().to_string()).status().unwrap();
    assert!(kill.success());
    assert!(wait_exit(&mut first.0, TIMEOUT).success());
}
