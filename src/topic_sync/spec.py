"""The desired state: validated, immutable topic specs.

Pure and light on imports on purpose: the CDK construct calls ``parse_topics`` at synth
time, so nothing here may pull in confluent_kafka or boto3.
"""

from __future__ import annotations

import enum
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

from topic_sync.exceptions import SpecError, clip


class ClusterType(enum.Enum):
    SERVERLESS = "SERVERLESS"
    PROVISIONED = "PROVISIONED"


MAX_TOPIC_NAME_LENGTH = 249
TOPIC_NAME_PATTERN = r"^[a-zA-Z0-9._-]{1,249}$"
_TOPIC_NAME_RE = re.compile(TOPIC_NAME_PATTERN)
#: Kafka's own topics (__consumer_offsets, __transaction_state) and MSK's (__amazon_msk_*):
#: growing or reconfiguring them loses consumer offsets, so no spec may name them.
INTERNAL_TOPIC_PREFIX = "__"

#: MSK Serverless quotas, per cluster (developerguide/limits.html): partition leaders of
#: non-compacted topics, and of compacted topics. A single topic cannot exceed them either.
SERVERLESS_MAX_PARTITIONS = 2400
SERVERLESS_MAX_COMPACTED_PARTITIONS = 120
#: Provisioned: MSK's largest Standard brokers are sized for 4000 partition replicas each
#: (developerguide/bestpractices.html, "Right-size your cluster") and a cluster has at most 30
#: brokers by default (limits.html): 120,000 replicas. No sane single topic comes near that.
PROVISIONED_MAX_PARTITIONS = 120_000
#: Kafka's CreateTopics request carries the replication factor as an INT16.
MAX_REPLICATION_FACTOR = 32_767

#: MSK Serverless: configs that can be set at creation and changed later.
SERVERLESS_ALTERABLE_CONFIGS = frozenset(
    {
        "compression.type",
        "max.message.bytes",
        "message.timestamp.difference.max.ms",
        "message.timestamp.type",
        "retention.bytes",
        "retention.ms",
    }
)
#: MSK Serverless: configs that can only be set when the topic is created.
SERVERLESS_CREATE_ONLY_CONFIGS = frozenset({"cleanup.policy"})
SERVERLESS_ALLOWED_CONFIGS = SERVERLESS_ALTERABLE_CONFIGS | SERVERLESS_CREATE_ONLY_CONFIGS
#: MSK Serverless rejects larger messages.
SERVERLESS_MAX_MESSAGE_BYTES = 8_388_608

#: Every topic-level config Apache Kafka knows (3.x and 4.x). Anything else is a typo.
KNOWN_TOPIC_CONFIGS = frozenset(
    {
        "cleanup.policy",
        "compression.gzip.level",
        "compression.lz4.level",
        "compression.type",
        "compression.zstd.level",
        "delete.retention.ms",
        "file.delete.delay.ms",
        "flush.messages",
        "flush.ms",
        "follower.replication.throttled.replicas",
        "index.interval.bytes",
        "leader.replication.throttled.replicas",
        "local.retention.bytes",
        "local.retention.ms",
        "max.compaction.lag.ms",
        "max.message.bytes",
        "message.downconversion.enable",
        "message.format.version",
        "message.timestamp.after.max.ms",
        "message.timestamp.before.max.ms",
        "message.timestamp.difference.max.ms",
        "message.timestamp.type",
        "min.cleanable.dirty.ratio",
        "min.compaction.lag.ms",
        "min.insync.replicas",
        "preallocate",
        "remote.log.copy.disable",
        "remote.log.delete.on.disable",
        "remote.storage.enable",
        "retention.bytes",
        "retention.ms",
        "segment.bytes",
        "segment.index.bytes",
        "segment.jitter.ms",
        "segment.ms",
        "unclean.leader.election.enable",
    }
)

