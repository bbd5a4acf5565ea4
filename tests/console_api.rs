//! The web console's JSON API (`src/console`, `docs/console.md`) against a
//! `TestBroker` on port 0 with `http.listener` on a free port: records
//! produced and offsets committed by a real client (librdkafka through the
//! `rdkafka` crate), then read back through `/api/`; a 1,000-partition
//! topic; and the write guard (read-only by default, CSRF token, Origin).

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer};
use rdkafka::message::{Header, OwnedHeaders};
use rdkafka::producer::{FutureProducer, FutureRecord};
use rdkafka::{ClientConfig, Offset, TopicPartitionList};
use serde_json::Value;

const TIMEOUT: Duration = Duration::from_secs(30);

/// One HTTP/1.1 request; the status code and the body.
fn http(addr: SocketAddr, method: &str, path: &str, headers: &[(&str, &str)], body: &str) -> (u16, String) {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(TIMEOUT)).unwrap();
    let mut req = format!("{method} {path} HTTP/1.1\r\nHost: {addr}\r\nContent-Length: {}\r\n", body.len());
    for (k, v) in headers {
        req.push_str(&format!("{k}: {v}\r\n"));
    }
    req.push_str("\r\n");
    req.push_str(body);
    s.write_all(req.as_bytes()).unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).unwrap();
    let (head, body) = out.split_once("\r\n\r\n").unwrap();
    let status = head.split(' ').nth(1).unwrap().parse().unwrap();
    (status, body.to_string())
}

async fn get_json(addr: SocketAddr, path: &str) -> (u16, Value) {
    let path = path.to_string();
    let (status, body) = tokio::task::spawn_blocking(move || http(addr, "GET", &path, &[], "")).await.unwrap();
    (status, serde_json::from_str(&body).unwrap_or_else(|e| panic!("{e}: {body}")))
}

async fn post_json(addr: SocketAddr, path: &str, headers: &[(&str, &str)], body: &str) -> (u16, Value) {
    let (path, body) = (path.to_string(), body.to_string());
    let headers: Vec<(String, String)> = headers.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
    let (status, body) = tokio::task::spawn_blocking(move || {
        let h: Vec<(&str, &str)> = headers.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        http(addr, "POST", &path, &h, &body)
    })
    .await
    .unwrap();
    (status, serde_json::from_str(&body).unwrap_or_else(|e| panic!("{e}: {body}")))
}

fn producer(bootstrap: &str) -> FutureProducer {
    ClientConfig::new().set("bootstrap.servers", bootstrap).set("linger.ms", "5").create().expect("producer")
}

