//! Fuzz target `fetch_sessions`: the fetch-session cache driven by an
//! arbitrary sequence of requests, the way decoded Fetch requests drive it:
//! full and incremental contexts with any session id, epoch and version,
//! partitions added, updated and forgotten, sessions created from full
//! fetches, and responses selected with any summaries. No sequence may
//! panic, and after each step the cache's bookkeeping must be consistent
//! (`check_invariants`).
#![no_main]

mod common;

use std::time::{Duration, Instant};

use klamm::fetch_session::{FetchContext, FetchParams, FetchSessionCache, PartitionKey, Summary, TopicKey};
use klamm::protocol::Uuid;
use libfuzzer_sys::fuzz_target;

/// A partition from a small domain, so that updates and forgets hit.
fn key(input: &mut common::Input<'_>) -> PartitionKey {
    let b = input.u8();
    let topic = if b & 0x80 == 0 {
        TopicKey::Name(["a", "b", "c"][usize::from(b % 3)].to_string())
    } else {
        TopicKey::Id(Uuid([b % 3; 16]))
    };
    PartitionKey { topic, partition: i32::from(input.u8() % 8) - 1 }
}

fn params(input: &mut common::Input<'_>) -> FetchParams {
    FetchParams {
        fetch_offset: i64::from(input.u8()) - 1,
        current_leader_epoch: i32::from(input.u8() % 4) - 1,
        partition_max_bytes: i32::from(input.u8()) << 8,
    }
}

fn summary(input: &mut common::Input<'_>) -> Summary {
    let b = input.u8();
    Summary {
        has_records: b & 1 != 0,
        high_watermark: i64::from(b >> 2) - 1,
        log_start_offset: i64::from(b & 2),
        error: b & 0x80 != 0,
    }
}

fuzz_target!(|data: &[u8]| {
    let mut input = common::Input::new(data);
    let cache = FetchSessionCache::new(usize::from(input.u8() % 4));
    let start = Instant::now();
    let mut ids = vec![0i32];
    let mut last: Option<(i32, i32, usize)> = None; // incremental: id, request epoch, partitions
    for step in 0..64u64 {
        if input.rest_len() == 0 {
            break;
        }
        let now = start + Duration::from_secs(step * u64::from(input.u8()));
        let version = i16::from(input.u8() % 18);
        match input.u8() % 3 {
            0 => {
                let id = ids[usize::from(input.u8()) % ids.len()];
                let epoch = i32::from(input.u8() % 8) - 2;
                let requested: Vec<_> = (0..input.u8() % 6).map(|_| (key(&mut input), params(&mut input))).collect();
                let forgotten: Vec<_> = (0..input.u8() % 4).map(|_| key(&mut input)).collect();
                match cache.new_context(version, id, epoch, &requested, &forgotten, now) {
                    FetchContext::Incremental { session_id, request_epoch, partitions } => {
                        assert!(!partitions.is_empty());
                        last = Some((session_id, request_epoch, partitions.len()));
                    }
                    FetchContext::Full | FetchContext::Sessionless | FetchContext::Error(_) => {}
                }
            }
            1 => {
                let parts: Vec<_> = (0..input.u8() % 6)
                    .map(|_| (key(&mut input), params(&mut input), summary(&mut input)))
                    .collect();
                let id = cache.create(version, parts, now);
                if id != 0 {
                    ids.push(id);
                }
            }
            _ => {
                let (id, epoch, n) = last.unwrap_or((ids[ids.len() - 1], 1, 1));
                let n = if input.u8() & 1 == 0 { n } else { usize::from(input.u8() % 6) };
                let summaries: Vec<_> = (0..n).map(|_| summary(&mut input)).collect();
                if let Ok(include) = cache.select(id, epoch, &summaries) {
                    assert_eq!(include.len(), summaries.len());
                }
            }
        }
        cache.check_invariants();
    }
});
