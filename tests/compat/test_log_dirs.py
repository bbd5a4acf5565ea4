"""kafka-log-dirs --describe (DescribeLogDirs through Admin.describeLogDirs)
and DescribeLogDirs v1/v4 on the wire: one result for the broker's log
directory (its absolute path, no error), every partition of the asked
topics with its size on disk (the bytes of its segment .log files), offset
lag 0 and no future logs; v4 adds the volume's total and usable bytes;
partitions and topics that do not exist are left out."""

from __future__ import annotations

import json
import os

from confluent_kafka import Producer

import compat
from compat import kafka_tool
import kafkawire
from kafkawire import compact_string, i32, uvarint

LOG_DIRS = "org.apache.kafka.tools.LogDirsCommand"
DESCRIBE_LOG_DIRS = 35


def log_bytes_on_disk(data_dir, topic, partition) -> int:
    d = data_dir / f"{topic}-{partition}"
    return sum(f.stat().st_size for f in d.glob("*.log"))


def produce(bootstrap, topic, counts: dict[int, int]):
    p = Producer({"bootstrap.servers": bootstrap, "acks": "all", "linger.ms": 50,
                  "message.timeout.ms": 20000})
    errors = []
    for partition, n in counts.items():
        for i in range(n):
            p.produce(topic, value=f"value-{partition}-{i}".encode() * 4, partition=partition,
                      on_delivery=lambda err, _msg: err and errors.append(err))
    assert p.flush(30) == 0
    assert errors == []


def describe_json(bootstrap, *args) -> dict:
    out = kafka_tool(LOG_DIRS, "--bootstrap-server", bootstrap, "--describe", *args).stdout
    lines = out.splitlines()
    assert "Querying brokers for log directories information" in lines, out
    assert "Received log directory information from brokers 1" in lines, out
    return json.loads(next(line for line in lines if line.startswith("{")))


def test_log_dirs_tool_describes_the_topics_partitions(broker):
    topic = compat.unique("log-dirs")
    other = compat.unique("log-dirs-other")
    compat.create_topic(broker.bootstrap, topic, 3)
    compat.create_topic(broker.bootstrap, other, 1)
    produce(broker.bootstrap, topic, {0: 20, 1: 5})
    produce(broker.bootstrap, other, {0: 3})

    doc = describe_json(broker.bootstrap, "--topic-list", topic)
    assert doc["version"] == 1
    assert [b["broker"] for b in doc["brokers"]] == [1]
    (log_dir,) = doc["brokers"][0]["logDirs"]
    assert log_dir["logDir"] == str(broker.data_dir)
    assert log_dir["error"] is None
    parts = {p["partition"]: p for p in log_dir["partitions"]}
    assert sorted(parts) == [f"{topic}-0", f"{topic}-1", f"{topic}-2"]
    for i in range(3):
        p = parts[f"{topic}-{i}"]
        assert p["offsetLag"] == 0 and p["isFuture"] is False, p
        assert p["size"] == log_bytes_on_disk(broker.data_dir, topic, i), p
    assert parts[f"{topic}-0"]["size"] > parts[f"{topic}-1"]["size"] > 0
    assert parts[f"{topic}-2"]["size"] == 0

    # Without --topic-list every topic is there, this one's partitions too.
    doc = describe_json(broker.bootstrap)
    names = {p["partition"] for p in doc["brokers"][0]["logDirs"][0]["partitions"]}
    assert {f"{topic}-0", f"{topic}-1", f"{topic}-2", f"{other}-0"} <= names


# --- the wire -----------------------------------------------------------------

class Flexible(kafkawire.Reader):
    def uvarint(self) -> int:
        shift = value = 0
        while True:
            b = self.take(1)[0]
            value |= (b & 0x7F) << shift
            if not b & 0x80:
                return value
            shift += 7

    def compact_string(self) -> str:
        return self.take(self.uvarint() - 1).decode()

    def compact_len(self) -> int:
        return self.uvarint() - 1

    def no_tags(self):
        assert self.uvarint() == 0


