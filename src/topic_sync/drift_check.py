"""Scheduled drift check (EventBridge rule -> this Lambda): the engine in verify mode, read only.

The event is the deployed ``Custom::KafkaTopics`` properties (the schedule's target input, set
by ``stacks/kafka_topics.py``): bootstrap servers, auth, region, cluster type and topics. The
check describes the topics, plans against the spec and changes nothing. It emits the
``DriftedTopics`` metric (``Operation=drift-check``) through ``topic_sync.metrics`` and returns a
report naming every topic that differs and how; an unreachable cluster raises (the function's
Errors alarm fires).
"""

from __future__ import annotations

import time
from typing import Any

from aws_lambda_powertools import Logger
from aws_lambda_powertools.logging.utils import copy_config_to_registered_loggers
from aws_lambda_powertools.utilities.typing import LambdaContext

from topic_sync.admin import TopicAdmin
from topic_sync.connection import Connection
from topic_sync.kafka_admin import KafkaTopicAdmin
from topic_sync.metrics import Operation, drifted, emit_sync_metrics
from topic_sync.resource import parse_properties
from topic_sync.retry import Deadline
from topic_sync.summary import truncated
from topic_sync.sync import SyncRequest, observe, plan_for

logger = Logger(service="topic-sync")
copy_config_to_registered_loggers(source_logger=logger, include={"topic_sync"})

SAFETY_MARGIN_SECONDS = 5.0
_REPORT_BUDGET = 3000  # characters of per-topic differences in the returned report


def make_admin(connection: Connection) -> TopicAdmin:
    """The drift check's only door to Kafka (tests may replace it)."""
    return KafkaTopicAdmin(connection)


@logger.inject_lambda_context(log_event=False)
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    props = parse_properties(event)
    request = SyncRequest(desired=props.topics, cluster_type=props.cluster_type)
    lambda_left = context.get_remaining_time_in_millis() / 1000.0 - SAFETY_MARGIN_SECONDS
    deadline = Deadline.after(max(1.0, min(float(props.timeout_seconds), lambda_left)))
    started = time.monotonic()
    admin = make_admin(props.connection)
    observed = observe(admin, request.names_to_observe(), deadline)
    plan = plan_for(request, observed)
    emit_sync_metrics(plan, time.monotonic() - started, operation=Operation.DRIFT_CHECK)
    differ = drifted(plan)
    report = {
        "InSync": not differ,
        "Checked": len(plan.actions),
        "Drifted": len(differ),
        "DriftedTopics": [a.name for a in differ],
        "Differences": truncated([a.describe() for a in differ], _REPORT_BUDGET, "\n"),
    }
    if differ:
        logger.warning("drift: the cluster differs from the deployed spec", extra=report)
    else:
        logger.info("in sync", extra=report)
    return report
