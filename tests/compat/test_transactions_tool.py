"""`kafka-transactions` (Kafka's TransactionsCommand) against the broker
(issue 10): `list`, `describe`, `describe-producers`, `find-hanging` and
`abort` of a transaction a librdkafka producer left open, each table
checked column by column as Kafka 4.1.2 prints it (ids and timestamps
differ between brokers, the shapes and states do not); ListTransactions'
filters on the wire (states, producer ids, v1 duration, v2 pattern
matched against the whole id, a bad pattern's error 128); and 200
transactional producers initialising at once, each FindCoordinator and
InitProducerId answered without a retriable error on the first try.
Every assertion holds against Apache Kafka 4.1.2 (KLAMM_COMPAT_BROKER=kafka)."""

from __future__ import annotations

import threading
import time

from confluent_kafka import Consumer, Producer, TopicPartition

import compat
import kafkawire
from compat import kafka_tool

TXN_TOOL = "org.apache.kafka.tools.TransactionsCommand"
BROKER_ID = "1"

LIST_HEADERS = ["TransactionalId", "Coordinator", "ProducerId", "TransactionState"]
DESCRIBE_HEADERS = ["CoordinatorId", "TransactionalId", "ProducerId", "ProducerEpoch", "TransactionState",
                    "TransactionTimeoutMs", "CurrentTransactionStartTimeMs", "TransactionDurationMs",
                    "TopicPartitions"]
PRODUCERS_HEADERS = ["ProducerId", "ProducerEpoch", "LatestCoordinatorEpoch", "LastSequence", "LastTimestamp",
                     "CurrentTransactionStartOffset"]
HANGING_HEADERS = ["Topic", "Partition", "ProducerId", "ProducerEpoch", "CoordinatorEpoch", "StartOffset",
                   "LastTimestamp", "Duration(min)"]


def tool(bootstrap: str, *args, check: bool = True):
    return kafka_tool(TXN_TOOL, "--bootstrap-server", bootstrap, *args, check=check)


def table(stdout: str, headers: list[str]) -> list[dict]:
    """The tool's table (columns padded, each followed by a tab) as one
    dict per row; the header line must be exactly `headers`."""
    lines = [line for line in stdout.splitlines() if line.strip()]
    start = next(i for i, line in enumerate(lines) if line.split("\t")[0].strip() == headers[0])
    assert [c.strip() for c in lines[start].split("\t")[:-1]] == headers, lines[start]
    rows = []
    for line in lines[start + 1:]:
        cells = [c.strip() for c in line.split("\t")]
        assert len(cells) == len(headers) + 1 and cells[-1] == "", line
        rows.append(dict(zip(headers, cells[:-1])))
    return rows


def txn_producer(bootstrap: str, txn_id: str) -> Producer:
    p = Producer({"bootstrap.servers": bootstrap, "transactional.id": txn_id, "transaction.timeout.ms": 60000})
    p.init_transactions(60)
    return p


def open_transaction(bootstrap: str, topic: str, txn_id: str, records: int = 2) -> Producer:
    p = txn_producer(bootstrap, txn_id)
    p.begin_transaction()
    for i in range(records):
        p.produce(topic, value=b"open%d" % i, partition=0)
    assert p.flush(30) == 0
    return p


def producers(bootstrap: str, topic: str) -> list[dict]:
    out = tool(bootstrap, "describe-producers", "--topic", topic, "--partition", "0").stdout
    return table(out, PRODUCERS_HEADERS)


def listed(bootstrap: str, txn_id: str) -> dict:
    rows = [r for r in table(tool(bootstrap, "list").stdout, LIST_HEADERS) if r["TransactionalId"] == txn_id]
    assert len(rows) == 1, rows
    return rows[0]


def describe(bootstrap: str, txn_id: str) -> dict:
    rows = table(tool(bootstrap, "describe", "--transactional-id", txn_id).stdout, DESCRIBE_HEADERS)
    assert len(rows) == 1, rows
    return rows[0]


def read_committed(bootstrap: str, topic: str, expected: int) -> list[bytes]:
    c = Consumer({"bootstrap.servers": bootstrap, "group.id": compat.unique("txn-tool-read"),
                  "auto.offset.reset": "earliest", "enable.auto.commit": False,
                  "isolation.level": "read_committed", "enable.partition.eof": False})
    try:
        c.assign([TopicPartition(topic, 0, 0)])
        got = compat.poll_messages(c, expected, 20)
        got += compat.poll_messages(c, 1, 2)
        return [m.value() for m in got]
    finally:
        c.close()


