//! The broker: the shared state every handler sees (settings, controller,
//! partition logs, group and transaction coordinators, limits) and its life cycle: `start`
//! locks the data directory (one broker per `log.dirs`), binds the
//! listeners' ports, opens (recovers) the data directory, then listens and
//! spawns the listeners with the housekeeping task;
//! `RunningBroker::shutdown` stops accepting, lets in-flight requests
//! finish, then flushes and closes the logs, writes the clean-shutdown
//! marker and releases the directory.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use tokio::net::TcpSocket;
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::config::BrokerConfig;
use crate::controller::{Controller, ControllerError, NewTopic, TopicInfo};
use crate::fetch_session::FetchSessionCache;
use crate::group::consumer::{ConsumerGroupConfig, ConsumerGroupCoordinator};
use crate::group::{GroupConfig, GroupCoordinator};
use crate::metrics::Metrics;
use crate::protocol::ErrorCode;
use crate::replica::{Partition, ReplicaManager};
use crate::server::quotas::{ClientQuotas, RequestPools};
use crate::server::{Limits, Listener};
use crate::storage::DirLock;
use crate::types::{TimestampMs, TopicPartition};

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
    /// SASL_PLAINTEXT listeners: the mechanisms and PLAIN users; `None`
    /// for PLAINTEXT.
    pub sasl: Option<Arc<crate::security::sasl::ListenerSasl>>,
    /// SSL and SASL_SSL listeners: TLS first; `None` for the plaintext ones.
    pub tls: Option<crate::security::tls::ServerTls>,
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
    /// The full configuration (topic defaults, group and log settings).
    pub config: Arc<BrokerConfig>,
    /// Where to serve `/health` and `/metrics` (`http.listener`), if at all.
    pub http_listener: Option<SocketAddr>,
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
                sasl: c.sasl_listeners.get(&l.name).cloned().map(Arc::new),
                tls: c.tls_listeners.get(&l.name).map(crate::security::tls::ServerTls::load).transpose()?,
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
            limits: {
                let queued = c.queued_max_request_bytes.unwrap_or(DEFAULT_QUEUED_MAX_REQUEST_BYTES);
                Limits {
                    max_connections: c.max_connections,
                    max_connections_per_ip: c.max_connections_per_ip,
                    max_connections_per_ip_overrides: c.max_connections_per_ip_overrides.clone(),
                    request_max_bytes: c.socket_request_max_bytes,
                    connections_max_idle_ms: c.connections_max_idle_ms.max(1) as u64,
                    write_timeout_ms: c.socket_write_timeout_ms.max(1) as u64,
                    queued_max_request_bytes: queued,
                    queued_max_request_bytes_per_ip: c
                        .queued_max_request_bytes_per_ip
                        .unwrap_or_else(|| crate::server::listener::default_per_ip_bytes(queued, c.socket_request_max_bytes)),
                }
            },
            http_listener: c.http_listener.as_deref().map(crate::http::parse_listener).transpose()?,
            config: Arc::new(c.clone()),
        })
    }

    /// Kafka's defaults, serving PLAINTEXT on `bind` with data in `log_dir`.
    pub fn new(bind: SocketAddr, log_dir: PathBuf) -> BrokerSettings {
        let mut config = BrokerConfig::with_settings(&[]).expect("the embedded defaults are valid");
        config.log_dir = log_dir.clone();
        BrokerSettings {
            node_id: 1,
            log_dir,
            cluster_id: None,
            listeners: vec![ListenerSettings {
                name: "PLAINTEXT".into(),
                bind,
                advertised_host: if bind.ip().is_unspecified() { "localhost".into() } else { bind.ip().to_string() },
                advertised_port: 0,
                sasl: None,
                tls: None,
            }],
            auto_create_topics_enable: true,
            delete_topic_enable: true,
            num_partitions: 1,
            default_replication_factor: 1,
            limits: Limits::defaults(),
            http_listener: None,
            config: Arc::new(config),
        }
    }
}

