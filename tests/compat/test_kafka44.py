"""Kafka 4.4.0's stock tools (and so its Java admin, producer and consumer
clients) against the broker under test: kafka-topics, the console producer
and consumer, kafka-consumer-groups, kafka-configs, kafka-get-offsets,
kafka-log-dirs, kafka-features, kafka-transactions and
kafka-broker-api-versions, whatever KLAMM_COMPAT_KAFKA_VERSION says
(`kafka44_tool` runs .deps/kafka-libs-4.4). Where the output is
deterministic the lines are compared with what Kafka 4.4.0 prints; every
test passes against klamm and against the reference Kafka 4.4.0
(KLAMM_COMPAT_BROKER=kafka KLAMM_COMPAT_KAFKA_VERSION=4.4).

DescribeTopicPartitions (key 75), which kafka-topics --describe of 4.1
and 4.4 uses when advertised, is checked through both tools and on the
wire (a topic larger than the response's partition limit is paged by the
cursor)."""

from __future__ import annotations

import json
import re
from collections import defaultdict

import pytest

import compat
import kafkawire
from compat import CONSOLE_CONSUMER, CONSOLE_PRODUCER, CONSUMER_GROUPS, TOPICS
from kafkawire import compact_string, i32, uvarint

if compat.BROKER_KIND == "kafka" and compat.KAFKA_VERSION != "4.4":
    pytest.skip("compares with Kafka 4.4.0: run against the reference with KLAMM_COMPAT_KAFKA_VERSION=4.4",
                allow_module_level=True)

CONFIGS = compat.CONFIGS_BY_VERSION["4.4"]
GET_OFFSETS = "org.apache.kafka.tools.GetOffsetShell"
LOG_DIRS = "org.apache.kafka.tools.LogDirsCommand"
FEATURES = "org.apache.kafka.tools.FeatureCommand"
TRANSACTIONS = "org.apache.kafka.tools.TransactionsCommand"
BROKER_API_VERSIONS = "org.apache.kafka.tools.BrokerApiVersionsCommand"

DESCRIBE_TOPIC_PARTITIONS = 75

# What kafka-broker-api-versions (4.4.0) prints for Kafka 4.4.0 on one
# node, for the APIs klamm implements: (min, max).
KAFKA_44_VERSIONS = {
    "Produce": (0, 13), "Fetch": (4, 18), "ListOffsets": (1, 11), "Metadata": (0, 13),
    "OffsetCommit": (2, 10), "OffsetFetch": (1, 10), "FindCoordinator": (0, 6), "JoinGroup": (0, 9),
    "Heartbeat": (0, 4), "LeaveGroup": (0, 5), "SyncGroup": (0, 5), "DescribeGroups": (0, 6),
    "ListGroups": (0, 5), "SaslHandshake": (0, 1), "ApiVersions": (0, 5), "CreateTopics": (2, 7),
    "DeleteTopics": (1, 6), "DeleteRecords": (0, 2), "InitProducerId": (0, 5),
    "OffsetForLeaderEpoch": (2, 4), "AddPartitionsToTxn": (0, 5), "AddOffsetsToTxn": (0, 4),
    "EndTxn": (0, 5), "WriteTxnMarkers": (1, 2), "TxnOffsetCommit": (0, 6), "DescribeAcls": (1, 3),
    "CreateAcls": (1, 3), "DeleteAcls": (1, 3),
    "DescribeConfigs": (1, 4), "AlterConfigs": (0, 2), "DescribeLogDirs": (1, 5),
    "SaslAuthenticate": (0, 2), "CreatePartitions": (0, 3), "DeleteGroups": (0, 3),
    "IncrementalAlterConfigs": (0, 1), "OffsetDelete": (0, 0), "DescribeUserScramCredentials": (0, 0),
    "AlterUserScramCredentials": (0, 0), "DescribeCluster": (0, 2), "DescribeProducers": (0, 0),
    "DescribeTransactions": (0, 0), "ListTransactions": (0, 2), "ConsumerGroupHeartbeat": (0, 1),
    "ConsumerGroupDescribe": (0, 1), "DescribeTopicPartitions": (0, 0), "ListConfigResources": (0, 1),
}

# APIs klamm serves below Kafka 4.4's newest version, with the range it
# serves: listed so that closing a gap must update this test (none left).
KLAMM_BEHIND: dict[str, tuple[int, int]] = {}


