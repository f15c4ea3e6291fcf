"""topic_sync.metrics: one EMF document per sync, with the names and dimensions the alarms read."""

from __future__ import annotations

import json
from typing import Any

import pytest

from topic_sync.exceptions import ClusterUnreachableError, PlanRefusedError
from topic_sync.metrics import (
    NAMESPACE,
    Operation,
    drifted,
    emit_failed_sync_metrics,
    emit_sync_metrics,
)
from topic_sync.plan import ActionKind, ConfigChange, Plan, TopicAction


@pytest.fixture(autouse=True)
def _metrics_enabled(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("POWERTOOLS_METRICS_DISABLED", raising=False)
    monkeypatch.delenv("POWERTOOLS_DEV", raising=False)


def _emf_documents(text: str) -> list[dict[str, Any]]:
    docs = [json.loads(line) for line in text.splitlines() if line.startswith("{")]
    return [d for d in docs if "_aws" in d]


def _one_document(capsys: pytest.CaptureFixture[str]) -> dict[str, Any]:
    (document,) = _emf_documents(capsys.readouterr().out)
    return _flattened(document)


def _flattened(document: dict[str, Any]) -> dict[str, Any]:
    """Powertools writes each metric value as a list of data points; one per metric here."""
    flat = dict(document)
    for name, value in document.items():
        if isinstance(value, list):
            (flat[name],) = value
    return flat


def _metric_units(document: dict[str, Any]) -> dict[str, str]:
    (directive,) = document["_aws"]["CloudWatchMetrics"]
    return {m["Name"]: m["Unit"] for m in directive["Metrics"]}


PLAN = Plan(
    (
        TopicAction("new", ActionKind.CREATE, partitions=3),
        TopicAction(
            "grown",
            ActionKind.UPDATE,
            6,
            3,
            config_changes=(ConfigChange("retention.ms", "1", "2"),),
        ),
        TopicAction("same", ActionKind.UNCHANGED),
        TopicAction("same2", ActionKind.UNCHANGED),
        TopicAction("shrunk", ActionKind.REFUSED, reasons=("cannot shrink partitions 6 -> 3",)),
        TopicAction("kept", ActionKind.RETAIN),
    )
)


def test_a_sync_emits_counts_drift_and_duration_in_one_emf_document(
    capsys: pytest.CaptureFixture[str],
) -> None:
    values = emit_sync_metrics(PLAN, 1.25)
    document = _one_document(capsys)
    (directive,) = document["_aws"]["CloudWatchMetrics"]
    assert directive["Namespace"] == NAMESPACE == "TopicSync"
    assert sorted(directive["Dimensions"][0]) == ["Operation", "service"]
    assert (document["service"], document["Operation"]) == ("topic-sync", "sync")
    expected = {
        "TopicsCreated": 1,
        "TopicsUpdated": 1,
        "TopicsUnchanged": 2,
        "TopicsDeleted": 0,
        "TopicsRefused": 1,
        "DriftedTopics": 3,
        "SyncDuration": 1250.0,
    }
    assert {name: document[name] for name in expected} == expected == values
    units = _metric_units(document)
    assert units["SyncDuration"] == "Milliseconds"
    assert {units[name] for name in expected if name != "SyncDuration"} == {"Count"}


def test_the_drift_check_uses_its_own_operation_dimension(
    capsys: pytest.CaptureFixture[str],
) -> None:
    emit_sync_metrics(
        Plan((TopicAction("a", ActionKind.UNCHANGED),)), 0.01, operation=Operation.DRIFT_CHECK
    )
    document = _one_document(capsys)
    assert document["Operation"] == "drift-check"
    assert document["DriftedTopics"] == 0


def test_drifted_is_everything_but_unchanged_and_retained() -> None:
    assert [a.name for a in drifted(PLAN)] == ["new", "grown", "shrunk"]


def test_a_refused_sync_counts_its_refused_topics_and_an_error(
    capsys: pytest.CaptureFixture[str],
) -> None:
    emit_failed_sync_metrics(PlanRefusedError(["a: shrink", "b: cleanup.policy"]), 0.5)
    document = _one_document(capsys)
    assert (document["SyncErrors"], document["TopicsRefused"], document["SyncDuration"]) == (
        1,
        2,
        500.0,
    )


def test_any_other_failure_is_just_an_error(capsys: pytest.CaptureFixture[str]) -> None:
    emit_failed_sync_metrics(ClusterUnreachableError("b:9098", "timed out"), 2.0)
    document = _one_document(capsys)
    assert document["SyncErrors"] == 1
    assert "TopicsRefused" not in document


def test_each_call_is_its_own_document_nothing_carries_over(
    capsys: pytest.CaptureFixture[str],
) -> None:
    emit_sync_metrics(PLAN, 0.1)
    emit_failed_sync_metrics(RuntimeError("boom"), 0.1)
    first, second = map(_flattened, _emf_documents(capsys.readouterr().out))
    assert "TopicsCreated" in first
    assert "TopicsCreated" not in second
