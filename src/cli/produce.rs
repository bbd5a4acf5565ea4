//! `klamm produce TOPIC`: records from stdin (one per line) or one
//! `--value`, batched per partition into v2 record batches with the
//! `records` builder and sent as Produce requests, several in flight per
//! connection. Partitions as Kafka's Java producer picks them by default:
//! murmur2 of the key, sticky (one partition per batch, then the next)
//! for records without a key.

use std::collections::{BTreeMap, VecDeque};
use std::io::Read;
use std::time::{Duration, Instant};

use clap::Args;
use tokio::sync::mpsc;

use super::client::{check, Client, Pending};
use super::partitioner::Partitioner;
use super::{parse_key_value, CliError, ConnOpts};
use crate::protocol::messages as m;
use crate::records::{BatchBuilder, CompressionType};
use crate::types::TimestampMs;

/// Bytes read from stdin at a time.
const READ_CHUNK_BYTES: usize = 256 * 1024;
/// Stdin chunks buffered between the reader thread and the sender.
const CHANNEL_CHUNKS: usize = 16;
/// Per-record overhead estimate in a batch (length, attributes, deltas).
const RECORD_OVERHEAD_BYTES: usize = 24;

#[derive(Clone, Debug, Args)]
pub struct ProduceArgs {
    #[command(flatten)]
    pub conn: ConnOpts,
    pub topic: String,
    /// Produces this one value instead of reading lines from stdin.
    #[arg(long)]
    pub value: Option<String>,
    /// The key of every record.
    #[arg(short = 'k', long)]
    pub key: Option<String>,
    /// Splits each stdin line at the first SEP into key and value (a line
    /// without SEP has no key).
    #[arg(long = "key-separator", value_name = "SEP", conflicts_with = "key")]
    pub key_separator: Option<String>,
    /// A header of every record, repeatable: `-H source=cli`.
    #[arg(short = 'H', long = "header", value_name = "KEY=VALUE", value_parser = parse_key_value)]
    pub headers: Vec<(String, String)>,
    /// Partition to write to (default: murmur2 of the key, as Kafka's Java
    /// client; sticky round-robin for records without a key).
    #[arg(short = 'p', long)]
    pub partition: Option<i32>,
    /// Compression codec of the batches.
    #[arg(long, value_enum, default_value_t = Compression::None)]
    pub compression: Compression,
    /// Acknowledgements: 0 (none), 1 (leader), -1 or all (all in-sync replicas).
    #[arg(long, default_value = "-1", value_parser = parse_acks, allow_negative_numbers = true)]
    pub acks: i16,
    /// Largest batch of one partition, in bytes (stay below the topic's
    /// max.message.bytes).
    #[arg(long = "batch-bytes", default_value_t = 1_000_000, value_parser = clap::value_parser!(u32).range(1024..=64 * 1024 * 1024))]
    pub batch_bytes: u32,
    /// How long to wait for more stdin lines before sending a partial batch.
    #[arg(long = "linger-ms", default_value_t = 5)]
    pub linger_ms: u64,
    /// Produce requests in flight per connection.
    #[arg(long = "max-in-flight", default_value_t = 5, value_parser = clap::value_parser!(u32).range(1..=64))]
    pub max_in_flight: u32,
    /// Longest line accepted from stdin, in bytes.
    #[arg(long = "max-line-bytes", default_value_t = 1024 * 1024)]
    pub max_line_bytes: usize,
}

/// Batch compression codecs (`records::compression`; zstd is read by
/// `consume` but not written yet).
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Compression {
    None,
    Gzip,
    Snappy,
    Lz4,
}

impl Compression {
    fn codec(self) -> CompressionType {
        match self {
            Compression::None => CompressionType::None,
            Compression::Gzip => CompressionType::Gzip,
            Compression::Snappy => CompressionType::Snappy,
            Compression::Lz4 => CompressionType::Lz4,
        }
    }
}

