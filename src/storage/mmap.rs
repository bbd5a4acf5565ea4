//! `MappedFile`: a file mapped once, written append-only by a single writer,
//! and read zero-copy by many readers. This is the only file in the crate
//! that contains `unsafe`.
//!
//! Two ways to write, chosen at creation ([`WriteMode`]):
//! - **`Pwrite`** (segment logs): positioned writes through a descriptor
//!   held while the file is writable; the mapping is read-only and may
//!   reach past the end of the file, which grows with each write. A full
//!   disk is an `ENOSPC` error from the write, the pages written never enter
//!   this process's page tables, and nothing is zeroed first.
//! - **`Map`** (the small sparse indexes): the file is sized to its
//!   capacity and written through a read-write mapping; no descriptor is
//!   kept (as Kafka closes index files once mapped), so thousands of
//!   partitions do not run into the open-files limit.
//!
//! Soundness rests on three invariants, upheld by this type alone:
//! 1. **Bounds**: the mapping is at least `capacity` bytes long and
//!    `published_len <= capacity`. The file is at least `published_len`
//!    bytes long (with `Pwrite`, bytes are published only after their write
//!    returned), at least `capacity` bytes long while written through the
//!    map, and exactly the mapped length when opened read-only (a file
//!    sealed in place keeps its longer mapping while its trim to
//!    `published_len` runs, see [`MappedFile::seal_in_place`]). Reads stay below
//!    `published_len`, map writes below `capacity`: no access reaches a
//!    page past the end of the file.
//! 2. **Aliasing**: bytes below `published_len` are never written again (the
//!    file only grows, `trim_to` never cuts below `published_len`). Writes
//!    go only to `[published_len, capacity)`, which no slice covers, and only
//!    through `&mut self`, so there is one writer at a time.
//! 3. **Lifetime**: zero-copy `Bytes` hold an `Arc` of the mapping, so the
//!    mapping outlives every slice even after the `MappedFile` is dropped or
//!    its file deleted.
//!
//! A segment log's mapping also keeps the descriptor it was mapped from
//! (the writer's while active, a read-only one once sealed), so that a
//! plaintext connection can send a `Bytes` of it with `sendfile(2)` from
//! the same file instead of copying the mapped bytes ([`file_range`]): by
//! invariant 2 the file holds the same bytes at the same positions, and the
//! descriptor reads that file even after the cleaner renamed another one
//! over its path or retention deleted it.
//!
//! A write through the map to a sparse page the file system cannot
//! allocate (disk full) would raise SIGBUS, so `Map` files are written only
//! below what [`MappedFile::reserve`] has allocated by writing zeros (an
//! `ENOSPC` there is an ordinary error). What the code cannot rule out is
//! another process truncating the file under us (SIGBUS); klamm owns its
//! log directory.

use std::fs::{File, OpenOptions};
use std::io;
use std::path::{Path, PathBuf};
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError, Weak};

use bytes::Bytes;
use std::os::unix::fs::FileExt;

use memmap2::{MmapOptions, MmapRaw, UncheckedAdvice};

use super::error::StorageError;
use crate::platform::{self, page_size};

/// The mapping plus the length readers may see; shared with every `Bytes`
/// handed out.
struct SharedMap {
    map: MmapRaw,
    /// Length of the committed prefix. Written with Release after the bytes
    /// are copied; read with Acquire before the bytes are read.
    published_len: AtomicUsize,
    /// The mapped file (for errors and [`live_maps_under`]).
    path: PathBuf,
    /// Key in [`LIVE`].
    id: u64,
    /// The descriptor the map was made from, kept for [`file_range`] (segment
    /// logs only; `None` for the indexes and other files).
    file: Option<Arc<File>>,
}

/// Every mapping alive in this process (one per `SharedMap`, which lives as
/// long as its `MappedFile` or any `Bytes` of it), by id: what
/// [`live_maps`] and [`live_maps_under`] count. A mapping is made or
/// dropped once per file open, never per read, so one lock is cheap.
static LIVE: Mutex<BTreeMap<u64, PathBuf>> = Mutex::new(BTreeMap::new());
static NEXT_MAP_ID: AtomicU64 = AtomicU64::new(1);

fn live() -> std::sync::MutexGuard<'static, BTreeMap<u64, PathBuf>> {
    LIVE.lock().unwrap_or_else(PoisonError::into_inner)
}

/// The mappings that keep their descriptor, by start address, for
/// [`file_range`]. Live mappings never overlap, so the entry at or below an
/// address inside a live mapping is that mapping.
static SENDABLE: Mutex<BTreeMap<usize, Weak<SharedMap>>> = Mutex::new(BTreeMap::new());

fn sendable() -> std::sync::MutexGuard<'static, BTreeMap<usize, Weak<SharedMap>>> {
    SENDABLE.lock().unwrap_or_else(PoisonError::into_inner)
}

impl SharedMap {
    fn new(map: MmapRaw, published_len: usize, path: &Path, file: Option<Arc<File>>) -> Arc<SharedMap> {
        let id = NEXT_MAP_ID.fetch_add(1, Ordering::Relaxed);
        live().insert(id, path.to_path_buf());
        let shared = Arc::new(SharedMap {
            map,
            published_len: AtomicUsize::new(published_len),
            path: path.to_path_buf(),
            id,
            file,
        });
        if shared.file.is_some() && shared.map.len() > 0 {
            sendable().insert(shared.map.as_ptr() as usize, Arc::downgrade(&shared));
        }
        shared
    }
}

impl Drop for SharedMap {
    fn drop(&mut self) {
        live().remove(&self.id);
        if self.file.is_some() && self.map.len() > 0 {
            // Still mapped (the map is unmapped after this), so no other
            // live mapping can have this address.
            sendable().remove(&(self.map.as_ptr() as usize));
        }
    }
}

/// Where the bytes of a segment log's mapping are in its file, for
/// `sendfile(2)` ([`file_range`]).
#[derive(Debug)]
pub struct FileRange {
    pub file: Arc<File>,
    pub offset: u64,
    pub len: usize,
}

