"""Helpers for the CLI tests: spec files with unique topic names, and running ``main``."""

from __future__ import annotations

import io
import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.support.kafka import LocalKafka, unique_topic_name
from topic_sync_tools.cli import main


@dataclass(frozen=True)
class Run:
    code: int
    out: str
    err: str

    def json(self) -> Any:
        return json.loads(self.out)


def write_spec(path: Path, topics: Sequence[dict[str, Any]], partitions: int = 3) -> Path:
    document = {"defaults": {"partitions": partitions}, "topics": list(topics)}
    path.write_text(yaml.safe_dump(document, sort_keys=False))
    return path


@pytest.fixture
def run_cli(capsys: pytest.CaptureFixture[str]) -> Callable[..., Run]:
    """Run ``topic-sync ARGS`` in-process; returns the exit code and what it printed."""

    def run(*args: str) -> Run:
        capsys.readouterr()  # drop anything printed before
        out = io.StringIO()
        code = main(list(args), out=out)
        err = capsys.readouterr().err
        return Run(code, out.getvalue(), err)

    return run


@pytest.fixture
def topic_names() -> list[str]:
    """Two fresh names on the shared broker, with the dotted style topics.yaml uses."""
    return [unique_topic_name("cli.orders"), unique_topic_name("cli.payments")]


@pytest.fixture
def spec(tmp_path: Path, topic_names: list[str]) -> Path:
    orders, payments = topic_names
    return write_spec(
        tmp_path / "topics.yaml",
        [
            {"name": orders, "config": {"retention.ms": "86400000"}},
            {"name": payments, "partitions": 2},
        ],
    )


@pytest.fixture
def target(kafka_broker: LocalKafka, spec: Path) -> list[str]:
    """The common arguments: the spec against the local broker's PLAINTEXT listener."""
    return [
        "--spec",
        str(spec),
        "--bootstrap",
        kafka_broker.plaintext_bootstrap,
        "--auth",
        "plaintext",
        "--timeout",
        "30",
    ]
