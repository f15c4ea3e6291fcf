"""Partition pacing: rate parsing, the token bucket, and what a plan costs under the quota."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tests.engine.fake_admin import THROTTLED, FakeClock, FakeKafka, FakeTopic
from topic_sync.exceptions import SpecError
from topic_sync.pacing import (
    DEFAULT_RATES,
    Pacing,
    PartitionBudget,
    PartitionRate,
    affordable,
    partition_cost,
    total_cost,
)
from topic_sync.plan import ActionKind, TopicAction
from topic_sync.retry import Deadline
from topic_sync.spec import ClusterType, TopicSpec
from topic_sync.sync import Progress, SyncReport, SyncRequest, sync


@pytest.mark.parametrize(
    ("text", "rate"),
    [
        ("250/300s", PartitionRate(250, 300)),
        ("100/10s", PartitionRate(100, 10)),
        ("250/5m", PartitionRate(250, 300)),
        ("1000/1h", PartitionRate(1000, 3600)),
    ],
)
def test_rate_parses_partitions_per_window(text: str, rate: PartitionRate) -> None:
    assert PartitionRate.parse(text, source="PartitionRate") == rate


FULL_WIDTH_250 = "\uff12\uff15\uff10"


@pytest.mark.parametrize(
    "text", ["", "250", "250/", "/300s", "250/300", "-1/300s", "0/300s", "250/0s", "250/3h",
             f"{FULL_WIDTH_250}/300s", " 250/300s", "250 / 300s", 250, None, ["250/300s"],
             "1" * 5000 + "/1s"]
)  # fmt: skip
def test_rate_refuses_anything_else_naming_the_source(text: object) -> None:
    with pytest.raises(SpecError) as info:
        PartitionRate.parse(text, source="--partition-rate")
    message = str(info.value)
    assert "--partition-rate" in message
    assert len(message) < 200


def test_serverless_defaults_to_250_per_5_minutes_and_provisioned_is_not_paced() -> None:
    assert DEFAULT_RATES[ClusterType.SERVERLESS] == PartitionRate(250, 300)
    assert str(DEFAULT_RATES[ClusterType.SERVERLESS]) == "250/300s"
    assert DEFAULT_RATES[ClusterType.PROVISIONED] is None


def test_least_time_for_a_spec_is_what_exceeds_the_first_bucket_at_the_refill_rate() -> None:
    rate = PartitionRate(250, 300)
    assert rate.seconds_for(200) == 0
    assert rate.seconds_for(1800) == pytest.approx((1800 - 250) * 300 / 250)


def test_bucket_starts_full_spends_and_refills_continuously_up_to_capacity() -> None:
    clock = FakeClock()
    budget = PartitionBudget(PartitionRate(100, 10), clock)
    assert budget.available() == 100
    budget.spend(100)
    assert budget.available() == 0
    assert budget.wait_for(30) == pytest.approx(3.0)
    clock.now += 3
    assert budget.available() == pytest.approx(30)
    clock.now += 1000
    assert budget.available() == 100


def test_an_oversized_cost_waits_only_for_a_full_bucket_and_may_go_negative() -> None:
    clock = FakeClock()
    budget = PartitionBudget(PartitionRate(100, 10), clock)
    budget.spend(40)
    assert budget.wait_for(500) == pytest.approx(4.0)
    budget.spend(500)
    assert budget.available() == -440
    assert budget.wait_for(1) == pytest.approx(44.1)


def test_broker_throttle_empties_the_bucket_for_its_duration() -> None:
    clock = FakeClock()
    budget = PartitionBudget(PartitionRate(100, 10), clock)
    budget.throttled(5.0)
    assert budget.available() == -50
    clock.now += 5
    assert budget.available() == pytest.approx(0)


def test_resumed_bucket_counts_what_the_sync_spent_since_it_started() -> None:
    clock = FakeClock()
    rate = PartitionRate(250, 300)
    started = clock.now - 60  # one minute ago, 250 spent at once: 50 refilled since
    budget = PartitionBudget.resumed(rate, started_at=started, spent=250, clock=clock)
    assert budget.available() == pytest.approx(50)
    idle = PartitionBudget.resumed(rate, started_at=clock.now - 3600, spent=250, clock=clock)
    assert idle.available() == 250  # never above capacity
    future = PartitionBudget.resumed(rate, started_at=clock.now + 60, spent=0, clock=clock)
    assert future.available() == 250  # a clock that went backwards does not mint tokens


@given(
    st.lists(st.tuples(st.integers(0, 400), st.floats(0, 100)), max_size=40),
    st.integers(1, 500),
    st.integers(1, 600),
)
def test_bucket_never_allows_more_than_capacity_plus_refill(
    steps: list[tuple[int, float]], capacity: int, seconds: int
) -> None:
    """Whatever is spent whenever it is affordable stays within the quota's bound."""
    clock = FakeClock()
    rate = PartitionRate(capacity, seconds)
    budget = PartitionBudget(rate, clock)
    start, spent = clock.now, 0
    for cost, pause in steps:
        clock.now += pause
        if cost <= budget.available():
            budget.spend(cost)
            spent += cost
        assert spent <= capacity + rate.per_second * (clock.now - start) + 1e-6


