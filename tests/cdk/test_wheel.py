"""The construct as a library: `make dist` builds the wheel, a fresh venv installs it with the
CDK only, and examples/existing-cluster (an existing cluster, two stages) synthesizes from it
offline: no AWS credentials, no package index, nothing from this repository on the path."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path
from typing import Any

import pytest

from tests.cdk.conftest import REPO_ROOT, SynthesizedApp

EXAMPLE = REPO_ROOT / "examples" / "existing-cluster"
#: The distributions a `[cdk]` install may bring: the CDK's own dependency tree, pyyaml, us.
CDK_ONLY = {"topic-sync", "aws-cdk-lib", "constructs", "pyyaml"}
#: What must never come with the library: the Lambda's and the CLI's dependencies.
NOT_INSTALLED = {"confluent-kafka", "boto3", "botocore", "aws-lambda-powertools", "cdk-nag"}


def _pins(*names: str) -> list[str]:
    """This repo's exact pins for ``names`` (requirements.txt), so the test uses the same CDK."""
    pins = {}
    for line in (REPO_ROOT / "requirements.txt").read_text().splitlines():
        name, _, version = line.partition("==")
        if version:
            pins[name.strip()] = f"{name.strip()}=={version.strip()}"
    return [pins[name] for name in names]


def _run(args: list[str], **kwargs: Any) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(args, capture_output=True, text=True, check=False, **kwargs)
    assert result.returncode == 0, f"{args}:\n{result.stdout}\n{result.stderr}"
    return result


@pytest.fixture(scope="module")
def wheel() -> Path:
    _run(["make", "-s", "dist"], cwd=REPO_ROOT)
    (built,) = (REPO_ROOT / "dist").glob("topic_sync-*-py3-none-any.whl")
    return built