pub struct Broker {
    settings: BrokerSettings,
    /// `queued.max.request.bytes`, small frames' share and the rest (see
    /// `server::quotas`).
    request_pools: RequestPools,
    /// Connections and request memory per client IP.
    client_quotas: Arc<ClientQuotas>,
    pub controller: Controller,
    pub replicas: ReplicaManager,
    pub groups: GroupCoordinator,
    /// KIP-848 consumer groups (`src/group/consumer`); their offsets are
    /// in `groups`' store.
    pub consumer_groups: ConsumerGroupCoordinator,
    /// Transactional ids and their transactions (`src/txn`).
    pub txns: crate::txn::TransactionCoordinator,
    /// SCRAM credentials (AlterUserScramCredentials, SASL/SCRAM logins).
    pub scram: Arc<crate::security::credentials::ScramStore>,
    /// `authorizer.class.name`'s authorizer, if configured; its ACLs are
    /// in the controller's image.
    pub authorizer: Option<crate::security::authorizer::Authorizer>,
    pub metrics: Metrics,
    /// Incremental fetch sessions (KIP-227).
    pub fetch_sessions: FetchSessionCache,
    /// Cancelled when the broker begins to shut down; long waits (fetch
    /// long polls) end early on it.
    shutdown: CancellationToken,
    /// The data directory's lock: released at the end of a clean
    /// shutdown, or when the last reference to the broker goes.
    dir_lock: std::sync::Mutex<Option<DirLock>>,
}

impl Broker {
    pub fn settings(&self) -> &BrokerSettings {
        &self.settings
    }

    pub fn config(&self) -> &Arc<BrokerConfig> {
        &self.settings.config
    }

    /// Cancelled when shutdown begins.
    pub fn shutting_down(&self) -> &CancellationToken {
        &self.shutdown
    }

    pub fn limits(&self) -> &Limits {
        &self.settings.limits
    }

    /// The broker-wide request memory (`queued.max.request.bytes`).
    pub fn request_pools(&self) -> &RequestPools {
        &self.request_pools
    }

    /// Per-IP connection counts and request-memory budgets.
    pub fn client_quotas(&self) -> &Arc<ClientQuotas> {
        &self.client_quotas
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

    /// Runs a blocking metadata change, then brings the logs in step with
    /// the new image before returning.
    async fn change_metadata<T: Send + 'static>(
        self: &Arc<Self>,
        f: impl FnOnce(&Controller) -> Result<T, ControllerError> + Send + 'static,
    ) -> Result<T, ControllerError> {
        let me = self.clone();
        tokio::task::spawn_blocking(move || {
            let out = f(&me.controller)?;
            me.replicas
                .reconcile(&me.controller.image())
                .map_err(|e| ControllerError::new(ErrorCode::KafkaStorageError, e.to_string()))?;
            Ok(out)
        })
        .await
        .unwrap_or_else(|e| Err(ControllerError::new(ErrorCode::UnknownServerError, e.to_string())))
    }

    pub async fn create_topic(self: &Arc<Self>, t: NewTopic, validate_only: bool) -> Result<TopicInfo, ControllerError> {
        if validate_only {
            return self.with_controller(move |c| c.create_topic(t, true)).await;
        }
        self.change_metadata(move |c| c.create_topic(t, false)).await
    }

    /// Creates `topics` with one metadata write (see
    /// [`Controller::create_topics`]) and one pass over the logs.
    pub async fn create_topics(self: &Arc<Self>, topics: Vec<NewTopic>) -> Vec<Result<TopicInfo, ControllerError>> {
        let n = topics.len();
        match self.change_metadata(move |c| Ok(c.create_topics(topics))).await {
            Ok(results) => results,
            Err(e) => (0..n).map(|_| Err(ControllerError::new(e.code, e.message.clone()))).collect(),
        }
    }

