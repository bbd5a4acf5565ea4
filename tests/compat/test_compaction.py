"""Log compaction (cleanup.policy=compact): the log cleaner keeps the
latest record of each key at its original offset, also across kill -9
restarts, and removes the records of aborted transactions (a
read_uncommitted consumer no longer sees them, a read_committed one sees
each key's latest committed value); a record without a key is refused
with INVALID_RECORD (87) naming the record (Produce v8 record errors), in
compressed batches too, as Kafka's LogValidator does. Checked with
librdkafka (confluent-kafka) and on the wire, against klamm and Apache
Kafka alike."""

from __future__ import annotations

import time

import pytest

import compat
import kafkawire as kw

INVALID_RECORD = 87
KEYS = 200
RECORDS = 20_000
TOMBSTONED = 20
# Kafka's cleaner sleeps log.cleaner.backoff.ms (15 s by default) between
# looks; a second keeps the test short on both brokers.
BROKER_PROPS = {"log.cleaner.backoff.ms": 1000}
COMPACTED = {
    "cleanup.policy": "compact",
    "segment.ms": 100,
    "segment.bytes": 1048576,
    "min.cleanable.dirty.ratio": 0.01,
    "delete.retention.ms": 100,
}


def read_all(bootstrap: str, topic: str, timeout: float = 30,
             isolation: str = "read_committed") -> list[tuple[int, bytes | None, bytes | None]]:
    """Every record of partition 0 from the beginning to the high
    watermark: (offset, key, value)."""
    from confluent_kafka import Consumer, TopicPartition

    c = Consumer({"bootstrap.servers": bootstrap, "group.id": compat.unique("g"),
                  "enable.auto.commit": False, "enable.partition.eof": True,
                  "isolation.level": isolation})
    try:
        _, high = c.get_watermark_offsets(TopicPartition(topic, 0), timeout=10)
        c.assign([TopicPartition(topic, 0, 0)])
        out = []
        deadline = time.time() + timeout
        while time.time() < deadline:
            m = c.poll(1.0)
            if m is None:
                continue
            if m.error():
                if m.error().code() == -191:  # _PARTITION_EOF
                    if not out or out[-1][0] >= high - 1:
                        break
                    continue
                raise AssertionError(m.error())
            out.append((m.offset(), m.key(), m.value()))
            if m.offset() >= high - 1:
                break
        return out
    finally:
        c.close()


def produce_keyed(bootstrap: str, topic: str, compression: str = "none") -> dict[bytes, bytes | None]:
    """RECORDS records over KEYS keys (value-<offset>), then tombstones for
    TOMBSTONED keys, then, past segment.ms, one record that rolls the last
    segment so that everything before it is cleanable. Returns the latest
    value of each key."""
    from confluent_kafka import Producer

    p = Producer({"bootstrap.servers": bootstrap, "linger.ms": 5, "compression.type": compression})
    expected: dict[bytes, bytes | None] = {}
    for i in range(RECORDS):
        k = f"key-{i % KEYS}".encode()
        v = f"value-{i}".encode()
        p.produce(topic, key=k, value=v, partition=0)
        expected[k] = v
        if i % 2000 == 1999:
            p.flush(30)
            time.sleep(0.15)  # let segment.ms roll a few segments
    for i in range(TOMBSTONED):
        k = f"key-{i}".encode()
        p.produce(topic, key=k, value=None, partition=0)
        expected[k] = None
    assert p.flush(30) == 0
    time.sleep(0.5)
    p.produce(topic, key=b"trigger", value=b"roll", partition=0)
    expected[b"trigger"] = b"roll"
    assert p.flush(30) == 0
    return expected


def check_latest(recs, expected: dict[bytes, bytes | None]):
    """Offsets increase and every key's latest value is the last one
    produced (a deleted key may be gone), whatever the cleaner did so far."""
    offsets = [o for o, _, _ in recs]
    assert offsets == sorted(set(offsets)), "offsets increase, none twice"
    latest: dict[bytes, bytes | None] = {}
    for _, k, v in recs:
        latest[k] = v
    for k, v in expected.items():
        if v is None:
            assert latest.get(k) is None, k
        else:
            assert latest.get(k) == v, k
    # Offsets were kept: each value names the record's original position.
    for o, k, v in recs:
        if v is not None and k != b"trigger":
            assert v == f"value-{o}".encode(), (o, k, v)


