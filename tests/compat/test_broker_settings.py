"""Broker settings that klamm accepts are applied as Kafka applies them:
fetch.max.bytes caps a Fetch's max_bytes (the first batch still comes
whole, KIP-74), broker.rack is reported in Metadata and DescribeCluster,
socket.receive.buffer.bytes / socket.send.buffer.bytes and
socket.listen.backlog.size configure the listening socket (Kafka refuses to
start on a taken port; so does klamm, with the address in the message)."""

from __future__ import annotations

import socket

import compat
import kafkawire as kw


def test_fetch_max_bytes_caps_the_request(broker_factory):
    b = broker_factory({"fetch.max.bytes": 1024})
    topic = compat.unique("fetchcap")
    compat.create_topic(b.bootstrap, topic, 1)
    host, port = b.host_port
    with kw.Connection(host, port, timeout=15) as c:
        for i in range(3):
            r = c.produce(topic, 0, kw.record_batch([(b"k", bytes([65 + i]) * 600)]), version=7)
            assert r["error_code"] == 0, r
        # The client asks for 10 MiB; the broker returns what fits in 1,024
        # bytes, at least one batch.
        f = c.fetch_v4(topic, 0, 0, max_bytes=10 << 20, partition_max_bytes=10 << 20)
        assert f["error_code"] == 0 and f["high_watermark"] == 3, f
        assert kw.batch_offsets(f["records"]) == [0], f
        f = c.fetch_v4(topic, 0, 1, max_bytes=10 << 20, partition_max_bytes=10 << 20)
        assert kw.batch_offsets(f["records"]) == [1], f


def test_broker_rack_is_reported(broker_factory):
    b = broker_factory({"broker.rack": "rack-a"})
    host, port = b.host_port
    with kw.Connection(host, port, timeout=15) as c:
        md = c.metadata_v1([])
    assert list(md["racks"].values()) == ["rack-a"], md
    admin = compat.admin(b.bootstrap)
    cluster = admin.describe_cluster(request_timeout=15).result(timeout=30)
    assert [n.rack for n in cluster.nodes] == ["rack-a"]


def test_socket_settings_are_accepted_and_a_taken_port_is_an_error(broker_factory):
    b = broker_factory({
        "socket.receive.buffer.bytes": 65536,
        "socket.send.buffer.bytes": 65536,
        "socket.listen.backlog.size": 10,
    })
    topic = compat.unique("sockets")
    compat.create_topic(b.bootstrap, topic, 1)
    with kw.Connection(*b.host_port, timeout=15) as c:
        assert c.produce(topic, 0, kw.record_batch([(b"k", b"v")]), version=7)["error_code"] == 0
    if compat.BROKER_KIND != "klamm":
        return
    # A second broker on the same port fails to start and says where.
    import subprocess
    import tempfile
    with tempfile.TemporaryDirectory() as d:
        r = subprocess.run([str(compat.klamm_binary()),
                            "--override", f"listeners=PLAINTEXT://127.0.0.1:{b.port}",
                            "--override", f"log.dirs={d}"],
                           capture_output=True, text=True, timeout=30, stdin=subprocess.DEVNULL)
    assert r.returncode != 0
    assert f"cannot listen on 127.0.0.1:{b.port}" in r.stderr, r.stderr
    with socket.create_connection(b.host_port, timeout=5):
        pass
