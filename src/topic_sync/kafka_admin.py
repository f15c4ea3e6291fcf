"""All Kafka I/O: a small wrapper around confluent_kafka's AdminClient.

Every call is batched (one request for all topics, chunked for very large specs) and counted,
and every future is awaited with a timeout so nothing blocks past the caller's deadline.
"""

from __future__ import annotations

import concurrent.futures
import logging
import re
import threading
import time
import weakref
from collections.abc import Callable, Collection, Iterator, Mapping, Sequence
from typing import Any, TypeVar

from confluent_kafka import KafkaError, KafkaException, TopicCollection

# The admin package re-exports these without __all__, which strict mypy does not accept.
from confluent_kafka.admin import (  # type: ignore[attr-defined]
    AdminClient,
    AlterConfigOpType,
    ConfigEntry,
    ConfigResource,
    ConfigSource,
    NewPartitions,
    NewTopic,
)

from topic_sync.admin import Descriptions, Outcomes, TopicError
from topic_sync.connection import Connection, client_config, masked
from topic_sync.exceptions import ClusterUnreachableError
from topic_sync.plan import ConfigChange, ObservedTopic, TopicAction

logger = logging.getLogger(__name__)

# Error codes where trying again later may succeed (KIP-599 throttling, leader moves, network).
_RETRIABLE = frozenset(
    {
        "_TRANSPORT",
        "_TIMED_OUT",
        "_TIMED_OUT_QUEUE",
        "_ALL_BROKERS_DOWN",
        "_RESOLVE",
        "_WAIT_COORD",
        "REQUEST_TIMED_OUT",
        "THROTTLING_QUOTA_EXCEEDED",
        "LEADER_NOT_AVAILABLE",
        "NOT_CONTROLLER",
        "NOT_LEADER_FOR_PARTITION",
        "NETWORK_EXCEPTION",
        "BROKER_NOT_AVAILABLE",
        "KAFKA_STORAGE_ERROR",
        "REASSIGNMENT_IN_PROGRESS",
    }
)
# Client-level errors that mean "we will never get in": fail fast instead of retrying.
_AUTH_CODES = frozenset(
    {"_AUTHENTICATION", "SASL_AUTHENTICATION_FAILED", "CLUSTER_AUTHORIZATION_FAILED"}
)
_TIMEOUTS = frozenset({"_TIMED_OUT", "REQUEST_TIMED_OUT"})
_CHUNK = 500  # topics per admin request; keeps requests small for 1000-topic specs
_POLL_S = 0.05  # how often a wait serves error_cb, so an auth failure ends it at once
_MAX_MESSAGE = 300  # characters of a client exception kept in a per-topic error

_K = TypeVar("_K")
_R = TypeVar("_R")


_MISSING = frozenset({"UNKNOWN_TOPIC_OR_PART", "_UNKNOWN_TOPIC"})
_DYNAMIC_TOPIC_CONFIG = ConfigSource.DYNAMIC_TOPIC_CONFIG.value

# librdkafka decorates its messages: "sasl_ssl://h:9098/bootstrap: ... (after 1ms in state X)".
_BROKER_PREFIX = re.compile(r"^\S+/(?:bootstrap|\d+): ")
_STATE_SUFFIX = re.compile(r"\s*\(after \d+ms in state \w+[^)]*\)$")
_RESOLVE = re.compile(r"Failed to resolve '(?P<addr>[^']+)': (?P<why>.*)$")
_VARIABLE = re.compile(r"\(after \d+ms in state \w+[^)]*\)|\d+ms|\d+ identical error\(s\)")


def _chunks(items: Sequence[_K]) -> Iterator[Sequence[_K]]:
    for start in range(0, len(items), _CHUNK):
        yield items[start : start + _CHUNK]


def _short(text: str) -> str:
    return text if len(text) <= _MAX_MESSAGE else text[:_MAX_MESSAGE] + "...(truncated)"


def topic_error(exc: BaseException) -> TopicError:
    """A TopicError from whatever a confluent-kafka future (or call) raised."""
    if isinstance(exc, KafkaException) and exc.args and isinstance(exc.args[0], KafkaError):
        err: KafkaError = exc.args[0]
        name = str(err.name())
        return TopicError(name, str(err.str()), name in _RETRIABLE or bool(err.retriable()))
    if isinstance(exc, concurrent.futures.TimeoutError):
        return TopicError("_TIMED_OUT", "no answer from the cluster in time", retriable=True)
    return TopicError(type(exc).__name__, _short(str(exc)), retriable=False)