def test_affordable_takes_the_longest_prefix_that_fits() -> None:
    costs = {"a": 60, "b": 30, "c": 20, "d": 1}
    names = list(costs)
    assert affordable(names, costs.__getitem__, 100, capacity=250) == ["a", "b"]
    assert affordable(names, costs.__getitem__, 10, capacity=250) == []
    assert affordable(["huge", "d"], {"huge": 900, "d": 1}.__getitem__, 250, capacity=250) == [
        "huge"
    ]
    assert affordable(["huge"], {"huge": 900}.__getitem__, 249, capacity=250) == []


def test_cost_counts_new_added_and_deleted_partitions() -> None:
    create = TopicAction("new", ActionKind.CREATE, partitions=6)
    grow = TopicAction("grow", ActionKind.UPDATE, partitions=8, old_partitions=3)
    config_only = TopicAction("cfg", ActionKind.UPDATE, partitions=3, old_partitions=3)
    delete = TopicAction("gone", ActionKind.DELETE)
    unchanged = TopicAction("same", ActionKind.UNCHANGED)
    assert partition_cost(create) == 6
    assert partition_cost(grow) == 5
    assert partition_cost(config_only) == 0
    assert partition_cost(delete, 12) == 12
    assert partition_cost(unchanged) == 0
    assert total_cost([create, grow, config_only, delete, unchanged], {"gone": 12}) == 23


# ---- a paced sync over the in-memory cluster ----------------------------------------------


def _paced(
    fake: FakeKafka, topics: list[TopicSpec], clock: FakeClock, pacing: Pacing, seconds: float
) -> SyncReport:
    req = SyncRequest(desired=tuple(topics), cluster_type=ClusterType.SERVERLESS)
    return sync(req, fake, Deadline.after(seconds, clock=clock), pacing=pacing, sleep=clock.sleep)


def test_a_paced_sync_waits_for_refills_within_its_deadline_and_never_overspends() -> None:
    clock = FakeClock()
    fake = FakeKafka(clock=clock)
    topics = [TopicSpec(f"t{i:02d}", 10) for i in range(10)]  # 100 partitions
    report = _paced(fake, topics, clock, Pacing(PartitionRate(40, 10), clock=clock), 60)

    assert report.complete
    assert report.progress == Progress(100, 100, (), 0.0)
    assert len(fake.topics) == 10
    calls = [c.names for c in fake.calls_to("create_topics")]
    assert [len(c) for c in calls] == [4, 4, 2]  # 40 at once, then 40 per refill
    assert clock.sleeps == [pytest.approx(10.0), pytest.approx(5.0)]


