//! The broker-wide bound on mapped inactive segments. Each segment's three
//! files (log, offset index, time index) are three memory maps, and Linux
//! allows a process `vm.max_map_count` of them (65,530 by default): with
//! every segment mapped from start, klamm could not hold more than about
//! 21,000 segments. As Kafka does for its indexes, only the active segment
//! of each partition stays mapped; an inactive (sealed) segment is mapped
//! on first use through a [`Lazy`] and unmapped again when it is the least
//! recently used of more than [`max_mapped_inactive_segments`]
//! ([`DEFAULT_MAX_MAPPED_INACTIVE_SEGMENTS`] unless the broker sets it).
//!
//! A reader takes an `Arc` of the mapped files; unmapping only drops the
//! cache's own `Arc`, so a fetch that holds a view (or `Bytes` of it) keeps
//! it valid until it is done, and a lookup after an unmap maps again.
//!
//! Lock order: the cache's lock, then a slot's lock. A slot's lock is held
//! while it maps its files (a few system calls); the cache's never is.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError, Weak};
use std::time::{Duration, Instant};

use super::error::StorageError;

/// Default of [`max_mapped_inactive_segments`]: 4,096 segments are 12,288
/// maps, under a fifth of Linux's default `vm.max_map_count`, leaving the
/// rest for active segments (three maps per partition) and reads in flight.
pub const DEFAULT_MAX_MAPPED_INACTIVE_SEGMENTS: usize = 4096;

static MAX_MAPPED: AtomicUsize = AtomicUsize::new(DEFAULT_MAX_MAPPED_INACTIVE_SEGMENTS);

/// How many inactive segments may stay mapped, broker-wide (each is three
/// memory maps).
pub fn max_mapped_inactive_segments() -> usize {
    MAX_MAPPED.load(Ordering::Relaxed)
}

/// Sets [`max_mapped_inactive_segments`] (at least 1); applies from the
/// next segment mapped.
pub fn set_max_mapped_inactive_segments(segments: usize) {
    MAX_MAPPED.store(segments.max(1), Ordering::Relaxed);
}

/// Inactive segments mapped now (by the cache; readers may keep a few more
/// alive for the duration of a read).
pub fn mapped_inactive_segments() -> usize {
    cache().entries.len()
}

/// Something the cache can unmap.
trait Evict: Send + Sync {
    /// Drops the cached value, returned so that it is dropped (unmapped)
    /// after the cache's lock is released; `None` if the slot is busy
    /// mapping (its own touch follows) or already empty.
    fn take(&self) -> Option<Box<dyn Send>>;
    fn tick(&self) -> &AtomicU64;
}

/// Least recently used first: key is the tick of the last use, with the
/// time of that use.
struct Cache {
    entries: BTreeMap<u64, (Weak<dyn Evict>, Instant)>,
    next_tick: u64,
}

impl Cache {
    /// Takes the least recently used slot out of the cache, with its value
    /// (both to be dropped after the cache's lock is released).
    fn pop_oldest(&mut self, evicted: &mut Vec<Box<dyn Send>>, victims: &mut Vec<Arc<dyn Evict>>) -> bool {
        let Some((_, (weak, _))) = self.entries.pop_first() else { return false };
        if let Some(victim) = weak.upgrade() {
            victim.tick().store(0, Ordering::Relaxed);
            evicted.extend(victim.take());
            // Dropped after the lock: the last `Arc` of a slot removes
            // it from the cache.
            victims.push(victim);
        }
        true
    }

    /// Takes out every slot last used before `cutoff` (oldest first: the
    /// cache's order is the order of use).
    fn pop_used_before(&mut self, cutoff: Instant, evicted: &mut Vec<Box<dyn Send>>, victims: &mut Vec<Arc<dyn Evict>>) -> usize {
        let mut n = 0;
        while self.entries.first_key_value().is_some_and(|(_, (_, used))| *used < cutoff) {
            self.pop_oldest(evicted, victims);
            n += 1;
        }
        n
    }
}

/// Unmaps every inactive segment not used for `idle` (the broker's
/// housekeeping calls it on `klamm.log.mapped.segment.idle.ms`): a
/// segment read once, e.g. by a consumer catching up, does not keep its
/// three maps and its page-table entries until the count bound pushes it
/// out. Returns how many were unmapped.
pub fn unmap_idle(idle: Duration) -> usize {
    let Some(cutoff) = Instant::now().checked_sub(idle) else { return 0 };
    let mut evicted: Vec<Box<dyn Send>> = Vec::new();
    let mut victims: Vec<Arc<dyn Evict>> = Vec::new();
    let n = cache().pop_used_before(cutoff, &mut evicted, &mut victims);
    drop(evicted);
    drop(victims);
    n
}

static CACHE: Mutex<Cache> = Mutex::new(Cache {
    entries: BTreeMap::new(),
    next_tick: 1,
});

