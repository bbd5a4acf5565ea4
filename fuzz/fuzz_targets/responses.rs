//! Fuzz target `responses`: every generated response decoder (the client's
//! direction; used by the oracle tests and by any client-side code).
//! Input: api key (i16 BE), version (i16 BE), then the response body.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if data.len() < 4 {
        return;
    }
    let api_key = i16::from_be_bytes([data[0], data[1]]);
    let version = i16::from_be_bytes([data[2], data[3]]);
    let _ = klamm::protocol::decode_body_for_fuzz("response", api_key, version, &data[4..]);
});
