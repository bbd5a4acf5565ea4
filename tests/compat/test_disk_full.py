"""A full disk: klamm answers Produce with KAFKA_STORAGE_ERROR (56), keeps
serving everything it acknowledged, takes writes again once there is room,
and loses nothing across a restart.

klamm only: Apache Kafka 4.1 marks a failed log directory offline and, when
it was the only one, halts the broker (LogDirFailureChannel), so there is no
answer of Kafka's to compare with. The data directory is a small tmpfs,
mounted by the test (root only; skipped otherwise)."""

from __future__ import annotations

import os
import subprocess

import pytest
from kafka import KafkaProducer
from kafka.errors import KafkaStorageError

import compat

pytestmark = pytest.mark.skipif(
    compat.BROKER_KIND != "klamm",
    reason="Kafka halts when its only log directory fails; nothing to compare with",
)

VALUE_BYTES = 64 * 1024


def mount_tmpfs(path, size: str):
    path.mkdir(parents=True, exist_ok=True)
    r = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(path)],
                       capture_output=True, text=True, timeout=10)
    if r.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {r.stderr.strip()}")


def umount(path):
    subprocess.run(["umount", "-l", str(path)], capture_output=True, timeout=10)


def test_disk_full_is_an_error_not_a_crash(broker_factory):
    if os.geteuid() != 0:
        pytest.skip("mounting a tmpfs needs root")
    b = broker_factory({"message.max.bytes": 1048588}, start=False)
    mount_tmpfs(b.data_dir, "6m")
    try:
        b.start()
        topic = compat.unique("full")
        compat.create_topic(b.bootstrap, topic, 1)

        # Fill the disk: no retries, so the broker's own answer surfaces.
        p = KafkaProducer(bootstrap_servers=b.bootstrap, acks=1, retries=0, linger_ms=0,
                          max_request_size=1 << 20, request_timeout_ms=10000)
        acked: dict[int, bytes] = {}
        storage_error = None
        for i in range(200):  # 12.5 MiB into 6 MiB
            value = bytes([i % 251]) * VALUE_BYTES
            try:
                md = p.send(topic, value=value, partition=0).get(timeout=15)
            except KafkaStorageError as e:
                storage_error = e
                break
            acked[md.offset] = value
        p.close(timeout=10)
        assert storage_error is not None, "6 MiB took 12.5 MiB of records"
        assert len(acked) > 10, f"only {len(acked)} records fit before the disk was full"
        assert b.is_running(), f"the broker died on a full disk\n{b.log_tail()}"

        # Everything acknowledged is served, CRC-checked, at its offset.
        got = {m.offset(): m.value() for m in compat.consume_all(
            b.bootstrap, topic, len(acked), extra={"check.crcs": True})}
        assert got == acked

        # Room again: writes are taken, after the last acknowledged record.
        subprocess.run(["mount", "-o", "remount,size=64m", str(b.data_dir)], check=True, timeout=10)
        p = KafkaProducer(bootstrap_servers=b.bootstrap, acks="all", retries=0, request_timeout_ms=10000)
        for i in range(5):
            md = p.send(topic, value=b"after-%d" % i, partition=0).get(timeout=15)
            acked[md.offset] = b"after-%d" % i
        p.close(timeout=10)
        assert sorted(acked) == list(range(len(acked))), "offsets stay contiguous"

        # And a restart finds all of it.
        b.restart(graceful=True)
        got = {m.offset(): m.value() for m in compat.consume_all(
            b.bootstrap, topic, len(acked), extra={"check.crcs": True})}
        assert got == acked
    finally:
        b.stop()
        umount(b.data_dir)