def wait_compacted(bootstrap: str, topic: str, expected, timeout: float = 60):
    deadline = time.time() + timeout
    while True:
        recs = read_all(bootstrap, topic)
        check_latest(recs, expected)
        if len(recs) <= KEYS + 1 + 100:
            return recs
        assert time.time() < deadline, f"not compacted within {timeout} s: {len(recs)} records remain"
        time.sleep(2)


def test_cleaner_keeps_the_latest_value_of_each_key(broker_factory):
    b = broker_factory(BROKER_PROPS)
    topic = compat.unique("compacted")
    compat.create_topic(b.bootstrap, topic, 1, configs=COMPACTED)
    expected = produce_keyed(b.bootstrap, topic)
    recs = wait_compacted(b.bootstrap, topic, expected)
    assert recs[-1][0] == RECORDS + TOMBSTONED


@pytest.mark.parametrize("codec", ["gzip", "lz4", "snappy", "zstd"])
def test_compressed_batches_are_compacted(broker_factory, codec):
    """librdkafka compresses every batch: the cleaner decompresses,
    filters and compresses again, so a compressed compacted topic shrinks
    to its latest values as an uncompressed one does."""
    b = broker_factory(BROKER_PROPS)
    topic = compat.unique(f"compacted-{codec}")
    compat.create_topic(b.bootstrap, topic, 1, configs=COMPACTED)
    expected = produce_keyed(b.bootstrap, topic, codec)
    recs = wait_compacted(b.bootstrap, topic, expected)
    assert recs[-1][0] == RECORDS + TOMBSTONED


def test_kill_during_cleaning_loses_nothing(broker_factory):
    """kill -9 while the cleaner may be at work, three times: after each
    restart the log is whole (old or new segments, never a mix), and it
    compacts in the end."""
    b = broker_factory(BROKER_PROPS)
    topic = compat.unique("compacted-kill")
    compat.create_topic(b.bootstrap, topic, 1, configs=COMPACTED)
    expected = produce_keyed(b.bootstrap, topic)
    for delay_s in (0.2, 0.7, 1.3):
        time.sleep(delay_s)
        b.restart(graceful=False)
        check_latest(read_all(b.bootstrap, topic), expected)
    wait_compacted(b.bootstrap, topic, expected)


def test_cleaner_removes_aborted_transactions(broker_factory):
    """A transactional producer commits and aborts transactions over the
    same keys, across several segments: once the cleaner has run, a
    read_uncommitted consumer sees no aborted record, and both isolation
    levels see each key's latest committed value at its offset."""
    from confluent_kafka import Producer

    b = broker_factory(BROKER_PROPS)
    topic = compat.unique("compacted-txn")
    compat.create_topic(b.bootstrap, topic, 1, configs=COMPACTED)
    p = Producer({"bootstrap.servers": b.bootstrap, "transactional.id": compat.unique("txn"),
                  "linger.ms": 5})
    p.init_transactions(60)
    keys = 10
    committed: dict[bytes, bytes] = {}
    for t in range(12):
        p.begin_transaction()
        for j in range(3 * keys):
            p.produce(topic, key=b"k%d" % (j % keys), value=b"t%d-%d" % (t, j), partition=0)
        p.flush(30)
        if t % 3 == 1:
            p.abort_transaction(30)
        else:
            p.commit_transaction(30)
            for j in range(3 * keys):
                committed[b"k%d" % (j % keys)] = b"t%d-%d" % (t, j)
        time.sleep(0.15)  # segment.ms rolls a segment now and then
    time.sleep(0.5)
    plain = Producer({"bootstrap.servers": b.bootstrap})
    plain.produce(topic, key=b"trigger", value=b"roll", partition=0)
    assert plain.flush(30) == 0
    committed[b"trigger"] = b"roll"

    def aborted(v: bytes | None) -> bool:
        return v is not None and v.startswith(b"t") and int(v[1:].split(b"-")[0]) % 3 == 1

    deadline = time.time() + 60
    while True:
        recs = read_all(b.bootstrap, topic, isolation="read_uncommitted")
        left = [r for r in recs if aborted(r[2])]
        if not left and len(recs) <= keys + 1:
            break
        assert time.time() < deadline, f"not cleaned within 60 s: {len(left)} aborted of {len(recs)} records left"
        time.sleep(2)
    offsets = [o for o, _, _ in recs]
    assert offsets == sorted(set(offsets))
    assert {k: v for _, k, v in recs} == committed
    rc = read_all(b.bootstrap, topic, isolation="read_committed")
    assert [(k, v) for _, k, v in rc] == [(k, v) for _, k, v in recs]
    assert {k: v for _, k, v in rc} == committed


