"""The IAM policies the stack gives the provisioner and each service, for the local broker.

``python -m rehearsal.policies --template cdk.out/TopicSync.template.json --out FILE`` writes

    {"cluster_arn": "arn:aws:kafka:REGION:ACCOUNT:cluster/NAME/UUID",
     "identities": {"provisioner": {"policies": [<IAM policy document>, ...]},
                    "<service>": {"policies": [...]}, ...}}

which ``LOCAL_KAFKA_IAM_POLICIES`` hands to ``scripts/local-kafka up``.

Which role is whose is read from the template's own wiring, never from names:

- provisioner: the ``Custom::KafkaTopics`` resource's ServiceToken is the provider framework
  function; its ``USER_ON_EVENT_FUNCTION_ARN`` is the provisioning function; that function's
  ``Role`` is the provisioner's role.
- services: each ``AWS::ECS::Service`` names its task definition, whose ``TaskRoleArn`` is the
  service's role; the service's ``ServiceName`` is its name in topics.yaml.

A role's policies are the ``AWS::IAM::Policy`` and ``AWS::IAM::ManagedPolicy`` resources that name
it, its inline ``Policies``, and the template's managed policies in its ``ManagedPolicyArns``.
AWS managed policies (``arn:aws:iam::aws:policy/...``) are not in the template: they are listed as
``excluded`` so a reader sees them (none of them grants ``kafka-cluster:*``).
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rehearsal.template import FakeEnvironment, Resolver, UnresolvableIntrinsic, resource_label

PROVISIONER = "provisioner"
KAFKA_TOPICS_TYPE = "Custom::KafkaTopics"
USER_ON_EVENT_ENV = "USER_ON_EVENT_FUNCTION_ARN"
_AWS_MANAGED_POLICY_MARKER = ":iam::aws:policy/"


class PolicyExtractionError(ValueError):
    """The template's wiring does not say which role is whose, or a policy cannot be resolved."""


@dataclass(frozen=True)
class Identity:
    """One role: its policy documents (resolved) and what was left out, with why."""

    name: str
    role_logical_id: str
    policies: tuple[dict[str, Any], ...]
    excluded: tuple[str, ...] = ()


@dataclass(frozen=True)
class PoliciesFile:
    cluster_arn: str
    identities: Mapping[str, Identity] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {
            "cluster_arn": self.cluster_arn,
            "identities": {
                name: {"policies": list(identity.policies)}
                for name, identity in self.identities.items()
            },
        }


def _get_att_target(value: Any, where: str) -> str:
    """The logical id behind ``{"Fn::GetAtt": [X, "Arn"]}`` (or ``"X.Arn"``)."""
    if isinstance(value, Mapping) and set(value) == {"Fn::GetAtt"}:
        arg = value["Fn::GetAtt"]
        if isinstance(arg, list) and len(arg) == 2 and arg[1] == "Arn":
            return str(arg[0])
        if isinstance(arg, str) and arg.endswith(".Arn"):
            return arg.removesuffix(".Arn")
    raise PolicyExtractionError(f"{where}: expected Fn::GetAtt <resource>.Arn, got {value!r}")


def _ref_target(value: Any, where: str) -> str:
    if isinstance(value, Mapping) and set(value) == {"Ref"} and isinstance(value["Ref"], str):
        return value["Ref"]
    raise PolicyExtractionError(f"{where}: expected a Ref to a resource, got {value!r}")


def _resources_of_type(template: Mapping[str, Any], kind: str) -> dict[str, Mapping[str, Any]]:
    return {
        logical_id: resource
        for logical_id, resource in template.get("Resources", {}).items()
        if resource.get("Type") == kind
    }


def _expect_type(template: Mapping[str, Any], logical_id: str, kind: str, where: str) -> None:
    actual = template.get("Resources", {}).get(logical_id, {}).get("Type")
    if actual != kind:
        raise PolicyExtractionError(f"{where}: {logical_id} is a {actual}, expected {kind}")


