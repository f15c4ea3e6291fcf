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
