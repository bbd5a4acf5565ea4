"""Torture: kill -9 cycles under an acks=all idempotent load in durable mode
(log.flush.interval.messages=1, what `klamm --durable` sets).

One broker on one data directory; each cycle:
  1. two load producers (load_producer.py: confluent-kafka, acks=all,
     enable.idempotence) write numbered records "c<cycle>-<n>" to a
     3-partition topic (1 MiB segments, so they roll) and a 2-partition
     topic whose config is changed all along;
  2. a side thread commits a group's offsets and alters retention.ms on the
     second topic in a loop, remembering which were acknowledged;
  3. at a random moment the broker is SIGKILLed and restarted at once; the
     producers keep running through the restart (their retries are the
     idempotence test), then are stopped;
  4. verify: every acknowledged record is at its acknowledged offset,
     no value is stored twice, each producer's records are in order per
     partition, reading everything with check.crcs=true raises no error (no
     corrupt batch), both topics exist with their partition counts, the
     config and the committed offsets are the last acknowledged ones (or
     the one in flight at the kill).
Cycles: KLAMM_TORTURE_CYCLES (default 10; scripts/torture --long: 200);
each producer sends at most KLAMM_TORTURE_RATE records/s (default 3000). A
full re-read every KLAMM_TORTURE_FULL_EVERY cycles (default 1) and at the
end; the cycles between read what was written since. KLAMM_TORTURE_SEED
fixes the random kill moments."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from confluent_kafka import Consumer, TopicPartition as CTP
from confluent_kafka.admin import AlterConfigOpType, ConfigEntry, ConfigResource, ResourceType

import compat
import torture
from test_restart import committed, parse_acks, retry_transient, topic_partitions

HERE = Path(__file__).resolve().parent

pytestmark = [pytest.mark.torture, pytest.mark.slow]

DATA_PARTITIONS = 3
CONF_PARTITIONS = 2


class SideLoad(threading.Thread):
    """Commits offsets and alters a config in a loop. `acked_*` is the last
    acknowledged value; `maybe_*` every value attempted since (in flight or
    failed at the kill: either may have been applied)."""

    def __init__(self, bootstrap, group, data_topic, conf_topic, base):
        super().__init__(daemon=True)
        self.bootstrap, self.group, self.data_topic, self.conf_topic = bootstrap, group, data_topic, conf_topic
        self.base = base
        self.stop_flag = threading.Event()
        self.acked_commit = None
        self.maybe_commit = []
        self.acked_config = None
        self.maybe_config = []
        self.done = 0

    def run(self):
        c = Consumer({"bootstrap.servers": self.bootstrap, "group.id": self.group, "enable.auto.commit": False,
                      "socket.timeout.ms": 5000})
        a = compat.admin(self.bootstrap)
        k = 0
        try:
            while not self.stop_flag.is_set():
                k += 1
                offsets = {p: self.base + k * 10 + p for p in range(DATA_PARTITIONS)}
                self.maybe_commit.append(offsets)
                try:
                    c.commit(offsets=[CTP(self.data_topic, p, o) for p, o in offsets.items()], asynchronous=False)
                    self.acked_commit, self.maybe_commit = offsets, []
                except Exception:
                    pass
                value = str(3_600_000 + self.base + k)
                self.maybe_config.append(value)
                try:
                    res = ConfigResource(ResourceType.TOPIC, self.conf_topic, incremental_configs=[
                        ConfigEntry("retention.ms", value, incremental_operation=AlterConfigOpType.SET)])
                    a.incremental_alter_configs([res], request_timeout=10)[res].result(timeout=15)
                    self.acked_config, self.maybe_config = value, []
                    self.done += 1
                except Exception:
                    pass
                self.stop_flag.wait(0.05)
        finally:
            c.close()


def topic_config(bootstrap, topic, name):
    res = ConfigResource(ResourceType.TOPIC, topic)
    a = compat.admin(bootstrap)  # kept alive until the future resolves
    got = retry_transient(lambda: a.describe_configs([res])[res].result(timeout=15))
    return got[name].value


def start_producer(bootstrap, topic, acks_file, prefix, rate):
    return subprocess.Popen([sys.executable, str(HERE / "load_producer.py"), bootstrap, topic, str(acks_file), prefix,
                             "--max-seconds", "120", "--rate", str(rate)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)


def stop_producer(proc):
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(timeout=40)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(timeout=10)


def count_acks(path: Path) -> int:
    try:
        with open(path, "rb") as f:
            return f.read().count(b"\n")
    except FileNotFoundError:
        return 0


def wait_acks(files_and_floors, procs, timeout):
    deadline = time.monotonic() + timeout
    while True:
        if all(count_acks(f) >= floor for f, floor in files_and_floors):
            return True
        for p in procs:
            assert p.poll() is None, f"load producer exited early: {p.stderr.read()}"
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)


def test_kill9_cycles_under_idempotent_acks_all_load(broker_factory, tmp_path):
    cycles = torture.env_int("KLAMM_TORTURE_CYCLES", 10)
    full_every = max(1, torture.env_int("KLAMM_TORTURE_FULL_EVERY", 1))
    seed = torture.env_int("KLAMM_TORTURE_SEED", int(time.time()))
    rate = torture.env_int("KLAMM_TORTURE_RATE", 3000)  # records/s per producer
    rng = random.Random(seed)
    started = time.monotonic()

    b = broker_factory({"log.flush.interval.messages": "1"})
    data = compat.unique("torture-data")
    conf = compat.unique("torture-conf")
    group = compat.unique("torture-g")
    compat.create_topic(b.bootstrap, data, DATA_PARTITIONS, {"segment.bytes": 1 << 20})
    compat.create_topic(b.bootstrap, conf, CONF_PARTITIONS, {"retention.ms": 3_600_000})
    acks = {data: tmp_path / "acks-data.txt", conf: tmp_path / "acks-conf.txt"}
    parts = {data: DATA_PARTITIONS, conf: CONF_PARTITIONS}
    # Incremental verification state per topic.
    state = {t: {"begin": {}, "seen": {}, "last": {}} for t in parts}
    verified_total = 0
    kills_during_side_ops = 0
    acked_commit = acked_config = None

    for cycle in range(cycles):
        prefix = f"c{cycle}"
        t_cycle = time.monotonic()
        floors = {t: count_acks(f) for t, f in acks.items()}
        procs = [start_producer(b.bootstrap, t, acks[t], prefix, rate) for t in parts]
        side = SideLoad(b.bootstrap, group, data, conf, base=cycle * 1_000_000)
        try:
            assert wait_acks([(acks[t], floors[t] + 50) for t in parts], procs, 30), \
                f"cycle {cycle}: the load did not start"
            side.start()
            time.sleep(rng.uniform(0.1, 1.5))
            t_kill = time.monotonic()
            b.stop(graceful=False)  # SIGKILL
            side.stop_flag.set()
            kills_during_side_ops += bool(side.maybe_commit or side.maybe_config)
            b.start()
            # The producers carry on through the restart (idempotent retries).
            mid = {t: count_acks(f) for t, f in acks.items()}
            wait_acks([(acks[t], mid[t] + 20) for t in parts], procs, 20)
        finally:
            for p in procs:
                stop_producer(p)
            side.stop_flag.set()
            side.join(timeout=60)
        assert not side.is_alive(), "side load hung"
        t_stopped = time.monotonic()

        # Topics, config and committed offsets.
        tops = topic_partitions(b.bootstrap)
        assert tops.get(data) == DATA_PARTITIONS and tops.get(conf) == CONF_PARTITIONS, tops
        compat.wait_topic(b.bootstrap, data, DATA_PARTITIONS)
        acked_commit = side.acked_commit or acked_commit
        acked_config = side.acked_config or acked_config
        allowed_commits = [acked_commit] + side.maybe_commit
        got_commit = committed(b.bootstrap, group, data, DATA_PARTITIONS)
        if acked_commit is not None or side.maybe_commit:
            assert got_commit in allowed_commits, (cycle, got_commit, acked_commit, side.maybe_commit)
        got_config = topic_config(b.bootstrap, conf, "retention.ms")
        assert got_config in [acked_config or "3600000"] + side.maybe_config, \
            (cycle, got_config, acked_config, side.maybe_config)
        # Whatever was applied is what later cycles must find.
        if got_commit in side.maybe_commit:
            acked_commit = got_commit
        if got_config in side.maybe_config:
            acked_config = got_config

        # The records.
        full = (cycle + 1) % full_every == 0 or cycle == cycles - 1
        for t, n in parts.items():
            st = state[t]
            if full:
                st["begin"], st["seen"], st["last"] = {}, {}, {}
            stored, highs = torture.read_partitions(b.bootstrap, t, n, start=st["begin"])
            v = torture.check_log(t, stored, st["begin"], parse_acks(acks[t]), st["seen"], st["last"])
            if cycle == cycles - 1:
                verified_total += v
            st["begin"] = highs
        print(f"cycle {cycle}: load {t_kill - t_cycle:.1f}s, kill..producers stopped {t_stopped - t_kill:.1f}s, "
              f"verify {time.monotonic() - t_stopped:.1f}s, acked {sum(count_acks(f) for f in acks.values())}")

    acked_total = sum(len(parse_acks(f)) for f in acks.values())
    stored_total = sum(len(state[t]["seen"]) for t in parts)
    elapsed = time.monotonic() - started
    torture.report("kill9_cycles", cycles=cycles, seed=seed, records_acknowledged=acked_total,
                   records_stored=stored_total, acknowledged_verified_at_end=verified_total,
                   kills_with_commit_or_config_change_in_flight=kills_during_side_ops,
                   seconds=round(elapsed, 1))
    assert verified_total == acked_total > 0