# Value checks for the configs where a typo is likely and cheap to catch before any call.
_ENUM_VALUES: Mapping[str, frozenset[str]] = {
    "cleanup.policy": frozenset({"delete", "compact", "compact,delete", "delete,compact"}),
    "compression.type": frozenset({"uncompressed", "zstd", "lz4", "snappy", "gzip", "producer"}),
    "message.timestamp.type": frozenset({"CreateTime", "LogAppendTime"}),
}
_INTEGER_SUFFIXES = (".ms", ".bytes", ".messages", ".replicas", ".level")
_INTEGER_EXCLUDED = frozenset(
    {"follower.replication.throttled.replicas", "leader.replication.throttled.replicas"}
)
_BOOLEAN_CONFIGS = frozenset(
    {
        "message.downconversion.enable",
        "preallocate",
        "remote.log.copy.disable",
        "remote.log.delete.on.disable",
        "remote.storage.enable",
        "unclean.leader.election.enable",
    }
)
# Plain decimal, as Kafka prints it back: no sign but '-', no leading zeros, ASCII digits only
# (str.isdigit and int() accept full-width digits; "010" would read back as "10": a perpetual diff).
_DECIMAL_RE = re.compile(r"-?(0|[1-9][0-9]*)", re.ASCII)
_MAX_DECIMAL_DIGITS = 19  # Kafka's longs; a longer number is a typo or an attack on int()


@dataclass(frozen=True)
class TopicSpec:
    """One topic as the user wants it. ``replication_factor`` None means the cluster default."""

    name: str
    partitions: int
    replication_factor: int | None = None
    config: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}))

    def __post_init__(self) -> None:
        # Read-only view so a spec can be shared between plan, apply and verify safely.
        object.__setattr__(self, "config", MappingProxyType(dict(self.config)))

    def __hash__(self) -> int:
        return hash((self.name, self.partitions, self.replication_factor, self.config_items()))

    def config_items(self) -> tuple[tuple[str, str], ...]:
        return tuple(sorted(self.config.items()))


def topic_name_problem(name: str) -> str | None:
    """Why ``name`` is not a legal Kafka topic name, or None if it is."""
    if name in (".", ".."):
        return "is not allowed as a topic name"
    if not name:
        return "must not be empty"
    if len(name) > MAX_TOPIC_NAME_LENGTH:
        return f"is {len(name)} characters long (max {MAX_TOPIC_NAME_LENGTH})"
    if not _TOPIC_NAME_RE.match(name):
        return "may contain only ASCII letters, digits, '.', '_' and '-'"
    if name.startswith(INTERNAL_TOPIC_PREFIX):
        return (
            f"starts with {INTERNAL_TOPIC_PREFIX!r}, reserved for Kafka's and MSK's internal "
            "topics (e.g. __consumer_offsets)"
        )
    return None


def parse_int(value: Any) -> int | None:
    """An int from ``3`` or ``"3"`` (CloudFormation sends strings); None if it isn't one.

    Strings must be plain decimal exactly as Kafka would print the number: ``"3"``, ``"-1"``;
    never ``" 3"``, ``"+3"``, ``"03"``, ``"0x3"``, ``"1_000"``, ``"3.0"`` or non-ASCII digits.
    """
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value if abs(value) < 10**_MAX_DECIMAL_DIGITS else None
    if (
        isinstance(value, str)
        and len(value) <= _MAX_DECIMAL_DIGITS + 1
        and _DECIMAL_RE.fullmatch(value)
    ):
        return int(value)
    return None


def max_partitions(cluster_type: ClusterType) -> int:
    """The most partitions one topic may declare on ``cluster_type``."""
    if cluster_type is ClusterType.SERVERLESS:
        return SERVERLESS_MAX_PARTITIONS
    return PROVISIONED_MAX_PARTITIONS


def is_compacted(topic: TopicSpec) -> bool:
    return "compact" in topic.config.get("cleanup.policy", "")


