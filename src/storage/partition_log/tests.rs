//! Tests of `PartitionLog`: append/read, rolling, retention, timestamps,
//! idempotence, flushing, reopen after clean and unclean shutdown, and
//! recovery from torn, truncated, zero-filled and randomly corrupted files.

use super::*;
use crate::records::builder::test_batch;
use crate::records::{BatchIter, RecordBatch, Validation};
use crate::storage::files::offset_file;

fn small_config() -> LogConfig {
    LogConfig {
        segment_bytes: 1024,
        segment_index_bytes: 8 * 64,
        index_interval_bytes: 200,
        ..LogConfig::default()
    }
}

fn open(dir: &Path, cfg: &LogConfig) -> PartitionLog {
    PartitionLog::open(dir, cfg.clone(), false, Offset(0)).unwrap()
}

fn produce(log: &mut PartitionLog, n: usize, ts: i64) -> AppendInfo {
    let mut b = test_batch(n, ts, None);
    log.append(&mut b, TimestampMs(ts)).unwrap()
}

fn produce_idem(
    log: &mut PartitionLog,
    n: usize,
    pid: i64,
    epoch: i16,
    seq: i32,
) -> Result<AppendInfo, StorageError> {
    let mut b = test_batch(n, 1_000, Some((pid, epoch, seq)));
    log.append(&mut b, TimestampMs(1_000))
}

/// Reads the whole log batch by batch and checks CRCs and contiguous
/// offsets; returns (base, last) of every batch.
fn read_all(log: &PartitionLog) -> Vec<(i64, i64)> {
    let mut out = Vec::new();
    let mut next = log.log_start_offset();
    while next < log.log_end_offset() {
        let info = log.read(next, 1 << 20, None).unwrap();
        assert!(
            !info.records.is_empty(),
            "no data at {next:?} below the log end"
        );
        for batch in BatchIter::new(&info.records, Validation::Crc) {
            let batch = batch.expect("every returned batch is valid");
            if let Some(&(_, last)) = out.last() {
                assert_eq!(batch.base_offset().0, last + 1, "offsets are contiguous");
            }
            out.push((batch.base_offset().0, batch.last_offset().0));
            next = batch.next_offset();
        }
    }
    assert_eq!(next, log.log_end_offset());
    out
}

#[test]
fn append_assigns_offsets_and_reads_back_whole_batches() {
    let dir = tempfile::tempdir().unwrap();
    let mut log = open(dir.path(), &LogConfig::default());
    let a = produce(&mut log, 3, 100);
    assert_eq!(
        (a.first_offset, a.last_offset, a.records_count),
        (Offset(0), Offset(2), 3)
    );
    assert_eq!(a.log_append_time, TimestampMs::NONE);
    assert_eq!(a.max_timestamp, TimestampMs(102));
    let b = produce(&mut log, 2, 200);
    assert_eq!((b.first_offset, b.last_offset), (Offset(3), Offset(4)));
    // Two batches in one append.
    let mut input = test_batch(2, 300, None);
    input.extend_from_slice(&test_batch(4, 400, None));
    let c = log.append(&mut input, TimestampMs(500)).unwrap();
    assert_eq!(
        (c.first_offset, c.last_offset, c.records_count),
        (Offset(5), Offset(10), 6)
    );
    assert_eq!(log.log_end_offset(), Offset(11));

    let info = log.read(Offset(4), 1 << 20, None).unwrap();
    let batches: Vec<_> = BatchIter::new(&info.records, Validation::Crc)
        .map(|b| b.unwrap().base_offset().0)
        .collect();
    assert_eq!(
        batches,
        vec![3, 5, 7],
        "starts with the batch containing offset 4"
    );
    let first = RecordBatch::new(
        &info.records[..RecordBatch::new(&test_batch(2, 200, None))
            .unwrap()
            .size_bytes()],
    )
    .unwrap();
    assert_eq!(first.partition_leader_epoch(), 0);
    assert!(log.read(Offset(11), 100, None).unwrap().records.is_empty());
    let e = log.read(Offset(12), 100, None).unwrap_err();
    assert_eq!(e.error_code(), 1);
    // Tiny max_bytes still returns one whole batch.
    let info = log.read(Offset(0), 1, None).unwrap();
    assert_eq!(BatchIter::new(&info.records, Validation::Crc).count(), 1);
    // max_offset_exclusive.
    let info = log.read(Offset(0), 1 << 20, Some(Offset(5))).unwrap();
    assert_eq!(BatchIter::new(&info.records, Validation::Crc).count(), 2);
    assert!(log
        .read(Offset(5), 1 << 20, Some(Offset(5)))
        .unwrap()
        .records
        .is_empty());
    assert_eq!(read_all(&log).len(), 4);
}

#[test]
fn invalid_input_writes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = LogConfig {
        max_message_bytes: 200,
        segment_bytes: 1000,
        ..small_config()
    };
    let mut log = open(dir.path(), &cfg);
    produce(&mut log, 1, 0);
    let mut big = test_batch(20, 0, None);
    assert!(matches!(
        log.append(&mut big, TimestampMs(0)),
        Err(StorageError::MessageTooLarge { .. })
    ));
    let mut huge: Vec<u8> = Vec::new();
    while huge.len() <= 1000 {
        huge.extend_from_slice(&test_batch(1, 0, None));
    }
    let e = log.append(&mut huge, TimestampMs(0)).unwrap_err();
    assert!(matches!(e, StorageError::RecordListTooLarge { .. }));
    assert_eq!(e.error_code(), 18);
    // A good batch followed by a corrupt one: nothing is written.
    let mut mixed = test_batch(1, 0, None);
    let mut bad = test_batch(1, 0, None);
    let last = bad.len() - 1;
    bad[last] ^= 1;
    mixed.extend_from_slice(&bad);
    assert_eq!(
        log.append(&mut mixed, TimestampMs(0))
            .unwrap_err()
            .error_code(),
        2
    );
    assert_eq!(
        log.append(&mut [], TimestampMs(0))
            .unwrap_err()
            .error_code(),
        87
    );
    assert_eq!(log.log_end_offset(), Offset(1));
    assert_eq!(read_all(&log), vec![(0, 0)]);
}

