"""Kafka's controller bounds what one request may create. CreateTopics: more
than 10,000 partitions asked for in all is POLICY_VIOLATION "Excessively
large number of partitions per request." for every topic; otherwise more
than 10,000 metadata records for the valid topics (a TopicRecord, its
ConfigRecords, one PartitionRecord per partition each) is POLICY_VIOLATION
"Unable to perform excessively large batch operation." for every topic,
invalid ones included; validate_only counts the same. CreatePartitions:
more than 10,000 new partitions is UNKNOWN_SERVER_ERROR for the topic that
goes over. (confluent-kafka AdminClient; validate_only keeps the cases at
the boundary cheap.)"""

from __future__ import annotations

import pytest
from confluent_kafka import KafkaError, KafkaException
from confluent_kafka.admin import NewPartitions, NewTopic

import compat

MESSAGE = "Unable to perform excessively large batch operation."
PARTITIONS_MESSAGE = "Excessively large number of partitions per request."


def outcomes(futures: dict, timeout=120) -> dict:
    """{name: None on success, else (error code, message)}."""
    out = {}
    for name, f in futures.items():
        try:
            f.result(timeout=timeout)
            out[name] = None
        except KafkaException as e:
            err = e.args[0]
            out[name] = (err.code(), err.str())
    return out


def test_create_topics_over_ten_thousand_records(bootstrap):
    a = compat.admin(bootstrap)
    t = compat.unique("huge")
    # 1 topic record + 9,999 partition records: at the bound, valid.
    assert outcomes(a.create_topics([NewTopic(t, 9_999, 1)], validate_only=True,
                                    operation_timeout=120, request_timeout=120)) == {t: None}
    # One more partition, or one config: over.
    over = outcomes(a.create_topics([NewTopic(t, 10_000, 1)], validate_only=True,
                                    operation_timeout=120, request_timeout=120))
    assert over == {t: (KafkaError.POLICY_VIOLATION, MESSAGE)}
    over = outcomes(a.create_topics([NewTopic(t, 9_999, 1, config={"retention.ms": "1000"})], validate_only=True,
                                    operation_timeout=120, request_timeout=120))
    assert over == {t: (KafkaError.POLICY_VIOLATION, MESSAGE)}
    # Per request: more than 10,000 partitions asked for in all is refused
    # first, for every topic, the small valid one and an invalid one too.
    a1, a2, small, bad = (compat.unique("half"), compat.unique("half"), compat.unique("small"),
                          compat.unique("bad"))
    over = outcomes(a.create_topics([NewTopic(a1, 5_000, 1), NewTopic(a2, 5_000, 1), NewTopic(small, 1, 1),
                                     NewTopic(bad, 1, 3)], operation_timeout=120, request_timeout=120))
    assert over == {n: (KafkaError.POLICY_VIOLATION, PARTITIONS_MESSAGE) for n in (a1, a2, small, bad)}
    # 10,000 partitions in all, but 10,001 records for the valid topics (the
    # invalid one, replication factor 3, takes none).
    over = outcomes(a.create_topics([NewTopic(a1, 4_999, 1), NewTopic(a2, 5_000, 1), NewTopic(bad, 1, 3)],
                                    operation_timeout=120, request_timeout=120))
    assert over == {n: (KafkaError.POLICY_VIOLATION, MESSAGE) for n in (a1, a2, bad)}
    md = a.list_topics(timeout=10)
    assert not {a1, a2, small, bad} & set(md.topics), "nothing was created"


def test_create_partitions_over_ten_thousand_new_partitions(bootstrap):
    a = compat.admin(bootstrap)
    t = compat.unique("grow")
    compat.create_topic(bootstrap, t, 1)
    assert outcomes(a.create_partitions([NewPartitions(t, 10_001)], validate_only=True,
                                        operation_timeout=120, request_timeout=120)) == {t: None}
    over = outcomes(a.create_partitions([NewPartitions(t, 10_002)], operation_timeout=120, request_timeout=120))
    assert over[t][0] == KafkaError.UNKNOWN, over
    if compat.BROKER_KIND == "klamm":
        # Kafka 4.1 has by then committed the 10,000 partitions that fitted
        # (the topic has 10,001); klamm creates none for a refused topic.
        assert len(a.list_topics(topic=t, timeout=10).topics[t].partitions) == 1
