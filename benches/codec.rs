//! Criterion benchmarks of the generated protocol codec
//! (`klamm::protocol::messages`): decoding a Produce request and encoding a
//! Fetch response, the two messages on the data path.

use bytes::Bytes;
use criterion::{criterion_group, criterion_main, BatchSize, Criterion, Throughput};
use klamm::protocol::messages::{fetch_response, produce_request};
use klamm::protocol::{Reader, Writer};
use klamm::records::BatchBuilder;
use klamm::types::TimestampMs;

/// One v2 record batch of `count` records of `value_bytes` each.
fn batch(count: usize, value_bytes: usize) -> Bytes {
    let value = vec![b'v'; value_bytes];
    let mut b = BatchBuilder::new(0, TimestampMs(1_700_000_000_000));
    for _ in 0..count {
        b.append(TimestampMs(1_700_000_000_000), None, Some(&value), &[]);
    }
    Bytes::from(b.build())
}

/// A Produce request (flexible v9, what current clients send) with
/// `partitions` partitions of one topic, each one batch.
fn produce_request_bytes(partitions: i32, records: &Bytes, version: i16) -> Bytes {
    let req = produce_request::ProduceRequest {
        acks: 1,
        timeout_ms: 30_000,
        topic_data: vec![produce_request::TopicProduceData {
            name: "bench-topic".to_string(),
            partition_data: (0..partitions)
                .map(|index| produce_request::PartitionProduceData { index, records: Some(records.clone()) })
                .collect(),
            ..Default::default()
        }],
        ..Default::default()
    };
    let mut w = Writer::new();
    req.encode(&mut w, version);
    w.finish_contiguous()
}

fn bench_produce_decode(c: &mut Criterion) {
    let mut g = c.benchmark_group("produce_request_decode");
    for (partitions, count, value_bytes) in [(1, 650, 100), (16, 650, 100), (16, 64, 1024)] {
        let records = batch(count, value_bytes);
        let wire = produce_request_bytes(partitions, &records, 9);
        g.throughput(Throughput::Elements((partitions as usize * count) as u64));
        let name = format!("v9/{partitions}p/{count}x{value_bytes}B");
        g.bench_function(name, |b| {
            b.iter_batched(
                || Reader::new(wire.clone()),
                |mut r| produce_request::ProduceRequest::decode(&mut r, 9).expect("decodes"),
                BatchSize::SmallInput,
            )
        });
    }
    g.finish();
}

fn fetch_response(partitions: i32, records: &Bytes) -> fetch_response::FetchResponse {
    fetch_response::FetchResponse {
        responses: vec![fetch_response::FetchableTopicResponse {
            topic: "bench-topic".to_string(),
            partitions: (0..partitions)
                .map(|partition_index| fetch_response::PartitionData {
                    partition_index,
                    high_watermark: 1_000_000,
                    last_stable_offset: 1_000_000,
                    log_start_offset: 0,
                    records: Some(records.clone()),
                    ..Default::default()
                })
                .collect(),
            ..Default::default()
        }],
        ..Default::default()
    }
}

fn bench_fetch_encode(c: &mut Criterion) {
    let mut g = c.benchmark_group("fetch_response_encode");
    // Several batches of ~64 KiB per partition, as a consumer's fetch returns.
    let one = batch(650, 100);
    let mut many = Vec::new();
    while many.len() < 1024 * 1024 {
        many.extend_from_slice(&one);
    }
    let big = Bytes::from(many);
    for (version, partitions, records) in [(12, 1, one.clone()), (12, 16, one.clone()), (12, 1, big.clone()), (4, 16, one)]
    {
        let resp = fetch_response(partitions, &records);
        g.throughput(Throughput::Bytes(records.len() as u64 * partitions as u64)); // zero copy: bytes are not touched
        let name = format!("v{version}/{partitions}p/{}KiB", records.len() / 1024);
        g.bench_function(name, |b| {
            b.iter(|| {
                let mut w = Writer::new();
                resp.encode(&mut w, version);
                w.finish()
            })
        });
    }
    g.finish();
}

criterion_group!(benches, bench_produce_decode, bench_fetch_encode);
criterion_main!(benches);
