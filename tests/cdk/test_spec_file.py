"""topics.yaml loading/validation and its generated JSON Schema."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import pytest

from tests.cdk.conftest import REPO_ROOT, run_app
from topic_sync.exceptions import SpecError
from topic_sync.spec import ClusterType, parse_topics
from topic_sync_tools.spec_file import MAX_SPEC_BYTES, json_schema, load

VALID = """\
defaults:
  partitions: 3
topics:
  - name: a
services:
  svc:
    produces: [a]
"""


def _write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "topics.yaml"
    path.write_text(text)
    return path


def test_the_repository_topics_yaml_is_valid() -> None:
    topics_file = load(REPO_ROOT / "topics.yaml")
    assert [t.name for t in topics_file.topics] == [
        "eeg.raw.data",
        "eeg.processed.data",
        "user.activity",
        "alerts.events",
        "analytics.triggers",
    ]
    assert {t.partitions for t in topics_file.topics} == {3}
    assert {s.name for s in topics_file.services} == {"gateway", "core-service", "eeg-service"}
    declared = {t.name for t in topics_file.topics}
    used = {name for s in topics_file.services for name in s.topics}
    assert used == declared  # every topic has a producer or consumer, none is undeclared


def test_topics_schema_json_is_generated_from_the_model() -> None:
    committed = json.loads((REPO_ROOT / "topics.schema.json").read_text())
    assert committed == json_schema(), (
        "regenerate: python -m topic_sync_tools.spec_file --write-schema topics.schema.json"
    )


def test_defaults_apply_and_topic_config_overrides_them(tmp_path: Path) -> None:
    text = VALID.replace("  partitions: 3\n", "  partitions: 3\n  config: {retention.ms: 1000}\n")
    text = text.replace(
        "  - name: a\n", "  - name: a\n    config: {retention.ms: 5}\n  - name: b\n"
    )
    topics = {t.name: t for t in load(_write(tmp_path, text)).topics}
    assert dict(topics["a"].config) == {"retention.ms": "5"}
    assert dict(topics["b"].config) == {"retention.ms": "1000"}
    assert topics["b"].partitions == 3


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (VALID + "extra: 1\n", "top level: unknown key(s) extra"),
        (
            VALID.replace("  - name: a\n", "  - name: a\n    partition: 3\n"),
            "unknown key(s) partition",
        ),
        (VALID.replace("produces: [a]", "produces: [nope]"), "topic 'nope' is not declared"),
        (VALID.replace("produces:", "writes:"), "services.svc: unknown key(s) writes"),
        (VALID.replace("  svc:", "  Bad_Name:"), "services.Bad_Name: service name must match"),
        (VALID + "topics: []\n", "duplicate key 'topics'"),
        (
            VALID.replace("  partitions: 3", "  partitions: 0"),
            "Partitions must be a positive integer",
        ),
        ("topics: [\n", "not valid YAML"),
    ],
)
def test_invalid_files_name_the_file_and_the_problem(
    tmp_path: Path, text: str, expected: str
) -> None:
    path = _write(tmp_path, text)
    with pytest.raises(SpecError) as error:
        load(path)
    assert str(path) in str(error.value)
    assert expected in str(error.value)


BAD_TOPICS = """\
topics:
  - name: eeg.raw.data
    partitions: 0
    config:
      segment.bytes: 1048576
services:
  gateway:
    produces: [eeg.raw.data]
