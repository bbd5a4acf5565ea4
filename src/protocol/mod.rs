//! The Kafka wire protocol: primitives (`codec`), error codes, request and
//! response headers, and the message structs generated at build time from
//! our own definitions in `schema/*.kdef`.

pub mod codec;
pub mod error;
pub mod header;
#[cfg(test)]
mod oracle_tests;

pub use codec::{DecodeError, Reader, Uuid, Writer};
pub use error::ErrorCode;

/// The generated message modules, one per `schema/*.kdef` file.
#[allow(clippy::all, missing_docs)]
pub mod messages {
    include!(concat!(env!("OUT_DIR"), "/messages.rs"));
}

/// What a message definition says about one request type.
#[derive(Clone, Copy, Debug)]
pub struct RequestSchema {
    pub api_key: i16,
    pub name: &'static str,
    pub min_version: i16,
    pub max_version: i16,
    pub first_flexible_version: Option<i16>,
}

/// Looks up the definition of a request by api key.
pub fn request_schema(api_key: i16) -> Option<&'static RequestSchema> {
    messages::REQUEST_SCHEMAS.iter().find(|s| s.api_key == api_key)
}

/// Whether `version` of `api_key` uses the flexible (compact, tagged) encoding.
pub fn is_flexible(api_key: i16, version: i16) -> bool {
    request_schema(api_key)
        .and_then(|s| s.first_flexible_version)
        .is_some_and(|f| version >= f)
}

/// Fuzzing entry point: decodes a request frame (without its size prefix)
/// the way the server does — ids, header (v1 or v2 by the body's version),
/// then the body — for every request we have a definition for, not only
/// the implemented ones. A body that decodes is re-encoded, and the
/// re-encoded bytes must decode again and encode to the same bytes.
///
/// # Panics
/// Only when that round trip fails, which is a bug in the generated codec
/// (the fuzzer's signal); bad input is an `Err`.
#[doc(hidden)]
pub fn decode_request_for_fuzz(frame: &[u8]) -> Result<(), DecodeError> {
    let (api_key, version, _) = header::peek_ids(frame)
        .ok_or(DecodeError::Truncated { needed: 8, remaining: frame.len() })?;
    let schema = request_schema(api_key).ok_or(DecodeError::UnknownApiKey(api_key))?;
    if version < schema.min_version || version > schema.max_version {
        return Err(DecodeError::UnsupportedVersion { api_key, version });
    }
    let mut r = Reader::new(bytes::Bytes::copy_from_slice(frame));
    let h = header::RequestHeader::decode(&mut r, is_flexible)?;
    assert_eq!((h.api_key, h.api_version), (api_key, version), "header disagrees with peek_ids");
    let flexible = is_flexible(api_key, version);
    let mut w = Writer::new();
    h.encode(&mut w, flexible);
    let again = header::RequestHeader::decode(&mut Reader::new(w.finish_contiguous()), is_flexible)
        .expect("a re-encoded request header decodes");
    assert_eq!(again, h, "request header round trip");
    round_trip_for_fuzz("request", api_key, version, &mut r)
}

/// Fuzzing entry point: decodes `body` as the `kind` ("request" or
/// "response") message of `api_key` at `version` and checks the round trip
/// as [`decode_request_for_fuzz`] does.
///
/// # Panics
/// Only when the round trip fails (a codec bug).
#[doc(hidden)]
pub fn decode_body_for_fuzz(kind: &str, api_key: i16, version: i16, body: &[u8]) -> Result<(), DecodeError> {
    round_trip_for_fuzz(kind, api_key, version, &mut Reader::new(bytes::Bytes::copy_from_slice(body)))
}

fn round_trip_for_fuzz(kind: &str, api_key: i16, version: i16, r: &mut Reader) -> Result<(), DecodeError> {
    let once = messages::decode_encode(kind, api_key, version, r)?.finish_contiguous();
    let mut again = Reader::new(once.clone());
    let twice = match messages::decode_encode(kind, api_key, version, &mut again) {
        Ok(w) => w.finish_contiguous(),
        Err(e) => panic!("{kind} {api_key} v{version}: re-encoded bytes do not decode: {e}\n{once:?}"),
    };
    assert_eq!(again.remaining(), 0, "{kind} {api_key} v{version}: re-encoded bytes not consumed exactly");
    assert_eq!(twice, once, "{kind} {api_key} v{version}: encode(decode(encode(x))) != encode(x)");
    Ok(())
}

