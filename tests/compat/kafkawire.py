"""A tiny raw-socket Kafka protocol client for the compatibility suite: just
enough of the wire format (request/response framing, ApiVersions, Metadata v1,
Produce v3-v8 and record batch v2 with CRC-32C) to check readiness, to send
deliberately broken requests that real clients refuse to build, and to
pipeline requests (send_request / recv_response).

Every socket operation has a timeout; every length read from the wire is
bounded.
"""

from __future__ import annotations

import base64
import os
import socket
import struct
import time

MAX_FRAME_BYTES = 64 * 1024 * 1024

API_PRODUCE = 0
API_FETCH = 1
API_METADATA = 3
API_API_VERSIONS = 18
API_INIT_PRODUCER_ID = 22


class WireError(Exception):
    pass


class ConnectionClosed(WireError):
    pass


# ---------------------------------------------------------------------------
# Primitive encoders.

def i8(v):
    return struct.pack(">b", v)


def i16(v):
    return struct.pack(">h", v)


def i32(v):
    return struct.pack(">i", v)


def i64(v):
    return struct.pack(">q", v)


def u32(v):
    return struct.pack(">I", v)


def string(s: str | None) -> bytes:
    if s is None:
        return i16(-1)
    b = s.encode()
    return i16(len(b)) + b


def nbytes(b: bytes | None) -> bytes:
    if b is None:
        return i32(-1)
    return i32(len(b)) + b


def uvarint(v: int) -> bytes:
    assert v >= 0
    out = bytearray()
    while True:
        byte = v & 0x7F
        v >>= 7
        if v:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


def varint(v: int) -> bytes:
    """Zig-zag signed varint (also used for varlong)."""
    return uvarint((v << 1) ^ (v >> 63))


def compact_string(s: str) -> bytes:
    b = s.encode()
    return uvarint(len(b) + 1) + b


def varbytes(b: bytes | None) -> bytes:
    if b is None:
        return varint(-1)
    return varint(len(b)) + b


# ---------------------------------------------------------------------------
# CRC-32C (Castagnoli), as used by record batch v2.

def _make_crc32c_table():
    poly = 0x82F63B78
    table = []
    for i in range(256):
        c = i
        for _ in range(8):
            c = (c >> 1) ^ poly if c & 1 else c >> 1
        table.append(c)
    return table


_CRC32C_TABLE = _make_crc32c_table()


def crc32c(data: bytes) -> int:
    crc = 0xFFFFFFFF
    t = _CRC32C_TABLE
    for b in data:
        crc = t[(crc ^ b) & 0xFF] ^ (crc >> 8)
    return crc ^ 0xFFFFFFFF


assert crc32c(b"123456789") == 0xE3069283  # the standard check value


# ---------------------------------------------------------------------------
# Record batch v2.

def record_batch(records: list[tuple[bytes | None, bytes | None]], base_timestamp_ms: int = 1_700_000_000_000,
                 corrupt_crc: bool = False, producer: tuple[int, int, int] | None = None,
                 transactional: bool = False, gzip: bool = False) -> bytes:
    """A record batch (magic 2) of (key, value) records, uncompressed or,
    with gzip, gzip-compressed. With corrupt_crc the stored CRC is flipped;
    producer = (producer id, epoch, base sequence) makes it idempotent, and
    transactional sets the transactional attribute."""
    producer_id, producer_epoch, base_sequence = producer or (-1, -1, -1)
    body = bytearray()
    for i, (k, v) in enumerate(records):
        rec = i8(0) + varint(0) + varint(i) + varbytes(k) + varbytes(v) + uvarint(0)
        body += varint(len(rec)) + rec
    if gzip:
        import gzip as gz
        body = bytearray(gz.compress(bytes(body)))
    after_crc = (
        i16((0x10 if transactional else 0) | (1 if gzip else 0))  # attributes
        + i32(len(records) - 1)     # lastOffsetDelta
        + i64(base_timestamp_ms)    # baseTimestamp
        + i64(base_timestamp_ms)    # maxTimestamp
        + i64(producer_id)          # producerId
        + i16(producer_epoch)       # producerEpoch
        + i32(base_sequence)        # baseSequence
        + i32(len(records))         # records count
        + bytes(body)
    )
    crc = crc32c(after_crc)
    if corrupt_crc:
        crc ^= 0xFFFFFFFF
    # batchLength counts from partitionLeaderEpoch to the end.
    rest = i32(-1) + i8(2) + u32(crc) + after_crc
    return i64(0) + i32(len(rest)) + rest


