//! Tests of the whole adoption on a hand-built Apache Kafka data directory:
//! what is adopted, that it happens once, that the broker then serves it,
//! and that none of Kafka's files change.

use std::collections::BTreeMap;
use std::path::Path;

use super::batches::tests::{batch, compressed, KeyValue};
use super::group_offsets::tests::{group_key, group_value, offset_key, offset_value};
use super::kraft::tests::{config_record, partition_change, partition_record, remove_topic, topic_record};
use super::*;
use crate::records::BatchBuilder;
use crate::types::{Offset, TopicPartition};

const CLUSTER: &str = "MkU3OEVBNTcwNTJENDM2Qk";
const ORDERS: Uuid = Uuid([0x11; 16]);
const GONE: Uuid = Uuid([0x22; 16]);
const OFFSETS: Uuid = Uuid([0x33; 16]);

fn values(base: i64, values: &[Vec<u8>]) -> Vec<u8> {
    let records: Vec<KeyValue<'_>> = values.iter().map(|v| (None, Some(&v[..]))).collect();
    batch(base, &records)
}

fn write(path: &Path, bytes: &[u8]) {
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, bytes).unwrap();
}

fn partition_metadata(id: Uuid) -> String {
    format!("version: 0\ntopic_id: {}\n", id.to_base64())
}

/// A directory as Kafka 4 leaves it after creating `orders` (3
/// partitions, retention.ms), creating and deleting `gone`, one clean
/// restart, and group `g1` committing offsets.
fn kafka_dir(root: &Path) {
    write(&root.join("meta.properties"), format!("#\n#Mon Jan 01 00:00:00 UTC 2024\nnode.id=1\ndirectory.id=J8Mbm3mYQxGSb4nM-G0xIw\nversion=1\ncluster.id={CLUSTER}\n").as_bytes());
    write(&root.join("bootstrap.checkpoint"), b"kafka bootstrap");
    write(&root.join("replication-offset-checkpoint"), b"0\n0\n");
    let md = root.join(METADATA_DIR);
    let mut log = values(0, &[
        topic_record("__consumer_offsets", OFFSETS),
        partition_record(OFFSETS, 0, 0, 2),
        topic_record("orders", ORDERS),
        config_record(2, "orders", "retention.ms", Some("123456789")),
        config_record(2, "orders", "no.such.config", Some("1")),
        partition_record(ORDERS, 0, 0, 2),
        partition_record(ORDERS, 1, 0, 2),
        partition_record(ORDERS, 2, 0, 2),
        topic_record("gone", GONE),
        partition_record(GONE, 0, 0, 2),
    ]);
    log.extend(values(10, &[
        remove_topic(GONE),
        // Clean shutdown (no leader), restart (leader 1) of every partition.
        partition_change(ORDERS, 0, Some(-1)),
        partition_change(ORDERS, 1, Some(-1)),
        partition_change(ORDERS, 2, Some(-1)),
        partition_change(ORDERS, 0, Some(1)),
        partition_change(ORDERS, 1, Some(1)),
        partition_change(ORDERS, 2, Some(1)),
        config_record(4, "1", "log.cleaner.threads", Some("2")),
    ]));
    write(&md.join("00000000000000000000.log"), &log);
    write(&md.join("00000000000000000000.index"), &[0u8; 1024]);
    write(&md.join("00000000000000000000-0000000000.checkpoint"), &super::batches::tests::control_batch(0, -1, 3));
    write(&md.join("quorum-state"), b"{\"leaderId\":1}");
    write(&md.join("partition.metadata"), b"version: 0\ntopic_id: AAAAAAAAAAAAAAAAAAAAAQ\n");

    let co = root.join("__consumer_offsets-0");
    let (g, k0, k1, k7, kg) = (group_key("g1"), offset_key("g1", "orders", 0), offset_key("g1", "orders", 1), offset_key("g1", "orders", 7), offset_key("g1", "gone", 0));
    let mut offsets = batch(0, &[
        (Some(&g), Some(&group_value(3, "consumer", 2, 0))),
        (Some(&k0), Some(&offset_value(3, 2, 2, "m"))),
        (Some(&k1), Some(&offset_value(3, 1, 2, ""))),
        (Some(&k1), None),
        (Some(&k7), Some(&offset_value(3, 9, 0, ""))),
        (Some(&kg), Some(&offset_value(3, 5, 0, ""))),
    ]);
    offsets.extend([0u8; 64]);
    write(&co.join("00000000000000000000.log"), &offsets);
    write(&co.join("00000000000000000006.snapshot"), &[0, 1, 0, 0, 0, 0, 0, 0, 0, 0]);
    write(&co.join("leader-epoch-checkpoint"), b"0\n1\n0 0\n");
    write(&co.join("partition.metadata"), partition_metadata(OFFSETS).as_bytes());
    write(&root.join("__transaction_state-0/00000000000000000000.log"), b"");

    // orders-0 holds 3 records of epoch 0; orders-1 none; orders-2 no dir.
    let o0 = root.join("orders-0");
    let mut b = BatchBuilder::new(0, TimestampMs(1_000));
    b.partition_leader_epoch(0);
    for i in 0..3u8 {
        b.append(TimestampMs(1_000), Some(&[i]), Some(b"v"), &[]);
    }
    write(&o0.join("00000000000000000000.log"), &b.build());
    write(&o0.join("partition.metadata"), partition_metadata(ORDERS).as_bytes());
    write(&o0.join("leader-epoch-checkpoint"), b"0\n1\n0 0\n");
    write(&o0.join("00000000000000000003.snapshot"), &[0, 1, 0xaa, 0xbb, 0xcc, 0xdd, 0, 0, 0, 0]);
    let o1 = root.join("orders-1");
    write(&o1.join("00000000000000000000.log"), b"");
    write(&o1.join("partition.metadata"), partition_metadata(ORDERS).as_bytes());
}

