"""The KafkaTopics construct on its own: DeleteTopic switches, synth-time validation, quotas."""

from __future__ import annotations

import json
from typing import Any

import pytest
from aws_cdk import App, Duration, RemovalPolicy, Stack
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_iam as iam
from aws_cdk.assertions import Template

from tests.cdk.conftest import cdk_json_context
from topic_sync.exceptions import SpecError
from topic_sync.spec import ClusterType, TopicSpec, parse_topics
from topic_sync_cdk.cluster import KafkaCluster
from topic_sync_cdk.kafka_topics import (
    SERVERLESS_MAX_COMPACTED_PARTITIONS,
    SERVERLESS_MAX_PARTITIONS,
    KafkaTopics,
    topic_property,
)

CLUSTER_ARN = (
    "arn:aws:kafka:eu-west-1:111122223333:cluster/demo/1a2b3c4d-5e6f-7a8b-9c0d-1e2f3a4b5c6d-s1"
)
TOPICS = (TopicSpec("orders", 3, None, {"retention.ms": "86400000"}), TopicSpec("payments", 6))


def _construct(topics: tuple[TopicSpec, ...] = TOPICS, **props: Any) -> KafkaTopics:
    """KafkaTopics in a fresh stack, on the literal CLUSTER_ARN in a new VPC."""
    app = App(context=cdk_json_context())
    stack = Stack(app, "Test")
    vpc = ec2.Vpc(stack, "Vpc", max_azs=2, nat_gateways=1)
    cluster = KafkaCluster(
        stack,
        "Cluster",
        cluster_arn=CLUSTER_ARN,
        bootstrap_servers="b-1.demo.kafka-serverless.eu-west-1.amazonaws.com:9098",
        vpc=vpc,
        security_group=ec2.SecurityGroup(stack, "ClusterSecurityGroup", vpc=vpc),
        cluster_type=props.pop("cluster_type", ClusterType.SERVERLESS),
    )
    return KafkaTopics(stack, "Topics", cluster=cluster, topics=topics, **props)


def _construct_template(topics: tuple[TopicSpec, ...] = TOPICS, **props: Any) -> dict[str, Any]:
    return dict(Template.from_stack(Stack.of(_construct(topics, **props))).to_json())


def _provisioner_grants(template: dict[str, Any]) -> dict[str, list[str]]:
    grants: dict[str, list[str]] = {}
    for logical_id, resource in template["Resources"].items():
        if resource["Type"] == "AWS::IAM::Policy" and "Provisioner" in logical_id:
            for statement in resource["Properties"]["PolicyDocument"]["Statement"]:
                actions = statement["Action"]
                resources = statement["Resource"]
                for action in actions if isinstance(actions, list) else [actions]:
                    for arn in resources if isinstance(resources, list) else [resources]:
                        grants.setdefault(action, []).append(json.dumps(arn))
    return grants


def _custom_resource_properties(template: dict[str, Any]) -> dict[str, Any]:
    (resource,) = (r for r in template["Resources"].values() if r["Type"] == "Custom::KafkaTopics")
    return resource["Properties"]  # type: ignore[no-any-return]


@pytest.mark.synth
def test_default_retain_without_prune_grants_no_delete() -> None:
    template = _construct_template()
    grants = _provisioner_grants(template)
    assert "kafka-cluster:DeleteTopic" not in grants
    # A literal cluster ARN gives literal topic ARNs from its own partition, region, account,
    # name and uuid (not the stack's: an existing cluster may be in another account).
    uuid = CLUSTER_ARN.rsplit("/", 1)[1]
    assert sorted(grants["kafka-cluster:CreateTopic"]) == [
        json.dumps(f"arn:aws:kafka:eu-west-1:111122223333:topic/demo/{uuid}/{name}")
        for name in ("orders", "payments")
    ]
    properties = _custom_resource_properties(template)
    assert (properties["RemovalPolicy"], properties["Prune"]) == ("RETAIN", "false")