#[test]
fn log_append_time_is_stamped() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = LogConfig {
        message_timestamp_type: TimestampType::LogAppendTime,
        ..LogConfig::default()
    };
    let mut log = open(dir.path(), &cfg);
    let mut b = test_batch(3, 5, None);
    let info = log.append(&mut b, TimestampMs(123_456)).unwrap();
    assert_eq!(info.log_append_time, TimestampMs(123_456));
    let data = log.read(Offset(0), 1 << 20, None).unwrap().records;
    let batch = RecordBatch::new(&data).unwrap();
    assert_eq!(batch.timestamp_type(), TimestampType::LogAppendTime);
    assert_eq!(batch.max_timestamp(), TimestampMs(123_456));
    assert!(batch.is_crc_valid());
    let found = log
        .offset_for_timestamp(TimestampMs(100_000))
        .unwrap()
        .unwrap();
    assert_eq!(
        (found.offset, found.timestamp),
        (Offset(0), TimestampMs(123_456))
    );
}

#[test]
fn rolls_by_size_and_reads_across_segments() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = small_config();
    let mut log = open(dir.path(), &cfg);
    for i in 0..100 {
        produce(&mut log, 3, 1_000 + i * 3);
    }
    assert!(
        log.segment_count() >= 3,
        "segments: {}",
        log.segment_count()
    );
    let bases = log.segment_base_offsets();
    for pair in bases.windows(2) {
        let path = offset_file(dir.path(), pair[0], ".log");
        let len = std::fs::metadata(&path).unwrap().len();
        assert!(len <= 1024 && len > 0, "rolled segments are trimmed: {len}");
    }
    let active = offset_file(dir.path(), *bases.last().unwrap(), ".log");
    let active_len = std::fs::metadata(active).unwrap().len();
    assert!(
        active_len > 0 && active_len < 1024,
        "the active log is as long as its data, not preallocated: {active_len}"
    );
    assert_eq!(read_all(&log).len(), 100);
    // A read never spans two segments.
    let info = log.read(bases[1].next(), 1 << 20, None).unwrap();
    let last = BatchIter::new(&info.records, Validation::Crc)
        .last()
        .unwrap()
        .unwrap();
    assert_eq!(last.next_offset(), bases[2]);
    assert_eq!(log.size_bytes(), read_all_bytes(&log));
}

fn read_all_bytes(log: &PartitionLog) -> u64 {
    let mut total = 0u64;
    let mut next = log.log_start_offset();
    while next < log.log_end_offset() {
        let info = log.read(next, 1 << 20, None).unwrap();
        total += info.records.len() as u64;
        next = BatchIter::new(&info.records, Validation::Crc)
            .last()
            .unwrap()
            .unwrap()
            .next_offset();
    }
    total
}

#[test]
fn rolls_by_time_and_when_the_index_is_full() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = LogConfig {
        segment_ms: 1_000,
        ..LogConfig::default()
    };
    let mut log = open(dir.path(), &cfg);
    produce(&mut log, 1, 10_000);
    produce(&mut log, 1, 10_900);
    assert_eq!(log.segment_count(), 1);
    produce(&mut log, 1, 11_001);
    assert_eq!(log.segment_base_offsets(), vec![Offset(0), Offset(2)]);

    let dir = tempfile::tempdir().unwrap();
    let cfg = LogConfig {
        segment_index_bytes: 16,
        index_interval_bytes: 0,
        ..LogConfig::default()
    };
    let mut log = open(dir.path(), &cfg);
    for i in 0..7 {
        produce(&mut log, 1, i);
    }
    // Entries start with the second batch; 2 entries fill the index.
    assert!(
        log.segment_count() >= 3,
        "segments: {:?}",
        log.segment_base_offsets()
    );
    assert_eq!(read_all(&log).len(), 7);
}

#[test]
fn timestamp_lookups_across_segments() {
    let dir = tempfile::tempdir().unwrap();
    let mut log = open(dir.path(), &small_config());
    for i in 0..60 {
        produce(&mut log, 5, 1_000_000 + i * 5); // record k: offset k, ts 1_000_000 + k
    }
    assert!(log.segment_count() > 2);
    for target in [0, 1_000_000, 1_000_001, 1_000_123, 1_000_299] {
        let found = log
            .offset_for_timestamp(TimestampMs(target))
            .unwrap()
            .unwrap();
        let expect = (target - 1_000_000).max(0);
        assert_eq!(found.offset, Offset(expect), "target {target}");
    }
    assert!(log
        .offset_for_timestamp(TimestampMs(1_000_300))
        .unwrap()
        .is_none());
    let max = log.max_timestamp_and_offset().unwrap().unwrap();
    assert_eq!(
        (max.offset, max.timestamp),
        (Offset(299), TimestampMs(1_000_299))
    );
    // After DeleteRecords the search starts at the log start.
    log.delete_records_before(Offset(7)).unwrap();
    let found = log.offset_for_timestamp(TimestampMs(0)).unwrap().unwrap();
    assert_eq!(found.offset, Offset(7));
}

