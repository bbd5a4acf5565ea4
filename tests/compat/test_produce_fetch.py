"""Produce and Fetch with real clients: acks=0 / 1 / all through kcat and
confluent-kafka (every record stored exactly once, in order per
partition); a Fetch long poll woken by an append (confluent-kafka);
KIP-74 (a record larger than the consumer's fetch limits is still
returned whole, kafka-python); OffsetForLeaderEpoch sent by the stock
console consumer when it resumes a group (position validation)."""

from __future__ import annotations

import logging
import shutil
import time

import pytest
from confluent_kafka import Consumer, KafkaException, Producer, TopicPartition as CTP

import compat

needs_kcat = pytest.mark.skipif(shutil.which("kcat") is None, reason="kcat not installed")


def kcat(*args, input=None, timeout=60, check=True):
    return compat.run(["kcat", *args], input=input, timeout=timeout, check=check)


def high_watermarks(bootstrap, topic, partitions) -> list[int]:
    c = Consumer({"bootstrap.servers": bootstrap, "group.id": compat.unique("hw")})
    try:
        return [c.get_watermark_offsets(CTP(topic, p), timeout=10)[1] for p in range(partitions)]
    finally:
        c.close()


def wait_for_records(bootstrap, topic, partitions, expected, timeout=30):
    """Waits until the partitions' log end offsets add up to `expected` (acks=0
    producers finish before the broker has necessarily appended)."""
    deadline = time.monotonic() + timeout
    while True:
        total = sum(high_watermarks(bootstrap, topic, partitions))
        if total >= expected or time.monotonic() > deadline:
            return total
        time.sleep(0.2)


@needs_kcat
@pytest.mark.parametrize("acks", ["0", "1", "all"])
def test_acks_kcat_and_confluent(bootstrap, acks):
    """kcat -P -X acks=<acks> and then a confluent-kafka producer with the
    same acks each send 300 keyed records (20 keys) to a 3-partition topic;
    kcat then consumes everything: each record exactly once, each key in one
    partition, and per partition the records of each producer in the order
    they were produced, at consecutive offsets from 0. With acks=1/all the
    confluent delivery reports carry exactly the offsets consumed."""
    topic = compat.unique(f"acks-{acks}")
    compat.create_topic(bootstrap, topic, 3)
    n = 300

    kcat_records = [(f"key-{i % 20}", f"kcat-{acks}-{i:04d}") for i in range(n)]
    kcat("-b", bootstrap, "-t", topic, "-P", "-K:", "-X", f"acks={acks}", "-X", "linger.ms=20",
         input="".join(f"{k}:{v}\n" for k, v in kcat_records))

    reports = []
    p = Producer({"bootstrap.servers": bootstrap, "acks": acks, "linger.ms": 20,
                  "enable.idempotence": False, "message.timeout.ms": 20000})
    ck_records = [(f"key-{i % 20}", f"ck-{acks}-{i:04d}") for i in range(n)]
    for k, v in ck_records:
        p.produce(topic, key=k.encode(), value=v.encode(),
                  on_delivery=lambda err, msg: reports.append((err, msg.value().decode(), msg.partition(),
                                                                msg.offset())))
        p.poll(0)
    assert p.flush(20) == 0
    assert len(reports) == n
    assert [r for r in reports if r[0] is not None] == []

    assert wait_for_records(bootstrap, topic, 3, 2 * n) == 2 * n
    out = kcat("-b", bootstrap, "-t", topic, "-C", "-o", "beginning", "-e", "-q", "-X", "check.crcs=true",
               "-f", "%p|%o|%k|%s\n").stdout
    got = [line.split("|") for line in out.splitlines() if line]
    assert len(got) == 2 * n
    assert sorted(v for _p, _o, _k, v in got) == sorted(v for _k, v in kcat_records + ck_records)

    key_partition = {}
    for p_, _o, k, _v in got:
        assert key_partition.setdefault(k, p_) == p_, f"key {k} in partitions {key_partition[k]} and {p_}"
    for part in {p_ for p_, *_ in got}:
        rows = [(int(o), v) for p_, o, _k, v in got if p_ == part]
        assert [o for o, _v in rows] == list(range(len(rows)))
        for prefix, records in (("kcat-", kcat_records), ("ck-", ck_records)):
            sent = [v for _k, v in records]
            mine = [v for _o, v in rows if v.startswith(prefix)]
            assert mine == sorted(mine, key=sent.index), f"partition {part}: {prefix} records out of order"

    if acks != "0":
        consumed = {v: (int(p_), int(o)) for p_, o, _k, v in got}
        assert {v: (p_, o) for _e, v, p_, o in reports} == {v: consumed[v] for _k, v in ck_records}