/// The file range behind `bytes` when they are published bytes of a
/// segment log's mapping (a `Bytes` a read returned) that kept its
/// descriptor; `None` for any other memory. The file holds the same bytes
/// there (invariant 2) for as long as nothing outside klamm truncates it;
/// a short `sendfile` then shows that, and the caller must not fill in.
pub fn file_range(bytes: &[u8]) -> Option<FileRange> {
    if bytes.is_empty() {
        return None;
    }
    let addr = bytes.as_ptr() as usize;
    let shared = {
        let maps = sendable();
        let (_, weak) = maps.range(..=addr).next_back()?;
        weak.upgrade()?
    };
    let offset = addr - shared.map.as_ptr() as usize;
    let end = offset.checked_add(bytes.len())?;
    if end > shared.published_len.load(Ordering::Acquire) {
        return None;
    }
    Some(FileRange { file: Arc::clone(shared.file.as_ref()?), offset: offset as u64, len: bytes.len() })
}

/// Memory maps of files this process holds now (each counts against
/// Linux's `vm.max_map_count`, 65,530 by default), including those kept
/// alive only by `Bytes` being sent.
pub fn live_maps() -> usize {
    live().len()
}

/// [`live_maps`] of files under `dir` (for tests that share the process).
pub fn live_maps_under(dir: &Path) -> usize {
    live().values().filter(|p| p.starts_with(dir)).count()
}

/// Keeps a mapping alive for a `Bytes` slice of it.
struct MapSlice {
    shared: Arc<SharedMap>,
    start: usize,
    len: usize,
}

impl AsRef<[u8]> for MapSlice {
    fn as_ref(&self) -> &[u8] {
        debug_assert!(self.start + self.len <= self.shared.published_len.load(Ordering::Acquire));
        // SAFETY: `MapSlice` is only built by `MappedFile::slice_bytes`, which
        // checked `start + len <= published_len`. Invariant 1 puts that range
        // inside the mapping and the file; invariant 2 means nothing writes
        // it any more (no `&mut` alias exists); the `Arc` keeps the mapping
        // alive as long as `self` (invariant 3).
        unsafe { std::slice::from_raw_parts(self.shared.map.as_ptr().add(self.start), self.len) }
    }
}

/// How a writable [`MappedFile`] is written (see the module docs).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WriteMode {
    /// Positioned writes through a kept descriptor; read-only mapping.
    Pwrite,
    /// Through a read-write mapping of the preallocated file; no descriptor.
    Map,
}

/// Who may write the file.
enum Writer {
    /// Sealed or opened read-only.
    ReadOnly,
    Map,
    /// Shared so that a group commit can fdatasync it without the
    /// partition lock ([`MappedFile::data_sync_handle`]).
    Pwrite(Arc<File>),
}

impl Drop for MapSlice {
    /// Drops the page-table entries of the whole pages this slice covered,
    /// once nothing holds it any more (its bytes were sent). The data stays
    /// in the page cache; this process just stops mapping it, so serving a
    /// log does not grow the broker's RSS by everything it served, and the
    /// kernel reclaims those pages as it would after Kafka's `sendfile`.
    /// Partial pages at either end are left: they are shared with the
    /// neighbouring batches, which are likely read next. Only where
    /// [`platform::RELEASE_SENT_PAGES`] says the advice means exactly this
    /// (Linux); elsewhere the pages stay mapped until the kernel reclaims
    /// them.
    fn drop(&mut self) {
        if !platform::RELEASE_SENT_PAGES {
            return;
        }
        let page = page_size();
        let first = self.start.div_ceil(page) * page;
        let end = (self.start + self.len) / page * page;
        if end > first {
            // SAFETY: the range lies inside the mapping (invariant 1), which
            // is a shared mapping of a regular file. On the systems
            // `RELEASE_SENT_PAGES` admits (Linux, madvise(2)), MADV_DONTNEED
            // on such a mapping only removes this process's page-table
            // entries: the bytes stay in the page cache (dirty state is
            // kept) and the next access, through any slice still alive,
            // faults the same bytes back in. No reader can observe a
            // change, unlike DONTNEED on a private or anonymous mapping,
            // which is why memmap2 makes this an unchecked advice.
            let _ = unsafe {
                self.shared
                    .map
                    .unchecked_advise_range(UncheckedAdvice::DontNeed, first, end - first)
            };
        }
    }
}

/// A memory-mapped file with an append-only writer and zero-copy readers.
///
/// Only segment logs keep a descriptor: a `Pwrite` file its writer's, and a
/// log mapped read-only ([`MappedFile::open_log_read_only_prefix`]) one for
/// `sendfile`, both as long as the mapping lives. The rare operations that
/// need one otherwise (trim, fsync) reopen the file.
pub struct MappedFile {
    path: PathBuf,
    shared: Arc<SharedMap>,
    /// Writes may go up to here; `<=` the mapping length.
    capacity: usize,
    writer: Writer,
    /// Everything below this has been synced to disk.
    flushed_len: usize,
    /// `Map` files: everything below this is backed by allocated blocks
    /// (written, or zero-filled by [`MappedFile::reserve`]).
    reserved_len: usize,
}

/// [`MappedFile::reserve`] allocates at least this much at a time (an index
/// entry is 8 or 12 bytes, so one reservation serves thousands of them).
const RESERVE_CHUNK_BYTES: usize = 64 * 1024;

fn io_error(kind: io::ErrorKind, msg: &'static str) -> io::Error {
    io::Error::new(kind, msg)
}

fn read_only_error(path: &Path) -> StorageError {
    StorageError::io("append", path)(io_error(
        io::ErrorKind::PermissionDenied,
        "file is mapped read-only",
    ))
}

impl MappedFile {
    /// Creates (or empties) `path` for up to `capacity` bytes of appends,
    /// with nothing published. `Map` sizes the file to `capacity` (sparse).
    pub fn create(path: &Path, capacity: usize, mode: WriteMode) -> Result<MappedFile, StorageError> {
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(true)
            .open(path)
            .map_err(StorageError::io("create", path))?;
        Self::map_writable(path, file, 0, capacity, mode)
    }

