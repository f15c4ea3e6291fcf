"""topics.yaml: the one declarative file of topics and of who produces/consumes them.

Loaded by the CDK app (and the operator CLI), never by the Lambda: it needs pyyaml, which the
Lambda bundle does not ship. Topic values are validated by ``topic_sync.spec.parse_topics``
(the Lambda's own validation), fed the exact CloudFormation-style dicts the custom resource
will receive, so a bad file fails here with the message the Lambda would give.

Regenerate the editor schema:
``python -m topic_sync.spec_file --write-schema topics.schema.json``.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from topic_sync.exceptions import SpecError
from topic_sync.spec import (
    SERVERLESS_ALLOWED_CONFIGS,
    SERVERLESS_CREATE_ONLY_CONFIGS,
    SERVERLESS_MAX_MESSAGE_BYTES,
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
    services: tuple[ServiceSpec, ...]

    def service(self, name: str) -> ServiceSpec:
        return next(service for service in self.services if service.name == name)


class _StrictLoader(yaml.SafeLoader):
    """SafeLoader that refuses duplicate keys (plain PyYAML keeps the last one silently)."""


def _construct_mapping_without_duplicates(loader: _StrictLoader, node: yaml.MappingNode) -> Any:
    seen: set[Any] = set()
    for key_node, _value_node in node.value:
        key = loader.construct_object(key_node, deep=True)
        if key in seen:
            raise yaml.constructor.ConstructorError(
                None, None, f"duplicate key {key!r}", key_node.start_mark
            )
        seen.add(key)
    return loader.construct_mapping(node, deep=True)


_StrictLoader.add_constructor(
    yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_mapping_without_duplicates
)


def _unknown_keys(where: str, raw: Mapping[Any, Any], allowed: Mapping[str, str]) -> list[str]:
    unknown = sorted(str(key) for key in raw if key not in allowed)
    if not unknown:
        return []
    return [f"{where}: unknown key(s) {', '.join(unknown)} (allowed: {', '.join(allowed)})"]


def _as_property(value: Any) -> Any:
    """A YAML scalar as CloudFormation delivers it to the Lambda: numbers become strings."""
    if isinstance(value, bool) or value is None:
        return value
    if isinstance(value, int):
        return str(value)
    return value


def custom_resource_topics(raw_topics: Sequence[Any], raw_defaults: Mapping[str, Any]) -> list[Any]:
    """topics.yaml entries (defaults applied) as the custom resource's Topics property."""
    default_config = raw_defaults.get("config") or {}
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
        config = raw.get("config") or {}
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
        where = f"services.{name}"
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
                    problems.append(f"{where}.{key}: topic {topic!r} is not declared in topics")
        services.append(ServiceSpec(name, produces, consumes))
    return tuple(services)


def parse(
    document: Any, *, source: str, cluster_type: ClusterType = ClusterType.SERVERLESS
) -> TopicsFile:
    """Validate an already-loaded topics document; SpecError names ``source`` and every problem."""
    if not isinstance(document, Mapping):
        raise SpecError([f"{source}: must be a map with defaults, topics and services"])
    problems = _unknown_keys("top level", document, TOP_LEVEL_KEYS)
    defaults = document.get("defaults") or {}
    if not isinstance(defaults, Mapping):
        problems.append("defaults: must be a map")
        defaults = {}
    problems.extend(_unknown_keys("defaults", defaults, DEFAULTS_KEYS))
    raw_topics = document.get("topics")
    if not isinstance(raw_topics, list) or not raw_topics:
        problems.append("topics: must be a non-empty list of topics")
        raw_topics = []
    for index, raw in enumerate(raw_topics):
        if isinstance(raw, Mapping):
            problems.extend(_unknown_keys(f"topics[{index}]", raw, TOPIC_KEYS))
    topics: tuple[TopicSpec, ...] = ()
    try:
        topics = parse_topics(custom_resource_topics(raw_topics, defaults), cluster_type)
    except SpecError as error:
        problems.extend(error.problems)
    declared = {
        str(raw["name"]) for raw in raw_topics if isinstance(raw, Mapping) and raw.get("name")
    }
    services = _parse_services(document.get("services"), declared, problems)
    if problems:
        raise SpecError([f"{source}: {problem}" for problem in problems])
    return TopicsFile(Path(source), topics, services)


def load(path: str | Path, *, cluster_type: ClusterType = ClusterType.SERVERLESS) -> TopicsFile:
    """Read and validate a topics.yaml; SpecError names the file and every problem found."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as error:
        raise SpecError([f"{path}: cannot be read ({error.strerror})"]) from None
    try:
        document = yaml.load(text, Loader=_StrictLoader)  # noqa: S506 (a SafeLoader subclass)
    except yaml.YAMLError as error:
        raise SpecError([f"{path}: not valid YAML: {error}"]) from None
    return parse(document, source=str(path), cluster_type=cluster_type)


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
    defaults = {
        "partitions": {"description": DEFAULTS_KEYS["partitions"], **count},
        "replication_factor": {"description": DEFAULTS_KEYS["replication_factor"], **count},
        "config": _config_schema(DEFAULTS_KEYS["config"]),
    }
    topic = {
        "name": {
            "description": TOPIC_KEYS["name"],
            "type": "string",
            "pattern": TOPIC_NAME_PATTERN,
        },
        "partitions": {"description": TOPIC_KEYS["partitions"], **count},
        "replication_factor": {"description": TOPIC_KEYS["replication_factor"], **count},
        "config": _config_schema(TOPIC_KEYS["config"]),
    }
    service = {key: _string_list_schema(text) for key, text in SERVICE_KEYS.items()}
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": SCHEMA_ID,
        "title": "topic-sync topics.yaml",
        "description": "Generated by `python -m topic_sync.spec_file --write-schema`; do not edit.",
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
        },
    }


def render_json_schema() -> str:
    return json.dumps(json_schema(), indent=2) + "\n"


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m topic_sync.spec_file", description=__doc__)
    group = parser.add_mutually_exclusive_group(required=True)
    group.add_argument("--schema", action="store_true", help="print the JSON Schema")
    group.add_argument("--write-schema", metavar="PATH", help="write the JSON Schema to PATH")
    group.add_argument("--check", metavar="TOPICS_YAML", help="validate a topics file")
    args = parser.parse_args(argv)
    if args.schema:
        sys.stdout.write(render_json_schema())
    elif args.write_schema:
        Path(args.write_schema).write_text(render_json_schema(), encoding="utf-8")
    else:
        try:
            topics_file = load(args.check)
        except SpecError as error:
            print(error, file=sys.stderr)
            return 1
        print(
            f"{args.check}: {len(topics_file.topics)} topics, {len(topics_file.services)} services"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
