"""A group member that dies without leaving (SIGKILL: no LeaveGroup) is
removed once its session times out, and the surviving member is assigned
its partitions; no record is lost on the way. librdkafka (confluent-kafka)
members, eager range assignment, Kafka's minimum session timeout (6 s)."""

from __future__ import annotations

import signal
import subprocess
import sys
import time

from confluent_kafka import Consumer, Producer

import compat

PARTITIONS = 4
SESSION_MS = 6000

# The member that will be killed: prints each assignment it gets.
VICTIM = r"""
import sys
from confluent_kafka import Consumer
c = Consumer({"bootstrap.servers": sys.argv[1], "group.id": sys.argv[2], "session.timeout.ms": int(sys.argv[4]),
              "heartbeat.interval.ms": 500, "auto.offset.reset": "earliest",
              "partition.assignment.strategy": "range"})
c.subscribe([sys.argv[3]], on_assign=lambda c, ps: print("assigned", len(ps), flush=True))
while True:
    c.poll(0.2)
"""


def test_killed_member_times_out_and_survivor_takes_over(bootstrap):
    topic, group = compat.unique("timeouts"), compat.unique("timeouts-g")
    compat.create_topic(bootstrap, topic, PARTITIONS)
    assignments: list[list[int]] = []
    survivor = Consumer({"bootstrap.servers": bootstrap, "group.id": group, "session.timeout.ms": SESSION_MS,
                         "heartbeat.interval.ms": 500, "auto.offset.reset": "earliest",
                         "partition.assignment.strategy": "range", "enable.auto.commit": False})
    victim = None
    seen: set[tuple[int, int]] = set()

    def poll_until(cond, timeout):
        deadline = time.monotonic() + timeout
        while not cond() and time.monotonic() < deadline:
            m = survivor.poll(0.2)
            if m is not None and not m.error():
                seen.add((m.partition(), m.offset()))
        return cond()

    try:
        survivor.subscribe([topic], on_assign=lambda c, ps: assignments.append(sorted(p.partition for p in ps)))
        assert poll_until(lambda: assignments and assignments[-1] == list(range(PARTITIONS)), 30), assignments

        victim = subprocess.Popen([sys.executable, "-c", VICTIM, bootstrap, group, topic, str(SESSION_MS)],
                                  stdout=subprocess.PIPE, text=True)
        # The victim's join rebalances the group: two partitions each.
        assert poll_until(lambda: len(assignments[-1]) == PARTITIONS // 2, 30), assignments
        assert victim.stdout.readline().split() == ["assigned", str(PARTITIONS // 2)]
        victim.send_signal(signal.SIGKILL)
        victim.wait(timeout=10)
        killed = time.monotonic()
        shrunk = len(assignments)

        # Records produced now, some to the dead member's partitions.
        p = Producer({"bootstrap.servers": bootstrap, "acks": "all"})
        for i in range(40):
            p.produce(topic, value=b"v%d" % i, partition=i % PARTITIONS)
        assert p.flush(30) == 0

        # Its session expires; the survivor gets everything back.
        assert poll_until(lambda: len(assignments) > shrunk and assignments[-1] == list(range(PARTITIONS)),
                          SESSION_MS / 1000 + 30), assignments
        assert time.monotonic() - killed >= SESSION_MS / 1000 / 2, "removed by the session timeout, not at once"
        assert poll_until(lambda: len(seen) >= 40, 30), sorted(seen)
        assert seen == {(part, off) for part in range(PARTITIONS) for off in range(40 // PARTITIONS)}
    finally:
        if victim is not None and victim.poll() is None:
            victim.kill()
            victim.wait()
        survivor.close()
