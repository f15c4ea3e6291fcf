"""topics.yaml: the one declarative file of topics and of who produces/consumes them.

Loaded by the CDK app (and the operator CLI), never by the Lambda: it needs pyyaml, which the
Lambda bundle does not ship. Topic values are validated by ``topic_sync.spec.parse_topics``
(the Lambda's own validation), fed the exact CloudFormation-style dicts the custom resource
will receive, so a bad file fails here with the message the Lambda would give.

Stages: one file serves several environments. ``stages.<stage>`` may override ``defaults``,
declared ``topics`` (partitions, replication_factor, config) and pick which ``services`` the
stage deploys; it cannot add topics or services. A topic's value is the first one set of, from
highest: ``stages.<stage>.topics.<name>``, the topic's own entry, ``stages.<stage>.defaults``,
``defaults``; config is merged key by key in the same order. So a stage's defaults reach exactly
what the file's defaults reach, and a value a topic pins for itself stays pinned unless the stage
names that topic. Every stage is validated on every load, whichever stage (or none) is picked,
so a broken prod override fails the staging synth too. Lowering partitions below what is
deployed is refused at deploy by the engine, not here (the file does not know what is deployed).

Regenerate the editor schema:
``python -m topic_sync_tools.spec_file --write-schema topics.schema.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import stat
import sys
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from topic_sync.exceptions import SpecError, clip, one_line
from topic_sync.spec import (
    INTERNAL_TOPIC_PREFIX,
    MAX_REPLICATION_FACTOR,
    SERVERLESS_ALLOWED_CONFIGS,
    SERVERLESS_CREATE_ONLY_CONFIGS,
    SERVERLESS_MAX_MESSAGE_BYTES,
    SERVERLESS_MAX_PARTITIONS,
    TOPIC_NAME_PATTERN,
    ClusterType,
    TopicSpec,
    parse_topics,
)

# The model: every key the file may contain, with its description. Validation (unknown keys)
# and json_schema() both read these tables, so they cannot drift apart.
TOP_LEVEL_KEYS: Mapping[str, str] = {
    "defaults": "Values every topic gets unless it sets its own.",
    "topics": "The topics that must exist, in any order.",
    "services": "Which service produces to and consumes from which topic.",
    "stages": "Per-stage overrides (`-c stage=NAME` picks one; none: the values above). "
    "Precedence, highest first: stages.<stage>.topics.<name>, the topic's own values, "
    "stages.<stage>.defaults, defaults; config merged key by key in that order. Overrides only: "
    "a stage cannot add topics or services. Every stage is validated on every load.",
}
DEFAULTS_KEYS: Mapping[str, str] = {
    "partitions": "Partition count for topics that do not set one.",
    "replication_factor": "Replication factor (provisioned clusters only; MSK Serverless sets it).",
    "config": "Topic configs every topic gets; a topic's own config overrides them key by key.",
}
TOPIC_KEYS: Mapping[str, str] = {
    "name": "Kafka topic name.",
    "partitions": "Partition count (can grow later, never shrink).",
    "replication_factor": "Replication factor (provisioned clusters only; MSK Serverless sets it).",
    "config": "Topic-level configs; values are strings (numbers are accepted and stringified).",
}
SERVICE_KEYS: Mapping[str, str] = {
    "produces": "Topics the service writes to (WriteData on exactly these topics).",
    "consumes": "Topics the service reads from (ReadData on these, plus its own consumer groups).",
}
STAGE_KEYS: Mapping[str, str] = {
    "defaults": "This stage's defaults, merged over the file's defaults (config key by key); "
    "like those, they reach only topics and config keys a topic does not set itself.",
    "topics": "Overrides of declared topics by name (cannot add topics); they win over the "
    "topic's own values, config key by key.",
    "services": "Which of the file's services this stage deploys (default: all); each keeps "
    "its produces/consumes from the top-level services.",
    "cluster_type": "serverless or provisioned: this stage's cluster, whose rules its values are "
    "checked by on every load (default: the cluster type of the load, e.g. -c clusterType). "
    "Picking the stage for another cluster type is refused.",
}
STAGE_DEFAULTS_KEYS: Mapping[str, str] = {
    "partitions": "Partition count for this stage's topics that do not set one.",
    "replication_factor": "Replication factor for this stage's topics that do not set one "
    "(provisioned clusters only).",
    "config": "Topic configs for this stage, over the file's defaults key by key; a topic's own "
    "config still wins.",
}
STAGE_TOPIC_KEYS: Mapping[str, str] = {
    "partitions": "Partition count in this stage (a deployed topic can grow, never shrink).",
    "replication_factor": "Replication factor in this stage (provisioned clusters only).",
    "config": "Topic configs in this stage, over the topic's own config key by key.",
}
#: Stage names become part of a CloudFormation stack name (TopicSync-<stage>).
STAGE_NAME_PATTERN = r"^[a-z][a-z0-9-]{0,23}$"
_STAGE_NAME_RE = re.compile(STAGE_NAME_PATTERN)
#: Each stage re-validates every topic: the cap keeps a hostile file's load time bounded.
MAX_STAGES = 64
#: Service names become ECS service names, construct ids and consumer group prefixes.
SERVICE_NAME_PATTERN = r"^[a-z][a-z0-9-]{0,31}$"
_SERVICE_NAME_RE = re.compile(SERVICE_NAME_PATTERN)
SCHEMA_ID = "https://topic-sync.invalid/topics.schema.json"


@dataclass(frozen=True)
class ServiceSpec:
    """One service and the topics it uses."""

    name: str
    produces: tuple[str, ...] = ()
    consumes: tuple[str, ...] = ()

    @property
    def topics(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys(self.produces + self.consumes))


@dataclass(frozen=True)
class TopicsFile:
    """A validated topics.yaml."""

    path: Path
    topics: tuple[TopicSpec, ...]
    #: Only the services the stage deploys.
    services: tuple[ServiceSpec, ...]
    #: The stage applied; None: the base values, no overrides.
    stage: str | None = None
    #: Every stage the file declares, in file order.
    stages: tuple[str, ...] = ()

    def service(self, name: str) -> ServiceSpec:
        return next(service for service in self.services if service.name == name)


#: Refused before parsing: no real topics file comes near it, and PyYAML holds it all in memory.
MAX_SPEC_BYTES = 10 * 1024 * 1024
#: Deeper YAML is refused: a real file nests 4 levels; PyYAML's composer recurses per level.
MAX_NESTING_DEPTH = 32


class _StrictLoader(yaml.SafeLoader):
    """SafeLoader that reads a value as written or refuses it.

    - no aliases (``*a``): an alias bomb expands a 1 KB file to gigabytes;
    - no explicit tags (``!!int 0x10``, ``!!binary``, ``!!timestamp``);
    - no nesting deeper than MAX_NESTING_DEPTH, no complex keys (``? [a, b]``), no duplicate keys;
    - YAML 1.2 core plain scalars only: ints are plain decimal (``010``, ``0x10``, ``1_000``
      stay the strings written, which validation refuses), no floats or timestamps (strings as
      written), booleans only true/false (``yes``/``on`` stay strings), nulls ``~``/``null``.
    """

    yaml_implicit_resolvers: dict[Any, Any] = {}  # noqa: RUF012 (PyYAML's class-level table)

    def __init__(self, stream: str) -> None:
        super().__init__(stream)
        self._depth = 0

    def compose_node(self, parent: Any, index: Any) -> Any:
        event: Any = self.peek_event()  # type: ignore[no-untyped-call]
        mark: Any = event.start_mark
        if isinstance(event, yaml.AliasEvent):
            raise yaml.composer.ComposerError(
                None, None, "aliases (*name) are not allowed in a topics file", mark
            )
        tag = getattr(event, "tag", None)
        if tag is not None and tag != "!":
            raise yaml.composer.ComposerError(
                None, None, f"explicit tags ({clip(tag, 40)}) are not allowed", mark
            )
        if self._depth >= MAX_NESTING_DEPTH:
            raise yaml.composer.ComposerError(
                None, None, f"nested deeper than {MAX_NESTING_DEPTH} levels", mark
            )
        self._depth += 1
        try:
            return super().compose_node(parent, index)
        finally:
            self._depth -= 1


_StrictLoader.add_implicit_resolver(
    "tag:yaml.org,2002:bool", re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$"), list("tTfF")
)
_StrictLoader.add_implicit_resolver(
    "tag:yaml.org,2002:int", re.compile(r"^(?:0|-?[1-9][0-9]*)$", re.ASCII), list("-0123456789")
)
_StrictLoader.add_implicit_resolver(
    "tag:yaml.org,2002:null", re.compile(r"^(?:~|null|Null|NULL|)$"), ["~", "n", "N", ""]
)


def _construct_mapping_without_duplicates(loader: _StrictLoader, node: yaml.MappingNode) -> Any:
    seen: set[Any] = set()
    for key_node, _value_node in node.value:
        if not isinstance(key_node, yaml.ScalarNode):
            raise yaml.constructor.ConstructorError(
                None,
                None,
                "mapping keys must be plain names, not lists or maps",
                key_node.start_mark,
            )
        key = loader.construct_object(key_node, deep=True)
        if key in seen:
            raise yaml.constructor.ConstructorError(
                None, None, f"duplicate key {clip(key)}", key_node.start_mark
            )
        seen.add(key)
    return loader.construct_mapping(node, deep=True)


_StrictLoader.add_constructor(
    yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_mapping_without_duplicates
)


def _key_text(key: Any) -> str:
    """A mapping key for a message: as written if it is a short plain name, else clipped."""
    if isinstance(key, str) and key.isprintable() and len(key) <= 40:
        return key
    return clip(key, 40)


def _unknown_keys(where: str, raw: Mapping[Any, Any], allowed: Mapping[str, str]) -> list[str]:
    unknown = sorted(_key_text(key) for key in raw if key not in allowed)
    if not unknown:
        return []
    more = f" (+{len(unknown) - 5} more)" if len(unknown) > 5 else ""
    return [
        f"{where}: unknown key(s) {', '.join(unknown[:5])}{more} (allowed: {', '.join(allowed)})"
    ]


def _as_property(value: Any) -> Any:
    """A YAML scalar as CloudFormation delivers it to the Lambda: numbers become strings."""
    if isinstance(value, bool) or value is None:
        return value
    if isinstance(value, int):
        return str(value)
    return value


def custom_resource_topics(raw_topics: Sequence[Any], raw_defaults: Mapping[str, Any]) -> list[Any]:
    """topics.yaml entries (defaults applied) as the custom resource's Topics property."""
    default_config = raw_defaults.get("config")
    if default_config is None:
        default_config = {}
    result: list[Any] = []
    for raw in raw_topics:
        if not isinstance(raw, Mapping):
            result.append(raw)  # parse_topics reports it
            continue
        entry: dict[str, Any] = {"Name": raw.get("name")}
        entry["Partitions"] = _as_property(raw.get("partitions", raw_defaults.get("partitions")))
        replication_factor = raw.get("replication_factor", raw_defaults.get("replication_factor"))
        if replication_factor is not None:
            entry["ReplicationFactor"] = _as_property(replication_factor)
        config = raw.get("config")
        if config is None:
            config = {}
        # Not a map: passed on as is, so parse_topics refuses it by name (never ignored).
        if isinstance(default_config, Mapping) and isinstance(config, Mapping):
            config = {**default_config, **config}
        entry["Config"] = config
        result.append(entry)
    return result


