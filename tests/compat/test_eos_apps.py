"""Exactly-once with the application frameworks users build on (issue 10):
Spring Kafka's transactional KafkaTemplate and a @KafkaListener under a
KafkaTransactionManager with a dead-letter topic, and a Kafka Streams
KTable under exactly_once_v2 through a broker kill -9 and an application
restart that restores its table from the compacted changelog (issue 11).
The applications live in tests/compat/java/apps; every assertion holds
against Apache Kafka 4.1.2 (KLAMM_COMPAT_BROKER=kafka)."""

from __future__ import annotations

import collections
import os
import signal
import tempfile

from confluent_kafka import Consumer, Producer, TopicPartition

import compat


def read_topic(bootstrap: str, topic: str, partitions: int, expected: int, level: str = "read_committed",
               timeout: float = 60, settle: float = 2) -> list:
    """All records of `topic` from the start: waits for `expected`, then
    `settle` seconds more for any extra one."""
    c = Consumer({"bootstrap.servers": bootstrap, "group.id": compat.unique("eos-read"),
                  "auto.offset.reset": "earliest", "enable.auto.commit": False,
                  "isolation.level": level, "enable.partition.eof": False})
    try:
        c.assign([TopicPartition(topic, p, 0) for p in range(partitions)])
        got = compat.poll_messages(c, expected, timeout)
        return got + compat.poll_messages(c, 1_000_000, settle)
    finally:
        c.close()


def produce(bootstrap: str, topic: str, records: list[tuple[str, str]]) -> None:
    p = Producer({"bootstrap.servers": bootstrap, "enable.idempotence": True, "linger.ms": 5})
    for key, value in records:
        p.produce(topic, key=key.encode(), value=value.encode())
    assert p.flush(30) == 0


def test_spring_template_and_transactional_listener_with_dead_letters(bootstrap):
    src, out, dlt = compat.unique("spring-in"), compat.unique("spring-out"), compat.unique("spring-dlt")
    for t in (src, out, dlt):
        compat.create_topic(bootstrap, t, 1)
    inputs = ["a", "b", "fail-c", "d"]
    produce(bootstrap, src, [(f"k{i}", v) for i, v in enumerate(inputs)])
    group = compat.unique("spring-group")
    with compat.JavaApp("spring-txn", bootstrap, src, out, dlt, group, compat.unique("tx-"), len(inputs)) as app:
        app.wait_for("TEMPLATE-COMMITTED", 90)
        app.wait_for("TEMPLATE-ROLLED-BACK", 30)
        app.wait_for("LISTENER-DONE", 120)
        assert app.wait_exit(60) == 0, app.stderr_tail()
        attempts = collections.Counter(line.split(" ", 1)[1] for line in app.lines if line.startswith("ATTEMPT "))
    # The failing record ran twice (one retry), then went to the DLT; the
    # others once each.
    assert attempts == {"a": 1, "b": 1, "fail-c": 2, "d": 1}, attempts

    committed = sorted(m.value().decode() for m in read_topic(bootstrap, out, 1, 5))
    assert committed == ["processed-a", "processed-b", "processed-d", "template-commit-1", "template-commit-2"]
    everything = [m.value().decode() for m in read_topic(bootstrap, out, 1, 8, level="read_uncommitted")]
    assert everything.count("template-rollback") == 1
    assert everything.count("processed-fail-c") == 2

    dead = read_topic(bootstrap, dlt, 1, 1)
    assert [m.value().decode() for m in dead] == ["fail-c"]
    headers = dict(dead[0].headers() or [])
    assert headers["kafka_dlt-original-topic"].decode() == src
    assert b"listener fails on fail-c" in headers["kafka_dlt-exception-message"]

    # The group's offset covers every input, the dead one included.
    a = compat.admin(bootstrap)
    from confluent_kafka import ConsumerGroupTopicPartitions
    res = a.list_consumer_group_offsets([ConsumerGroupTopicPartitions(group)])[group].result(30)
    assert [(tp.topic, tp.partition, tp.offset) for tp in res.topic_partitions] == [(src, 0, len(inputs))]


