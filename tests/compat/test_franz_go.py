"""franz-go (Go client, kgo + kadm) consumer groups against the broker under
test: tests/compat/go/main.go, built by scripts/test into
.deps/bin/klamm-compat-group, runs three group members that join one by one
and later leave while a producer keeps writing, and checks delivery and
ownership; see that file's doc comment for the exact checks."""

from __future__ import annotations

import pytest

import compat

pytestmark = pytest.mark.skipif(not compat.GO_GROUP_BIN.exists(),
                                reason=f"{compat.GO_GROUP_BIN} not built (scripts/test builds it)")


def run_group(bootstrap: str, balancer: str, protocol: str = "classic"):
    topic = compat.unique(f"franz-{balancer}")
    group = compat.unique(f"franz-g-{balancer}")
    cp = compat.run([compat.GO_GROUP_BIN, "-brokers", bootstrap, "-topic", topic, "-group", group,
                     "-partitions", "6", "-balancer", balancer, "-timeout", "45s", "-strict",
                     "-protocol", protocol],
                    timeout=200, check=False)
    print(cp.stdout)
    print(cp.stderr[-6000:])
    assert cp.returncode == 0, f"franz-go group check failed:\n{cp.stdout}\n{cp.stderr[-6000:]}"
    assert cp.stdout.startswith("OK "), cp.stdout


@pytest.mark.slow
def test_group_eager_range(bootstrap):
    """Classic group, eager range assignor: 3 members join one by one and 2
    leave while records are produced to a 6-partition topic; after each
    change the live members own all 6 partitions exactly once; every
    acknowledged record is consumed; no partition has two owners at once; no
    record is delivered twice (commit after each poll and on revoke)."""
    run_group(bootstrap, "range")


@pytest.mark.slow
def test_group_cooperative_sticky(bootstrap):
    """Same as the eager test with the cooperative-sticky assignor
    (incremental rebalances: only moved partitions are revoked, the second
    rebalance hands them to their new owner)."""
    run_group(bootstrap, "cooperative-sticky")


@pytest.mark.parametrize("balancer", ["range", "cooperative-sticky"])
def test_group_consumer_protocol(bootstrap, balancer):
    """The same scenario with the KIP-848 consumer protocol (franz-go's
    next-gen balancer; the server assigns with `range` or `uniform`): full
    coverage after each change, no partition owned twice, every record
    consumed, none redelivered; ConsumerGroupDescribe shows the group."""
    run_group(bootstrap, balancer, "consumer")


def test_group_transact_session_exactly_once(bootstrap):
    """franz-go's GroupTransactSession (issue 10): two members of one group
    consume 600 records, write each transformed to an output topic and
    commit their offsets in the same transaction; each member's first
    transaction is aborted on purpose. A read_committed reader finds every
    input record in the output exactly once."""
    cp = compat.run([compat.GO_GROUP_BIN, "txn", "-brokers", bootstrap, "-in", compat.unique("franz-txn-in"),
                     "-out", compat.unique("franz-txn-out"), "-group", compat.unique("franz-txn"),
                     "-records", "600", "-timeout", "90s"], timeout=150, check=False)
    assert cp.returncode == 0 and cp.stdout.startswith("OK "), f"{cp.stdout}\n{cp.stderr[-6000:]}"
