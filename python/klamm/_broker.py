"""`Broker`: the bundled klamm binary run as a child process for tests.

`klamm --ephemeral` does the work: a temporary data directory deleted at
exit, a free port on 127.0.0.1, and one line `bootstrap.servers=HOST:PORT`
on stdout once it accepts connections. This module starts it, waits for
that line, and stops it with SIGTERM (then SIGKILL). The child's TMPDIR is
a directory of our own, removed after the child has exited, so even a
broker that had to be killed leaves nothing behind.
"""

from __future__ import annotations

import atexit
import os
import selectors
import shutil
import signal
import subprocess
import sys
import sysconfig
import tempfile
import time
import weakref
from typing import Any, Dict, Iterable, Mapping, Optional

# Bounds, so a wedged broker or a chatty one cannot hang or flood a test run.
READY_LINE_MAX_BYTES = 4096
LOG_TAIL_MAX_BYTES = 8192
CONFIG_MAX_ENTRIES = 1024

_READY_PREFIX = "bootstrap.servers="
_BINARY_NAME = "klamm"


class BrokerError(RuntimeError):
    """klamm could not be started (bad config, port in use, timeout, ...).

    The message ends with the tail of the broker's log."""


def binary_path() -> str:
    """The klamm binary to run: `$KLAMM_BIN` if set, else the one this
    package installed into the environment's scripts directory, else
    `klamm` on PATH."""
    explicit = os.environ.get("KLAMM_BIN")
    if explicit:
        return explicit
    for scheme_dir in _scripts_dirs():
        candidate = os.path.join(scheme_dir, _BINARY_NAME)
        if os.path.isfile(candidate) and os.access(candidate, os.X_OK):
            return candidate
    found = shutil.which(_BINARY_NAME)
    if found:
        return found
    raise BrokerError("no klamm binary found: install the klamm wheel, put klamm on PATH or set KLAMM_BIN")


def _scripts_dirs() -> Iterable[str]:
    # Where pip put the wheel's scripts: the running environment's, then
    # the user scheme's (`pip install --user`).
    yield sysconfig.get_path("scripts")
    user_scheme = f"{os.name}_user"
    if user_scheme in sysconfig.get_scheme_names():
        yield sysconfig.get_path("scripts", user_scheme)
    yield os.path.dirname(sys.executable)


def _config_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (list, tuple)):
        return ",".join(_config_value(v) for v in value)
    return str(value)


def _child_env(extra: Optional[Mapping[str, str]], tmp_dir: str) -> Dict[str, str]:
    # klamm reads KAFKA_* (and CLUSTER_ID) as the apache/kafka image does;
    # a test runner's environment (KAFKA_BOOTSTRAP_SERVERS, ...) must not
    # reconfigure or break the test broker, so they are dropped: the config
    # dict is the whole configuration.
    env = {k: v for k, v in os.environ.items() if not k.startswith("KAFKA_") and k != "CLUSTER_ID"}
    env["TMPDIR"] = tmp_dir
    env["NO_COLOR"] = "1"
    if extra:
        env.update(extra)
    return env


_running: "weakref.WeakSet[Broker]" = weakref.WeakSet()


@atexit.register
def _stop_leftovers() -> None:
    for broker in list(_running):
        broker.stop()


