//! Writes the seed corpora of the fuzz targets in `fuzz/` from the real
//! encoders and builders, so the fuzzers start from well-formed input.
//! Run by hand after a format changes:
//! `cargo test --lib fuzz_seeds -- --ignored`, then commit
//! `fuzz/corpus/*/seed-*`. The input layouts are the ones documented at
//! the top of each `fuzz/fuzz_targets/*.rs`.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};

use crate::controller::metadata_log::{MetadataLog, MetadataRecord};
use crate::group::offsets_store::{CommittedOffset, OffsetsStore, StoreRecord, StoredGroupMeta};
use crate::protocol::{messages, Uuid};
use crate::records::{BatchBuilder, TimestampType};
use crate::storage::{write_checkpoint, LogConfig, OpenOptions, PartitionLog};
use crate::types::{Offset, TimestampMs, TopicPartition};

const NOW: TimestampMs = TimestampMs(1_700_000_000_000);

fn corpus(target: &str) -> PathBuf {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz/corpus").join(target);
    std::fs::create_dir_all(&dir).unwrap();
    for e in std::fs::read_dir(&dir).unwrap() {
        let e = e.unwrap();
        if e.file_name().to_string_lossy().starts_with("seed-") {
            std::fs::remove_file(e.path()).unwrap();
        }
    }
    dir
}

fn write(dir: &Path, name: &str, bytes: &[u8]) {
    assert!(bytes.len() <= 65536, "seed {name} exceeds the fuzzers' max_len");
    std::fs::write(dir.join(format!("seed-{name}")), bytes).unwrap();
}

/// A `state_files` seed twice: as is, and with the CRC fix-up bit set.
fn write_state(dir: &Path, name: &str, bytes: &[u8]) {
    write(dir, name, bytes);
    let mut fixed = bytes.to_vec();
    fixed[0] |= 0x80;
    write(dir, &format!("{name}-fixcrc"), &fixed);
}

/// u16-BE-length section, as `fuzz/fuzz_targets/common.rs` reads them.
fn section(out: &mut Vec<u8>, bytes: &[u8]) {
    out.extend_from_slice(&u16::try_from(bytes.len()).unwrap().to_be_bytes());
    out.extend_from_slice(bytes);
}

fn batches() -> Vec<(&'static str, Vec<u8>)> {
    let mut out = Vec::new();
    let mut b = BatchBuilder::new(0, NOW);
    b.append(NOW, Some(b"key"), Some(b"value"), &[]);
    out.push(("plain", b.build()));
    let mut b = BatchBuilder::new(0, NOW);
    b.append(NOW, None, Some(b"v1"), &[("h1", Some(b"x")), ("h2", None)]);
    b.append(TimestampMs(NOW.0 + 5), Some(b"k"), None, &[]);
    b.append(TimestampMs(NOW.0 - 3), Some(b""), Some(b""), &[("", Some(b""))]);
    out.push(("headers", b.build()));
    let mut b = BatchBuilder::new(0, NOW);
    b.producer(1000, 2, 0);
    b.append(NOW, Some(b"a"), Some(b"1"), &[]);
    b.append(NOW, Some(b"b"), Some(b"2"), &[]);
    out.push(("idempotent", b.build()));
    let mut b = BatchBuilder::new(0, NOW);
    b.producer(1001, 0, 7).transactional(true).timestamp_type(TimestampType::LogAppendTime);
    b.append(NOW, None, Some(b"t"), &[]);
    out.push(("transactional", b.build()));
    let mut two = out[0].1.clone();
    two.extend_from_slice(&out[1].1);
    out.push(("two", two));
    out
}

