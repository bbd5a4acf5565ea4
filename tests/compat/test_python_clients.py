"""Python clients against the broker under test: kafka-python (pure Python,
its own protocol code) and confluent-kafka (librdkafka). Keys, headers and
explicit timestamps round trip; consumer groups commit and resume;
ListOffsets by timestamp and beginning/end offsets."""

from __future__ import annotations

import time

import pytest
from confluent_kafka import Consumer, Producer, TopicPartition as CTP
from kafka import KafkaConsumer, KafkaProducer, TopicPartition

import compat



def now_ms() -> int:
    return int(time.time() * 1000)


def make_records(n: int, base_ts: int):
    return [
        {
            "key": f"key-{i % 5}".encode(),
            "value": f"value-{i}".encode() * (1 + i % 3),
            "headers": [("h-index", str(i).encode()), ("h-empty", b""), ("h-dup", b"a"), ("h-dup", b"b")],
            "ts": base_ts + i * 1000,
        }
        for i in range(n)
    ]


# ---------------------------------------------------------------------------
# kafka-python

def kp_producer(bootstrap, **kw):
    conf = dict(bootstrap_servers=bootstrap, acks="all", linger_ms=5, request_timeout_ms=15000,
                max_block_ms=15000)
    conf.update(kw)
    return KafkaProducer(**conf)


def kp_consumer(bootstrap, **kw):
    conf = dict(bootstrap_servers=bootstrap, auto_offset_reset="earliest", enable_auto_commit=False,
                consumer_timeout_ms=15000, request_timeout_ms=20000, session_timeout_ms=10000,
                heartbeat_interval_ms=1000)
    conf.update(kw)
    return KafkaConsumer(**conf)


def kp_poll_n(consumer, n, timeout=30):
    out = []
    deadline = time.monotonic() + timeout
    while len(out) < n and time.monotonic() < deadline:
        for recs in consumer.poll(timeout_ms=500, max_records=n - len(out)).values():
            out.extend(recs)
    return out


def test_kafka_python_keys_headers_timestamps(bootstrap):
    """kafka-python produces 50 records (keys, repeated/empty headers,
    explicit CreateTime timestamps) to one partition; the acks carry
    consecutive offsets and the given timestamps; a consumer gets every field
    back identical, timestamp_type 0 (CreateTime), offsets 0..49."""
    topic = compat.unique("kp-fields")
    compat.create_topic(bootstrap, topic, 1)
    records = make_records(50, now_ms() - 100_000)
    p = kp_producer(bootstrap)
    futures = [p.send(topic, key=r["key"], value=r["value"], headers=r["headers"], timestamp_ms=r["ts"], partition=0)
               for r in records]
    metas = [f.get(timeout=20) for f in futures]
    p.close(timeout=10)
    assert [m.offset for m in metas] == list(range(50))
    assert [m.timestamp for m in metas] == [r["ts"] for r in records]

    c = kp_consumer(bootstrap)
    tp = TopicPartition(topic, 0)
    c.assign([tp])
    c.seek_to_beginning(tp)
    got = kp_poll_n(c, 50)
    c.close()
    assert len(got) == 50
    for i, (m, r) in enumerate(zip(got, records)):
        assert m.offset == i
        assert m.key == r["key"]
        assert m.value == r["value"]
        assert list(m.headers) == r["headers"]
        assert m.timestamp == r["ts"]
        assert m.timestamp_type == 0


def test_kafka_python_group_commit_and_resume(bootstrap):
    """A kafka-python group member reads 30 of 60 records from a 3-partition
    topic and commits synchronously; committed() reports the positions; after
    it closes (LeaveGroup), a new member of the same group resumes exactly at
    the committed offsets: together they see each record exactly once."""
    topic = compat.unique("kp-group")
    group = compat.unique("kp-g")
    compat.create_topic(bootstrap, topic, 3)
    p = kp_producer(bootstrap)
    for i in range(60):
        p.send(topic, key=f"k{i % 6}".encode(), value=f"v{i}".encode())
    p.flush(timeout=20)
    p.close(timeout=10)

    c1 = kp_consumer(bootstrap, group_id=group, max_poll_records=10)
    c1.subscribe([topic])
    first = kp_poll_n(c1, 30)
    assert len(first) >= 30
    c1.commit()
    positions = {}
    for m in first:
        tp = TopicPartition(m.topic, m.partition)
        positions[tp] = max(positions.get(tp, 0), m.offset + 1)
    for tp, off in positions.items():
        assert c1.committed(tp) == off
    c1.close()

    c2 = kp_consumer(bootstrap, group_id=group)
    c2.subscribe([topic])
    rest = kp_poll_n(c2, 60 - len(first))
    c2.commit()
    c2.close()
    values = sorted(m.value for m in first + rest)
    assert values == sorted(f"v{i}".encode() for i in range(60))


