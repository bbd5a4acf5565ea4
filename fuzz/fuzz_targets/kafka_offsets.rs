//! Fuzz target `kafka_offsets`: the decoder of Apache Kafka's
//! `__consumer_offsets` records (`klamm::kafka_import::group_offsets`).
//!
//! Input: a selector byte, then by `selector & 1`:
//! 0 a record: u16-BE-length key section, then the value (empty = null),
//!   through `decode_key`, `decode_offset_value`, `decode_group_value`
//!   and `GroupState::apply_record`;
//! 1 a `__consumer_offsets` segment replayed with `GroupState::apply_file`.
//! Selector bit 7 recomputes the CRC of every batch first, so mutations get
//! past it. Nothing may panic; replaying the same bytes twice gives the
//! same state; every live offset came from a decodable record.
#![no_main]

mod common;

use klamm::kafka_import::group_offsets::{decode_group_value, decode_key, decode_offset_value, GroupState};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((&selector, rest)) = data.split_first() else { return };
    if selector & 1 == 0 {
        let mut input = common::Input::new(rest);
        let key = input.section();
        let value = input.rest();
        let _ = decode_key(key);
        let _ = decode_offset_value(value);
        let _ = decode_group_value(value);
        let mut state = GroupState::default();
        state.apply_record(Some(key), (!value.is_empty()).then_some(value), None);
        state.apply_record(Some(key), None, Some(1));
        state.apply_marker(1, true);
        assert!(state.offsets.len() <= 1 && state.groups.len() <= 1);
        return;
    }
    let mut segment = rest.to_vec();
    if selector & 0x80 != 0 {
        common::fix_batch_crcs(&mut segment);
    }
    let mut a = GroupState::default();
    let report = a.apply_file(&segment);
    a.finish_partition();
    assert!(report.valid_bytes <= segment.len());
    let mut b = GroupState::default();
    b.apply_file(&segment);
    b.finish_partition();
    assert_eq!(a.offsets, b.offsets, "replay is not deterministic");
    assert_eq!(a.groups, b.groups, "replay is not deterministic");
    assert!(a.offsets.len() as u64 <= report.records);
});
