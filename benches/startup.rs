//! Criterion benchmark of `klamm::TestBroker::start()`: from the call to a
//! broker that accepts connections (issue 3 wants ≤20 ms). Shutdown is not
//! timed.

use std::time::{Duration, Instant};

use criterion::{criterion_group, criterion_main, Criterion};
use klamm::TestBroker;

fn bench_start(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build().expect("runtime");
    let mut g = c.benchmark_group("test_broker");
    g.sample_size(20);
    g.bench_function("start_to_ready", |b| {
        b.iter_custom(|iters| {
            rt.block_on(async {
                let mut total = Duration::ZERO;
                for _ in 0..iters {
                    let t0 = Instant::now();
                    let broker = TestBroker::start().await.expect("start");
                    total += t0.elapsed();
                    broker.shutdown().await;
                }
                total
            })
        })
    });
    g.finish();
}

criterion_group!(benches, bench_start);
criterion_main!(benches);