def test_kafka_python_offsets_for_times_and_watermarks(bootstrap):
    """ListOffsets: beginning_offsets = 0 and end_offsets = 20 for a partition
    with 20 records whose timestamps are base+i*1000; offsets_for_times(base +
    5500) = offset 6 with timestamp base+6000; exactly a timestamp gives that
    record; a timestamp after the last record gives None (no such offset)."""
    topic = compat.unique("kp-times")
    compat.create_topic(bootstrap, topic, 1)
    base = now_ms() - 60_000
    p = kp_producer(bootstrap)
    for i in range(20):
        p.send(topic, value=f"v{i}".encode(), timestamp_ms=base + i * 1000, partition=0)
    p.flush(timeout=20)
    p.close(timeout=10)

    c = kp_consumer(bootstrap)
    tp = TopicPartition(topic, 0)
    assert c.beginning_offsets([tp]) == {tp: 0}
    assert c.end_offsets([tp]) == {tp: 20}
    r = c.offsets_for_times({tp: base + 5500})[tp]
    assert (r.offset, r.timestamp) == (6, base + 6000)
    r = c.offsets_for_times({tp: base + 3000})[tp]
    assert (r.offset, r.timestamp) == (3, base + 3000)
    r = c.offsets_for_times({tp: 0})[tp]
    assert (r.offset, r.timestamp) == (0, base)
    assert c.offsets_for_times({tp: base + 60_000})[tp] is None
    c.close()


def test_kafka_python_log_append_time(bootstrap):
    """On a topic with message.timestamp.type=LogAppendTime the broker
    overwrites the producer's timestamp: the ack and the consumed record carry
    the broker's append time (close to now, not the old CreateTime) and
    timestamp_type 1."""
    topic = compat.unique("kp-logappend")
    compat.create_topic(bootstrap, topic, 1, {"message.timestamp.type": "LogAppendTime"})
    old = now_ms() - 3_600_000
    before = now_ms()
    p = kp_producer(bootstrap)
    meta = p.send(topic, value=b"x", timestamp_ms=old, partition=0).get(timeout=20)
    p.close(timeout=10)
    after = now_ms()
    assert before - 5000 <= meta.timestamp <= after + 5000

    c = kp_consumer(bootstrap)
    tp = TopicPartition(topic, 0)
    c.assign([tp])
    c.seek_to_beginning(tp)
    [m] = kp_poll_n(c, 1)
    c.close()
    assert m.timestamp_type == 1
    assert m.timestamp == meta.timestamp


# ---------------------------------------------------------------------------
# confluent-kafka

def ck_producer(bootstrap, **kw):
    conf = {"bootstrap.servers": bootstrap, "acks": "all", "enable.idempotence": True, "linger.ms": 5,
            "message.timeout.ms": 20000}
    conf.update(kw)
    return Producer(conf)


def test_confluent_keys_headers_timestamps(bootstrap):
    """confluent-kafka (idempotent producer) produces 50 records with keys,
    headers and explicit timestamps to 2 partitions; delivery reports carry
    no error; a consumer (CRC checks on) gets every field back, per partition
    in order, timestamp type CreateTime."""
    from confluent_kafka import TIMESTAMP_CREATE_TIME
    topic = compat.unique("ck-fields")
    compat.create_topic(bootstrap, topic, 2)
    records = make_records(50, now_ms() - 100_000)
    errors = []
    p = ck_producer(bootstrap)
    for i, r in enumerate(records):
        p.produce(topic, key=r["key"], value=r["value"], headers=r["headers"], timestamp=r["ts"], partition=i % 2,
                  on_delivery=lambda err, msg: errors.append(err) if err else None)
    assert p.flush(20) == 0
    assert errors == []

    got = compat.consume_all(bootstrap, topic, 50, extra={"check.crcs": True})
    assert len(got) == 50
    by_value = {m.value(): m for m in got}
    for i, r in enumerate(records):
        m = by_value[r["value"]]
        assert m.partition() == i % 2
        assert m.key() == r["key"]
        assert m.headers() == r["headers"]
        assert m.timestamp() == (TIMESTAMP_CREATE_TIME, r["ts"])
    for part in (0, 1):
        offs = [m.offset() for m in got if m.partition() == part]
        assert offs == list(range(25))


