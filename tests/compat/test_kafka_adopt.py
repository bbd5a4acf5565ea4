"""Switching from Apache Kafka to klamm on the same data directory: real
Kafka 4.1.2 creates topics (one with 3 partitions and retention.ms, one
deleted again), takes keyed records and a consumer group's commits, and
stops (SIGTERM, or SIGKILL in the second test); then klamm starts on its
directory with the same node id. klamm lists the same topics with the same
ids, partition counts and configs, not the deleted one; serves every record
at its offset; has the group's committed offsets (OffsetFetch through
confluent-kafka and kafka-consumer-groups --describe), and the group
resumes exactly there (the Java and librdkafka consumers validate the
committed leader epoch with OffsetForLeaderEpoch). Kafka's
__cluster_metadata-0 and __consumer_offsets-* trees are byte for byte
unchanged afterwards, its per-partition files (producer snapshots,
leader-epoch-checkpoint, partition.metadata) too, and the segments were
only appended to (klamm takes new records at the next offsets).

klamm only: it is klamm adopting what Kafka left."""

from __future__ import annotations

import hashlib
import time
from pathlib import Path

import pytest
from confluent_kafka import Consumer, KafkaException, Producer, TopicCollection, TopicPartition as CTP
from confluent_kafka.admin import ConfigResource

import compat

pytestmark = [
    pytest.mark.skipif(compat.BROKER_KIND != "klamm",
                       reason="klamm adopting Apache Kafka's data directory; nothing to compare with"),
    pytest.mark.slow,
]

ORDERS_PARTITIONS = 3
RECORDS = 90
KAFKA_INTERNAL = ("__cluster_metadata-0", "__consumer_offsets-")


def retry(fn, timeout: float = 40):
    """Retries while a coordinator or a leader is not ready yet (right after
    a broker start)."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            return fn()
        except KafkaException as e:
            transient = any(s in str(e) for s in (
                "NOT_COORDINATOR", "COORDINATOR_LOAD_IN_PROGRESS", "COORDINATOR_NOT_AVAILABLE",
                "NOT_LEADER", "LEADER_NOT_AVAILABLE", "TIMED_OUT", "UNKNOWN_TOPIC"))
            if not transient or time.monotonic() > deadline:
                raise
            time.sleep(0.5)


def produce(bootstrap, topic, partitions, n, prefix):
    p = Producer({"bootstrap.servers": bootstrap, "acks": "all", "enable.idempotence": True,
                  "linger.ms": 5, "message.timeout.ms": 30000})
    errors = []
    for i in range(n):
        p.produce(topic, key=f"k{i % 10}".encode(), value=f"{prefix}-{i}".encode(), partition=i % partitions,
                  on_delivery=lambda err, msg: errors.append(err) if err else None)
    assert p.flush(40) == 0
    assert errors == []


def read_all(bootstrap, topic, partitions, timeout=60) -> dict[tuple[int, int], tuple[bytes, bytes]]:
    """Every record from offset 0 to the high watermark: {(partition, offset): (key, value)}."""
    c = Consumer({"bootstrap.servers": bootstrap, "group.id": compat.unique("adopt-read"),
                  "enable.auto.commit": False, "check.crcs": True, "enable.partition.eof": False})
    try:
        highs = {p: retry(lambda: c.get_watermark_offsets(CTP(topic, p), timeout=10))[1] for p in range(partitions)}
        c.assign([CTP(topic, p, 0) for p in range(partitions) if highs[p] > 0])
        out = {}
        pending = {p for p in range(partitions) if highs[p] > 0}
        deadline = time.monotonic() + timeout
        while pending and time.monotonic() < deadline:
            m = c.poll(0.5)
            if m is None:
                continue
            if m.error():
                raise KafkaException(m.error())
            out[(m.partition(), m.offset())] = (m.key(), m.value())
            if m.offset() + 1 >= highs[m.partition()]:
                pending.discard(m.partition())
        assert not pending, f"could not read partitions {pending} up to {highs}"
        return out
    finally:
        c.close()


def group_consumer(bootstrap, group):
    return Consumer({"bootstrap.servers": bootstrap, "group.id": group, "auto.offset.reset": "earliest",
                     "enable.auto.commit": False, "session.timeout.ms": 10000, "check.crcs": True})


def consume_and_commit(bootstrap, topic, group, per_partition: dict[int, int]):
    """A subscribed member of `group` reads `topic` and commits, for each
    partition, the position after its first `per_partition[p]` records (with
    their leader epoch, as a consumer does)."""
    c = group_consumer(bootstrap, group)
    try:
        c.subscribe([topic])
        wanted = sum(per_partition.values())
        taken: dict[int, int] = {}
        deadline = time.monotonic() + 60
        while sum(taken.values()) < wanted and time.monotonic() < deadline:
            m = c.poll(0.5)
            if m is None:
                continue
            if m.error():
                raise KafkaException(m.error())
            p = m.partition()
            if taken.get(p, 0) < per_partition.get(p, 0):
                taken[p] = taken.get(p, 0) + 1
                if taken[p] == per_partition[p]:
                    retry(lambda: c.commit(message=m, asynchronous=False))
        assert taken == per_partition, taken
    finally:
        c.close()


def committed(bootstrap, group, topic, partitions) -> dict[int, tuple[int, int | None]]:
    """OffsetFetch: {partition: (offset, leader epoch)}."""
    c = group_consumer(bootstrap, group)
    try:
        tps = retry(lambda: c.committed([CTP(topic, p) for p in range(partitions)], timeout=10))
        return {tp.partition: (tp.offset, tp.leader_epoch) for tp in tps}
    finally:
        c.close()


def resume(bootstrap, topic, group, expected: int) -> list:
    """The group's next member reads what is left after its commits."""
    c = group_consumer(bootstrap, group)
    try:
        c.subscribe([topic])
        got = compat.poll_messages(c, expected, timeout=60)
        # Nothing more arrives (no rewind to an earlier position).
        extra = compat.poll_messages(c, 1, timeout=3)
        return got + extra
    finally:
        c.close()


