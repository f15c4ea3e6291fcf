"""CloudFormation custom resource (CDK Provider ``on_event``): make Kafka topics match the spec.

Returns ``{"PhysicalResourceId", "Data"}`` or raises; the Provider framework owns the reply to
CloudFormation, so this never touches the ResponseURL.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable, Mapping
from typing import Any

from aws_lambda_powertools import Logger
from aws_lambda_powertools.logging.utils import copy_config_to_registered_loggers
from aws_lambda_powertools.utilities.data_classes import CloudFormationCustomResourceEvent
from aws_lambda_powertools.utilities.typing import LambdaContext

from topic_sync.admin import TopicAdmin
from topic_sync.connection import Connection
from topic_sync.exceptions import SpecError, SyncIncompleteError, TopicSyncError, clip
from topic_sync.kafka_admin import KafkaTopicAdmin
from topic_sync.metrics import emit_failed_sync_metrics, emit_sync_metrics
from topic_sync.pacing import DEFAULT_RATES, Pacing
from topic_sync.plan import Plan
from topic_sync.resource import (
    PHYSICAL_ID_PREFIX,
    RemovalPolicy,
    ResourceProperties,
    parse_properties,
    physical_id,
    previous_topics,
)
from topic_sync.retry import Deadline
from topic_sync.rollback import DELETING_STATUS, is_update_rollback, stack_status
from topic_sync.spec import ClusterType
from topic_sync.summary import summarize
from topic_sync.sync import SyncReport, SyncRequest, sync

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
#: is_complete fails on its own this long before TotalTimeout (the framework's query
#: interval plus a call), so the Reason says what was done instead of "Operation timed out".
IS_COMPLETE_MARGIN_SECONDS = 90.0
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
        _fail(error)
        raise


def _fail(error: TopicSyncError) -> None:
    message = str(error)
    logger.error(
        "sync failed", extra={"reason": message[:100_000], "error_type": type(error).__name__}
    )
    # Same exception type (Lambda reports it as errorType), with the bounded message.
    error.args = (bounded_reason(message, logs_hint()),)


def make_admin(connection: Connection) -> TopicAdmin:
    """The handler's only door to Kafka (tests replace it with an in-memory ``TopicAdmin``)."""
    return KafkaTopicAdmin(connection)


def _deadline(timeout_seconds: int, context: LambdaContext) -> Deadline:
    lambda_left = context.get_remaining_time_in_millis() / 1000.0 - SAFETY_MARGIN_SECONDS
    seconds = max(1.0, min(float(timeout_seconds), lambda_left))
    return Deadline.after(seconds, clock=time.monotonic)


def _sync_request(
    cfn: CloudFormationCustomResourceEvent, props: ResourceProperties, rollback: bool | None
) -> SyncRequest:
    """The sync a Create/Update asks for; ``rollback`` None: ask CloudFormation if needed."""
    bootstrap = props.connection.bootstrap_servers
    previous: tuple[Any, ...] = ()
    if cfn.request_type != "Create":
        previous = previous_topics(cfn.old_resource_properties, bootstrap)
    stack_id = cfn.stack_id
    if rollback is not None:
        known = rollback
        is_rollback: Callable[[], bool] = lambda: known  # noqa: E731 (decided by on_event)
    elif cfn.request_type == "Update":
        is_rollback = lambda: is_update_rollback(stack_id)  # noqa: E731
    else:
        is_rollback = lambda: False  # noqa: E731
    return SyncRequest(
        desired=props.topics,
        cluster_type=props.cluster_type,
        previous=previous,
        prune=props.prune,
        dry_run=props.dry_run,
        is_rollback=is_rollback,
    )


