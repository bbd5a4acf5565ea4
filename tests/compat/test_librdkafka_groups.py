"""librdkafka (confluent-kafka) consumers with `group.protocol=consumer`
(KIP-848, server-side assignment, librdkafka >= 2.4) in the scenario of the
franz-go check: three members join one by one and two leave again while a
producer keeps writing to a 6-partition topic. After each change the live
members own every partition exactly once, no partition is ever assigned to
a member while another still owns it, and every acknowledged record is
consumed."""

from __future__ import annotations

import threading
import time

import pytest
from confluent_kafka import Consumer, Producer, libversion

import compat

PARTITIONS = 6

pytestmark = pytest.mark.skipif(libversion()[1] < 0x02040000, reason="librdkafka < 2.4 has no KIP-848")


class Tracker:
    def __init__(self):
        self.lock = threading.Lock()
        self.owner: dict[int, str] = {}
        self.violations: list[str] = []
        self.consumed: set[str] = set()

    def assigned(self, member, partitions):
        with self.lock:
            for p in partitions:
                other = self.owner.get(p)
                if other is not None and other != member:
                    self.violations.append(f"partition {p} assigned to {member} while owned by {other}")
                self.owner[p] = member

    def revoked(self, member, partitions):
        with self.lock:
            for p in partitions:
                if self.owner.get(p) == member:
                    del self.owner[p]

    def owners(self):
        """The members owning partitions, if together they own all of them."""
        with self.lock:
            if sorted(self.owner) != list(range(PARTITIONS)):
                return None
            return sorted(set(self.owner.values()))


class Member:
    def __init__(self, name, bootstrap, group, topic, tracker, assignor):
        self.name = name
        self.tracker = tracker
        self.stopping = threading.Event()
        self.errors: list[str] = []
        self.consumer = Consumer({
            "bootstrap.servers": bootstrap,
            "group.id": group,
            "group.protocol": "consumer",
            "group.remote.assignor": assignor,
            "client.id": f"klamm-compat-{name}",
            "enable.auto.commit": False,
            "auto.offset.reset": "earliest",
        })
        self.consumer.subscribe([topic], on_assign=self._on_assign, on_revoke=self._on_revoke,
                                on_lost=self._on_lost)
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _on_assign(self, consumer, partitions):
        self.tracker.assigned(self.name, [tp.partition for tp in partitions])

    def _on_revoke(self, consumer, partitions):
        try:
            consumer.commit(asynchronous=False)
        except Exception as e:  # nothing consumed yet: _NO_OFFSET
            if "NO_OFFSET" not in str(e):
                self.errors.append(f"commit on revoke: {e}")
        self.tracker.revoked(self.name, [tp.partition for tp in partitions])

    def _on_lost(self, consumer, partitions):
        self.errors.append(f"lost {[tp.partition for tp in partitions]}")
        self.tracker.revoked(self.name, [tp.partition for tp in partitions])

    def _run(self):
        while not self.stopping.is_set():
            msg = self.consumer.poll(0.2)
            if msg is None:
                continue
            if msg.error():
                self.errors.append(str(msg.error()))
                continue
            with self.tracker.lock:
                if self.tracker.owner.get(msg.partition()) != self.name:
                    self.tracker.violations.append(
                        f"{self.name} got partition {msg.partition()} offset {msg.offset()} without owning it")
                self.tracker.consumed.add(msg.value().decode())
            try:
                self.consumer.commit(message=msg, asynchronous=False)
            except Exception as e:
                # A commit racing a new member epoch (the heartbeat that
                # brought it is answered first) is refused as by Kafka; the
                # next commit carries the new epoch.
                if "STALE_MEMBER_EPOCH" not in str(e):
                    self.errors.append(f"commit: {e}")
        self.consumer.close()  # leaves the group (revokes first)

    def leave(self):
        self.stopping.set()
        self.thread.join(timeout=60)
        assert not self.thread.is_alive(), f"{self.name} did not close"


class Writer:
    """Produces keyed records until stopped; remembers the acknowledged ones."""

    def __init__(self, bootstrap, topic):
        self.acked: list[str] = []
        self.errors: list[str] = []
        self.stopping = threading.Event()
        self.producer = Producer({"bootstrap.servers": bootstrap, "acks": "all", "linger.ms": 5})
        self.topic = topic
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _done(self, err, msg):
        if err is not None:
            self.errors.append(str(err))
        else:
            self.acked.append(msg.value().decode())

    def _run(self):
        i = 0
        while not self.stopping.is_set():
            v = f"v{i}"
            self.producer.produce(self.topic, key=f"k{i}", value=v, on_delivery=self._done)
            self.producer.poll(0)
            i += 1
            time.sleep(0.01)
        self.producer.flush(30)

    def stop(self):
        self.stopping.set()
        self.thread.join(timeout=60)


def wait_for(cond, timeout, what):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if cond():
            return
        time.sleep(0.2)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}")


@pytest.mark.parametrize("assignor", ["uniform", "range"])
def test_librdkafka_members_join_and_leave_under_load(bootstrap, assignor):
    topic = compat.unique(f"rdk848-{assignor}")
    group = compat.unique(f"rdk848-g-{assignor}")
    compat.create_topic(bootstrap, topic, partitions=PARTITIONS)
    tracker = Tracker()
    writer = Writer(bootstrap, topic)
    members: dict[str, Member] = {}
    everyone: list[Member] = []

    def owned_by(*names):
        return lambda: tracker.owners() == sorted(names)

    def start(name):
        members[name] = Member(name, bootstrap, group, topic, tracker, assignor)
        everyone.append(members[name])

    try:
        for name, want in [("m1", ["m1"]), ("m2", ["m1", "m2"]), ("m3", ["m1", "m2", "m3"])]:
            start(name)
            wait_for(owned_by(*want), 90, f"{want} to own all partitions")
            time.sleep(1)
        members.pop("m3").leave()
        wait_for(owned_by("m1", "m2"), 90, "m1+m2 to own all partitions after m3 left")
        time.sleep(1)
        members.pop("m2").leave()
        wait_for(owned_by("m1"), 90, "m1 to own all partitions after m2 left")
        time.sleep(1)
        writer.stop()
        assert not writer.errors, writer.errors[:5]
        assert len(writer.acked) > 100
        wait_for(lambda: tracker.consumed >= set(writer.acked), 60, "every acknowledged record consumed")
    finally:
        writer.stop()
        for m in members.values():
            m.leave()
    assert not tracker.violations, tracker.violations[:10]
    errors = [e for m in everyone for e in m.errors]
    assert not errors, errors[:10]
