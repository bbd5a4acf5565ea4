"""SASL authentication on a SASL_PLAINTEXT listener served beside PLAINTEXT,
configured as Apache Kafka configures it (`listener.security.protocol.map`,
`sasl.enabled.mechanisms`, per-listener JAAS config): PLAIN users from the
JAAS string, SCRAM-SHA-256/512 users created with kafka-configs against the
running broker. Clients: confluent-kafka (librdkafka), kafka-topics with
`--command-config`, and the stock console producer/consumer with a client
config file (`--producer.config` / `--consumer.config`: the console tools
of Kafka 4.1 have no `--command-config`). Wrong passwords fail with
Kafka's message; requests other than ApiVersions and SaslHandshake before
authentication close the connection."""

from __future__ import annotations

import struct
import time

import pytest
from confluent_kafka import Consumer, KafkaError, Producer
from confluent_kafka.admin import AdminClient

import compat
import kafkawire
from compat import CONFIGS, CONSOLE_CONSUMER, CONSOLE_PRODUCER, kafka_tool

PLAIN_MODULE = "org.apache.kafka.common.security.plain.PlainLoginModule"
SCRAM_MODULE = "org.apache.kafka.common.security.scram.ScramLoginModule"
MECHANISMS = "PLAIN,SCRAM-SHA-256,SCRAM-SHA-512"
# How Kafka lists them in a SaslHandshake response (a HashMap's key order).
LISTED = ["PLAIN", "SCRAM-SHA-512", "SCRAM-SHA-256"]
PLAIN_JAAS = (f'{PLAIN_MODULE} required username="admin" password="admin-secret" '
              'user_admin="admin-secret" user_alice="alice-secret";')
SCRAM_USER, SCRAM_PASSWORD = "scram-user", "scram-secret"
PLAIN_FAILED = "Authentication failed: Invalid username or password"


def scram_failed(mechanism: str) -> str:
    return ("Authentication failed during authentication due to invalid credentials "
            f"with SASL mechanism {mechanism}")


def sasl_props(b: compat.Broker, sasl_port: int) -> dict:
    plain = f"PLAINTEXT://127.0.0.1:{b.port}"
    sasl = f"SASL_PLAINTEXT://127.0.0.1:{sasl_port}"
    props = {
        "listeners": f"{plain},{sasl}",
        "advertised.listeners": f"{plain},{sasl}",
        "listener.security.protocol.map": "PLAINTEXT:PLAINTEXT,SASL_PLAINTEXT:SASL_PLAINTEXT",
        "sasl.enabled.mechanisms": MECHANISMS,
        "listener.name.sasl_plaintext.plain.sasl.jaas.config": PLAIN_JAAS,
        "listener.name.sasl_plaintext.scram-sha-256.sasl.jaas.config": f"{SCRAM_MODULE} required;",
        "listener.name.sasl_plaintext.scram-sha-512.sasl.jaas.config": f"{SCRAM_MODULE} required;",
        "auto.create.topics.enable": "false",
    }
    if b.kind == "kafka":
        props.update({
            "listeners": f"{plain},{sasl},CONTROLLER://127.0.0.1:{b.controller_port}",
            "listener.security.protocol.map":
                "PLAINTEXT:PLAINTEXT,SASL_PLAINTEXT:SASL_PLAINTEXT,CONTROLLER:PLAINTEXT",
            "inter.broker.listener.name": "PLAINTEXT",
        })
    return props


def add_scram_user(plain_bootstrap: str, mechanism: str, user: str, password: str, extra: str = ""):
    kafka_tool(CONFIGS, "--bootstrap-server", plain_bootstrap, "--alter",
               "--add-config", f"{mechanism}=[{extra}password={password}]",
               "--entity-type", "users", "--entity-name", user)


class SaslBroker:
    def __init__(self, broker: compat.Broker, sasl_port: int):
        self.broker = broker
        self.sasl_port = sasl_port

    @property
    def plain_bootstrap(self) -> str:
        return self.broker.bootstrap

    @property
    def sasl_bootstrap(self) -> str:
        return f"127.0.0.1:{self.sasl_port}"


@pytest.fixture(scope="module")
def sasl_broker():
    b = compat.Broker(name="sasl broker")
    sasl_port = compat.free_port()
    b.props = sasl_props(b, sasl_port)
    try:
        b.start()
        for mechanism in ("SCRAM-SHA-256", "SCRAM-SHA-512"):
            add_scram_user(b.bootstrap, mechanism, SCRAM_USER, SCRAM_PASSWORD)
        yield SaslBroker(b, sasl_port)
    finally:
        b.close()


def client_conf(sb: SaslBroker, mechanism: str, user: str, password: str) -> dict:
    return {
        "bootstrap.servers": sb.sasl_bootstrap,
        "security.protocol": "SASL_PLAINTEXT",
        "sasl.mechanism": mechanism,
        "sasl.username": user,
        "sasl.password": password,
    }