/// Commits `offset` for `group` on `topic`/`partition` with a real consumer.
async fn commit(bootstrap: &str, group: &str, topic: &str, partition: i32, offset: i64) {
    let (bootstrap, group, topic) = (bootstrap.to_string(), group.to_string(), topic.to_string());
    tokio::task::spawn_blocking(move || {
        let consumer: BaseConsumer =
            ClientConfig::new().set("bootstrap.servers", &bootstrap).set("group.id", &group).create().unwrap();
        let mut tpl = TopicPartitionList::new();
        tpl.add_partition_offset(&topic, partition, Offset::Offset(offset)).unwrap();
        consumer.commit(&tpl, CommitMode::Sync).unwrap();
    })
    .await
    .unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn api_shows_what_a_real_client_did() {
    let broker = klamm::TestBroker::builder()
        .config("http.listener", "127.0.0.1:0")
        .config("num.partitions", "2")
        .start()
        .await
        .unwrap();
    let http_addr = broker.http_addr().unwrap();
    let p = producer(broker.bootstrap_servers());
    for i in 0..10 {
        let value = if i == 3 { "<script>alert(1)</script>".to_string() } else { format!("v{i}") };
        let headers = OwnedHeaders::new().insert(Header { key: "h", value: Some("x") });
        p.send(FutureRecord::to("orders").partition(0).key(&format!("k{i}")).payload(&value).headers(headers), TIMEOUT)
            .await
            .unwrap();
    }
    p.send(FutureRecord::<str, [u8]>::to("orders").partition(1).payload(&[0xff, 0x00][..]), TIMEOUT).await.unwrap();
    // A group that has consumed 6 of partition 0's 10 records.
    commit(broker.bootstrap_servers(), "billing", "orders", 0, 6).await;

    let (status, o) = get_json(http_addr, "/api/overview").await;
    assert_eq!(status, 200);
    assert_eq!(o["broker_id"], 1);
    assert!(o["cluster_id"].as_str().is_some_and(|c| !c.is_empty()));
    assert_eq!(o["version"], env!("CARGO_PKG_VERSION"));
    assert_eq!(o["topics"], 1);
    assert_eq!(o["partitions"], 2);
    assert_eq!(o["groups"], 1);
    assert_eq!(o["write_enabled"], false);
    assert_eq!(o["produced_records_total"], 11);
    assert_eq!(o["listeners"][0]["name"], "PLAINTEXT");
    assert_eq!(o["listeners"][0]["advertised"], broker.bootstrap_servers());
    assert!(o["log_size_bytes"].as_u64().unwrap() > 0);
    assert!(o["log_dir_total_bytes"].as_u64().unwrap() > 0);

    let (_, t) = get_json(http_addr, "/api/topics").await;
    let orders = &t["topics"][0];
    assert_eq!((orders["name"].as_str(), orders["partitions"].as_i64(), orders["records"].as_i64()), (Some("orders"), Some(2), Some(11)));
    assert_eq!(orders["cleanup_policy"], "delete");

    let (_, t) = get_json(http_addr, "/api/topics/orders").await;
    assert_eq!(t["partitions"][0]["end_offset"], 10);
    assert_eq!(t["partitions"][1]["end_offset"], 1);
    assert_eq!(t["partitions"][0]["segments"], 1);
    let retention = t["configs"].as_array().unwrap().iter().find(|c| c["name"] == "retention.ms").unwrap();
    assert_eq!((retention["value"].as_str(), retention["source"].as_str()), (Some("604800000"), Some("DEFAULT_CONFIG")));

    let (_, m) = get_json(http_addr, "/api/topics/orders/messages?partition=0&offset=2&limit=3").await;
    let records = m["records"].as_array().unwrap();
    assert_eq!(records.len(), 3);
    assert_eq!(records[0]["offset"], 2);
    assert_eq!(records[1]["value"]["data"], "<script>alert(1)</script>");
    assert_eq!(records[1]["value"]["encoding"], "text");
    assert_eq!(records[1]["key"]["data"], "k3");
    assert_eq!(records[1]["headers"][0]["key"], "h");
    assert_eq!(records[1]["headers"][0]["value"]["data"], "x");
    assert_eq!(records[1]["timestamp_type"], "CreateTime");
    assert_eq!(m["next_offset"], 5);
    let (_, m) = get_json(http_addr, "/api/topics/orders/messages?partition=0&from=end&limit=2").await;
    let offsets: Vec<i64> = m["records"].as_array().unwrap().iter().map(|r| r["offset"].as_i64().unwrap()).collect();
    assert_eq!(offsets, [8, 9]);
    let (_, m) = get_json(http_addr, "/api/topics/orders/messages?partition=1").await;
    assert_eq!(m["records"][0]["value"]["encoding"], "base64");
    assert_eq!(m["records"][0]["value"]["data"], "/wA=");
    assert_eq!(m["records"][0]["key"], Value::Null);

    let (_, g) = get_json(http_addr, "/api/groups").await;
    assert_eq!(g["groups"][0]["group_id"], "billing");
    assert_eq!(g["groups"][0]["total_lag"], 4);
    let (_, g) = get_json(http_addr, "/api/groups/billing").await;
    assert_eq!(g["state"], "Empty");
    assert_eq!(g["offsets"][0]["committed_offset"], 6);
    assert_eq!(g["offsets"][0]["end_offset"], 10);
    assert_eq!(g["offsets"][0]["lag"], 4);

    for (path, status, error) in [
        ("/api/topics/nope", 404, "UNKNOWN_TOPIC_OR_PARTITION"),
        ("/api/topics/orders/messages?partition=7", 404, "UNKNOWN_TOPIC_OR_PARTITION"),
        ("/api/topics/orders/messages?limit=x", 400, "INVALID_REQUEST"),
        ("/api/groups/nope", 404, "GROUP_ID_NOT_FOUND"),
        ("/api/nothing", 404, "NOT_FOUND"),
    ] {
        let (s, e) = get_json(http_addr, path).await;
        assert_eq!((s, e["error"].as_str()), (status, Some(error)), "{path}");
    }
    // Read-only by default: every action is refused.
    let (s, e) = post_json(http_addr, "/api/topics", &[], r#"{"name":"x"}"#).await;
    assert_eq!((s, e["error"].as_str()), (403, Some("FORBIDDEN")));
    // The page and its assets, with a policy that forbids inline scripts.
    let (s, page) = tokio::task::spawn_blocking(move || http(http_addr, "GET", "/", &[], "")).await.unwrap();
    assert_eq!(s, 200);
    assert!(page.contains("/assets/console.js"));
    assert!(!page.contains("{{csrf_token}}"));
    broker.shutdown().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_thousand_partitions_answer_quickly() {
    let broker = klamm::TestBroker::builder().config("http.listener", "127.0.0.1:0").start().await.unwrap();
    let http_addr = broker.http_addr().unwrap();
    let admin: AdminClient<DefaultClientContext> =
        ClientConfig::new().set("bootstrap.servers", broker.bootstrap_servers()).create().unwrap();
    let created = admin
        // Small indexes: creating the 1,000 logs is what takes time here.
        .create_topics(
            &[NewTopic::new("wide", 1000, TopicReplication::Fixed(1)).set("segment.index.bytes", "4096")],
            &AdminOptions::new(),
        )
        .await
        .unwrap();
    assert!(created[0].is_ok(), "{created:?}");
    let started = Instant::now();
    let (status, t) = get_json(http_addr, "/api/topics/wide").await;
    let (_, list) = get_json(http_addr, "/api/topics").await;
    let (_, _) = get_json(http_addr, "/api/overview").await;
    let elapsed = started.elapsed();
    assert_eq!(status, 200);
    assert_eq!(t["partitions"].as_array().unwrap().len(), 1000);
    assert_eq!(t["partitions"][999]["partition"], 999);
    assert_eq!(list["topics"][0]["partitions"], 1000);
    // Generous: a few milliseconds on a laptop; this catches a quadratic walk.
    assert!(elapsed < Duration::from_secs(5), "{elapsed:?}");
    broker.shutdown().await;
}

/// The page's CSRF token (`<meta name="csrf-token" content="...">`).
fn csrf_token(page: &str) -> String {
    let at = page.find("name=\"csrf-token\" content=\"").unwrap() + "name=\"csrf-token\" content=\"".len();
    page[at..].split('"').next().unwrap().to_string()
}

#[tokio::test(flavor = "multi_thread")]
async fn writes_need_the_setting_and_the_token() {
    let broker = klamm::TestBroker::builder()
        .config("http.listener", "127.0.0.1:0")
        .config("console.write.enabled", "true")
        .start()
        .await
        .unwrap();
    let http_addr = broker.http_addr().unwrap();
    let (_, page) = tokio::task::spawn_blocking(move || http(http_addr, "GET", "/", &[], "")).await.unwrap();
    let token = csrf_token(&page);
    assert_eq!(token.len(), 64);
    let create = r#"{"name":"made-here","partitions":3,"configs":{"retention.ms":"1000000"}}"#;
    let (s, e) = post_json(http_addr, "/api/topics", &[], create).await;
    assert_eq!((s, e["error"].as_str()), (403, Some("FORBIDDEN")), "no token");
    let (s, _) = post_json(http_addr, "/api/topics", &[("X-CSRF-Token", "00")], create).await;
    assert_eq!(s, 403, "wrong token");
    let (s, _) = post_json(http_addr, "/api/topics", &[("X-CSRF-Token", &token), ("Origin", "http://evil.example")], create).await;
    assert_eq!(s, 403, "foreign origin");
    let ok = [("X-CSRF-Token", token.as_str())];
    let (s, t) = post_json(http_addr, "/api/topics", &ok, create).await;
    assert_eq!((s, t["partitions"].as_i64()), (200, Some(3)), "{t}");
    let (s, e) = post_json(http_addr, "/api/topics", &ok, create).await;
    assert_eq!((s, e["error"].as_str()), (409, Some("TOPIC_ALREADY_EXISTS")));
    let (s, e) = post_json(http_addr, "/api/topics", &ok, r#"{"name":"bad name"}"#).await;
    assert_eq!((s, e["error"].as_str()), (400, Some("INVALID_TOPIC_EXCEPTION")));
    let (_, t) = get_json(http_addr, "/api/topics/made-here").await;
    let retention = t["configs"].as_array().unwrap().iter().find(|c| c["name"] == "retention.ms").unwrap();
    assert_eq!((retention["value"].as_str(), retention["source"].as_str()), (Some("1000000"), Some("DYNAMIC_TOPIC_CONFIG")));

    let produce = r#"{"partition":2,"key":"k","value":"<b>bold</b>","headers":[{"key":"h","value":"v"}]}"#;
    let (s, r) = post_json(http_addr, "/api/topics/made-here/messages", &ok, produce).await;
    assert_eq!((s, r["offset"].as_i64()), (200, Some(0)), "{r}");
    let (s, r) = post_json(http_addr, "/api/topics/made-here/messages", &ok, produce).await;
    assert_eq!((s, r["offset"].as_i64()), (200, Some(1)));
    let (_, m) = get_json(http_addr, "/api/topics/made-here/messages?partition=2").await;
    assert_eq!(m["records"][1]["value"]["data"], "<b>bold</b>");
    assert_eq!(m["records"][1]["headers"][0]["value"]["data"], "v");

    // A group with committed offsets and no members can be reset.
    commit(broker.bootstrap_servers(), "resettable", "made-here", 2, 2).await;
    let (s, r) = post_json(http_addr, "/api/groups/resettable/reset-offsets", &ok, r#"{"to":"earliest"}"#).await;
    assert_eq!(s, 200, "{r}");
    let (_, g) = get_json(http_addr, "/api/groups/resettable").await;
    assert_eq!((g["offsets"][0]["committed_offset"].as_i64(), g["total_lag"].as_i64()), (Some(0), Some(2)));

    let (s, _) = post_json(http_addr, "/api/topics/made-here/delete", &ok, "").await;
    assert_eq!(s, 200);
    let (s, _) = get_json(http_addr, "/api/topics/made-here").await;
    assert_eq!(s, 404);
    broker.shutdown().await;
}
