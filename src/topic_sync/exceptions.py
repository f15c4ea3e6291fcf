"""One narrow exception per failure the engine reports."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

#: How much of a user-supplied value an error message shows (a 10 MB value is not echoed).
MAX_VALUE_CHARS = 80
#: How many problems one SpecError lists before "(+N more)": every message stays bounded.
MAX_PROBLEMS_SHOWN = 10
MAX_PROBLEM_CHARS = 400


def clip(value: Any, limit: int = MAX_VALUE_CHARS) -> str:
    """``repr(value)`` cut to ``limit`` characters, for error messages about user input.

    Containers are summarized by type and size first: repr of a deeply nested or huge value
    would itself be the problem (memory, recursion).
    """
    if isinstance(value, str | bytes):
        text = repr(value[: limit + 1])
    elif isinstance(value, dict | list | tuple | set | frozenset):
        text = f"<{type(value).__name__} of {len(value)} item(s)>"
    elif value is None or isinstance(value, bool | int | float):
        text = repr(value) if not isinstance(value, int) or value.bit_length() < 256 else "<int>"
    else:
        text = f"<{type(value).__name__}>"
    return text if len(text) <= limit else text[: limit - 3] + "..."


def one_line(text: str, limit: int) -> str:
    """``text`` on one line (whitespace runs collapsed), cut to ``limit`` characters."""
    flat = " ".join(text[: limit * 4].split())
    return flat if len(flat) <= limit else flat[: limit - 3] + "..."


class TopicSyncError(Exception):
    """Base class: anything the engine raises on purpose."""


class SpecError(TopicSyncError):
    """The requested spec is invalid; nothing was changed. Carries every problem found."""

    def __init__(self, problems: Sequence[str]) -> None:
        self.problems = [one_line(p, MAX_PROBLEM_CHARS) for p in problems]
        shown = self.problems[:MAX_PROBLEMS_SHOWN]
        more = len(self.problems) - len(shown)
        suffix = f" (+{more} more)" if more else ""
        super().__init__("invalid topic spec: " + "; ".join(shown) + suffix)


class PlanRefusedError(TopicSyncError):
    """The plan asks for changes Kafka cannot make safely; nothing was changed."""

    def __init__(self, problems: Sequence[str]) -> None:
        self.problems = list(problems)
        super().__init__("refused, nothing was changed: " + "; ".join(self.problems))


class ClusterUnreachableError(TopicSyncError):
    """Kafka could not be reached or refused our credentials before the deadline."""

    def __init__(self, bootstrap_servers: str, cause: str) -> None:
        self.bootstrap_servers = bootstrap_servers
        self.cause = cause
        super().__init__(f"cannot reach Kafka at {bootstrap_servers}: {cause}")


class SyncFailedError(TopicSyncError):
    """Some topics could not be synced; carries every failure and what succeeded."""

    def __init__(self, failures: dict[str, str], succeeded: Sequence[str]) -> None:
        self.failures = dict(failures)
        self.succeeded = list(succeeded)
        failed = "; ".join(f"{name}: {why}" for name, why in self.failures.items())
        ok = ", ".join(self.succeeded[:20]) or "none"
        more = f" (+{len(self.succeeded) - 20} more)" if len(self.succeeded) > 20 else ""
        super().__init__(f"{len(self.failures)} topic(s) failed: {failed}. Succeeded: {ok}{more}")


class SyncIncompleteError(TopicSyncError):
    """The partition quota left work for later and no later call will come; nothing created
    is deleted, and the next deploy continues from there."""