def test_keyless_records_are_refused(bootstrap):
    from confluent_kafka import KafkaError, Producer

    topic = compat.unique("compacted-keyless")
    compat.create_topic(bootstrap, topic, 1, configs={"cleanup.policy": "compact"})
    host, port = bootstrap.rsplit(":", 1)
    with kw.Connection(host, int(port), timeout=15) as c:
        blob = kw.record_batch([(b"k", b"v"), (None, b"no key")], base_timestamp_ms=int(time.time() * 1000))
        r = c.produce(topic, 0, blob, version=8)
        assert r["error_code"] == INVALID_RECORD, r
        assert r["base_offset"] == -1, r
        want = f"Compacted topic cannot accept message without key in topic partition {topic}-0"
        assert r["error_message"] == (
            "One or more records have been rejected due to 1 record errors in total, and only showing the "
            f"first three errors at most: [RecordError(batchIndex=1, message='{want}')]"), r
        assert r["record_errors"] == [(1, want)], r
        # The whole batch was refused: nothing was written.
        r = c.produce(topic, 0, kw.record_batch([(b"k", b"v")], base_timestamp_ms=int(time.time() * 1000)),
                      version=8)
        assert (r["error_code"], r["base_offset"]) == (0, 0), r

    results = {}

    def report(err, msg):
        results[msg.value()] = err

    p = Producer({"bootstrap.servers": bootstrap, "linger.ms": 0, "retries": 0})
    p.produce(topic, value=b"keyless", partition=0, on_delivery=report)
    p.flush(30)
    p.produce(topic, key=b"k", value=b"keyed", partition=0, on_delivery=report)
    assert p.flush(30) == 0
    assert results[b"keyless"] is not None and results[b"keyless"].code() == KafkaError.INVALID_RECORD, results
    assert results[b"keyed"] is None, results


@pytest.mark.parametrize("codec", ["gzip", "lz4", "zstd"])
def test_keyless_records_in_compressed_batches_are_refused(bootstrap, codec):
    """A compressed batch is looked into too: Kafka's LogValidator checks
    every record's key whatever the codec, and names the record."""
    from confluent_kafka import KafkaError, Producer

    topic = compat.unique(f"compacted-keyless-{codec}")
    compat.create_topic(bootstrap, topic, 1, configs={"cleanup.policy": "compact"})
    if codec == "gzip":
        host, port = bootstrap.rsplit(":", 1)
        with kw.Connection(host, int(port), timeout=15) as c:
            blob = kw.record_batch([(b"k", b"v"), (b"k2", b"v"), (None, b"no key")],
                                   base_timestamp_ms=int(time.time() * 1000), gzip=True)
            r = c.produce(topic, 0, blob, version=8)
            assert r["error_code"] == INVALID_RECORD, r
            want = f"Compacted topic cannot accept message without key in topic partition {topic}-0"
            assert r["record_errors"] == [(2, want)], r
            r = c.produce(topic, 0, kw.record_batch([(b"k", b"v")], base_timestamp_ms=int(time.time() * 1000),
                                                    gzip=True), version=8)
            assert (r["error_code"], r["base_offset"]) == (0, 0), r

    results = {}

    def report(err, msg):
        results[msg.value()] = err

    p = Producer({"bootstrap.servers": bootstrap, "linger.ms": 0, "retries": 0, "compression.type": codec})
    p.produce(topic, value=b"keyless " * 20, partition=0, on_delivery=report)
    p.flush(30)
    p.produce(topic, key=b"k", value=b"keyed " * 20, partition=0, on_delivery=report)
    assert p.flush(30) == 0
    keyless = results[b"keyless " * 20]
    assert keyless is not None and keyless.code() == KafkaError.INVALID_RECORD, results
    assert results[b"keyed " * 20] is None, results
