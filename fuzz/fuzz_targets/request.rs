//! Fuzz target `request`: a whole request frame (header + body, without
//! the size prefix) decoded as the server decodes it, for every request
//! klamm has a definition for; what decodes must re-encode and decode again.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|frame: &[u8]| {
    let _ = klamm::protocol::decode_request_for_fuzz(frame);
});