"""


@pytest.mark.synth
def test_a_bad_topics_yaml_fails_synth_with_the_lambdas_message(tmp_path: Path) -> None:
    path = _write(tmp_path, BAD_TOPICS)
    # What the Lambda would say about the same topic, as CloudFormation would deliver it.
    with pytest.raises(SpecError) as lambda_error:
        parse_topics(
            [{"Name": "eeg.raw.data", "Partitions": "0", "Config": {"segment.bytes": "1048576"}}],
            ClusterType.SERVERLESS,
        )
    result = run_app(tmp_path, topicsFile=str(path))
    assert result.returncode == 1
    assert str(path) in result.stderr
    for problem in lambda_error.value.problems:
        assert problem in result.stderr
    assert "Traceback" not in result.stderr


# ---- issue 9: hostile files are refused by name, fast, in one bounded line ---------------------

ALIAS_BOMB = "a0: &a0 [x, x, x, x, x, x, x, x, x, x]\n" + "".join(
    f"a{i}: &a{i} [*a{i - 1}, *a{i - 1}, *a{i - 1}, *a{i - 1}, *a{i - 1}, *a{i - 1}]\n"
    for i in range(1, 9)
)


def _refusal(path: Path) -> str:
    """The one line load() refuses ``path`` with; bounded, naming the file."""
    started = time.monotonic()
    with pytest.raises(SpecError) as error:
        load(path)
    message = str(error.value)
    assert time.monotonic() - started < 5
    assert str(path) in message
    assert "\n" not in message
    assert len(message) < 600
    return message


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (ALIAS_BOMB + "topics:\n  - name: a\n    partitions: *a8\n", "aliases (*name) are not"),
        ("x: &p 3\ntopics:\n  - name: a\n    partitions: *p\n", "aliases (*name) are not"),
        ("topics: " + "[" * 5000 + "]" * 5000 + "\n", "nested deeper than 32 levels"),
        ("? [a, b]\n: c\n", "mapping keys must be plain names"),
        ("topics:\n  - name: a\n    partitions: !!int 0x10\n", "explicit tags"),
        ("topics:\n  - name: a\n    partitions: !!python/object:os.system x\n", "explicit tags"),
        ("topics: [\n", "not valid YAML at line 2, column 1"),
        ("topics:\n  - name: a\n    partitions: 3\n\tbad: 1\n", "not valid YAML at line 4"),
    ],
)
def test_hostile_yaml_is_refused_without_expanding_it(
    tmp_path: Path, text: str, expected: str
) -> None:
    message = _refusal(_write(tmp_path, text))
    assert expected in message
    assert "x, x" not in message
    assert "['x'" not in message


@pytest.mark.parametrize(
    ("written", "shown"),
    [
        ("010", "'010'"),
        ("0x10", "'0x10'"),
        ("0o10", "'0o10'"),
        ("1_000", "'1_000'"),
        ("+5", "'+5'"),
        ("3.0", "'3.0'"),
        ("3e2", "'3e2'"),
        ("\uff13", "'\uff13'"),
        ("'3 '", "'3 '"),
        ("yes", "'yes'"),
        ("true", "True"),
        ("0:30", "'0:30'"),
    ],
)
def test_numbers_are_read_as_written_or_refused(tmp_path: Path, written: str, shown: str) -> None:
    path = _write(tmp_path, f"topics:\n  - name: a\n    partitions: {written}\n")
    assert f"topic 'a': Partitions must be a positive integer, got {shown}" in _refusal(path)


def test_scalars_are_read_as_written(tmp_path: Path) -> None:
    path = _write(
        tmp_path,
        "topics:\n  - name: a\n    partitions: 3\n    config:\n"
        "      retention.ms: -1\n      min.cleanable.dirty.ratio: 0.50\n"
        "      segment.ms: 2001-12-14\n",
    )
    with pytest.raises(SpecError, match=r"segment\.ms='2001-12-14' must be an integer"):
        load(path, cluster_type=ClusterType.PROVISIONED)
    path.write_text(path.read_text().replace("      segment.ms: 2001-12-14\n", ""))
    (topic,) = load(path, cluster_type=ClusterType.PROVISIONED).topics
    assert dict(topic.config) == {"retention.ms": "-1", "min.cleanable.dirty.ratio": "0.50"}


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("defaults:\n  config: [1]\ntopics:\n  - name: a\n    partitions: 1\n", "defaults.config:"),
        ("defaults:\n  config: x\ntopics:\n  - name: a\n    partitions: 1\n", "defaults.config:"),
        ("defaults: [1]\ntopics:\n  - name: a\n    partitions: 1\n", "defaults: must be a map"),
        ("topics:\n  - name: a\n    partitions: 1\n    config: []\n", "Config must be a map"),
        ("topics:\n  - name: a\n    partitions: 1\n    config: [1]\n", "Config must be a map"),
    ],
)
def test_non_map_configs_are_refused_not_ignored(tmp_path: Path, text: str, expected: str) -> None:
    assert expected in _refusal(_write(tmp_path, text))


def test_binary_and_latin1_files_are_refused_by_name(tmp_path: Path) -> None:
    binary = tmp_path / "binary.yaml"
    binary.write_bytes(bytes(range(256)) * 4)
    assert "is not UTF-8 text (byte 0x80 at offset 128)" in _refusal(binary)
    nul = tmp_path / "nul.yaml"
    nul.write_bytes(b"topics:\x00\x01\n")
    assert "not valid YAML" in _refusal(nul)
    latin1 = tmp_path / "latin1.yaml"
    latin1.write_bytes("topics:\n  - name: caf\u00e9\n".encode("latin-1"))
    assert "is not UTF-8 text (byte 0xe9" in _refusal(latin1)


def test_files_over_the_size_cap_are_refused_before_reading(tmp_path: Path) -> None:
    big = tmp_path / "big.yaml"
    with big.open("wb") as file:
        file.truncate(MAX_SPEC_BYTES + 1)  # sparse: the cap must hold without reading it
    assert f"a topics file may have at most {MAX_SPEC_BYTES}" in _refusal(big)


def test_non_regular_files_are_refused_without_blocking(tmp_path: Path) -> None:
    fifo = tmp_path / "fifo.yaml"
    os.mkfifo(fifo)  # no writer: opening it for reading the blocking way would never return
    assert "is not a regular file" in _refusal(fifo)
    assert "is not a regular file" in _refusal(tmp_path)
    assert "is not a regular file" in _refusal(Path("/dev/zero"))


def test_a_huge_value_is_not_echoed(tmp_path: Path) -> None:
    path = _write(tmp_path, f"topics:\n  - name: a\n    partitions: '{'7' * 1_000_000}'\n")
    assert "Partitions must be a positive integer, got '777" in _refusal(path)


def test_the_serverless_quota_is_checked_on_load(tmp_path: Path) -> None:
    path = write_topics(tmp_path, 3, partitions=1000)
    assert "the topics declare 3000 partitions; MSK Serverless allows at most 2400" in (
        _refusal(path)
    )
    assert len(load(path, cluster_type=ClusterType.PROVISIONED).topics) == 3


def write_topics(tmp_path: Path, count: int, *, partitions: int) -> Path:
    lines = [f"  - name: t{i}\n    partitions: {partitions}\n" for i in range(count)]
    return _write(tmp_path, "topics:\n" + "".join(lines))


@pytest.mark.parametrize(
    "topic",
    [
        {"name": "__consumer_offsets", "partitions": 1},
        {"name": "a", "partitions": 2401},
        {"name": "a", "partitions": "010"},
    ],
)
def test_the_schema_flags_what_validation_refuses(topic: dict[str, object]) -> None:
    import jsonschema  # type: ignore[import-untyped]

    validator = jsonschema.Draft202012Validator(json_schema())
    assert validator.is_valid({"topics": [{"name": "a", "partitions": 2400}]})
    assert not validator.is_valid({"topics": [topic]})
