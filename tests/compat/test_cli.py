"""klamm's built-in CLI (`klamm topic | produce | consume | group | cluster`,
the binary under test is $KLAMM_BIN) against the broker under test, klamm
or Apache Kafka 4.1 (KLAMM_COMPAT_BROKER=kafka): output, exit codes, a
produce/consume round trip with keys and headers, and the effects checked
with the stock tools (kafka-topics, kafka-consumer-groups) and librdkafka."""

from __future__ import annotations

import json
import re
import time

import pytest

import compat
from compat import CONSUMER_GROUPS, TOPICS, kafka_tool, unique


def cli(bootstrap, *args, input=None, check=True, timeout=60):
    """Runs `klamm ARGS -b BOOTSTRAP`; returns the CompletedProcess."""
    return compat.run([compat.klamm_binary(), *args, "-b", bootstrap], timeout=timeout, input=input, check=check)


def cli_json(bootstrap, *args):
    return json.loads(cli(bootstrap, *args, "--format", "json").stdout)


def stock_describe(bootstrap, topic) -> str:
    return kafka_tool(TOPICS, "--bootstrap-server", bootstrap, "--describe", "--topic", topic).stdout


def wait_until(what, pred, timeout=30):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        last = pred()
        if last:
            return last
        time.sleep(0.3)
    raise AssertionError(f"not true after {timeout}s: {what}")


def test_cluster_info(broker, bootstrap):
    cp = cli(bootstrap, "cluster", "info")
    assert "CLUSTER ID:" in cp.stdout and "CONTROLLER:" in cp.stdout, cp.stdout
    assert re.search(rf"^1\*?\s+127\.0\.0\.1\s+{broker.port}\b", cp.stdout, re.M), cp.stdout
    assert re.search(r"^Produce\s+0\s+\d+\s+\d+$", cp.stdout, re.M), cp.stdout
    info = cli_json(bootstrap, "cluster", "info")
    assert info["cluster_id"]
    assert [(b["id"], b["port"]) for b in info["brokers"]] == [(1, broker.port)]
    names = {a["name"] for a in info["api_versions"]}
    assert {"Produce", "Fetch", "Metadata", "ApiVersions", "CreateTopics"} <= names


def test_topic_create_describe_alter_delete(bootstrap):
    topic = unique("cli-topic")
    cp = cli(bootstrap, "topic", "create", topic, "-p", "3", "-r", "1", "-c", "retention.ms=123456")
    assert cp.stdout == f"Created topic {topic}.\n"
    compat.wait_topic(bootstrap, topic, 3)
    stock = stock_describe(bootstrap, topic)
    assert "PartitionCount: 3" in stock and "retention.ms=123456" in stock, stock

    again = cli(bootstrap, "topic", "create", topic, check=False)
    assert again.returncode == 1
    assert again.stderr.startswith("error: TOPIC_ALREADY_EXISTS (36): "), again.stderr
    assert cli(bootstrap, "topic", "create", topic, "--if-not-exists").returncode == 0

    listed = cli(bootstrap, "topic", "list").stdout.splitlines()
    assert listed[0].split() == ["NAME", "PARTITIONS", "REPLICAS"]
    assert [topic, "3", "1"] in [l.split() for l in listed[1:]]
    assert {"topic": topic, "partitions": 3, "replication_factor": 1, "internal": False} in \
        cli_json(bootstrap, "topic", "list")

    desc = cli(bootstrap, "topic", "describe", topic).stdout
    assert "retention.ms=123456" in desc, desc
    rows = [l.split() for l in desc.splitlines() if re.match(r"^\d+\s", l)]
    assert [r[0] for r in rows] == ["0", "1", "2"] and all(r[1] == "1" and r[3:] == ["1", "1"] for r in rows), desc
    d = cli_json(bootstrap, "topic", "describe", topic)
    assert d["configs"] == {"retention.ms": "123456"}
    assert [(p["partition"], p["leader"], p["replicas"], p["isr"]) for p in d["partitions"]] == \
        [(i, 1, [1], [1]) for i in range(3)]

    cp = cli(bootstrap, "topic", "alter", topic, "-c", "retention.ms=999000", "-c", "segment.ms=3600000", "--partitions", "5")
    assert cp.stdout.startswith(f"Altered topic {topic}: "), cp.stdout
    compat.wait_topic(bootstrap, topic, 5)
    stock = stock_describe(bootstrap, topic)
    assert "PartitionCount: 5" in stock and "retention.ms=999000" in stock and "segment.ms=3600000" in stock, stock
    cli(bootstrap, "topic", "alter", topic, "--delete-config", "segment.ms")
    assert cli_json(bootstrap, "topic", "describe", topic)["configs"] == {"retention.ms": "999000"}
    bad = cli(bootstrap, "topic", "alter", topic, "--partitions", "2", check=False)
    assert bad.returncode == 1 and "INVALID_PARTITIONS (37)" in bad.stderr, bad.stderr

    assert cli(bootstrap, "topic", "delete", topic).stdout == f"Deleted topic {topic}.\n"
    wait_until("topic gone from kafka-topics --list",
               lambda: topic not in kafka_tool(TOPICS, "--bootstrap-server", bootstrap, "--list").stdout.split())
    gone = cli(bootstrap, "topic", "delete", topic, check=False)
    assert gone.returncode == 1 and "UNKNOWN_TOPIC_OR_PARTITION (3)" in gone.stderr, gone.stderr