#[test]
fn timestamp_search_of_a_sealed_segment_runs_without_the_log() {
    let dir = tempfile::tempdir().unwrap();
    let mut log = open(dir.path(), &small_config());
    for i in 0..60 {
        produce(&mut log, 5, 1_000_000 + i * 5);
    }
    assert!(log.segment_count() > 2);
    // Record 3 lives in the first, sealed, segment: its search is handed
    // out to run after the log (and so its lock) is gone.
    let search = log.offset_for_timestamp_search(TimestampMs(1_000_003)).unwrap();
    assert!(search.is_pending());
    let max_search = log.max_timestamp_search().unwrap();
    let past_the_end = log.offset_for_timestamp_search(TimestampMs(2_000_000)).unwrap();
    drop(log);
    assert_eq!(search.run().unwrap().unwrap().offset, Offset(3));
    let max = max_search.run().unwrap().unwrap();
    assert_eq!((max.offset, max.timestamp), (Offset(299), TimestampMs(1_000_299)));
    assert!(past_the_end.run().unwrap().is_none());
}

#[test]
fn retention_by_bytes_and_time() {
    let dir = tempfile::tempdir().unwrap();
    let mut log = open(dir.path(), &small_config());
    for i in 0..100 {
        produce(&mut log, 3, 1_000 + i);
    }
    let segments = log.segment_count();
    let size = log.size_bytes() as i64;
    assert_eq!(log.enforce_retention(TimestampMs(0), -1, -1).unwrap(), 0);
    let deleted = log.enforce_retention(TimestampMs(0), -1, size / 2).unwrap();
    assert!(deleted > 0 && deleted < segments);
    assert!(log.size_bytes() as i64 >= size / 2);
    assert_eq!(log.log_start_offset(), log.segment_base_offsets()[0]);
    assert!(log.read(Offset(0), 100, None).unwrap_err().error_code() == 1);
    read_all(&log);
    // Everything expired: the active segment is rolled and deleted too.
    let end = log.log_end_offset();
    let deleted = log
        .enforce_retention(TimestampMs(10_000_000), 1_000, -1)
        .unwrap();
    assert!(deleted > 0);
    assert_eq!(log.segment_count(), 1);
    assert_eq!(log.log_start_offset(), end);
    assert_eq!(log.log_end_offset(), end);
    assert_eq!(log.size_bytes(), 0);
    // An empty active segment is never deleted.
    assert_eq!(
        log.enforce_retention(TimestampMs(10_000_000), 0, 0)
            .unwrap(),
        0
    );
    produce(&mut log, 1, 5);
    assert_eq!(read_all(&log).len(), 1);
}

#[test]
fn delete_records_advances_log_start() {
    let dir = tempfile::tempdir().unwrap();
    let mut log = open(dir.path(), &small_config());
    for i in 0..50 {
        produce(&mut log, 2, i);
    }
    let bases = log.segment_base_offsets();
    let cut = Offset(bases[2].0 + 1);
    assert_eq!(log.delete_records_before(cut).unwrap(), cut);
    assert_eq!(log.segment_base_offsets()[0], bases[2]);
    assert_eq!(log.log_start_offset(), cut);
    assert_eq!(
        log.read(Offset(cut.0 - 1), 10, None)
            .unwrap_err()
            .error_code(),
        1
    );
    // The batch containing the log start is returned whole.
    let info = log.read(cut, 10, None).unwrap();
    assert_eq!(
        RecordBatch::new(&info.records).unwrap().base_offset(),
        bases[2]
    );
    // Going backwards is a no-op; beyond the end is out of range.
    assert_eq!(log.delete_records_before(Offset(0)).unwrap(), cut);
    assert!(log.delete_records_before(Offset(1_000)).is_err());
    assert_eq!(
        log.delete_records_before(log.log_end_offset()).unwrap(),
        log.log_end_offset()
    );
}

#[test]
fn flush_policy_advances_recovery_point() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = LogConfig {
        flush_interval_messages: 5,
        ..LogConfig::default()
    };
    let mut log = open(dir.path(), &cfg);
    produce(&mut log, 3, 0);
    assert_eq!(log.recovery_point(), Offset(0));
    produce(&mut log, 3, 0);
    assert_eq!(log.recovery_point(), Offset(6));
    let cfg = LogConfig {
        flush_interval_ms: 100,
        ..LogConfig::default()
    };
    log.set_config(cfg).unwrap();
    produce(&mut log, 1, 0);
    assert_eq!(log.recovery_point(), Offset(6));
    assert!(log
        .flush_if_due(
            TimestampMs::now()
                .0
                .checked_add(1_000)
                .map(TimestampMs)
                .unwrap()
        )
        .unwrap());
    assert_eq!(log.recovery_point(), Offset(7));
    assert!(log
        .set_config(LogConfig {
            segment_bytes: 1,
            ..LogConfig::default()
        })
        .is_err());
}

