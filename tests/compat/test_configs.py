"""Config APIs (DescribeConfigs, AlterConfigs, IncrementalAlterConfigs and
the configs CreateTopics returns) with real clients: the stock Kafka 4.1
kafka-topics / kafka-configs tools and confluent-kafka's AdminClient.

The expected texts were captured from Apache Kafka 4.1.2 (run this file
with KLAMM_COMPAT_BROKER=kafka to check them again). One known difference
is left out of the assertions: Kafka 4.x formats its storage with a
cluster-wide dynamic default `min.insync.replicas=1`, which Kafka lists
under "Default configs for brokers" and in kafka-topics' Configs line;
klamm has no dynamic broker configs.
"""

from __future__ import annotations

import re

import pytest
from confluent_kafka import KafkaException
from confluent_kafka.admin import (AlterConfigOpType, ConfigEntry, ConfigResource, NewTopic,
                                   ResourceType)

import compat
from compat import CONFIGS, TOPICS, kafka_tool

DYNAMIC_TOPIC_CONFIG = 1
STATIC_BROKER_CONFIG = 4
DEFAULT_CONFIG = 5

# Every topic config Kafka 4.1 lists for `kafka-configs --describe --all`.
KAFKA_TOPIC_CONFIG_NAMES = {
    "cleanup.policy", "compression.gzip.level", "compression.lz4.level", "compression.type",
    "compression.zstd.level", "delete.retention.ms", "file.delete.delay.ms", "flush.messages",
    "flush.ms", "follower.replication.throttled.replicas", "index.interval.bytes",
    "leader.replication.throttled.replicas", "local.retention.bytes", "local.retention.ms",
    "max.compaction.lag.ms", "max.message.bytes", "message.timestamp.after.max.ms",
    "message.timestamp.before.max.ms", "message.timestamp.type", "min.cleanable.dirty.ratio",
    "min.compaction.lag.ms", "min.insync.replicas", "preallocate", "remote.log.copy.disable",
    "remote.log.delete.on.disable", "remote.storage.enable", "retention.bytes", "retention.ms",
    "segment.bytes", "segment.index.bytes", "segment.jitter.ms", "segment.ms",
    "unclean.leader.election.enable",
}


def configs_tool(bootstrap, *args, check=True):
    return kafka_tool(CONFIGS, "--bootstrap-server", bootstrap, *args, check=check)


def entry_lines(out: str) -> set[str]:
    """The `  name=value sensitive=... synonyms={...}` lines of kafka-configs."""
    return {line.strip() for line in out.splitlines() if line.startswith("  ")}


def describe(bootstrap, rtype, name) -> dict:
    a = compat.admin(bootstrap)
    r = ConfigResource(rtype, name)
    return a.describe_configs([r])[r].result(timeout=30)


def incremental(bootstrap, topic, entries, validate_only=False):
    a = compat.admin(bootstrap)
    r = ConfigResource(ResourceType.TOPIC, topic, incremental_configs=entries)
    return a.incremental_alter_configs([r], validate_only=validate_only)[r].result(timeout=30)


def op(name, value, kind):
    return ConfigEntry(name, value, incremental_operation=kind)


def kafka_error(excinfo):
    err = excinfo.value.args[0]
    return err.name(), err.str()


