"""Consumer-group APIs against the broker under test: kafka-consumer-groups
(--list, --describe offsets/--members/--state, --reset-offsets --to-offset,
--delete-offsets, --delete) on a group with committed offsets and on a live
group; two kafka-python members rebalancing a topic between them and back;
and raw old-version requests whose answer shapes differ per version
(JoinGroup/SyncGroup/DescribeGroups/LeaveGroup v0, OffsetCommit v2 for
unknown partitions, OffsetFetch v1 and v2 with all topics); a static
member (group.instance.id) replaced by a successor."""

from __future__ import annotations

import re
import time

from confluent_kafka import Consumer, KafkaException, Producer, TopicPartition as CTP
from kafka import KafkaConsumer

import compat
import kafkawire as kw
from compat import CONSUMER_GROUPS, kafka_tool

# Kafka error codes.
NONE = 0
UNKNOWN_TOPIC_OR_PARTITION = 3
INVALID_GROUP_ID = 24
UNKNOWN_MEMBER_ID = 25

API_OFFSET_COMMIT = 8
API_OFFSET_FETCH = 9
API_JOIN_GROUP = 11
API_LEAVE_GROUP = 13
API_SYNC_GROUP = 14
API_DESCRIBE_GROUPS = 15
API_FIND_COORDINATOR = 10