def _refused_by_client(exc: Exception) -> TopicError:
    """The client refused to build the request (nothing was sent), e.g. a partition count above
    librdkafka's 100000: that topic fails, the others go on."""
    if isinstance(exc, KafkaException):
        return topic_error(exc)
    return TopicError("INVALID_REQUEST", _short(" ".join(str(exc).split())), retriable=False)


def explain(code: str, text: str) -> str:
    """One readable line for a client-level error (what ``client_problem`` reports)."""
    text = _STATE_SUFFIX.sub("", _BROKER_PREFIX.sub("", text.strip()))
    if code == "_RESOLVE":
        match = _RESOLVE.search(text)
        if match:
            host = match["addr"].rpartition(":")[0] or match["addr"]
            return f"cannot resolve host {host}: {match['why']}"
    if code in _AUTH_CODES:
        return f"authentication failed ({code}): {text}"
    return f"{code}: {text}"


class DedupLog:
    """A ``logger`` for librdkafka that writes each distinct line once, then a count.

    librdkafka repeats the same failure on every reconnect (~20 lines a second for an
    unresolvable host). A line differing only in timings counts as the same; its repeats are
    summarized at most once per ``window`` seconds, and once more by ``flush``.
    """

    MAX_KEYS = 100  # distinct lines remembered; more than that are counted together

    def __init__(
        self,
        target: logging.Logger,
        window: float = 30.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._target = target
        self._window = window
        self._clock = clock
        self._lock = threading.Lock()
        # key -> [level, last text, repeats not yet logged, start of the window]
        self._seen: dict[tuple[int, str], list[Any]] = {}

    def log(self, level: int, msg: str, *args: Any) -> None:
        # librdkafka calls this from its own threads, as log(level, "%s [%s] %s", fac, name, buf).
        text = msg % args if args else msg
        key = (level, _VARIABLE.sub("#", text))
        now = self._clock()
        with self._lock:
            if key not in self._seen and len(self._seen) >= self.MAX_KEYS:
                key = (level, "(other lines)")
            entry = self._seen.get(key)
            if entry is None:
                self._seen[key] = [level, text, 0, now]
                summary = None
            else:
                entry[1] = text
                entry[2] += 1
                if now - entry[3] < self._window:
                    return
                summary = self._summary(entry, now)
        if summary is None:
            self._target.log(level, "%s", text)
        else:
            self._target.log(level, "%s", summary)

    def _summary(self, entry: list[Any], now: float) -> str:
        line = f"{entry[1]} (repeated {entry[2]} times in {now - entry[3]:.0f} s)"
        entry[2] = 0
        entry[3] = now
        return line

    def flush(self) -> None:
        """Log the count of every line repeated since it was last logged."""
        now = self._clock()
        with self._lock:
            pending = [(e[0], self._summary(e, now)) for e in self._seen.values() if e[2]]
        for level, line in pending:
            self._target.log(level, "%s", line)


class KafkaTopicAdmin:
    """The engine's only door to Kafka (implements ``topic_sync.admin.TopicAdmin``)."""

    def __init__(
        self,
        connection: Connection,
        *,
        client_factory: Callable[[dict[str, Any]], Any] = AdminClient,
    ) -> None:
        self.bootstrap_servers = connection.bootstrap_servers
        self._requests = 0
        self._problem: str | None = None
        self._problem_code: str | None = None
        self._fatal: TopicError | None = None
        self._longest_wait = 0.0
        config = client_config(connection)
        config["error_cb"] = self._on_client_error
        config["throttle_cb"] = self._on_throttle
        self._throttled_until = 0.0
        logger.info("connecting", extra={"client_config": masked(config)})
        # librdkafka's own log lines go through Python logging (JSON in Lambda), not raw stderr,
        # each distinct line once (then a count), never a flood.
        self._log = DedupLog(logging.getLogger("topic_sync.librdkafka"))
        config["logger"] = self._log
        self._client = client_factory(config)
        # The counts of repeated lines are written when this admin is done with.
        weakref.finalize(self, self._log.flush)
        # Serves oauth_cb (IAM token) and error_cb: both only run from poll().
        self._client.poll(0)

    @property
    def requests(self) -> int:
        return self._requests

    def _on_client_error(self, err: KafkaError) -> None:
        code = str(err.name())
        # "1/1 brokers are down" says less than the resolve/connect error that caused it.
        if code == "_ALL_BROKERS_DOWN" and self._problem is not None:
            return
        self._problem_code = code
        self._problem = explain(code, str(err.str()))
        if code in _AUTH_CODES and self._fatal is None:
            self._fatal = TopicError(code, self._problem, retriable=False)

    def _on_throttle(self, event: Any) -> None:
        # KIP-599 quotas: librdkafka waits the throttle time out before its next request; the
        # engine learns it too (throttled_for), so pacing and retries wait instead of queueing.
        if event.throttle_time > 0:
            logger.warning("throttled by the broker", extra={"throttle": str(event)})
            until = time.monotonic() + float(event.throttle_time)
            self._throttled_until = max(self._throttled_until, until)

    def throttled_for(self) -> float:
        self._client.poll(0)  # deliver throttle_cb events
        return max(0.0, self._throttled_until - time.monotonic())

    def client_problem(self) -> str | None:
        self._client.poll(0)
        return self._problem

    def auth_failed(self) -> bool:
        self._client.poll(0)
        return self._fatal is not None

    def _await(
        self, futures: Mapping[Any, concurrent.futures.Future[Any]], timeout: float
    ) -> dict[Any, Any]:
        """Each future's result, or the TopicError it failed with.

        Waits at most ``timeout`` (+ 10%, at most 1 s), and no longer once the cluster has
        rejected our credentials (librdkafka would otherwise wait out the request timeout).
        """
        results: dict[Any, Any] = {}
        pending = dict(futures)
        # A little past librdkafka's own request timeout, so its error (not ours) usually wins.
        give_up = time.monotonic() + timeout + min(1.0, timeout / 10)
        while pending:
            concurrent.futures.wait(list(pending.values()), timeout=_POLL_S)
            for key, future in list(pending.items()):
                if future.done():
                    del pending[key]
                    try:
                        results[key] = future.result(timeout=0)
                    except Exception as exc:  # one topic's odd failure is that topic's error
                        results[key] = topic_error(exc)
            if not pending:
                break
            self._client.poll(0)  # serves error_cb
            if self._fatal is not None or time.monotonic() >= give_up:
                error = self._fatal or topic_error(concurrent.futures.TimeoutError())
                results.update(dict.fromkeys(pending, error))
                break
        self._client.poll(0)  # deliver error_cb / throttle_cb events
        if any(isinstance(r, TopicError) and r.code in _TIMEOUTS for r in results.values()):
            self._note_timeout(timeout)
        return results

    def _note_timeout(self, timeout: float) -> None:
        # A port that accepts and never answers (or a paused broker) gives librdkafka nothing
        # better to say than "1/1 brokers are down": say what happened instead.
        self._longest_wait = max(self._longest_wait, timeout)
        if self._problem_code in (None, "_ALL_BROKERS_DOWN", "_TIMED_OUT"):
            self._problem_code = "_TIMED_OUT"
            self._problem = f"no answer to Kafka requests within {self._longest_wait:.1f} s"

    def _submit(
        self,
        items: Sequence[_K],
        send: Callable[[list[_K]], Mapping[Any, concurrent.futures.Future[Any]]],
        name_of: Callable[[_K], str],
    ) -> tuple[dict[Any, concurrent.futures.Future[Any]], Outcomes]:
        """Send ``items`` as one request: the futures, and the topics the client refused.

        librdkafka checks every item before sending anything and raises for the whole batch
        (e.g. ValueError for 1000000000 partitions), so halve the batch until the refused
        topics are alone; the others are still sent, in a few requests.
        """
        if not items:
            return {}, {}
        try:
            futures = dict(send(list(items)))
        except Exception as exc:
            if len(items) == 1:
                return {}, {name_of(items[0]): _refused_by_client(exc)}
            middle = len(items) // 2
            first, refused = self._submit(items[:middle], send, name_of)
            second, more = self._submit(items[middle:], send, name_of)
            return {**first, **second}, {**refused, **more}
        self._requests += 1
        return futures, {}

    def _mutate(
        self,
        names: Sequence[str],
        build: Callable[[str], _R],
        send: Callable[[list[_R]], Mapping[Any, concurrent.futures.Future[Any]]],
        name_of: Callable[[_R], str],
        timeout: float,
    ) -> Outcomes:
        """Build one request item per topic, send them in chunks, await all the answers."""
        out: Outcomes = {}
        items: list[_R] = []
        for name in names:
            try:
                items.append(build(name))
            except Exception as exc:  # a bad value for one topic fails that topic only
                out[name] = _refused_by_client(exc)
        futures: dict[Any, concurrent.futures.Future[Any]] = {}
        for chunk in _chunks(items):
            sent, refused = self._submit(chunk, send, name_of)
            futures.update(sent)
            out.update(refused)
        for key, result in self._await(futures, timeout).items():
            name = key if isinstance(key, str) else key.name
            out[name] = result if isinstance(result, TopicError) else None
        return out

    def describe(
        self, names: Sequence[str], timeout: float, *, configs_of: Collection[str] | None = None
    ) -> Descriptions:
        names = list(names)
        wanted = set(names if configs_of is None else configs_of)
        # Topics and their configs are asked for at the same time: one round trip, not two.
        topic_futures: dict[Any, concurrent.futures.Future[Any]] = {}
        for chunk in _chunks(names):
            self._requests += 1
            topic_futures.update(
                self._client.describe_topics(TopicCollection(list(chunk)), request_timeout=timeout)
            )
        config_futures: dict[Any, concurrent.futures.Future[Any]] = {}
        for chunk in _chunks([n for n in names if n in wanted]):
            self._requests += 1
            resources = [ConfigResource(ConfigResource.Type.TOPIC, n) for n in chunk]
            config_futures.update(self._client.describe_configs(resources, request_timeout=timeout))
        configs = {
            resource.name: result
            for resource, result in self._await(config_futures, timeout).items()
        }
        out: Descriptions = {}
        for name, result in self._await(topic_futures, timeout).items():
            if isinstance(result, TopicError):
                out[name] = None if result.code in _MISSING else result
                continue
            config = configs.get(name, {})
            if isinstance(config, TopicError):
                # Deleted between the two answers reads as missing; anything else is an error.
                out[name] = None if config.code in _MISSING else config
                continue
            partitions = result.partitions
            rf = len(partitions[0].replicas) if partitions else 0
            # Only what was set on the topic itself; defaults would never settle.
            dynamic = {
                key: entry.value
                for key, entry in config.items()
                if entry.source == _DYNAMIC_TOPIC_CONFIG and entry.value is not None
            }
            out[name] = ObservedTopic(name, len(partitions), rf, dynamic)
        return out

    def list_topic_names(self, timeout: float) -> list[str]:
        """Every topic name on the cluster (the CLI's ``--prune`` needs them; the engine only
        describes names it is given). Raises ClusterUnreachableError with one line."""
        self._requests += 1
        try:
            metadata = self._client.list_topics(timeout=timeout)
        except KafkaException as exc:
            cause = self.client_problem() or str(topic_error(exc))
            raise ClusterUnreachableError(self.bootstrap_servers, cause) from None
        return list(metadata.topics)

    def create_topics(self, actions: Sequence[TopicAction], timeout: float) -> Outcomes:
        by_name = {a.name: a for a in actions}

        def build(name: str) -> NewTopic:
            action = by_name[name]
            return NewTopic(
                name,
                num_partitions=action.partitions or 1,
                replication_factor=action.replication_factor or -1,
                config=action.create_config,
            )

        return self._mutate(
            list(by_name),
            build,
            lambda items: self._client.create_topics(
                items, operation_timeout=timeout, request_timeout=timeout
            ),
            lambda item: str(item.topic),
            timeout,
        )

    def create_partitions(self, totals: Mapping[str, int], timeout: float) -> Outcomes:
        return self._mutate(
            list(totals),
            lambda name: NewPartitions(name, totals[name]),
            lambda items: self._client.create_partitions(
                items, operation_timeout=timeout, request_timeout=timeout
            ),
            lambda item: str(item.topic),
            timeout,
        )

    def alter_configs(
        self, changes: Mapping[str, Sequence[ConfigChange]], timeout: float
    ) -> Outcomes:
        return self._mutate(
            list(changes),
            lambda name: ConfigResource(
                ConfigResource.Type.TOPIC,
                name,
                incremental_configs=[_config_entry(c) for c in changes[name]],
            ),
            lambda items: self._client.incremental_alter_configs(items, request_timeout=timeout),
            lambda item: str(item.name),
            timeout,
        )

    def delete_topics(self, names: Sequence[str], timeout: float) -> Outcomes:
        return self._mutate(
            list(names),
            lambda name: name,
            lambda items: self._client.delete_topics(
                items, operation_timeout=timeout, request_timeout=timeout
            ),
            lambda item: item,
            timeout,
        )


def _config_entry(change: ConfigChange) -> ConfigEntry:
    if change.new is None:
        return ConfigEntry(change.key, None, incremental_operation=AlterConfigOpType.DELETE)
    return ConfigEntry(change.key, change.new, incremental_operation=AlterConfigOpType.SET)
