//! Broker metrics and their Prometheus text rendering.
//!
//! Counters are lock-free atomics updated on the request path: requests and
//! latency per API key (a fixed-bucket histogram), bytes and records in and
//! out per topic, connections. Gauges that are cheaper to read than to
//! maintain (log size and end offset per partition, consumer-group lag,
//! uptime) are computed when `/metrics` is scraped.

use std::collections::HashMap;
use std::fmt::Write;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

/// API keys tracked (Kafka's keys are below this).
const MAX_API_KEY: usize = 128;
/// Upper bounds of the latency buckets, in seconds.
const LATENCY_BUCKETS_S: [f64; 12] = [0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.5, 2.5];
/// Most topics with their own counters; traffic of further topics is
/// counted under `topic="_other"` so a client cannot grow memory without
/// bound by creating topics.
const MAX_TOPICS: usize = 100_000;

#[derive(Default)]
struct ApiCounters {
    requests: AtomicU64,
    errors: AtomicU64,
    latency: Histogram,
}

/// Per-topic traffic.
#[derive(Default)]
pub struct TopicCounters {
    pub bytes_in: AtomicU64,
    pub records_in: AtomicU64,
    pub bytes_out: AtomicU64,
    pub records_out: AtomicU64,
}

/// Transaction outcomes (issue 10).
#[derive(Default)]
pub struct TxnCounters {
    pub committed: AtomicU64,
    pub aborted: AtomicU64,
    /// Aborts because a transaction outlived its `transaction.timeout.ms`.
    pub timed_out: AtomicU64,
    /// Open transactions a new producer with the same id fenced and aborted.
    pub fenced: AtomicU64,
    /// COMMIT/ABORT markers written to partitions.
    pub markers: AtomicU64,
    /// Time to write a transaction's markers and settle its offsets.
    completion: Histogram,
}

/// A fixed-bucket latency histogram ([`LATENCY_BUCKETS_S`]).
#[derive(Default)]
struct Histogram {
    buckets: [AtomicU64; LATENCY_BUCKETS_S.len() + 1],
    sum_ns: AtomicU64,
}

impl Histogram {
    fn observe(&self, elapsed: Duration) {
        let s = elapsed.as_secs_f64();
        let i = LATENCY_BUCKETS_S.iter().position(|b| s <= *b).unwrap_or(LATENCY_BUCKETS_S.len());
        self.buckets[i].fetch_add(1, Ordering::Relaxed);
        self.sum_ns.fetch_add(elapsed.as_nanos().min(u64::MAX as u128) as u64, Ordering::Relaxed);
    }

    fn render(&self, out: &mut String, metric: &str, labels: &str) {
        let sep = if labels.is_empty() { "" } else { "," };
        let mut cumulative = 0u64;
        for (i, le) in LATENCY_BUCKETS_S.iter().enumerate() {
            cumulative += self.buckets[i].load(Ordering::Relaxed);
            let _ = writeln!(out, "{metric}_bucket{{{labels}{sep}le=\"{le}\"}} {cumulative}");
        }
        cumulative += self.buckets[LATENCY_BUCKETS_S.len()].load(Ordering::Relaxed);
        let _ = writeln!(out, "{metric}_bucket{{{labels}{sep}le=\"+Inf\"}} {cumulative}");
        let sum = self.sum_ns.load(Ordering::Relaxed) as f64 / 1e9;
        let braces = if labels.is_empty() { String::new() } else { format!("{{{labels}}}") };
        let _ = writeln!(out, "{metric}_sum{braces} {sum:.6}");
        let _ = writeln!(out, "{metric}_count{braces} {cumulative}");
    }
}

impl TxnCounters {
    /// One transaction completed: its markers written and offsets settled.
    pub fn completed(&self, commit: bool, markers: usize, elapsed: Duration) {
        if commit { &self.committed } else { &self.aborted }.fetch_add(1, Ordering::Relaxed);
        self.markers.fetch_add(markers as u64, Ordering::Relaxed);
        self.completion.observe(elapsed);
    }