def test_topic_errors_and_usage(bootstrap):
    missing = unique("cli-missing")
    cp = cli(bootstrap, "topic", "describe", missing, check=False)
    assert cp.returncode == 1 and cp.stdout == ""
    assert cp.stderr.startswith("error: UNKNOWN_TOPIC_OR_PARTITION (3): "), cp.stderr
    cp = cli(bootstrap, "topic", "create", unique("cli-bad"), "-c", "retention.ms=banana", check=False)
    assert cp.returncode == 1 and "INVALID_CONFIG (40)" in cp.stderr, cp.stderr
    cp = cli(bootstrap, "topic", "create", "x", "-c", "novalue", check=False)
    assert cp.returncode == 2, cp.stderr
    closed = compat.free_port()
    cp = compat.run([compat.klamm_binary(), "topic", "list", "-b", f"127.0.0.1:{closed}"], timeout=30, check=False)
    assert cp.returncode == 1 and "cannot connect" in cp.stderr, cp.stderr
    cp = compat.run([compat.klamm_binary(), "topic", "list"], timeout=30, check=False,
                    env={"KLAMM_BROKERS": bootstrap})
    assert cp.returncode == 0, cp.stderr


def test_produce_consume_round_trip_with_keys_and_headers(bootstrap):
    from kafka.partitioner.default import murmur2
    topic = unique("cli-rt")
    cli(bootstrap, "topic", "create", topic, "-p", "4")
    compat.wait_topic(bootstrap, topic, 4)
    lines = [f"key{i % 7}:value {i}" for i in range(500)] + ["nokey-line"]
    cli(bootstrap, "produce", topic, "--key-separator", ":", "-H", "source=cli", "-H", "n=1",
        input="\n".join(lines) + "\n")
    cli(bootstrap, "produce", topic, "-k", "single", "--value", "one value", "-p", "2", "--acks", "1")

    cp = cli(bootstrap, "consume", topic, "--from-beginning", "--exit", "-f", "%k|%v|%p|%h\\n")
    got = [l.split("|") for l in cp.stdout.splitlines()]
    assert len(got) == 502, cp.stdout[-2000:]
    by_key = {}
    for k, v, p, h in got:
        by_key.setdefault(k, []).append((v, int(p), h))
    for k in (f"key{i}" for i in range(7)):
        values = [v for v, _, _ in by_key[k]]
        assert values == [f"value {i}" for i in range(500) if f"key{i % 7}" == k], k
        # The partition of a key is the Java client's: murmur2 % partitions.
        assert {p for _, p, _ in by_key[k]} == {(murmur2(k.encode()) & 0x7FFFFFFF) % 4}, k
        assert {h for _, _, h in by_key[k]} == {"source=cli,n=1"}
    assert by_key[""] == [("nokey-line", by_key[""][0][1], "source=cli,n=1")]
    assert by_key["single"] == [("one value", 2, "")]

    # librdkafka reads the same records, keys and headers.
    msgs = compat.consume_all(bootstrap, topic, 502)
    assert len(msgs) == 502
    m = next(m for m in msgs if m.key() == b"key3")
    assert m.headers() == [("source", b"cli"), ("n", b"1")]
    assert m.value().startswith(b"value ")

    j = [json.loads(l) for l in cli(bootstrap, "consume", topic, "-p", "2", "--from-beginning", "--exit",
                                     "--format", "json").stdout.splitlines()]
    assert j and all(r["partition"] == 2 and r["topic"] == topic for r in j)
    assert j[-1]["key"] == "single" and j[-1]["value"] == "one value" and j[-1]["headers"] == {}
    assert [r["offset"] for r in j] == list(range(len(j)))