#[test]
fn idempotent_producer_rules_through_the_log() {
    let dir = tempfile::tempdir().unwrap();
    let mut log = open(dir.path(), &LogConfig::default());
    let a = produce_idem(&mut log, 3, 42, 0, 0).unwrap();
    let b = produce_idem(&mut log, 2, 42, 0, 3).unwrap();
    assert_eq!((b.first_offset, b.last_offset), (Offset(3), Offset(4)));
    let dup = produce_idem(&mut log, 3, 42, 0, 0).unwrap();
    assert!(dup.duplicate);
    assert_eq!(
        (dup.first_offset, dup.last_offset),
        (a.first_offset, a.last_offset)
    );
    assert_eq!(
        log.log_end_offset(),
        Offset(5),
        "a duplicate writes nothing"
    );
    assert_eq!(
        produce_idem(&mut log, 1, 42, 0, 9)
            .unwrap_err()
            .error_code(),
        45
    );
    assert_eq!(
        produce_idem(&mut log, 1, 42, 1, 5)
            .unwrap_err()
            .error_code(),
        45
    );
    produce_idem(&mut log, 1, 42, 1, 0).unwrap();
    assert_eq!(
        produce_idem(&mut log, 1, 42, 0, 5)
            .unwrap_err()
            .error_code(),
        47
    );
    assert_eq!(log.log_end_offset(), Offset(6));
}

#[test]
fn producer_state_survives_clean_and_unclean_restarts() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = small_config();
    {
        let mut log = open(dir.path(), &cfg);
        for seq in (0..60).step_by(3) {
            produce_idem(&mut log, 3, 7, 2, seq).unwrap();
        }
        assert!(log.segment_count() > 1, "rolls wrote snapshots");
        log.close().unwrap();
        assert_eq!(
            log.append(&mut test_batch(1, 0, None), TimestampMs(0))
                .unwrap_err()
                .error_code(),
            56
        );
    }
    {
        let mut log = PartitionLog::open(dir.path(), cfg.clone(), true, Offset(0)).unwrap();
        assert_eq!(log.load_report().recovered_segments, 0);
        let dup = produce_idem(&mut log, 3, 7, 2, 57).unwrap();
        assert!(dup.duplicate);
        assert_eq!(dup.first_offset, Offset(57));
        produce_idem(&mut log, 3, 7, 2, 60).unwrap();
        // Dropped without close: like kill -9.
    }
    for (_, snapshot) in crate::storage::producer_state::list_snapshots(dir.path()).unwrap() {
        std::fs::remove_file(snapshot).unwrap();
    }
    let mut log = open(dir.path(), &cfg);
    assert_eq!(log.log_end_offset(), Offset(63));
    assert!(
        produce_idem(&mut log, 3, 7, 2, 60).unwrap().duplicate,
        "rebuilt from a full header scan"
    );
    assert_eq!(
        produce_idem(&mut log, 1, 7, 2, 64)
            .unwrap_err()
            .error_code(),
        45
    );
    produce_idem(&mut log, 1, 7, 2, 63).unwrap();
}

#[test]
fn reopen_after_clean_close_keeps_everything() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = small_config();
    let before;
    {
        let mut log = open(dir.path(), &cfg);
        for i in 0..40 {
            produce(&mut log, 4, i * 4);
        }
        before = read_all(&log);
        log.close().unwrap();
        let active = offset_file(
            dir.path(),
            *log.segment_base_offsets().last().unwrap(),
            ".log",
        );
        assert!(
            std::fs::metadata(active).unwrap().len() < 1024,
            "close trims the active segment"
        );
    }
    let mut log = PartitionLog::open(dir.path(), cfg.clone(), true, Offset(0)).unwrap();
    let report = log.load_report();
    assert_eq!(
        (
            report.recovered_segments,
            report.truncated_bytes,
            report.removed_files
        ),
        (0, 0, 0)
    );
    assert_eq!(
        report.producer_state_from,
        Offset(160),
        "state comes from the close snapshot"
    );
    assert_eq!(read_all(&log), before);
    let next = produce(&mut log, 1, 0);
    assert_eq!(next.first_offset, Offset(160));
    let found = log.offset_for_timestamp(TimestampMs(77)).unwrap().unwrap();
    assert_eq!(found.offset, Offset(77));
}

#[test]
fn kill_minus_nine_recovers_with_or_without_preallocated_zeros() {
    let base = tempfile::tempdir().unwrap();
    let cfg = small_config();
    let pristine = base.path().join("p");
    let before;
    {
        let mut log = open(&pristine, &cfg);
        for i in 0..30 {
            produce(&mut log, 2, i);
        }
        before = read_all(&log);
        // Dropped without close, as after kill -9: the active log ends with
        // its data, its indexes keep their preallocated size.
    }
    let last_log = log_files(&pristine).pop().unwrap();
    let data_len = std::fs::metadata(&last_log).unwrap().len();
    assert!(data_len < 1024);
    let index = last_log.with_extension("index");
    assert_eq!(std::fs::metadata(&index).unwrap().len(), 8 * 64);
    // Logs written by klamm versions that wrote through a preallocated map
    // end with zeros after the data.
    for (clean, zeros) in [(false, false), (true, false), (false, true), (true, true)] {
        let d = base.path().join(format!("c{clean}-{zeros}"));
        copy_dir(&pristine, &d);
        if zeros {
            let f = std::fs::OpenOptions::new().write(true).open(d.join(last_log.file_name().unwrap())).unwrap();
            f.set_len(1024).unwrap();
        }
        let mut log = PartitionLog::open(&d, cfg.clone(), clean, Offset(0)).unwrap();
        assert_eq!(read_all(&log), before, "clean={clean} zeros={zeros}");
        assert_eq!(produce(&mut log, 1, 0).first_offset, Offset(60));
        log.close().unwrap();
        let log = PartitionLog::open(&d, cfg.clone(), true, Offset(0)).unwrap();
        assert_eq!(read_all(&log).len(), before.len() + 1);
    }
}

