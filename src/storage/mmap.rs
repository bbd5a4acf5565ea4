//! `MappedFile`: a file mapped once, written append-only by a single writer
//! through the map, and read zero-copy by many readers. This is the only
//! file in the crate that contains `unsafe`.
//!
//! Soundness rests on three invariants, upheld by this type alone:
//! 1. **Bounds**: the mapping is at least `capacity` bytes long, the file is
//!    at least `capacity` bytes long while writable (and exactly the mapped
//!    prefix that is readable when read-only), and
//!    `published_len <= capacity`. Every pointer access stays below
//!    `capacity`; every shared slice stays below `published_len`.
//! 2. **Aliasing**: bytes below `published_len` are never written again (the
//!    file only grows, `trim_to` never cuts below `published_len`). Writes
//!    go only to `[published_len, capacity)`, which no slice covers, and only
//!    through `&mut self`, so there is one writer at a time.
//! 3. **Lifetime**: zero-copy `Bytes` hold an `Arc` of the mapping, so the
//!    mapping outlives every slice even after the `MappedFile` is dropped or
//!    its file deleted.
//!
//! What the code cannot rule out is another process truncating the file
//! under us, or the file system failing to allocate a block for a sparse
//! page on first write (disk full); both raise SIGBUS. klamm owns its log
//! directory, and operators should keep free space above `segment.bytes`.

use std::fs::{File, OpenOptions};
use std::io;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use bytes::Bytes;
use memmap2::{MmapOptions, MmapRaw};

use super::error::StorageError;

/// The mapping plus the length readers may see; shared with every `Bytes`
/// handed out.
struct SharedMap {
    map: MmapRaw,
    /// Length of the committed prefix. Written with Release after the bytes
    /// are copied; read with Acquire before the bytes are read.
    published_len: AtomicUsize,
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

/// A memory-mapped file with an append-only writer and zero-copy readers.
///
/// No file descriptor is kept open: the mapping stays valid after its file
/// is closed (as Kafka closes index files once mapped), so thousands of
/// partitions do not run into the open-files limit. The rare operations
/// that need one (trim, fsync) reopen the file.
pub struct MappedFile {
    path: PathBuf,
    shared: Arc<SharedMap>,
    /// Writes may go up to here; `<=` mapping length and file length.
    capacity: usize,
    writable: bool,
    /// Everything below this has been msync'ed.
    flushed_len: usize,
}

fn io_error(kind: io::ErrorKind, msg: &'static str) -> io::Error {
    io::Error::new(kind, msg)
}

impl MappedFile {
    /// Creates (or empties) `path`, sizes it to `capacity` bytes (sparse) and
    /// maps it read-write with nothing published.
    pub fn create(path: &Path, capacity: usize) -> Result<MappedFile, StorageError> {
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(true)
            .open(path)
            .map_err(StorageError::io("create", path))?;
        Self::map_writable(path, file, 0, capacity)
    }

    /// Opens an existing file whose first `logical_len` bytes are valid,
    /// zeroes anything after them, sizes it to `max(capacity, logical_len)`
    /// and maps it read-write with `logical_len` bytes published.
    pub fn open_writable(
        path: &Path,
        logical_len: usize,
        capacity: usize,
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
        // Cut any torn tail first so that the growth below reads as zeros.
        file.set_len(logical_len as u64)
            .map_err(StorageError::io("truncate", path))?;
        Self::map_writable(path, file, logical_len, capacity.max(logical_len))
    }

    fn map_writable(
        path: &Path,
        file: File,
        logical_len: usize,
        capacity: usize,
    ) -> Result<MappedFile, StorageError> {
        debug_assert!(logical_len <= capacity);
        file.set_len(capacity as u64)
            .map_err(StorageError::io("preallocate", path))?;
        let map = MmapOptions::new()
            .len(capacity)
            .map_raw(&file)
            .map_err(StorageError::io("mmap", path))?;
        debug_assert!(map.len() >= capacity);
        Ok(MappedFile {
            path: path.to_path_buf(),
            shared: Arc::new(SharedMap {
                map,
                published_len: AtomicUsize::new(logical_len),
            }),
            capacity,
            writable: true,
            flushed_len: logical_len,
        })
    }

