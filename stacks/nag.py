"""cdk-nag (v3) acknowledgments: each names one finding and says why it is acceptable.

cdk-nag v3 acknowledges findings through ``Validations.of(scope).acknowledge``, one exact
finding id at a time (no ``appliesTo`` patterns), so wildcard IAM resources that contain
tokens get their finding id computed here the way cdk-nag renders it.
"""

from __future__ import annotations

import json
from typing import Any

from aws_cdk import Acknowledgment, Stack, Validations
from constructs import IConstruct

AWS_LAMBDA_BASIC_EXECUTION_ROLE = (
    "Policy::arn:<AWS::Partition>:iam::aws:policy/service-role/AWSLambdaBasicExecutionRole"
)
AWS_LAMBDA_VPC_ACCESS_EXECUTION_ROLE = (
    "Policy::arn:<AWS::Partition>:iam::aws:policy/service-role/AWSLambdaVPCAccessExecutionRole"
)


def acknowledge(scope: IConstruct, finding: str, reason: str) -> None:
    """Acknowledge one cdk-nag finding (``RuleId`` or ``RuleId[FindingId]``) on ``scope``."""
    if len(reason.split()) < 6:
        raise ValueError(f"{finding}: an acknowledgment needs a real reason, got {reason!r}")
    Validations.of(scope).acknowledge(Acknowledgment(id=finding, reason=reason))


def _render(value: Any) -> str:
    # cdk-nag's rendering of a resolved IAM resource: Ref -> <Id>, GetAtt -> <Id.Attr>,
    # Fn::Join flattened, any other intrinsic as compact JSON.
    if isinstance(value, str):
        return value
    if isinstance(value, dict) and "Ref" in value:
        return f"<{value['Ref']}>"
    if isinstance(value, dict) and "Fn::GetAtt" in value:
        return f"<{'.'.join(value['Fn::GetAtt'])}>"
    if isinstance(value, dict) and "Fn::Join" in value:
        separator, parts = value["Fn::Join"]
        return str(separator).join(_render(part) for part in parts)
    return json.dumps(value, separators=(",", ":"))


def iam5_resource_finding(scope: IConstruct, resource_arn: str) -> str:
    """The AwsSolutions-IAM5 finding id for a wildcard resource ARN (tokens allowed)."""
    return f"AwsSolutions-IAM5[Resource::{_render(Stack.of(scope).resolve(resource_arn))}]"
