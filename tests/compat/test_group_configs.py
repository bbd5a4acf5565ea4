"""Per-group dynamic configs (the GROUP config resource, KIP-848) with the
stock Kafka 4.1 kafka-configs: `--entity-type groups --alter
--add-config consumer.heartbeat.interval.ms=…` is checked against the
broker's `group.consumer.*` bounds, `--describe` lists it with its
synonyms, it survives a broker restart, and the heartbeat interval a
consumer-protocol member is given follows it."""

from __future__ import annotations

import time
import uuid

import compat
import kafkawire
from compat import CONFIGS, kafka_tool

API_FIND_COORDINATOR = 10
API_CONSUMER_GROUP_HEARTBEAT = 68


def configs(bootstrap, *args, check=True):
    return kafka_tool(CONFIGS, "--bootstrap-server", bootstrap, *args, timeout=90, check=check)


def dynamic_lines(bootstrap, group):
    out = configs(bootstrap, "--describe", "--entity-type", "groups", "--entity-name", group).stdout
    return [l.strip() for l in out.splitlines() if l.strip()], out


def compact_string(s):
    if s is None:
        return kafkawire.uvarint(0)
    b = s.encode()
    return kafkawire.uvarint(len(b) + 1) + b


def read_uvarint(r):
    value, shift = 0, 0
    while True:
        byte = r.take(1)[0]
        value |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return value
        shift += 7


def skip_compact_string(r):
    n = read_uvarint(r)
    if n > 0:
        r.take(n - 1)


def heartbeat_interval_ms(broker, group, topic):
    """Joins `group` with a raw ConsumerGroupHeartbeat v1 and leaves again;
    returns (error code, heartbeat interval) of the join's answer."""
    member_id = str(uuid.uuid4())

    def body(epoch, join):
        b = compact_string(group) + compact_string(member_id) + kafkawire.i32(epoch)
        b += compact_string(None) + compact_string(None)  # instance id, rack id
        b += kafkawire.i32(30000 if join else -1)
        if join:
            b += kafkawire.uvarint(2) + compact_string(topic)  # subscribed topic names
        else:
            b += kafkawire.uvarint(0)
        b += compact_string(None) + compact_string(None)  # regex, server assignor
        b += kafkawire.uvarint(1) if join else kafkawire.uvarint(0)  # owned partitions: [] / null
        return b + kafkawire.uvarint(0)

    host, port = broker.host_port
    deadline = time.monotonic() + 60
    with kafkawire.Connection(host, port, timeout=15) as c:
        while True:
            # FindCoordinator v0 first: Kafka creates its offsets topic then.
            c.request(API_FIND_COORDINATOR, 0, kafkawire.string(group))
            r = c.request(API_CONSUMER_GROUP_HEARTBEAT, 1, body(0, True), header_version=2,
                          response_header_version=1)
            r.i32()  # throttle
            error = r.i16()
            # COORDINATOR_LOAD_IN_PROGRESS, COORDINATOR_NOT_AVAILABLE, NOT_COORDINATOR
            if error not in (14, 15, 16) or time.monotonic() > deadline:
                break
            time.sleep(0.5)
        skip_compact_string(r)  # error message
        skip_compact_string(r)  # member id
        r.i32()  # epoch
        interval = r.i32()
        if error == 0:
            c.request(API_CONSUMER_GROUP_HEARTBEAT, 1, body(-1, False), header_version=2, response_header_version=1)
    return error, interval


