"""Resolve CloudFormation intrinsics in a synthesized template, offline, for one fake account.

What a deployed stack would see is replaced by fixed, fake but well-formed values: an account,
a region, a stack, and an MSK Serverless cluster ARN. Resources get fake physical ids shaped
like the real ones (a role's name, a function's ARN, ...). Anything this module cannot resolve
raises :class:`UnresolvableIntrinsic` naming the resource: a guess could silently turn a wrong
ARN into a right one, which is exactly what the rehearsal exists to catch.
"""

from __future__ import annotations

import base64
import hashlib
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

# Marks a value that must disappear from its list or object (``Ref: AWS::NoValue``).
_NO_VALUE = object()


class UnresolvableIntrinsic(ValueError):
    """An intrinsic in the template cannot be resolved offline; the message names the resource."""


@dataclass(frozen=True)
class FakeEnvironment:
    """The account, region and stack a rehearsal pretends to deploy to.

    The region is the local broker's (its IAM token validator only accepts that region).
    """

    account_id: str = "123456789012"
    region: str = "us-east-1"
    partition: str = "aws"
    url_suffix: str = "amazonaws.com"
    stack_name: str = "TopicSync"
    stack_uuid: str = "5e6f7a80-1b2c-4d3e-8f90-a1b2c3d4e5f6"
    #: The cluster's uuid: MSK Serverless cluster ARNs end in ``-s<digit>``.
    cluster_uuid: str = "0c1d2e3f-4a5b-4c6d-8e7f-9a0b1c2d3e4f-s1"

    @property
    def stack_id(self) -> str:
        return (
            f"arn:{self.partition}:cloudformation:{self.region}:{self.account_id}:"
            f"stack/{self.stack_name}/{self.stack_uuid}"
        )

    def arn(self, service: str, resource: str, *, region: bool = True) -> str:
        where = self.region if region else ""
        return f"arn:{self.partition}:{service}:{where}:{self.account_id}:{resource}"

    def cluster_arn(self, cluster_name: str) -> str:
        return self.arn("kafka", f"cluster/{cluster_name}/{self.cluster_uuid}")


def _fake_suffix(logical_id: str) -> str:
    """What CloudFormation appends to generated names: 12 upper-case characters."""
    return hashlib.sha256(logical_id.encode()).hexdigest()[:12].upper()


def resource_label(template: Mapping[str, Any], logical_id: str) -> str:
    """``LogicalId (aws:cdk:path)``: how errors name a resource."""
    resource = template.get("Resources", {}).get(logical_id, {})
    path = resource.get("Metadata", {}).get("aws:cdk:path") if isinstance(resource, dict) else None
    return f"{logical_id} ({path})" if path else logical_id