def send_rounds(bootstrap: str, topic: str, sent: collections.Counter, rounds: int, keys: int) -> None:
    """`rounds` records of each of `keys` keys, counted into `sent`."""
    batch = [(f"key{k}", "x") for _ in range(rounds) for k in range(keys)]
    produce(bootstrap, topic, batch)
    sent.update(k for k, _ in batch)


def check_counts(bootstrap: str, out: str, sent: collections.Counter, partitions: int = 2,
                 timeout: float = 120) -> None:
    """Exactly once: the committed counts of each key are 1, 2, ..., n."""
    total = sum(sent.values())
    got = read_topic(bootstrap, out, partitions, total, timeout=timeout)
    seen: dict[str, list[int]] = collections.defaultdict(list)
    for m in got:
        seen[m.key().decode()].append(int(m.value()))
    for key, n in sent.items():
        assert seen[key] == list(range(1, n + 1)), f"key {key}: {seen[key][:50]}... (want 1..{n})"
    assert set(seen) == set(sent)


def test_kafka_streams_exactly_once_counts_through_broker_and_app_restarts(broker_factory):
    b = broker_factory({"auto.create.topics.enable": "false"})
    src, out = compat.unique("streams-in"), compat.unique("streams-out")
    compat.create_topic(b.bootstrap, src, 2)
    compat.create_topic(b.bootstrap, out, 2)
    app_id = compat.unique("streams-eos")
    sent: collections.Counter = collections.Counter()

    def send(rounds: int) -> None:
        send_rounds(b.bootstrap, src, sent, rounds, keys=10)

    send(20)
    args = (b.bootstrap, app_id, src, out)
    with compat.JavaApp("streams-count", *args, tempfile.mkdtemp(prefix="streams-state-"), "exactly_once_v2") as app:
        app.wait_for("STATE RUNNING", 120)
        check_counts(b.bootstrap, out, sent)
        # kill -9 of the broker under a running exactly-once application.
        b.restart(graceful=False)
        send(20)
        check_counts(b.bootstrap, out, sent)
    # A new instance with an empty state directory restores the table from
    # its compacted changelog and goes on counting.
    send(10)
    with compat.JavaApp("streams-count", *args, tempfile.mkdtemp(prefix="streams-state-"), "exactly_once_v2") as app:
        app.wait_for("STATE RUNNING", 120)
        check_counts(b.bootstrap, out, sent)


def test_kafka_streams_exactly_once_when_an_instance_is_killed(broker_factory):
    """Two instances share the work; one is killed with kill -9 while it
    processes, its open transaction is aborted by the coordinator's
    timeout (Streams sets transaction.timeout.ms to 10 s under EOS), and
    the survivor takes over its tasks from the last committed offsets
    and the changelog: every count is still 1..n exactly once."""
    b = broker_factory({"auto.create.topics.enable": "false", "group.initial.rebalance.delay.ms": "0"})
    src, out = compat.unique("streams-kill-in"), compat.unique("streams-kill-out")
    compat.create_topic(b.bootstrap, src, 4)
    compat.create_topic(b.bootstrap, out, 4)
    app_id = compat.unique("streams-kill")
    sent: collections.Counter = collections.Counter()

    def send(rounds: int) -> None:
        send_rounds(b.bootstrap, src, sent, rounds, keys=20)

    send(10)
    args = (b.bootstrap, app_id, src, out)

    def instance():
        return compat.JavaApp("streams-count", *args, tempfile.mkdtemp(prefix="streams-state-"), "exactly_once_v2", 6000)

    with instance() as survivor, instance() as victim:
        survivor.wait_for("STATE RUNNING", 120)
        victim.wait_for("STATE RUNNING", 120)
        check_counts(b.bootstrap, out, sent, partitions=4)
        # Both own tasks now (4 partitions, 2 instances); kill one while
        # it is processing new input.
        send(30)
        os.killpg(victim.proc.pid, signal.SIGKILL)
        victim.proc.wait(30)
        send(10)
        check_counts(b.bootstrap, out, sent, partitions=4, timeout=180)
        assert survivor.proc.poll() is None, survivor.stderr_tail()
