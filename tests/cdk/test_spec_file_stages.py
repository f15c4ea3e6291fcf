"""Per-stage overrides in topics.yaml (issue 12): one file, several environments."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.cdk.conftest import REPO_ROOT
from topic_sync.exceptions import SpecError
from topic_sync.spec import ClusterType
from topic_sync_tools.spec_file import MAX_STAGES, json_schema, load, main, parse

TOPICS_YAML = REPO_ROOT / "topics.yaml"

BASE = """\
defaults:
  partitions: 3
  config: {retention.ms: 1000, compression.type: zstd}
topics:
  - name: a
  - name: b
    partitions: 5
    config: {retention.ms: 2000}
services:
  writer:
    produces: [a, b]
  reader:
    consumes: [a]
"""


def _document(stages: Any) -> dict[str, Any]:
    document: dict[str, Any] = yaml.safe_load(BASE)
    document["stages"] = stages
    return document


def _parse(stages: Any, **kwargs: Any) -> Any:
    return parse(_document(stages), source="topics.yaml", **kwargs)


def _problems(stages: Any, **kwargs: Any) -> str:
    with pytest.raises(SpecError) as error:
        _parse(stages, **kwargs)
    return str(error.value)


def _by_name(topics_file: Any) -> dict[str, Any]:
    return {topic.name: topic for topic in topics_file.topics}


# ---- the repository's topics.yaml ---------------------------------------------------------------


def test_repository_base_values_are_unchanged_by_its_stages() -> None:
    base = load(TOPICS_YAML)
    assert base.stage is None
    assert base.stages == ("staging", "prod")
    assert {t.partitions for t in base.topics} == {3}
    assert dict(_by_name(base)["eeg.raw.data"].config)["retention.ms"] == "86400000"
    assert dict(_by_name(base)["alerts.events"].config)["retention.ms"] == "2592000000"
    assert [s.name for s in base.services] == ["gateway", "eeg-service", "core-service"]


def test_repository_staging_has_fewer_partitions_shorter_raw_retention_and_fewer_services() -> None:
    base, staging = load(TOPICS_YAML), load(TOPICS_YAML, stage="staging")
    assert staging.stage == "staging"
    assert staging.stages == ("staging", "prod")
    topics = _by_name(staging)
    assert topics["eeg.raw.data"].partitions == 2
    assert {t.partitions for name, t in topics.items() if name != "eeg.raw.data"} == {1}
    raw_config = dict(topics["eeg.raw.data"].config)
    assert raw_config["retention.ms"] == "21600000"
    # Only the overridden key changes; the topic's other configs stay.
    assert raw_config["compression.type"] == "zstd"
    assert raw_config["max.message.bytes"] == "2097152"
    assert [t.name for t in staging.topics] == [t.name for t in base.topics]
    assert "gateway" in [s.name for s in staging.services]
    assert staging.service("gateway") == base.service("gateway")


def test_repository_prod_has_more_partitions_and_longer_alert_retention() -> None:
    prod = load(TOPICS_YAML, stage="prod")
    topics = _by_name(prod)
    assert topics["eeg.raw.data"].partitions == 12
    assert all(t.partitions > 3 for t in prod.topics)
    assert dict(topics["alerts.events"].config)["retention.ms"] == "7776000000"
    assert dict(topics["eeg.raw.data"].config)["retention.ms"] == "86400000"
    assert [s.name for s in prod.services] == ["gateway", "eeg-service", "core-service"]


def test_every_repository_stage_is_valid_on_provisioned_too() -> None:
    for stage in (None, "staging", "prod"):
        assert load(TOPICS_YAML, stage=stage, cluster_type=ClusterType.PROVISIONED).topics


# ---- precedence ---------------------------------------------------------------------------------


def test_precedence_stage_topic_then_topic_then_stage_defaults_then_defaults() -> None:
    stages = {
        "s": {
            "defaults": {"partitions": 1, "config": {"retention.ms": 10, "retention.bytes": 7}},
            "topics": {"b": {"config": {"compression.type": "lz4"}}},
        }
    }
    topics = _by_name(_parse(stages, stage="s"))
    # a sets nothing itself: stage defaults win over file defaults, key by key.
    assert topics["a"].partitions == 1
    assert dict(topics["a"].config) == {
        "retention.ms": "10",
        "retention.bytes": "7",
        "compression.type": "zstd",
    }
    # b pins partitions and retention.ms itself: stage defaults do not reach them; the stage's
    # own override of b wins over b's values.
    assert topics["b"].partitions == 5
    assert dict(topics["b"].config) == {
        "retention.ms": "2000",
        "retention.bytes": "7",
        "compression.type": "lz4",
    }


def test_a_stage_topic_override_wins_over_the_topics_own_values() -> None:
    stages = {"s": {"topics": {"b": {"partitions": 9, "config": {"retention.ms": 3}}}}}
    b = _by_name(_parse(stages, stage="s"))["b"]
    assert b.partitions == 9
    assert dict(b.config) == {"retention.ms": "3", "compression.type": "zstd"}


def test_no_stage_means_the_base_values() -> None:
    stages = {"s": {"defaults": {"partitions": 1}, "topics": {"b": {"partitions": 9}}}}
    base = _parse(stages)
    assert base.stage is None
    assert base.stages == ("s",)
    assert {t.name: t.partitions for t in base.topics} == {"a": 3, "b": 5}
    assert [s.name for s in base.services] == ["writer", "reader"]


def test_an_empty_stage_is_the_base_values() -> None:
    staged, base = _parse({"s": None}, stage="s"), _parse({"s": None})
    assert staged.topics == base.topics
    assert staged.services == base.services


def test_stages_are_listed_in_file_order() -> None:
    assert _parse({"zeta": {}, "alpha": {}, "mid-1": {}}).stages == ("zeta", "alpha", "mid-1")


# ---- services -----------------------------------------------------------------------------------


def test_a_stage_deploys_only_its_services_with_their_top_level_topics() -> None:
    staged = _parse({"s": {"services": ["reader"]}}, stage="s")
    assert [s.name for s in staged.services] == ["reader"]
    assert staged.service("reader").consumes == ("a",)
    assert _parse({"s": {"services": []}}, stage="s").services == ()


def test_services_keep_the_files_order_not_the_stages() -> None:
    staged = _parse({"s": {"services": ["reader", "writer"]}}, stage="s")
    assert [s.name for s in staged.services] == ["writer", "reader"]


@pytest.mark.parametrize(
    ("services", "expected"),
    [
        (["writer", "nope"], "stages.s.services: service 'nope' is not declared in services"),
        (["writer", "writer"], "stages.s.services: service 'writer' is listed twice"),
        ("writer", "stages.s.services: must be a list of service names"),
        ([1], "stages.s.services: must be a list of service names"),
    ],
)
def test_bad_stage_services_are_refused(services: Any, expected: str) -> None:
    assert expected in _problems({"s": {"services": services}})


# ---- which stage --------------------------------------------------------------------------------


def test_an_undeclared_stage_is_refused_naming_the_declared_ones() -> None:
    message = _problems({"staging": {}, "prod": {}}, stage="qa")
    assert "topics.yaml: stage 'qa' is not declared (stages: staging, prod)" in message


def test_a_stage_from_a_file_without_stages_is_refused() -> None:
    document: dict[str, Any] = yaml.safe_load(BASE)
    with pytest.raises(
        SpecError, match=r"stage 'qa' is not declared \(the file declares no stages\)"
    ):
        parse(document, source="topics.yaml", stage="qa")
    assert parse(document, source="topics.yaml").stages == ()


# ---- shape of the overrides ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("stages", "expected"),
    [
        (
            {"s": {"topics": {"c": {"partitions": 1}}}},
            "stages.s.topics.c: topic is not declared in topics (a stage cannot add topics)",
        ),
        ({"s": {"topic": {}}}, "stages.s: unknown key(s) topic (allowed: defaults, topics"),
        ({"s": {"defaults": {"retention.ms": 1}}}, "stages.s.defaults: unknown key(s) retention"),
        ({"s": {"topics": {"a": {"name": "x"}}}}, "stages.s.topics.a: unknown key(s) name"),
        ({"s": {"topics": {"a": 3}}}, "stages.s.topics.a: must be a map of partitions"),
        ({"s": {"topics": {"a": {"config": [1]}}}}, "stages.s.topics.a.config: must be a map"),
        ({"s": {"defaults": {"config": "x"}}}, "stages.s.defaults.config: must be a map"),
        ({"s": {"topics": [1]}}, "stages.s.topics: must be a map of topic name to overrides"),
        ({"s": [1]}, "stages.s: must be a map of defaults, topics, services"),
        (["s"], "stages: must be a map of stage name to overrides"),
        ({"Staging": {}}, "stages.Staging: stage name must match ^[a-z][a-z0-9-]{0,23}$"),
        ({"s.1": {}}, "stages.s.1: stage name must match"),
        ({"a" * 25: {}}, f"stages.{'a' * 25}: stage name must match"),
        ({1: {}}, "stages.1: stage name must match"),
        (
            {f"s{i}": {} for i in range(MAX_STAGES + 1)},
            f"stages: at most {MAX_STAGES} stages, got {MAX_STAGES + 1}",
        ),
    ],
)
def test_bad_overrides_are_refused_by_their_key_path(stages: Any, expected: str) -> None:
    message = _problems(stages)
    assert message.startswith("invalid topic spec: topics.yaml: ")
    assert expected in message


def test_all_problems_of_all_stages_come_in_one_error() -> None:
    message = _problems(
        {
            "staging": {"topics": {"c": {}}},
            "prod": {"services": ["nope"], "defaults": {"partitions": 0}},
        },
        stage="staging",
    )
    assert "stages.staging.topics.c: topic is not declared" in message
    assert "stages.prod.services: service 'nope' is not declared" in message
    assert "stages.prod: topic 'a': Partitions must be a positive integer, got '0'" in message


# ---- every stage is validated, whichever is picked ----------------------------------------------


def test_a_broken_override_in_a_stage_not_picked_still_fails() -> None:
    stages = {"staging": {}, "prod": {"topics": {"a": {"config": {"retention.ms": "soon"}}}}}
    for picked in ("staging", None):
        message = _problems(stages, stage=picked)
        assert "stages.prod: topic 'a': config retention.ms='soon' must be an integer" in message
        assert "staging" not in message


def test_a_base_problem_is_reported_once_not_once_per_stage() -> None:
    document = _document({"staging": {}, "prod": {}})
    document["topics"][0]["partitions"] = 0
    with pytest.raises(SpecError) as error:
        parse(document, source="topics.yaml")
    (problem,) = error.value.problems
    assert problem.startswith("topics.yaml: topic 'a': Partitions must be a positive integer")


def test_a_stage_may_have_fewer_partitions_than_another_stage() -> None:
    stages = {
        "prod": {"topics": {"b": {"partitions": 50}}},
        "staging": {"defaults": {"partitions": 1}, "topics": {"b": {"partitions": 1}}},
    }
    assert _by_name(_parse(stages, stage="staging"))["b"].partitions == 1
    assert _by_name(_parse(stages, stage="prod"))["b"].partitions == 50


def test_the_serverless_quota_applies_to_each_stage() -> None:
    stages = {"staging": {}, "prod": {"topics": {"a": {"partitions": 3000}}}}
    message = _problems(stages, stage="staging")
    assert "stages.prod: topic 'a': Partitions 3000 exceeds the maximum of 2400 per topic" in (
        message
    )
    total: dict[str, dict[str, Any]] = {
        "prod": {"defaults": {"partitions": 1300}}
    }  # 1300 (a) + 5 (b, pinned) is fine
    assert _parse(total, stage="prod")
    total["prod"]["topics"] = {"b": {"partitions": 1200}}
    assert "stages.prod: Topics: the topics declare 2500 partitions; MSK Serverless allows" in (
        _problems(total)
    )
    assert _parse(total, stage="prod", cluster_type=ClusterType.PROVISIONED)


def test_provisioned_stages_may_set_replication_factor_and_any_kafka_config() -> None:
    stages = {
        "prod": {
            "defaults": {"replication_factor": 3, "config": {"min.insync.replicas": 2}},
            "topics": {"b": {"replication_factor": 2, "config": {"segment.bytes": 1048576}}},
        }
    }
    message = _problems(stages)
    assert "stages.prod: topic 'a': ReplicationFactor cannot be set on MSK Serverless" in message
    assert "stages.prod: topic 'b': config min.insync.replicas is not allowed on MSK" in message
    prod = _by_name(_parse(stages, stage="prod", cluster_type=ClusterType.PROVISIONED))
    assert prod["a"].replication_factor == 3
    assert prod["b"].replication_factor == 2
    assert dict(prod["b"].config)["min.insync.replicas"] == "2"
    assert dict(prod["b"].config)["segment.bytes"] == "1048576"
    base = _parse(stages, cluster_type=ClusterType.PROVISIONED)
    assert {t.replication_factor for t in base.topics} == {None}


def test_a_stage_declaring_its_cluster_type_is_checked_by_that_types_rules() -> None:
    """One file for a Serverless staging and a Provisioned prod: each stage is validated by its
    own cluster's rules, whichever stage the synth picks."""
    stages = {
        "staging": {"cluster_type": "serverless", "defaults": {"partitions": 1}},
        "prod": {
            "cluster_type": "provisioned",
            "defaults": {"replication_factor": 3, "config": {"min.insync.replicas": 2}},
        },
    }
    staging = _parse(stages, stage="staging")  # the Serverless synth accepts prod's values
    assert {t.partitions for t in staging.topics} == {1, 5}
    prod = _by_name(_parse(stages, stage="prod", cluster_type=ClusterType.PROVISIONED))
    assert prod["a"].replication_factor == 3
    # Picking a stage for a cluster of the other type is refused, naming the key.
    message = _problems(stages, stage="prod")
    assert "stages.prod.cluster_type: provisioned, but the cluster is serverless" in message
    # A Serverless stage still refuses Provisioned-only values, whichever stage is picked.
    stages["staging"]["defaults"] = {"replication_factor": 3}
    message = _problems(stages, stage="prod", cluster_type=ClusterType.PROVISIONED)
    assert "stages.staging: topic 'a': ReplicationFactor cannot be set on MSK Serverless" in message


