"""Bad input gets Apache Kafka's answer: invalid topic names, impossible
replication factors, oversized records, unknown topics (auto-creation off),
corrupt batches, unsupported API versions, garbage and oversized frames.
Where real clients refuse to build the request, it is sent over a raw socket
(kafkawire). Error codes are Kafka's (org.apache.kafka.common.protocol.Errors).
The session broker runs with auto.create.topics.enable=false and
message.max.bytes=1048588."""

from __future__ import annotations

import os

import pytest
from confluent_kafka import KafkaError, Producer
from confluent_kafka.admin import NewTopic
from kafka import KafkaProducer
from kafka.errors import MessageSizeTooLargeError

import compat
import kafkawire as kw

UNKNOWN_TOPIC_OR_PARTITION = 3
CORRUPT_MESSAGE = 2
MESSAGE_TOO_LARGE = 10
INVALID_TOPIC_EXCEPTION = 17
UNSUPPORTED_VERSION = 35
TOPIC_ALREADY_EXISTS = 36
INVALID_PARTITIONS = 37
INVALID_REPLICATION_FACTOR = 38
INVALID_REQUEST = 42


def create_error(bootstrap, name, partitions=1, rf=1):
    """CreateTopics through confluent-kafka's AdminClient (which sends names
    as given); returns the KafkaError or None."""
    a = compat.admin(bootstrap)
    fs = a.create_topics([NewTopic(name, num_partitions=partitions, replication_factor=rf)],
                         request_timeout=15, operation_timeout=15)
    try:
        fs[name].result(timeout=20)
        return None
    except Exception as e:  # KafkaException wrapping a KafkaError
        return e.args[0]


@pytest.mark.parametrize("name", ["bad name", "a/b", "..", ".", "x" * 250, ""],
                         ids=["space", "slash", "dotdot", "dot", "250-chars", "empty"])
def test_invalid_topic_name(bootstrap, name):
    """CreateTopics with a name that has characters outside [a-zA-Z0-9._-],
    is '.' or '..', is empty, or is longer than 249 characters fails with
    INVALID_TOPIC_EXCEPTION (17) and the topic does not appear."""
    err = create_error(bootstrap, name)
    assert err is not None and err.code() == INVALID_TOPIC_EXCEPTION, err
    if name:
        md = compat.admin(bootstrap).list_topics(timeout=10)
        assert name not in md.topics


def test_longest_valid_topic_name(bootstrap):
    """A 249-character name made of legal characters is accepted."""
    name = compat.unique("n")
    name = name + "x" * (249 - len(name))
    assert create_error(bootstrap, name) is None


def test_replication_factor_three(bootstrap):
    """Replication factor 3 on a one-broker cluster fails with
    INVALID_REPLICATION_FACTOR (38)."""
    err = create_error(bootstrap, compat.unique("rf3"), rf=3)
    assert err is not None and err.code() == INVALID_REPLICATION_FACTOR, err


def test_zero_partitions_and_duplicate(bootstrap):
    """0 partitions fails with INVALID_PARTITIONS (37); creating an existing
    topic fails with TOPIC_ALREADY_EXISTS (36)."""
    err = create_error(bootstrap, compat.unique("p0"), partitions=0)
    assert err is not None and err.code() == INVALID_PARTITIONS, err
    name = compat.unique("dup")
    assert create_error(bootstrap, name) is None
    err = create_error(bootstrap, name)
    assert err is not None and err.code() == TOPIC_ALREADY_EXISTS, err


def test_record_larger_than_message_max_bytes_kafka_python(bootstrap):
    """A 2 MB record (client max_request_size raised to 3 MB so the client
    sends it) is refused by the broker (message.max.bytes ~1 MiB) with
    MESSAGE_TOO_LARGE (10); a small record on the same topic still works."""
    topic = compat.unique("too-large-kp")
    compat.create_topic(bootstrap, topic, 1)
    p = KafkaProducer(bootstrap_servers=bootstrap, acks="all", max_request_size=3_000_000, retries=0,
                      request_timeout_ms=15000, max_block_ms=15000)
    try:
        with pytest.raises(MessageSizeTooLargeError) as exc:
            p.send(topic, value=b"x" * 2_000_000).get(timeout=30)
        assert exc.value.errno == MESSAGE_TOO_LARGE
        assert p.send(topic, value=b"small").get(timeout=30).offset == 0
    finally:
        p.close(timeout=10)


def test_record_larger_than_message_max_bytes_confluent(bootstrap):
    """Same with confluent-kafka (client message.max.bytes raised to 3 MB):
    the delivery report carries MSG_SIZE_TOO_LARGE (broker error 10)."""
    topic = compat.unique("too-large-ck")
    compat.create_topic(bootstrap, topic, 1)
    reports = []
    p = Producer({"bootstrap.servers": bootstrap, "acks": "all", "message.max.bytes": 3_000_000,
                  "message.timeout.ms": 20000, "compression.type": "none"})
    p.produce(topic, value=os.urandom(2_000_000), on_delivery=lambda err, msg: reports.append(err))
    assert p.flush(30) == 0
    [err] = reports
    assert err is not None and err.code() == KafkaError.MSG_SIZE_TOO_LARGE, err


