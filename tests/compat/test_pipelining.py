"""Request pipelining on one connection (raw kafkawire): requests sent back
to back before any response is read are all answered, in request order,
each with its own correlation id. Real clients rely on this (librdkafka and
the Java client keep several requests in flight per connection)."""

from __future__ import annotations

import compat
import kafkawire as kw


def frame(c: kw.Connection, correlation_id: int, api_key: int, version: int, body: bytes) -> bytes:
    """The frame of one request with the given correlation id (not sent)."""
    c.correlation_id = correlation_id - 1
    payload = c.request_header(api_key, version) + body
    return kw.i32(len(payload)) + payload


def test_three_pipelined_requests_answered_in_order(broker, bootstrap):
    """ApiVersions v0 (correlation id 1001), Metadata v1 for a 2-partition
    topic (7) and ApiVersions v0 (42) are written one after another before
    anything is read; the three responses come back in that order with
    those correlation ids, and each parses as its API's answer."""
    topic = compat.unique("pipeline")
    compat.create_topic(bootstrap, topic, 2)
    with kw.Connection(*broker.host_port, timeout=15) as c:
        for f in (frame(c, 1001, kw.API_API_VERSIONS, 0, b""),
                  frame(c, 7, kw.API_METADATA, 1, kw.metadata_v1_body([topic])),
                  frame(c, 42, kw.API_API_VERSIONS, 0, b"")):
            c.send_raw(f)

        cid, r = c.recv_response()
        assert cid == 1001
        first = kw.parse_api_versions_v0(r)
        assert first["error_code"] == 0 and first["trailing_bytes"] == 0
        assert {kw.API_PRODUCE, kw.API_METADATA, kw.API_API_VERSIONS} <= set(first["apis"])

        cid, r = c.recv_response()
        assert cid == 7
        md = kw.parse_metadata_v1(r)
        assert r.remaining() == 0
        assert md["brokers"] == [(1, *broker.host_port)]
        assert md["topics"][topic]["error_code"] == 0
        assert sorted(md["topics"][topic]["partitions"]) == [0, 1]

        cid, r = c.recv_response()
        assert cid == 42
        assert kw.parse_api_versions_v0(r) == first


def test_burst_in_one_write(broker, bootstrap):
    """Twenty requests (ApiVersions v0 and Metadata v1 alternating, for
    correlation ids 100..119) written in a single sendall: twenty responses
    in order, none lost or merged, and the connection stays usable."""
    topic = compat.unique("pipeline-burst")
    compat.create_topic(bootstrap, topic, 1)
    with kw.Connection(*broker.host_port, timeout=15) as c:
        frames = b"".join(
            frame(c, 100 + i, kw.API_METADATA, 1, kw.metadata_v1_body([topic])) if i % 2
            else frame(c, 100 + i, kw.API_API_VERSIONS, 0, b"")
            for i in range(20))
        c.send_raw(frames)
        for i in range(20):
            cid, r = c.recv_response()
            assert cid == 100 + i
            if i % 2:
                md = kw.parse_metadata_v1(r)
                assert list(md["topics"]) == [topic] and md["topics"][topic]["error_code"] == 0
            else:
                assert kw.parse_api_versions_v0(r)["error_code"] == 0
            assert r.remaining() == 0
        c.correlation_id = 500
        assert c.api_versions(0)["error_code"] == 0