def _topic_list(where: str, raw: Any, problems: list[str]) -> tuple[str, ...]:
    if raw is None:
        return ()
    if not isinstance(raw, list) or not all(isinstance(item, str) for item in raw):
        problems.append(f"{where}: must be a list of topic names")
        return ()
    return tuple(raw)


def _parse_services(raw: Any, declared: set[str], problems: list[str]) -> tuple[ServiceSpec, ...]:
    if raw is None:
        return ()
    if not isinstance(raw, Mapping):
        problems.append("services: must be a map of service name to {produces, consumes}")
        return ()
    services: list[ServiceSpec] = []
    for name, body in raw.items():
        where = f"services.{_key_text(name)}"
        if not isinstance(name, str) or not _SERVICE_NAME_RE.match(name):
            problems.append(f"{where}: service name must match {SERVICE_NAME_PATTERN}")
            continue
        body = body or {}
        if not isinstance(body, Mapping):
            problems.append(f"{where}: must be a map with produces and/or consumes")
            continue
        problems.extend(_unknown_keys(where, body, SERVICE_KEYS))
        produces = _topic_list(f"{where}.produces", body.get("produces"), problems)
        consumes = _topic_list(f"{where}.consumes", body.get("consumes"), problems)
        for key, topics in (("produces", produces), ("consumes", consumes)):
            for topic in topics:
                if topic not in declared:
                    problems.append(f"{where}.{key}: topic {clip(topic)} is not declared in topics")
        services.append(ServiceSpec(name, produces, consumes))
    return tuple(services)


