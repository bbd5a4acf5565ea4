"""TLS listeners (SSL and SASL_SSL) beside PLAINTEXT, configured as Apache
Kafka configures them: per-listener `listener.name.<l>.ssl.*` keys with a
PEM keystore file (key and chain in one file), a PKCS12 keystore, an
inline PEM keystore (`ssl.keystore.certificate.chain` / `ssl.keystore.key`)
with `ssl.client.auth=required` and a PEM truststore, and SASL_SSL with
SCRAM-SHA-512 inside TLS. The certificates (a CA, a server certificate
for localhost and 127.0.0.1, a client certificate) are made by the test
with the openssl CLI and keytool; no key is committed.

Clients: the stock console producer/consumer (Java) with a PEM and with a
PKCS12 truststore, confluent-kafka and kcat (librdkafka), kafka-python;
mTLS without a client certificate is refused, with one it works; a client
that connects and says nothing, or sends garbage instead of a ClientHello,
is dropped while other clients go on."""

from __future__ import annotations

import shutil
import socket
import time

import pytest
from confluent_kafka import Consumer, KafkaError, Producer
from confluent_kafka.admin import AdminClient

import compat
from compat import CONFIGS, CONSOLE_CONSUMER, CONSOLE_PRODUCER, kafka_tool

STORE_PASSWORD = "store-secret"
TRUST_PASSWORD = "trust-secret"
SCRAM_MODULE = "org.apache.kafka.common.security.scram.ScramLoginModule"
SCRAM_USER, SCRAM_PASSWORD = "tls-user", "tls-user-secret"
# connections.max.idle.ms of the broker: a silent client is dropped after it.
IDLE_MS = 8000
LISTENERS = ["SSL", "SSL_P12", "MTLS", "SASL_SSL"]


def openssl(*args, cwd):
    compat.run(["openssl", *args], timeout=60, cwd=cwd)


class Pki:
    """CA, server and client certificates in `dir`."""

    def __init__(self, dir):
        self.dir = dir
        d = str(dir)
        openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", "ca.key", "-out", "ca.pem",
                "-days", "2", "-subj", "/CN=klamm test CA",
                "-addext", "basicConstraints=critical,CA:TRUE", "-addext", "keyUsage=critical,keyCertSign,cRLSign",
                cwd=d)
        (dir / "server.ext").write_text(
            "subjectAltName=DNS:localhost,IP:127.0.0.1\nextendedKeyUsage=serverAuth\n"
            "keyUsage=critical,digitalSignature,keyEncipherment\n")
        (dir / "client.ext").write_text("extendedKeyUsage=clientAuth\nkeyUsage=critical,digitalSignature\n")
        for name, subj in (("server", "/CN=localhost"), ("client", "/C=DE/O=Klamm/OU=Dev/CN=tls-client")):
            openssl("req", "-newkey", "rsa:2048", "-nodes", "-keyout", f"{name}.key", "-out", f"{name}.csr",
                    "-subj", subj, cwd=d)
            openssl("x509", "-req", "-in", f"{name}.csr", "-CA", "ca.pem", "-CAkey", "ca.key", "-CAcreateserial",
                    "-days", "2", "-out", f"{name}.pem", "-extfile", f"{name}.ext", cwd=d)
        # The server's PEM keystore: PKCS#8 key and the chain in one file.
        self.server_keystore_pem = dir / "server-keystore.pem"
        self.server_keystore_pem.write_text(self.text("server.key") + self.text("server.pem") + self.text("ca.pem"))
        self.server_p12 = dir / "server.p12"
        openssl("pkcs12", "-export", "-in", "server.pem", "-inkey", "server.key", "-certfile", "ca.pem",
                "-name", "server", "-out", "server.p12", "-passout", f"pass:{STORE_PASSWORD}", cwd=d)
        # The Java clients' PKCS12 truststore, made as Kafka's docs make it.
        self.truststore_p12 = dir / "truststore.p12"
        compat.run(["keytool", "-importcert", "-noprompt", "-alias", "ca", "-file", dir / "ca.pem",
                    "-keystore", self.truststore_p12, "-storetype", "PKCS12", "-storepass", TRUST_PASSWORD],
                   timeout=60)

    def path(self, name):
        return self.dir / name

    def text(self, name):
        return (self.dir / name).read_text()

    def one_line(self, name):
        """A PEM file as a one-line property value (what a properties file
        with folded lines gives; Kafka reads a one-line key, klamm too)."""
        return " ".join(self.text(name).split())


