//! The broker: the shared state every handler sees (settings, controller,
//! limits) and its life cycle: `start` binds the client listeners and
//! spawns them; `RunningBroker::shutdown` stops accepting, lets in-flight
//! requests finish and closes everything.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::config::BrokerConfig;
use crate::controller::{Controller, ControllerError, NewTopic, TopicInfo};
use crate::protocol::ErrorCode;
use crate::server::{Limits, Listener};

/// Request bytes held in memory at once, broker-wide (Kafka's
/// `queued.max.request.bytes` is unbounded by default; we are not).
pub const DEFAULT_QUEUED_MAX_REQUEST_BYTES: usize = 512 * 1024 * 1024;

/// One client-facing listener to bind.
#[derive(Clone, Debug)]
pub struct ListenerSettings {
    pub name: String,
    /// Address to bind; port 0 picks a free port.
    pub bind: SocketAddr,
    /// Host advertised to clients in Metadata.
    pub advertised_host: String,
    /// Port advertised to clients; 0 = the port actually bound.
    pub advertised_port: u16,
}

/// The resolved settings the broker runs with.
#[derive(Clone, Debug)]
pub struct BrokerSettings {
    pub node_id: i32,
    pub log_dir: PathBuf,
    pub cluster_id: Option<String>,
    pub listeners: Vec<ListenerSettings>,
    pub auto_create_topics_enable: bool,
    pub delete_topic_enable: bool,
    pub num_partitions: i32,
    pub default_replication_factor: i16,
    pub limits: Limits,
}

impl BrokerSettings {
    /// The settings a resolved `BrokerConfig` describes (listener hosts are
    /// resolved to addresses here).
    pub fn from_config(c: &BrokerConfig) -> Result<BrokerSettings, String> {
        use std::net::ToSocketAddrs;
        let mut listeners = Vec::new();
        for l in &c.client_listeners {
            let bind = l
                .bind_address()
                .to_socket_addrs()
                .map_err(|e| format!("cannot resolve listener {l}: {e}"))?
                .next()
                .ok_or_else(|| format!("cannot resolve listener {l}"))?;
            listeners.push(ListenerSettings {
                name: l.name.clone(),
                bind,
                advertised_host: l.advertised_host.clone(),
                advertised_port: l.advertised_port,
            });
        }
        if listeners.is_empty() {
            return Err("no client listener is configured in 'listeners'".into());
        }
        Ok(BrokerSettings {
            node_id: c.node_id,
            log_dir: c.log_dir.clone(),
            cluster_id: c.cluster_id.clone(),
            listeners,
            auto_create_topics_enable: c.auto_create_topics_enable,
            delete_topic_enable: c.delete_topic_enable,
            num_partitions: c.num_partitions,
            default_replication_factor: c.default_replication_factor,
            limits: Limits {
                max_connections: c.max_connections,
                request_max_bytes: c.socket_request_max_bytes,
                connections_max_idle_ms: c.connections_max_idle_ms.max(1) as u64,
                queued_max_request_bytes: DEFAULT_QUEUED_MAX_REQUEST_BYTES,
            },
        })
    }

    /// Kafka's defaults, serving PLAINTEXT on `bind` with data in `log_dir`.
    pub fn new(bind: SocketAddr, log_dir: PathBuf) -> BrokerSettings {
        BrokerSettings {
            node_id: 1,
            log_dir,
            cluster_id: None,
            listeners: vec![ListenerSettings {
                name: "PLAINTEXT".into(),
                bind,
                advertised_host: if bind.ip().is_unspecified() { "localhost".into() } else { bind.ip().to_string() },
                advertised_port: 0,
            }],
            auto_create_topics_enable: true,
            delete_topic_enable: true,
            num_partitions: 1,
            default_replication_factor: 1,
            limits: Limits {
                max_connections: 10_000,
                request_max_bytes: 104_857_600,
                connections_max_idle_ms: 600_000,
                queued_max_request_bytes: DEFAULT_QUEUED_MAX_REQUEST_BYTES,
            },
        }
    }
}

pub struct Broker {
    settings: BrokerSettings,
    request_memory: Arc<Semaphore>,
    pub controller: Controller,
}

impl Broker {
    pub fn settings(&self) -> &BrokerSettings {
        &self.settings
    }

    pub fn limits(&self) -> &Limits {
        &self.settings.limits
    }

    pub fn request_memory(&self) -> &Arc<Semaphore> {
        &self.request_memory
    }