@dataclass(frozen=True)
class _StageOverrides:
    """One stage's overrides, their shape checked (their values are checked by parse_topics)."""

    defaults: Mapping[str, Any]
    topics: Mapping[str, Mapping[str, Any]]
    #: None: every service.
    services: tuple[str, ...] | None
    #: None: the cluster type the file is loaded for.
    cluster_type: ClusterType | None = None


def _map_or_empty(where: str, raw: Any, what: str, problems: list[str]) -> Mapping[Any, Any]:
    if raw is None:
        return {}
    if not isinstance(raw, Mapping):
        problems.append(f"{where}: must be a map of {what}, got {clip(raw)}")
        return {}
    return raw


def _overrides(
    where: str, raw: Any, allowed: Mapping[str, str], problems: list[str]
) -> dict[str, Any]:
    """A stage's defaults or topic override: the allowed keys, config a map."""
    body = _map_or_empty(where, raw, ", ".join(allowed), problems)
    problems.extend(_unknown_keys(where, body, allowed))
    result = {key: value for key, value in body.items() if key in allowed}
    if "config" in result:
        result["config"] = _map_or_empty(
            f"{where}.config", result["config"], "config name to value", problems
        )
    return result


def _stage_services(
    where: str, raw: Any, service_names: set[str], problems: list[str]
) -> tuple[str, ...] | None:
    if raw is None:
        return None
    if not isinstance(raw, list) or not all(isinstance(item, str) for item in raw):
        problems.append(f"{where}: must be a list of service names")
        return None
    for name in sorted(set(raw) - service_names):
        problems.append(f"{where}: service {clip(name)} is not declared in services")
    for name in sorted(name for name, count in Counter(raw).items() if count > 1):
        problems.append(f"{where}: service {clip(name)} is listed twice")
    return tuple(raw)