fn parse_acks(s: &str) -> Result<i16, String> {
    match s {
        "0" => Ok(0),
        "1" => Ok(1),
        "-1" | "all" => Ok(-1),
        _ => Err(format!("acks must be 0, 1, -1 or all, not '{s}'")),
    }
}

/// One record to send.
struct Rec<'a> {
    key: Option<&'a [u8]>,
    value: &'a [u8],
}

/// Splits a stdin line into key and value.
fn split_line<'a>(line: &'a [u8], key: Option<&'a [u8]>, separator: Option<&[u8]>) -> Rec<'a> {
    if let Some(sep) = separator.filter(|s| !s.is_empty()) {
        if let Some(at) = line.windows(sep.len()).position(|w| w == sep) {
            return Rec { key: Some(&line[..at]), value: &line[at + sep.len()..] };
        }
        return Rec { key: None, value: line };
    }
    Rec { key, value: line }
}

/// A partition's open batch.
struct Open {
    builder: BatchBuilder,
    bytes: usize,
}

struct Producer {
    client: Client,
    topic: String,
    acks: i16,
    codec: CompressionType,
    timeout_ms: i32,
    batch_bytes: usize,
    max_in_flight: usize,
    leaders: Vec<i32>,
    partitioner: Partitioner,
    fixed_partition: Option<i32>,
    headers: Vec<(String, Vec<u8>)>,
    open: BTreeMap<i32, Open>,
    in_flight: VecDeque<(i32, Pending)>,
    sent_records: u64,
}

impl Producer {
    /// Adds a record to its partition's batch, sending that batch first
    /// if the record would overfill it, and after if it is full.
    async fn add(&mut self, rec: Rec<'_>) -> Result<(), CliError> {
        let partition = self.fixed_partition.unwrap_or_else(|| self.partitioner.partition(rec.key));
        let size = rec.key.map_or(0, <[u8]>::len)
            + rec.value.len()
            + self.headers.iter().map(|(k, v)| k.len() + v.len() + 8).sum::<usize>()
            + RECORD_OVERHEAD_BYTES;
        if self.open.get(&partition).is_some_and(|o| o.bytes + size > self.batch_bytes && !o.builder.is_empty()) {
            self.flush(Some(partition)).await?;
        }
        // A null-key record follows the sticky partition, which may have moved.
        let partition = self.fixed_partition.unwrap_or_else(|| self.partitioner.partition(rec.key));
        let now = TimestampMs(now_ms());
        let open = self.open.entry(partition).or_insert_with(|| Open { builder: BatchBuilder::new(0, now), bytes: 0 });
        let headers: Vec<(&str, Option<&[u8]>)> = self.headers.iter().map(|(k, v)| (k.as_str(), Some(v.as_slice()))).collect();
        open.builder.append(now, rec.key, Some(rec.value), &headers);
        open.bytes += size;
        if open.bytes >= self.batch_bytes {
            self.flush(Some(partition)).await?;
        }
        Ok(())
    }

    /// Sends the open batches of `only` (all when `None`).
    async fn flush(&mut self, only: Option<i32>) -> Result<(), CliError> {
        let partitions: Vec<i32> = match only {
            Some(p) => vec![p],
            None => self.open.keys().copied().collect(),
        };
        let mut by_leader: BTreeMap<i32, Vec<m::produce_request::PartitionProduceData>> = BTreeMap::new();
        for p in partitions {
            let Some(open) = self.open.remove(&p) else { continue };
            if open.builder.is_empty() {
                continue;
            }
            if self.fixed_partition.is_none() && p == self.partitioner.partition(None) {
                self.partitioner.next_batch();
            }
            self.sent_records += open.builder.len() as u64;
            let leader = self.leaders.get(p as usize).copied().unwrap_or(-1);
            by_leader.entry(leader).or_default().push(m::produce_request::PartitionProduceData {
                index: p,
                records: Some(bytes::Bytes::from(
                    open.builder.build_compressed(self.codec).map_err(|e| CliError::Io(e.to_string()))?,
                )),
            });
        }
        for (leader, partition_data) in by_leader {
            if leader < 0 {
                return Err(CliError::Kafka { code: 5, message: None }.about(&format!("topic '{}'", self.topic)));
            }
            let req = m::produce_request::ProduceRequest {
                transactional_id: None,
                acks: self.acks,
                timeout_ms: self.timeout_ms,
                topic_data: vec![m::produce_request::TopicProduceData {
                    name: self.topic.clone(),
                    partition_data,
                    ..Default::default()
                }],
            };
            while self.in_flight.len() >= self.max_in_flight {
                self.complete_one().await?;
            }
            let conn = self.client.node(leader).await?;
            let pending = conn.send(&req).await?;
            if self.acks != 0 {
                self.in_flight.push_back((leader, pending));
            }
        }
        Ok(())
    }