def topic_ids(bootstrap, names) -> dict[str, str]:
    a = compat.admin(bootstrap)
    fs = a.describe_topics(TopicCollection(list(names)), request_timeout=20)
    return {name: str(f.result(timeout=30).topic_id) for name, f in fs.items()}


def topic_config(bootstrap, topic, name) -> str:
    a = compat.admin(bootstrap)
    fs = a.describe_configs([ConfigResource(ConfigResource.Type.TOPIC, topic)], request_timeout=20)
    (entries,) = [f.result(timeout=30) for f in fs.values()]
    return entries[name].value


def user_topics(bootstrap) -> dict[str, int]:
    md = compat.admin(bootstrap).list_topics(timeout=20)
    return {name: len(t.partitions) for name, t in md.topics.items() if not name.startswith("__")}


def tree(root: Path, prefixes) -> dict[str, str]:
    """sha256 of every file under the directories of `root` named with one
    of `prefixes`: {relative path: digest}."""
    out = {}
    for d in sorted(root.iterdir()):
        if d.is_dir() and d.name.startswith(prefixes):
            for f in sorted(d.rglob("*")):
                if f.is_file():
                    out[str(f.relative_to(root))] = hashlib.sha256(f.read_bytes()).hexdigest()
    return out


def partition_files(root: Path, topics) -> dict[str, bytes]:
    """Every file of the user topics' partition directories."""
    out = {}
    for d in sorted(root.iterdir()):
        if d.is_dir() and d.name.rsplit("-", 1)[0] in topics:
            for f in sorted(d.iterdir()):
                if f.is_file():
                    out[str(f.relative_to(root))] = f.read_bytes()
    return out


def checkpoint_entries(path: Path) -> dict[tuple[str, int], int]:
    lines = path.read_text().splitlines() if path.exists() else []
    out = {}
    for line in lines[2:]:
        topic, part, off = line.split()
        out[(topic, int(part))] = int(off)
    return out