/// Pseudo-random values for the generated `sample()` constructors.
#[cfg(test)]
pub(crate) mod sample {
    use super::Uuid;
    use bytes::Bytes;

    pub fn next(rng: &mut u64) -> u64 {
        // xorshift64*: deterministic, good enough for test data.
        *rng ^= *rng >> 12;
        *rng ^= *rng << 25;
        *rng ^= *rng >> 27;
        rng.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    pub fn count(rng: &mut u64, depth: u32) -> usize {
        if depth > 3 {
            0
        } else {
            (next(rng) % 3) as usize
        }
    }

    pub fn uuid(rng: &mut u64) -> Uuid {
        let mut b = [0u8; 16];
        b[..8].copy_from_slice(&next(rng).to_be_bytes());
        b[8..].copy_from_slice(&next(rng).to_be_bytes());
        Uuid(b)
    }

    pub fn string(rng: &mut u64) -> String {
        let n = (next(rng) % 9) as usize;
        (0..n).map(|_| (b'a' + (next(rng) % 26) as u8) as char).collect()
    }

    pub fn bytes(rng: &mut u64) -> Bytes {
        let n = (next(rng) % 17) as usize;
        Bytes::from((0..n).map(|_| next(rng) as u8).collect::<Vec<u8>>())
    }
}

#[cfg(test)]
pub(crate) mod fuzz_entry_tests {
    use super::*;

    /// A request frame (header + body, no size prefix) around `body`.
    pub(crate) fn frame(api_key: i16, version: i16, body: &[u8]) -> Vec<u8> {
        let h = header::RequestHeader { api_key, api_version: version, correlation_id: 7, client_id: Some("fuzz".into()) };
        let mut w = Writer::new();
        h.encode(&mut w, is_flexible(api_key, version));
        let mut out = w.finish_contiguous().to_vec();
        out.extend_from_slice(body);
        out
    }

    #[test]
    fn every_sample_message_passes_the_fuzz_checks() {
        let mut rng = 0x5eed_u64;
        let mut checked = 0;
        for s in messages::REQUEST_SCHEMAS {
            for version in s.min_version..=s.max_version {
                for _ in 0..4 {
                    let body = messages::sample_encoded("request", s.api_key, version, &mut rng).unwrap();
                    decode_request_for_fuzz(&frame(s.api_key, version, &body))
                        .unwrap_or_else(|e| panic!("{} v{version}: {e}", s.name));
                    decode_body_for_fuzz("request", s.api_key, version, &body).unwrap();
                    if let Some(body) = messages::sample_encoded("response", s.api_key, version, &mut rng) {
                        decode_body_for_fuzz("response", s.api_key, version, &body)
                            .unwrap_or_else(|e| panic!("{} response v{version}: {e}", s.name));
                        checked += 1;
                    }
                }
            }
        }
        assert!(checked > 100, "responses checked: {checked}");
    }

    #[test]
    fn fuzz_entry_points_reject_bad_frames() {
        assert!(matches!(decode_request_for_fuzz(&[0, 18]), Err(DecodeError::Truncated { .. })));
        assert_eq!(decode_request_for_fuzz(&frame(-5, 0, &[])), Err(DecodeError::UnknownApiKey(-5)));
        assert_eq!(
            decode_request_for_fuzz(&frame(18, 999, &[])),
            Err(DecodeError::UnsupportedVersion { api_key: 18, version: 999 })
        );
        assert!(decode_request_for_fuzz(&frame(0, 3, &[0xff])).is_err());
        assert!(decode_body_for_fuzz("response", 3, 1, &[0, 0, 0]).is_err());
        assert_eq!(decode_body_for_fuzz("neither", 3, 1, &[]), Err(DecodeError::UnknownApiKey(3)));
    }
}