def wait_authenticated(conf: dict, timeout: float = 30) -> None:
    """Lists topics until it works (SCRAM users reach Kafka's credential
    cache through its metadata log, a moment after kafka-configs returns)."""
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        try:
            AdminClient(dict(conf)).list_topics(timeout=5)
            return
        except Exception as e:  # noqa: BLE001 - retried until the deadline
            last = e
            time.sleep(0.5)
    raise AssertionError(f"could not authenticate: {last}")


def produce_consume(sb: SaslBroker, conf: dict, n: int = 20):
    topic = compat.unique("sasl")
    compat.create_topic(sb.plain_bootstrap, topic, partitions=1)
    wait_authenticated(conf)
    p = Producer({**conf, "acks": "all"})
    for i in range(n):
        p.produce(topic, key=f"k{i}".encode(), value=f"v{i}".encode())
    assert p.flush(30) == 0
    c = Consumer({**conf, "group.id": compat.unique("g"), "auto.offset.reset": "earliest"})
    try:
        c.subscribe([topic])
        got = compat.poll_messages(c, n, timeout=45)
    finally:
        c.close()
    assert [m.value().decode() for m in got] == [f"v{i}" for i in range(n)]


@pytest.mark.parametrize("mechanism,user,password", [
    ("PLAIN", "alice", "alice-secret"),
    ("SCRAM-SHA-256", SCRAM_USER, SCRAM_PASSWORD),
    ("SCRAM-SHA-512", SCRAM_USER, SCRAM_PASSWORD),
])
def test_confluent_kafka_produces_and_consumes(sasl_broker, mechanism, user, password):
    produce_consume(sasl_broker, client_conf(sasl_broker, mechanism, user, password))


def auth_errors(conf: dict, wait_s: float = 20) -> list:
    """The errors librdkafka reports while trying to connect with `conf`."""
    errors = []
    p = Producer({**conf, "error_cb": errors.append, "reconnect.backoff.ms": 1000})
    deadline = time.monotonic() + wait_s
    while time.monotonic() < deadline and not any(e.code() == KafkaError._AUTHENTICATION for e in errors):
        p.poll(0.2)
    return errors


@pytest.mark.parametrize("mechanism,user,message", [
    ("PLAIN", "alice", PLAIN_FAILED),
    ("PLAIN", "nobody", PLAIN_FAILED),
    ("SCRAM-SHA-256", SCRAM_USER, scram_failed("SCRAM-SHA-256")),
    ("SCRAM-SHA-512", SCRAM_USER, scram_failed("SCRAM-SHA-512")),
    ("SCRAM-SHA-512", "nobody", scram_failed("SCRAM-SHA-512")),
])
def test_wrong_password_fails_with_kafkas_message(sasl_broker, mechanism, user, message):
    errors = auth_errors(client_conf(sasl_broker, mechanism, user, "wrong-password"))
    auth = [e for e in errors if e.code() == KafkaError._AUTHENTICATION]
    assert auth, errors
    assert message in auth[0].str(), auth[0].str()


def command_config(tmp_path, mechanism: str, user: str, password: str):
    module = PLAIN_MODULE if mechanism == "PLAIN" else SCRAM_MODULE
    path = tmp_path / f"client-{mechanism}.properties"
    path.write_text(
        "security.protocol=SASL_PLAINTEXT\n"
        f"sasl.mechanism={mechanism}\n"
        f'sasl.jaas.config={module} required username="{user}" password="{password}";\n'
    )
    return path


@pytest.mark.parametrize("mechanism,user,password", [
    ("PLAIN", "alice", "alice-secret"),
    ("SCRAM-SHA-512", SCRAM_USER, SCRAM_PASSWORD),
])
def test_console_tools_with_a_client_config_file(sasl_broker, tmp_path, mechanism, user, password):
    topic = compat.unique("sasl-console")
    compat.create_topic(sasl_broker.plain_bootstrap, topic, partitions=1)
    wait_authenticated(client_conf(sasl_broker, mechanism, user, password))
    cfg = command_config(tmp_path, mechanism, user, password)
    lines = [f"line-{i}" for i in range(10)]
    kafka_tool(CONSOLE_PRODUCER, "--bootstrap-server", sasl_broker.sasl_bootstrap, "--topic", topic,
               "--producer.config", cfg, input="".join(l + "\n" for l in lines), timeout=90)
    cp = kafka_tool(CONSOLE_CONSUMER, "--bootstrap-server", sasl_broker.sasl_bootstrap, "--topic", topic,
                    "--from-beginning", "--max-messages", str(len(lines)), "--timeout-ms", "20000",
                    "--consumer.config", cfg, timeout=90, check=False)
    assert cp.stdout.split() == lines, cp.stderr[-3000:]