def test_topic_configs_with_stock_tools(bootstrap):
    """kafka-topics --create --config / --describe and kafka-configs
    --describe (dynamic and --all) / --alter --add-config --delete-config
    print what Kafka prints."""
    topic = compat.unique("cfg-tools")
    kafka_tool(TOPICS, "--bootstrap-server", bootstrap, "--create", "--topic", topic,
               "--partitions", "2", "--config", "retention.ms=1000",
               "--config", "cleanup.policy=compact,delete")
    desc = kafka_tool(TOPICS, "--bootstrap-server", bootstrap, "--describe", "--topic", topic).stdout
    m = re.search(r"Configs: (.*)", desc)
    assert m, desc
    # Non-default configs: the overrides and the static broker setting.
    for item in ("cleanup.policy=compact,delete", "retention.ms=1000", "max.message.bytes=1048588"):
        assert item in m.group(1), desc
    assert "segment.bytes" not in m.group(1), desc

    out = configs_tool(bootstrap, "--describe", "--entity-type", "topics", "--entity-name", topic).stdout
    assert out.splitlines()[0] == f"Dynamic configs for topic {topic} are:", out
    assert entry_lines(out) == {
        "cleanup.policy=compact,delete sensitive=false synonyms={DYNAMIC_TOPIC_CONFIG:cleanup.policy=compact,delete, DEFAULT_CONFIG:log.cleanup.policy=delete}",
        "retention.ms=1000 sensitive=false synonyms={DYNAMIC_TOPIC_CONFIG:retention.ms=1000}",
    }, out

    out = configs_tool(bootstrap, "--alter", "--entity-type", "topics", "--entity-name", topic,
                       "--add-config", "segment.ms=100000,max.message.bytes=2000",
                       "--delete-config", "retention.ms").stdout
    assert f"Completed updating config for topic {topic}." in out, out
    out = configs_tool(bootstrap, "--describe", "--entity-type", "topics", "--entity-name", topic).stdout
    assert entry_lines(out) == {
        "cleanup.policy=compact,delete sensitive=false synonyms={DYNAMIC_TOPIC_CONFIG:cleanup.policy=compact,delete, DEFAULT_CONFIG:log.cleanup.policy=delete}",
        "max.message.bytes=2000 sensitive=false synonyms={DYNAMIC_TOPIC_CONFIG:max.message.bytes=2000, STATIC_BROKER_CONFIG:message.max.bytes=1048588, DEFAULT_CONFIG:message.max.bytes=1048588}",
        "segment.ms=100000 sensitive=false synonyms={DYNAMIC_TOPIC_CONFIG:segment.ms=100000}",
    }, out

    out = configs_tool(bootstrap, "--describe", "--all", "--entity-type", "topics", "--entity-name", topic).stdout
    assert out.splitlines()[0] == f"All configs for topic {topic} are:", out
    lines = entry_lines(out)
    assert {line.split("=", 1)[0] for line in lines} == KAFKA_TOPIC_CONFIG_NAMES, out
    for expected in (
        "segment.bytes=1073741824 sensitive=false synonyms={DEFAULT_CONFIG:log.segment.bytes=1073741824}",
        "retention.ms=604800000 sensitive=false synonyms={}",
        "flush.ms=9223372036854775807 sensitive=false synonyms={}",
        "flush.messages=9223372036854775807 sensitive=false synonyms={DEFAULT_CONFIG:log.flush.interval.messages=9223372036854775807}",
        "local.retention.ms=-2 sensitive=false synonyms={DEFAULT_CONFIG:log.local.retention.ms=-2}",
        "remote.storage.enable=false sensitive=false synonyms={}",
        "follower.replication.throttled.replicas= sensitive=false synonyms={}",
        "min.cleanable.dirty.ratio=0.5 sensitive=false synonyms={DEFAULT_CONFIG:log.cleaner.min.cleanable.ratio=0.5}",
        "compression.type=producer sensitive=false synonyms={DEFAULT_CONFIG:compression.type=producer}",
        "segment.ms=100000 sensitive=false synonyms={DYNAMIC_TOPIC_CONFIG:segment.ms=100000}",
    ):
        assert expected in lines, f"{expected!r} missing in\n{out}"


def test_config_errors_with_stock_tools(bootstrap):
    """Bad names and values, unknown topics and read-only broker configs
    fail with Kafka's exception and message."""
    topic = compat.unique("cfg-errors")
    compat.create_topic(bootstrap, topic)
    cases = [
        (["--entity-type", "topics", "--entity-name", topic, "--add-config", "foo.bar=1"],
         "InvalidConfigurationException: Unknown topic config name: foo.bar"),
        (["--entity-type", "topics", "--entity-name", topic, "--add-config", "segment.bytes=10"],
         "InvalidConfigurationException: Invalid value 10 for configuration segment.bytes: Value must be at least 1048576"),
        (["--entity-type", "topics", "--entity-name", topic, "--add-config", "cleanup.policy=[compact,nope]"],
         "InvalidConfigurationException: Invalid value nope for configuration cleanup.policy: String must be one of: compact, delete"),
        (["--entity-type", "brokers", "--entity-name", "1", "--add-config", "log.dirs=/tmp/x"],
         "InvalidRequestException: Cannot update these configs dynamically: Set(log.dirs)"),
    ]
    for args, expected in cases:
        cp = configs_tool(bootstrap, "--alter", *args, check=False)
        assert cp.returncode != 0, cp.stdout
        assert expected in cp.stdout + cp.stderr, (args, cp.stdout, cp.stderr)
    out = configs_tool(bootstrap, "--describe", "--entity-type", "topics", "--entity-name", "no-such-topic").stdout
    assert "The topic 'no-such-topic' doesn't exist and doesn't have dynamic config." in out, out