def retry_transient(fn, timeout: float = 30):
    """Retries while the coordinator is not ready yet (Kafka creates and
    loads __consumer_offsets on first use)."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            return fn()
        except KafkaException as e:
            transient = any(s in str(e) for s in ("NOT_COORDINATOR", "COORDINATOR_LOAD_IN_PROGRESS",
                                                  "COORDINATOR_NOT_AVAILABLE"))
            if not transient or time.monotonic() > deadline:
                raise
            time.sleep(0.5)


def groups_tool(bootstrap, *args, check=True):
    return kafka_tool(CONSUMER_GROUPS, "--bootstrap-server", bootstrap, *args, check=check)


def produce(bootstrap, topic, per_partition: dict[int, int]):
    p = Producer({"bootstrap.servers": bootstrap, "acks": "all"})
    for part, n in per_partition.items():
        for i in range(n):
            p.produce(topic, value=f"v{i}".encode(), partition=part)
    assert p.flush(30) == 0


def commit(bootstrap, group, topic, offsets: dict[int, int]):
    """OffsetCommit with generation -1 (a simple, non-subscribed group)."""
    c = Consumer({"bootstrap.servers": bootstrap, "group.id": group, "enable.auto.commit": False})
    try:
        retry_transient(lambda: c.commit(offsets=[CTP(topic, p, o) for p, o in offsets.items()],
                                         asynchronous=False))
    finally:
        c.close()


def offset_rows(out: str, group: str, topic: str) -> dict[int, list[str]]:
    """--describe rows (GROUP TOPIC PARTITION CURRENT-OFFSET LOG-END-OFFSET
    LAG CONSUMER-ID HOST CLIENT-ID) by partition."""
    rows = {}
    for line in out.splitlines():
        cols = line.split()
        if len(cols) >= 6 and cols[0] == group and cols[1] == topic and cols[2].isdigit():
            rows[int(cols[2])] = cols
    return rows


def test_consumer_groups_tool_on_committed_offsets(bootstrap):
    """A group that only has committed offsets (no members): --list shows
    it, --describe shows CURRENT-OFFSET/LOG-END-OFFSET/LAG per partition and
    state Empty, --reset-offsets --to-offset 2 --execute (OffsetCommit
    without members) moves every partition, --delete-offsets removes one
    topic's offsets (OffsetDelete), --delete removes the group (then
    --describe says it does not exist, and it cannot be deleted again)."""
    topic = compat.unique("grp-tool")
    group = compat.unique("grp-tool-g")
    compat.create_topic(bootstrap, topic, partitions=3)
    produce(bootstrap, topic, {0: 10, 1: 6, 2: 4})
    commit(bootstrap, group, topic, {0: 7, 1: 6})

    assert group in groups_tool(bootstrap, "--list").stdout.split()

    out = groups_tool(bootstrap, "--describe", "--group", group).stdout
    rows = offset_rows(out, group, topic)
    assert rows[0][3:6] == ["7", "10", "3"], out
    assert rows[1][3:6] == ["6", "6", "0"], out
    # Partition 2 has no committed offset: kafka-consumer-groups lists only
    # partitions with offsets for a group without members.
    assert 2 not in rows or rows[2][3] == "-", out
    state = groups_tool(bootstrap, "--describe", "--group", group, "--state").stdout
    assert re.search(rf"^{re.escape(group)}\s.*\bEmpty\s+0\s*$", state, re.M), state

    reset = groups_tool(bootstrap, "--reset-offsets", "--group", group, "--topic", topic,
                        "--to-offset", "2", "--execute").stdout
    for p in range(3):
        assert re.search(rf"{re.escape(group)}\s+{re.escape(topic)}\s+{p}\s+2\b", reset), reset
    rows = offset_rows(groups_tool(bootstrap, "--describe", "--group", group).stdout, group, topic)
    assert {p: r[3] for p, r in rows.items()} == {0: "2", 1: "2", 2: "2"}, rows
    assert rows[0][5] == "8", rows

    deleted = groups_tool(bootstrap, "--delete-offsets", "--group", group, "--topic", f"{topic}:0").stdout
    assert re.search(rf"{re.escape(topic)}\s+0\s+Successful", deleted), deleted
    rows = offset_rows(groups_tool(bootstrap, "--describe", "--group", group).stdout, group, topic)
    assert 0 not in rows or rows[0][3] == "-", rows
    assert rows[1][3] == "2", rows

    out = groups_tool(bootstrap, "--delete", "--group", group).stdout
    assert "was successful" in out, out
    assert group not in groups_tool(bootstrap, "--list").stdout.split()
    cp = groups_tool(bootstrap, "--describe", "--group", group, check=False)
    # Kafka 4.1 answers DescribeGroups v6 with GROUP_ID_NOT_FOUND ("Group .. not
    # found."); up to v5 the group is described as Dead ("does not exist").
    assert re.search(r"does not exist|GroupIdNotFoundException: Group \S+ not found", cp.stdout + cp.stderr), cp

    cp = groups_tool(bootstrap, "--delete", "--group", group, check=False)
    assert "does not exist" in cp.stdout + cp.stderr or "GroupIdNotFound" in cp.stdout + cp.stderr, cp


def kp_consumer(bootstrap, group, client_id):
    return KafkaConsumer(bootstrap_servers=bootstrap, group_id=group, client_id=client_id,
                         auto_offset_reset="earliest", enable_auto_commit=False,
                         session_timeout_ms=10000, heartbeat_interval_ms=500, request_timeout_ms=20000,
                         max_poll_interval_ms=30000)


def poll_until(consumers, predicate, timeout=45):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for c in consumers:
            c.poll(timeout_ms=200)
        if predicate():
            return
    raise AssertionError("condition not reached; assignments: "
                         + "; ".join(str(sorted(tp.partition for tp in c.assignment())) for c in consumers))


def parts(c) -> set[int]:
    return {tp.partition for tp in c.assignment()}


def test_kafka_python_two_members_rebalance(bootstrap):
    """Two kafka-python members of one group share a 4-partition topic
    (JoinGroup/SyncGroup/Heartbeat): the second one's arrival rebalances
    2+2; kafka-consumer-groups shows both members (client ids, host
    /127.0.0.1), state Stable with the range assignor, refuses to delete the
    live group; after the second member leaves (LeaveGroup) the first gets
    all 4 partitions back; after both leave the group is Empty."""
    topic = compat.unique("grp-rebal")
    group = compat.unique("grp-rebal-g")
    compat.create_topic(bootstrap, topic, partitions=4)

    c1 = kp_consumer(bootstrap, group, "member-one")
    c2 = None
    try:
        c1.subscribe([topic])
        poll_until([c1], lambda: parts(c1) == {0, 1, 2, 3})

        c2 = kp_consumer(bootstrap, group, "member-two")
        c2.subscribe([topic])
        poll_until([c1, c2], lambda: len(parts(c1)) == 2 and len(parts(c2)) == 2
                   and parts(c1) | parts(c2) == {0, 1, 2, 3})

        # Keep heartbeating in the background of the tool calls.
        members = groups_tool(bootstrap, "--describe", "--group", group, "--members").stdout
        rows = [l.split() for l in members.splitlines() if l.split()[:1] == [group]]
        assert sorted(r[3] for r in rows) == ["member-one", "member-two"], members
        assert all(r[2] == "/127.0.0.1" for r in rows), members
        assert sorted(r[4] for r in rows) == ["2", "2"], members

        state = groups_tool(bootstrap, "--describe", "--group", group, "--state").stdout
        assert re.search(rf"^{re.escape(group)}\s.*\brange\s+Stable\s+2\s*$", state, re.M), state

        cp = groups_tool(bootstrap, "--delete", "--group", group, check=False)
        assert "not empty" in cp.stdout + cp.stderr, cp

        c2.close()
        c2 = None
        poll_until([c1], lambda: parts(c1) == {0, 1, 2, 3})
    finally:
        if c2 is not None:
            c2.close()
        c1.close()

    deadline = time.monotonic() + 20
    while True:
        state = groups_tool(bootstrap, "--describe", "--group", group, "--state").stdout
        if re.search(rf"^{re.escape(group)}\s.*\bEmpty\s+0\s*$", state, re.M) or time.monotonic() > deadline:
            break
        time.sleep(0.5)
    assert re.search(rf"^{re.escape(group)}\s.*\bEmpty\s+0\s*$", state, re.M), state


# ---------------------------------------------------------------------------
# Raw old-version requests (non-flexible encodings).

def connect(bootstrap) -> kw.Connection:
    host, port = bootstrap.rsplit(":", 1)
    return kw.Connection(host, int(port), timeout=20)


def wait_coordinator(conn: kw.Connection, group: str, timeout: float = 30):
    """FindCoordinator v0 until it answers NONE (Kafka creates
    __consumer_offsets on first use)."""
    deadline = time.monotonic() + timeout
    while True:
        r = conn.request(API_FIND_COORDINATOR, 0, kw.string(group))
        if r.i16() == NONE:
            return
        if time.monotonic() > deadline:
            raise AssertionError("no group coordinator")
        time.sleep(0.5)


def offset_commit_v2(conn, group, topics: dict[str, dict[int, int]]) -> dict:
    body = kw.string(group) + kw.i32(-1) + kw.string("") + kw.i64(-1) + kw.i32(len(topics))
    for name, offsets in topics.items():
        body += kw.string(name) + kw.i32(len(offsets))
        for p, o in offsets.items():
            body += kw.i32(p) + kw.i64(o) + kw.string(None)
    r = conn.request(API_OFFSET_COMMIT, 2, body)
    out = {}
    for _ in range(r.array_len()):
        name = r.string()
        for _ in range(r.array_len()):
            p = r.i32()
            out[(name, p)] = r.i16()
    assert r.remaining() == 0
    return out


def offset_fetch(conn, version, group, topics: dict[str, list[int]] | None) -> tuple[dict, int | None]:
    """OffsetFetch v1/v2: ({(topic, partition): (offset, metadata, error)}, top-level error or None)."""
    body = kw.string(group)
    if topics is None:
        body += kw.i32(-1)
    else:
        body += kw.i32(len(topics))
        for name, ps in topics.items():
            body += kw.string(name) + kw.i32(len(ps)) + b"".join(kw.i32(p) for p in ps)
    r = conn.request(API_OFFSET_FETCH, version, body)
    out = {}
    for _ in range(r.array_len()):
        name = r.string()
        for _ in range(r.array_len()):
            p = r.i32()
            offset = r.i64()
            metadata = r.string()
            out[(name, p)] = (offset, metadata, r.i16())
    top = r.i16() if version >= 2 else None
    assert r.remaining() == 0
    return out, top


def test_offset_commit_and_fetch_old_versions(bootstrap):
    """OffsetCommit v2 answers UNKNOWN_TOPIC_OR_PARTITION for an unknown
    topic and an out-of-range partition and commits the rest; OffsetFetch
    v1 (no top-level error) answers committed offsets with metadata "" and
    -1 for uncommitted or unknown partitions; OffsetFetch v2 with topics =
    null returns every committed offset of the group and a top-level
    error."""
    topic = compat.unique("grp-raw")
    group = compat.unique("grp-raw-g")
    compat.create_topic(bootstrap, topic, partitions=2)
    with connect(bootstrap) as conn:
        wait_coordinator(conn, group)
        missing = compat.unique("grp-raw-missing")
        deadline = time.monotonic() + 30
        while True:
            res = offset_commit_v2(conn, group, {topic: {0: 11, 5: 1}, missing: {0: 3}})
            if res[(topic, 0)] not in (14, 15, 16) or time.monotonic() > deadline:
                break
            time.sleep(0.5)
        assert res == {(topic, 0): NONE, (topic, 5): UNKNOWN_TOPIC_OR_PARTITION,
                       (missing, 0): UNKNOWN_TOPIC_OR_PARTITION}, res

        got, top = offset_fetch(conn, 1, group, {topic: [0, 1], missing: [0]})
        assert top is None
        assert got == {(topic, 0): (11, "", NONE), (topic, 1): (-1, "", NONE), (missing, 0): (-1, "", NONE)}, got

        got, top = offset_fetch(conn, 2, group, None)
        assert top == NONE
        assert got == {(topic, 0): (11, "", NONE)}, got


def test_join_sync_describe_leave_v0(bootstrap):
    """The oldest group versions: JoinGroup v0 with an empty group id is
    INVALID_GROUP_ID; a single member joins (v0 has no rebalance timeout:
    the session timeout is used) and leads generation 1 with protocol
    "range"; SyncGroup v0 hands back its assignment; DescribeGroups v0 shows
    it Stable with client id and host /127.0.0.1; LeaveGroup v0 leaves, a
    second LeaveGroup v0 answers UNKNOWN_MEMBER_ID."""
    group = compat.unique("grp-v0")
    # A valid ConsumerProtocolSubscription v0 (Kafka parses it): version,
    # topics, null user data.
    subscription = kw.i16(0) + kw.i32(1) + kw.string("grp-v0-topic") + kw.i32(-1)
    assignment = kw.i16(0) + kw.i32(1) + kw.string("grp-v0-topic") + kw.i32(1) + kw.i32(0) + kw.i32(-1)
    with connect(bootstrap) as conn:
        wait_coordinator(conn, group)

        def join(group_id):
            body = (kw.string(group_id) + kw.i32(10000) + kw.string("") + kw.string("consumer")
                    + kw.i32(1) + kw.string("range") + kw.nbytes(subscription))
            r = conn.request(API_JOIN_GROUP, 0, body)
            out = {"error_code": r.i16(), "generation_id": r.i32(), "protocol_name": r.string(),
                   "leader": r.string(), "member_id": r.string()}
            members = []
            for _ in range(r.array_len()):
                mid = r.string()
                n = r.i32()
                members.append((mid, r.take(n) if n >= 0 else None))
            out["members"] = members
            assert r.remaining() == 0
            return out

        bad = join("")
        assert bad["error_code"] == INVALID_GROUP_ID, bad
        assert bad["protocol_name"] == "" and bad["generation_id"] == -1, bad

        joined = join(group)
        assert joined["error_code"] == NONE, joined
        assert joined["generation_id"] == 1 and joined["protocol_name"] == "range", joined
        member = joined["member_id"]
        assert member and joined["leader"] == member, joined
        assert joined["members"] == [(member, subscription)], joined

        body = (kw.string(group) + kw.i32(1) + kw.string(member)
                + kw.i32(1) + kw.string(member) + kw.nbytes(assignment))
        r = conn.request(API_SYNC_GROUP, 0, body)
        err = r.i16()
        n = r.i32()
        assert (err, r.take(n)) == (NONE, assignment)

        r = conn.request(API_DESCRIBE_GROUPS, 0, kw.i32(1) + kw.string(group))
        assert r.array_len() == 1
        err, gid, state, ptype, pdata = r.i16(), r.string(), r.string(), r.string(), r.string()
        assert (err, gid, state, ptype, pdata) == (NONE, group, "Stable", "consumer", "range")
        assert r.array_len() == 1
        mid, client_id, host = r.string(), r.string(), r.string()
        meta = r.take(r.i32())
        member_assignment = r.take(r.i32())
        assert (mid, client_id, host) == (member, conn.client_id, "/127.0.0.1")
        assert (meta, member_assignment) == (subscription, assignment)
        assert r.remaining() == 0

        r = conn.request(API_LEAVE_GROUP, 0, kw.string(group) + kw.string(member))
        assert r.i16() == NONE
        r = conn.request(API_LEAVE_GROUP, 0, kw.string(group) + kw.string(member))
        assert r.i16() == UNKNOWN_MEMBER_ID


def test_confluent_static_member_rejoins(bootstrap):
    """A static member (confluent-kafka with group.instance.id) that closes
    stays in the group (no LeaveGroup for static members): kafka-consumer-
    groups still lists it with its partitions; a new consumer with the same
    instance id takes its place and gets the same partitions."""
    topic = compat.unique("grp-static")
    group = compat.unique("grp-static-g")
    compat.create_topic(bootstrap, topic, partitions=2)

    def static_consumer():
        c = Consumer({"bootstrap.servers": bootstrap, "group.id": group, "group.instance.id": "static-one",
                      "client.id": "static-client", "session.timeout.ms": 30000,
                      "auto.offset.reset": "earliest", "enable.auto.commit": False})
        c.subscribe([topic])
        deadline = time.monotonic() + 45
        while time.monotonic() < deadline:
            c.poll(0.2)
            if {tp.partition for tp in c.assignment()} == {0, 1}:
                return c
        c.close()
        raise AssertionError("static member got no assignment")

    c = static_consumer()
    c.close()

    members = groups_tool(bootstrap, "--describe", "--group", group, "--members").stdout
    rows = [l.split() for l in members.splitlines() if l.split()[:1] == [group]]
    # GROUP CONSUMER-ID GROUP-INSTANCE-ID HOST CLIENT-ID #PARTITIONS
    assert len(rows) == 1 and rows[0][2:] == ["static-one", "/127.0.0.1", "static-client", "2"], members

    c = static_consumer()
    try:
        members = groups_tool(bootstrap, "--describe", "--group", group, "--members").stdout
        rows = [l.split() for l in members.splitlines() if l.split()[:1] == [group]]
        assert len(rows) == 1 and rows[0][2:] == ["static-one", "/127.0.0.1", "static-client", "2"], members
    finally:
        c.close()