def assert_kept(root: Path, topics, internal_before, files_before, checkpoints_before):
    assert tree(root, KAFKA_INTERNAL) == internal_before, "Kafka's internal directories changed"
    files_after = partition_files(root, topics)
    for name, data in files_before.items():
        assert name in files_after, f"klamm deleted Kafka's {name}"
        if name.endswith((".log", ".index", ".timeindex")):
            # Appended to only (an index Kafka preallocated, as after a
            # SIGKILL, holds zeros past its entries).
            data = data.rstrip(b"\0") if name.endswith("index") else data
            assert files_after[name][:len(data)] == data, f"{name} was rewritten, not appended to"
        else:
            assert files_after[name] == data, f"klamm changed Kafka's {name}"
    after = checkpoint_entries(root / "recovery-point-offset-checkpoint")
    for key, off in checkpoints_before.items():
        if key[0].startswith("__"):
            assert after.get(key) == off, f"checkpoint entry {key} of Kafka's internal partition changed"


def kafka_workload(kafka, orders, audit, gone, group, audit_group, java_group):
    b = kafka.bootstrap
    compat.create_topic(b, orders, ORDERS_PARTITIONS, {"retention.ms": "123456789", "max.message.bytes": "200000"})
    compat.create_topic(b, audit, 1)
    compat.create_topic(b, gone, 1)
    produce(b, orders, ORDERS_PARTITIONS, RECORDS, "kafka")
    produce(b, audit, 1, 10, "audit")
    produce(b, gone, 1, 5, "gone")
    a = compat.admin(b)
    a.delete_topics([gone], operation_timeout=30)[gone].result(timeout=30)
    consume_and_commit(b, orders, group, {0: 10, 1: 20, 2: 30})
    assert len(compat.consume_all(b, audit, 10, group=audit_group)) == 10
    consume_and_commit(b, audit, java_group, {0: 6})
    ids = topic_ids(b, [orders, audit])
    records = read_all(b, orders, ORDERS_PARTITIONS)
    assert len(records) == RECORDS
    offsets = committed(b, group, orders, ORDERS_PARTITIONS)
    assert {p: o for p, (o, _) in offsets.items()} == {0: 10, 1: 20, 2: 30}
    deadline = time.monotonic() + 30
    while gone in user_topics(b) and time.monotonic() < deadline:
        time.sleep(0.5)
    return ids, records, offsets


def klamm_on(kafka) -> compat.Broker:
    k = compat.Broker(kind="klamm", name="klamm on Kafka's directory")
    k.data_dir = kafka.data_dir
    return k


