"""The diff between the spec and the cluster: a pure, printable plan.

No I/O here. ``build_plan`` decides per topic: create, update (add partitions, SET/DELETE
configs), unchanged, delete, retain, or refused (a change Kafka or MSK cannot make safely).
"""

from __future__ import annotations

import enum
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

from topic_sync.spec import SERVERLESS_CREATE_ONLY_CONFIGS, ClusterType, TopicSpec

# Broker defaults we need when a create-only config was never set on the topic.
_KAFKA_DEFAULTS: Mapping[str, str] = {"cleanup.policy": "delete"}
# Kafka's and MSK's own topics (__consumer_offsets, __transaction_state, ...).
INTERNAL_PREFIX = "__"


def is_internal(name: str) -> bool:
    return name.startswith(INTERNAL_PREFIX)


def internal_reason(name: str) -> str:
    return (
        f"{name} is an internal Kafka topic (its name starts with '{INTERNAL_PREFIX}'); "
        "topic-sync never creates, changes or deletes it"
    )


@dataclass(frozen=True)
class ObservedTopic:
    """A topic as the cluster reports it.

    ``config`` holds only the configs set on the topic itself (dynamic topic configs):
    comparing defaults too would make plans that never settle.
    """

    name: str
    partitions: int
    replication_factor: int
    config: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}))

    def __post_init__(self) -> None:
        object.__setattr__(self, "config", MappingProxyType(dict(self.config)))

    def __hash__(self) -> int:
        return hash((self.name, self.partitions, self.replication_factor))


#: Topic name -> what the cluster has. A missing name means the topic does not exist.
Observed = Mapping[str, ObservedTopic]


class ActionKind(enum.Enum):
    CREATE = "create"
    UPDATE = "update"
    UNCHANGED = "unchanged"
    DELETE = "delete"
    RETAIN = "retain"
    REFUSED = "refused"


@dataclass(frozen=True)
class ConfigChange:
    """One incremental config operation: ``new`` None means DELETE (revert to default)."""

    key: str
    old: str | None
    new: str | None

    def describe(self) -> str:
        return f"{self.key} {_show(self.old)} -> {_show(self.new)}"


def _show(value: str | None) -> str:
    return "(default)" if value is None else value


@dataclass(frozen=True)
class TopicAction:
    """What the sync will do to one topic, and why."""

    name: str
    kind: ActionKind
    partitions: int | None = None
    old_partitions: int | None = None
    replication_factor: int | None = None
    config_changes: tuple[ConfigChange, ...] = ()
    reasons: tuple[str, ...] = ()
    warnings: tuple[str, ...] = ()

    @property
    def adds_partitions(self) -> bool:
        return (
            self.kind is ActionKind.UPDATE
            and self.partitions is not None
            and self.old_partitions is not None
            and self.partitions > self.old_partitions
        )

    @property
    def create_config(self) -> dict[str, str]:
        return {c.key: c.new for c in self.config_changes if c.new is not None}

    def describe(self) -> str:
        """One human line, e.g. ``~ orders: partitions 3 -> 6; retention.ms 1000 -> 2000``."""
        details: list[str] = []
        if self.kind is ActionKind.CREATE:
            rf = "default" if self.replication_factor is None else str(self.replication_factor)
            details.append(f"partitions={self.partitions}, replication_factor={rf}")
            details.extend(f"{c.key}={c.new}" for c in self.config_changes)
        else:
            if self.adds_partitions:
                details.append(f"partitions {self.old_partitions} -> {self.partitions}")
            details.extend(c.describe() for c in self.config_changes)
        details.extend(self.reasons)
        details.extend(f"warning: {w}" for w in self.warnings)
        symbol = SYMBOLS[self.kind]
        suffix = f": {'; '.join(details)}" if details else ""
        return f"{symbol} {self.kind.value} {self.name}{suffix}"

    def to_data(self) -> dict[str, Any]:
        data: dict[str, Any] = {"topic": self.name, "action": self.kind.value}
        if self.kind is ActionKind.CREATE or self.adds_partitions:
            data["partitions"] = [self.old_partitions, self.partitions]
        if self.config_changes:
            data["config"] = {c.key: [c.old, c.new] for c in self.config_changes}
        if self.reasons:
            data["reasons"] = list(self.reasons)
        if self.warnings:
            data["warnings"] = list(self.warnings)
        return data