    /// Runs a blocking controller operation (it fsyncs) off the async workers.
    async fn with_controller<T: Send + 'static>(
        self: &Arc<Self>,
        f: impl FnOnce(&Controller) -> Result<T, ControllerError> + Send + 'static,
    ) -> Result<T, ControllerError> {
        let me = self.clone();
        tokio::task::spawn_blocking(move || f(&me.controller))
            .await
            .unwrap_or_else(|e| Err(ControllerError::new(ErrorCode::UnknownServerError, e.to_string())))
    }

    pub async fn create_topic(self: &Arc<Self>, t: NewTopic, validate_only: bool) -> Result<TopicInfo, ControllerError> {
        self.with_controller(move |c| c.create_topic(t, validate_only)).await
    }

    /// Creates a topic with broker defaults; a concurrent creation of the
    /// same topic counts as success.
    pub async fn auto_create_topic(self: &Arc<Self>, name: &str) -> Result<Arc<TopicInfo>, ControllerError> {
        let req = crate::handlers::metadata::auto_create_request(name);
        match self.create_topic(req, false).await {
            Ok(_) => {}
            Err(e) if e.code == ErrorCode::TopicAlreadyExists => {}
            Err(e) => return Err(e),
        }
        self.controller
            .image()
            .topic(name)
            .cloned()
            .ok_or_else(|| ControllerError::new(ErrorCode::LeaderNotAvailable, "topic is being created"))
    }

    pub async fn delete_topic(self: &Arc<Self>, name: &str) -> Result<Arc<TopicInfo>, ControllerError> {
        let name = name.to_string();
        self.with_controller(move |c| c.delete_topic(&name)).await
    }

    pub async fn create_partitions(self: &Arc<Self>, name: &str, count: i32, validate_only: bool) -> Result<(), ControllerError> {
        let name = name.to_string();
        self.with_controller(move |c| c.create_partitions(&name, count, validate_only)).await
    }

    pub async fn allocate_producer_id(self: &Arc<Self>) -> Result<i64, ControllerError> {
        self.with_controller(|c| c.allocate_producer_id()).await
    }

    /// Checks a topic-level config name and value (INVALID_CONFIG otherwise).
    pub fn validate_topic_config(&self, name: &str, value: &str) -> Result<(), String> {
        crate::config::validate_topic_config(name, value).map_err(|e| e.to_string())
    }
}

/// A started broker. Dropping it without `shutdown` leaves it running
/// until the runtime stops.
pub struct RunningBroker {
    pub broker: Arc<Broker>,
    addrs: Vec<SocketAddr>,
    shutdown: CancellationToken,
    tracker: TaskTracker,
}

impl RunningBroker {
    /// The addresses actually bound, in listener order.
    pub fn local_addrs(&self) -> &[SocketAddr] {
        &self.addrs
    }

    /// `host:port` of the first listener, for `bootstrap.servers`.
    pub fn bootstrap(&self) -> String {
        let l = &self.broker.settings.listeners[0];
        format!("{}:{}", l.advertised_host, self.addrs[0].port())
    }

    pub fn shutdown_token(&self) -> CancellationToken {
        self.shutdown.clone()
    }

    /// Stops accepting, waits for connections to finish their in-flight
    /// request, and returns.
    pub async fn shutdown(self) {
        self.shutdown.cancel();
        self.tracker.close();
        self.tracker.wait().await;
    }
}

/// Opens the data directory, binds every listener and starts serving.
pub async fn start(settings: BrokerSettings) -> std::io::Result<RunningBroker> {
    let controller = {
        let s = settings.clone();
        tokio::task::spawn_blocking(move || {
            Controller::open(&s.log_dir, s.node_id, s.cluster_id.as_deref(), s.num_partitions, s.default_replication_factor)
        })
        .await
        .map_err(std::io::Error::other)??
    };
    let mut bound = Vec::new();
    let mut settings = settings;
    for l in settings.listeners.iter_mut() {
        let tcp = TcpListener::bind(l.bind).await?;
        let addr = tcp.local_addr()?;
        if l.advertised_port == 0 {
            l.advertised_port = addr.port();
        }
        bound.push((tcp, addr));
    }
    let queued = settings.limits.queued_max_request_bytes.min(Semaphore::MAX_PERMITS);
    let broker = Arc::new(Broker {
        request_memory: Arc::new(Semaphore::new(queued)),
        controller,
        settings,
    });
    let shutdown = CancellationToken::new();
    let tracker = TaskTracker::new();
    let connections = Arc::new(Semaphore::new(broker.settings.limits.max_connections));
    let mut addrs = Vec::new();
    for ((tcp, addr), l) in bound.into_iter().zip(broker.settings.listeners.iter()) {
        addrs.push(addr);
        let listener = Listener {
            name: l.name.clone(),
            advertised_host: l.advertised_host.clone(),
            advertised_port: l.advertised_port,
            tcp,
        };
        tracing::info!(listener = %l.name, %addr, advertised = %format!("{}:{}", l.advertised_host, l.advertised_port), "listening");
        tracker.spawn(listener.run(broker.clone(), connections.clone(), tracker.clone(), shutdown.clone()));
    }
    Ok(RunningBroker { broker, addrs, shutdown, tracker })
}