# ---------------------------------------------------------------------------
# Decoding.

class Reader:
    def __init__(self, data: bytes):
        self.data = data
        self.pos = 0

    def take(self, n: int) -> bytes:
        if n < 0 or self.pos + n > len(self.data):
            raise WireError(f"short response: need {n} bytes at {self.pos}, have {len(self.data) - self.pos}")
        b = self.data[self.pos:self.pos + n]
        self.pos += n
        return b

    def i8(self):
        return struct.unpack(">b", self.take(1))[0]

    def i16(self):
        return struct.unpack(">h", self.take(2))[0]

    def i32(self):
        return struct.unpack(">i", self.take(4))[0]

    def i64(self):
        return struct.unpack(">q", self.take(8))[0]

    def string(self):
        n = self.i16()
        if n < 0:
            return None
        return self.take(n).decode(errors="replace")

    def array_len(self, limit=100_000):
        n = self.i32()
        if n > limit:
            raise WireError(f"array length {n} over limit")
        return n

    def remaining(self):
        return len(self.data) - self.pos


# ---------------------------------------------------------------------------
# Connection.

class Connection:
    def __init__(self, host: str, port: int, timeout: float = 5.0, client_id: str = "klamm-compat-raw"):
        self.sock = socket.create_connection((host, port), timeout=timeout)
        self.sock.settimeout(timeout)
        self.client_id = client_id
        self.correlation_id = 0

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass

    def send_raw(self, data: bytes):
        self.sock.sendall(data)

    def send_frame(self, payload: bytes):
        self.sock.sendall(i32(len(payload)) + payload)

    def _recv_exact(self, n: int) -> bytes:
        buf = bytearray()
        while len(buf) < n:
            chunk = self.sock.recv(n - len(buf))
            if not chunk:
                raise ConnectionClosed(f"connection closed after {len(buf)} of {n} bytes")
            buf += chunk
        return bytes(buf)

    def recv_frame(self) -> bytes:
        (n,) = struct.unpack(">i", self._recv_exact(4))
        if n < 0 or n > MAX_FRAME_BYTES:
            raise WireError(f"bad response frame length {n}")
        return self._recv_exact(n)

    def request_header(self, api_key: int, api_version: int, header_version: int = 1) -> bytes:
        self.correlation_id += 1
        h = i16(api_key) + i16(api_version) + i32(self.correlation_id) + string(self.client_id)
        if header_version >= 2:
            h += uvarint(0)  # empty tagged fields
        return h

    def send_request(self, api_key: int, api_version: int, body: bytes, header_version: int = 1) -> int:
        """Sends one request without reading anything; returns its
        correlation id (for pipelining several requests)."""
        self.send_frame(self.request_header(api_key, api_version, header_version) + body)
        return self.correlation_id

    def recv_response(self, response_header_version: int = 0) -> tuple[int, Reader]:
        """Reads the next response frame: (correlation id, Reader positioned
        after the response header)."""
        r = Reader(self.recv_frame())
        cid = r.i32()
        if response_header_version >= 1:
            tags = r.take(1)
            if tags != b"\x00":
                raise WireError("unexpected tagged fields in response header")
        return cid, r

    def request(self, api_key: int, api_version: int, body: bytes, header_version: int = 1,
                response_header_version: int = 0) -> Reader:
        """Sends one request and returns a Reader positioned after the
        response header (whose correlation id is checked)."""
        sent = self.send_request(api_key, api_version, body, header_version)
        cid, r = self.recv_response(response_header_version)
        if cid != sent:
            raise WireError(f"correlation id {cid} != {sent}")
        return r

    def is_closed_by_peer(self, wait_s: float = 5.0) -> bool:
        """True if the peer closes (EOF or reset) within wait_s."""
        self.sock.settimeout(wait_s)
        try:
            data = self.sock.recv(1)
        except socket.timeout:
            return False
        except (ConnectionResetError, BrokenPipeError):
            return True
        return data == b""

    # --- APIs ----------------------------------------------------------------

    def api_versions(self, version: int = 0, software_name: str = "klamm-compat",
                     software_version: str = "1.0") -> dict:
        """ApiVersions. v0..v2 answers are parsed fully. v3+ requests use the
        flexible request header v2 and a body with the client software
        name/version, as the Java client does (the response header stays v0
        for ApiVersions); of their answers only the error code is parsed,
        unless it is UNSUPPORTED_VERSION (35), whose body has the v0 layout
        (error code + api key ranges)."""
        if version >= 3:
            body = compact_string(software_name) + compact_string(software_version) + uvarint(0)
            r = self.request(API_API_VERSIONS, version, body, header_version=2)
            return parse_api_versions_v0(r, allow_trailing=True)
        r = self.request(API_API_VERSIONS, version, b"")
        return parse_api_versions_v0(r)

    def metadata_v1(self, topics: list[str] | None = None) -> dict:
        r = self.request(API_METADATA, 1, metadata_v1_body(topics))
        return parse_metadata_v1(r)

    def fetch_v4(self, topic: str, partition: int, offset: int, max_bytes: int,
                 partition_max_bytes: int, max_wait_ms: int = 500) -> dict:
        """Fetch v4 (read_uncommitted) of one partition: error code, high
        watermark and the raw record set."""
        body = (i32(-1) + i32(max_wait_ms) + i32(1) + i32(max_bytes) + i8(0)
                + i32(1) + string(topic) + i32(1) + i32(partition) + i64(offset) + i32(partition_max_bytes))
        r = self.request(API_FETCH, 4, body)
        r.i32()  # throttle_time_ms
        out = None
        for _ in range(r.array_len()):
            r.string()
            for _ in range(r.array_len()):
                p = {"partition": r.i32(), "error_code": r.i16(), "high_watermark": r.i64()}
                r.i64()  # last_stable_offset
                for _ in range(r.array_len()):
                    r.i64(), r.i64()
                n = r.i32()
                p["records"] = r.take(n) if n > 0 else b""
                out = out or p
        return out

    def produce(self, topic: str, partition: int, records_blob: bytes, version: int = 7, acks: int = -1,
                timeout_ms: int = 10_000, transactional_id: str | None = None) -> dict:
        """Produce v3..v8 for one partition. Returns the partition response."""
        if not 3 <= version <= 8:
            raise ValueError("produce() supports v3..v8 (non-flexible)")
        body = (string(transactional_id) + i16(acks) + i32(timeout_ms)
                + i32(1) + string(topic) + i32(1) + i32(partition) + nbytes(records_blob))
        r = self.request(API_PRODUCE, version, body)
        return parse_produce_response(r, version)

    def init_producer_id(self, timeout: float = 30) -> tuple[int, int]:
        """InitProducerId v0 without a transactional id: (producer id,
        epoch), retrying while the broker says its coordinator is loading
        or not available (14, 15) as a starting Kafka does."""
        deadline = time.monotonic() + timeout
        while True:
            r = self.request(API_INIT_PRODUCER_ID, 0, string(None) + i32(60_000))
            r.i32()  # throttle_time_ms
            err = r.i16()
            if err == 0:
                return r.i64(), r.i16()
            if err not in (14, 15) or time.monotonic() > deadline:
                raise WireError(f"InitProducerId failed with error {err}")
            time.sleep(0.2)

    def send_produce_only(self, topic: str, partition: int, records_blob: bytes, version: int, acks: int = -1):
        """Sends a Produce request and does not read the answer (v0-2 have
        no transactional id)."""
        body = ((string(None) if version >= 3 else b"") + i16(acks) + i32(10_000)
                + i32(1) + string(topic) + i32(1) + i32(partition) + nbytes(records_blob))
        self.send_frame(self.request_header(API_PRODUCE, version) + body)


