"""Spec validation: every problem reported at once, nothing heavy imported."""

from __future__ import annotations

import subprocess
import sys
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from topic_sync.exceptions import SpecError
from topic_sync.spec import (
    KNOWN_TOPIC_CONFIGS,
    SERVERLESS_ALLOWED_CONFIGS,
    ClusterType,
    TopicSpec,
    parse_bool,
    parse_cluster_type,
    parse_topics,
)

SERVERLESS = ClusterType.SERVERLESS
PROVISIONED = ClusterType.PROVISIONED


def problems_of(raw: Any, cluster_type: ClusterType = SERVERLESS) -> list[str]:
    with pytest.raises(SpecError) as info:
        parse_topics(raw, cluster_type)
    return info.value.problems


def test_accepts_cloudformation_strings() -> None:
    topics = parse_topics(
        [{"Name": "orders", "Partitions": "3", "Config": {"retention.ms": "1000"}}], SERVERLESS
    )
    assert topics == (TopicSpec("orders", 3, None, {"retention.ms": "1000"}),)


def test_accepts_numbers_and_provisioned_replication_factor() -> None:
    (topic,) = parse_topics(
        [{"Name": "a", "Partitions": 2, "ReplicationFactor": "3", "Config": {"retention.ms": 5}}],
        PROVISIONED,
    )
    assert (topic.partitions, topic.replication_factor, dict(topic.config)) == (
        2,
        3,
        {"retention.ms": "5"},
    )


def test_spec_is_immutable() -> None:
    (topic,) = parse_topics([{"Name": "a", "Partitions": 1}], SERVERLESS)
    with pytest.raises(TypeError):
        topic.config["retention.ms"] = "1"  # type: ignore[index]
    assert hash(topic) == hash(TopicSpec("a", 1))


def test_every_problem_is_reported_with_its_topic() -> None:
    problems = problems_of(
        [
            {"Name": "bad name!", "Partitions": 1},
            {"Name": "..", "Partitions": 1},
            {"Name": "x" * 250, "Partitions": 1},
            {"Name": "dup", "Partitions": 1},
            {"Name": "dup", "Partitions": 1},
            {"Name": "a.b", "Partitions": 1},
            {"Name": "a_b", "Partitions": 1},
            {"Name": "zero", "Partitions": 0},
            {"Name": "text", "Partitions": "three"},
            {"Name": "typo", "Partitions": 1, "Config": {"retention.msec": "1"}},
            {"Name": "serverless", "Partitions": 1, "Config": {"segment.bytes": "1024"}},
            {"Name": "big", "Partitions": 1, "Config": {"max.message.bytes": "8388609"}},
            {"Name": "rf", "Partitions": 1, "ReplicationFactor": 3},
            {"Name": "enum", "Partitions": 1, "Config": {"cleanup.policy": "compacted"}},
        ]
    )
    expected = [
        "'bad name!': name may contain only",
        "'..': name is not allowed",
        "name is 250 characters long",
        "'dup': duplicate name",
        "'a_b': collides with topic 'a.b'",
        "'zero': Partitions must be a positive integer, got 0",
        "'text': Partitions must be a positive integer, got 'three'",
        "'typo': unknown topic config 'retention.msec'",
        "'serverless': config segment.bytes is not allowed on MSK Serverless",
        "'big': config max.message.bytes=8388609 exceeds the MSK Serverless maximum 8388608",
        "'rf': ReplicationFactor cannot be set on MSK Serverless",
        "'enum': config cleanup.policy='compacted' must be one of",
    ]
    for fragment in expected:
        assert any(fragment in p for p in problems), (fragment, problems)
    assert len(problems) == len(expected)


def test_max_message_bytes_limit_is_serverless_only() -> None:
    raw = [{"Name": "a", "Partitions": 1, "Config": {"max.message.bytes": "10000000"}}]
    assert parse_topics(raw, PROVISIONED)[0].config["max.message.bytes"] == "10000000"
    parse_topics(
        [{"Name": "a", "Partitions": 1, "Config": {"max.message.bytes": "8388608"}}], SERVERLESS
    )


@pytest.mark.parametrize(
    "raw",
    ["not a list", [1], [{"Partitions": 1}], [{"Name": "a", "Partitions": 1, "Config": "x=y"}]],
)
def test_malformed_input_is_a_spec_error(raw: Any) -> None:
    assert problems_of(raw)


def test_parse_bool_and_cluster_type() -> None:
    assert parse_bool("true", default=False) is True
    assert parse_bool("FALSE", default=True) is False
    assert parse_bool(None, default=True) is True
    assert parse_bool("yes", default=False) is None
    assert parse_cluster_type(None) is SERVERLESS
    assert parse_cluster_type("provisioned") is PROVISIONED
    with pytest.raises(SpecError, match="ClusterType"):
        parse_cluster_type("MANAGED")


def test_allow_list_is_subset_of_known_configs() -> None:
    assert SERVERLESS_ALLOWED_CONFIGS <= KNOWN_TOPIC_CONFIGS


def test_spec_module_imports_nothing_heavy() -> None:
    code = (
        "import sys, topic_sync.spec; "
        "bad = [m for m in ('confluent_kafka', 'boto3', 'botocore') if m in sys.modules]; "
        "print(','.join(bad))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout
    assert out.strip() == ""


json_leaf = st.one_of(
    st.none(), st.booleans(), st.integers(), st.floats(allow_nan=True), st.text(max_size=12)
)
json_value = st.recursive(
    json_leaf,
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3)
    ),
    max_leaves=10,
)
topic_like = st.fixed_dictionaries(
    {},
    optional={
        "Name": st.one_of(st.text(max_size=12), json_value),
        "Partitions": st.one_of(st.integers(-2, 5), st.text(max_size=3), json_value),
        "ReplicationFactor": st.one_of(st.integers(-1, 3), st.text(max_size=2), json_value),
        "Config": st.one_of(
            st.dictionaries(
                st.sampled_from(sorted(KNOWN_TOPIC_CONFIGS)) | st.text(max_size=10),
                st.text(max_size=10) | st.integers() | json_value,
                max_size=3,
            ),
            json_value,
        ),
    },
)


@given(raw=st.one_of(st.lists(topic_like | json_value, max_size=5), json_value))
def test_validation_never_raises_anything_but_spec_error(raw: Any) -> None:
    for cluster_type in ClusterType:
        try:
            topics = parse_topics(raw, cluster_type)
        except SpecError as error:
            problems = error.problems
        else:
            problems = ["ok"]
            assert len({t.name for t in topics}) == len(topics)
            assert all(t.partitions >= 1 for t in topics)
        assert problems
        assert all(isinstance(p, str) and p for p in problems)