def _stage_cluster_type(where: str, raw: Any, problems: list[str]) -> ClusterType | None:
    """The stage's declared cluster type; None when it declares none (or a bad one)."""
    if raw is None:
        return None
    if isinstance(raw, str) and raw.lower() in ("serverless", "provisioned"):
        return ClusterType(raw.upper())
    problems.append(f"{where}: serverless or provisioned, got {clip(raw)}")
    return None


def _parse_stages(
    raw: Any, declared: set[str], service_names: set[str], problems: list[str]
) -> dict[str, _StageOverrides]:
    """Every stage's overrides by name, in file order; problems name ``stages.<stage>...``."""
    stages_map = _map_or_empty("stages", raw, "stage name to overrides", problems)
    if len(stages_map) > MAX_STAGES:
        problems.append(f"stages: at most {MAX_STAGES} stages, got {len(stages_map)}")
        return {}
    stages: dict[str, _StageOverrides] = {}
    for name, body in stages_map.items():
        where = f"stages.{_key_text(name)}"
        if not isinstance(name, str) or not _STAGE_NAME_RE.match(name):
            problems.append(f"{where}: stage name must match {STAGE_NAME_PATTERN}")
            continue
        body = _map_or_empty(where, body, ", ".join(STAGE_KEYS), problems)
        problems.extend(_unknown_keys(where, body, STAGE_KEYS))
        defaults = _overrides(
            f"{where}.defaults", body.get("defaults"), STAGE_DEFAULTS_KEYS, problems
        )
        topics: dict[str, Mapping[str, Any]] = {}
        raw_topics = _map_or_empty(
            f"{where}.topics", body.get("topics"), "topic name to overrides", problems
        )
        for topic, override in raw_topics.items():
            topic_where = f"{where}.topics.{_key_text(topic)}"
            if topic not in declared:
                problems.append(
                    f"{topic_where}: topic is not declared in topics (a stage cannot add topics)"
                )
                continue
            topics[topic] = _overrides(topic_where, override, STAGE_TOPIC_KEYS, problems)
        services = _stage_services(
            f"{where}.services", body.get("services"), service_names, problems
        )
        cluster_type = _stage_cluster_type(
            f"{where}.cluster_type", body.get("cluster_type"), problems
        )
        stages[name] = _StageOverrides(defaults, topics, services, cluster_type)
    return stages


def _merged(base: Mapping[str, Any], override: Mapping[str, Any]) -> dict[str, Any]:
    """``override`` over ``base``, config key by key."""
    merged = {**base, **override}
    base_config = base.get("config")
    # A base config that is not a map is refused by the base validation already.
    if "config" in override and isinstance(base_config, Mapping):
        merged["config"] = {**base_config, **override["config"]}
    return merged


