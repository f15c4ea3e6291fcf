"""A paced sync through the handler: on_event starts it, is_complete (the Provider framework's
waiter) continues it window by window, and the total timeout fails with what is left.

In-memory cluster; wall-clock time is a fake that each test moves like the waiter would.
"""

from __future__ import annotations

import copy
import functools
from types import SimpleNamespace
from typing import Any

import pytest

from tests.engine.fake_admin import FakeClock
from tests.engine.helpers import load_event
from tests.engine.test_engine_handler_unit import Cluster, no_kafka, with_cluster
from topic_sync import handler
from topic_sync.exceptions import SyncIncompleteError
from topic_sync.pacing import Pacing
from topic_sync_tools.local_invoke import LocalLambdaContext

# 10 topics x 10 partitions against a bucket of 40 per 300 s.
TOPICS = [{"Name": f"t{i:02d}", "Partitions": "10"} for i in range(10)]
PACED = {"Topics": TOPICS, "PartitionRate": "40/300s", "TotalTimeoutSeconds": "3600"}


@pytest.fixture
def wall(monkeypatch: pytest.MonkeyPatch) -> FakeClock:
    """The handler's wall clock (StartedAt, the total timeout) and the pacing bucket's."""
    clock = FakeClock(start=1_800_000_000.0)
    fake_time = SimpleNamespace(time=clock, monotonic=clock, sleep=clock.sleep)
    monkeypatch.setattr(handler, "time", fake_time)
    monkeypatch.setattr(handler, "Pacing", functools.partial(Pacing, clock=clock))
    return clock


@pytest.fixture(autouse=True)
def aws_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_REGION", "us-east-1")


def on_event(**changes: Any) -> tuple[dict[str, Any], dict[str, Any]]:
    evt = load_event("lifecycle_1_create")
    evt["ResourceProperties"].update(changes)
    context: Any = LocalLambdaContext()
    return evt, handler.on_event(copy.deepcopy(evt), context)


def waiter_call(evt: dict[str, Any], result: dict[str, Any]) -> dict[str, Any]:
    """What the framework sends is_complete: the request merged with on_event's answer."""
    context: Any = LocalLambdaContext()
    answer: dict[str, Any] = handler.is_complete({**copy.deepcopy(evt), **result}, context)
    return answer


def test_a_small_spec_completes_in_on_event_and_the_waiter_needs_no_kafka(
    monkeypatch, wall
) -> None:
    cluster = with_cluster(monkeypatch, Cluster())
    evt, result = on_event(TotalTimeoutSeconds="3600")
    assert result["Data"]["Complete"] == "true"
    assert result["Data"]["Created"] == 2
    assert cluster.partitions() == {"orders": 3, "payments": 1}

    no_kafka(monkeypatch)
    assert waiter_call(evt, result) == {"IsComplete": True}


def test_a_large_spec_continues_window_by_window_until_in_sync(monkeypatch, wall) -> None:
    cluster = with_cluster(monkeypatch, Cluster())
    evt, result = on_event(**PACED)
    data = result["Data"]
    assert data["Complete"] == "false"
    assert data["Created"] == 10  # the whole plan, as the final Data will say
    assert data["PartitionsPlanned"] == "100"
    assert data["Progress"].startswith("made 40 of 100 partition changes; 6 topic(s) wait")
    assert len(cluster.partitions()) == 4

    rounds = 0
    answer: dict[str, Any] = {"IsComplete": False}
    while not answer["IsComplete"]:
        wall.advance(30)  # the waiter's query interval
        before = len(cluster.partitions())
        answer = waiter_call(evt, result)
        rounds += 1
        assert len(cluster.partitions()) >= before  # nothing is ever taken back
        assert rounds < 40, "never completed"
    assert rounds >= 3
    assert answer["Data"]["Complete"] == "true"
    assert cluster.partitions() == {f"t{i:02d}": 10 for i in range(10)}
    # 60 partitions beyond the first bucket at 40 per 300 s: the quota's bound is 450 s.
    assert 450 <= wall.now - 1_800_000_000.0 <= 450 + 2 * 60


def test_the_total_timeout_fails_saying_what_is_done_and_what_is_left(monkeypatch, wall) -> None:
    cluster = with_cluster(monkeypatch, Cluster())
    evt, result = on_event(**{**PACED, "TotalTimeoutSeconds": "120"})
    wall.advance(35)
    with pytest.raises(SyncIncompleteError) as info:
        waiter_call(evt, result)
    message = str(info.value)
    assert "TotalTimeout of 120 s reached" in message
    assert "of 60 partition changes" in message  # this call's share of the plan
    assert "not yet applied: t0" in message
    assert "Nothing created is deleted" in message
    assert len(cluster.partitions()) >= 4  # what was created stays


def test_without_a_waiter_an_unfinished_sync_fails_and_keeps_what_it_made(
    monkeypatch, wall
) -> None:
    cluster = with_cluster(monkeypatch, Cluster())
    with pytest.raises(SyncIncompleteError) as info:
        on_event(Topics=TOPICS, PartitionRate="40/300s")
    assert "no is_complete waiter follows" in str(info.value)
    assert len(cluster.partitions()) == 4


def test_a_bad_partition_rate_is_refused_before_kafka(monkeypatch) -> None:
    no_kafka(monkeypatch)
    with pytest.raises(Exception, match=r"PartitionRate: must look like 250/300s"):
        on_event(PartitionRate="fast")


def test_a_delete_is_complete_at_once(monkeypatch) -> None:
    no_kafka(monkeypatch)
    evt = load_event("lifecycle_4_delete_retain")
    context: Any = LocalLambdaContext()
    assert handler.is_complete(evt, context) == {"IsComplete": True}
