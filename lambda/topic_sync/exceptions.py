"""One narrow exception per failure the engine reports."""

from __future__ import annotations

from collections.abc import Sequence


class TopicSyncError(Exception):
    """Base class: anything the engine raises on purpose."""


class SpecError(TopicSyncError):
    """The requested spec is invalid; nothing was changed. Carries every problem found."""

    def __init__(self, problems: Sequence[str]) -> None:
        self.problems = list(problems)
        super().__init__("invalid topic spec: " + "; ".join(self.problems))


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
