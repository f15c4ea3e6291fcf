"""Root conftest: the session-wide local Kafka broker, shared by every test package."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import ExitStack

import pytest

from tests.support.kafka import LocalKafka, LocalKafkaError, session_broker


@pytest.fixture(scope="session")
def kafka_broker() -> Iterator[LocalKafka]:
    """One real broker for the whole session. Reuses a running one; stops it at the end only if
    a test session started it and no other pytest session (same run dir) still uses it, so a
    broker from `make kafka-up` keeps running. A failed start fails fast with the log tail.

    Its IAM identities come from kafka/default-iam-policies.json: ``granted`` (``access_key_id``,
    "the Lambda's role") may do everything on the cluster, ``denied`` may only connect. Tests
    that need narrower policies start their own broker (tests/broker/test_iam_authz.py).
    """
    with ExitStack() as stack:
        try:
            broker, _started = stack.enter_context(session_broker())
        except LocalKafkaError as exc:
            pytest.fail(str(exc), pytrace=False)
        yield broker
