//! DescribeLogDirs (key 35): the log directories and the partitions in
//! them (what `kafka-log-dirs --describe` and `Admin.describeLogDirs`
//! read), as Kafka's `ReplicaManager.describeLogDirs`. klamm has one log
//! directory (`log.dirs`/`log.dir`), so there is one result: its absolute
//! path, each partition's size (the logical bytes of its segments, index
//! files not counted), offset lag 0 (a single node's log end is its high
//! watermark), never a future log, and (v4) the total and usable bytes of
//! the volume it is on. `topics = null` asks for every partition;
//! partitions that do not exist are left out, as Kafka does, and so are
//! topics with none left. A volume whose size cannot be read makes the
//! directory's result an error (UNKNOWN_SERVER_ERROR, Kafka's answer to an
//! I/O exception there) with no topics.
//!
//! Versions 1-5, as Kafka 4.4 (v0 was removed in Kafka 4.0; v5 adds
//! `is_cordoned`, KIP-1066: klamm never cordons its one directory, so it
//! is false).

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use super::{ApiSpec, RequestContext};
use crate::protocol::messages::describe_log_dirs_request::DescribeLogDirsRequest;
use crate::protocol::messages::describe_log_dirs_response::{
    DescribeLogDirsPartition, DescribeLogDirsResponse, DescribeLogDirsResult, DescribeLogDirsTopic,
};
use crate::protocol::ErrorCode;
use crate::replica::Partition;
use crate::types::TopicPartition;

pub const SPEC: ApiSpec = ApiSpec { api_key: 35, name: "DescribeLogDirs", min_version: 1, max_version: 5 };

pub async fn handle(ctx: &RequestContext<'_>, req: DescribeLogDirsRequest) -> DescribeLogDirsResponse {
    let wanted: Option<HashSet<TopicPartition>> = req.topics.map(|topics| {
        let mut set = HashSet::new();
        for t in topics {
            for p in t.partitions {
                set.insert(TopicPartition::new(t.topic.clone(), p));
            }
        }
        set
    });
    let partitions = ctx.broker.replicas.all();
    let dir = ctx.broker.config().log_dir.clone();
    // statvfs and the partition locks: off the async workers.
    let dir2 = dir.clone();
    let result = tokio::task::spawn_blocking(move || describe_dir(&dir2, &partitions, wanted.as_ref()))
        .await
        .unwrap_or_else(|_| DescribeLogDirsResult {
            error_code: ErrorCode::UnknownServerError.code(),
            log_dir: absolute(&dir),
            ..Default::default()
        });
    DescribeLogDirsResponse { throttle_time_ms: 0, error_code: 0, results: vec![result] }
}

/// The result for the log directory `dir`, holding `partitions` (sorted),
/// of which those in `wanted` (all if `None`) are described.
fn describe_dir(
    dir: &Path,
    partitions: &[Arc<Partition>],
    wanted: Option<&HashSet<TopicPartition>>,
) -> DescribeLogDirsResult {
    let log_dir = absolute(dir);
    let space = match crate::platform::volume_space(dir) {
        Ok(space) => space,
        Err(e) => {
            tracing::error!(dir = %log_dir, error = %e, "could not read the log directory's volume size");
            return DescribeLogDirsResult {
                error_code: ErrorCode::UnknownServerError.code(),
                log_dir,
                ..Default::default()
            };
        }
    };
    let sizes = partitions.iter().filter(|p| wanted.is_none_or(|w| w.contains(&p.tp))).map(|p| {
        let size = p.log.lock().unwrap_or_else(|e| e.into_inner()).size_bytes();
        (&p.tp, size)
    });
    DescribeLogDirsResult {
        error_code: 0,
        log_dir,
        topics: by_topic(sizes),
        total_bytes: saturating_i64(space.total_bytes),
        usable_bytes: saturating_i64(space.usable_bytes),
        is_cordoned: false,
    }
}

