"""scripts/local-kafka: up from nothing, reuse when up, keep a dead broker's data, down leaves
nothing behind."""

from __future__ import annotations

import json
import os
import signal
import time
from pathlib import Path

import pytest

from tests.support.kafka import (
    LocalKafka,
    consume_messages,
    create_topic,
    free_ports,
    load_broker,
    plaintext_admin,
    plaintext_config,
    produce_messages,
    run_local_kafka,
    topic_names,
    unique_topic_name,
)

pytestmark = pytest.mark.integration


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # A zombie is as good as gone; it only waits for its (already exited) parent.
    status = Path(f"/proc/{pid}/status")
    return status.exists() and "State:\tZ" not in status.read_text()


def _brokers_for(run_dir: Path) -> list[int]:
    """Pids of kafka.Kafka processes started with this run dir's config."""
    needle = f"kafka.Kafka {run_dir}/server.properties"
    pids = []
    for proc in Path("/proc").iterdir():
        if proc.name.isdigit():
            try:
                cmdline = (proc / "cmdline").read_bytes().replace(b"\0", b" ").decode()
            except OSError:
                continue
            if needle in cmdline:
                pids.append(int(proc.name))
    return pids


def test_up_from_clean_state_answers_and_down_leaves_no_process(tmp_path: Path) -> None:
    # Own run dir and ports: the shared session broker must keep running.
    run_dir = tmp_path / "run"
    plaintext, sasl_ssl, controller = free_ports(3)
    ports = {"plaintext": plaintext, "sasl_ssl": sasl_ssl, "controller": controller}
    try:
        started = time.monotonic()
        up = run_local_kafka("up", run_dir=run_dir, ports=ports)
        assert up.returncode == 0, up.stderr
        assert up.stdout.strip().splitlines()[-1] == f"127.0.0.1:{plaintext}"
        assert time.monotonic() - started < 60

        status = run_local_kafka("status", run_dir=run_dir)
        assert status.returncode == 0
        assert f"127.0.0.1:{sasl_ssl}" in status.stdout
        assert str(run_dir / "tls" / "ca.pem") in status.stdout
        assert "iam-credentials.json" in status.stdout
        assert "iam-policies.json" in status.stdout
        assert "region us-east-1" in status.stdout

        broker = load_broker(run_dir)
        admin = plaintext_admin(broker)
        topic = unique_topic_name("lifecycle")
        create_topic(admin, topic)
        assert topic in topic_names(admin)

        pid = int((run_dir / "kafka.pid").read_text())
        assert _brokers_for(run_dir) == [pid]
    finally:
        down = run_local_kafka("down", run_dir=run_dir)
    assert down.returncode == 0, down.stderr
    assert not _pid_alive(pid)
    assert _brokers_for(run_dir) == []
    assert not (run_dir / "data").exists()
    status = run_local_kafka("status", run_dir=run_dir)
    assert status.returncode == 3
    assert "not running" in status.stdout


def test_up_when_already_up_prints_same_address_and_starts_nothing(
    kafka_broker: LocalKafka,
) -> None:
    run_dir = Path(kafka_broker.run_dir)
    pid_before = int((run_dir / "kafka.pid").read_text())

    up = run_local_kafka("up", run_dir=run_dir)

    assert up.returncode == 0, up.stderr
    assert up.stdout.strip().splitlines()[-1] == kafka_broker.plaintext_bootstrap
    assert "already running" in up.stderr
    assert int((run_dir / "kafka.pid").read_text()) == pid_before
    assert _brokers_for(run_dir) == [pid_before]


def test_up_with_other_iam_policies_refuses_to_reuse_the_running_broker(
    kafka_broker: LocalKafka, tmp_path: Path
) -> None:
    run_dir = Path(kafka_broker.run_dir)
    pid_before = int((run_dir / "kafka.pid").read_text())
    other = tmp_path / "other-policies.json"
    policies = json.loads((run_dir / "iam-policies.json").read_text())
    del policies["identities"]["denied"]
    other.write_text(json.dumps(policies))

    up = run_local_kafka("up", run_dir=run_dir, policies=other)

    assert up.returncode == 1
    assert "with other IAM policies" in up.stderr
    assert "scripts/local-kafka down" in up.stderr
    assert int((run_dir / "kafka.pid").read_text()) == pid_before
    assert "denied" in json.loads((run_dir / "iam-credentials.json").read_text())["identities"]


def test_status_reports_the_running_broker(kafka_broker: LocalKafka) -> None:
    status = run_local_kafka("status", run_dir=Path(kafka_broker.run_dir))
    assert status.returncode == 0
    assert kafka_broker.plaintext_bootstrap in status.stdout
    assert kafka_broker.sasl_ssl_bootstrap in status.stdout
    assert kafka_broker.ca_file in status.stdout


# Starts with '-': before `--cluster-id=`, kafka-storage read it as an option (1 start in 64).
DASH_CLUSTER_ID = "-uQ2hXtgSxuNwQ6Xa1dIxA"


def test_up_accepts_a_dash_cluster_id_and_keeps_the_data_of_a_broker_that_died(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    run_dir = tmp_path / "run"
    plaintext, sasl_ssl, controller = free_ports(3)
    ports = {"plaintext": plaintext, "sasl_ssl": sasl_ssl, "controller": controller}
    monkeypatch.setenv("LOCAL_KAFKA_CLUSTER_ID", DASH_CLUSTER_ID)
    try:
        up = run_local_kafka("up", run_dir=run_dir, ports=ports)
        monkeypatch.delenv("LOCAL_KAFKA_CLUSTER_ID")  # a restart must not format again
        assert up.returncode == 0, up.stderr
        meta = (run_dir / "data" / "meta.properties").read_text()
        assert f"cluster.id={DASH_CLUSTER_ID}" in meta

        broker = load_broker(run_dir)
        topic = unique_topic_name("survivor")
        create_topic(plaintext_admin(broker), topic)
        sent = produce_messages(plaintext_config(broker), topic, 20)

        pid = int((run_dir / "kafka.pid").read_text())
        os.kill(pid, signal.SIGKILL)
        while _pid_alive(pid):
            time.sleep(0.05)

        again = run_local_kafka("up", run_dir=run_dir, ports=ports)
        assert again.returncode == 0, again.stderr
        assert f"broker pid {pid} is gone" in again.stderr
        assert "keeping its data" in again.stderr
        assert (run_dir / "data" / "meta.properties").read_text() == meta
        received = consume_messages(plaintext_config(load_broker(run_dir)), topic, len(sent))
        assert sorted(received) == sorted(sent)
    finally:
        down = run_local_kafka("down", run_dir=run_dir)
    assert down.returncode == 0, down.stderr
    assert not (run_dir / "data").exists()
