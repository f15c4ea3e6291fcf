"""The Lambda handler over the in-memory cluster: whole CloudFormation lifecycles, no broker.

GIVEN a cluster state, WHEN CloudFormation sends an event (events/*.json), THEN check what the
handler answered and what the cluster now holds. ``handler.make_admin`` is the one I/O seam.
"""

from __future__ import annotations

import copy
import io
import json
import re
from typing import Any

import pytest

from tests.engine.fake_admin import AUTHZ_FAILED, FakeKafka, FakeTopic
from tests.engine.helpers import load_event
from topic_sync import handler
from topic_sync.connection import Connection
from topic_sync.exceptions import PlanRefusedError, SpecError, SyncFailedError, TopicSyncError
from topic_sync.resource import physical_id
from topic_sync_tools.local_invoke import LocalLambdaContext

BOOTSTRAP = "boot-abc.c1.kafka-serverless.us-east-1.amazonaws.com:9098"
SECRETS = {
    "AWS_ACCESS_KEY_ID": "AKIAFAKEACCESSKEYID1",
    "AWS_SECRET_ACCESS_KEY": "fake-secret-access-key-NEVER-LOG",
    "AWS_SESSION_TOKEN": "fake-session-token-NEVER-LOG",
}


class Cluster:
    """The fake cluster plus the clients the handler opened on it (one per invocation)."""

    def __init__(self, topics: dict[str, FakeTopic] | None = None) -> None:
        self.kafka = FakeKafka(topics, bootstrap_servers=BOOTSTRAP)
        self.clients: list[FakeKafka] = []

    def connect(self, connection: Connection) -> FakeKafka:
        client = self.kafka.client(connection.bootstrap_servers)
        self.clients.append(client)
        return client

    @property
    def last(self) -> FakeKafka:
        return self.clients[-1]

    def partitions(self) -> dict[str, int]:
        return {name: t.partitions for name, t in sorted(self.kafka.topics.items())}


@pytest.fixture(autouse=True)
def aws_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_REGION", "us-east-1")
    for key, value in SECRETS.items():
        monkeypatch.setenv(key, value)


class RollbackSwitch:
    """Stands in for ``is_update_rollback`` (a CloudFormation call); records who asked."""

    def __init__(self) -> None:
        self.rolling_back = False
        self.asked: list[str] = []

    def __call__(self, stack_id: str) -> bool:
        self.asked.append(stack_id)
        return self.rolling_back


class StackStatus:
    """Stands in for ``stack_status`` (CloudFormation DescribeStacks); None = unreadable."""

    def __init__(self) -> None:
        self.status: str | None = None

    def __call__(self, stack_id: str) -> str | None:
        return self.status


@pytest.fixture(autouse=True)
def stack(monkeypatch: pytest.MonkeyPatch) -> StackStatus:
    fake = StackStatus()
    monkeypatch.setattr(handler, "stack_status", fake)
    return fake


@pytest.fixture
def rollback(monkeypatch: pytest.MonkeyPatch) -> RollbackSwitch:
    switch = RollbackSwitch()
    monkeypatch.setattr(handler, "is_update_rollback", switch)
    return switch


@pytest.fixture
def logs(monkeypatch: pytest.MonkeyPatch) -> io.StringIO:
    """Everything the Powertools logger (and the engine's loggers, which share its handler)
    writes. Its StreamHandler was bound to sys.stdout at import, before capsys could swap it."""
    buffer = io.StringIO()
    monkeypatch.setattr(handler.logger.registered_handler, "stream", buffer)
    return buffer


def with_cluster(monkeypatch: pytest.MonkeyPatch, cluster: Cluster) -> Cluster:
    monkeypatch.setattr(handler, "make_admin", cluster.connect)
    return cluster


def no_kafka(monkeypatch: pytest.MonkeyPatch) -> None:
    def fail(connection: Connection) -> Any:
        raise AssertionError(f"must not connect to {connection.bootstrap_servers}")

    monkeypatch.setattr(handler, "make_admin", fail)


