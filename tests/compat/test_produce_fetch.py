"""Produce and Fetch with real clients: acks=0 / 1 / all through kcat and
confluent-kafka (every record stored exactly once, in order per
partition); a Fetch long poll woken by an append (confluent-kafka);
KIP-74 (a record larger than the consumer's fetch limits is still
returned whole, kafka-python); OffsetForLeaderEpoch sent by the stock
console consumer when it resumes a group from a commit with a leader epoch,
and by librdkafka after a seek with a leader epoch (position validation,
KIP-320)."""

from __future__ import annotations

import logging
import re
import shutil
import time
import urllib.request

import pytest
from confluent_kafka import Consumer, KafkaError, KafkaException, Producer, TopicPartition as CTP

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


# ---------------------------------------------------------------------------
# OffsetForLeaderEpoch: consumers validate a position that carries a leader
# epoch (a committed offset or a seek) against the broker's epoch end offset.

# The stock tools' log config with the Java client's NetworkClient at TRACE:
# it logs every request it sends and every response it receives, bodies
# included.
NETWORK_TRACE_LOG4J = """\
Configuration:
  Appenders:
    Console:
      name: STDERR
      target: SYSTEM_ERR
      PatternLayout:
        pattern: "[%d] %p %m (%c)%n"
  Loggers:
    Logger:
      - name: org.apache.kafka.clients.NetworkClient
        level: TRACE
        additivity: false
        AppenderRef:
          - ref: STDERR
    Root:
      level: WARN
      AppenderRef:
        - ref: STDERR
"""


@pytest.fixture
def epoch_broker(request, broker_factory):
    """(broker, requests) where requests(api) reads klamm's
    klamm_requests_total for that API from GET /metrics of a fresh broker
    with http.listener; against Kafka the session broker, and requests is
    None (Kafka has no such endpoint)."""
    if compat.BROKER_KIND != "klamm":
        return request.getfixturevalue("broker"), None
    port = compat.free_port()
    b = broker_factory({"auto.create.topics.enable": "false", "http.listener": f"http://127.0.0.1:{port}"})

    def requests(api: str) -> int:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as r:
            text = r.read().decode()
        m = re.search(rf'^klamm_requests_total\{{api="{api}"\}} (\d+)$', text, re.M)
        return int(m.group(1)) if m else 0

    return b, requests


def produce_lines(bootstrap, topic, n):
    kcat("-P", "-b", bootstrap, "-t", topic, "-p", "0", "-X", "acks=all",
         input="".join(f"r{i}\n" for i in range(n)))


@needs_kcat
def test_offset_for_leader_epoch_console_consumer_resumes_group(epoch_broker, tmp_path):
    """A confluent-kafka group member reads 6 of 10 records and commits
    after the 6th: the commit carries the records' leader epoch (0, read
    back by committed()). kafka-console-consumer then resumes the group
    with auto.offset.reset=none: the Java consumer validates the committed
    position with OffsetForLeaderEpoch v4 (currentLeaderEpoch 0,
    leaderEpoch 0), gets errorCode 0, leaderEpoch 0, endOffset 10 (its
    NetworkClient trace log shows request and response), and prints
    offsets 6..9, no error. On klamm the request is also counted in
    klamm_requests_total{api="OffsetForLeaderEpoch"}."""
    b, requests = epoch_broker
    topic = compat.unique("ofle-resume")
    group = compat.unique("ofle-g")
    compat.create_topic(b.bootstrap, topic, 1)
    produce_lines(b.bootstrap, topic, 10)

    c = Consumer({"bootstrap.servers": b.bootstrap, "group.id": group, "auto.offset.reset": "earliest",
                  "enable.auto.commit": False, "session.timeout.ms": 10000})
    try:
        c.subscribe([topic])
        seen = compat.poll_messages(c, 6)
        assert [(m.offset(), m.leader_epoch()) for m in seen] == [(i, 0) for i in range(6)]
        c.commit(message=seen[-1], asynchronous=False)
        [committed] = c.committed([CTP(topic, 0)], timeout=10)
        assert (committed.offset, committed.leader_epoch) == (6, 0)
    finally:
        c.close()
    if requests:
        assert requests("OffsetForLeaderEpoch") == 0

    log4j = tmp_path / "log4j2-network-trace.yaml"
    log4j.write_text(NETWORK_TRACE_LOG4J)
    cp = compat.run([compat.KAFKA_RUN_CLASS, compat.CONSOLE_CONSUMER, "--bootstrap-server", b.bootstrap,
                     "--topic", topic, "--group", group, "--max-messages", "4", "--timeout-ms", "15000",
                     "--property", "print.offset=true", "--consumer-property", "auto.offset.reset=none"],
                    env={"KAFKA_LOG4J_CONFIG": str(log4j)}, timeout=90)
    assert cp.stdout.splitlines() == [f"Offset:{i}\tr{i}" for i in range(6, 10)], cp.stdout
    sent = [line for line in cp.stderr.splitlines() if "Sending OFFSET_FOR_LEADER_EPOCH request" in line]
    received = [line for line in cp.stderr.splitlines() if "Received OFFSET_FOR_LEADER_EPOCH response" in line]
    assert len(sent) == len(received) == 1, cp.stderr[-3000:]
    assert "apiVersion=4," in sent[0], sent[0]
    assert (f"OffsetForLeaderTopic(topic='{topic}', partitions=[OffsetForLeaderPartition(partition=0, "
            "currentLeaderEpoch=0, leaderEpoch=0)])") in sent[0], sent[0]
    assert (f"OffsetForLeaderEpochResponseData(throttleTimeMs=0, topics=[OffsetForLeaderTopicResult("
            f"topic='{topic}', partitions=[EpochEndOffset(errorCode=0, partition=0, leaderEpoch=0, "
            "endOffset=10)])])") in received[0], received[0]
    if requests:
        assert requests("OffsetForLeaderEpoch") == 1