def test_consume_positions_and_limits(bootstrap):
    topic = unique("cli-pos")
    compat.create_topic(bootstrap, topic, 1)
    before = int(time.time() * 1000)
    cli(bootstrap, "produce", topic, input="".join(f"v{i}\n" for i in range(10)))
    v = lambda *a: cli(bootstrap, "consume", topic, *a).stdout.split()
    assert v("--from-beginning", "-n", "3") == ["v0", "v1", "v2"]
    assert v("--offset", "5", "-n", "3") == ["v5", "v6", "v7"]
    assert v("--offset", "-2", "--exit") == ["v8", "v9"]
    assert v("--timestamp", str(before - 60_000), "--exit") == [f"v{i}" for i in range(10)]
    assert v("--timestamp", str(int(time.time() * 1000) + 3_600_000), "--exit") == []
    assert v("--exit") == []
    assert v("--from-beginning", "--exit", "-f", "%o:%v%%\\n") == [f"{i}:v{i}%" for i in range(10)]
    # acks=0 still lands.
    cli(bootstrap, "produce", topic, "--acks", "0", "--value", "fire-and-forget")
    wait_until("acks=0 record visible", lambda: "fire-and-forget" in v("--offset", "10", "--exit"))
    cp = cli(bootstrap, "consume", topic, "-f", "%q", "--exit", check=False)
    assert cp.returncode == 2 and "unknown format token" in cp.stderr
    cp = cli(bootstrap, "consume", unique("cli-nope"), "--exit", check=False)
    assert cp.returncode == 1 and "UNKNOWN_TOPIC_OR_PARTITION (3)" in cp.stderr, cp.stderr


def stock_group_rows(bootstrap, group, topic):
    """(partition, current offset, log end offset) rows of kafka-consumer-groups --describe."""
    out = kafka_tool(CONSUMER_GROUPS, "--bootstrap-server", bootstrap, "--describe", "--group", group).stdout
    rows = [l.split() for l in out.splitlines()]
    return sorted((int(r[2]), r[3], r[4]) for r in rows if len(r) >= 6 and r[0] == group and r[1] == topic)