def invoke(name: str, pid: str | None = None, **changes: Any) -> dict[str, Any]:
    evt = load_event(name)
    if pid is not None:
        evt["PhysicalResourceId"] = pid
    evt["ResourceProperties"].update(changes)
    context: Any = LocalLambdaContext()
    result: dict[str, Any] = handler.on_event(copy.deepcopy(evt), context)
    return result


def test_full_lifecycle_create_update_rollback_retain_destroy(monkeypatch, rollback, stack) -> None:
    # GIVEN a cluster that holds a topic someone else owns
    cluster = with_cluster(monkeypatch, Cluster({"foreign": FakeTopic(5)}))

    # WHEN the stack is created THEN its topics exist as specified
    created = invoke("lifecycle_1_create")
    pid = created["PhysicalResourceId"]
    assert pid == physical_id(load_event("lifecycle_1_create")["StackId"], "KafkaTopics", BOOTSTRAP)
    assert created["Data"]["Created"] == 2
    assert created["Data"]["CreatedTopics"] == "orders,payments"
    assert cluster.partitions() == {"foreign": 5, "orders": 3, "payments": 1}
    assert cluster.kafka.topics["orders"].config == {"retention.ms": "604800000"}

    # WHEN an update adds a topic and grows one THEN both happen, and the id does not change
    updated = invoke("lifecycle_2_update_grow_and_add", pid)
    assert updated["PhysicalResourceId"] == pid
    assert (updated["Data"]["Created"], updated["Data"]["Updated"]) == (1, 1)
    assert cluster.partitions() == {"foreign": 5, "invoices": 2, "orders": 6, "payments": 1}
    assert cluster.kafka.topics["invoices"].config == {"cleanup.policy": "compact"}
    assert rollback.asked == []  # growing needs no rollback check (it costs an AWS call)

    # WHEN CloudFormation rolls that update back (old and new swapped)
    rollback.rolling_back = True
    rolled = invoke("lifecycle_3_update_rollback", pid)
    # THEN partitions are kept (Kafka cannot shrink) and nothing is deleted, despite Prune
    assert rollback.asked == [load_event("lifecycle_3_update_rollback")["StackId"]]
    assert rolled["PhysicalResourceId"] == pid
    assert rolled["Data"]["Rollback"] == "true"
    assert rolled["Data"]["Deleted"] == 0
    assert rolled["Data"]["RetainedTopics"] == "invoices"
    assert "partitions cannot decrease (6 -> 3)" in rolled["Data"]["Warnings"]
    assert cluster.partitions() == {"foreign": 5, "invoices": 2, "orders": 6, "payments": 1}
    assert cluster.last.mutating_calls() == []
    rollback.rolling_back = False

    # WHEN the stack is deleted with RETAIN THEN Kafka is not even contacted
    clients_before = len(cluster.clients)
    retained = invoke("lifecycle_4_delete_retain", pid)
    assert retained["PhysicalResourceId"] == pid
    assert retained["Data"]["Retained"] == 2
    assert len(cluster.clients) == clients_before
    assert cluster.partitions() == {"foreign": 5, "invoices": 2, "orders": 6, "payments": 1}

    # WHEN the owner adopts the kept partition count and sets DESTROY THEN no topic changes
    policy = invoke("lifecycle_5_update_removal_destroy", pid)
    assert policy["Data"]["Unchanged"] == 2
    assert policy["Data"]["Retained"] == 0  # old and new list the same topics
    assert cluster.last.mutating_calls() == []

    # WHEN the stack is then deleted THEN only its own current topics go
    stack.status = "DELETE_IN_PROGRESS"
    destroyed = invoke("lifecycle_6_delete_destroy", pid)
    assert destroyed["PhysicalResourceId"] == pid
    assert destroyed["Data"]["Deleted"] == 2
    assert destroyed["Data"]["DeletedTopics"] == "orders,payments"
    # foreign was never ours; invoices left the spec in a rollback and was kept on purpose
    assert cluster.partitions() == {"foreign": 5, "invoices": 2}


