"""Existing-cluster mode of the app: topics (and services, when images are given) on a cluster
made elsewhere, synthesized offline from ids, with IAM scoped to that cluster's own ARN."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from aws_cdk import App
from confluent_kafka import TopicCollection

from rehearsal.policies import PoliciesFile, extract, write
from tests.cdk.conftest import cdk_json_context
from tests.engine.helpers import broker_state, event, invoke
from tests.support.kafka import (
    LocalKafka,
    aws_env,
    check_iam,
    plaintext_admin,
    unique_topic_name,
)
from topic_sync.exceptions import SpecError

CLUSTER_ARN = (
    "arn:aws:kafka:eu-west-1:111122223333:cluster/orders/0a1b2c3d-4e5f-4789-abcd-ef0123456789-7"
)
ARN_PREFIX = "arn:aws:kafka:eu-west-1:111122223333:"
CLUSTER_PATH = "orders/0a1b2c3d-4e5f-4789-abcd-ef0123456789-7"
SUBNETS = ["subnet-0aaaaaaaaaaaaaaa1", "subnet-0bbbbbbbbbbbbbbb2"]
EXISTING = {
    "clusterArn": CLUSTER_ARN,
    "vpcId": "vpc-0123456789abcdef0",
    "subnetIds": ",".join(SUBNETS),
    "availabilityZones": "eu-west-1a,eu-west-1b",
    "clusterSecurityGroupId": "sg-0fedcba9876543210",
}
#: A Provisioned-only spec: replication factor and configs MSK Serverless refuses.
PROVISIONED_TOPICS = """
defaults:
  partitions: 3
  replication_factor: 1
topics:
  - name: ledger.entries
    config:
      cleanup.policy: compact
      min.insync.replicas: "1"
      segment.bytes: "16777216"
  - name: ledger.audit
    partitions: 6
services:
  ledger:
    produces: [ledger.entries]
    consumes: [ledger.audit]