def test_group_commit_describe_reset_delete(bootstrap):
    topic, group = unique("cli-grp"), unique("cli-group")
    compat.create_topic(bootstrap, topic, 2)
    cli(bootstrap, "produce", topic, "--key-separator", ":", input="".join(f"k{i}:v{i}\n" for i in range(40)))
    first = cli(bootstrap, "consume", topic, "--group", group, "--from-beginning", "-n", "40").stdout.split()
    assert sorted(first) == sorted(f"v{i}" for i in range(40))
    # Committed: a second run with the group starts where the first ended.
    assert cli(bootstrap, "consume", topic, "--group", group, "--exit").stdout == ""

    ends = {p: e for p, _, e in stock_group_rows(bootstrap, group, topic)}
    assert sorted(ends) == [0, 1] and sum(int(e) for e in ends.values()) == 40
    assert all(c == e for _, c, e in stock_group_rows(bootstrap, group, topic))

    desc = cli(bootstrap, "group", "describe", group).stdout
    assert "STATE: Empty" in desc, desc
    rows = [l.split() for l in desc.splitlines() if l.startswith(topic)]
    assert [(r[1], r[2] == r[3], r[4]) for r in rows] == [("0", True, "0"), ("1", True, "0")], desc
    d = cli_json(bootstrap, "group", "describe", group)
    assert sum(o["lag"] for o in d["offsets"]) == 0 and d["members"] == []
    assert group in [g["group"] for g in cli_json(bootstrap, "group", "list")]
    assert re.search(rf"^{re.escape(group)}\s", cli(bootstrap, "group", "list").stdout, re.M)

    # Dry run by default: the plan, nothing committed.
    plan = cli(bootstrap, "group", "reset-offsets", group, "--topic", topic, "--to-earliest").stdout
    assert re.search(rf"^{re.escape(group)}\s+{re.escape(topic)}\s+0\s+0$", plan, re.M), plan
    assert "dry run" in plan
    assert all(c == e for _, c, e in stock_group_rows(bootstrap, group, topic))
    cli(bootstrap, "group", "reset-offsets", group, "--topic", topic, "--to-earliest", "--execute")
    assert [(p, c) for p, c, _ in stock_group_rows(bootstrap, group, topic)] == [(0, "0"), (1, "0")]
    cli(bootstrap, "group", "reset-offsets", group, "--topic", topic, "--to-offset", "3", "--execute")
    assert [(p, c) for p, c, _ in stock_group_rows(bootstrap, group, topic)] == [(0, "3"), (1, "3")]
    cli(bootstrap, "group", "reset-offsets", group, "--topic", topic, "--to-latest", "--execute")
    assert all(c == e for _, c, e in stock_group_rows(bootstrap, group, topic))
    cli(bootstrap, "group", "reset-offsets", group, "--topic", topic, "--to-datetime", "2000-01-01T00:00:00Z", "--execute")
    assert [(p, c) for p, c, _ in stock_group_rows(bootstrap, group, topic)] == [(0, "0"), (1, "0")]
    # The stock tool's reset is seen by the CLI.
    kafka_tool(CONSUMER_GROUPS, "--bootstrap-server", bootstrap, "--reset-offsets", "--group", group,
               "--topic", topic, "--to-offset", "5", "--execute")
    d = cli_json(bootstrap, "group", "describe", group)
    assert [o["committed_offset"] for o in d["offsets"]] == [5, 5]

    assert cli(bootstrap, "group", "delete", group).stdout == f"Deleted group {group}.\n"
    listed = kafka_tool(CONSUMER_GROUPS, "--bootstrap-server", bootstrap, "--list").stdout.split()
    assert group not in listed
    cp = cli(bootstrap, "group", "describe", group, check=False)
    assert cp.returncode == 1 and "GROUP_ID_NOT_FOUND (69)" in cp.stderr, cp.stderr
    cp = cli(bootstrap, "group", "delete", group, check=False)
    assert cp.returncode == 1 and "GROUP_ID_NOT_FOUND (69)" in cp.stderr, cp.stderr


def test_group_reset_refuses_an_active_group(bootstrap):
    from confluent_kafka import Consumer
    topic, group = unique("cli-active"), unique("cli-active-group")
    compat.create_topic(bootstrap, topic, 1)
    cli(bootstrap, "produce", topic, "--value", "x")
    c = Consumer({"bootstrap.servers": bootstrap, "group.id": group, "auto.offset.reset": "earliest",
                  "session.timeout.ms": 10000})
    try:
        c.subscribe([topic])
        assert compat.poll_messages(c, 1, timeout=30)
        cp = cli(bootstrap, "group", "reset-offsets", group, "--topic", topic, "--to-earliest", "--execute", check=False)
        assert cp.returncode == 1, cp.stdout
        assert "NON_EMPTY_GROUP (68)" in cp.stderr and "inactive" in cp.stderr, cp.stderr
        desc = cli_json(bootstrap, "group", "describe", group)
        assert desc["state"] == "Stable" and len(desc["members"]) == 1, desc
    finally:
        c.close()


def test_produce_many_lines(bootstrap):
    """100,000 lines from stdin in one run, all readable."""
    topic = unique("cli-many")
    compat.create_topic(bootstrap, topic, 3)
    data = "".join(f"line-{i:06d}\n" for i in range(100_000))
    t0 = time.monotonic()
    cli(bootstrap, "produce", topic, input=data, timeout=120)
    took = time.monotonic() - t0
    out = cli(bootstrap, "consume", topic, "--from-beginning", "--exit", "-f", "%v\\n", timeout=120).stdout.split()
    assert len(out) == 100_000 and len(set(out)) == 100_000
    assert took < 30, took


