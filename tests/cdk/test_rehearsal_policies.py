"""rehearsal.policies on the real synthesized template: one identity per role, found by the
template's own wiring, with every intrinsic resolved to the fake account's ARNs."""

from __future__ import annotations

import copy
import json
import re
from pathlib import Path
from typing import Any, cast

import pytest

from rehearsal.policies import (
    PROVISIONER,
    PoliciesFile,
    PolicyExtractionError,
    extract,
    kafka_actions,
    provisioner_role,
)
from rehearsal.policies import main as policies_main
from rehearsal.template import FakeEnvironment
from stacks.platform_stack import PlatformStack
from tests.cdk.conftest import REPO_ROOT, SynthesizedApp
from topic_sync_tools.spec_file import load

pytestmark = pytest.mark.synth

SPEC = load(REPO_ROOT / "topics.yaml")
SERVICES = [service.name for service in SPEC.services]
ENV = FakeEnvironment()
SERVERLESS_CLUSTER_ARN = re.compile(
    r"^arn:aws:kafka:us-east-1:123456789012:cluster/[A-Za-z0-9-]+/[0-9a-f-]{36}-s\d$"
)


@pytest.fixture(scope="module")
def policies(synthesized_app: SynthesizedApp) -> PoliciesFile:
    return extract(synthesized_app.template_json, SERVICES, ENV)


def statements(policies: PoliciesFile, identity: str) -> list[dict[str, Any]]:
    return [s for doc in policies.identities[identity].policies for s in doc["Statement"]]


def resources_for(policies: PoliciesFile, identity: str, action: str) -> set[str]:
    found: set[str] = set()
    for statement in statements(policies, identity):
        actions = (
            statement["Action"] if isinstance(statement["Action"], list) else [statement["Action"]]
        )
        if action in actions and statement["Effect"] == "Allow":
            resource = statement["Resource"]
            found.update(resource if isinstance(resource, list) else [resource])
    return found


def topic_arn(policies: PoliciesFile, topic: str) -> str:
    return policies.cluster_arn.replace(":cluster/", ":topic/", 1) + f"/{topic}"


def test_one_identity_per_role_the_provisioner_and_each_service(policies: PoliciesFile) -> None:
    assert list(policies.identities) == [PROVISIONER, *SERVICES]
    assert SERVERLESS_CLUSTER_ARN.match(policies.cluster_arn), policies.cluster_arn
    roles = [identity.role_logical_id for identity in policies.identities.values()]
    assert len(set(roles)) == len(roles)


def test_the_provisioners_role_is_the_one_the_framework_invokes(
    synthesized_app: SynthesizedApp, policies: PoliciesFile
) -> None:
    role_id = provisioner_role(synthesized_app.template_json)
    stack = cast(PlatformStack, synthesized_app.stack)
    role = stack.topics.function.role
    assert role is not None
    assert stack.resolve(role.role_arn) == {"Fn::GetAtt": [role_id, "Arn"]}
    assert policies.identities[PROVISIONER].role_logical_id == role_id


def test_each_task_role_is_its_services_by_the_ecs_service_name(
    synthesized_app: SynthesizedApp, policies: PoliciesFile
) -> None:
    stack = cast(PlatformStack, synthesized_app.stack)
    for name, service in stack.services.items():
        role_arn = stack.resolve(service.task_definition.task_role.role_arn)
        assert policies.identities[name].role_logical_id == role_arn["Fn::GetAtt"][0]


def test_the_provisioner_may_administer_exactly_the_declared_topics(policies: PoliciesFile) -> None:
    declared = {topic_arn(policies, topic.name) for topic in SPEC.topics}
    for action in (
        "kafka-cluster:CreateTopic",
        "kafka-cluster:DescribeTopic",
        "kafka-cluster:AlterTopic",
        "kafka-cluster:DescribeTopicDynamicConfiguration",
        "kafka-cluster:AlterTopicDynamicConfiguration",
    ):
        assert resources_for(policies, PROVISIONER, action) == declared, action
    assert resources_for(policies, PROVISIONER, "kafka-cluster:Connect") == {policies.cluster_arn}
    assert policies.identities[PROVISIONER].excluded  # AWS managed policies, listed not dropped


