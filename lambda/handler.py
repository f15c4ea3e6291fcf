"""CloudFormation custom resource (CDK Provider ``on_event``): make Kafka topics match the spec.

Returns ``{"PhysicalResourceId", "Data"}`` or raises; the Provider framework owns the reply to
CloudFormation, so this never touches the ResponseURL.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Mapping
from typing import Any

from aws_lambda_powertools import Logger
from aws_lambda_powertools.logging.utils import copy_config_to_registered_loggers
from aws_lambda_powertools.utilities.data_classes import CloudFormationCustomResourceEvent
from aws_lambda_powertools.utilities.typing import LambdaContext

from topic_sync.admin import TopicAdmin
from topic_sync.connection import Connection
from topic_sync.exceptions import SpecError, TopicSyncError, clip
from topic_sync.kafka_admin import KafkaTopicAdmin
from topic_sync.metrics import emit_failed_sync_metrics, emit_sync_metrics
from topic_sync.plan import Plan
from topic_sync.resource import (
    PHYSICAL_ID_PREFIX,
    RemovalPolicy,
    parse_properties,
    physical_id,
    previous_topics,
)
from topic_sync.retry import Deadline
from topic_sync.rollback import DELETING_STATUS, is_update_rollback, stack_status
from topic_sync.summary import summarize
from topic_sync.sync import SyncRequest, sync

logger = Logger(service="topic-sync")
# The engine logs through stdlib loggers (the CLI shares it); give them the same JSON output.
copy_config_to_registered_loggers(source_logger=logger, include={"topic_sync"})

# Leave the Provider framework time to report our answer before the Lambda is killed.
SAFETY_MARGIN_SECONDS = 5.0
# The Provider framework's reply to CloudFormation must stay under 4096 bytes. It holds Status,
# StackId, RequestId, LogicalResourceId (up to 255), PhysicalResourceId, and a Reason made of our
# message, "Logs: /aws/lambda/<function>" and the framework's own JavaScript stack trace (~1 KB).
# So our message gets 1500 bytes as it will be encoded there (UTF-8, JSON escapes).
MAX_REASON_BYTES = 1500
TRUNCATED_MARK = " ...(truncated; full text in the logs)"
REQUEST_TYPES = ("Create", "Update", "Delete")
#: Set by the KafkaTopics construct: the provisioner's own log group, named in failure Reasons.
LOG_GROUP_ENV = "TOPIC_SYNC_LOG_GROUP"


def _json_bytes(text: str) -> int:
    return len(json.dumps(text, ensure_ascii=False).encode("utf-8")) - 2


def bounded_reason(message: str, suffix: str = "") -> str:
    """``message`` on one line, cut to fit MAX_REASON_BYTES of the reply's JSON; ``suffix``
    (a short pointer to the logs) is kept whole after it."""
    limit = MAX_REASON_BYTES - _json_bytes(suffix)
    flat = " ".join(message[: MAX_REASON_BYTES * 8].split())
    if _json_bytes(flat) <= limit:
        return flat + suffix
    budget = limit - _json_bytes(TRUNCATED_MARK)
    low, high = 0, min(len(flat), budget)  # every character takes at least one byte
    while low < high:  # the longest prefix that fits
        middle = (low + high + 1) // 2
        if _json_bytes(flat[:middle]) <= budget:
            low = middle
        else:
            high = middle - 1
    return flat[:low] + TRUNCATED_MARK + suffix


def logs_hint() -> str:
    """Where this function's logs are. The Provider framework's Reason adds
    ``Logs: /aws/lambda/<function>``, which is wrong for a function with its own log group."""
    group = os.environ.get(LOG_GROUP_ENV, "")
    return f" (provisioner logs: CloudWatch log group {group[:512]})" if group else ""


def _check_event(event: Any) -> None:
    """Refuse an event we do not understand before anything else (no cluster contact)."""
    if not isinstance(event, Mapping):
        raise SpecError([f"event: must be a map, got {clip(event)}"])
    request_type = event.get("RequestType")
    if request_type not in REQUEST_TYPES:
        raise SpecError(
            [f"RequestType: must be {', '.join(REQUEST_TYPES)}, got {clip(request_type)}"]
        )
    for key in ("StackId", "LogicalResourceId"):
        if not isinstance(event.get(key), str):
            raise SpecError([f"{key}: required, got {clip(event.get(key))}"])
    properties = event.get("ResourceProperties")
    if not isinstance(properties, Mapping):
        raise SpecError([f"ResourceProperties: must be a map, got {clip(properties)}"])
    old = event.get("OldResourceProperties")
    if request_type != "Create" and not isinstance(event.get("PhysicalResourceId"), str):
        raise SpecError([f"PhysicalResourceId: required on {request_type}"])
    if old is not None and not isinstance(old, Mapping):
        raise SpecError([f"OldResourceProperties: must be a map, got {clip(old)}"])


@logger.inject_lambda_context(log_event=False)  # the event holds the ResponseURL: never log it
def on_event(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    try:
        _check_event(event)
        cfn = CloudFormationCustomResourceEvent(event)
        logger.append_keys(
            request_type=cfn.request_type,
            stack_id=cfn.stack_id,
            logical_resource_id=cfn.logical_resource_id,
            physical_resource_id=event.get("PhysicalResourceId"),
        )
        if cfn.request_type == "Delete":
            return _delete(cfn, context)
        return _create_or_update(cfn, context)
    except TopicSyncError as error:
        message = str(error)
        logger.error(
            "sync failed",
            extra={"reason": message[:100_000], "error_type": type(error).__name__},
        )
        # Same exception type (Lambda reports it as errorType), with the bounded message.
        error.args = (bounded_reason(message, logs_hint()),)
        raise


def make_admin(connection: Connection) -> TopicAdmin:
    """The handler's only door to Kafka (tests replace it with an in-memory ``TopicAdmin``)."""
    return KafkaTopicAdmin(connection)


