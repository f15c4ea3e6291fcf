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


#: CDK's own helper Lambdas (provider framework, AwsCustomResource, default-SG restriction).
NIST_LAMBDA_OUTSIDE_VPC_REASON = (
    "a CDK framework Lambda that only calls AWS APIs and the CloudFormation response URL; it "
    "reaches nothing inside the VPC, and in it would need NAT egress for the same calls"
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


def acknowledge_lambda_runtime_findings(scope: IConstruct, *, invocation: str) -> None:
    """NIST 800-53 R5 concurrency and DLQ findings of a Lambda: why neither applies here.

    ``invocation`` says who invokes the function and where its failures go.
    """
    acknowledge(
        scope,
        "NIST.800.53.R5-LambdaConcurrency",
        "reserved concurrency is carved out of the account's unreserved pool and fails the "
        "deploy in accounts with the default low limit; this function runs once per deploy "
        "or schedule tick",
    )
    acknowledge(
        scope,
        "NIST.800.53.R5-LambdaDLQ",
        f"{invocation}; a dead-letter queue would only hold stale events that nobody replays",
    )


def acknowledge_cdk_inline_policies(scope: IConstruct) -> None:
    """NIST IAMNoInlinePolicy for every role's CDK-generated DefaultPolicy below ``scope``."""
    acknowledge(
        scope,
        "NIST.800.53.R5-IAMNoInlinePolicy",
        "CDK renders each role's grants as one AWS::IAM::Policy attached to that role only; it "
        "is versioned with the stack, never shared, and tests assert its exact statements",
    )