# Terraform's habit: the first column says what will happen at a glance.
SYMBOLS = {
    ActionKind.CREATE: "+",
    ActionKind.UPDATE: "~",
    ActionKind.UNCHANGED: "=",
    ActionKind.DELETE: "-",
    ActionKind.RETAIN: ".",
    ActionKind.REFUSED: "!",
}
MUTATING_KINDS = frozenset({ActionKind.CREATE, ActionKind.UPDATE, ActionKind.DELETE})


@dataclass(frozen=True)
class Plan:
    """Per-topic actions, in spec order, then topics that left the spec."""

    actions: tuple[TopicAction, ...]

    def of_kind(self, kind: ActionKind) -> tuple[TopicAction, ...]:
        return tuple(a for a in self.actions if a.kind is kind)

    @property
    def refused(self) -> tuple[TopicAction, ...]:
        return self.of_kind(ActionKind.REFUSED)

    @property
    def mutations(self) -> tuple[TopicAction, ...]:
        return tuple(a for a in self.actions if a.kind in MUTATING_KINDS)

    @property
    def is_noop(self) -> bool:
        return not self.mutations and not self.refused

    @property
    def warnings(self) -> tuple[str, ...]:
        return tuple(f"{a.name}: {w}" for a in self.actions for w in a.warnings)

    def counts(self) -> dict[str, int]:
        return {kind.value: len(self.of_kind(kind)) for kind in ActionKind}

    def describe(self) -> list[str]:
        return [a.describe() for a in self.actions]

    def to_data(self) -> list[dict[str, Any]]:
        return [a.to_data() for a in self.actions]


def build_plan(
    desired: Sequence[TopicSpec],
    observed: Observed,
    *,
    cluster_type: ClusterType,
    previous: Sequence[TopicSpec] = (),
    prune: bool = False,
    rollback: bool = False,
) -> Plan:
    """Diff ``desired`` against ``observed``.

    ``previous`` is the spec this resource applied before (OldResourceProperties on Update,
    the whole spec on a stack Delete with ``desired=()``): its config keys are the ones we
    manage, and its topics that left ``desired`` are deleted only if ``prune`` and never
    during a ``rollback``. Topics never in either spec are not looked at.
    """
    previous_by_name = {t.name: t for t in previous}
    actions: list[TopicAction] = []
    for spec in desired:
        current = observed.get(spec.name)
        before = previous_by_name.get(spec.name)
        managed = frozenset(before.config) if before else frozenset()
        if is_internal(spec.name):
            # Defence in depth: whatever the spec says (validation should have refused it).
            kind = ActionKind.RETAIN if rollback else ActionKind.REFUSED
            actions.append(TopicAction(spec.name, kind, reasons=(internal_reason(spec.name),)))
        elif current is None:
            actions.append(_create(spec))
        else:
            actions.append(_update(spec, current, managed, cluster_type, rollback))
    desired_names = {t.name for t in desired}
    for old in previous:
        if old.name not in desired_names:
            action = _dropped(old.name, observed.get(old.name), prune, rollback)
            if action is not None:
                actions.append(action)
    return Plan(tuple(actions))


def _create(spec: TopicSpec) -> TopicAction:
    return TopicAction(
        name=spec.name,
        kind=ActionKind.CREATE,
        partitions=spec.partitions,
        replication_factor=spec.replication_factor,
        config_changes=tuple(ConfigChange(k, None, v) for k, v in spec.config_items()),
    )


