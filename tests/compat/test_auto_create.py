"""Auto-creation through Metadata: one request naming many unknown topics
(and one of them twice) creates every one of them with the broker's
num.partitions, as Kafka does. klamm creates them with one metadata write."""

from __future__ import annotations

import time

import compat
import kafkawire as kw


def test_one_metadata_request_auto_creates_many_topics(broker_factory):
    b = broker_factory({"auto.create.topics.enable": "true", "num.partitions": 2})
    prefix = compat.unique("auto")
    names = [f"{prefix}-{i}" for i in range(300)]
    with kw.Connection(*b.host_port, timeout=30) as c:
        first = c.metadata_v1(names + [names[0]])
        assert set(first["topics"]) == set(names), sorted(first["topics"])[:5]
        deadline = time.monotonic() + 30
        while True:
            md = c.metadata_v1(names)
            ready = [n for n, t in md["topics"].items()
                     if t["error_code"] == 0 and len(t["partitions"]) == 2
                     and all(p["leader"] >= 0 for p in t["partitions"].values())]
            if len(ready) == len(names) or time.monotonic() > deadline:
                break
            time.sleep(0.5)
    assert sorted(ready) == sorted(names)
