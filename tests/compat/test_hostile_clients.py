"""Hostile clients (issue 9, item 5) with librdkafka as the well-behaved
client: eight connections announce 100 MB request frames and send one byte
a second; a confluent-kafka producer and consumer on the same broker keep
working within seconds. Before, the request-memory pool was taken in full
at the size prefix, and librdkafka failed with "all broker connections are
down". klamm only: Kafka takes a frame's announced size from its pool (or,
unbounded by default, allocates it on the heap) as soon as the prefix
arrives, the behaviour this guards against."""

from __future__ import annotations

import socket
import struct
import threading
import time

import pytest
from confluent_kafka import Consumer, Producer

import compat

pytestmark = pytest.mark.skipif(
    compat.BROKER_KIND != "klamm",
    reason="Kafka reserves a frame's announced size at its size prefix (8 x 100 MB here)",
)

SLOW_SENDERS = 8
ANNOUNCED_BYTES = 100 * 1024 * 1024


def test_slow_100_mb_senders_do_not_starve_librdkafka(broker, bootstrap):
    stop = threading.Event()
    socks = []
    for _ in range(SLOW_SENDERS):
        s = socket.create_connection(broker.host_port, timeout=5)
        s.sendall(struct.pack(">i", ANNOUNCED_BYTES) + struct.pack(">hhi", 18, 0, 1))
        socks.append(s)

    def trickle():
        while not stop.wait(1.0):
            for s in socks:
                try:
                    s.sendall(b"\0")
                except OSError:
                    pass

    t = threading.Thread(target=trickle, daemon=True)
    t.start()
    try:
        time.sleep(0.5)
        topic = compat.unique("hostile")
        compat.create_topic(bootstrap, topic, 1)
        started = time.monotonic()
        p = Producer({"bootstrap.servers": bootstrap, "message.timeout.ms": 10000})
        errors = []
        for i in range(10):
            p.produce(topic, f"v{i}".encode(), on_delivery=lambda err, _m: err and errors.append(err))
        assert p.flush(15) == 0 and not errors, errors
        c = Consumer({"bootstrap.servers": bootstrap, "group.id": compat.unique("hostile-g"),
                      "auto.offset.reset": "earliest"})
        try:
            c.subscribe([topic])
            got = []
            deadline = time.monotonic() + 20
            while len(got) < 10 and time.monotonic() < deadline:
                m = c.poll(0.5)
                if m is not None and m.error() is None:
                    got.append(m.value())
            assert len(got) == 10
        finally:
            c.close()
        assert time.monotonic() - started < 25
    finally:
        stop.set()
        t.join()
        for s in socks:
            s.close()
