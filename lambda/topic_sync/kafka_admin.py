"""All Kafka I/O: a small wrapper around confluent_kafka's AdminClient.

Every call is batched (one request for all topics, chunked for very large specs) and counted,
and every future is awaited with a timeout so nothing blocks past the caller's deadline.
"""

from __future__ import annotations

import concurrent.futures
import logging
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
_CHUNK = 500  # topics per admin request; keeps requests small for 1000-topic specs

_K = TypeVar("_K")


_MISSING = frozenset({"UNKNOWN_TOPIC_OR_PART", "_UNKNOWN_TOPIC"})
_DYNAMIC_TOPIC_CONFIG = ConfigSource.DYNAMIC_TOPIC_CONFIG.value


def _chunks(items: Sequence[_K]) -> Iterator[Sequence[_K]]:
    for start in range(0, len(items), _CHUNK):
        yield items[start : start + _CHUNK]


def topic_error(exc: BaseException) -> TopicError:
    """A TopicError from whatever a confluent-kafka future raised."""
    if isinstance(exc, KafkaException) and exc.args and isinstance(exc.args[0], KafkaError):
        err: KafkaError = exc.args[0]
        name = str(err.name())
        return TopicError(name, str(err.str()), name in _RETRIABLE or bool(err.retriable()))
    if isinstance(exc, concurrent.futures.TimeoutError):
        return TopicError("_TIMED_OUT", "no answer from the cluster in time", retriable=True)
    return TopicError(type(exc).__name__, str(exc), retriable=False)


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
        config = client_config(connection)
        config["error_cb"] = self._on_client_error
        config["throttle_cb"] = self._on_throttle
        logger.info("connecting", extra={"client_config": masked(config)})
        # librdkafka's own log lines go through Python logging (JSON in Lambda), not raw stderr.
        config["logger"] = logging.getLogger("topic_sync.librdkafka")
        self._client = client_factory(config)
        # Serves oauth_cb (IAM token) and error_cb: both only run from poll().
        self._client.poll(0)

    @property
    def requests(self) -> int:
        return self._requests

    def _on_client_error(self, err: KafkaError) -> None:
        self._problem = f"{err.name()}: {err.str()}"

    def _on_throttle(self, event: Any) -> None:
        # KIP-599 quotas: librdkafka waits the throttle time out before its next request.
        if event.throttle_time > 0:
            logger.warning("throttled by the broker", extra={"throttle": str(event)})

    def client_problem(self) -> str | None:
        self._client.poll(0)
        return self._problem

    def auth_failed(self) -> bool:
        problem = self.client_problem()
        return problem is not None and problem.split(":", 1)[0] in _AUTH_CODES

    def _await(
        self, futures: Mapping[Any, concurrent.futures.Future[Any]], timeout: float
    ) -> dict[Any, Any]:
        """Each future's result, or the TopicError it failed with."""
        results: dict[Any, Any] = {}
        for key, future in futures.items():
            try:
                results[key] = future.result(timeout=timeout + 1.0)
            except (KafkaException, concurrent.futures.TimeoutError) as exc:
                results[key] = topic_error(exc)
        self._client.poll(0)  # deliver error_cb / throttle_cb events
        return results

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

    def create_topics(self, actions: Sequence[TopicAction], timeout: float) -> Outcomes:
        out: Outcomes = {}
        for chunk in _chunks(list(actions)):
            self._requests += 1
            new_topics = [
                NewTopic(
                    a.name,
                    num_partitions=a.partitions or 1,
                    replication_factor=a.replication_factor or -1,
                    config=a.create_config,
                )
                for a in chunk
            ]
            futures = self._client.create_topics(
                new_topics, operation_timeout=timeout, request_timeout=timeout
            )
            out.update(self._outcomes(futures, timeout))
        return out

    def create_partitions(self, totals: Mapping[str, int], timeout: float) -> Outcomes:
        out: Outcomes = {}
        for chunk in _chunks(list(totals)):
            self._requests += 1
            futures = self._client.create_partitions(
                [NewPartitions(name, totals[name]) for name in chunk],
                operation_timeout=timeout,
                request_timeout=timeout,
            )
            out.update(self._outcomes(futures, timeout))
        return out

    def alter_configs(
        self, changes: Mapping[str, Sequence[ConfigChange]], timeout: float
    ) -> Outcomes:
        out: Outcomes = {}
        for chunk in _chunks(list(changes)):
            self._requests += 1
            resources = [
                ConfigResource(
                    ConfigResource.Type.TOPIC,
                    name,
                    incremental_configs=[_config_entry(c) for c in changes[name]],
                )
                for name in chunk
            ]
            futures = self._client.incremental_alter_configs(resources, request_timeout=timeout)
            results = self._await(futures, timeout)
            for resource, result in results.items():
                out[resource.name] = result if isinstance(result, TopicError) else None
        return out

    def delete_topics(self, names: Sequence[str], timeout: float) -> Outcomes:
        out: Outcomes = {}
        for chunk in _chunks(list(names)):
            self._requests += 1
            futures = self._client.delete_topics(
                list(chunk), operation_timeout=timeout, request_timeout=timeout
            )
            out.update(self._outcomes(futures, timeout))
        return out

    def _outcomes(
        self, futures: Mapping[str, concurrent.futures.Future[Any]], timeout: float
    ) -> Outcomes:
        return {
            name: result if isinstance(result, TopicError) else None
            for name, result in self._await(futures, timeout).items()
        }


def _config_entry(change: ConfigChange) -> ConfigEntry:
    if change.new is None:
        return ConfigEntry(change.key, None, incremental_operation=AlterConfigOpType.DELETE)
    return ConfigEntry(change.key, change.new, incremental_operation=AlterConfigOpType.SET)
