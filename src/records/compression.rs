//! Compressing and decompressing the records region of a v2 batch with
//! Kafka's codecs, in pure Rust: gzip (flate2 on miniz_oxide), snappy
//! (raw blocks, and the xerial framing Kafka's Java client writes), LZ4
//! frames (as Kafka's `KafkaLZ4BlockOutputStream`); zstd is read (ruzstd
//! 0.7) but not written: ruzstd's encoder (0.8+) needs Rust 1.87, above
//! klamm's rust-version, and the C zstd would need a C cross-toolchain.
//! Decompression is bounded: output past `max_bytes` is an error, never
//! an allocation.

use std::io::{Read, Write};

use super::batch::CompressionType;

/// Why (de)compression failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CompressionError {
    #[error("{codec:?} data is corrupt: {reason}")]
    Corrupt { codec: CompressionType, reason: String },
    #[error("{codec:?} data decompresses to more than {max_bytes} bytes")]
    TooLarge { codec: CompressionType, max_bytes: usize },
    #[error("{codec:?} compression failed: {reason}")]
    Compress { codec: CompressionType, reason: String },
}

/// The xerial snappy-java stream header: magic, version 1, compatible 1.
const XERIAL_MAGIC: [u8; 8] = [0x82, b'S', b'N', b'A', b'P', b'P', b'Y', 0];
const XERIAL_HEADER_BYTES: usize = 16;
/// snappy-java's default block size.
const XERIAL_BLOCK_BYTES: usize = 32 * 1024;

/// Compresses `data` with `codec` (`None` copies it).
pub fn compress(codec: CompressionType, data: &[u8]) -> Result<Vec<u8>, CompressionError> {
    let fail = |e: &dyn std::fmt::Display| CompressionError::Compress { codec, reason: e.to_string() };
    match codec {
        CompressionType::None => Ok(data.to_vec()),
        CompressionType::Gzip => {
            let mut e = flate2::write::GzEncoder::new(Vec::with_capacity(data.len() / 2), flate2::Compression::default());
            e.write_all(data).map_err(|e| fail(&e))?;
            e.finish().map_err(|e| fail(&e))
        }
        CompressionType::Snappy => {
            // The xerial framing, as Kafka's Java producer writes it.
            let mut out = Vec::with_capacity(XERIAL_HEADER_BYTES + data.len() / 2);
            out.extend_from_slice(&XERIAL_MAGIC);
            out.extend_from_slice(&1i32.to_be_bytes());
            out.extend_from_slice(&1i32.to_be_bytes());
            let mut enc = snap::raw::Encoder::new();
            for block in data.chunks(XERIAL_BLOCK_BYTES) {
                let c = enc.compress_vec(block).map_err(|e| fail(&e))?;
                out.extend_from_slice(&(c.len() as i32).to_be_bytes());
                out.extend_from_slice(&c);
            }
            Ok(out)
        }
        CompressionType::Lz4 => {
            let mut e = lz4_flex::frame::FrameEncoder::new(Vec::with_capacity(data.len() / 2));
            e.write_all(data).map_err(|e| fail(&e))?;
            e.finish().map_err(|e| fail(&e))
        }
        CompressionType::Zstd => Err(fail(&"klamm does not write zstd yet (it reads it)")),
    }
}

/// The largest block a zstd frame may hold (RFC 8878 `Block_Maximum_Size`).
const ZSTD_MAX_BLOCK_BYTES: usize = 128 * 1024;