def serverless_quota_problems(topics: Sequence[TopicSpec]) -> list[str]:
    """What in ``topics`` alone already exceeds the MSK Serverless per-cluster quotas.

    The one place synth, the CLI and the Lambda check them (all through ``parse_topics``).
    """
    compacted = sum(t.partitions for t in topics if is_compacted(t))
    total = sum(t.partitions for t in topics)
    problems = []
    if total > SERVERLESS_MAX_PARTITIONS:
        problems.append(
            f"Topics: the topics declare {total} partitions; MSK Serverless allows at most "
            f"{SERVERLESS_MAX_PARTITIONS} per cluster"
        )
    if compacted > SERVERLESS_MAX_COMPACTED_PARTITIONS:
        problems.append(
            f"Topics: the compacted topics declare {compacted} partitions; MSK Serverless allows "
            f"at most {SERVERLESS_MAX_COMPACTED_PARTITIONS} compacted partitions per cluster"
        )
    return problems


def parse_bool(value: Any, *, default: bool) -> bool | None:
    """A bool from ``true`` or ``"true"``; None if it isn't one."""
    if value is None:
        return default
    if isinstance(value, bool):
        return value
    if isinstance(value, str):
        text = value.strip().lower()
        if text in ("true", "false"):
            return text == "true"
        if text == "":
            return default
    return None


def _config_value_problem(key: str, value: str, cluster_type: ClusterType) -> str | None:
    """Why ``value`` is not one Kafka would report back unchanged (else: a diff on every sync)."""
    allowed = _ENUM_VALUES.get(key)
    if allowed is not None and value not in allowed:
        return f"config {key}={clip(value)} must be one of {', '.join(sorted(allowed))}"
    if key in _BOOLEAN_CONFIGS and value not in ("true", "false"):
        return f"config {key}={clip(value)} must be true or false"
    if value != value.strip() or not value.isprintable():
        return f"config {key}={clip(value)} must not have surrounding spaces or control characters"
    if key.endswith(_INTEGER_SUFFIXES) and key not in _INTEGER_EXCLUDED:
        number = parse_int(value)
        if number is None:
            return f"config {key}={clip(value)} must be an integer in plain decimal digits"
        if (
            key == "max.message.bytes"
            and cluster_type is ClusterType.SERVERLESS
            and number > SERVERLESS_MAX_MESSAGE_BYTES
        ):
            return (
                f"config max.message.bytes={value} exceeds the MSK Serverless maximum "
                f"{SERVERLESS_MAX_MESSAGE_BYTES}"
            )
    return None


def _config_problems(
    label: str, raw: Any, cluster_type: ClusterType
) -> tuple[dict[str, str], list[str]]:
    if raw is None:
        return {}, []
    if not isinstance(raw, Mapping):
        return {}, [f"{label}: Config must be a map of config name to value"]
    config: dict[str, str] = {}
    problems: list[str] = []
    for key, value in raw.items():
        if not isinstance(key, str):
            problems.append(f"{label}: config key {clip(key)} must be a string")
            continue
        if key not in KNOWN_TOPIC_CONFIGS:
            problems.append(f"{label}: unknown topic config {clip(key)}")
            continue
        if isinstance(value, bool):
            text = "true" if value else "false"
        elif isinstance(value, int):
            if parse_int(value) is None:
                problems.append(f"{label}: config {key}={clip(value)} is out of range")
                continue
            text = str(value)
        elif isinstance(value, str):
            text = value
        else:
            problems.append(
                f"{label}: config {key} must be a string or a number, got {clip(value)}"
            )
            continue
        if cluster_type is ClusterType.SERVERLESS and key not in SERVERLESS_ALLOWED_CONFIGS:
            problems.append(
                f"{label}: config {key} is not allowed on MSK Serverless "
                f"(allowed: {', '.join(sorted(SERVERLESS_ALLOWED_CONFIGS))})"
            )
            continue
        problem = _config_value_problem(key, text, cluster_type)
        if problem:
            problems.append(f"{label}: {problem}")
            continue
        config[key] = text
    return config, problems