    /// Waits for the oldest request in flight and checks its answer.
    async fn complete_one(&mut self) -> Result<(), CliError> {
        let Some((leader, pending)) = self.in_flight.pop_front() else { return Ok(()) };
        let conn = self.client.node(leader).await?;
        let resp = conn.recv::<m::produce_request::ProduceRequest>(pending).await?;
        for t in &resp.responses {
            for p in &t.partition_responses {
                let message = p.error_message.clone().or_else(|| {
                    p.record_errors.first().and_then(|e| e.batch_index_error_message.clone())
                });
                check(p.error_code, message.as_deref())
                    .map_err(|e| e.about(&format!("topic '{}' partition {}", self.topic, p.index)))?;
            }
        }
        Ok(())
    }

    async fn finish(&mut self) -> Result<(), CliError> {
        self.flush(None).await?;
        while !self.in_flight.is_empty() {
            self.complete_one().await?;
        }
        Ok(())
    }
}

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

pub async fn run(args: ProduceArgs) -> Result<(), CliError> {
    let mut client = Client::connect(args.conn.client_config()).await?;
    let about = format!("topic '{}'", args.topic);
    let by_partition = super::consume::partition_leaders(&mut client, &args.topic).await?;
    let mut leaders = vec![-1; by_partition.len()];
    for (p, leader) in by_partition {
        if let Some(slot) = usize::try_from(p).ok().and_then(|i| leaders.get_mut(i)) {
            *slot = leader;
        }
    }
    if leaders.is_empty() {
        return Err(CliError::Kafka { code: 5, message: None }.about(&about));
    }
    if let Some(p) = args.partition {
        if p < 0 || p as usize >= leaders.len() {
            return Err(CliError::Kafka {
                code: 3,
                message: Some(format!("topic '{}' has {} partitions, no partition {p}", args.topic, leaders.len())),
            });
        }
    }
    let mut producer = Producer {
        client,
        topic: args.topic.clone(),
        acks: args.acks,
        codec: args.compression.codec(),
        timeout_ms: args.conn.timeout_ms.min(i32::MAX as u64) as i32,
        batch_bytes: args.batch_bytes as usize,
        max_in_flight: args.max_in_flight as usize,
        partitioner: Partitioner::new(leaders.len() as i32, std::process::id()),
        leaders,
        fixed_partition: args.partition,
        headers: args.headers.iter().map(|(k, v)| (k.clone(), v.clone().into_bytes())).collect(),
        open: BTreeMap::new(),
        in_flight: VecDeque::new(),
        sent_records: 0,
    };
    let key = args.key.as_deref().map(str::as_bytes);
    if let Some(value) = &args.value {
        producer.add(Rec { key, value: value.as_bytes() }).await?;
        return producer.finish().await;
    }

    let (tx, mut rx) = mpsc::channel::<Result<Vec<u8>, String>>(CHANNEL_CHUNKS);
    let max_line = args.max_line_bytes;
    std::thread::spawn(move || read_stdin(tx, max_line));
    let separator = args.key_separator.as_deref().map(str::as_bytes);
    let linger = Duration::from_millis(args.linger_ms);
    let mut lingering_since: Option<Instant> = None;
    loop {
        let next = if producer.open.is_empty() {
            rx.recv().await
        } else {
            let left = linger.saturating_sub(lingering_since.map_or(Duration::ZERO, |t| t.elapsed()));
            match tokio::time::timeout(left, rx.recv()).await {
                Ok(n) => n,
                Err(_) => {
                    producer.flush(None).await?;
                    lingering_since = None;
                    continue;
                }
            }
        };
        let Some(chunk) = next else { break };
        let chunk = chunk.map_err(CliError::Io)?;
        // Every chunk ends with a newline.
        let body = chunk.strip_suffix(b"\n").unwrap_or(&chunk);
        for line in body.split(|b| *b == b'\n') {
            producer.add(split_line(line, key, separator)).await?;
        }
        if !producer.open.is_empty() && lingering_since.is_none() {
            lingering_since = Some(Instant::now());
        }
    }
    producer.finish().await
}

