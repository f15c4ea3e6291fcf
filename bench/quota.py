"""Scenario 6: a create bound by a partition quota, through on_event + is_complete.

A broker of its own with a local KIP-599 quota (``LOCAL_KAFKA_PARTITION_QUOTA``, scaled down
from MSK Serverless's 250 per 300 s), the handler told the same rate, and is_complete called
every ``interval`` seconds as the Provider framework's waiter would (its 30 s, scaled like the
quota). The quota's lower bound for P partitions from a full bucket of N refilled over W s is
``(P - N) * W / N``; the result is our wall time over that bound.
"""

from __future__ import annotations

import os
import socket
import subprocess
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

from topic_sync.pacing import PartitionRate
from topic_sync_tools.local_invoke import LocalLambdaContext, custom_resource_event, local_stack_id

REPO = Path(__file__).resolve().parents[1]
LOCAL_KAFKA = REPO / "scripts" / "local-kafka"


@dataclass(frozen=True)
class QuotaRun:
    seconds: float
    bound_s: float
    rounds: int

    @property
    def over_bound(self) -> float:
        return self.seconds / self.bound_s


def _free_ports(count: int) -> list[int]:
    sockets = [socket.socket() for _ in range(count)]
    try:
        for s in sockets:
            s.bind(("127.0.0.1", 0))
        return [s.getsockname()[1] for s in sockets]
    finally:
        for s in sockets:
            s.close()


def _local_kafka(command: str, run_dir: Path, env: dict[str, str]) -> str:
    done = subprocess.run(
        [str(LOCAL_KAFKA), command],
        env={**os.environ, "LOCAL_KAFKA_HOME": str(run_dir), **env},
        capture_output=True,
        text=True,
        check=False,
        timeout=180,
    )
    if done.returncode != 0:
        raise RuntimeError(f"local-kafka {command} failed: {done.stderr.strip()[-500:]}")
    return done.stdout.strip().splitlines()[-1] if done.stdout.strip() else ""


def quota_create(
    handler: ModuleType,
    run_dir: Path,
    *,
    partitions: int = 600,
    per_topic: int = 6,
    quota: str = "100/10",
    interval_s: float = 1.0,
) -> QuotaRun:
    """Create ``partitions`` (topics of ``per_topic``) under ``quota`` (N/SECONDS)."""
    plaintext, sasl_ssl, controller = _free_ports(3)
    env = {
        "LOCAL_KAFKA_PLAINTEXT_PORT": str(plaintext),
        "LOCAL_KAFKA_SASL_SSL_PORT": str(sasl_ssl),
        "LOCAL_KAFKA_CONTROLLER_PORT": str(controller),
        "LOCAL_KAFKA_PARTITION_QUOTA": quota,
    }
    rate = PartitionRate.parse(f"{quota}s", source="quota")
    bootstrap = _local_kafka("up", run_dir, env)
    try:
        prefix = f"bench-quota-{uuid.uuid4().hex[:6]}"
        props: dict[str, Any] = {
            "BootstrapServers": bootstrap,
            "Auth": "PLAINTEXT",
            "Topics": [
                {"Name": f"{prefix}-{i:04d}", "Partitions": str(per_topic)}
                for i in range(partitions // per_topic)
            ],
            "PartitionRate": str(rate),
            "TotalTimeoutSeconds": "3600",
            "TimeoutSeconds": "5",
        }
        event = custom_resource_event(
            "Create", props, stack_id=local_stack_id(), logical_id="QuotaBench"
        )
        context: Any = LocalLambdaContext(remaining_ms=60_000)
        started = time.perf_counter()
        result = handler.on_event(dict(event), context)
        rounds = 0
        answer: dict[str, Any] = {"IsComplete": result["Data"].get("Complete") == "true"}
        while not answer["IsComplete"]:
            time.sleep(interval_s)
            answer = handler.is_complete({**event, **result}, context)
            rounds += 1
        seconds = time.perf_counter() - started
    finally:
        _local_kafka("down", run_dir, env)
    return QuotaRun(seconds, rate.seconds_for(partitions), rounds)