def tls_props(b: compat.Broker, pki: Pki, ports: dict) -> dict:
    endpoints = [f"PLAINTEXT://127.0.0.1:{b.port}"] + [f"{l}://127.0.0.1:{ports[l]}" for l in LISTENERS]
    protocol_map = "PLAINTEXT:PLAINTEXT,SSL:SSL,SSL_P12:SSL,MTLS:SSL,SASL_SSL:SASL_SSL"
    props = {
        "listeners": ",".join(endpoints),
        "advertised.listeners": ",".join(endpoints),
        "listener.security.protocol.map": protocol_map,
        "connections.max.idle.ms": str(IDLE_MS),
        "auto.create.topics.enable": "false",
        # Broker-wide; SSL_P12 overrides the type.
        "ssl.keystore.type": "PEM",
        "ssl.enabled.protocols": "TLSv1.2,TLSv1.3",
        "listener.name.ssl.ssl.keystore.location": str(pki.server_keystore_pem),
        "listener.name.sasl_ssl.ssl.keystore.location": str(pki.server_keystore_pem),
        "listener.name.ssl_p12.ssl.keystore.type": "PKCS12",
        "listener.name.ssl_p12.ssl.keystore.location": str(pki.server_p12),
        "listener.name.ssl_p12.ssl.keystore.password": STORE_PASSWORD,
        "listener.name.ssl_p12.ssl.key.password": STORE_PASSWORD,
        "listener.name.mtls.ssl.keystore.type": "PEM",
        "listener.name.mtls.ssl.keystore.certificate.chain": pki.text("server.pem") + pki.text("ca.pem"),
        "listener.name.mtls.ssl.keystore.key": pki.one_line("server.key"),
        "listener.name.mtls.ssl.truststore.type": "PEM",
        "listener.name.mtls.ssl.truststore.location": str(pki.path("ca.pem")),
        "listener.name.mtls.ssl.client.auth": "required",
        "sasl.enabled.mechanisms": "SCRAM-SHA-512",
        "listener.name.sasl_ssl.scram-sha-512.sasl.jaas.config": f"{SCRAM_MODULE} required;",
    }
    if b.kind == "kafka":
        # A properties file: newlines in a value as the \n escape.
        chain = "listener.name.mtls.ssl.keystore.certificate.chain"
        props[chain] = props[chain].replace("\n", "\\n")
        props.update({
            "listeners": ",".join(endpoints + [f"CONTROLLER://127.0.0.1:{b.controller_port}"]),
            "listener.security.protocol.map": protocol_map + ",CONTROLLER:PLAINTEXT",
            "inter.broker.listener.name": "PLAINTEXT",
        })
    return props


class TlsBroker:
    def __init__(self, broker: compat.Broker, pki: Pki, ports: dict):
        self.broker = broker
        self.pki = pki
        self.ports = ports

    @property
    def plain_bootstrap(self) -> str:
        return self.broker.bootstrap

    def bootstrap(self, listener: str) -> str:
        return f"127.0.0.1:{self.ports[listener]}"


@pytest.fixture(scope="module")
def tls_broker(tmp_path_factory):
    if shutil.which("openssl") is None or shutil.which("keytool") is None:
        pytest.skip("needs the openssl CLI and keytool")
    pki = Pki(tmp_path_factory.mktemp("pki"))
    b = compat.Broker(name="tls broker")
    ports = {l: compat.free_port() for l in LISTENERS}
    b.props = tls_props(b, pki, ports)
    try:
        b.start()
        kafka_tool(CONFIGS, "--bootstrap-server", b.bootstrap, "--alter",
                   "--add-config", f"SCRAM-SHA-512=[password={SCRAM_PASSWORD}]",
                   "--entity-type", "users", "--entity-name", SCRAM_USER)
        yield TlsBroker(b, pki, ports)
    finally:
        b.close()


