"""The three ways to make topics exist, timed: the bastion way, our handler, the raw floor.

Every timing includes building the client, as each of them does in real life: a JVM per topic
for the bastion way, one ``AdminClient`` per invocation for the handler and for the floor.
"""

from __future__ import annotations

import importlib
import logging
import os
import subprocess
import sys
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import IO, Any

from confluent_kafka import KafkaError, KafkaException, TopicCollection
from confluent_kafka.admin import (  # type: ignore[attr-defined]  # not re-exported in the stubs
    AdminClient,
    ConfigResource,
    NewTopic,
)

from topic_sync.connection import AuthMode, Connection, client_config
from topic_sync_tools.local_invoke import LocalLambdaContext, custom_resource_event

REPO_ROOT = Path(__file__).resolve().parent.parent
SOURCE_DIR = REPO_ROOT / "src"
KAFKA_LIB = REPO_ROOT / ".kafka" / "lib"
CLI_LOG4J = REPO_ROOT / "kafka" / "log4j2-cli.properties"

# Every benchmark topic carries one config, so all three ways also set (and re-read) a config.
TOPIC_CONFIG = {"retention.ms": "604800000"}
# What kafka-topics.sh runs (kafka-run-class.sh defaults: KAFKA_HEAP_OPTS and
# KAFKA_JVM_PERFORMANCE_OPTS), so the old way is timed as a bastion script really runs it.
OLD_WAY_JVM_OPTS = (
    "-Xmx256M",
    "-server",
    "-XX:+UseG1GC",
    "-XX:MaxGCPauseMillis=20",
    "-XX:InitiatingHeapOccupancyPercent=35",
    "-XX:+ExplicitGCInvokesConcurrent",
    "-XX:MaxInlineLevel=15",
    "-Djava.awt.headless=true",
)
# The handler gets what a Lambda with a 60 s budget would give it.
HANDLER_TIMEOUT_S = 60
STACK_ID = (
    "arn:aws:cloudformation:us-east-1:123456789012:stack/bench/00000000-0000-0000-0000-000000000000"
)
LOGICAL_ID = "BenchTopics"

_MISSING = ("UNKNOWN_TOPIC_OR_PART", "_UNKNOWN_TOPIC")


class Namer:
    """Fresh topic names for every run, all under one prefix per benchmark invocation."""

    def __init__(self) -> None:
        self.prefix = f"bench-{uuid.uuid4().hex[:8]}-"
        self._batch = 0

    def names(self, label: str, count: int) -> list[str]:
        self._batch += 1
        return [f"{self.prefix}{label}{self._batch}-{i:04d}" for i in range(count)]


# ---- the raw AdminClient (the floor, and cleanup) ------------------------------------------------


def raw_admin(bootstrap: str) -> AdminClient:
    """A plain AdminClient with the same librdkafka settings the engine uses for PLAINTEXT."""
    config = client_config(Connection(bootstrap, auth=AuthMode.PLAINTEXT))
    config["log_level"] = 3  # errors only: no "purging unserved events" notice on close
    return AdminClient(config)


def _new_topics(names: Sequence[str], partitions: int) -> list[NewTopic]:
    return [
        NewTopic(n, num_partitions=partitions, replication_factor=-1, config=dict(TOPIC_CONFIG))
        for n in names
    ]


def _missing(admin: AdminClient, names: Sequence[str], timeout: float) -> list[str]:
    """The names that ``describe_topics`` does not (yet) know."""
    futures = admin.describe_topics(TopicCollection(list(names)), request_timeout=timeout)
    missing: list[str] = []
    for name, future in futures.items():
        try:
            future.result(timeout=timeout + 1)
        except KafkaException as exc:
            if str(exc.args[0].name()) not in _MISSING:
                raise
            missing.append(name)
    return missing


def wait_visible(admin: AdminClient, names: Sequence[str], timeout: float = 60.0) -> None:
    """Poll one batched describe until every topic is in the metadata (as the handler verifies)."""
    deadline = time.monotonic() + timeout
    pending = list(names)
    while pending:
        if time.monotonic() > deadline:
            raise TimeoutError(f"{len(pending)} topics not visible after {timeout:.0f}s")
        pending = _missing(admin, pending, 15.0)
        if pending:
            time.sleep(0.05)


def floor_create(bootstrap: str, names: Sequence[str], partitions: int) -> float:
    """One batched create_topics for all, then wait until they are visible. Seconds."""
    started = time.perf_counter()
    admin = raw_admin(bootstrap)
    futures = admin.create_topics(
        _new_topics(names, partitions), operation_timeout=30, request_timeout=30
    )
    for future in futures.values():
        future.result(timeout=60)
    wait_visible(admin, names)
    return time.perf_counter() - started


def floor_resync(bootstrap: str, names: Sequence[str]) -> float:
    """The least a no-op re-sync must do: one batched describe_topics + one describe_configs."""
    started = time.perf_counter()
    admin = raw_admin(bootstrap)
    for future in admin.describe_topics(TopicCollection(list(names)), request_timeout=30).values():
        future.result(timeout=60)
    resources = [ConfigResource(ConfigResource.Type.TOPIC, n) for n in names]
    for future in admin.describe_configs(resources, request_timeout=30).values():
        future.result(timeout=60)
    return time.perf_counter() - started


