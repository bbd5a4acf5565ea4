//! Every difference between the operating systems klamm builds for, behind
//! one small API with a fallback for each, so that the rest of the crate
//! has no `cfg(target_os)`. Linux is where klamm is deployed (the docker
//! image, CI); macOS (x86_64 and aarch64) is where many developers run it.
//! Nothing here is needed for correctness on one system only: what a
//! system lacks is either emulated or skipped, and skipping costs memory or
//! speed, never data.
//!
//! - [`page_size`]: the VM page size (4 KiB on x86_64 Linux, 16 KiB on
//!   Apple silicon, up to 64 KiB on aarch64 Linux).
//! - [`populate_read`]: fault a mapped range in before it is copied to a
//!   socket (`MADV_POPULATE_READ` on Linux ≥ 5.14, which reports a failed
//!   disk read as `EFAULT`/`EIO` instead of SIGBUS, so klamm answers
//!   KAFKA_STORAGE_ERROR); elsewhere (macOS, older kernels) only a
//!   read-ahead hint, and the caller touches the pages itself, where a
//!   failed read is still SIGBUS.
//! - [`RELEASE_SENT_PAGES`]: whether `MADV_DONTNEED` may drop the pages of a
//!   shared file mapping once they were sent. The `unsafe` call itself
//!   stays in `storage/mmap.rs`.
//! - [`send_file`]: copy a range of a file to a socket inside the kernel
//!   (`sendfile(2)` on Linux, as Kafka's `FileChannel.transferTo`), so
//!   that fetched records reach a plaintext socket without passing through
//!   user space; elsewhere [`SEND_FILE`] is false and the caller writes the
//!   mapped bytes itself.
//! - [`raise_open_files_limit`]: the soft `RLIMIT_NOFILE` up to the hard
//!   limit (or, where the system refuses that, as macOS does above
//!   `OPEN_MAX`, up to `OPEN_MAX`).
//! - [`try_lock_exclusive`]: an exclusive, non-blocking advisory lock on a
//!   whole file (`flock`), which excludes other processes and other opens
//!   in this one.
//! - [`volume_space`]: the total and usable bytes of the file system a
//!   path is on (`statvfs`, POSIX: the same call on Linux and macOS).

use std::fs::File;
use std::io;

use memmap2::MmapRaw;

/// The VM page size in bytes (a power of two).
pub fn page_size() -> usize {
    rustix::param::page_size()
}

/// What [`populate_read`] did.
#[derive(Debug)]
pub enum Populate {
    /// The pages are resident in this process's page tables now.
    Done,
    /// The system has no such call (only Linux ≥ 5.14 has
    /// `MADV_POPULATE_READ`; elsewhere a `MADV_WILLNEED` read-ahead hint was
    /// given): the caller touches the pages itself, and a failed disk read
    /// there is SIGBUS, as it would be on any access.
    Unsupported,
    /// Reading the pages failed (Linux: `EFAULT`, `EIO` or `EHWPOISON`,
    /// where an access would have raised SIGBUS). The caller must not touch
    /// them: it answers with a storage error instead.
    Failed(io::Error),
}

/// Attempts of `MADV_POPULATE_READ` interrupted by a signal before
/// [`populate_read`] gives up and lets the caller touch the pages.
const POPULATE_RETRIES: usize = 3;

/// Asks the kernel to make `[offset, offset + len)` of `map` resident in
/// this process's page tables, reporting a failed read as an error rather
/// than a signal where the system can ([`Populate`]).
pub fn populate_read(map: &MmapRaw, offset: usize, len: usize) -> Populate {
    #[cfg(target_os = "linux")]
    {
        use rustix::io::Errno;
        for _ in 0..POPULATE_RETRIES {
            match map.advise_range(memmap2::Advice::PopulateRead, offset, len) {
                Ok(()) => return Populate::Done,
                Err(e) => match Errno::from_io_error(&e) {
                    Some(n) if n == Errno::FAULT || n == Errno::IO || n == Errno::HWPOISON => {
                        return Populate::Failed(e)
                    }
                    Some(n) if n == Errno::INTR || n == Errno::AGAIN => continue,
                    // EINVAL: a kernel before 5.14 (or a range outside the
                    // map); ENOMEM: out of memory for page tables.
                    _ => break,
                },
            }
        }
    }
    let _ = map.advise_range(memmap2::Advice::WillNeed, offset, len);
    let _ = POPULATE_RETRIES;
    Populate::Unsupported
}

/// Whether `MADV_DONTNEED` on a shared, file-backed mapping only drops this
/// process's page-table entries, leaving the bytes in the page cache and
/// the mapping's contents unchanged (the next access faults the same bytes
/// back in). Linux documents exactly that (madvise(2)). Other systems give
/// the advice other meanings (on macOS it lowers the pages' priority and
/// frees swap; the BSDs treat it as a hint), so klamm skips it there: the
/// pages then stay mapped until the kernel reclaims them, which costs
/// resident memory, never bytes.
pub const RELEASE_SENT_PAGES: bool = cfg!(any(target_os = "linux", target_os = "android"));

