"""`-c stage=...`: one topics.yaml, one stack per stage, each with its own values."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.cdk.test_existing_cluster import EXISTING, of_type, synth
from topic_sync.exceptions import SpecError


def _partitions(template: dict[str, Any]) -> dict[str, str]:
    (resource,) = of_type(template, "Custom::KafkaTopics").values()
    return {topic["Name"]: topic["Partitions"] for topic in resource["Properties"]["Topics"]}


def _services(template: dict[str, Any]) -> set[str]:
    return {s["Properties"]["ServiceName"] for s in of_type(template, "AWS::ECS::Service").values()}


@pytest.mark.synth
def test_staging_and_prod_synthesize_as_their_own_stacks_with_their_own_values(
    tmp_path: Path,
) -> None:
    staging_manifest, staging = synth(
        tmp_path / "staging", stage="staging", allowPlaceholderImages="true"
    )
    prod_manifest, prod = synth(tmp_path / "prod", stage="prod", allowPlaceholderImages="true")
    assert "TopicSync-staging" in staging_manifest["artifacts"]
    assert "TopicSync-prod" in prod_manifest["artifacts"]
    assert _partitions(staging)["eeg.raw.data"] == "2"
    assert _partitions(staging)["user.activity"] == "1"
    assert _partitions(prod)["eeg.raw.data"] == "12"
    assert _partitions(prod)["user.activity"] == "6"
    # core-service runs in prod only (topics.yaml: stages.staging.services).
    assert _services(staging) == {"gateway", "eeg-service"}
    assert _services(prod) == {"gateway", "eeg-service", "core-service"}
    (cluster,) = of_type(staging, "AWS::MSK::ServerlessCluster").values()
    assert cluster["Properties"]["ClusterName"] == "TopicSync-staging"


@pytest.mark.synth
def test_a_stage_on_an_existing_cluster_names_the_stack_after_the_stage(tmp_path: Path) -> None:
    manifest, template = synth(tmp_path, stage="prod", **EXISTING)
    assert manifest["artifacts"]["TopicSync-prod"]["environment"] == (
        "aws://111122223333/eu-west-1"
    )
    assert _partitions(template)["eeg.raw.data"] == "12"
    assert not of_type(template, "AWS::ECS::Service")


def test_an_undeclared_stage_fails_the_synth_naming_it(tmp_path: Path) -> None:
    with pytest.raises(SpecError, match=r"stage 'qa' is not declared \(stages: staging, prod\)"):
        synth(tmp_path, stage="qa")