class Resolver:
    """Resolves intrinsics of one template against a :class:`FakeEnvironment`.

    ``attributes`` overrides ``Fn::GetAtt`` (``{("LogicalId", "Attr"): value}``) for what only a
    deployment knows, e.g. the bootstrap string a custom resource returns.
    """

    def __init__(
        self,
        template: Mapping[str, Any],
        env: FakeEnvironment | None = None,
        *,
        attributes: Mapping[tuple[str, str], Any] | None = None,
    ) -> None:
        self.template = template
        self.env = env or FakeEnvironment()
        self._resources: Mapping[str, Any] = template.get("Resources", {})
        self._attributes = dict(attributes or {})

    # ---- public --------------------------------------------------------------------------

    def resolve(self, value: Any, where: str) -> Any:
        """``value`` with every intrinsic resolved; ``where`` names its resource in errors."""
        resolved = self._resolve(value, where)
        if resolved is _NO_VALUE:
            raise UnresolvableIntrinsic(f"{where}: the whole value is AWS::NoValue")
        return resolved

    def resolve_property(self, logical_id: str, *path: str | int) -> Any:
        """A resource property (``path`` into Properties), resolved."""
        value: Any = self.resource(logical_id).get("Properties", {})
        for key in path:
            value = value[key]
        return self.resolve(value, resource_label(self.template, logical_id))

    def resource(self, logical_id: str) -> Mapping[str, Any]:
        resource = self._resources.get(logical_id)
        if not isinstance(resource, Mapping):
            raise UnresolvableIntrinsic(f"no resource {logical_id!r} in the template")
        return resource

    def cluster_arn(self) -> str:
        """The ARN the template's (single) MSK cluster resolves to."""
        clusters = [
            logical_id
            for logical_id, resource in self._resources.items()
            if resource.get("Type") in _MSK_CLUSTER_TYPES
        ]
        if len(clusters) != 1:
            raise UnresolvableIntrinsic(
                f"expected exactly one MSK cluster in the template, found {len(clusters)}"
            )
        return str(self.ref(clusters[0], "cluster ARN"))

    # ---- Ref and Fn::GetAtt ----------------------------------------------------------------

    def ref(self, name: str, where: str) -> Any:
        pseudo = self._pseudo(name)
        if pseudo is not None:
            return pseudo
        parameters = self.template.get("Parameters", {})
        if name in parameters:
            return self._parameter(name, parameters[name], where)
        if name not in self._resources:
            raise UnresolvableIntrinsic(f"{where}: Ref to {name!r}, which is not in the template")
        kind = self._resources[name].get("Type", "")
        if kind in _MSK_CLUSTER_TYPES:
            return self.env.cluster_arn(self._cluster_name(name))
        rule = _REF_RULES.get(kind)
        if rule is None:
            raise UnresolvableIntrinsic(
                f"{where}: Ref to {resource_label(self.template, name)} of type {kind}: "
                "this rehearsal does not know what its Ref returns"
            )
        return rule(self, name)

    def get_att(self, logical_id: str, attribute: str, where: str) -> Any:
        if (logical_id, attribute) in self._attributes:
            return self._attributes[(logical_id, attribute)]
        if logical_id not in self._resources:
            raise UnresolvableIntrinsic(
                f"{where}: Fn::GetAtt {logical_id}.{attribute}: no such resource in the template"
            )
        kind = self._resources[logical_id].get("Type", "")
        if kind in _MSK_CLUSTER_TYPES and attribute == "Arn":
            return self.env.cluster_arn(self._cluster_name(logical_id))
        rule = _GETATT_RULES.get((kind, attribute))
        if rule is None:
            raise UnresolvableIntrinsic(
                f"{where}: Fn::GetAtt {resource_label(self.template, logical_id)}.{attribute} "
                f"(type {kind}): only a deployment knows this value"
            )
        return rule(self, logical_id)

    def physical_name(self, logical_id: str, name_property: str | None, max_len: int = 64) -> str:
        """The resource's name property if it sets one, else a CloudFormation-shaped name."""
        props = self._resources[logical_id].get("Properties", {})
        if name_property and name_property in props:
            return str(
                self.resolve(props[name_property], resource_label(self.template, logical_id))
            )
        prefix = f"{self.env.stack_name}-{logical_id}"
        return f"{prefix[: max_len - 13]}-{_fake_suffix(logical_id)}"

    def _cluster_name(self, logical_id: str) -> str:
        return self.physical_name(logical_id, "ClusterName")

    def _pseudo(self, name: str) -> str | None:
        env = self.env
        return {
            "AWS::Region": env.region,
            "AWS::AccountId": env.account_id,
            "AWS::Partition": env.partition,
            "AWS::URLSuffix": env.url_suffix,
            "AWS::StackName": env.stack_name,
            "AWS::StackId": env.stack_id,
        }.get(name)

    def _parameter(self, name: str, parameter: Mapping[str, Any], where: str) -> Any:
        kind = str(parameter.get("Type", "String"))
        if "Default" not in parameter or kind.startswith("AWS::SSM::"):
            raise UnresolvableIntrinsic(
                f"{where}: Ref to parameter {name!r} ({kind}): its value is only known at deploy"
            )
        default = parameter["Default"]
        if kind.startswith("List<") or kind == "CommaDelimitedList":
            return [item.strip() for item in str(default).split(",")]
        return default

    # ---- the walk --------------------------------------------------------------------------

    def _resolve(self, value: Any, where: str) -> Any:
        if isinstance(value, list):
            items = [self._resolve(item, where) for item in value]
            return [item for item in items if item is not _NO_VALUE]
        if not isinstance(value, dict):
            return value
        if len(value) == 1:
            ((key, arg),) = value.items()
            if key == "Ref":
                if arg == "AWS::NoValue":
                    return _NO_VALUE
                return self.ref(self._string(arg, where, "Ref"), where)
            if key == "Condition" or key.startswith("Fn::"):
                return self._function(key, arg, where)
        out = {}
        for key, item in value.items():
            resolved = self._resolve(item, where)
            if resolved is not _NO_VALUE:
                out[key] = resolved
        return out

    def _function(self, name: str, arg: Any, where: str) -> Any:
        if name == "Fn::GetAtt":
            if isinstance(arg, str):
                logical_id, _, attribute = arg.partition(".")
            elif isinstance(arg, list) and len(arg) == 2:
                logical_id = self._string(arg[0], where, name)
                attribute = self._string(self._resolve(arg[1], where), where, name)
            else:
                raise UnresolvableIntrinsic(f"{where}: malformed Fn::GetAtt {arg!r}")
            return self.get_att(logical_id, attribute, where)
        if name == "Fn::Join":
            if not (isinstance(arg, list) and len(arg) == 2):
                raise UnresolvableIntrinsic(f"{where}: malformed Fn::Join {arg!r}")
            delimiter = self._string(arg[0], where, name)
            parts = self._list(self._resolve(arg[1], where), where, name)
            return delimiter.join(self._string(part, where, name) for part in parts)
        if name == "Fn::Select":
            if not (isinstance(arg, list) and len(arg) == 2):
                raise UnresolvableIntrinsic(f"{where}: malformed Fn::Select {arg!r}")
            index = int(self._string(self._resolve(arg[0], where), where, name))
            items = self._list(self._resolve(arg[1], where), where, name)
            if not 0 <= index < len(items):
                raise UnresolvableIntrinsic(
                    f"{where}: Fn::Select index {index} out of range for {items!r}"
                )
            return items[index]
        if name == "Fn::Split":
            if not (isinstance(arg, list) and len(arg) == 2):
                raise UnresolvableIntrinsic(f"{where}: malformed Fn::Split {arg!r}")
            delimiter = self._string(arg[0], where, name)
            return self._string(self._resolve(arg[1], where), where, name).split(delimiter)
        if name == "Fn::Sub":
            return self._sub(arg, where)
        if name == "Fn::Base64":
            text = self._string(self._resolve(arg, where), where, name)
            return base64.b64encode(text.encode()).decode()
        if name == "Fn::FindInMap":
            return self._find_in_map(arg, where)
        raise UnresolvableIntrinsic(f"{where}: {name} is not supported by the rehearsal")

    def _sub(self, arg: Any, where: str) -> str:
        if isinstance(arg, str):
            text, variables = arg, {}
        elif isinstance(arg, list) and len(arg) == 2 and isinstance(arg[1], dict):
            text = self._string(arg[0], where, "Fn::Sub")
            variables = {k: self._resolve(v, where) for k, v in arg[1].items()}
        else:
            raise UnresolvableIntrinsic(f"{where}: malformed Fn::Sub {arg!r}")

        def replace(match: re.Match[str]) -> str:
            body = match.group(1)
            if body.startswith("!"):
                return "${" + body[1:] + "}"
            if body in variables:
                return self._string(variables[body], where, "Fn::Sub")
            if "." in body and not body.startswith("AWS::"):
                logical_id, _, attribute = body.partition(".")
                return self._string(self.get_att(logical_id, attribute, where), where, "Fn::Sub")
            return self._string(self.ref(body, where), where, "Fn::Sub")

        return re.sub(r"\$\{([^}]*)\}", replace, text)

    def _find_in_map(self, arg: Any, where: str) -> Any:
        if not (isinstance(arg, list) and len(arg) == 3):
            raise UnresolvableIntrinsic(f"{where}: malformed Fn::FindInMap {arg!r}")
        keys = [self._string(self._resolve(part, where), where, "Fn::FindInMap") for part in arg]
        try:
            return self.template["Mappings"][keys[0]][keys[1]][keys[2]]
        except (KeyError, TypeError) as error:
            raise UnresolvableIntrinsic(f"{where}: Fn::FindInMap {keys}: no such entry") from error

    @staticmethod
    def _string(value: Any, where: str, function: str) -> str:
        if isinstance(value, bool) or not isinstance(value, str | int | float):
            raise UnresolvableIntrinsic(f"{where}: {function} needs a string, got {value!r}")
        return str(value)

    @staticmethod
    def _list(value: Any, where: str, function: str) -> list[Any]:
        if not isinstance(value, list):
            raise UnresolvableIntrinsic(f"{where}: {function} needs a list, got {value!r}")
        return value