fn protocol_seeds() {
    let requests = corpus("request");
    let responses = corpus("responses");
    let mut rng = 0x5eed_u64;
    for s in messages::REQUEST_SCHEMAS {
        let mut versions = vec![s.min_version, s.max_version];
        versions.extend(s.first_flexible_version);
        versions.sort();
        versions.dedup();
        for v in versions {
            let body = messages::sample_encoded("request", s.api_key, v, &mut rng).unwrap();
            let frame = crate::protocol::fuzz_entry_tests::frame(s.api_key, v, &body);
            write(&requests, &format!("{}-v{v}", s.name), &frame);
            if let Some(body) = messages::sample_encoded("response", s.api_key, v, &mut rng) {
                let mut input = s.api_key.to_be_bytes().to_vec();
                input.extend_from_slice(&v.to_be_bytes());
                input.extend_from_slice(&body);
                write(&responses, &format!("{}-v{v}", s.name), &input);
            }
        }
    }
    // A produce request carrying real batches (v3 classic, v9 flexible).
    let records = batches().pop().unwrap().1;
    for v in [3i16, 9] {
        let req = messages::produce_request::ProduceRequest {
            transactional_id: None,
            acks: -1,
            timeout_ms: 1000,
            topic_data: vec![messages::produce_request::TopicProduceData {
                name: "t".into(),
                partition_data: vec![messages::produce_request::PartitionProduceData {
                    index: 0,
                    records: Some(records.clone().into()),
                    ..Default::default()
                }],
                ..Default::default()
            }],
            ..Default::default()
        };
        let mut w = crate::protocol::Writer::new();
        req.encode(&mut w, v);
        let frame = crate::protocol::fuzz_entry_tests::frame(0, v, &w.finish_contiguous());
        write(&requests, &format!("Produce-real-v{v}"), &frame);
    }
}

fn record_batch_seeds() {
    let dir = corpus("record_batch");
    for (name, bytes) in batches() {
        write(&dir, name, &bytes);
    }
}

fn segment_seeds() {
    let dir = corpus("segment_recovery");
    let tmp = tempfile::tempdir().unwrap();
    let config = LogConfig { segment_bytes: 16 * 1024, segment_index_bytes: 4 * 1024, index_interval_bytes: 256, ..LogConfig::default() };
    let mut log = PartitionLog::open_with(tmp.path(), config, OpenOptions::default(), NOW).unwrap();
    for _ in 0..4 {
        for (name, mut bytes) in batches() {
            if name != "transactional" {
                log.append(&mut bytes, NOW).unwrap();
            }
        }
    }
    let end = log.log_end_offset();
    log.close().unwrap();
    let read = |suffix: &str, offset: i64| std::fs::read(tmp.path().join(format!("{offset:020}{suffix}"))).unwrap_or_default();
    let (log0, index0, time0) = (read(".log", 0), read(".index", 0), read(".timeindex", 0));
    let snapshot = read(".klamm-snapshot", end.0);
    assert!(!snapshot.is_empty() && !index0.is_empty());
    let offset_u8 = u8::try_from(end.0).unwrap();
    // flags, recovery point, log start, segment 1 base, snapshot offset.
    let seed = |flags: u8, log: &[u8], log1: &[u8]| {
        let mut out = vec![flags, 0, 0, offset_u8, offset_u8];
        section(&mut out, log);
        section(&mut out, &index0);
        section(&mut out, &time0);
        section(&mut out, log1);
        out.extend_from_slice(&snapshot);
        out
    };
    write(&dir, "log-only", &seed(0, &log0, &[]));
    write(&dir, "all-files", &seed(0b1011, &log0, &[]));
    write(&dir, "all-files-fixcrc", &seed(0b100_1011, &log0, &[]));
    write(&dir, "clean-all-files", &seed(0b1_1011, &log0, &[]));
    write(&dir, "torn", &seed(0b0011, &log0[..log0.len() - 9], &[]));
    write(&dir, "two-segments", &seed(0b1111, &log0, &batches()[2].1));
    write(&dir, "two-segments-fixcrc", &seed(0b100_1111, &log0, &batches()[2].1));
    let mut padded = log0.clone();
    padded.extend_from_slice(&[0; 300]);
    write(&dir, "zero-tail", &seed(0b10_0000, &padded, &[]));
}