def test_update_outside_a_rollback_refuses_to_shrink_and_touches_nothing(
    monkeypatch, rollback
) -> None:
    cluster = with_cluster(
        monkeypatch,
        Cluster({"orders": FakeTopic(6), "payments": FakeTopic(1), "invoices": FakeTopic(2)}),
    )
    with pytest.raises(PlanRefusedError, match=r"orders: partitions cannot decrease \(6 -> 3\)"):
        invoke("lifecycle_3_update_rollback", "topic-sync-x")
    assert len(rollback.asked) == 1
    assert cluster.partitions() == {"invoices": 2, "orders": 6, "payments": 1}
    assert cluster.last.mutating_calls() == []


def test_update_returns_the_incoming_physical_id_even_when_the_cluster_changes(
    monkeypatch, rollback
) -> None:
    cluster = with_cluster(monkeypatch, Cluster())
    result = invoke("lifecycle_2_update_grow_and_add", "topic-sync-issued-long-ago")
    assert result["PhysicalResourceId"] == "topic-sync-issued-long-ago"
    moved = invoke(
        "lifecycle_2_update_grow_and_add",
        "topic-sync-issued-long-ago",
        BootstrapServers="other-cluster:9098",
    )
    assert moved["PhysicalResourceId"] == "topic-sync-issued-long-ago"
    assert [c.bootstrap_servers for c in cluster.clients] == [BOOTSTRAP, "other-cluster:9098"]


@pytest.mark.parametrize(
    "status",
    [
        "ROLLBACK_IN_PROGRESS",  # the stack's first Create failed elsewhere
        "UPDATE_ROLLBACK_COMPLETE_CLEANUP_IN_PROGRESS",  # an update that added us rolled back
        "UPDATE_COMPLETE_CLEANUP_IN_PROGRESS",  # the resource was removed or renamed
        None,  # DescribeStacks failed: when unsure, keep the data
    ],
)
def test_destroy_deletes_nothing_unless_the_stack_itself_is_being_deleted(
    monkeypatch, stack, status
) -> None:
    # GIVEN topics created by this resource, one of them adopted with data from before
    cluster = with_cluster(monkeypatch, Cluster({"orders": FakeTopic(3)}))
    pid = invoke("lifecycle_1_create", RemovalPolicy="DESTROY")["PhysicalResourceId"]
    # WHEN CloudFormation deletes the resource while the stack is not being deleted
    stack.status = status
    result = invoke("lifecycle_6_delete_destroy", pid)
    # THEN every topic stays
    assert result["Data"]["Deleted"] == 0
    assert result["Data"]["RetainedTopics"] == "orders,payments"
    assert cluster.partitions() == {"orders": 3, "payments": 1}


def test_create_id_ignores_the_topic_list(monkeypatch) -> None:
    with_cluster(monkeypatch, Cluster())
    first = invoke("lifecycle_1_create")["PhysicalResourceId"]
    other = invoke("lifecycle_1_create", Topics=[{"Name": "other", "Partitions": "1"}])
    assert other["PhysicalResourceId"] == first


def test_delete_of_an_id_we_never_issued_touches_nothing(monkeypatch) -> None:
    no_kafka(monkeypatch)
    result = invoke("lifecycle_6_delete_destroy", "a1b2-failed-create-request-id")
    assert result["PhysicalResourceId"] == "a1b2-failed-create-request-id"
    assert result["Data"]["Deleted"] == 0


def test_delete_retain_succeeds_even_with_invalid_properties(monkeypatch) -> None:
    no_kafka(monkeypatch)
    result = invoke("lifecycle_4_delete_retain", "topic-sync-x", TimeoutSeconds="never")
    assert result["Data"]["RetainedTopics"] == "orders,payments"


def test_invalid_properties_fail_before_connecting(monkeypatch) -> None:
    no_kafka(monkeypatch)
    with pytest.raises(SpecError, match=r"TimeoutSeconds: must be 1\.\.900, got 'soon'"):
        invoke("lifecycle_1_create", TimeoutSeconds="soon")


