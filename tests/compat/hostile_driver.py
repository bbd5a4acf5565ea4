"""Hostile-client driver for the torture suite (run as a subprocess by
test_torture_hostile.py): opens CONNECTIONS raw TCP connections to the
broker, from the loopback addresses 127.0.0.2 and up (other client IPs
than the well-behaved clients on 127.0.0.1), for SECONDS, each one
playing one role in a loop (reconnecting whenever the broker closes it):

  slow        announces a frame of 1 KiB..100 MB, sends a valid header, then
              one byte every 200 ms
  never-read  pipelines Metadata, ApiVersions and 1 MiB Fetch requests and
              never reads a response
  huge-prefix announces 2^31-1, 200 MB, a negative or a zero size, then
              holds the connection or sends a little garbage
  garbage     random bytes in bursts
  big         a request of every API key (0..MAX_API_KEY) at a random
              version with a large body (random, zeros, 0x01 or 0xff bytes:
              huge arrays of empty strings when decoded), up to --max-frame
              (default 100 MB, the largest frame the broker accepts),
              reading whatever comes back

At the end it prints one JSON line of counts to stdout.

    python hostile_driver.py HOST PORT CONNECTIONS SECONDS [--max-frame BYTES] [--seed N]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import socket
import struct
import sys
import time

MAX_API_KEY = 92
ROLES = ["slow", "never-read", "huge-prefix", "garbage", "big"]


def header(api_key: int, version: int, corr: int, client_id: bytes = b"hostile") -> bytes:
    return struct.pack(">hhih", api_key, version, corr, len(client_id)) + client_id


def frame(body: bytes) -> bytes:
    return struct.pack(">i", len(body)) + body


class Driver:
    def __init__(self, host, port, seconds, max_frame, seed):
        self.host, self.port = host, port
        self.deadline = time.monotonic() + seconds
        self.max_frame = max_frame
        self.rng = random.Random(seed)
        self.counts = {r: 0 for r in ROLES}
        self.counts.update(connects=0, connect_errors=0, closed_by_broker=0, bytes_sent=0, requests=0,
                           responses_bytes=0)
        # Shared big bodies (the largest is built once).
        self.fillers = {}

    def filler(self, kind: str, size: int) -> bytes:
        key = (kind, size)
        if key not in self.fillers:
            if kind == "random":
                data = os.urandom(size)
            else:
                data = bytes([{"zeros": 0, "ones": 1, "ff": 0xFF}[kind]]) * size
            if len(self.fillers) > 12:
                self.fillers.clear()
            self.fillers[key] = data
        return self.fillers[key]

    def alive(self):
        return time.monotonic() < self.deadline

    async def connect(self, idx):
        local = f"127.0.0.{2 + idx % 200}"
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setblocking(False)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        sock.bind((local, 0))
        loop = asyncio.get_running_loop()
        await asyncio.wait_for(loop.sock_connect(sock, (self.host, self.port)), 10)
        r, w = await asyncio.open_connection(sock=sock)
        self.counts["connects"] += 1
        return r, w

    async def send(self, w, data: bytes, timeout=10.0):
        w.write(data)
        await asyncio.wait_for(w.drain(), timeout)
        self.counts["bytes_sent"] += len(data)

    async def drain_reads(self, r):
        try:
            while True:
                chunk = await r.read(65536)
                if not chunk:
                    return
                self.counts["responses_bytes"] += len(chunk)
        except (OSError, asyncio.CancelledError):
            return

    async def role_slow(self, r, w):
        size = self.rng.choice([1024, 1 << 20, 16 << 20, 100 << 20])
        await self.send(w, struct.pack(">i", size) + header(18, 0, 1))
        while self.alive():
            await asyncio.sleep(0.2)
            await self.send(w, b"\0")

    async def role_never_read(self, r, w):
        corr = 0
        while self.alive():
            corr += 1
            kind = corr % 3
            if kind == 0:
                body = header(3, 1, corr) + struct.pack(">i", -1)
            elif kind == 1:
                body = header(18, 0, corr)
            else:  # Fetch v4, one unknown-or-known topic, 1 MiB
                body = header(1, 4, corr) + struct.pack(">iiiib", -1, 500, 1, 1 << 20, 0) + \
                    struct.pack(">i", 1) + struct.pack(">h", 5) + b"hostl" + struct.pack(">iiqi", 1, 0, 0, 1 << 20)
            self.counts["requests"] += 1
            await self.send(w, frame(body), timeout=30)
            await asyncio.sleep(0.01)

    async def role_huge_prefix(self, r, w):
        size = self.rng.choice([2**31 - 1, 200 << 20, -1, -(2**31), 0])
        await self.send(w, struct.pack(">i", size))
        if self.rng.random() < 0.5:
            await self.send(w, os.urandom(self.rng.randint(1, 4096)))
        await asyncio.sleep(self.rng.uniform(0.5, 5))

    async def role_garbage(self, r, w):
        reader = asyncio.ensure_future(self.drain_reads(r))
        try:
            while self.alive():
                await self.send(w, os.urandom(self.rng.randint(1, 65536)))
                await asyncio.sleep(self.rng.uniform(0.01, 0.5))
        finally:
            reader.cancel()

    async def role_big(self, r, w):
        reader = asyncio.ensure_future(self.drain_reads(r))
        try:
            corr = 0
            while self.alive():
                corr += 1
                api = self.rng.randint(0, MAX_API_KEY)
                version = self.rng.randint(0, 17)
                size = self.rng.choice([s for s in (64 << 10, 1 << 20, 8 << 20) if s < self.max_frame] + [self.max_frame])
                kind = self.rng.choice(["random", "zeros", "ones", "ff"])
                h = header(api, version, corr)
                body = self.filler(kind, max(0, size - len(h)))
                self.counts["requests"] += 1
                await self.send(w, struct.pack(">i", len(h) + len(body)) + h, timeout=30)
                await self.send(w, body, timeout=60)
                await asyncio.sleep(self.rng.uniform(0, 0.2))
        finally:
            reader.cancel()

    async def connection(self, idx):
        role = ROLES[idx % len(ROLES)]
        fn = getattr(self, "role_" + role.replace("-", "_"))
        while self.alive():
            try:
                r, w = await self.connect(idx)
            except (OSError, asyncio.TimeoutError):
                self.counts["connect_errors"] += 1
                await asyncio.sleep(0.5)
                continue
            self.counts[role] += 1
            try:
                await asyncio.wait_for(fn(r, w), max(0.1, self.deadline - time.monotonic()))
            except (ConnectionError, asyncio.IncompleteReadError):
                self.counts["closed_by_broker"] += 1
            except (OSError, asyncio.TimeoutError):
                pass
            finally:
                w.transport.abort()
            await asyncio.sleep(0.05)

    async def run(self, connections):
        tasks = []
        for i in range(connections):
            tasks.append(asyncio.ensure_future(self.connection(i)))
            if i % 50 == 49:
                await asyncio.sleep(0.05)
        await asyncio.gather(*tasks, return_exceptions=True)


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("host")
    ap.add_argument("port", type=int)
    ap.add_argument("connections", type=int)
    ap.add_argument("seconds", type=float)
    ap.add_argument("--max-frame", type=int, default=100 << 20)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    d = Driver(args.host, args.port, args.seconds, args.max_frame, args.seed)
    asyncio.run(d.run(args.connections))
    print(json.dumps(d.counts, sort_keys=True))
    return 0


if __name__ == "__main__":
    sys.exit(main())