def _parse_one(
    index: int, raw: Any, cluster_type: ClusterType
) -> tuple[TopicSpec | None, list[str]]:
    if not isinstance(raw, Mapping):
        return None, [f"Topics[{index}]: must be a map with Name, Partitions and Config"]
    name = raw.get("Name")
    if not isinstance(name, str):
        return None, [f"Topics[{index}]: Name is required and must be a string, got {clip(name)}"]
    label = f"topic {clip(name)}"
    problems: list[str] = []
    unknown_keys = sorted(
        clip(k, 40) for k in raw if k not in ("Name", "Partitions", "ReplicationFactor", "Config")
    )
    if unknown_keys:
        problems.append(f"{label}: unknown properties {', '.join(unknown_keys[:5])}")
    name_problem = topic_name_problem(name)
    if name_problem:
        problems.append(f"{label}: name {name_problem}")
    raw_partitions = raw.get("Partitions")
    partitions = parse_int(raw_partitions)
    limit = max_partitions(cluster_type)
    if partitions is None or partitions < 1:
        hint = " (plain decimal digits only)" if isinstance(raw_partitions, str) else ""
        problems.append(
            f"{label}: Partitions must be a positive integer, got {clip(raw_partitions)}{hint}"
        )
        partitions = None
    elif partitions > limit:
        problems.append(
            f"{label}: Partitions {partitions} exceeds the maximum of {limit} per topic "
            f"on {cluster_type.value}"
        )
        partitions = None
    replication_factor: int | None = None
    raw_rf = raw.get("ReplicationFactor")
    if raw_rf is not None and raw_rf != "":
        if cluster_type is ClusterType.SERVERLESS:
            problems.append(f"{label}: ReplicationFactor cannot be set on MSK Serverless")
        else:
            replication_factor = parse_int(raw_rf)
            if replication_factor is None or not 1 <= replication_factor <= MAX_REPLICATION_FACTOR:
                problems.append(
                    f"{label}: ReplicationFactor must be an integer 1..{MAX_REPLICATION_FACTOR}, "
                    f"got {clip(raw_rf)}"
                )
    config, config_problems = _config_problems(label, raw.get("Config"), cluster_type)
    problems.extend(config_problems)
    if problems or partitions is None:
        return None, problems
    return TopicSpec(name, partitions, replication_factor, config), []


def parse_topics(
    raw: Sequence[Mapping[str, Any]], cluster_type: ClusterType
) -> tuple[TopicSpec, ...]:
    """Validate CloudFormation-style topic dicts; raise SpecError listing every problem.

    On MSK Serverless the per-cluster partition quotas are checked too.
    """
    if isinstance(raw, str | bytes) or not isinstance(raw, Sequence):
        raise SpecError([f"Topics: must be a list of topics, got {clip(raw)}"])
    problems: list[str] = []
    specs: list[TopicSpec] = []
    seen: dict[str, str] = {}
    for index, item in enumerate(raw):
        spec, item_problems = _parse_one(index, item, cluster_type)
        problems.extend(item_problems)
        name = item.get("Name") if isinstance(item, Mapping) else None
        if isinstance(name, str):
            # Kafka treats '.' and '_' as colliding in metric names and refuses such pairs.
            key = name.replace(".", "_")
            if key in seen:
                if seen[key] == name:
                    problems.append(f"topic {clip(name)}: duplicate name")
                else:
                    problems.append(f"topic {clip(name)}: collides with topic {clip(seen[key])}")
                continue
            seen[key] = name
        if spec is not None:
            specs.append(spec)
    if not problems and cluster_type is ClusterType.SERVERLESS:
        problems = serverless_quota_problems(specs)
    if problems:
        raise SpecError(problems)
    return tuple(specs)


def parse_cluster_type(value: Any) -> ClusterType:
    """ClusterType from its name (default SERVERLESS); SpecError otherwise."""
    if value is None or value == "":
        return ClusterType.SERVERLESS
    try:
        if not isinstance(value, str):
            raise ValueError(value)
        return ClusterType(value.upper())
    except ValueError:
        raise SpecError(
            [f"ClusterType: must be SERVERLESS or PROVISIONED, got {clip(value)}"]
        ) from None