    /// Opens an existing file whose first `logical_len` bytes are valid,
    /// cuts anything after them, and maps it for appends up to
    /// `max(capacity, logical_len)` with `logical_len` bytes published.
    pub fn open_writable(
        path: &Path,
        logical_len: usize,
        capacity: usize,
        mode: WriteMode,
    ) -> Result<MappedFile, StorageError> {
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .open(path)
            .map_err(StorageError::io("open", path))?;
        let file_len = file
            .metadata()
            .map_err(StorageError::io("stat", path))?
            .len();
        if file_len < logical_len as u64 {
            return Err(StorageError::io("open", path)(io_error(
                io::ErrorKind::UnexpectedEof,
                "file is shorter than its logical length",
            )));
        }
        // Cut any torn tail first so that growth (by write or by the
        // preallocation below) reads as zeros.
        file.set_len(logical_len as u64)
            .map_err(StorageError::io("truncate", path))?;
        Self::map_writable(path, file, logical_len, capacity.max(logical_len), mode)
    }

    fn map_writable(
        path: &Path,
        file: File,
        logical_len: usize,
        capacity: usize,
        mode: WriteMode,
    ) -> Result<MappedFile, StorageError> {
        debug_assert!(logical_len <= capacity);
        let (map, writer) = match mode {
            WriteMode::Map => {
                file.set_len(capacity as u64)
                    .map_err(StorageError::io("preallocate", path))?;
                let map = MmapOptions::new()
                    .len(capacity)
                    .map_raw(&file)
                    .map_err(StorageError::io("mmap", path))?;
                (map, Writer::Map)
            }
            WriteMode::Pwrite => {
                // The mapping reaches past the end of the file; only the
                // published prefix, which the file covers, is ever read.
                let map = MmapOptions::new()
                    .len(capacity)
                    .map_raw_read_only(&file)
                    .map_err(StorageError::io("mmap", path))?;
                (map, Writer::Pwrite(Arc::new(file)))
            }
        };
        debug_assert!(map.len() >= capacity);
        let descriptor = match &writer {
            Writer::Pwrite(file) => Some(Arc::clone(file)),
            _ => None,
        };
        Ok(MappedFile {
            path: path.to_path_buf(),
            shared: SharedMap::new(map, logical_len, path, descriptor),
            capacity,
            writer,
            flushed_len: logical_len,
            reserved_len: logical_len,
        })
    }

    /// Maps an existing file read-only; all of it is published.
    pub fn open_read_only(path: &Path) -> Result<MappedFile, StorageError> {
        Self::open_read_only_prefix(path, None)
    }

    /// Maps the first `len` bytes of an existing file read-only (all of it
    /// with `None`), all published: a sealed segment's file whose trim to
    /// that length may not have happened yet. Fails if the file is shorter.
    pub fn open_read_only_prefix(path: &Path, len: Option<usize>) -> Result<MappedFile, StorageError> {
        Self::open_read_only_impl(path, len, false)
    }

    /// [`MappedFile::open_read_only_prefix`] for a sealed segment log: the
    /// descriptor stays open as long as the mapping, so that its bytes can
    /// be sent with `sendfile` ([`file_range`]).
    pub fn open_log_read_only_prefix(path: &Path, len: Option<usize>) -> Result<MappedFile, StorageError> {
        Self::open_read_only_impl(path, len, true)
    }

