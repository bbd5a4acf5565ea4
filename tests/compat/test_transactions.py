"""Transactions (issue 10, transaction version 1) with real clients: a
librdkafka (confluent-kafka) transactional producer commits one
transaction and aborts another; a read_committed consumer sees only the
committed records, a read_uncommitted one sees all of them;
consume-transform-produce with send_offsets_to_transaction makes the
group's offset visible only once the transaction commits; a second
producer with the same transactional.id fences the first; the Java
producer runs transactions through ProducerPerformance; committed and
open transactions survive a kill -9 and the next producer aborts the open
one. Every assertion
holds against Apache Kafka 4.1.2 (KLAMM_COMPAT_BROKER=kafka)."""

from __future__ import annotations

import pytest
from confluent_kafka import Consumer, KafkaException, Producer, TopicPartition

import compat

PRODUCER_PERFORMANCE = "org.apache.kafka.tools.ProducerPerformance"


def txn_producer(bootstrap: str, txn_id: str, **extra) -> Producer:
    conf = {"bootstrap.servers": bootstrap, "transactional.id": txn_id, "transaction.timeout.ms": 60000}
    conf.update(extra)
    p = Producer(conf)
    p.init_transactions(60)
    return p


def read(bootstrap: str, topic: str, level: str, expected: int, partitions: int = 1, timeout: float = 20) -> list:
    c = Consumer({"bootstrap.servers": bootstrap, "group.id": compat.unique("txn-read"),
                  "auto.offset.reset": "earliest", "enable.auto.commit": False,
                  "isolation.level": level, "enable.partition.eof": False})
    try:
        c.assign([TopicPartition(topic, p, 0) for p in range(partitions)])
        got = compat.poll_messages(c, expected, timeout)
        # Nothing more arrives.
        extra = compat.poll_messages(c, 1, 2)
        return sorted(m.value() for m in got + extra)
    finally:
        c.close()


def test_commit_and_abort_with_librdkafka(bootstrap):
    topic = compat.unique("txn")
    compat.create_topic(bootstrap, topic, 2)
    p = txn_producer(bootstrap, compat.unique("txn-id"))
    p.begin_transaction()
    for i in range(5):
        p.produce(topic, value=b"c%d" % i, partition=i % 2)
    p.commit_transaction(30)
    p.begin_transaction()
    for i in range(3):
        p.produce(topic, value=b"a%d" % i, partition=i % 2)
    p.flush(30)
    p.abort_transaction(30)
    p.begin_transaction()
    p.produce(topic, value=b"c5", partition=0)
    p.commit_transaction(30)

    committed = sorted([b"c%d" % i for i in range(6)])
    assert read(bootstrap, topic, "read_committed", 6, partitions=2) == committed
    everything = sorted(committed + [b"a%d" % i for i in range(3)])
    assert read(bootstrap, topic, "read_uncommitted", 9, partitions=2) == everything


def test_open_transaction_holds_back_read_committed(bootstrap):
    from kafka import KafkaConsumer, TopicPartition as KTP
    topic = compat.unique("txn-open")
    compat.create_topic(bootstrap, topic, 1)
    plain = Producer({"bootstrap.servers": bootstrap})
    plain.produce(topic, value=b"before", partition=0)
    assert plain.flush(30) == 0
    p = txn_producer(bootstrap, compat.unique("txn-id"))
    p.begin_transaction()
    p.produce(topic, value=b"open", partition=0)
    p.flush(30)
    tp = KTP(topic, 0)
    for level, end in (("read_committed", 1), ("read_uncommitted", 2)):
        c = KafkaConsumer(bootstrap_servers=bootstrap, isolation_level=level, enable_auto_commit=False)
        try:
            assert c.end_offsets([tp]) == {tp: end}, level
        finally:
            c.close()
    assert read(bootstrap, topic, "read_committed", 1) == [b"before"]
    p.commit_transaction(30)
    assert read(bootstrap, topic, "read_committed", 2) == [b"before", b"open"]


def test_a_new_producer_fences_the_old_and_aborts_its_transaction(bootstrap):
    topic = compat.unique("txn-fence")
    compat.create_topic(bootstrap, topic, 1)
    txn_id = compat.unique("txn-id")
    old = txn_producer(bootstrap, txn_id)
    old.begin_transaction()
    old.produce(topic, value=b"zombie", partition=0)
    old.flush(30)
    new = txn_producer(bootstrap, txn_id)
    new.begin_transaction()
    new.produce(topic, value=b"fresh", partition=0)
    new.commit_transaction(30)
    with pytest.raises(KafkaException) as e:
        old.commit_transaction(30)
    assert e.value.args[0].fatal() or e.value.args[0].txn_requires_abort(), e.value
    assert read(bootstrap, topic, "read_committed", 1) == [b"fresh"]


def committed_offset(bootstrap: str, group: str, topic: str) -> int:
    # read_uncommitted: OffsetFetch without require_stable (with it, an
    # offset pending in an open transaction is UNSTABLE_OFFSET_COMMIT and
    # librdkafka retries until the transaction ends).
    c = Consumer({"bootstrap.servers": bootstrap, "group.id": group, "enable.auto.commit": False,
                  "isolation.level": "read_uncommitted"})
    try:
        return c.committed([TopicPartition(topic, 0)], timeout=15)[0].offset
    finally:
        c.close()