fn state_seeds() {
    let dir = corpus("state_files");
    let tmp = tempfile::tempdir().unwrap();
    // 0/1: metadata log and snapshot.
    let mut replay = MetadataLog::open(tmp.path()).unwrap();
    let topic = MetadataRecord::Topic {
        name: "orders".into(),
        id: Uuid([7; 16]),
        partitions: 3,
        leader_epoch: 1,
        configs: BTreeMap::from([("cleanup.policy".to_string(), "delete".to_string())]),
    };
    let records = [topic.clone(), MetadataRecord::RemoveTopic { id: Uuid([9; 16]) }, MetadataRecord::ProducerIds { next_block_start: 1000 }];
    for r in &records {
        replay.log.append(r).unwrap();
    }
    let log_bytes = std::fs::read(tmp.path().join("records")).unwrap();
    let mut seed = vec![0];
    seed.extend_from_slice(&log_bytes);
    write_state(&dir, "metadata-log", &seed);
    replay.log.snapshot(&records[..1]).unwrap();
    replay.log.append(&records[2]).unwrap();
    let mut seed = vec![1];
    section(&mut seed, &std::fs::read(tmp.path().join("snapshot")).unwrap());
    seed.extend_from_slice(&std::fs::read(tmp.path().join("records")).unwrap());
    write_state(&dir, "metadata-snapshot", &seed);

    // 2: offsets store.
    let odir = tmp.path().join("offsets");
    let store = OffsetsStore::open(&odir).unwrap();
    let value = CommittedOffset { offset: Offset(42), leader_epoch: 3, metadata: "m".into(), commit_timestamp: NOW, expire_timestamp: None };
    let recs = vec![
        StoreRecord::GroupMeta { group: "g".into(), meta: StoredGroupMeta { protocol_type: Some("consumer".into()), generation_id: 4, empty_since: None } },
        StoreRecord::OffsetCommit { group: "g".into(), topic: "orders".into(), partition: 0, value: value.clone() },
        StoreRecord::OffsetCommit { group: "g".into(), topic: "orders".into(), partition: 1, value: CommittedOffset { expire_timestamp: Some(NOW), ..value } },
        StoreRecord::OffsetTombstone { group: "g".into(), topic: "orders".into(), partition: 1 },
        StoreRecord::GroupTombstone { group: "old".into() },
        StoreRecord::TopicTombstone { topic: "gone".into() },
    ];
    store.submit(recs).unwrap().blocking_recv().unwrap().unwrap();
    store.close_blocking();
    let mut seed = vec![2];
    seed.extend_from_slice(&std::fs::read(store.path()).unwrap());
    write_state(&dir, "offsets-store", &seed);
    drop(store);

    // 3: checkpoint.
    let path = tmp.path().join("checkpoint");
    let entries = HashMap::from([(TopicPartition::new("orders", 0), Offset(10)), (TopicPartition::new("a-b", 12), Offset(0))]);
    write_checkpoint(&path, &entries).unwrap();
    let mut seed = vec![3];
    seed.extend_from_slice(&std::fs::read(&path).unwrap());
    write_state(&dir, "checkpoint", &seed);

    // 4: consumer protocol subscription.
    for v in [0i16, 3] {
        let mut seed = vec![4];
        seed.extend_from_slice(&crate::group::consumer_protocol::encode_subscription(v, &["orders", "t"]));
        write_state(&dir, &format!("subscription-v{v}"), &seed);
    }

    // 5: producer snapshot, from a log with an idempotent producer.
    let pdir = tmp.path().join("partition");
    let mut log = PartitionLog::open_with(&pdir, LogConfig::default(), OpenOptions::default(), NOW).unwrap();
    let mut batch = batches()[2].1.clone();
    log.append(&mut batch, NOW).unwrap();
    let end = log.log_end_offset();
    log.close().unwrap();
    let mut seed = vec![5];
    seed.extend_from_slice(&std::fs::read(pdir.join(format!("{:020}.klamm-snapshot", end.0))).unwrap());
    write_state(&dir, "producer-snapshot", &seed);

    // 6: names.
    write_state(&dir, "partition-dir", b"\x06orders-12");
}

