"""Incremental fetch sessions (KIP-227) with the Java consumer: the stock
console consumer's NetworkClient trace log shows every Fetch it sends and
every answer. A full first fetch (session 0, epoch 0) is answered with a
new session id; every later fetch names that session with epochs 1, 2, 3,
...; once caught up the consumer lists no partitions and the broker
answers with none (nothing changed); at exit the consumer closes the
session with a last fetch at epoch -1 (FINAL_EPOCH). With
`max.incremental.fetch.session.cache.slots=0` the broker declines
(session id 0) and the consumer keeps sending full fetches. Either way
every record arrives once."""

from __future__ import annotations

import os
import re
import subprocess
import time
import urllib.request

import pytest

import compat
from test_produce_fetch import NETWORK_TRACE_LOG4J

PARTITIONS = 4
PER_PARTITION = 10

REQUEST = re.compile(r"Sending FETCH request .*FetchRequestData\(.*?sessionId=(-?\d+), sessionEpoch=(-?\d+), topics=(.*)")
RESPONSE = re.compile(r"Received FETCH response .*FetchResponseData\(throttleTimeMs=\d+, errorCode=(-?\d+), sessionId=(-?\d+), responses=(.*)")


def fetches(stderr: str):
    """[(session_id, epoch, partitions listed)] and [(error, session_id,
    partitions answered)] in log order, without the closing fetch (epoch -1,
    no partitions) the consumer sends at exit, which must be last."""
    requests, responses = [], []
    for line in stderr.splitlines():
        if m := REQUEST.search(line):
            topics = m.group(3).split("forgottenTopicsData=")[0]
            requests.append((int(m.group(1)), int(m.group(2)), topics.count("FetchPartition(")))
        elif m := RESPONSE.search(line):
            responses.append((int(m.group(1)), int(m.group(2)), m.group(3).count("PartitionData(partitionIndex=")))
    assert requests and requests[-1][1:] == (-1, 0), f"no closing fetch: {requests[-3:]}"
    assert len(responses) == len(requests), (requests, responses)
    return requests[:-1], responses[:-1]


def console_consume(b, topic, tmp_path):
    log4j = tmp_path / "log4j2-network-trace.yaml"
    log4j.write_text(NETWORK_TRACE_LOG4J)
    # No --max-messages: after the records it idles until --timeout-ms, so
    # caught-up fetches are in the log too.
    return compat.run([compat.KAFKA_RUN_CLASS, compat.CONSOLE_CONSUMER, "--bootstrap-server", b.bootstrap,
                       "--topic", topic, "--from-beginning", "--timeout-ms", "4000",
                       "--consumer-property", "fetch.max.wait.ms=200"],
                      env={"KAFKA_LOG4J_CONFIG": str(log4j)}, timeout=90, check=False)


def fill(b, topic):
    compat.create_topic(b.bootstrap, topic, PARTITIONS)
    from confluent_kafka import Producer
    p = Producer({"bootstrap.servers": b.bootstrap, "acks": "all"})
    for part in range(PARTITIONS):
        for i in range(PER_PARTITION):
            p.produce(topic, value=f"p{part}-{i}".encode(), partition=part)
    assert p.flush(30) == 0


def expected_lines():
    return sorted(f"p{part}-{i}" for part in range(PARTITIONS) for i in range(PER_PARTITION))


def test_java_consumer_uses_an_incremental_session(broker, tmp_path):
    topic = compat.unique("sessions")
    fill(broker, topic)
    cp = console_consume(broker, topic, tmp_path)
    assert sorted(cp.stdout.split()) == expected_lines(), cp.stderr[-3000:]
    requests, responses = fetches(cp.stderr)
    assert len(requests) >= 3 and len(responses) >= 3, cp.stderr[-3000:]
    assert all(err == 0 for err, _, _ in responses), responses
    # The first fetch is full and opens a session.
    assert requests[0] == (0, 0, PARTITIONS)
    session = responses[0][1]
    assert session != 0
    # Every later fetch is incremental in that session, epochs 1, 2, 3, ...
    later = requests[1:]
    assert [(s, e) for s, e, _ in later] == [(session, n) for n in range(1, len(later) + 1)], requests
    assert all(s == session for _, s, _ in responses), responses
    # Caught up: nothing listed, nothing answered.
    assert later[-1][2] == 0, requests
    assert responses[-1][2] == 0, responses
    assert any(n < PARTITIONS for _, _, n in responses[1:]), responses


def test_sessions_declined_when_the_cache_has_no_slots(broker_factory, tmp_path):
    b = broker_factory({"max.incremental.fetch.session.cache.slots": 0})
    topic = compat.unique("no-sessions")
    fill(b, topic)
    cp = console_consume(b, topic, tmp_path)
    assert sorted(cp.stdout.split()) == expected_lines(), cp.stderr[-3000:]
    requests, responses = fetches(cp.stderr)
    assert len(requests) >= 2, cp.stderr[-3000:]
    assert all(r == (0, 0, PARTITIONS) for r in requests), requests
    assert all(err == 0 and s == 0 and n == PARTITIONS for err, s, n in responses), responses


@pytest.mark.skipif(compat.BROKER_KIND != "klamm", reason="klamm's /metrics")
def test_session_gauges(broker_factory, tmp_path):
    port = compat.free_port()
    b = broker_factory({"http.listener": f"http://127.0.0.1:{port}"})
    topic = compat.unique("gauged")
    fill(b, topic)

    def gauges():
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as r:
            text = r.read().decode()
        return tuple(int(re.search(rf"^{name} (\d+)$", text, re.M).group(1))
                     for name in ("klamm_fetch_sessions", "klamm_fetch_session_partitions"))

    assert gauges() == (0, 0)
    log4j = tmp_path / "log4j2.yaml"
    log4j.write_text(NETWORK_TRACE_LOG4J)
    consumer = subprocess.Popen(
        [str(compat.KAFKA_RUN_CLASS), compat.CONSOLE_CONSUMER, "--bootstrap-server", b.bootstrap, "--topic", topic,
         "--from-beginning", "--timeout-ms", "6000"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=dict(os.environ, KAFKA_LOG4J_CONFIG=str(log4j)))
    try:
        deadline = time.monotonic() + 30
        while gauges() != (1, PARTITIONS) and time.monotonic() < deadline and consumer.poll() is None:
            time.sleep(0.1)
        assert gauges() == (1, PARTITIONS), "one session of the consumer's partitions while it reads"
        assert consumer.wait(timeout=60) == 0
    finally:
        consumer.kill()
        consumer.wait()
    assert gauges() == (0, 0), "the consumer closed its session at exit"
