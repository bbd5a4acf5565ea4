//! Wire primitives of the Kafka protocol: a bounds-checked `Reader` over a
//! request frame and a `Writer` that builds responses, keeping large record
//! payloads as separate zero-copy chunks for vectored writes.
//!
//! Every read checks the remaining length first, so no input can panic, and
//! every length-prefixed allocation is bounded by the bytes actually left in
//! the frame.

use bytes::{BufMut, Bytes, BytesMut};
use std::fmt;

/// Why a frame could not be decoded. All variants map to a closed
/// connection or an `INVALID_REQUEST`-style answer; none of them panic.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    #[error("unexpected end of input: needed {needed} bytes, {remaining} left")]
    Truncated { needed: usize, remaining: usize },
    #[error("invalid length {0}")]
    InvalidLength(i64),
    #[error("null value for a non-nullable field")]
    UnexpectedNull,
    #[error("string is not valid UTF-8")]
    InvalidUtf8,
    #[error("varint is longer than its type allows")]
    VarintTooLong,
    #[error("invalid boolean byte {0}")]
    InvalidBool(u8),
    #[error("unsupported api key {0}")]
    UnknownApiKey(i16),
    #[error("unsupported version {version} of api key {api_key}")]
    UnsupportedVersion { api_key: i16, version: i16 },
    #[error("decoding would take {bytes} more bytes of memory than the frame justifies")]
    OverBudget { bytes: usize },
}

/// A 128-bit UUID as Kafka sends it (topic ids, directory ids).
#[derive(Clone, Copy, PartialEq, Eq, Hash, Default, PartialOrd, Ord)]
pub struct Uuid(pub [u8; 16]);

impl Uuid {
    pub const NIL: Uuid = Uuid([0; 16]);

    pub fn is_nil(&self) -> bool {
        self.0 == [0; 16]
    }

    /// Kafka's string form: URL-safe base64 without padding (22 characters).
    pub fn to_base64(&self) -> String {
        const ALPHABET: &[u8; 64] =
            b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
        let mut out = String::with_capacity(22);
        let mut bits: u32 = 0;
        let mut nbits = 0;
        for &b in &self.0 {
            bits = (bits << 8) | b as u32;
            nbits += 8;
            while nbits >= 6 {
                nbits -= 6;
                out.push(ALPHABET[((bits >> nbits) & 63) as usize] as char);
            }
        }
        if nbits > 0 {
            out.push(ALPHABET[((bits << (6 - nbits)) & 63) as usize] as char);
        }
        out
    }

    /// Parses Kafka's base64 form (22 characters, URL-safe alphabet).
    pub fn from_base64(s: &str) -> Option<Uuid> {
        if s.len() != 22 {
            return None;
        }
        let mut bytes = [0u8; 16];
        let mut bits: u32 = 0;
        let mut nbits = 0;
        let mut i = 0;
        for c in s.bytes() {
            let v = match c {
                b'A'..=b'Z' => c - b'A',
                b'a'..=b'z' => c - b'a' + 26,
                b'0'..=b'9' => c - b'0' + 52,
                b'-' => 62,
                b'_' => 63,
                _ => return None,
            } as u32;
            bits = (bits << 6) | v;
            nbits += 6;
            if nbits >= 8 {
                nbits -= 8;
                if i < 16 {
                    bytes[i] = (bits >> nbits) as u8;
                    i += 1;
                }
            }
        }
        (i == 16).then_some(Uuid(bytes))
    }
}

impl fmt::Debug for Uuid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Uuid({})", self.to_base64())
    }
}

impl fmt::Display for Uuid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_base64())
    }
}

/// Reads protocol primitives from the front of a frame. Cheap to clone:
/// `bytes` fields are returned as slices of the frame, not copies.
#[derive(Clone, Debug)]
pub struct Reader {
    buf: Bytes,
    /// Bytes of decoded arrays this reader may still build: decoding a
    /// frame costs at most `DECODE_BUDGET_FACTOR` times its size (plus
    /// `MIN_DECODE_BUDGET_BYTES`), however it is crafted (an empty string
    /// is one byte on the wire and 24 in memory).
    budget_bytes: usize,
}

