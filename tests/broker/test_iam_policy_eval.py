"""IAM policy evaluation and the Kafka operation -> MSK action mapping of the local broker's
authorizer, asked directly (``LocalIamTool check``: the same Java code, one JVM, no broker).
The broker tests (test_iam_authz.py) prove the same decisions reach Kafka clients."""

from __future__ import annotations

import json
import stat
from pathlib import Path
from typing import Any

import pytest

from tests.support.kafka import DEFAULT_POLICIES, check_iam, local_iam_tool

pytestmark = pytest.mark.integration  # needs the jars of `make setup`

PREFIX = "arn:aws:kafka:eu-west-1:111122223333"
NAME_UUID = "demo/abcd1234-0123-abcd-5678-1234abcd-s1"
CLUSTER = f"{PREFIX}:cluster/{NAME_UUID}"
TOPIC = f"{PREFIX}:topic/{NAME_UUID}"
GROUP = f"{PREFIX}:group/{NAME_UUID}"
TXN = f"{PREFIX}:transactional-id/{NAME_UUID}"
DYN = "kafka-cluster:AlterTopicDynamicConfiguration"


def _doc(*statements: dict[str, Any]) -> dict[str, Any]:
    return {"Version": "2012-10-17", "Statement": list(statements)}


IDENTITIES: dict[str, list[dict[str, Any]]] = {
    "wild": [
        # Statement as a single object, Action and Resource as strings.
        {"Statement": {"Effect": "Allow", "Action": "KAFKA-CLUSTER:describe*", "Resource": "*"}},
        _doc(
            {"Effect": "Allow", "Action": ["kafka-cluster:*Topic"],
             "Resource": [f"{TOPIC}/orders.*"]},
            {"Effect": "Allow", "Action": "kafka-cluster:?riteData", "Resource": f"{TOPIC}/log-?"},
            {"Effect": "Allow", "Action": "kafka-cluster:ReadData",
             "Resource": "arn:aws:kafka:*:111122223333:topic/demo/*/Audit"},
        ),
    ],
    "deny": [
        _doc(
            {"Effect": "Allow", "Action": "kafka-cluster:*", "Resource": "*"},
            {"Sid": "NoBlocked", "Effect": "Deny", "Action": "kafka-cluster:CreateTopic",
             "Resource": f"{TOPIC}/blocked.*"},
        )
    ],
    "not": [
        _doc(
            {"Effect": "Allow", "NotAction": ["kafka-cluster:CreateTopic", "kafka-cluster:Delete*"],
             "Resource": "*"},
            {"Effect": "Allow", "Action": "kafka-cluster:CreateTopic",
             "NotResource": [f"{TOPIC}/secret.*", CLUSTER]},
        )
    ],
    "conditional": [
        _doc(
            {"Sid": "OnlyOverTls", "Effect": "Allow", "Action": "kafka-cluster:*", "Resource": "*",
             "Condition": {"Bool": {"aws:SecureTransport": "true"}}},
            {"Effect": "Allow", "Action": "kafka-cluster:DescribeTopic", "Resource": f"{TOPIC}/*"},
            {"Sid": "NotFromHere", "Effect": "Deny", "Action": "kafka-cluster:DescribeTopic",
             "Resource": f"{TOPIC}/internal.*",
             "Condition": {"IpAddress": {"aws:SourceIp": "10.0.0.0/8"}}},
            # Not about Kafka: no warning for it.
            {"Sid": "Logs", "Effect": "Allow", "Action": "logs:PutLogEvents", "Resource": "*",
             "Condition": {"StringEquals": {"aws:RequestedRegion": "eu-west-1"}}},
        )
    ],
    "narrow": [
        _doc(
            {"Effect": "Allow", "Action": "kafka-cluster:Connect", "Resource": CLUSTER},
            {"Effect": "Allow", "Action": ["kafka-cluster:WriteData", "kafka-cluster:ReadData",
             "kafka-cluster:AlterTopicDynamicConfiguration", "kafka-cluster:DescribeTopic"],
             "Resource": f"{TOPIC}/app.*"},
            {"Effect": "Allow", "Action": "kafka-cluster:AlterGroup", "Resource": f"{GROUP}/app"},
            {"Effect": "Allow", "Action": ["kafka-cluster:WriteDataIdempotently",
             "kafka-cluster:DescribeCluster"], "Resource": CLUSTER},
            {"Effect": "Allow", "Action": "kafka-cluster:*TransactionalId",
             "Resource": f"{TXN}/tx-*"},
        )
    ],
}  # fmt: skip


