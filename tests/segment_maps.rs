//! Issue 9, item 10: a broker with thousands of segments keeps its memory
//! maps within `klamm.log.max.mapped.inactive.segments` (here lowered), so
//! Linux's `vm.max_map_count` (65,530 by default, about 21,000 segments at
//! three maps each when every segment was mapped) no longer caps how many
//! segments klamm can hold or restart with. Writes thousands of one-batch
//! segments through the storage API as the broker does (a roll's fsync run
//! after the partition lock), restarts cleanly and after a crash, and reads
//! every segment, counting this process's maps of the data directory both
//! with klamm's counter and, on Linux, in `/proc/self/maps`.

use std::path::Path;

use klamm::records::builder::BatchBuilder;
use klamm::records::{BatchIter, Validation};
use klamm::storage::{finish_rolls, map_cache, mmap, LogConfig, LogManager, CLEAN_SHUTDOWN_FILE};
use klamm::types::{Offset, TimestampMs, TopicPartition};

const PARTITIONS: i32 = 4;
const SEGMENTS_PER_PARTITION: usize = 750;
const BOUND_SEGMENTS: usize = 50;

/// The bound's maps, plus each partition's active segment.
fn most_maps() -> usize {
    3 * (BOUND_SEGMENTS + PARTITIONS as usize)
}

/// Mappings of files under `dir` that the kernel lists for this process.
fn kernel_maps_under(dir: &Path) -> Option<usize> {
    let maps = std::fs::read_to_string("/proc/self/maps").ok()?;
    let dir = dir.to_str()?;
    Some(maps.lines().filter(|l| l.contains(dir)).count())
}

fn assert_within_bound(dir: &Path, when: &str) {
    let ours = mmap::live_maps_under(dir);
    assert!(ours <= most_maps(), "{when}: {ours} maps, bound {}", most_maps());
    if let Some(kernel) = kernel_maps_under(dir) {
        assert!(kernel <= most_maps(), "{when}: the kernel lists {kernel} maps");
    }
}

fn config() -> LogConfig {
    // One batch per segment: every append rolls.
    LogConfig { segment_bytes: 120, segment_index_bytes: 64, index_interval_bytes: 4096, ..LogConfig::default() }
}

fn batch(i: usize) -> Vec<u8> {
    let ts = TimestampMs(1_700_000_000_000 + i as i64);
    let value = format!("value-{i:06}");
    let mut b = BatchBuilder::new(0, ts);
    b.append(ts, Some(b"k"), Some(value.as_bytes()), &[]);
    b.build()
}

fn read_every_segment(m: &LogManager, dir: &Path, when: &str) {
    for p in 0..PARTITIONS {
        let log = m.get(&TopicPartition::new("many", p)).unwrap();
        let bases = log.lock().unwrap().segment_base_offsets();
        assert!(bases.len() >= SEGMENTS_PER_PARTITION, "{when}: {} segments", bases.len());
        for base in bases.iter().take(SEGMENTS_PER_PARTITION) {
            let read = log.lock().unwrap().read(*base, 1 << 20, None).unwrap();
            let first = BatchIter::new(&read.records, Validation::Crc).next().unwrap().unwrap();
            assert_eq!(first.base_offset(), *base, "{when}");
        }
        assert_within_bound(dir, when);
    }
}

#[test]
fn thousands_of_segments_restart_and_serve_within_the_map_bound() {
    map_cache::set_max_mapped_inactive_segments(BOUND_SEGMENTS);
    // Thousands of segments are thousands of fsyncs: on a RAM file system
    // where there is one (what is measured is maps, not the disk).
    let shm = Path::new("/dev/shm");
    let tmp = if shm.is_dir() { tempfile::tempdir_in(shm) } else { tempfile::tempdir() }.unwrap();
    let dir = tmp.path();
    let m = LogManager::open(dir, config()).unwrap();
    for p in 0..PARTITIONS {
        let log = m.get_or_create(&TopicPartition::new("many", p), config()).unwrap();
        for i in 0..=SEGMENTS_PER_PARTITION {
            let mut b = batch(i);
            let rolled = {
                let mut l = log.lock().unwrap();
                l.append(&mut b, TimestampMs::now()).unwrap();
                l.take_seal_work()
            };
            finish_rolls(&log, rolled).unwrap();
        }
        assert_eq!(log.lock().unwrap().log_end_offset(), Offset(SEGMENTS_PER_PARTITION as i64 + 1));
        assert_within_bound(dir, "while writing");
    }
    read_every_segment(&m, dir, "before restart");
    m.shutdown().unwrap();
    drop(m);
    assert_eq!(mmap::live_maps_under(dir), 0);

    let m = LogManager::open(dir, config()).unwrap();
    assert!(m.had_clean_shutdown());
    assert_within_bound(dir, "after a clean restart");
    read_every_segment(&m, dir, "after a clean restart");
    m.checkpoint_all().unwrap();
    drop(m); // a crash: no clean-shutdown marker

    assert!(!dir.join(CLEAN_SHUTDOWN_FILE).exists());
    let m = LogManager::open(dir, config()).unwrap();
    assert!(!m.had_clean_shutdown());
    assert_within_bound(dir, "after recovery");
    read_every_segment(&m, dir, "after recovery");
}
