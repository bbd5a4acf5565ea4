//! Differential tests: every message version we can encode is decoded and
//! re-encoded by the independent `kafka-protocol` crate (a dev-dependency
//! used only as an oracle), and must come back byte for byte; our decoder
//! must read the same bytes back into the same value.

use super::codec::{Reader, Writer};
use super::messages;
use bytes::BytesMut;
use kafka_protocol::protocol::{Decodable, Encodable, Message};

const SAMPLES_PER_VERSION: u64 = 40;

macro_rules! oracle {
    ($($module:ident => $ty:ident),* $(,)?) => {
        $(
            #[test]
            fn $module() {
                use messages::$module as ours;
                type Theirs = kafka_protocol::messages::$ty;
                let lo = ours::MIN_VERSION.max(<Theirs as Message>::VERSIONS.min);
                let hi = ours::MAX_VERSION.min(<Theirs as Message>::VERSIONS.max);
                assert!(lo <= hi, "no common versions");
                for version in lo..=hi {
                    for seed in 1..=SAMPLES_PER_VERSION {
                        let mut rng = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ (version as u64 + 1);
                        let msg = ours::$ty::sample(&mut rng, version, 0);
                        let mut w = Writer::new();
                        msg.encode(&mut w, version);
                        let encoded = w.finish_contiguous();
                        let mut buf = encoded.clone();
                        let theirs = <Theirs as Decodable>::decode(&mut buf, version)
                            .unwrap_or_else(|e| panic!("oracle cannot decode v{version}: {e}\n{msg:?}"));
                        assert!(buf.is_empty(), "oracle left {} bytes at v{version}", buf.len());
                        let mut again = BytesMut::new();
                        theirs.encode(&mut again, version).expect("oracle encodes");
                        assert_eq!(&again[..], &encoded[..], "v{version} differs from the oracle\n{msg:?}");
                        let back = ours::$ty::decode(&mut Reader::new(encoded), version).expect("we decode our own bytes");
                        assert_eq!(back, msg, "v{version} does not round-trip");
                    }
                }
            }
        )*
    };
}

oracle! {
    api_versions_request => ApiVersionsRequest,
    api_versions_response => ApiVersionsResponse,
    metadata_request => MetadataRequest,
}