@pytest.fixture(scope="module")
def policies(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("iam") / "policies.json"
    identities = {name: {"policies": docs} for name, docs in IDENTITIES.items()}
    path.write_text(json.dumps({"cluster_arn": CLUSTER, "identities": identities}))
    return path


# (identity, action, resource, allowed, part of the reason)
ACTION_CASES = [
    # Wildcards: * and ? in actions, case-insensitive; in resources, case-sensitive, per component.
    ("wild", "kafka-cluster:DescribeTopic", f"{TOPIC}/anything", True, "policy 1 statement 1"),
    ("wild", "kafka-cluster:DescribeCluster", CLUSTER, True, "allowed"),
    ("wild", "kafka-cluster:CreateTopic", f"{TOPIC}/orders.v1", True, "policy 2 statement 1"),
    ("wild", "kafka-cluster:CreateTopic", f"{TOPIC}/payments", False, "implicit deny"),
    # The documented example: *Topic does not cover the ...DynamicConfiguration actions.
    ("wild", DYN, f"{TOPIC}/orders.v1", False, "no Allow"),
    ("wild", "kafka-cluster:WriteData", f"{TOPIC}/log-1", True, "statement 2"),
    ("wild", "kafka-cluster:WriteData", f"{TOPIC}/log-12", False, "no Allow"),
    ("wild", "kafka-cluster:ReadData", f"{TOPIC}/Audit", True, "statement 3"),
    ("wild", "kafka-cluster:ReadData", f"{TOPIC}/audit", False, "no Allow"),
    ("wild", "kafka-cluster:Connect", CLUSTER, False, "no Allow"),
    # An explicit Deny beats any Allow.
    ("deny", "kafka-cluster:CreateTopic", f"{TOPIC}/ok.1", True, "allowed"),
    ("deny", "kafka-cluster:CreateTopic", f"{TOPIC}/blocked.1", False, "explicit Deny"),
    ("deny", "kafka-cluster:CreateTopic", f"{TOPIC}/blocked.1", False, "Sid NoBlocked"),
    # NotAction and NotResource.
    ("not", "kafka-cluster:DescribeTopic", f"{TOPIC}/x", True, "statement 1"),
    ("not", "kafka-cluster:DeleteTopic", f"{TOPIC}/x", False, "no Allow"),
    ("not", "kafka-cluster:CreateTopic", f"{TOPIC}/x", True, "statement 2"),
    ("not", "kafka-cluster:CreateTopic", f"{TOPIC}/secret.x", False, "no Allow"),
    # A Condition never allows; a Deny with one applies (the safe reading).
    ("conditional", "kafka-cluster:Connect", CLUSTER, False, "Condition [Bool] is not implemented"),
    ("conditional", "kafka-cluster:DescribeTopic", f"{TOPIC}/x", True, "statement 2"),
    ("conditional", "kafka-cluster:DescribeTopic", f"{TOPIC}/internal.x", False, "explicit Deny"),
    ("conditional", "kafka-cluster:DescribeTopic", f"{TOPIC}/internal.x", False, "IpAddress"),
    ("nobody", "kafka-cluster:Connect", CLUSTER, False, "unknown identity"),
]


def test_iam_policy_evaluation(policies: Path) -> None:
    queries = [{"identity": i, "action": a, "resource": r} for i, a, r, _, _ in ACTION_CASES]
    answers = check_iam(policies, queries)
    wrong = [
        (case, answer)
        for case, answer in zip(ACTION_CASES, answers, strict=True)
        if answer["allowed"] != case[3] or case[4] not in answer["reason"]
    ]
    assert not wrong, json.dumps(wrong, indent=1)


# (Kafka operation, resource type, name, allowed, deciding action, ARN, part of the reason)
OPERATION_CASES = [
    ("WRITE", "TOPIC", "app.out", True, "kafka-cluster:WriteData", f"{TOPIC}/app.out", "allowed"),
    ("READ", "TOPIC", "app.in", True, "kafka-cluster:ReadData", f"{TOPIC}/app.in", "allowed"),
    ("WRITE", "TOPIC", "other", False, "kafka-cluster:WriteData", f"{TOPIC}/other", "no Allow"),
    ("DESCRIBE", "TOPIC", "app.in", True, "kafka-cluster:DescribeTopic", f"{TOPIC}/app.in", ""),
    ("CREATE", "TOPIC", "app.new", False, "kafka-cluster:CreateTopic", f"{TOPIC}/app.new", ""),
    # Required actions: AlterTopicDynamicConfiguration needs DescribeTopicDynamicConfiguration.
    ("ALTER_CONFIGS", "TOPIC", "app.in", False,
     "kafka-cluster:DescribeTopicDynamicConfiguration", f"{TOPIC}/app.in",
     "required by kafka-cluster:AlterTopicDynamicConfiguration"),
    ("DESCRIBE_CONFIGS", "TOPIC", "app.in", False,
     "kafka-cluster:DescribeTopicDynamicConfiguration", f"{TOPIC}/app.in", "no Allow"),
    # AlterGroup (Kafka READ on a group) needs DescribeGroup, which "narrow" lacks.
    ("READ", "GROUP", "app", False, "kafka-cluster:DescribeGroup", f"{GROUP}/app",
     "required by kafka-cluster:AlterGroup"),
    ("IDEMPOTENT_WRITE", "CLUSTER", "kafka-cluster", True, "kafka-cluster:WriteDataIdempotently",
     CLUSTER, ""),
    ("DESCRIBE", "CLUSTER", "kafka-cluster", True, "kafka-cluster:DescribeCluster", CLUSTER, ""),
    ("ALTER", "CLUSTER", "kafka-cluster", False, "kafka-cluster:AlterCluster", CLUSTER, ""),
    ("ALTER_CONFIGS", "CLUSTER", "kafka-cluster", False,
     "kafka-cluster:AlterClusterDynamicConfiguration", CLUSTER, ""),
    ("WRITE", "TRANSACTIONAL_ID", "tx-1", True, "kafka-cluster:AlterTransactionalId",
     f"{TXN}/tx-1", ""),
    ("DESCRIBE", "TRANSACTIONAL_ID", "other", False, "kafka-cluster:DescribeTransactionalId",
     f"{TXN}/other", ""),
    ("CLUSTER_ACTION", "CLUSTER", "kafka-cluster", False, "(none)", CLUSTER,
     "no kafka-cluster action"),
    ("CREATE", "CLUSTER", "kafka-cluster", False, "(none)", CLUSTER, "CreateTopic per topic ARN"),
    ("DESCRIBE_CONFIGS", "GROUP", "app", False, "(none)", f"{GROUP}/app", "no kafka-cluster"),
]  # fmt: skip


def test_kafka_operations_map_to_msk_actions_and_arns(policies: Path) -> None:
    queries = [
        {"identity": "narrow", "operation": op, "resource_type": rt, "name": name}
        for op, rt, name, *_ in OPERATION_CASES
    ]
    answers = check_iam(policies, queries)
    wrong = [
        (case, answer)
        for case, answer in zip(OPERATION_CASES, answers, strict=True)
        if (answer["allowed"], answer["action"], answer["resource"]) != case[3:6]
        or case[6] not in answer["reason"]
    ]
    assert not wrong, json.dumps(wrong, indent=1)


def test_issue_writes_temporary_credentials_per_identity(policies: Path, tmp_path: Path) -> None:
    creds_file = tmp_path / "iam-credentials.json"
    first = local_iam_tool("issue", str(policies), str(creds_file))
    assert first.returncode == 0, first.stderr
    assert first.stdout.strip() == "eu-west-1"
    # Policies the emulator cannot evaluate fully are announced.
    assert "Condition [Bool] is not implemented" in first.stderr
    assert "this Deny always applies" in first.stderr
    assert "Sid Logs" not in first.stderr
    creds = json.loads(creds_file.read_text())
    assert creds["region"] == "eu-west-1"
    assert creds["cluster_arn"] == CLUSTER
    assert set(creds["identities"]) == set(IDENTITIES)
    for c in creds["identities"].values():
        assert c["access_key_id"].startswith("ASIA")
        assert len(c["access_key_id"]) == 20
        assert c["secret_access_key"]
        assert len(c["session_token"]) > 100
    assert stat.S_IMODE(creds_file.stat().st_mode) == 0o600
    # A second run (a broker restart) keeps the keys clients already hold.
    assert local_iam_tool("issue", str(policies), str(creds_file)).returncode == 0
    assert json.loads(creds_file.read_text())["identities"] == creds["identities"]


INVALID: list[tuple[dict[str, Any], str]] = [
    ({"cluster_arn": "arn:aws:kafka:eu-west-1:111122223333:topic/demo/x"}, "cluster_arn"),
    ({"identities": {}}, "identities must be a non-empty object"),
    ({"identities": {"ANONYMOUS": {"policies": []}}}, "not ANONYMOUS"),
    (
        {"identities": {"x": {"policies": [_doc({"Effect": "Allow", "Action": "*"})]}}},
        "needs exactly one of Resource and NotResource",
    ),
    (
        {"identities": {"x": {"policies": [_doc({"Effect": "allow", "Action": "*",
                                                 "Resource": "*"})]}}},
        "Effect must be Allow or Deny",
    ),
    (
        {"identities": {"x": {"policies": [_doc({"Effect": "Allow", "Action": "*",
                                                 "Resource": "*", "Principal": "*"})]}}},
        "identity policies have no Principal",
    ),
]  # fmt: skip


def test_invalid_policies_files_are_rejected_with_the_reason(tmp_path: Path) -> None:
    base: dict[str, Any] = {"cluster_arn": CLUSTER, "identities": {"x": {"policies": []}}}
    files = []
    for i, (change, _) in enumerate(INVALID):
        path = tmp_path / f"policies-{i}.json"
        path.write_text(json.dumps({**base, **change}))
        files.append(str(path))
    run = local_iam_tool("validate", str(DEFAULT_POLICIES), *files)
    assert run.returncode == 1
    default, *lines = run.stdout.splitlines()
    assert default == "ok"  # the default policies file is valid
    assert len(lines) == len(INVALID)
    for line, (_, message) in zip(lines, INVALID, strict=True):
        assert line.startswith("invalid: ")
        assert message in line
    # ... and `issue` (what `local-kafka up` runs) writes no credentials for one of them.
    issue = local_iam_tool("issue", files[0], str(tmp_path / "creds.json"))
    assert issue.returncode == 1
    assert "cluster_arn" in issue.stderr
    assert not (tmp_path / "creds.json").exists()
