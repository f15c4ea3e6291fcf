"""Per-sync CloudWatch metrics in Embedded Metric Format (EMF), through Powertools Metrics.

Each call prints ONE EMF document to stdout (the Lambda's log group), which CloudWatch turns
into metrics in namespace ``TopicSync`` with the dimensions ``service=topic-sync`` and
``Operation=sync|drift-check``:

- ``TopicsCreated``, ``TopicsUpdated``, ``TopicsUnchanged``, ``TopicsDeleted``,
  ``TopicsRefused``: the plan's actions (Count);
- ``DriftedTopics``: topics that differed from the spec when observed (Count). For
  ``drift-check`` that is drift; for ``sync`` it also counts what a new spec changed;
- ``SyncDuration``: wall time of the whole observe/plan/apply/verify (Milliseconds);
- ``SyncErrors``: 1 when the sync failed (only from ``emit_failed_sync_metrics``).

The construct's alarms (topic_sync_cdk.kafka_topics) read exactly these names and dimensions;
they import this module at synth, where Powertools need not be installed: it is imported only
when a document is emitted.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping

from topic_sync.exceptions import PlanRefusedError
from topic_sync.plan import ActionKind, Plan, TopicAction

NAMESPACE = "TopicSync"
SERVICE = "topic-sync"
OPERATION_DIMENSION = "Operation"

TOPICS_CREATED = "TopicsCreated"
TOPICS_UPDATED = "TopicsUpdated"
TOPICS_UNCHANGED = "TopicsUnchanged"
TOPICS_DELETED = "TopicsDeleted"
TOPICS_REFUSED = "TopicsRefused"
DRIFTED_TOPICS = "DriftedTopics"
SYNC_DURATION = "SyncDuration"
SYNC_ERRORS = "SyncErrors"

_COUNTS = {
    TOPICS_CREATED: ActionKind.CREATE,
    TOPICS_UPDATED: ActionKind.UPDATE,
    TOPICS_UNCHANGED: ActionKind.UNCHANGED,
    TOPICS_DELETED: ActionKind.DELETE,
    TOPICS_REFUSED: ActionKind.REFUSED,
}
# Kinds that say "the cluster is not what the spec says" (RETAIN only keeps a dropped topic).
_DRIFT_KINDS = frozenset(
    {ActionKind.CREATE, ActionKind.UPDATE, ActionKind.DELETE, ActionKind.REFUSED}
)


class Operation(enum.Enum):
    """Which path emitted the metrics (the ``Operation`` dimension)."""

    SYNC = "sync"
    DRIFT_CHECK = "drift-check"


def drifted(plan: Plan) -> tuple[TopicAction, ...]:
    """The plan's actions whose topic differs from the spec (missing, changed, refused)."""
    return tuple(a for a in plan.actions if a.kind in _DRIFT_KINDS)


def _emit(operation: Operation, values: Mapping[str, float]) -> None:
    from aws_lambda_powertools.metrics import EphemeralMetrics, MetricUnit

    # Ephemeral: no state shared with any other Metrics instance; one document per call.
    metrics = EphemeralMetrics(namespace=NAMESPACE, service=SERVICE)
    metrics.add_dimension(name=OPERATION_DIMENSION, value=operation.value)
    for name, value in values.items():
        unit = MetricUnit.Milliseconds if name == SYNC_DURATION else MetricUnit.Count
        metrics.add_metric(name=name, unit=unit, value=value)
    metrics.flush_metrics()


def emit_sync_metrics(
    plan: Plan, duration_seconds: float, *, operation: Operation = Operation.SYNC
) -> dict[str, float]:
    """Emit one EMF document for a finished sync (or drift check); returns the values sent."""
    values: dict[str, float] = {name: len(plan.of_kind(kind)) for name, kind in _COUNTS.items()}
    values[DRIFTED_TOPICS] = len(drifted(plan))
    values[SYNC_DURATION] = round(duration_seconds * 1000.0, 3)
    _emit(operation, values)
    return values


def emit_failed_sync_metrics(
    error: Exception, duration_seconds: float, *, operation: Operation = Operation.SYNC
) -> dict[str, float]:
    """Emit one EMF document for a sync that raised (refused topics are counted as such)."""
    values: dict[str, float] = {SYNC_ERRORS: 1}
    if isinstance(error, PlanRefusedError):
        values[TOPICS_REFUSED] = len(error.problems)
    values[SYNC_DURATION] = round(duration_seconds * 1000.0, 3)
    _emit(operation, values)
    return values