@pytest.fixture
def tool(kafka44_tool, bootstrap):
    """`tool(MAIN_CLASS, *args)`: a Kafka 4.4 tool with --bootstrap-server."""
    def run(main_class, *args, **kw):
        return kafka44_tool(main_class, "--bootstrap-server", bootstrap, *args, **kw)
    return run


def create(tool, topic, partitions):
    out = tool(TOPICS, "--create", "--topic", topic, "--partitions", str(partitions),
               "--replication-factor", "1").stdout
    assert out.strip() == f"Created topic {topic}.", out


def produce_keyed(tool, topic, n):
    """n records keyK:valueI (7 keys round robin) through the 4.4 console
    producer; returns the (key, value) pairs in produced order."""
    pairs = [(f"key{i % 7}", f"value{i}") for i in range(n)]
    tool(CONSOLE_PRODUCER, "--topic", topic, "--reader-property", "parse.key=true",
         "--reader-property", "key.separator=:", "--command-property", "acks=all", input="".join(f"{k}:{v}\n" for k, v in pairs), timeout=90)
    return pairs


def consume(tool, topic, n, *extra):
    cp = tool(CONSOLE_CONSUMER, "--topic", topic, "--from-beginning", "--formatter-property", "print.key=true",
              "--formatter-property", "key.separator=:", "--max-messages", str(n), "--timeout-ms", "15000", *extra,
              timeout=90, check=False)
    assert f"Processed a total of {n} messages" in cp.stderr, cp.stderr[-3000:]
    return [tuple(line.split(":", 1)) for line in cp.stdout.splitlines() if line.strip()]


def partition_lines(desc: str, topic: str) -> list[str]:
    return [line for line in desc.splitlines() if line.startswith(f"\tTopic: {topic}\tPartition: ")]


def expected_partition_lines(topic: str, partitions: int) -> list[str]:
    # Kafka 4.4 on one node (ELR enabled, so both ELR lists are printed, empty).
    return [f"\tTopic: {topic}\tPartition: {p}\tLeader: 1\tReplicas: 1\tIsr: 1\tElr: \tLastKnownElr: "
            for p in range(partitions)]


def test_broker_api_versions_are_kafka_44s(tool):
    """kafka-broker-api-versions lists every API klamm implements at Kafka
    4.4.0's versions (usable: the tool's newest), but for KLAMM_BEHIND."""
    out = tool(BROKER_API_VERSIONS).stdout
    listed = {}
    for name, lo, hi, usable in re.findall(r"\t(\w+)\(\d+\): (\d+)(?: to (\d+))? \[usable: (\d+)\]", out):
        listed[name] = (int(lo), int(hi or lo))
        assert int(usable) == listed[name][1], f"{name}: the 4.4 tool uses v{usable}"
    assert listed, out
    if compat.BROKER_KIND == "kafka":
        want = KAFKA_44_VERSIONS
    else:
        want = {**KAFKA_44_VERSIONS, **KLAMM_BEHIND}
        unknown = set(listed) - set(want)
        assert not unknown, f"klamm advertises APIs this test does not know: {unknown}"
        # The consumer-group protocol APIs are listed only when enabled.
        want = {k: v for k, v in want.items() if k in listed or k not in ("ConsumerGroupHeartbeat",
                                                                          "ConsumerGroupDescribe")}
    assert {k: listed.get(k) for k in want} == want


def test_topics_create_list_describe_delete(tool, kafka44_tool, bootstrap):
    """kafka-topics --create/--list/--describe/--delete; --describe (4.4
    and 4.1 tools, DescribeTopicPartitions) prints Kafka 4.4's lines."""
    topic = compat.unique("k44-topics")
    create(tool, topic, 3)
    assert topic in tool(TOPICS, "--list").stdout.split()
    for describe in (lambda *a: tool(TOPICS, *a),
                     lambda *a: compat.kafka_tool(TOPICS, "--bootstrap-server", bootstrap, *a, version="4.1")):
        desc = describe("--describe", "--topic", topic).stdout
        head = desc.splitlines()[0]
        assert re.fullmatch(rf"Topic: {re.escape(topic)}\tTopicId: [A-Za-z0-9_-]{{22}}\tPartitionCount: 3\t"
                            r"ReplicationFactor: 1\tConfigs: .*", head), desc
        assert partition_lines(desc, topic) == expected_partition_lines(topic, 3), desc
    missing = compat.unique("k44-missing")
    cp = tool(TOPICS, "--describe", "--topic", missing, check=False)
    assert cp.returncode != 0 and f"Topic '{missing}' does not exist as expected" in cp.stderr, cp.stderr[-2000:]
    tool(TOPICS, "--delete", "--topic", topic)
    assert topic not in tool(TOPICS, "--list").stdout.split()


