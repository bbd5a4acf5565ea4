"""pytest fixtures for klamm's compatibility suite: the broker under test
(chosen by KLAMM_COMPAT_BROKER=klamm|kafka, default klamm), a factory for
fresh brokers with custom properties, and broker logs attached to failures.
"""

from __future__ import annotations

import os

import pytest

import compat

# Properties of the shared session broker. Topics are always created
# explicitly by the tests, so auto-creation is off; message.max.bytes is
# Kafka's 1 MiB-ish default stated explicitly.
SESSION_PROPS = {
    "auto.create.topics.enable": "false",
    "message.max.bytes": "1048588",
}


def pytest_collection_modifyitems(config, items):
    # The torture suite runs from scripts/torture (its own step of
    # scripts/test), not a second time inside the compat suite.
    if os.environ.get("KLAMM_TORTURE") == "1":
        return
    skip = pytest.mark.skip(reason="torture suite: run by scripts/torture (KLAMM_TORTURE=1)")
    for item in items:
        if "torture" in item.keywords:
            item.add_marker(skip)


def pytest_report_header(config):
    return (f"klamm compat: broker under test = {compat.BROKER_KIND}, "
            f"Kafka tools and reference broker = {compat.KAFKA_VERSION}")


@pytest.fixture(scope="session")
def broker():
    """The shared broker (session-scoped). Tests must use unique topic and
    group names and must not restart it."""
    b = compat.Broker(props=SESSION_PROPS, name="session broker")
    try:
        b.start()
        yield b
    finally:
        b.close()


@pytest.fixture(scope="session")
def bootstrap(broker) -> str:
    return broker.bootstrap


@pytest.fixture
def broker_factory(request):
    """Starts fresh brokers with custom properties for this test only:
    `b = broker_factory({"log.flush.interval.messages": 1})`. The returned
    Broker has restart(graceful=True|False). All are stopped at test end."""
    made = []
    request.node._compat_brokers = made

    def make(props: dict | None = None, start: bool = True) -> compat.Broker:
        b = compat.Broker(props=props, name=f"fresh broker #{len(made) + 1}")
        made.append(b)
        if start:
            b.start()
        return b

    yield make
    for b in made:
        b.close()


@pytest.fixture(scope="session")
def kafka44_tool():
    """`kafka44_tool(MAIN_CLASS, *args, ...)`: compat.kafka_tool on Kafka
    4.4.0's jars (.deps/kafka-libs-4.4), whatever KLAMM_COMPAT_KAFKA_VERSION
    says."""
    libs = compat.kafka_libs("4.4")
    if not any(libs.glob("kafka-clients-*.jar")):
        pytest.fail(f"no Kafka 4.4 jars in {libs} (scripts/test fetches them)")

    def tool(main_class: str, *args, **kw):
        return compat.kafka_tool(main_class, *args, version="4.4", **kw)

    return tool


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    rep = outcome.get_result()
    if rep.failed:
        # Logs of the brokers this test used: the session broker if it asked
        # for it, and any fresh ones from broker_factory.
        used = [v for v in getattr(item, "funcargs", {}).values() if isinstance(v, compat.Broker)]
        used += getattr(item, "_compat_brokers", [])
        for b in dict.fromkeys(used):
            rep.sections.append((f"{b.name} log ({b.kind}, {b.log_path})", b.log_tail()))
