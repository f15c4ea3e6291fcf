"""Faults on the client's side of the wire, against the real local broker (or a fake port):
wrong credentials, an unresolvable host, a port that never answers, a request librdkafka
refuses to build, partition races, and Kafka's internal topics. Each fails within its budget,
with one clear line and a bounded number of log lines.
"""

from __future__ import annotations

import gc
import logging
import time
from typing import Any

import pytest
from confluent_kafka import Consumer, TopicPartition
from confluent_kafka.admin import NewPartitions  # type: ignore[attr-defined]

from tests.engine.helpers import broker_state, event, invoke, topics_prop
from tests.faults.conftest import LogLines
from tests.support.kafka import (
    LocalKafka,
    aws_env,
    create_topic,
    plaintext_admin,
    plaintext_config,
    produce_messages,
    unique_topic_name,
)
from topic_sync.admin import Outcomes
from topic_sync.connection import AuthMode, Connection
from topic_sync.exceptions import ClusterUnreachableError, PlanRefusedError, SyncFailedError
from topic_sync.kafka_admin import KafkaTopicAdmin
from topic_sync.retry import Deadline
from topic_sync.spec import ClusterType, TopicSpec
from topic_sync.sync import SyncRequest, sync

pytestmark = pytest.mark.integration

# A handful of distinct lines (connecting, the first failure of each kind, their counts).
MAX_LOG_LINES = 12


def one_line(error: BaseException) -> str:
    text = str(error)
    assert "\n" not in text
    assert len(text) < 600, text
    return text


def engine(bootstrap: str, seconds: float, *specs: TopicSpec) -> None:
    request = SyncRequest(tuple(specs), ClusterType.PROVISIONED)
    admin = KafkaTopicAdmin(Connection(bootstrap, auth=AuthMode.PLAINTEXT))
    sync(request, admin, Deadline.after(seconds))


def settled_log(lines: LogLines) -> list[str]:
    gc.collect()  # a finished admin writes its "repeated N times" counts
    return lines.at_least(logging.INFO)


# ---- authentication, resolution, silence ----------------------------------------------------


def test_wrong_iam_secret_is_reported_within_seconds(kafka_broker, log_lines) -> None:
    props = {
        "BootstrapServers": kafka_broker.sasl_ssl_bootstrap,
        "Auth": "IAM",
        "Region": kafka_broker.region,
        "ClientConfig": {"ssl.ca.location": kafka_broker.ca_file},
        "Topics": topics_prop((unique_topic_name("iam-bad"), 1)),
        "TimeoutSeconds": "60",
    }
    started = time.monotonic()
    with (
        aws_env(kafka_broker.access_key_id, "not-the-secret"),
        pytest.raises(ClusterUnreachableError) as info,
    ):
        invoke(event("Create", props))
    elapsed = time.monotonic() - started
    assert elapsed < 6.0  # librdkafka's error_cb says so in ~1 s; it used to take 16 s
    assert one_line(info.value) == (
        f"cannot reach Kafka at {kafka_broker.sasl_ssl_bootstrap}: authentication failed "
        '(_AUTHENTICATION): SASL authentication error: {"status":"invalid_token"}'
    )
    lines = settled_log(log_lines)
    assert len(lines) <= MAX_LOG_LINES, lines
    assert "not-the-secret" not in "\n".join(lines)
    print(f"wrong secret: {elapsed:.2f} s, {len(lines)} log lines")


def test_unresolvable_host_fails_at_the_deadline_with_one_line_and_few_logs(log_lines) -> None:
    props = {
        "BootstrapServers": "nonexistent.invalid:9098",
        "Auth": "PLAINTEXT",
        "Topics": topics_prop(("never", 1)),
        "TimeoutSeconds": "6",
    }
    started = time.monotonic()
    with pytest.raises(ClusterUnreachableError) as info:
        invoke(event("Create", props))
    elapsed = time.monotonic() - started
    assert elapsed < 6 + 2.5
    assert one_line(info.value) == (
        "cannot reach Kafka at nonexistent.invalid:9098: "
        "cannot resolve host nonexistent.invalid: Name or service not known"
    )
    lines = settled_log(log_lines)
    # librdkafka retries the lookup ~20 times a second: once, then a count.
    assert len(lines) <= MAX_LOG_LINES, lines
    assert 1 <= len([line for line in lines if "Failed to resolve" in line]) <= 2, lines
    print(f"unresolvable host: {elapsed:.2f} s, {len(lines)} log lines")