def test_confluent_group_commit_resume_and_offsets(bootstrap):
    """confluent-kafka: a group member commits after 20 of 40 records
    (synchronous commit of explicit offsets); committed() returns them; a
    new member resumes there. get_watermark_offsets gives (0, 40) and
    offsets_for_times finds the first record at or after a timestamp."""
    topic = compat.unique("ck-group")
    group = compat.unique("ck-g")
    compat.create_topic(bootstrap, topic, 1)
    base = now_ms() - 60_000
    p = ck_producer(bootstrap)
    for i in range(40):
        p.produce(topic, value=f"v{i}".encode(), timestamp=base + i * 100, partition=0)
    assert p.flush(20) == 0

    conf = {"bootstrap.servers": bootstrap, "group.id": group, "auto.offset.reset": "earliest",
            "enable.auto.commit": False, "session.timeout.ms": 10000}
    c = Consumer(conf)
    c.subscribe([topic])
    seen = compat.poll_messages(c, 20)
    assert len(seen) == 20
    c.commit(offsets=[CTP(topic, 0, seen[-1].offset() + 1)], asynchronous=False)
    [committed] = c.committed([CTP(topic, 0)], timeout=10)
    assert committed.offset == 20
    assert c.get_watermark_offsets(CTP(topic, 0), timeout=10) == (0, 40)
    [found] = c.offsets_for_times([CTP(topic, 0, base + 1050)], timeout=10)
    assert found.offset == 11
    c.close()

    c2 = Consumer(conf)
    c2.subscribe([topic])
    rest = compat.poll_messages(c2, 20)
    c2.close()
    assert [m.offset() for m in rest] == list(range(20, 40))
    assert [m.value() for m in seen + rest] == [f"v{i}".encode() for i in range(40)]


def test_confluent_idempotent_producer_sequences(bootstrap):
    """An idempotent confluent-kafka producer gets a producer id from the
    broker (InitProducerId) and 2000 records sent in many small batches
    across 4 partitions are all stored exactly once."""
    topic = compat.unique("ck-idem")
    compat.create_topic(bootstrap, topic, 4)
    p = ck_producer(bootstrap, **{"linger.ms": 1, "batch.num.messages": 20, "max.in.flight": 5})
    errors = []
    for i in range(2000):
        p.produce(topic, value=f"v{i}".encode(), key=f"k{i % 13}".encode(),
                  on_delivery=lambda err, msg: errors.append(err) if err else None)
        if i % 200 == 0:
            p.poll(0)
    assert p.flush(30) == 0
    assert errors == []
    got = compat.consume_all(bootstrap, topic, 2000, timeout=60)
    values = sorted(m.value() for m in got)
    assert values == sorted(f"v{i}".encode() for i in range(2000))


def test_kafka_python_admin_describes_topics_and_cluster_with_authorized_operations(bootstrap):
    """kafka-python's describe_topics / describe_cluster ask for the
    authorized operations (Metadata v8+); without an authorizer Kafka
    reports every operation of the resource type."""
    from kafka.admin import KafkaAdminClient
    topic = compat.unique("kp-describe")
    compat.create_topic(bootstrap, topic, 2)
    a = KafkaAdminClient(bootstrap_servers=bootstrap)
    try:
        (d,) = a.describe_topics([topic])
        assert (d["error_code"], d["topic"], len(d["partitions"])) == (0, topic, 2)
        assert sorted(d["authorized_operations"]) == sorted(
            ["READ", "WRITE", "CREATE", "DELETE", "ALTER", "DESCRIBE", "DESCRIBE_CONFIGS", "ALTER_CONFIGS"])
        assert sorted(a.describe_cluster()["authorized_operations"]) == sorted(
            ["CREATE", "ALTER", "DESCRIBE", "CLUSTER_ACTION", "DESCRIBE_CONFIGS", "ALTER_CONFIGS", "IDEMPOTENT_WRITE"])
    finally:
        a.close()