def _staged(
    raw_topics: Sequence[Any], defaults: Mapping[str, Any], stage: _StageOverrides
) -> tuple[list[Any], dict[str, Any]]:
    """The topics and defaults a stage deploys, as custom_resource_topics takes them."""
    topics: list[Any] = []
    for raw in raw_topics:
        name = raw.get("name") if isinstance(raw, Mapping) else None
        override = stage.topics.get(name) if isinstance(name, str) else None
        topics.append(raw if override is None else _merged(raw, override))
    return topics, _merged(defaults, stage.defaults)


def parse(
    document: Any,
    *,
    source: str,
    cluster_type: ClusterType = ClusterType.SERVERLESS,
    stage: str | None = None,
) -> TopicsFile:
    """Validate an already-loaded topics document; SpecError names ``source`` and every problem.

    ``stage`` picks which stage's overrides apply (None: the base values); every stage is
    validated either way.
    """
    if not isinstance(document, Mapping):
        raise SpecError([f"{source}: must be a map with defaults, topics and services"])
    problems = _unknown_keys("top level", document, TOP_LEVEL_KEYS)
    defaults = document.get("defaults")
    if defaults is None:
        defaults = {}
    if not isinstance(defaults, Mapping):
        problems.append(f"defaults: must be a map, got {clip(defaults)}")
        defaults = {}
    problems.extend(_unknown_keys("defaults", defaults, DEFAULTS_KEYS))
    default_config = defaults.get("config")
    if default_config is not None and not isinstance(default_config, Mapping):
        problems.append(
            f"defaults.config: must be a map of config name to value, got {clip(default_config)}"
        )
        defaults = {key: value for key, value in defaults.items() if key != "config"}
    raw_topics = document.get("topics")
    if not isinstance(raw_topics, list) or not raw_topics:
        problems.append("topics: must be a non-empty list of topics")
        raw_topics = []
    for index, raw in enumerate(raw_topics):
        if isinstance(raw, Mapping):
            problems.extend(_unknown_keys(f"topics[{index}]", raw, TOPIC_KEYS))
    topics: tuple[TopicSpec, ...] = ()
    base_problems: set[str] = set()
    try:
        topics = parse_topics(custom_resource_topics(raw_topics, defaults), cluster_type)
    except SpecError as error:
        problems.extend(error.problems)
        base_problems = set(error.problems)
    declared = {
        str(raw["name"]) for raw in raw_topics if isinstance(raw, Mapping) and raw.get("name")
    }
    raw_services = document.get("services")
    services = _parse_services(raw_services, declared, problems)
    service_names = (
        {name for name in raw_services if isinstance(name, str)}
        if isinstance(raw_services, Mapping)
        else set()
    )
    topic_names = {
        raw["name"]
        for raw in raw_topics
        if isinstance(raw, Mapping) and isinstance(raw.get("name"), str)
    }
    stages = _parse_stages(document.get("stages"), topic_names, service_names, problems)
    staged_topics: dict[str, tuple[TopicSpec, ...]] = {}
    for name, overrides in stages.items():
        try:
            staged_topics[name] = parse_topics(
                custom_resource_topics(*_staged(raw_topics, defaults, overrides)),
                overrides.cluster_type or cluster_type,
            )
        except SpecError as error:
            # A problem the base values have already is reported once, not once per stage.
            problems.extend(
                f"stages.{name}: {problem}"
                for problem in error.problems
                if problem not in base_problems
            )
    if stage is not None and stage not in stages:
        declared_stages = (
            f"stages: {', '.join(stages)}" if stages else "the file declares no stages"
        )
        if stages or not document.get("stages"):  # else: stages itself is reported broken
            problems.insert(0, f"stage {clip(stage)} is not declared ({declared_stages})")
    declared_type = stages[stage].cluster_type if stage in stages else None
    if declared_type not in (None, cluster_type):
        problems.insert(
            0,
            f"stages.{stage}.cluster_type: {declared_type.value.lower()}, but the cluster is "
            f"{cluster_type.value.lower()}",
        )
    if problems:
        raise SpecError([f"{source}: {problem}" for problem in problems])
    if stage is None:
        return TopicsFile(Path(source), topics, services, None, tuple(stages))
    chosen = stages[stage].services
    if chosen is not None:
        services = tuple(service for service in services if service.name in chosen)
    return TopicsFile(Path(source), staged_topics[stage], services, stage, tuple(stages))


