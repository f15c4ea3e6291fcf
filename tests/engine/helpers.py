"""Test helpers for the engine: CloudFormation events from real-shaped JSON files, broker reads."""

from __future__ import annotations

import copy
import json
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from confluent_kafka import KafkaError, KafkaException, TopicCollection
from confluent_kafka.admin import (  # type: ignore[attr-defined]
    AdminClient,
    ConfigResource,
    ConfigSource,
)

from topic_sync import handler
from topic_sync_tools.local_invoke import LocalLambdaContext

EVENTS = Path(__file__).parent / "events"
DEFAULT_STACK_ID = (
    "arn:aws:cloudformation:us-east-1:123456789012:stack/app/5b6a6c30-0000-11ef-0000-0a1b2c3d4e5f"
)


def load_event(name: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((EVENTS / f"{name}.json").read_text())
    return data


def event(
    request_type: str,
    props: dict[str, Any],
    *,
    old: dict[str, Any] | None = None,
    physical_id: str | None = None,
    stack_id: str = DEFAULT_STACK_ID,
    logical_id: str = "KafkaTopics",
) -> dict[str, Any]:
    """A real-shaped event (from events/*.json) carrying ``props`` as ResourceProperties."""
    base = load_event(request_type.lower())
    base["StackId"] = stack_id
    base["LogicalResourceId"] = logical_id
    base["RequestId"] = str(uuid.uuid4())
    base["ResourceProperties"] = {"ServiceToken": base["ServiceToken"], **copy.deepcopy(props)}
    if request_type == "Update":
        base["OldResourceProperties"] = {
            "ServiceToken": base["ServiceToken"],
            **copy.deepcopy(old or {}),
        }
    if physical_id is not None:
        base["PhysicalResourceId"] = physical_id
    return base


def invoke(evt: dict[str, Any], remaining_ms: int = 300_000) -> dict[str, Any]:
    context: Any = LocalLambdaContext(remaining_ms=remaining_ms)  # duck-typed LambdaContext
    result: dict[str, Any] = handler.on_event(evt, context)
    return result


def topics_prop(*topics: tuple[str, int] | tuple[str, int, dict[str, str]]) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    for topic in topics:
        item: dict[str, Any] = {"Name": topic[0], "Partitions": str(topic[1])}
        if len(topic) > 2:
            item["Config"] = topic[2]
        out.append(item)
    return out


@dataclass(frozen=True)
class TopicState:
    partitions: int
    config: dict[str, str]  # dynamic (set on the topic) configs only


def broker_state(
    admin: AdminClient, names: list[str], timeout: float = 15.0
) -> dict[str, TopicState]:
    """What the broker has for ``names`` (missing topics are absent)."""
    futures = admin.describe_topics(TopicCollection(list(names)), request_timeout=timeout)
    partitions: dict[str, int] = {}
    for name, future in futures.items():
        try:
            partitions[name] = len(future.result(timeout=timeout).partitions)
        except KafkaException as exc:
            if exc.args[0].code() != KafkaError.UNKNOWN_TOPIC_OR_PART:
                raise
    if not partitions:
        return {}
    resources = [ConfigResource(ConfigResource.Type.TOPIC, n) for n in partitions]
    state: dict[str, TopicState] = {}
    for resource, future in admin.describe_configs(resources, request_timeout=timeout).items():
        entries = future.result(timeout=timeout)
        config = {
            k: e.value
            for k, e in entries.items()
            if e.source == ConfigSource.DYNAMIC_TOPIC_CONFIG.value
        }
        state[resource.name] = TopicState(partitions[resource.name], config)
    return state