    /// Auto-creates `names` with broker defaults, in one metadata write; a
    /// concurrent creation of the same topic counts as success.
    pub async fn auto_create_topics(self: &Arc<Self>, names: &[String]) -> Vec<Result<Arc<TopicInfo>, ControllerError>> {
        let requests = names.iter().map(|n| crate::handlers::metadata::auto_create_request(n)).collect();
        let created = self.create_topics(requests).await;
        let image = self.controller.image();
        names
            .iter()
            .zip(created)
            .map(|(name, r)| {
                match r {
                    Ok(_) => {}
                    Err(e) if e.code == ErrorCode::TopicAlreadyExists => {}
                    Err(e) => return Err(e),
                }
                image
                    .topic(name)
                    .cloned()
                    .ok_or_else(|| ControllerError::new(ErrorCode::LeaderNotAvailable, "topic is being created"))
            })
            .collect()
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
        let deleted = self.change_metadata(move |c| c.delete_topic(&name)).await?;
        self.metrics.remove_topic(&deleted.name);
        if let Err(e) = self.groups.on_topics_deleted(std::slice::from_ref(&deleted.name)).await {
            tracing::warn!(topic = %deleted.name, error = %e, "could not delete the committed offsets of a deleted topic");
        }
        Ok(deleted)
    }

    pub async fn create_partitions(self: &Arc<Self>, name: &str, count: i32, validate_only: bool) -> Result<(), ControllerError> {
        let name = name.to_string();
        if validate_only {
            return self.with_controller(move |c| c.create_partitions(&name, count, true)).await;
        }
        self.change_metadata(move |c| c.create_partitions(&name, count, false)).await
    }

    /// Replaces a topic's config overrides (validated by the caller) and
    /// applies them to its logs.
    pub async fn set_topic_configs(
        self: &Arc<Self>,
        name: &str,
        configs: std::collections::BTreeMap<String, String>,
    ) -> Result<(), ControllerError> {
        let name = name.to_string();
        self.change_metadata(move |c| c.set_topic_configs(&name, configs)).await
    }

    /// Replaces a group's dynamic configs (durably, in the metadata log).
    pub async fn set_group_configs(
        self: &Arc<Self>,
        group: &str,
        configs: std::collections::BTreeMap<String, String>,
    ) -> Result<(), ControllerError> {
        let group = group.to_string();
        self.change_metadata(move |c| c.set_group_configs(&group, configs)).await
    }

    /// The partition's log, if the topic and partition exist. A partition
    /// the controller knows but whose log is not created yet (a concurrent
    /// creation) is created here.
    pub async fn partition(self: &Arc<Self>, tp: &TopicPartition) -> Option<Arc<Partition>> {
        if let Some(p) = self.replicas.get(tp) {
            return Some(p);
        }
        let image = self.controller.image();
        let topic = image.topic(&tp.topic)?;
        if tp.partition < 0 || tp.partition >= topic.partitions {
            return None;
        }
        let me = self.clone();
        let tp2 = tp.clone();
        tokio::task::spawn_blocking(move || {
            if let Err(e) = me.replicas.reconcile(&me.controller.image()) {
                tracing::warn!(error = %e, "could not create partition logs");
            }
            me.replicas.get(&tp2)
        })
        .await
        .ok()
        .flatten()
    }

    pub async fn allocate_producer_id(self: &Arc<Self>) -> Result<i64, ControllerError> {
        self.with_controller(|c| c.allocate_producer_id()).await
    }
}

/// A started broker. Dropping it without `shutdown` leaves it running
/// until the runtime stops.
pub struct RunningBroker {
    pub broker: Arc<Broker>,
    addrs: Vec<SocketAddr>,
    http_addr: Option<SocketAddr>,
    shutdown: CancellationToken,
    tracker: TaskTracker,
}