/// Whether [`send_file`] moves bytes in the kernel here (Linux); where it
/// is false, `send_file` always fails and callers write mapped bytes.
pub const SEND_FILE: bool = cfg!(any(target_os = "linux", target_os = "android"));

/// Sends up to `len` bytes of `file` from `offset` to `socket`
/// (`sendfile(2)`), returning how many were sent: fewer when the socket's
/// buffer fills, 0 when the file ends at `offset` (it was truncated). On a
/// non-blocking socket a full buffer is `WouldBlock`. The file's pages are
/// read through the page cache: the caller makes sure they are resident
/// (and readable) first if this must not wait for the disk.
pub fn send_file(socket: std::os::fd::BorrowedFd<'_>, file: &File, offset: u64, len: usize) -> io::Result<usize> {
    #[cfg(any(target_os = "linux", target_os = "android"))]
    {
        let mut at = offset;
        Ok(rustix::fs::sendfile(socket, file, Some(&mut at), len)?)
    }
    #[cfg(not(any(target_os = "linux", target_os = "android")))]
    {
        let _ = (socket, file, offset, len);
        Err(io::Error::new(io::ErrorKind::Unsupported, "sendfile is not used on this system"))
    }
}

/// What [`raise_open_files_limit`] did.
#[derive(Debug)]
pub enum OpenFilesLimit {
    /// Already at the hard limit, or unlimited.
    Unchanged { current: Option<u64> },
    Raised { from: u64, to: Option<u64> },
    /// The system refused every higher value; the limit stays at `current`.
    Refused { current: u64, error: io::Error },
}

/// `OPEN_MAX` of macOS's `<limits.h>`: macOS's setrlimit(2) refuses a
/// soft `RLIMIT_NOFILE` above it with EINVAL, even when the hard limit is
/// unlimited (its man page says to use `min(OPEN_MAX, rlim_max)`). The JVM
/// caps Kafka's limit the same way there.
const OPEN_MAX_FALLBACK: u64 = 10_240;

/// Raises the soft open-files limit to the hard one: every active segment
/// keeps its log open for writing, so a broker with thousands of
/// partitions needs thousands of descriptors. Where the system refuses the
/// hard limit (macOS with an unlimited hard limit; Linux above
/// `fs.nr_open`), tries `OPEN_MAX` (10,240) instead. Never fails: the
/// caller logs the outcome.
pub fn raise_open_files_limit() -> OpenFilesLimit {
    use rustix::process::{getrlimit, setrlimit, Resource};
    let limit = getrlimit(Resource::Nofile);
    let Some(current) = limit.current else {
        return OpenFilesLimit::Unchanged { current: None };
    };
    if limit.current == limit.maximum {
        return OpenFilesLimit::Unchanged { current: Some(current) };
    }
    let mut error = None;
    let fallback = limit.maximum.map_or(OPEN_MAX_FALLBACK, |m| m.min(OPEN_MAX_FALLBACK));
    for want in [limit.maximum, Some(fallback)] {
        if want.is_some_and(|w| w <= current) {
            continue;
        }
        let new = rustix::process::Rlimit { current: want, maximum: limit.maximum };
        match setrlimit(Resource::Nofile, new) {
            Ok(()) => return OpenFilesLimit::Raised { from: current, to: want },
            Err(e) => error = Some(io::Error::from(e)),
        }
    }
    match error {
        Some(error) => OpenFilesLimit::Refused { current, error },
        None => OpenFilesLimit::Unchanged { current: Some(current) },
    }
}

/// Why [`try_lock_exclusive`] did not take the lock.
#[derive(Debug)]
pub enum LockError {
    /// Another open of the file (in any process, this one included) holds it.
    Held,
    /// The file system or the system cannot lock files (some network file
    /// systems, systems without `flock`).
    Unsupported(io::Error),
    Io(io::Error),
}

/// Takes an exclusive advisory lock on the whole of `file` without waiting.
/// The lock belongs to this open file description: it is released when
/// `file` is closed (dropped), also when the process dies, and a second
/// open of the same file, even in this process, cannot take it meanwhile
/// (unlike POSIX `fcntl` record locks, which are per process and released
/// by closing any descriptor of the file).
pub fn try_lock_exclusive(file: &File) -> Result<(), LockError> {
    #[cfg(not(any(target_os = "solaris", target_os = "illumos")))]
    {
        use rustix::io::Errno;
        match rustix::fs::flock(file, rustix::fs::FlockOperation::NonBlockingLockExclusive) {
            Ok(()) => Ok(()),
            Err(e) if e == Errno::WOULDBLOCK || e == Errno::AGAIN => Err(LockError::Held),
            Err(e) if e == Errno::NOLCK || e == Errno::OPNOTSUPP || e == Errno::NOSYS || e == Errno::INVAL => {
                Err(LockError::Unsupported(e.into()))
            }
            Err(e) => Err(LockError::Io(e.into())),
        }
    }
    #[cfg(any(target_os = "solaris", target_os = "illumos"))]
    {
        let _ = file;
        Err(LockError::Unsupported(io::Error::new(io::ErrorKind::Unsupported, "flock is not available")))
    }
}

