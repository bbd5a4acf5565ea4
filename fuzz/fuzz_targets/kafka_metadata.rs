//! Fuzz target `kafka_metadata`: the decoder of Apache Kafka's KRaft
//! metadata log (`klamm::kafka_import::kraft`) and the whole adoption of a
//! Kafka data directory built from the input.
//!
//! Input: a selector byte, then by `selector & 3`:
//! 0 one metadata record value (`decode_record`);
//! 1 a log segment replayed with `KraftImage::apply_file` from offset
//!   `u8` (the byte after the selector);
//! 2 a `__cluster_metadata-0` directory (u16-BE-length sections: snapshot
//!   `<offset u8>-…checkpoint`, segment 0, segment at base 1000) read with
//!   `read_metadata_dir`;
//! 3 a whole Kafka data directory (sections: metadata segment,
//!   `__consumer_offsets-0` segment, `t-0` segment) adopted with
//!   `adopt_if_kafka_dir`; what was adopted must open with klamm's own
//!   controller and offsets store, and a second adoption does nothing.
//! Selector bit 7 recomputes the CRC of every batch first, so mutations get
//! past it. Nothing may panic; replaying the same bytes twice gives the
//! same image; Kafka's files are never changed.
#![no_main]

mod common;

use std::path::Path;

use klamm::kafka_import::kraft::{decode_record, read_metadata_dir, KraftImage};
use klamm::types::Offset;
use libfuzzer_sys::fuzz_target;

fn replay(data: &[u8], from: i64) {
    let mut a = KraftImage::default();
    let ra = a.apply_file(Path::new("fuzz"), data, Offset(from));
    a.finish();
    let mut b = KraftImage::default();
    let rb = b.apply_file(Path::new("fuzz"), data, Offset(from));
    b.finish();
    assert_eq!(ra.is_ok(), rb.is_ok());
    if let Ok(r) = &ra {
        assert!(r.valid_bytes <= data.len());
    }
    assert_eq!(a.topics, b.topics, "replay is not deterministic");
    for t in a.topics.values() {
        assert!(t.partition_count() >= 0 && t.partition_count() <= klamm::kafka_import::kraft::MAX_PARTITION_ID);
    }
}

fn write(path: &Path, bytes: &[u8]) {
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, bytes).unwrap();
}

fn metadata_dir(snapshot_offset: u8, snapshot: &[u8], seg0: &[u8], seg1: &[u8]) {
    let dir = common::scratch_dir("kraft").join("__cluster_metadata-0");
    if !snapshot.is_empty() {
        write(&dir.join(format!("{snapshot_offset:020}-0000000001.checkpoint")), snapshot);
    }
    write(&dir.join("00000000000000000000.log"), seg0);
    if !seg1.is_empty() {
        write(&dir.join("00000000000000001000.log"), seg1);
    }
    let _ = read_metadata_dir(&dir);
    assert_eq!(std::fs::read(dir.join("00000000000000000000.log")).unwrap(), seg0, "the reader wrote");
}

fn adopt(metadata: &[u8], offsets: &[u8], topic: &[u8]) {
    let root = common::scratch_dir("adopt");
    write(&root.join("meta.properties"), b"node.id=1\nversion=1\ncluster.id=MkU3OEVBNTcwNTJENDM2Qk\n");
    let md = root.join("__cluster_metadata-0/00000000000000000000.log");
    let co = root.join("__consumer_offsets-0/00000000000000000000.log");
    write(&md, metadata);
    write(&co, offsets);
    write(&root.join("t-0/00000000000000000000.log"), topic);
    let Ok(adopted) = klamm::kafka_import::adopt_if_kafka_dir(&root, 1, None) else {
        assert!(!root.join(".klamm/metadata").exists(), "a failed adoption wrote metadata");
        return;
    };
    assert!(adopted.is_some());
    let c = klamm::controller::Controller::open(&root, 1, None, 1, 1).expect("klamm opens what it adopted");
    assert_eq!(c.image().topics.len(), adopted.as_ref().unwrap().topics);
    drop(c);
    let store = klamm::group::OffsetsStore::open(&root.join(".klamm/groups")).expect("offsets store opens");
    assert_eq!(store.offset_count(), adopted.as_ref().unwrap().committed_offsets);
    store.close_blocking();
    assert_eq!(klamm::kafka_import::adopt_if_kafka_dir(&root, 1, None).unwrap(), None, "adopted twice");
    assert_eq!(std::fs::read(&md).unwrap(), metadata);
    assert_eq!(std::fs::read(&co).unwrap(), offsets);
}

fuzz_target!(|data: &[u8]| {
    let Some((&selector, rest)) = data.split_first() else { return };
    let fix = |bytes: &[u8]| {
        let mut v = bytes.to_vec();
        if selector & 0x80 != 0 {
            common::fix_batch_crcs(&mut v);
        }
        v
    };
    match selector & 3 {
        0 => {
            let _ = decode_record(rest);
        }
        1 => {
            let mut input = common::Input::new(rest);
            let from = i64::from(input.u8());
            replay(&fix(input.rest()), from);
        }
        2 => {
            let mut input = common::Input::new(rest);
            let offset = input.u8();
            let snapshot = fix(input.section());
            let seg0 = fix(input.section());
            let seg1 = fix(input.rest());
            metadata_dir(offset, &snapshot, &seg0, &seg1);
        }
        _ => {
            let mut input = common::Input::new(rest);
            let metadata = fix(input.section());
            let offsets = fix(input.section());
            let topic = fix(input.rest());
            adopt(&metadata, &offsets, &topic);
        }
    }
});