class Broker:
    """A klamm broker in a child process, with ephemeral data on a free
    port of 127.0.0.1.

    >>> with Broker({"num.partitions": 3}) as broker:
    ...     producer = KafkaProducer(bootstrap_servers=broker.bootstrap_servers)

    `config` maps Kafka broker property names to values (passed as
    `--override key=value`; booleans become `true`/`false`, lists are
    joined with commas). `args` are extra command-line arguments
    (`["--durable"]`), `env` extra environment variables for the child.
    """

    def __init__(
        self,
        config: Optional[Mapping[str, Any]] = None,
        *,
        binary: Optional[str] = None,
        args: Iterable[str] = (),
        env: Optional[Mapping[str, str]] = None,
        start_timeout_s: float = 30.0,
        stop_timeout_s: float = 30.0,
    ) -> None:
        self.config: Dict[str, str] = {str(k): _config_value(v) for k, v in (config or {}).items()}
        if len(self.config) > CONFIG_MAX_ENTRIES:
            raise ValueError(f"at most {CONFIG_MAX_ENTRIES} configs")
        self.binary = binary
        self.args = list(args)
        self.env = dict(env) if env else None
        self.start_timeout_s = start_timeout_s
        self.stop_timeout_s = stop_timeout_s
        self.returncode: Optional[int] = None
        self._bootstrap: Optional[str] = None
        self._proc: Optional[subprocess.Popen] = None
        self._tmp_dir: Optional[str] = None
        self._log_path: Optional[str] = None

    # -- what tests use -------------------------------------------------

    @property
    def bootstrap_servers(self) -> str:
        """`HOST:PORT` for a client's `bootstrap.servers`."""
        if self._bootstrap is None:
            raise BrokerError("the broker is not running")
        return self._bootstrap

    @property
    def host(self) -> str:
        return self.bootstrap_servers.rsplit(":", 1)[0]

    @property
    def port(self) -> int:
        return int(self.bootstrap_servers.rsplit(":", 1)[1])

    @property
    def pid(self) -> Optional[int]:
        return self._proc.pid if self._proc else None

    @property
    def data_root(self) -> Optional[str]:
        """The directory that holds the broker's data and log while it
        runs (removed by `stop`)."""
        return self._tmp_dir

    def log(self) -> str:
        """What the broker has written to stderr so far (its log lines)."""
        if not self._log_path or not os.path.exists(self._log_path):
            return ""
        with open(self._log_path, "rb") as f:
            return f.read().decode("utf-8", "replace")

    def running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    # -- lifecycle -------------------------------------------------------

    def start(self) -> "Broker":
        """Starts klamm and returns once it accepts connections."""
        if self._proc is not None:
            raise BrokerError("already started")
        self.returncode = None
        binary = self.binary or binary_path()
        cmd = [binary, "--ephemeral"]
        for key, value in self.config.items():
            cmd += ["--override", f"{key}={value}"]
        cmd += self.args
        self._tmp_dir = tempfile.mkdtemp(prefix="klamm-py-")
        self._log_path = os.path.join(self._tmp_dir, "klamm.log")
        try:
            with open(self._log_path, "wb") as log:
                self._proc = subprocess.Popen(
                    cmd,
                    stdin=subprocess.DEVNULL,
                    stdout=subprocess.PIPE,
                    stderr=log,
                    env=_child_env(self.env, self._tmp_dir),
                    bufsize=0,
                )
            _running.add(self)
            self._bootstrap = self._read_ready_line()
        except OSError as e:
            self.stop()
            raise BrokerError(f"cannot run {binary}: {e}") from e
        except BaseException:
            self.stop()
            raise
        return self

    def stop(self) -> Optional[int]:
        """Stops the broker (SIGTERM, then SIGKILL after `stop_timeout_s`)
        and removes its data. Returns its exit code (0 after a clean
        shutdown). Safe to call more than once."""
        proc, self._proc = self._proc, None
        self._bootstrap = None
        _running.discard(self)
        if proc is not None:
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
                try:
                    proc.wait(self.stop_timeout_s)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait()
            if proc.stdout:
                proc.stdout.close()
            self.returncode = proc.returncode
        if self._tmp_dir:
            shutil.rmtree(self._tmp_dir, ignore_errors=True)
            self._tmp_dir = None
        return self.returncode

    def __enter__(self) -> "Broker":
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def __repr__(self) -> str:
        state = self._bootstrap or ("stopped" if self.returncode is not None else "not started")
        return f"<klamm.Broker {state}>"

    # -- internals -------------------------------------------------------

    def _read_ready_line(self) -> str:
        assert self._proc is not None and self._proc.stdout is not None
        deadline = time.monotonic() + self.start_timeout_s
        fd = self._proc.stdout.fileno()
        buf = b""
        with selectors.DefaultSelector() as sel:
            sel.register(fd, selectors.EVENT_READ)
            while b"\n" not in buf:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise BrokerError(f"klamm was not ready within {self.start_timeout_s} s\n{self._tail()}")
                if not sel.select(min(remaining, 0.5)):
                    continue
                chunk = os.read(fd, READY_LINE_MAX_BYTES)
                if not chunk:
                    code = self._proc.wait(self.stop_timeout_s)
                    raise BrokerError(f"klamm exited with code {code} before it was ready\n{self._tail()}")
                buf += chunk
                if len(buf) > READY_LINE_MAX_BYTES:
                    raise BrokerError("klamm printed an unexpected line on stdout")
        line = buf.split(b"\n", 1)[0].decode("utf-8", "replace").strip()
        if not line.startswith(_READY_PREFIX):
            raise BrokerError(f"unexpected first line from klamm: {line!r}\n{self._tail()}")
        return line[len(_READY_PREFIX):]

    def _tail(self) -> str:
        text = self.log()
        return text[-LOG_TAIL_MAX_BYTES:]