def describe_v4(b, topics: dict[str, list[int]] | None) -> dict:
    if topics is None:
        body = uvarint(0)
    else:
        body = uvarint(len(topics) + 1)
        for name, partitions in topics.items():
            body += compact_string(name) + uvarint(len(partitions) + 1)
            body += b"".join(i32(p) for p in partitions) + uvarint(0)
    body += uvarint(0)
    with kafkawire.Connection(*b.host_port, timeout=20) as c:
        raw = c.request(DESCRIBE_LOG_DIRS, 4, body, header_version=2, response_header_version=1)
    r = Flexible(raw.data)
    r.pos = raw.pos
    out = {"throttle_time_ms": r.i32(), "error_code": r.i16(), "results": []}
    for _ in range(r.compact_len()):
        res = {"error_code": r.i16(), "log_dir": r.compact_string(), "topics": {}}
        for _ in range(r.compact_len()):
            name = r.compact_string()
            parts = {}
            for _ in range(r.compact_len()):
                index, size, lag, future = r.i32(), r.i64(), r.i64(), r.i8()
                r.no_tags()
                parts[index] = (size, lag, future)
            r.no_tags()
            res["topics"][name] = parts
        res["total_bytes"], res["usable_bytes"] = r.i64(), r.i64()
        r.no_tags()
        out["results"].append(res)
    r.no_tags()
    assert r.remaining() == 0
    return out


def describe_v1(b, topics: dict[str, list[int]] | None) -> dict:
    if topics is None:
        body = i32(-1)
    else:
        body = i32(len(topics))
        for name, partitions in topics.items():
            body += kafkawire.string(name) + i32(len(partitions)) + b"".join(i32(p) for p in partitions)
    with kafkawire.Connection(*b.host_port, timeout=20) as c:
        r = c.request(DESCRIBE_LOG_DIRS, 1, body)
    out = {"throttle_time_ms": r.i32(), "results": []}
    for _ in range(r.array_len()):
        res = {"error_code": r.i16(), "log_dir": r.string(), "topics": {}}
        for _ in range(r.array_len()):
            name = r.string()
            res["topics"][name] = {}
            for _ in range(r.array_len()):
                index, size, lag, future = r.i32(), r.i64(), r.i64(), r.i8()
                res["topics"][name][index] = (size, lag, future)
        out["results"].append(res)
    assert r.remaining() == 0
    return out


def test_describe_log_dirs_on_the_wire(broker):
    topic = compat.unique("log-dirs-wire")
    compat.create_topic(broker.bootstrap, topic, 2)
    produce(broker.bootstrap, topic, {1: 7})
    size = log_bytes_on_disk(broker.data_dir, topic, 1)
    assert size > 0

    # Unknown topics and partitions are left out; a topic with none left too.
    ask = {topic: [1, 5], compat.unique("no-such-topic"): [0]}
    v4 = describe_v4(broker, ask)
    assert v4["error_code"] == 0
    (res,) = v4["results"]
    assert res["error_code"] == 0 and res["log_dir"] == str(broker.data_dir)
    assert res["topics"] == {topic: {1: (size, 0, 0)}}
    vfs = os.statvfs(broker.data_dir)
    assert res["total_bytes"] == vfs.f_blocks * vfs.f_frsize
    assert abs(res["usable_bytes"] - vfs.f_bavail * vfs.f_frsize) < 512 * 2**20, res
    assert 0 < res["usable_bytes"] <= res["total_bytes"]

    # topics = null: every partition.
    (res,) = describe_v4(broker, None)["results"]
    assert res["topics"][topic] == {0: (0, 0, 0), 1: (size, 0, 0)}

    # An empty list: the directory, no partitions.
    (res,) = describe_v4(broker, {})["results"]
    assert res["error_code"] == 0 and res["topics"] == {}

    v1 = describe_v1(broker, {topic: [0, 1]})
    (res,) = v1["results"]
    assert res["error_code"] == 0 and res["log_dir"] == str(broker.data_dir)
    assert res["topics"] == {topic: {0: (0, 0, 0), 1: (size, 0, 0)}}
    (res,) = describe_v1(broker, None)["results"]
    assert res["topics"][topic] == {0: (0, 0, 0), 1: (size, 0, 0)}
