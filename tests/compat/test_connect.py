"""Kafka Connect in distributed mode (issue 11): a Kafka 4.1.2 worker
(org.apache.kafka.connect.cli.ConnectDistributed, connect-runtime and
connect-file from Maven Central, .deps/connect-libs) keeps its connector
configs, source offsets and statuses in three topics it creates on the
broker under test, compacted (it refuses topics that are not). A
FileStreamSource connector created through the REST API reads a file
into a topic; the worker is stopped and started again and finds its
connector and the source offset where it left them (no line produced
twice, lines appended meanwhile picked up); a FileStreamSink writes the
topic back to a file. Against KLAMM_COMPAT_BROKER=kafka the broker is
Apache Kafka 4.1.2."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest
from confluent_kafka import Consumer, TopicPartition
from confluent_kafka.admin import ConfigResource, ResourceType

import compat

CONNECT_LIBS = Path(os.environ.get("KLAMM_COMPAT_CONNECT_LIBS", compat.DEPS / "connect-libs"))
CONNECT_DISTRIBUTED = "org.apache.kafka.connect.cli.ConnectDistributed"

pytestmark = pytest.mark.skipif(not list(CONNECT_LIBS.glob("connect-file-*.jar")),
                                reason=f"no connect-file jar in {CONNECT_LIBS} (scripts/test fetches it)")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Worker:
    """One distributed-mode Connect worker process."""

    def __init__(self, bootstrap: str, name: str, internal: dict[str, str]):
        self.dir = Path(tempfile.mkdtemp(prefix="klamm-connect-"))
        self.port = free_port()
        props = {
            "bootstrap.servers": bootstrap,
            "group.id": name,
            "listeners": f"http://127.0.0.1:{self.port}",
            "key.converter": "org.apache.kafka.connect.storage.StringConverter",
            "value.converter": "org.apache.kafka.connect.storage.StringConverter",
            "config.storage.topic": internal["config"],
            "offset.storage.topic": internal["offset"],
            "status.storage.topic": internal["status"],
            "config.storage.replication.factor": "1",
            "offset.storage.replication.factor": "1",
            "status.storage.replication.factor": "1",
            "offset.flush.interval.ms": "500",
            # A restarted worker rejoins as a new member: its connector is
            # assigned again at once rather than after the default 5 min.
            "scheduled.rebalance.max.delay.ms": "0",
            "plugin.discovery": "only_scan",
        }
        self.cfg = self.dir / "worker.properties"
        self.cfg.write_text("".join(f"{k}={v}\n" for k, v in props.items()))
        log4j = self.dir / "log4j2.properties"
        log4j.write_text("status = error\n"
                         "appender.out.type = Console\nappender.out.name = OUT\n"
                         "appender.out.layout.type = PatternLayout\n"
                         "appender.out.layout.pattern = %d{HH:mm:ss.SSS} %-5p %c{1} - %m%n\n"
                         "rootLogger.level = warn\nrootLogger.appenderRef.out.ref = OUT\n"
                         "logger.connect.name = org.apache.kafka.connect.runtime\nlogger.connect.level = info\n")
        self.env = dict(os.environ, KAFKA_LIBS=str(CONNECT_LIBS), KAFKA_HEAP_OPTS="-Xmx384m",
                        KAFKA_LOG4J_CONFIG=str(log4j))
        self.log_path = self.dir / "connect.log"
        self.proc: subprocess.Popen | None = None
        self._log = None

    def start(self, timeout: float = 60) -> None:
        self._log = open(self.log_path, "ab")
        self.proc = subprocess.Popen([str(compat.KAFKA_RUN_CLASS), CONNECT_DISTRIBUTED, str(self.cfg)],
                                     stdout=self._log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                     env=self.env, start_new_session=True)
        deadline = time.monotonic() + timeout
        while True:
            try:
                # Answers once the worker has joined its group and read
                # the config topic.
                self.rest("GET", "/connectors")
                return
            except (urllib.error.URLError, ConnectionError, OSError):
                pass
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise AssertionError(f"Connect worker did not start within {timeout}s:\n{self.tail()}")
            time.sleep(0.5)

    def rest(self, method: str, path: str, body: dict | None = None):
        data = json.dumps(body).encode() if body is not None else None
        req = urllib.request.Request(f"http://127.0.0.1:{self.port}{path}", data=data, method=method,
                                     headers={"Content-Type": "application/json", "Accept": "application/json"})
        with urllib.request.urlopen(req, timeout=10) as r:
            raw = r.read()
            return json.loads(raw) if raw else None

    def wait_running(self, connector: str, timeout: float = 30) -> None:
        deadline = time.monotonic() + timeout
        status = None
        while time.monotonic() < deadline:
            try:
                status = self.rest("GET", f"/connectors/{connector}/status")
                tasks = status.get("tasks", [])
                if status["connector"]["state"] == "RUNNING" and tasks and all(t["state"] == "RUNNING" for t in tasks):
                    return
                if any(t["state"] == "FAILED" for t in tasks):
                    raise AssertionError(f"{connector} failed: {status}")
            except urllib.error.HTTPError:
                pass
            time.sleep(0.5)
        raise AssertionError(f"{connector} not running within {timeout}s: {status}\n{self.tail()}")

    def tail(self, chars: int = 6000) -> str:
        if self._log:
            self._log.flush()
        return self.log_path.read_text(errors="replace")[-chars:] if self.log_path.exists() else ""

    def stop(self) -> None:
        """SIGTERM: the worker commits its source offsets and leaves its group."""
        if self.proc and self.proc.poll() is None:
            os.killpg(self.proc.pid, 15)
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, 9)
                self.proc.wait(10)
        if self._log:
            self._log.close()
            self._log = None


def read_values(bootstrap: str, topic: str, expected: int, timeout: float = 30) -> list[bytes]:
    c = Consumer({"bootstrap.servers": bootstrap, "group.id": compat.unique("connect-read"),
                  "enable.auto.commit": False, "enable.partition.eof": False})
    try:
        c.assign([TopicPartition(topic, 0, 0)])
        got = compat.poll_messages(c, expected, timeout)
        # Nothing more arrives.
        got += compat.poll_messages(c, 1, 2)
        return [m.value() for m in got]
    finally:
        c.close()


def append_lines(path: Path, lines: list[str]) -> None:
    with open(path, "a") as f:
        f.write("".join(line + "\n" for line in lines))


def test_file_source_and_sink_survive_a_worker_restart(bootstrap):
    name = compat.unique("connect")
    internal = {k: f"{name}-{k}s" for k in ("config", "offset", "status")}
    topic = f"{name}-lines"
    compat.create_topic(bootstrap, topic, 1)
    work = Path(tempfile.mkdtemp(prefix="klamm-connect-files-"))
    source_file, sink_file = work / "in.txt", work / "out.txt"
    first = [f"line-{i}" for i in range(50)]
    append_lines(source_file, first)

    w = Worker(bootstrap, name, internal)
    try:
        w.start()
        # Connect created its topics, compacted.
        a = compat.admin(bootstrap)
        resources = [ConfigResource(ResourceType.TOPIC, t) for t in internal.values()]
        for res, fut in a.describe_configs(resources).items():
            assert fut.result(timeout=10)["cleanup.policy"].value == "compact", res
        w.rest("POST", "/connectors", {"name": "source", "config": {
            "connector.class": "org.apache.kafka.connect.file.FileStreamSourceConnector",
            "tasks.max": "1", "file": str(source_file), "topic": topic}})
        w.wait_running("source")
        assert read_values(bootstrap, topic, len(first)) == [s.encode() for s in first]

        w.stop()
        second = [f"line-{i}" for i in range(50, 80)]
        append_lines(source_file, second)
        w.start()
        # The connector's config came back from the config topic, and the
        # source offset from the offset topic: only the new lines follow.
        assert w.rest("GET", "/connectors") == ["source"]
        assert w.rest("GET", "/connectors/source/config")["file"] == str(source_file)
        w.wait_running("source")
        assert read_values(bootstrap, topic, len(first) + len(second)) == [s.encode() for s in first + second]

        w.rest("POST", "/connectors", {"name": "sink", "config": {
            "connector.class": "org.apache.kafka.connect.file.FileStreamSinkConnector",
            "tasks.max": "1", "file": str(sink_file), "topics": topic}})
        w.wait_running("sink")
        want = "".join(s + "\n" for s in first + second)
        deadline = time.monotonic() + 30
        while (sink_file.read_text() if sink_file.exists() else "") != want:
            assert time.monotonic() < deadline, f"sink file: {sink_file.read_text() if sink_file.exists() else None!r}"
            time.sleep(0.5)
    except BaseException:
        print(w.tail())
        raise
    finally:
        w.stop()