def test_broker_configs_with_stock_tools(bootstrap):
    """kafka-configs --describe for broker 1 (no dynamic configs), --all
    (static and default entries with Kafka's synonyms) and the cluster
    default."""
    out = configs_tool(bootstrap, "--describe", "--entity-type", "brokers", "--entity-name", "1").stdout
    assert out.strip() == "Dynamic configs for broker 1 are:", out
    out = configs_tool(bootstrap, "--describe", "--entity-type", "brokers", "--entity-default").stdout
    assert out.splitlines()[0] == "Default configs for brokers in the cluster are:", out
    out = configs_tool(bootstrap, "--describe", "--all", "--entity-type", "brokers", "--entity-name", "1").stdout
    assert out.splitlines()[0] == "All configs for broker 1 are:", out
    lines = entry_lines(out)
    for expected in (
        "message.max.bytes=1048588 sensitive=false synonyms={STATIC_BROKER_CONFIG:message.max.bytes=1048588, DEFAULT_CONFIG:message.max.bytes=1048588}",
        "auto.create.topics.enable=false sensitive=false synonyms={STATIC_BROKER_CONFIG:auto.create.topics.enable=false, DEFAULT_CONFIG:auto.create.topics.enable=true}",
        "log.retention.ms=null sensitive=false synonyms={}",
        "log.retention.hours=168 sensitive=false synonyms={DEFAULT_CONFIG:log.retention.hours=168}",
        "log.segment.bytes=1073741824 sensitive=false synonyms={DEFAULT_CONFIG:log.segment.bytes=1073741824}",
        "num.partitions=1 sensitive=false synonyms={DEFAULT_CONFIG:num.partitions=1}",
    ):
        assert expected in lines, f"{expected!r} missing in\n{out}"