_MSK_CLUSTER_TYPES = frozenset({"AWS::MSK::ServerlessCluster", "AWS::MSK::Cluster"})


def _role_name(r: Resolver, logical_id: str) -> str:
    return r.physical_name(logical_id, "RoleName")


def _function_name(r: Resolver, logical_id: str) -> str:
    return r.physical_name(logical_id, "FunctionName")


def _log_group_name(r: Resolver, logical_id: str) -> str:
    return r.physical_name(logical_id, "LogGroupName", max_len=512)


def _managed_policy_arn(r: Resolver, logical_id: str) -> str:
    name = r.physical_name(logical_id, "ManagedPolicyName")
    return r.env.arn("iam", f"policy/{name}", region=False)


def _fake_id(prefix: str) -> Any:
    def rule(r: Resolver, logical_id: str) -> str:
        return f"{prefix}-{hashlib.sha256(logical_id.encode()).hexdigest()[:17]}"

    return rule


def _ecs_cluster_arn(r: Resolver, logical_id: str) -> str:
    return r.env.arn("ecs", f"cluster/{r.physical_name(logical_id, 'ClusterName')}")


def _task_definition_arn(r: Resolver, logical_id: str) -> str:
    family = r.physical_name(logical_id, "Family")
    return r.env.arn("ecs", f"task-definition/{family}:1")


