"""The CLI without a cluster: argument and spec errors are one line, exit 1, no traceback."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.cli.conftest import Run, write_spec
from topic_sync.plan import ActionKind, ConfigChange, Plan, TopicAction
from topic_sync_tools import render

Cli = Callable[..., Run]


def assert_one_line_error(run: Run, *fragments: str) -> None:
    assert run.code == 1
    lines = run.err.strip().splitlines()
    assert len(lines) == 1, run.err
    assert lines[0].startswith("topic-sync: error: ")
    assert "Traceback" not in run.err
    for fragment in fragments:
        assert fragment in lines[0]


def test_bad_spec_file_is_one_clear_line(run_cli: Cli, tmp_path: Path) -> None:
    spec = write_spec(tmp_path / "bad.yaml", [{"name": "bad name!", "partitions": 0}])

    run = run_cli("plan", "--spec", str(spec), "--bootstrap", "127.0.0.1:1", "--auth", "plaintext")

    assert_one_line_error(run, str(spec), "bad name!", "Partitions must be a positive integer")
    assert run.out == ""


def test_missing_spec_file(run_cli: Cli, tmp_path: Path) -> None:
    run = run_cli("verify", "--spec", str(tmp_path / "nope.yaml"), "--bootstrap", "h:1")

    assert_one_line_error(run, "nope.yaml", "cannot be read")


def test_bad_spec_with_json_output_still_prints_json(run_cli: Cli, tmp_path: Path) -> None:
    spec = tmp_path / "broken.yaml"
    spec.write_text("topics: [\n")

    run = run_cli("plan", "--spec", str(spec), "--bootstrap", "h:1", "--output", "json")

    assert_one_line_error(run, "not valid YAML")
    assert run.json()["error"].startswith("invalid topic spec")


def test_bootstrap_is_required(run_cli: Cli, spec: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("TOPIC_SYNC_BOOTSTRAP", raising=False)

    run = run_cli("plan", "--spec", str(spec), "--auth", "plaintext")

    assert_one_line_error(run, "--bootstrap")


def test_iam_needs_a_region(run_cli: Cli, spec: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("AWS_REGION", raising=False)
    monkeypatch.delenv("AWS_DEFAULT_REGION", raising=False)

    run = run_cli("plan", "--spec", str(spec), "--bootstrap", "b-1.example:9098")

    assert_one_line_error(run, "--region")


def test_iam_without_credentials_says_so(
    run_cli: Cli, spec: Path, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")

    run = run_cli(
        "plan", "--spec", str(spec), "--bootstrap", "b-1.example:9098", "--region", "eu-west-1"
    )

    assert_one_line_error(run, "no AWS credentials")


def test_usage_errors_exit_1_not_2(run_cli: Cli, spec: Path) -> None:
    # 2 means "changes pending"; a typo must not read as drift in CI.
    with pytest.raises(SystemExit) as exit_info:
        run_cli("plan", "--spec", str(spec), "--output", "yaml")
    assert exit_info.value.code == 1


def test_apply_without_a_terminal_refuses_instead_of_waiting(run_cli: Cli, spec: Path) -> None:
    started = time.monotonic()

    run = run_cli("apply", "--spec", str(spec), "--bootstrap", "127.0.0.1:1", "--auth", "plaintext")

    assert_one_line_error(run, "--yes")
    assert time.monotonic() - started < 5  # no connection attempted


def test_prune_needs_a_managed_prefix(run_cli: Cli, spec: Path) -> None:
    run = run_cli(
        "plan", "--spec", str(spec), "--bootstrap", "127.0.0.1:1", "--auth", "plaintext", "--prune"
    )

    assert_one_line_error(run, "--managed-prefix")


def test_plan_table_shows_every_kind_of_change() -> None:
    plan = Plan(
        (
            TopicAction(
                "new",
                ActionKind.CREATE,
                partitions=6,
                config_changes=(ConfigChange("retention.ms", None, "1000"),),
            ),
            TopicAction(
                "grown",
                ActionKind.UPDATE,
                partitions=6,
                old_partitions=3,
                config_changes=(ConfigChange("retention.ms", "1000", "2000"),),
            ),
            TopicAction("same", ActionKind.UNCHANGED, partitions=3, old_partitions=3),
            TopicAction("shrunk", ActionKind.REFUSED, reasons=("partitions cannot decrease",)),
        )
    )

    table = render.plan_table(plan)

    assert "+ new" in table
    assert "partitions 6" in table
    assert "retention.ms = 1000" in table
    assert "~ grown" in table
    assert "partitions 3 -> 6" in table
    assert "retention.ms 1000 -> 2000" in table
    assert "= same" in table
    assert "! shrunk" in table
    assert "partitions cannot decrease" in table
    assert render.plan_counts(plan) == "Plan: 1 to create, 1 to update, 1 unchanged, 1 refused."