/// Every file below `root` whose path contains one of `parts`, with its bytes.
fn files(root: &Path, parts: &[&str]) -> BTreeMap<String, Vec<u8>> {
    let mut out = BTreeMap::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).unwrap().flatten() {
            let path = entry.path();
            if path.is_dir() {
                stack.push(path);
            } else {
                let rel = path.strip_prefix(root).unwrap().to_string_lossy().into_owned();
                if parts.iter().any(|p| rel.contains(p)) {
                    out.insert(rel, std::fs::read(&path).unwrap());
                }
            }
        }
    }
    out
}

const KAFKA_FILES: [&str; 9] = [
    "__cluster_metadata-0",
    "__consumer_offsets-0",
    "__transaction_state-0",
    "bootstrap.checkpoint",
    "replication-offset-checkpoint",
    "meta.properties",
    "orders-0/00000000000000000000.log",
    "leader-epoch-checkpoint",
    ".snapshot",
];

#[test]
fn adopts_topics_and_offsets_once() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    kafka_dir(root);
    let before = files(root, &KAFKA_FILES);
    assert!(is_unadopted_kafka_dir(root).unwrap());

    let adoption = adopt_if_kafka_dir(root, 1, Some(CLUSTER)).unwrap().unwrap();
    assert_eq!(
        adoption,
        Adoption { cluster_id: CLUSTER.into(), topics: 1, partitions: 3, committed_offsets: 1, groups: 1 }
    );
    assert!(!is_unadopted_kafka_dir(root).unwrap());
    assert_eq!(adopt_if_kafka_dir(root, 1, None).unwrap(), None, "only once");
    let marker = std::fs::read_to_string(root.join(".klamm").join(ADOPTED_MARKER)).unwrap();
    assert!(marker.contains(&format!("cluster.id={CLUSTER}")), "{marker}");

    let c = crate::controller::Controller::open(root, 1, None, 1, 1).unwrap();
    assert_eq!(c.cluster_id(), CLUSTER);
    let image = c.image();
    assert_eq!(image.topics.len(), 1);
    let orders = image.topic("orders").unwrap();
    assert_eq!((orders.id, orders.partitions, orders.leader_epoch), (ORDERS, 3, 2));
    assert_eq!(orders.configs, [("retention.ms".to_string(), "123456789".to_string())].into());

    let store = OffsetsStore::open(&root.join(".klamm/groups")).unwrap();
    let committed = store.committed_offset("g1", "orders", 0).unwrap();
    assert_eq!((committed.offset, committed.leader_epoch, committed.metadata.as_str()), (Offset(2), 2, "m"));
    assert_eq!(store.offset_count(), 1);
    let meta = store.group("g1").unwrap().meta.unwrap();
    assert_eq!((meta.protocol_type.as_deref(), meta.generation_id), (Some("consumer"), 2));
    assert_eq!(meta.empty_since, Some(TimestampMs(1_700_000_000_123)));
    store.close_blocking();
    assert_eq!(files(root, &KAFKA_FILES), before);
}

