//! Helpers shared by the file-based fuzz targets: a per-process scratch
//! directory (on tmpfs when there is one, so fsyncs are cheap) and a
//! splitter that cuts the fuzz input into length-prefixed sections.

#![allow(dead_code)] // each target uses only some of these

use std::path::PathBuf;

/// A fresh, empty directory for this iteration, reused across iterations
/// of one process.
pub fn scratch_dir(name: &str) -> PathBuf {
    let shm = std::path::Path::new("/dev/shm");
    let base = if shm.is_dir() { shm.to_path_buf() } else { std::env::temp_dir() };
    let dir = base.join(format!("klamm-fuzz-{}", std::process::id())).join(name);
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("create scratch directory");
    dir
}

/// Reads the fuzz input front to back; past its end every read gives
/// zeros / empty sections, so every input is a valid description.
pub struct Input<'a> {
    data: &'a [u8],
}

impl<'a> Input<'a> {
    pub fn new(data: &'a [u8]) -> Self {
        Input { data }
    }

    pub fn u8(&mut self) -> u8 {
        match self.data.split_first() {
            Some((b, rest)) => {
                self.data = rest;
                *b
            }
            None => 0,
        }
    }

    /// A section: u16 BE length, then that many bytes (fewer if the input
    /// ends first).
    pub fn section(&mut self) -> &'a [u8] {
        let len = usize::from(u16::from_be_bytes([self.u8(), self.u8()]));
        let (head, tail) = self.data.split_at(len.min(self.data.len()));
        self.data = tail;
        head
    }

    /// How many bytes are left.
    pub fn rest_len(&self) -> usize {
        self.data.len()
    }

    /// Everything not read yet.
    pub fn rest(&mut self) -> &'a [u8] {
        std::mem::take(&mut self.data)
    }
}

/// Recomputes the CRC of every structurally valid record batch at the
/// front of `buf`, so the fuzzer's mutations reach what lies behind the
/// CRC check (records, headers, producer state, indexes).
pub fn fix_batch_crcs(buf: &mut [u8]) {
    use klamm::records::{update_crc, BatchIter, Validation};
    let mut pos = 0;
    loop {
        let len = match BatchIter::starting_at(buf, pos, Validation::Structure).next() {
            Some(Ok(batch)) => batch.size_bytes(),
            _ => break,
        };
        let _ = update_crc(&mut buf[pos..pos + len]);
        pos += len;
    }
}

/// Recomputes the CRC-32C of `[len u32 BE][crc u32 BE][payload]` frames
/// from `start` on (the metadata log's and the offsets store's framing).
pub fn fix_frame_crcs(buf: &mut [u8], start: usize) {
    let mut pos = start;
    while buf.len().saturating_sub(pos) >= 8 {
        let len = u32::from_be_bytes([buf[pos], buf[pos + 1], buf[pos + 2], buf[pos + 3]]) as usize;
        if len > buf.len() - pos - 8 {
            break;
        }
        let crc = crc32c::crc32c(&buf[pos + 8..pos + 8 + len]);
        buf[pos + 4..pos + 8].copy_from_slice(&crc.to_be_bytes());
        pos += 8 + len;
    }
}

/// Recomputes the CRC of a producer snapshot (`magic, crc, rest`).
pub fn fix_snapshot_crc(buf: &mut [u8]) {
    if buf.len() >= 8 {
        let crc = crc32c::crc32c(&buf[8..]);
        buf[4..8].copy_from_slice(&crc.to_be_bytes());
    }
}