    /// Maps an existing file read-only; all of it is published.
    pub fn open_read_only(path: &Path) -> Result<MappedFile, StorageError> {
        let file = OpenOptions::new()
            .read(true)
            .open(path)
            .map_err(StorageError::io("open", path))?;
        let len = file
            .metadata()
            .map_err(StorageError::io("stat", path))?
            .len();
        let len = usize::try_from(len).map_err(|_| {
            StorageError::io("open", path)(io_error(
                io::ErrorKind::InvalidData,
                "file too large to map",
            ))
        })?;
        let map = MmapOptions::new()
            .len(len)
            .map_raw_read_only(&file)
            .map_err(StorageError::io("mmap", path))?;
        Ok(MappedFile {
            path: path.to_path_buf(),
            shared: Arc::new(SharedMap {
                map,
                published_len: AtomicUsize::new(len),
            }),
            capacity: len,
            writable: false,
            flushed_len: len,
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
        if self.writable {
            self.capacity - self.len()
        } else {
            0
        }
    }

    #[inline]
    pub fn is_writable(&self) -> bool {
        self.writable
    }

    /// Copies `data` to the write position and publishes it; returns the
    /// position it was written at.
    pub fn append(&mut self, data: &[u8]) -> Result<usize, StorageError> {
        if !self.writable {
            return Err(StorageError::io("append", &self.path)(io_error(
                io::ErrorKind::PermissionDenied,
                "file is mapped read-only",
            )));
        }
        let start = self.len();
        debug_assert!(start <= self.capacity);
        if data.len() > self.capacity - start {
            return Err(StorageError::io("append", &self.path)(io_error(
                io::ErrorKind::Other,
                "write beyond the preallocated capacity",
            )));
        }
        if data.is_empty() {
            return Ok(start);
        }
        // SAFETY: `start + data.len() <= capacity`, which is within the
        // mapping and the file (invariant 1). The target range lies at or
        // after `published_len`, so no shared slice covers it (invariant 2),
        // and `&mut self` makes this the only writer. `data` cannot overlap
        // the target: it is a live `&[u8]`, and no `&[u8]` of the unpublished
        // range can exist. The mapping is read-write because `writable`.
        unsafe {
            std::ptr::copy_nonoverlapping(
                data.as_ptr(),
                self.shared.map.as_mut_ptr().add(start),
                data.len(),
            );
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

    /// msyncs everything published since the last flush.
    pub fn flush(&mut self) -> Result<(), StorageError> {
        let len = self.len();
        if !self.writable || len <= self.flushed_len {
            return Ok(());
        }
        self.shared
            .map
            .flush_range(self.flushed_len, len - self.flushed_len)
            .map_err(StorageError::io("msync", &self.path))?;
        self.flushed_len = len;
        Ok(())
    }

    /// msyncs `[offset, offset + len)` of the published prefix.
    pub fn flush_range(&self, offset: usize, len: usize) -> Result<(), StorageError> {
        let end = offset.saturating_add(len);
        if !self.writable || len == 0 || end > self.len() {
            return Ok(());
        }
        self.shared
            .map
            .flush_range(offset, len)
            .map_err(StorageError::io("msync", &self.path))
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
        if self.writable {
            let file = self.reopen()?;
            file.set_len(len as u64)
                .map_err(StorageError::io("trim", &self.path))?;
            file.sync_all()
                .map_err(StorageError::io("fsync", &self.path))?;
        }
        self.capacity = len;
        Ok(())
    }

    /// fsyncs the file's data and metadata (its length).
    pub fn sync_all(&self) -> Result<(), StorageError> {
        self.reopen()?
            .sync_all()
            .map_err(StorageError::io("fsync", &self.path))
    }

    /// Opens the mapped file again, for the operations a mapping cannot do.
    fn reopen(&self) -> Result<File, StorageError> {
        OpenOptions::new()
            .write(self.writable)
            .read(true)
            .open(&self.path)
            .map_err(StorageError::io("open", &self.path))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Open descriptors that point at files under `dir`.
    fn fds_under(dir: &Path) -> usize {
        std::fs::read_dir("/proc/self/fd")
            .unwrap()
            .filter_map(|e| std::fs::read_link(e.ok()?.path()).ok())
            .filter(|target| target.starts_with(dir))
            .count()
    }

    #[test]
    fn no_descriptor_stays_open_per_mapping() {
        let dir = tempfile::tempdir().unwrap();
        let mut maps = Vec::new();
        for i in 0..50 {
            let mut m = MappedFile::create(&dir.path().join(format!("w{i}")), 4096).unwrap();
            m.append(b"data").unwrap();
            maps.push(m);
            maps.push(MappedFile::open_read_only(&dir.path().join(format!("w{i}"))).unwrap());
        }
        assert_eq!(fds_under(dir.path()), 0);
        // What needs a descriptor reopens the file.
        maps[0].trim_to(4).unwrap();
        maps[0].sync_all().unwrap();
        assert_eq!(std::fs::metadata(dir.path().join("w0")).unwrap().len(), 4);
        assert_eq!(&maps[1].as_slice()[..4], b"data");
        assert_eq!(fds_under(dir.path()), 0);
    }

    #[test]
    fn append_publish_and_read_back() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("f");
        let mut m = MappedFile::create(&p, 64).unwrap();
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
        m.flush_range(0, 5).unwrap();
        assert_eq!(m.remaining(), 64 - 11);
    }

    #[test]
    fn refuses_writes_beyond_capacity() {
        let dir = tempfile::tempdir().unwrap();
        let mut m = MappedFile::create(&dir.path().join("f"), 8).unwrap();
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
        let mut m = MappedFile::create(&p, 32).unwrap();
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
        let mut m = MappedFile::create(&p, 1 << 20).unwrap();
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
        let mut m = MappedFile::open_writable(&p, 4, 16).unwrap();
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
        assert!(MappedFile::open_writable(&p, 17, 32).is_err());
    }

    #[test]
    fn empty_files_map() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("f");
        std::fs::write(&p, b"").unwrap();
        let r = MappedFile::open_read_only(&p).unwrap();
        assert!(r.is_empty());
        assert_eq!(r.as_slice(), b"");
        let mut w = MappedFile::create(&p, 0).unwrap();
        assert!(w.append(b"x").is_err());
        w.append(b"").unwrap();
    }

    #[test]
    fn concurrent_readers_see_only_published_bytes() {
        let dir = tempfile::tempdir().unwrap();
        let mut m = MappedFile::create(&dir.path().join("f"), 4096).unwrap();
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
}
