"""Kafka clients that authenticate as one IAM identity, and the outcome of one client action.

Each client signs its own MSK IAM tokens with the identity's keys (no shared environment), so
several identities can be used one after the other in one process.
"""

from __future__ import annotations

import contextlib
import time
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from botocore.credentials import CredentialProvider
from botocore.credentials import Credentials as BotoCredentials
from confluent_kafka import Consumer, KafkaError, KafkaException, Producer
from confluent_kafka.admin import (  # type: ignore[attr-defined]  # not re-exported in the stubs
    AdminClient,
    AlterConfigOpType,
    ConfigEntry,
    ConfigResource,
    NewTopic,
)

from rehearsal.broker import Broker, Credentials

#: The error codes MSK and Kafka use for "this principal may not do that".
AUTHORIZATION_ERRORS = frozenset(
    {
        KafkaError.TOPIC_AUTHORIZATION_FAILED,
        KafkaError.GROUP_AUTHORIZATION_FAILED,
        KafkaError.CLUSTER_AUTHORIZATION_FAILED,
        KafkaError.TRANSACTIONAL_ID_AUTHORIZATION_FAILED,
    }
)
TIMEOUT_S = 20.0


@dataclass(frozen=True)
class Outcome:
    """What one client action did: ``ok``, or the Kafka error (code name and message)."""

    ok: bool
    error_code: str = ""
    message: str = ""

    @property
    def authorization_denied(self) -> bool:
        return self.error_code.endswith("AUTHORIZATION_FAILED")

    def describe(self) -> str:
        return "ok" if self.ok else f"{self.error_code or 'error'}: {self.message}"


def _error(error: Any) -> Outcome:
    if isinstance(error, KafkaException):
        error = error.args[0] if error.args else error
    if isinstance(error, KafkaError):
        return Outcome(False, error.name(), error.str())
    return Outcome(False, type(error).__name__, str(error))


class _FixedCredentials(CredentialProvider):  # type: ignore[misc]  # botocore is untyped
    METHOD = "rehearsal"

    def __init__(self, credentials: Credentials) -> None:
        super().__init__()
        self._credentials = credentials

    def load(self) -> BotoCredentials:
        c = self._credentials
        return BotoCredentials(c.access_key_id, c.secret_access_key, c.session_token)


def iam_config(
    broker: Broker,
    credentials: Credentials,
    *,
    security_protocol: str = "SASL_SSL",
    sasl_mechanism: str = "OAUTHBEARER",
    **extra: Any,
) -> dict[str, Any]:
    """librdkafka settings for the broker's IAM listener, signing as ``credentials``."""
    from aws_msk_iam_sasl_signer import MSKAuthTokenProvider

    provider = _FixedCredentials(credentials)
    region = broker.region

    def oauth_cb(_config: Any) -> tuple[str, float]:
        token, expiry_ms = MSKAuthTokenProvider.generate_auth_token_from_credentials_provider(
            region, provider
        )
        return token, expiry_ms / 1000.0

    return {
        "bootstrap.servers": broker.sasl_ssl_bootstrap,
        "security.protocol": security_protocol,
        "sasl.mechanisms": sasl_mechanism,
        "ssl.ca.location": broker.ca_file,
        "oauth_cb": oauth_cb,
        "socket.connection.setup.timeout.ms": 10_000,
        "reconnect.backoff.max.ms": 1_000,
        "log_level": 0,
        **extra,
    }


def produce_one(config: Mapping[str, Any], topic: str, timeout: float = TIMEOUT_S) -> Outcome:
    """Produce one message as a Kafka >= 3 client does by default (idempotent, acks=all)."""
    errors: list[Outcome] = []
    delivered: list[bool] = []

    def on_delivery(err: Any, _msg: Any) -> None:
        if err is not None:
            errors.append(_error(err))
        else:
            delivered.append(True)

    producer = Producer(
        {
            **config,
            "acks": "all",
            "enable.idempotence": True,
            "message.timeout.ms": int(timeout * 1000),
            "error_cb": lambda err: errors.append(_error(err)),
        }
    )
    try:
        producer.produce(
            topic, key=b"rehearsal", value=uuid.uuid4().hex.encode(), on_delivery=on_delivery
        )
        producer.flush(timeout)
    finally:
        _close(producer)
    if delivered:
        return Outcome(True)
    denied = [e for e in errors if e.authorization_denied]
    return (denied or errors or [Outcome(False, "TIMEOUT", f"not delivered in {timeout} s")])[0]


