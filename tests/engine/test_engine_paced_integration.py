"""A spec bigger than the partition quota, on a real broker that enforces one (KIP-599, scaled
down from MSK Serverless's 250 per 5 minutes to 20 per 4 s): on_event starts, is_complete is
called as the Provider framework's waiter would (every query interval, here 1 s) until the
cluster is in sync. Nothing is lost, nothing fails, and the broker barely has to throttle us.
"""

from __future__ import annotations

import copy
import io
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.engine.helpers import broker_state, event, invoke, topics_prop
from tests.support.kafka import (
    LocalKafka,
    LocalKafkaError,
    consume_messages,
    create_topic,
    free_ports,
    load_broker,
    plaintext_admin,
    plaintext_config,
    produce_messages,
    run_local_kafka,
    unique_topic_name,
)
from topic_sync import handler
from topic_sync_tools import cli
from topic_sync_tools.local_invoke import LocalLambdaContext

pytestmark = pytest.mark.integration

QUOTA = "20/4"  # the broker's bucket: 20 partitions, refilled at 5 per second
RATE = "20/4s"  # the same quota, told to the engine (PartitionRate)
QUERY_INTERVAL_S = 1.0  # the framework's 30 s, scaled like the quota


@pytest.fixture(scope="module")
def quota_broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalKafka]:
    run_dir: Path = tmp_path_factory.mktemp("quota") / "run"
    plaintext, sasl_ssl, controller = free_ports(3)
    ports = {"plaintext": plaintext, "sasl_ssl": sasl_ssl, "controller": controller}
    up = run_local_kafka("up", run_dir=run_dir, ports=ports, partition_quota=QUOTA)
    if up.returncode != 0:
        raise LocalKafkaError(f"local-kafka up with a quota failed:\n{up.stderr}")
    try:
        yield load_broker(run_dir)
    finally:
        run_local_kafka("down", run_dir=run_dir)


def is_complete(evt: dict[str, Any], result: dict[str, Any]) -> dict[str, Any]:
    context: Any = LocalLambdaContext(remaining_ms=60_000)
    answer: dict[str, Any] = handler.is_complete({**copy.deepcopy(evt), **result}, context)
    return answer


def test_a_spec_over_several_quota_windows_completes_through_the_waiter(
    quota_broker: LocalKafka,
) -> None:
    admin = plaintext_admin(quota_broker)
    kept = unique_topic_name("paced-kept")
    create_topic(admin, kept, partitions=1)  # adopted and grown: its messages must survive
    sent = produce_messages(plaintext_config(quota_broker), kept, 30)
    time.sleep(4)  # let that topic's partition refill the broker's bucket
    new = [unique_topic_name("paced") for _ in range(14)]
    # 14 x 4 + 3 more on the adopted topic = 59 partitions: the first bucket and 2+ refills.
    spec = topics_prop((kept, 4), *((name, 4) for name in new))
    props = {
        "BootstrapServers": quota_broker.plaintext_bootstrap,
        "Auth": "PLAINTEXT",
        "Topics": spec,
        "PartitionRate": RATE,
        "TotalTimeoutSeconds": "120",
        "TimeoutSeconds": "2",  # each call is short: the waiter does the waiting
    }
    started = time.monotonic()
    evt = event("Create", props)
    result = invoke(evt)
    assert result["Data"]["Complete"] == "false"
    assert result["Data"]["PartitionsPlanned"] == "59"

    rounds = 0
    answer: dict[str, Any] = {"IsComplete": False}
    while not answer["IsComplete"]:
        time.sleep(QUERY_INTERVAL_S)
        answer = is_complete(evt, result)
        rounds += 1
        assert rounds < 60, "never completed"
    took = time.monotonic() - started

    assert rounds >= 3
    assert answer["Data"]["Complete"] == "true"
    state = broker_state(admin, [kept, *new])
    assert {name: s.partitions for name, s in state.items()} == dict.fromkeys([kept, *new], 4)
    assert sorted(consume_messages(plaintext_config(quota_broker), kept, len(sent))) == sorted(sent)
    # The quota's lower bound for 59 partitions from a full bucket of 20 at 5/s is 7.8 s.
    print(f"paced create: {took:.1f} s over {rounds} waiter rounds (quota bound 7.8 s)")
    assert took >= 7.8 - 0.5


def test_the_cli_applies_the_same_kind_of_spec_window_by_window_with_progress(
    quota_broker: LocalKafka, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    time.sleep(4)  # a full bucket on the broker, as the CLI assumes
    names = [unique_topic_name("cli-paced") for _ in range(12)]  # 48 partitions
    spec = tmp_path / "topics.yaml"
    spec.write_text(
        "topics:\n" + "".join(f"  - name: {n}\n    partitions: 4\n" for n in names),
        encoding="utf-8",
    )
    common = ["--spec", str(spec), "--bootstrap", quota_broker.plaintext_bootstrap]
    common += ["--auth", "plaintext", "--timeout", "20"]
    started = time.monotonic()
    code = cli.main(["apply", *common, "--yes", "--partition-rate", RATE], out=io.StringIO())
    took = time.monotonic() - started
    err = capsys.readouterr().err
    assert code == 0, err
    assert "48 partition changes at 20/4s: about 6s" in err
    progress = [line for line in err.splitlines() if "partitions," in line]
    assert len(progress) >= 3  # one line per batch (no terminal here)
    assert progress[-1].startswith("topic-sync: [##############################] 48/48")
    assert "ETA 0s" in progress[-1]
    assert took >= 28 / 5 - 0.5  # 28 partitions beyond the first bucket at 5 per second
    state = broker_state(plaintext_admin(quota_broker), names)
    assert {n: s.partitions for n, s in state.items()} == dict.fromkeys(names, 4)
    assert cli.main(["plan", *common], out=io.StringIO()) == 0  # in sync