/// Groups partition sizes, sorted by topic and partition, by topic.
fn by_topic<'a>(sizes: impl Iterator<Item = (&'a TopicPartition, u64)>) -> Vec<DescribeLogDirsTopic> {
    let mut topics: Vec<DescribeLogDirsTopic> = Vec::new();
    for (tp, size) in sizes {
        let partition = DescribeLogDirsPartition {
            partition_index: tp.partition,
            partition_size: saturating_i64(size),
            offset_lag: 0,
            is_future_key: false,
        };
        match topics.last_mut() {
            Some(t) if t.name == tp.topic => t.partitions.push(partition),
            _ => topics.push(DescribeLogDirsTopic { name: tp.topic.clone(), partitions: vec![partition] }),
        }
    }
    topics
}

/// Kafka reports a size beyond `i64` (a Java `long` overflow) as `i64::MAX`.
fn saturating_i64(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}

/// The directory as Java's `Path.toAbsolutePath` prints it: against the
/// working directory, symbolic links kept, no trailing or doubled `/`
/// (a `.` component is dropped too, where Java keeps it).
fn absolute(dir: &Path) -> String {
    let abs = std::path::absolute(dir).unwrap_or_else(|_| dir.to_path_buf());
    abs.components().collect::<PathBuf>().display().to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn v5_adds_is_cordoned_after_the_volume_sizes() {
        use crate::protocol::Writer;
        let resp = DescribeLogDirsResponse {
            results: vec![DescribeLogDirsResult { log_dir: "/d".into(), is_cordoned: true, ..Default::default() }],
            ..Default::default()
        };
        let encode = |v| {
            let mut w = Writer::new();
            resp.encode(&mut w, v);
            w.finish_contiguous()
        };
        let (v4, v5) = (encode(4), encode(5));
        assert_eq!(v5.len(), v4.len() + 1);
        // ... total_bytes, usable_bytes (-1, -1), is_cordoned, result tags, body tags.
        assert_eq!(&v5[v5.len() - 11..], &[0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 1, 0, 0][..]);
        assert_eq!(&v4[..v4.len() - 2], &v5[..v4.len() - 2]);
    }

    #[test]
    fn partitions_are_grouped_by_topic_in_order() {
        let tps = [TopicPartition::new("a", 0), TopicPartition::new("a", 2), TopicPartition::new("b", 1)];
        let topics = by_topic(tps.iter().zip([10u64, 0, u64::MAX]));
        assert_eq!(topics.len(), 2);
        assert_eq!(topics[0].name, "a");
        let a: Vec<(i32, i64)> = topics[0].partitions.iter().map(|p| (p.partition_index, p.partition_size)).collect();
        assert_eq!(a, [(0, 10), (2, 0)]);
        assert_eq!(topics[1].name, "b");
        assert_eq!(topics[1].partitions[0].partition_size, i64::MAX);
        assert!(topics.iter().flat_map(|t| &t.partitions).all(|p| p.offset_lag == 0 && !p.is_future_key));
        assert!(by_topic(std::iter::empty()).is_empty());
    }

    #[test]
    fn the_log_dir_is_absolute_and_normalised() {
        assert_eq!(absolute(Path::new("/data/klamm/")), "/data/klamm");
        assert_eq!(absolute(Path::new("/data//klamm/x")), "/data/klamm/x");
        let rel = absolute(Path::new("logs"));
        assert!(Path::new(&rel).is_absolute() && rel.ends_with("/logs"), "{rel}");
    }

    #[test]
    fn a_missing_directory_is_an_error_without_topics() {
        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("gone");
        let r = describe_dir(&missing, &[], None);
        assert_eq!(r.error_code, ErrorCode::UnknownServerError.code());
        assert_eq!(r.log_dir, missing.display().to_string());
        assert!(r.topics.is_empty());
        assert_eq!((r.total_bytes, r.usable_bytes), (-1, -1));

        let r = describe_dir(dir.path(), &[], None);
        assert_eq!(r.error_code, 0);
        assert!(r.total_bytes > 0 && r.usable_bytes >= 0 && r.usable_bytes <= r.total_bytes);
    }
}
