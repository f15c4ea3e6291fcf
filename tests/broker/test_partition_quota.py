"""scripts/local-kafka's MSK-like partition quota (LOCAL_KAFKA_PARTITION_QUOTA=N/SECONDS): Kafka's
own controller mutation quota (KIP-599), a bucket of N partitions refilled at N/SECONDS per second.

librdkafka sends CreateTopics versions below 6, so the broker is permissive: it accepts the request
and answers with a throttle time, which librdkafka reports (throttle_cb) and waits out before its
next request to that broker."""

from __future__ import annotations

import json
import os
import signal
import time
from pathlib import Path
from typing import Any

import pytest
from confluent_kafka.admin import NewTopic  # type: ignore[attr-defined]  # not re-exported in the stubs

from tests.support.kafka import (
    LocalKafka,
    free_ports,
    load_broker,
    plaintext_admin,
    run_local_kafka,
    unique_topic_name,
)

pytestmark = pytest.mark.integration

QUOTA = "20/4"  # burst 20 partitions, 5 partitions/s: 20 more partitions cost 4 s
BURST = 20
SECONDS_FOR_BURST = 4.0
REFUSED = "local-kafka: error: LOCAL_KAFKA_PARTITION_QUOTA must be N/SECONDS"


class _Admin:
    """An AdminClient on PLAINTEXT (one principal: one KIP-599 bucket) recording throttle events."""

    def __init__(self, broker: LocalKafka) -> None:
        self.throttles: list[float] = []
        self.client = plaintext_admin(
            broker, throttle_cb=lambda event: self.throttles.append(event.throttle_time)
        )

    def create(self, partitions: int) -> None:
        name = unique_topic_name("quota")
        futures: dict[str, Any] = self.client.create_topics([NewTopic(name, partitions, 1)])
        futures[name].result(timeout=30)
        self.client.poll(0.2)  # deliver throttle_cb

    def take_throttles(self) -> list[float]:
        taken = [t for t in self.throttles if t > 0]
        self.throttles.clear()
        return taken


def _pid_gone(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    status = Path(f"/proc/{pid}/status")
    return not status.exists() or "State:\tZ" in status.read_text()


def test_quota_allows_a_burst_throttles_beyond_it_and_survives_a_restart(tmp_path: Path) -> None:
    run_dir = tmp_path / "run"
    plaintext, sasl_ssl, controller = free_ports(3)
    ports = {"plaintext": plaintext, "sasl_ssl": sasl_ssl, "controller": controller}
    try:
        up = run_local_kafka("up", run_dir=run_dir, ports=ports, partition_quota=QUOTA)
        assert up.returncode == 0, up.stderr
        assert "partition quota 20/4: 5 partitions/s per user, burst 20" in up.stderr
        assert json.loads((run_dir / "broker.json").read_text())["partition_quota"] == QUOTA
        admin = _Admin(load_broker(run_dir))

        admin.create(BURST)  # the whole bucket: accepted, no throttle
        assert admin.take_throttles() == []

        admin.create(BURST)  # accepted (permissive), but the bucket is now 20 partitions short
        throttled_at = time.monotonic()
        (throttle,) = admin.take_throttles()
        # 4 s minus what refilled since the first create (a few hundred ms).
        assert SECONDS_FOR_BURST - 1.0 <= throttle <= SECONDS_FOR_BURST + 0.1, throttle

        started = time.monotonic()
        admin.client.list_topics(timeout=15)  # librdkafka waits the throttle out first
        waited = time.monotonic() - started
        owed = throttle - (started - throttled_at)
        assert owed - 0.5 <= waited <= owed + 1.5, (throttle, waited)

        # A running broker is not reused with another quota (windows are static configuration).
        other = run_local_kafka("up", run_dir=run_dir, ports=ports, partition_quota="10/4")
        assert other.returncode == 1
        assert "with partition quota 20/4, not 10/4" in other.stderr

        # Killed and started again on the same data: the quota is still there, from the first
        # request on (the rate is in the KRaft metadata log, the windows in server.properties).
        pid = int((run_dir / "kafka.pid").read_text())
        os.kill(pid, signal.SIGKILL)
        while not _pid_gone(pid):
            time.sleep(0.05)
        again = run_local_kafka("up", run_dir=run_dir, ports=ports, partition_quota=QUOTA)
        assert again.returncode == 0, again.stderr
        assert "keeping its data" in again.stderr
        admin = _Admin(load_broker(run_dir))
        admin.create(2 * BURST)  # a fresh bucket of 20, so 20 partitions over: about 4 s
        (throttle,) = admin.take_throttles()
        assert SECONDS_FOR_BURST - 0.5 <= throttle <= SECONDS_FOR_BURST + 0.1, throttle
    finally:
        down = run_local_kafka("down", run_dir=run_dir)
    assert down.returncode == 0, down.stderr
    assert not (run_dir / "partition-quota").exists()


@pytest.mark.parametrize(
    "value", ["abc", "20", "0/4", "20/0", "-20/4", "20/-4", "1.5/4", "20/4/2", "20 /4", "1234567/1"]
)
def test_malformed_quota_is_refused_before_anything_starts(tmp_path: Path, value: str) -> None:
    run_dir = tmp_path / "run"
    ports = dict(zip(("plaintext", "sasl_ssl", "controller"), free_ports(3), strict=True))
    up = run_local_kafka("up", run_dir=run_dir, ports=ports, partition_quota=value)
    assert up.returncode == 1
    assert up.stdout == ""
    assert up.stderr.startswith(REFUSED), up.stderr
    assert f"not '{value}'" in up.stderr
    assert not run_dir.exists()