def parse_api_versions_v0(r: Reader, allow_trailing: bool = False) -> dict:
    """Parses the v0 layout (error code, [api key, min, max]). With
    allow_trailing (a v3+ answer), only an UNSUPPORTED_VERSION answer is
    parsed further (it has the v0 layout); otherwise the error code and the
    count of bytes after it are returned."""
    err = r.i16()
    if allow_trailing and err != 35:
        return {"error_code": err, "apis": {}, "trailing_bytes": r.remaining()}
    apis = {}
    for _ in range(r.array_len(limit=1000)):
        key, lo, hi = r.i16(), r.i16(), r.i16()
        apis[key] = (lo, hi)
    return {"error_code": err, "apis": apis, "trailing_bytes": r.remaining()}


def metadata_v1_body(topics: list[str] | None = None) -> bytes:
    """A Metadata v1 request body: all topics (None) or the named ones."""
    return i32(-1) if topics is None else i32(len(topics)) + b"".join(string(t) for t in topics)


def parse_metadata_v1(r: Reader) -> dict:
    brokers = []
    racks = {}
    for _ in range(r.array_len()):
        node_id = r.i32()
        host = r.string()
        port = r.i32()
        racks[node_id] = r.string()
        brokers.append((node_id, host, port))
    controller_id = r.i32()
    topics_out = {}
    for _ in range(r.array_len()):
        err = r.i16()
        name = r.string()
        r.i8()  # is_internal
        parts = {}
        for _ in range(r.array_len()):
            perr = r.i16()
            idx = r.i32()
            leader = r.i32()
            replicas = [r.i32() for _ in range(r.array_len())]
            isr = [r.i32() for _ in range(r.array_len())]
            parts[idx] = {"error_code": perr, "leader": leader, "replicas": replicas, "isr": isr}
        topics_out[name] = {"error_code": err, "partitions": parts}
    return {"brokers": brokers, "racks": racks, "controller_id": controller_id, "topics": topics_out}