_REF_RULES: dict[str, Any] = {
    "AWS::IAM::Role": _role_name,
    "AWS::IAM::Policy": lambda r, logical_id: r.physical_name(logical_id, "PolicyName"),
    "AWS::IAM::ManagedPolicy": _managed_policy_arn,
    "AWS::Lambda::Function": _function_name,
    "AWS::Logs::LogGroup": _log_group_name,
    "AWS::EC2::VPC": _fake_id("vpc"),
    "AWS::EC2::Subnet": _fake_id("subnet"),
    "AWS::EC2::SecurityGroup": _fake_id("sg"),
    "AWS::ECS::Cluster": lambda r, logical_id: r.physical_name(logical_id, "ClusterName"),
    "AWS::ECS::TaskDefinition": _task_definition_arn,
    # The provider framework's waiter (is_complete); Ref is the state machine's ARN.
    "AWS::StepFunctions::StateMachine": lambda r, logical_id: r.env.arn(
        "states", f"stateMachine:{r.physical_name(logical_id, 'StateMachineName', 80)}"
    ),
}

_GETATT_RULES: dict[tuple[str, str], Any] = {
    ("AWS::IAM::Role", "Arn"): lambda r, i: r.env.arn(
        "iam", f"role/{_role_name(r, i)}", region=False
    ),
    ("AWS::IAM::Role", "RoleId"): lambda r, i: f"AROA{_fake_suffix(i)}",
    ("AWS::Lambda::Function", "Arn"): lambda r, i: r.env.arn(
        "lambda", f"function:{_function_name(r, i)}"
    ),
    ("AWS::Logs::LogGroup", "Arn"): lambda r, i: r.env.arn(
        "logs", f"log-group:{_log_group_name(r, i)}:*"
    ),
    ("AWS::EC2::SecurityGroup", "GroupId"): _fake_id("sg"),
    ("AWS::EC2::VPC", "DefaultSecurityGroup"): _fake_id("sg"),
    ("AWS::ECS::Cluster", "Arn"): _ecs_cluster_arn,
}
