"""Admin-side behaviours with the stock tools and confluent-kafka's
AdminClient: ListOffsets through kafka-get-offsets (GetOffsetShell) for
latest / earliest / max-timestamp / a timestamp on records with
non-monotonic timestamps; kafka-topics --delete refused with
delete.topic.enable=false; CreateTopics with validate_only."""

from __future__ import annotations

import time

import pytest
from confluent_kafka import KafkaError, KafkaException, Producer
from confluent_kafka.admin import NewTopic

import compat
from compat import TOPICS, kafka_tool

GET_OFFSETS = "org.apache.kafka.tools.GetOffsetShell"

TOPIC_DELETION_DISABLED = 73


def get_offsets(bootstrap, topic, time_spec) -> str:
    return kafka_tool(GET_OFFSETS, "--bootstrap-server", bootstrap, "--topic", topic,
                      "--time", str(time_spec)).stdout


def test_get_offsets_latest_earliest_max_timestamp_and_time(bootstrap):
    """kafka-get-offsets on a 3-partition topic whose records carry explicit,
    non-monotonic CreateTime timestamps (partition 0: one batch of 6
    records; partition 1: 4 records, one batch each; partition 2 empty):
    --time -1 gives the log end offsets, -2 the log start (0), -3 the offset
    of the record with the largest timestamp (not the last one), and a
    timestamp the first offset whose timestamp is >= it. Partitions without
    such an offset are left out of the output."""
    topic = compat.unique("get-offsets")
    compat.create_topic(bootstrap, topic, 3)
    base = int(time.time() * 1000) - 600_000
    p0 = [3000, 1000, 4000, 2000, 5000, 1500]   # offsets 0..5; max at offset 4
    p1 = [2000, 7000, 1000, 6000]               # offsets 0..3; max at offset 1

    reports = []
    p = Producer({"bootstrap.servers": bootstrap, "acks": "all", "linger.ms": 200,
                  "message.timeout.ms": 20000})
    for i, ts in enumerate(p0):
        p.produce(topic, value=f"p0-{i}".encode(), partition=0, timestamp=base + ts,
                  on_delivery=lambda err, msg: reports.append((err, msg.partition(), msg.offset())))
    assert p.flush(20) == 0
    for i, ts in enumerate(p1):
        p.produce(topic, value=f"p1-{i}".encode(), partition=1, timestamp=base + ts,
                  on_delivery=lambda err, msg: reports.append((err, msg.partition(), msg.offset())))
        assert p.flush(20) == 0
    assert [r for r in reports if r[0] is not None] == []
    assert sorted(r[1:] for r in reports) == [(0, i) for i in range(6)] + [(1, i) for i in range(4)]

    def offsets(spec) -> list[str]:
        out = get_offsets(bootstrap, topic, spec)
        return sorted(line.removeprefix(f"{topic}:") for line in out.split())

    assert offsets(-1) == ["0:6", "1:4", "2:0"]
    assert offsets(-2) == ["0:0", "1:0", "2:0"]
    # Max timestamp: the record with the largest timestamp; an empty
    # partition has none and is left out.
    assert offsets(-3) == ["0:4", "1:1"]
    # The first offset whose timestamp is >= the given one (partition 0:
    # offset 2 (4000), not 4 (5000); partition 1: offset 1 (7000), not 3
    # (6000)); none in partition 0 past its largest timestamp.
    assert offsets(base + 3500) == ["0:2", "1:1"]
    assert offsets(base + 5500) == ["1:1"]