def test_a_port_that_accepts_and_never_answers_fails_within_the_timeout(
    silent_port, log_lines
) -> None:
    started = time.monotonic()
    with pytest.raises(ClusterUnreachableError) as info:
        # An absurd budget is clamped, and the real one (3 s) still bounds every wait.
        engine(f"127.0.0.1:{silent_port}", 3.0, TopicSpec("never", 1))
    elapsed = time.monotonic() - started
    assert elapsed < 3 + 2.0
    assert one_line(info.value) == (
        f"cannot reach Kafka at 127.0.0.1:{silent_port}: no answer to Kafka requests within 3.0 s"
    )
    lines = settled_log(log_lines)
    assert len(lines) <= MAX_LOG_LINES, lines
    print(f"silent port: {elapsed:.2f} s, {len(lines)} log lines")


def test_the_handler_against_a_silent_port_fails_within_its_timeout(silent_port) -> None:
    props = {
        "BootstrapServers": f"127.0.0.1:{silent_port}",
        "Auth": "PLAINTEXT",
        "Topics": topics_prop(("never", 1)),
        "TimeoutSeconds": "4",
    }
    started = time.monotonic()
    with pytest.raises(ClusterUnreachableError) as info:
        invoke(event("Create", props))
    assert time.monotonic() - started < 4 + 2.0
    assert "no answer to Kafka requests" in one_line(info.value)


# ---- one topic the client cannot even build a request for ------------------------------------


def test_a_partition_count_librdkafka_refuses_fails_that_topic_only(kafka_broker) -> None:
    admin = plaintext_admin(kafka_broker)
    grown = unique_topic_name("grow-huge")
    create_topic(admin, grown, partitions=1)
    good = [unique_topic_name("ok") for _ in range(3)]
    huge = unique_topic_name("huge")
    specs = [TopicSpec(good[0], 2), TopicSpec(huge, 1_000_000_000), TopicSpec(good[1], 1)]
    specs += [TopicSpec(grown, 1_000_000_000), TopicSpec(good[2], 3)]
    with pytest.raises(SyncFailedError) as info:
        engine(kafka_broker.plaintext_bootstrap, 30, *specs)
    assert info.value.failures == {
        huge: f"INVALID_REQUEST: Invalid NewTopic({huge}): num_partitions out of expected "
        "range 1..100000 or -1 for broker default",
        grown: f"INVALID_REQUEST: Invalid NewPartitions({grown}): new_total_cnt out of "
        "expected range 1..100000",
    }
    assert sorted(info.value.succeeded) == sorted(good)
    state = broker_state(admin, [*good, huge, grown])
    assert {n: s.partitions for n, s in state.items()} == {
        good[0]: 2,
        good[1]: 1,
        good[2]: 3,
        grown: 1,
    }


# ---- races with another sync ----------------------------------------------------------------


class RacedAdmin(KafkaTopicAdmin):
    """Someone else grows the topics to ``racer_total`` just before our grow reaches Kafka."""

    def __init__(self, broker: LocalKafka, racer_total: int) -> None:
        super().__init__(Connection(broker.plaintext_bootstrap, auth=AuthMode.PLAINTEXT))
        self.broker = broker
        self.racer_total = racer_total
        self.kafka_said: Outcomes = {}

    def create_partitions(self, totals: Any, timeout: float) -> Outcomes:
        if not self.kafka_said:  # the racer wins the first round only
            racer = plaintext_admin(self.broker)
            grows = [NewPartitions(n, self.racer_total) for n in totals]
            for future in racer.create_partitions(grows).values():
                future.result(timeout=15)
        outcomes = super().create_partitions(totals, timeout)
        self.kafka_said = self.kafka_said or dict(outcomes)
        return outcomes


def test_a_grow_raced_to_exactly_our_target_is_success(kafka_broker) -> None:
    name = unique_topic_name("race-same")
    create_topic(plaintext_admin(kafka_broker), name, partitions=3)
    admin = RacedAdmin(kafka_broker, racer_total=6)
    request = SyncRequest((TopicSpec(name, 6),), ClusterType.PROVISIONED)
    report = sync(request, admin, Deadline.after(30))
    # Kafka did refuse our request ("already has 6"), and that is the state we wanted.
    error = admin.kafka_said[name]
    assert error is not None
    assert error.code == "INVALID_PARTITIONS"
    assert report.results[name].ok