/// Copies a directory (flat).
fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        std::fs::copy(e.path(), to.join(e.file_name())).unwrap();
    }
}

fn log_files(dir: &Path) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "log"))
        .collect();
    v.sort();
    v
}

/// Builds a multi-segment log left as after a crash (not closed).
fn crashed_log(dir: &Path, cfg: &LogConfig) -> Vec<(i64, i64)> {
    let mut log = open(dir, cfg);
    for i in 0..40 {
        produce(&mut log, 1 + (i % 4) as usize, i);
    }
    read_all(&log)
}

/// After recovery the log must be a prefix of what was written.
fn assert_valid_prefix(log: &PartitionLog, before: &[(i64, i64)]) {
    let after = read_all(log);
    assert!(after.len() <= before.len());
    assert_eq!(&before[..after.len()], &after[..]);
    assert_eq!(log.log_end_offset().0, after.last().map_or(0, |b| b.1 + 1));
}

#[test]
fn recovery_truncates_torn_and_zeroed_tails() {
    let base = tempfile::tempdir().unwrap();
    let cfg = small_config();
    let pristine = base.path().join("pristine");
    let before = crashed_log(&pristine, &cfg);
    let logs = log_files(&pristine);
    assert!(logs.len() >= 3);

    // Truncated mid-batch (last segment).
    let d = base.path().join("torn");
    copy_dir(&pristine, &d);
    let last = log_files(&d).pop().unwrap();
    let (_, valid) = {
        let data = std::fs::read(&last).unwrap();
        let mut it = BatchIter::new(&data, Validation::Crc);
        while let Some(Ok(_)) = it.next() {}
        ((), it.valid_bytes())
    };
    std::fs::OpenOptions::new()
        .write(true)
        .open(&last)
        .unwrap()
        .set_len(valid as u64 - 7)
        .unwrap();
    let log = open(&d, &cfg);
    assert_valid_prefix(&log, &before);
    assert_eq!(read_all(&log).len(), before.len() - 1);
    drop(log);

    // Zero-filled tail inside the data (e.g. pages never written back).
    let d = base.path().join("zeroed");
    copy_dir(&pristine, &d);
    let last = log_files(&d).pop().unwrap();
    let mut data = std::fs::read(&last).unwrap();
    for b in &mut data[valid - 100..valid] {
        *b = 0;
    }
    std::fs::write(&last, &data).unwrap();
    let mut log = open(&d, &cfg);
    assert_valid_prefix(&log, &before);
    assert!(read_all(&log).len() < before.len());
    let end = log.log_end_offset();
    assert_eq!(
        produce(&mut log, 1, 0).first_offset,
        end,
        "appends continue after the valid prefix"
    );
    drop(log);

    // Garbage in a middle segment: it is truncated and later segments go.
    let d = base.path().join("middle");
    copy_dir(&pristine, &d);
    let mid = &log_files(&d)[1];
    let mut data = std::fs::read(mid).unwrap();
    let at = data.len() / 2;
    data[at] ^= 0xff;
    std::fs::write(mid, &data).unwrap();
    let log = open(&d, &cfg);
    assert_valid_prefix(&log, &before);
    assert_eq!(log.segment_count(), 2);
    assert!(log.load_report().deleted_segments >= 1);
    drop(log);

    // A recovery point past the corruption in an earlier segment: that
    // segment is trusted (as Kafka does), later ones are checked.
    let d = base.path().join("trusted");
    copy_dir(&pristine, &d);
    let log = PartitionLog::open(&d, cfg.clone(), false, Offset(1_000)).unwrap();
    assert_eq!(read_all(&log), before);
    assert_eq!(log.load_report().recovered_segments, 1);
}

#[test]
fn recovery_survives_random_corruption() {
    let base = tempfile::tempdir().unwrap();
    let cfg = small_config();
    let pristine = base.path().join("pristine");
    let before = crashed_log(&pristine, &cfg);
    let mut seed = 0x9e37_79b9_7f4a_7c15u64;
    let mut rand = move || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed
    };
    for round in 0..40 {
        let d = base.path().join(format!("r{round}"));
        copy_dir(&pristine, &d);
        let mut files: Vec<PathBuf> = std::fs::read_dir(&d)
            .unwrap()
            .map(|e| e.unwrap().path())
            .collect();
        files.sort();
        let target = &files[(rand() as usize) % files.len()];
        let mut data = std::fs::read(target).unwrap();
        match round % 4 {
            0 if !data.is_empty() => {
                for _ in 0..1 + rand() % 16 {
                    let at = (rand() as usize) % data.len();
                    data[at] = rand() as u8;
                }
            }
            1 => data.truncate((rand() as usize) % (data.len() + 1)),
            2 if !data.is_empty() => {
                let from = (rand() as usize) % data.len();
                data[from..].iter_mut().for_each(|b| *b = 0);
            }
            _ => {
                let from = (rand() as usize) % (data.len() + 1);
                let garbage: Vec<u8> = (0..64).map(|_| rand() as u8).collect();
                data.truncate(from);
                data.extend_from_slice(&garbage);
            }
        }
        std::fs::write(target, &data).unwrap();
        let clean = round % 5 == 0;
        let mut log = PartitionLog::open(&d, cfg.clone(), clean, Offset(0)).unwrap();
        if !clean {
            assert_valid_prefix(&log, &before);
        } else {
            // A clean shutdown trusts the files; reads must still be safe.
            let _ = log.read(log.log_start_offset(), 1 << 20, None);
        }
        let end = log.log_end_offset();
        assert_eq!(produce(&mut log, 2, 0).first_offset, end, "round {round}");
        drop(log);
        std::fs::remove_dir_all(&d).unwrap();
    }
}

