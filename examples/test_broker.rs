//! Starts an in-process klamm broker with `klamm::TestBroker`, produces a
//! record with the `rdkafka` crate (librdkafka), reads it back, and prints
//! how long the broker took to start.
//!
//!     cargo run --example test_broker

use std::time::{Duration, Instant};

use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::producer::{FutureProducer, FutureRecord};
use rdkafka::{ClientConfig, Message, Offset, TopicPartitionList};

#[tokio::main(flavor = "multi_thread")]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let started = Instant::now();
    let broker = klamm::TestBroker::builder().config("num.partitions", "1").start().await?;
    println!("broker ready at {} in {:?}", broker.bootstrap_servers(), started.elapsed());

    let producer: FutureProducer = ClientConfig::new()
        .set("bootstrap.servers", broker.bootstrap_servers())
        .create()?;
    let delivered = producer
        .send(FutureRecord::to("greetings").key("k").payload("hello, klamm"), Duration::from_secs(10))
        .await
        .map_err(|(e, _)| e)?;
    println!("produced to partition {} at offset {}", delivered.partition, delivered.offset);

    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", broker.bootstrap_servers())
        .set("group.id", "example")
        .create()?;
    let mut assignment = TopicPartitionList::new();
    assignment.add_partition_offset("greetings", 0, Offset::Beginning)?;
    consumer.assign(&assignment)?;
    let deadline = Instant::now() + Duration::from_secs(10);
    while Instant::now() < deadline {
        if let Some(message) = consumer.poll(Duration::from_millis(100)) {
            let message = message?;
            println!("consumed: {}", String::from_utf8_lossy(message.payload().unwrap_or_default()));
            break;
        }
    }
    // Clients first: a consumer closing against a stopped broker waits for
    // its coordinator.
    drop(consumer);
    drop(producer);
    let stopping = Instant::now();
    broker.shutdown().await;
    println!("broker stopped in {:?}", stopping.elapsed());
    Ok(())
}