def parse_produce_response(r: Reader, version: int) -> dict:
    out = None
    for _ in range(r.array_len()):
        name = r.string()
        for _ in range(r.array_len()):
            p = {"topic": name, "partition": r.i32(), "error_code": r.i16(), "base_offset": r.i64()}
            if version >= 2:
                p["log_append_time_ms"] = r.i64()
            if version >= 5:
                p["log_start_offset"] = r.i64()
            if version >= 8:
                errs = []
                for _ in range(r.array_len()):
                    errs.append((r.i32(), r.string()))
                p["record_errors"] = errs
                p["error_message"] = r.string()
            if out is None:
                out = p
    if version >= 1:
        r.i32()  # throttle_time_ms
    if out is None:
        raise WireError("empty produce response")
    return out


def batch_offsets(records: bytes) -> list[int]:
    """Base offsets of the whole record batches in a record set."""
    out, pos = [], 0
    while len(records) - pos >= 12:
        base, length = struct.unpack_from(">qi", records, pos)
        if len(records) - pos - 12 < length:
            break
        out.append(base)
        pos += 12 + length
    return out


def random_cluster_id() -> str:
    """A random cluster id in Kafka's Uuid text form (22 chars of url-safe
    base64 without padding, not starting with '-')."""
    while True:
        s = base64.urlsafe_b64encode(os.urandom(16)).decode().rstrip("=")
        if not s.startswith("-"):
            return s
