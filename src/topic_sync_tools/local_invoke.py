"""Call the provisioning handler outside AWS exactly as CloudFormation would.

A custom-resource event as the CDK Provider framework passes it on, and the parts of the Lambda
context the handler and Powertools read. ``make demo``, the benchmarks and tests use it; the
Lambda never imports it (it is left out of the bundle).
"""

from __future__ import annotations

import copy
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

RESOURCE_TYPE = "Custom::KafkaTopics"
# A made-up account: these only have to look like what CloudFormation sends.
LOCAL_STACK_ID = "arn:aws:cloudformation:us-east-1:123456789012:stack/TopicSyncLocal/{}"
LOCAL_SERVICE_TOKEN = "arn:aws:lambda:us-east-1:123456789012:function:TopicSync-ProviderOnEvent"  # noqa: S105 (an ARN)


def local_stack_id() -> str:
    """A fresh stack ARN, as one ``cdk deploy`` of a new stack would have."""
    return LOCAL_STACK_ID.format(uuid.uuid4())


def custom_resource_event(
    request_type: str,
    properties: Mapping[str, Any],
    *,
    stack_id: str,
    logical_id: str,
    physical_id: str | None = None,
    old: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """A Create / Update / Delete event carrying ``properties`` (and ``old`` on Update)."""
    event: dict[str, Any] = {
        "RequestType": request_type,
        "ServiceToken": LOCAL_SERVICE_TOKEN,
        # Never called: the Provider framework owns the reply, the handler only returns.
        "ResponseURL": "https://cloudformation-custom-resource-response.invalid/local",
        "StackId": stack_id,
        "RequestId": str(uuid.uuid4()),
        "LogicalResourceId": logical_id,
        "ResourceType": RESOURCE_TYPE,
        "ResourceProperties": {"ServiceToken": LOCAL_SERVICE_TOKEN, **copy.deepcopy(properties)},
    }
    if old is not None:
        event["OldResourceProperties"] = {
            "ServiceToken": LOCAL_SERVICE_TOKEN,
            **copy.deepcopy(old),
        }
    if physical_id is not None:
        event["PhysicalResourceId"] = physical_id
    return event


@dataclass
class LocalLambdaContext:
    """The parts of the Lambda context the handler (its deadline) and Powertools read."""

    remaining_ms: int = 300_000
    function_name: str = "TopicSync-ProviderOnEvent"
    function_version: str = "$LATEST"
    memory_limit_in_mb: int = 256
    invoked_function_arn: str = LOCAL_SERVICE_TOKEN
    aws_request_id: str = "local"
    log_group_name: str = "local"
    log_stream_name: str = "local"

    def get_remaining_time_in_millis(self) -> int:
        return self.remaining_ms