/// Kafka 4.4's decoders refuse arrays of more elements than this before
/// allocating.
pub const MAX_ARRAY_ELEMENTS: usize = 1_000_000;
/// ... and more tagged fields than this in one section.
pub const MAX_TAGGED_FIELDS: u32 = 10_000;
/// Decoded arrays may take this many times the bytes they came from.
pub const DECODE_BUDGET_FACTOR: usize = 16;
/// Budget of even the smallest frame.
pub const MIN_DECODE_BUDGET_BYTES: usize = 64 * 1024;

/// The in-memory size of one element of `v` (for the decode budget).
pub fn elem_size<T>(_: &Vec<T>) -> usize {
    std::mem::size_of::<T>()
}

impl Reader {
    pub fn new(buf: Bytes) -> Reader {
        let budget_bytes = buf.len().saturating_mul(DECODE_BUDGET_FACTOR).max(MIN_DECODE_BUDGET_BYTES);
        Reader { buf, budget_bytes }
    }

    /// Charges `bytes` of decoded memory against this reader's budget.
    pub fn charge(&mut self, bytes: usize) -> Result<(), DecodeError> {
        match self.budget_bytes.checked_sub(bytes) {
            Some(left) => {
                self.budget_bytes = left;
                Ok(())
            }
            None => Err(DecodeError::OverBudget { bytes }),
        }
    }

    pub fn remaining(&self) -> usize {
        self.buf.len()
    }

    /// The bytes not yet read.
    pub fn rest(&self) -> &Bytes {
        &self.buf
    }

    #[inline]
    fn need(&self, needed: usize) -> Result<(), DecodeError> {
        if self.buf.len() < needed {
            Err(DecodeError::Truncated { needed, remaining: self.buf.len() })
        } else {
            Ok(())
        }
    }

    #[inline]
    fn take<const N: usize>(&mut self) -> Result<[u8; N], DecodeError> {
        self.need(N)?;
        let mut out = [0u8; N];
        out.copy_from_slice(&self.buf[..N]);
        bytes::Buf::advance(&mut self.buf, N);
        Ok(out)
    }

    pub fn i8(&mut self) -> Result<i8, DecodeError> {
        Ok(i8::from_be_bytes(self.take()?))
    }
    pub fn i16(&mut self) -> Result<i16, DecodeError> {
        Ok(i16::from_be_bytes(self.take()?))
    }
    pub fn i32(&mut self) -> Result<i32, DecodeError> {
        Ok(i32::from_be_bytes(self.take()?))
    }
    pub fn i64(&mut self) -> Result<i64, DecodeError> {
        Ok(i64::from_be_bytes(self.take()?))
    }
    pub fn u16(&mut self) -> Result<u16, DecodeError> {
        Ok(u16::from_be_bytes(self.take()?))
    }
    pub fn u32(&mut self) -> Result<u32, DecodeError> {
        Ok(u32::from_be_bytes(self.take()?))
    }
    pub fn f64(&mut self) -> Result<f64, DecodeError> {
        Ok(f64::from_be_bytes(self.take()?))
    }
    pub fn bool(&mut self) -> Result<bool, DecodeError> {
        match self.take::<1>()?[0] {
            0 => Ok(false),
            1 => Ok(true),
            b => Err(DecodeError::InvalidBool(b)),
        }
    }
    pub fn uuid(&mut self) -> Result<Uuid, DecodeError> {
        Ok(Uuid(self.take()?))
    }

    /// Unsigned LEB128 varint of at most 5 bytes (Kafka's `UNSIGNED_VARINT`).
    pub fn uvarint(&mut self) -> Result<u32, DecodeError> {
        let mut value: u32 = 0;
        for i in 0..5 {
            let b = self.take::<1>()?[0];
            if i == 4 && b > 0x0f {
                return Err(DecodeError::VarintTooLong);
            }
            value |= ((b & 0x7f) as u32) << (7 * i);
            if b & 0x80 == 0 {
                return Ok(value);
            }
        }
        Err(DecodeError::VarintTooLong)
    }

    /// Takes `len` bytes as a zero-copy slice of the frame.
    pub fn slice(&mut self, len: usize) -> Result<Bytes, DecodeError> {
        self.need(len)?;
        Ok(self.buf.split_to(len))
    }