def test_a_grow_raced_past_our_target_fails_at_once_naming_both_counts(kafka_broker) -> None:
    name = unique_topic_name("race-more")
    create_topic(plaintext_admin(kafka_broker), name, partitions=3)
    started = time.monotonic()
    with pytest.raises(SyncFailedError) as info:
        sync(
            SyncRequest((TopicSpec(name, 6),), ClusterType.PROVISIONED),
            RacedAdmin(kafka_broker, racer_total=8),
            Deadline.after(30),
        )
    assert time.monotonic() - started < 10  # not the 30 s deadline
    assert info.value.failures == {
        name: f"PARTITIONS_EXCEEDED: topic {name} now has 8 partitions, more than the "
        "spec's 6; Kafka cannot remove partitions"
    }


# ---- Kafka's internal topics ----------------------------------------------------------------


def _commit_offset(broker: LocalKafka, topic: str, group: str) -> None:
    consumer = Consumer({**plaintext_config(broker), "group.id": group})
    try:
        consumer.commit(offsets=[TopicPartition(topic, 0, 5)], asynchronous=False)
    finally:
        consumer.close()


def _committed(broker: LocalKafka, topic: str, group: str) -> int:
    consumer = Consumer({**plaintext_config(broker), "group.id": group})
    try:
        (tp,) = consumer.committed([TopicPartition(topic, 0)], timeout=15)
        return int(tp.offset)
    finally:
        consumer.close()


def test_consumer_offsets_are_never_touched_whatever_the_spec_says(kafka_broker) -> None:
    admin = plaintext_admin(kafka_broker)
    topic, group = unique_topic_name("offsets"), unique_topic_name("group")
    create_topic(admin, topic)
    produce_messages(plaintext_config(kafka_broker), topic, 10)
    _commit_offset(kafka_broker, topic, group)  # makes sure __consumer_offsets exists
    before = broker_state(admin, ["__consumer_offsets"])
    assert before, "__consumer_offsets should exist once an offset is committed"

    hostile = TopicSpec("__consumer_offsets", 60, None, {"retention.ms": "60000"})
    with pytest.raises(PlanRefusedError) as info:
        engine(kafka_broker.plaintext_bootstrap, 20, hostile, TopicSpec("__transaction_state", 4))
    assert "__consumer_offsets is an internal Kafka topic" in one_line(info.value)

    # Nor is it deleted when a stack delete (DESTROY) or a prune drops it.
    request = SyncRequest((), ClusterType.PROVISIONED, previous=(hostile,), prune=True)
    conn = Connection(kafka_broker.plaintext_bootstrap, auth=AuthMode.PLAINTEXT)
    report = sync(request, KafkaTopicAdmin(conn), Deadline.after(20))
    assert report.plan.actions[0].kind.value == "retain"

    assert broker_state(admin, ["__consumer_offsets"]) == before
    assert "__transaction_state" not in broker_state(admin, ["__transaction_state"])
    assert _committed(kafka_broker, topic, group) == 5


# ---- listing topics (the CLI's --prune) --------------------------------------------------------


def test_listing_topic_names_goes_through_the_same_client(kafka_broker, log_lines) -> None:
    name = unique_topic_name("listed")
    create_topic(plaintext_admin(kafka_broker), name)
    conn = Connection(kafka_broker.plaintext_bootstrap, auth=AuthMode.PLAINTEXT)
    assert name in KafkaTopicAdmin(conn).list_topic_names(15)

    started = time.monotonic()
    unresolvable = KafkaTopicAdmin(Connection("nonexistent.invalid:9098", AuthMode.PLAINTEXT))
    with pytest.raises(ClusterUnreachableError) as info:
        unresolvable.list_topic_names(3)
    assert time.monotonic() - started < 3 + 1.5
    assert one_line(info.value) == (
        "cannot reach Kafka at nonexistent.invalid:9098: "
        "cannot resolve host nonexistent.invalid: Name or service not known"
    )
    assert len(settled_log(log_lines)) <= MAX_LOG_LINES