def test_describe_is_paged_by_the_cursor(tool, bootstrap):
    """A topic with more partitions than the per-response limit: the tools
    (4.4 and 4.1) follow the cursor and print every partition once, in
    order; on the wire each page holds at most the limit and names the
    next partition."""
    topic, other = compat.unique("k44-paged-a"), compat.unique("k44-paged-b")
    create(tool, topic, 5)
    create(tool, other, 1)
    for version in ("4.4", "4.1"):
        desc = compat.kafka_tool(TOPICS, "--bootstrap-server", bootstrap, "--describe", "--topic", topic,
                                 "--partition-size-limit-per-response", "2", version=version).stdout
        assert partition_lines(desc, topic) == expected_partition_lines(topic, 5), (version, desc)

    names = [topic, other]
    assert describe_topic_partitions(bootstrap, names, 2, None) == ([(topic, 0, [0, 1])], (topic, 2))
    assert describe_topic_partitions(bootstrap, names, 2, (topic, 2)) == ([(topic, 0, [2, 3])], (topic, 4))
    # The limit reached at a topic's end: the next topic from partition 0
    # (names are sorted; "-a-" sorts before "-b-").
    assert describe_topic_partitions(bootstrap, names, 1, (topic, 4)) == ([(topic, 0, [4])], (other, 0))
    assert describe_topic_partitions(bootstrap, names, 10, (other, 0)) == ([(other, 0, [0])], None)
    # A cursor on a topic that was not asked for is an invalid request.
    missing = compat.unique("k44-paged-missing")
    assert describe_topic_partitions(bootstrap, [topic], 10, (missing, 0)) == ([(topic, 42, [])], None)
    # An unknown topic: UNKNOWN_TOPIC_OR_PARTITION, no partitions.
    assert describe_topic_partitions(bootstrap, [missing], 10, None) == ([(missing, 3, [])], None)


def test_console_producer_consumer_with_keys(tool):
    topic = compat.unique("k44-console")
    create(tool, topic, 3)
    produced = produce_keyed(tool, topic, 42)
    got = consume(tool, topic, 42)
    want, seen = defaultdict(list), defaultdict(list)
    for k, v in produced:
        want[k].append(v)
    for k, v in got:
        seen[k].append(v)
    assert dict(seen) == dict(want)


def test_consumer_groups_describe_reset_and_delete(tool):
    """(The 4.4 consumer commits and fetches with OffsetCommit/OffsetFetch
    v10, by topic id.) A group that consumed everything: lag 0 in --describe; after
    --reset-offsets --to-earliest --execute, the lag is the log end; an
    unknown group cannot be deleted (DeleteGroups v3's message)."""
    topic, group = compat.unique("k44-groups"), compat.unique("k44-group")
    create(tool, topic, 2)
    produce_keyed(tool, topic, 20)
    consume(tool, topic, 20, "--group", group)

    def describe():
        out = tool(CONSUMER_GROUPS, "--describe", "--group", group).stdout
        rows = {}
        for line in out.splitlines():
            cols = line.split()
            if len(cols) >= 6 and cols[0] == group and cols[1] == topic:
                rows[int(cols[2])] = (int(cols[3]), int(cols[4]), int(cols[5]))
        return rows, out

    rows, out = describe()
    assert set(rows) == {0, 1} and sum(r[1] for r in rows.values()) == 20, out
    assert all(cur == end and lag == 0 for cur, end, lag in rows.values()), out

    out = tool(CONSUMER_GROUPS, "--reset-offsets", "--group", group, "--topic", topic, "--to-earliest",
               "--execute").stdout
    reset = sorted(re.findall(rf"{re.escape(group)}\s+{re.escape(topic)}\s+(\d+)\s+(\d+)", out))
    assert reset == [("0", "0"), ("1", "0")], out
    rows, out = describe()
    assert all(cur == 0 and lag == end for cur, end, lag in rows.values()), out

    missing = compat.unique("k44-no-group")
    cp = tool(CONSUMER_GROUPS, "--delete", "--group", missing, check=False)
    assert (f"* Group '{missing}' could not be deleted due to: "
            "org.apache.kafka.common.errors.GroupIdNotFoundException: The group id does not exist.") in cp.stdout, \
        cp.stdout + cp.stderr[-2000:]