def test_kafka_topics_with_command_config(sasl_broker, tmp_path):
    topic = compat.unique("sasl-topics")
    cfg = command_config(tmp_path, "PLAIN", "alice", "alice-secret")
    kafka_tool(compat.TOPICS, "--bootstrap-server", sasl_broker.sasl_bootstrap, "--command-config", cfg,
               "--create", "--topic", topic, "--partitions", "2", "--replication-factor", "1")
    listed = kafka_tool(compat.TOPICS, "--bootstrap-server", sasl_broker.sasl_bootstrap,
                        "--command-config", cfg, "--list").stdout.split()
    assert topic in listed
    bad = command_config(tmp_path, "PLAIN", "alice", "wrong")
    cp = kafka_tool(compat.TOPICS, "--bootstrap-server", sasl_broker.sasl_bootstrap,
                    "--command-config", bad, "--list", check=False)
    assert cp.returncode != 0 and PLAIN_FAILED in cp.stdout + cp.stderr, (cp.stdout + cp.stderr)[-3000:]


def test_console_producer_with_a_wrong_password_fails(sasl_broker, tmp_path):
    topic = compat.unique("sasl-console-bad")
    compat.create_topic(sasl_broker.plain_bootstrap, topic, partitions=1)
    cfg = command_config(tmp_path, "SCRAM-SHA-512", SCRAM_USER, "wrong-password")
    cp = kafka_tool(CONSOLE_PRODUCER, "--bootstrap-server", sasl_broker.sasl_bootstrap, "--topic", topic,
                    "--producer.config", cfg, "--timeout", "1000",
                    input="never\n", timeout=90, check=False)
    out = cp.stdout + cp.stderr
    assert "SaslAuthenticationException" in out and scram_failed("SCRAM-SHA-512") in out, out[-3000:]


# --- The wire before authentication ----------------------------------------

API_METADATA, API_SASL_HANDSHAKE, API_SASL_AUTHENTICATE = 3, 17, 36


def handshake(c: kafkawire.Connection, mechanism: str, version: int = 1) -> tuple[int, list[str]]:
    r = c.request(API_SASL_HANDSHAKE, version, kafkawire.string(mechanism))
    error = r.i16()
    mechanisms = [r.string() for _ in range(r.array_len())]
    return error, mechanisms


def test_only_sasl_requests_before_authentication(sasl_broker):
    host, port = "127.0.0.1", sasl_broker.sasl_port
    with kafkawire.Connection(host, port) as c:
        c.send_request(API_METADATA, 1, kafkawire.i32(-1))
        assert c.is_closed_by_peer(), "Metadata before authentication must close the connection"
    with kafkawire.Connection(host, port) as c:
        assert c.api_versions(version=0)["error_code"] == 0
        error, mechanisms = handshake(c, "GSSAPI")
        assert (error, mechanisms) == (33, LISTED)
        assert c.is_closed_by_peer()
    with kafkawire.Connection(host, port) as c:
        assert handshake(c, "PLAIN") == (0, LISTED)
        c.send_request(API_METADATA, 1, kafkawire.i32(-1))
        # Kafka answers with the request's error response (nothing in it)
        # and closes; klamm closes without an answer. Neither serves it.
        try:
            r = kafkawire.Reader(c.recv_frame())
        except (kafkawire.ConnectionClosed, ConnectionResetError):
            pass
        else:
            r.i32()
            md = kafkawire.parse_metadata_v1(r)
            assert not md["brokers"] and not md["topics"], md
            assert c.is_closed_by_peer(), "Metadata during authentication must close the connection"


def authenticate_plain(c: kafkawire.Connection, user: str, password: str, version: int = 1):
    token = f"\0{user}\0{password}".encode()
    r = c.request(API_SASL_AUTHENTICATE, version, kafkawire.nbytes(token))
    error = r.i16()
    message = r.string()
    return error, message


def test_plain_over_the_wire(sasl_broker):
    host, port = "127.0.0.1", sasl_broker.sasl_port
    with kafkawire.Connection(host, port) as c:
        assert handshake(c, "PLAIN")[0] == 0
        assert authenticate_plain(c, "alice", "nope") == (58, PLAIN_FAILED)
        assert c.is_closed_by_peer()
    with kafkawire.Connection(host, port) as c:
        assert handshake(c, "PLAIN")[0] == 0
        assert authenticate_plain(c, "alice", "alice-secret") == (0, "")
        md = c.metadata_v1()
        assert [b[2] for b in md["brokers"]] == [port]
        # After authentication, another exchange is refused, not served.
        assert authenticate_plain(c, "alice", "alice-secret")[0] == 34


