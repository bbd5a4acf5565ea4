//! `klamm consume TOPIC`: fetches records and prints them, by default each
//! value on a line, or through a kcat-like `--format` template, or as JSON
//! lines. Starts at the latest offset (or the group's committed one, or
//! `--from-beginning`, `--offset`, `--timestamp`), follows new records
//! until Ctrl-C, `-n` records or, with `--exit`, the end of the log. With
//! `--group` it commits its positions (OffsetCommit as a simple consumer,
//! without joining the group) every few seconds and at exit.

use std::collections::{BTreeMap, HashMap};
use std::io::Write;
use std::time::{Duration, Instant};

use clap::Args;
use serde_json::json;

use super::client::{check, Client};
use super::{CliError, ConnOpts};
use crate::protocol::messages as m;
use crate::records::compression::decompress;
use crate::records::{BatchError, BatchIter, CompressionType, RecordIter, Validation};

/// Fetch bounds: the response, and each partition's share of it.
const FETCH_MAX_BYTES: i32 = 16 * 1024 * 1024;
const FETCH_PARTITION_MAX_BYTES: i32 = 4 * 1024 * 1024;
const FETCH_MAX_WAIT_MS: i32 = 500;
/// Largest records region a compressed batch may decompress to.
const MAX_DECOMPRESSED_BATCH_BYTES: usize = 256 * 1024 * 1024;
/// How often `--group` commits while consuming.
const COMMIT_INTERVAL: Duration = Duration::from_secs(5);
/// ListOffsets timestamps.
const LATEST: i64 = -1;
const EARLIEST: i64 = -2;
const LEADER_NOT_AVAILABLE: i16 = 5;
/// How long a command waits for a new topic's partitions to get leaders.
const LEADER_WAIT: Duration = Duration::from_secs(5);

#[derive(Clone, Debug, Args)]
pub struct ConsumeArgs {
    #[command(flatten)]
    pub conn: ConnOpts,
    pub topic: String,
    /// Starts at the earliest offset (with --group: where the group has no
    /// committed offset).
    #[arg(long, conflicts_with_all = ["offset", "timestamp"])]
    pub from_beginning: bool,
    /// Starts at offset N (negative: N records before the end).
    #[arg(long, allow_negative_numbers = true, conflicts_with = "timestamp")]
    pub offset: Option<i64>,
    /// Starts at the first record with a timestamp at or after MS (epoch milliseconds).
    #[arg(long, value_name = "MS")]
    pub timestamp: Option<i64>,
    /// Only this partition.
    #[arg(short = 'p', long)]
    pub partition: Option<i32>,
    /// Stops after N records.
    #[arg(short = 'n', long = "num")]
    pub num: Option<u64>,
    /// Stops at the end of the log (the end offsets when it started).
    #[arg(long)]
    pub exit: bool,
    /// Commits offsets for this consumer group (as a simple consumer).
    #[arg(short = 'g', long)]
    pub group: Option<String>,
    /// Output: a template (%k key, %v value, %p partition, %o offset,
    /// %t timestamp, %T topic, %h headers, %K/%S key/value length, %%;
    /// escapes \n \t \r \\), or `json` for one JSON object per record.
    /// Default `%v\n`.
    #[arg(short = 'f', long = "format", default_value = "%v\\n")]
    pub format: String,
}

/// One piece of an output template.
#[derive(Clone, Debug, PartialEq)]
pub enum Piece {
    Text(Vec<u8>),
    Key,
    Value,
    Partition,
    Offset,
    Timestamp,
    Topic,
    Headers,
    KeyLen,
    ValueLen,
}

/// How each record is printed.
#[derive(Clone, Debug, PartialEq)]
pub enum Output {
    Template(Vec<Piece>),
    Json,
}

/// A record as printed.
pub struct Shown<'a> {
    pub topic: &'a str,
    pub partition: i32,
    pub offset: i64,
    pub timestamp: i64,
    pub key: Option<&'a [u8]>,
    pub value: Option<&'a [u8]>,
    pub headers: Vec<(&'a [u8], Option<&'a [u8]>)>,
}