def delete_topics(bootstrap: str, names: Sequence[str], timeout: float = 120.0) -> None:
    """Delete ``names`` (missing ones are fine) and wait until the metadata forgets them."""
    if not names:
        return
    admin = raw_admin(bootstrap)
    for future in admin.delete_topics(
        list(names), operation_timeout=60, request_timeout=60
    ).values():
        try:
            future.result(timeout=timeout)
        except KafkaException as exc:
            if exc.args[0].code() != KafkaError.UNKNOWN_TOPIC_OR_PART:
                raise
    deadline = time.monotonic() + timeout
    wanted = set(names)
    while wanted & set(admin.list_topics(timeout=15).topics):
        if time.monotonic() > deadline:
            raise TimeoutError("benchmark topics were not deleted in time")
        time.sleep(0.1)


def delete_prefixed(bootstrap: str, prefix: str) -> int:
    """Delete every topic whose name starts with ``prefix`` (leftovers of a failed run)."""
    admin = raw_admin(bootstrap)
    names = [n for n in admin.list_topics(timeout=15).topics if n.startswith(prefix)]
    delete_topics(bootstrap, names)
    return len(names)


# ---- the old way: one kafka-topics JVM per topic --------------------------------------------


def old_way_command(bootstrap: str, name: str, partitions: int) -> list[str]:
    """``kafka-topics.sh --create`` as the JVM it starts (TopicCommand from the Maven jars)."""
    config = [arg for key, value in TOPIC_CONFIG.items() for arg in ("--config", f"{key}={value}")]
    return [
        "java",
        *OLD_WAY_JVM_OPTS,
        f"-Dlog4j2.configurationFile={CLI_LOG4J}",
        "-cp",
        f"{KAFKA_LIB}/*",
        "org.apache.kafka.tools.TopicCommand",
        "--bootstrap-server",
        bootstrap,
        "--create",
        "--topic",
        name,
        "--partitions",
        str(partitions),
        "--replication-factor",
        "1",
        *config,
    ]


def old_way_create(bootstrap: str, names: Sequence[str], partitions: int) -> float:
    """A bastion script's loop: one JVM after the other, each creating one topic. Seconds."""
    started = time.perf_counter()
    for name in names:
        result = subprocess.run(
            old_way_command(bootstrap, name, partitions),
            capture_output=True,
            text=True,
            check=False,
            timeout=120,
        )
        if result.returncode != 0:
            raise RuntimeError(f"TopicCommand failed for {name}: {result.stderr.strip()}")
    return time.perf_counter() - started


# ---- our handler (the CloudFormation custom resource), in-process ------------------------------


def load_handler(log: IO[str]) -> ModuleType:
    """Import ``topic_sync.handler`` with its JSON logs going to ``log`` instead of stdout.

    Logging stays on at the production level: writing the logs is part of what a Lambda does.
    """
    if str(SOURCE_DIR) not in sys.path:
        sys.path.insert(0, str(SOURCE_DIR))
    os.environ.setdefault("AWS_REGION", "us-east-1")
    module = importlib.import_module("topic_sync.handler")
    loggers = [module.logger.registered_handler]
    for name, item in logging.root.manager.loggerDict.items():
        if name.startswith("topic_sync") and isinstance(item, logging.Logger):
            loggers.extend(item.handlers)
    for stream_handler in loggers:
        if isinstance(stream_handler, logging.StreamHandler):
            stream_handler.setStream(log)
    return module


def properties(bootstrap: str, names: Sequence[str], partitions: int) -> dict[str, Any]:
    return {
        "BootstrapServers": bootstrap,
        "Auth": "PLAINTEXT",
        "ClusterType": "SERVERLESS",
        "Topics": [
            {"Name": n, "Partitions": str(partitions), "Config": dict(TOPIC_CONFIG)} for n in names
        ],
        "RemovalPolicy": "RETAIN",
        "Prune": "false",
        "TimeoutSeconds": str(HANDLER_TIMEOUT_S),
        # The raw speed benchmarks: the local broker has no partition quota to pace for.
        "PartitionRate": "off",
    }


@dataclass(frozen=True)
class Invocation:
    seconds: float
    response: dict[str, Any]
    physical_id: str
    props: dict[str, Any]

    @property
    def data(self) -> dict[str, Any]:
        data: dict[str, Any] = self.response["Data"]
        return data


class HandlerBench:
    """Calls ``handler.on_event`` in this process (warm: imports already paid)."""

    def __init__(self, bootstrap: str, log: IO[str]) -> None:
        self.bootstrap = bootstrap
        self.handler = load_handler(log)

    def _invoke(self, event: dict[str, Any], props: dict[str, Any]) -> Invocation:
        started = time.perf_counter()
        response: dict[str, Any] = self.handler.on_event(
            event, LocalLambdaContext(remaining_ms=HANDLER_TIMEOUT_S * 1000)
        )
        seconds = time.perf_counter() - started
        return Invocation(seconds, response, str(response["PhysicalResourceId"]), props)

    def create(self, names: Sequence[str], partitions: int) -> Invocation:
        props = properties(self.bootstrap, names, partitions)
        return self._invoke(
            custom_resource_event("Create", props, stack_id=STACK_ID, logical_id=LOGICAL_ID), props
        )

    def resync(self, created: Invocation) -> Invocation:
        """An Update with the same topics as the last Create/Update (a no-op re-sync).

        Only the SyncToken changes, which is what makes CloudFormation send an Update at all.
        """
        props = {**created.props, "SyncToken": uuid.uuid4().hex}
        event = custom_resource_event(
            "Update",
            props,
            stack_id=STACK_ID,
            logical_id=LOGICAL_ID,
            physical_id=created.physical_id,
            old=created.props,
        )
        return self._invoke(event, props)
