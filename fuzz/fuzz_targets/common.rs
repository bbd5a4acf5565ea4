//! Helpers shared by the file-based fuzz targets: a per-process scratch
//! directory (on tmpfs when there is one, so fsyncs are cheap) and a
//! splitter that cuts the fuzz input into length-prefixed sections.

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

    /// Everything not read yet.
    pub fn rest(&mut self) -> &'a [u8] {
        std::mem::take(&mut self.data)
    }
}