def provisioner_role(template: Mapping[str, Any]) -> str:
    """Custom::KafkaTopics -> ServiceToken (framework function) -> USER_ON_EVENT_FUNCTION_ARN
    (the provisioning function) -> its Role."""
    resources = _resources_of_type(template, KAFKA_TOPICS_TYPE)
    if len(resources) != 1:
        raise PolicyExtractionError(
            f"expected exactly one {KAFKA_TOPICS_TYPE} resource, found {len(resources)}"
        )
    ((topics_id, topics),) = resources.items()
    where = resource_label(template, topics_id)
    framework_id = _get_att_target(topics.get("Properties", {}).get("ServiceToken"), where)
    _expect_type(template, framework_id, "AWS::Lambda::Function", where)
    framework = template["Resources"][framework_id]
    env = framework.get("Properties", {}).get("Environment", {}).get("Variables", {})
    where = resource_label(template, framework_id)
    if USER_ON_EVENT_ENV not in env:
        raise PolicyExtractionError(
            f"{where}: no {USER_ON_EVENT_ENV}: not a CDK provider framework"
        )
    function_id = _get_att_target(env[USER_ON_EVENT_ENV], where)
    _expect_type(template, function_id, "AWS::Lambda::Function", where)
    where = resource_label(template, function_id)
    role_id = _get_att_target(template["Resources"][function_id]["Properties"].get("Role"), where)
    _expect_type(template, role_id, "AWS::IAM::Role", where)
    return role_id


def provisioner_function(template: Mapping[str, Any]) -> tuple[str, str]:
    """(framework function, provisioning function) logical ids."""
    ((topics_id, topics),) = _resources_of_type(template, KAFKA_TOPICS_TYPE).items()
    where = resource_label(template, topics_id)
    framework_id = _get_att_target(topics["Properties"]["ServiceToken"], where)
    env = template["Resources"][framework_id]["Properties"]["Environment"]["Variables"]
    return framework_id, _get_att_target(env[USER_ON_EVENT_ENV], where)


def service_roles(template: Mapping[str, Any]) -> dict[str, str]:
    """ECS ServiceName -> task role logical id (via the service's task definition)."""
    roles: dict[str, str] = {}
    for service_id, service in _resources_of_type(template, "AWS::ECS::Service").items():
        where = resource_label(template, service_id)
        props = service.get("Properties", {})
        name = props.get("ServiceName")
        if not isinstance(name, str):
            raise PolicyExtractionError(f"{where}: no literal ServiceName to match topics.yaml")
        task_definition_id = _ref_target(props.get("TaskDefinition"), where)
        _expect_type(template, task_definition_id, "AWS::ECS::TaskDefinition", where)
        task_definition = template["Resources"][task_definition_id]["Properties"]
        where = resource_label(template, task_definition_id)
        if "TaskRoleArn" not in task_definition:
            raise PolicyExtractionError(f"{where}: service {name!r} has no task role")
        role_id = _get_att_target(task_definition["TaskRoleArn"], where)
        _expect_type(template, role_id, "AWS::IAM::Role", where)
        if name in roles:
            raise PolicyExtractionError(f"two ECS services are named {name!r}")
        roles[name] = role_id
    return roles


