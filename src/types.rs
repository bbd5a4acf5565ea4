//! Distinct types for distinct numbers: offsets, file positions and
//! timestamps never mix by accident.

use std::fmt;

/// A logical offset in a partition log (Kafka's `long offset`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Offset(pub i64);

impl Offset {
    pub const ZERO: Offset = Offset(0);
    pub fn get(self) -> i64 {
        self.0
    }
    pub fn next(self) -> Offset {
        Offset(self.0 + 1)
    }
}

impl fmt::Display for Offset {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

/// A byte position inside one segment's `.log` file. Segments are capped
/// below 2 GiB (`segment.bytes` is an `int` in Kafka), so `u32` suffices.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct FilePosition(pub u32);

impl FilePosition {
    pub fn get(self) -> u32 {
        self.0
    }
    pub fn as_usize(self) -> usize {
        self.0 as usize
    }
}

/// Milliseconds since the Unix epoch, as Kafka timestamps are.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct TimestampMs(pub i64);

impl TimestampMs {
    /// Kafka's "no timestamp" value.
    pub const NONE: TimestampMs = TimestampMs(-1);

    pub fn now() -> TimestampMs {
        let d = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default();
        TimestampMs(d.as_millis() as i64)
    }
}

/// Apache Kafka's own topics: its KRaft metadata log and the state of its
/// group, transaction and share-group coordinators. klamm keeps that state
/// elsewhere, never creates topics with these names and never opens their
/// partition directories (an Apache Kafka broker may have left them).
pub const KAFKA_INTERNAL_TOPICS: [&str; 4] = [
    "__cluster_metadata",
    "__consumer_offsets",
    "__transaction_state",
    "__share_group_state",
];

/// Whether `topic` is one of [`KAFKA_INTERNAL_TOPICS`].
pub fn is_kafka_internal_topic(topic: &str) -> bool {
    KAFKA_INTERNAL_TOPICS.contains(&topic)
}

/// A topic name and partition index.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct TopicPartition {
    pub topic: String,
    pub partition: i32,
}

impl TopicPartition {
    pub fn new(topic: impl Into<String>, partition: i32) -> Self {
        TopicPartition { topic: topic.into(), partition }
    }
}

impl fmt::Display for TopicPartition {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}-{}", self.topic, self.partition)
    }
}
