"""The Lambda handler against the real local broker: whole CloudFormation lifecycles.

GIVEN a broker state, WHEN CloudFormation sends an event, THEN check the broker itself.
"""

from __future__ import annotations

import contextlib
import json
import subprocess
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from moto import mock_aws
from moto.cloudformation.models import cloudformation_backends

from tests.engine.helpers import broker_state, event, invoke, topics_prop
from tests.support.kafka import (
    LocalKafka,
    aws_env,
    consume_messages,
    create_topic,
    plaintext_admin,
    plaintext_config,
    produce_messages,
    unique_topic_name,
)
from topic_sync.exceptions import (
    ClusterUnreachableError,
    PlanRefusedError,
    SpecError,
    SyncFailedError,
)

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
def admin(kafka_broker: LocalKafka) -> Any:
    return plaintext_admin(kafka_broker)


def props(broker: LocalKafka, topics: list[dict[str, Any]], **extra: Any) -> dict[str, Any]:
    return {
        "BootstrapServers": broker.plaintext_bootstrap,
        "Auth": "PLAINTEXT",
        "Topics": topics,
        "TimeoutSeconds": "30",
        **extra,
    }


def readable(broker: LocalKafka, topic: str, sent: list[Any]) -> None:
    got = consume_messages(plaintext_config(broker), topic, len(sent), timeout=20)
    assert sorted(got, key=repr) == sorted(sent, key=repr), topic


@contextlib.contextmanager
def moto_stack(status: str) -> Iterator[str]:
    """A moto stack in ``status``; yields its StackId."""
    with mock_aws():
        cfn = boto3.client("cloudformation", region_name="us-east-1")
        template = {"Resources": {"T": {"Type": "AWS::SNS::Topic"}}}
        stack_id = cfn.create_stack(StackName="app", TemplateBody=json.dumps(template))["StackId"]
        stack = cloudformation_backends["123456789012"]["us-east-1"].stacks[stack_id]
        stack.status = status  # moto has no API for these in-progress AWS-side states
        yield stack_id


@pytest.fixture
def rollback_stack() -> Iterator[str]:
    with moto_stack("UPDATE_ROLLBACK_IN_PROGRESS") as stack_id:
        yield stack_id


@pytest.fixture
def deleting_stack() -> Iterator[str]:
    """RemovalPolicy DESTROY acts only while the stack itself is being deleted."""
    with moto_stack("DELETE_IN_PROGRESS") as stack_id:
        yield stack_id


@pytest.fixture
def no_rollback() -> Iterator[None]:
    """AWS mocked with no such stack: DescribeStacks fails, so "not a rollback"."""
    with mock_aws():
        yield


def test_create_adopt_grow_configs_and_noop_resync(kafka_broker, admin) -> None:
    new, adopted = unique_topic_name("new"), unique_topic_name("adopt")
    create_topic(admin, adopted, partitions=1, config={"max.message.bytes": "200000"})
    sent = produce_messages(plaintext_config(kafka_broker), adopted, 20)
    v1 = props(
        kafka_broker,
        topics_prop(
            (new, 2, {"retention.ms": "86400000"}), (adopted, 3, {"retention.bytes": "1048576"})
        ),
    )
    created = invoke(event("Create", v1))
    assert created["PhysicalResourceId"].startswith("topic-sync-")
    assert created["Data"]["Created"] == 1
    assert created["Data"]["Updated"] == 1
    state = broker_state(admin, [new, adopted])
    assert state[new].partitions == 2
    assert state[new].config == {"retention.ms": "86400000"}
    assert state[adopted].partitions == 3
    assert state[adopted].config == {"retention.bytes": "1048576", "max.message.bytes": "200000"}

    v2 = props(
        kafka_broker,
        topics_prop(
            (new, 4, {"retention.ms": "172800000", "compression.type": "zstd"}), (adopted, 3)
        ),
    )
    pid = created["PhysicalResourceId"]
    updated = invoke(event("Update", v2, old=v1, physical_id=pid))
    assert updated["PhysicalResourceId"] == pid
    state = broker_state(admin, [new, adopted])
    assert state[new].partitions == 4
    assert state[new].config == {"retention.ms": "172800000", "compression.type": "zstd"}
    # retention.bytes left the spec: reverted. max.message.bytes was never ours: kept.
    assert state[adopted].config == {"max.message.bytes": "200000"}
    readable(kafka_broker, adopted, sent)

    again = invoke(event("Update", v2, old=v2, physical_id=pid))
    assert again["Data"]["Unchanged"] == 2
    assert again["Data"]["Created"] == again["Data"]["Updated"] == again["Data"]["Deleted"] == 0
    assert again["Data"]["AdminRequests"] == 2  # one describe_topics + one describe_configs
    assert broker_state(admin, [new, adopted]) == state