/// The size of a file system, as Java's `FileStore` reports it (what
/// Kafka's DescribeLogDirs v4 answers): blocks times the fragment size.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct VolumeSpace {
    /// `f_blocks × f_frsize` (Java's `getTotalSpace`).
    pub total_bytes: u64,
    /// `f_bavail × f_frsize`: what an unprivileged writer may still use
    /// (Java's `getUsableSpace`).
    pub usable_bytes: u64,
}

/// The total and usable bytes of the file system `path` is on. Blocking
/// (a hung network file system blocks it): call it off the async workers.
pub fn volume_space(path: &std::path::Path) -> io::Result<VolumeSpace> {
    let s = rustix::fs::statvfs(path)?;
    // POSIX: f_blocks and f_bavail count f_frsize units; a system that
    // leaves f_frsize 0 means f_bsize.
    let unit = if s.f_frsize != 0 { s.f_frsize } else { s.f_bsize };
    Ok(VolumeSpace {
        total_bytes: s.f_blocks.saturating_mul(unit),
        usable_bytes: s.f_bavail.saturating_mul(unit),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn page_size_is_a_power_of_two() {
        let p = page_size();
        assert!(p >= 4096 && p.is_power_of_two(), "{p}");
    }

    #[test]
    fn exclusive_locks_exclude_other_opens_and_end_with_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("lock");
        let open = || std::fs::OpenOptions::new().read(true).write(true).create(true).truncate(false).open(&path).unwrap();
        let a = open();
        try_lock_exclusive(&a).unwrap();
        let b = open();
        assert!(matches!(try_lock_exclusive(&b), Err(LockError::Held)));
        // Closing another descriptor of the file does not release it.
        drop(open());
        assert!(matches!(try_lock_exclusive(&b), Err(LockError::Held)));
        drop(a);
        try_lock_exclusive(&b).unwrap();
    }

    #[test]
    fn the_open_files_limit_only_goes_up() {
        use rustix::process::{getrlimit, Resource};
        let before = getrlimit(Resource::Nofile).current;
        let outcome = raise_open_files_limit();
        let after = getrlimit(Resource::Nofile).current;
        assert!(after.is_none() || after >= before, "{before:?} -> {after:?} ({outcome:?})");
        assert!(matches!(raise_open_files_limit(), OpenFilesLimit::Unchanged { .. } | OpenFilesLimit::Refused { .. }));
    }

    #[test]
    fn volume_space_of_a_directory() {
        let dir = tempfile::tempdir().unwrap();
        let v = volume_space(dir.path()).unwrap();
        assert!(v.total_bytes > 0 && v.usable_bytes <= v.total_bytes, "{v:?}");
        assert!(volume_space(&dir.path().join("missing")).is_err());
    }

    #[test]
    fn send_file_copies_a_range_and_reports_the_end_of_the_file() {
        use std::io::Read;
        use std::os::fd::AsFd;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f");
        let data: Vec<u8> = (0..100_000u32).map(|i| (i % 251) as u8).collect();
        std::fs::write(&path, &data).unwrap();
        let file = File::open(&path).unwrap();
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let tx = std::net::TcpStream::connect(listener.local_addr().unwrap()).unwrap();
        let (mut rx, _) = listener.accept().unwrap();
        if !SEND_FILE {
            assert!(send_file(tx.as_fd(), &file, 0, 10).is_err());
            return;
        }
        let mut sent = 0;
        while sent < 50_000 {
            sent += send_file(tx.as_fd(), &file, 1_000 + sent as u64, 50_000 - sent).unwrap();
        }
        let mut got = vec![0u8; 50_000];
        rx.read_exact(&mut got).unwrap();
        assert_eq!(got, data[1_000..51_000]);
        assert_eq!(send_file(tx.as_fd(), &file, data.len() as u64, 10).unwrap(), 0, "nothing past the end");
    }

    #[test]
    fn populate_read_is_a_hint() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f");
        std::fs::write(&path, vec![1u8; 3 * page_size()]).unwrap();
        let file = File::open(&path).unwrap();
        let map = memmap2::MmapOptions::new().map_raw_read_only(&file).unwrap();
        let done = populate_read(&map, 0, map.len());
        assert!(matches!(done, Populate::Unsupported) || (matches!(done, Populate::Done) && cfg!(target_os = "linux")), "{done:?}");
        // Out-of-range advice is not a read error: the caller falls back.
        assert!(matches!(populate_read(&map, map.len() + 1, 10), Populate::Unsupported));
    }
}
