"""kcat (librdkafka, from Debian) against the broker under test: produce and
consume with every compression codec, metadata listing (-L) and a balanced
consumer group (-G)."""

from __future__ import annotations

import json
import shutil

import pytest

import compat

pytestmark = pytest.mark.skipif(shutil.which("kcat") is None, reason="kcat not installed")

CODECS = ["none", "gzip", "snappy", "lz4", "zstd"]


def kcat(*args, input=None, timeout=60, check=True):
    return compat.run(["kcat", *args], input=input, timeout=timeout, check=check)


def make_records(n: int, tag: str) -> list[tuple[str, str]]:
    # Repetitive values so that every codec really compresses something.
    return [(f"k{i % 7}", f"{tag}-{i:05d}-" + "payload" * (i % 20)) for i in range(n)]


def kcat_produce(bootstrap, topic, records, *extra):
    data = "".join(f"{k}:{v}\n" for k, v in records)
    kcat("-b", bootstrap, "-t", topic, "-P", "-K:", "-X", "acks=all", "-X", "linger.ms=50", *extra,
         input=data)


def kcat_consume(bootstrap, topic, *extra):
    """Consumes the topic from the beginning until end (-e) printing
    key:value; CRC checking on."""
    out = kcat("-b", bootstrap, "-t", topic, "-C", "-o", "beginning", "-e", "-q",
               "-X", "check.crcs=true", "-f", "%k:%s\n", *extra).stdout
    return [tuple(l.split(":", 1)) for l in out.splitlines() if l]


@pytest.mark.parametrize("codec", CODECS)
def test_produce_consume_compressed(bootstrap, codec):
    """kcat -P with -X compression.codec=<codec> (producer-compressed
    batches): all 500 keyed records come back identical and in order from a
    one-partition topic, with librdkafka's CRC check on."""
    topic = compat.unique(f"kcat-{codec}")
    compat.create_topic(bootstrap, topic, 1)
    records = make_records(500, codec)
    kcat_produce(bootstrap, topic, records, "-X", f"compression.codec={codec}")
    got = kcat_consume(bootstrap, topic)
    assert got == records


def test_topic_compression_type_recompresses(bootstrap):
    """A topic with compression.type=gzip receiving lz4-compressed batches
    stores them recompressed; consumers still get identical records."""
    topic = compat.unique("kcat-recompress")
    compat.create_topic(bootstrap, topic, 1, {"compression.type": "gzip"})
    records = make_records(200, "recompress")
    kcat_produce(bootstrap, topic, records, "-X", "compression.codec=lz4")
    assert kcat_consume(bootstrap, topic) == records


def test_metadata_listing(broker, bootstrap):
    """kcat -L -J lists exactly one broker (id 1, at the advertised
    127.0.0.1:port) and the topic with its 3 partitions, each led by broker 1
    with replicas [1] and isrs [1]."""
    topic = compat.unique("kcat-meta")
    compat.create_topic(bootstrap, topic, 3)
    md = json.loads(kcat("-b", bootstrap, "-L", "-J", "-t", topic).stdout)
    assert [(b["id"], b["name"]) for b in md["brokers"]] == [(1, f"127.0.0.1:{broker.port}")]
    [t] = md["topics"]
    assert t["topic"] == topic
    assert "error" not in t or not t["error"]
    parts = sorted(t["partitions"], key=lambda p: p["partition"])
    assert [p["partition"] for p in parts] == [0, 1, 2]
    for p in parts:
        assert p["leader"] == 1
        assert [r["id"] for r in p["replicas"]] == [1]
        assert [r["id"] for r in p["isrs"]] == [1]

    # Plain text listing of all topics also names it.
    text = kcat("-b", bootstrap, "-L").stdout
    assert f'topic "{topic}" with 3 partitions:' in text
    assert "1 brokers:" in text


def test_balanced_consumer_group(bootstrap):
    """kcat -G (librdkafka balanced consumer, auto commit) reads all records
    of a 3-partition topic; a second run in the same group after more records
    were produced gets only the new ones (offsets were committed on close)."""
    topic = compat.unique("kcat-group")
    group = compat.unique("kcat-g")
    compat.create_topic(bootstrap, topic, 3)
    first = make_records(90, "first")
    kcat_produce(bootstrap, topic, first)

    def group_consume(count):
        out = kcat("-b", bootstrap, "-G", group, "-c", str(count), "-q", "-f", "%k:%s\n",
                   "-X", "auto.offset.reset=earliest", "-X", "session.timeout.ms=10000",
                   topic, timeout=60).stdout
        return [tuple(l.split(":", 1)) for l in out.splitlines() if l]

    got = group_consume(len(first))
    assert sorted(got) == sorted(first)

    second = make_records(30, "second")
    kcat_produce(bootstrap, topic, second)
    got = group_consume(len(second))
    assert sorted(got) == sorted(second)