def test_raw_produce_too_large_batch(broker, bootstrap):
    """A raw Produce v8 with a ~1.1 MB uncompressed batch gets
    MESSAGE_TOO_LARGE (10) for the partition, base offset -1."""
    topic = compat.unique("too-large-raw")
    compat.create_topic(bootstrap, topic, 1)
    with kw.Connection(*broker.host_port, timeout=15) as c:
        r = c.produce(topic, 0, kw.record_batch([(b"k", b"v" * 1_100_000)]), version=8)
    assert r["error_code"] == MESSAGE_TOO_LARGE, r
    assert r["base_offset"] == -1


def test_unknown_topic_metadata_and_produce(broker, bootstrap):
    """With auto.create.topics.enable=false: Metadata for an unknown topic
    answers UNKNOWN_TOPIC_OR_PARTITION (3) for it (raw Metadata v1 and
    librdkafka), Produce to it answers 3 for the partition, and the topic is
    not created. Produce to a partition past the partition count of an
    existing topic also answers 3."""
    topic = compat.unique("no-such-topic")
    with kw.Connection(*broker.host_port, timeout=15) as c:
        md = c.metadata_v1([topic])
        assert md["topics"][topic]["error_code"] == UNKNOWN_TOPIC_OR_PARTITION
        assert md["topics"][topic]["partitions"] == {}
        r = c.produce(topic, 0, kw.record_batch([(b"k", b"v")]), version=7)
        assert r["error_code"] == UNKNOWN_TOPIC_OR_PARTITION, r
        assert r["base_offset"] == -1

    t = compat.admin(bootstrap).list_topics(topic=topic, timeout=10).topics[topic]
    assert t.error is not None and t.error.code() == KafkaError.UNKNOWN_TOPIC_OR_PART
    assert topic not in compat.admin(bootstrap).list_topics(timeout=10).topics

    existing = compat.unique("one-part")
    compat.create_topic(bootstrap, existing, 1)
    with kw.Connection(*broker.host_port, timeout=15) as c:
        r = c.produce(existing, 5, kw.record_batch([(b"k", b"v")]), version=7)
        assert r["error_code"] == UNKNOWN_TOPIC_OR_PARTITION, r


def test_unknown_topic_producer_gets_error(bootstrap):
    """A librdkafka producer to an unknown topic (auto-creation off) fails the
    record with UNKNOWN_TOPIC_OR_PART (after metadata says so) instead of
    hanging; the topic is not created."""
    topic = compat.unique("no-such-topic-ck")
    reports = []
    p = Producer({"bootstrap.servers": bootstrap, "message.timeout.ms": 10000,
                  "topic.metadata.propagation.max.ms": 1000})
    p.produce(topic, value=b"v", on_delivery=lambda err, msg: reports.append(err))
    p.flush(20)
    [err] = reports
    assert err is not None and err.code() in (KafkaError.UNKNOWN_TOPIC_OR_PART, KafkaError._UNKNOWN_TOPIC), err
    assert topic not in compat.admin(bootstrap).list_topics(timeout=10).topics


def test_produce_batch_with_wrong_crc(broker, bootstrap):
    """A raw Produce v7 (and v8) whose record batch has a flipped CRC-32C
    answers CORRUPT_MESSAGE (2) with base offset -1, nothing is appended (the
    next valid batch gets offset 0), and the connection stays usable."""
    topic = compat.unique("bad-crc")
    compat.create_topic(bootstrap, topic, 1)
    with kw.Connection(*broker.host_port, timeout=15) as c:
        for version in (7, 8):
            r = c.produce(topic, 0, kw.record_batch([(b"k", b"v"), (b"k2", b"v2")], corrupt_crc=True),
                          version=version)
            assert r["error_code"] == CORRUPT_MESSAGE, r
            assert r["base_offset"] == -1
        r = c.produce(topic, 0, kw.record_batch([(b"k", b"v")]), version=7)
        assert r["error_code"] == 0, r
        assert r["base_offset"] == 0


def test_api_versions_unsupported_version(broker):
    """ApiVersions v127 (sent, like the Java client, with request header v2)
    answers UNSUPPORTED_VERSION (35) in a v0-layout body whose api list has
    just ApiVersions (key 18) with the broker's supported range (min 0),
    and the connection stays open so the client can retry with v0."""
    with kw.Connection(*broker.host_port, timeout=15) as c:
        r = c.api_versions(127)
        assert r["error_code"] == UNSUPPORTED_VERSION, r
        assert 18 in r["apis"] and r["apis"][18][0] == 0, r
        assert set(r["apis"]) == {18}, r
        assert r["trailing_bytes"] == 0, r
        ok = c.api_versions(0)
        assert ok["error_code"] == 0
        assert ok["apis"][18][1] >= 3