def _read_text(path: Path) -> str:
    """The file's text; SpecError for anything but a readable UTF-8 regular file of sane size.

    Opened non-blocking and checked with fstat before reading: a FIFO would wait for a writer
    forever, /dev/zero never ends, a directory has no text.
    """
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_NOCTTY", 0))
    except OSError as error:
        raise SpecError([f"{path}: cannot be read ({error.strerror})"]) from None
    info = os.fstat(fd)
    if not stat.S_ISREG(info.st_mode) or info.st_size > MAX_SPEC_BYTES:
        os.close(fd)
        if not stat.S_ISREG(info.st_mode):
            raise SpecError([f"{path}: is not a regular file"])
        raise SpecError(
            [f"{path}: is {info.st_size} bytes; a topics file may have at most {MAX_SPEC_BYTES}"]
        )
    with os.fdopen(fd, "rb") as file:
        try:
            data = file.read(MAX_SPEC_BYTES + 1)
        except OSError as error:
            raise SpecError([f"{path}: cannot be read ({error.strerror})"]) from None
    if len(data) > MAX_SPEC_BYTES:  # it grew while we looked
        raise SpecError([f"{path}: a topics file may have at most {MAX_SPEC_BYTES} bytes"])
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as error:
        byte = data[error.start]
        raise SpecError(
            [f"{path}: is not UTF-8 text (byte 0x{byte:02x} at offset {error.start})"]
        ) from None


def _yaml_problem(error: yaml.YAMLError) -> str:
    """One bounded line about a YAML error (PyYAML's own text quotes the offending lines)."""
    if isinstance(error, yaml.MarkedYAMLError):
        mark = error.problem_mark or error.context_mark
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        what = error.problem or error.context or "syntax error"
        return f"not valid YAML{where}: {one_line(what, 160)}"
    return f"not valid YAML: {one_line(str(error), 160)}"


def load(
    path: str | Path,
    *,
    cluster_type: ClusterType = ClusterType.SERVERLESS,
    stage: str | None = None,
) -> TopicsFile:
    """Read and validate a topics.yaml, ``stage``'s overrides applied (None: the base values).

    SpecError names the file and every problem found, in every stage.
    """
    path = Path(path)
    text = _read_text(path)
    try:
        document = yaml.load(text, Loader=_StrictLoader)  # noqa: S506 (a SafeLoader subclass)
    except yaml.YAMLError as error:
        raise SpecError([f"{path}: {_yaml_problem(error)}"]) from None
    return parse(document, source=str(path), cluster_type=cluster_type, stage=stage)


def _string_list_schema(description: str) -> dict[str, Any]:
    return {
        "description": description,
        "type": "array",
        "items": {"type": "string", "pattern": TOPIC_NAME_PATTERN},
        "uniqueItems": True,
    }


def _config_schema(description: str) -> dict[str, Any]:
    properties: dict[str, Any] = {}
    for key in sorted(SERVERLESS_ALLOWED_CONFIGS):
        value_schema: dict[str, Any] = {"type": ["string", "integer"]}
        if key in SERVERLESS_CREATE_ONLY_CONFIGS:
            value_schema["description"] = (
                "MSK Serverless: can only be set when the topic is created."
            )
        if key == "max.message.bytes":
            value_schema["description"] = f"MSK Serverless maximum: {SERVERLESS_MAX_MESSAGE_BYTES}."
        properties[key] = value_schema
    return {
        "description": description + " MSK Serverless allows only these keys.",
        "type": "object",
        "properties": properties,
        "additionalProperties": False,
    }