def test_list_and_describe_follow_a_transaction(bootstrap):
    topic, txn_id = compat.unique("txn-tool"), compat.unique("txn-tool-id")
    compat.create_topic(bootstrap, topic, 2)
    p = txn_producer(bootstrap, txn_id)
    row = listed(bootstrap, txn_id)
    assert (row["Coordinator"], row["TransactionState"]) == (BROKER_ID, "Empty")
    producer_id = row["ProducerId"]
    assert int(producer_id) >= 0
    d = describe(bootstrap, txn_id)
    assert (d["CoordinatorId"], d["TransactionalId"], d["ProducerId"]) == (BROKER_ID, txn_id, producer_id)
    assert (d["TransactionState"], d["TransactionTimeoutMs"]) == ("Empty", "60000")
    assert (d["CurrentTransactionStartTimeMs"], d["TransactionDurationMs"], d["TopicPartitions"]) == ("None", "None", "")

    p.begin_transaction()
    p.produce(topic, value=b"a", partition=0)
    p.produce(topic, value=b"b", partition=1)
    assert p.flush(30) == 0
    assert listed(bootstrap, txn_id)["TransactionState"] == "Ongoing"
    d = describe(bootstrap, txn_id)
    assert (d["ProducerId"], d["TransactionState"]) == (producer_id, "Ongoing")
    assert int(d["ProducerEpoch"]) >= 0
    assert int(d["CurrentTransactionStartTimeMs"]) > 0 and int(d["TransactionDurationMs"]) >= 0
    assert sorted(d["TopicPartitions"].split(",")) == [f"{topic}-0", f"{topic}-1"]

    p.commit_transaction(30)
    assert listed(bootstrap, txn_id)["TransactionState"] == "CompleteCommit"
    d = describe(bootstrap, txn_id)
    assert (d["ProducerId"], d["TransactionState"], d["TopicPartitions"]) == (producer_id, "CompleteCommit", "")

    # An id the coordinator never saw: the tool fails, naming it.
    cp = tool(bootstrap, "describe", "--transactional-id", compat.unique("never-seen"), check=False)
    assert cp.returncode == 1 and "Failed to describe transaction state" in cp.stderr, cp.stderr


def test_describe_producers_shows_the_open_transaction(bootstrap, tmp_path):
    topic, txn_id = compat.unique("txn-tool-prod"), compat.unique("txn-tool-id")
    compat.create_topic(bootstrap, topic, 1)
    plain = Producer({"bootstrap.servers": bootstrap, "enable.idempotence": True})
    plain.produce(topic, value=b"idempotent", partition=0)
    assert plain.flush(30) == 0
    p = open_transaction(bootstrap, topic, txn_id)
    producer_id = listed(bootstrap, txn_id)["ProducerId"]
    rows = {r["ProducerId"]: r for r in producers(bootstrap, topic)}
    assert len(rows) == 2, rows
    txn = rows[producer_id]
    assert (txn["LatestCoordinatorEpoch"], txn["LastSequence"], txn["CurrentTransactionStartOffset"]) == ("-1", "1", "1")
    assert int(txn["ProducerEpoch"]) >= 0 and int(txn["LastTimestamp"]) > 0
    (idem,) = [r for pid, r in rows.items() if pid != producer_id]
    assert (idem["LatestCoordinatorEpoch"], idem["LastSequence"], idem["CurrentTransactionStartOffset"]) == ("-1", "0", "None")

    p.commit_transaction(30)
    txn = {r["ProducerId"]: r for r in producers(bootstrap, topic)}[producer_id]
    assert txn["CurrentTransactionStartOffset"] == "None"
    assert int(txn["LatestCoordinatorEpoch"]) >= 0, "the commit marker carries the coordinator epoch"

    # A partition the topic lacks: the admin client retries the retriable
    # UNKNOWN_TOPIC_OR_PARTITION until its API timeout (60 s by default,
    # shortened here), then the tool fails.
    quick = tmp_path / "quick-timeout.properties"
    quick.write_text("default.api.timeout.ms=5000\nrequest.timeout.ms=4000\n")
    cp = tool(bootstrap, "--command-config", str(quick), "describe-producers", "--topic", topic, "--partition", "7",
              check=False)
    assert cp.returncode == 1 and "Failed to describe producers" in cp.stderr, cp.stderr