def ssl_conf(tb: TlsBroker, listener: str, with_cert: bool = False) -> dict:
    conf = {
        "bootstrap.servers": tb.bootstrap(listener),
        "security.protocol": "SSL",
        "ssl.ca.location": str(tb.pki.path("ca.pem")),
    }
    if with_cert:
        conf["ssl.certificate.location"] = str(tb.pki.path("client.pem"))
        conf["ssl.key.location"] = str(tb.pki.path("client.key"))
    return conf


def produce_consume(tb: TlsBroker, conf: dict, n: int = 20):
    topic = compat.unique("tls")
    compat.create_topic(tb.plain_bootstrap, topic, partitions=1)
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


def java_client_config(tmp_path, tb: TlsBroker, truststore: str, sasl: bool = False):
    lines = ["security.protocol=SASL_SSL" if sasl else "security.protocol=SSL"]
    if truststore == "PEM":
        lines += ["ssl.truststore.type=PEM", f"ssl.truststore.location={tb.pki.path('ca.pem')}"]
    else:
        lines += ["ssl.truststore.type=PKCS12", f"ssl.truststore.location={tb.pki.truststore_p12}",
                  f"ssl.truststore.password={TRUST_PASSWORD}"]
    if sasl:
        lines += ["sasl.mechanism=SCRAM-SHA-512",
                  f'sasl.jaas.config={SCRAM_MODULE} required username="{SCRAM_USER}" password="{SCRAM_PASSWORD}";']
    path = tmp_path / f"client-{truststore}-{'sasl' if sasl else 'ssl'}.properties"
    path.write_text("".join(l + "\n" for l in lines))
    return path


def console_round_trip(tb: TlsBroker, listener: str, cfg, n: int = 10):
    topic = compat.unique(f"tls-console-{listener.lower()}")
    compat.create_topic(tb.plain_bootstrap, topic, partitions=1)
    lines = [f"line-{i}" for i in range(n)]
    kafka_tool(CONSOLE_PRODUCER, "--bootstrap-server", tb.bootstrap(listener), "--topic", topic,
               "--producer.config", cfg, input="".join(l + "\n" for l in lines), timeout=90)
    cp = kafka_tool(CONSOLE_CONSUMER, "--bootstrap-server", tb.bootstrap(listener), "--topic", topic,
                    "--from-beginning", "--max-messages", str(n), "--timeout-ms", "20000",
                    "--consumer.config", cfg, timeout=90, check=False)
    assert cp.stdout.split() == lines, cp.stderr[-3000:]


@pytest.mark.parametrize("listener,truststore", [
    ("SSL", "PEM"),        # server: PEM keystore file
    ("SSL_P12", "PKCS12"),  # server: PKCS12 keystore
])
def test_java_console_tools_over_ssl(tls_broker, tmp_path, listener, truststore):
    console_round_trip(tls_broker, listener, java_client_config(tmp_path, tls_broker, truststore))


def test_java_console_tools_over_sasl_ssl_with_scram(tls_broker, tmp_path):
    cfg = java_client_config(tmp_path, tls_broker, "PEM", sasl=True)
    # SCRAM users reach Kafka's credential cache a moment after kafka-configs.
    deadline = time.monotonic() + 30
    conf = {"bootstrap.servers": tls_broker.bootstrap("SASL_SSL"), "security.protocol": "SASL_SSL",
            "ssl.ca.location": str(tls_broker.pki.path("ca.pem")), "sasl.mechanism": "SCRAM-SHA-512",
            "sasl.username": SCRAM_USER, "sasl.password": SCRAM_PASSWORD}
    while True:
        try:
            AdminClient(dict(conf)).list_topics(timeout=5)
            break
        except Exception:  # noqa: BLE001 - retried until the deadline
            if time.monotonic() > deadline:
                raise
            time.sleep(0.5)
    console_round_trip(tls_broker, "SASL_SSL", cfg)


@pytest.mark.parametrize("listener", ["SSL", "SSL_P12"])
def test_confluent_kafka_over_ssl(tls_broker, listener):
    produce_consume(tls_broker, ssl_conf(tls_broker, listener))


