"""Tests of the installed `klamm` wheel, run by scripts/test-wheel in a
fresh virtual environment: the bundled binary, the `Broker` context
manager, and the pytest plugin's fixtures with kafka-python and
confluent-kafka."""

import os
import re
import socket
import sys
import sysconfig
import uuid

import pytest
from confluent_kafka import Consumer, Producer
from kafka import KafkaConsumer, KafkaProducer
from kafka.admin import KafkaAdminClient, NewTopic

import klamm

TIMEOUT_S = 30


def topic_name() -> str:
    return f"t-{uuid.uuid4().hex[:12]}"


def kafka_python_round_trip(bootstrap: str, topic: str, count: int = 10) -> list:
    producer = KafkaProducer(bootstrap_servers=bootstrap, acks="all")
    for i in range(count):
        producer.send(topic, key=f"k{i}".encode(), value=f"v{i}".encode())
    producer.flush(TIMEOUT_S)
    producer.close()
    consumer = KafkaConsumer(
        topic,
        bootstrap_servers=bootstrap,
        auto_offset_reset="earliest",
        consumer_timeout_ms=TIMEOUT_S * 1000,
    )
    got = []
    for record in consumer:
        got.append((record.key, record.value))
        if len(got) == count:
            break
    consumer.close()
    return got


def test_the_installed_package_and_its_binary_are_used():
    # Not python/klamm from the source tree, not a klamm on PATH.
    assert klamm.__file__.startswith(sysconfig.get_path("purelib")), klamm.__file__
    assert klamm.binary_path() == os.path.join(sysconfig.get_path("scripts"), "klamm")
    # The crate's version (this file is in the repository beside Cargo.toml).
    cargo_toml = os.path.join(os.path.dirname(__file__), "..", "..", "Cargo.toml")
    with open(cargo_toml) as f:
        (crate_version,) = re.findall(r'^version = "([^"]+)"$', f.read(), re.M)[:1]
    assert klamm.__version__ == crate_version


def test_kafka_python_round_trip(kafka_broker):
    topic = topic_name()
    got = kafka_python_round_trip(kafka_broker.bootstrap_servers, topic)
    assert got == [(f"k{i}".encode(), f"v{i}".encode()) for i in range(10)]


def test_confluent_kafka_round_trip(kafka_broker):
    topic = topic_name()
    producer = Producer({"bootstrap.servers": kafka_broker.bootstrap_servers})
    for i in range(10):
        producer.produce(topic, key=f"k{i}", value=f"v{i}", headers=[("h", b"x")])
    assert producer.flush(TIMEOUT_S) == 0
    consumer = Consumer({
        "bootstrap.servers": kafka_broker.bootstrap_servers,
        "group.id": "g-" + topic,
        "auto.offset.reset": "earliest",
    })
    consumer.subscribe([topic])
    got = []
    try:
        while len(got) < 10:
            msg = consumer.poll(TIMEOUT_S)
            assert msg is not None, f"timed out after {len(got)} records"
            assert msg.error() is None, msg.error()
            got.append((msg.key(), msg.value(), msg.headers()))
        consumer.commit(asynchronous=False)
    finally:
        consumer.close()
    assert got == [(f"k{i}".encode(), f"v{i}".encode(), [("h", b"x")]) for i in range(10)]


def test_kafka_broker_is_the_session_broker(kafka_broker, kafka_broker_session):
    assert kafka_broker is kafka_broker_session
    # The ini option configured it (pytest.ini: klamm_config).
    assert kafka_broker.config == {"group.initial.rebalance.delay.ms": "0"}


def partitions_of_new_topic(bootstrap: str) -> int:
    # Auto-created by a produce: the broker's num.partitions decides.
    topic = topic_name()
    producer = KafkaProducer(bootstrap_servers=bootstrap)
    producer.send(topic, b"x").get(timeout=TIMEOUT_S)
    partitions = producer.partitions_for(topic)
    producer.close()
    return len(partitions)