@pytest.fixture(scope="module")
def fresh_venv(wheel: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    venv = tmp_path_factory.mktemp("venv")
    _run([sys.executable, "-m", "venv", str(venv)])
    _run(
        [
            str(venv / "bin" / "python"),
            "-m",
            "pip",
            "install",
            "--quiet",
            "--disable-pip-version-check",
            "--no-compile",  # aws-cdk-lib is large; its bytecode is not what is tested
            f"{wheel}[cdk]",
            *_pins("aws-cdk-lib", "constructs"),
        ]
    )
    return venv


def test_the_wheel_ships_the_three_packages_and_nothing_of_the_app(wheel: Path) -> None:
    names = zipfile.ZipFile(wheel).namelist()
    top = {name.split("/")[0] for name in names if not name.startswith("topic_sync-")}
    assert top == {"topic_sync", "topic_sync_tools", "topic_sync_cdk"}
    assert "topic_sync_cdk/lambda-requirements.txt" in names
    assert "topic_sync/handler.py" in names
    assert "topic_sync/drift_check.py" in names
    # The engine package holds nothing operator-only: the Lambda bundle takes it whole.
    engine = {Path(n).name for n in names if n.startswith("topic_sync/")}
    assert not engine & {"cli.py", "spec_file.py", "render.py", "local_invoke.py"}
    metadata = next(n for n in names if n.endswith(".dist-info/METADATA"))
    text = zipfile.ZipFile(wheel).read(metadata).decode()
    assert "Provides-Extra: cdk" in text
    assert "Provides-Extra: cli" in text


def test_a_cdk_install_brings_the_cdk_and_not_the_lambdas_dependencies(fresh_venv: Path) -> None:
    frozen = _run([str(fresh_venv / "bin" / "python"), "-m", "pip", "list", "--format=json"]).stdout
    installed = {item["name"].lower().replace("_", "-") for item in json.loads(frozen)}
    assert installed >= CDK_ONLY
    assert not installed & NOT_INSTALLED, installed & NOT_INSTALLED


@pytest.mark.synth
def test_the_example_app_synthesizes_from_the_wheel_offline(
    fresh_venv: Path, tmp_path: Path, synthesized_app: SynthesizedApp
) -> None:
    # synthesized_app: this session's synth has already installed the Lambda's dependencies
    # into the bundle cache, which the example's synth reuses without any package index.
    app_dir = tmp_path / "app"
    shutil.copytree(EXAMPLE, app_dir, ignore=shutil.ignore_patterns("cdk.out", "__pycache__"))
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("AWS_", "PYTHON", "CDK_", "VIRTUAL_ENV"))
    }
    env |= {
        "PATH": f"{fresh_venv / 'bin'}{os.pathsep}{env['PATH']}",
        "PIP_NO_INDEX": "1",  # a bundle-cache miss would need the index: fail instead
        "AWS_EC2_METADATA_DISABLED": "true",
        "JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION": "20",
    }
    result = _run(
        [str(REPO_ROOT / "node_modules" / ".bin" / "cdk"), "synth", "--quiet", "--no-notices"],
        cwd=app_dir,
        env=env,
    )
    out = app_dir / "cdk.out"
    staging = json.loads((out / "Orders-staging.template.json").read_text())
    prod = json.loads((out / "Orders-prod.template.json").read_text())
    for template in (staging, prod):
        kinds = {r["Type"] for r in template["Resources"].values()}
        assert not kinds & {"AWS::EC2::VPC", "AWS::MSK::ServerlessCluster", "AWS::MSK::Cluster"}
    staging_topics = _topics(staging)
    prod_topics = _topics(prod)
    # Each stage's own values from the one topics.yaml.
    assert staging_topics["orders.created"]["Partitions"] == "1"
    assert staging_topics["orders.created"]["Config"]["retention.ms"] == "86400000"
    assert prod_topics["orders.created"]["Partitions"] == "12"
    assert prod_topics["orders.paid"]["Partitions"] == "6"
    assert prod_topics["orders.paid"]["ReplicationFactor"] == "3"  # Provisioned-only values
    assert prod_topics["orders.paid"]["Config"]["min.insync.replicas"] == "2"
    assert "ReplicationFactor" not in staging_topics["orders.paid"]
    assert _resource(staging)["ClusterType"] == "SERVERLESS"
    assert _resource(prod)["ClusterType"] == "PROVISIONED"
    # IAM scoped to each stage's own cluster, from its ARN (account and region included).
    assert _kafka_arns(staging)
    assert all(
        arn.startswith("arn:aws:kafka:eu-west-1:111122223333:") for arn in _kafka_arns(staging)
    )
    assert all(
        arn.startswith("arn:aws:kafka:eu-central-1:444455556666:") for arn in _kafka_arns(prod)
    )
    # fraud-check runs in prod only: its role gets a policy there and nowhere else.
    assert "fraud-check" in json.dumps(prod)
    assert "fraud-check" not in json.dumps(staging)
    # The Lambda asset: the installed engine package whole, its pinned dependencies, nothing
    # operator-only.
    assets = {path.parent.parent for path in out.glob("asset.*/topic_sync/handler.py")}
    assert len(assets) == 1, result.stdout  # one bundle, shared by both stages' functions
    (asset,) = assets
    assert (asset / "confluent_kafka").is_dir()
    assert not (asset / "topic_sync_tools").exists()
    assert not (asset / "topic_sync_cdk").exists()


def _resource(template: dict[str, Any]) -> dict[str, Any]:
    (resource,) = (
        r["Properties"]
        for r in template["Resources"].values()
        if r["Type"] == "Custom::KafkaTopics"
    )
    return dict(resource)


def _topics(template: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {topic["Name"]: topic for topic in _resource(template)["Topics"]}


def _kafka_arns(template: dict[str, Any]) -> list[str]:
    arns: list[str] = []
    for resource in template["Resources"].values():
        if resource["Type"] != "AWS::IAM::Policy":
            continue
        for statement in resource["Properties"]["PolicyDocument"]["Statement"]:
            actions = statement["Action"]
            if any(
                a.startswith("kafka-cluster:")
                for a in ([actions] if isinstance(actions, str) else actions)
            ):
                resources = statement["Resource"]
                arns.extend(resources if isinstance(resources, list) else [resources])
    return arns