    /// Renders the counters; `states` are the transactional ids per state now.
    pub fn render(&self, out: &mut String, states: &[(&str, usize)]) {
        let _ = writeln!(out, "# HELP klamm_transactional_ids Transactional ids known to the coordinator, by state.");
        let _ = writeln!(out, "# TYPE klamm_transactional_ids gauge");
        for (state, n) in states {
            let _ = writeln!(out, "klamm_transactional_ids{{state=\"{state}\"}} {n}");
        }
        let _ = writeln!(out, "# HELP klamm_transactions_completed_total Transactions completed, by result.");
        let _ = writeln!(out, "# TYPE klamm_transactions_completed_total counter");
        let _ = writeln!(out, "klamm_transactions_completed_total{{result=\"commit\"}} {}", self.committed.load(Ordering::Relaxed));
        let _ = writeln!(out, "klamm_transactions_completed_total{{result=\"abort\"}} {}", self.aborted.load(Ordering::Relaxed));
        for (name, help, v) in [
            ("klamm_transactions_timed_out_total", "Transactions aborted by the coordinator past their transaction.timeout.ms.", &self.timed_out),
            ("klamm_transactions_fenced_total", "Open transactions aborted because a new producer with the same transactional.id fenced the old one.", &self.fenced),
            ("klamm_transaction_markers_total", "COMMIT/ABORT markers written to partitions.", &self.markers),
        ] {
            let _ = writeln!(out, "# HELP {name} {help}");
            let _ = writeln!(out, "# TYPE {name} counter");
            let _ = writeln!(out, "{name} {}", v.load(Ordering::Relaxed));
        }
        let _ = writeln!(out, "# HELP klamm_transaction_completion_seconds Time to write a transaction's markers and settle its offsets.");
        let _ = writeln!(out, "# TYPE klamm_transaction_completion_seconds histogram");
        self.completion.render(out, "klamm_transaction_completion_seconds", "");
    }
}

/// All counters of one broker.
pub struct Metrics {
    started: Instant,
    apis: Box<[ApiCounters]>,
    topics: RwLock<HashMap<String, Arc<TopicCounters>>>,
    other_topics: Arc<TopicCounters>,
    pub connections_accepted: AtomicU64,
    pub connections_open: AtomicI64,
    /// Connections closed right after accept by `max.connections.per.ip`.
    pub connections_rejected_per_ip: AtomicU64,
    /// TLS handshakes that failed or did not complete in time.
    pub tls_handshake_failures: AtomicU64,
    /// Connections closed because a response was not read in time
    /// (`klamm.socket.write.timeout.ms`).
    pub write_timeouts: AtomicU64,
    pub txn: TxnCounters,
    /// SASL exchanges that failed (SASL_AUTHENTICATION_FAILED sent).
    pub failed_authentications: AtomicU64,
}

impl Default for Metrics {
    fn default() -> Self {
        Metrics {
            started: Instant::now(),
            apis: (0..MAX_API_KEY).map(|_| ApiCounters::default()).collect(),
            topics: RwLock::new(HashMap::new()),
            other_topics: Arc::new(TopicCounters::default()),
            connections_accepted: AtomicU64::new(0),
            connections_open: AtomicI64::new(0),
            connections_rejected_per_ip: AtomicU64::new(0),
            tls_handshake_failures: AtomicU64::new(0),
            write_timeouts: AtomicU64::new(0),
            txn: TxnCounters::default(),
            failed_authentications: AtomicU64::new(0),
        }
    }
}

impl Metrics {
    /// Records one handled request.
    pub fn request(&self, api_key: i16, elapsed: Duration, failed: bool) {
        let Some(c) = usize::try_from(api_key).ok().and_then(|k| self.apis.get(k)) else {
            return;
        };
        c.requests.fetch_add(1, Ordering::Relaxed);
        if failed {
            c.errors.fetch_add(1, Ordering::Relaxed);
        }
        c.latency.observe(elapsed);
    }

    /// The counters of `topic`.
    pub fn topic(&self, topic: &str) -> Arc<TopicCounters> {
        if let Some(c) = self.topics.read().unwrap_or_else(|e| e.into_inner()).get(topic) {
            return c.clone();
        }
        let mut topics = self.topics.write().unwrap_or_else(|e| e.into_inner());
        if topics.len() >= MAX_TOPICS && !topics.contains_key(topic) {
            return self.other_topics.clone();
        }
        topics.entry(topic.to_string()).or_default().clone()
    }

    /// Forgets a deleted topic's counters.
    pub fn remove_topic(&self, topic: &str) {
        self.topics.write().unwrap_or_else(|e| e.into_inner()).remove(topic);
    }