@pytest.mark.synth
def test_destroy_grants_delete_on_the_declared_topics_only() -> None:
    template = _construct_template(removal_policy=RemovalPolicy.DESTROY)
    grants = _provisioner_grants(template)
    assert grants["kafka-cluster:DeleteTopic"] == grants["kafka-cluster:CreateTopic"]
    assert len(grants["kafka-cluster:DeleteTopic"]) == len(TOPICS)
    assert _custom_resource_properties(template)["RemovalPolicy"] == "DESTROY"


@pytest.mark.synth
def test_prune_grants_delete_on_this_clusters_topics_only() -> None:
    template = _construct_template(prune=True)
    grants = _provisioner_grants(template)
    (delete_resource,) = grants["kafka-cluster:DeleteTopic"]
    assert "topic/" in delete_resource
    assert delete_resource.endswith('/*"')
    # Observing a dropped topic before deleting it needs these on the same resource.
    assert delete_resource in grants["kafka-cluster:DescribeTopic"]
    assert delete_resource in grants["kafka-cluster:DescribeTopicDynamicConfiguration"]
    assert _custom_resource_properties(template)["Prune"] == "true"


@pytest.mark.synth
def test_sync_token_changes_every_synth_unless_pinned() -> None:
    pinned = _custom_resource_properties(_construct_template())["SyncToken"]
    assert pinned == cdk_json_context()["topicSyncToken"]
    explicit = _custom_resource_properties(_construct_template(sync_token="abc"))["SyncToken"]
    assert explicit == "abc"


def test_invalid_topics_fail_with_the_lambdas_own_message() -> None:
    bad = (TopicSpec("ok", 3, None, {"segment.bytes": "1048576"}), TopicSpec("bad name!", 0))
    with pytest.raises(SpecError) as lambda_error:
        parse_topics([topic_property(t) for t in bad], ClusterType.SERVERLESS)
    with pytest.raises(SpecError) as synth_error:
        _construct(bad)
    assert str(synth_error.value) == str(lambda_error.value)
    assert "segment.bytes is not allowed on MSK Serverless" in str(synth_error.value)


