//! Fuzz target `state_files`: the small parsers of klamm's own state files
//! and of embedded client metadata, one per selector value (first byte):
//! 0 metadata log replay (`records`), 1 metadata snapshot + records,
//! 2 group offsets store replay, 3 offset checkpoint file, 4 consumer
//! protocol subscription, 5 producer snapshot, 6 topic and partition
//! directory names. Selector bit 7 recomputes the CRCs of the metadata,
//! offsets and producer-snapshot framing first, so mutations get past them.
//! Every parser must return an error or a value, never panic; what
//! replays must replay the same way again.
#![no_main]

mod common;

use klamm::controller::metadata_log::MetadataLog;
use klamm::group::consumer_protocol::parse_subscription_topics;
use klamm::group::OffsetsStore;
use klamm::storage::{
    parse_partition_dir_name, read_checkpoint, validate_topic_name, write_checkpoint,
    ProducerStateManager,
};
use libfuzzer_sys::fuzz_target;

fn metadata_log(snapshot: Option<&[u8]>, records: &[u8]) {
    let dir = common::scratch_dir("metadata");
    if let Some(s) = snapshot {
        std::fs::write(dir.join("snapshot"), s).unwrap();
    }
    std::fs::write(dir.join("records"), records).unwrap();
    let Ok(first) = MetadataLog::open(&dir) else { return };
    let size = std::fs::metadata(dir.join("records")).unwrap().len();
    assert!(size <= records.len() as u64, "replay grew the log");
    let replayed = first.records;
    drop(first.log);
    // The torn tail is gone: a second replay sees the same records.
    let second = MetadataLog::open(&dir).expect("reopen after truncation");
    assert_eq!(second.records, replayed, "replay is not stable");
}

fn offsets_store(file: &[u8]) {
    let dir = common::scratch_dir("offsets");
    std::fs::write(dir.join("offsets.log"), file).unwrap();
    let Ok(store) = OffsetsStore::open(&dir) else { return };
    let mut groups = store.group_ids();
    let count = store.offset_count();
    store.close_blocking();
    drop(store);
    let store = OffsetsStore::open(&dir).expect("reopen after truncation");
    let mut again = store.group_ids();
    groups.sort_by(|a, b| a.0.cmp(&b.0));
    again.sort_by(|a, b| a.0.cmp(&b.0));
    assert_eq!(groups, again, "replay is not stable");
    assert_eq!(count, store.offset_count());
    store.close_blocking();
}

fn checkpoint(file: &[u8]) {
    let dir = common::scratch_dir("checkpoint");
    let path = dir.join("recovery-point-offset-checkpoint");
    std::fs::write(&path, file).unwrap();
    let Ok(entries) = read_checkpoint(&path) else { return };
    write_checkpoint(&path, &entries).expect("write checkpoint");
    let again = read_checkpoint(&path).expect("read what we wrote");
    assert_eq!(again, entries, "checkpoint round trip");
}

fuzz_target!(|data: &[u8]| {
    let Some((&selector, rest)) = data.split_first() else { return };
    let fix = selector & 0x80 != 0;
    match (selector & 0x7f) % 7 {
        0 => {
            let mut records = rest.to_vec();
            if fix {
                common::fix_frame_crcs(&mut records, 0);
            }
            metadata_log(None, &records)
        }
        1 => {
            let mut input = common::Input::new(rest);
            let mut snapshot = input.section().to_vec();
            let mut records = input.rest().to_vec();
            if fix {
                common::fix_frame_crcs(&mut snapshot, 0);
                common::fix_frame_crcs(&mut records, 0);
            }
            metadata_log(Some(&snapshot), &records);
        }
        2 => {
            let mut file = rest.to_vec();
            if fix {
                common::fix_frame_crcs(&mut file, 8);
            }
            offsets_store(&file)
        }
        3 => checkpoint(rest),
        4 => {
            if let Ok(topics) = parse_subscription_topics(rest) {
                let listed: usize = topics.iter().map(|t| t.len() + 2).sum();
                assert!(listed + 10 <= rest.len(), "more topic bytes than input");
            }
        }
        5 => {
            let mut snapshot = rest.to_vec();
            if fix {
                common::fix_snapshot_crc(&mut snapshot);
            }
            let _ = ProducerStateManager::decode_snapshot(&snapshot);
        }
        _ => {
            if let Ok(name) = std::str::from_utf8(rest) {
                let _ = validate_topic_name(name);
                let _ = klamm::controller::topic_name::validate(name);
                let _ = klamm::controller::topic_name::unify_collision_chars(name);
                let _ = parse_partition_dir_name(name);
            }
        }
    }
});