def role_policies(resolver: Resolver, role_id: str) -> tuple[list[dict[str, Any]], list[str]]:
    """The role's policy documents, resolved, and the managed policy ARNs left out."""
    template = resolver.template
    role = resolver.resource(role_id)
    role_label = resource_label(template, role_id)
    role_name = resolver.ref(role_id, role_label)
    documents: list[dict[str, Any]] = []
    for inline in role.get("Properties", {}).get("Policies", []):
        documents.append(resolver.resolve(inline["PolicyDocument"], role_label))

    managed_arns = [
        str(arn)
        for arn in resolver.resolve(
            role.get("Properties", {}).get("ManagedPolicyArns", []), role_label
        )
    ]
    excluded: list[str] = []
    template_managed: dict[str, str] = {}
    for policy_id in _resources_of_type(template, "AWS::IAM::ManagedPolicy"):
        template_managed[str(resolver.ref(policy_id, resource_label(template, policy_id)))] = (
            policy_id
        )
    attached_managed: set[str] = set()
    for arn in managed_arns:
        if arn in template_managed:
            attached_managed.add(template_managed[arn])
        elif _AWS_MANAGED_POLICY_MARKER in arn:
            excluded.append(f"{arn} (AWS managed policy, not in the template)")
        else:
            raise PolicyExtractionError(
                f"{role_label}: managed policy {arn} is neither in the template nor AWS managed"
            )

    for kind in ("AWS::IAM::Policy", "AWS::IAM::ManagedPolicy"):
        for policy_id, policy in _resources_of_type(template, kind).items():
            label = resource_label(template, policy_id)
            roles = resolver.resolve(policy.get("Properties", {}).get("Roles", []), label)
            if role_name in roles or policy_id in attached_managed:
                documents.append(resolver.resolve(policy["Properties"]["PolicyDocument"], label))
    return documents, excluded


def extract(
    template: Mapping[str, Any],
    services: Sequence[str],
    env: FakeEnvironment | None = None,
    *,
    cluster_arn: str | None = None,
) -> PoliciesFile:
    """One identity for the provisioner and one per service in ``services`` (topics.yaml).

    ``cluster_arn``: the existing cluster a template without a cluster of its own works on
    (default: the template's MSK cluster, as the fake environment resolves it).
    """
    resolver = Resolver(template, env)
    try:
        cluster_arn = cluster_arn or resolver.cluster_arn()
        roles = {PROVISIONER: provisioner_role(template)}
        by_service = service_roles(template)
        missing = [name for name in services if name not in by_service]
        if missing:
            raise PolicyExtractionError(
                f"services in topics.yaml without an ECS service in the template: {missing}"
            )
        roles.update({name: by_service[name] for name in services})
        identities = {}
        for name, role_id in roles.items():
            documents, excluded = role_policies(resolver, role_id)
            identities[name] = Identity(name, role_id, tuple(documents), tuple(excluded))
    except UnresolvableIntrinsic as error:
        raise PolicyExtractionError(str(error)) from error
    return PoliciesFile(cluster_arn, identities)


def kafka_actions(identity: Identity) -> list[str]:
    """The ``kafka-cluster:`` actions an identity's Allow statements name (for summaries)."""
    actions: set[str] = set()
    for document in identity.policies:
        statements = document.get("Statement", [])
        for statement in statements if isinstance(statements, list) else [statements]:
            if statement.get("Effect") != "Allow":
                continue
            named = statement.get("Action", [])
            for action in named if isinstance(named, list) else [named]:
                if str(action).lower().startswith("kafka-cluster:"):
                    actions.add(str(action))
    return sorted(actions)


def write(policies: PoliciesFile, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(policies.to_json(), indent=2) + "\n")


def main(argv: Sequence[str] | None = None) -> int:
    # Imported here: spec_file needs pyyaml, which the rest of the package does not.
    from topic_sync_tools.spec_file import load

    parser = argparse.ArgumentParser(prog="python -m rehearsal.policies", description=__doc__)
    parser.add_argument("--template", type=Path, default=Path("cdk.out/TopicSync.template.json"))
    parser.add_argument("--topics", type=Path, default=Path("topics.yaml"))
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args(argv)
    template = json.loads(args.template.read_text())
    services = [service.name for service in load(args.topics).services]
    try:
        policies = extract(template, services)
    except PolicyExtractionError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    write(policies, args.out)
    print(f"{args.out}: cluster {policies.cluster_arn}")
    for identity in policies.identities.values():
        print(
            f"  {identity.name}: role {identity.role_logical_id}, "
            f"{len(identity.policies)} policy document(s), kafka-cluster actions: "
            f"{', '.join(a.removeprefix('kafka-cluster:') for a in kafka_actions(identity))}"
        )
        for note in identity.excluded:
            print(f"    not included: {note}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
