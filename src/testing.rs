//! `TestBroker`: a klamm broker started inside the calling process for
//! tests, on 127.0.0.1 with a free port and a fresh temporary data
//! directory that is removed when the broker is shut down or dropped.
//!
//! ```no_run
//! # async fn example() -> std::io::Result<()> {
//! let broker = klamm::TestBroker::builder()
//!     .config("num.partitions", "3")
//!     .start()
//!     .await?;
//! let bootstrap = broker.bootstrap_servers(); // "127.0.0.1:PORT"
//! // ... point any Kafka client at `bootstrap` ...
//! broker.shutdown().await;
//! # Ok(())
//! # }
//! ```
//!
//! Any number can run at once in one process: each has its own port and
//! directory. It needs a multi-threaded tokio runtime (`#[tokio::test(flavor
//! = "multi_thread")]`), because the broker does its disk work on blocking
//! threads.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use crate::broker::{self, BrokerSettings, RunningBroker};
use crate::config::BrokerConfig;

/// Most config settings a builder accepts (a limit, like everything).
const MAX_SETTINGS: usize = 1024;

/// A temporary directory removed on drop.
#[derive(Debug)]
pub struct TempDir {
    path: PathBuf,
}

impl TempDir {
    /// Creates `<tmp>/<prefix>-<pid>-<n>-<nanos>`.
    pub fn new(prefix: &str) -> std::io::Result<TempDir> {
        static COUNTER: AtomicU64 = AtomicU64::new(0);
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.subsec_nanos())
            .unwrap_or(0);
        let n = COUNTER.fetch_add(1, Ordering::Relaxed);
        let path = std::env::temp_dir().join(format!("{prefix}-{}-{n}-{nanos}", std::process::id()));
        std::fs::create_dir_all(&path)?;
        Ok(TempDir { path })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.path);
    }
}

/// Settings for a [`TestBroker`]: Kafka property names, as in klamm's
/// config file or `--override`.
#[derive(Clone, Debug, Default)]
pub struct TestBrokerBuilder {
    settings: Vec<(String, String)>,
}

impl TestBrokerBuilder {
    /// Sets a broker config (`"num.partitions"`, `"auto.create.topics.enable"`,
    /// `"group.initial.rebalance.delay.ms"`, ...). `listeners` and
    /// `log.dirs` are chosen by the test broker and cannot be set.
    pub fn config(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        if self.settings.len() < MAX_SETTINGS {
            self.settings.push((name.into(), value.into()));
        }
        self
    }

    /// Starts the broker and returns once it accepts connections.
    pub async fn start(self) -> std::io::Result<TestBroker> {
        let dir = TempDir::new("klamm-test")?;
        let mut settings: Vec<(&str, &str)> = vec![
            // Tests want groups to form at once, as Kafka's own test brokers do.
            ("group.initial.rebalance.delay.ms", "0"),
        ];
        settings.extend(self.settings.iter().map(|(k, v)| (k.as_str(), v.as_str())));
        let dir_str = dir.path().to_string_lossy().into_owned();
        settings.push(("log.dirs", &dir_str));
        settings.push(("listeners", "PLAINTEXT://127.0.0.1:0"));
        let config = BrokerConfig::with_settings(&settings)
            .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidInput, e.to_string()))?;
        let broker_settings = BrokerSettings::from_config(&config)
            .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidInput, e))?;
        let running = broker::start(broker_settings).await?;
        let bootstrap = running.bootstrap();
        Ok(TestBroker { running: Some(running), bootstrap, dir })
    }
}

/// A broker running in this process; see the module docs.
pub struct TestBroker {
    running: Option<RunningBroker>,
    bootstrap: String,
    // Dropped after `running`: the directory outlives the broker.
    dir: TempDir,
}

impl TestBroker {
    /// Starts a broker with Kafka's defaults (auto-created topics get one
    /// partition), except `group.initial.rebalance.delay.ms = 0`.
    pub async fn start() -> std::io::Result<TestBroker> {
        TestBrokerBuilder::default().start().await
    }

    pub fn builder() -> TestBrokerBuilder {
        TestBrokerBuilder::default()
    }

    /// `127.0.0.1:PORT`, for `bootstrap.servers`.
    pub fn bootstrap_servers(&self) -> &str {
        &self.bootstrap
    }

    /// The address the broker listens on.
    pub fn addr(&self) -> SocketAddr {
        self.running.as_ref().map(|r| r.local_addrs()[0]).unwrap_or_else(|| ([127, 0, 0, 1], 0).into())
    }

    /// The HTTP listener's address, when `http.listener` was configured
    /// (use `127.0.0.1:0` for a free port).
    pub fn http_addr(&self) -> Option<SocketAddr> {
        self.running.as_ref().and_then(|r| r.http_addr())
    }

    /// The broker's data directory (removed when the broker goes away).
    pub fn data_dir(&self) -> &Path {
        self.dir.path()
    }

    /// Stops the broker cleanly (in-flight requests finish, logs are
    /// closed) and removes its directory.
    pub async fn shutdown(mut self) {
        if let Some(running) = self.running.take() {
            running.shutdown().await;
        }
    }
}

impl Drop for TestBroker {
    /// Without [`TestBroker::shutdown`], the broker stops accepting and its
    /// tasks wind down in the background; the directory is removed now.
    fn drop(&mut self) {
        if let Some(running) = self.running.take() {
            running.shutdown_token().cancel();
        }
    }
}
