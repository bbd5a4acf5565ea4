"""kafka-delete-records (DeleteRecords) and what follows from it: the log
start offset moves, reads below it are out of range, ListOffsets earliest
follows, and the new start survives a graceful restart."""

from __future__ import annotations

import json
import time

import compat
from compat import kafka_tool

DELETE_RECORDS = "org.apache.kafka.tools.DeleteRecordsCommand"


def delete_records(bootstrap, tmp_path, topic, offset, check=True):
    spec = tmp_path / "offsets.json"
    spec.write_text(json.dumps({"version": 1, "partitions": [{"topic": topic, "partition": 0, "offset": offset}]}))
    return kafka_tool(DELETE_RECORDS, "--bootstrap-server", bootstrap, "--offset-json-file", str(spec), check=check)


def earliest(bootstrap, topic, timeout=30) -> int:
    """The partition's log start offset (ListOffsets earliest), retrying
    while the broker is still taking leadership after a restart."""
    from confluent_kafka import Consumer, KafkaException, TopicPartition
    c = Consumer({"bootstrap.servers": bootstrap, "group.id": compat.unique("wm")})
    deadline = time.monotonic() + timeout
    try:
        while True:
            try:
                low, _high = c.get_watermark_offsets(TopicPartition(topic, 0), timeout=10)
                return low
            except KafkaException:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.5)
    finally:
        c.close()


def test_delete_records_moves_the_log_start(broker_factory, tmp_path):
    b = broker_factory()
    topic = compat.unique("delrec")
    compat.create_topic(b.bootstrap, topic, 1)
    compat.run(["kcat", "-P", "-b", b.bootstrap, "-t", topic, "-p", "0"],
               input="".join(f"r{i}\n" for i in range(10)), timeout=60)

    out = delete_records(b.bootstrap, tmp_path, topic, 4).stdout
    assert "low_watermark: 4" in out, out
    assert earliest(b.bootstrap, topic) == 4
    got = compat.run(["kcat", "-C", "-b", b.bootstrap, "-t", topic, "-p", "0", "-o", "beginning", "-e", "-q",
                      "-f", "%o:%s\n"], timeout=60).stdout.split()
    assert got == [f"{i}:r{i}" for i in range(4, 10)]

    # Beyond the high watermark: OFFSET_OUT_OF_RANGE, nothing changes.
    cp = delete_records(b.bootstrap, tmp_path, topic, 40, check=False)
    assert "OffsetOutOfRangeException" in cp.stdout + cp.stderr
    assert earliest(b.bootstrap, topic) == 4

    # -1 means the high watermark.
    assert "low_watermark: 10" in delete_records(b.bootstrap, tmp_path, topic, -1).stdout

    b.restart(graceful=True)
    assert earliest(b.bootstrap, topic) == 10
