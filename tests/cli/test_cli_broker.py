"""The CLI against the real local broker: plan -> apply -> plan -> drift -> verify.

Every test uses fresh topic names: the broker is shared by the whole session.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from confluent_kafka.admin import NewPartitions  # type: ignore[attr-defined]

from tests.cli.conftest import Run, write_spec
from tests.support.kafka import (
    LocalKafka,
    aws_env,
    create_topic,
    plaintext_admin,
    unique_topic_name,
)

pytestmark = pytest.mark.integration

Cli = Callable[..., Run]


def test_plan_apply_plan_verify(
    run_cli: Cli, target: list[str], topic_names: list[str], kafka_broker: LocalKafka
) -> None:
    orders, payments = topic_names

    # GIVEN an empty cluster, WHEN planning, THEN both topics are to create (exit 2).
    empty = run_cli("plan", *target)
    assert empty.code == 2, empty.err
    assert f"+ {orders}" in empty.out
    assert f"+ {payments}" in empty.out
    assert "Plan: 2 to create." in empty.out

    applied = run_cli("apply", *target, "--yes")
    assert applied.code == 0, applied.err
    assert "created" in applied.out
    assert "Applied: 2 of 2 change(s) succeeded." in applied.out

    again = run_cli("plan", *target)
    assert again.code == 0, again.err
    assert "In sync" in again.out
    assert run_cli("verify", *target).code == 0

    # WHEN someone changes the cluster outside topic-sync, THEN verify reports drift.
    admin = plaintext_admin(kafka_broker)
    admin.create_partitions([NewPartitions(payments, 4)])[payments].result(timeout=15)
    deadline = time.monotonic() + 15
    while (drift := run_cli("verify", *target)).code == 0 and time.monotonic() < deadline:
        time.sleep(0.1)
    assert drift.code == 2
    assert payments in drift.out
    assert "partitions cannot decrease (4 -> 2)" in drift.out
    assert orders not in drift.out  # only what differs

    # A plan Kafka cannot carry out is an error, and apply changes nothing.
    refused = run_cli("apply", *target, "--yes")
    assert refused.code == 1
    assert "Refused" in refused.out


def test_json_output_parses(run_cli: Cli, target: list[str], topic_names: list[str]) -> None:
    plan = run_cli("plan", *target, "--output", "json")
    assert plan.code == 2
    data = plan.json()
    assert data["in_sync"] is False
    assert data["counts"]["create"] == 2
    assert [t["topic"] for t in data["topics"]] == topic_names
    assert data["topics"][0]["config"] == {"retention.ms": [None, "86400000"]}

    applied = run_cli("apply", *target, "--yes", "--output", "json").json()
    assert applied["applied"] is True
    assert applied["in_sync"] is True
    assert all(result["ok"] for result in applied["results"])

    verify = run_cli("verify", *target, "--output", "json")
    assert verify.code == 0
    assert verify.json()["in_sync"] is True


def test_config_drift_shows_old_and_new(
    run_cli: Cli, target: list[str], topic_names: list[str], kafka_broker: LocalKafka
) -> None:
    orders, _ = topic_names
    assert run_cli("apply", *target, "--yes").code == 0
    admin = plaintext_admin(kafka_broker)
    from confluent_kafka.admin import (  # type: ignore[attr-defined]
        AlterConfigOpType,
        ConfigEntry,
        ConfigResource,
    )

    entry = ConfigEntry("retention.ms", "1000", incremental_operation=AlterConfigOpType.SET)
    resource = ConfigResource(ConfigResource.Type.TOPIC, orders, incremental_configs=[entry])
    for future in admin.incremental_alter_configs([resource]).values():
        future.result(timeout=15)

    # The broker applies config changes through its metadata log: wait until it shows.
    deadline = time.monotonic() + 15
    while (plan := run_cli("plan", *target)).code == 0 and time.monotonic() < deadline:
        time.sleep(0.1)
    assert plan.code == 2
    assert "retention.ms 1000 -> 86400000" in plan.out

    fixed = run_cli("apply", *target, "--yes")
    assert fixed.code == 0, fixed.err
    assert run_cli("verify", *target).code == 0


def test_dry_run_changes_nothing(run_cli: Cli, target: list[str]) -> None:
    dry = run_cli("apply", *target, "--dry-run")
    assert dry.code == 2
    assert "(dry run)" in dry.out
    assert run_cli("plan", *target).code == 2  # still nothing created


def test_prune_deletes_only_managed_topics_outside_the_spec(
    run_cli: Cli, target: list[str], kafka_broker: LocalKafka, tmp_path: Path
) -> None:
    prefix = unique_topic_name("cli.prune") + "."
    kept, stray, foreign = prefix + "kept", prefix + "stray", unique_topic_name("cli.foreign")
    admin = plaintext_admin(kafka_broker)
    for name in (stray, foreign):
        create_topic(admin, name)
    spec = write_spec(tmp_path / "prune.yaml", [{"name": kept}], partitions=1)
    args = [*target, "--spec", str(spec), "--prune", "--managed-prefix", prefix]

    plan = run_cli("plan", *args)
    assert plan.code == 2
    assert f"+ {kept}" in plan.out
    assert f"- {stray}" in plan.out
    assert foreign not in plan.out  # not under the managed prefix: never looked at

    assert run_cli("apply", *args, "--yes").code == 0
    assert run_cli("verify", *args).code == 0
    names = set(admin.list_topics(timeout=15).topics)
    assert kept in names
    assert stray not in names
    assert foreign in names


def test_iam_mode_with_normal_aws_credentials(
    run_cli: Cli, kafka_broker: LocalKafka, spec: Path
) -> None:
    # The SASL_SSL listener checks real MSK IAM tokens signed from the default credential chain.
    args = [
        "--spec",
        str(spec),
        "--bootstrap",
        kafka_broker.sasl_ssl_bootstrap,
        "--region",
        kafka_broker.region,
        "--client-config",
        f"ssl.ca.location={kafka_broker.ca_file}",
        "--timeout",
        "30",
    ]
    with aws_env(kafka_broker.access_key_id, kafka_broker.secret_access_key):
        assert run_cli("apply", *args, "--yes").code == 0
        assert run_cli("verify", *args).code == 0


def test_unreachable_broker_fails_within_the_timeout(run_cli: Cli, spec: Path) -> None:
    started = time.monotonic()

    run = run_cli(
        "plan", "--spec", str(spec), "--bootstrap", "127.0.0.1:1", "--auth", "plaintext",
        "--timeout", "5",
    )  # fmt: skip

    assert time.monotonic() - started < 15
    assert run.code == 1
    lines = run.err.strip().splitlines()
    assert len(lines) == 1, run.err
    assert "cannot reach Kafka at 127.0.0.1:1" in lines[0]


def test_console_script_as_a_real_process(kafka_broker: LocalKafka, spec: Path) -> None:
    script = Path(sys.executable).parent / "topic-sync"
    env = {**os.environ, "TOPIC_SYNC_BOOTSTRAP": kafka_broker.plaintext_bootstrap}

    result = subprocess.run(
        [str(script), "plan", "--spec", str(spec), "--auth", "plaintext"],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
        check=False,
    )

    assert result.returncode == 2, result.stderr
    assert "Plan: 2 to create." in result.stdout
    assert result.stderr == ""


def _apply_on_a_terminal(broker: LocalKafka, spec: Path, answer: str) -> tuple[int, str]:
    """``topic-sync apply`` with a real pseudo-terminal as stdin, answering its prompt."""
    script = Path(sys.executable).parent / "topic-sync"
    env = {**os.environ, "TOPIC_SYNC_BOOTSTRAP": broker.plaintext_bootstrap}
    controller, terminal = os.openpty()
    with subprocess.Popen(
        [str(script), "apply", "--spec", str(spec), "--auth", "plaintext"],
        stdin=terminal,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    ) as process:
        os.close(terminal)
        os.write(controller, f"{answer}\n".encode())
        out, err = process.communicate(timeout=60)
    os.close(controller)
    return process.returncode, out + err


def test_apply_on_a_terminal_asks_and_only_yes_applies(
    kafka_broker: LocalKafka, spec: Path, topic_names: list[str]
) -> None:
    admin = plaintext_admin(kafka_broker)

    declined, said = _apply_on_a_terminal(kafka_broker, spec, "no")
    assert "Type 'yes'" in said
    assert declined == 1
    assert not set(topic_names) & set(admin.list_topics(timeout=10).topics)

    accepted, said = _apply_on_a_terminal(kafka_broker, spec, "yes")
    assert accepted == 0, said
    assert set(topic_names) <= set(admin.list_topics(timeout=10).topics)


def test_a_stage_applies_its_overrides_and_an_unknown_stage_changes_nothing(
    run_cli: Cli, target: list[str], kafka_broker: LocalKafka, tmp_path: Path
) -> None:
    name = unique_topic_name("cli.staged")
    spec = tmp_path / "staged.yaml"
    spec.write_text(
        f"topics:\n  - name: {name}\n    partitions: 2\n"
        f"stages:\n  prod:\n    topics:\n      {name}:\n        partitions: 4\n"
    )
    args = [*target, "--spec", str(spec)]
    refused = run_cli("apply", *args, "--stage", "qa", "--yes")
    assert refused.code == 1
    assert "stage 'qa' is not declared (stages: prod)" in refused.err
    assert name not in plaintext_admin(kafka_broker).list_topics(timeout=15).topics
    assert run_cli("apply", *args, "--stage", "prod", "--yes").code == 0
    assert run_cli("verify", *args, "--stage", "prod").code == 0
    described = plaintext_admin(kafka_broker).list_topics(name, timeout=15).topics[name]
    assert len(described.partitions) == 4
    # The base values ask for 2: a decrease, refused before any change.
    assert run_cli("apply", *args, "--yes").code != 0
