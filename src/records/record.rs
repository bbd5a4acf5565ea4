//! Records inside an uncompressed v2 batch: zig-zag varint decoding and a
//! bounded, allocation-free record iterator (used to validate produce input,
//! to search timestamps, and by anyone who needs keys/values/headers).

use super::batch::RecordBatch;
use super::error::BatchError;
use crate::types::{Offset, TimestampMs};

/// Reads a zig-zag varint (at most 5 bytes) from `buf[*pos..]`.
#[inline]
pub fn read_varint(buf: &[u8], pos: &mut usize) -> Option<i32> {
    let mut value: u32 = 0;
    let mut shift = 0u32;
    loop {
        let b = *buf.get(*pos)?;
        *pos += 1;
        value |= ((b & 0x7f) as u32) << shift;
        if b & 0x80 == 0 {
            break;
        }
        shift += 7;
        if shift > 28 {
            return None;
        }
    }
    Some(((value >> 1) as i32) ^ -((value & 1) as i32))
}

/// Reads a zig-zag varlong (at most 10 bytes) from `buf[*pos..]`.
#[inline]
pub fn read_varlong(buf: &[u8], pos: &mut usize) -> Option<i64> {
    let mut value: u64 = 0;
    let mut shift = 0u32;
    loop {
        let b = *buf.get(*pos)?;
        *pos += 1;
        value |= ((b & 0x7f) as u64) << shift;
        if b & 0x80 == 0 {
            break;
        }
        shift += 7;
        if shift > 63 {
            return None;
        }
    }
    Some(((value >> 1) as i64) ^ -((value & 1) as i64))
}

/// Appends a zig-zag varint to `out`.
pub fn write_varint(out: &mut Vec<u8>, value: i32) {
    let mut v = ((value << 1) ^ (value >> 31)) as u32;
    while v >= 0x80 {
        out.push((v as u8 & 0x7f) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

/// Appends a zig-zag varlong to `out`.
pub fn write_varlong(out: &mut Vec<u8>, value: i64) {
    let mut v = ((value << 1) ^ (value >> 63)) as u64;
    while v >= 0x80 {
        out.push((v as u8 & 0x7f) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

/// One record of an uncompressed batch, borrowing from the batch bytes.
#[derive(Clone, Copy)]
pub struct Record<'a> {
    pub attributes: i8,
    pub timestamp_delta: i64,
    pub offset_delta: i32,
    pub key: Option<&'a [u8]>,
    pub value: Option<&'a [u8]>,
    headers_count: i32,
    headers: &'a [u8],
}

impl<'a> Record<'a> {
    /// Absolute timestamp given the batch (LogAppendTime batches report the
    /// batch's max timestamp for every record, as Kafka does).
    pub fn timestamp(&self, batch: &RecordBatch<'_>) -> TimestampMs {
        match batch.timestamp_type() {
            super::batch::TimestampType::LogAppendTime => batch.max_timestamp(),
            super::batch::TimestampType::CreateTime => {
                TimestampMs(batch.base_timestamp().0.wrapping_add(self.timestamp_delta))
            }
        }
    }

    /// Absolute offset given the batch.
    pub fn offset(&self, batch: &RecordBatch<'_>) -> Offset {
        Offset(batch.base_offset().0.wrapping_add(self.offset_delta as i64))
    }

    pub fn headers_count(&self) -> i32 {
        self.headers_count
    }

    /// Iterates `(key, value)` header pairs; already validated by the record
    /// iterator so it cannot fail.
    pub fn headers(&self) -> HeaderIter<'a> {
        HeaderIter {
            buf: self.headers,
            pos: 0,
            left: self.headers_count,
        }
    }
}

/// Iterator over the headers of a [`Record`].
pub struct HeaderIter<'a> {
    buf: &'a [u8],
    pos: usize,
    left: i32,
}

impl<'a> Iterator for HeaderIter<'a> {
    type Item = (&'a [u8], Option<&'a [u8]>);
    fn next(&mut self) -> Option<Self::Item> {
        if self.left <= 0 {
            return None;
        }
        self.left -= 1;
        let (key, value) = parse_header(self.buf, &mut self.pos).ok()?;
        Some((key, value))
    }
}

fn take<'a>(buf: &'a [u8], pos: &mut usize, len: usize) -> Option<&'a [u8]> {
    let end = pos.checked_add(len)?;
    let s = buf.get(*pos..end)?;
    *pos = end;
    Some(s)
}

fn parse_header<'a>(
    buf: &'a [u8],
    pos: &mut usize,
) -> Result<(&'a [u8], Option<&'a [u8]>), &'static str> {
    let key_len = read_varint(buf, pos).ok_or("bad header key length")?;
    if key_len < 0 {
        return Err("negative header key length");
    }
    let key = take(buf, pos, key_len as usize).ok_or("header key beyond record")?;
    let value_len = read_varint(buf, pos).ok_or("bad header value length")?;
    let value = if value_len < 0 {
        None
    } else {
        Some(take(buf, pos, value_len as usize).ok_or("header value beyond record")?)
    };
    Ok((key, value))
}

