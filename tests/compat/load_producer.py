"""Load producer for the compat suite's crash tests (run as a subprocess by
test_restart.py): produces values "<prefix>-<i>" with acks=all and
idempotence on (confluent-kafka) until killed or until --max-records /
--max-seconds, appending one line "<partition> <offset> <value>" to the
acks file for every acknowledged record, flushed immediately.

    python load_producer.py BOOTSTRAP TOPIC ACKS_FILE PREFIX [--max-records N] [--max-seconds S] [--rate R]

--rate caps the records produced per second (default: unbounded).
"""

import argparse
import signal
import sys
import time

from confluent_kafka import Producer


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("bootstrap")
    ap.add_argument("topic")
    ap.add_argument("acks_file")
    ap.add_argument("prefix")
    ap.add_argument("--max-records", type=int, default=200_000)
    ap.add_argument("--max-seconds", type=float, default=60.0)
    ap.add_argument("--rate", type=float, default=0.0)
    args = ap.parse_args()

    stop = False

    def on_term(*_):
        nonlocal stop
        stop = True

    signal.signal(signal.SIGTERM, on_term)
    out = open(args.acks_file, "a", buffering=1)
    errors = 0

    def on_delivery(err, msg):
        nonlocal errors
        if err is not None:
            errors += 1
            return
        out.write(f"{msg.partition()} {msg.offset()} {msg.value().decode()}\n")
        out.flush()

    p = Producer({
        "bootstrap.servers": args.bootstrap,
        "acks": "all",
        "enable.idempotence": True,
        "linger.ms": 2,
        "message.timeout.ms": 30000,
        "queue.buffering.max.messages": 10000,
    })
    started = time.monotonic()
    deadline = started + args.max_seconds
    i = 0
    while not stop and i < args.max_records and time.monotonic() < deadline:
        if args.rate > 0 and i >= (time.monotonic() - started) * args.rate:
            p.poll(0.005)
            continue
        try:
            p.produce(args.topic, value=f"{args.prefix}-{i}".encode(), on_delivery=on_delivery)
            i += 1
        except BufferError:
            p.poll(0.05)
            continue
        if i % 50 == 0:
            p.poll(0.01)
    p.flush(5 if stop else 30)
    out.close()
    print(f"produced {i} errors {errors}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