def test_find_hanging_does_not_report_a_live_transaction(bootstrap):
    topic, txn_id = compat.unique("txn-tool-hang"), compat.unique("txn-tool-id")
    compat.create_topic(bootstrap, topic, 1)
    p = open_transaction(bootstrap, topic, txn_id)
    try:
        # With a 0-minute bound the open transaction is a candidate; the
        # coordinator still lists its partition, so it is not hanging.
        out = tool(bootstrap, "find-hanging", "--topic", topic, "--max-transaction-timeout", "0").stdout
        assert table(out, HANGING_HEADERS) == []
        out = tool(bootstrap, "find-hanging", "--broker-id", BROKER_ID, "--max-transaction-timeout", "0").stdout
        assert all(r["Topic"] != topic for r in table(out, HANGING_HEADERS))
        cp = tool(bootstrap, "find-hanging", check=False)
        assert cp.returncode == 1 and "requires either --topic or --broker-id" in cp.stderr, cp.stderr
    finally:
        p.abort_transaction(30)


def test_abort_ends_a_transaction_left_open(bootstrap):
    topic, txn_id = compat.unique("txn-tool-abort"), compat.unique("txn-tool-id")
    compat.create_topic(bootstrap, topic, 1)
    plain = Producer({"bootstrap.servers": bootstrap})
    plain.produce(topic, value=b"before", partition=0)
    assert plain.flush(30) == 0
    p = open_transaction(bootstrap, topic, txn_id)  # offsets 1-2, open
    producer_id = listed(bootstrap, txn_id)["ProducerId"]
    plain.produce(topic, value=b"after", partition=0)  # 3, held back by the open transaction
    assert plain.flush(30) == 0
    assert read_committed(bootstrap, topic, 1) == [b"before"]
    assert {r["ProducerId"]: r for r in producers(bootstrap, topic)}[producer_id]["CurrentTransactionStartOffset"] == "1"

    cp = tool(bootstrap, "abort", "--topic", topic, "--partition", "0", "--start-offset", "2", check=False)
    assert cp.returncode == 1 and "Could not find any open transactions starting at offset 2" in cp.stderr, cp.stderr
    tool(bootstrap, "abort", "--topic", topic, "--partition", "0", "--start-offset", "1")

    # The ABORT marker (offset 4) ends it: the producer has no open
    # transaction here, its records are aborted, the rest is readable.
    row = {r["ProducerId"]: r for r in producers(bootstrap, topic)}[producer_id]
    assert row["CurrentTransactionStartOffset"] == "None"
    assert int(row["LatestCoordinatorEpoch"]) >= 0
    assert read_committed(bootstrap, topic, 2) == [b"before", b"after"]
    out = tool(bootstrap, "find-hanging", "--topic", topic, "--max-transaction-timeout", "0").stdout
    assert table(out, HANGING_HEADERS) == []
    try:
        p.abort_transaction(30)
    except Exception:
        pass  # what the producer makes of it is the client's business
    assert read_committed(bootstrap, topic, 2) == [b"before", b"after"]


# --- 200 transactional producers initialising at once -----------------------

API_FIND_COORDINATOR = 10
API_INIT_PRODUCER_ID = 22
PRODUCERS = 200


def find_coordinator_v1(c: kafkawire.Connection, key: str) -> int:
    r = c.request(API_FIND_COORDINATOR, 1, kafkawire.string(key) + kafkawire.i8(1))
    r.i32()  # throttle_time_ms
    return r.i16()


def init_producer_id_v1(c: kafkawire.Connection, txn_id: str) -> tuple[int, int]:
    r = c.request(API_INIT_PRODUCER_ID, 1, kafkawire.string(txn_id) + kafkawire.i32(60_000))
    r.i32()  # throttle_time_ms
    err = r.i16()
    return err, r.i64()