def test_failure_reason_names_failed_and_succeeded_topics(monkeypatch) -> None:
    cluster = with_cluster(monkeypatch, Cluster())
    cluster.kafka.client = _scripted(cluster.kafka, "payments")  # type: ignore[method-assign]
    with pytest.raises(SyncFailedError) as info:
        invoke("lifecycle_1_create")
    assert str(info.value) == (
        "1 topic(s) failed: payments: TOPIC_AUTHORIZATION_FAILED: "
        "Broker: Topic authorization failed. Succeeded: orders"
    )
    assert cluster.partitions() == {"orders": 3}


def _scripted(kafka: FakeKafka, denied: str) -> Any:
    make = kafka.client

    def client(bootstrap_servers: str | None = None) -> FakeKafka:
        fresh = make(bootstrap_servers)
        fresh.fail("create_topics", AUTHZ_FAILED, topic=denied)
        return fresh

    return client


def test_long_failure_reasons_are_cut_to_fit_the_response(monkeypatch) -> None:
    topics = [{"Name": f"t{i:04d}-{'x' * 200}", "Partitions": "1"} for i in range(50)]
    cluster = with_cluster(monkeypatch, Cluster())
    make = cluster.kafka.client

    def denied_everywhere(bootstrap_servers: str | None = None) -> FakeKafka:
        fresh = make(bootstrap_servers)
        fresh.fail("create_topics", AUTHZ_FAILED)
        return fresh

    cluster.kafka.client = denied_everywhere  # type: ignore[method-assign]
    with pytest.raises(TopicSyncError) as info:
        invoke("lifecycle_1_create", Topics=topics)
    assert isinstance(info.value, SyncFailedError)  # the type survives the cut
    assert len(str(info.value)) < 1600
    assert str(info.value).endswith("...(truncated; full text in the logs)")
    assert "50 topic(s) failed" in str(info.value)


def _log_records(buffer: io.StringIO) -> list[dict[str, Any]]:
    return [json.loads(line) for line in buffer.getvalue().splitlines() if line.strip()]


def test_logs_are_json_and_never_hold_the_response_url_or_secrets(
    monkeypatch, rollback, logs
) -> None:
    cluster = with_cluster(monkeypatch, Cluster())
    secret_config = {"ssl.key.password": "client-key-password-NEVER-LOG"}
    pid = invoke("lifecycle_1_create", ClientConfig=secret_config)["PhysicalResourceId"]
    invoke("lifecycle_2_update_grow_and_add", pid, ClientConfig=secret_config)
    cluster.kafka.client = _scripted(cluster.kafka, "invoices")  # type: ignore[method-assign]
    cluster.kafka.topics.pop("invoices")
    with pytest.raises(SyncFailedError):
        invoke("lifecycle_2_update_grow_and_add", pid, ClientConfig=secret_config)
    invoke("lifecycle_6_delete_destroy", pid)

    text = logs.getvalue()
    records = _log_records(logs)
    messages = [r["message"] for r in records]
    assert messages.count("sync") == 3
    assert "sync failed" in messages
    assert any(r.get("name", "").startswith("topic_sync") for r in records)  # engine logs too
    assert {r["function_request_id"] for r in records} == {LocalLambdaContext().aws_request_id}
    for forbidden in (
        "ResponseURL",
        "X-Amz-Signature",
        "NEVER-LOG",
        load_event("lifecycle_1_create")["ResponseURL"],
        *SECRETS.values(),
    ):
        assert forbidden not in text, forbidden


def test_real_admin_logs_its_client_config_masked(monkeypatch, logs) -> None:
    """The default seam builds the real client; its connect log must hide secrets and tokens."""
    from aws_msk_iam_sasl_signer import MSKAuthTokenProvider

    signed: list[str] = []

    def generate_auth_token(region: str) -> tuple[str, int]:
        signed.append(region)
        return "signed-iam-token-NEVER-LOG", 4_102_444_800_000

    monkeypatch.setattr(MSKAuthTokenProvider, "generate_auth_token", generate_auth_token)
    connection = Connection(
        "127.0.0.1:1",
        region="us-east-1",
        client_config={"ssl.key.password": "client-key-password-NEVER-LOG"},
    )
    admin = handler.make_admin(connection)
    assert admin.bootstrap_servers == "127.0.0.1:1"
    del admin
    records = _log_records(logs)
    connecting = next(r for r in records if r["message"] == "connecting")
    assert connecting["client_config"]["ssl.key.password"] == "***"
    assert connecting["client_config"]["oauth_cb"] == "<callback>"
    assert signed == ["us-east-1"]  # the token was made, and still is nowhere in the logs
    assert "NEVER-LOG" not in logs.getvalue()