impl Output {
    pub fn parse(format: &str) -> Result<Output, CliError> {
        if format == "json" {
            return Ok(Output::Json);
        }
        let mut pieces = Vec::new();
        let mut text = Vec::new();
        let mut chars = format.chars();
        while let Some(c) = chars.next() {
            let piece = match c {
                '%' => match chars.next() {
                    Some('k') => Piece::Key,
                    Some('v') | Some('s') => Piece::Value,
                    Some('p') => Piece::Partition,
                    Some('o') => Piece::Offset,
                    Some('t') => Piece::Timestamp,
                    Some('T') => Piece::Topic,
                    Some('h') => Piece::Headers,
                    Some('K') => Piece::KeyLen,
                    Some('S') => Piece::ValueLen,
                    Some('%') => {
                        text.push(b'%');
                        continue;
                    }
                    other => {
                        return Err(CliError::Usage(format!(
                            "unknown format token '%{}' (known: %k %v %p %o %t %T %h %K %S %%)",
                            other.map(String::from).unwrap_or_default()
                        )))
                    }
                },
                '\\' => {
                    match chars.next() {
                        Some('n') => text.push(b'\n'),
                        Some('t') => text.push(b'\t'),
                        Some('r') => text.push(b'\r'),
                        Some('\\') => text.push(b'\\'),
                        Some(o) => {
                            text.push(b'\\');
                            let mut b = [0u8; 4];
                            text.extend_from_slice(o.encode_utf8(&mut b).as_bytes());
                        }
                        None => text.push(b'\\'),
                    }
                    continue;
                }
                c => {
                    let mut b = [0u8; 4];
                    text.extend_from_slice(c.encode_utf8(&mut b).as_bytes());
                    continue;
                }
            };
            if !text.is_empty() {
                pieces.push(Piece::Text(std::mem::take(&mut text)));
            }
            pieces.push(piece);
        }
        if !text.is_empty() {
            pieces.push(Piece::Text(text));
        }
        Ok(Output::Template(pieces))
    }

    /// Appends the record's output to `out`.
    pub fn write(&self, r: &Shown<'_>, out: &mut Vec<u8>) {
        match self {
            Output::Json => {
                let text = |b: Option<&[u8]>| b.map(|b| String::from_utf8_lossy(b).into_owned());
                let headers: serde_json::Map<String, serde_json::Value> =
                    r.headers.iter().map(|(k, v)| (String::from_utf8_lossy(k).into_owned(), json!(text(*v)))).collect();
                let v = json!({
                    "topic": r.topic, "partition": r.partition, "offset": r.offset, "timestamp": r.timestamp,
                    "key": text(r.key), "value": text(r.value), "headers": headers,
                });
                out.extend_from_slice(v.to_string().as_bytes());
                out.push(b'\n');
            }
            Output::Template(pieces) => {
                for p in pieces {
                    match p {
                        Piece::Text(t) => out.extend_from_slice(t),
                        Piece::Key => out.extend_from_slice(r.key.unwrap_or_default()),
                        Piece::Value => out.extend_from_slice(r.value.unwrap_or_default()),
                        Piece::Partition => out.extend_from_slice(r.partition.to_string().as_bytes()),
                        Piece::Offset => out.extend_from_slice(r.offset.to_string().as_bytes()),
                        Piece::Timestamp => out.extend_from_slice(r.timestamp.to_string().as_bytes()),
                        Piece::Topic => out.extend_from_slice(r.topic.as_bytes()),
                        Piece::KeyLen => out.extend_from_slice(r.key.map_or(-1, |k| k.len() as i64).to_string().as_bytes()),
                        Piece::ValueLen => out.extend_from_slice(r.value.map_or(-1, |v| v.len() as i64).to_string().as_bytes()),
                        Piece::Headers => {
                            for (i, (k, v)) in r.headers.iter().enumerate() {
                                if i > 0 {
                                    out.push(b',');
                                }
                                out.extend_from_slice(k);
                                out.push(b'=');
                                out.extend_from_slice(v.unwrap_or_default());
                            }
                        }
                    }
                }
            }
        }
    }
}

/// A partition being consumed.
struct Part {
    leader: i32,
    /// The next offset to print.
    offset: i64,
    /// With `--exit`: stop here.
    end: Option<i64>,
    /// Offset last committed for the group.
    committed: Option<i64>,
}

