//! Fuzz target `txn_log`: the transaction log's decoder
//! (`klamm::txn::log`). Selector (first byte) 0: one frame body through
//! `decode_body`; what decodes must encode and decode to the same record.
//! 1: a whole `transactions.log` opened with `TransactionLog::open`
//! (header, frames, torn tail); what opens must open again to the same
//! transactional ids (the torn tail is truncated once). Selector bit 7
//! recomputes the frames' CRCs first, so mutations get past them. Never a
//! panic, on any input.
#![no_main]

mod common;

use klamm::txn::log::{decode_body, encode, TransactionLog, TxnRecord, LOG_FILE_NAME};
use libfuzzer_sys::fuzz_target;

fn body(bytes: &[u8]) {
    let Some(rec) = decode_body(bytes) else { return };
    let mut frame = Vec::new();
    if encode(&rec, &mut frame).is_err() {
        return;
    }
    // Frame header: body length u32, crc u32.
    let again = decode_body(&frame[8..]).expect("decodes what it encoded");
    assert_eq!(again, rec, "record round trip");
    if let TxnRecord::Metadata(m) = &rec {
        assert!(m.partitions.len() <= klamm::txn::state::MAX_PARTITIONS_PER_TXN);
    }
}

fn whole_log(file: &[u8]) {
    let dir = common::scratch_dir("txn-log");
    std::fs::write(dir.join(LOG_FILE_NAME), file).unwrap();
    let Ok((log, live)) = TransactionLog::open(&dir) else { return };
    assert!(log.file_bytes() <= (file.len() as u64).max(8), "open grew the log");
    drop(log);
    let (_, again) = TransactionLog::open(&dir).expect("reopen after truncation");
    assert_eq!(again, live, "replay is not stable");
}

fuzz_target!(|data: &[u8]| {
    let Some((&selector, rest)) = data.split_first() else { return };
    match (selector & 0x7f) % 2 {
        0 => body(rest),
        _ => {
            let mut file = rest.to_vec();
            if selector & 0x80 != 0 {
                common::fix_frame_crcs(&mut file, 8);
            }
            whole_log(&file)
        }
    }
});
