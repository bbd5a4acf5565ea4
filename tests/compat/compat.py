"""Shared helpers for klamm's compatibility suite: the broker under test
(klamm or Apache Kafka), bounded subprocess calls, the Kafka command-line
tools, and small admin/producer/consumer helpers.

Every call that can block has a timeout; nothing here waits forever.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import uuid
from pathlib import Path

import kafkawire

HERE = Path(__file__).resolve().parent
REPO = HERE.parent.parent
DEPS = Path(os.environ.get("KLAMM_DEPS_DIR", REPO / ".deps"))
KAFKA_RUN_CLASS = HERE / "bin" / "kafka-run-class"
JAVA_APPS = Path(os.environ.get("KLAMM_COMPAT_JAVA_APPS", DEPS / "java-apps"))
GO_GROUP_BIN = Path(os.environ.get("KLAMM_COMPAT_GO_BIN", DEPS / "bin" / "klamm-compat-group"))

BROKER_KIND = os.environ.get("KLAMM_COMPAT_BROKER", "klamm").strip().lower()
if BROKER_KIND not in ("klamm", "kafka"):
    raise RuntimeError(f"KLAMM_COMPAT_BROKER must be klamm or kafka, not {BROKER_KIND!r}")

# The Apache Kafka release whose jars the reference broker and the stock
# tools run from: 4.1 (.deps/kafka-libs) or 4.4 (.deps/kafka-libs-4.4),
# both fetched by scripts/test. Both need Java 17+ (kafka-run-class runs
# the `java` on PATH).
KAFKA_LIBS_BY_VERSION = {
    "4.1": DEPS / "kafka-libs",
    "4.4": DEPS / "kafka-libs-4.4",
}
KAFKA_VERSION = os.environ.get("KLAMM_COMPAT_KAFKA_VERSION", "4.1").strip()
if KAFKA_VERSION not in KAFKA_LIBS_BY_VERSION:
    raise RuntimeError(f"KLAMM_COMPAT_KAFKA_VERSION must be one of {sorted(KAFKA_LIBS_BY_VERSION)}, "
                       f"not {KAFKA_VERSION!r}")


def kafka_libs(version: str | None = None) -> Path:
    """The jar directory of Kafka `version` (default: KLAMM_COMPAT_KAFKA_VERSION)."""
    return KAFKA_LIBS_BY_VERSION[version or KAFKA_VERSION]


# Every kafka-run-class started from this process (kafka_tool, the
# reference broker, tests that run it directly) uses the chosen release.
os.environ["KAFKA_LIBS"] = str(kafka_libs())


def klamm_binary() -> Path:
    """The klamm binary: $KLAMM_BIN, else <cargo target dir>/release/klamm."""
    if os.environ.get("KLAMM_BIN"):
        return Path(os.environ["KLAMM_BIN"])
    target = Path(os.environ.get("CARGO_TARGET_DIR", REPO / "target"))
    return target / "release" / "klamm"


# Main classes of the stock Kafka tools (the bin/kafka-*.sh scripts).
TOPICS = "org.apache.kafka.tools.TopicCommand"
CONSOLE_PRODUCER = "org.apache.kafka.tools.ConsoleProducer"
CONSOLE_CONSUMER = "org.apache.kafka.tools.consumer.ConsoleConsumer"
CONSUMER_GROUPS = "org.apache.kafka.tools.consumer.group.ConsumerGroupCommand"
# kafka-configs: a Scala class up to 4.1, org.apache.kafka.tools in 4.4.
CONFIGS_BY_VERSION = {"4.1": "kafka.admin.ConfigCommand", "4.4": "org.apache.kafka.tools.ConfigCommand"}
CONFIGS = CONFIGS_BY_VERSION[KAFKA_VERSION]
KAFKA_MAIN = "kafka.Kafka"
STORAGE_TOOL = "kafka.tools.StorageTool"


def unique(prefix: str) -> str:
    """A topic/group name unique to this run."""
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class CommandError(AssertionError):
    pass


def run(cmd, *, timeout: float, input: str | bytes | None = None, check: bool = True,
        env: dict | None = None, cwd=None) -> subprocess.CompletedProcess:
    """Runs a command with a hard timeout, capturing output as text."""
    text = not isinstance(input, bytes)
    full_env = dict(os.environ)
    if env:
        full_env.update(env)
    try:
        cp = subprocess.run([str(c) for c in cmd], input=input, capture_output=True, text=text,
                            timeout=timeout, env=full_env, cwd=cwd)
    except subprocess.TimeoutExpired as e:
        out = e.stdout.decode(errors="replace") if isinstance(e.stdout, bytes) else (e.stdout or "")
        err = e.stderr.decode(errors="replace") if isinstance(e.stderr, bytes) else (e.stderr or "")
        raise CommandError(f"timed out after {timeout}s: {' '.join(map(str, cmd))}\n"
                           f"--- stdout ---\n{out[-4000:]}\n--- stderr ---\n{err[-4000:]}") from None
    if check and cp.returncode != 0:
        out = cp.stdout if isinstance(cp.stdout, str) else cp.stdout.decode(errors="replace")
        err = cp.stderr if isinstance(cp.stderr, str) else cp.stderr.decode(errors="replace")
        raise CommandError(f"exit {cp.returncode}: {' '.join(map(str, cmd))}\n"
                           f"--- stdout ---\n{out[-4000:]}\n--- stderr ---\n{err[-4000:]}")
    return cp


def kafka_tool(main_class: str, *args, timeout: float = 90, input=None, check=True,
               version: str | None = None):
    """Runs one stock Kafka tool (by main class) through kafka-run-class,
    from the jars of Kafka `version` ("4.1" or "4.4"; default:
    KLAMM_COMPAT_KAFKA_VERSION)."""
    return run([KAFKA_RUN_CLASS, main_class, *args], timeout=timeout, input=input, check=check,
               env={"KAFKA_LIBS": str(kafka_libs(version))})


# ---------------------------------------------------------------------------
# The broker under test.

_ACTIVE: set["Broker"] = set()


def active_brokers():
    return list(_ACTIVE)


class Broker:
    """One broker process (klamm or Apache Kafka) on a free 127.0.0.1 port
    with its own temp data dir. `restart()` keeps port and data dir."""

    def __init__(self, kind: str = BROKER_KIND, props: dict | None = None, name: str = "broker",
                 kafka_version: str | None = None):
        self.kind = kind
        # For kind "kafka": the release it runs (default KLAMM_COMPAT_KAFKA_VERSION).
        self.kafka_version = kafka_version or KAFKA_VERSION
        self.name = name
        self.props = {k: str(v) for k, v in (props or {}).items()}
        self.dir = Path(tempfile.mkdtemp(prefix=f"klamm-compat-{kind}-"))
        self.data_dir = self.dir / "data"
        self.log_path = self.dir / "broker.log"
        self.port = free_port()
        self.controller_port = free_port() if kind == "kafka" else None
        self.proc: subprocess.Popen | None = None
        self._formatted = False
        self._log_file = None
        self.starts = 0
        # Extra environment for the broker process (e.g. KLAMM_FAILPOINTS).
        self.env: dict[str, str] = {}

    @property
    def bootstrap(self) -> str:
        return f"127.0.0.1:{self.port}"

    @property
    def host_port(self) -> tuple[str, int]:
        return ("127.0.0.1", self.port)

    def effective_props(self) -> dict:
        listener = f"PLAINTEXT://127.0.0.1:{self.port}"
        props = {
            "node.id": "1",
            "log.dirs": str(self.data_dir),
            "listeners": listener,
            "advertised.listeners": listener,
            "group.initial.rebalance.delay.ms": "0",
        }
        if self.kind == "kafka":
            props.update({
                "process.roles": "broker,controller",
                "listeners": f"{listener},CONTROLLER://127.0.0.1:{self.controller_port}",
                "controller.listener.names": "CONTROLLER",
                "controller.quorum.voters": f"1@127.0.0.1:{self.controller_port}",
                "listener.security.protocol.map": "PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT",
                "inter.broker.listener.name": "PLAINTEXT",
                "offsets.topic.replication.factor": "1",
                "transaction.state.log.replication.factor": "1",
                "transaction.state.log.min.isr": "1",
                "share.coordinator.state.topic.replication.factor": "1",
                "share.coordinator.state.topic.min.isr": "1",
            })
        props.update(self.props)
        return props

    def _open_log(self):
        if self._log_file is None or self._log_file.closed:
            self._log_file = open(self.log_path, "ab")
        self._log_file.write(f"\n===== start #{self.starts + 1} at {time.strftime('%H:%M:%S')} =====\n".encode())
        self._log_file.flush()
        return self._log_file

    def start(self, timeout: float | None = None):
        assert self.proc is None or self.proc.poll() is not None, "broker already running"
        props = self.effective_props()
        log = self._open_log()
        if self.kind == "kafka":
            cfg = self.dir / "server.properties"
            cfg.write_text("".join(f"{k}={v}\n" for k, v in props.items()))
            if not self._formatted:
                cluster_id = kafkawire.random_cluster_id()
                kafka_tool(STORAGE_TOOL, "format", "-t", cluster_id, "-c", cfg, timeout=90,
                           version=self.kafka_version)
                self._formatted = True
            env = dict(os.environ, KAFKA_HEAP_OPTS="-Xmx512m -Xms256m",
                       KAFKA_LIBS=str(kafka_libs(self.kafka_version)))
            cmd = [KAFKA_RUN_CLASS, KAFKA_MAIN, str(cfg)]
            timeout = timeout or 60
        else:
            binary = klamm_binary()
            if not binary.exists():
                raise RuntimeError(f"klamm binary not found at {binary} (run cargo build --release)")
            cmd = [str(binary)]
            for k, v in props.items():
                cmd += ["--override", f"{k}={v}"]
            # KAFKA_LIBS is ours (kafka-run-class), not a Kafka property.
            env = {k: v for k, v in os.environ.items() if k != "KAFKA_LIBS"}
            env.update(self.env)
            env.setdefault("RUST_BACKTRACE", "1")
            timeout = timeout or 10
        self.proc = subprocess.Popen([str(c) for c in cmd], stdout=log, stderr=subprocess.STDOUT,
                                     stdin=subprocess.DEVNULL, env=env, start_new_session=True)
        self.starts += 1
        _ACTIVE.add(self)
        self.wait_ready(timeout)
        return self

    def wait_ready(self, timeout: float):
        """Ready = TCP connect works and ApiVersions v0 + Metadata v1 answer
        with this broker in the metadata."""
        deadline = time.monotonic() + timeout
        last = None
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"{self.kind} exited with {self.proc.returncode} during startup\n{self.log_tail()}")
            try:
                with kafkawire.Connection(*self.host_port, timeout=2) as c:
                    api = c.api_versions(version=0)
                    if api["error_code"] != 0:
                        raise RuntimeError(f"ApiVersions error {api['error_code']}")
                    md = c.metadata_v1()
                    if md["brokers"]:
                        return
                    last = "no brokers in metadata yet"
            except (OSError, kafkawire.WireError, RuntimeError) as e:
                last = repr(e)
            time.sleep(0.2)
        raise RuntimeError(f"{self.kind} not ready after {timeout}s ({last})\n{self.log_tail()}")

    def stop(self, graceful: bool = True, timeout: float = 60):
        if self.proc is None or self.proc.poll() is not None:
            return
        if graceful:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=timeout)
                return
            except subprocess.TimeoutExpired:
                pass
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(timeout=30)

    def restart(self, graceful: bool = True):
        """Stops (SIGTERM and wait, or SIGKILL) and starts again on the same
        port with the same data dir."""
        self.stop(graceful=graceful)
        self.start()

    def is_running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def log_tail(self, lines: int = 150) -> str:
        try:
            data = self.log_path.read_bytes()[-200_000:].decode(errors="replace")
        except OSError:
            return "(no broker log)"
        return "\n".join(data.splitlines()[-lines:])

    def close(self):
        try:
            self.stop(graceful=False)
        finally:
            _ACTIVE.discard(self)
            if self._log_file is not None:
                self._log_file.close()
            if not os.environ.get("KLAMM_COMPAT_KEEP"):
                shutil.rmtree(self.dir, ignore_errors=True)

    def __repr__(self):
        kind = f"kafka {self.kafka_version}" if self.kind == "kafka" else self.kind
        return f"Broker({kind}, {self.bootstrap}, {self.dir})"


# ---------------------------------------------------------------------------
# Client helpers (confluent-kafka / librdkafka).

def admin(bootstrap: str):
    from confluent_kafka.admin import AdminClient
    return AdminClient({"bootstrap.servers": bootstrap, "socket.timeout.ms": 10000})


def create_topic(bootstrap: str, name: str, partitions: int = 1, configs: dict | None = None,
                 timeout: float = 30):
    """Creates a topic with the admin API and waits until its metadata shows
    every partition with a leader."""
    from confluent_kafka.admin import NewTopic
    a = admin(bootstrap)
    fs = a.create_topics([NewTopic(name, num_partitions=partitions, replication_factor=1,
                                   config={k: str(v) for k, v in (configs or {}).items()})],
                         request_timeout=timeout, operation_timeout=timeout)
    fs[name].result(timeout=timeout)
    wait_topic(bootstrap, name, partitions, timeout)


def wait_topic(bootstrap: str, name: str, partitions: int, timeout: float = 30):
    a = admin(bootstrap)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        md = a.list_topics(topic=name, timeout=10)
        t = md.topics.get(name)
        if t is not None and t.error is None and len(t.partitions) == partitions and \
                all(p.leader >= 0 for p in t.partitions.values()):
            return
        time.sleep(0.2)
    raise AssertionError(f"topic {name} not ready with {partitions} partitions after {timeout}s")


def poll_messages(consumer, expected: int, timeout: float = 30) -> list:
    """Polls a confluent_kafka consumer until `expected` messages (or
    timeout), raising on any consumer error."""
    from confluent_kafka import KafkaException
    out = []
    deadline = time.monotonic() + timeout
    while len(out) < expected and time.monotonic() < deadline:
        m = consumer.poll(0.5)
        if m is None:
            continue
        if m.error():
            raise KafkaException(m.error())
        out.append(m)
    return out


def consume_all(bootstrap: str, topic: str, expected: int, timeout: float = 30, group: str | None = None,
                extra: dict | None = None):
    """Consumes from the beginning until `expected` messages (or timeout),
    raising on any consumer error. Returns confluent_kafka Message objects."""
    from confluent_kafka import Consumer
    conf = {
        "bootstrap.servers": bootstrap,
        "group.id": group or unique("consume-all"),
        "auto.offset.reset": "earliest",
        "enable.auto.commit": False,
        "enable.partition.eof": False,
        "session.timeout.ms": 10000,
    }
    conf.update(extra or {})
    c = Consumer(conf)
    out = []
    try:
        c.subscribe([topic])
        out = poll_messages(c, expected, timeout)
        if group is not None and out:
            c.commit(asynchronous=False)
    finally:
        c.close()
    return out


# ---------------------------------------------------------------------------
# Test applications on real Java client libraries (tests/compat/java/apps,
# built by scripts/test into .deps/java-apps): Kafka Streams, Spring Kafka.

class JavaApp:
    """One run of a test application (`Apps <name> args...`) in its own
    process group. Its stdout lines are collected by a reader thread;
    `wait_for(line)` waits for one; `stop()` closes its stdin (the apps
    exit on that) and kills it if it lingers."""

    def __init__(self, name: str, *args, kafka_clients: str | None = None):
        """`kafka_clients="4.4"` runs the app on that release's
        kafka-clients jar (ahead of the 4.1 one it was built with)."""
        import threading
        jar = JAVA_APPS / "klamm-compat-apps.jar"
        if not jar.exists():
            raise RuntimeError(f"{jar} missing: scripts/test builds tests/compat/java/apps")
        self.name = name
        self.log_path = Path(tempfile.mkdtemp(prefix=f"klamm-app-{name}-")) / "stderr.log"
        self._err = open(self.log_path, "wb")
        cp = f"{jar}:{JAVA_APPS / 'lib'}/*"
        if kafka_clients:
            (clients,) = kafka_libs(kafka_clients).glob("kafka-clients-*.jar")
            cp = f"{clients}:{cp}"
        self.proc = subprocess.Popen(
            ["java", "-Xmx384m", "-cp", cp, "dev.klamm.compat.Apps", name, *map(str, args)],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=self._err, start_new_session=True)
        self.lines: list[str] = []
        self._cv = threading.Condition()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self):
        for raw in self.proc.stdout:
            with self._cv:
                self.lines.append(raw.decode(errors="replace").rstrip("\n"))
                self._cv.notify_all()
        with self._cv:
            self._cv.notify_all()

    def wait_for(self, line: str, timeout: float = 60) -> None:
        """Waits until the app printed `line` (exactly); fails with its
        output and stderr tail otherwise."""
        deadline = time.monotonic() + timeout
        with self._cv:
            while line not in self.lines:
                left = deadline - time.monotonic()
                if left <= 0 or (self.proc.poll() is not None and line not in self.lines):
                    break
                self._cv.wait(min(left, 0.5))
            if line in self.lines:
                return
        raise AssertionError(f"{self.name} did not print {line!r} within {timeout}s "
                             f"(exit {self.proc.poll()}); stdout: {self.lines[-30:]}\n"
                             f"stderr tail:\n{self.stderr_tail()}")

    def wait_exit(self, timeout: float = 60) -> int:
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            raise AssertionError(f"{self.name} still running after {timeout}s; stdout: {self.lines[-30:]}\n"
                                 f"stderr tail:\n{self.stderr_tail()}") from None

    def stderr_tail(self, chars: int = 4000) -> str:
        self._err.flush()
        return self.log_path.read_text(errors="replace")[-chars:]

    def stop(self, timeout: float = 40) -> None:
        if self.proc.poll() is None:
            try:
                self.proc.stdin.close()
            except OSError:
                pass
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(10)
        self._err.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.stop()