/// Offsets from ListOffsets at `timestamp` for `partitions` of `topic`
/// (grouped by leader). A partition without an answer offset is left out.
pub async fn list_offsets(
    client: &mut Client,
    topic: &str,
    partitions: &[(i32, i32)],
    timestamp: i64,
) -> Result<HashMap<i32, i64>, CliError> {
    let mut by_leader: BTreeMap<i32, Vec<i32>> = BTreeMap::new();
    for (p, leader) in partitions {
        by_leader.entry(*leader).or_default().push(*p);
    }
    let mut out = HashMap::new();
    for (leader, ps) in by_leader {
        let req = m::list_offsets_request::ListOffsetsRequest {
            replica_id: -1,
            isolation_level: 0,
            topics: vec![m::list_offsets_request::ListOffsetsTopic {
                name: topic.to_string(),
                partitions: ps
                    .iter()
                    .map(|p| m::list_offsets_request::ListOffsetsPartition {
                        partition_index: *p,
                        current_leader_epoch: -1,
                        timestamp,
                        max_num_offsets: 1,
                    })
                    .collect(),
            }],
            timeout_ms: 30_000,
        };
        let conn = client.node(leader).await?;
        let version = conn.version_of::<m::list_offsets_request::ListOffsetsRequest>()?;
        let resp = conn.call(&req).await?;
        for t in &resp.topics {
            for p in &t.partitions {
                check(p.error_code, None).map_err(|e| e.about(&format!("topic '{topic}' partition {}", p.partition_index)))?;
                let offset = if version == 0 { p.old_style_offsets.first().copied().unwrap_or(-1) } else { p.offset };
                out.insert(p.partition_index, offset);
            }
        }
    }
    Ok(out)
}

/// Committed offsets of `group` for `topic` (OffsetFetch); -1 = none.
pub async fn committed_offsets(client: &mut Client, group: &str, topic: Option<&str>) -> Result<Vec<(String, i32, i64)>, CliError> {
    let req = m::offset_fetch_request::OffsetFetchRequest {
        group_id: group.to_string(),
        topics: topic.map(|t| vec![m::offset_fetch_request::OffsetFetchRequestTopic { name: t.to_string(), partition_indexes: vec![] }]),
        ..Default::default()
    };
    let conn = client.coordinator(group).await?;
    let mut req = req;
    if topic.is_some() && conn.version_of::<m::offset_fetch_request::OffsetFetchRequest>()? < 2 {
        req.topics = None;
    }
    let resp = conn.call(&req).await?;
    check(resp.error_code, None).map_err(|e| e.about(&format!("group '{group}'")))?;
    let mut out = Vec::new();
    for t in resp.topics {
        for p in t.partitions {
            check(p.error_code, None).map_err(|e| e.about(&format!("group '{group}' topic '{}'", t.name)))?;
            out.push((t.name.clone(), p.partition_index, p.committed_offset));
        }
    }
    Ok(out)
}

/// Commits `offsets` of `topic` for `group` as a simple consumer
/// (generation -1, no member id): allowed while the group has no members.
pub async fn commit_offsets(client: &mut Client, group: &str, topic: &str, offsets: &[(i32, i64)]) -> Result<(), CliError> {
    if offsets.is_empty() {
        return Ok(());
    }
    let req = m::offset_commit_request::OffsetCommitRequest {
        group_id: group.to_string(),
        generation_id_or_member_epoch: -1,
        member_id: String::new(),
        group_instance_id: None,
        retention_time_ms: -1,
        topics: vec![m::offset_commit_request::OffsetCommitRequestTopic {
            name: topic.to_string(),
            topic_id: Default::default(),
            partitions: offsets
                .iter()
                .map(|(p, o)| m::offset_commit_request::OffsetCommitRequestPartition {
                    partition_index: *p,
                    committed_offset: *o,
                    committed_leader_epoch: -1,
                    commit_timestamp: -1,
                    committed_metadata: Some(String::new()),
                })
                .collect(),
        }],
    };
    let conn = client.coordinator(group).await?;
    let resp = conn.call(&req).await?;
    for t in &resp.topics {
        for p in &t.partitions {
            check(p.error_code, None).map_err(|e| e.about(&format!("group '{group}' topic '{topic}' partition {}", p.partition_index)))?;
        }
    }
    Ok(())
}