#[test]
fn stray_files_are_removed_and_bad_indexes_rebuilt() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = small_config();
    let before = {
        let mut log = open(dir.path(), &cfg);
        for i in 0..40 {
            produce(&mut log, 3, i);
        }
        log.close().unwrap();
        read_all(&log_reopen(dir.path(), &cfg))
    };
    for name in [
        "00000000000000000000.log.deleted",
        "00000000000000000007.index.cleaned",
        "00000000000000000009.log.swap",
        "00000000000000099999.index",
        "00000000000000099999.timeindex",
    ] {
        std::fs::write(dir.path().join(name), b"junk").unwrap();
    }
    std::fs::write(dir.path().join("00000000000000000000.index"), [0xffu8; 24]).unwrap();
    let log = PartitionLog::open(dir.path(), cfg.clone(), true, Offset(0)).unwrap();
    assert_eq!(log.load_report().removed_files, 5);
    assert_eq!(read_all(&log), before);
    assert!(!dir.path().join("00000000000000099999.index").exists());
    // A swap above the lowest `.cleaned` offset is an unfinished split:
    // deleted, as Kafka's LogLoader does.
    assert!(!dir.path().join("00000000000000000009.log.swap").exists());
    assert!(
        std::fs::read(dir.path().join("00000000000000000000.index")).unwrap() != vec![0xffu8; 24]
    );
}

fn log_reopen(dir: &Path, cfg: &LogConfig) -> PartitionLog {
    let mut log = PartitionLog::open(dir, cfg.clone(), true, Offset(0)).unwrap();
    log.close().unwrap();
    PartitionLog::open(dir, cfg.clone(), true, Offset(0)).unwrap()
}

#[test]
fn log_start_checkpoint_beyond_data_empties_the_log() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = small_config();
    {
        let mut log = open(dir.path(), &cfg);
        produce(&mut log, 5, 0);
    }
    let opts = OpenOptions {
        clean_shutdown: false,
        recovery_point: Offset(0),
        log_start_offset: Offset(100),
    };
    let mut log = PartitionLog::open_with(dir.path(), cfg.clone(), opts, TimestampMs(0)).unwrap();
    assert_eq!(
        (log.log_start_offset(), log.log_end_offset()),
        (Offset(100), Offset(100))
    );
    assert_eq!(produce(&mut log, 1, 0).first_offset, Offset(100));
    let opts = OpenOptions {
        clean_shutdown: false,
        recovery_point: Offset(0),
        log_start_offset: Offset(3),
    };
    drop(log);
    let log = PartitionLog::open_with(dir.path(), cfg, opts, TimestampMs(0)).unwrap();
    assert_eq!(log.log_start_offset(), Offset(100));
}

#[test]
fn reads_stay_valid_after_retention_deletes_the_segment() {
    let dir = tempfile::tempdir().unwrap();
    let mut log = open(dir.path(), &small_config());
    for i in 0..60 {
        produce(&mut log, 3, i);
    }
    let held = log.read(Offset(0), 1 << 20, None).unwrap().records;
    let copy = held.to_vec();
    log.enforce_retention(TimestampMs(i64::MAX / 2), 0, -1)
        .unwrap();
    assert_eq!(log.log_start_offset(), log.log_end_offset());
    assert_eq!(&held[..], &copy[..]);
    assert!(BatchIter::new(&held, Validation::Crc).all(|b| b.is_ok()));
}

#[test]
fn create_time_records_outside_the_configured_window_are_invalid_timestamps() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = LogConfig { message_timestamp_before_max_ms: 60_000, ..small_config() };
    let mut log = open(dir.path(), &cfg);
    let now = TimestampMs(10_000_000);
    // Kafka 4's default message.timestamp.after.max.ms is one hour: a
    // record a day ahead would hold back time retention for good.
    let mut b = test_batch(3, now.0 + 86_400_000, None);
    let e = log.append(&mut b, now).unwrap_err();
    assert_eq!(e.error_code(), 32);
    assert!(matches!(e, StorageError::InvalidTimestamp { record_index: 0, .. }), "{e:?}");
    assert!(e.to_string().contains("is out of range. The timestamp should be within [9940000, 13600000]"), "{e}");
    // Only the last record is ahead: it is the one named.
    let mut b = test_batch(3, now.0 + 3_600_000 - 1, None);
    match log.append(&mut b, now).unwrap_err() {
        StorageError::InvalidTimestamp { record_index, offset_delta, timestamp, .. } => {
            assert_eq!((record_index, offset_delta, timestamp), (2, 2, now.0 + 3_600_001));
        }
        e => panic!("{e:?}"),
    }
    // Too old for message.timestamp.before.max.ms.
    let mut b = test_batch(1, now.0 - 60_001, None);
    assert_eq!(log.append(&mut b, now).unwrap_err().error_code(), 32);
    assert_eq!(log.log_end_offset(), Offset(0), "nothing was written");
    // At the edges of the window, and records without a timestamp, pass.
    let mut b = test_batch(1, now.0 - 60_000, None);
    log.append(&mut b, now).unwrap();
    let mut b = test_batch(1, now.0 + 3_600_000, None);
    log.append(&mut b, now).unwrap();
    let mut b = test_batch(1, -1, None);
    log.append(&mut b, now).unwrap();
    assert_eq!(log.log_end_offset(), Offset(3));
}