def test_admin_client_incremental_alter_and_describe(bootstrap):
    """confluent-kafka AdminClient: APPEND / SUBTRACT on cleanup.policy,
    SET with validate_only, Kafka's errors, and describe_configs sources."""
    topic = compat.unique("cfg-admin")
    compat.create_topic(bootstrap, topic, configs={"retention.ms": "1234"})
    c = describe(bootstrap, ResourceType.TOPIC, topic)
    assert set(c) == KAFKA_TOPIC_CONFIG_NAMES
    assert (c["retention.ms"].value, int(c["retention.ms"].source)) == ("1234", DYNAMIC_TOPIC_CONFIG)
    assert (c["cleanup.policy"].value, int(c["cleanup.policy"].source)) == ("delete", DEFAULT_CONFIG)
    assert (c["max.message.bytes"].value, int(c["max.message.bytes"].source)) == ("1048588", STATIC_BROKER_CONFIG)
    assert not c["retention.ms"].is_read_only and not c["retention.ms"].is_sensitive

    incremental(bootstrap, topic, [op("cleanup.policy", "compact", AlterConfigOpType.APPEND)])
    assert describe(bootstrap, ResourceType.TOPIC, topic)["cleanup.policy"].value == "delete,compact"
    incremental(bootstrap, topic, [op("cleanup.policy", "delete", AlterConfigOpType.SUBTRACT)])
    assert describe(bootstrap, ResourceType.TOPIC, topic)["cleanup.policy"].value == "compact"
    incremental(bootstrap, topic, [op("cleanup.policy", "compact", AlterConfigOpType.SUBTRACT)])
    cp = describe(bootstrap, ResourceType.TOPIC, topic)["cleanup.policy"]
    assert (cp.value, int(cp.source)) == ("", DYNAMIC_TOPIC_CONFIG)

    incremental(bootstrap, topic, [op("retention.ms", "7", AlterConfigOpType.SET)], validate_only=True)
    assert describe(bootstrap, ResourceType.TOPIC, topic)["retention.ms"].value == "1234"

    errors = [
        ([op("retention.ms", "5", AlterConfigOpType.APPEND)], topic,
         ("INVALID_CONFIG", "Can't APPEND to key retention.ms because its type is not LIST.")),
        ([op("min.compaction.lag.ms", "10", AlterConfigOpType.SET),
          op("max.compaction.lag.ms", "5", AlterConfigOpType.SET)], topic,
         ("INVALID_CONFIG", "conflict topic config setting min.compaction.lag.ms (10) > max.compaction.lag.ms (5)")),
        ([op("retention.ms", "abc", AlterConfigOpType.SET)], topic,
         ("INVALID_CONFIG", "Invalid value abc for configuration retention.ms: Not a number of type LONG")),
        ([op("retention.ms", "7", AlterConfigOpType.SET)], "no-such-topic-cfg",
         ("UNKNOWN_TOPIC_OR_PART", "The topic 'no-such-topic-cfg' does not exist.")),
    ]
    for entries, name, expected in errors:
        with pytest.raises(KafkaException) as ei:
            incremental(bootstrap, name, entries)
        assert kafka_error(ei) == expected

    b = describe(bootstrap, ResourceType.BROKER, "1")
    assert (b["message.max.bytes"].value, int(b["message.max.bytes"].source)) == ("1048588", STATIC_BROKER_CONFIG)
    assert b["log.retention.ms"].value is None and int(b["log.retention.ms"].source) == DEFAULT_CONFIG
    assert b["log.dirs"].is_read_only
    with pytest.raises(KafkaException) as ei:
        describe(bootstrap, ResourceType.TOPIC, "a b")
    assert kafka_error(ei) == ("TOPIC_EXCEPTION", "Topic name is invalid: 'a b' contains one or more "
                               "characters other than ASCII alphanumerics, '.', '_' and '-'")


@pytest.mark.parametrize("name,message", [
    ("a b", "Topic name is invalid: 'a b' contains one or more characters other than ASCII alphanumerics, '.', '_' and '-'"),
    ("..", "Topic name is invalid: '..' is not allowed"),
    (".", "Topic name is invalid: '.' is not allowed"),
    ("x" * 250, "Topic name is invalid: the length of '" + "x" * 250 + "' is longer than the max allowed length 249"),
    ("", "Topic name is invalid: the empty string is not allowed"),
])
def test_create_topic_name_errors(bootstrap, name, message):
    a = compat.admin(bootstrap)
    fs = a.create_topics([NewTopic(name, 1, 1)], validate_only=True)
    with pytest.raises(KafkaException) as ei:
        fs[name].result(timeout=30)
    assert kafka_error(ei) == ("TOPIC_EXCEPTION", message)


def test_create_topic_config_errors(bootstrap):
    a = compat.admin(bootstrap)
    name = compat.unique("cfg-create-bad")
    fs = a.create_topics([NewTopic(name, 1, 1, config={"retention.ms": "soon"})])
    with pytest.raises(KafkaException) as ei:
        fs[name].result(timeout=30)
    assert kafka_error(ei) == ("INVALID_CONFIG", "Invalid value soon for configuration retention.ms: Not a number of type LONG")


def test_topic_config_survives_restart(broker_factory):
    """An override set with IncrementalAlterConfigs is still there, with
    its source, after a graceful restart."""
    b = broker_factory({"auto.create.topics.enable": "false"})
    topic = compat.unique("cfg-restart")
    compat.create_topic(b.bootstrap, topic)
    incremental(b.bootstrap, topic, [op("retention.ms", "1000", AlterConfigOpType.SET)])
    b.restart()
    c = describe(b.bootstrap, ResourceType.TOPIC, topic)
    assert (c["retention.ms"].value, int(c["retention.ms"].source)) == ("1000", DYNAMIC_TOPIC_CONFIG)
    out = configs_tool(b.bootstrap, "--describe", "--entity-type", "topics", "--entity-name", topic).stdout
    assert "retention.ms=1000 sensitive=false synonyms={DYNAMIC_TOPIC_CONFIG:retention.ms=1000}" in out, out