def test_delete_topic_disabled(broker_factory):
    """With delete.topic.enable=false (fresh broker), kafka-topics --delete
    exits 1 with Kafka's "TopicDeletionDisabledException: Topic deletion is
    disabled.", confluent-kafka's delete_topics gets TOPIC_DELETION_DISABLED
    (73), and the topic stays, records included."""
    b = broker_factory({"delete.topic.enable": "false", "auto.create.topics.enable": "false"})
    topic = compat.unique("nodelete")
    compat.create_topic(b.bootstrap, topic, 2)
    compat.run(["kcat", "-P", "-b", b.bootstrap, "-t", topic, "-p", "1"], input="r0\nr1\n", timeout=60)

    cp = kafka_tool(TOPICS, "--bootstrap-server", b.bootstrap, "--delete", "--topic", topic, check=False)
    assert cp.returncode == 1, cp
    assert "Error while executing topic command : Topic deletion is disabled." in cp.stdout, cp.stdout
    assert "org.apache.kafka.common.errors.TopicDeletionDisabledException: Topic deletion is disabled." \
        in cp.stderr, cp.stderr

    a = compat.admin(b.bootstrap)
    fs = a.delete_topics([topic], request_timeout=15, operation_timeout=15)
    with pytest.raises(KafkaException) as exc:
        fs[topic].result(timeout=20)
    err = exc.value.args[0]
    assert (err.code(), err.name()) == (TOPIC_DELETION_DISABLED, "TOPIC_DELETION_DISABLED"), err

    assert topic in a.list_topics(timeout=10).topics
    compat.wait_topic(b.bootstrap, topic, 2)
    got = compat.run(["kcat", "-C", "-b", b.bootstrap, "-t", topic, "-p", "1", "-o", "beginning", "-e", "-q",
                      "-f", "%o:%s\n"], timeout=60).stdout.split()
    assert got == ["0:r0", "1:r1"]


def validate_only_error(admin, new_topic):
    fs = admin.create_topics([new_topic], validate_only=True, request_timeout=15, operation_timeout=15)
    try:
        fs[new_topic.topic].result(timeout=20)
        return None
    except KafkaException as e:
        err = e.args[0]
        return err.name(), err.str()


def test_create_topics_validate_only(bootstrap):
    """CreateTopics with validate_only through confluent-kafka's AdminClient:
    a valid request succeeds and creates nothing (the name is then free for
    a real create with another partition count); an existing name, 0
    partitions, a bad config value and replication factor 3 get the errors
    (and texts) of a real create."""
    a = compat.admin(bootstrap)
    topic = compat.unique("validate")
    assert validate_only_error(a, NewTopic(topic, num_partitions=3, replication_factor=1,
                                           config={"retention.ms": "1000"})) is None
    time.sleep(0.5)
    assert topic not in a.list_topics(timeout=10).topics
    md = a.list_topics(topic=topic, timeout=10).topics[topic]
    assert md.error is not None and md.error.code() == KafkaError.UNKNOWN_TOPIC_OR_PART

    compat.create_topic(bootstrap, topic, 1)
    assert len(a.list_topics(topic=topic, timeout=10).topics[topic].partitions) == 1
    assert validate_only_error(a, NewTopic(topic, num_partitions=3, replication_factor=1)) == \
        ("TOPIC_ALREADY_EXISTS", f"Topic '{topic}' already exists.")

    assert validate_only_error(a, NewTopic(compat.unique("validate"), num_partitions=0, replication_factor=1)) == \
        ("INVALID_PARTITIONS", "Number of partitions was set to an invalid non-positive value.")
    assert validate_only_error(a, NewTopic(compat.unique("validate"), num_partitions=1, replication_factor=1,
                                           config={"retention.ms": "x"})) == \
        ("INVALID_CONFIG", "Invalid value x for configuration retention.ms: Not a number of type LONG")
    assert validate_only_error(a, NewTopic(compat.unique("validate"), num_partitions=1, replication_factor=3)) == \
        ("INVALID_REPLICATION_FACTOR", "Unable to replicate the partition 3 time(s): The target replication "
         "factor of 3 cannot be reached because only 1 broker(s) are registered.")


ACL_TOOL = "org.apache.kafka.tools.AclCommand"


def test_acls_without_an_authorizer(bootstrap):
    """No authorizer is configured (Kafka's default, and klamm's; with one,
    see test_acls.py): kafka-acls --list fails with
    SECURITY_DISABLED, as MirrorMaker 2's ACL sync expects."""
    cp = kafka_tool(ACL_TOOL, "--bootstrap-server", bootstrap, "--list", check=False)
    assert cp.returncode != 0
    out = cp.stdout + cp.stderr
    assert "SecurityDisabledException: No Authorizer is configured on the broker" in out, out[-2000:]