#[test]
fn log_append_time_topics_take_any_client_timestamp() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = LogConfig { message_timestamp_type: TimestampType::LogAppendTime, ..small_config() };
    let mut log = open(dir.path(), &cfg);
    let mut b = test_batch(2, 10_000_000 + 86_400_000, None);
    log.append(&mut b, TimestampMs(10_000_000)).unwrap();
}

#[test]
fn epoch_end_offsets_follow_kafkas_epoch_history() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = small_config();
    {
        let mut log = open(dir.path(), &cfg);
        // No history: one epoch from the log start.
        log.set_leader_epoch(3);
        for _ in 0..30 {
            produce(&mut log, 1, 0);
        }
        assert_eq!(log.end_offset_for_epoch(3), Some((3, Offset(30))));
        assert_eq!(log.end_offset_for_epoch(1), Some((1, Offset(0))));
        assert_eq!(log.end_offset_for_epoch(4), None);
        assert_eq!(log.end_offset_for_epoch(-1), None);
        log.close().unwrap();
    }
    // Kafka led epochs 0 (from 0), 2 (from 10) and 4 (from 25); klamm
    // runs at epoch 5, whose start Kafka's file does not know.
    let checkpoint = "0\n3\n0 0\n2 10\n4 25\n";
    std::fs::write(dir.path().join("leader-epoch-checkpoint"), checkpoint).unwrap();
    let mut log = PartitionLog::open(dir.path(), cfg.clone(), true, Offset(0)).unwrap();
    log.set_leader_epoch(5);
    assert_eq!(log.end_offset_for_epoch(0), Some((0, Offset(10))));
    assert_eq!(log.end_offset_for_epoch(1), Some((0, Offset(10))), "floor epoch, next start");
    assert_eq!(log.end_offset_for_epoch(2), Some((2, Offset(25))));
    assert_eq!(log.end_offset_for_epoch(3), Some((2, Offset(25))));
    assert_eq!(log.end_offset_for_epoch(4), Some((4, Offset(30))), "an upper bound: the log end");
    assert_eq!(log.end_offset_for_epoch(5), Some((5, Offset(30))));
    assert_eq!(log.end_offset_for_epoch(6), None);
    // klamm's epoch is Kafka's last: its start is known.
    log.set_leader_epoch(4);
    assert_eq!(log.end_offset_for_epoch(2), Some((2, Offset(25))));
    assert_eq!(log.end_offset_for_epoch(3), Some((2, Offset(25))));
    assert_eq!(log.end_offset_for_epoch(4), Some((4, Offset(30))));
    log.close().unwrap();
    assert_eq!(std::fs::read_to_string(dir.path().join("leader-epoch-checkpoint")).unwrap(), checkpoint, "never written");
}

fn produce_txn(log: &mut PartitionLog, pid: i64, epoch: i16, seq: i32, n: usize, ts: i64) -> AppendInfo {
    let mut b = BatchBuilder::new(0, TimestampMs(ts));
    b.producer(pid, epoch, seq).transactional(true);
    for i in 0..n {
        b.append(TimestampMs(ts), Some(format!("k{i}").as_bytes()), Some(b"v"), &[]);
    }
    let mut bytes = b.build();
    log.append(&mut bytes, TimestampMs(ts)).unwrap()
}

#[test]
fn transactions_bound_the_lso_and_markers_record_aborts_across_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = LogConfig::default();
    let now = TimestampMs::now().0;
    let mut log = open(dir.path(), &cfg);
    produce(&mut log, 2, now); // 0-1
    produce_txn(&mut log, 7, 0, 0, 3, now); // 2-4
    produce_txn(&mut log, 8, 0, 0, 1, now); // 5
    assert_eq!(log.last_stable_offset(), Offset(2));
    assert_eq!(log.log_end_offset(), Offset(6));
    let abort = log.append_marker(7, 0, false, 0, TimestampMs(now)).unwrap();
    assert_eq!(abort, Offset(6));
    assert_eq!(log.last_stable_offset(), Offset(5));
    let commit = log.append_marker(8, 0, true, 0, TimestampMs(now)).unwrap();
    assert_eq!(commit, Offset(7));
    assert_eq!(log.last_stable_offset(), Offset(8));
    let aborted = vec![AbortedTxn { producer_id: 7, first_offset: Offset(2), last_offset: Offset(6) }];
    assert_eq!(log.aborted_transactions(Offset(0), Offset(8)), aborted);
    // The marker is a control batch that reads back as Kafka writes it.
    let read = log.read(Offset(6), 1 << 20, None).unwrap();
    let batch = BatchIter::new(&read.records, Validation::Crc).next().unwrap().unwrap();
    assert!(batch.is_control() && batch.is_transactional());
    assert_eq!((batch.producer_id(), batch.producer_epoch(), batch.base_offset()), (7, 0, Offset(6)));
    assert_eq!(crate::storage::txn_index::marker_kind(&batch), Some(false));
    // A READ_COMMITTED read stops before an open transaction.
    produce_txn(&mut log, 7, 0, 3, 1, now); // 8, open
    produce(&mut log, 1, now); // 9
    assert_eq!(log.last_stable_offset(), Offset(8));
    let upto = log.read(Offset(8), 1 << 20, Some(Offset(8))).unwrap();
    assert!(upto.records.is_empty());
    // A marker with an older epoch than the producer's is refused; a
    // newer one fences the old epoch.
    log.append_marker(7, 1, false, 0, TimestampMs(now)).unwrap(); // 10
    assert!(matches!(log.append_marker(7, 0, true, 0, TimestampMs(now)), Err(StorageError::InvalidProducerEpoch { .. })));
    let mut stale = BatchBuilder::new(0, TimestampMs(now));
    stale.producer(7, 0, 4).transactional(true).append(TimestampMs(now), None, Some(b"zombie"), &[]);
    assert!(matches!(log.append(&mut stale.build(), TimestampMs(now)), Err(StorageError::InvalidProducerEpoch { .. })));
    produce_txn(&mut log, 8, 0, 1, 1, now); // 11, open
    drop(log);
    // Unclean reopen: the state is rebuilt from the log.
    let log = open(dir.path(), &cfg);
    assert_eq!(log.last_stable_offset(), Offset(11));
    let all = log.aborted_transactions(Offset(0), Offset(100));
    assert_eq!(all.len(), 2);
    assert_eq!(all[1], AbortedTxn { producer_id: 7, first_offset: Offset(8), last_offset: Offset(10) });
    assert_eq!(log.producer_state().entry(7).unwrap().epoch, 1);
}