/// `data` as one zstd frame of raw (stored) blocks (RFC 8878): valid zstd
/// that every decoder reads, without compression. The log cleaner rewrites
/// a zstd batch this way, since klamm has no zstd encoder (see the module
/// doc); the batch keeps its codec and a consumer decodes it as any other.
pub fn zstd_stored_frame(data: &[u8]) -> Vec<u8> {
    let blocks = data.len().div_ceil(ZSTD_MAX_BLOCK_BYTES).max(1);
    let mut out = Vec::with_capacity(4 + 1 + 8 + 3 * blocks + data.len());
    out.extend_from_slice(&0xFD2F_B528u32.to_le_bytes());
    // Frame header descriptor: an 8-byte content size, single segment (no
    // window descriptor), no checksum, no dictionary.
    out.push(0b1110_0000);
    out.extend_from_slice(&(data.len() as u64).to_le_bytes());
    let mut chunks = data.chunks(ZSTD_MAX_BLOCK_BYTES).peekable();
    if chunks.peek().is_none() {
        out.extend_from_slice(&[1, 0, 0]); // one empty last raw block
    }
    while let Some(chunk) = chunks.next() {
        let last = u32::from(chunks.peek().is_none());
        // Block header: last-block bit, type 0 (raw), size in bits 3..24.
        let header = last | ((chunk.len() as u32) << 3);
        out.extend_from_slice(&header.to_le_bytes()[..3]);
        out.extend_from_slice(chunk);
    }
    out
}

/// Decompresses `data`, refusing output larger than `max_bytes`.
pub fn decompress(codec: CompressionType, data: &[u8], max_bytes: usize) -> Result<Vec<u8>, CompressionError> {
    let corrupt = |e: &dyn std::fmt::Display| CompressionError::Corrupt { codec, reason: e.to_string() };
    match codec {
        CompressionType::None => bounded(codec, data, max_bytes),
        CompressionType::Gzip => bounded(codec, flate2::read::MultiGzDecoder::new(data), max_bytes),
        CompressionType::Snappy => {
            if data.len() >= XERIAL_HEADER_BYTES && data[..8] == XERIAL_MAGIC {
                let mut out = Vec::new();
                let mut rest = &data[XERIAL_HEADER_BYTES..];
                while !rest.is_empty() {
                    if rest.len() < 4 {
                        return Err(corrupt(&"truncated xerial block length"));
                    }
                    let len = i32::from_be_bytes([rest[0], rest[1], rest[2], rest[3]]);
                    let len = usize::try_from(len).map_err(|_| corrupt(&"negative xerial block length"))?;
                    let block = rest.get(4..4 + len).ok_or_else(|| corrupt(&"truncated xerial block"))?;
                    snappy_raw(block, max_bytes.saturating_sub(out.len()), &mut out).map_err(|e| match e {
                        CompressionError::TooLarge { codec, .. } => CompressionError::TooLarge { codec, max_bytes },
                        e => e,
                    })?;
                    rest = &rest[4 + len..];
                }
                Ok(out)
            } else {
                let mut out = Vec::new();
                snappy_raw(data, max_bytes, &mut out)?;
                Ok(out)
            }
        }
        CompressionType::Lz4 => bounded(codec, lz4_flex::frame::FrameDecoder::new(data), max_bytes),
        CompressionType::Zstd => {
            let mut out = Vec::new();
            let mut rest = data;
            // One frame or several, back to back.
            while !rest.is_empty() {
                let mut d = ruzstd::StreamingDecoder::new(&mut rest).map_err(|e| corrupt(&e))?;
                let left = max_bytes.saturating_sub(out.len());
                (&mut d).take((left as u64).saturating_add(1)).read_to_end(&mut out).map_err(|e| corrupt(&e))?;
                if out.len() > max_bytes {
                    return Err(CompressionError::TooLarge { codec, max_bytes });
                }
            }
            Ok(out)
        }
    }
}

fn snappy_raw(block: &[u8], max_bytes: usize, out: &mut Vec<u8>) -> Result<(), CompressionError> {
    let codec = CompressionType::Snappy;
    let len = snap::raw::decompress_len(block).map_err(|e| CompressionError::Corrupt { codec, reason: e.to_string() })?;
    if len > max_bytes {
        return Err(CompressionError::TooLarge { codec, max_bytes });
    }
    let start = out.len();
    out.resize(start + len, 0);
    snap::raw::Decoder::new()
        .decompress(block, &mut out[start..])
        .map_err(|e| CompressionError::Corrupt { codec, reason: e.to_string() })?;
    Ok(())
}