def json_schema() -> dict[str, Any]:
    """JSON Schema (draft 2020-12) of topics.yaml for an MSK Serverless cluster."""
    count = {"type": ["integer", "string"], "pattern": r"^[1-9][0-9]*$", "minimum": 1}
    partitions = {**count, "maximum": SERVERLESS_MAX_PARTITIONS}
    replicas = {**count, "maximum": MAX_REPLICATION_FACTOR}

    def topic_values(descriptions: Mapping[str, str]) -> dict[str, Any]:
        """partitions, replication_factor and config, described by ``descriptions``."""
        return {
            "partitions": {"description": descriptions["partitions"], **partitions},
            "replication_factor": {"description": descriptions["replication_factor"], **replicas},
            "config": _config_schema(descriptions["config"]),
        }

    defaults = topic_values(DEFAULTS_KEYS)
    topic = {
        "name": {
            "description": TOPIC_KEYS["name"],
            "type": "string",
            "pattern": TOPIC_NAME_PATTERN,
            "not": {"pattern": f"^{INTERNAL_TOPIC_PREFIX}"},
        },
        **topic_values(TOPIC_KEYS),
    }
    service = {key: _string_list_schema(text) for key, text in SERVICE_KEYS.items()}
    stage_defaults = topic_values(STAGE_DEFAULTS_KEYS)
    stage_topic = topic_values(STAGE_TOPIC_KEYS)
    stage = {
        "defaults": {
            "description": STAGE_KEYS["defaults"],
            "type": ["object", "null"],
            "properties": stage_defaults,
            "additionalProperties": False,
        },
        "topics": {
            "description": STAGE_KEYS["topics"],
            "type": ["object", "null"],
            "propertyNames": {"pattern": TOPIC_NAME_PATTERN},
            "additionalProperties": {
                "type": ["object", "null"],
                "properties": stage_topic,
                "additionalProperties": False,
            },
        },
        "services": {
            "description": STAGE_KEYS["services"],
            "type": "array",
            "items": {"type": "string", "pattern": SERVICE_NAME_PATTERN},
            "uniqueItems": True,
        },
        "cluster_type": {
            "description": STAGE_KEYS["cluster_type"],
            "enum": ["serverless", "provisioned"],
        },
    }
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": SCHEMA_ID,
        "title": "topic-sync topics.yaml",
        "description": "Generated by `python -m topic_sync_tools.spec_file --write-schema`; "
        "do not edit.",
        "type": "object",
        "required": ["topics"],
        "additionalProperties": False,
        "properties": {
            "defaults": {
                "description": TOP_LEVEL_KEYS["defaults"],
                "type": "object",
                "properties": defaults,
                "additionalProperties": False,
            },
            "topics": {
                "description": TOP_LEVEL_KEYS["topics"],
                "type": "array",
                "minItems": 1,
                "items": {
                    "type": "object",
                    "required": ["name"],
                    "properties": topic,
                    "additionalProperties": False,
                },
            },
            "services": {
                "description": TOP_LEVEL_KEYS["services"],
                "type": "object",
                "propertyNames": {"pattern": SERVICE_NAME_PATTERN},
                "additionalProperties": {
                    "type": ["object", "null"],
                    "properties": service,
                    "additionalProperties": False,
                },
            },
            "stages": {
                "description": TOP_LEVEL_KEYS["stages"],
                "type": ["object", "null"],
                "maxProperties": MAX_STAGES,
                "propertyNames": {"pattern": STAGE_NAME_PATTERN},
                "additionalProperties": {
                    "type": ["object", "null"],
                    "properties": stage,
                    "additionalProperties": False,
                },
            },
        },
    }


def render_json_schema() -> str:
    return json.dumps(json_schema(), indent=2) + "\n"


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m topic_sync_tools.spec_file", description=__doc__
    )
    group = parser.add_mutually_exclusive_group(required=True)
    group.add_argument("--schema", action="store_true", help="print the JSON Schema")
    group.add_argument("--write-schema", metavar="PATH", help="write the JSON Schema to PATH")
    group.add_argument("--check", metavar="TOPICS_YAML", help="validate a topics file")
    parser.add_argument(
        "--stage",
        metavar="NAME",
        help="with --check: apply this stage's overrides (every stage is validated anyway)",
    )
    args = parser.parse_args(argv)
    if args.stage is not None and not args.check:
        parser.error("--stage needs --check")
    if args.schema:
        sys.stdout.write(render_json_schema())
    elif args.write_schema:
        Path(args.write_schema).write_text(render_json_schema(), encoding="utf-8")
    else:
        try:
            topics_file = load(args.check, stage=args.stage)
        except SpecError as error:
            print(error, file=sys.stderr)
            return 1
        stage = f"stage {topics_file.stage}" if topics_file.stage else "base values"
        declared = ", ".join(topics_file.stages) or "none"
        print(
            f"{args.check} ({stage}): {len(topics_file.topics)} topics, "
            f"{sum(topic.partitions for topic in topics_file.topics)} partitions, "
            f"{len(topics_file.services)} services; stages: {declared}"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
