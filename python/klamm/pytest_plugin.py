"""The pytest plugin (entry point `pytest11`, loaded once the wheel is
installed).

Fixtures:

- `kafka_broker`: a running `klamm.Broker`. By default the one broker of
  the session (started on first use, stopped at the end; its configs come
  from the `klamm_config` ini option). A test marked
  `@pytest.mark.klamm_config({...})` or parametrized indirectly
  (`@pytest.mark.parametrize("kafka_broker", [{...}], indirect=True)`) gets
  a fresh broker of its own with those configs, stopped after the test.
- `kafka_broker_session`: the session's broker, for session-scoped
  fixtures of your own.
- `kafka_broker_factory`: `factory(config=None, **options)` starts another
  broker (options as for `klamm.Broker`); all are stopped after the test.
"""

from __future__ import annotations

from typing import Any, Dict, Iterator, List, Mapping, Optional

import pytest

from ._broker import Broker

_MARKER = "klamm_config"
_INI = "klamm_config"


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addini(
        _INI,
        type="linelist",
        default=[],
        help="broker configs (key=value, one a line) of the session's kafka_broker",
    )


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        f"{_MARKER}(configs=None, **kv): run this test on a fresh klamm broker with these "
        "broker configs (a dict of Kafka property names, or keyword arguments with _ for .)",
    )


def _ini_configs(config: pytest.Config) -> Dict[str, str]:
    out: Dict[str, str] = {}
    for line in config.getini(_INI):
        key, sep, value = line.partition("=")
        if not sep:
            raise pytest.UsageError(f"{_INI}: expected key=value, got {line!r}")
        out[key.strip()] = value.strip()
    return out


def _marker_configs(marker: pytest.Mark) -> Dict[str, Any]:
    out: Dict[str, Any] = {}
    for arg in marker.args:
        if not isinstance(arg, Mapping):
            raise pytest.UsageError(f"@pytest.mark.{_MARKER} takes a dict of configs, got {arg!r}")
        out.update(arg)
    for key, value in marker.kwargs.items():
        out[key.replace("_", ".")] = value
    return out


@pytest.fixture(scope="session")
def kafka_broker_session(pytestconfig: pytest.Config) -> Iterator[Broker]:
    """The session's klamm broker."""
    with Broker(_ini_configs(pytestconfig)) as broker:
        yield broker


@pytest.fixture
def kafka_broker_factory() -> Iterator[Any]:
    """Starts brokers on demand: `factory(config=None, **options)`; each is
    stopped (and its data removed) after the test."""
    started: List[Broker] = []

    def factory(config: Optional[Mapping[str, Any]] = None, **options: Any) -> Broker:
        broker = Broker(config, **options)
        started.append(broker)
        return broker.start()

    yield factory
    for broker in reversed(started):
        broker.stop()


@pytest.fixture
def kafka_broker(request: pytest.FixtureRequest) -> Iterator[Broker]:
    """The session's broker, or a fresh one for a test with its own
    configs (`klamm_config` marker or indirect parametrization)."""
    configs: Optional[Dict[str, Any]] = None
    markers = list(request.node.iter_markers(_MARKER))
    if markers:
        configs = {}
        for marker in reversed(markers):  # the closest marker wins
            configs.update(_marker_configs(marker))
    param = getattr(request, "param", None)
    if param is not None:
        if not isinstance(param, Mapping):
            raise pytest.UsageError(f"kafka_broker parameters are dicts of configs, got {param!r}")
        configs = {**(configs or {}), **param}
    if configs is None:
        yield request.getfixturevalue("kafka_broker_session")
        return
    with Broker({**_ini_configs(request.config), **configs}) as broker:
        yield broker
