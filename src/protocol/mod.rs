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
