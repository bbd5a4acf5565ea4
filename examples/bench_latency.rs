//! End-to-end latency at a fixed rate through librdkafka (the `rdkafka`
//! crate), for scripts/bench: one producer (acks=1, linger 0) sends
//! `RATE` records/s to partition 0 for `SECONDS`; a consumer assigned to
//! the end of that partition receives them in the same process. Each value
//! carries its send time, so latency is produce → broker → consumer, with
//! µs resolution and one clock. The first second is warm-up.
//!
//!     cargo run --release --example bench_latency -- BOOTSTRAP TOPIC RATE SECONDS RECORD_BYTES
//!
//! Prints one JSON line: records, p50_us, p99_us, p999_us, max_us.
//! `BENCH_FETCH_WAIT_MAX_MS` sets the consumer's fetch.wait.max.ms (100).

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::producer::{BaseProducer, BaseRecord, Producer};
use rdkafka::{ClientConfig, Message, Offset, TopicPartitionList};

/// Largest accepted record and run, so a typo cannot exhaust memory.
const MAX_RECORD_BYTES: usize = 1 << 20;
const MAX_RECORDS: u64 = 10_000_000;

fn usage() -> ! {
    eprintln!("usage: bench_latency BOOTSTRAP TOPIC RATE SECONDS RECORD_BYTES");
    std::process::exit(2)
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.len() != 5 {
        usage();
    }
    let (bootstrap, topic) = (args[0].clone(), args[1].clone());
    let rate_per_s: u64 = args[2].parse().unwrap_or_else(|_| usage());
    let seconds: f64 = args[3].parse().unwrap_or_else(|_| usage());
    let record_bytes: usize = args[4].parse().unwrap_or_else(|_| usage());
    let total = (rate_per_s as f64 * seconds) as u64;
    if rate_per_s == 0 || !(8..=MAX_RECORD_BYTES).contains(&record_bytes) || total > MAX_RECORDS {
        usage();
    }

    // The consumer's long-poll bound; a broker that misses a wakeup shows
    // latencies of about this much.
    let fetch_wait_max_ms = std::env::var("BENCH_FETCH_WAIT_MAX_MS").unwrap_or_else(|_| "100".to_string());
    let epoch = Instant::now();
    let now_ns = move || epoch.elapsed().as_nanos() as u64;

    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", &bootstrap)
        .set("group.id", "klamm-bench-latency")
        .set("enable.auto.commit", "false")
        .set("fetch.wait.max.ms", &fetch_wait_max_ms)
        .set("socket.nagle.disable", "true")
        .create()
        .expect("consumer");
    let mut tpl = TopicPartitionList::new();
    tpl.add_partition_offset(&topic, 0, Offset::End).expect("partition");
    consumer.assign(&tpl).expect("assign");

    let producer: BaseProducer = ClientConfig::new()
        .set("bootstrap.servers", &bootstrap)
        .set("acks", "1")
        .set("linger.ms", "0")
        .set("socket.nagle.disable", "true")
        .create()
        .expect("producer");

    // Records sent at or after this time are measured.
    let measure_from_ns = Arc::new(AtomicU64::new(u64::MAX));
    let seen = Arc::new(AtomicU64::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    let latencies_us = Arc::new(Mutex::new(Vec::with_capacity(total as usize)));
    let reader = {
        let (measure_from_ns, seen, stop, latencies_us) =
            (measure_from_ns.clone(), seen.clone(), stop.clone(), latencies_us.clone());
        std::thread::spawn(move || {
            while !stop.load(Ordering::Relaxed) {
                let Some(msg) = consumer.poll(Duration::from_millis(50)) else { continue };
                let t = now_ns();
                let Ok(msg) = msg else { continue };
                let Some(sent) = msg.payload().and_then(|p| p.get(..8)).map(|b| {
                    u64::from_be_bytes(b.try_into().expect("8 bytes"))
                }) else {
                    continue;
                };
                seen.fetch_add(1, Ordering::Relaxed);
                if sent >= measure_from_ns.load(Ordering::Relaxed) {
                    latencies_us.lock().expect("lock").push(t.saturating_sub(sent) as f64 / 1000.0);
                }
            }
        })
    };

    let mut payload = vec![b'.'; record_bytes];
    let send = |payload: &mut Vec<u8>| {
        payload[..8].copy_from_slice(&now_ns().to_be_bytes());
        loop {
            match producer.send(BaseRecord::<(), [u8]>::to(&topic).partition(0).payload(payload)) {
                Ok(()) => break,
                Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), _)) => {
                    producer.poll(Duration::from_millis(1));
                }
                Err((e, _)) => {
                    eprintln!("bench_latency: produce failed: {e}");
                    std::process::exit(1);
                }
            }
        }
        producer.poll(Duration::ZERO);
    };

    // Warm up until the consumer (which starts at the log end) sees records.
    let deadline = Instant::now() + Duration::from_secs(30);
    while seen.load(Ordering::Relaxed) == 0 {
        assert!(Instant::now() < deadline, "the consumer saw nothing in 30 s");
        send(&mut payload);
        std::thread::sleep(Duration::from_millis(20));
    }

    let start_ns = now_ns();
    measure_from_ns.store(start_ns + 1_000_000_000, Ordering::Relaxed);
    let interval_ns = 1_000_000_000 / rate_per_s;
    for i in 0..total {
        let target = start_ns + i * interval_ns;
        let now = now_ns();
        if target > now {
            std::thread::sleep(Duration::from_nanos(target - now));
        }
        send(&mut payload);
    }
    producer.flush(Duration::from_secs(30)).expect("flush");
    let expected = total.saturating_sub(rate_per_s) as usize;
    let deadline = Instant::now() + Duration::from_secs(10);
    while latencies_us.lock().expect("lock").len() < expected && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    stop.store(true, Ordering::Relaxed);
    reader.join().expect("reader");

    let mut lat = std::mem::take(&mut *latencies_us.lock().expect("lock"));
    lat.sort_by(|a, b| a.total_cmp(b));
    let pct = |q: f64| lat.get(((lat.len() as f64 * q) as usize).min(lat.len().saturating_sub(1))).copied();
    let fmt = |v: Option<f64>| v.map_or("null".to_string(), |v| format!("{v:.1}"));
    println!(
        "{{\"records\": {}, \"expected\": {}, \"p50_us\": {}, \"p99_us\": {}, \"p999_us\": {}, \"max_us\": {}}}",
        lat.len(),
        expected,
        fmt(pct(0.5)),
        fmt(pct(0.99)),
        fmt(pct(0.999)),
        fmt(lat.last().copied())
    );
}
