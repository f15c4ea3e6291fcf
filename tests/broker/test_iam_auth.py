"""MSK IAM authentication against the local broker, with the production client config."""

from __future__ import annotations

import base64
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from unittest import mock
from urllib.parse import parse_qs, urlsplit

import pytest
from aws_msk_iam_sasl_signer import MSKAuthTokenProvider
from confluent_kafka import KafkaError
from confluent_kafka.admin import AdminClient

from tests.support.kafka import (
    LocalKafka,
    aws_env,
    expect_authentication_failure,
    fixed_token_oauth_cb,
    iam_admin,
    iam_config,
    sign_msk_token,
)
from topic_sync.connection import msk_iam_oauth_cb

AUTH_BOUND_S = 15.0


def _rejected_because(broker: LocalKafka, config: dict[str, Any], reason: str) -> None:
    """The client gets a SASL authentication error in bounded time, and the broker's validator
    logged ``reason`` (so the token was refused for the reason the test is about)."""
    log = Path(broker.log_file)
    offset = log.stat().st_size
    started = time.monotonic()
    error = expect_authentication_failure(config, timeout=AUTH_BOUND_S)
    assert time.monotonic() - started < AUTH_BOUND_S
    assert error.code() == KafkaError._AUTHENTICATION
    assert "SASL authentication error" in error.str()
    assert "invalid_token" in error.str()
    with log.open() as f:
        f.seek(offset)
        assert f"Rejected MSK IAM token: {reason}" in f.read()


def _token_url(token: str) -> str:
    return base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)).decode()


# ---- unit: no broker -------------------------------------------------------------------------


def test_oauth_cb_returns_expiry_in_seconds_not_milliseconds() -> None:
    with aws_env("AKIAUNITTEST00000000", "unit-test-secret"):
        before = time.time()
        token, expiry = msk_iam_oauth_cb("us-east-1")(None)
    # X-Amz-Date has whole seconds, so the expiry can be up to 1 s before now + 900.
    assert before + 899 <= expiry <= time.time() + 900
    assert token
    assert "=" not in token


def test_forged_token_helper_matches_the_msk_signer_byte_for_byte() -> None:
    # The helper must build exactly what production sends, or the negative tests prove nothing.
    when = datetime(2030, 1, 2, 3, 4, 5)
    with (
        aws_env("AKIAUNITTEST00000000", "unit-test-secret"),
        mock.patch("botocore.auth.get_current_datetime", return_value=when),
    ):
        token, _ = MSKAuthTokenProvider.generate_auth_token("us-east-1")
    ours = sign_msk_token(
        "AKIAUNITTEST00000000", "unit-test-secret", "us-east-1", signed_at=when.replace(tzinfo=UTC)
    )
    signed, _, _ = _token_url(token).partition("&User-Agent=")
    assert _token_url(ours).partition("&User-Agent=")[0] == signed
    query = parse_qs(urlsplit(signed).query)
    assert query["Action"] == ["kafka-cluster:Connect"]
    assert query["X-Amz-Expires"] == ["900"]


# ---- against the broker ----------------------------------------------------------------------


@pytest.mark.integration
def test_production_iam_client_connects_and_lists_topics(kafka_broker: LocalKafka) -> None:
    started = time.monotonic()
    with iam_admin(kafka_broker) as admin:
        metadata = admin.list_topics(timeout=AUTH_BOUND_S)
    assert metadata.brokers
    assert time.monotonic() - started < AUTH_BOUND_S


@pytest.mark.integration
def test_wrong_secret_key_is_rejected_promptly(kafka_broker: LocalKafka) -> None:
    with aws_env(kafka_broker.access_key_id, "not-the-secret-key"):
        _rejected_because(kafka_broker, iam_config(kafka_broker), "signature mismatch")


@pytest.mark.integration
def test_unknown_access_key_is_rejected_promptly(kafka_broker: LocalKafka) -> None:
    with aws_env("AKIANOTKNOWNTOBROKER", kafka_broker.secret_access_key):
        _rejected_because(kafka_broker, iam_config(kafka_broker), "unknown access key id")


