"""ACLs with Kafka's StandardAuthorizer (`authorizer.class.name`,
`super.users`), managed with the stock `kafka-acls` tool
(org.apache.kafka.tools.AclCommand, `--bootstrap-server` and
`--command-config`) over a SASL_PLAINTEXT PLAIN listener, as the super
user `admin`. A second user, alice, is refused by a real client
(confluent-kafka) until `--add --producer` / `--add --consumer --group`
grant her the topic and the group; `--remove` takes a grant back; the
ACLs survive a restart. The PLAINTEXT listener (User:ANONYMOUS) is a super
user too: Apache Kafka's broker and controller talk over it."""

from __future__ import annotations

import time

from confluent_kafka import Consumer, KafkaError, Producer

import compat
from compat import kafka_tool
from test_sasl import PLAIN_MODULE, SaslBroker, client_conf, sasl_props, wait_authenticated

ACL_TOOL = "org.apache.kafka.tools.AclCommand"
AUTHORIZER = "org.apache.kafka.metadata.authorizer.StandardAuthorizer"


def acls_broker(broker_factory) -> SaslBroker:
    b = broker_factory(start=False)
    sasl_port = compat.free_port()
    b.props = sasl_props(b, sasl_port)
    b.props.update({
        "authorizer.class.name": AUTHORIZER,
        "super.users": "User:admin;User:ANONYMOUS",
    })
    b.start()
    return SaslBroker(b, sasl_port)


def acls(sb: SaslBroker, cfg, *args, check: bool = True):
    return kafka_tool(ACL_TOOL, "--bootstrap-server", sb.sasl_bootstrap, "--command-config", cfg, *args,
                      check=check)


def plain_config(tmp_path, user: str, password: str):
    path = tmp_path / f"{user}.properties"
    path.write_text(
        "security.protocol=SASL_PLAINTEXT\n"
        "sasl.mechanism=PLAIN\n"
        f'sasl.jaas.config={PLAIN_MODULE} required username="{user}" password="{password}";\n'
    )
    return path


def produce_errors(conf: dict, topic: str, n: int = 3) -> list:
    """Delivery errors of `n` messages (empty: all delivered)."""
    errors = []

    def done(err, _msg):
        if err is not None:
            errors.append(err)

    p = Producer({**conf, "acks": "all", "message.timeout.ms": 15000})
    for i in range(n):
        p.produce(topic, value=f"v{i}".encode(), on_delivery=done)
    p.flush(30)
    return errors


def consume(conf: dict, topic: str, group: str, expected: int, timeout: float = 30):
    """(values, errors) of a group consumer reading `topic` from the start."""
    c = Consumer({**conf, "group.id": group, "auto.offset.reset": "earliest"})
    values, errors = [], []
    try:
        c.subscribe([topic])
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and len(values) < expected:
            m = c.poll(0.5)
            if m is None:
                continue
            if m.error():
                errors.append(m.error())
                if m.error().code() in (KafkaError.GROUP_AUTHORIZATION_FAILED,
                                        KafkaError.TOPIC_AUTHORIZATION_FAILED):
                    break
                continue
            values.append(m.value().decode())
    finally:
        c.close()
    return values, errors


def test_kafka_acls_grant_a_user_produce_and_consume(broker_factory, tmp_path):
    sb = acls_broker(broker_factory)
    admin = plain_config(tmp_path, "admin", "admin-secret")
    topic, group = compat.unique("acl-topic"), compat.unique("acl-group")
    compat.create_topic(sb.plain_bootstrap, topic, partitions=1)
    alice = client_conf(sb, "PLAIN", "alice", "alice-secret")
    wait_authenticated(alice)

    # No ACL names the topic: alice may not write (deny by default).
    errors = produce_errors(alice, topic)
    assert errors and all(e.code() == KafkaError.TOPIC_AUTHORIZATION_FAILED for e in errors), errors

    acls(sb, admin, "--add", "--allow-principal", "User:alice", "--producer", "--topic", topic)
    assert produce_errors(alice, topic) == []

    # She still cannot read: neither the group nor the topic is granted.
    values, errors = consume(alice, topic, group, 3)
    assert values == [] and errors, errors
    assert errors[-1].code() in (KafkaError.GROUP_AUTHORIZATION_FAILED, KafkaError.TOPIC_AUTHORIZATION_FAILED), errors

    acls(sb, admin, "--add", "--allow-principal", "User:alice", "--consumer", "--topic", topic, "--group", group)
    values, errors = consume(alice, topic, compat.unique("acl-other-group"), 3, timeout=15)
    assert values == [], "another group is not granted"
    values, errors = consume(alice, topic, group, 3)
    assert values == ["v0", "v1", "v2"], errors

    listed = acls(sb, admin, "--list", "--topic", topic).stdout
    for op in ("WRITE", "READ", "DESCRIBE", "CREATE"):
        assert f"(principal=User:alice, host=*, operation={op}, permissionType=ALLOW)" in listed, listed

    # --remove takes WRITE back; a denied write again.
    acls(sb, admin, "--remove", "--force", "--allow-principal", "User:alice", "--operation", "Write",
         "--topic", topic)
    errors = produce_errors(alice, topic)
    assert errors and all(e.code() == KafkaError.TOPIC_AUTHORIZATION_FAILED for e in errors), errors

    # alice may not manage ACLs.
    cp = acls(sb, plain_config(tmp_path, "alice", "alice-secret"), "--list", check=False)
    assert "ClusterAuthorizationException" in cp.stdout + cp.stderr, (cp.stdout + cp.stderr)[-2000:]

    # The ACLs survive a restart.
    sb.broker.restart()
    wait_authenticated(alice)
    listed = acls(sb, admin, "--list", "--topic", topic).stdout
    assert "operation=READ, permissionType=ALLOW" in listed, listed
    assert "operation=WRITE" not in listed, listed
    listed = acls(sb, admin, "--list", "--group", group).stdout
    assert "(principal=User:alice, host=*, operation=READ, permissionType=ALLOW)" in listed, listed
    values, errors = consume(alice, topic, group + "-again", 3, timeout=15)
    assert values == [], "only the granted group"
