"""KIP-848 consumer groups (`group.protocol=consumer`, server-side
assignment) with the stock Kafka 4.1 console consumer and
kafka-consumer-groups: one member consumes and commits; two members share
a topic and the partitions move when the second joins and when it leaves;
an empty group changes protocol and keeps its offsets."""

from __future__ import annotations

import subprocess
import threading
import time

import compat
from compat import CONSOLE_CONSUMER, CONSOLE_PRODUCER, CONSUMER_GROUPS, KAFKA_RUN_CLASS, TOPICS, kafka_tool

PROTOCOL = ["--consumer-property", "group.protocol=consumer"]
PARTITIONS = 4


def produce(bootstrap, topic, values):
    """Each value with its own key, so that the records spread over the
    partitions (unkeyed, the sticky partitioner puts a batch in one)."""
    kafka_tool(CONSOLE_PRODUCER, "--bootstrap-server", bootstrap, "--topic", topic,
               "--property", "parse.key=true", "--property", "key.separator=:",
               "--request-required-acks", "all", input="".join(f"key-{v}:{v}\n" for v in values), timeout=90)


def console_consume(bootstrap, topic, group, max_messages, *extra, timeout_ms=15000):
    cp = kafka_tool(CONSOLE_CONSUMER, "--bootstrap-server", bootstrap, "--topic", topic, "--group", group,
                    "--max-messages", str(max_messages), "--timeout-ms", str(timeout_ms), *PROTOCOL, *extra,
                    timeout=120, check=False)
    assert "Processed a total of" in cp.stderr, cp.stderr
    return [l for l in cp.stdout.splitlines() if l.strip()]


def describe(bootstrap, group):
    """Rows of `kafka-consumer-groups --describe`: GROUP TOPIC PARTITION
    CURRENT-OFFSET LOG-END-OFFSET LAG CONSUMER-ID HOST CLIENT-ID."""
    out = kafka_tool(CONSUMER_GROUPS, "--bootstrap-server", bootstrap, "--describe", "--group", group,
                     timeout=90).stdout
    return [l.split() for l in out.splitlines() if l.split()[:1] == [group] and len(l.split()) >= 9], out


class Member:
    """A console consumer running in the background; its output lines are
    collected by a thread."""

    def __init__(self, bootstrap, topic, group):
        self.lines: list[str] = []
        self.proc = subprocess.Popen(
            [str(KAFKA_RUN_CLASS), CONSOLE_CONSUMER, "--bootstrap-server", bootstrap, "--topic", topic,
             "--group", group, "--from-beginning", *PROTOCOL],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        self.err: list[str] = []
        threading.Thread(target=self._read, args=(self.proc.stdout, self.lines), daemon=True).start()
        threading.Thread(target=self._read, args=(self.proc.stderr, self.err), daemon=True).start()

    @staticmethod
    def _read(stream, out):
        for line in stream:
            if line.strip():
                out.append(line.strip())

    def stop(self):
        """SIGTERM: the consumer closes, commits and leaves the group."""
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)


def wait_for(cond, timeout, what):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        v = cond()
        if v:
            return v
        time.sleep(0.5)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}")


