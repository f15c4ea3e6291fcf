"""An in-memory ``TopicAdmin``: a small, faithful model of a Kafka cluster's topics.

It keeps partitions, replication factor and the dynamic (set-on-the-topic) configs, answers
like ``KafkaTopicAdmin`` does (per-topic outcomes, Kafka error codes, missing topics as None),
counts requests the way the real one does for one chunk (describe = describe_topics +
describe_configs), and can be scripted to fail:

    fake.fail("create_topics", THROTTLED, topic="orders", times=3)  # then succeeds
    fake.fail("create_topics", AUTHZ_FAILED, topic="payments")      # every time
    fake.create_concurrently("orders", partitions=3)                # "already exists" race
    fake.before("create_partitions", lambda: ...)                   # a racer acts first
    fake.crash("create_topics", ValueError("bad"))                  # the client raises
    fake.disconnect()                                               # connection failure

``FakeClock`` is the matching time source: pass ``clock.sleep`` as the engine's ``sleep`` and
``Deadline.after(s, clock=clock)`` so retries and deadlines run in no real time.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Literal

from topic_sync.admin import Descriptions, Outcomes, TopicError
from topic_sync.plan import ConfigChange, ObservedTopic, TopicAction

Operation = Literal[
    "describe", "create_topics", "create_partitions", "alter_configs", "delete_topics"
]
MUTATING_OPERATIONS: frozenset[Operation] = frozenset(
    {"create_topics", "create_partitions", "alter_configs", "delete_topics"}
)

# The errors the real client reports, classified as kafka_admin.topic_error() does.
THROTTLED = TopicError(
    "THROTTLING_QUOTA_EXCEEDED", "The throttling quota has been exceeded.", retriable=True
)
TIMED_OUT = TopicError("REQUEST_TIMED_OUT", "Broker: Request timed out", retriable=True)
NO_LEADER = TopicError("LEADER_NOT_AVAILABLE", "Broker: Leader not available", retriable=True)
AUTHZ_FAILED = TopicError("TOPIC_AUTHORIZATION_FAILED", "Broker: Topic authorization failed")
INVALID_CONFIG = TopicError("INVALID_CONFIG", "Broker: Configuration is invalid")
TRANSPORT = TopicError("_TRANSPORT", "Local: Broker transport failure", retriable=True)


def already_exists(name: str) -> TopicError:
    return TopicError("TOPIC_ALREADY_EXISTS", f"Topic '{name}' already exists.")


def unknown_topic(name: str) -> TopicError:
    return TopicError("UNKNOWN_TOPIC_OR_PART", f"Topic '{name}' does not exist.")


@dataclass
class FakeTopic:
    partitions: int
    replication_factor: int = 3
    config: dict[str, str] = field(default_factory=dict)


@dataclass
class _Failure:
    error: TopicError
    topic: str | None  # None: every topic in the call
    times: int | None  # None: forever


@dataclass(frozen=True)
class Call:
    operation: Operation
    names: tuple[str, ...]


class FakeClock:
    """Monotonic time that only moves when someone sleeps (or a request takes ``latency``)."""

    def __init__(self, start: float = 1000.0) -> None:
        self.now = start
        self.sleeps: list[float] = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        assert seconds >= 0, seconds
        self.sleeps.append(seconds)
        self.now += seconds

    def advance(self, seconds: float) -> None:
        self.now += seconds


class FakeKafka:
    """An in-memory cluster behind the ``TopicAdmin`` interface."""

    def __init__(
        self,
        topics: Mapping[str, FakeTopic] | None = None,
        *,
        bootstrap_servers: str = "fake-kafka:9098",
        default_replication_factor: int = 3,
        clock: FakeClock | None = None,
        latency: float = 0.0,
    ) -> None:
        self.bootstrap_servers = bootstrap_servers
        self.topics: dict[str, FakeTopic] = dict(topics or {})
        self.default_replication_factor = default_replication_factor
        self.calls: list[Call] = []
        self.mutations = 0  # per-topic changes actually applied
        self._requests = 0
        self._failures: dict[Operation, list[_Failure]] = {}
        self._races: dict[str, FakeTopic] = {}
        self._problem: str | None = None
        self._auth_failed = False
        self.throttle_s = 0.0
        self._clock = clock
        self._latency = latency
        self._call_error: TopicError | None = None
        self._before: dict[Operation, list[Callable[[], None]]] = {}
        self._crashes: dict[Operation, list[BaseException]] = {}

    # -- scripting -----------------------------------------------------------------------

    def fail(
        self,
        operation: Operation,
        error: TopicError,
        *,
        topic: str | None = None,
        times: int | None = None,
    ) -> None:
        """Make ``operation`` answer ``error`` for ``topic`` (or all) ``times`` calls (or always).

        Failures for the same operation and topic are used up in the order they were added.
        """
        self._failures.setdefault(operation, []).append(_Failure(error, topic, times))

    def create_concurrently(
        self, name: str, partitions: int = 1, config: Mapping[str, str] | None = None
    ) -> None:
        """Someone else creates ``name`` just before our next create_topics call reaches it."""
        self._races[name] = FakeTopic(
            partitions, self.default_replication_factor, dict(config or {})
        )

    def before(self, operation: Operation, action: Callable[[], None]) -> None:
        """Run ``action`` (someone else's change) just before the next ``operation`` call."""
        self._before.setdefault(operation, []).append(action)

    def crash(self, operation: Operation, error: BaseException) -> None:
        """The next ``operation`` call raises ``error`` instead of answering (a client bug,
        or librdkafka refusing a request it cannot build)."""
        self._crashes.setdefault(operation, []).append(error)

    def grow_concurrently(self, name: str, partitions: int) -> None:
        """Someone else grows ``name`` to ``partitions`` just before our next grow."""

        def grow() -> None:
            self.topics[name].partitions = partitions

        self.before("create_partitions", grow)

    def disconnect(self, problem: str = "_TRANSPORT: Connection refused") -> None:
        """Every request fails with a retriable transport error until ``reconnect``."""
        self._problem = problem

    def reject_credentials(self) -> None:
        """The cluster refuses our credentials: nothing works and retrying cannot help."""
        self._problem = "SASL_AUTHENTICATION_FAILED: Access denied"
        self._auth_failed = True

    def reconnect(self) -> None:
        self._problem = None
        self._auth_failed = False

    def client(self, bootstrap_servers: str | None = None) -> FakeKafka:
        """A new client of the same cluster: shares the topics, fresh counters and scripts.

        What a fresh ``KafkaTopicAdmin`` per Lambda invocation looks like.
        """
        other = FakeKafka(
            bootstrap_servers=bootstrap_servers or self.bootstrap_servers,
            default_replication_factor=self.default_replication_factor,
            clock=self._clock,
            latency=self._latency,
        )
        other.topics = self.topics
        return other

    # -- observation helpers for tests ---------------------------------------------------

    def calls_to(self, operation: Operation) -> list[Call]:
        return [c for c in self.calls if c.operation == operation]

    def mutating_calls(self) -> list[Call]:
        return [c for c in self.calls if c.operation in MUTATING_OPERATIONS]

    def attempts(self, operation: Operation, topic: str) -> int:
        return sum(1 for c in self.calls_to(operation) if topic in c.names)

    # -- TopicAdmin ----------------------------------------------------------------------

    @property
    def requests(self) -> int:
        return self._requests

    def client_problem(self) -> str | None:
        return self._problem

    def auth_failed(self) -> bool:
        return self._auth_failed

    def throttled_for(self) -> float:
        """What a test set in ``throttle_s`` (the broker's KIP-599 throttle time)."""
        return self.throttle_s

    def describe(
        self, names: Sequence[str], timeout: float, *, configs_of: Collection[str] | None = None
    ) -> Descriptions:
        self._start("describe", names, timeout)
        wanted = set(names if configs_of is None else configs_of)
        out: Descriptions = {}
        for name in names:
            error = self._scripted("describe", name)
            if error is not None:
                out[name] = error
                continue
            topic = self.topics.get(name)
            if topic is None:
                out[name] = None
            else:
                config = dict(topic.config) if name in wanted else {}
                out[name] = ObservedTopic(name, topic.partitions, topic.replication_factor, config)
        if wanted & set(names):
            self._requests += 1  # the real admin sends one describe_configs beside it
        return out

    def create_topics(self, actions: Sequence[TopicAction], timeout: float) -> Outcomes:
        self._start("create_topics", [a.name for a in actions], timeout)
        out: Outcomes = {}
        for action in actions:
            name = action.name
            error = self._scripted("create_topics", name)
            if error is None and name in self._races:
                self.topics[name] = self._races.pop(name)
            if error is None and name in self.topics:
                error = already_exists(name)
            if error is None and (action.partitions or 1) < 1:
                error = TopicError("INVALID_PARTITIONS", "Number of partitions must be positive")
            if error is None:
                self.topics[name] = FakeTopic(
                    action.partitions or 1,
                    action.replication_factor or self.default_replication_factor,
                    dict(action.create_config),
                )
                self.mutations += 1
            out[name] = error
        return out

    def create_partitions(self, totals: Mapping[str, int], timeout: float) -> Outcomes:
        self._start("create_partitions", list(totals), timeout)
        out: Outcomes = {}
        for name, total in totals.items():
            error = self._scripted("create_partitions", name)
            topic = self.topics.get(name)
            if error is None and topic is None:
                error = unknown_topic(name)
            if error is None and topic is not None and total == topic.partitions:
                error = TopicError("INVALID_PARTITIONS", f"Topic already has {total} partition(s).")
            if error is None and topic is not None and total < topic.partitions:
                error = TopicError(
                    "INVALID_PARTITIONS",
                    f"Topic currently has {topic.partitions} partitions, "
                    f"which is higher than the requested {total}.",
                )
            if error is None and topic is not None:
                topic.partitions = total
                self.mutations += 1
            out[name] = error
        return out

    def alter_configs(
        self, changes: Mapping[str, Sequence[ConfigChange]], timeout: float
    ) -> Outcomes:
        self._start("alter_configs", list(changes), timeout)
        out: Outcomes = {}
        for name, topic_changes in changes.items():
            error = self._scripted("alter_configs", name)
            topic = self.topics.get(name)
            if error is None and topic is None:
                error = unknown_topic(name)
            if error is None and topic is not None:
                # Incremental alter is atomic per resource: all of a topic's ops or none.
                for change in topic_changes:
                    if change.new is None:
                        topic.config.pop(change.key, None)
                    else:
                        topic.config[change.key] = change.new
                self.mutations += 1
            out[name] = error
        return out

    def delete_topics(self, names: Sequence[str], timeout: float) -> Outcomes:
        self._start("delete_topics", names, timeout)
        out: Outcomes = {}
        for name in names:
            error = self._scripted("delete_topics", name)
            if error is None and name not in self.topics:
                error = unknown_topic(name)
            if error is None:
                del self.topics[name]
                self.mutations += 1
            out[name] = error
        return out

    # -- internals -----------------------------------------------------------------------

    def _start(self, operation: Operation, names: Sequence[str], timeout: float) -> None:
        assert timeout > 0, f"{operation} called with timeout {timeout}"
        hooks = self._before.get(operation)
        if hooks:
            hooks.pop(0)()
        crashes = self._crashes.get(operation)
        if crashes:
            self.calls.append(Call(operation, tuple(names)))
            raise crashes.pop(0)
        self._requests += 1
        self.calls.append(Call(operation, tuple(names)))
        if self._clock is not None:
            self._clock.advance(self._latency)
        # A failure for every topic is used up once per call, not once per topic.
        self._call_error = None
        for failure in self._failures.get(operation, []):
            if failure.topic is None and failure.times != 0:
                if failure.times is not None:
                    failure.times -= 1
                self._call_error = failure.error
                break

    def _scripted(self, operation: Operation, name: str) -> TopicError | None:
        if self._problem is not None:
            code, _, message = self._problem.partition(": ")
            return TopicError(code, message, retriable=not self._auth_failed)
        for failure in self._failures.get(operation, []):
            if failure.topic == name and failure.times != 0:
                if failure.times is not None:
                    failure.times -= 1
                return failure.error
        return self._call_error
