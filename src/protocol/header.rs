//! Request header v1/v2 and response header v0/v1, hand-written because
//! their version follows from the body's api key and version, and because
//! ApiVersions responses always use header v0 (KIP-511).

use super::codec::{DecodeError, Reader, Writer};

pub const API_VERSIONS_KEY: i16 = 18;

/// A decoded request header.
#[derive(Debug, Clone, PartialEq)]
pub struct RequestHeader {
    pub api_key: i16,
    pub api_version: i16,
    pub correlation_id: i32,
    pub client_id: Option<String>,
}

impl RequestHeader {
    /// Decodes the header. `flexible` says whether the body's version is
    /// flexible (then the header is v2 and ends with tagged fields). The
    /// client id is always a classic (i16-length) nullable string.
    pub fn decode(r: &mut Reader, flexible_for: impl Fn(i16, i16) -> bool) -> Result<RequestHeader, DecodeError> {
        let api_key = r.i16()?;
        let api_version = r.i16()?;
        let correlation_id = r.i32()?;
        let client_id = r.nullable_string(false)?;
        if flexible_for(api_key, api_version) {
            let n = r.tagged_count()?;
            for _ in 0..n {
                r.tagged_field()?;
            }
        }
        Ok(RequestHeader { api_key, api_version, correlation_id, client_id })
    }

    pub fn encode(&self, w: &mut Writer, flexible: bool) {
        w.i16(self.api_key);
        w.i16(self.api_version);
        w.i32(self.correlation_id);
        w.nullable_string(self.client_id.as_deref(), false);
        if flexible {
            w.uvarint(0);
        }
    }
}

/// Peeks the api key, version and correlation id without decoding the rest:
/// enough to answer even a request whose header cannot be fully parsed.
pub fn peek_ids(frame: &[u8]) -> Option<(i16, i16, i32)> {
    if frame.len() < 8 {
        return None;
    }
    let api_key = i16::from_be_bytes([frame[0], frame[1]]);
    let version = i16::from_be_bytes([frame[2], frame[3]]);
    let correlation_id = i32::from_be_bytes([frame[4], frame[5], frame[6], frame[7]]);
    Some((api_key, version, correlation_id))
}

/// Writes a response header: v1 (with an empty tagged section) for flexible
/// versions, v0 otherwise, and always v0 for ApiVersions.
pub fn encode_response_header(w: &mut Writer, api_key: i16, correlation_id: i32, flexible: bool) {
    w.i32(correlation_id);
    if flexible && api_key != API_VERSIONS_KEY {
        w.uvarint(0);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;

    #[test]
    fn header_round_trip_v1_and_v2() {
        for flexible in [false, true] {
            let h = RequestHeader { api_key: 3, api_version: 9, correlation_id: 42, client_id: Some("c".into()) };
            let mut w = Writer::new();
            h.encode(&mut w, flexible);
            let mut r = Reader::new(w.finish_contiguous());
            let d = RequestHeader::decode(&mut r, |_, _| flexible).unwrap();
            assert_eq!(d, h);
            assert_eq!(r.remaining(), 0);
        }
    }

    #[test]
    fn short_header_is_an_error_not_a_panic() {
        let mut r = Reader::new(Bytes::from_static(&[0, 1, 2]));
        assert!(RequestHeader::decode(&mut r, |_, _| false).is_err());
        assert_eq!(peek_ids(&[0, 1, 2]), None);
    }
}