def test_data_survives_update_rollback_and_delete_retain(
    kafka_broker, admin, rollback_stack
) -> None:
    a, b = unique_topic_name("keep"), unique_topic_name("dropped")
    v1 = props(kafka_broker, topics_prop((a, 1), (b, 1)), Prune="true")
    pid = invoke(event("Create", v1, stack_id=rollback_stack))["PhysicalResourceId"]
    sent_a = produce_messages(plaintext_config(kafka_broker), a, 30)
    sent_b = produce_messages(plaintext_config(kafka_broker), b, 30)

    # Forward update: grow a, drop b (Prune=false: b stays with its data).
    v2 = props(kafka_broker, topics_prop((a, 3)))
    result = invoke(event("Update", v2, old=v1, physical_id=pid, stack_id=rollback_stack))
    assert result["Data"]["RetainedTopics"] == b
    assert set(broker_state(admin, [a, b])) == {a, b}
    readable(kafka_broker, b, sent_b)

    # Rollback to v1 (with Prune=true in it!): a's decrease is kept, nothing is deleted.
    v3 = props(kafka_broker, topics_prop((a, 1)), Prune="true")
    rolled = invoke(
        event(
            "Update",
            v3,
            old={**v2, "Topics": topics_prop((a, 3), (b, 1))},
            physical_id=pid,
            stack_id=rollback_stack,
        )
    )
    assert rolled["Data"]["Rollback"] == "true"
    assert "partitions cannot decrease (3 -> 1)" in rolled["Data"]["Warnings"]
    state = broker_state(admin, [a, b])
    assert state[a].partitions == 3
    assert b in state
    readable(kafka_broker, a, sent_a)

    deleted = invoke(event("Delete", v3, physical_id=pid, stack_id=rollback_stack))
    assert deleted["Data"]["Retained"] == 1
    assert set(broker_state(admin, [a, b])) == {a, b}
    readable(kafka_broker, a, sent_a)
    readable(kafka_broker, b, sent_b)


def test_prune_and_destroy_delete_only_their_topics(kafka_broker, admin, deleting_stack) -> None:
    x, y, z, foreign = (unique_topic_name(p) for p in ("x", "y", "z", "foreign"))
    create_topic(admin, foreign)
    v1 = props(kafka_broker, topics_prop((x, 1), (y, 1), (z, 1)), RemovalPolicy="DESTROY")
    pid = invoke(event("Create", v1, stack_id=deleting_stack))["PhysicalResourceId"]
    v2 = {**v1, "Topics": topics_prop((x, 1), (y, 1)), "Prune": "true"}
    pruned = invoke(event("Update", v2, old=v1, physical_id=pid, stack_id=deleting_stack))
    assert pruned["Data"]["DeletedTopics"] == z
    assert set(broker_state(admin, [x, y, z, foreign])) == {x, y, foreign}
    destroyed = invoke(event("Delete", v2, physical_id=pid, stack_id=deleting_stack))
    assert destroyed["Data"]["Deleted"] == 2
    assert set(broker_state(admin, [x, y, z, foreign])) == {foreign}


BAD_INPUTS = [
    ({"Name": "bad name", "Partitions": "1"}, SpecError, "'bad name': name may contain only"),
    ({"Name": "..", "Partitions": "1"}, SpecError, "'..': name is not allowed"),
    (
        {"Name": "{ok}", "Partitions": "0"},
        SpecError,
        "Partitions must be a positive integer, got '0'",
    ),
    (
        {"Name": "{ok}", "Partitions": "x"},
        SpecError,
        "Partitions must be a positive integer, got 'x'",
    ),
    (
        {"Name": "{ok}", "Partitions": "1", "Config": {"retention.msec": "1"}},
        SpecError,
        "unknown topic config 'retention.msec'",
    ),
    (
        {"Name": "{ok}", "Partitions": "1", "Config": {"segment.bytes": "1048576"}},
        SpecError,
        "config segment.bytes is not allowed on MSK Serverless",
    ),
    (
        {"Name": "{ok}", "Partitions": "1", "Config": {"max.message.bytes": "9000000"}},
        SpecError,
        "exceeds the MSK Serverless maximum 8388608",
    ),
    (
        {"Name": "{ok}", "Partitions": "1", "ReplicationFactor": "3"},
        SpecError,
        "ReplicationFactor cannot be set on MSK Serverless",
    ),
    (
        {"Name": "{existing}", "Partitions": "1"},
        PlanRefusedError,
        "partitions cannot decrease (2 -> 1)",
    ),
    (
        {"Name": "{existing}", "Partitions": "2", "Config": {"cleanup.policy": "compact"}},
        PlanRefusedError,
        "cleanup.policy can only be set when the topic is created",
    ),
]


