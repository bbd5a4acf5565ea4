//! Criterion benchmarks of `klamm::storage`: appending produce batches to a
//! partition log, offset index lookups, and recovery (opening a log after an
//! unclean shutdown, which re-reads and re-indexes every batch).
//!
//! The recovered log's size is `KLAMM_BENCH_RECOVERY_MB` (default 64; the
//! full run uses 1024, i.e. 1 GiB).

use std::path::Path;
use std::time::{Duration, Instant};

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use klamm::records::BatchBuilder;
use klamm::storage::{LogConfig, OffsetIndex, PartitionLog};
use klamm::types::{FilePosition, Offset, TimestampMs};

/// A v2 batch of `count` records of `value_bytes` each.
fn batch(count: usize, value_bytes: usize) -> Vec<u8> {
    let value = vec![b'v'; value_bytes];
    let now = TimestampMs::now();
    let mut b = BatchBuilder::new(0, now);
    for _ in 0..count {
        b.append(now, None, Some(&value), &[]);
    }
    b.build()
}

fn open_log(dir: &Path) -> PartitionLog {
    PartitionLog::open(dir, LogConfig::default(), true, Offset(0)).expect("open log")
}

fn bench_append(c: &mut Criterion) {
    let mut g = c.benchmark_group("segment_append");
    // Logs are recreated (untimed) every this many bytes so disk use stays bounded.
    const RECYCLE_BYTES: usize = 256 * 1024 * 1024;
    for (count, value_bytes) in [(1, 100), (650, 100), (64, 1024)] {
        let template = batch(count, value_bytes);
        g.throughput(Throughput::Bytes(template.len() as u64));
        g.bench_function(format!("{count}x{value_bytes}B"), |b| {
            b.iter_custom(|iters| {
                let mut timed = Duration::ZERO;
                let mut dir = tempfile::tempdir().expect("tempdir");
                let mut log = open_log(dir.path());
                let mut written = 0usize;
                let mut input = template.clone();
                for _ in 0..iters {
                    if written >= RECYCLE_BYTES {
                        drop(log);
                        dir = tempfile::tempdir().expect("tempdir");
                        log = open_log(dir.path());
                        written = 0;
                    }
                    input.copy_from_slice(&template);
                    let now = TimestampMs::now();
                    let t0 = Instant::now();
                    let info = log.append(&mut input, now).expect("append");
                    timed += t0.elapsed();
                    written += info.size_bytes;
                }
                timed
            })
        });
    }
    g.finish();
}

fn bench_index_lookup(c: &mut Criterion) {
    let mut g = c.benchmark_group("index_lookup");
    let dir = tempfile::tempdir().expect("tempdir");
    // A full default-size (10 MiB) index: 1,310,720 entries.
    let capacity_bytes = 10 * 1024 * 1024;
    let mut index = OffsetIndex::create(&dir.path().join("0.index"), Offset(0), capacity_bytes).expect("create");
    let mut i: i64 = 0;
    while !index.is_full() {
        let appended = index
            .append(Offset(i * 40), FilePosition(i as u32 * 64))
            .expect("append");
        assert!(appended);
        i += 1;
    }
    let entries = index.entries() as i64;
    let max_offset = entries * 40;
    g.bench_function(format!("{entries}_entries/random"), |b| {
        let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
        b.iter(|| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            index.lookup(Offset((x % max_offset as u64) as i64))
        })
    });
    g.bench_function(format!("{entries}_entries/tail"), |b| {
        let mut k: i64 = 0;
        b.iter(|| {
            k = (k + 1) % 1000;
            index.lookup(Offset(max_offset - k * 40))
        })
    });
    g.finish();
}

fn recovery_bytes() -> u64 {
    std::env::var("KLAMM_BENCH_RECOVERY_MB").ok().and_then(|v| v.parse::<u64>().ok()).unwrap_or(64) * 1024 * 1024
}

fn bench_recovery(c: &mut Criterion) {
    let mut g = c.benchmark_group("recovery");
    g.sample_size(10);
    let target = recovery_bytes();
    let dir = tempfile::tempdir().expect("tempdir");
    {
        let mut log = open_log(dir.path());
        let template = batch(650, 100);
        let mut input = template.clone();
        while log.size_bytes() < target {
            input.copy_from_slice(&template);
            log.append(&mut input, TimestampMs::now()).expect("append");
        }
        log.close().expect("close");
    }
    let size = open_log(dir.path()).size_bytes();
    g.throughput(Throughput::Bytes(size));
    g.bench_function(format!("unclean_open/{}MiB", size / 1024 / 1024), |b| {
        b.iter(|| {
            let mut log = PartitionLog::open(dir.path(), LogConfig::default(), false, Offset(0)).expect("recover");
            assert!(log.size_bytes() >= target);
            // Every segment was scanned batch by batch with CRC checks.
            assert_eq!(log.load_report().recovered_segments, log.segment_count());
            log.close().expect("close");
        })
    });
    g.finish();
}

criterion_group!(benches, bench_append, bench_index_lookup, bench_recovery);
criterion_main!(benches);
