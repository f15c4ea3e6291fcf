"""Carry out a plan: batched admin calls, per-topic results, retries until the deadline."""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

from topic_sync.admin import Outcomes, TopicAdmin, TopicError
from topic_sync.plan import ActionKind, ObservedTopic, Plan, internal_reason, is_internal
from topic_sync.retry import Deadline, full_jitter, sleep_within

logger = logging.getLogger(__name__)

THROTTLED = "THROTTLING_QUOTA_EXCEEDED"  # KIP-599, from clients on new request versions
REQUEST_TIMEOUT_CAP = 15.0  # seconds per admin request; the deadline cuts it shorter
Sleep = Callable[[float], None]
# Kafka's answer to create_partitions when the topic has that many or more already:
# "Topic already has 6 partition(s)." / "Topic currently has 8 partitions, which is higher...".
_HAS_PARTITIONS = re.compile(r"(already|currently) has \d+ partition")


@dataclass(frozen=True)
class TopicResult:
    """The outcome of one topic's action: ``error`` None means it was applied."""

    name: str
    kind: ActionKind
    error: TopicError | None = None
    # Created by someone else a moment before our create reached the cluster; their settings
    # may differ from the spec, so the caller plans once more for it.
    adopted: bool = False

    @property
    def ok(self) -> bool:
        return self.error is None


def with_retries(
    call: Callable[[list[str]], Outcomes],
    names: Sequence[str],
    admin: TopicAdmin,
    deadline: Deadline,
    *,
    success_codes: frozenset[str] = frozenset(),
    succeeded_by_code: set[str] | None = None,
    sleep: Sleep = time.sleep,
) -> dict[str, TopicError | None]:
    """Call ``call`` for ``names``, re-calling it for the retriable failures only.

    Names whose outcome was one of ``success_codes`` are added to ``succeeded_by_code``.
    """
    results: dict[str, TopicError | None] = {}
    pending = list(names)
    delays = full_jitter()
    if deadline.expired():
        # An earlier step used the whole budget: starting more work would overrun it.
        out_of_time = TopicError("_TIMED_OUT", "not attempted: the deadline had passed")
        return dict.fromkeys(pending, out_of_time)
    while pending:
        try:
            outcomes = call(pending)
        except Exception as exc:  # never lose the other topics' results to one odd failure
            logger.warning("admin call failed", extra={"error": f"{type(exc).__name__}: {exc}"})
            failed = TopicError(type(exc).__name__, " ".join(str(exc).split())[:300])
            outcomes = dict.fromkeys(pending, failed)
        retry: list[str] = []
        last: dict[str, TopicError] = {}
        for name in pending:
            error = outcomes.get(name, TopicError("NO_RESULT", "the cluster did not answer"))
            if error is None or error.code in success_codes:
                results[name] = None
                if error is not None and succeeded_by_code is not None:
                    succeeded_by_code.add(name)
            elif error.retriable and not admin.auth_failed():
                retry.append(name)
                last[name] = error
            else:
                results[name] = error
        pending = retry
        wait = next(delays)
        if any(last[name].code == THROTTLED for name in pending):
            wait = max(wait, admin.throttled_for())  # retry after the broker's throttle time
        if pending and not sleep_within(deadline, wait, sleep):
            for name in pending:
                error = last[name]
                results[name] = TopicError(
                    error.code, f"{error.message} (still failing at the deadline)"
                )
            break
        if pending:
            logger.info("retrying", extra={"topics": len(pending), "error": str(last[pending[0]])})
    return results


def apply_plan(
    plan: Plan, admin: TopicAdmin, deadline: Deadline, *, sleep: Sleep = time.sleep
) -> dict[str, TopicResult]:
    """Apply every mutation in ``plan``: creates, then partitions, configs, deletes."""
    errors: dict[str, TopicError | None] = {}

    def record(outcomes: dict[str, TopicError | None]) -> None:
        for name, error in outcomes.items():
            if errors.get(name) is None:
                errors[name] = error

    def timeout() -> float:
        return deadline.timeout(REQUEST_TIMEOUT_CAP)

    by_name = {a.name: a for a in plan.actions}
    # Defence in depth: a plan from anywhere never touches Kafka's internal topics.
    for action in plan.mutations:
        if is_internal(action.name):
            errors[action.name] = TopicError("INTERNAL_TOPIC", internal_reason(action.name))
    allowed = Plan(tuple(a for a in plan.actions if not is_internal(a.name)))
    creates = [a.name for a in allowed.of_kind(ActionKind.CREATE)]
    updates = allowed.of_kind(ActionKind.UPDATE)
    grows = {a.name: a.partitions or 1 for a in updates if a.adds_partitions}
    alters = {a.name: a.config_changes for a in updates if a.config_changes}
    deletes = [a.name for a in allowed.of_kind(ActionKind.DELETE)]
    adopted: set[str] = set()

    if creates:
        # Another sync may have created it a moment ago: adopt it (see TopicResult.adopted).
        record(
            with_retries(
                lambda names: admin.create_topics([by_name[n] for n in names], timeout()),
                creates,
                admin,
                deadline,
                success_codes=frozenset({"TOPIC_ALREADY_EXISTS"}),
                succeeded_by_code=adopted,
                sleep=sleep,
            )
        )
    if grows:
        record(
            with_retries(
                lambda names: _grow(admin, {n: grows[n] for n in names}, timeout),
                list(grows),
                admin,
                deadline,
                sleep=sleep,
            )
        )
    if alters:
        record(
            with_retries(
                lambda names: admin.alter_configs({n: alters[n] for n in names}, timeout()),
                list(alters),
                admin,
                deadline,
                sleep=sleep,
            )
        )
    if deletes:
        record(
            with_retries(
                lambda names: admin.delete_topics(names, timeout()),
                deletes,
                admin,
                deadline,
                success_codes=frozenset({"UNKNOWN_TOPIC_OR_PART"}),
                sleep=sleep,
            )
        )
    return {
        name: TopicResult(name, by_name[name].kind, error, adopted=name in adopted)
        for name, error in errors.items()
    }


def _grow(admin: TopicAdmin, totals: Mapping[str, int], timeout: Callable[[], float]) -> Outcomes:
    """create_partitions, reading a "topic already has N partitions" answer as the race it is.

    Someone else (another sync) grew the topic first: exactly our target is success; more
    than our target cannot be undone, so say so now instead of retrying until the deadline.
    """
    outcomes = admin.create_partitions(totals, timeout())
    raced = [
        name
        for name, error in outcomes.items()
        if error is not None
        and error.code == "INVALID_PARTITIONS"
        and _HAS_PARTITIONS.search(error.message)
    ]
    if not raced:
        return outcomes
    try:
        described = admin.describe(raced, timeout(), configs_of=())
    except Exception:  # cannot tell: keep Kafka's answers, and the others' successes
        logger.warning("cannot re-read raced topics", exc_info=True)
        return outcomes
    for name in raced:
        now = described.get(name)
        if not isinstance(now, ObservedTopic):
            continue  # cannot tell: keep Kafka's answer
        target = totals[name]
        if now.partitions == target:
            logger.info("partitions already grown by someone else", extra={"topic": name})
            outcomes[name] = None
        elif now.partitions > target:
            outcomes[name] = TopicError(
                "PARTITIONS_EXCEEDED",
                f"topic {name} now has {now.partitions} partitions, more than the spec's "
                f"{target}; Kafka cannot remove partitions",
            )
        else:
            # Kafka said it has enough but the metadata we read is older: ask again.
            error = outcomes[name]
            assert error is not None
            outcomes[name] = TopicError(error.code, error.message, retriable=True)
    return outcomes
