"""One reconcile: observe -> plan -> apply -> verify, over a ``TopicAdmin``.

The Lambda handler and the CLI both call ``sync``; ``observe`` and ``plan_for`` are there
for callers that only want to look (dry runs, ``topic-sync plan``).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass, field, replace

from topic_sync.admin import TopicAdmin, TopicError
from topic_sync.apply import REQUEST_TIMEOUT_CAP, Sleep, TopicResult, apply_plan
from topic_sync.exceptions import ClusterUnreachableError, PlanRefusedError, SyncFailedError
from topic_sync.pacing import Pacing, affordable, describe_wait, partition_cost
from topic_sync.plan import ActionKind, Observed, ObservedTopic, Plan, TopicAction, build_plan
from topic_sync.retry import Deadline, full_jitter, sleep_within
from topic_sync.spec import ClusterType, TopicSpec

logger = logging.getLogger(__name__)


def _never() -> bool:
    return False


@dataclass(frozen=True)
class SyncRequest:
    """What to make true. ``previous`` is the spec applied last time (managed keys, prune)."""

    desired: tuple[TopicSpec, ...]
    cluster_type: ClusterType
    previous: tuple[TopicSpec, ...] = ()
    prune: bool = False
    dry_run: bool = False
    # Asked only when the plan would refuse or delete something (it costs an AWS call).
    is_rollback: Callable[[], bool] = field(default=_never, compare=False)

    def names_to_observe(self) -> list[str]:
        names = [t.name for t in self.desired]
        if self.prune:
            wanted = set(names)
            names += [t.name for t in self.previous if t.name not in wanted]
        return names


@dataclass(frozen=True)
class Progress:
    """How far a paced sync got: partition mutations made of those its plan needs."""

    done: int
    total: int
    pending: tuple[str, ...] = ()
    next_window_s: float = 0.0

    @property
    def complete(self) -> bool:
        return not self.pending

    def describe(self) -> str:
        text = f"made {self.done} of {self.total} partition changes"
        if self.pending:
            text += (
                f"; {len(self.pending)} topic(s) wait for the partition quota, next window in "
                f"{describe_wait(self.next_window_s)}"
            )
        return text


@dataclass(frozen=True)
class SyncReport:
    """What was planned and what happened to each topic."""

    plan: Plan
    results: Mapping[str, TopicResult]
    requests: int
    rollback: bool = False
    dry_run: bool = False
    #: Set when the sync was paced; ``progress.pending`` topics are left for a later call.
    progress: Progress | None = None

    @property
    def complete(self) -> bool:
        return self.progress is None or self.progress.complete


def observe(
    admin: TopicAdmin,
    names: Sequence[str],
    deadline: Deadline,
    *,
    configs_of: Collection[str] | None = None,
    sleep: Sleep = time.sleep,
) -> dict[str, ObservedTopic]:
    """Describe ``names`` (batched), retrying transient errors; missing topics are absent.

    Configs are read for ``configs_of`` only (default: all names).
    """
    pending = list(names)
    observed: dict[str, ObservedTopic] = {}
    delays = full_jitter()
    while True:
        described = admin.describe(
            pending, deadline.timeout(REQUEST_TIMEOUT_CAP), configs_of=configs_of
        )
        transient: dict[str, TopicError] = {}
        fatal: dict[str, str] = {}
        for name in pending:
            result = described.get(name, TopicError("NO_RESULT", "not described", True))
            if isinstance(result, ObservedTopic):
                observed[name] = result
            elif isinstance(result, TopicError):
                if result.retriable and not admin.auth_failed():
                    transient[name] = result
                else:
                    fatal[name] = f"cannot describe: {result}"
        if admin.auth_failed():
            raise ClusterUnreachableError(admin.bootstrap_servers, admin.client_problem() or "")
        if fatal:
            # Nothing was applied yet: no topic "succeeded".
            raise SyncFailedError(fatal, [])
        if not transient:
            return observed
        if not sleep_within(deadline, next(delays), sleep):
            cause = admin.client_problem() or str(next(iter(transient.values())))
            raise ClusterUnreachableError(admin.bootstrap_servers, cause)
        pending = list(transient)


def plan_for(request: SyncRequest, observed: Observed, *, rollback: bool = False) -> Plan:
    return build_plan(
        request.desired,
        observed,
        cluster_type=request.cluster_type,
        previous=request.previous,
        prune=request.prune,
        rollback=rollback,
    )


def sync(
    request: SyncRequest,
    admin: TopicAdmin,
    deadline: Deadline,
    *,
    pacing: Pacing | None = None,
    sleep: Sleep = time.sleep,
) -> SyncReport:
    """Make the cluster match ``request``; raise a TopicSyncError saying what did not work.

    With ``pacing``, partition mutations are spent from its bucket: what the bucket cannot
    afford before the deadline is left for a later call (``report.progress.pending``).
    """
    names = request.names_to_observe()
    observed = observe(admin, names, deadline, sleep=sleep) if names else {}
    plan = plan_for(request, observed)
    rollback = False
    if (plan.refused or plan.of_kind(ActionKind.DELETE)) and request.is_rollback():
        rollback = True
        plan = plan_for(request, observed, rollback=True)
    logger.info(
        "plan",
        extra={"counts": plan.counts(), "plan": plan.describe()[:100], "rollback": rollback},
    )
    for warning in plan.warnings:
        logger.warning(warning)
    if plan.refused:
        raise PlanRefusedError([f"{a.name}: {'; '.join(a.reasons)}" for a in plan.refused])
    if request.dry_run or not plan.mutations:
        return SyncReport(plan, {}, admin.requests, rollback, request.dry_run)

    progress: Progress | None = None
    if pacing is None:
        results = apply_plan(plan, admin, deadline, sleep=sleep)
    else:
        results, progress = apply_paced(plan, observed, pacing, admin, deadline, sleep=sleep)
    pending = frozenset(progress.pending if progress else ())
    adopted = [name for name, result in results.items() if result.adopted]
    if adopted:
        results.update(_converge_adopted(request, adopted, admin, deadline, rollback, sleep))
    failed = frozenset(name for name, result in results.items() if not result.ok)
    created = frozenset(
        name
        for name, result in results.items()
        if result.ok and result.kind is ActionKind.CREATE and not result.adopted
    )
    remaining = verify(
        request,
        admin,
        deadline,
        rollback=rollback,
        failed=failed | pending,
        created=created,
        sleep=sleep,
    )
    failures: dict[str, str] = {}
    for action in plan.mutations:
        result = results.get(action.name)
        if action.name not in remaining or action.name in pending:
            continue  # converged (even if a concurrent sync did the work), or not yet started
        if result is not None and result.error is not None:
            failures[action.name] = str(result.error)
        else:
            failures[action.name] = f"still differs after apply: {remaining[action.name]}"
    if failures:
        succeeded = [a.name for a in plan.mutations if a.name not in failures]
        raise SyncFailedError(failures, succeeded)
    return SyncReport(plan, results, admin.requests, rollback, progress=progress)


#: Time kept back from a paced sync's deadline for applying the last batch and verifying.
PACING_RESERVE_SECONDS = 5.0
MIN_PACING_SLEEP_SECONDS = 0.1


def apply_paced(
    plan: Plan,
    observed: Observed,
    pacing: Pacing,
    admin: TopicAdmin,
    deadline: Deadline,
    *,
    sleep: Sleep = time.sleep,
    on_progress: Callable[[Progress], None] | None = None,
) -> tuple[dict[str, TopicResult], Progress]:
    """Apply ``plan`` spending partition mutations from the bucket, in plan order.

    Changes that cost no partitions (configs) go first and at once. A batch waits for the
    bucket to refill only if that wait ends before the deadline (less a reserve); otherwise
    the rest is left pending. Never a tight loop: every pass applies a batch or sleeps.
    """
    sizes = {name: topic.partitions for name, topic in observed.items()}

    def cost(action: TopicAction) -> int:
        return partition_cost(action, sizes.get(action.name))

    free = [a for a in plan.mutations if cost(a) == 0]
    queue = [a for a in plan.mutations if cost(a) > 0]
    total = sum(cost(a) for a in queue)
    budget = pacing.budget(total)
    results = apply_plan(Plan(tuple(free)), admin, deadline, sleep=sleep) if free else {}
    done = 0
    while queue and not deadline.expired():
        batch = affordable(queue, cost, budget.available(), capacity=budget.rate.partitions)
        if not batch:
            # Wait for a full bucket (fewer, larger requests) unless only a smaller refill
            # comes before the deadline.
            room = deadline.remaining() - PACING_RESERVE_SECONDS
            next_window = budget.wait_for(sum(cost(a) for a in queue))
            if next_window > room:
                next_window = budget.wait_for(cost(queue[0]))
            if next_window > room:
                break
            logger.info("pacing", extra={"wait_s": round(next_window, 1), "left": len(queue)})
            sleep(max(next_window, MIN_PACING_SLEEP_SECONDS))  # never a tight loop
            continue
        price = sum(cost(a) for a in batch)
        budget.spend(price)  # what was asked for counts, as in Kafka's quota
        results.update(apply_plan(Plan(tuple(batch)), admin, deadline, sleep=sleep))
        throttled = admin.throttled_for()
        if throttled > 0:  # someone else spent the cluster's quota too: the broker knows best
            budget.throttled(throttled)
        done += price
        queue = queue[len(batch) :]
        if on_progress is not None:
            ahead = budget.wait_for(sum(cost(a) for a in queue)) if queue else 0.0
            on_progress(Progress(done, total, tuple(a.name for a in queue), ahead))
    next_window = budget.wait_for(cost(queue[0])) if queue else 0.0
    progress = Progress(done, total, tuple(a.name for a in queue), next_window)
    logger.info("progress", extra={"progress": progress.describe()})
    return results, progress


def _converge_adopted(
    request: SyncRequest,
    names: Sequence[str],
    admin: TopicAdmin,
    deadline: Deadline,
    rollback: bool,
    sleep: Sleep,
) -> dict[str, TopicResult]:
    """Bring topics a concurrent creator made (maybe with other settings) to the spec.

    Only updates: a topic not yet visible again is left to ``verify`` to wait for.
    """
    wanted = set(names)
    observed = observe(admin, names, deadline, sleep=sleep)
    follow_up = build_plan(
        tuple(t for t in request.desired if t.name in wanted),
        observed,
        cluster_type=request.cluster_type,
        previous=request.previous,
        rollback=rollback,
    )
    results: dict[str, TopicResult] = {
        action.name: TopicResult(
            action.name,
            ActionKind.CREATE,
            TopicError("ADOPTED_DIFFERENT", "; ".join(action.reasons), retriable=False),
        )
        for action in follow_up.refused
    }
    updates = Plan(follow_up.of_kind(ActionKind.UPDATE))
    if updates.actions:
        logger.info(
            "converging adopted topics", extra={"topics": [a.name for a in updates.actions]}
        )
        results.update(apply_plan(updates, admin, deadline, sleep=sleep))
    return results


def verify(
    request: SyncRequest,
    admin: TopicAdmin,
    deadline: Deadline,
    *,
    rollback: bool = False,
    failed: frozenset[str] = frozenset(),
    created: frozenset[str] = frozenset(),
    sleep: Sleep = time.sleep,
) -> dict[str, str]:
    """Re-read until the cluster matches (new topics visible in metadata) or the deadline.

    Topics in ``failed`` (their apply failed for good), and topics the plan now refuses,
    cannot settle by waiting: once only they differ, stop. Topics in ``created`` were just
    created by us with their configs in the same atomic request: only their partitions are
    re-read, not their configs (that re-read was most of a Create's time). Returns what still
    differs, per topic; empty when settled.
    """
    names = request.names_to_observe()
    specs = {t.name: t for t in request.desired}
    configs_of = [n for n in names if n not in created]
    delays = full_jitter(base=0.05, cap=1.0)
    while True:
        observed = observe(admin, names, deadline, configs_of=configs_of, sleep=sleep)
        for name in created & observed.keys():
            observed[name] = replace(observed[name], config=dict(specs[name].config))
        again = plan_for(request, observed, rollback=rollback)
        remaining = {a.name: a.describe() for a in (*again.mutations, *again.refused)}
        # A refused difference (e.g. someone grew the topic past the spec) cannot settle either.
        stuck = failed | {a.name for a in again.refused}
        if set(remaining) <= stuck or not sleep_within(deadline, next(delays), sleep):
            return remaining