@pytest.mark.parametrize(("bad", "error", "message"), BAD_INPUTS)
def test_bad_input_fails_clearly_and_touches_nothing(
    kafka_broker, admin, no_rollback, bad, error, message
) -> None:
    existing, fresh, ok = (unique_topic_name(p) for p in ("existing", "fresh", "ok"))
    create_topic(admin, existing, partitions=2, config={"retention.ms": "1000000"})
    bad = json.loads(json.dumps(bad).replace("{ok}", ok).replace("{existing}", existing))
    good = topics_prop((fresh, 1), (existing, 3, {"retention.ms": "2000000"}))
    topics = [*good, bad] if bad["Name"] != existing else [good[0], bad]
    before = broker_state(admin, [existing, fresh, ok])
    with pytest.raises(error) as info:
        invoke(
            event(
                "Update",
                props(kafka_broker, topics),
                old=props(kafka_broker, []),
                physical_id="topic-sync-bad",
            )
        )
    assert message in str(info.value)
    assert broker_state(admin, [existing, fresh, ok]) == before


def test_two_concurrent_creates_both_succeed(kafka_broker, admin) -> None:
    names = [unique_topic_name("race") for _ in range(5)]
    p = props(kafka_broker, topics_prop(*((n, 3, {"retention.ms": "3600000"}) for n in names)))
    results: list[Any] = []

    def run() -> None:
        try:
            results.append(invoke(event("Create", p)))
        except Exception as exc:
            results.append(exc)

    threads = [threading.Thread(target=run) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert all(isinstance(r, dict) for r in results), results
    state = broker_state(admin, names)
    assert all(state[n].partitions == 3 for n in names)


def test_unreachable_bootstrap_fails_within_deadline(kafka_broker) -> None:
    p = {
        "BootstrapServers": "127.0.0.1:1",
        "Auth": "PLAINTEXT",
        "TimeoutSeconds": "4",
        "Topics": topics_prop(("never", 1)),
    }
    started = time.monotonic()
    with pytest.raises(ClusterUnreachableError) as info:
        invoke(event("Create", p))
    assert time.monotonic() - started < 10
    assert "cannot reach Kafka at 127.0.0.1:1" in str(info.value)
    print("unreachable:", info.value)


def test_lambda_remaining_time_bounds_the_deadline(kafka_broker) -> None:
    p = {
        "BootstrapServers": "127.0.0.1:1",
        "Auth": "PLAINTEXT",
        "TimeoutSeconds": "300",
        "Topics": topics_prop(("never", 1)),
    }
    started = time.monotonic()
    with pytest.raises(ClusterUnreachableError):
        invoke(event("Create", p), remaining_ms=8_000)  # 8 s left - 5 s margin
    assert time.monotonic() - started < 8


def _kafka_configs(broker: LocalKafka, *args: str) -> None:
    subprocess.run(
        [
            "java",
            "-cp",
            str(REPO / ".kafka" / "lib" / "*"),
            "kafka.admin.ConfigCommand",
            "--bootstrap-server",
            broker.plaintext_bootstrap,
            *args,
        ],
        check=True,
        capture_output=True,
        timeout=60,
    )


def test_throttled_create_completes_by_backing_off(kafka_broker, admin, caplog) -> None:
    client_id = f"topic-sync-throttle-{uuid.uuid4().hex[:8]}"
    quota = ["--entity-type", "clients", "--entity-name", client_id]
    _kafka_configs(kafka_broker, "--alter", "--add-config", "controller_mutation_rate=1", *quota)
    try:
        time.sleep(3)  # let the broker pick the quota up
        names = [unique_topic_name("throttle") for _ in range(6)]
        p = props(
            kafka_broker,
            topics_prop(*((n, 4) for n in names)),
            TimeoutSeconds="60",
            ClientConfig={"client.id": client_id},
        )
        first = invoke(event("Create", p))
        second = invoke(
            event(
                "Update",
                {**p, "Topics": topics_prop(*((n, 6) for n in names))},
                old=p,
                physical_id=first["PhysicalResourceId"],
            )
        )
        assert second["Data"]["Updated"] == 6
        state = broker_state(admin, names)
        assert all(state[n].partitions == 6 for n in names)
        assert "throttled by the broker" in caplog.text
    finally:
        _kafka_configs(
            kafka_broker, "--alter", "--delete-config", "controller_mutation_rate", *quota
        )


def _iam_props(broker: LocalKafka, topics: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "BootstrapServers": broker.sasl_ssl_bootstrap,
        "Auth": "IAM",
        "Region": broker.region,
        "ClientConfig": {"ssl.ca.location": broker.ca_file},
        "Topics": topics,
        "TimeoutSeconds": "15",
    }


def test_iam_path_succeeds_with_granted_credentials(kafka_broker, admin) -> None:
    prefix = unique_topic_name("iam")
    p = _iam_props(kafka_broker, topics_prop((f"{prefix}-a", 2, {"retention.ms": "3600000"})))
    with aws_env(kafka_broker.access_key_id, kafka_broker.secret_access_key):
        result = invoke(event("Create", p))
    assert result["Data"]["Created"] == 1
    assert broker_state(admin, [f"{prefix}-a"])[f"{prefix}-a"].partitions == 2


def test_iam_with_wrong_credentials_fails_clearly(kafka_broker) -> None:
    p = _iam_props(kafka_broker, topics_prop((unique_topic_name("iam-bad"), 1)))
    started = time.monotonic()
    with (
        aws_env(kafka_broker.access_key_id, "not-the-secret"),
        pytest.raises(ClusterUnreachableError) as info,
    ):
        invoke(event("Create", p))
    assert time.monotonic() - started < 20
    assert kafka_broker.sasl_ssl_bootstrap in str(info.value)
    assert "uthentication" in str(info.value)
    print("wrong credentials:", info.value)


def test_iam_identity_without_acls_fails_per_topic(kafka_broker) -> None:
    name = unique_topic_name("iam-denied")
    p = _iam_props(kafka_broker, topics_prop((name, 1)))
    with (
        aws_env(kafka_broker.denied_access_key_id, kafka_broker.denied_secret_access_key),
        pytest.raises(SyncFailedError) as info,
    ):
        invoke(event("Create", p))
    assert f"{name}: cannot describe: TOPIC_AUTHORIZATION_FAILED" in str(info.value)
    print("no ACLs:", info.value)


def test_dry_run_plans_without_mutating(kafka_broker, admin) -> None:
    name = unique_topic_name("dry")
    result = invoke(event("Create", props(kafka_broker, topics_prop((name, 2)), DryRun="true")))
    assert result["Data"]["DryRun"] == "true"
    assert f"+ create {name}: partitions=2" in result["Data"]["Plan"]
    assert broker_state(admin, [name]) == {}


def test_destroy_when_the_stack_is_not_being_deleted_keeps_topics_and_data(
    kafka_broker, admin
) -> None:
    # A Create that adopted a topic holding data, then rolled back: CloudFormation deletes us.
    adopted = unique_topic_name("adopted")
    create_topic(admin, adopted)
    sent = produce_messages(plaintext_config(kafka_broker), adopted, 10)
    p = props(kafka_broker, topics_prop((adopted, 1)), RemovalPolicy="DESTROY")
    with moto_stack("ROLLBACK_IN_PROGRESS") as stack_id:
        pid = invoke(event("Create", p, stack_id=stack_id))["PhysicalResourceId"]
        result = invoke(event("Delete", p, physical_id=pid, stack_id=stack_id))
    assert result["Data"]["Deleted"] == 0
    assert result["Data"]["RetainedTopics"] == adopted
    readable(kafka_broker, adopted, sent)


def test_thousand_topics_strings_and_small_response(kafka_broker, admin, deleting_stack) -> None:
    prefix = unique_topic_name("bulk")
    names = [f"{prefix}-{i:04d}-{'x' * 200}" for i in range(1000)]
    p = props(
        kafka_broker,
        [{"Name": n, "Partitions": "1", "Config": {"retention.ms": "3600000"}} for n in names],
        Prune="false",
        RemovalPolicy="DESTROY",
        TimeoutSeconds="120",
        PartitionRate="off",  # 1000 partitions at once: the local broker has no quota
    )
    created = invoke(event("Create", p, stack_id=deleting_stack))
    assert created["Data"]["Created"] == 1000
    assert len(json.dumps(created).encode()) < 4096
    assert created["Data"]["CreatedTopics"].endswith("more")
    pid = created["PhysicalResourceId"]
    deleted = invoke(event("Delete", p, physical_id=pid, stack_id=deleting_stack))
    assert deleted["Data"]["Deleted"] == 1000
    assert len(json.dumps(deleted).encode()) < 4096
