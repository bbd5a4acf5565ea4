"""The stock Apache Kafka command-line tools (kafka-topics, kafka-console-
producer/-consumer, kafka-consumer-groups, kafka-configs; Kafka 4.1 jars run
through tests/compat/bin/kafka-run-class) against the broker under test."""

from __future__ import annotations

import re
import time
from collections import defaultdict

import compat
from compat import CONFIGS, CONSOLE_CONSUMER, CONSOLE_PRODUCER, CONSUMER_GROUPS, TOPICS, kafka_tool

KEYS = [f"key{k}" for k in range(10)]


def topics(bootstrap, *args, **kw):
    return kafka_tool(TOPICS, "--bootstrap-server", bootstrap, *args, **kw)


def topic_list(bootstrap) -> list[str]:
    return topics(bootstrap, "--list").stdout.split()


def produce_keyed(bootstrap, topic, n=60):
    """Produces n records 'keyK:valueI' (10 keys, round robin) with the
    console producer; returns the produced (key, value) pairs in order."""
    pairs = [(KEYS[i % len(KEYS)], f"value{i}") for i in range(n)]
    data = "".join(f"{k}:{v}\n" for k, v in pairs)
    kafka_tool(CONSOLE_PRODUCER, "--bootstrap-server", bootstrap, "--topic", topic,
               "--property", "parse.key=true", "--property", "key.separator=:",
               "--request-required-acks", "all", input=data, timeout=90)
    return pairs


def console_consume(bootstrap, topic, max_messages, *extra, timeout_ms=10000):
    """Runs the console consumer with keys printed; returns (key, value)
    pairs in the order printed."""
    cp = kafka_tool(CONSOLE_CONSUMER, "--bootstrap-server", bootstrap, "--topic", topic,
                    "--property", "print.key=true", "--property", "key.separator=:",
                    "--max-messages", str(max_messages), "--timeout-ms", str(timeout_ms), *extra,
                    timeout=90, check=False)
    # With --timeout-ms the tool exits non-zero only on real errors; a
    # timeout with fewer messages is reported as "Processed a total of N".
    assert "Processed a total of" in cp.stderr, cp.stderr
    lines = [l for l in cp.stdout.splitlines() if l.strip()]
    return [tuple(l.split(":", 1)) for l in lines]


def assert_per_key_order(pairs, produced):
    """Within each key, values must come back in produced order."""
    want = defaultdict(list)
    for k, v in produced:
        want[k].append(v)
    got = defaultdict(list)
    for k, v in pairs:
        got[k].append(v)
    assert dict(got) == dict(want)


def test_topic_lifecycle(bootstrap):
    """kafka-topics --create (3 partitions) shows up in --list; --describe
    reports PartitionCount 3 and, per partition, Leader 1, Replicas 1, Isr 1;
    --alter --partitions 6 makes it 6; --delete removes it from --list."""
    topic = compat.unique("tools-lifecycle")
    out = topics(bootstrap, "--create", "--topic", topic, "--partitions", "3", "--replication-factor", "1").stdout
    assert f"Created topic {topic}." in out
    assert topic in topic_list(bootstrap)

    desc = topics(bootstrap, "--describe", "--topic", topic).stdout
    assert re.search(rf"Topic: {re.escape(topic)}\s+TopicId: \S+\s+PartitionCount: 3\s+ReplicationFactor: 1", desc), desc
    parts = re.findall(r"Partition: (\d+)\s+Leader: (\d+)\s+Replicas: (\S+)\s+Isr: (\S+)", desc)
    assert sorted(int(p[0]) for p in parts) == [0, 1, 2], desc
    assert all(p[1:] == ("1", "1", "1") for p in parts), desc

    topics(bootstrap, "--alter", "--topic", topic, "--partitions", "6")
    compat.wait_topic(bootstrap, topic, 6)
    desc = topics(bootstrap, "--describe", "--topic", topic).stdout
    assert re.search(r"PartitionCount: 6\s", desc), desc
    assert len(re.findall(r"Partition: \d+\s+Leader: 1\s", desc)) == 6, desc

    topics(bootstrap, "--delete", "--topic", topic)
    deadline = time.monotonic() + 30
    while topic in topic_list(bootstrap):
        assert time.monotonic() < deadline, f"{topic} still listed 30 s after --delete"
        time.sleep(0.5)


def test_create_existing_topic_fails(bootstrap):
    """Creating a topic that exists makes kafka-topics exit non-zero with
    'already exists' (TOPIC_ALREADY_EXISTS, 36)."""
    topic = compat.unique("tools-dup")
    topics(bootstrap, "--create", "--topic", topic, "--partitions", "1")
    cp = topics(bootstrap, "--create", "--topic", topic, "--partitions", "1", check=False)
    assert cp.returncode != 0
    assert "already exists" in (cp.stdout + cp.stderr)


def test_console_producer_consumer_with_keys(bootstrap):
    """60 keyed records (10 keys) from kafka-console-producer come back from
    kafka-console-consumer --from-beginning (no --group: the tool makes one
    up) with their keys, each key's values in produced order."""
    topic = compat.unique("tools-console")
    topics(bootstrap, "--create", "--topic", topic, "--partitions", "3")
    produced = produce_keyed(bootstrap, topic, 60)
    got = console_consume(bootstrap, topic, 60, "--from-beginning")
    assert len(got) == 60
    assert_per_key_order(got, produced)