@pytest.mark.skipif(shutil.which("kcat") is None, reason="kcat not installed")
def test_kcat_over_ssl(tls_broker):
    topic = compat.unique("tls-kcat")
    compat.create_topic(tls_broker.plain_bootstrap, topic, partitions=1)
    tls = ["-X", "security.protocol=ssl", "-X", f"ssl.ca.location={tls_broker.pki.path('ca.pem')}"]
    records = [f"k{i}:v{i}" for i in range(10)]
    compat.run(["kcat", "-b", tls_broker.bootstrap("SSL"), "-t", topic, "-P", "-K:", *tls],
               input="\n".join(records) + "\n", timeout=60)
    out = compat.run(["kcat", "-b", tls_broker.bootstrap("SSL"), "-t", topic, "-C", "-o", "beginning", "-e", "-q",
                      "-f", "%k:%s\\n", *tls], timeout=60).stdout
    assert out.split() == records


def test_kafka_python_over_ssl(tls_broker):
    from kafka import KafkaConsumer, KafkaProducer

    topic = compat.unique("tls-kafka-python")
    compat.create_topic(tls_broker.plain_bootstrap, topic, partitions=1)
    tls = {"bootstrap_servers": tls_broker.bootstrap("SSL_P12"), "security_protocol": "SSL",
           "ssl_cafile": str(tls_broker.pki.path("ca.pem"))}
    p = KafkaProducer(acks="all", **tls)
    try:
        for i in range(10):
            p.send(topic, value=f"v{i}".encode()).get(timeout=30)
    finally:
        p.close(timeout=10)
    c = KafkaConsumer(topic, auto_offset_reset="earliest", consumer_timeout_ms=20000, **tls)
    try:
        got = [m.value.decode() for _, m in zip(range(10), c)]
    finally:
        c.close()
    assert got == [f"v{i}" for i in range(10)]


def test_mtls_requires_a_client_certificate(tls_broker):
    errors = []
    p = Producer({**ssl_conf(tls_broker, "MTLS"), "error_cb": errors.append, "reconnect.backoff.ms": 1000})
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline and not any(
            e.code() in (KafkaError._SSL, KafkaError._ALL_BROKERS_DOWN, KafkaError._TRANSPORT) for e in errors):
        p.poll(0.2)
    md_ok = True
    try:
        p.list_topics(timeout=3)
    except Exception:  # noqa: BLE001 - the refusal is what we expect
        md_ok = False
    assert not md_ok, "a client without a certificate got metadata from the mTLS listener"
    assert errors, "no error reported for a refused handshake"
    produce_consume(tls_broker, ssl_conf(tls_broker, "MTLS", with_cert=True))


def closed_by_server(sock: socket.socket, timeout: float) -> bool:
    """Whether the server closes `sock` within `timeout` (reading and
    discarding what it sends, e.g. a TLS alert)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        sock.settimeout(max(0.1, deadline - time.monotonic()))
        try:
            if not sock.recv(4096):
                return True
        except socket.timeout:
            return False
        except OSError:
            return True
    return False


def test_silent_and_garbage_clients_are_dropped(tls_broker):
    port = tls_broker.ports["SSL"]
    silent = socket.create_connection(("127.0.0.1", port), timeout=5)
    garbage = socket.create_connection(("127.0.0.1", port), timeout=5)
    try:
        # Not a ClientHello: an HTTP request and a Kafka ApiVersions frame.
        garbage.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n" + bytes.fromhex("0000000a0012000000000001ffff"))
        assert closed_by_server(garbage, 10), "a client sending garbage was not dropped"
        # Other clients are served meanwhile.
        produce_consume(tls_broker, ssl_conf(tls_broker, "SSL"), n=5)
        assert closed_by_server(silent, IDLE_MS / 1000 + 15), \
            f"a client that sent nothing was not dropped after connections.max.idle.ms ({IDLE_MS} ms)"
    finally:
        silent.close()
        garbage.close()
    produce_consume(tls_broker, ssl_conf(tls_broker, "SSL"), n=5)
