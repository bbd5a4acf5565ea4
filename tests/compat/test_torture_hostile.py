"""Torture: hostile clients beside well-behaved ones.

A well-behaved confluent-kafka producer (acks=all, one record every 20 ms)
and a consumer measure produce latency (send to delivery report) and
end-to-end latency (send to consumed), first on an unloaded broker, then
while hostile_driver.py holds KLAMM_TORTURE_CONNECTIONS connections
(default 200; scripts/torture --long: 1,000 for 600 s) of slow senders,
never-readers, huge size prefixes, garbage and every request type at large
sizes, from other client IPs (127.0.0.2 and up). Checked: every
well-behaved record is delivered and consumed, the loaded p99 stays
within KLAMM_TORTURE_P99_RATIO (default 10: a 2-core CI machine shared
with builds is noisy; the issue's goal of 2x is reported, and asserted by
--long) of the unloaded one, or under KLAMM_TORTURE_P99_FLOOR_MS (default
1000), the broker's RSS (sampled
from /proc) stays under RSS_BOUND_MIB, it is alive at the end and its log
has no "panicked". klamm only: Kafka allocates every announced frame
(its default queued.max.request.bytes is unbounded), which this test's
100 MB prefixes would turn into an OutOfMemoryError of the test's 512 MB
heap."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from confluent_kafka import Consumer, Producer

import compat
import torture

HERE = Path(__file__).resolve().parent

pytestmark = [
    pytest.mark.torture,
    pytest.mark.slow,
    pytest.mark.skipif(compat.BROKER_KIND != "klamm",
                       reason="Kafka allocates each announced frame; 100 MB prefixes exhaust its heap"),
]

# queued.max.request.bytes' default in klamm is 512 MiB (request bytes held
# at once, broker-wide): the bound is that plus 256 MiB for everything else.
RSS_BOUND_MIB = 512 + 256


def rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


class RssSampler(threading.Thread):
    def __init__(self, pid):
        super().__init__(daemon=True)
        self.pid, self.stop_flag, self.samples = pid, threading.Event(), []

    def run(self):
        while not self.stop_flag.wait(0.2):
            try:
                self.samples.append(rss_mib(self.pid))
            except OSError:
                return


def p99(values):
    s = sorted(values)
    return s[min(len(s) - 1, int(len(s) * 0.99))] if s else float("nan")


def well_behaved(bootstrap, seconds, tag):
    """Produces one record every 20 ms for `seconds` to a new topic while a
    consumer reads them; returns (produce latencies, end-to-end latencies)
    in ms."""
    topic = compat.unique(f"wb-{tag}")
    compat.create_topic(bootstrap, topic, 1)
    sent = {}
    produce_ms, e2e_ms = [], []
    errors = []
    c = Consumer({"bootstrap.servers": bootstrap, "group.id": compat.unique("wb"), "auto.offset.reset": "earliest",
                  "enable.auto.commit": False, "fetch.wait.max.ms": 100})
    c.subscribe([topic])
    # Wait for the assignment before producing.
    deadline = time.monotonic() + 30
    while not c.assignment() and time.monotonic() < deadline:
        c.poll(0.1)
    assert c.assignment(), "consumer got no assignment"
    stop = threading.Event()

    def consume():
        while not stop.is_set() or len(e2e_ms) < len(sent):
            m = c.poll(0.1)
            if m is None:
                if stop.is_set() and time.monotonic() > stop_deadline[0]:
                    return
                continue
            if m.error():
                errors.append(m.error())
                continue
            t0 = sent.get(m.value())
            if t0 is not None:
                e2e_ms.append((time.monotonic() - t0) * 1000)

    stop_deadline = [float("inf")]
    t = threading.Thread(target=consume, daemon=True)
    t.start()
    p = Producer({"bootstrap.servers": bootstrap, "acks": "all", "linger.ms": 0, "message.timeout.ms": 30000})
    end = time.monotonic() + seconds
    i = 0
    while time.monotonic() < end:
        v = f"{tag}-{i}".encode()
        t0 = time.monotonic()
        sent[v] = t0
        p.produce(topic, v, on_delivery=lambda err, m, t0=t0: errors.append(err) if err else
                  produce_ms.append((time.monotonic() - t0) * 1000))
        p.poll(0)
        i += 1
        time.sleep(0.02)
    assert p.flush(30) == 0
    stop_deadline[0] = time.monotonic() + 30
    stop.set()
    t.join(timeout=40)
    c.close()
    assert not errors, errors[:5]
    assert len(produce_ms) == len(sent) == len(e2e_ms), (len(produce_ms), len(sent), len(e2e_ms))
    return produce_ms, e2e_ms


def test_hostile_connections_do_not_hurt_well_behaved_clients(broker_factory):
    connections = torture.env_int("KLAMM_TORTURE_CONNECTIONS", 200)
    seconds = torture.env_float("KLAMM_TORTURE_HOSTILE_SECONDS", 20)
    baseline_seconds = min(seconds, torture.env_float("KLAMM_TORTURE_BASELINE_SECONDS", 10))
    allowed_ratio = torture.env_float("KLAMM_TORTURE_P99_RATIO", 10)
    floor_ms = torture.env_float("KLAMM_TORTURE_P99_FLOOR_MS", 1000)
    max_frame = torture.env_int("KLAMM_TORTURE_MAX_FRAME", 8 << 20)
    b = broker_factory()
    compat.create_topic(b.bootstrap, "hostl", 1)  # the never-readers' fetches read it

    base_produce, base_e2e = well_behaved(b.bootstrap, baseline_seconds, "base")
    idle_rss = rss_mib(b.proc.pid)

    driver = subprocess.Popen([sys.executable, str(HERE / "hostile_driver.py"), "127.0.0.1", str(b.port),
                               str(connections), str(seconds + 10), "--seed", str(int(time.time())),
                               "--max-frame", str(max_frame)],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    sampler = RssSampler(b.proc.pid)
    sampler.start()
    try:
        time.sleep(5)  # let the connections open and the big frames start
        assert driver.poll() is None, driver.stderr.read()
        load_produce, load_e2e = well_behaved(b.bootstrap, seconds, "load")
        out, err = driver.communicate(timeout=120)
    finally:
        if driver.poll() is None:
            driver.kill()
            driver.wait(timeout=10)
        sampler.stop_flag.set()
        sampler.join(timeout=5)
    assert driver.returncode == 0, err[-3000:]
    counts = json.loads(out.strip().splitlines()[-1])

    assert b.is_running(), f"broker died\n{b.log_tail()}"
    log = b.log_path.read_text(errors="replace")
    assert "panicked" not in log, b.log_tail()
    max_rss = max(sampler.samples or [0.0])
    ratio_produce = p99(load_produce) / p99(base_produce)
    ratio_e2e = p99(load_e2e) / p99(base_e2e)
    torture.report("hostile_clients", connections=connections, seconds=seconds, max_frame_bytes=max_frame,
                   driver=counts,
                   baseline_p99_produce_ms=round(p99(base_produce), 1), loaded_p99_produce_ms=round(p99(load_produce), 1),
                   baseline_p99_e2e_ms=round(p99(base_e2e), 1), loaded_p99_e2e_ms=round(p99(load_e2e), 1),
                   p99_ratio_produce=round(ratio_produce, 2), p99_ratio_e2e=round(ratio_e2e, 2),
                   samples=len(load_produce), idle_rss_mib=round(idle_rss), max_rss_mib=round(max_rss),
                   rss_bound_mib=RSS_BOUND_MIB)
    assert max_rss < RSS_BOUND_MIB, f"broker RSS {max_rss:.0f} MiB"
    for name, ratio, loaded in (("produce", ratio_produce, p99(load_produce)), ("end-to-end", ratio_e2e, p99(load_e2e))):
        assert ratio <= allowed_ratio or loaded < floor_ms, \
            f"{name} p99 {loaded:.1f} ms is {ratio:.1f}x the unloaded one (allowed {allowed_ratio}x, or under {floor_ms} ms)"


def test_many_ips_sending_100_mb_frames_at_once_do_not_stall_the_broker(broker_factory):
    """Twelve connections from twelve client IPs (127.0.0.2-13) each send
    a whole 100 MB frame as fast as they can: 1.2 GB against the 512 MiB
    broker-wide pool (each IP's 128 MiB budget holds its one frame). A
    Metadata request from 127.0.0.1 must still be answered within 15 s."""
    import socket
    import struct

    import kafkawire
    b = broker_factory()
    size = 100 << 20
    body = struct.pack(">hhih", 18, 0, 1, 7) + b"hostile"
    payload = struct.pack(">i", size) + body + bytes(size - len(body))
    socks = []

    def send(i):
        s = socket.socket()
        s.bind((f"127.0.0.{2 + i}", 0))
        s.settimeout(60)
        s.connect(b.host_port)
        socks.append(s)
        try:
            s.sendall(payload)
        except OSError:
            pass

    threads = [threading.Thread(target=send, args=(i,), daemon=True) for i in range(12)]
    for t in threads:
        t.start()
    try:
        time.sleep(3)
        with kafkawire.Connection(*b.host_port, timeout=15) as c:
            assert c.metadata_v1()["brokers"], "no broker in the metadata"
    finally:
        for s in list(socks):
            try:
                s.shutdown(socket.SHUT_RDWR)  # unblocks the sending threads
            except OSError:
                pass
            s.close()
        for t in threads:
            t.join(timeout=10)
    assert b.is_running()