/// Seeds of `kafka_metadata` and `kafka_offsets`: Kafka's records as the
/// decoders' unit tests build them.
fn kafka_import_seeds() {
    use crate::kafka_import::batches::tests::{batch, control_batch, txn_batch};
    use crate::kafka_import::group_offsets::tests::{group_key, group_value, offset_key, offset_value};
    use crate::kafka_import::kraft::tests::{config_record, partition_change, partition_record, remove_topic, topic_record};
    let (a, b) = (Uuid([1; 16]), Uuid([2; 16]));
    let values = |base: i64, vs: &[Vec<u8>]| {
        let records: Vec<crate::kafka_import::batches::tests::KeyValue<'_>> = vs.iter().map(|v| (None, Some(&v[..]))).collect();
        batch(base, &records)
    };
    let mut metadata = values(0, &[
        topic_record("t", a),
        partition_record(a, 0, 0, 2),
        config_record(2, "t", "retention.ms", Some("1000")),
        topic_record("gone", b),
        partition_record(b, 0, 0, 1),
    ]);
    metadata.extend(control_batch(5, -1, 2));
    metadata.extend(values(6, &[partition_change(a, 0, Some(1)), remove_topic(b), config_record(2, "t", "x", None)]));
    let (gk, ok) = (group_key("g"), offset_key("g", "t", 0));
    let mut offsets = batch(0, &[(Some(&gk), Some(&group_value(3, "consumer", 1, 1))), (Some(&ok), Some(&offset_value(3, 5, 0, "m")))]);
    offsets.extend(txn_batch(2, 7, &[(Some(&ok), Some(&offset_value(4, 9, 1, "")))]));
    offsets.extend(control_batch(3, 7, 1));
    offsets.extend(batch(4, &[(Some(&offset_key("g", "t", 1)), None), (Some(&gk), Some(&group_value(4, "", 0, 0)))]));
    let mut topic = BatchBuilder::new(0, NOW);
    topic.append(NOW, Some(b"k"), Some(b"v"), &[]);
    let topic = topic.build();

    let dir = corpus("kafka_metadata");
    for (i, rec) in [topic_record("t", a), partition_record(a, 3, 4, 2), partition_change(a, 0, Some(-1)), config_record(2, "t", "k", Some("v"))]
        .iter()
        .enumerate()
    {
        let mut seed = vec![0];
        seed.extend_from_slice(rec);
        write(&dir, &format!("record-{i}"), &seed);
    }
    let mut seed = vec![0x81, 0];
    seed.extend_from_slice(&metadata);
    write(&dir, "log", &seed);
    let mut seed = vec![0x82, 6];
    let mut snapshot = control_batch(0, -1, 3);
    snapshot.extend(values(1, &[topic_record("t", a), partition_record(a, 0, 0, 2)]));
    section(&mut seed, &snapshot);
    section(&mut seed, &metadata);
    write(&dir, "dir", &seed);
    let mut seed = vec![0x83];
    section(&mut seed, &metadata);
    section(&mut seed, &offsets);
    seed.extend_from_slice(&topic);
    write(&dir, "adopt", &seed);

    let dir = corpus("kafka_offsets");
    for (name, key, value) in [
        ("offset-v1", offset_key("g", "t", 0), offset_value(1, 5, 0, "m")),
        ("offset-v3", offset_key("g", "t", 0), offset_value(3, 5, 2, "m")),
        ("offset-v4", offset_key("g", "t", 0), offset_value(4, 5, 2, "m")),
        ("group-v3", group_key("g"), group_value(3, "consumer", 4, 2)),
        ("group-v4", group_key("g"), group_value(4, "consumer", 4, 1)),
    ] {
        let mut seed = vec![0];
        section(&mut seed, &key);
        seed.extend_from_slice(&value);
        write(&dir, name, &seed);
    }
    let mut seed = vec![0x81];
    seed.extend_from_slice(&offsets);
    write(&dir, "segment", &seed);
}

