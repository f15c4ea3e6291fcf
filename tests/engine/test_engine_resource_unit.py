"""The CloudFormation edge: properties parsing, physical ids and the < 4096-byte response Data."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest

from topic_sync.connection import ALLOWED_CLIENT_CONFIG, AuthMode
from topic_sync.exceptions import SpecError
from topic_sync.plan import ActionKind, Plan, TopicAction
from topic_sync.resource import RemovalPolicy, parse_properties, physical_id, previous_topics
from topic_sync.spec import ClusterType, TopicSpec
from topic_sync.summary import summarize

STACK = (
    "arn:aws:cloudformation:us-east-1:123456789012:stack/app/5b6a6c30-0000-11ef-0000-0a1b2c3d4e5f"
)
BOOTSTRAP = "boot-abc.c1.kafka-serverless.us-east-1.amazonaws.com:9098"


def base(**overrides: Any) -> dict[str, Any]:
    props: dict[str, Any] = {
        "BootstrapServers": BOOTSTRAP,
        "Region": "us-east-1",
        "Topics": [{"Name": "orders", "Partitions": "6"}],
    }
    props.update(overrides)
    return props


def problems_of(raw: dict[str, Any]) -> list[str]:
    with pytest.raises(SpecError) as info:
        parse_properties(raw)
    return info.value.problems


def test_numbers_and_booleans_are_accepted_as_cloudformation_strings_or_natively() -> None:
    as_strings = base(
        Prune="true",
        DryRun="False",
        TimeoutSeconds="120",
        RemovalPolicy="destroy",
        ClusterType="provisioned",
        Auth="iam",
        Topics=[
            {
                "Name": "orders",
                "Partitions": "6",
                "ReplicationFactor": "3",
                "Config": {"retention.ms": "604800000", "preallocate": "true"},
            }
        ],
    )
    native = base(
        Prune=True,
        DryRun=False,
        TimeoutSeconds=120,
        RemovalPolicy="DESTROY",
        ClusterType="PROVISIONED",
        Auth="IAM",
        Topics=[
            {
                "Name": "orders",
                "Partitions": 6,
                "ReplicationFactor": 3,
                "Config": {"retention.ms": 604800000, "preallocate": True},
            }
        ],
    )
    parsed = parse_properties(as_strings)
    assert parse_properties(native) == parsed
    assert parsed.prune is True
    assert parsed.dry_run is False
    assert parsed.timeout_seconds == 120
    assert parsed.removal_policy is RemovalPolicy.DESTROY
    assert parsed.cluster_type is ClusterType.PROVISIONED
    assert parsed.connection.auth is AuthMode.IAM
    assert parsed.topics == (
        TopicSpec("orders", 6, 3, {"retention.ms": "604800000", "preallocate": "true"}),
    )


def test_defaults_when_optional_properties_are_absent_or_empty() -> None:
    parsed = parse_properties(base(Prune="", TimeoutSeconds="", RemovalPolicy=""))
    assert parsed.prune is False
    assert parsed.dry_run is False
    assert parsed.timeout_seconds == 60
    assert parsed.removal_policy is RemovalPolicy.RETAIN
    assert parsed.cluster_type is ClusterType.SERVERLESS


@pytest.mark.parametrize(
    ("override", "expected"),
    [
        ({"Prune": "yes"}, "Prune: must be true or false, got 'yes'"),
        ({"DryRun": 1}, "DryRun: must be true or false, got 1"),
        ({"TimeoutSeconds": "0"}, "TimeoutSeconds: must be 1..900, got '0'"),
        ({"TimeoutSeconds": "901"}, "TimeoutSeconds: must be 1..900, got '901'"),
        ({"TimeoutSeconds": "1.5"}, "TimeoutSeconds: must be 1..900, got '1.5'"),
        ({"TimeoutSeconds": True}, "TimeoutSeconds: must be 1..900, got True"),
        ({"RemovalPolicy": "KEEP"}, "RemovalPolicy: must be RETAIN | DESTROY, got 'KEEP'"),
        ({"Auth": "SCRAM"}, "Auth: must be IAM | PLAINTEXT, got 'SCRAM'"),
        ({"ClusterType": "tiny"}, "ClusterType: must be SERVERLESS or PROVISIONED, got 'tiny'"),
        ({"BootstrapServers": ""}, "BootstrapServers: required"),
        ({"BootstrapServers": "no-port"}, "BootstrapServers: 'no-port' is not host:port"),
        ({"ClientConfig": "acks=all"}, "ClientConfig: must be a map"),
        (
            {"ClientConfig": {"security.protocol": "PLAINTEXT"}},
            "ClientConfig: security.protocol cannot be set",
        ),
        ({"Region": None}, "Region: required for IAM auth"),
        ({"Topics": "orders"}, "Topics: must be a list"),
        (
            {"Topics": [{"Name": "orders", "Partitions": "six"}]},
            "topic 'orders': Partitions must be a positive integer, got 'six'",
        ),
    ],
)
def test_bad_values_are_rejected_naming_the_property(
    monkeypatch: pytest.MonkeyPatch, override: dict[str, Any], expected: str
) -> None:
    monkeypatch.delenv("AWS_REGION", raising=False)
    monkeypatch.delenv("AWS_DEFAULT_REGION", raising=False)
    problems = problems_of(base(**override))
    assert any(expected in p for p in problems), problems


def test_every_problem_is_reported_at_once() -> None:
    problems = problems_of(base(Prune="maybe", TimeoutSeconds="-1", RemovalPolicy="gone"))
    assert [p.split(":")[0] for p in problems] == ["RemovalPolicy", "Prune", "TimeoutSeconds"]


def test_physical_id_is_stable_for_the_resource_and_changes_with_its_identity() -> None:
    pid = physical_id(STACK, "KafkaTopics", BOOTSTRAP)
    assert re.fullmatch(r"topic-sync-[0-9a-f]{24}", pid)
    # Same cluster written differently: same resource.
    other_order = f"b-2.example:9098,{BOOTSTRAP.upper()}"
    assert physical_id(STACK, "KafkaTopics", f"{BOOTSTRAP},b-2.example:9098") == physical_id(
        STACK, "KafkaTopics", other_order
    )
    assert physical_id(STACK, "OtherTopics", BOOTSTRAP) != pid
    assert physical_id(STACK.replace("app", "app2"), "KafkaTopics", BOOTSTRAP) != pid
    assert physical_id(STACK, "KafkaTopics", "other:9098") != pid


def _plan(count: int, name_length: int) -> Plan:
    kinds = [ActionKind.CREATE, ActionKind.UPDATE, ActionKind.UNCHANGED, ActionKind.DELETE]
    actions = []
    for i in range(count):
        name = f"t{i:05d}-".ljust(name_length, "x")
        kind = kinds[i % len(kinds)]
        actions.append(
            TopicAction(
                name=name,
                kind=kind,
                partitions=3,
                old_partitions=1 if kind is ActionKind.UPDATE else None,
                warnings=(f"retention.ms left the spec but is kept {'!' * 100}",),
            )
        )
    return Plan(tuple(actions))


def _shown_plus_more(text: str) -> tuple[int, int]:
    """``a,b,+N more`` -> (2, N)."""
    *shown, last = text.split(",")
    match = re.fullmatch(r"\+(\d+) more", last)
    assert match, text[-80:]
    return len(shown), int(match.group(1))


@pytest.mark.parametrize("dry_run", [False, True])
def test_summary_for_5000_long_topic_names_fits_and_says_how_many_more(dry_run: bool) -> None:
    plan = _plan(5000, 249)
    retained = [f"r{i:05d}-".ljust(249, "y") for i in range(1000)]
    data = summarize(plan, dry_run=dry_run, requests=42, retained=retained)
    response = {"PhysicalResourceId": "topic-sync-" + "0" * 24, "Data": data}

    assert len(json.dumps(response).encode()) < 4096
    assert data["Created"] == data["Updated"] == data["Unchanged"] == data["Deleted"] == 1250
    assert data["Retained"] == 1000
    assert data["AdminRequests"] == 42
    for key, total in [("Created", 1250), ("Deleted", 1250), ("Retained", 1000)]:
        shown, more = _shown_plus_more(data[f"{key}Topics"])
        assert shown >= 1
        assert shown + more == total, key
    assert data["Warnings"]
    assert ("Plan" in data) is dry_run


def test_small_summary_lists_every_name() -> None:
    plan = Plan((TopicAction("a", ActionKind.CREATE, 1), TopicAction("b", ActionKind.CREATE, 1)))
    data = summarize(plan)
    assert data["CreatedTopics"] == "a,b"
    assert data["Created"] == 2
    assert data["UpdatedTopics"] == ""


# ---- issue 9: bad input is refused, naming the property --------------------------------------


@pytest.mark.parametrize(
    ("override", "got"),
    [({"Topics": None}, "None"), ({"Topics": ""}, "''")],
)
def test_absent_or_empty_topics_are_a_refusal_never_no_topics(
    override: dict[str, Any], got: str
) -> None:
    assert problems_of(base(Prune="true", **override)) == [
        f"Topics: required, a list of topics (an explicit [] for none), got {got}"
    ]


def test_missing_topics_are_a_refusal() -> None:
    props = base(Prune="true")
    del props["Topics"]
    assert problems_of(props) == [
        "Topics: required, a list of topics (an explicit [] for none), got nothing"
    ]


@pytest.mark.parametrize("topics", [{"Name": "a"}, 3, True, "[]"])
def test_topics_that_are_not_a_list_are_a_refusal(topics: Any) -> None:
    (problem,) = problems_of(base(Topics=topics))
    assert problem.startswith("Topics: must be a list of topics, got ")


def test_an_explicit_empty_list_means_no_topics() -> None:
    assert parse_properties(base(Topics=[])).topics == ()


def test_properties_that_are_not_a_map_are_refused() -> None:
    with pytest.raises(SpecError, match="ResourceProperties: must be a map, got <list of 0"):
        parse_properties([])  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "key",
    [
        "metadata.broker.list",
        "bootstrap.servers",
        "enable.ssl.certificate.verification",
        "ssl.endpoint.identification.algorithm",
        "ssl.cipher.suites",
        "security.protocol",
        "sasl.mechanisms",
        "sasl.oauthbearer.config",
        "sasl.username",
        "oauth_cb",
        "oauthbearer_token_refresh_cb",
        "enable.sasl.oauthbearer.unsecure.jwt",
        "client.dns.lookup",
        "broker.address.family",
        "resolve_cb",
        "plugin.library.paths",
    ],
)
def test_client_config_that_redirects_or_weakens_the_connection_is_refused(key: str) -> None:
    assert problems_of(base(ClientConfig={key: "x"})) == [
        f"ClientConfig: {key} cannot be set: it decides where to connect or how the connection "
        "is authenticated and verified (allowed: CA and client certificates, timeouts, "
        "client.id, log_level)"
    ]


def test_client_config_may_set_trust_timeouts_and_logging() -> None:
    settings = {
        "ssl.ca.location": "/ca.pem",
        "socket.timeout.ms": 5000,
        "client.id": "ops",
        "log_level": "0",
        "socket.keepalive.enable": True,
    }
    connection = parse_properties(base(ClientConfig=settings)).connection
    assert dict(connection.client_config) == {
        "ssl.ca.location": "/ca.pem",
        "socket.timeout.ms": "5000",
        "client.id": "ops",
        "log_level": "0",
        "socket.keepalive.enable": "true",
    }
    assert set(settings) <= ALLOWED_CLIENT_CONFIG


def test_client_config_values_must_be_scalars() -> None:
    (problem,) = problems_of(base(ClientConfig={"client.id": {"a": 1}}))
    assert problem == "ClientConfig: 'client.id' must be a string, got <dict of 1 item(s)>"


@pytest.mark.parametrize("timeout", ["inf", "nan", "1e308", "-1", "0", "9" * 400, 10**400, 1.0])
def test_timeout_seconds_is_bounded(timeout: Any) -> None:
    (problem,) = problems_of(base(TimeoutSeconds=timeout))
    assert problem.startswith("TimeoutSeconds: must be 1..900, got ")
    assert len(problem) < 140


@pytest.mark.parametrize(
    ("override", "expected"),
    [
        ({"Region": "us-east-1.evil.example#"}, "Region: must be an AWS region such as us-east-1"),
        ({"Region": ["us-east-1"]}, "Region: must be an AWS region such as us-east-1"),
        ({"Auth": ["IAM"]}, "Auth: must be IAM | PLAINTEXT, got <list of 1 item(s)>"),
        ({"ClusterType": {"a": 1}}, "ClusterType: must be SERVERLESS or PROVISIONED, got <dict"),
        ({"BootstrapServers": "h:99999"}, "BootstrapServers: 'h:99999' is not host:port"),
        ({"BootstrapServers": "h:\uff19\uff10"}, "is not host:port"),
        ({"BootstrapServers": "x" * 10_000 + ":1:"}, "BootstrapServers: 'xxxx"),
    ],
)
def test_odd_values_are_refused_in_one_bounded_line(
    override: dict[str, Any], expected: str
) -> None:
    (problem,) = problems_of(base(**override))
    assert expected in problem
    assert len(problem) < 200


def test_previous_topics_are_read_leniently_and_never_include_internal_topics() -> None:
    old = base(
        Topics=[
            {"Name": "__consumer_offsets", "Partitions": "50"},
            {"Name": "orders", "Partitions": "6", "Config": {"retention.ms": "1", "x": [1]}},
            {"Name": "odd", "Partitions": 10**400, "Config": {"retention.ms": 10**400}},
            "junk",
        ]
    )
    assert previous_topics(old, BOOTSTRAP) == (
        TopicSpec("orders", 6, None, {"retention.ms": "1"}),
        TopicSpec("odd", 1),
    )
    for unreadable in (None, "", "x", 3, {"Name": "orders"}):
        assert previous_topics(base(Topics=unreadable), BOOTSTRAP) == ()
    assert previous_topics(base(BootstrapServers=["x"]), BOOTSTRAP) == ()
    assert previous_topics([], BOOTSTRAP) == ()  # type: ignore[arg-type]


def test_a_deeply_nested_value_is_summarized_not_rendered() -> None:
    deep: Any = "x"
    for _ in range(5000):  # str() or repr() of this would raise RecursionError
        deep = [deep]
    problems = problems_of(base(TimeoutSeconds=deep, Topics=[{"Name": "a", "Partitions": deep}]))
    assert problems == [
        "TimeoutSeconds: must be 1..900, got <list of 1 item(s)>",
        "topic 'a': Partitions must be a positive integer, got <list of 1 item(s)>",
    ]
    assert parse_properties(base(SyncToken=deep)).sync_token == "<list of 1 item(s)>"
    assert parse_properties(base(SyncToken=12)).sync_token == "12"