@needs_kcat
def test_offset_for_leader_epoch_after_seek_librdkafka(epoch_broker):
    """confluent-kafka (librdkafka) validates a seek to an offset with a
    leader epoch with OffsetForLeaderEpoch v2 (its protocol debug log shows
    each request and response; one fresh consumer per seek):
    seek(7, epoch 0) on a 10-record partition
    validates (broker end offset 10 for epoch 0) and consumption continues
    at 7, 8, 9; seek(12, epoch 0) is past that end offset: "Partition log
    truncation detected ... broker end offset is 10 (offset leader epoch
    0)"; seek(7, epoch 3), a future epoch, gets end offset -1 and epoch -1
    ("No epoch found"). auto.offset.reset=error surfaces both as errors."""
    b, requests = epoch_broker
    topic = compat.unique("ofle-seek")
    compat.create_topic(b.bootstrap, topic, 1)
    produce_lines(b.bootstrap, topic, 10)
    log = LogLines()

    def seek_and_poll(offset, epoch, n=None, timeout=15):
        """A fresh consumer reads record 0 (so it is fetching), seeks to
        (offset, epoch) and returns the next `n` records, or else the first
        error."""
        c = Consumer({"bootstrap.servers": b.bootstrap, "group.id": compat.unique("ofle-seek-g"),
                      "enable.auto.commit": False, "auto.offset.reset": "error", "fetch.wait.max.ms": 100,
                      "debug": "protocol,consumer,fetch", "logger": log.logger()})
        out = []
        try:
            c.assign([CTP(topic, 0, 0)])
            deadline = time.monotonic() + timeout
            sought = False
            while time.monotonic() < deadline:
                m = c.poll(0.1)
                if m is None:
                    continue
                if m.error():
                    if sought and n is None:
                        return m.error()
                    raise KafkaException(m.error())
                if not sought:
                    assert m.offset() == 0
                    c.seek(CTP(topic, 0, offset, leader_epoch=epoch))
                    sought = True
                    continue
                out.append((m.offset(), m.value()))
                if n is not None and len(out) >= n:
                    return out
        finally:
            c.close()
        raise AssertionError(f"timed out: got {out}")

    assert seek_and_poll(7, 0, 3) == [(i, f"r{i}".encode()) for i in range(7, 10)]
    assert any("offset and epoch validation succeeded: broker end offset 10 (offset leader epoch 0)" in line
               for line in log.lines), log.lines[-20:]

    err = seek_and_poll(12, 0)
    assert err.code() == KafkaError._AUTO_OFFSET_RESET, err
    assert ("Partition log truncation detected at offset 12 (leader epoch 0): broker end offset is 10 "
            "(offset leader epoch 0)") in err.str(), err

    err = seek_and_poll(7, 3)
    assert err.code() == KafkaError._AUTO_OFFSET_RESET, err
    assert ("No epoch found less or equal to offset 7 (leader epoch 3): broker end offset is -1 "
            "(offset leader epoch -1)") in err.str(), err

    sent = [line for line in log.lines if "Sent OffsetForLeaderEpochRequest" in line]
    received = [line for line in log.lines if "Received OffsetForLeaderEpochResponse" in line]
    assert len(sent) == len(received) == 3, log.lines[-40:]
    assert all("(v2," in line for line in sent), sent
    if requests:
        assert requests("OffsetForLeaderEpoch") == 3


# ---------------------------------------------------------------------------
# isolation_level: without transactions the last stable offset is the high
# watermark, so read_committed consumers see every record. (librdkafka's
# default is read_committed, so every confluent-kafka and kcat consumer in
# this suite asks for it; here the Java and kafka-python consumers do.)

@pytest.mark.parametrize("level", ["read_committed", "read_uncommitted"])
def test_isolation_levels_java_and_kafka_python(bootstrap, level):
    from kafka import KafkaConsumer, TopicPartition as KTP
    topic = compat.unique(f"iso-{level.replace('_', '-')}")
    compat.create_topic(bootstrap, topic, 1)
    p = Producer({"bootstrap.servers": bootstrap, "acks": "all"})
    for i in range(5):
        p.produce(topic, value=b"r%d" % i, partition=0)
    assert p.flush(30) == 0
    cp = compat.run([compat.KAFKA_RUN_CLASS, compat.CONSOLE_CONSUMER, "--bootstrap-server", bootstrap,
                     "--topic", topic, "--from-beginning", "--max-messages", "5", "--timeout-ms", "15000",
                     "--isolation-level", level], timeout=90)
    assert cp.stdout.split() == [f"r{i}" for i in range(5)], cp.stderr[-2000:]
    c = KafkaConsumer(bootstrap_servers=bootstrap, isolation_level=level, auto_offset_reset="earliest",
                      enable_auto_commit=False, consumer_timeout_ms=10000)
    try:
        tp = KTP(topic, 0)
        c.assign([tp])
        assert c.end_offsets([tp]) == {tp: 5}, "ListOffsets latest at this isolation level"
        assert [m.value for m in c] == [b"r%d" % i for i in range(5)]
    finally:
        c.close()
