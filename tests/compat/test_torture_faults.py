"""Torture: injected I/O errors and power loss, with klamm's in-process
failpoints (src/storage/faults.rs, enabled by KLAMM_FAILPOINTS) at the
segment logs' write and fsync sites, in durable mode
(log.flush.interval.messages=1).

Each round starts the broker with one fault at a random count N of
segment writes or fsyncs, under the idempotent acks=all load of
load_producer.py on a 3-partition topic:
  write_eio_at       the Nth write fails with EIO
  sync_eio_at        the Nth fsync fails with EIO
  power_loss_*       at the Nth write / fsync every segment file is cut
                     back to its last fsync and the broker exits (86)
  eio+power_loss     an fsync fails, and a power loss follows: the bytes
                     the failed fsync should have made durable are zeroed
                     even though later fsyncs succeeded (Linux drops the
                     dirty pages of a failed writeback)
  torn               a power loss keeping half of each unsynced tail
After the fault the broker must still answer, or have exited with the
power-loss status or cleanly (no panic, no signal); an EIO round ends with
kill -9. Then it restarts without faults and: every acknowledged record is
at its acknowledged offset, no value is stored twice, each producer's
records are in order per partition, reading everything with
check.crcs=true raises no error. Rounds: KLAMM_TORTURE_FAULT_ROUNDS
(default 6, each kind once; --long: 60). klamm only (Kafka has no such
failpoints)."""

from __future__ import annotations

import random
import re
import time

import pytest

import compat
import torture
from test_restart import parse_acks
from test_torture_kill import count_acks, start_producer, stop_producer, wait_acks

pytestmark = [
    pytest.mark.torture,
    pytest.mark.slow,
    pytest.mark.skipif(compat.BROKER_KIND != "klamm", reason="klamm's failpoints (KLAMM_FAILPOINTS)"),
]

PARTITIONS = 3
POWER_LOSS_EXIT = 86
KINDS = ["write_eio_at", "sync_eio_at", "power_loss_at_write", "power_loss_at_sync", "eio+power_loss", "torn"]


def spec_for(kind: str, n: int, rng: random.Random) -> str:
    if kind == "eio+power_loss":
        return f"sync_eio_at={n},power_loss_at_sync={n + rng.randint(20, 300)}"
    if kind == "torn":
        return f"power_loss_at_write={n},torn=1"
    return f"{kind}={n}"


def log_since(b, start_marker: str) -> str:
    text = b.log_path.read_text(errors="replace")
    return text[text.rfind(start_marker):]


def test_injected_io_errors_and_power_loss(broker_factory, tmp_path):
    rounds = torture.env_int("KLAMM_TORTURE_FAULT_ROUNDS", len(KINDS))
    seed = torture.env_int("KLAMM_TORTURE_SEED", int(time.time()))
    rng = random.Random(seed)
    started = time.monotonic()
    b = broker_factory({"log.flush.interval.messages": "1"})
    topic = compat.unique("torture-faults")
    compat.create_topic(b.bootstrap, topic, PARTITIONS, {"segment.bytes": 1 << 20})
    acks = tmp_path / "acks.txt"
    fired = {"EIO on write": 0, "EIO on fsync": 0, "power loss": 0}
    outcomes = {"answering": 0, "power_loss_exit": 0, "clean_exit": 0}
    bytes_dropped = 0
    verified = 0

    for rnd in range(rounds):
        kind = KINDS[rnd % len(KINDS)]
        spec = spec_for(kind, rng.randint(30, 1500), rng)
        b.stop(graceful=True)
        b.env = {"KLAMM_FAILPOINTS": spec}
        b.start()
        marker = f"===== start #{b.starts} "
        floor = count_acks(acks)
        proc = start_producer(b.bootstrap, topic, acks, f"r{rnd}", 3000)
        try:
            wait_acks([(acks, floor + 20)], [proc], 30)
            # Until the fault fires (and the broker exits, for a power loss).
            deadline = time.monotonic() + 25
            while time.monotonic() < deadline and b.is_running() and "klamm failpoint: " not in \
                    log_since(b, marker).replace("klamm failpoint: enabled", ""):
                time.sleep(0.05)
            if b.is_running() and "power_loss" in spec:
                deadline = time.monotonic() + 25
                while b.is_running() and time.monotonic() < deadline:
                    time.sleep(0.05)
            time.sleep(1.0)  # the broker carries on after an EIO
            log = log_since(b, marker)
            assert "panicked" not in log, b.log_tail()
            if b.is_running():
                b.wait_ready(10)  # still answering
                outcomes["answering"] += 1
                b.stop(graceful=False)
            else:
                rc = b.proc.returncode
                assert rc in (POWER_LOSS_EXIT, 0, 1), f"round {rnd} ({spec}): broker exited with {rc}\n{b.log_tail()}"
                outcomes["power_loss_exit" if rc == POWER_LOSS_EXIT else "clean_exit"] += 1
            for what in fired:
                fired[what] += log.count(f"klamm failpoint: {what}")
            bytes_dropped += sum(int(x) for x in re.findall(r"(\d+) bytes dropped", log))
            b.env = {}
            b.start()
            mid = count_acks(acks)
            wait_acks([(acks, mid + 20)], [proc], 20)
        finally:
            stop_producer(proc)
        stored, _ = torture.read_partitions(b.bootstrap, topic, PARTITIONS)
        verified = torture.check_log(topic, stored, {}, parse_acks(acks), {}, {})
        assert "panicked" not in b.log_path.read_text(errors="replace")

    torture.report("faults", rounds=rounds, seed=seed, faults_injected=fired, broker_after_fault=outcomes,
                   bytes_dropped_by_power_loss=bytes_dropped, records_acknowledged=len(parse_acks(acks)),
                   acknowledged_verified_at_end=verified, seconds=round(time.monotonic() - started, 1))
    assert verified == len(parse_acks(acks)) > 0