def check_klamm(k, kafka_dir, orders, audit, gone, group, audit_group, java_group, ids, records, offsets):
    b = k.bootstrap
    log = k.log_tail(400)
    assert "adopted Apache Kafka data" in log, log
    tops = user_topics(b)
    assert tops == {orders: ORDERS_PARTITIONS, audit: 1}, tops
    assert gone not in tops
    assert topic_ids(b, [orders, audit]) == ids
    assert topic_config(b, orders, "retention.ms") == "123456789"
    assert topic_config(b, orders, "max.message.bytes") == "200000"
    assert read_all(b, orders, ORDERS_PARTITIONS) == records
    assert committed(b, group, orders, ORDERS_PARTITIONS) == offsets
    assert committed(b, audit_group, audit, 1)[0][0] == 10
    out = compat.kafka_tool(compat.CONSUMER_GROUPS, "--bootstrap-server", b, "--describe", "--group", group).stdout
    rows = {int(c[2]): c for c in (line.split() for line in out.splitlines())
            if len(c) >= 6 and c[0] == group and c[1] == orders and c[2].isdigit()}
    assert {p: int(r[3]) for p, r in rows.items()} == {0: 10, 1: 20, 2: 30}, out
    assert {p: int(r[4]) for p, r in rows.items()} == {p: RECORDS // ORDERS_PARTITIONS for p in range(3)}, out
    # The Java consumer validates the committed position (leader epoch 0,
    # from before Kafka's shutdown bumped the epoch) with
    # OffsetForLeaderEpoch and goes on at offset 6; a "truncation" answer
    # would make it rewind (auto.offset.reset=none makes that an error).
    cp = compat.kafka_tool(compat.CONSOLE_CONSUMER, "--bootstrap-server", b, "--topic", audit, "--group", java_group,
                           "--max-messages", "4", "--timeout-ms", "20000", "--property", "print.offset=true",
                           "--consumer-property", "auto.offset.reset=none")
    assert cp.stdout.splitlines() == [f"Offset:{i}\taudit-{i}" for i in range(6, 10)], cp.stdout + cp.stderr
    # The group resumes where it was: 20 + 10 + 0 records left, none twice.
    rest = resume(b, orders, group, RECORDS - 60)
    assert len(rest) == RECORDS - 60, [(m.partition(), m.offset()) for m in rest]
    assert all(m.offset() >= {0: 10, 1: 20, 2: 30}[m.partition()] for m in rest)
    # New records go after Kafka's.
    produce(b, orders, ORDERS_PARTITIONS, 3, "klamm")
    after = read_all(b, orders, ORDERS_PARTITIONS)
    for p in range(ORDERS_PARTITIONS):
        assert after[(p, RECORDS // ORDERS_PARTITIONS)][1] == f"klamm-{p}".encode()


def snapshot_kafka_files(kafka_dir: Path, topics):
    return (tree(kafka_dir, KAFKA_INTERNAL), partition_files(kafka_dir, topics),
            checkpoint_entries(kafka_dir / "recovery-point-offset-checkpoint"))


@pytest.mark.parametrize("stop", ["sigterm", "sigkill"])
def test_klamm_adopts_kafkas_data_directory(stop):
    orders, audit, gone = compat.unique("adopt-orders"), compat.unique("adopt-audit"), compat.unique("adopt-gone")
    group, audit_group, java_group = compat.unique("adopt-g"), compat.unique("adopt-audit-g"), compat.unique("adopt-java-g")
    kafka = compat.Broker(kind="kafka", name="Apache Kafka")
    k = None
    try:
        kafka.start()
        ids, records, offsets = kafka_workload(kafka, orders, audit, gone, group, audit_group, java_group)
        if stop == "sigkill":
            # Let the group coordinator's and the logs' writes reach the
            # page cache; SIGKILL loses nothing acknowledged there.
            time.sleep(1)
        kafka.stop(graceful=stop == "sigterm")
        kafka_dir = kafka.data_dir
        assert (kafka_dir / "__cluster_metadata-0").is_dir()
        before = snapshot_kafka_files(kafka_dir, {orders, audit, gone})
        assert any(n.startswith("__consumer_offsets-") for n in before[0]), "Kafka wrote no offsets"

        k = klamm_on(kafka)
        k.start()
        check_klamm(k, kafka_dir, orders, audit, gone, group, audit_group, java_group, ids, records, offsets)
        k.stop()
        assert_kept(kafka_dir, {orders, audit, gone}, *before)
        assert (kafka_dir / ".klamm" / "adopted-from-kafka").exists()

        # Adopted once: the next start is klamm's own, with the new records.
        k.start()
        assert "adopted Apache Kafka data" not in k.log_tail(400).split("===== start #2")[-1]
        after = read_all(k.bootstrap, orders, ORDERS_PARTITIONS)
        assert len(after) == RECORDS + 3
        assert {key: v for key, v in after.items() if key in records} == records
        assert user_topics(k.bootstrap) == {orders: ORDERS_PARTITIONS, audit: 1}
        k.stop()
        assert tree(kafka_dir, KAFKA_INTERNAL) == before[0]
    except BaseException:
        for b in (kafka, k):
            if b is not None:
                print(f"--- {b.name} log ---\n{b.log_tail(200)}")
        raise
    finally:
        if k is not None:
            k.close()
        kafka.close()
