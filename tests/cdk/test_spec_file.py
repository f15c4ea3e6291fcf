"""topics.yaml loading/validation and its generated JSON Schema."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.cdk.conftest import REPO_ROOT
from topic_sync.exceptions import SpecError
from topic_sync.spec import ClusterType, parse_topics
from topic_sync.spec_file import json_schema, load

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
        "regenerate: python -m topic_sync.spec_file --write-schema topics.schema.json"
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
    env = {
        **os.environ,
        "CDK_CONTEXT_JSON": json.dumps({"topicsFile": str(path)}),
        "CDK_OUTDIR": str(tmp_path / "cdk.out"),
    }
    result = subprocess.run(
        [sys.executable, str(REPO_ROOT / "app.py")],
        cwd=REPO_ROOT,
        env=env,
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )
    assert result.returncode == 1
    assert str(path) in result.stderr
    for problem in lambda_error.value.problems:
        assert problem in result.stderr
    assert "Traceback" not in result.stderr