def test_configs_describe_alter(tool):
    topic = compat.unique("k44-configs")
    create(tool, topic, 1)
    entity = ("--entity-type", "topics", "--entity-name", topic)
    out = tool(CONFIGS, *entity, "--alter", "--add-config", "retention.ms=123456,cleanup.policy=compact").stdout
    assert out.strip() == f"Completed updating config for topic {topic}.", out
    out = tool(CONFIGS, *entity, "--describe").stdout
    lines = out.splitlines()
    assert lines[0] == f"Dynamic configs for topic {topic} are:", out
    assert "  retention.ms=123456 sensitive=false synonyms={DYNAMIC_TOPIC_CONFIG:retention.ms=123456}" in lines, out
    assert ("  cleanup.policy=compact sensitive=false synonyms={DYNAMIC_TOPIC_CONFIG:cleanup.policy=compact, "
            "DEFAULT_CONFIG:log.cleanup.policy=delete}") in lines, out
    tool(CONFIGS, *entity, "--alter", "--delete-config", "retention.ms")
    out = tool(CONFIGS, *entity, "--describe").stdout
    assert "retention.ms=" not in out and "cleanup.policy=compact" in out, out


def test_get_offsets_for_every_special_time(tool):
    """kafka-get-offsets --time -1..-6: latest, earliest, max timestamp
    (only partitions with records), earliest local, and latest tiered /
    earliest pending upload (nothing is tiered: no line), as Kafka 4.4."""
    topic = compat.unique("k44-offsets")
    create(tool, topic, 3)
    produced = produce_keyed(tool, topic, 5)  # 5 keys: some partition may stay empty

    def offsets(time):
        out = tool(GET_OFFSETS, "--topic", topic, "--time", str(time)).stdout
        return {int(p): int(o) for p, o in re.findall(rf"^{re.escape(topic)}:(\d+):(\d+)$", out, re.M)}, out

    latest, out = offsets(-1)
    assert set(latest) == {0, 1, 2} and sum(latest.values()) == len(produced), out
    for time in (-2, -4):
        got, out = offsets(time)
        assert got == {0: 0, 1: 0, 2: 0}, (time, out)
    got, out = offsets(-3)
    assert set(got) == {p for p, end in latest.items() if end > 0}, out
    assert all(0 <= o < latest[p] for p, o in got.items()), out
    for time in (-5, -6):
        got, out = offsets(time)
        assert out.strip() == "", (time, out)


def test_log_dirs_describe(tool):
    topic = compat.unique("k44-log-dirs")
    create(tool, topic, 2)
    produce_keyed(tool, topic, 10)
    out = tool(LOG_DIRS, "--describe", "--topic-list", topic).stdout
    lines = out.splitlines()
    assert lines[:2] == ["Querying brokers for log directories information",
                         "Received log directory information from brokers 1"], out
    doc = json.loads(lines[2])
    assert doc["version"] == 1 and [b["broker"] for b in doc["brokers"]] == [1], out
    (log_dir,) = doc["brokers"][0]["logDirs"]
    assert log_dir["error"] is None, out
    parts = {p["partition"]: p for p in log_dir["partitions"]}
    assert set(parts) == {f"{topic}-0", f"{topic}-1"}, out
    assert sum(p["size"] for p in parts.values()) > 0, out
    assert all(p["offsetLag"] == 0 and p["isFuture"] is False for p in parts.values()), out


