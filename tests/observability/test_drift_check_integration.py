"""The scheduled drift check's entry point (topic_sync.drift_check) against the real local broker.

GIVEN topics the provisioning handler created (PLAINTEXT), WHEN someone changes the cluster out
of band and the schedule fires the drift check with the deployed spec, THEN the EMF output
carries DriftedTopics > 0 (what the Drift alarm reads) and the report names topic and config.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from typing import Any

import pytest
from confluent_kafka.admin import (  # type: ignore[attr-defined]
    AlterConfigOpType,
    ConfigEntry,
    ConfigResource,
    ResourceType,
)

from tests.support.kafka import LocalKafka, plaintext_admin, topic_names, unique_topic_name
from topic_sync import drift_check, handler
from topic_sync_tools.local_invoke import LocalLambdaContext, custom_resource_event, local_stack_id

pytestmark = pytest.mark.integration


@pytest.fixture(autouse=True)
def _metrics_enabled(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("POWERTOOLS_METRICS_DISABLED", raising=False)
    monkeypatch.delenv("POWERTOOLS_DEV", raising=False)


def _spec(broker: LocalKafka, names: list[str]) -> dict[str, Any]:
    """The deployed spec, shaped as the schedule's input (the custom resource's properties)."""
    return {
        "BootstrapServers": broker.plaintext_bootstrap,
        "Auth": "PLAINTEXT",
        "ClusterType": "SERVERLESS",
        "TimeoutSeconds": "30",
        "Topics": [
            {"Name": name, "Partitions": "2", "Config": {"retention.ms": "86400000"}}
            for name in names
        ],
    }


@pytest.fixture
def deployed(kafka_broker: LocalKafka) -> Iterator[dict[str, Any]]:
    """Two topics created through the provisioning handler, as a deploy would."""
    spec = _spec(kafka_broker, [unique_topic_name("drift"), unique_topic_name("drift")])
    event = custom_resource_event(
        "Create", spec, stack_id=local_stack_id(), logical_id="KafkaTopics"
    )
    result = handler.on_event(event, LocalLambdaContext())  # type: ignore[arg-type]
    assert result["Data"]["Created"] == 2
    yield spec
    admin = plaintext_admin(kafka_broker)
    names = [t["Name"] for t in spec["Topics"]]
    present = [n for n in names if n in topic_names(admin)]
    if present:
        for future in admin.delete_topics(present, request_timeout=15).values():
            future.result(timeout=15)


def _check(spec: dict[str, Any], capsys: pytest.CaptureFixture[str]) -> tuple[Any, Any]:
    """Run the entry point as EventBridge would; return its report and its one EMF document."""
    capsys.readouterr()
    report = drift_check.handler(dict(spec), LocalLambdaContext())  # type: ignore[arg-type]
    lines = [
        json.loads(line) for line in capsys.readouterr().out.splitlines() if line.startswith("{")
    ]
    (emf,) = [line for line in lines if "_aws" in line]
    return report, emf


def test_drift_check_reports_an_out_of_band_config_change(
    kafka_broker: LocalKafka, deployed: dict[str, Any], capsys: pytest.CaptureFixture[str]
) -> None:
    report, emf = _check(deployed, capsys)
    assert report["InSync"] is True
    assert emf["DriftedTopics"] == [0.0]
    assert emf["Operation"] == "drift-check"

    # Out of band: someone raises retention by hand on the cluster.
    changed = deployed["Topics"][1]["Name"]
    admin = plaintext_admin(kafka_broker)
    resource = ConfigResource(
        ResourceType.TOPIC,
        changed,
        incremental_configs=[
            ConfigEntry("retention.ms", "172800000", incremental_operation=AlterConfigOpType.SET)
        ],
    )
    for future in admin.incremental_alter_configs([resource], request_timeout=15).values():
        future.result(timeout=15)

    deadline = time.monotonic() + 15
    report, emf = _check(deployed, capsys)
    while report["InSync"] and time.monotonic() < deadline:  # the broker applies it at once,
        time.sleep(0.2)  # but never assert on a race
        report, emf = _check(deployed, capsys)
    assert report["InSync"] is False
    assert report["Drifted"] == 1
    assert report["DriftedTopics"] == [changed]
    assert changed in report["Differences"]
    assert "retention.ms 172800000 -> 86400000" in report["Differences"]
    # What the Drift alarm reads: namespace TopicSync, DriftedTopics >= 1 for drift-check.
    (directive,) = emf["_aws"]["CloudWatchMetrics"]
    assert directive["Namespace"] == "TopicSync"
    assert (emf["service"], emf["Operation"], emf["DriftedTopics"]) == (
        "topic-sync",
        "drift-check",
        [1.0],
    )
    assert emf["TopicsUpdated"] == [1.0]
    # Read only: the check changed nothing, the drift is still there.
    again, _ = _check(deployed, capsys)
    assert again["DriftedTopics"] == [changed]


def test_drift_check_reports_a_deleted_topic(
    kafka_broker: LocalKafka, deployed: dict[str, Any], capsys: pytest.CaptureFixture[str]
) -> None:
    deleted = deployed["Topics"][0]["Name"]
    admin = plaintext_admin(kafka_broker)
    admin.delete_topics([deleted], request_timeout=15)[deleted].result(timeout=15)
    deadline = time.monotonic() + 15
    report, emf = _check(deployed, capsys)
    while report["InSync"] and time.monotonic() < deadline:
        time.sleep(0.2)
        report, emf = _check(deployed, capsys)
    assert report["DriftedTopics"] == [deleted]
    assert f"+ create {deleted}" in report["Differences"]
    assert emf["DriftedTopics"] == [1.0]
    assert emf["TopicsCreated"] == [1.0]  # "would create": the plan, not an action