/// Reads stdin on a thread of its own and sends chunks of whole lines
/// (each ending with a newline; a last line without one gets one).
fn read_stdin(tx: mpsc::Sender<Result<Vec<u8>, String>>, max_line_bytes: usize) {
    let mut stdin = std::io::stdin().lock();
    let mut carry: Vec<u8> = Vec::new();
    let mut buf = vec![0u8; READ_CHUNK_BYTES];
    loop {
        let n = match stdin.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => {
                let _ = tx.blocking_send(Err(format!("cannot read stdin: {e}")));
                return;
            }
        };
        let data = &buf[..n];
        match data.iter().rposition(|b| *b == b'\n') {
            Some(last) => {
                let mut chunk = std::mem::take(&mut carry);
                chunk.extend_from_slice(&data[..=last]);
                carry.extend_from_slice(&data[last + 1..]);
                if let Some(e) = long_line(&chunk, max_line_bytes) {
                    let _ = tx.blocking_send(Err(e));
                    return;
                }
                if tx.blocking_send(Ok(chunk)).is_err() {
                    return;
                }
            }
            None => carry.extend_from_slice(data),
        }
        if carry.len() > max_line_bytes {
            let _ = tx.blocking_send(Err(format!("a stdin line is longer than --max-line-bytes {max_line_bytes}")));
            return;
        }
    }
    if !carry.is_empty() {
        carry.push(b'\n');
        let _ = tx.blocking_send(Ok(carry));
    }
}

fn long_line(chunk: &[u8], max_line_bytes: usize) -> Option<String> {
    chunk
        .split(|b| *b == b'\n')
        .any(|l| l.len() > max_line_bytes)
        .then(|| format!("a stdin line is longer than --max-line-bytes {max_line_bytes}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_split_into_key_and_value() {
        let r = split_line(b"k1:v:1", None, Some(b":"));
        assert_eq!((r.key, r.value), (Some(&b"k1"[..]), &b"v:1"[..]));
        let r = split_line(b"novalue", None, Some(b"::"));
        assert_eq!((r.key, r.value), (None, &b"novalue"[..]));
        let r = split_line(b"a::b", None, Some(b"::"));
        assert_eq!((r.key, r.value), (Some(&b"a"[..]), &b"b"[..]));
        let r = split_line(b"line", Some(b"fixed"), None);
        assert_eq!((r.key, r.value), (Some(&b"fixed"[..]), &b"line"[..]));
    }

    #[test]
    fn every_codec_is_offered() {
        use clap::ValueEnum;
        let names: Vec<String> =
            Compression::value_variants().iter().map(|v| v.to_possible_value().unwrap().get_name().to_string()).collect();
        assert_eq!(names, ["none", "gzip", "snappy", "lz4"]);
        assert_eq!(Compression::Lz4.codec().id(), 3);
    }

    #[test]
    fn acks_values() {
        assert_eq!(parse_acks("all"), Ok(-1));
        assert_eq!(parse_acks("-1"), Ok(-1));
        assert_eq!(parse_acks("0"), Ok(0));
        assert!(parse_acks("2").is_err());
    }

    #[test]
    fn long_lines_are_refused() {
        assert!(long_line(b"abc\ndefgh\n", 4).is_some());
        assert!(long_line(b"abc\ndefg\n", 4).is_none());
    }
}
