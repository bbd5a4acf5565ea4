//! `SealJob`: the disk I/O a roll owes, run after the partition lock is
//! released. A roll swaps in the new active segment under the lock and
//! seals the old one in place without I/O ([`Segment::begin_seal`]); the
//! flush, trim and fsync of the old segment's three files follow on the
//! blocking pool, so appends and reads of the partition go on meanwhile.
//!
//! Recovery stays correct because the recovery point (and so the
//! recovery-point checkpoint and the clean-shutdown marker, which close
//! writes only after every job ran) moves past the old segment only once
//! its job is done ([`PartitionLog::seals_completed`]): a crash between
//! the swap and the fsync recovers from the old segment, which the loader
//! CRC-checks and whose indexes it rebuilds.
//!
//! [`Segment::begin_seal`]: super::segment::Segment::begin_seal
//! [`PartitionLog::seals_completed`]: super::partition_log::PartitionLog::seals_completed

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};

use super::error::StorageError;
use super::segment::SegmentSync;
use crate::types::Offset;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum State {
    Pending,
    Running,
    Done,
    /// The last run failed; the next one retries.
    Failed,
}

struct Inner {
    /// The sealed segment is `[base_offset, end_offset)`.
    base_offset: Offset,
    end_offset: Offset,
    sync: SegmentSync,
    state: Mutex<State>,
    changed: Condvar,
    /// A runner was handed the job ([`SealJob::claim`]).
    claimed: AtomicBool,
    /// Test hook run before the I/O (to hold a roll's fsync).
    #[cfg(test)]
    before_io: Option<Arc<dyn Fn() + Send + Sync>>,
}

/// The pending fsync of one sealed segment (cheap to clone).
#[derive(Clone)]
pub struct SealJob {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for SealJob {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SealJob")
            .field("base_offset", &self.inner.base_offset)
            .field("end_offset", &self.inner.end_offset)
            .field("state", &*self.state())
            .finish()
    }
}

impl SealJob {
    pub(crate) fn new(
        base_offset: Offset,
        end_offset: Offset,
        sync: SegmentSync,
        #[cfg(test)] before_io: Option<Arc<dyn Fn() + Send + Sync>>,
    ) -> SealJob {
        SealJob {
            inner: Arc::new(Inner {
                base_offset,
                end_offset,
                sync,
                state: Mutex::new(State::Pending),
                changed: Condvar::new(),
                claimed: AtomicBool::new(false),
                #[cfg(test)]
                before_io,
            }),
        }
    }

    fn state(&self) -> MutexGuard<'_, State> {
        self.inner.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    pub fn base_offset(&self) -> Offset {
        self.inner.base_offset
    }

    /// Everything below this offset is durable once the job is done.
    pub fn end_offset(&self) -> Offset {
        self.inner.end_offset
    }

    pub fn is_done(&self) -> bool {
        *self.state() == State::Done
    }

    /// `true` for the first caller only: who runs it in the background.
    pub(crate) fn claim(&self) -> bool {
        !self.inner.claimed.swap(true, Ordering::AcqRel)
    }