/// Parses one record body (everything after its length prefix); the body
/// must be consumed exactly.
fn parse_body(body: &[u8]) -> Result<Record<'_>, &'static str> {
    let mut pos = 0usize;
    let attributes = *body.first().ok_or("empty record")? as i8;
    pos += 1;
    let timestamp_delta = read_varlong(body, &mut pos).ok_or("bad timestamp delta")?;
    let offset_delta = read_varint(body, &mut pos).ok_or("bad offset delta")?;
    let key_len = read_varint(body, &mut pos).ok_or("bad key length")?;
    let key = if key_len < 0 {
        None
    } else {
        Some(take(body, &mut pos, key_len as usize).ok_or("key beyond record")?)
    };
    let value_len = read_varint(body, &mut pos).ok_or("bad value length")?;
    let value = if value_len < 0 {
        None
    } else {
        Some(take(body, &mut pos, value_len as usize).ok_or("value beyond record")?)
    };
    let headers_count = read_varint(body, &mut pos).ok_or("bad header count")?;
    if headers_count < 0 {
        return Err("negative header count");
    }
    let headers_start = pos;
    for _ in 0..headers_count {
        // Each header takes at least 2 bytes, so a huge count fails fast.
        parse_header(body, &mut pos)?;
    }
    if pos != body.len() {
        return Err("record length does not match its contents");
    }
    Ok(Record {
        attributes,
        timestamp_delta,
        offset_delta,
        key,
        value,
        headers_count,
        headers: &body[headers_start..pos],
    })
}

/// Iterates the records of an uncompressed batch. Yields at most
/// `recordsCount` records and then checks that the region was consumed
/// exactly; any problem is yielded once as an error and iteration stops.
pub struct RecordIter<'a> {
    buf: &'a [u8],
    pos: usize,
    index: i32,
    declared: i32,
    done: bool,
}

impl<'a> RecordIter<'a> {
    /// Records of `batch`; the caller must ensure the batch is uncompressed
    /// (compressed record bytes are not records).
    pub fn new(batch: &RecordBatch<'a>) -> RecordIter<'a> {
        RecordIter {
            buf: batch.records_bytes(),
            pos: 0,
            index: 0,
            declared: batch.records_count(),
            done: false,
        }
    }

    /// Records of a decompressed records region declared to hold `declared`
    /// records (a compressed batch's `recordsCount`).
    pub fn over(buf: &'a [u8], declared: i32) -> RecordIter<'a> {
        RecordIter { buf, pos: 0, index: 0, declared, done: false }
    }

    fn fail(&mut self, e: BatchError) -> Option<Result<Record<'a>, BatchError>> {
        self.done = true;
        Some(Err(e))
    }
}

impl<'a> Iterator for RecordIter<'a> {
    type Item = Result<Record<'a>, BatchError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.done {
            return None;
        }
        if self.index >= self.declared {
            self.done = true;
            if self.pos != self.buf.len() {
                // Trailing bytes: more records than declared, or garbage.
                return Some(Err(BatchError::RecordCountMismatch {
                    declared: self.declared,
                    found: self.index.saturating_add(1),
                }));
            }
            return None;
        }
        if self.pos >= self.buf.len() {
            let (declared, found) = (self.declared, self.index);
            return self.fail(BatchError::RecordCountMismatch { declared, found });
        }
        let index = self.index;
        let len = match read_varint(self.buf, &mut self.pos) {
            Some(l) if l >= 0 => l as usize,
            _ => {
                return self.fail(BatchError::MalformedRecord {
                    index,
                    reason: "bad record length",
                })
            }
        };
        let body = match take(self.buf, &mut self.pos, len) {
            Some(b) => b,
            None => {
                return self.fail(BatchError::MalformedRecord {
                    index,
                    reason: "record beyond batch",
                })
            }
        };
        match parse_body(body) {
            Ok(r) => {
                self.index += 1;
                Some(Ok(r))
            }
            Err(reason) => self.fail(BatchError::MalformedRecord { index, reason }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::records::builder::BatchBuilder;

    #[test]
    fn varint_round_trip() {
        for v in [0i32, 1, -1, 63, -64, 64, 300, -300, i32::MAX, i32::MIN] {
            let mut out = Vec::new();
            write_varint(&mut out, v);
            let mut pos = 0;
            assert_eq!(read_varint(&out, &mut pos), Some(v));
            assert_eq!(pos, out.len());
        }
        for v in [0i64, 1, -1, 1 << 40, -(1 << 40), i64::MAX, i64::MIN] {
            let mut out = Vec::new();
            write_varlong(&mut out, v);
            let mut pos = 0;
            assert_eq!(read_varlong(&out, &mut pos), Some(v));
            assert_eq!(pos, out.len());
        }
    }

    #[test]
    fn varint_rejects_overlong_and_truncated() {
        let mut pos = 0;
        assert_eq!(
            read_varint(&[0xff, 0xff, 0xff, 0xff, 0xff, 0x01], &mut pos),
            None
        );
        pos = 0;
        assert_eq!(read_varint(&[0x80], &mut pos), None);
        pos = 0;
        assert_eq!(read_varlong(&[0xff; 11], &mut pos), None);
    }

    #[test]
    fn iterates_records_with_headers() {
        let mut b = BatchBuilder::new(10, TimestampMs(500));
        b.append(
            TimestampMs(500),
            Some(b"a"),
            Some(b"1"),
            &[("h1", Some(b"x")), ("h2", None)],
        );
        b.append(TimestampMs(510), None, None, &[]);
        let bytes = b.build();
        let batch = RecordBatch::new(&bytes).unwrap();
        let recs: Vec<_> = RecordIter::new(&batch).collect::<Result<_, _>>().unwrap();
        assert_eq!(recs.len(), 2);
        assert_eq!(recs[0].key, Some(&b"a"[..]));
        assert_eq!(recs[0].value, Some(&b"1"[..]));
        let headers: Vec<_> = recs[0].headers().collect();
        assert_eq!(
            headers,
            vec![(&b"h1"[..], Some(&b"x"[..])), (&b"h2"[..], None)]
        );
        assert_eq!(recs[1].key, None);
        assert_eq!(recs[1].value, None);
        assert_eq!(recs[1].offset(&batch), Offset(11));
        assert_eq!(recs[1].timestamp(&batch), TimestampMs(510));
    }
}