"""


def synth(tmp_path: Path, **context: Any) -> tuple[dict[str, Any], dict[str, Any]]:
    """Build the app as app.py does; (the cloud assembly's manifest.json, the template)."""
    import app as cdk_app

    outdir = tmp_path / "cdk.out"
    app = App(context=cdk_json_context(**context), outdir=str(outdir))
    stack = cdk_app.build(app)
    app.synth()
    manifest = json.loads((outdir / "manifest.json").read_text())
    template = json.loads((outdir / f"{stack.stack_name}.template.json").read_text())
    return manifest, template


def of_type(template: dict[str, Any], resource_type: str) -> dict[str, Any]:
    return {k: r for k, r in template["Resources"].items() if r["Type"] == resource_type}


def kafka_resources(template: dict[str, Any]) -> list[Any]:
    """Every Resource of every IAM statement that grants a kafka-cluster action."""
    found: list[Any] = []
    for policy in of_type(template, "AWS::IAM::Policy").values():
        for statement in policy["Properties"]["PolicyDocument"]["Statement"]:
            actions = statement["Action"]
            actions = actions if isinstance(actions, list) else [actions]
            if any(str(a).startswith("kafka-cluster:") for a in actions):
                resources = statement["Resource"]
                found.extend(resources if isinstance(resources, list) else [resources])
    return found


@pytest.fixture(scope="module")
def topics_only(
    tmp_path_factory: pytest.TempPathFactory,
) -> tuple[dict[str, Any], dict[str, Any]]:
    """Serverless, ids only: no images, so topics without services."""
    return synth(tmp_path_factory.mktemp("existing"), **EXISTING, stage="staging")


@pytest.mark.synth
def test_an_existing_cluster_synthesizes_offline_without_creating_network_or_cluster(
    topics_only: tuple[dict[str, Any], dict[str, Any]],
) -> None:
    manifest, template = topics_only
    # No lookups: nothing the CLI would have to ask AWS for (it would need credentials).
    assert not manifest.get("missing")
    environment = manifest["artifacts"]["TopicSync-staging"]["environment"]
    assert environment == "aws://111122223333/eu-west-1"
    for kind in (
        "AWS::EC2::VPC",
        "AWS::EC2::Subnet",
        "AWS::EC2::NatGateway",
        "AWS::EC2::VPCEndpoint",
        "AWS::MSK::ServerlessCluster",
        "AWS::MSK::Cluster",
        "AWS::ECS::Service",
        "AWS::ElasticLoadBalancingV2::LoadBalancer",
    ):
        assert not of_type(template, kind), kind
    assert len(of_type(template, "Custom::KafkaTopics")) == 1
    functions = of_type(template, "AWS::Lambda::Function").values()
    in_vpc = [f["Properties"]["VpcConfig"] for f in functions if "VpcConfig" in f["Properties"]]
    assert len(in_vpc) == 3  # provisioner, its waiter step, the drift check
    assert all(config["SubnetIds"] == SUBNETS for config in in_vpc)
    # The cluster's own security group admits the stack's Lambdas on 9098, as separate rules.
    ingress = of_type(template, "AWS::EC2::SecurityGroupIngress").values()
    assert ingress
    for rule in ingress:
        props = rule["Properties"]
        assert props["GroupId"] == EXISTING["clusterSecurityGroupId"]
        assert (props["FromPort"], props["ToPort"]) == (9098, 9098)


@pytest.mark.synth
def test_iam_names_only_the_given_clusters_own_arns(
    topics_only: tuple[dict[str, Any], dict[str, Any]],
) -> None:
    _, template = topics_only
    resources = kafka_resources(template)
    assert resources
    for arn in resources:
        # Literal strings built from the ARN's own partition, region, account, name and uuid.
        assert isinstance(arn, str), arn
        assert arn == CLUSTER_ARN or arn.startswith(
            (f"{ARN_PREFIX}topic/{CLUSTER_PATH}/", f"{ARN_PREFIX}group/{CLUSTER_PATH}/")
        ), arn
    topics = {arn.rsplit("/", 1)[1] for arn in resources if ":topic/" in arn}
    assert topics == {
        "eeg.raw.data",
        "eeg.processed.data",
        "user.activity",
        "alerts.events",
        "analytics.triggers",
    }
    (lookup,) = of_type(template, "Custom::AWS").values()
    assert CLUSTER_ARN in json.dumps(lookup["Properties"]["Create"])
    (topics_resource,) = of_type(template, "Custom::KafkaTopics").values()
    assert topics_resource["Properties"]["Region"] == "eu-west-1"
    assert topics_resource["Properties"]["ClusterType"] == "SERVERLESS"


@pytest.fixture(scope="module")
def provisioned_with_service(
    tmp_path_factory: pytest.TempPathFactory,
) -> tuple[Path, dict[str, Any], dict[str, Any]]:
    """Provisioned, bootstrap servers given, the ledger service's image given: (topics file,
    manifest, template)."""
    tmp_path = tmp_path_factory.mktemp("provisioned")
    topics_file = tmp_path / "topics.yaml"
    topics_file.write_text(PROVISIONED_TOPICS)
    image = "111122223333.dkr.ecr.eu-west-1.amazonaws.com/ledger@sha256:" + "cd" * 32
    manifest, template = synth(
        tmp_path,
        **EXISTING,
        topicsFile=str(topics_file),
        clusterType="provisioned",
        bootstrapServers="b-1.orders.abc123.c2.kafka.eu-west-1.amazonaws.com:9098",
        **{"image.ledger": image},
    )
    return topics_file, manifest, template


@pytest.mark.synth
def test_provisioned_with_images_deploys_services_under_provisioned_rules(
    provisioned_with_service: tuple[Path, dict[str, Any], dict[str, Any]], tmp_path: Path
) -> None:
    topics_file, manifest, template = provisioned_with_service
    assert not manifest.get("missing")
    assert not of_type(template, "Custom::AWS")  # bootstrap servers given: no lookup
    (topics_resource,) = of_type(template, "Custom::KafkaTopics").values()
    props = topics_resource["Properties"]
    assert props["ClusterType"] == "PROVISIONED"
    assert props["PartitionRate"] == "off"  # no Serverless quota to pace for
    entries = {topic["Name"]: topic for topic in props["Topics"]}
    assert entries["ledger.entries"]["ReplicationFactor"] == "1"
    assert entries["ledger.entries"]["Config"]["min.insync.replicas"] == "1"
    (service,) = of_type(template, "AWS::ECS::Service").values()
    assert service["Properties"]["NetworkConfiguration"]["AwsvpcConfiguration"]["Subnets"] == (
        SUBNETS
    )
    assert all(isinstance(arn, str) for arn in kafka_resources(template))
    # The same file is refused for MSK Serverless, naming what Serverless does not allow.
    with pytest.raises(SpecError, match=r"min\.insync\.replicas"):
        synth(tmp_path / "serverless", **EXISTING, topicsFile=str(topics_file))


#: Another cluster: same name, another uuid (a re-created cluster, or another environment's).
OTHER_CLUSTER_ARN = CLUSTER_ARN.replace("0a1b2c3d-4e5f", "9f8e7d6c-5b4a")


@pytest.mark.synth
@pytest.mark.integration  # LocalIamTool: the local broker's MSK IAM emulation (make setup's jars)
def test_the_stacks_policies_as_msk_enforces_them_reach_that_cluster_only(
    provisioned_with_service: tuple[Path, dict[str, Any], dict[str, Any]], tmp_path: Path
) -> None:
    """The template's IAM policies, evaluated by the local broker's MSK IAM authorizer for Kafka
    operations: each role gets its own work done on the given cluster, and nothing on another
    cluster with the same name."""
    _, _, template = provisioned_with_service
    policies = extract(template, ["ledger"], cluster_arn=CLUSTER_ARN)
    queries = [
        ("provisioner", "CREATE", "TOPIC", "ledger.entries", True),
        ("provisioner", "ALTER_CONFIGS", "TOPIC", "ledger.entries", True),
        ("provisioner", "CREATE", "TOPIC", "undeclared.topic", False),
        ("provisioner", "DELETE", "TOPIC", "ledger.entries", False),  # RETAIN, no prune
        ("ledger", "WRITE", "TOPIC", "ledger.entries", True),
        ("ledger", "READ", "TOPIC", "ledger.audit", True),
        ("ledger", "READ", "GROUP", "ledger.audit-reader", True),
        ("ledger", "READ", "GROUP", "billing.audit-reader", False),
        ("ledger", "WRITE", "TOPIC", "ledger.audit", False),
        ("ledger", "CREATE", "TOPIC", "ledger.entries", False),
    ]

    def answers(cluster_arn: str) -> list[bool]:
        path = tmp_path / f"{cluster_arn.rsplit('/', 1)[1]}.json"
        write(PoliciesFile(cluster_arn, policies.identities), path)
        asked = [
            {"identity": who, "operation": op, "resource_type": kind, "name": name}
            for who, op, kind, name, _ in queries
        ]
        return [answer["allowed"] for answer in check_iam(path, asked)]

    assert answers(CLUSTER_ARN) == [allowed for *_, allowed in queries]
    assert not any(answers(OTHER_CLUSTER_ARN))


@pytest.mark.parametrize(
    ("change", "named"),
    [
        ({"clusterArn": "arn:aws:kafka:eu-west-1:111122223333:cluster/orders"}, "clusterArn"),
        ({"clusterArn": "arn:aws:msk:eu-west-1:111122223333:cluster/a/b"}, "clusterArn"),
        ({"vpcId": None}, "vpcId"),
        ({"vpcId": "vpc-xyz"}, "vpcId"),
        ({"subnetIds": None}, "subnetIds"),
        ({"subnetIds": "subnet-0aaaaaaaaaaaaaaa1,,"}, "subnetIds"),
        ({"subnetIds": "subnet-0aaaaaaaaaaaaaaa1"}, "subnetIds"),  # 1 subnet for 2 zones
        ({"availabilityZones": None}, "availabilityZones"),
        ({"availabilityZones": "us-east-1a,us-east-1b"}, "availabilityZones"),
        ({"clusterSecurityGroupId": None}, "clusterSecurityGroupId"),
        ({"clusterSecurityGroupId": "sg-1"}, "clusterSecurityGroupId"),
        ({"clusterType": "dedicated"}, "clusterType"),
        ({"bootstrapServers": "b-1 9098"}, "bootstrapServers"),
        ({"publicSubnetIds": "subnet-0cccccccccccccc3"}, "publicSubnetIds"),
    ],
)
def test_a_missing_or_malformed_value_is_an_error_naming_its_context_key(
    change: dict[str, Any], named: str
) -> None:
    from app import existing_cluster_from_context

    context = {**EXISTING, **change}
    app = App(context={k: v for k, v in context.items() if v is not None})
    with pytest.raises(SpecError) as error:
        existing_cluster_from_context(app)
    assert f"context {named}:" in str(error.value)


def test_cluster_ids_without_a_cluster_arn_are_refused() -> None:
    from app import existing_cluster_from_context

    app = App(context={"clusterSecurityGroupId": EXISTING["clusterSecurityGroupId"]})
    with pytest.raises(SpecError, match="context clusterSecurityGroupId: only used with"):
        existing_cluster_from_context(app)


@pytest.mark.synth
def test_the_gateway_in_an_existing_vpc_needs_public_subnets(tmp_path: Path) -> None:
    with pytest.raises(SpecError, match="context publicSubnetIds: required"):
        synth(tmp_path, **EXISTING, stage="staging", allowPlaceholderImages="true")


@pytest.mark.synth
def test_an_existing_cluster_needs_the_stage_when_the_file_declares_stages(
    tmp_path: Path,
) -> None:
    with pytest.raises(
        SpecError,
        match=r"context stage: required with clusterArn, as topics\.yaml declares stages "
        r"\(staging, prod\)",
    ):
        synth(tmp_path, **EXISTING)


@pytest.mark.synth
@pytest.mark.integration
def test_the_provisioned_path_creates_and_updates_topics_on_the_local_broker(
    tmp_path: Path, kafka_broker: LocalKafka
) -> None:
    """The Custom::KafkaTopics properties an existing Provisioned cluster's synth produces, run by
    the handler over IAM auth against the real broker: replication factor and Provisioned-only
    configs at create, then a partition grow and a cleanup.policy change (create-only on
    Serverless) at update."""
    prefix = unique_topic_name("ledger")
    topics_file = tmp_path / "topics.yaml"
    topics_file.write_text(PROVISIONED_TOPICS.replace("ledger.", f"{prefix}."))
    _, template = synth(
        tmp_path,
        **EXISTING,
        topicsFile=str(topics_file),
        clusterType="provisioned",
        bootstrapServers="b-1.orders.abc123.c2.kafka.eu-west-1.amazonaws.com:9098",
    )
    (resource,) = of_type(template, "Custom::KafkaTopics").values()
    props = {k: v for k, v in resource["Properties"].items() if k != "ServiceToken"}
    # Pointed at the local broker's IAM listener, as the Lambda in the VPC reaches the cluster.
    props |= {
        "BootstrapServers": kafka_broker.sasl_ssl_bootstrap,
        "Region": kafka_broker.region,
        "ClientConfig": {"ssl.ca.location": kafka_broker.ca_file},
    }
    entries, audit = f"{prefix}.entries", f"{prefix}.audit"
    admin = plaintext_admin(kafka_broker)
    with aws_env(kafka_broker.access_key_id, kafka_broker.secret_access_key):
        created = invoke(event("Create", props))
    assert created["Data"]["Created"] == 2
    state = broker_state(admin, [entries, audit])
    assert (state[entries].partitions, state[audit].partitions) == (3, 6)
    assert state[entries].config == {
        "cleanup.policy": "compact",
        "min.insync.replicas": "1",
        "segment.bytes": "16777216",
    }
    description = admin.describe_topics(TopicCollection([entries]))[entries].result(timeout=15)
    assert {len(p.replicas) for p in description.partitions} == {1}

    updated_props = json.loads(json.dumps(props))
    (entry,) = (t for t in updated_props["Topics"] if t["Name"] == entries)
    entry["Partitions"] = "5"
    entry["Config"]["cleanup.policy"] = "compact,delete"
    with aws_env(kafka_broker.access_key_id, kafka_broker.secret_access_key):
        updated = invoke(
            event("Update", updated_props, old=props, physical_id=created["PhysicalResourceId"])
        )
    assert updated["Data"]["Updated"] == 1
    state = broker_state(admin, [entries])
    assert state[entries].partitions == 5
    assert state[entries].config["cleanup.policy"] == "compact,delete"