class LogLines(logging.Handler):
    """Collects librdkafka's debug lines (confluent-kafka `logger`)."""

    def __init__(self):
        super().__init__(level=logging.DEBUG)
        self.lines: list[str] = []

    def emit(self, record):
        self.lines.append(record.getMessage())

    def logger(self) -> logging.Logger:
        lg = logging.getLogger(compat.unique("rdkafka"))
        lg.setLevel(logging.DEBUG)
        lg.propagate = False
        lg.addHandler(self)
        return lg


def test_fetch_long_poll_woken_by_append(bootstrap):
    """A confluent-kafka consumer with fetch.wait.max.ms=10000 and
    fetch.min.bytes=1, assigned to an empty partition, sends one Fetch,
    which the broker holds (librdkafka's fetch debug log shows a single
    Fetch request in the first 1.5 s); a record produced by another client
    (kafka-python) then is delivered well before the 10 s wait would
    expire: an append wakes the waiting Fetch."""
    from kafka import KafkaProducer
    topic = compat.unique("longpoll")
    compat.create_topic(bootstrap, topic, 1)
    producer = KafkaProducer(bootstrap_servers=bootstrap, acks="all", request_timeout_ms=15000,
                             max_block_ms=15000)
    producer.partitions_for(topic)  # metadata and connection ready before the clock starts
    log = LogLines()
    c = Consumer({"bootstrap.servers": bootstrap, "group.id": compat.unique("longpoll-g"),
                  "enable.auto.commit": False, "fetch.wait.max.ms": 10000, "fetch.min.bytes": 1,
                  "enable.partition.eof": False, "debug": "fetch", "logger": log.logger()})
    try:
        c.assign([CTP(topic, 0, 0)])
        start = time.monotonic()
        while time.monotonic() - start < 1.5:
            m = c.poll(0.1)
            assert m is None, m
        fetches = [line for line in log.lines if "Fetch 1/1/1 toppar(s)" in line]
        assert len(fetches) == 1, fetches

        sent_at = time.monotonic()
        meta = producer.send(topic, value=b"wake-up", partition=0).get(timeout=15)
        assert meta.offset == 0
        got = None
        while got is None and time.monotonic() - sent_at < 15:
            m = c.poll(0.1)
            if m is not None:
                if m.error():
                    raise KafkaException(m.error())
                got = m
        waited = time.monotonic() - sent_at
        assert got is not None and (got.offset(), got.value()) == (0, b"wake-up")
        assert waited < 8, f"record delivered {waited:.1f}s after it was produced"
    finally:
        c.close()
        producer.close(timeout=10)


def test_fetch_returns_oversized_first_batch_whole(bootstrap):
    """KIP-74: on a topic with max.message.bytes=1048588, two ~300 KB records
    (separate batches, incompressible) and a small one; a kafka-python
    consumer with max_partition_fetch_bytes=1024 and fetch_max_bytes=1024
    still receives every record whole and in order, because the broker
    returns the first batch of a fetch even when it exceeds the limits."""
    import os

    from kafka import KafkaConsumer, KafkaProducer, TopicPartition
    topic = compat.unique("kip74")
    compat.create_topic(bootstrap, topic, 1, {"max.message.bytes": 1048588})
    values = [os.urandom(300_000), os.urandom(310_000), b"small"]
    p = KafkaProducer(bootstrap_servers=bootstrap, acks="all", request_timeout_ms=15000, max_block_ms=15000,
                      max_request_size=1_000_000)
    try:
        for i, v in enumerate(values):
            assert p.send(topic, key=f"k{i}".encode(), value=v, partition=0).get(timeout=20).offset == i
    finally:
        p.close(timeout=10)

    c = KafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False, max_partition_fetch_bytes=1024,
                      fetch_max_bytes=1024, request_timeout_ms=20000, consumer_timeout_ms=15000)
    got = []
    try:
        tp = TopicPartition(topic, 0)
        c.assign([tp])
        c.seek_to_beginning(tp)
        deadline = time.monotonic() + 30
        while len(got) < len(values) and time.monotonic() < deadline:
            for recs in c.poll(timeout_ms=500).values():
                got.extend(recs)
    finally:
        c.close()
    assert [(m.offset, m.key) for m in got] == [(i, f"k{i}".encode()) for i in range(len(values))]
    assert [m.value for m in got] == values
