"""A broker paused (SIGSTOP) or killed (SIGKILL) in the middle of a large Create driven
through the handler, as CloudFormation would: the handler fails within its TimeoutSeconds
budget with one readable line, and once the broker is back a re-run converges with nothing
lost. A dedicated broker (own run dir and ports), so the shared session broker is never
disturbed.
"""

from __future__ import annotations

import contextlib
import os
import signal
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from confluent_kafka.admin import AdminClient

from tests.engine.helpers import broker_state, event, invoke, topics_prop
from tests.support.kafka import (
    REPO_ROOT,
    LocalKafka,
    LocalKafkaError,
    broker_down,
    broker_pid,
    broker_up,
    consume_messages,
    create_topic,
    plaintext_admin,
    plaintext_config,
    produce_messages,
    unique_topic_name,
)
from topic_sync import handler
from topic_sync.connection import Connection
from topic_sync.exceptions import TopicSyncError
from topic_sync.kafka_admin import KafkaTopicAdmin

pytestmark = pytest.mark.integration

RUN_DIR = REPO_ROOT / ".kafka" / "faults-run"
# TOPIC_SYNC_FAULTS_PORTS="PLAINTEXT,SASL_SSL,CONTROLLER" moves them.
PORTS = dict(
    zip(
        ("plaintext", "sasl_ssl", "controller"),
        map(int, os.environ.get("TOPIC_SYNC_FAULTS_PORTS", "39192,39198,39193").split(",")),
        strict=True,
    )
)
TOPICS = 150  # one create request, in flight when the broker stops
TIMEOUT_S = 6  # the resource's TimeoutSeconds
SLACK_S = 2.5  # the last request's timeout and the final look may end a little after it


def _start(run_dir: Path, attempts: int = 3) -> LocalKafka:
    """``up`` on the dedicated run dir; a port taken for a moment (these ports are in the
    kernel's ephemeral range, so any client's outgoing connection may hold one) is retried."""
    for attempt in range(1, attempts + 1):
        try:
            broker, _ = broker_up(run_dir, PORTS)
            return broker
        except LocalKafkaError as exc:
            if "in use" not in str(exc) or attempt == attempts:
                pytest.fail(str(exc)[-3000:], pytrace=False)
            broker_down(run_dir)
            time.sleep(2.0)
    raise AssertionError("unreachable")


@pytest.fixture(scope="module")
def dedicated_broker() -> Iterator[LocalKafka]:
    run_dir = Path(os.environ.get("TOPIC_SYNC_FAULTS_KAFKA_HOME", RUN_DIR))
    broker = _start(run_dir)
    try:
        yield broker
    finally:
        if (run_dir / "kafka.pid").exists():
            # Its data is thrown away anyway: SIGKILL saves a controlled shutdown (10-20 s on
            # a loaded machine), and works on a stopped broker too.
            pid = int((run_dir / "kafka.pid").read_text().strip())
            if str(run_dir).encode() in _cmdline(pid):  # ours, not a recycled pid
                _signal(pid, signal.SIGKILL)
                _wait_gone(pid)
        broker_down(run_dir)


def _cmdline(pid: int) -> bytes:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return b""