    /// A length prefix: i16/i32 for classic versions, uvarint(N+1) for compact.
    /// `None` is null (-1 / 0). The length is checked against what is left.
    fn length(&mut self, compact: bool, wide: bool) -> Result<Option<usize>, DecodeError> {
        let len: i64 = if compact {
            self.uvarint()? as i64 - 1
        } else if wide {
            self.i32()? as i64
        } else {
            self.i16()? as i64
        };
        if len < 0 {
            if len == -1 {
                return Ok(None);
            }
            return Err(DecodeError::InvalidLength(len));
        }
        if len as usize > self.buf.len() {
            return Err(DecodeError::InvalidLength(len));
        }
        Ok(Some(len as usize))
    }

    pub fn nullable_string(&mut self, compact: bool) -> Result<Option<String>, DecodeError> {
        match self.length(compact, false)? {
            None => Ok(None),
            Some(len) => {
                let raw = self.slice(len)?;
                match std::str::from_utf8(&raw) {
                    Ok(s) => Ok(Some(s.to_owned())),
                    Err(_) => Err(DecodeError::InvalidUtf8),
                }
            }
        }
    }

    pub fn string(&mut self, compact: bool) -> Result<String, DecodeError> {
        self.nullable_string(compact)?.ok_or(DecodeError::UnexpectedNull)
    }

    pub fn nullable_bytes(&mut self, compact: bool) -> Result<Option<Bytes>, DecodeError> {
        match self.length(compact, true)? {
            None => Ok(None),
            Some(len) => Ok(Some(self.slice(len)?)),
        }
    }

    pub fn bytes(&mut self, compact: bool) -> Result<Bytes, DecodeError> {
        self.nullable_bytes(compact)?.ok_or(DecodeError::UnexpectedNull)
    }

    /// An array count. Every element takes at least one byte on the wire,
    /// so a count larger than the bytes left is rejected before any
    /// allocation.
    pub fn array_len(&mut self, compact: bool) -> Result<Option<usize>, DecodeError> {
        let n = self.length(compact, true)?;
        if let Some(n) = n {
            if n > MAX_ARRAY_ELEMENTS {
                return Err(DecodeError::InvalidLength(n as i64));
            }
        }
        Ok(n)
    }

    /// Reads the tagged-field section header and returns the number of fields.
    pub fn tagged_count(&mut self) -> Result<u32, DecodeError> {
        let n = self.uvarint()?;
        // Each tagged field takes at least two bytes (tag + size).
        if n > MAX_TAGGED_FIELDS || n as usize > self.buf.len() / 2 + 1 {
            return Err(DecodeError::InvalidLength(n as i64));
        }
        Ok(n)
    }

    /// Reads one tagged field header and returns (tag, a reader over its body).
    pub fn tagged_field(&mut self) -> Result<(u32, Reader), DecodeError> {
        let tag = self.uvarint()?;
        let size = self.uvarint()? as usize;
        let body = self.slice(size)?;
        let mut child = Reader::new(body);
        // A tagged field's decoded arrays draw on what its parent has left.
        child.budget_bytes = child.budget_bytes.min(self.budget_bytes);
        Ok((tag, child))
    }
}

/// Builds an encoded message. Small writes go into one growing buffer;
/// record payloads at or above `ZERO_COPY_MIN_BYTES` are kept as their own
/// `Bytes` chunks (e.g. slices of a memory-mapped segment) so they reach the
/// socket without being copied.
#[derive(Default, Debug)]
pub struct Writer {
    buf: BytesMut,
    chunks: Vec<Bytes>,
    chunks_len: usize,
}

/// Payloads smaller than this are copied; larger ones travel as chunks.
pub const ZERO_COPY_MIN_BYTES: usize = 4096;

impl Writer {
    pub fn new() -> Writer {
        Writer::with_capacity(256)
    }

    pub fn with_capacity(capacity: usize) -> Writer {
        Writer { buf: BytesMut::with_capacity(capacity), chunks: Vec::new(), chunks_len: 0 }
    }