def test_serverless_partition_quota_is_checked_at_synth() -> None:
    per_topic = 100
    topics = tuple(
        TopicSpec(f"t{i}", per_topic) for i in range(SERVERLESS_MAX_PARTITIONS // per_topic + 1)
    )
    with pytest.raises(SpecError, match=f"at most {SERVERLESS_MAX_PARTITIONS} per cluster"):
        _construct(topics)
    compacted = tuple(TopicSpec(f"c{i}", 61, None, {"cleanup.policy": "compact"}) for i in range(2))
    assert SERVERLESS_MAX_COMPACTED_PARTITIONS < 2 * 61
    with pytest.raises(SpecError, match="compacted partitions per cluster"):
        _construct(compacted)


@pytest.mark.synth
def test_drift_check_can_be_left_out_and_then_only_provisioner_errors_alarm() -> None:
    template = _construct_template(drift_check=False)
    kinds = [r["Type"] for r in template["Resources"].values()]
    assert "AWS::Events::Rule" not in kinds
    handlers = [
        r["Properties"].get("Handler")
        for r in template["Resources"].values()
        if r["Type"] == "AWS::Lambda::Function"
    ]
    assert "drift_check.handler" not in handlers
    alarms = [
        r["Properties"]["MetricName"]
        for r in template["Resources"].values()
        if r["Type"] == "AWS::CloudWatch::Alarm"
    ]
    assert alarms == ["Errors"]


def test_a_spec_too_big_for_the_schedule_input_fails_the_synth_with_the_way_out() -> None:
    config = {"retention.ms": "86400000", "compression.type": "zstd"}
    topics = tuple(TopicSpec(f"service.events.topic-{i:03d}", 1, None, config) for i in range(100))
    with pytest.raises(SpecError, match="driftCheck=off"):
        _construct(topics)
    _construct(topics, drift_check=False)  # without the drift check the same spec is fine


def _waiter(template: dict[str, Any]) -> Any:
    (machine,) = (
        r for r in template["Resources"].values() if r["Type"] == "AWS::StepFunctions::StateMachine"
    )
    return machine


@pytest.mark.synth
def test_a_paced_sync_is_continued_by_the_frameworks_waiter_within_the_total_timeout() -> None:
    template = _construct_template()
    props = _custom_resource_properties(template)
    assert props["PartitionRate"] == "250/300s"  # MSK Serverless's quota
    # 9 partitions fit the first bucket: the default is the ten-minute floor.
    assert props["TotalTimeoutSeconds"] == "600"
    handlers = sorted(
        r["Properties"]["Handler"]
        for r in template["Resources"].values()
        if r["Type"] == "AWS::Lambda::Function" and "VpcConfig" in r["Properties"]
    )
    assert handlers == [
        "topic_sync.drift_check.handler",
        "topic_sync.handler.is_complete",
        "topic_sync.handler.on_event",
    ]
    definition = json.dumps(_waiter(template)["Properties"]["DefinitionString"])
    assert '\\"IntervalSeconds\\":30' in definition  # the query interval
    (custom,) = (r for r in template["Resources"].values() if r["Type"] == "Custom::KafkaTopics")
    assert 600 < int(custom["Properties"]["ServiceTimeout"]) <= 3600


@pytest.mark.synth
def test_the_total_timeout_grows_with_the_spec_and_stops_below_cloudformations_hour() -> None:
    big = tuple(TopicSpec(f"t{i:03d}", 6) for i in range(300))  # 1800 partitions
    props = _custom_resource_properties(_construct_template(big, drift_check=False))
    # (1800 - 250) partitions at 250 per 300 s = 1860 s, plus 15% and ten minutes = 2739 s,
    # rounded up to the waiter's 30-second interval.
    assert props["TotalTimeoutSeconds"] == "2760"
    off = _custom_resource_properties(_construct_template(partition_rate="off"))
    assert off["PartitionRate"] == "off"
    with pytest.raises(ValueError, match="total_timeout must be 1 to 55 minutes"):
        _construct_template(total_timeout=Duration.hours(2))
    with pytest.raises(SpecError, match="partition_rate: must look like 250/300s"):
        _construct_template(partition_rate="fast")


@pytest.mark.synth
def test_grants_give_a_role_its_topics_and_its_consumer_groups_only() -> None:
    topics = _construct()
    stack = Stack.of(topics)
    role = iam.Role(stack, "Billing", assumed_by=iam.ServicePrincipal("ecs-tasks.amazonaws.com"))
    topics.grant_produce(role, "payments")
    topics.grant_consume(role, "orders", consumer_group_prefix="billing.")
    with pytest.raises(ValueError, match="grant_produce: refunds not among the declared topics"):
        topics.grant_produce(role, "refunds")
    with pytest.raises(ValueError, match="consumer_group_prefix"):
        topics.grant_consume(role, "orders", consumer_group_prefix="*")
    template = Template.from_stack(stack).to_json()
    (policy,) = (
        r["Properties"]["PolicyDocument"]["Statement"]
        for logical_id, r in template["Resources"].items()
        if r["Type"] == "AWS::IAM::Policy" and logical_id.startswith("Billing")
    )
    granted: dict[str, set[str]] = {}
    for statement in policy:
        actions = statement["Action"]
        resources = statement["Resource"]
        for action in [actions] if isinstance(actions, str) else actions:
            granted.setdefault(action, set()).update(
                [resources] if isinstance(resources, str) else resources
            )
    prefix = "arn:aws:kafka:eu-west-1:111122223333"
    path = CLUSTER_ARN.split("cluster/", 1)[1]
    assert granted == {
        "kafka-cluster:Connect": {CLUSTER_ARN},
        "kafka-cluster:DescribeCluster": {CLUSTER_ARN},
        "kafka-cluster:WriteDataIdempotently": {CLUSTER_ARN},
        "kafka-cluster:DescribeTopic": {
            f"{prefix}:topic/{path}/payments",
            f"{prefix}:topic/{path}/orders",
        },
        "kafka-cluster:WriteData": {f"{prefix}:topic/{path}/payments"},
        "kafka-cluster:ReadData": {f"{prefix}:topic/{path}/orders"},
        "kafka-cluster:DescribeGroup": {f"{prefix}:group/{path}/billing.*"},
        "kafka-cluster:AlterGroup": {f"{prefix}:group/{path}/billing.*"},
    }