def consume_one(
    config: Mapping[str, Any], topic: str, group: str, timeout: float = TIMEOUT_S
) -> Outcome:
    """Join ``group``, read one message of ``topic`` from the beginning and commit its offset."""
    errors: list[Outcome] = []
    consumer = Consumer(
        {
            **config,
            "group.id": group,
            "auto.offset.reset": "earliest",
            "enable.auto.commit": False,
            "error_cb": lambda err: errors.append(_error(err)),
        }
    )
    try:
        consumer.subscribe([topic])
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            msg = consumer.poll(0.5)
            if msg is None:
                if any(e.authorization_denied for e in errors):
                    break
                continue
            error = msg.error()
            if error is not None:
                outcome = _error(error)
                if outcome.authorization_denied or error.fatal():
                    return outcome
                errors.append(outcome)
                continue
            consumer.commit(message=msg, asynchronous=False)
            return Outcome(True)
        denied = [e for e in errors if e.authorization_denied]
        return (denied or errors or [Outcome(False, "TIMEOUT", f"no message in {timeout} s")])[0]
    except KafkaException as error:
        return _error(error)
    finally:
        consumer.close()


def create_topic(config: Mapping[str, Any], topic: str, timeout: float = TIMEOUT_S) -> Outcome:
    admin = AdminClient(dict(config))
    try:
        futures = admin.create_topics([NewTopic(topic, 1, 1)], request_timeout=timeout)
        futures[topic].result(timeout=timeout)
        return Outcome(True)
    except KafkaException as error:
        return _error(error)


def alter_topic_config(
    config: Mapping[str, Any], topic: str, key: str, value: str, timeout: float = TIMEOUT_S
) -> Outcome:
    admin = AdminClient(dict(config))
    resource = ConfigResource(
        ConfigResource.Type.TOPIC,
        topic,
        incremental_configs=[ConfigEntry(key, value, incremental_operation=AlterConfigOpType.SET)],
    )
    try:
        for future in admin.incremental_alter_configs([resource], request_timeout=timeout).values():
            future.result(timeout=timeout)
        return Outcome(True)
    except KafkaException as error:
        return _error(error)


def _close(producer: Producer) -> None:
    """Close now: a producer whose config holds callbacks can outlive its broker (a reference
    cycle only the garbage collector breaks) and keep reconnecting to it."""
    with contextlib.suppress(KafkaException):
        producer.purge()
    with contextlib.suppress(KafkaException):
        producer.close()


def seed(broker: Broker, topic: str, timeout: float = TIMEOUT_S) -> None:
    """Put one message into ``topic`` over PLAINTEXT (the super user), for consumers to read."""
    producer = Producer(
        {"bootstrap.servers": broker.plaintext_bootstrap, "acks": "all", "log_level": 0}
    )
    try:
        producer.produce(topic, key=b"seed", value=b"rehearsal seed")
        undelivered = producer.flush(timeout)
    finally:
        _close(producer)
    if undelivered:
        raise KafkaException(KafkaError(KafkaError._MSG_TIMED_OUT, f"could not seed {topic}"))


def create_topics(broker: Broker, topics: list[str], timeout: float = TIMEOUT_S) -> None:
    """Create ``topics`` (3 partitions) over PLAINTEXT (the super user)."""
    admin = AdminClient({"bootstrap.servers": broker.plaintext_bootstrap, "log_level": 0})
    futures = admin.create_topics([NewTopic(t, 3, 1) for t in topics], request_timeout=timeout)
    for future in futures.values():
        future.result(timeout=timeout)