def test_api_versions_v3_roundtrip(broker):
    """ApiVersions v3 (flexible, header v2, client software name/version)
    answers error 0 (response header stays v0 for ApiVersions)."""
    with kw.Connection(*broker.host_port, timeout=15) as c:
        r = c.api_versions(3)
        assert r["error_code"] == 0, r


@pytest.mark.parametrize("name,version", [("", ""), ("bad name", "1.0"), ("-x", "1"), ("ok", "")])
def test_api_versions_invalid_client_software(broker, name, version):
    """ApiVersions v3 with an empty or malformed ClientSoftwareName/Version
    (must match [a-zA-Z0-9](?:[a-zA-Z0-9\\-.]*[a-zA-Z0-9])?) answers
    INVALID_REQUEST (42) with an empty api key list (6 body bytes after the
    error code: empty compact array, throttle 0, no tags); the connection
    stays usable."""
    with kw.Connection(*broker.host_port, timeout=15) as c:
        r = c.api_versions(3, name, version)
        assert r["error_code"] == INVALID_REQUEST, r
        assert r["trailing_bytes"] == 6, r
        assert c.api_versions(3)["error_code"] == 0


@pytest.mark.parametrize("version", [2, 14])
def test_produce_unsupported_version_closes_connection(broker, bootstrap, version):
    """Kafka 4.1 advertises Produce versions 0..13 in ApiVersions but rejects
    v0-v2 (removed by KIP-896) and anything above 13: the broker logs
    UnsupportedVersionException ("Received request for api with key 0
    (Produce) and unsupported version N") and closes the connection without
    a response; other connections are unaffected."""
    topic = compat.unique(f"produce-v{version}")
    compat.create_topic(bootstrap, topic, 1)
    with kw.Connection(*broker.host_port, timeout=15) as good, kw.Connection(*broker.host_port, timeout=15) as bad:
        assert good.api_versions(0)["error_code"] == 0
        bad.send_produce_only(topic, 0, kw.record_batch([(b"k", b"v")]), version=version)
        assert bad.is_closed_by_peer(10), f"Produce v{version}: connection was not closed"
        assert good.api_versions(0)["error_code"] == 0


def test_unknown_api_key_closes_connection(broker):
    """A request with an unknown API key (999) gets no response: the
    connection is closed."""
    with kw.Connection(*broker.host_port, timeout=15) as c:
        c.send_frame(kw.i16(999) + kw.i16(0) + kw.i32(1) + kw.string("x"))
        assert c.is_closed_by_peer(10)


def test_garbage_frame_closes_only_that_connection(broker):
    """A frame of random bytes with a sane length (64) is not a parseable
    request: that connection is closed, while another connection opened
    before keeps working (ApiVersions and Metadata)."""
    with kw.Connection(*broker.host_port, timeout=15) as good, kw.Connection(*broker.host_port, timeout=15) as bad:
        assert good.api_versions(0)["error_code"] == 0
        # An API key of 0x7fxx is never valid, so the frame cannot be a request by accident.
        bad.send_frame(b"\x7f\x7f" + os.urandom(62))
        assert bad.is_closed_by_peer(10)
        assert good.api_versions(0)["error_code"] == 0
        assert good.metadata_v1()["brokers"]


def test_truncated_request_closes_connection(broker):
    """A frame that ends in the middle of the request header (ApiVersions
    v3 whose compact client software strings are missing) closes the
    connection."""
    with kw.Connection(*broker.host_port, timeout=15) as c:
        c.send_frame(kw.i16(18) + kw.i16(3) + kw.i32(1) + kw.string("x") + b"\x00" + b"\x7f\x7f\x7f")
        assert c.is_closed_by_peer(10)


def test_oversized_frame_closes_only_that_connection(broker):
    """A frame length above socket.request.max.bytes (100 MiB default) closes
    that connection right after the 4-byte length (no body is awaited),
    while another connection keeps working; so does a negative length."""
    with kw.Connection(*broker.host_port, timeout=15) as good, kw.Connection(*broker.host_port, timeout=15) as bad:
        assert good.api_versions(0)["error_code"] == 0
        bad.send_raw(kw.i32(104857600 + 1) + b"\x00" * 100)
        assert bad.is_closed_by_peer(10)
        assert good.api_versions(0)["error_code"] == 0
    with kw.Connection(*broker.host_port, timeout=15) as bad:
        bad.send_raw(kw.i32(-5))
        assert bad.is_closed_by_peer(10)


def test_small_socket_request_max_bytes(broker_factory):
    """With socket.request.max.bytes=1024 a 2000-byte frame closes the
    connection, a 1000-byte request still works on a new connection."""
    b = broker_factory({"socket.request.max.bytes": "1024", "auto.create.topics.enable": "false"})
    with kw.Connection(*b.host_port, timeout=15) as c:
        c.send_raw(kw.i32(2000) + b"\x00" * 2000)
        assert c.is_closed_by_peer(10)
    with kw.Connection(*b.host_port, timeout=15) as c:
        # A Metadata v1 request padded with many (nonexistent) topic names: < 1024 bytes.
        names = [f"t{i:03d}" for i in range(150)]
        md = c.metadata_v1(names)
        assert len(md["topics"]) == 150