/// The topic's partitions and their leaders, from Metadata, sorted by
/// partition. A topic just created may have no leaders for a moment:
/// Metadata is asked again for up to `LEADER_WAIT`.
pub async fn partition_leaders(client: &mut Client, topic: &str) -> Result<Vec<(i32, i32)>, CliError> {
    let about = format!("topic '{topic}'");
    let deadline = Instant::now() + LEADER_WAIT;
    loop {
        let md = client.metadata(Some(&[topic.to_string()])).await?;
        let Some(t) = md.topics.first() else {
            return Err(CliError::Kafka { code: 3, message: None }.about(&about));
        };
        let leaderless = t.error_code == LEADER_NOT_AVAILABLE
            || (t.error_code == 0 && (t.partitions.is_empty() || t.partitions.iter().any(|p| p.leader_id < 0)));
        if leaderless && Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(100)).await;
            continue;
        }
        check(t.error_code, None).map_err(|e| e.about(&about))?;
        let mut out: Vec<(i32, i32)> = t.partitions.iter().map(|p| (p.partition_index, p.leader_id)).collect();
        out.sort();
        return Ok(out);
    }
}

struct Consumer {
    client: Client,
    topic: String,
    output: Output,
    parts: BTreeMap<i32, Part>,
    group: Option<String>,
    left: Option<u64>,
    from_beginning: bool,
    stdout: std::io::BufWriter<std::io::Stdout>,
    buf: Vec<u8>,
    /// Stdout was closed (`| head`): stop quietly.
    closed: bool,
}

impl Consumer {
    fn done(&self) -> bool {
        self.closed
            || self.left == Some(0)
            || self.parts.values().all(|p| p.end.is_some_and(|e| p.offset >= e))
    }

    /// One fetch from each leader of the partitions still to read.
    async fn fetch_once(&mut self) -> Result<(), CliError> {
        let mut by_leader: BTreeMap<i32, Vec<(i32, i64)>> = BTreeMap::new();
        for (p, part) in &self.parts {
            if part.end.is_some_and(|e| part.offset >= e) {
                continue;
            }
            by_leader.entry(part.leader).or_default().push((*p, part.offset));
        }
        let wait_ms = if by_leader.len() > 1 { 100 } else { FETCH_MAX_WAIT_MS };
        let mut refresh = false;
        for (leader, ps) in by_leader {
            if leader < 0 {
                refresh = true;
                continue;
            }
            let req = m::fetch_request::FetchRequest {
                replica_id: -1,
                max_wait_ms: wait_ms,
                min_bytes: 1,
                max_bytes: FETCH_MAX_BYTES,
                isolation_level: 0,
                session_id: 0,
                session_epoch: -1,
                topics: vec![m::fetch_request::FetchTopic {
                    topic: self.topic.clone(),
                    partitions: ps
                        .iter()
                        .map(|(p, o)| m::fetch_request::FetchPartition {
                            partition: *p,
                            current_leader_epoch: -1,
                            fetch_offset: *o,
                            last_fetched_epoch: -1,
                            log_start_offset: -1,
                            partition_max_bytes: FETCH_PARTITION_MAX_BYTES,
                            ..Default::default()
                        })
                        .collect(),
                    ..Default::default()
                }],
                ..Default::default()
            };
            let resp = self.client.node(leader).await?.call(&req).await?;
            check(resp.error_code, None)?;
            for t in &resp.responses {
                for pd in &t.partitions {
                    match pd.error_code {
                        0 => {
                            if let Some(records) = &pd.records {
                                self.show(pd.partition_index, records)?;
                            }
                        }
                        1 => {
                            // OFFSET_OUT_OF_RANGE: reset like auto.offset.reset.
                            let at = if self.from_beginning { EARLIEST } else { LATEST };
                            let offs = list_offsets(&mut self.client, &self.topic.clone(), &[(pd.partition_index, leader)], at).await?;
                            if let (Some(o), Some(part)) = (offs.get(&pd.partition_index), self.parts.get_mut(&pd.partition_index)) {
                                eprintln!("klamm consume: partition {} offset {} out of range, moving to {o}", pd.partition_index, part.offset);
                                part.offset = *o;
                            }
                        }
                        5 | 6 | 74 | 75 => refresh = true,
                        code => {
                            return Err(CliError::Kafka { code, message: None }
                                .about(&format!("topic '{}' partition {}", self.topic, pd.partition_index)))
                        }
                    }
                    if self.left == Some(0) || self.closed {
                        return Ok(());
                    }
                }
            }
        }
        if refresh {
            tokio::time::sleep(Duration::from_millis(200)).await;
            for (p, leader) in partition_leaders(&mut self.client, &self.topic.clone()).await? {
                if let Some(part) = self.parts.get_mut(&p) {
                    part.leader = leader;
                }
            }
        }
        Ok(())
    }