#[tokio::test(flavor = "multi_thread")]
async fn the_broker_serves_adopted_data_and_leaves_kafkas_files_alone() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().to_path_buf();
    kafka_dir(&root);
    let before = files(&root, &KAFKA_FILES);
    let settings = crate::broker::BrokerSettings::new("127.0.0.1:0".parse().unwrap(), root.clone());
    for round in 0..2 {
        let running = crate::broker::start(settings.clone()).await.unwrap();
        let broker = running.broker.clone();
        assert_eq!(broker.controller.image().topics.len(), 1, "round {round}");
        let p0 = broker.replicas.get(&TopicPartition::new("orders", 0)).unwrap();
        {
            let log = p0.log.lock().unwrap();
            assert_eq!((log.log_start_offset(), log.log_end_offset(), log.leader_epoch()), (Offset(0), Offset(3), 2));
            // Kafka's epoch history answers for the consumer's epoch 0.
            assert_eq!(log.end_offset_for_epoch(0), Some((0, Offset(3))));
            let read = log.read(Offset(0), 1 << 20, None).unwrap();
            assert_eq!(&read.records[..], &before["orders-0/00000000000000000000.log"][..]);
        }
        assert!(broker.replicas.get(&TopicPartition::new("orders", 2)).is_some());
        assert!(broker.replicas.get(&TopicPartition::new("__consumer_offsets", 0)).is_none());
        let committed = broker.groups.store().committed_offset("g1", "orders", 0).unwrap();
        assert_eq!(committed.offset, Offset(2));
        running.shutdown().await;
    }
    assert_eq!(files(&root, &KAFKA_FILES), before);
    // Kafka's producer snapshot is still the only one named like Kafka's.
    assert!(root.join("orders-0/00000000000000000003.snapshot").exists());
    assert!(root.join("orders-0/00000000000000000003.klamm-snapshot").exists());
}

#[test]
fn refusals_write_nothing() {
    // Another node id.
    let dir = tempfile::tempdir().unwrap();
    kafka_dir(dir.path());
    let err = adopt_if_kafka_dir(dir.path(), 2, None).unwrap_err();
    assert!(err.to_string().contains("KAFKA_NODE_ID=1"), "{err}");
    assert!(adopt_if_kafka_dir(dir.path(), 1, Some("other")).is_err());
    assert!(!dir.path().join(".klamm").exists());

    // Metadata klamm cannot read (a compressed batch).
    let dir = tempfile::tempdir().unwrap();
    kafka_dir(dir.path());
    let seg = dir.path().join(METADATA_DIR).join("00000000000000000000.log");
    let mut log = std::fs::read(&seg).unwrap();
    log.extend(compressed(values(17, &[topic_record("zipped", Uuid([9; 16]))]), 3));
    std::fs::write(&seg, &log).unwrap();
    let err = adopt_if_kafka_dir(dir.path(), 1, None).unwrap_err();
    assert!(err.to_string().contains("compressed"), "{err}");
    assert!(!dir.path().join(".klamm").exists());

    // Not a Kafka directory: klamm's own, or without a metadata log.
    let dir = tempfile::tempdir().unwrap();
    assert_eq!(adopt_if_kafka_dir(dir.path(), 1, None).unwrap(), None);
    write(&dir.path().join("meta.properties"), b"node.id=1\ncluster.id=x\n");
    assert_eq!(adopt_if_kafka_dir(dir.path(), 1, None).unwrap(), None);
}