def test_a_paced_sync_leaves_what_the_deadline_cannot_afford_for_later() -> None:
    clock = FakeClock()
    fake = FakeKafka(clock=clock)
    topics = [TopicSpec(f"t{i:02d}", 10) for i in range(10)]
    report = _paced(fake, topics, clock, Pacing(PartitionRate(40, 300), clock=clock), 60)

    assert not report.complete
    assert report.progress is not None
    assert report.progress.done == 40
    assert report.progress.pending == tuple(f"t{i:02d}" for i in range(4, 10))
    assert report.progress.next_window_s == pytest.approx(75.0)  # 10 partitions at 40/300 s
    assert "made 40 of 100 partition changes" in report.progress.describe()
    assert "next window in 1m15s" in report.progress.describe()
    assert sorted(fake.topics) == [f"t{i:02d}" for i in range(4)]


def test_a_later_call_resumes_from_what_the_first_spent() -> None:
    clock = FakeClock()
    fake = FakeKafka(clock=clock)
    topics = [TopicSpec(f"t{i:02d}", 10) for i in range(10)]
    started = clock.now
    rate = PartitionRate(40, 300)
    first = _paced(fake, topics, clock, Pacing(rate, clock=clock), 60)
    assert first.progress is not None

    clock.now = started + 30  # the waiter's next poll: only 4 partitions refilled
    again = _paced(fake, topics, clock, Pacing(rate, started, 100, clock=clock), 20)
    assert again.progress is not None
    assert again.progress.done == 0
    assert again.progress.total == 60

    clock.now = started + 150  # 20 more since: two topics
    later = _paced(fake, topics, clock, Pacing(rate, started, 100, clock=clock), 20)
    assert later.progress is not None
    assert later.progress.done == 20
    assert len(fake.topics) == 6


def test_config_changes_cost_nothing_and_are_never_held_back() -> None:
    clock = FakeClock()
    fake = FakeKafka({"a": FakeTopic(3, config={"retention.ms": "1"})}, clock=clock)
    topics = [TopicSpec("a", 3, None, {"retention.ms": "2"}), TopicSpec("big", 50)]
    report = _paced(fake, topics, clock, Pacing(PartitionRate(10, 300), clock=clock), 10)

    assert fake.topics["a"].config == {"retention.ms": "2"}
    assert report.progress is not None
    assert report.progress.pending == ()  # 'big' exceeds the bucket: it goes alone when full
    assert "big" in fake.topics


def test_a_throttled_topic_is_retried_after_the_brokers_throttle_time() -> None:
    clock = FakeClock()
    fake = FakeKafka(clock=clock)
    fake.fail("create_topics", THROTTLED, times=1)
    fake.throttle_s = 3.0  # the broker's throttle_time_ms, as librdkafka's throttle_cb told us
    req = SyncRequest(desired=(TopicSpec("a", 1),), cluster_type=ClusterType.SERVERLESS)
    sync(req, fake, Deadline.after(60, clock=clock), sleep=clock.sleep)
    assert clock.sleeps[0] >= 3.0  # not the first jittered backoff (at most 0.2 s)
    assert "a" in fake.topics


def test_a_broker_throttle_during_a_paced_sync_holds_the_next_batch_back() -> None:
    clock = FakeClock()
    fake = FakeKafka(clock=clock)
    fake.throttle_s = 8.0  # another client used the cluster's quota: the broker throttles us
    topics = [TopicSpec(f"t{i:02d}", 10) for i in range(6)]  # 60 partitions, bucket of 40
    report = _paced(fake, topics, clock, Pacing(PartitionRate(40, 10), clock=clock), 60)
    assert report.complete
    # Without the throttle the second batch would wait 5 s for 20 partitions; with it, the
    # bucket is empty for the throttle's 8 s first (32 partitions' worth), then refills.
    assert clock.sleeps[0] >= 8.0 + 5.0 - 1e-6