    fn open_read_only_impl(path: &Path, len: Option<usize>, keep_descriptor: bool) -> Result<MappedFile, StorageError> {
        let file = OpenOptions::new()
            .read(true)
            .open(path)
            .map_err(StorageError::io("open", path))?;
        let file_len = file
            .metadata()
            .map_err(StorageError::io("stat", path))?
            .len();
        let file_len = usize::try_from(file_len).map_err(|_| {
            StorageError::io("open", path)(io_error(
                io::ErrorKind::InvalidData,
                "file too large to map",
            ))
        })?;
        let len = match len {
            None => file_len,
            Some(len) if len <= file_len => len,
            Some(_) => {
                return Err(StorageError::io("open", path)(io_error(
                    io::ErrorKind::UnexpectedEof,
                    "file is shorter than its logical length",
                )))
            }
        };
        let map = MmapOptions::new()
            .len(len)
            .map_raw_read_only(&file)
            .map_err(StorageError::io("mmap", path))?;
        Ok(MappedFile {
            path: path.to_path_buf(),
            shared: SharedMap::new(map, len, path, keep_descriptor.then(|| Arc::new(file))),
            capacity: len,
            writer: Writer::ReadOnly,
            flushed_len: len,
            reserved_len: len,
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Published (readable, committed) length.
    #[inline]
    pub fn len(&self) -> usize {
        self.shared.published_len.load(Ordering::Acquire)
    }

    #[inline]
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Bytes that may ever be written (the mapped, preallocated size).
    #[inline]
    pub fn capacity(&self) -> usize {
        self.capacity
    }

    /// Bytes still writable.
    #[inline]
    pub fn remaining(&self) -> usize {
        if self.is_writable() {
            self.capacity - self.len()
        } else {
            0
        }
    }

    #[inline]
    pub fn is_writable(&self) -> bool {
        !matches!(self.writer, Writer::ReadOnly)
    }

    /// Writes `data` at the write position and publishes it; returns the
    /// position it was written at. On error nothing is published (a `Pwrite`
    /// file may hold part of `data` past the published length, which the
    /// next append overwrites and recovery cuts).
    pub fn append(&mut self, data: &[u8]) -> Result<usize, StorageError> {
        let start = self.len();
        debug_assert!(start <= self.capacity);
        if !self.is_writable() {
            return Err(read_only_error(&self.path));
        }
        if data.len() > self.capacity - start {
            return Err(StorageError::io("append", &self.path)(io_error(
                io::ErrorKind::Other,
                "write beyond the preallocated capacity",
            )));
        }
        if data.is_empty() {
            return Ok(start);
        }
        // Callers that must not fail after an earlier step reserve first.
        self.reserve(data.len())?;
        debug_assert!(!matches!(self.writer, Writer::Map) || start + data.len() <= self.reserved_len);
        match &self.writer {
            Writer::ReadOnly => return Err(read_only_error(&self.path)),
            Writer::Pwrite(file) => {
                // The range is unpublished (invariant 2), so no reader sees
                // it change; the file now covers `start + data.len()`.
                super::faults::write(file, &self.path, || file.write_all_at(data, start as u64))
                    .map_err(StorageError::io("write", &self.path))?;
            }
            // SAFETY: `start + data.len() <= reserved_len <= capacity`, which
            // is within the mapping and, for a `Map` file, the file, with its
            // blocks allocated (invariant 1, and `reserve` above). The
            // target range lies at or after `published_len`, so no shared
            // slice covers it (invariant 2), and `&mut self` makes this the
            // only writer. `data` cannot overlap the target: it is a live
            // `&[u8]`, and no `&[u8]` of the unpublished range can exist. A
            // `Map` file is mapped read-write.
            Writer::Map => unsafe {
                std::ptr::copy_nonoverlapping(
                    data.as_ptr(),
                    self.shared.map.as_mut_ptr().add(start),
                    data.len(),
                );
            },
        }
        self.shared
            .published_len
            .store(start + data.len(), Ordering::Release);
        Ok(start)
    }

    /// The published prefix, borrowed.
    #[inline]
    pub fn as_slice(&self) -> &[u8] {
        let len = self.len();
        if len == 0 {
            return &[];
        }
        // SAFETY: `[0, len)` is published: inside the mapping and file
        // (invariant 1) and never written again (invariant 2). The borrow of
        // `self` prevents `append`/`trim_to` (both `&mut self`) while the
        // slice lives, and the mapping lives as long as `self`.
        unsafe { std::slice::from_raw_parts(self.shared.map.as_ptr(), len) }
    }

    /// A zero-copy `Bytes` of `[start, start + len)` of the published prefix,
    /// valid independently of `self`. `None` if out of range.
    pub fn slice_bytes(&self, start: usize, len: usize) -> Option<Bytes> {
        let end = start.checked_add(len)?;
        if end > self.len() {
            return None;
        }
        if len == 0 {
            return Some(Bytes::new());
        }
        Some(Bytes::from_owner(MapSlice {
            shared: Arc::clone(&self.shared),
            start,
            len,
        }))
    }

    /// Makes sure the next `additional` bytes of a `Map` file (capped at its
    /// capacity) are backed by allocated blocks, by writing zeros there
    /// through a descriptor: a full disk is then an `ENOSPC` error here
    /// rather than SIGBUS on a later write through the map. Nothing to do
    /// for `Pwrite` files, whose writes allocate, or read-only ones.
    pub fn reserve(&mut self, additional: usize) -> Result<(), StorageError> {
        if !matches!(self.writer, Writer::Map) {
            return Ok(());
        }
        let want = self.len().saturating_add(additional).min(self.capacity);
        if want <= self.reserved_len {
            return Ok(());
        }
        let upto = want
            .max(self.reserved_len.saturating_add(RESERVE_CHUNK_BYTES))
            .min(self.capacity);
        debug_assert!(self.reserved_len >= self.len() && upto > self.reserved_len);
        // The range is unpublished and unwritten (invariant 2): zeros are
        // what the sparse file reads as there already.
        let zeros = vec![0u8; upto - self.reserved_len];
        self.reopen()?
            .write_all_at(&zeros, self.reserved_len as u64)
            .map_err(StorageError::io("reserve", &self.path))?;
        self.reserved_len = upto;
        Ok(())
    }

    /// Makes `[start, start + len)` of the published prefix resident in this
    /// process's page tables (see [`MappedRange::prefault`]). Ranges outside
    /// the published prefix are ignored.
    pub fn prefault(&self, start: usize, len: usize) -> Result<(), StorageError> {
        match self.range(start, len) {
            Some(range) => range.prefault(),
            None => Ok(()),
        }
    }

    /// A handle on `[start, start + len)` of the published prefix that keeps
    /// the mapping alive without `self` (to prefault it after the
    /// partition lock is released). `None` if out of range.
    pub fn range(&self, start: usize, len: usize) -> Option<MappedRange> {
        let end = start.checked_add(len)?;
        if end > self.len() {
            return None;
        }
        Some(MappedRange {
            shared: Arc::clone(&self.shared),
            start,
            len,
        })
    }

    /// Syncs everything published since the last flush to disk (msync for
    /// `Map`, fdatasync for `Pwrite`).
    pub fn flush(&mut self) -> Result<(), StorageError> {
        let len = self.len();
        if len <= self.flushed_len {
            return Ok(());
        }
        match &self.writer {
            Writer::ReadOnly => return Ok(()),
            Writer::Map => self
                .shared
                .map
                .flush_range(self.flushed_len, len - self.flushed_len)
                .map_err(StorageError::io("msync", &self.path))?,
            Writer::Pwrite(file) => super::faults::sync(file, || file.sync_data())
                .map_err(StorageError::io("fdatasync", &self.path))?,
        }
        self.flushed_len = len;
        Ok(())
    }

    /// The descriptor to fdatasync for everything published so far, for a
    /// caller that syncs without holding the segment (a group commit);
    /// `None` for files not written with `pwrite`.
    pub fn data_sync_handle(&self) -> Option<Arc<File>> {
        match &self.writer {
            Writer::Pwrite(file) => Some(file.clone()),
            _ => None,
        }
    }

    /// Shrinks the file to `len` bytes (the logical size, at roll or close)
    /// and fsyncs it. Never cuts below the published length; afterwards at
    /// most `len` bytes can be written.
    pub fn trim_to(&mut self, len: usize) -> Result<(), StorageError> {
        if len < self.len() || len > self.capacity {
            return Err(StorageError::io("trim", &self.path)(io_error(
                io::ErrorKind::InvalidInput,
                "trim length outside [published length, capacity]",
            )));
        }
        self.flush()?;
        if self.is_writable() {
            let reopened;
            let file = match &self.writer {
                Writer::Pwrite(file) => &**file,
                _ => {
                    reopened = self.reopen()?;
                    &reopened
                }
            };
            file.set_len(len as u64)
                .map_err(StorageError::io("trim", &self.path))?;
            super::faults::sync(file, || file.sync_all())
                .map_err(StorageError::io("fsync", &self.path))?;
        }
        self.capacity = len;
        Ok(())
    }

    /// fsyncs the file's data and metadata (its length).
    pub fn sync_all(&self) -> Result<(), StorageError> {
        let sync = |f: &File| super::faults::sync(f, || f.sync_all()).map_err(StorageError::io("fsync", &self.path));
        match &self.writer {
            Writer::Pwrite(file) => sync(file),
            _ => sync(&self.reopen()?),
        }
    }

    /// Makes the file read-only at its published length without remapping
    /// or any I/O: what a roll does under the partition lock. The returned
    /// [`PendingSync`] does the I/O later, off the lock: flush, trim the
    /// file to that length (a `Map` file was preallocated) and fsync. Until
    /// then the mapping stays as it was (longer than the trimmed file for a
    /// `Map` file, which is sound: reads stay below the published length,
    /// which the file keeps, and nothing writes any more).
    pub fn seal_in_place(&mut self) -> PendingSync {
        let len = self.len();
        let file = match std::mem::replace(&mut self.writer, Writer::ReadOnly) {
            Writer::Pwrite(file) => Some(file),
            Writer::Map | Writer::ReadOnly => None,
        };
        let sync = PendingSync {
            path: self.path.clone(),
            owed: Mutex::new(Some(Owed {
                shared: Arc::clone(&self.shared),
                file,
                flushed_len: self.flushed_len,
            })),
            len,
        };
        self.capacity = len;
        self.flushed_len = len;
        self.reserved_len = self.reserved_len.min(len);
        sync
    }

    /// Opens the mapped file again, for the operations a mapping cannot do.
    fn reopen(&self) -> Result<File, StorageError> {
        OpenOptions::new()
            .write(self.is_writable())
            .read(true)
            .open(&self.path)
            .map_err(StorageError::io("open", &self.path))
    }
}

/// A range of a mapping, alive independently of its `MappedFile` (the
/// mapping stays valid as long as this handle, whatever the cache of mapped
/// segments unmaps meanwhile).
#[derive(Clone)]
pub struct MappedRange {
    shared: Arc<SharedMap>,
    start: usize,
    len: usize,
}

impl std::fmt::Debug for MappedRange {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MappedRange")
            .field("path", &self.shared.path)
            .field("start", &self.start)
            .field("len", &self.len)
            .finish()
    }
}

impl MappedRange {
    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The bytes of the range. Reading them may fault pages in (and, on a
    /// failed disk read, raise SIGBUS): use a [`Prefaulter`] first.
    pub fn as_slice(&self) -> &[u8] {
        if self.len == 0 {
            return &[];
        }
        // SAFETY: the range was inside the published prefix when the
        // handle was made (`MappedFile::range`), so it lies inside the
        // mapping and the file (invariant 1) and is never written again
        // (invariant 2); the `Arc` keeps the mapping alive as long as
        // `self`, which the returned borrow cannot outlive (invariant 3).
        unsafe { std::slice::from_raw_parts(self.shared.map.as_ptr().add(self.start), self.len) }
    }

    /// A zero-copy `Bytes` of `[start, start + len)` of the range, valid
    /// independently of `self`; `None` if out of range.
    pub fn slice_bytes(&self, start: usize, len: usize) -> Option<Bytes> {
        let end = start.checked_add(len)?;
        if end > self.len {
            return None;
        }
        if len == 0 {
            return Some(Bytes::new());
        }
        Some(Bytes::from_owner(MapSlice {
            shared: Arc::clone(&self.shared),
            start: self.start + start,
            len,
        }))
    }

    /// The part `[start, start + len)` of the range as a range of its own;
    /// `None` if out of range.
    pub fn sub_range(&self, start: usize, len: usize) -> Option<MappedRange> {
        let end = start.checked_add(len)?;
        if end > self.len {
            return None;
        }
        Some(MappedRange {
            shared: Arc::clone(&self.shared),
            start: self.start + start,
            len,
        })
    }

    /// Makes the range resident in this process's page tables, so that a
    /// later copy out of it (a socket write on an async worker) does not
    /// fault. Call it on a blocking thread, without any lock. Where the
    /// system reports a failed disk read ([`platform::Populate::Failed`],
    /// Linux ≥ 5.14) it is an error here and the caller must not read the
    /// bytes; elsewhere every page is touched, and a failed read there is
    /// still SIGBUS.
    pub fn prefault(&self) -> Result<(), StorageError> {
        if self.len == 0 {
            return Ok(());
        }
        debug_assert!(self.start + self.len <= self.shared.published_len.load(Ordering::Acquire));
        match platform::populate_read(&self.shared.map, self.start, self.len) {
            platform::Populate::Done => return Ok(()),
            platform::Populate::Failed(e) => return Err(StorageError::io("read", &self.shared.path)(e)),
            platform::Populate::Unsupported => {}
        }
        // SAFETY: `[start, start + len)` was inside the published prefix
        // when this handle was made (`MappedFile::range` checked it), so by
        // invariants 1 and 2 it lies inside the mapping and the file and is
        // never written again; the `Arc` keeps the mapping alive (3).
        let bytes = unsafe { std::slice::from_raw_parts(self.shared.map.as_ptr().add(self.start), self.len) };
        let page = page_size();
        let mut acc = 0u8;
        let mut at = 0;
        while at < bytes.len() {
            acc ^= bytes[at];
            at += page;
        }
        std::hint::black_box(acc);
        Ok(())
    }
}

/// Bytes a [`Prefaulter`] faults in at a time ahead of a scan.
const PREFAULT_CHUNK_BYTES: usize = 64 * 1024;

/// Faults a [`MappedRange`] in chunk by chunk ahead of a scan that reads
/// it from the front (batch headers), so that a failed disk read is an
/// error before the scan touches the page instead of SIGBUS (where the
/// platform reports it, see [`MappedRange::prefault`]).
pub struct Prefaulter<'a> {
    range: &'a MappedRange,
    /// `[from, upto)` is resident.
    from: usize,
    upto: usize,
}

impl<'a> Prefaulter<'a> {
    pub fn new(range: &'a MappedRange) -> Prefaulter<'a> {
        Prefaulter { range, from: 0, upto: 0 }
    }

    /// Makes `[start, end)` of the range (capped at its length) resident,
    /// with at least a chunk ahead.
    pub fn ensure(&mut self, start: usize, end: usize) -> Result<(), StorageError> {
        let len = self.range.len();
        let end = end.min(len);
        if start >= end || (start >= self.from && end <= self.upto) {
            return Ok(());
        }
        let to = end.max(start.saturating_add(PREFAULT_CHUNK_BYTES)).min(len);
        if let Some(part) = self.range.sub_range(start, to - start) {
            part.prefault()?;
        }
        (self.from, self.upto) = (start, to);
        Ok(())
    }
}

/// The I/O a sealed file still owes: flush what was written, trim the file
/// to its logical length, fsync ([`MappedFile::seal_in_place`]).
/// Idempotent. Until it has run it keeps the mapping (to msync a `Map`
/// file) and the descriptor of a `Pwrite` file; afterwards neither, so a
/// sealed segment that waits to be recorded holds no map of its own.
pub struct PendingSync {
    path: PathBuf,
    /// What the run needs; `None` once it succeeded.
    owed: Mutex<Option<Owed>>,
    len: usize,
}

struct Owed {
    shared: Arc<SharedMap>,
    file: Option<Arc<File>>,
    flushed_len: usize,
}

impl PendingSync {
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Flushes, trims and fsyncs. A file deleted meanwhile (retention) has
    /// nothing left to make durable.
    pub fn run(&self) -> Result<(), StorageError> {
        let mut owed = self.owed.lock().unwrap_or_else(PoisonError::into_inner);
        let Some(o) = owed.as_ref() else {
            return Ok(());
        };
        if self.len > o.flushed_len && o.file.is_none() {
            // Written through the map: msync the dirty range.
            o.shared
                .map
                .flush_range(o.flushed_len, self.len - o.flushed_len)
                .map_err(StorageError::io("msync", &self.path))?;
        }
        let reopened;
        let file = match &o.file {
            Some(file) => &**file,
            None => match OpenOptions::new().write(true).open(&self.path) {
                Ok(f) => {
                    reopened = f;
                    &reopened
                }
                Err(e) if e.kind() == io::ErrorKind::NotFound => {
                    *owed = None;
                    return Ok(());
                }
                Err(e) => return Err(StorageError::io("open", &self.path)(e)),
            },
        };
        file.set_len(self.len as u64)
            .map_err(StorageError::io("trim", &self.path))?;
        file.sync_all().map_err(StorageError::io("fsync", &self.path))?;
        *owed = None;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Open descriptors that point at files under `dir`, where the system
    /// can tell (Linux's /proc/self/fd); `None` elsewhere, and the
    /// descriptor checks are skipped.
    fn fds_under(dir: &Path) -> Option<usize> {
        let fds = std::fs::read_dir("/proc/self/fd").ok()?;
        Some(
            fds.filter_map(|e| std::fs::read_link(e.ok()?.path()).ok())
                .filter(|target| target.starts_with(dir))
                .count(),
        )
    }

    fn assert_fds_under(dir: &Path, want: usize, what: &str) {
        if let Some(n) = fds_under(dir) {
            assert_eq!(n, want, "{what}");
        }
    }

    #[test]
    fn no_descriptor_stays_open_per_mapping() {
        let dir = tempfile::tempdir().unwrap();
        let mut maps = Vec::new();
        for i in 0..50 {
            let mut m = MappedFile::create(&dir.path().join(format!("w{i}")), 4096, WriteMode::Map).unwrap();
            m.append(b"data").unwrap();
            maps.push(m);
            maps.push(MappedFile::open_read_only(&dir.path().join(format!("w{i}"))).unwrap());
        }
        assert_fds_under(dir.path(), 0, "no descriptor per mapping");
        // What needs a descriptor reopens the file.
        maps[0].trim_to(4).unwrap();
        maps[0].sync_all().unwrap();
        assert_eq!(std::fs::metadata(dir.path().join("w0")).unwrap().len(), 4);
        assert_eq!(&maps[1].as_slice()[..4], b"data");
        assert_fds_under(dir.path(), 0, "no descriptor per mapping");
    }

    #[test]
    fn append_publish_and_read_back() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("f");
        let mut m = MappedFile::create(&p, 64, WriteMode::Map).unwrap();
        assert_eq!(m.len(), 0);
        assert_eq!(m.capacity(), 64);
        assert_eq!(std::fs::metadata(&p).unwrap().len(), 64);
        assert_eq!(m.append(b"hello").unwrap(), 0);
        assert_eq!(m.append(b" world").unwrap(), 5);
        assert_eq!(m.as_slice(), b"hello world");
        let b = m.slice_bytes(6, 5).unwrap();
        assert_eq!(&b[..], b"world");
        assert!(m.slice_bytes(6, 6).is_none());
        assert!(m.slice_bytes(usize::MAX, 2).is_none());
        assert_eq!(m.slice_bytes(3, 0).unwrap().len(), 0);
        m.flush().unwrap();
        assert_eq!(m.remaining(), 64 - 11);
    }

    #[test]
    fn refuses_writes_beyond_capacity() {
        let dir = tempfile::tempdir().unwrap();
        let mut m = MappedFile::create(&dir.path().join("f"), 8, WriteMode::Map).unwrap();
        m.append(&[1; 6]).unwrap();
        assert!(m.append(&[2; 3]).is_err());
        assert_eq!(m.len(), 6);
        m.append(&[2; 2]).unwrap();
        assert_eq!(m.remaining(), 0);
        assert!(m.append(&[3]).is_err());
    }

    #[test]
    fn bytes_outlive_the_file_object_and_deletion() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("f");
        let mut m = MappedFile::create(&p, 32, WriteMode::Map).unwrap();
        m.append(b"persistent").unwrap();
        let b = m.slice_bytes(0, 10).unwrap();
        drop(m);
        std::fs::remove_file(&p).unwrap();
        assert_eq!(&b[..], b"persistent");
        let b2 = b.slice(3..6);
        drop(b);
        assert_eq!(&b2[..], b"sis");
    }

    #[test]
    fn trim_never_below_published_and_file_shrinks() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("f");
        let mut m = MappedFile::create(&p, 1 << 20, WriteMode::Map).unwrap();
        m.append(&[7u8; 100]).unwrap();
        let held = m.slice_bytes(0, 100).unwrap();
        assert!(m.trim_to(99).is_err());
        m.trim_to(100).unwrap();
        assert_eq!(std::fs::metadata(&p).unwrap().len(), 100);
        assert_eq!(m.capacity(), 100);
        assert!(m.append(&[1]).is_err());
        assert!(held.iter().all(|&b| b == 7));
        assert!(m.as_slice().iter().all(|&b| b == 7));
    }

    #[test]
    fn reopen_writable_zeroes_the_tail_and_read_only_sees_everything() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("f");
        std::fs::write(&p, b"goodGARBAGE").unwrap();
        let mut m = MappedFile::open_writable(&p, 4, 16, WriteMode::Map).unwrap();
        assert_eq!(m.as_slice(), b"good");
        assert_eq!(std::fs::metadata(&p).unwrap().len(), 16);
        m.append(b"!").unwrap();
        m.flush().unwrap();
        drop(m);
        let r = MappedFile::open_read_only(&p).unwrap();
        assert_eq!(r.len(), 16);
        assert_eq!(&r.as_slice()[..5], b"good!");
        assert!(r.as_slice()[5..].iter().all(|&b| b == 0));
        assert!(!r.is_writable());
        assert!(MappedFile::open_writable(&p, 17, 32, WriteMode::Map).is_err());
    }

