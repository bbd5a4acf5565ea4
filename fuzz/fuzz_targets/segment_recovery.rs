//! Fuzz target `segment_recovery`: arbitrary bytes as a partition
//! directory's segment files (`.log`, `.index`, `.timeindex`, a second
//! segment, a producer snapshot), opened with `PartitionLog::open_with`.
//! Opening must recover (truncate, rebuild) or fail with an error; a log
//! that opened must take an append, serve it back, close, and reopen.
//!
//! Input: flags u8, recovery point u8, log start u8, second segment base
//! u8, snapshot offset u8, then u16-BE-length sections: log 0, index 0,
//! time index 0, log 1, snapshot. Flags: bit 0 write index 0, bit 1 write
//! time index 0, bit 2 write segment 1, bit 3 write the snapshot, bit 4
//! claim a clean shutdown, bit 5 LogAppendTime topic, bit 6 recompute
//! the CRCs of the batches and of the snapshot (so mutations get past them).
#![no_main]

mod common;

use std::path::Path;

use klamm::records::{BatchBuilder, BatchIter, TimestampType, Validation};
use klamm::storage::{LogConfig, OpenOptions, PartitionLog};
use klamm::types::{Offset, TimestampMs};
use libfuzzer_sys::fuzz_target;

const NOW: TimestampMs = TimestampMs(1_700_000_000_000);

fn file(dir: &Path, offset: i64, suffix: &str) -> std::path::PathBuf {
    dir.join(format!("{offset:020}{suffix}"))
}

fn config(log_append_time: bool) -> LogConfig {
    LogConfig {
        // Small enough that fuzz inputs can exceed it, so rolls and
        // oversized files are exercised too.
        segment_bytes: 16 * 1024,
        segment_index_bytes: 4 * 1024,
        index_interval_bytes: 256,
        message_timestamp_type: if log_append_time {
            TimestampType::LogAppendTime
        } else {
            TimestampType::CreateTime
        },
        ..LogConfig::default()
    }
}

fuzz_target!(|data: &[u8]| {
    let mut input = common::Input::new(data);
    let flags = input.u8();
    let recovery_point = i64::from(input.u8());
    let log_start = i64::from(input.u8());
    let second_base = i64::from(input.u8());
    let snapshot_offset = i64::from(input.u8());
    let mut log0 = input.section().to_vec();
    let index0 = input.section();
    let time_index0 = input.section();
    let mut log1 = input.section().to_vec();
    let mut snapshot = input.rest().to_vec();
    if flags & 64 != 0 {
        common::fix_batch_crcs(&mut log0);
        common::fix_batch_crcs(&mut log1);
        common::fix_snapshot_crc(&mut snapshot);
    }
    let clean_shutdown = flags & 16 != 0;
    let config = config(flags & 32 != 0);

    let dir = common::scratch_dir("partition");
    std::fs::write(file(&dir, 0, ".log"), &log0).unwrap();
    if flags & 1 != 0 {
        std::fs::write(file(&dir, 0, ".index"), index0).unwrap();
    }
    if flags & 2 != 0 {
        std::fs::write(file(&dir, 0, ".timeindex"), time_index0).unwrap();
    }
    if flags & 4 != 0 && second_base != 0 {
        std::fs::write(file(&dir, second_base, ".log"), &log1).unwrap();
    }
    if flags & 8 != 0 {
        std::fs::write(file(&dir, snapshot_offset, ".klamm-snapshot"), &snapshot).unwrap();
    }

    let opts = OpenOptions {
        clean_shutdown,
        recovery_point: Offset(recovery_point),
        log_start_offset: Offset(log_start),
    };
    let Ok(mut log) = PartitionLog::open_with(&dir, config.clone(), opts, NOW) else {
        return;
    };
    let start = log.log_start_offset();
    let end = log.log_end_offset();
    assert!(start <= end, "log start {start:?} beyond log end {end:?}");
    let read = log.read(start, 1 << 20, None).expect("reading at the log start");
    assert_eq!(read.log_end_offset, end);

    // Whatever was recovered, a plain (non-idempotent) batch appends at the
    // log end and reads back.
    let mut builder = BatchBuilder::new(0, NOW);
    builder.append(NOW, Some(b"k"), Some(b"v"), &[("h", Some(b"x"))]);
    builder.append(TimestampMs(NOW.0 + 1), None, Some(b"w"), &[]);
    let mut batch = builder.build();
    let info = log.append(&mut batch, NOW).expect("append to a recovered log");
    assert_eq!(info.first_offset, end);
    assert_eq!(log.log_end_offset(), Offset(end.0 + 2));
    if !clean_shutdown {
        // Everything at and after the active segment was CRC-checked, so
        // the read must find exactly our batch.
        let read = log.read(end, 1 << 20, None).expect("reading the appended batch");
        let first = BatchIter::new(&read.records, Validation::Crc)
            .next()
            .expect("the appended batch is returned")
            .expect("the appended batch is valid");
        assert!(first.base_offset() <= end && end <= first.last_offset());
    }
    log.close().expect("close");
    drop(log);

    // Reopen as after a crash: the appended data survives.
    let opts = OpenOptions { clean_shutdown: false, recovery_point: Offset(0), log_start_offset: start };
    let log = PartitionLog::open_with(&dir, config, opts, NOW).expect("reopen after close");
    if !clean_shutdown && recovery_point == 0 {
        assert_eq!(log.log_end_offset(), Offset(end.0 + 2), "reopen lost data");
    }
});
