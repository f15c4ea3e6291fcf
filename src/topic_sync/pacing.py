"""Pacing partition mutations under a cluster's controller mutation quota (KIP-599).

MSK Serverless allows about 250 partition creations and deletions per 5 minutes per cluster
(older documentation: 120). Sending more makes the cluster throttle every later admin request,
so the engine spends partitions from a token bucket instead: ``capacity`` partitions, refilled
continuously over ``seconds``, full at the start.

Lambda invocations share no memory, so a bucket can also be rebuilt from what a sync has spent
since it started (``PartitionBudget.resumed``): the engine spends greedily, so the tokens left
are ``capacity + refill * elapsed - spent``, never more than ``capacity``.
"""

from __future__ import annotations

import math
import re
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TypeVar

from topic_sync.exceptions import SpecError
from topic_sync.plan import ActionKind, TopicAction
from topic_sync.spec import ClusterType

Clock = Callable[[], float]
T = TypeVar("T")

_RATE_RE = re.compile(r"(?P<partitions>[0-9]{1,7})/(?P<amount>[0-9]{1,6})(?P<unit>s|m|h)")
_UNIT_SECONDS = {"s": 1, "m": 60, "h": 3600}
#: A window longer than the Provider framework's 2-hour total timeout makes no sense.
MAX_WINDOW_SECONDS = 7200
_EPSILON = 1e-6


@dataclass(frozen=True)
class PartitionRate:
    """``partitions`` partition mutations per ``seconds``, e.g. ``250/300s``."""

    partitions: int
    seconds: int

    @classmethod
    def parse(cls, text: object, *, source: str) -> PartitionRate:
        """``N/Ts`` (or ``m``, ``h``); SpecError naming ``source`` if it is anything else."""
        raw = text if isinstance(text, str) else ""
        match = _RATE_RE.fullmatch(raw)
        shown = repr(text)[:40]
        if match is None:
            raise SpecError(
                [f"{source}: must look like 250/300s (partitions per window), got {shown}"]
            )
        partitions = int(match["partitions"])
        seconds = int(match["amount"]) * _UNIT_SECONDS[match["unit"]]
        if partitions < 1 or not 1 <= seconds <= MAX_WINDOW_SECONDS:
            raise SpecError(
                [
                    f"{source}: needs at least 1 partition per window of 1..{MAX_WINDOW_SECONDS}"
                    f" s, got {shown}"
                ]
            )
        return cls(partitions, seconds)

    @property
    def per_second(self) -> float:
        return self.partitions / self.seconds

    def seconds_for(self, partitions: int) -> float:
        """The least time the quota allows for ``partitions`` mutations, from a full bucket."""
        return max(0, partitions - self.partitions) / self.per_second

    def __str__(self) -> str:
        return f"{self.partitions}/{self.seconds}s"


#: The quota each cluster type enforces by default; None: no partition quota to pace for.
DEFAULT_RATES: Mapping[ClusterType, PartitionRate | None] = {
    ClusterType.SERVERLESS: PartitionRate(250, 300),
    ClusterType.PROVISIONED: None,
}


def partition_cost(action: TopicAction, observed_partitions: int | None = None) -> int:
    """Partitions an action creates or deletes: what the quota counts.

    A delete's cost is the topic's partition count as observed (the plan does not carry it).
    """
    if action.kind is ActionKind.CREATE:
        return action.partitions or 1
    if action.adds_partitions:
        return (action.partitions or 0) - (action.old_partitions or 0)
    if action.kind is ActionKind.DELETE:
        return observed_partitions or 1
    return 0


@dataclass
class PartitionBudget:
    """A token bucket of partition mutations; ``clock`` is wall-clock seconds by default."""

    rate: PartitionRate
    clock: Clock = field(default=time.time, repr=False)
    tokens: float = math.nan
    updated: float = math.nan

    def __post_init__(self) -> None:
        if math.isnan(self.updated):
            self.updated = self.clock()
        if math.isnan(self.tokens):
            self.tokens = float(self.rate.partitions)

    @classmethod
    def resumed(
        cls, rate: PartitionRate, *, started_at: float, spent: int, clock: Clock = time.time
    ) -> PartitionBudget:
        """The bucket of a sync that started full at ``started_at`` and has spent ``spent``."""
        now = clock()
        elapsed = max(0.0, now - started_at)
        tokens = min(float(rate.partitions), rate.partitions + rate.per_second * elapsed - spent)
        return cls(rate, clock, tokens, now)

    def available(self) -> float:
        self._refill()
        return self.tokens

    def spend(self, partitions: int) -> None:
        """Record ``partitions`` mutations; the bucket may go negative, as Kafka's does."""
        self._refill()
        self.tokens -= partitions

    def wait_for(self, partitions: int) -> float:
        """Seconds until ``partitions`` can be spent (a cost above capacity: until full)."""
        wanted = min(partitions, self.rate.partitions)
        missing = wanted - self.available()
        return max(0.0, missing / self.rate.per_second)

    def throttled(self, seconds: float) -> None:
        """The broker throttled us for ``seconds``: nothing is spendable before then."""
        self._refill()
        self.tokens = min(self.tokens, -seconds * self.rate.per_second)

    def _refill(self) -> None:
        now = self.clock()
        if now > self.updated:
            refill = (now - self.updated) * self.rate.per_second
            self.tokens = min(float(self.rate.partitions), self.tokens + refill)
            self.updated = now


@dataclass(frozen=True)
class Pacing:
    """How a sync spends partition mutations: at ``rate``; for a sync that began in an earlier
    invocation, from when it started and what its first plan needed."""

    rate: PartitionRate
    started_at: float | None = None
    planned: int | None = None
    clock: Clock = field(default=time.time, compare=False, repr=False)

    def budget(self, remaining: int) -> PartitionBudget:
        """The bucket now, given the ``remaining`` partitions the plan still needs."""
        if self.started_at is None:
            return PartitionBudget(self.rate, self.clock)
        spent = max(0, (self.planned if self.planned is not None else remaining) - remaining)
        return PartitionBudget.resumed(
            self.rate, started_at=self.started_at, spent=spent, clock=self.clock
        )


def describe_wait(seconds: float) -> str:
    """``4m10s`` / ``35s``: a wait as people read it."""
    whole = max(0, math.ceil(seconds))
    minutes, rest = divmod(whole, 60)
    return f"{minutes}m{rest:02d}s" if minutes else f"{rest}s"


def affordable(
    items: Sequence[T], cost: Callable[[T], int], budget: float, *, capacity: int
) -> list[T]:
    """The longest prefix of ``items`` whose total cost fits in ``budget``.

    One item costing more than the whole capacity still goes alone once the bucket is full,
    or it could never be applied (Kafka accepts it and then throttles).
    """
    chosen: list[T] = []
    total = 0
    for item in items:
        price = cost(item)
        if total + price <= budget + _EPSILON:  # refills are floats
            chosen.append(item)
            total += price
        elif not chosen and price > capacity and budget >= capacity:
            return [item]
        else:
            break
    return chosen


def total_cost(actions: Iterable[TopicAction], observed: Mapping[str, int] | None = None) -> int:
    """The partition mutations a plan needs (``observed``: partitions of topics to delete)."""
    sizes = observed or {}
    return sum(partition_cost(a, sizes.get(a.name)) for a in actions)
