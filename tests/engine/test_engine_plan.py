"""The planner: pure diff of spec against observed state."""

from __future__ import annotations

from dataclasses import dataclass

from hypothesis import given
from hypothesis import strategies as st

from topic_sync.plan import (
    ActionKind,
    ConfigChange,
    Observed,
    ObservedTopic,
    Plan,
    build_plan,
    expected_after,
)
from topic_sync.spec import (
    SERVERLESS_ALTERABLE_CONFIGS,
    ClusterType,
    TopicSpec,
)

SERVERLESS = ClusterType.SERVERLESS
PROVISIONED = ClusterType.PROVISIONED


def kinds(plan: Plan) -> dict[str, ActionKind]:
    return {a.name: a.kind for a in plan.actions}


def test_creates_missing_and_adopts_existing() -> None:
    desired = [TopicSpec("new", 3, None, {"retention.ms": "1"}), TopicSpec("old", 2)]
    observed = {"old": ObservedTopic("old", 2, 3)}
    plan = build_plan(desired, observed, cluster_type=SERVERLESS)
    assert kinds(plan) == {"new": ActionKind.CREATE, "old": ActionKind.UNCHANGED}
    assert plan.actions[0].create_config == {"retention.ms": "1"}
    assert plan.describe() == [
        "+ create new: partitions=3, replication_factor=default; retention.ms=1",
        "= unchanged old",
    ]


def test_grows_partitions_sets_and_deletes_managed_configs_only() -> None:
    previous = [TopicSpec("t", 2, None, {"retention.ms": "1", "retention.bytes": "5"})]
    desired = [TopicSpec("t", 4, None, {"retention.ms": "2", "compression.type": "zstd"})]
    observed = {
        "t": ObservedTopic(
            "t", 2, 3, {"retention.ms": "1", "retention.bytes": "5", "max.message.bytes": "9"}
        )
    }
    plan = build_plan(desired, observed, cluster_type=SERVERLESS, previous=previous)
    (action,) = plan.actions
    assert action.kind is ActionKind.UPDATE
    assert action.adds_partitions
    assert set(action.config_changes) == {
        ConfigChange("compression.type", None, "zstd"),
        ConfigChange("retention.ms", "1", "2"),
        ConfigChange("retention.bytes", "5", None),
    }
    # max.message.bytes was never ours: left alone.
    assert action.describe().startswith("~ update t: partitions 2 -> 4;")
    assert "retention.bytes 5 -> (default)" in action.describe()


def test_refuses_decrease_rf_change_and_create_only_change() -> None:
    observed = {
        "p": ObservedTopic("p", 6, 3),
        "r": ObservedTopic("r", 1, 3),
        "c": ObservedTopic("c", 1, 3, {"cleanup.policy": "compact"}),
    }
    plan = build_plan(
        [TopicSpec("p", 3), TopicSpec("c", 1, None, {"cleanup.policy": "delete"})],
        observed,
        cluster_type=SERVERLESS,
    )
    assert [a.name for a in plan.refused] == ["p", "c"]
    assert "partitions cannot decrease (6 -> 3)" in plan.refused[0].reasons[0]
    assert "cleanup.policy can only be set when the topic is created" in plan.refused[1].reasons[0]
    provisioned = build_plan([TopicSpec("r", 1, 1)], observed, cluster_type=PROVISIONED)
    assert "replication factor cannot change (3 -> 1)" in provisioned.refused[0].reasons[0]


def test_create_only_config_equal_to_default_is_not_a_change() -> None:
    plan = build_plan(
        [TopicSpec("c", 1, None, {"cleanup.policy": "delete"})],
        {"c": ObservedTopic("c", 1, 3)},
        cluster_type=SERVERLESS,
    )
    assert kinds(plan) == {"c": ActionKind.UNCHANGED}


def test_rollback_keeps_partitions_with_a_warning_and_deletes_nothing() -> None:
    observed = {"t": ObservedTopic("t", 6, 3), "gone": ObservedTopic("gone", 1, 3)}
    plan = build_plan(
        [TopicSpec("t", 3)],
        observed,
        cluster_type=SERVERLESS,
        previous=[TopicSpec("t", 6), TopicSpec("gone", 1)],
        prune=True,
        rollback=True,
    )
    assert kinds(plan) == {"t": ActionKind.UNCHANGED, "gone": ActionKind.RETAIN}
    assert "rollback: kept as is: partitions cannot decrease" in plan.warnings[0]
    assert plan.is_noop


def test_prune_deletes_only_dropped_topics_of_this_resource() -> None:
    observed = {
        "keep": ObservedTopic("keep", 1, 3),
        "dropped": ObservedTopic("dropped", 1, 3),
        "foreign": ObservedTopic("foreign", 1, 3),
    }
    previous = [TopicSpec("keep", 1), TopicSpec("dropped", 1), TopicSpec("vanished", 1)]
    pruned = build_plan(
        [TopicSpec("keep", 1)], observed, cluster_type=SERVERLESS, previous=previous, prune=True
    )
    assert kinds(pruned) == {"keep": ActionKind.UNCHANGED, "dropped": ActionKind.DELETE}
    kept = build_plan([TopicSpec("keep", 1)], observed, cluster_type=SERVERLESS, previous=previous)
    assert kinds(kept)["dropped"] is ActionKind.RETAIN
    assert not kept.mutations