def test_features_describe(tool):
    """kafka-features describe: transaction.version 0..2 finalized at 2
    and group.version 0..1, each on Kafka 4.4's line format."""
    out = tool(FEATURES, "describe").stdout
    features = {}
    for line in out.splitlines():
        m = re.fullmatch(r"Feature: (\S+)\s+SupportedMinVersion: (\S+)\s+SupportedMaxVersion: (\S+)\s+"
                         r"FinalizedVersionLevel: (\S+)\s+Epoch: (\d+)", line.strip())
        assert m, line
        features[m[1]] = m.groups()[1:4]
    assert features["transaction.version"] == ("0", "2", "2"), out
    assert features["group.version"][:2] == ("0", "1"), out


def test_transactions_list(tool):
    out = tool(TRANSACTIONS, "list").stdout
    assert out.splitlines()[0].split() == ["TransactionalId", "Coordinator", "ProducerId", "TransactionState"], out


def test_streams_exactly_once_on_the_44_client(broker_factory):
    """Kafka Streams (exactly_once_v2) on Kafka 4.4's kafka-clients: its
    transactional offset commits use TxnOffsetCommit 6 (topics by id)
    where the broker has it; the counts are exactly 1..n per key."""
    import collections
    import tempfile

    from test_eos_apps import check_counts, produce

    b = broker_factory({"auto.create.topics.enable": "false"})
    src, out = compat.unique("k44-streams-in"), compat.unique("k44-streams-out")
    compat.create_topic(b.bootstrap, src, 2)
    compat.create_topic(b.bootstrap, out, 2)
    batch = [(f"key{k}", "x") for _ in range(5) for k in range(10)]
    produce(b.bootstrap, src, batch)
    sent = collections.Counter(k for k, _ in batch)
    args = (b.bootstrap, compat.unique("k44-streams"), src, out, tempfile.mkdtemp(prefix="streams-state-"))
    with compat.JavaApp("streams-count", *args, "exactly_once_v2", kafka_clients="4.4") as app:
        app.wait_for("STATE RUNNING", 120)
        check_counts(b.bootstrap, out, sent)


# ---------------------------------------------------------------------------
# DescribeTopicPartitions v0 on the wire.

class Flexible(kafkawire.Reader):
    def uvarint(self):
        shift = value = 0
        while True:
            b = self.take(1)[0]
            value |= (b & 0x7F) << shift
            if not b & 0x80:
                return value
            shift += 7

    def compact_len(self):
        return self.uvarint() - 1

    def compact_string(self):
        n = self.compact_len()
        return None if n < 0 else self.take(n).decode()

    def no_tags(self):
        for _ in range(self.uvarint()):
            self.uvarint()
            self.take(self.uvarint())

    def i32_array(self):
        n = self.compact_len()
        return None if n < 0 else [self.i32() for _ in range(n)]


def describe_topic_partitions(bootstrap, names, limit, cursor):
    """One DescribeTopicPartitions v0: ([(topic, error, [partition...])],
    next cursor or None)."""
    body = uvarint(len(names) + 1) + b"".join(compact_string(n) + uvarint(0) for n in names) + i32(limit)
    if cursor is None:
        body += b"\xff"
    else:
        body += b"\x01" + compact_string(cursor[0]) + i32(cursor[1]) + uvarint(0)
    body += uvarint(0)
    host, port = bootstrap.rsplit(":", 1)
    with kafkawire.Connection(host, int(port), timeout=20) as c:
        raw = c.request(DESCRIBE_TOPIC_PARTITIONS, 0, body, header_version=2, response_header_version=1)
    r = Flexible(raw.data)
    r.pos = raw.pos
    r.i32()  # throttle
    topics = []
    for _ in range(r.compact_len()):
        error, name = r.i16(), r.compact_string()
        r.take(16 + 1)  # topic id, is_internal
        partitions = []
        for _ in range(r.compact_len()):
            p_error, index = r.i16(), r.i32()
            leader, _epoch = r.i32(), r.i32()
            replicas, isr, elr, last_elr, offline = (r.i32_array() for _ in range(5))
            assert (p_error, leader, replicas, isr, offline) == (0, 1, [1], [1], []), (name, index)
            assert elr in ([], None) and last_elr in ([], None)
            r.no_tags()
            partitions.append(index)
        r.i32()  # authorized operations
        r.no_tags()
        topics.append((name, error, partitions))
    next_cursor = None
    if r.i8() == 1:
        next_cursor = (r.compact_string(), r.i32())
        r.no_tags()
    r.no_tags()
    assert r.remaining() == 0
    return topics, next_cursor