#[test]
fn markers_carry_the_coordinator_epoch_through_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = small_config();
    let now = TimestampMs::now().0;
    let mut log = open(dir.path(), &cfg);
    produce_txn(&mut log, 7, 0, 0, 2, now); // 0-1, open
    let e = log.producer_state().entry(7).copied().unwrap();
    assert_eq!((e.coordinator_epoch, e.last_seq()), (-1, 1), "no marker yet");
    assert_eq!(log.txn_index().ongoing_first_offset(7), Some(Offset(0)));
    log.append_marker(7, 0, false, 3, TimestampMs(now + 5)).unwrap(); // 2
    let e = log.producer_state().entry(7).copied().unwrap();
    assert_eq!((e.coordinator_epoch, e.last_timestamp), (3, TimestampMs(now + 5)));
    assert_eq!(log.txn_index().ongoing_first_offset(7), None);
    // A marker from an older coordinator epoch is fenced.
    assert!(matches!(
        log.append_marker(7, 0, true, 2, TimestampMs(now)),
        Err(StorageError::CoordinatorFenced { coordinator_epoch: 2, current_coordinator_epoch: 3, .. })
    ));
    assert_eq!(log.log_end_offset(), Offset(3));
    drop(log);
    let log = open(dir.path(), &cfg);
    let entries = log.producer_state().entries();
    assert_eq!(entries.len(), 1);
    assert_eq!((entries[0].producer_id, entries[0].coordinator_epoch), (7, 3), "replayed from the marker");
}

fn txn_batch(pid: i64, epoch: i16, seq: i32, ts: i64) -> Vec<u8> {
    let mut b = BatchBuilder::new(0, TimestampMs(ts));
    b.producer(pid, epoch, seq).transactional(true).append(TimestampMs(ts), Some(b"k"), Some(b"v"), &[]);
    b.build()
}

#[test]
fn a_batch_verified_before_its_transaction_ended_does_not_open_a_hanging_one() {
    let dir = tempfile::tempdir().unwrap();
    let now = TimestampMs::now().0;
    let mut log = open(dir.path(), &LogConfig::default());
    // Verified, then the transaction ends (its marker is written) before
    // the batch arrives: the batch would open a transaction no one ends.
    let guard = log.begin_verification(7, 0, TimestampMs(now));
    log.append_marker(7, 0, false, 0, TimestampMs(now)).unwrap(); // 0
    let refused = log.append_deferring_flush(&mut txn_batch(7, 0, 0, now), TimestampMs(now), Some(guard));
    assert!(matches!(refused, Err(StorageError::TransactionNotVerified { producer_id: 7 })));
    assert_eq!(refused.unwrap_err().error_code(), 120);
    assert_eq!(log.log_end_offset(), Offset(1), "nothing written");
    assert_eq!(log.last_stable_offset(), Offset(1));
    // A fresh verification lets it in; later batches of the open
    // transaction need no live guard (its marker has not been written).
    let guard = log.begin_verification(7, 0, TimestampMs(now));
    assert_eq!(log.begin_verification(7, 0, TimestampMs(now)), guard, "pipelined requests share it");
    log.append_deferring_flush(&mut txn_batch(7, 0, 0, now), TimestampMs(now), Some(guard)).unwrap(); // 1
    log.append_deferring_flush(&mut txn_batch(7, 0, 1, now), TimestampMs(now), Some(guard)).unwrap(); // 2
    assert_eq!(log.last_stable_offset(), Offset(1));
    log.append_marker(7, 0, true, 0, TimestampMs(now)).unwrap(); // 3
    // The guard of the ended transaction cannot open the next one.
    let stale = log.append_deferring_flush(&mut txn_batch(7, 0, 2, now), TimestampMs(now), Some(guard));
    assert!(matches!(stale, Err(StorageError::TransactionNotVerified { .. })));
    // Unverified appends (verification off, internal writers) are as before.
    log.append_deferring_flush(&mut txn_batch(7, 0, 2, now), TimestampMs(now), None).unwrap(); // 4
    assert_eq!(log.last_stable_offset(), Offset(4));
}