def test_each_service_may_write_and_read_exactly_its_topics(policies: PoliciesFile) -> None:
    group_prefix = policies.cluster_arn.replace(":cluster/", ":group/", 1)
    for service in SPEC.services:
        writes = resources_for(policies, service.name, "kafka-cluster:WriteData")
        reads = resources_for(policies, service.name, "kafka-cluster:ReadData")
        assert writes == {topic_arn(policies, t) for t in service.produces}
        assert reads == {topic_arn(policies, t) for t in service.consumes}
        assert resources_for(policies, service.name, "kafka-cluster:Connect") == {
            policies.cluster_arn
        }
        if service.consumes:
            assert resources_for(policies, service.name, "kafka-cluster:AlterGroup") == {
                f"{group_prefix}/{service.name}.*"
            }
        assert not {
            "kafka-cluster:CreateTopic",
            "kafka-cluster:AlterTopicDynamicConfiguration",
        } & set(kafka_actions(policies.identities[service.name]))


def test_nothing_is_left_unresolved(policies: PoliciesFile) -> None:
    text = json.dumps(policies.to_json())
    assert "Fn::" not in text
    assert '"Ref"' not in text
    assert "${" not in text


def test_an_unresolvable_intrinsic_in_a_role_policy_is_an_error_naming_the_policy(
    synthesized_app: SynthesizedApp, policies: PoliciesFile
) -> None:
    template = copy.deepcopy(dict(synthesized_app.template_json))
    role_id = policies.identities["gateway"].role_logical_id
    policy_id = next(
        logical_id
        for logical_id, resource in template["Resources"].items()
        if resource["Type"] == "AWS::IAM::Policy"
        and {"Ref": role_id} in resource["Properties"]["Roles"]
    )
    template["Resources"][policy_id]["Properties"]["PolicyDocument"]["Statement"][0]["Resource"] = {
        "Fn::ImportValue": "SharedClusterArn"
    }
    with pytest.raises(PolicyExtractionError) as error:
        extract(template, SERVICES, ENV)
    assert policy_id in str(error.value)
    path = template["Resources"][policy_id].get("Metadata", {}).get("aws:cdk:path")
    if path:  # `cdk synth` adds it; the in-process synth of these tests does not
        assert path in str(error.value)
    assert "Fn::ImportValue" in str(error.value)


def test_a_service_without_an_ecs_service_is_an_error(synthesized_app: SynthesizedApp) -> None:
    with pytest.raises(PolicyExtractionError, match="billing"):
        extract(synthesized_app.template_json, [*SERVICES, "billing"], ENV)


def test_the_cli_writes_exactly_the_format_local_kafka_reads(
    synthesized_app: SynthesizedApp, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "policies.json"
    template = synthesized_app.outdir / f"{synthesized_app.stack.stack_name}.template.json"
    code = policies_main(
        ["--template", str(template), "--topics", str(REPO_ROOT / "topics.yaml"), "--out", str(out)]
    )
    assert code == 0
    document = json.loads(out.read_text())
    assert set(document) == {"cluster_arn", "identities"}
    assert SERVERLESS_CLUSTER_ARN.match(document["cluster_arn"])
    assert list(document["identities"]) == [PROVISIONER, *SERVICES]
    for identity in document["identities"].values():
        assert set(identity) == {"policies"}
        assert all(policy["Version"] == "2012-10-17" for policy in identity["policies"])
    printed = capsys.readouterr().out
    assert (
        "not included: arn:aws:iam::aws:policy/service-role/AWSLambdaBasicExecutionRole" in printed
    )
