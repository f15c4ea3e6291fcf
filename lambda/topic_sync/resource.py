"""The CloudFormation resource-properties contract, converted to engine values at the edge.

CloudFormation turns numbers and booleans into strings, so both forms are accepted.
"""

from __future__ import annotations

import enum
import hashlib
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from topic_sync.connection import AuthMode, Connection
from topic_sync.exceptions import SpecError
from topic_sync.spec import (
    ClusterType,
    TopicSpec,
    parse_bool,
    parse_cluster_type,
    parse_int,
    parse_topics,
    topic_name_problem,
)

DEFAULT_TIMEOUT_SECONDS = 60
MAX_TIMEOUT_SECONDS = 900  # a Lambda never runs longer
PHYSICAL_ID_PREFIX = "topic-sync-"


class RemovalPolicy(enum.Enum):
    RETAIN = "RETAIN"
    DESTROY = "DESTROY"


@dataclass(frozen=True)
class ResourceProperties:
    connection: Connection
    cluster_type: ClusterType
    topics: tuple[TopicSpec, ...]
    removal_policy: RemovalPolicy = RemovalPolicy.RETAIN
    prune: bool = False
    dry_run: bool = False
    timeout_seconds: int = DEFAULT_TIMEOUT_SECONDS
    sync_token: str = ""


def _enum(problems: list[str], key: str, value: Any, allowed: type[enum.Enum], default: str) -> Any:
    text = default if value is None or value == "" else str(value).upper()
    try:
        return allowed(text)
    except ValueError:
        options = " | ".join(m.value for m in allowed)
        problems.append(f"{key}: must be {options}, got {value!r}")
        return allowed(default)


def _bool(problems: list[str], key: str, value: Any) -> bool:
    parsed = parse_bool(value, default=False)
    if parsed is None:
        problems.append(f"{key}: must be true or false, got {value!r}")
        return False
    return parsed


def parse_properties(raw: Mapping[str, Any]) -> ResourceProperties:
    """Validate ResourceProperties; SpecError lists every problem (nothing has been touched)."""
    problems: list[str] = []
    bootstrap = raw.get("BootstrapServers")
    if not isinstance(bootstrap, str) or not bootstrap.strip():
        problems.append("BootstrapServers: required, 'host:port[,host:port...]'")
        bootstrap = ""
    auth = _enum(problems, "Auth", raw.get("Auth"), AuthMode, "IAM")
    region = raw.get("Region")
    client_config = raw.get("ClientConfig") or {}
    if not isinstance(client_config, Mapping):
        problems.append("ClientConfig: must be a map of librdkafka settings")
        client_config = {}
    try:
        cluster_type = parse_cluster_type(raw.get("ClusterType"))
    except SpecError as error:
        problems.extend(error.problems)
        cluster_type = ClusterType.SERVERLESS
    removal = _enum(problems, "RemovalPolicy", raw.get("RemovalPolicy"), RemovalPolicy, "RETAIN")
    prune = _bool(problems, "Prune", raw.get("Prune"))
    dry_run = _bool(problems, "DryRun", raw.get("DryRun"))
    raw_timeout = raw.get("TimeoutSeconds")
    timeout = DEFAULT_TIMEOUT_SECONDS if raw_timeout in (None, "") else parse_int(raw_timeout)
    if timeout is None or not 1 <= timeout <= MAX_TIMEOUT_SECONDS:
        problems.append(f"TimeoutSeconds: must be 1..{MAX_TIMEOUT_SECONDS}, got {raw_timeout!r}")
        timeout = DEFAULT_TIMEOUT_SECONDS
    topics: tuple[TopicSpec, ...] = ()
    try:
        topics = parse_topics(raw.get("Topics") or [], cluster_type)
    except SpecError as error:
        problems.extend(error.problems)
    connection: Connection | None = None
    if bootstrap:
        try:
            connection = Connection(
                bootstrap,
                auth,
                str(region) if region else None,
                {str(k): str(v) for k, v in client_config.items()},
            )
        except SpecError as error:
            problems.extend(error.problems)
    if problems or connection is None:
        raise SpecError(problems)
    return ResourceProperties(
        connection=connection,
        cluster_type=cluster_type,
        topics=topics,
        removal_policy=removal,
        prune=prune,
        dry_run=dry_run,
        timeout_seconds=timeout,
        sync_token=str(raw.get("SyncToken") or ""),
    )


def previous_topics(old: Mapping[str, Any] | None, new_bootstrap: str) -> tuple[TopicSpec, ...]:
    """The topics this resource managed before, from OldResourceProperties, leniently.

    During a rollback the old properties are the failed update's, possibly invalid: keep
    every entry with a usable name. A different cluster means nothing there is ours yet.
    """
    if not old or normalized_bootstrap(str(old.get("BootstrapServers", ""))) != (
        normalized_bootstrap(new_bootstrap)
    ):
        return ()
    raw_topics = old.get("Topics")
    if not isinstance(raw_topics, list):
        return ()
    topics: dict[str, TopicSpec] = {}
    for item in raw_topics:
        if not isinstance(item, Mapping):
            continue
        name = item.get("Name")
        if not isinstance(name, str) or topic_name_problem(name) or name in topics:
            continue
        config = item.get("Config")
        keys = {str(k): str(v) for k, v in config.items()} if isinstance(config, Mapping) else {}
        partitions = parse_int(item.get("Partitions")) or 1
        topics[name] = TopicSpec(name, max(partitions, 1), None, keys)
    return tuple(topics.values())


def normalized_bootstrap(bootstrap: str) -> str:
    return ",".join(sorted(s.strip().lower() for s in bootstrap.split(",") if s.strip()))


def physical_id(stack_id: str, logical_id: str, bootstrap: str) -> str:
    """Stable for the life of the resource: cluster + resource, never the topic list."""
    identity = "\n".join((stack_id, logical_id, normalized_bootstrap(bootstrap)))
    return PHYSICAL_ID_PREFIX + hashlib.sha256(identity.encode()).hexdigest()[:24]