@pytest.mark.integration
def test_expired_token_is_rejected_promptly(kafka_broker: LocalKafka) -> None:
    # Correctly signed 20 minutes ago with a 900 s lifetime: only the expiry is wrong.
    token = sign_msk_token(
        kafka_broker.access_key_id,
        kafka_broker.secret_access_key,
        kafka_broker.region,
        signed_at=datetime.now(UTC) - timedelta(minutes=20),
        session_token=kafka_broker.session_token,
    )
    config = {**iam_config(kafka_broker), "oauth_cb": fixed_token_oauth_cb(token)}
    _rejected_because(kafka_broker, config, "token expired")


@pytest.mark.integration
def test_token_for_another_action_is_rejected_promptly(kafka_broker: LocalKafka) -> None:
    token = sign_msk_token(
        kafka_broker.access_key_id,
        kafka_broker.secret_access_key,
        kafka_broker.region,
        action="kafka-cluster:DescribeCluster",
        session_token=kafka_broker.session_token,
    )
    config = {**iam_config(kafka_broker), "oauth_cb": fixed_token_oauth_cb(token)}
    _rejected_because(kafka_broker, config, "Action is kafka-cluster:DescribeCluster")


@pytest.mark.integration
def test_forged_token_with_correct_fields_is_accepted(kafka_broker: LocalKafka) -> None:
    # Control for the tests around it: the same helper, nothing wrong, must work.
    token = sign_msk_token(
        kafka_broker.access_key_id,
        kafka_broker.secret_access_key,
        kafka_broker.region,
        session_token=kafka_broker.session_token,
    )
    config = {**iam_config(kafka_broker), "oauth_cb": fixed_token_oauth_cb(token)}
    assert AdminClient(config).list_topics(timeout=AUTH_BOUND_S).brokers


@pytest.mark.integration
def test_issued_session_token_is_accepted(kafka_broker: LocalKafka) -> None:
    # A Lambda role has a session token; the signer puts it in the signed query string.
    session_token = kafka_broker.session_token
    assert session_token
    assert kafka_broker.access_key_id.startswith("ASIA")
    with aws_env(kafka_broker.access_key_id, kafka_broker.secret_access_key, session_token):
        admin = AdminClient(iam_config(kafka_broker))
        assert admin.list_topics(timeout=AUTH_BOUND_S).brokers


@pytest.mark.integration
def test_another_session_token_is_rejected_promptly(kafka_broker: LocalKafka) -> None:
    # Correctly signed with the right key and secret, but not the session token issued with them.
    with aws_env(
        kafka_broker.access_key_id,
        kafka_broker.secret_access_key,
        session_token="IQoJb3JpZ2luX2VjE/+session==token",
    ):
        _rejected_because(
            kafka_broker,
            iam_config(kafka_broker),
            f"session token is not the one issued with {kafka_broker.access_key_id}",
        )


@pytest.mark.integration
def test_temporary_key_without_its_session_token_is_rejected_promptly(
    kafka_broker: LocalKafka,
) -> None:
    token = sign_msk_token(
        kafka_broker.access_key_id, kafka_broker.secret_access_key, kafka_broker.region
    )
    config = {**iam_config(kafka_broker), "oauth_cb": fixed_token_oauth_cb(token)}
    _rejected_because(kafka_broker, config, "no session token (X-Amz-Security-Token)")


@pytest.mark.integration
def test_token_signed_in_the_future_is_rejected_promptly(kafka_broker: LocalKafka) -> None:
    token = sign_msk_token(
        kafka_broker.access_key_id,
        kafka_broker.secret_access_key,
        kafka_broker.region,
        signed_at=datetime.now(UTC) + timedelta(hours=1),
        session_token=kafka_broker.session_token,
    )
    config = {**iam_config(kafka_broker), "oauth_cb": fixed_token_oauth_cb(token)}
    _rejected_because(kafka_broker, config, "X-Amz-Date is in the future")