/// `txn_log`: frame bodies (selector 0) and whole logs (1, and with the
/// CRC fix-up bit).
fn txn_log_seeds() {
    use crate::txn::log::{encode, TransactionLog, TxnRecord, LOG_FILE_NAME};
    use crate::txn::state::TransactionMetadata;
    use crate::txn::TransactionState;
    let dir = corpus("txn_log");
    let empty = TransactionMetadata::new("app-1", 1000, 60_000, NOW);
    let mut ongoing = TransactionMetadata::new("app-2", 1001, 60_000, NOW);
    ongoing.producer_epoch = 3;
    ongoing.state = TransactionState::Ongoing;
    ongoing.txn_start_ms = NOW;
    ongoing.partitions.insert(TopicPartition::new("orders", 0));
    ongoing.partitions.insert(TopicPartition::new("orders", 2));
    ongoing.groups.insert("billing".to_string());
    let mut prepare = ongoing.clone();
    prepare.transactional_id = "app-3".into();
    prepare.state = TransactionState::PrepareCommit;
    let records = [
        TxnRecord::Metadata(empty),
        TxnRecord::Metadata(ongoing),
        TxnRecord::Metadata(prepare),
        TxnRecord::Tombstone { transactional_id: "app-1".into() },
    ];
    for (name, rec) in ["empty", "ongoing", "prepare-commit", "tombstone"].iter().zip(&records) {
        let mut frame = Vec::new();
        encode(rec, &mut frame).unwrap();
        let mut seed = vec![0];
        seed.extend_from_slice(&frame[8..]);
        write(&dir, &format!("body-{name}"), &seed);
    }
    let tmp = tempfile::tempdir().unwrap();
    let (mut log, _) = TransactionLog::open(tmp.path()).unwrap();
    log.append(&records).unwrap();
    drop(log);
    let mut seed = vec![1];
    seed.extend_from_slice(&std::fs::read(tmp.path().join(LOG_FILE_NAME)).unwrap());
    write(&dir, "log", &seed);
    seed[0] = 0x81;
    write(&dir, "log-fixcrc", &seed);
}

fn sasl_seeds() {
    use crate::security::credentials::{store_path, Change, ScramStore};
    use crate::security::sasl::scram::{ScramCredential, ScramHash};
    let dir = corpus("sasl");
    let mut jaas = vec![0];
    jaas.extend_from_slice(
        br#"org.apache.kafka.common.security.plain.PlainLoginModule required username="admin" password="a b;c" user_alice="alice-secret";"#,
    );
    write(&dir, "jaas", &jaas);
    write(&dir, "plain", b"\x01\0alice\0alice-secret");
    for (selector, name) in [(2u8, "scram-sha-256"), (3, "scram-sha-512")] {
        // RFC 7677's client messages (the proof is SHA-256's).
        let mut seed = vec![selector];
        section(&mut seed, b"n,,n=user,r=rOprNGfwEbeRWgbNEkqO");
        seed.extend_from_slice(
            b"c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=",
        );
        write(&dir, name, &seed);
    }
    let tmp = tempfile::tempdir().unwrap();
    let store = ScramStore::open(store_path(tmp.path())).unwrap();
    let hash = ScramHash::Sha512;
    let credential = ScramCredential::from_password(hash, "secret", b"salt", 4096);
    store.apply(vec![Change::Upsert { user: "bob".into(), hash, credential }]).unwrap();
    let mut seed = vec![4];
    seed.extend_from_slice(&std::fs::read(store_path(tmp.path())).unwrap());
    write(&dir, "store", &seed);
}

#[test]
#[ignore = "writes fuzz/corpus; run by hand after a format change"]
fn write_fuzz_seeds() {
    protocol_seeds();
    record_batch_seeds();
    segment_seeds();
    state_seeds();
    kafka_import_seeds();
    txn_log_seeds();
    sasl_seeds();
}
