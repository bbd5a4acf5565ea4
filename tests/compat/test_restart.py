"""Restart safety of the broker under test: a graceful restart keeps
records, topics and committed offsets; SIGKILL under an acks=all load (with
log.flush.interval.messages=1) loses no acknowledged record, serves no
corrupt batch and keeps committed offsets. Each test starts its own broker."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import pytest
from confluent_kafka import Consumer, KafkaError, KafkaException, Producer, TopicPartition as CTP

import compat

HERE = Path(__file__).resolve().parent


def produce(bootstrap, topic, values, partitions):
    p = Producer({"bootstrap.servers": bootstrap, "acks": "all", "enable.idempotence": True,
                  "linger.ms": 5, "message.timeout.ms": 20000})
    errors = []
    for i, v in enumerate(values):
        p.produce(topic, value=v, key=f"k{i}".encode(), partition=i % partitions,
                  on_delivery=lambda err, msg: errors.append(err) if err else None)
    assert p.flush(30) == 0
    assert errors == []


# Errors a client retries; Kafka answers NOT_LEADER_OR_FOLLOWER (6) for a few
# hundred milliseconds after a restart, until the partition leadership from
# the metadata log is applied.
TRANSIENT = {KafkaError.NOT_LEADER_FOR_PARTITION, KafkaError.LEADER_NOT_AVAILABLE,
             KafkaError.COORDINATOR_LOAD_IN_PROGRESS, KafkaError.COORDINATOR_NOT_AVAILABLE,
             KafkaError.NOT_COORDINATOR, KafkaError._TIMED_OUT, KafkaError.REQUEST_TIMED_OUT}


def retry_transient(fn, timeout=30):
    """Calls fn() until it does not raise a transient KafkaException (as a
    client would retry), for at most `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            return fn()
        except KafkaException as e:
            err = e.args[0] if e.args else None
            if not isinstance(err, KafkaError) or err.code() not in TRANSIENT or time.monotonic() > deadline:
                raise
            time.sleep(0.2)


def read_all(bootstrap, topic, partitions, timeout=60) -> dict[tuple[int, int], bytes]:
    """Reads every partition from offset 0 up to its high watermark (CRC
    checks on; any consumer error fails). Returns {(partition, offset): value}."""
    c = Consumer({"bootstrap.servers": bootstrap, "group.id": compat.unique("read-all"),
                  "enable.auto.commit": False, "check.crcs": True, "enable.partition.eof": False})
    try:
        highs = {p: retry_transient(lambda: c.get_watermark_offsets(CTP(topic, p), timeout=10))[1]
                 for p in range(partitions)}
        c.assign([CTP(topic, p, 0) for p in range(partitions) if highs[p] > 0])
        out = {}
        deadline = time.monotonic() + timeout
        pending = {p for p in range(partitions) if highs[p] > 0}
        while pending and time.monotonic() < deadline:
            m = c.poll(0.5)
            if m is None:
                continue
            if m.error():
                raise KafkaException(m.error())
            out[(m.partition(), m.offset())] = m.value()
            if m.offset() + 1 >= highs[m.partition()]:
                pending.discard(m.partition())
        assert not pending, f"could not read up to the high watermark of partitions {pending}: {highs}"
        return out
    finally:
        c.close()


def group_consumer(bootstrap, group):
    return Consumer({"bootstrap.servers": bootstrap, "group.id": group, "auto.offset.reset": "earliest",
                     "enable.auto.commit": False, "session.timeout.ms": 10000})


def committed(bootstrap, group, topic, partitions) -> dict[int, int]:
    c = group_consumer(bootstrap, group)
    try:
        tps = retry_transient(lambda: c.committed([CTP(topic, p) for p in range(partitions)], timeout=10))
        return {tp.partition: tp.offset for tp in tps}
    finally:
        c.close()


def commit(bootstrap, group, topic, offsets: dict[int, int]):
    """Commits explicit offsets for a group (as a simple, non-subscribed
    consumer: OffsetCommit with generation -1)."""
    c = group_consumer(bootstrap, group)
    try:
        # Right after a broker start, __consumer_offsets may still be created
        # or loading: NOT_COORDINATOR / COORDINATOR_LOAD_IN_PROGRESS are retried.
        retry_transient(lambda: c.commit(offsets=[CTP(topic, p, o) for p, o in offsets.items()],
                                         asynchronous=False))
    finally:
        c.close()


def topic_partitions(bootstrap) -> dict[str, int]:
    md = compat.admin(bootstrap).list_topics(timeout=15)
    return {name: len(t.partitions) for name, t in md.topics.items() if not name.startswith("__")}


@pytest.mark.slow
def test_graceful_restart_keeps_everything(broker_factory):
    """Graceful restart (SIGTERM, wait for exit, start on the same data dir):
    all 300 acknowledged records (idempotent acks=all producer) are there at
    the same offsets, both topics are listed with their partition counts, and
    the group's committed offsets are unchanged; the group resumes exactly at
    them."""
    b = broker_factory()
    topic = compat.unique("restart-graceful")
    other = compat.unique("restart-other")
    group = compat.unique("restart-g")
    compat.create_topic(b.bootstrap, topic, 3)
    compat.create_topic(b.bootstrap, other, 2)
    values = [f"value-{i}".encode() for i in range(300)]
    produce(b.bootstrap, topic, values, 3)
    before = read_all(b.bootstrap, topic, 3)
    assert sorted(before.values()) == sorted(values)
    commit(b.bootstrap, group, topic, {0: 40, 1: 50, 2: 100})
    assert committed(b.bootstrap, group, topic, 3) == {0: 40, 1: 50, 2: 100}

    b.restart(graceful=True)

    tops = topic_partitions(b.bootstrap)
    assert tops.get(topic) == 3 and tops.get(other) == 2, tops
    compat.wait_topic(b.bootstrap, topic, 3)
    assert read_all(b.bootstrap, topic, 3) == before
    assert committed(b.bootstrap, group, topic, 3) == {0: 40, 1: 50, 2: 100}

    # The group resumes at the committed offsets: 60 + 50 + 0 records left.
    rest = compat.consume_all(b.bootstrap, topic, 110, group=group)
    assert len(rest) == 110
    assert all(m.offset() >= {0: 40, 1: 50, 2: 100}[m.partition()] for m in rest)

    # And new writes continue after the old end.
    produce(b.bootstrap, topic, [b"after-restart"], 1)
    after = read_all(b.bootstrap, topic, 3)
    assert after[(0, 100)] == b"after-restart"


def parse_acks(path: Path) -> dict[tuple[int, int], bytes]:
    acked = {}
    if not path.exists():
        return acked
    for line in path.read_text().splitlines(keepends=True):
        if not line.endswith("\n"):
            continue  # torn last line from a killed writer
        part, off, value = line.split()
        acked[(int(part), int(off))] = value.encode()
    return acked


@pytest.mark.slow
def test_sigkill_under_load_loses_no_acknowledged_record(broker_factory, tmp_path):
    """With log.flush.interval.messages=1, an idempotent acks=all producer
    writes to a 2-partition topic while the broker is SIGKILLed (3 rounds,
    each a new producer). After each restart every acknowledged record is
    present at its acknowledged offset, reading everything raises no error
    (no corrupt batch is served, CRC checks on), a group's committed offsets
    (committed before the kill) are intact, and the topic still exists."""
    b = broker_factory({"log.flush.interval.messages": "1"})
    topic = compat.unique("restart-kill")
    group = compat.unique("restart-kill-g")
    compat.create_topic(b.bootstrap, topic, 2)
    acks_file = tmp_path / "acks.txt"
    expected_commit = None
    total_acked = 0
    for rnd in range(3):
        proc = subprocess.Popen([sys.executable, str(HERE / "load_producer.py"), b.bootstrap, topic,
                                 str(acks_file), f"round{rnd}", "--max-seconds", "60"],
                                stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        try:
            # Wait until the load is really flowing, then kill the broker mid-load.
            deadline = time.monotonic() + 30
            while len(parse_acks(acks_file)) < total_acked + 300:
                assert proc.poll() is None, f"load producer exited early: {proc.stderr.read()}"
                assert time.monotonic() < deadline, "load producer made no progress"
                time.sleep(0.05)
            # Commit offsets for a group before the kill (acknowledged commit).
            expected_commit = {0: 7 + rnd, 1: 11 + rnd}
            commit(b.bootstrap, group, topic, expected_commit)
            time.sleep(0.3)
            b.stop(graceful=False)
        finally:
            proc.terminate()
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=10)
        acked = parse_acks(acks_file)
        assert len(acked) > total_acked, "no acknowledged records in this round"
        total_acked = len(acked)

        b.start()
        assert topic in topic_partitions(b.bootstrap)
        compat.wait_topic(b.bootstrap, topic, 2)
        stored = read_all(b.bootstrap, topic, 2)
        missing = {k: v for k, v in acked.items() if stored.get(k) != v}
        assert not missing, (f"round {rnd}: {len(missing)} of {len(acked)} acknowledged records missing or "
                             f"different, e.g. {sorted(missing.items())[:5]}")
        assert committed(b.bootstrap, group, topic, 2) == expected_commit
