"""Deadlines and exponential backoff with full jitter."""

from __future__ import annotations

import math
import random
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

Clock = Callable[[], float]

# No sync needs more than an hour (a Lambda gets 15 minutes); a bigger or infinite budget
# would mean "never give up".
MAX_SECONDS = 3_600.0


@dataclass(frozen=True)
class Deadline:
    """A point in monotonic time after which no new Kafka work starts.

    ``clock`` is the time source (tests pass a fake one that their fake ``sleep`` advances).
    """

    at: float
    clock: Clock = field(default=time.monotonic, compare=False, repr=False)

    def __post_init__(self) -> None:
        if not math.isfinite(self.at):
            raise ValueError(f"a deadline must be a finite point in time, got {self.at}")

    @classmethod
    def after(cls, seconds: float, clock: Clock = time.monotonic) -> Deadline:
        """``seconds`` from now, clamped to 0..MAX_SECONDS (inf and 1e308 included)."""
        if math.isnan(seconds):
            raise ValueError("a deadline needs a number of seconds, got nan")
        return cls(clock() + min(max(seconds, 0.0), MAX_SECONDS), clock)

    def remaining(self) -> float:
        return max(0.0, self.at - self.clock())

    def expired(self) -> bool:
        return self.remaining() <= 0.0

    def timeout(self, cap: float) -> float:
        """A per-request timeout that never outlives the deadline (librdkafka needs > 0)."""
        return max(0.1, min(cap, self.remaining()))


def full_jitter(base: float = 0.2, cap: float = 5.0) -> Iterator[float]:
    """Delays for attempt 0, 1, 2...: uniform(0, min(cap, base * 2**attempt))."""
    attempt = 0
    while True:
        yield random.uniform(0, min(cap, base * 2**attempt))  # noqa: S311 - not crypto
        attempt += 1


def sleep_within(
    deadline: Deadline, delay: float, sleep: Callable[[float], None] = time.sleep
) -> bool:
    """Sleep ``delay`` (cut short by the deadline); False if the deadline has passed."""
    if deadline.expired():
        return False
    sleep(min(delay, deadline.remaining()))
    return not deadline.expired()