def test_200_transactional_producers_initialise_at_once(bootstrap):
    # One producer first, so that Kafka has created __transaction_state
    # (its first FindCoordinator answers COORDINATOR_NOT_AVAILABLE while
    # it does; klamm has nothing to create).
    txn_producer(bootstrap, compat.unique("txn-warmup")).flush(5)
    host, port = bootstrap.rsplit(":", 1)
    prefix = compat.unique("txn-200")
    barrier = threading.Barrier(PRODUCERS, timeout=60)
    results: dict[int, tuple] = {}

    def one(i: int):
        try:
            with kafkawire.Connection(host, int(port), timeout=60) as c:
                barrier.wait()
                txn_id = f"{prefix}-{i}"
                results[i] = (find_coordinator_v1(c, txn_id), *init_producer_id_v1(c, txn_id))
        except Exception as e:  # reported below, with the index
            results[i] = ("exception", repr(e))

    threads = [threading.Thread(target=one, args=(i,)) for i in range(PRODUCERS)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert len(results) == PRODUCERS
    failed = {i: r for i, r in results.items() if r[:2] != (0, 0)}
    assert not failed, f"{len(failed)} of {PRODUCERS} failed: {dict(list(failed.items())[:10])}"
    assert len({r[2] for r in results.values()}) == PRODUCERS, "every producer has its own producer id"


# --- ListTransactions filters, on the wire ----------------------------------

API_LIST_TRANSACTIONS = 66


def read_uvarint(r: kafkawire.Reader) -> int:
    shift = value = 0
    while True:
        b = r.take(1)[0]
        value |= (b & 0x7F) << shift
        if not b & 0x80:
            return value
        shift += 7
        if shift > 28:
            raise kafkawire.WireError("uvarint too long")


def read_compact_string(r: kafkawire.Reader) -> str | None:
    n = read_uvarint(r)
    return None if n == 0 else r.take(n - 1).decode()


def list_transactions(c: kafkawire.Connection, version: int, states=(), pids=(), duration_ms: int = -1,
                      pattern: str | None = None) -> dict:
    body = kafkawire.uvarint(len(states) + 1) + b"".join(kafkawire.compact_string(s) for s in states)
    body += kafkawire.uvarint(len(pids) + 1) + b"".join(kafkawire.i64(p) for p in pids)
    if version >= 1:
        body += kafkawire.i64(duration_ms)
    if version >= 2:
        body += kafkawire.uvarint(0) if pattern is None else kafkawire.compact_string(pattern)
    body += kafkawire.uvarint(0)
    r = c.request(API_LIST_TRANSACTIONS, version, body, header_version=2, response_header_version=1)
    r.i32()  # throttle_time_ms
    out = {"error_code": r.i16(), "unknown": [], "states": {}}
    for _ in range(read_uvarint(r) - 1):
        out["unknown"].append(read_compact_string(r))
    for _ in range(read_uvarint(r) - 1):
        txn_id, pid, state = read_compact_string(r), r.i64(), read_compact_string(r)
        assert read_uvarint(r) == 0
        out["states"][txn_id] = (pid, state)
    assert read_uvarint(r) == 0 and r.remaining() == 0
    return out


def test_list_transactions_filters_on_the_wire(bootstrap):
    topic, prefix = compat.unique("txn-tool-filter"), compat.unique("txn-filter")
    compat.create_topic(bootstrap, topic, 1)
    idle = txn_producer(bootstrap, f"{prefix}-idle")
    busy = open_transaction(bootstrap, topic, f"{prefix}-busy")
    host, port = bootstrap.rsplit(":", 1)
    try:
        with kafkawire.Connection(host, int(port), timeout=30) as c:
            ours = lambda r: {k: v for k, v in r["states"].items() if k.startswith(prefix)}
            everything = list_transactions(c, 0)
            assert everything["error_code"] == 0
            states = ours(everything)
            assert {k: v[1] for k, v in states.items()} == {f"{prefix}-idle": "Empty", f"{prefix}-busy": "Ongoing"}
            busy_pid = states[f"{prefix}-busy"][0]

            r = list_transactions(c, 0, states=["Ongoing", "NoSuchState"])
            assert r["unknown"] == ["NoSuchState"] and set(ours(r)) == {f"{prefix}-busy"}
            assert set(ours(list_transactions(c, 0, pids=[busy_pid]))) == {f"{prefix}-busy"}
            # v1: running longer than a day: none of ours that is open;
            # an id without an open transaction passes (start -1).
            assert set(ours(list_transactions(c, 1, duration_ms=86_400_000))) == {f"{prefix}-idle"}
            assert set(ours(list_transactions(c, 1, duration_ms=0))) == {f"{prefix}-idle", f"{prefix}-busy"}
            # v2: the pattern must match the whole transactional id.
            assert set(list_transactions(c, 2, pattern=f"{prefix}-b.*")["states"]) == {f"{prefix}-busy"}
            assert list_transactions(c, 2, pattern=prefix)["states"] == {}
            assert set(ours(list_transactions(c, 2, pattern=""))) == {f"{prefix}-idle", f"{prefix}-busy"}
            bad = list_transactions(c, 2, pattern="txn-(")
            assert (bad["error_code"], bad["states"]) == (128, {}), bad  # INVALID_REGULAR_EXPRESSION
    finally:
        busy.abort_transaction(30)
        idle.flush(1)


# --- transaction version 2 (KIP-890) ------------------------------------------

PRODUCER_PERFORMANCE = "org.apache.kafka.tools.ProducerPerformance"
FEATURE_TOOL = "org.apache.kafka.tools.FeatureCommand"


def test_transaction_version_2_is_finalized_and_bumps_java_epochs_only(bootstrap):
    out = kafka_tool(FEATURE_TOOL, "--bootstrap-server", bootstrap, "describe").stdout
    line = next(x for x in out.splitlines() if x.split()[:2] == ["Feature:", "transaction.version"])
    assert "SupportedMinVersion: 0" in line and "SupportedMaxVersion: 2" in line, line
    assert "FinalizedVersionLevel: 2" in line, line

    # The Java 4.x producer speaks transaction version 2: every commit
    # bumps its epoch (EndTxn v5), partitions join by Produce v12.
    topic, java_id = compat.unique("txn-tv2"), compat.unique("java-tv2")
    compat.create_topic(bootstrap, topic, 2)
    cp = kafka_tool(PRODUCER_PERFORMANCE, "--topic", topic, "--num-records", "300", "--record-size", "50",
                    "--throughput", "500", "--transactional-id", java_id, "--transaction-duration-ms", "100",
                    "--producer-props", f"bootstrap.servers={bootstrap}", "acks=all", timeout=120)
    assert "300 records sent" in cp.stdout, cp.stdout[-2000:] + cp.stderr[-2000:]
    row = describe(bootstrap, java_id)
    assert row["TransactionState"] == "CompleteCommit"
    assert int(row["ProducerEpoch"]) >= 2, row
    got = compat.consume_all(bootstrap, topic, 300, extra={"isolation.level": "read_committed"})
    assert len(got) == 300

    # librdkafka stays on transaction version 1: the epoch holds.
    rd_id = compat.unique("rd-tv1")
    p = txn_producer(bootstrap, rd_id)
    for i in range(3):
        p.begin_transaction()
        p.produce(topic, value=b"r%d" % i, partition=0)
        p.commit_transaction(30)
    row = describe(bootstrap, rd_id)
    assert (row["TransactionState"], row["ProducerEpoch"]) == ("CompleteCommit", "0"), row


API_ADD_PARTITIONS_TO_TXN = 24
INVALID_TXN_STATE = 48


def add_partitions_v2(c: kafkawire.Connection, txn_id: str, pid: int, epoch: int, topic: str, partition: int) -> int:
    body = (kafkawire.string(txn_id) + kafkawire.i64(pid) + kafkawire.i16(epoch)
            + kafkawire.i32(1) + kafkawire.string(topic) + kafkawire.i32(1) + kafkawire.i32(partition))
    r = c.request(API_ADD_PARTITIONS_TO_TXN, 2, body)
    r.i32()  # throttle_time_ms
    assert r.i32() == 1 and r.string() == topic and r.i32() == 1 and r.i32() == partition
    return r.i16()


def test_a_transactional_batch_outside_its_transaction_is_refused(bootstrap):
    """transaction.partition.verification.enable (Kafka's default): a
    transaction-version-1 producer's batch to a partition its transaction
    did not add would open a transaction no one ends; it gets
    INVALID_TXN_STATE and nothing is written."""
    topic, txn_id = compat.unique("txn-verify"), compat.unique("txn-verify-id")
    compat.create_topic(bootstrap, topic, 1)
    txn_producer(bootstrap, compat.unique("txn-warmup")).flush(5)  # Kafka creates its state topic
    host, port = bootstrap.split(":")
    with kafkawire.Connection(host, int(port)) as c:
        deadline = time.monotonic() + 30
        while True:
            find_coordinator_v1(c, txn_id)
            err, pid = init_producer_id_v1(c, txn_id)
            if err == 0 or time.monotonic() > deadline:
                break
            time.sleep(0.2)
        assert err == 0
        batch = kafkawire.record_batch([(b"k", b"v")], producer=(pid, 0, 0), transactional=True)
        r = c.produce(topic, 0, batch, version=8, transactional_id=txn_id)
        assert r["error_code"] == INVALID_TXN_STATE, r
        assert add_partitions_v2(c, txn_id, pid, 0, topic, 0) == 0
        r = c.produce(topic, 0, batch, version=8, transactional_id=txn_id)
        assert (r["error_code"], r["base_offset"]) == (0, 0), r
    row = {p["ProducerId"]: p for p in producers(bootstrap, topic)}[str(pid)]
    assert row["CurrentTransactionStartOffset"] == "0"
    tool(bootstrap, "abort", "--topic", topic, "--partition", "0", "--start-offset", "0")


API_END_TXN = 26
OPERATION_NOT_ATTEMPTED, UNKNOWN_TOPIC_OR_PARTITION, TRANSACTION_ABORTABLE = 55, 3, 120


def read_uvarint(r: kafkawire.Reader) -> int:
    shift = value = 0
    while True:
        b = r.take(1)[0]
        value |= (b & 0x7F) << shift
        if b < 0x80:
            return value
        shift += 7


def read_compact_string(r: kafkawire.Reader) -> str:
    return r.take(read_uvarint(r) - 1).decode()


def add_partitions_batched(c: kafkawire.Connection, version: int, txn_id: str, pid: int, epoch: int,
                           topic: str, partitions: list[int], verify_only: bool) -> dict[int, int]:
    """AddPartitionsToTxn v4/v5 (the broker-to-broker form, flexible): one
    transaction; returns partition -> error code."""
    u, cs = kafkawire.uvarint, kafkawire.compact_string
    body = (u(2) + cs(txn_id) + kafkawire.i64(pid) + kafkawire.i16(epoch) + kafkawire.i8(1 if verify_only else 0)
            + u(2) + cs(topic) + u(len(partitions) + 1) + b"".join(kafkawire.i32(p) for p in partitions)
            + u(0) + u(0) + u(0))
    r = c.request(API_ADD_PARTITIONS_TO_TXN, version, body, header_version=2, response_header_version=1)
    r.i32()  # throttle_time_ms
    assert r.i16() == 0
    assert read_uvarint(r) == 2 and read_compact_string(r) == txn_id
    assert read_uvarint(r) == 2 and read_compact_string(r) == topic
    out = {}
    for _ in range(read_uvarint(r) - 1):
        p, code = r.i32(), r.i16()
        assert read_uvarint(r) == 0
        out[p] = code
    return out


def test_add_partitions_to_txn_broker_form_verifies_and_adds(bootstrap):
    """AddPartitionsToTxn v4-5, the batched form a partition leader sends
    its transaction coordinator (KIP-890): verify_only answers NONE for a
    partition of the ongoing transaction and TRANSACTION_ABORTABLE (v4
    too, as Kafka 4.1 answers) for another; without verify_only it adds;
    an unknown partition fails the transaction's others as
    OPERATION_NOT_ATTEMPTED."""
    topic, txn_id = compat.unique("txn-apt"), compat.unique("txn-apt-id")
    compat.create_topic(bootstrap, topic, 2)
    txn_producer(bootstrap, compat.unique("txn-warmup")).flush(5)
    host, port = bootstrap.split(":")
    with kafkawire.Connection(host, int(port)) as c:
        deadline = time.monotonic() + 30
        while True:
            find_coordinator_v1(c, txn_id)
            err, pid = init_producer_id_v1(c, txn_id)
            if err == 0 or time.monotonic() > deadline:
                break
            time.sleep(0.2)
        assert err == 0
        assert add_partitions_v2(c, txn_id, pid, 0, topic, 0) == 0
        assert add_partitions_batched(c, 4, txn_id, pid, 0, topic, [0, 1], True) == {0: 0, 1: TRANSACTION_ABORTABLE}
        assert add_partitions_batched(c, 5, txn_id, pid, 0, topic, [0, 1], True) == {0: 0, 1: TRANSACTION_ABORTABLE}
        assert add_partitions_batched(c, 5, txn_id, pid, 0, topic, [1], False) == {1: 0}
        assert add_partitions_batched(c, 5, txn_id, pid, 0, topic, [0, 1], True) == {0: 0, 1: 0}
        assert add_partitions_batched(c, 4, txn_id, pid, 0, topic, [0, 7], True) == \
            {0: OPERATION_NOT_ATTEMPTED, 7: UNKNOWN_TOPIC_OR_PARTITION}
        # End it (EndTxn v1, abort).
        r = c.request(API_END_TXN, 1, kafkawire.string(txn_id) + kafkawire.i64(pid) + kafkawire.i16(0) + kafkawire.i8(0))
        r.i32()
        assert r.i16() == 0
    assert describe(bootstrap, txn_id)["TransactionState"] == "CompleteAbort"


# --- TxnOffsetCommit of unknown topics, on the wire -------------------------

API_ADD_OFFSETS_TO_TXN = 25
API_TXN_OFFSET_COMMIT = 28
RETRIABLE = {14, 15, 16, 51}  # load in progress, not available, not coordinator, concurrent transactions


def retried(call, timeout: float = 60):
    """`call()` -> (error, ...) again while the error is retriable."""
    deadline = time.monotonic() + timeout
    while True:
        out = call()
        if out[0] not in RETRIABLE or time.monotonic() > deadline:
            return out
        time.sleep(0.5)


def test_txn_offset_commit_answers_unknown_topics_and_partitions(bootstrap):
    """As Kafka's KafkaApis: partitions of unknown topics, and unknown
    partition numbers, get UNKNOWN_TOPIC_OR_PARTITION before the group
    coordinator sees the commit; the known one is committed."""
    topic, txn_id, group = compat.unique("txn-oc"), compat.unique("txn-oc-id"), compat.unique("txn-oc-group")
    compat.create_topic(bootstrap, topic, 1)
    host, port = bootstrap.rsplit(":", 1)
    with kafkawire.Connection(host, int(port), timeout=30) as c:
        assert retried(lambda: (find_coordinator_v1(c, txn_id),)) == (0,)
        err, pid = retried(lambda: init_producer_id_v1(c, txn_id))
        assert err == 0
        epoch = 0
        # Kafka creates its offsets topic at the first group lookup.
        assert retried(lambda: (c.request(API_FIND_COORDINATOR, 0, kafkawire.string(group)).i16(),)) == (0,)

        def add_offsets():
            r = c.request(API_ADD_OFFSETS_TO_TXN, 1, kafkawire.string(txn_id) + kafkawire.i64(pid)
                          + kafkawire.i16(epoch) + kafkawire.string(group))
            r.i32()
            return (r.i16(),)
        assert retried(add_offsets) == (0,)

        def part(p: int) -> bytes:
            return kafkawire.i32(p) + kafkawire.i64(5) + kafkawire.i32(-1) + kafkawire.string("")

        def txn_offset_commit():
            body = kafkawire.string(txn_id) + kafkawire.string(group) + kafkawire.i64(pid) + kafkawire.i16(epoch)
            body += kafkawire.i32(2)
            body += kafkawire.string(topic) + kafkawire.i32(2) + part(0) + part(7)
            body += kafkawire.string(compat.unique("txn-oc-gone")) + kafkawire.i32(1) + part(0)
            r = c.request(API_TXN_OFFSET_COMMIT, 2, body)
            r.i32()
            codes = {}
            for _ in range(r.i32()):
                name = r.string()
                for _ in range(r.i32()):
                    p = r.i32()
                    codes[(name == topic, p)] = r.i16()
            assert r.remaining() == 0
            retriable = [e for e in codes.values() if e in RETRIABLE]
            return (retriable[0] if retriable else 0, codes)
        _, codes = retried(txn_offset_commit)
        assert codes == {(True, 0): 0, (True, 7): 3, (False, 0): 3}, codes