    /// Total encoded length so far.
    pub fn len(&self) -> usize {
        self.chunks_len + self.buf.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    pub fn i8(&mut self, v: i8) {
        self.buf.put_i8(v)
    }
    pub fn i16(&mut self, v: i16) {
        self.buf.put_i16(v)
    }
    pub fn i32(&mut self, v: i32) {
        self.buf.put_i32(v)
    }
    pub fn i64(&mut self, v: i64) {
        self.buf.put_i64(v)
    }
    pub fn u16(&mut self, v: u16) {
        self.buf.put_u16(v)
    }
    pub fn u32(&mut self, v: u32) {
        self.buf.put_u32(v)
    }
    pub fn f64(&mut self, v: f64) {
        self.buf.put_f64(v)
    }
    pub fn bool(&mut self, v: bool) {
        self.buf.put_u8(v as u8)
    }
    pub fn uuid(&mut self, v: &Uuid) {
        self.buf.put_slice(&v.0)
    }
    pub fn raw(&mut self, v: &[u8]) {
        self.buf.put_slice(v)
    }

    pub fn uvarint(&mut self, mut v: u32) {
        while v >= 0x80 {
            self.buf.put_u8((v as u8) | 0x80);
            v >>= 7;
        }
        self.buf.put_u8(v as u8);
    }

    fn length(&mut self, len: Option<usize>, compact: bool, wide: bool) {
        match (len, compact) {
            (None, true) => self.uvarint(0),
            (Some(n), true) => self.uvarint(n as u32 + 1),
            (None, false) if wide => self.i32(-1),
            (None, false) => self.i16(-1),
            (Some(n), false) if wide => self.i32(n as i32),
            (Some(n), false) => self.i16(n as i16),
        }
    }

    pub fn string(&mut self, v: &str, compact: bool) {
        self.length(Some(v.len()), compact, false);
        self.buf.put_slice(v.as_bytes());
    }

    pub fn nullable_string(&mut self, v: Option<&str>, compact: bool) {
        match v {
            Some(s) => self.string(s, compact),
            None => self.length(None, compact, false),
        }
    }

    pub fn bytes(&mut self, v: &Bytes, compact: bool) {
        self.length(Some(v.len()), compact, true);
        if v.len() >= ZERO_COPY_MIN_BYTES {
            if !self.buf.is_empty() {
                let head = self.buf.split().freeze();
                self.chunks_len += head.len();
                self.chunks.push(head);
            }
            self.chunks_len += v.len();
            self.chunks.push(v.clone());
        } else {
            self.buf.put_slice(v);
        }
    }

    pub fn nullable_bytes(&mut self, v: Option<&Bytes>, compact: bool) {
        match v {
            Some(b) => self.bytes(b, compact),
            None => self.length(None, compact, true),
        }
    }

    pub fn array_len(&mut self, len: Option<usize>, compact: bool) {
        self.length(len, compact, true)
    }

    /// Writes one tagged field whose body was encoded into `body`.
    pub fn tagged_field(&mut self, tag: u32, body: Writer) {
        let body = body.finish_contiguous();
        self.uvarint(tag);
        self.uvarint(body.len() as u32);
        self.buf.put_slice(&body);
    }

    /// The encoded message as chunks ready for a vectored write.
    pub fn finish(mut self) -> Vec<Bytes> {
        if !self.buf.is_empty() {
            self.chunks.push(self.buf.freeze());
        }
        self.chunks
    }

    /// The encoded message as one contiguous buffer (copies chunks).
    pub fn finish_contiguous(self) -> Bytes {
        if self.chunks.is_empty() {
            return self.buf.freeze();
        }
        let mut out = BytesMut::with_capacity(self.len());
        for c in &self.chunks {
            out.put_slice(c);
        }
        out.put_slice(&self.buf);
        out.freeze()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uvarint_round_trip() {
        for v in [0u32, 1, 127, 128, 300, 16383, 16384, u32::MAX] {
            let mut w = Writer::new();
            w.uvarint(v);
            let mut r = Reader::new(w.finish_contiguous());
            assert_eq!(r.uvarint().unwrap(), v);
            assert_eq!(r.remaining(), 0);
        }
    }

    #[test]
    fn overlong_varint_is_an_error() {
        let mut r = Reader::new(Bytes::from_static(&[0xff, 0xff, 0xff, 0xff, 0xff, 0x01]));
        assert_eq!(r.uvarint(), Err(DecodeError::VarintTooLong));
    }

    #[test]
    fn huge_array_length_is_rejected_without_allocating() {
        let mut r = Reader::new(Bytes::from_static(&[0x7f, 0xff, 0xff, 0xff, 0, 0]));
        assert!(matches!(r.array_len(false), Err(DecodeError::InvalidLength(_))));
    }

    #[test]
    fn strings_and_nulls() {
        let mut w = Writer::new();
        w.string("abc", false);
        w.nullable_string(None, false);
        w.string("xyz", true);
        w.nullable_string(None, true);
        let mut r = Reader::new(w.finish_contiguous());
        assert_eq!(r.string(false).unwrap(), "abc");
        assert_eq!(r.nullable_string(false).unwrap(), None);
        assert_eq!(r.string(true).unwrap(), "xyz");
        assert_eq!(r.string(true), Err(DecodeError::UnexpectedNull));
    }

    #[test]
    fn large_bytes_become_chunks() {
        let big = Bytes::from(vec![7u8; ZERO_COPY_MIN_BYTES]);
        let mut w = Writer::new();
        w.i32(1);
        w.bytes(&big, false);
        w.i32(2);
        let len = w.len();
        let chunks = w.finish();
        assert_eq!(chunks.len(), 3);
        assert_eq!(chunks.iter().map(|c| c.len()).sum::<usize>(), len);
        assert_eq!(chunks[1].as_ptr(), big.as_ptr());
    }

    #[test]
    fn uuid_base64_round_trip() {
        let u = Uuid([1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 255]);
        let s = u.to_base64();
        assert_eq!(s.len(), 22);
        assert_eq!(Uuid::from_base64(&s), Some(u));
        assert_eq!(Uuid::NIL.to_base64(), "AAAAAAAAAAAAAAAAAAAAAA");
    }
}

#[cfg(test)]
mod decode_bound_tests {
    use super::*;
    use crate::protocol::messages::delete_groups_request::DeleteGroupsRequest;

    /// A DeleteGroups v2 body (flexible): `n` group names of `name_len`
    /// bytes, then an empty tagged-field section.
    fn delete_groups(n: usize, name_len: usize) -> Bytes {
        let mut w = Writer::new();
        w.uvarint(n as u32 + 1);
        for _ in 0..n {
            w.uvarint(name_len as u32 + 1);
            for _ in 0..name_len {
                w.i8(b'g' as i8);
            }
        }
        w.uvarint(0);
        w.finish_contiguous()
    }

    #[test]
    fn arrays_cost_at_most_a_small_factor_of_their_frame() {
        // 600,000 empty names: 600 KB on the wire, 14 MB as Strings.
        let frame = delete_groups(600_000, 0);
        let e = DeleteGroupsRequest::decode(&mut Reader::new(frame), 2).unwrap_err();
        assert!(matches!(e, DecodeError::OverBudget { .. }), "{e:?}");
        // Real names decode.
        let frame = delete_groups(10_000, 20);
        assert_eq!(DeleteGroupsRequest::decode(&mut Reader::new(frame), 2).unwrap().groups_names.len(), 10_000);
    }

    #[test]
    fn arrays_over_a_million_elements_and_excess_tagged_fields_are_refused() {
        let mut w = Writer::new();
        w.uvarint(1_000_001 + 1);
        let mut buf = w.finish_contiguous().to_vec();
        buf.resize(buf.len() + 2_000_100, 1);
        let e = DeleteGroupsRequest::decode(&mut Reader::new(Bytes::from(buf)), 2).unwrap_err();
        assert!(matches!(e, DecodeError::InvalidLength(1_000_001)), "{e:?}");
        let mut w = Writer::new();
        w.uvarint(MAX_TAGGED_FIELDS + 1);
        let mut buf = w.finish_contiguous().to_vec();
        buf.resize(buf.len() + 40_000, 0);
        assert!(Reader::new(Bytes::from(buf)).tagged_count().is_err());
    }
}