def test_one_member_consumes_every_partition_and_commits(bootstrap):
    """One consumer-protocol member of a 4-partition topic gets every
    record; its commits leave nothing for the next run, and
    kafka-consumer-groups lists the group and shows lag 0 on every partition."""
    topic = compat.unique("cgp-one")
    group = compat.unique("cgp-g1")
    kafka_tool(TOPICS, "--bootstrap-server", bootstrap, "--create", "--topic", topic,
               "--partitions", str(PARTITIONS))
    values = [f"v{i}" for i in range(80)]
    produce(bootstrap, topic, values)

    got = console_consume(bootstrap, topic, group, len(values), "--from-beginning")
    assert sorted(got) == sorted(values)
    assert console_consume(bootstrap, topic, group, 1, timeout_ms=6000) == []

    listed = kafka_tool(CONSUMER_GROUPS, "--bootstrap-server", bootstrap, "--list").stdout.split()
    assert group in listed
    rows, out = describe(bootstrap, group)
    rows = [r for r in rows if r[1] == topic]
    assert sorted(int(r[2]) for r in rows) == list(range(PARTITIONS)), out
    assert all(r[3] == r[4] and r[5] == "0" for r in rows), out
    assert sum(int(r[4]) for r in rows) == len(values), out
    members = kafka_tool(CONSUMER_GROUPS, "--bootstrap-server", bootstrap, "--describe", "--group", group,
                         "--members", "--verbose", timeout=90).stdout
    assert not [l for l in members.splitlines() if l.split()[:1] == [group]], members

    # An empty consumer group's offsets can be reset (admin commits).
    kafka_tool(CONSUMER_GROUPS, "--bootstrap-server", bootstrap, "--reset-offsets", "--group", group,
               "--topic", topic, "--to-earliest", "--execute", timeout=90)
    assert sorted(console_consume(bootstrap, topic, group, len(values))) == sorted(values)

    # Its offsets can be deleted: then --from-beginning starts over.
    kafka_tool(CONSUMER_GROUPS, "--bootstrap-server", bootstrap, "--delete-offsets", "--group", group,
               "--topic", topic, timeout=90)
    assert sorted(console_consume(bootstrap, topic, group, len(values), "--from-beginning")) == sorted(values)


def test_two_members_share_the_partitions_and_rebalance(bootstrap):
    """Two console consumers in one group: once both own partitions
    (kafka-consumer-groups shows two consumer ids over the 4 partitions)
    they consume each new record once between them; when one leaves, the
    other takes all partitions and consumes what follows."""
    topic = compat.unique("cgp-two")
    group = compat.unique("cgp-g2")
    kafka_tool(TOPICS, "--bootstrap-server", bootstrap, "--create", "--topic", topic,
               "--partitions", str(PARTITIONS))
    first = [f"a{i}" for i in range(40)]
    produce(bootstrap, topic, first)

    a = Member(bootstrap, topic, group)
    b = None
    try:
        wait_for(lambda: len(a.lines) >= len(first), 60, "the first member to consume the first records")
        b = Member(bootstrap, topic, group)

        def both_assigned():
            rows, _ = describe(bootstrap, group)
            owners = {r[6] for r in rows if r[1] == topic and r[6] != "-"}
            parts = {r[2] for r in rows if r[1] == topic and r[6] != "-"}
            return len(owners) == 2 and len(parts) == PARTITIONS and rows
        rows = wait_for(both_assigned, 90, "two members with all partitions")
        per_member = {}
        for r in rows:
            per_member.setdefault(r[6], set()).add(int(r[2]))
        assert sorted(len(p) for p in per_member.values()) == [2, 2], rows
        members = kafka_tool(CONSUMER_GROUPS, "--bootstrap-server", bootstrap, "--describe", "--group", group,
                             "--members", "--verbose", timeout=90).stdout
        member_rows = [l.split() for l in members.splitlines() if l.split()[:1] == [group]]
        assert sorted(r[1] for r in member_rows) == sorted(per_member), members

        second = [f"b{i}" for i in range(40)]
        produce(bootstrap, topic, second)
        wait_for(lambda: len([l for l in a.lines + b.lines if l.startswith("b")]) >= len(second), 60,
                 "the two members to consume the second records")
        time.sleep(2)
        got = [l for l in a.lines + b.lines if l.startswith("b")]
        assert sorted(got) == sorted(second), "each record once between the two members"
        assert any(l.startswith("b") for l in a.lines) and any(l.startswith("b") for l in b.lines), \
            (a.lines, b.lines)

        b.stop()

        def one_member_owns_all():
            rows, _ = describe(bootstrap, group)
            owners = {r[6] for r in rows if r[1] == topic and r[6] != "-"}
            return len(owners) == 1 and len([r for r in rows if r[1] == topic and r[6] != "-"]) == PARTITIONS
        wait_for(one_member_owns_all, 90, "the remaining member to own every partition")
        third = [f"c{i}" for i in range(40)]
        produce(bootstrap, topic, third)
        wait_for(lambda: len([l for l in a.lines if l.startswith("c")]) >= len(third), 60,
                 "the remaining member to consume the third records")
        assert sorted(l for l in a.lines if l.startswith("c")) == sorted(third)
    finally:
        if b is not None:
            b.stop()
        a.stop()