    #[test]
    fn empty_files_map() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("f");
        std::fs::write(&p, b"").unwrap();
        let r = MappedFile::open_read_only(&p).unwrap();
        assert!(r.is_empty());
        assert_eq!(r.as_slice(), b"");
        let mut w = MappedFile::create(&p, 0, WriteMode::Map).unwrap();
        assert!(w.append(b"x").is_err());
        w.append(b"").unwrap();
    }

    #[test]
    fn concurrent_readers_see_only_published_bytes() {
        let dir = tempfile::tempdir().unwrap();
        let mut m = MappedFile::create(&dir.path().join("f"), 4096, WriteMode::Map).unwrap();
        m.append(&[1u8; 64]).unwrap();
        let snapshots: Vec<Bytes> = (0..8).map(|_| m.slice_bytes(0, 64).unwrap()).collect();
        let handles: Vec<_> = snapshots
            .into_iter()
            .map(|b| std::thread::spawn(move || b.iter().map(|&x| x as u32).sum::<u32>()))
            .collect();
        for i in 0..32u8 {
            m.append(&[i; 64]).unwrap();
        }
        for h in handles {
            assert_eq!(h.join().unwrap(), 64);
        }
    }

    #[test]
    fn pwrite_files_grow_with_each_write_and_hold_one_descriptor_while_writable() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("log");
        let mut m = MappedFile::create(&p, 1 << 20, WriteMode::Pwrite).unwrap();
        assert_eq!(std::fs::metadata(&p).unwrap().len(), 0, "no preallocation");
        assert_eq!(m.capacity(), 1 << 20);
        assert_fds_under(dir.path(), 1, "one descriptor while writable");
        // Across a page boundary: the mapping sees what the writes put there.
        let a = vec![1u8; 5000];
        let b = vec![2u8; 5000];
        assert_eq!(m.append(&a).unwrap(), 0);
        let held = m.slice_bytes(0, 5000).unwrap();
        assert_eq!(m.append(&b).unwrap(), 5000);
        assert_eq!(std::fs::metadata(&p).unwrap().len(), 10_000);
        assert!(held.iter().all(|&x| x == 1));
        assert!(m.as_slice()[5000..].iter().all(|&x| x == 2));
        // Dropping a slice unmaps its whole pages; other slices of the same
        // bytes read them back from the page cache.
        let twin = m.slice_bytes(0, 10_000).unwrap();
        drop(m.slice_bytes(0, 10_000).unwrap());
        assert!(twin[..5000].iter().all(|&x| x == 1) && twin[5000..].iter().all(|&x| x == 2));
        m.prefault(0, 10_000).unwrap();
        m.prefault(9_000, 5_000).unwrap(); // beyond the published prefix: ignored
        m.prefault(usize::MAX, 2).unwrap();
        m.flush().unwrap();
        m.trim_to(10_000).unwrap();
        assert!(m.append(&[3]).is_err(), "trimmed to its length");
        let sealed = MappedFile::open_read_only(&p).unwrap();
        drop(m);
        assert_fds_under(dir.path(), 1, "the writer's mapping keeps its descriptor while a slice of it lives");
        assert_eq!(&held[..], &a[..]);
        drop((held, twin));
        assert_fds_under(dir.path(), 0, "plain read-only maps keep no descriptor");
        assert_eq!(sealed.len(), 10_000);
    }

    #[test]
    fn log_bytes_are_found_in_their_file_and_other_memory_is_not() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("log");
        let mut m = MappedFile::create(&p, 1 << 20, WriteMode::Pwrite).unwrap();
        let data: Vec<u8> = (0..20_000u32).map(|i| i as u8).collect();
        m.append(&data).unwrap();
        let b = m.slice_bytes(1_000, 5_000).unwrap();
        let r = file_range(&b).expect("a slice of a log's map");
        assert_eq!((r.offset, r.len), (1_000, 5_000));
        let mut got = vec![0u8; 5_000];
        r.file.read_exact_at(&mut got, r.offset).unwrap();
        assert_eq!(got, &b[..]);
        assert!(file_range(&b[4_000..]).is_some_and(|r| r.offset == 5_000 && r.len == 1_000));
        assert!(file_range(&data).is_none(), "heap memory");
        assert!(file_range(&[]).is_none());
        // Sealed logs opened for reading keep theirs; other read-only maps
        // (indexes) have none to send from.
        m.trim_to(20_000).unwrap();
        let sealed = MappedFile::open_log_read_only_prefix(&p, Some(20_000)).unwrap();
        let s = sealed.slice_bytes(0, 20_000).unwrap();
        assert!(file_range(&s).is_some_and(|r| r.offset == 0 && r.len == 20_000));
        let plain = MappedFile::open_read_only(&p).unwrap();
        assert!(file_range(&plain.slice_bytes(0, 10).unwrap()).is_none());
        // After the file is deleted, its descriptor still reads it.
        std::fs::remove_file(&p).unwrap();
        let r = file_range(&s).unwrap();
        let mut got = vec![0u8; 20_000];
        r.file.read_exact_at(&mut got, 0).unwrap();
        assert_eq!(got, data);
    }

    /// Allocated bytes of a file (st_blocks is in 512-byte units).
    fn allocated_bytes(p: &Path) -> u64 {
        use std::os::unix::fs::MetadataExt;
        std::fs::metadata(p).unwrap().blocks() * 512
    }

    #[test]
    fn map_files_allocate_blocks_before_writing_through_the_map() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("index");
        let mut m = MappedFile::create(&p, 1 << 20, WriteMode::Map).unwrap();
        assert_eq!(std::fs::metadata(&p).unwrap().len(), 1 << 20);
        assert_eq!(allocated_bytes(&p), 0, "sparse until written");
        m.reserve(8).unwrap();
        let reserved = allocated_bytes(&p) as usize;
        assert!(reserved >= RESERVE_CHUNK_BYTES, "reserved a chunk: {reserved}");
        m.append(&[9u8; 8]).unwrap();
        // Appends past the reservation reserve for themselves.
        m.append(&vec![7u8; RESERVE_CHUNK_BYTES]).unwrap();
        assert!(allocated_bytes(&p) as usize >= RESERVE_CHUNK_BYTES + 8);
        assert_eq!(&m.as_slice()[..8], &[9u8; 8]);
        // Capped at the capacity.
        m.reserve(usize::MAX).unwrap();
        assert_eq!(std::fs::metadata(&p).unwrap().len(), 1 << 20);
    }

    #[test]
    fn a_failed_read_is_an_error_from_prefault_not_a_signal() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("log");
        let mut m = MappedFile::create(&p, 1 << 20, WriteMode::Pwrite).unwrap();
        m.append(&vec![5u8; 4 * page_size()]).unwrap();
        let range = m.range(0, m.len()).unwrap();
        range.prefault().unwrap();
        if !matches!(platform::populate_read(&m.shared.map, 0, 1), platform::Populate::Done) {
            return; // no MADV_POPULATE_READ here: a failed read is SIGBUS
        }
        // The pages can no longer be read (as after a disk error): what
        // would be SIGBUS on access is an error here, with Kafka's code.
        std::fs::OpenOptions::new().write(true).open(&p).unwrap().set_len(0).unwrap();
        let result = range.prefault();
        if result.is_ok() && std::env::var_os("KLAMM_TEST_EMULATED").is_some() {
            // qemu-user answers madvise without doing it (scripts/cross-check
            // says so with this variable): there, as on kernels before
            // 5.14, a failed read is still SIGBUS.
            return;
        }
        let err = result.unwrap_err();
        assert_eq!(err.error_code(), 56, "{err}");
    }

    #[test]
    fn sealing_in_place_defers_the_trim_and_keeps_readers_valid() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("index");
        let mut m = MappedFile::create(&p, 1 << 16, WriteMode::Map).unwrap();
        m.append(&[3u8; 24]).unwrap();
        let held = m.slice_bytes(0, 24).unwrap();
        let sync = m.seal_in_place();
        assert!(!m.is_writable());
        assert!(m.append(&[1]).is_err());
        assert_eq!(std::fs::metadata(&p).unwrap().len(), 1 << 16, "no I/O yet");
        // Mapped again over its logical length before the trim.
        let again = MappedFile::open_read_only_prefix(&p, Some(24)).unwrap();
        assert_eq!(again.as_slice(), &[3u8; 24]);
        sync.run().unwrap();
        sync.run().unwrap();
        assert_eq!(std::fs::metadata(&p).unwrap().len(), 24);
        assert_eq!(&held[..], &[3u8; 24]);
        assert_eq!(m.as_slice(), &[3u8; 24]);
        assert!(MappedFile::open_read_only_prefix(&p, Some(25)).is_err());
        assert!(live_maps_under(dir.path()) >= 2);
        drop((m, again, held, sync));
        assert_eq!(live_maps_under(dir.path()), 0);
    }

    #[test]
    fn pwrite_reopen_cuts_the_tail_and_appends_after_it() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("log");
        std::fs::write(&p, b"goodTORN").unwrap();
        let mut m = MappedFile::open_writable(&p, 4, 64, WriteMode::Pwrite).unwrap();
        assert_eq!(m.as_slice(), b"good");
        assert_eq!(std::fs::metadata(&p).unwrap().len(), 4);
        m.append(b"!").unwrap();
        m.sync_all().unwrap();
        assert_eq!(std::fs::read(&p).unwrap(), b"good!");
        assert_eq!(m.remaining(), 59);
    }
}