def test_consumer_group_commit_describe_reset(bootstrap):
    """With --group the console consumer commits: a second run gets nothing
    new. kafka-consumer-groups --list shows the group, --describe shows every
    partition with LAG 0 and CURRENT-OFFSET = LOG-END-OFFSET, and
    --reset-offsets --to-earliest --execute makes the next run get all
    records again."""
    topic = compat.unique("tools-group")
    group = compat.unique("g1")
    topics(bootstrap, "--create", "--topic", topic, "--partitions", "3")
    produced = produce_keyed(bootstrap, topic, 60)

    got = console_consume(bootstrap, topic, 60, "--group", group, "--from-beginning")
    assert len(got) == 60
    assert_per_key_order(got, produced)

    again = console_consume(bootstrap, topic, 1, "--group", group, timeout_ms=5000)
    assert again == [], "committed offsets should leave nothing new for the group"

    groups = kafka_tool(CONSUMER_GROUPS, "--bootstrap-server", bootstrap, "--list").stdout.split()
    assert group in groups

    desc = kafka_tool(CONSUMER_GROUPS, "--bootstrap-server", bootstrap, "--describe", "--group", group).stdout
    rows = [l.split() for l in desc.splitlines() if l.startswith(group + " ") or l.split()[:1] == [group]]
    rows = [r for r in rows if len(r) >= 6 and r[1] == topic]
    assert sorted(int(r[2]) for r in rows) == [0, 1, 2], desc
    total_end = 0
    for r in rows:
        # GROUP TOPIC PARTITION CURRENT-OFFSET LOG-END-OFFSET LAG CONSUMER-ID HOST CLIENT-ID
        assert r[3] == r[4], desc
        assert r[5] == "0", desc
        total_end += int(r[4])
    assert total_end == 60, desc

    reset = kafka_tool(CONSUMER_GROUPS, "--bootstrap-server", bootstrap, "--reset-offsets", "--group", group,
                       "--topic", topic, "--to-earliest", "--execute").stdout
    assert re.search(rf"{re.escape(group)}\s+{re.escape(topic)}\s+\d+\s+0\b", reset), reset

    got = console_consume(bootstrap, topic, 60, "--group", group)
    assert len(got) == 60
    assert_per_key_order(got, produced)


def test_describe_configs_topic_and_broker(bootstrap):
    """kafka-topics --create --config retention.ms=1000 --config
    cleanup.policy=delete: --describe lists both under Configs, and
    kafka-configs --describe --entity-type topics shows them as dynamic topic
    configs. kafka-configs --describe --entity-type brokers --entity-name 1
    --all lists static/default broker configs such as message.max.bytes and
    log.dirs with their values."""
    topic = compat.unique("tools-configs")
    topics(bootstrap, "--create", "--topic", topic, "--partitions", "1",
           "--config", "retention.ms=1000", "--config", "cleanup.policy=delete")
    desc = topics(bootstrap, "--describe", "--topic", topic).stdout
    configs_line = re.search(r"Configs: (.*)", desc)
    assert configs_line, desc
    assert "retention.ms=1000" in configs_line.group(1), desc
    assert "cleanup.policy=delete" in configs_line.group(1), desc

    out = kafka_tool(CONFIGS, "--bootstrap-server", bootstrap, "--describe",
                     "--entity-type", "topics", "--entity-name", topic).stdout
    assert f"Dynamic configs for topic {topic} are:" in out, out
    assert re.search(r"retention\.ms=1000 sensitive=false synonyms=\{DYNAMIC_TOPIC_CONFIG:retention\.ms=1000\}", out), out
    assert "cleanup.policy=delete" in out, out

    out = kafka_tool(CONFIGS, "--bootstrap-server", bootstrap, "--describe",
                     "--entity-type", "brokers", "--entity-name", "1", "--all").stdout
    assert "All configs for broker 1 are:" in out, out
    assert re.search(r"^\s*message\.max\.bytes=1048588 sensitive=false", out, re.M), out
    assert re.search(r"^\s*log\.dirs=\S+ sensitive=false", out, re.M), out
    assert re.search(r"^\s*auto\.create\.topics\.enable=false sensitive=false", out, re.M), out


def test_alter_topic_config(bootstrap):
    """kafka-configs --alter --add-config retention.ms=5000 on a topic is
    visible in kafka-configs --describe; --delete-config removes it again."""
    topic = compat.unique("tools-alter-config")
    topics(bootstrap, "--create", "--topic", topic, "--partitions", "1")
    kafka_tool(CONFIGS, "--bootstrap-server", bootstrap, "--alter", "--entity-type", "topics",
               "--entity-name", topic, "--add-config", "retention.ms=5000")
    out = kafka_tool(CONFIGS, "--bootstrap-server", bootstrap, "--describe",
                     "--entity-type", "topics", "--entity-name", topic).stdout
    assert "retention.ms=5000" in out, out
    kafka_tool(CONFIGS, "--bootstrap-server", bootstrap, "--alter", "--entity-type", "topics",
               "--entity-name", topic, "--delete-config", "retention.ms")
    out = kafka_tool(CONFIGS, "--bootstrap-server", bootstrap, "--describe",
                     "--entity-type", "topics", "--entity-name", topic).stdout
    assert "retention.ms" not in out, out