fn cache() -> MutexGuard<'static, Cache> {
    CACHE.lock().unwrap_or_else(PoisonError::into_inner)
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Marks `slot` as just used and unmaps the least recently used slots
/// beyond the bound.
fn touch(slot: Arc<dyn Evict>) {
    let max = max_mapped_inactive_segments();
    let mut evicted: Vec<Box<dyn Send>> = Vec::new();
    let mut victims: Vec<Arc<dyn Evict>> = Vec::new();
    {
        let mut c = cache();
        let old = slot.tick().load(Ordering::Relaxed);
        if old != 0 {
            c.entries.remove(&old);
        }
        let tick = c.next_tick;
        c.next_tick += 1;
        slot.tick().store(tick, Ordering::Relaxed);
        c.entries.insert(tick, (Arc::downgrade(&slot), Instant::now()));
        while c.entries.len() > max {
            if !c.pop_oldest(&mut evicted, &mut victims) {
                break;
            }
        }
    }
    drop(evicted);
    drop(victims);
}

/// A value (a sealed segment's mapped files) opened on first use, kept
/// while it is among the [`max_mapped_inactive_segments`] most recently
/// used, and opened again after that.
pub(crate) struct Lazy<T: Send + Sync + 'static> {
    open: Box<dyn Fn() -> Result<T, StorageError> + Send + Sync>,
    value: Mutex<Option<Arc<T>>>,
    /// Key in the cache; 0 while not in it. Changed under the cache's lock.
    tick: AtomicU64,
}

impl<T: Send + Sync + 'static> Lazy<T> {
    /// A slot that opens its value with `open`, starting with `initial`
    /// (already opened, e.g. by recovery) if given.
    pub(crate) fn new(
        open: impl Fn() -> Result<T, StorageError> + Send + Sync + 'static,
        initial: Option<T>,
    ) -> Arc<Lazy<T>> {
        let has_initial = initial.is_some();
        let lazy = Arc::new(Lazy {
            open: Box::new(open),
            value: Mutex::new(initial.map(Arc::new)),
            tick: AtomicU64::new(0),
        });
        if has_initial {
            touch(lazy.clone());
        }
        lazy
    }

    /// The value, opening it if it is not open.
    pub(crate) fn get(self: &Arc<Self>) -> Result<Arc<T>, StorageError> {
        let value = {
            let mut v = lock(&self.value);
            match &*v {
                Some(value) => Arc::clone(value),
                None => {
                    let value = Arc::new((self.open)()?);
                    *v = Some(Arc::clone(&value));
                    value
                }
            }
        };
        touch(self.clone());
        Ok(value)
    }

    /// Whether the value is open now (for tests).
    pub(crate) fn is_open(&self) -> bool {
        lock(&self.value).is_some()
    }
}

impl<T: Send + Sync + 'static> Evict for Lazy<T> {
    fn take(&self) -> Option<Box<dyn Send>> {
        let mut v = match self.value.try_lock() {
            Ok(v) => v,
            Err(std::sync::TryLockError::Poisoned(p)) => p.into_inner(),
            Err(std::sync::TryLockError::WouldBlock) => return None,
        };
        v.take().map(|value| Box::new(value) as Box<dyn Send>)
    }

    fn tick(&self) -> &AtomicU64 {
        &self.tick
    }
}