def _update(
    spec: TopicSpec,
    current: ObservedTopic,
    managed: frozenset[str],
    cluster_type: ClusterType,
    rollback: bool,
) -> TopicAction:
    problems: list[str] = []
    if spec.partitions < current.partitions:
        problems.append(
            f"partitions cannot decrease ({current.partitions} -> {spec.partitions}); "
            f"Kafka cannot remove partitions: set partitions to {current.partitions} or more"
        )
    rf = spec.replication_factor
    if rf is not None and rf != current.replication_factor:
        problems.append(
            f"replication factor cannot change ({current.replication_factor} -> {rf}); "
            "reassign partitions outside topic-sync"
        )
    changes: list[ConfigChange] = []
    serverless = cluster_type is ClusterType.SERVERLESS
    for key, value in spec.config_items():
        old = current.config.get(key)
        if serverless and key in SERVERLESS_CREATE_ONLY_CONFIGS:
            effective = old if old is not None else _KAFKA_DEFAULTS.get(key)
            if effective != value:
                problems.append(
                    f"{key} can only be set when the topic is created on MSK Serverless "
                    f"(is {_show(effective)}, spec says {value})"
                )
        elif old != value:
            changes.append(ConfigChange(key, old, value))
    warnings: list[str] = []
    for key in sorted(managed - set(spec.config)):
        old = current.config.get(key)
        if old is None:
            continue
        if serverless and key in SERVERLESS_CREATE_ONLY_CONFIGS:
            warnings.append(f"{key}={old} left the spec but cannot change on MSK Serverless; kept")
        else:
            changes.append(ConfigChange(key, old, None))
    if problems and not rollback:
        return TopicAction(name=spec.name, kind=ActionKind.REFUSED, reasons=tuple(problems))
    # During a rollback these are the undo of our own forward change: keep them, do not fail.
    warnings.extend(f"rollback: kept as is: {p}" for p in problems)
    grow = spec.partitions > current.partitions
    kind = ActionKind.UPDATE if grow or changes else ActionKind.UNCHANGED
    return TopicAction(
        name=spec.name,
        kind=kind,
        partitions=max(spec.partitions, current.partitions),
        old_partitions=current.partitions,
        config_changes=tuple(changes),
        warnings=tuple(warnings),
    )


def _dropped(
    name: str, current: ObservedTopic | None, prune: bool, rollback: bool
) -> TopicAction | None:
    if is_internal(name):
        return TopicAction(name=name, kind=ActionKind.RETAIN, reasons=(internal_reason(name),))
    if prune and not rollback:
        if current is None:
            return None  # already gone
        return TopicAction(name=name, kind=ActionKind.DELETE, reasons=("dropped from the spec",))
    why = "rollback never deletes topics" if rollback and prune else "topics are kept"
    return TopicAction(
        name=name, kind=ActionKind.RETAIN, reasons=(f"dropped from the spec; {why}",)
    )


def expected_after(plan: Plan, observed: Observed) -> dict[str, ObservedTopic]:
    """The cluster state once every mutation in ``plan`` succeeded (for dry runs and tests)."""
    result = dict(observed)
    for action in plan.actions:
        if action.kind is ActionKind.DELETE:
            result.pop(action.name, None)
        elif action.kind is ActionKind.CREATE:
            result[action.name] = ObservedTopic(
                action.name,
                action.partitions or 1,
                action.replication_factor or 1,
                action.create_config,
            )
        elif action.kind is ActionKind.UPDATE:
            current = result[action.name]
            config = dict(current.config)
            for change in action.config_changes:
                if change.new is None:
                    config.pop(change.key, None)
                else:
                    config[change.key] = change.new
            result[action.name] = ObservedTopic(
                action.name,
                action.partitions or current.partitions,
                current.replication_factor,
                config,
            )
    return result


def names(actions: Iterable[TopicAction]) -> list[str]:
    return [a.name for a in actions]
