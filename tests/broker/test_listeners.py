"""PLAINTEXT and SASL_SSL (MSK IAM) listeners see the same cluster; an identity that may only
connect is authenticated but denied."""

from __future__ import annotations

import pytest
from confluent_kafka import KafkaError, KafkaException
from confluent_kafka.admin import NewTopic  # type: ignore[attr-defined]

from tests.support.kafka import (
    LocalKafka,
    consume_messages,
    create_topic,
    iam_admin,
    iam_config,
    identity_env,
    plaintext_admin,
    plaintext_config,
    produce_messages,
    topic_names,
    unique_topic_name,
    wait_for_topic,
)

pytestmark = pytest.mark.integration


@pytest.fixture
def granted(kafka_broker: LocalKafka) -> LocalKafka:
    """The Lambda's identity: its policy allows kafka-cluster:* on the cluster's ARNs."""
    return kafka_broker


def test_topic_created_over_plaintext_is_visible_over_sasl_ssl(granted: LocalKafka) -> None:
    topic = unique_topic_name("pt2iam")
    create_topic(plaintext_admin(granted), topic, partitions=3)

    with iam_admin(granted) as admin:
        metadata = admin.list_topics(topic, timeout=15).topics[topic]
    assert metadata.error is None
    assert len(metadata.partitions) == 3


def test_topic_created_over_sasl_ssl_is_visible_over_plaintext(granted: LocalKafka) -> None:
    topic = unique_topic_name("iam2pt")
    with iam_admin(granted) as admin:
        create_topic(admin, topic, partitions=2, config={"retention.ms": "3600000"})

    admin = plaintext_admin(granted)
    wait_for_topic(admin, topic)
    assert len(admin.list_topics(topic, timeout=15).topics[topic].partitions) == 2


def test_messages_produced_over_iam_are_read_back_over_plaintext(granted: LocalKafka) -> None:
    topic = unique_topic_name("data")
    create_topic(plaintext_admin(granted), topic, partitions=2)

    with identity_env(granted, "granted"):
        sent = produce_messages(iam_config(granted), topic, 50)
    received = consume_messages(plaintext_config(granted), topic, 50)

    assert sorted(received) == sorted(sent)
    assert len(sent) == 50


def test_identity_allowed_only_to_connect_is_authenticated_but_denied(
    kafka_broker: LocalKafka,
) -> None:
    existing = unique_topic_name("hidden")
    create_topic(plaintext_admin(kafka_broker), existing)

    with iam_admin(kafka_broker, "denied") as admin:
        # Authorized-only listing: the topic exists but this principal may not describe it.
        assert existing not in topic_names(admin)
        future = admin.create_topics([NewTopic(unique_topic_name("denied"), 1, 1)])
        with pytest.raises(KafkaException) as excinfo:
            next(iter(future.values())).result(timeout=15)
    assert excinfo.value.args[0].code() == KafkaError.TOPIC_AUTHORIZATION_FAILED