impl<T: Send + Sync + 'static> Drop for Lazy<T> {
    fn drop(&mut self) {
        let tick = self.tick.load(Ordering::Relaxed);
        if tick != 0 {
            let mut c = cache();
            if c.entries.get(&tick).is_some_and(|(w, _)| w.strong_count() == 0) {
                c.entries.remove(&tick);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_reopen_after_eviction_and_held_values_stay_valid() {
        let opened = Arc::new(AtomicUsize::new(0));
        let slots: Vec<_> = (0..3)
            .map(|i| {
                let opened = opened.clone();
                Lazy::new(
                    move || {
                        opened.fetch_add(1, Ordering::Relaxed);
                        Ok(vec![i as u8; 4])
                    },
                    None,
                )
            })
            .collect();
        assert!(!slots[0].is_open());
        let held = slots[0].get().unwrap();
        assert!(slots[0].is_open());
        for s in &slots {
            assert_eq!(s.get().unwrap().len(), 4);
        }
        assert_eq!(opened.load(Ordering::Relaxed), 3);
        assert_eq!(*held, vec![0u8; 4]);
        let ticks: Vec<u64> = slots.iter().map(|s| s.tick.load(Ordering::Relaxed)).collect();
        drop(slots);
        let c = cache();
        assert!(ticks.iter().all(|t| !c.entries.contains_key(t)), "dropped slots leave the cache");
    }

    #[test]
    fn slots_idle_past_the_cutoff_are_unmapped_oldest_first() {
        // A private cache: the process-wide one is shared by every test.
        let mut c = Cache { entries: BTreeMap::new(), next_tick: 1 };
        let start = Instant::now();
        let slots: Vec<Arc<Lazy<u8>>> = (0..3)
            .map(|i| {
                let slot = Arc::new(Lazy { open: Box::new(move || Ok(i)), value: Mutex::new(Some(Arc::new(i))), tick: AtomicU64::new(0) });
                let tick = c.next_tick;
                c.next_tick += 1;
                slot.tick.store(tick, Ordering::Relaxed);
                let weak: Weak<dyn Evict> = Arc::downgrade(&(slot.clone() as Arc<dyn Evict>));
                c.entries.insert(tick, (weak, start + Duration::from_secs(10 * i as u64)));
                slot
            })
            .collect();
        let (mut evicted, mut victims) = (Vec::new(), Vec::new());
        assert_eq!(c.pop_used_before(start, &mut evicted, &mut victims), 0);
        assert_eq!(c.pop_used_before(start + Duration::from_secs(15), &mut evicted, &mut victims), 2);
        drop((evicted, victims));
        assert!(!slots[0].is_open() && !slots[1].is_open() && slots[2].is_open());
        assert_eq!(c.entries.len(), 1);
        // An unmapped slot maps again on use.
        assert_eq!(*slots[0].get().unwrap(), 0);
        drop(slots);
        unmap_idle(Duration::from_secs(3_600));
    }
}

#[cfg(test)]
mod log_tests {
    use super::*;
    use crate::records::builder::test_batch;
    use crate::records::{BatchIter, Validation};
    use crate::storage::mmap::live_maps_under;
    use crate::storage::{LogConfig, PartitionLog};
    use crate::types::{Offset, TimestampMs};

    /// The only test that changes the process-wide bound (it only lowers
    /// it: other tests then map and unmap more, which they must survive).
    const TEST_BOUND_SEGMENTS: usize = 6;

    fn finish_rolls(log: &mut PartitionLog) {
        for job in log.take_seal_work() {
            job.run().unwrap();
        }
        log.seals_completed();
    }

    #[test]
    fn a_log_with_more_segments_than_the_bound_serves_every_one_within_it() {
        set_max_mapped_inactive_segments(TEST_BOUND_SEGMENTS);
        // Three maps per segment: the bound, plus the active segment.
        let most_maps = 3 * (TEST_BOUND_SEGMENTS + 1);
        let dir = tempfile::tempdir().unwrap();
        let cfg = LogConfig {
            segment_bytes: 512,
            segment_index_bytes: 8 * 16,
            index_interval_bytes: 100,
            ..LogConfig::default()
        };
        let mut log = PartitionLog::open(dir.path(), cfg.clone(), false, Offset(0)).unwrap();
        for i in 0..300 {
            let mut b = test_batch(3, 1_000 + i, None);
            log.append(&mut b, TimestampMs(1_000 + i)).unwrap();
            finish_rolls(&mut log);
            assert!(live_maps_under(dir.path()) <= most_maps, "after append {i}");
        }
        let segments = log.segment_count();
        assert!(segments > 10 * TEST_BOUND_SEGMENTS, "{segments} segments");
        // `held`: maps kept alive by a reader beyond the bound.
        let check_every_segment = |log: &PartitionLog, held: usize| {
            for base in log.segment_base_offsets() {
                let read = log.read(base, 1 << 20, None).unwrap();
                assert!(!read.records.is_empty(), "segment {base:?}");
                let first = BatchIter::new(&read.records, Validation::Crc).next().unwrap().unwrap();
                assert_eq!(first.base_offset(), base);
                // Timestamp lookups map the indexes too.
                let found = log.offset_for_timestamp(TimestampMs(first.max_timestamp().0)).unwrap().unwrap();
                assert!(found.offset <= first.last_offset());
                drop(read);
                assert!(live_maps_under(dir.path()) <= most_maps + held, "reading {base:?}");
            }
        };
        check_every_segment(&log, 0);
        // A view held by a reader stays valid while others are unmapped
        // (its log's map is the one more), and so does a read planned under
        // the lock and done after it (its index is one more).
        let held = log.read(Offset(0), 1 << 20, None).unwrap();
        let planned = log.read_plan(Offset(3), 1 << 20, None).unwrap();
        check_every_segment(&log, 2);
        assert!(BatchIter::new(&held.records, Validation::Crc).all(|b| b.is_ok()));
        let done = planned.execute().unwrap();
        let first = BatchIter::new(&done.records, Validation::Crc).next().unwrap().unwrap();
        assert!(first.base_offset() <= Offset(3) && Offset(3) <= first.last_offset());
        drop((held, done));
        log.close().unwrap();
        drop(log);
        assert_eq!(live_maps_under(dir.path()), 0);
        // Restart, clean and after a crash (every segment CRC-checked).
        for clean in [true, false] {
            let log = PartitionLog::open(dir.path(), cfg.clone(), clean, Offset(0)).unwrap();
            assert_eq!(log.segment_count(), segments);
            assert!(live_maps_under(dir.path()) <= most_maps, "after open (clean: {clean})");
            check_every_segment(&log, 0);
            drop(log);
        }
    }
}