# ---- issue 9: a bad event is a refusal before any cluster contact ------------------------------


def _event(name: str, pid: str | None = None, **changes: Any) -> dict[str, Any]:
    evt = load_event(name)
    if pid is not None:
        evt["PhysicalResourceId"] = pid
    evt["ResourceProperties"].update(changes)
    return evt


@pytest.mark.parametrize("topics", [None, "", "orders", {"Name": "orders"}, 0])
def test_an_update_without_readable_topics_is_refused_and_deletes_nothing(
    monkeypatch, rollback, topics: Any
) -> None:
    # GIVEN a stack whose topics exist, and Prune on
    cluster = with_cluster(monkeypatch, Cluster())
    pid = invoke("lifecycle_1_create")["PhysicalResourceId"]
    before = cluster.partitions()
    opened = len(cluster.clients)

    # WHEN an Update arrives whose Topics is absent, null, "" or not a list
    evt = _event("lifecycle_2_update_grow_and_add", pid, Topics=topics)
    if topics is None:
        del evt["ResourceProperties"]["Topics"]
    with pytest.raises(SpecError) as info:
        handler.on_event(evt, LocalLambdaContext())  # type: ignore[arg-type]

    # THEN it is refused naming Topics, and the cluster was never contacted
    assert "Topics: " in str(info.value)
    assert len(cluster.clients) == opened
    assert cluster.partitions() == before


def test_an_update_with_unreadable_old_topics_prunes_nothing(monkeypatch, rollback) -> None:
    cluster = with_cluster(monkeypatch, Cluster({"orders": FakeTopic(3), "stray": FakeTopic(1)}))
    evt = _event("lifecycle_2_update_grow_and_add", "topic-sync-x")
    evt["OldResourceProperties"]["Topics"] = "garbage"
    handler.on_event(evt, LocalLambdaContext())  # type: ignore[arg-type]
    assert "stray" in cluster.partitions()


@pytest.mark.parametrize("request_type", ["Bogus", "create", "", None, ["Create"]])
def test_an_unknown_request_type_is_refused_without_touching_kafka(
    monkeypatch, request_type: Any
) -> None:
    no_kafka(monkeypatch)
    evt = load_event("lifecycle_1_create")
    evt["RequestType"] = request_type
    with pytest.raises(SpecError) as info:
        handler.on_event(evt, LocalLambdaContext())  # type: ignore[arg-type]
    assert str(info.value).startswith(
        "invalid topic spec: RequestType: must be Create, Update, Delete, got "
    )


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        ({"ResourceProperties": None}, "ResourceProperties: must be a map, got None"),
        ({"ResourceProperties": [1]}, "ResourceProperties: must be a map, got <list"),
        ({"StackId": None}, "StackId: required"),
        ({"OldResourceProperties": "x"}, "OldResourceProperties: must be a map, got 'x'"),
        ({"PhysicalResourceId": ["x"]}, "PhysicalResourceId: required on Update"),
        (
            {"RequestType": "Delete", "PhysicalResourceId": None},
            "PhysicalResourceId: required on Delete",
        ),
    ],
)
def test_a_malformed_event_is_refused_without_touching_kafka(
    monkeypatch, change: dict[str, Any], expected: str
) -> None:
    no_kafka(monkeypatch)
    evt = {**load_event("lifecycle_2_update_grow_and_add"), **change}
    with pytest.raises(SpecError, match=re.escape(expected)):
        handler.on_event(evt, LocalLambdaContext())  # type: ignore[arg-type]