@pytest.mark.klamm_config({"num.partitions": 3})
def test_marker_gives_a_fresh_broker_with_its_configs(kafka_broker, kafka_broker_session):
    assert kafka_broker is not kafka_broker_session
    assert kafka_broker.config["num.partitions"] == "3"
    assert partitions_of_new_topic(kafka_broker.bootstrap_servers) == 3
    assert partitions_of_new_topic(kafka_broker_session.bootstrap_servers) == 1


@pytest.mark.klamm_config(num_partitions=2, auto_create_topics_enable=False)
def test_marker_keywords_name_configs_with_underscores_for_dots(kafka_broker):
    assert kafka_broker.config["num.partitions"] == "2"
    assert kafka_broker.config["auto.create.topics.enable"] == "false"
    bootstrap = kafka_broker.bootstrap_servers
    admin = KafkaAdminClient(bootstrap_servers=bootstrap)
    try:
        # No partition count: the broker's default (KIP-464).
        admin.create_topics([NewTopic("explicit", num_partitions=-1, replication_factor=-1)])
    finally:
        admin.close()
    consumer = KafkaConsumer(bootstrap_servers=bootstrap)
    try:
        assert consumer.partitions_for_topic("explicit") == {0, 1}
    finally:
        consumer.close()


@pytest.mark.parametrize("kafka_broker", [{"num.partitions": 2}, {"num.partitions": 4}], indirect=True)
def test_indirect_parametrization(kafka_broker):
    want = int(kafka_broker.config["num.partitions"])
    assert partitions_of_new_topic(kafka_broker.bootstrap_servers) == want


def test_two_brokers_at_once(kafka_broker_factory):
    a = kafka_broker_factory()
    b = kafka_broker_factory({"num.partitions": 2})
    assert a.port != b.port
    topic = topic_name()
    assert len(kafka_python_round_trip(a.bootstrap_servers, topic, count=3)) == 3
    # b has its own data: the topic written to a does not exist there.
    consumer = KafkaConsumer(bootstrap_servers=b.bootstrap_servers)
    try:
        assert topic not in consumer.topics()
    finally:
        consumer.close()
    assert partitions_of_new_topic(b.bootstrap_servers) == 2


def test_clean_shutdown_removes_the_data():
    with klamm.Broker() as broker:
        kafka_python_round_trip(broker.bootstrap_servers, topic_name(), count=3)
        data_root = broker.data_root
        port = broker.port
        (ephemeral,) = [d for d in os.listdir(data_root) if d.startswith("klamm-ephemeral-")]
        assert os.path.exists(os.path.join(data_root, ephemeral, "meta.properties"))
        assert broker.running()
    assert broker.returncode == 0, broker.returncode
    assert not os.path.exists(data_root)
    assert not broker.running()
    with pytest.raises(OSError):
        socket.create_connection(("127.0.0.1", port), timeout=2).close()
    with pytest.raises(klamm.BrokerError):
        broker.bootstrap_servers
    broker.stop()  # a second stop is harmless


def test_killed_broker_leaves_nothing():
    broker = klamm.Broker(stop_timeout_s=0.001).start()
    data_root = broker.data_root
    os.kill(broker.pid, 19)  # SIGSTOP: it cannot act on SIGTERM, so stop() kills it
    assert broker.stop() == -9
    assert not os.path.exists(data_root)


def test_bad_config_is_reported_with_the_brokers_message():
    with pytest.raises(klamm.BrokerError, match="num.partitions"):
        klamm.Broker({"num.partitions": "many"}).start()


def test_kafka_environment_variables_do_not_leak_into_the_broker(monkeypatch):
    monkeypatch.setenv("KAFKA_LISTENERS", "PLAINTEXT://127.0.0.1:1")
    monkeypatch.setenv("KAFKA_NUM_PARTITIONS", "not a number")
    with klamm.Broker() as broker:
        assert broker.port != 1


def test_pytest_plugin_is_registered_by_the_entry_point(pytestconfig):
    assert pytestconfig.pluginmanager.has_plugin("klamm")
    assert sys.modules["klamm.pytest_plugin"].__file__.startswith(sysconfig.get_path("purelib"))