fn bounded(codec: CompressionType, r: impl Read, max_bytes: usize) -> Result<Vec<u8>, CompressionError> {
    let mut out = Vec::new();
    r.take((max_bytes as u64).saturating_add(1))
        .read_to_end(&mut out)
        .map_err(|e| CompressionError::Corrupt { codec, reason: e.to_string() })?;
    if out.len() > max_bytes {
        return Err(CompressionError::TooLarge { codec, max_bytes });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The codecs klamm writes.
    const ALL: [CompressionType; 4] =
        [CompressionType::None, CompressionType::Gzip, CompressionType::Snappy, CompressionType::Lz4];

    /// A zstd frame (zstd 1.5, level 3) of `b"hello zstd, hello zstd, hello zstd\n"`.
    const ZSTD_HELLO: &[u8] = include_bytes!("testdata/hello.zst");

    #[test]
    fn zstd_is_read_not_written() {
        let got = decompress(CompressionType::Zstd, ZSTD_HELLO, 1 << 20).unwrap();
        assert_eq!(got, b"hello zstd, hello zstd, hello zstd\n");
        let mut two = ZSTD_HELLO.to_vec();
        two.extend_from_slice(ZSTD_HELLO);
        assert_eq!(decompress(CompressionType::Zstd, &two, 1 << 20).unwrap().len(), 2 * got.len());
        assert!(matches!(decompress(CompressionType::Zstd, ZSTD_HELLO, 5), Err(CompressionError::TooLarge { .. })));
        assert!(decompress(CompressionType::Zstd, &ZSTD_HELLO[..ZSTD_HELLO.len() - 3], 1 << 20).is_err());
        assert!(compress(CompressionType::Zstd, b"x").is_err());
    }

    fn sample() -> Vec<u8> {
        (0..100_000u32).flat_map(|i| format!("record {} ", i % 977).into_bytes()).collect()
    }

    #[test]
    fn every_codec_round_trips() {
        let data = sample();
        for codec in ALL {
            let c = compress(codec, &data).unwrap();
            if codec != CompressionType::None {
                assert!(c.len() < data.len() / 2, "{codec:?} compressed {} to {}", data.len(), c.len());
            }
            assert_eq!(decompress(codec, &c, data.len()).unwrap(), data, "{codec:?}");
            assert_eq!(decompress(codec, &c, data.len() - 1), Err(CompressionError::TooLarge { codec, max_bytes: data.len() - 1 }));
            assert_eq!(decompress(codec, &compress(codec, b"").unwrap(), 10).unwrap(), b"");
        }
    }

    #[test]
    fn raw_snappy_as_librdkafka_writes_it() {
        let data = sample();
        let raw = snap::raw::Encoder::new().compress_vec(&data).unwrap();
        assert_eq!(decompress(CompressionType::Snappy, &raw, usize::MAX).unwrap(), data);
    }

    #[test]
    fn garbage_is_an_error_not_a_panic() {
        for junk in [&b""[..], b"\x00", b"not compressed at all", &[0xff; 64], &[0x28, 0xb5, 0x2f, 0xfd, 0xff, 0xff]] {
            let _ = decompress(CompressionType::Zstd, junk, 1 << 20);
        }
        for codec in ALL[1..].iter().copied() {
            for junk in [&b""[..], b"\x00", b"not compressed at all", &[0xff; 64]] {
                let _ = decompress(codec, junk, 1 << 20);
            }
            let mut c = compress(codec, &sample()).unwrap();
            c.truncate(c.len() / 2);
            assert!(decompress(codec, &c, usize::MAX).is_err() || codec == CompressionType::Gzip, "{codec:?}");
        }
        let mut x = XERIAL_MAGIC.to_vec();
        x.extend_from_slice(&[0, 0, 0, 1, 0, 0, 0, 1, 0x7f, 0xff, 0xff, 0xff]);
        assert!(decompress(CompressionType::Snappy, &x, usize::MAX).is_err());
    }

    #[test]
    fn zstd_stored_frames_decode_as_zstd() {
        for len in [0usize, 1, 1000, ZSTD_MAX_BLOCK_BYTES, ZSTD_MAX_BLOCK_BYTES + 1, 3 * ZSTD_MAX_BLOCK_BYTES + 7] {
            let data: Vec<u8> = (0..len).map(|i| (i * 31 % 251) as u8).collect();
            let frame = zstd_stored_frame(&data);
            assert_eq!(decompress(CompressionType::Zstd, &frame, len).unwrap(), data, "len {len}");
        }
    }
}