def _deadline(timeout_seconds: int, context: LambdaContext) -> Deadline:
    lambda_left = context.get_remaining_time_in_millis() / 1000.0 - SAFETY_MARGIN_SECONDS
    return Deadline.after(max(1.0, min(float(timeout_seconds), lambda_left)))


def _create_or_update(
    cfn: CloudFormationCustomResourceEvent, context: LambdaContext
) -> dict[str, Any]:
    props = parse_properties(cfn.resource_properties)
    bootstrap = props.connection.bootstrap_servers
    if cfn.request_type == "Create":
        resource_id = physical_id(cfn.stack_id, cfn.logical_resource_id, bootstrap)
        previous: tuple[Any, ...] = ()
    else:
        # Never change the id on Update: CloudFormation would then Delete the "old" resource.
        resource_id = cfn.physical_resource_id
        previous = previous_topics(cfn.old_resource_properties, bootstrap)
    stack_id = cfn.stack_id
    request = SyncRequest(
        desired=props.topics,
        cluster_type=props.cluster_type,
        previous=previous,
        prune=props.prune,
        dry_run=props.dry_run,
        is_rollback=(lambda: is_update_rollback(stack_id))
        if cfn.request_type == "Update"
        else (lambda: False),
    )
    logger.info(
        "sync",
        extra={
            "bootstrap_servers": bootstrap,
            "auth": props.connection.auth.value,
            "topics": len(props.topics),
            "prune": props.prune,
            "dry_run": props.dry_run,
            "sync_token": props.sync_token,
        },
    )
    deadline = _deadline(props.timeout_seconds, context)
    started = time.monotonic()
    try:
        report = sync(request, make_admin(props.connection), deadline)
    except TopicSyncError as error:
        emit_failed_sync_metrics(error, time.monotonic() - started)
        raise
    emit_sync_metrics(report.plan, time.monotonic() - started)
    data = summarize(
        report.plan, dry_run=report.dry_run, rollback=report.rollback, requests=report.requests
    )
    logger.info("done", extra={"summary": data})
    return {"PhysicalResourceId": resource_id, "Data": data}


def _delete(cfn: CloudFormationCustomResourceEvent, context: LambdaContext) -> dict[str, Any]:
    resource_id = cfn.physical_resource_id
    raw = cfn.resource_properties
    if not resource_id.startswith(PHYSICAL_ID_PREFIX):
        # Not an id we issued (e.g. a Create that failed): there is nothing of ours to remove.
        logger.info("nothing to delete")
        return {"PhysicalResourceId": resource_id, "Data": summarize(Plan(()))}
    policy = str(raw.get("RemovalPolicy") or "RETAIN").upper()
    if policy != RemovalPolicy.DESTROY.value:
        # RETAIN needs no cluster access at all: a Delete must not fail because Kafka is gone.
        return _retain(resource_id, raw)
    status = stack_status(cfn.stack_id)
    if status != DELETING_STATUS:
        # Not a stack delete: the resource was removed or renamed, or a Create/Update is being
        # rolled back; the topics may hold data that predates this resource (adopted). Keep them.
        logger.warning(
            "RemovalPolicy DESTROY deletes topics only when the stack is deleted",
            extra={"stack_status": status},
        )
        return _retain(resource_id, raw)
    props = parse_properties(raw)
    request = SyncRequest(
        desired=(),
        cluster_type=props.cluster_type,
        previous=props.topics,
        prune=True,
        dry_run=props.dry_run,
    )
    deadline = _deadline(props.timeout_seconds, context)
    report = sync(request, make_admin(props.connection), deadline)
    data = summarize(report.plan, dry_run=report.dry_run, requests=report.requests)
    logger.info("done", extra={"summary": data})
    return {"PhysicalResourceId": resource_id, "Data": data}


def _retain(resource_id: str, raw: dict[str, Any]) -> dict[str, Any]:
    bootstrap = raw.get("BootstrapServers")
    kept = previous_topics(raw, bootstrap if isinstance(bootstrap, str) else "")
    logger.info("retaining topics", extra={"topics": len(kept)})
    return {
        "PhysicalResourceId": resource_id,
        "Data": summarize(Plan(()), retained=[t.name for t in kept]),
    }