def test_a_bad_stage_cluster_type_is_refused_by_name() -> None:
    message = _problems({"prod": {"cluster_type": "dedicated"}})
    assert "stages.prod.cluster_type: serverless or provisioned, got 'dedicated'" in message


# ---- load(), the CLI and the schema -------------------------------------------------------------


def test_load_applies_the_stage(tmp_path: Path) -> None:
    path = tmp_path / "topics.yaml"
    path.write_text(BASE + "stages:\n  s:\n    defaults: {partitions: 2}\n")
    assert _by_name(load(path, stage="s"))["a"].partitions == 2
    with pytest.raises(SpecError, match=rf"{path}: stage 'x' is not declared \(stages: s\)"):
        load(path, stage="x")


def test_check_prints_the_stage(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--check", str(TOPICS_YAML), "--stage", "staging"]) == 0
    out = capsys.readouterr().out
    assert "(stage staging): 5 topics, 6 partitions, 2 services; stages: staging, prod" in out
    assert main(["--check", str(TOPICS_YAML)]) == 0
    assert "(base values): 5 topics, 15 partitions, 3 services" in capsys.readouterr().out
    assert main(["--check", str(TOPICS_YAML), "--stage", "qa"]) == 1
    assert "stage 'qa' is not declared (stages: staging, prod)" in capsys.readouterr().err


def test_the_schema_describes_stages() -> None:
    import jsonschema  # type: ignore[import-untyped]

    validator = jsonschema.Draft202012Validator(json_schema())
    document = yaml.safe_load(TOPICS_YAML.read_text())
    assert validator.is_valid(document)
    assert not validator.is_valid({**document, "stages": {"Bad": {}}})
    assert not validator.is_valid({**document, "stages": {"s": {"topic": {}}}})
    assert not validator.is_valid({**document, "stages": {"s": {"topics": {"a": {"x": 1}}}}})
    assert not validator.is_valid({**document, "stages": {"s": {"defaults": {"name": "a"}}}})
    assert not validator.is_valid({**document, "stages": {"s": {"services": ["A"]}}})
    assert not validator.is_valid(
        {**document, "stages": {"s": {"topics": {"a": {"partitions": 3000}}}}}
    )
    stages = json_schema()["properties"]["stages"]
    assert "highest first" in stages["description"]
    assert set(stages["additionalProperties"]["properties"]) == {
        "defaults",
        "topics",
        "services",
        "cluster_type",
    }
    assert not validator.is_valid({**document, "stages": {"s": {"cluster_type": "big"}}})
