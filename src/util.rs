//! Small helpers without a better home: random ids from the OS, fsync of
//! directories, and atomic file replacement (temp + fsync + rename).

use std::fs::File;
use std::io::{Read, Write};
use std::path::Path;

use crate::protocol::Uuid;

/// 16 random bytes from the operating system.
pub fn random_bytes() -> [u8; 16] {
    let mut b = [0u8; 16];
    if let Ok(mut f) = File::open("/dev/urandom") {
        if f.read_exact(&mut b).is_ok() {
            return b;
        }
    }
    // Fallback: time and address entropy; ids only need to be unique.
    let t = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default();
    let x = t.as_nanos() ^ ((&b as *const _ as usize as u128) << 64);
    b.copy_from_slice(&x.to_le_bytes());
    b
}

/// A random version-4 UUID that is never Kafka's reserved nil or metadata id.
pub fn random_uuid() -> Uuid {
    loop {
        let mut b = random_bytes();
        b[6] = (b[6] & 0x0f) | 0x40;
        b[8] = (b[8] & 0x3f) | 0x80;
        let u = Uuid(b);
        // Kafka reserves the nil id and the id whose most significant bits are 0 and least are 1.
        let reserved = b[..15].iter().all(|x| *x == 0);
        // Kafka also avoids ids whose base64 form starts with '-'.
        if !reserved && !u.to_base64().starts_with('-') {
            return u;
        }
    }
}

/// fsyncs a directory so a rename or create inside it is durable.
/// Reads until `buf` is full or the input ends; returns how many bytes
/// were read (fewer than `buf.len()` only at end of input). Used by the
/// CRC-framed state files to tell a torn tail from a whole frame.
pub fn read_full(r: &mut impl Read, buf: &mut [u8]) -> std::io::Result<usize> {
    let mut filled = 0;
    while filled < buf.len() {
        match r.read(&mut buf[filled..]) {
            Ok(0) => break,
            Ok(n) => filled += n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(filled)
}

pub fn fsync_dir(dir: &Path) -> std::io::Result<()> {
    File::open(dir)?.sync_all()
}

/// Writes `contents` to `path` atomically: temp file, fsync, rename, fsync dir.
pub fn write_atomic(path: &Path, contents: &[u8]) -> std::io::Result<()> {
    let dir = path.parent().unwrap_or(Path::new("."));
    let tmp = path.with_extension("tmp");
    {
        let mut f = File::create(&tmp)?;
        f.write_all(contents)?;
        f.sync_all()?;
    }
    std::fs::rename(&tmp, path)?;
    fsync_dir(dir)
}