def test_internal_topics_are_refused_whatever_the_spec_says() -> None:
    observed = {"__consumer_offsets": ObservedTopic("__consumer_offsets", 50, 1)}
    desired = [
        TopicSpec("__consumer_offsets", 60, None, {"retention.ms": "60000"}),
        TopicSpec("__transaction_state", 4),
        TopicSpec("ok", 1),
    ]
    plan = build_plan(desired, observed, cluster_type=PROVISIONED)
    assert kinds(plan) == {
        "__consumer_offsets": ActionKind.REFUSED,
        "__transaction_state": ActionKind.REFUSED,
        "ok": ActionKind.CREATE,
    }
    assert plan.refused[0].describe() == (
        "! refused __consumer_offsets: __consumer_offsets is an internal Kafka topic (its name "
        "starts with '__'); topic-sync never creates, changes or deletes it"
    )


def test_internal_topics_are_never_deleted_or_changed_in_a_rollback() -> None:
    observed = {"__consumer_offsets": ObservedTopic("__consumer_offsets", 50, 1, {"a": "1"})}
    previous = [TopicSpec("__consumer_offsets", 50), TopicSpec("__other", 1)]
    pruned = build_plan(
        [], observed, cluster_type=SERVERLESS, previous=previous, prune=True, rollback=False
    )
    assert set(kinds(pruned).values()) == {ActionKind.RETAIN}
    assert "internal Kafka topic" in pruned.actions[0].reasons[0]
    rolled = build_plan(
        [TopicSpec("__consumer_offsets", 60, None, {"retention.ms": "1"})],
        observed,
        cluster_type=SERVERLESS,
        rollback=True,
    )
    assert kinds(rolled) == {"__consumer_offsets": ActionKind.RETAIN}
    assert not rolled.mutations


def test_to_data_is_plain() -> None:
    plan = build_plan(
        [TopicSpec("a", 2)], {"a": ObservedTopic("a", 1, 1)}, cluster_type=PROVISIONED
    )
    assert plan.to_data() == [{"topic": "a", "action": "update", "partitions": [1, 2]}]
    assert plan.counts()["update"] == 1


# --- properties ---------------------------------------------------------------------------

names = st.sampled_from(["a", "b", "c", "d", "e", "__consumer_offsets"])
config_keys = st.sampled_from([*sorted(SERVERLESS_ALTERABLE_CONFIGS), "cleanup.policy"])
config_values = st.sampled_from(["1", "2", "delete", "compact"])
configs = st.dictionaries(config_keys, config_values, max_size=3)


@st.composite
def spec_lists(draw: st.DrawFn) -> list[TopicSpec]:
    chosen = draw(st.lists(names, unique=True, max_size=5))
    return [TopicSpec(n, draw(st.integers(1, 8)), None, draw(configs)) for n in chosen]


@st.composite
def observed_states(draw: st.DrawFn) -> dict[str, ObservedTopic]:
    chosen = draw(st.lists(names, unique=True, max_size=5))
    return {n: ObservedTopic(n, draw(st.integers(1, 8)), 3, draw(configs)) for n in chosen}


cluster_types = st.sampled_from(list(ClusterType))


@dataclass(frozen=True)
class Scenario:
    """One sync's inputs: a spec, the spec applied before, and the cluster as observed."""

    desired: list[TopicSpec]
    previous: list[TopicSpec]
    observed: Observed
    cluster_type: ClusterType
    prune: bool
    rollback: bool

    def plan(self, observed: Observed | None = None) -> Plan:
        return build_plan(
            self.desired,
            self.observed if observed is None else observed,
            cluster_type=self.cluster_type,
            previous=self.previous,
            prune=self.prune,
            rollback=self.rollback,
        )


scenarios = st.builds(
    Scenario,
    spec_lists(),
    spec_lists(),
    observed_states(),
    cluster_types,
    st.booleans(),
    st.booleans(),
)


@given(scenarios)
def test_applying_a_plan_settles(scenario: Scenario) -> None:
    plan = scenario.plan()
    after = expected_after(plan, scenario.observed)
    again = scenario.plan(after)
    if not plan.refused:
        assert not again.mutations, again.describe()
        for spec in scenario.desired:
            if not spec.name.startswith("__"):  # internal topics are left as they are
                assert after[spec.name].partitions >= spec.partitions


@given(scenarios)
def test_never_mutates_an_internal_topic(scenario: Scenario) -> None:
    assert not [a for a in scenario.plan().mutations if a.name.startswith("__")]


@given(scenarios)
def test_never_deletes_unless_pruning(scenario: Scenario) -> None:
    plan = scenario.plan()
    deleted = {a.name for a in plan.of_kind(ActionKind.DELETE)}
    if not scenario.prune or scenario.rollback:
        assert not deleted
    # Only topics this resource owned before, that left the spec, and that exist.
    assert deleted <= {t.name for t in scenario.previous} - {t.name for t in scenario.desired}
    assert deleted <= set(scenario.observed)


@given(spec_lists(), observed_states(), cluster_types)
def test_rollback_never_refuses_and_never_decreases(desired, observed, cluster_type):
    plan = build_plan(desired, observed, cluster_type=cluster_type, rollback=True)
    assert not plan.refused
    for action in plan.mutations:
        if action.old_partitions is not None:
            assert action.partitions is not None
            assert action.partitions >= action.old_partitions


@given(spec_lists(), observed_states(), cluster_types)
def test_plan_mentions_every_desired_topic_once(desired, observed, cluster_type):
    plan = build_plan(desired, observed, cluster_type=cluster_type)
    assert [a.name for a in plan.actions] == [t.name for t in desired]
    assert len(plan.describe()) == len(desired)