    /// Prints the records of a fetched `records` field of `partition`.
    fn show(&mut self, partition: i32, records: &[u8]) -> Result<(), CliError> {
        let Some(part) = self.parts.get_mut(&partition) else { return Ok(()) };
        self.buf.clear();
        for batch in BatchIter::new(records, Validation::Structure) {
            let batch = match batch {
                Ok(b) => b,
                // A fetch may end with a partial batch.
                Err(BatchError::Truncated { .. }) => break,
                Err(e) => return Err(CliError::Io(format!("partition {partition}: bad record batch: {e}"))),
            };
            let next = batch.next_offset().0;
            if next <= part.offset {
                continue;
            }
            if batch.is_control() {
                part.offset = next;
                continue;
            }
            let decompressed;
            let records = match batch.compression() {
                Some(CompressionType::None) => RecordIter::new(&batch),
                Some(codec) => {
                    decompressed = decompress(codec, batch.records_bytes(), MAX_DECOMPRESSED_BATCH_BYTES).map_err(|e| {
                        CliError::Io(format!("partition {partition} offset {}: {e}", batch.base_offset().0))
                    })?;
                    RecordIter::over(&decompressed, batch.records_count())
                }
                None => {
                    return Err(CliError::Io(format!(
                        "partition {partition} offset {}: unknown compression codec {}",
                        batch.base_offset().0,
                        batch.compression_id()
                    )))
                }
            };
            for record in records {
                let record = record.map_err(|e| CliError::Io(format!("partition {partition}: bad record: {e}")))?;
                let offset = record.offset(&batch).0;
                if offset < part.offset {
                    continue;
                }
                if part.end.is_some_and(|e| offset >= e) || self.left == Some(0) {
                    break;
                }
                let shown = Shown {
                    topic: &self.topic,
                    partition,
                    offset,
                    timestamp: record.timestamp(&batch).0,
                    key: record.key,
                    value: record.value,
                    headers: record.headers().collect(),
                };
                self.output.write(&shown, &mut self.buf);
                part.offset = offset + 1;
                if let Some(n) = self.left.as_mut() {
                    *n -= 1;
                }
            }
            if self.left == Some(0) || part.end.is_some_and(|e| part.offset >= e) {
                break;
            }
            part.offset = part.offset.max(next);
        }
        if self.stdout.write_all(&self.buf).and_then(|()| self.stdout.flush()).is_err() {
            self.closed = true;
        }
        Ok(())
    }

    async fn commit(&mut self) -> Result<(), CliError> {
        let Some(group) = self.group.clone() else { return Ok(()) };
        let changed: Vec<(i32, i64)> =
            self.parts.iter().filter(|(_, p)| p.committed != Some(p.offset)).map(|(i, p)| (*i, p.offset)).collect();
        commit_offsets(&mut self.client, &group, &self.topic.clone(), &changed).await?;
        for (i, o) in changed {
            if let Some(p) = self.parts.get_mut(&i) {
                p.committed = Some(o);
            }
        }
        Ok(())
    }
}

