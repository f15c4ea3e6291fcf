"""The seam between the engine and Kafka: what the engine needs from an admin client.

``kafka_admin.KafkaTopicAdmin`` is the real one; tests pass fakes. Every method is one
batched admin request (or a few chunks), never one per topic, and returns per-topic outcomes.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from typing import Protocol

from topic_sync.plan import ConfigChange, ObservedTopic, TopicAction


@dataclass(frozen=True)
class TopicError:
    """Why one topic's request failed, and whether trying again may help."""

    code: str
    message: str
    retriable: bool = False

    def __str__(self) -> str:
        return f"{self.code}: {self.message}" if self.message else self.code


#: Per topic: None on success.
Outcomes = dict[str, TopicError | None]
#: Per topic: what exists, None if it does not, or why it could not be described.
Descriptions = dict[str, ObservedTopic | TopicError | None]


class TopicAdmin(Protocol):
    bootstrap_servers: str

    @property
    def requests(self) -> int:
        """Admin requests made so far (a batched call counts once)."""
        ...

    def describe(
        self, names: Sequence[str], timeout: float, *, configs_of: Collection[str] | None = None
    ) -> Descriptions:
        """Partitions, replication factor and dynamic configs of ``names``.

        Configs are read only for ``configs_of`` (default: all); others come back without.
        """
        ...

    def create_topics(self, actions: Sequence[TopicAction], timeout: float) -> Outcomes: ...

    def create_partitions(self, totals: Mapping[str, int], timeout: float) -> Outcomes: ...

    def alter_configs(
        self, changes: Mapping[str, Sequence[ConfigChange]], timeout: float
    ) -> Outcomes: ...

    def delete_topics(self, names: Sequence[str], timeout: float) -> Outcomes: ...

    def client_problem(self) -> str | None:
        """The last connection or authentication error the client saw, if any."""
        ...

    def auth_failed(self) -> bool:
        """True once the cluster rejected our credentials: retrying cannot help."""
        ...

    def throttled_for(self) -> float:
        """Seconds left of the last throttle the broker put on us (KIP-599 quotas), else 0."""
        ...