def test_groups_switch_protocols_when_empty_and_keep_their_offsets(bootstrap):
    """An empty classic group is taken over by a consumer-protocol member
    and the other way round; the committed offsets stay with the group id
    both times, so neither run sees a record twice."""
    topic = compat.unique("cgp-switch")
    group = compat.unique("cgp-g3")
    kafka_tool(TOPICS, "--bootstrap-server", bootstrap, "--create", "--topic", topic,
               "--partitions", str(PARTITIONS))
    first = [f"a{i}" for i in range(20)]
    produce(bootstrap, topic, first)
    classic = ["--consumer-property", "group.protocol=classic"]
    cp = kafka_tool(CONSOLE_CONSUMER, "--bootstrap-server", bootstrap, "--topic", topic, "--group", group,
                    "--from-beginning", "--max-messages", str(len(first)), "--timeout-ms", "15000", *classic,
                    timeout=120, check=False)
    assert sorted(l for l in cp.stdout.splitlines() if l.strip()) == sorted(first), cp.stderr

    second = [f"b{i}" for i in range(20)]
    produce(bootstrap, topic, second)
    assert sorted(console_consume(bootstrap, topic, group, len(second))) == sorted(second)

    third = [f"c{i}" for i in range(20)]
    produce(bootstrap, topic, third)
    cp = kafka_tool(CONSOLE_CONSUMER, "--bootstrap-server", bootstrap, "--topic", topic, "--group", group,
                    "--max-messages", str(len(third)), "--timeout-ms", "15000", *classic,
                    timeout=120, check=False)
    assert sorted(l for l in cp.stdout.splitlines() if l.strip()) == sorted(third), cp.stderr


def member_epochs(bootstrap, group):
    """(consumer id, current epoch) of each member, from --members --verbose:
    GROUP CONSUMER-ID HOST CLIENT-ID #PARTITIONS CURRENT-EPOCH ..."""
    out = kafka_tool(CONSUMER_GROUPS, "--bootstrap-server", bootstrap, "--describe", "--group", group,
                     "--members", "--verbose", timeout=90, check=False).stdout
    return sorted((r[1], r[5]) for r in (l.split() for l in out.splitlines()) if r[:1] == [group] and len(r) >= 6)


def test_members_carry_on_in_their_epoch_after_a_broker_restart(broker_factory):
    """The group's state is durable: after a broker restart the member goes
    on in the same epoch (no rebalance) and consumes what follows."""
    b = broker_factory({"auto.create.topics.enable": "false"})
    topic = compat.unique("cgp-restart")
    group = compat.unique("cgp-g4")
    kafka_tool(TOPICS, "--bootstrap-server", b.bootstrap, "--create", "--topic", topic,
               "--partitions", str(PARTITIONS))
    first = [f"a{i}" for i in range(20)]
    produce(b.bootstrap, topic, first)
    # A first member joins and leaves, so the group's epoch is past 1: a
    # group that forgot its state would start again from epoch 1.
    assert sorted(console_consume(b.bootstrap, topic, group, len(first), "--from-beginning")) == sorted(first)
    a = Member(b.bootstrap, topic, group)
    try:
        before = wait_for(lambda: member_epochs(b.bootstrap, group), 60, "the member in --describe")
        assert len(before) == 1 and int(before[0][1]) > 1, before
        b.restart()
        second = [f"b{i}" for i in range(20)]
        produce(b.bootstrap, topic, second)
        wait_for(lambda: len([l for l in a.lines if l.startswith("b")]) >= len(second), 90,
                 "the member to consume after the restart")
        assert member_epochs(b.bootstrap, group) == before
        assert sorted(l for l in a.lines if l.startswith("b")) == sorted(second)
    finally:
        a.stop()