pub async fn run(args: ConsumeArgs) -> Result<(), CliError> {
    let output = Output::parse(&args.format)?;
    let mut client = Client::connect(args.conn.client_config()).await?;
    let mut leaders = partition_leaders(&mut client, &args.topic).await?;
    if let Some(p) = args.partition {
        leaders.retain(|(i, _)| *i == p);
        if leaders.is_empty() {
            return Err(CliError::Kafka { code: 3, message: Some(format!("topic '{}' has no partition {p}", args.topic)) });
        }
    }
    let ends = if args.exit || args.offset.is_some_and(|o| o < 0) || args.timestamp.is_some() || args.group.is_some() || !args.from_beginning {
        list_offsets(&mut client, &args.topic, &leaders, LATEST).await?
    } else {
        HashMap::new()
    };
    let mut starts: HashMap<i32, i64> = HashMap::new();
    let mut committed: HashMap<i32, i64> = HashMap::new();
    if let Some(group) = &args.group {
        for (_, p, o) in committed_offsets(&mut client, group, Some(&args.topic)).await? {
            if o >= 0 {
                committed.insert(p, o);
            }
        }
    }
    let earliest = if args.from_beginning || args.offset.is_some() {
        list_offsets(&mut client, &args.topic, &leaders, EARLIEST).await?
    } else {
        HashMap::new()
    };
    let at_time = match args.timestamp {
        Some(ts) => list_offsets(&mut client, &args.topic, &leaders, ts).await?,
        None => HashMap::new(),
    };
    for (p, _) in &leaders {
        let end = ends.get(p).copied().unwrap_or(0);
        let start = if let Some(o) = args.offset {
            let lo = earliest.get(p).copied().unwrap_or(0);
            if o < 0 { (end + o).max(lo) } else { o }
        } else if args.timestamp.is_some() {
            // No record at or after the time: the end.
            at_time.get(p).copied().filter(|o| *o >= 0).unwrap_or(end)
        } else if let Some(c) = committed.get(p) {
            *c
        } else if args.from_beginning {
            earliest.get(p).copied().unwrap_or(0)
        } else {
            end
        };
        starts.insert(*p, start);
    }
    let parts = leaders
        .iter()
        .map(|(p, leader)| {
            (
                *p,
                Part {
                    leader: *leader,
                    offset: starts.get(p).copied().unwrap_or(0),
                    end: args.exit.then(|| ends.get(p).copied().unwrap_or(0)),
                    committed: committed.get(p).copied(),
                },
            )
        })
        .collect();
    let mut consumer = Consumer {
        client,
        topic: args.topic.clone(),
        output,
        parts,
        group: args.group.clone(),
        left: args.num,
        from_beginning: args.from_beginning,
        stdout: std::io::BufWriter::with_capacity(256 * 1024, std::io::stdout()),
        buf: Vec::new(),
        closed: false,
    };
    let mut last_commit = Instant::now();
    let interrupt = tokio::signal::ctrl_c();
    tokio::pin!(interrupt);
    let mut interrupted = false;
    while !consumer.done() {
        tokio::select! {
            r = consumer.fetch_once() => r?,
            _ = &mut interrupt => {
                interrupted = true;
                break;
            }
        }
        if consumer.group.is_some() && last_commit.elapsed() >= COMMIT_INTERVAL {
            consumer.commit().await?;
            last_commit = Instant::now();
        }
    }
    let _ = consumer.stdout.flush();
    if interrupted && consumer.group.is_some() {
        // The fetch was cut off mid-response: commit on fresh connections.
        consumer.client = Client::connect(args.conn.client_config()).await?;
    }
    consumer.commit().await
}

#[cfg(test)]
mod tests {
    use super::*;

    fn shown<'a>() -> Shown<'a> {
        Shown {
            topic: "t",
            partition: 2,
            offset: 41,
            timestamp: 1_700_000_000_000,
            key: Some(b"k"),
            value: Some(b"v a l"),
            headers: vec![(b"h1", Some(b"x")), (b"h2", None)],
        }
    }

    fn render(format: &str) -> String {
        let mut out = Vec::new();
        Output::parse(format).unwrap().write(&shown(), &mut out);
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn templates_like_kcat() {
        assert_eq!(render("%v\\n"), "v a l\n");
        assert_eq!(render("%k=%s"), "k=v a l");
        assert_eq!(render("%T/%p@%o %t\\t%h"), "t/2@41 1700000000000\th1=x,h2=");
        assert_eq!(render("%K %S 100%%"), "1 5 100%");
        assert_eq!(render("a\\\\b\\x"), "a\\b\\x");
        assert!(Output::parse("%z").is_err());
        assert!(Output::parse("50%").is_err());
    }

    #[test]
    fn null_key_prints_empty_and_json_lines() {
        let mut s = shown();
        s.key = None;
        let mut out = Vec::new();
        Output::parse("[%k]%K").unwrap().write(&s, &mut out);
        assert_eq!(out, b"[]-1");
        let mut out = Vec::new();
        Output::parse("json").unwrap().write(&s, &mut out);
        let v: serde_json::Value = serde_json::from_slice(&out).unwrap();
        assert_eq!(v["key"], serde_json::Value::Null);
        assert_eq!(v["value"], "v a l");
        assert_eq!(v["offset"], 41);
        assert_eq!(v["headers"]["h1"], "x");
    }
}
