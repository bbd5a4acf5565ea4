"""klamm for test suites: the klamm broker binary (a Kafka-compatible
single-node broker) bundled in a wheel, a `Broker` context manager that
runs it with ephemeral data on a free port, and a pytest plugin
(`kafka_broker`, `kafka_broker_factory`, `@pytest.mark.klamm_config`)."""

from ._broker import Broker, BrokerError, binary_path

try:
    from importlib.metadata import PackageNotFoundError, version

    try:
        __version__ = version("klamm")
    except PackageNotFoundError:  # imported from a source tree
        __version__ = "0+unknown"
except ImportError:  # Python < 3.8
    __version__ = "0+unknown"

__all__ = ["Broker", "BrokerError", "binary_path", "__version__"]
