"""`make demo` runs scripts/demo.py; run the same script here so it cannot rot."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support.kafka import LocalKafka

REPO = Path(__file__).resolve().parents[2]

pytestmark = [pytest.mark.integration, pytest.mark.synth]


def test_demo_runs_the_whole_lifecycle(kafka_broker: LocalKafka, tmp_path: Path) -> None:
    # The session's broker is running and leased, so the demo reuses it and leaves it up.
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}

    result = subprocess.run(
        [sys.executable, str(REPO / "scripts" / "demo.py"), "--cdk-out", str(tmp_path)],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )

    out = result.stdout
    assert result.returncode == 0, out + result.stderr
    assert "Custom::KafkaTopics" in out
    assert "AWS::ECS::Service" in out  # the services wait for the topics
    assert "handler.on_event(Create)" in out
    assert "handler.on_event(Update)" in out
    assert "partitions 3 -> 6" in out
    assert "Plan: 6 unchanged." in out
    assert "In sync:" in out
    assert "(exit 0)" in out
    assert "left running" in out
    assert "Traceback" not in result.stderr