@pytest.mark.parametrize("char", ["x", "\u00e9", "\u20ac", "\U0001f4a5", "\\", '"', "\x01"])
def test_the_failure_reason_fits_in_utf8_bytes_as_the_framework_encodes_it(char: str) -> None:
    reason = handler.bounded_reason("first line\nsecond " + char * 5000)
    encoded = json.dumps(reason, ensure_ascii=False).encode("utf-8")
    assert len(encoded) - 2 <= handler.MAX_REASON_BYTES
    assert reason.startswith("first line second")
    assert reason.endswith(handler.TRUNCATED_MARK)
    assert "\n" not in reason
    # What the Provider framework sends: our reason plus its own parts, well under 4096 bytes.
    framework_reason = f"Error: {reason}\n\nLogs: /aws/lambda/{'f' * 64}\n\n" + "    at x\n" * 100
    reply = {
        "Status": "FAILED",
        "Reason": framework_reason,
        "StackId": load_event("lifecycle_1_create")["StackId"],
        "RequestId": "0" * 36,
        "PhysicalResourceId": "topic-sync-" + "0" * 24,
        "LogicalResourceId": "L" * 255,
        "NoEcho": False,
    }
    assert len(json.dumps(reply, ensure_ascii=False).encode("utf-8")) < 4096


def test_a_short_reason_is_passed_on_unchanged() -> None:
    assert handler.bounded_reason("1 topic(s) failed: a: b") == "1 topic(s) failed: a: b"


def test_a_multibyte_failure_reason_is_cut_in_bytes(monkeypatch) -> None:
    no_kafka(monkeypatch)
    topics = [{"Name": f"t{i}", "Partitions": "\u20ac" * 70} for i in range(200)]
    with pytest.raises(TopicSyncError) as info:
        invoke("lifecycle_1_create", Topics=topics)
    assert isinstance(info.value, SpecError)  # the type survives the cut
    reason = str(info.value)
    assert reason.endswith(handler.TRUNCATED_MARK)
    assert len(reason.encode("utf-8")) <= handler.MAX_REASON_BYTES < 2 * len(reason)


def _emf_documents(out: str) -> list[dict[str, Any]]:
    docs = [json.loads(line) for line in out.splitlines() if line.startswith("{")]
    return [d for d in docs if "_aws" in d]


def test_each_sync_emits_one_metrics_document_and_a_failed_one_counts_an_error(
    monkeypatch, capsys
) -> None:
    monkeypatch.delenv("POWERTOOLS_METRICS_DISABLED", raising=False)
    cluster = with_cluster(monkeypatch, Cluster())
    invoke("lifecycle_1_create")
    (created,) = _emf_documents(capsys.readouterr().out)
    assert created["TopicsCreated"] == [2.0]
    assert created["Operation"] == "sync"

    cluster.kafka.client = _scripted(cluster.kafka, "payments")  # type: ignore[method-assign]
    cluster.kafka.topics.pop("payments")
    with pytest.raises(SyncFailedError):
        invoke("lifecycle_1_create")
    (failed,) = _emf_documents(capsys.readouterr().out)
    assert failed["SyncErrors"] == [1.0]


def test_a_failure_reason_names_the_provisioner_log_group_even_when_cut(monkeypatch) -> None:
    monkeypatch.setenv(handler.LOG_GROUP_ENV, "TopicSync-TopicsProvisionerLogs-abc")
    hint = " (provisioner logs: CloudWatch log group TopicSync-TopicsProvisionerLogs-abc)"
    assert handler.bounded_reason("refused", handler.logs_hint()) == "refused" + hint
    long = handler.bounded_reason("\u20ac" * 5000, handler.logs_hint())
    assert long.endswith(handler.TRUNCATED_MARK + hint)
    assert len(json.dumps(long, ensure_ascii=False).encode()) - 2 <= handler.MAX_REASON_BYTES

    no_kafka(monkeypatch)
    with pytest.raises(SpecError) as info:
        invoke("lifecycle_1_create", TimeoutSeconds="soon")
    assert str(info.value).endswith(hint)
