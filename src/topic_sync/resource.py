"""The CloudFormation resource-properties contract, converted to engine values at the edge.

CloudFormation turns numbers and booleans into strings, so both forms are accepted.
"""

from __future__ import annotations

import enum
import hashlib
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from topic_sync.connection import AuthMode, Connection
from topic_sync.exceptions import SpecError, clip
from topic_sync.pacing import DEFAULT_RATES, PartitionRate
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
#: The Provider framework's waiter gives up after at most 2 hours.
MAX_TOTAL_SECONDS = 7200
PHYSICAL_ID_PREFIX = "topic-sync-"
# us-east-1, eu-central-2, us-gov-west-1, cn-north-1: the signer puts it in a host name.
_REGION_RE = re.compile(r"[a-z]{2}(-[a-z]+)+-[0-9]{1,2}", re.ASCII)


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
    #: Partition mutations per window (None: not paced); default from the cluster type.
    partition_rate: PartitionRate | None = None
    #: Set when the Provider's is_complete waiter follows on_event: its whole budget.
    total_timeout_seconds: int | None = None
    sync_token: str = ""


def _enum(problems: list[str], key: str, value: Any, allowed: type[enum.Enum], default: str) -> Any:
    text = default if value is None or value == "" else value
    try:
        if not isinstance(text, str):
            raise ValueError(text)
        return allowed(text.upper())
    except ValueError:
        options = " | ".join(m.value for m in allowed)
        problems.append(f"{key}: must be {options}, got {clip(value)}")
        return allowed(default)


def _bool(problems: list[str], key: str, value: Any) -> bool:
    parsed = parse_bool(value, default=False)
    if parsed is None:
        problems.append(f"{key}: must be true or false, got {clip(value)}")
        return False
    return parsed


def _client_config(problems: list[str], raw: Any) -> dict[str, str]:
    """ClientConfig as librdkafka strings; which keys are allowed is Connection's call."""
    if raw is None or raw == "":
        return {}
    if not isinstance(raw, Mapping):
        problems.append(f"ClientConfig: must be a map of librdkafka settings, got {clip(raw)}")
        return {}
    settings: dict[str, str] = {}
    for key, value in raw.items():
        if not isinstance(key, str):
            problems.append(f"ClientConfig: keys must be strings, got {clip(key)}")
        elif isinstance(value, bool):
            settings[key] = "true" if value else "false"
        elif isinstance(value, str):
            settings[key] = value
        elif isinstance(value, int) and parse_int(value) is not None:
            settings[key] = str(value)
        else:
            problems.append(f"ClientConfig: {clip(key)} must be a string, got {clip(value)}")
    return settings


def _sync_token(value: Any) -> str:
    """Only logged (a new one forces a re-sync): never str() an arbitrary structure."""
    if value is None:
        return ""
    if isinstance(value, str):
        return value[:256]
    if parse_int(value) is not None:
        return str(value)
    return clip(value)


def _topics(problems: list[str], raw: Mapping[str, Any], cluster_type: ClusterType) -> Any:
    """The desired topics. Absent, null, "" or not a list is a refusal, never "no topics": on an
    Update with Prune that would delete every topic the resource had."""
    value = raw.get("Topics")
    if value is None or value == "":
        got = "nothing" if "Topics" not in raw else clip(value)
        problems.append(f"Topics: required, a list of topics (an explicit [] for none), got {got}")
        return ()
    try:
        return parse_topics(value, cluster_type)
    except SpecError as error:
        problems.extend(error.problems)
        return ()


def parse_properties(raw: Mapping[str, Any]) -> ResourceProperties:
    """Validate ResourceProperties; SpecError lists every problem (nothing has been touched)."""
    if not isinstance(raw, Mapping):
        raise SpecError([f"ResourceProperties: must be a map, got {clip(raw)}"])
    problems: list[str] = []
    bootstrap = raw.get("BootstrapServers")
    if not isinstance(bootstrap, str) or not bootstrap.strip():
        problems.append(
            f"BootstrapServers: required, 'host:port[,host:port...]', got {clip(bootstrap)}"
        )
        bootstrap = ""
    auth = _enum(problems, "Auth", raw.get("Auth"), AuthMode, "IAM")
    region = raw.get("Region")
    if (
        region is not None
        and region != ""
        and (not isinstance(region, str) or not _REGION_RE.fullmatch(region))
    ):
        problems.append(f"Region: must be an AWS region such as us-east-1, got {clip(region)}")
        region = "us-east-1"  # stands in, so the checks below do not also say "Region: required"
    client_config = _client_config(problems, raw.get("ClientConfig"))
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
        problems.append(
            f"TimeoutSeconds: must be 1..{MAX_TIMEOUT_SECONDS}, got {clip(raw_timeout)}"
        )
        timeout = DEFAULT_TIMEOUT_SECONDS
    topics: tuple[TopicSpec, ...] = _topics(problems, raw, cluster_type)
    rate = _partition_rate(problems, raw.get("PartitionRate"), cluster_type)
    raw_total = raw.get("TotalTimeoutSeconds")
    total = None if raw_total in (None, "") else parse_int(raw_total)
    if raw_total not in (None, "") and (total is None or not 1 <= total <= MAX_TOTAL_SECONDS):
        problems.append(
            f"TotalTimeoutSeconds: must be 1..{MAX_TOTAL_SECONDS}, got {clip(raw_total)}"
        )
        total = None
    connection: Connection | None = None
    if bootstrap:
        try:
            connection = Connection(bootstrap, auth, region or None, client_config)
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
        sync_token=_sync_token(raw.get("SyncToken")),
        partition_rate=rate,
        total_timeout_seconds=total,
    )


def _partition_rate(
    problems: list[str], value: Any, cluster_type: ClusterType
) -> PartitionRate | None:
    """``250/300s``, ``off`` (no pacing), or absent (the cluster type's default)."""
    if value is None or value == "":
        return DEFAULT_RATES[cluster_type]
    if isinstance(value, str) and value.lower() == "off":
        return None
    try:
        return PartitionRate.parse(value, source="PartitionRate")
    except SpecError as error:
        problems.extend(error.problems)
        return None


def previous_topics(old: Mapping[str, Any] | None, new_bootstrap: str) -> tuple[TopicSpec, ...]:
    """The topics this resource managed before, from OldResourceProperties, leniently.

    During a rollback the old properties are the failed update's, possibly invalid: keep
    every entry with a usable name. A different cluster means nothing there is ours yet.
    """
    if not isinstance(old, Mapping):
        return ()
    old_bootstrap = old.get("BootstrapServers")
    if not isinstance(old_bootstrap, str) or normalized_bootstrap(old_bootstrap) != (
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
        keys = (
            {
                k: str(v)
                for k, v in config.items()
                if isinstance(k, str) and (isinstance(v, str) or parse_int(v) is not None)
            }
            if isinstance(config, Mapping)
            else {}
        )
        partitions = parse_int(item.get("Partitions")) or 1
        topics[name] = TopicSpec(name, max(partitions, 1), None, keys)
    return tuple(topics.values())


def normalized_bootstrap(bootstrap: str) -> str:
    return ",".join(sorted(s.strip().lower() for s in bootstrap.split(",") if s.strip()))


def physical_id(stack_id: str, logical_id: str, bootstrap: str) -> str:
    """Stable for the life of the resource: cluster + resource, never the topic list."""
    identity = "\n".join((stack_id, logical_id, normalized_bootstrap(bootstrap)))
    return PHYSICAL_ID_PREFIX + hashlib.sha256(identity.encode()).hexdigest()[:24]