@pytest.mark.parametrize("codec", ["none", "gzip", "snappy", "lz4"])
def test_compression_round_trip(bootstrap, codec):
    """Batches the CLI compresses are read by the CLI, librdkafka and the
    Java console consumer; batches librdkafka compresses are read by the CLI."""
    from confluent_kafka import Producer
    topic = unique(f"cli-{codec}")
    compat.create_topic(bootstrap, topic, 1)
    lines = [f"k{i % 5}\tvalue {i} " + "x" * (i % 50) for i in range(2000)]
    cli(bootstrap, "produce", topic, "--compression", codec, "--key-separator", "\t", "-H", "codec=" + codec,
        input="\n".join(lines) + "\n")
    got = cli(bootstrap, "consume", topic, "--from-beginning", "--exit", "-f", "%k\t%v\t%h\n").stdout.splitlines()
    assert got == [f"{l}\tcodec={codec}" for l in lines]
    msgs = compat.consume_all(bootstrap, topic, 2000)
    assert [m.value().decode() for m in msgs] == [l.split("\t", 1)[1] for l in lines]
    assert msgs[7].headers() == [("codec", codec.encode())]
    java = kafka_tool(compat.CONSOLE_CONSUMER, "--bootstrap-server", bootstrap, "--topic", topic,
                      "--from-beginning", "--max-messages", "2000", "--timeout-ms", "20000", timeout=90, check=False)
    assert java.stdout.splitlines() == [l.split("\t", 1)[1] for l in lines], java.stderr[-2000:]

    p = Producer({"bootstrap.servers": bootstrap, "compression.type": codec, "linger.ms": 20})
    for i in range(300):
        p.produce(topic, key=f"r{i}", value=f"from librdkafka {i}", headers=[("by", b"rdkafka")])
    assert p.flush(30) == 0
    theirs = cli(bootstrap, "consume", topic, "--offset", "2000", "--exit", "-f", "%k=%v;%h\n").stdout.splitlines()
    assert theirs == [f"r{i}=from librdkafka {i};by=rdkafka" for i in range(300)]


def test_broker_modes_are_unchanged(bootstrap):
    """The client subcommands sit beside the broker's own: healthcheck and
    --print-config still do what they did (and do not start a broker)."""
    cp = compat.run([compat.klamm_binary(), "healthcheck", "--bootstrap", bootstrap], timeout=20)
    assert cp.stdout == f"ok: {bootstrap}\n"
    cp = compat.run([compat.klamm_binary(), "--durable", "--print-config"], timeout=20)
    assert '"log.flush.interval.messages" = 1' in cp.stdout
    help_text = compat.run([compat.klamm_binary(), "--help"], timeout=20).stdout
    for cmd in ("healthcheck", "topic", "produce", "consume", "group", "cluster"):
        assert re.search(rf"^\s+{cmd}\s", help_text, re.M), help_text


def test_consume_reads_zstd(bootstrap):
    """zstd batches (librdkafka's) are read; the CLI does not write zstd yet."""
    from confluent_kafka import Producer
    topic = unique("cli-zstd")
    compat.create_topic(bootstrap, topic, 1)
    p = Producer({"bootstrap.servers": bootstrap, "compression.type": "zstd", "linger.ms": 20})
    for i in range(500):
        p.produce(topic, key=f"z{i}", value=f"zstd value {i} " + "y" * (i % 40), headers=[("c", b"zstd")])
    assert p.flush(30) == 0
    got = cli(bootstrap, "consume", topic, "--from-beginning", "--exit", "-f", "%k=%v;%h\\n").stdout.splitlines()
    assert got == [f"z{i}=zstd value {i} " + "y" * (i % 40) + ";c=zstd" for i in range(500)]
    cp = cli(bootstrap, "produce", topic, "--compression", "zstd", "--value", "x", check=False)
    assert cp.returncode == 2 and "lz4" in cp.stderr, cp.stderr
