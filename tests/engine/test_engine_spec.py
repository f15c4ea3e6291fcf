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
    PROVISIONED_MAX_PARTITIONS,
    SERVERLESS_ALLOWED_CONFIGS,
    SERVERLESS_MAX_PARTITIONS,
    ClusterType,
    TopicSpec,
    max_partitions,
    parse_bool,
    parse_cluster_type,
    parse_int,
    parse_topics,
    serverless_quota_problems,
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


# ---- issue 9: bad input is refused, one bounded line, nothing touched -------------------------


@pytest.mark.parametrize(
    "name", ["__consumer_offsets", "__transaction_state", "__amazon_msk_canary", "__x"]
)
def test_internal_topic_names_are_refused(name: str) -> None:
    (problem,) = problems_of([{"Name": name, "Partitions": 4}])
    assert f"topic '{name}': name starts with '__'" in problem
    assert "internal topics" in problem


def test_a_single_underscore_is_still_a_legal_name() -> None:
    assert parse_topics([{"Name": "_schemas", "Partitions": 1}], SERVERLESS)[0].name == "_schemas"


@pytest.mark.parametrize(
    ("cluster_type", "limit"),
    [(SERVERLESS, SERVERLESS_MAX_PARTITIONS), (PROVISIONED, PROVISIONED_MAX_PARTITIONS)],
)
def test_partitions_have_an_upper_bound(cluster_type: ClusterType, limit: int) -> None:
    assert max_partitions(cluster_type) == limit
    assert parse_topics([{"Name": "a", "Partitions": limit}], cluster_type)[0].partitions == limit
    for too_many in (limit + 1, "1000000000", 10**30):
        (problem,) = problems_of([{"Name": "a", "Partitions": too_many}], cluster_type)
        assert "topic 'a': Partitions" in problem
        assert str(limit) in problem or "positive integer" in problem


def test_replication_factor_has_an_upper_bound() -> None:
    (problem,) = problems_of(
        [{"Name": "a", "Partitions": 1, "ReplicationFactor": "40000"}], PROVISIONED
    )
    assert problem == "topic 'a': ReplicationFactor must be an integer 1..32767, got '40000'"


@pytest.mark.parametrize(
    "text", ["010", "0x10", "1_000", "\uff13", "+5", " 5", "5 ", "3.0", "1e3", "", "-", "٣"]
)
def test_numbers_are_plain_ascii_decimal_or_refused(text: str) -> None:
    assert parse_int(text) is None
    (problem,) = problems_of([{"Name": "a", "Partitions": text}])
    assert problem == (
        f"topic 'a': Partitions must be a positive integer, got {text!r} "
        "(plain decimal digits only)"
    )


@pytest.mark.parametrize(("value", "number"), [("5", 5), (5, 5), ("-1", -1), ("0", 0)])
def test_plain_decimal_numbers_are_read_as_written(value: Any, number: int) -> None:
    assert parse_int(value) == number


@pytest.mark.parametrize(
    ("config", "fragment"),
    [
        ({"retention.ms": " 100 "}, "config retention.ms=' 100 ' must not have surrounding"),
        ({"retention.ms": "100\n"}, "config retention.ms='100\\n' must not have surrounding"),
        ({"retention.ms": "0100"}, "config retention.ms='0100' must be an integer in plain"),
        ({"retention.ms": "+100"}, "config retention.ms='+100' must be an integer in plain"),
        ({"retention.ms": "1_000"}, "config retention.ms='1_000' must be an integer in plain"),
        ({"retention.ms": 10**40}, "config retention.ms=10000000000000000000000000000000000"),
        ({"retention.ms": 10**400}, "config retention.ms=<int> is out of range"),
        ({"compression.type": " zstd"}, "config compression.type=' zstd' must be one of"),
        ({"retention.ms": [1]}, "config retention.ms must be a string or a number, got <list"),
        ({"retention.ms": None}, "config retention.ms must be a string or a number, got None"),
        ({"retention.ms": 1.5}, "config retention.ms must be a string or a number, got 1.5"),
    ],
)
def test_config_values_that_would_never_converge_are_refused(
    config: dict[str, Any], fragment: str
) -> None:
    (problem,) = problems_of([{"Name": "a", "Partitions": 1, "Config": config}])
    assert problem.startswith("topic 'a': "), problem
    assert fragment in problem


def test_boolean_configs_are_true_or_false_as_kafka_prints_them() -> None:
    (topic,) = parse_topics(
        [{"Name": "a", "Partitions": 1, "Config": {"preallocate": True}}], PROVISIONED
    )
    assert topic.config["preallocate"] == "true"
    (problem,) = problems_of(
        [{"Name": "a", "Partitions": 1, "Config": {"preallocate": "True"}}], PROVISIONED
    )
    assert problem == "topic 'a': config preallocate='True' must be true or false"


def test_a_huge_value_is_never_echoed_whole() -> None:
    huge = "9" * 10_000_000
    (problem,) = problems_of([{"Name": "a", "Partitions": 1, "Config": {"retention.ms": huge}}])
    assert len(problem) < 200
    (problem,) = problems_of([{"Name": "a", "Partitions": huge}])
    assert len(problem) < 200
    assert len(str(SpecError(["x" * 1_000_000]))) < 500


def test_a_spec_error_lists_a_bounded_number_of_problems() -> None:
    raw = [{"Name": f"bad name {i}!", "Partitions": 1} for i in range(1000)]
    with pytest.raises(SpecError) as info:
        parse_topics(raw, SERVERLESS)
    assert len(info.value.problems) == 1000  # every problem is kept for callers
    assert str(info.value).endswith("(+990 more)")
    assert len(str(info.value)) < 5000


def test_serverless_partition_quota_is_checked_by_the_engine() -> None:
    raw = [{"Name": f"t{i}", "Partitions": 1} for i in range(SERVERLESS_MAX_PARTITIONS + 600)]
    assert problems_of(raw) == [
        "Topics: the topics declare 3000 partitions; MSK Serverless allows at most 2400 per cluster"
    ]
    assert len(parse_topics(raw, PROVISIONED)) == 3000
    compacted = [
        {"Name": f"c{i}", "Partitions": 61, "Config": {"cleanup.policy": "compact"}}
        for i in range(2)
    ]
    assert "at most 120 compacted partitions" in problems_of(compacted)[0]
    assert serverless_quota_problems(()) == []


def test_a_non_list_topics_value_is_named_with_its_clipped_value() -> None:
    assert problems_of("x" * 1000) == [f"Topics: must be a list of topics, got '{'x' * 76}..."]