def test_consume_transform_produce_commits_offsets_with_the_transaction(bootstrap):
    source, sink = compat.unique("txn-src"), compat.unique("txn-sink")
    compat.create_topic(bootstrap, source, 1)
    compat.create_topic(bootstrap, sink, 1)
    plain = Producer({"bootstrap.servers": bootstrap})
    for i in range(6):
        plain.produce(source, value=b"m%d" % i, partition=0)
    assert plain.flush(30) == 0
    group = compat.unique("txn-group")
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": group, "auto.offset.reset": "earliest",
                         "enable.auto.commit": False, "isolation.level": "read_committed",
                         "session.timeout.ms": 10000})
    p = txn_producer(bootstrap, compat.unique("txn-id"))
    try:
        consumer.subscribe([source])
        got = compat.poll_messages(consumer, 3, 30)
        assert [m.value() for m in got] == [b"m0", b"m1", b"m2"]
        # An aborted transaction commits no offset.
        p.begin_transaction()
        for m in got:
            p.produce(sink, value=m.value().upper(), partition=0)
        p.send_offsets_to_transaction([TopicPartition(source, 0, got[-1].offset() + 1)],
                                      consumer.consumer_group_metadata(), 30)
        # Delivered first: librdkafka's abort purges records not yet sent,
        # and the aborted records must be in the log for read_uncommitted.
        p.flush(30)
        p.abort_transaction(30)
        assert committed_offset(bootstrap, group, source) < 0
        # A committed one does, and only once it commits.
        p.begin_transaction()
        for m in got:
            p.produce(sink, value=m.value().upper(), partition=0)
        p.send_offsets_to_transaction([TopicPartition(source, 0, got[-1].offset() + 1)],
                                      consumer.consumer_group_metadata(), 30)
        p.flush(30)
        assert committed_offset(bootstrap, group, source) < 0, "visible before the commit"
        p.commit_transaction(30)
        assert committed_offset(bootstrap, group, source) == 3
    finally:
        consumer.close()
    assert read(bootstrap, sink, "read_committed", 3) == [b"M0", b"M1", b"M2"]
    assert read(bootstrap, sink, "read_uncommitted", 6) == sorted([b"M0", b"M1", b"M2"] * 2)


def test_java_producer_transactions_with_producer_performance(bootstrap):
    topic = compat.unique("txn-java")
    compat.create_topic(bootstrap, topic, 1)
    cp = compat.kafka_tool(PRODUCER_PERFORMANCE, "--topic", topic, "--num-records", "200",
                           "--record-size", "50", "--throughput", "-1",
                           "--transactional-id", compat.unique("java-txn"), "--transaction-duration-ms", "200",
                           "--producer-props", f"bootstrap.servers={bootstrap}", "acks=all",
                           timeout=120)
    assert "200 records sent" in cp.stdout, cp.stdout[-2000:] + cp.stderr[-2000:]
    assert len(read(bootstrap, topic, "read_committed", 200, timeout=30)) == 200


def test_transactions_survive_a_kill_and_the_next_producer_aborts_the_open_one(broker_factory):
    b = broker_factory()
    topic = compat.unique("txn-crash")
    compat.create_topic(b.bootstrap, topic, 1)
    txn_id = compat.unique("txn-id")
    old = txn_producer(b.bootstrap, txn_id)
    old.begin_transaction()
    old.produce(topic, value=b"c0", partition=0)
    old.commit_transaction(30)
    old.begin_transaction()
    old.produce(topic, value=b"open", partition=0)
    old.flush(30)
    b.restart(graceful=False)
    # The open transaction still holds back read_committed readers.
    assert read(b.bootstrap, topic, "read_committed", 1, timeout=30) == [b"c0"]
    new = txn_producer(b.bootstrap, txn_id)
    new.begin_transaction()
    new.produce(topic, value=b"c1", partition=0)
    new.commit_transaction(30)
    assert read(b.bootstrap, topic, "read_committed", 2) == [b"c0", b"c1"]
    assert read(b.bootstrap, topic, "read_uncommitted", 3) == [b"c0", b"c1", b"open"]


@pytest.mark.skipif(compat.BROKER_KIND != "klamm", reason="klamm's /metrics (Kafka reports through JMX)")
def test_metrics_count_transaction_outcomes(broker_factory):
    import re
    import urllib.request
    port = compat.free_port()
    b = broker_factory({"http.listener": f"http://127.0.0.1:{port}"})
    topic = compat.unique("txn-metrics")
    compat.create_topic(b.bootstrap, topic, 2)
    p = txn_producer(b.bootstrap, compat.unique("txn-metrics-id"))
    for commit in (True, True, False):
        p.begin_transaction()
        p.produce(topic, value=b"x", partition=0)
        p.produce(topic, value=b"y", partition=1)
        p.flush(30)
        p.commit_transaction(30) if commit else p.abort_transaction(30)
    txn_producer(b.bootstrap, compat.unique("txn-metrics-other")).begin_transaction()
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as r:
        text = r.read().decode()

    def value(series: str) -> float:
        m = re.search(rf"^{re.escape(series)} (\S+)$", text, re.M)
        assert m, f"{series} missing from /metrics"
        return float(m.group(1))

    assert value('klamm_transactions_completed_total{result="commit"}') == 2
    assert value('klamm_transactions_completed_total{result="abort"}') == 1
    assert value("klamm_transaction_markers_total") == 6
    assert value("klamm_transaction_completion_seconds_count") == 3
    assert value('klamm_transactional_ids{state="CompleteAbort"}') == 1
    assert value('klamm_transactional_ids{state="Empty"}') == 1