def _wait_gone(pid: int, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    # Gone, or a zombie waiting for init to reap it (no command line any more).
    while _cmdline(pid):
        if time.monotonic() > deadline:
            raise AssertionError(f"broker {pid} still running {timeout} s after SIGKILL")
        time.sleep(0.1)


def _signal(pid: int, sig: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, sig)


def _after_first_create(pid: int, sig: signal.Signals) -> Callable[[dict[str, Any]], Any]:
    """A client factory whose first create_topics request is sent, then ``sig`` hits the
    broker: the Create is in flight when the broker stops answering."""

    class Client(AdminClient):
        fired = False

        def create_topics(self, *args: Any, **kwargs: Any) -> Any:
            futures = super().create_topics(*args, **kwargs)
            if not Client.fired:
                Client.fired = True
                time.sleep(0.05)  # let the request reach the broker
                os.kill(pid, sig)
            return futures

    return Client


def _large_create(broker: LocalKafka, prefix: str) -> tuple[dict[str, Any], str, list[Any]]:
    """Properties of a Create of TOPICS new topics plus one existing topic that holds
    messages (adopted and grown), and those messages."""
    kept = unique_topic_name(f"{prefix}-kept")
    create_topic(plaintext_admin(broker), kept, partitions=1)
    sent = produce_messages(plaintext_config(broker), kept, 50)
    topics = [(kept, 2), *((f"{prefix}-{i:04d}", 1) for i in range(TOPICS))]
    props = {
        "BootstrapServers": broker.plaintext_bootstrap,
        "Auth": "PLAINTEXT",
        "Topics": topics_prop(*topics),
        "TimeoutSeconds": str(TIMEOUT_S),
    }
    return props, kept, sent


def _fails_within_budget(props: dict[str, Any]) -> tuple[str, float]:
    started = time.monotonic()
    with pytest.raises(TopicSyncError) as info:
        invoke(event("Create", props))
    elapsed = time.monotonic() - started
    reason = str(info.value)
    assert "\n" not in reason
    assert len(reason) < 1600  # the handler cuts longer ones for CloudFormation
    assert elapsed < TIMEOUT_S + SLACK_S, (elapsed, reason)
    return reason, elapsed


def _converges(broker: LocalKafka, props: dict[str, Any], kept: str, sent: list[Any]) -> None:
    # A broker that was paused or restarted takes a few seconds to lead its partitions again.
    result = invoke(event("Create", {**props, "TimeoutSeconds": "60"}))
    assert result["Data"]["Created"] + result["Data"]["Updated"] + result["Data"]["Unchanged"]
    names = [t["Name"] for t in props["Topics"]]
    state = broker_state(plaintext_admin(broker), names, timeout=30)
    assert set(state) == set(names)
    assert state[kept].partitions == 2
    assert all(state[n].partitions == 1 for n in names if n != kept)
    got = consume_messages(plaintext_config(broker), kept, len(sent), timeout=30)
    assert sorted(got, key=repr) == sorted(sent, key=repr)


def _use_client(monkeypatch: pytest.MonkeyPatch, factory: Any) -> None:
    def make_admin(connection: Connection) -> KafkaTopicAdmin:
        return KafkaTopicAdmin(connection, client_factory=factory)

    monkeypatch.setattr(handler, "make_admin", make_admin)


def test_broker_killed_mid_create_fails_in_budget_then_after_restart_converges(
    dedicated_broker, monkeypatch
) -> None:
    run_dir = Path(dedicated_broker.run_dir)
    props, kept, sent = _large_create(dedicated_broker, "killed")
    pid = broker_pid(run_dir)
    _use_client(monkeypatch, _after_first_create(pid, signal.SIGKILL))
    reason, elapsed = _fails_within_budget(props)
    assert reason.startswith(f"cannot reach Kafka at {dedicated_broker.plaintext_bootstrap}: ")
    print(f"killed: failed in {elapsed:.1f} s: {reason}")

    monkeypatch.undo()
    restarted, started = broker_up(run_dir, PORTS)  # keeps a dead broker's data
    assert started
    assert restarted.plaintext_bootstrap == dedicated_broker.plaintext_bootstrap
    _converges(dedicated_broker, props, kept, sent)


def test_broker_paused_mid_create_fails_in_budget_then_a_rerun_converges(
    dedicated_broker, monkeypatch
) -> None:
    run_dir = Path(dedicated_broker.run_dir)
    props, kept, sent = _large_create(dedicated_broker, "paused")
    pid = broker_pid(run_dir)
    _use_client(monkeypatch, _after_first_create(pid, signal.SIGSTOP))
    try:
        reason, elapsed = _fails_within_budget(props)
    finally:
        _signal(pid, signal.SIGCONT)
    assert reason.startswith(f"cannot reach Kafka at {dedicated_broker.plaintext_bootstrap}: ")
    assert "no answer to Kafka requests within" in reason
    print(f"paused: failed in {elapsed:.1f} s: {reason}")

    monkeypatch.undo()
    _converges(dedicated_broker, props, kept, sent)