def test_group_configs_are_altered_described_kept_and_given_to_members(broker_factory):
    b = broker_factory({"group.consumer.min.heartbeat.interval.ms": "1000"})
    group = compat.unique("gcfg")
    topic = compat.unique("gcfg-t")
    compat.create_topic(b.bootstrap, topic, partitions=2)

    # No dynamic config yet; members get the broker's interval. (The group
    # exists from here on: kafka-configs describes only groups that exist
    # or, through ListConfigResources, have configs.)
    assert heartbeat_interval_ms(b, group, topic) == (0, 5000)
    lines, out = dynamic_lines(b.bootstrap, group)
    assert lines == [f"Dynamic configs for group {group} are:"], out

    cp = configs(b.bootstrap, "--alter", "--entity-type", "groups", "--entity-name", group,
                 "--add-config", "consumer.heartbeat.interval.ms=2000,consumer.session.timeout.ms=50000")
    assert f"Completed updating config for group {group}." in cp.stdout, cp.stdout
    lines, out = dynamic_lines(b.bootstrap, group)
    assert lines[0] == f"Dynamic configs for group {group} are:", out
    assert sorted(lines[1:]) == [
        "consumer.heartbeat.interval.ms=2000 sensitive=false synonyms={DYNAMIC_GROUP_CONFIG:"
        "consumer.heartbeat.interval.ms=2000}",
        "consumer.session.timeout.ms=50000 sensitive=false synonyms={DYNAMIC_GROUP_CONFIG:"
        "consumer.session.timeout.ms=50000}",
    ], out
    assert heartbeat_interval_ms(b, group, topic) == (0, 2000)

    # --all lists every group config, with the broker's values where the
    # group has none.
    out = configs(b.bootstrap, "--describe", "--all", "--entity-type", "groups", "--entity-name", group).stdout
    lines = [l.strip() for l in out.splitlines() if l.strip()]
    defaults = [("share.auto.offset.reset", "latest"), ("share.heartbeat.interval.ms", "5000"),
                ("share.isolation.level", "read_uncommitted"), ("share.record.lock.duration.ms", "30000"),
                ("share.session.timeout.ms", "45000"), ("streams.heartbeat.interval.ms", "5000"),
                ("streams.num.standby.replicas", "0"), ("streams.session.timeout.ms", "45000")]
    assert lines == [
        f"All configs for group {group} are:",
        "consumer.heartbeat.interval.ms=2000 sensitive=false synonyms={DYNAMIC_GROUP_CONFIG:"
        "consumer.heartbeat.interval.ms=2000}",
        "consumer.session.timeout.ms=50000 sensitive=false synonyms={DYNAMIC_GROUP_CONFIG:"
        "consumer.session.timeout.ms=50000}",
    ] + [f"{n}={v} sensitive=false synonyms={{DEFAULT_CONFIG:{n}={v}}}" for n, v in defaults], out

    # Values are checked against the broker's bounds.
    cp = configs(b.bootstrap, "--alter", "--entity-type", "groups", "--entity-name", group,
                 "--add-config", "consumer.heartbeat.interval.ms=500", check=False)
    assert cp.returncode != 0
    assert ("consumer.heartbeat.interval.ms must be greater than or equal to "
            "group.consumer.min.heartbeat.interval.ms") in cp.stdout + cp.stderr, cp.stderr
    cp = configs(b.bootstrap, "--alter", "--entity-type", "groups", "--entity-name", group,
                 "--add-config", "consumer.session.timeout.ms=70000", check=False)
    assert cp.returncode != 0
    assert ("consumer.session.timeout.ms must be less than or equal to "
            "group.consumer.max.session.timeout.ms") in cp.stdout + cp.stderr, cp.stderr
    lines, out = dynamic_lines(b.bootstrap, group)
    assert len(lines) == 3, out

    # Kept across a restart.
    b.restart()
    assert dynamic_lines(b.bootstrap, group)[0] == lines
    assert heartbeat_interval_ms(b, group, topic) == (0, 2000)

    configs(b.bootstrap, "--alter", "--entity-type", "groups", "--entity-name", group,
            "--delete-config", "consumer.heartbeat.interval.ms")
    lines, out = dynamic_lines(b.bootstrap, group)
    assert len(lines) == 2 and lines[1].startswith("consumer.session.timeout.ms=50000"), out
    assert heartbeat_interval_ms(b, group, topic) == (0, 5000)


def test_list_config_resources_names_groups_with_configs_and_unknown_groups(broker_factory):
    """ListConfigResources (key 74, KIP-1142) through kafka-configs: a group
    that has configs but no members is listed by `--describe --entity-type
    groups`, an unknown one is named unknown, and client metrics (none)
    list nothing."""
    b = broker_factory()
    ghost, unknown = compat.unique("ghost"), compat.unique("nosuch")
    out = configs(b.bootstrap, "--describe", "--entity-type", "groups", "--entity-name", unknown).stdout
    assert out.strip() == f"The group '{unknown}' doesn't exist and doesn't have dynamic config.", out
    configs(b.bootstrap, "--alter", "--entity-type", "groups", "--entity-name", ghost,
            "--add-config", "consumer.session.timeout.ms=50000")
    out = configs(b.bootstrap, "--describe", "--entity-type", "groups").stdout
    assert [l.strip() for l in out.splitlines() if l.strip()] == [
        f"Dynamic configs for group {ghost} are:",
        "consumer.session.timeout.ms=50000 sensitive=false synonyms={DYNAMIC_GROUP_CONFIG:"
        "consumer.session.timeout.ms=50000}",
    ], out
    cp = configs(b.bootstrap, "--describe", "--entity-type", "client-metrics")
    assert cp.stdout.strip() == "", cp.stdout
    out = configs(b.bootstrap, "--describe", "--entity-type", "client-metrics", "--entity-name", unknown).stdout
    assert out.strip() == f"The client-metric '{unknown}' doesn't exist and doesn't have dynamic config.", out