def _create_or_update(
    cfn: CloudFormationCustomResourceEvent, context: LambdaContext
) -> dict[str, Any]:
    props = parse_properties(cfn.resource_properties)
    bootstrap = props.connection.bootstrap_servers
    if cfn.request_type == "Create":
        resource_id = physical_id(cfn.stack_id, cfn.logical_resource_id, bootstrap)
    else:
        # Never change the id on Update: CloudFormation would then Delete the "old" resource.
        resource_id = cfn.physical_resource_id
    request = _sync_request(cfn, props, rollback=None)
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
    started_at = time.time()
    pacing = Pacing(props.partition_rate) if props.partition_rate else None
    try:
        report = sync(
            request, make_admin(props.connection), deadline, pacing=pacing, sleep=time.sleep
        )
        if not report.complete and props.total_timeout_seconds is None:
            raise _incomplete(report, "no is_complete waiter follows this invocation")
    except TopicSyncError as error:
        emit_failed_sync_metrics(error, time.monotonic() - started)
        raise
    emit_sync_metrics(report.plan, time.monotonic() - started)
    data = summarize(
        report.plan, dry_run=report.dry_run, rollback=report.rollback, requests=report.requests
    )
    if report.progress is not None:
        # Read back by is_complete (the framework passes on_event's Data to every call).
        data["Complete"] = "true" if report.complete else "false"
        data["Progress"] = report.progress.describe()
        data["StartedAt"] = f"{started_at:.3f}"
        data["PartitionsPlanned"] = str(report.progress.total)
    logger.info("done", extra={"summary": data})
    return {"PhysicalResourceId": resource_id, "Data": data}


def _incomplete(report: SyncReport, why: str) -> SyncIncompleteError:
    progress = report.progress
    assert progress is not None
    left = ", ".join(progress.pending[:10]) + (
        f" (+{len(progress.pending) - 10} more)" if len(progress.pending) > 10 else ""
    )
    return SyncIncompleteError(
        f"the partition quota left work for later ({why}): {progress.describe()}; "
        f"not yet applied: {left}. Nothing created is deleted: the next deploy continues "
        "from here"
    )


@logger.inject_lambda_context(log_event=False)  # the event holds the ResponseURL: never log it
def is_complete(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    """The Provider framework's waiter: continue a paced sync that on_event started.

    Called every query interval with on_event's event and Data until it says IsComplete.
    Each call re-observes, re-plans and applies what the quota affords now (idempotent).
    Data is only allowed with IsComplete true.
    """
    try:
        _check_event(event)
        cfn = CloudFormationCustomResourceEvent(event)
        data = event.get("Data") or {}
        if cfn.request_type == "Delete" or data.get("Complete", "true") == "true":
            return {"IsComplete": True}  # on_event finished it: no Kafka call at all
        return _continue(cfn, data, context)
    except TopicSyncError as error:
        _fail(error)
        raise


def _continue(
    cfn: CloudFormationCustomResourceEvent, data: Mapping[str, Any], context: LambdaContext
) -> dict[str, Any]:
    props = parse_properties(cfn.resource_properties)
    try:
        started_at = float(data["StartedAt"])
        planned = int(data["PartitionsPlanned"])
    except (KeyError, TypeError, ValueError):
        raise SpecError(["Data: on_event's StartedAt / PartitionsPlanned are missing"]) from None
    request = _sync_request(cfn, props, rollback=data.get("Rollback") == "true")
    rate = props.partition_rate or DEFAULT_RATES[ClusterType.SERVERLESS]
    assert rate is not None
    deadline = _deadline(props.timeout_seconds, context)
    report = sync(
        request,
        make_admin(props.connection),
        deadline,
        pacing=Pacing(rate, started_at, planned),
        sleep=time.sleep,
    )
    progress = report.progress.describe() if report.progress else "in sync"
    if report.complete:
        logger.info("complete", extra={"progress": progress})
        return {"IsComplete": True, "Data": {"Complete": "true", "Progress": progress}}
    total = props.total_timeout_seconds or 0
    # Fail with what is done and left before the framework's own "Operation timed out".
    if time.time() + IS_COMPLETE_MARGIN_SECONDS > started_at + total:
        raise _incomplete(report, f"TotalTimeout of {total} s reached")
    logger.info("in progress", extra={"progress": progress})
    return {"IsComplete": False}


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
