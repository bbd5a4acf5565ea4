"""Shared pieces of the torture suite (test_torture_*.py, run by
scripts/torture): its knobs from the environment, the figures each test
reports, and a verifier of what a crash-tested log holds.

Figures: every test appends one JSON line to $KLAMM_TORTURE_REPORT (if
set) and prints it; scripts/torture shows them at the end and
docs/reliability.md quotes them."""

from __future__ import annotations

import json
import os
import time

from confluent_kafka import Consumer, KafkaException, TopicPartition as CTP

import compat
from test_restart import retry_transient


def env_int(name: str, default: int) -> int:
    return int(os.environ.get(name, "") or default)


def env_float(name: str, default: float) -> float:
    return float(os.environ.get(name, "") or default)


def report(test: str, **figures):
    line = {"test": test, "broker": compat.BROKER_KIND, "at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            **figures}
    text = json.dumps(line, sort_keys=True)
    print(f"TORTURE {text}")
    path = os.environ.get("KLAMM_TORTURE_REPORT")
    if path:
        with open(path, "a") as f:
            f.write(text + "\n")


def read_partitions(bootstrap: str, topic: str, partitions: int, start: dict[int, int] | None = None,
                    timeout: float = 90) -> tuple[dict[int, list[tuple[int, bytes]]], dict[int, int]]:
    """Reads every partition of `topic` from `start[p]` (default: the log
    start) up to its high watermark, with CRC checks on; any consumer error
    (a corrupt batch among them) raises. Returns ({partition: [(offset,
    value), ...] in offset order}, {partition: high watermark})."""
    c = Consumer({"bootstrap.servers": bootstrap, "group.id": compat.unique("torture-read"),
                  "enable.auto.commit": False, "check.crcs": True, "enable.partition.eof": False,
                  "fetch.max.bytes": 8 << 20})
    try:
        marks = {p: retry_transient(lambda: c.get_watermark_offsets(CTP(topic, p), timeout=10))
                 for p in range(partitions)}
        begin = {p: max((start or {}).get(p, 0), marks[p][0]) for p in range(partitions)}
        highs = {p: marks[p][1] for p in range(partitions)}
        out: dict[int, list[tuple[int, bytes]]] = {p: [] for p in range(partitions)}
        pending = {p for p in range(partitions) if highs[p] > begin[p]}
        c.assign([CTP(topic, p, begin[p]) for p in pending])
        deadline = time.monotonic() + timeout
        while pending and time.monotonic() < deadline:
            for m in c.consume(num_messages=10_000, timeout=0.5):
                if m.error():
                    raise KafkaException(m.error())
                out[m.partition()].append((m.offset(), m.value()))
                if m.offset() + 1 >= highs[m.partition()]:
                    pending.discard(m.partition())
        assert not pending, f"{topic}: could not read up to the high watermark of {pending}: {highs}"
        return out, highs
    finally:
        c.close()


def check_log(topic: str, stored: dict[int, list[tuple[int, bytes]]], begin: dict[int, int],
              acked: dict[tuple[int, int], bytes], seen: dict[bytes, tuple[int, int]],
              last_number: dict[tuple[int, str], int]) -> int:
    """Checks records read from `topic` from offset `begin[p]` on (values
    "<prefix>-<n>", n counting up per producer): each value appears once
    (`seen` and `last_number` carry over between incremental reads),
    offsets strictly increase, and per partition each producer's numbers
    strictly increase with the offset (no reordering, no duplicate). Then
    every acknowledged (partition, offset) at or after `begin[p]` holds its
    value. Returns the number of acknowledged records verified."""
    for p, records in stored.items():
        prev_offset = -1
        for offset, value in records:
            assert offset > prev_offset, f"{topic}-{p}: offset {offset} after {prev_offset}"
            prev_offset = offset
            assert value not in seen, f"{topic}: duplicate {value!r} at {p}/{offset} and {seen[value]}"
            seen[value] = (p, offset)
            prefix, _, n = value.decode().rpartition("-")
            key = (p, prefix)
            assert int(n) > last_number.get(key, -1), \
                f"{topic}-{p}: {value!r} at offset {offset} after {prefix}-{last_number[key]} (reordered)"
            last_number[key] = int(n)
    verified = 0
    missing = []
    for (p, offset), value in acked.items():
        if 0 <= offset < begin.get(p, 0):
            continue  # before the range read this time
        got = seen.get(value)
        if got is None or (offset >= 0 and got != (p, offset)):
            missing.append(((p, offset), value, got))
        else:
            verified += 1
    assert not missing, (f"{topic}: {len(missing)} acknowledged records missing or moved "
                         f"((partition, offset), value, stored at): {sorted(missing)[:5]}")
    return verified