impl RunningBroker {
    /// The addresses actually bound, in listener order.
    pub fn local_addrs(&self) -> &[SocketAddr] {
        &self.addrs
    }

    /// The address the HTTP listener is bound to, if enabled.
    pub fn http_addr(&self) -> Option<SocketAddr> {
        self.http_addr
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
    /// request, stops the group coordinator, then closes the logs (flush,
    /// checkpoints, clean-shutdown marker).
    pub async fn shutdown(self) {
        self.shutdown.cancel();
        self.tracker.close();
        // Parked JoinGroup/SyncGroup requests are answered now, so their
        // connections can finish.
        self.broker.groups.shutdown().await;
        self.tracker.wait().await;
        let broker = self.broker.clone();
        let closed = tokio::task::spawn_blocking(move || broker.replicas.shutdown()).await;
        match closed {
            Ok(Ok(())) => {}
            Ok(Err(e)) => tracing::error!(error = %e, "closing the logs failed; the next start recovers them"),
            Err(e) => tracing::error!(error = %e, "closing the logs failed; the next start recovers them"),
        }
        // The logs are closed: another broker may have the directory now.
        drop(self.broker.dir_lock.lock().unwrap_or_else(|e| e.into_inner()).take());
    }
}

/// The group coordinator's settings from the broker configuration.
fn consumer_group_config(c: &BrokerConfig) -> ConsumerGroupConfig {
    ConsumerGroupConfig {
        session_timeout_ms: c.group_consumer_session_timeout_ms,
        heartbeat_interval_ms: c.group_consumer_heartbeat_interval_ms,
        max_size: usize::try_from(c.group_consumer_max_size).unwrap_or(0),
        assignors: crate::group::consumer::assignor::Assignors::new(
            &c.group_consumer_assignors
                .iter()
                .filter_map(|a| crate::group::consumer::assignor::Assignor::from_name(a))
                .collect::<Vec<_>>(),
        )
        .unwrap_or_default(),
    }
}

fn group_config(c: &BrokerConfig) -> GroupConfig {
    GroupConfig {
        min_session_timeout_ms: c.group_min_session_timeout_ms,
        max_session_timeout_ms: c.group_max_session_timeout_ms,
        initial_rebalance_delay_ms: c.group_initial_rebalance_delay_ms,
        max_size: usize::try_from(c.group_max_size).unwrap_or(0),
        offsets_retention_ms: c.offsets_retention_ms,
        offset_metadata_max_bytes: usize::try_from(c.offset_metadata_max_bytes).unwrap_or(0),
    }
}

/// Backlog of the HTTP listening socket (what `TcpListener::bind` uses);
/// client listeners use `socket.listen.backlog.size`.
const LISTEN_BACKLOG: u32 = 1024;

/// A socket bound to `addr` (address reuse on, as `TcpListener::bind`
/// sets it; a client listener's socket buffers as `config` says) but not
/// listening yet: the port is ours, and connections are refused rather
/// than queued until the broker can answer them.
fn bind_socket(what: &str, addr: SocketAddr, config: Option<&BrokerConfig>) -> std::io::Result<TcpSocket> {
    let socket = if addr.is_ipv4() { TcpSocket::new_v4() } else { TcpSocket::new_v6() };
    let bound = socket.and_then(|s| {
        s.set_reuseaddr(true)?;
        if let Some(config) = config {
            crate::server::configure_client_socket(&s, config)?;
        }
        s.bind(addr)?;
        Ok(s)
    });
    bound.map_err(|e| bind_error(what, addr, e))
}

fn bind_error(what: &str, addr: SocketAddr, e: std::io::Error) -> std::io::Error {
    let hint = if e.kind() == std::io::ErrorKind::AddrInUse { " (another klamm or Kafka listening there?)" } else { "" };
    std::io::Error::new(e.kind(), format!("cannot listen on {addr} for {what}: {e}{hint}"))
}

/// Locks the data directory, binds every listener, opens the data directory
/// (recovering the logs) and starts serving.
///
/// The lock comes first, as in Kafka: a second broker on a directory in
/// use fails here, naming the other process, before recovery could
/// truncate files the first has mapped. The ports are bound next, before
/// recovery, so a port in use is reported at once rather than after a long
/// recovery; they listen only once the broker can serve.
pub async fn start(settings: BrokerSettings) -> std::io::Result<RunningBroker> {
    let ignored = settings.config.ignored_settings();
    if !ignored.is_empty() {
        tracing::warn!(
            settings = %ignored.join(", "),
            "accepted for compatibility but without effect in klamm (see --print-config)"
        );
    }
    let dir = settings.log_dir.clone();
    let dir_lock = tokio::task::spawn_blocking(move || DirLock::acquire(&dir))
        .await
        .map_err(std::io::Error::other)??;
    let mut bound = Vec::new();
    let mut settings = settings;
    for l in settings.listeners.iter_mut() {
        let socket = bind_socket(&format!("listener {}", l.name), l.bind, Some(&settings.config))?;
        let addr = socket.local_addr()?;
        if l.advertised_port == 0 {
            l.advertised_port = addr.port();
        }
        bound.push((socket, addr));
    }
    let http = match settings.http_listener {
        Some(addr) => Some((bind_socket("http.listener", addr, None)?, addr)),
        None => None,
    };
    let (controller, replicas, groups, txns, scram) = {
        let s = settings.clone();
        tokio::task::spawn_blocking(move || -> std::io::Result<_> {
            // An Apache Kafka data directory is adopted on the first start.
            crate::kafka_import::adopt_if_kafka_dir(&s.log_dir, s.node_id, s.cluster_id.as_deref())?;
            let controller = Controller::open(
                &s.log_dir,
                s.node_id,
                s.cluster_id.as_deref(),
                s.num_partitions,
                s.default_replication_factor,
            )?;
            let mut config = (*s.config).clone();
            config.log_dir = s.log_dir.clone();
            let replicas = ReplicaManager::open(Arc::new(config), &controller.image()).map_err(std::io::Error::other)?;
            let groups = GroupCoordinator::open(group_config(&s.config), &s.log_dir.join(".klamm").join("groups"))
                .map_err(std::io::Error::other)?;
            let txns = crate::txn::TransactionCoordinator::open(&crate::txn::log_dir(&s.log_dir), s.config.transaction_max_timeout_ms)
                .map_err(std::io::Error::other)?;
            let scram = crate::security::credentials::ScramStore::open(crate::security::credentials::store_path(&s.log_dir))
                .map_err(std::io::Error::other)?;
            Ok((controller, replicas, groups, txns, Arc::new(scram)))
        })
        .await
        .map_err(std::io::Error::other)??
    };
    let mut listening = Vec::new();
    let backlog = settings.config.socket_listen_backlog_size.max(1);
    for ((socket, addr), l) in bound.into_iter().zip(settings.listeners.iter()) {
        let tcp = socket.listen(backlog).map_err(|e| bind_error(&format!("listener {}", l.name), addr, e))?;
        listening.push((tcp, addr));
    }
    let http = match http {
        Some((socket, addr)) => Some(socket.listen(LISTEN_BACKLOG).map_err(|e| bind_error("http.listener", addr, e))?),
        None => None,
    };
    let consumer_groups = ConsumerGroupCoordinator::open(
        consumer_group_config(&settings.config),
        groups.store().clone(),
        &*controller.image(),
        TimestampMs::now().0,
    );
    let queued = settings.limits.queued_max_request_bytes.clamp(1, Semaphore::MAX_PERMITS);
    let shutdown = CancellationToken::new();
    let broker = Arc::new(Broker {
        request_pools: RequestPools::new(queued),
        client_quotas: Arc::new(ClientQuotas::new(&settings.limits)),
        controller,
        replicas,
        groups,
        consumer_groups,
        txns,
        scram,
        authorizer: settings.config.authorizer.as_ref().map(crate::security::authorizer::Authorizer::new),
        metrics: Metrics::default(),
        fetch_sessions: FetchSessionCache::new(settings.config.max_incremental_fetch_session_cache_slots),
        shutdown: shutdown.clone(),
        dir_lock: std::sync::Mutex::new(Some(dir_lock)),
        settings,
    });
    let tracker = TaskTracker::new();
    tracker.spawn(housekeeping(broker.clone(), shutdown.clone()));
    spawn_log_cleaners(&broker, &tracker, &shutdown);
    let connections = Arc::new(Semaphore::new(broker.settings.limits.max_connections));
    let mut addrs = Vec::new();
    for ((tcp, addr), l) in listening.into_iter().zip(broker.settings.listeners.iter()) {
        addrs.push(addr);
        let listener = Listener {
            name: l.name.clone(),
            advertised_host: l.advertised_host.clone(),
            advertised_port: l.advertised_port,
            sasl: l.sasl.clone(),
            tls: l.tls.clone(),
            tcp,
        };
        tracing::info!(listener = %l.name, %addr, advertised = %format!("{}:{}", l.advertised_host, l.advertised_port), "listening");
        tracker.spawn(listener.run(broker.clone(), connections.clone(), tracker.clone(), shutdown.clone()));
    }
    // Last, so that /health answers only once the Kafka listeners accept.
    let mut http_addr = None;
    if let Some(tcp) = http {
        let addr = tcp.local_addr()?;
        tracing::info!(%addr, "serving /health and /metrics");
        http_addr = Some(addr);
        tracker.spawn(crate::http::serve(tcp, broker.clone(), addrs.clone(), tracker.clone(), shutdown.clone()));
    }
    Ok(RunningBroker { broker, addrs, http_addr, shutdown, tracker })
}

/// The log cleaner's threads (`log.cleaner.threads`, blocking tasks), each
/// cleaning the filthiest compacted log and sleeping `log.cleaner.backoff.ms`
/// when none needs it, until shutdown (which stops a pass in progress at its
/// next segment).
fn spawn_log_cleaners(broker: &Arc<Broker>, tracker: &TaskTracker, shutdown: &CancellationToken) {
    let config = broker.config().cleaner_config();
    if !config.enable {
        tracing::info!("the log cleaner is disabled");
        return;
    }
    let b = broker.clone();
    let token = shutdown.clone();
    tracker.spawn(async move {
        token.cancelled().await;
        b.replicas.log_manager().cleaner().stop();
    });
    for _ in 0..config.threads {
        let broker = broker.clone();
        let shutdown = shutdown.clone();
        let config = config.clone();
        tracker.spawn_blocking(move || {
            let backoff = std::time::Duration::from_millis(config.backoff_ms.clamp(1, 86_400_000));
            while !shutdown.is_cancelled() {
                match broker.replicas.log_manager().clean_filthiest(&config, TimestampMs::now()) {
                    Ok(Some(_)) => continue,
                    Ok(None) => {}
                    Err(e) => tracing::warn!(error = %e, "log cleaner pass failed"),
                }
                let until = std::time::Instant::now() + backoff;
                while !shutdown.is_cancelled() {
                    let left = until.saturating_duration_since(std::time::Instant::now());
                    if left.is_zero() {
                        break;
                    }
                    std::thread::sleep(left.min(std::time::Duration::from_millis(100)));
                }
            }
        });
    }
}

/// Periodic work, each on its Kafka-configured interval: flushing logs whose
/// `flush.ms`/`flush.messages` are due, retention, offset checkpoints,
/// producer-id expiry and committed-offset expiry. Runs until shutdown.
async fn housekeeping(broker: Arc<Broker>, shutdown: CancellationToken) {
    let c = broker.config().clone();
    let ms = |v: i64| std::time::Duration::from_millis(v.clamp(1, 86_400_000) as u64);
    let mut flush = tokio::time::interval(ms(c.log_flush_scheduler_interval_ms.min(1_000)));
    let mut retention = tokio::time::interval(ms(c.log_retention_check_interval_ms));
    let mut checkpoint = tokio::time::interval(ms(c.log_flush_offset_checkpoint_interval_ms));
    let mut producers = tokio::time::interval(ms(600_000));
    let mut offsets = tokio::time::interval(ms(c.offsets_retention_check_interval_ms));
    // Kafka's transaction.abort.timed.out.transaction.cleanup.interval.ms
    // default; also retries owed completions and expires idle ids.
    let mut transactions = tokio::time::interval(ms(10_000));
    // Consumer group (KIP-848) session and rebalance timeouts.
    let mut consumer_sessions = tokio::time::interval(ms(500));
    // Idle inactive segments are unmapped within half their idle time.
    let mut idle_maps = tokio::time::interval(ms((c.mapped_segment_idle_ms / 2).clamp(500, 60_000)));
    for i in [&mut consumer_sessions, &mut flush, &mut retention, &mut checkpoint, &mut producers, &mut offsets, &mut idle_maps] {
        i.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        i.reset();
    }
    transactions.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    // The first tick is at once: transactions a stop left ending finish now.
    loop {
        let job: fn(&Broker) = tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = flush.tick() => |b| {
                if let Err(e) = b.replicas.log_manager().flush_due(TimestampMs::now()) {
                    tracing::error!(error = %e, "scheduled flush failed");
                }
            },
            _ = retention.tick() => |b| match b.replicas.log_manager().enforce_retention_all(TimestampMs::now()) {
                Ok(0) => {}
                Ok(n) => tracing::info!(segments = n, "deleted segments past retention"),
                Err(e) => tracing::error!(error = %e, "retention failed"),
            },
            _ = checkpoint.tick() => |b| {
                if let Err(e) = b.replicas.log_manager().checkpoint_all() {
                    tracing::error!(error = %e, "writing offset checkpoints failed");
                }
            },
            _ = producers.tick() => |b| {
                let expiry = i64::from(b.config().producer_id_expiration_ms);
                b.replicas.log_manager().expire_producers_all(TimestampMs::now(), expiry);
            },
            _ = transactions.tick() => {
                crate::txn::housekeeping(&broker).await;
                continue;
            },
            _ = idle_maps.tick() => |b| {
                let idle = std::time::Duration::from_millis(b.config().mapped_segment_idle_ms.max(0) as u64);
                let n = crate::storage::map_cache::unmap_idle(idle);
                if n > 0 {
                    tracing::debug!(segments = n, "unmapped idle inactive segments");
                }
            },
            _ = consumer_sessions.tick() => {
                let image = broker.controller.image();
                broker.consumer_groups.expire_members(TimestampMs::now().0, &*image);
                continue;
            },
            _ = offsets.tick() => {
                let mut n = broker.groups.cleanup_expired_offsets(TimestampMs::now()).await;
                let retention_ms = broker.groups.config().offsets_retention_ms;
                let (consumer, writes) = broker.consumer_groups.expire_offsets(TimestampMs::now(), retention_ms);
                n += consumer;
                for rx in writes {
                    if let Err(e) = rx.await.unwrap_or(Err(crate::group::StoreError::Closed)) {
                        tracing::warn!(error = %e, "consumer group offset expiry write failed");
                    }
                }
                if n > 0 {
                    tracing::info!(offsets = n, "expired committed offsets");
                }
                continue;
            },
        };
        let b = broker.clone();
        if let Err(e) = tokio::task::spawn_blocking(move || job(&b)).await {
            tracing::error!(error = %e, "housekeeping task failed");
        }
    }
}
