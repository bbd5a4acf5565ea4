"""acks=all on a topic whose min.insync.replicas (2) exceeds its
replication factor (1): Kafka 4.1 caps the effective minimum at the
replication factor (KIP-966), so the write is accepted; klamm, whose
topics always have one replica, answers the same."""

from __future__ import annotations

import compat
import kafkawire as kw


def test_min_insync_above_replication_factor_is_capped(bootstrap):
    topic = compat.unique("minisr")
    compat.create_topic(bootstrap, topic, 1, configs={"min.insync.replicas": 2})
    host, port = bootstrap.rsplit(":", 1)
    with kw.Connection(host, int(port), timeout=15) as c:
        r = c.produce(topic, 0, kw.record_batch([(b"k", b"all")]), version=8, acks=-1)
        assert (r["error_code"], r["base_offset"]) == (0, 0), r
    got = compat.consume_all(bootstrap, topic, 1, timeout=30)
    assert [m.value() for m in got] == [b"all"]