def test_plain_with_handshake_v0_raw_tokens(sasl_broker):
    with kafkawire.Connection("127.0.0.1", sasl_broker.sasl_port) as c:
        assert handshake(c, "PLAIN", version=0)[0] == 0
        c.send_frame(b"\0alice\0alice-secret")
        assert c.recv_frame() == b""
        assert c.metadata_v1()["brokers"]


def test_scram_credentials_are_described_and_deleted(sasl_broker):
    admin = AdminClient({"bootstrap.servers": sasl_broker.plain_bootstrap})
    user = compat.unique("described")
    add_scram_user(sasl_broker.plain_bootstrap, "SCRAM-SHA-256", user, "pw-256", extra="iterations=8192,")
    desc = admin.describe_user_scram_credentials([user])[user].result()
    infos = [(i.mechanism.name, i.iterations) for i in desc.scram_credential_infos]
    assert infos == [("SCRAM_SHA_256", 8192)]
    kafka_tool(CONFIGS, "--bootstrap-server", sasl_broker.plain_bootstrap, "--alter",
               "--delete-config", "SCRAM-SHA-256", "--entity-type", "users", "--entity-name", user)
    with pytest.raises(Exception) as e:
        admin.describe_user_scram_credentials([user])[user].result()
    assert "does not exist" in str(e.value)
    # The tools refuse few iterations themselves; the broker does too.
    assert alter_scram_raw(sasl_broker, user, mechanism=1, iterations=100) == [(user, 93, "Too few iterations")]
    assert alter_scram_raw(sasl_broker, user, mechanism=1, iterations=20000) == [(user, 93, "Too many iterations")]
    assert alter_scram_raw(sasl_broker, user, mechanism=7, iterations=4096) == [(user, 33, "Unknown SCRAM mechanism")]
    assert alter_scram_raw(sasl_broker, "", mechanism=1, iterations=4096) == [("", 93, "Username must not be empty")]


def compact_bytes(b: bytes) -> bytes:
    return kafkawire.uvarint(len(b) + 1) + b


def alter_scram_raw(sb: SaslBroker, user: str, mechanism: int, iterations: int):
    """AlterUserScramCredentials v0 with one upsertion; its results."""
    body = (kafkawire.uvarint(1)  # no deletions
            + kafkawire.uvarint(2) + kafkawire.compact_string(user) + kafkawire.i8(mechanism)
            + kafkawire.i32(iterations) + compact_bytes(b"salt") + compact_bytes(b"\x01" * 32)
            + kafkawire.uvarint(0) + kafkawire.uvarint(0))
    with kafkawire.Connection(*sb.broker.host_port) as c:
        r = c.request(51, 0, body, header_version=2, response_header_version=1)
        r.i32()
        results = []
        for _ in range(r_uvarint(r) - 1):
            name = r.take(r_uvarint(r) - 1).decode()
            code = r.i16()
            n = r_uvarint(r)
            message = r.take(n - 1).decode() if n else None
            r_uvarint(r)
            results.append((name, code, message))
        return results


def r_uvarint(r) -> int:
    shift = value = 0
    while True:
        b = r.take(1)[0]
        value |= (b & 0x7F) << shift
        if not b & 0x80:
            return value
        shift += 7


def test_scram_users_survive_restart(broker_factory):
    b = broker_factory(start=False)
    sasl_port = compat.free_port()
    b.props = sasl_props(b, sasl_port)
    b.start()
    add_scram_user(b.bootstrap, "SCRAM-SHA-512", "durable", "durable-secret")
    sb = SaslBroker(b, sasl_port)
    conf = client_conf(sb, "SCRAM-SHA-512", "durable", "durable-secret")
    wait_authenticated(conf)
    b.restart()
    wait_authenticated(conf)
    assert any(e.code() == KafkaError._AUTHENTICATION
               for e in auth_errors(client_conf(sb, "SCRAM-SHA-512", "durable", "wrong")))



def test_both_scram_mechanisms_in_one_command_are_refused(sasl_broker):
    """Kafka's documented example, both mechanisms in one kafka-configs
    call, is refused by Kafka 4.1 itself (one change per user per
    request, ScramControlManager); klamm does the same."""
    user = compat.unique("both")
    cp = kafka_tool(CONFIGS, "--bootstrap-server", sasl_broker.plain_bootstrap, "--alter", "--add-config",
                    "SCRAM-SHA-256=[iterations=8192,password=both-secret],SCRAM-SHA-512=[password=both-secret]",
                    "--entity-type", "users", "--entity-name", user, check=False)
    assert cp.returncode != 0
    assert "A user credential cannot be altered twice in the same request" in cp.stdout + cp.stderr
    admin = AdminClient({"bootstrap.servers": sasl_broker.plain_bootstrap})
    with pytest.raises(Exception) as e:
        admin.describe_user_scram_credentials([user])[user].result()
    assert "does not exist" in str(e.value)