    /// Records and bytes produced and fetched, summed over the topics:
    /// `(records_in, bytes_in, records_out, bytes_out)`.
    pub fn topic_totals(&self) -> (u64, u64, u64, u64) {
        let topics = self.topics.read().unwrap_or_else(|e| e.into_inner());
        let mut t = (0, 0, 0, 0);
        for c in topics.values().chain(std::iter::once(&self.other_topics)) {
            t.0 += c.records_in.load(Ordering::Relaxed);
            t.1 += c.bytes_in.load(Ordering::Relaxed);
            t.2 += c.records_out.load(Ordering::Relaxed);
            t.3 += c.bytes_out.load(Ordering::Relaxed);
        }
        t
    }

    pub fn uptime(&self) -> Duration {
        self.started.elapsed()
    }

    /// Renders the counters (the caller appends the computed gauges).
    pub fn render(&self, out: &mut String, api_name: impl Fn(i16) -> Option<&'static str>) {
        let _ = writeln!(out, "# HELP klamm_uptime_seconds Time since the broker started.");
        let _ = writeln!(out, "# TYPE klamm_uptime_seconds gauge");
        let _ = writeln!(out, "klamm_uptime_seconds {:.3}", self.uptime().as_secs_f64());
        let _ = writeln!(out, "# HELP klamm_connections_open Client connections open now.");
        let _ = writeln!(out, "# TYPE klamm_connections_open gauge");
        let _ = writeln!(out, "klamm_connections_open {}", self.connections_open.load(Ordering::Relaxed).max(0));
        let _ = writeln!(out, "# HELP klamm_connections_accepted_total Client connections accepted.");
        let _ = writeln!(out, "# TYPE klamm_connections_accepted_total counter");
        let _ = writeln!(out, "klamm_connections_accepted_total {}", self.connections_accepted.load(Ordering::Relaxed));
        let _ = writeln!(out, "# HELP klamm_connections_rejected_per_ip_total Connections closed at accept by max.connections.per.ip.");
        let _ = writeln!(out, "# TYPE klamm_connections_rejected_per_ip_total counter");
        let _ = writeln!(out, "klamm_connections_rejected_per_ip_total {}", self.connections_rejected_per_ip.load(Ordering::Relaxed));
        let _ = writeln!(out, "# HELP klamm_tls_handshake_failures_total TLS handshakes that failed or did not complete within the handshake timeout.");
        let _ = writeln!(out, "# TYPE klamm_tls_handshake_failures_total counter");
        let _ = writeln!(out, "klamm_tls_handshake_failures_total {}", self.tls_handshake_failures.load(Ordering::Relaxed));
        let _ = writeln!(out, "# HELP klamm_failed_authentications_total SASL authentications that failed.");
        let _ = writeln!(out, "# TYPE klamm_failed_authentications_total counter");
        let _ = writeln!(out, "klamm_failed_authentications_total {}", self.failed_authentications.load(Ordering::Relaxed));
        let _ = writeln!(out, "# HELP klamm_write_timeouts_total Connections closed because the client read no response bytes in klamm.socket.write.timeout.ms.");
        let _ = writeln!(out, "# TYPE klamm_write_timeouts_total counter");
        let _ = writeln!(out, "klamm_write_timeouts_total {}", self.write_timeouts.load(Ordering::Relaxed));

        let _ = writeln!(out, "# HELP klamm_requests_total Requests handled, by API.");
        let _ = writeln!(out, "# TYPE klamm_requests_total counter");
        let apis: Vec<(usize, &'static str, &ApiCounters)> = self
            .apis
            .iter()
            .enumerate()
            .filter(|(_, c)| c.requests.load(Ordering::Relaxed) > 0)
            .filter_map(|(k, c)| api_name(k as i16).map(|n| (k, n, c)))
            .collect();
        for (_, name, c) in &apis {
            let _ = writeln!(out, "klamm_requests_total{{api=\"{name}\"}} {}", c.requests.load(Ordering::Relaxed));
        }
        let _ = writeln!(out, "# HELP klamm_request_errors_total Requests that closed the connection instead of answering, by API.");
        let _ = writeln!(out, "# TYPE klamm_request_errors_total counter");
        for (_, name, c) in &apis {
            let _ = writeln!(out, "klamm_request_errors_total{{api=\"{name}\"}} {}", c.errors.load(Ordering::Relaxed));
        }
        let _ = writeln!(out, "# HELP klamm_request_duration_seconds Time from a decoded request to its encoded response, by API.");
        let _ = writeln!(out, "# TYPE klamm_request_duration_seconds histogram");
        for (_, name, c) in &apis {
            c.latency.render(out, "klamm_request_duration_seconds", &format!("api=\"{name}\""));
        }

        let mut topics: Vec<(String, Arc<TopicCounters>)> = self
            .topics
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        topics.sort_by(|a, b| a.0.cmp(&b.0));
        if self.other_topics.records_in.load(Ordering::Relaxed) > 0 || self.other_topics.records_out.load(Ordering::Relaxed) > 0 {
            topics.push(("_other".into(), self.other_topics.clone()));
        }
        type Field = fn(&TopicCounters) -> &AtomicU64;
        let series: [(&str, &str, Field); 4] = [
            ("klamm_topic_bytes_in_total", "Record bytes appended, by topic.", |c| &c.bytes_in),
            ("klamm_topic_records_in_total", "Records appended, by topic.", |c| &c.records_in),
            ("klamm_topic_bytes_out_total", "Record bytes sent to consumers, by topic.", |c| &c.bytes_out),
            ("klamm_topic_records_out_total", "Records sent to consumers (counted per batch header), by topic.", |c| &c.records_out),
        ];
        for (metric, help, field) in series {
            let _ = writeln!(out, "# HELP {metric} {help}");
            let _ = writeln!(out, "# TYPE {metric} counter");
            for (topic, c) in &topics {
                let _ = writeln!(out, "{metric}{{topic=\"{topic}\"}} {}", field(c).load(Ordering::Relaxed));
            }
        }
    }
}

/// Counts the records in a run of v2 batches from their headers (no
/// decompression): the sum of each batch's record count.
pub fn count_records(mut batches: &[u8]) -> u64 {
    let mut n = 0u64;
    // Batch header: base offset (8), length (4), ..., records count at 57.
    while batches.len() >= 61 {
        let len = i32::from_be_bytes([batches[8], batches[9], batches[10], batches[11]]);
        let Ok(total) = usize::try_from(12i64 + i64::from(len)) else { break };
        if total < 61 || total > batches.len() {
            break;
        }
        n += u64::from(u32::from_be_bytes([batches[57], batches[58], batches[59], batches[60]]));
        batches = &batches[total..];
    }
    n
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::records::builder::test_batch;

    #[test]
    fn renders_counters_and_histograms() {
        let m = Metrics::default();
        m.request(0, Duration::from_micros(300), false);
        m.request(0, Duration::from_secs(3), true);
        let t = m.topic("orders");
        t.bytes_in.fetch_add(100, Ordering::Relaxed);
        t.records_in.fetch_add(2, Ordering::Relaxed);
        let mut out = String::new();
        m.render(&mut out, |k| (k == 0).then_some("Produce"));
        assert!(out.contains("klamm_requests_total{api=\"Produce\"} 2"), "{out}");
        assert!(out.contains("klamm_request_errors_total{api=\"Produce\"} 1"));
        assert!(out.contains("klamm_request_duration_seconds_bucket{api=\"Produce\",le=\"0.0005\"} 1"));
        assert!(out.contains("klamm_request_duration_seconds_bucket{api=\"Produce\",le=\"+Inf\"} 2"));
        assert!(out.contains("klamm_topic_bytes_in_total{topic=\"orders\"} 100"));
        assert!(out.contains("klamm_topic_records_in_total{topic=\"orders\"} 2"));
    }

    #[test]
    fn renders_transaction_outcomes() {
        let m = Metrics::default();
        m.txn.completed(true, 3, Duration::from_micros(300));
        m.txn.completed(false, 1, Duration::from_secs(5));
        let mut out = String::new();
        m.txn.render(&mut out, &[("Ongoing", 2), ("CompleteCommit", 1)]);
        assert!(out.contains("klamm_transactional_ids{state=\"Ongoing\"} 2"), "{out}");
        assert!(out.contains("klamm_transactions_completed_total{result=\"commit\"} 1"));
        assert!(out.contains("klamm_transactions_completed_total{result=\"abort\"} 1"));
        assert!(out.contains("klamm_transaction_markers_total 4"));
        assert!(out.contains("klamm_transaction_completion_seconds_bucket{le=\"0.0005\"} 1"));
        assert!(out.contains("klamm_transaction_completion_seconds_bucket{le=\"+Inf\"} 2"));
        assert!(out.contains("klamm_transaction_completion_seconds_count 2"));
    }

    #[test]
    fn counts_records_from_batch_headers() {
        let mut two = test_batch(3, 1_000, None);
        two.extend_from_slice(&test_batch(4, 1_000, None));
        assert_eq!(count_records(&two), 7);
        assert_eq!(count_records(&two[..two.len() - 1]), 3);
        assert_eq!(count_records(&[]), 0);
    }
}