    /// Runs the flush, trim and fsync, or waits for the runner already at
    /// it. Blocking; call it without the partition lock where possible.
    pub fn run(&self) -> Result<(), StorageError> {
        let mut st = self.state();
        loop {
            match *st {
                State::Done => return Ok(()),
                State::Running => {
                    st = self.inner.changed.wait(st).unwrap_or_else(PoisonError::into_inner);
                }
                State::Pending | State::Failed => break,
            }
        }
        *st = State::Running;
        drop(st);
        #[cfg(test)]
        if let Some(hook) = &self.inner.before_io {
            hook();
        }
        let result = self.inner.sync.run();
        *self.state() = if result.is_ok() { State::Done } else { State::Failed };
        self.inner.changed.notify_all();
        result
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;
    use std::sync::mpsc;
    use std::time::{Duration, Instant};

    use crate::records::builder::test_batch;
    use crate::records::{BatchIter, Validation};
    use crate::storage::{finish_rolls, LogConfig, PartitionLog, SharedLog};
    use crate::types::{Offset, TimestampMs};

    fn cfg() -> LogConfig {
        LogConfig {
            segment_bytes: 1024,
            segment_index_bytes: 8 * 64,
            index_interval_bytes: 200,
            ..LogConfig::default()
        }
    }

    fn lock(log: &SharedLog) -> std::sync::MutexGuard<'_, PartitionLog> {
        log.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn produce(log: &mut PartitionLog) {
        let mut b = test_batch(4, 1_000, None);
        log.append(&mut b, TimestampMs(1_000)).unwrap();
    }

    /// Every batch from the log start, CRC-checked and contiguous.
    fn all_offsets(log: &PartitionLog) -> Vec<(i64, i64)> {
        let mut out = Vec::new();
        let mut next = log.log_start_offset();
        while next < log.log_end_offset() {
            let read = log.read(next, 1 << 20, None).unwrap();
            assert!(!read.records.is_empty());
            for b in BatchIter::new(&read.records, Validation::Crc) {
                let b = b.unwrap();
                assert_eq!(b.base_offset(), next);
                out.push((b.base_offset().0, b.last_offset().0));
                next = b.next_offset();
            }
        }
        out
    }

    fn copy_dir(from: &Path, to: &Path) {
        std::fs::create_dir_all(to).unwrap();
        for e in std::fs::read_dir(from).unwrap() {
            let e = e.unwrap();
            std::fs::copy(e.path(), to.join(e.file_name())).unwrap();
        }
    }

    #[test]
    fn a_roll_fsyncs_the_old_segment_without_the_lock_and_a_crash_before_it_recovers() {
        let dir = tempfile::tempdir().unwrap();
        let data = dir.path().join("t-0");
        let (entered_tx, entered) = mpsc::channel::<()>();
        let (release, release_rx) = mpsc::channel::<()>();
        let release_rx = std::sync::Mutex::new(release_rx);
        let entered_tx = std::sync::Mutex::new(entered_tx);
        let mut log = PartitionLog::open(&data, cfg(), false, Offset(0)).unwrap();
        log.seal_hook = Some(std::sync::Arc::new(move || {
            let _ = entered_tx.lock().unwrap().send(());
            let _ = release_rx.lock().unwrap().recv_timeout(Duration::from_secs(30));
        }));
        let log: SharedLog = std::sync::Arc::new(std::sync::Mutex::new(log));
        // Fill the first segment, then roll.
        let jobs = {
            let mut l = lock(&log);
            while l.segment_count() == 1 {
                produce(&mut l);
            }
            assert!(l.recovery_point() < l.segment_base_offsets()[1], "not flushed yet");
            l.take_seal_work()
        };
        assert_eq!(jobs.len(), 1);
        let old_base = jobs[0].base_offset();
        let new_base = jobs[0].end_offset();
        let runner = {
            let log = log.clone();
            std::thread::spawn(move || finish_rolls(&log, jobs))
        };
        entered.recv_timeout(Duration::from_secs(10)).expect("the roll's fsync started");
        // The fsync is held: the partition lock is free, appends and reads go on.
        let deadline = Instant::now() + Duration::from_secs(5);
        let before_crash = loop {
            if let Ok(mut l) = log.try_lock() {
                produce(&mut l);
                assert!(!l.read(old_base, 1 << 20, None).unwrap().records.is_empty());
                // Neither the recovery point nor a flush claims the old
                // segment durable while its fsync is outstanding.
                assert!(l.recovery_point() <= old_base, "{:?}", l.recovery_point());
                break all_offsets(&l);
            }
            assert!(Instant::now() < deadline, "the lock is held during the roll's fsync");
            std::thread::sleep(Duration::from_millis(5));
        };
        // A crash now: the files as they are (the old segment's indexes
        // still preallocated, nothing trimmed or fsynced), and the
        // recovery point the checkpoint would have.
        let recovery_point = lock(&log).recovery_point();
        let crashed = dir.path().join("crashed-0");
        copy_dir(&data, &crashed);
        let reopened = PartitionLog::open(&crashed, cfg(), false, recovery_point).unwrap();
        assert_eq!(all_offsets(&reopened), before_crash);
        assert!(reopened.load_report().recovered_segments >= 2, "the old segment is recovered");
        drop(reopened);
        // And a power loss that dropped the old segment's unsynced tail:
        // recovery cuts it and the later segment, serving a valid prefix.
        let lost = dir.path().join("lost-0");
        copy_dir(&data, &lost);
        let old_log = crate::storage::files::offset_file(&lost, old_base, crate::storage::files::LOG_SUFFIX);
        let len = std::fs::metadata(&old_log).unwrap().len();
        std::fs::OpenOptions::new().write(true).open(&old_log).unwrap().set_len(len - 10).unwrap();
        let reopened = PartitionLog::open(&lost, cfg(), false, recovery_point).unwrap();
        let kept = all_offsets(&reopened);
        assert!(kept.len() < before_crash.len() && before_crash.starts_with(&kept));
        assert!(reopened.log_end_offset() < new_base);
        drop(reopened);

        release.send(()).unwrap();
        runner.join().unwrap().unwrap();
        let l = lock(&log);
        assert!(l.recovery_point() >= new_base, "recorded once fsynced");
        let index = crate::storage::files::offset_file(&data, old_base, crate::storage::files::INDEX_SUFFIX);
        assert!(std::fs::metadata(&index).unwrap().len() < 8 * 64, "trimmed after the lock");
    }

    #[test]
    fn close_runs_outstanding_roll_fsyncs_before_the_log_is_marked_clean() {
        let dir = tempfile::tempdir().unwrap();
        let mut log = PartitionLog::open(dir.path(), cfg(), false, Offset(0)).unwrap();
        for _ in 0..40 {
            produce(&mut log);
        }
        assert!(log.segment_count() > 3);
        assert!(!log.unsynced_seals().is_empty(), "no one ran them");
        let end = log.log_end_offset();
        log.close().unwrap();
        assert_eq!(log.recovery_point(), end);
        assert!(log.unsynced_seals().is_empty());
        drop(log);
        let log = PartitionLog::open(dir.path(), cfg(), true, end).unwrap();
        assert_eq!(log.log_end_offset(), end);
        assert_eq!(log.load_report().recovered_segments, 0);
    }
}
