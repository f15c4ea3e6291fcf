"""KafkaTopics: makes Kafka topics exist on an MSK cluster (IAM auth) during a deployment.

A VPC Lambda (``topic_sync.handler``, the topic-sync engine) behind a
``custom_resources.Provider``; the framework Lambda stays outside the VPC. Anything that needs
the topics adds ``node.add_dependency(kafka_topics.resource)``.

Between deploys, an EventBridge schedule runs the same engine in verify mode
(``topic_sync.drift_check``, read-only IAM) against the deployed spec and emits the
``DriftedTopics`` metric; ``alarms`` fire on provisioner / drift-check errors and on drift.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

from aws_cdk import CustomResource, Duration, RemovalPolicy, Stack
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_events as events
from aws_cdk import aws_events_targets as targets
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_logs as logs
from aws_cdk import aws_stepfunctions as sfn
from aws_cdk import custom_resources as cr
from constructs import Construct

from topic_sync.exceptions import SpecError
from topic_sync.metrics import DRIFTED_TOPICS, NAMESPACE, OPERATION_DIMENSION, SERVICE, Operation
from topic_sync.pacing import DEFAULT_RATES, PartitionRate

# The MSK Serverless quotas live in the engine: parse_topics checks them for synth, the CLI and
# the Lambda alike. Re-exported for callers of this module.
from topic_sync.spec import (
    SERVERLESS_MAX_COMPACTED_PARTITIONS as SERVERLESS_MAX_COMPACTED_PARTITIONS,
)
from topic_sync.spec import SERVERLESS_MAX_PARTITIONS as SERVERLESS_MAX_PARTITIONS
from topic_sync.spec import ClusterType, TopicSpec, parse_topics
from topic_sync.spec import serverless_quota_problems as serverless_quota_problems
from topic_sync_cdk.bundling import lambda_code
from topic_sync_cdk.cluster import ClusterArnParts, KafkaCluster
from topic_sync_cdk.nag import (
    AWS_LAMBDA_BASIC_EXECUTION_ROLE,
    AWS_LAMBDA_VPC_ACCESS_EXECUTION_ROLE,
    NIST_LAMBDA_OUTSIDE_VPC_REASON,
    acknowledge,
    acknowledge_lambda_runtime_findings,
    iam5_resource_finding,
)

#: The provisioner's environment variable naming its log group (topic_sync.handler reads it).
PROVISIONER_LOG_GROUP_ENV = "TOPIC_SYNC_LOG_GROUP"
#: MSK IAM-auth listener (SASL/SCRAM is 9096, TLS 9094; Serverless only has IAM).
MSK_IAM_PORT = 9098
#: Context key that pins the SyncToken (tests do, so two synths produce the same template).
SYNC_TOKEN_CONTEXT_KEY = "topicSyncToken"  # noqa: S105 (a context key, not a secret)

# Graviton: about 20% cheaper per GB-second than x86_64 at the same speed for this I/O-bound
# work, and every dependency (confluent-kafka above all) ships manylinux_2_28_aarch64 wheels.
LAMBDA_ARCHITECTURE = lambda_.Architecture.ARM_64
LAMBDA_RUNTIME = lambda_.Runtime.PYTHON_3_14
# Room beyond the engine's own budget for a cold start, DescribeStacks and the reply.
_LAMBDA_TIMEOUT_HEADROOM = Duration.seconds(60)

#: What the drift check may do: look, never change.
DRIFT_CHECK_ACTIONS = (
    "kafka-cluster:DescribeTopic",
    "kafka-cluster:DescribeTopicDynamicConfiguration",
)
#: EventBridge allows at most 8192 characters of target input; the bootstrap string (a token
#: until deploy: up to 3 brokers, ~100 characters each) needs room beyond the synth-time size.
EVENTBRIDGE_MAX_INPUT_CHARS = 8192
_BOOTSTRAP_RESERVE_CHARS = 1024
# The custom resource's properties the drift check needs (not the sync's switches and token).
_DRIFT_CHECK_SPEC_KEYS = frozenset(
    {
        "BootstrapServers",
        "Auth",
        "Region",
        "ClusterType",
        "Topics",
        "ClientConfig",
        "TimeoutSeconds",
    }
)

#: A consumer-group prefix: the group ARN's last part before the wildcard.
_GROUP_PREFIX_RE = re.compile(r"^[A-Za-z0-9._-]{2,64}$")

_TOPIC_ADMIN_ACTIONS = (
    "kafka-cluster:CreateTopic",
    "kafka-cluster:DescribeTopic",
    "kafka-cluster:AlterTopic",
    "kafka-cluster:DescribeTopicDynamicConfiguration",
    "kafka-cluster:AlterTopicDynamicConfiguration",
)


def drift_metric() -> cloudwatch.Metric:
    """The drift check's ``DriftedTopics`` (EMF from ``topic_sync.metrics``), max per hour."""
    return cloudwatch.Metric(
        namespace=NAMESPACE,
        metric_name=DRIFTED_TOPICS,
        dimensions_map={"service": SERVICE, OPERATION_DIMENSION: Operation.DRIFT_CHECK.value},
        statistic="Maximum",
        period=Duration.hours(1),
    )


def topic_property(topic: TopicSpec) -> dict[str, Any]:
    """One entry of the custom resource's Topics property (strings, as CloudFormation sends)."""
    entry: dict[str, Any] = {"Name": topic.name, "Partitions": str(topic.partitions)}
    if topic.replication_factor is not None:
        entry["ReplicationFactor"] = str(topic.replication_factor)
    entry["Config"] = dict(topic.config_items())
    return entry


#: How often the framework's waiter calls is_complete while a paced sync runs.
IS_COMPLETE_QUERY_INTERVAL = Duration.seconds(30)
#: CloudFormation gives a custom resource at most an hour (ServiceTimeout 3600); keep a margin.
MAX_TOTAL_TIMEOUT = Duration.minutes(55)
_MIN_TOTAL_TIMEOUT = Duration.minutes(10)


def default_total_timeout(topics: Sequence[TopicSpec], rate: PartitionRate | None) -> Duration:
    """Time for every partition of ``topics`` at ``rate`` from a full bucket, plus 15% and
    ten minutes; at least ten minutes, at most MAX_TOTAL_TIMEOUT."""
    if rate is None:
        return _MIN_TOTAL_TIMEOUT
    needed = rate.seconds_for(sum(t.partitions for t in topics)) * 1.15 + 600
    bounded = min(MAX_TOTAL_TIMEOUT.to_seconds(), max(_MIN_TOTAL_TIMEOUT.to_seconds(), needed))
    interval = IS_COMPLETE_QUERY_INTERVAL.to_seconds()  # the framework wants a multiple of it
    return Duration.seconds(int(math.ceil(bounded / interval) * interval))


def validated_topic_properties(
    topics: Sequence[TopicSpec], cluster_type: ClusterType
) -> list[dict[str, Any]]:
    """The Topics property, validated by the Lambda's own parser (MSK Serverless quotas
    included); SpecError if it would fail."""
    properties = [topic_property(topic) for topic in topics]
    parse_topics(properties, cluster_type)
    return properties


class KafkaTopics(Construct):
    """Kafka topics that exist on an MSK cluster (IAM auth) before anything depending on them.

    :param cluster: the cluster, its VPC and security group (``KafkaCluster``: this app's
        cluster or an existing one). Its security group gets an ingress rule on 9098 from the
        provisioning Lambdas; its type picks the rules checked at synth (MSK Serverless: the
        config allow-list and partition quotas; Provisioned: replication factor and every
        topic config allowed).
    :param topics: the topics that must exist (validated at synth by the Lambda's own parser).
    :param removal_policy: what happens to the topics when this resource is deleted.
        Default: RETAIN, the topics and their data are kept. DESTROY deletes them, but only
        while the stack itself is being deleted: removing or renaming the resource, or a
        rollback, keeps them.
    :param prune: delete topics dropped from ``topics`` on an update (never during a rollback).
        Default: False, dropped topics are kept.
    :param sync_token: a value that forces a re-sync whenever it changes. Default: the context
        value ``topicSyncToken`` if set, else a new value on every synth, so every deploy
        re-checks the topics (and repairs drift).
    :param timeout: how long the engine may take per invocation. Default: 60 seconds.
    :param client_config: extra librdkafka settings for the engine's AdminClient.
        Default: none.
    :param cloudformation_endpoint: an interface VPC endpoint for CloudFormation; the Lambda
        reaches the CloudFormation API (DescribeStacks, to recognise a rollback) only through
        it. Default: HTTPS egress to any IPv4 address, i.e. through the VPC's NAT.
    :param log_retention: how long the Lambdas' logs are kept. Default: one month.
    :param drift_check: run the engine in verify mode on a schedule (read-only IAM) and alarm
        when the cluster differs from ``topics``. Default: True.
    :param drift_check_schedule: when the drift check runs. Default: once a day.
    :param partition_rate: partition creations and deletions the cluster allows, as
        ``N/Ts`` (``250/300s``), or ``off``. The sync spends them as a bucket and continues
        over several waiter calls when a spec needs more. Default: the cluster type's quota
        (MSK Serverless: 250 per 5 minutes; Provisioned: not paced).
    :param total_timeout: how long a deploy may wait for a paced sync. Default: the spec's
        partitions at ``partition_rate``, plus 15% and ten minutes (10 to 55 minutes).

    ``grant_produce`` and ``grant_consume`` give a role data access to declared topics.

    Attributes: ``resource`` (depend on it), ``function`` (the provisioner),
    ``drift_check_function`` (None without the drift check) and ``alarms``: provisioner errors,
    drift-check errors and drift (``DriftedTopics >= 1``), without actions: add your own.
    """

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        cluster: KafkaCluster,
        topics: Sequence[TopicSpec],
        removal_policy: RemovalPolicy = RemovalPolicy.RETAIN,
        prune: bool = False,
        sync_token: str | None = None,
        timeout: Duration | None = None,
        client_config: Mapping[str, str] | None = None,
        cloudformation_endpoint: ec2.IInterfaceVpcEndpoint | None = None,
        log_retention: logs.RetentionDays = logs.RetentionDays.ONE_MONTH,
        drift_check: bool = True,
        drift_check_schedule: events.Schedule | None = None,
        partition_rate: str | None = None,
        total_timeout: Duration | None = None,
    ) -> None:
        super().__init__(scope, construct_id)
        if removal_policy not in (RemovalPolicy.RETAIN, RemovalPolicy.DESTROY):
            raise ValueError("removal_policy must be RETAIN or DESTROY")
        timeout = timeout or Duration.seconds(60)
        if timeout.to_seconds() > Duration.minutes(14).to_seconds():
            raise ValueError("timeout must leave room inside Lambda's 15 minutes (max 14 minutes)")
        cluster_type = cluster.cluster_type
        vpc, vpc_subnets = cluster.vpc, cluster.vpc_subnets
        cluster_security_group = cluster.security_group
        topic_properties = validated_topic_properties(topics, cluster_type)
        self.cluster = cluster
        self.topic_names = frozenset(topic.name for topic in topics)
        rate = (
            PartitionRate.parse(partition_rate, source="partition_rate")
            if partition_rate and partition_rate.lower() != "off"
            else (None if partition_rate else DEFAULT_RATES[cluster_type])
        )
        total_timeout = total_timeout or default_total_timeout(topics, rate)
        if not 60 <= total_timeout.to_seconds() <= MAX_TOTAL_TIMEOUT.to_seconds():
            raise ValueError("total_timeout must be 1 to 55 minutes (CloudFormation waits 1 hour)")
        if total_timeout.to_seconds() % IS_COMPLETE_QUERY_INTERVAL.to_seconds():
            raise ValueError("total_timeout must be a whole number of 30-second waiter intervals")
        stack = Stack.of(self)
        arns = cluster.arns

        self.security_group = ec2.SecurityGroup(
            self,
            "SecurityGroup",
            vpc=vpc,
            description="topic-sync provisioner: Kafka IAM port of the cluster only",
            allow_all_outbound=False,
        )
        # Adds the egress rule here and the matching ingress rule on the cluster's group.
        self.security_group.connections.allow_to(
            cluster_security_group, ec2.Port.tcp(MSK_IAM_PORT), "topic-sync provisioner to MSK"
        )
        if cloudformation_endpoint is not None:
            self.security_group.connections.allow_to(
                cloudformation_endpoint, ec2.Port.tcp(443), "CloudFormation API via endpoint"
            )
        else:
            self.security_group.add_egress_rule(
                ec2.Peer.any_ipv4(), ec2.Port.tcp(443), "CloudFormation API via NAT"
            )

        # One asset (bundled once) for the provisioner and the drift check.
        code = lambda_code(LAMBDA_ARCHITECTURE, LAMBDA_RUNTIME)
        provisioner_logs = logs.LogGroup(self, "ProvisionerLogs", retention=log_retention)

        def provisioner(
            construct_id: str, handler: str, description: str, role: iam.IRole | None = None
        ) -> lambda_.Function:
            return lambda_.Function(
                self,
                construct_id,
                description=description,
                runtime=LAMBDA_RUNTIME,
                architecture=LAMBDA_ARCHITECTURE,
                handler=handler,
                code=code,
                memory_size=256,
                timeout=Duration.seconds(
                    timeout.to_seconds() + _LAMBDA_TIMEOUT_HEADROOM.to_seconds()
                ),
                role=role,
                vpc=vpc,
                vpc_subnets=vpc_subnets,
                security_groups=[self.security_group],
                environment={
                    "POWERTOOLS_SERVICE_NAME": "topic-sync",
                    # Named in failure Reasons: the framework's "Logs: /aws/lambda/..." is not it.
                    PROVISIONER_LOG_GROUP_ENV: provisioner_logs.log_group_name,
                },
                log_group=provisioner_logs,
            )

        self.function = provisioner(
            "Provisioner",
            "topic_sync.handler.on_event",
            "topic-sync: makes the declared Kafka topics exist (Custom::KafkaTopics)",
        )
        self._grant(arns, topics, removal_policy=removal_policy, prune=prune, stack=stack)
        # The waiter's side of a paced sync: same code, role, network and logs.
        self.is_complete_function = provisioner(
            "IsComplete",
            "topic_sync.handler.is_complete",
            "topic-sync: continues a sync paced by the partition quota",
            role=self.function.role,
        )

        self.provider = cr.Provider(
            self,
            "Provider",
            on_event_handler=self.function,
            is_complete_handler=self.is_complete_function,
            query_interval=IS_COMPLETE_QUERY_INTERVAL,
            total_timeout=total_timeout,
            log_group=logs.LogGroup(self, "ProviderLogs", retention=log_retention),
            # The framework's default is FATAL, which hides why a reply failed.
            framework_lambda_logging_level=lambda_.ApplicationLogLevel.ERROR,
            disable_waiter_state_machine_logging=False,
            waiter_state_machine_log_options=cr.LogOptions(
                destination=logs.LogGroup(self, "WaiterLogs", retention=log_retention),
                level=sfn.LogLevel.ALL,
            ),
        )
        if sync_token is None:
            pinned = self.node.try_get_context(SYNC_TOKEN_CONTEXT_KEY)
            sync_token = str(pinned) if pinned is not None else datetime.now(UTC).isoformat()
        properties: dict[str, Any] = {
            "BootstrapServers": cluster.bootstrap_servers,
            "Auth": "IAM",
            # The cluster's region: the IAM auth token is signed for it.
            "Region": arns.region,
            "ClusterType": cluster_type.value,
            "Topics": topic_properties,
            "RemovalPolicy": "DESTROY" if removal_policy is RemovalPolicy.DESTROY else "RETAIN",
            "Prune": "true" if prune else "false",
            "SyncToken": sync_token,
            "TimeoutSeconds": str(int(timeout.to_seconds())),
            "PartitionRate": str(rate) if rate else "off",
            "TotalTimeoutSeconds": str(int(total_timeout.to_seconds())),
        }
        if client_config:
            properties["ClientConfig"] = dict(client_config)
        self.resource = CustomResource(
            self,
            "Resource",
            service_token=self.provider.service_token,
            resource_type="Custom::KafkaTopics",
            properties=properties,
            # The waiter's whole budget plus the framework's own margin; at most CloudFormation's
            # hour.
            service_timeout=Duration.seconds(
                min(3600, total_timeout.to_seconds() + _LAMBDA_TIMEOUT_HEADROOM.to_seconds() + 300)
            ),
        )
        self._acknowledge_framework_findings()

        self.drift_check_function: lambda_.Function | None = None
        if drift_check:
            self.drift_check_function = self._drift_check(
                code=code,
                arns=arns,
                vpc=vpc,
                vpc_subnets=vpc_subnets,
                cluster_security_group=cluster_security_group,
                topics=topics,
                schedule=drift_check_schedule or events.Schedule.rate(Duration.days(1)),
                spec={k: v for k, v in properties.items() if k in _DRIFT_CHECK_SPEC_KEYS},
                timeout=timeout,
                log_retention=log_retention,
            )
        self.alarms = self._alarms()

    def grant_produce(self, grantee: iam.IGrantable, *topic_names: str) -> iam.Grant:
        """Let ``grantee`` write to these declared topics (and nothing else on the cluster).

        Connect, DescribeCluster and WriteDataIdempotently on the cluster (Kafka >= 3.0
        producers are idempotent by default); DescribeTopic and WriteData on the topics.
        """
        topics = self._declared(topic_names, "grant_produce")
        return self._grant_to(
            grantee,
            [
                (
                    [
                        "kafka-cluster:Connect",
                        "kafka-cluster:DescribeCluster",
                        "kafka-cluster:WriteDataIdempotently",
                    ],
                    [self.cluster.arns.cluster_arn],
                ),
                (
                    ["kafka-cluster:DescribeTopic", "kafka-cluster:WriteData"],
                    [self.cluster.arns.topic_arn(name) for name in topics],
                ),
            ],
        )

    def grant_consume(
        self, grantee: iam.IGrantable, *topic_names: str, consumer_group_prefix: str
    ) -> iam.Grant:
        """Let ``grantee`` read these declared topics in consumer groups named
        ``<consumer_group_prefix><anything>``.

        Connect and DescribeCluster on the cluster; DescribeTopic and ReadData on the topics;
        DescribeGroup and AlterGroup (join, commit) on ``group/.../<prefix>*``. Pick prefixes
        that cannot match another service's groups (e.g. ``<service>.`` with no '.' in names).
        """
        topics = self._declared(topic_names, "grant_consume")
        if not _GROUP_PREFIX_RE.match(consumer_group_prefix):
            raise ValueError(
                "grant_consume: consumer_group_prefix must be 2-64 characters of letters, "
                f"digits, '.', '_' and '-', got {consumer_group_prefix!r}"
            )
        group_arn = self.cluster.arns.group_arn(f"{consumer_group_prefix}*")
        grant = self._grant_to(
            grantee,
            [
                (
                    ["kafka-cluster:Connect", "kafka-cluster:DescribeCluster"],
                    [self.cluster.arns.cluster_arn],
                ),
                (
                    ["kafka-cluster:DescribeTopic", "kafka-cluster:ReadData"],
                    [self.cluster.arns.topic_arn(name) for name in topics],
                ),
                (["kafka-cluster:DescribeGroup", "kafka-cluster:AlterGroup"], [group_arn]),
            ],
        )
        if isinstance(grantee, Construct):
            acknowledge(
                grantee,
                iam5_resource_finding(self, group_arn),
                f"consumer groups are named '{consumer_group_prefix}<name>'; the wildcard "
                "covers only the groups with that prefix",
            )
        return grant

    def _declared(self, topic_names: Sequence[str], method: str) -> tuple[str, ...]:
        if not topic_names:
            raise ValueError(f"{method}: name at least one topic")
        unknown = sorted(set(topic_names) - self.topic_names)
        if unknown:
            raise ValueError(
                f"{method}: {', '.join(unknown)} not among the declared topics "
                f"({', '.join(sorted(self.topic_names))})"
            )
        return tuple(dict.fromkeys(topic_names))

    @staticmethod
    def _grant_to(
        grantee: iam.IGrantable, statements: Sequence[tuple[list[str], list[str]]]
    ) -> iam.Grant:
        grant: iam.Grant | None = None
        for actions, resources in statements:
            one = iam.Grant.add_to_principal(
                grantee=grantee, actions=actions, resource_arns=resources
            )
            grant = one if grant is None else grant.combine(one)
        assert grant is not None
        return grant

    def _drift_check(
        self,
        *,
        code: lambda_.Code,
        arns: ClusterArnParts,
        vpc: ec2.IVpc,
        vpc_subnets: ec2.SubnetSelection,
        cluster_security_group: ec2.ISecurityGroup,
        topics: Sequence[TopicSpec],
        schedule: events.Schedule,
        spec: Mapping[str, Any],
        timeout: Duration,
        log_retention: logs.RetentionDays,
    ) -> lambda_.Function:
        """The scheduled, read-only verify: its own security group, role and log group."""
        spec_chars = len(json.dumps(spec["Topics"], separators=(",", ":")))
        if spec_chars + _BOOTSTRAP_RESERVE_CHARS > EVENTBRIDGE_MAX_INPUT_CHARS:
            raise SpecError(
                [
                    f"drift check: the topics take {spec_chars} characters, more than fits the "
                    f"schedule's target input ({EVENTBRIDGE_MAX_INPUT_CHARS} characters, "
                    f"{_BOOTSTRAP_RESERVE_CHARS} kept for the bootstrap servers); "
                    "turn it off with -c driftCheck=off and run `topic-sync verify` from CI"
                ]
            )
        security_group = ec2.SecurityGroup(
            self,
            "DriftCheckSecurityGroup",
            vpc=vpc,
            description="topic-sync drift check: Kafka IAM port of the cluster only",
            allow_all_outbound=False,
        )
        security_group.connections.allow_to(
            cluster_security_group, ec2.Port.tcp(MSK_IAM_PORT), "topic-sync drift check to MSK"
        )
        function = lambda_.Function(
            self,
            "DriftCheck",
            description="topic-sync: scheduled, read-only drift check of the declared Kafka topics",
            runtime=LAMBDA_RUNTIME,
            architecture=LAMBDA_ARCHITECTURE,
            handler="topic_sync.drift_check.handler",
            code=code,
            memory_size=256,
            timeout=Duration.seconds(timeout.to_seconds() + _LAMBDA_TIMEOUT_HEADROOM.to_seconds()),
            vpc=vpc,
            vpc_subnets=vpc_subnets,
            security_groups=[security_group],
            environment={"POWERTOOLS_SERVICE_NAME": SERVICE},
            log_group=logs.LogGroup(self, "DriftCheckLogs", retention=log_retention),
        )
        function.add_to_role_policy(
            iam.PolicyStatement(actions=["kafka-cluster:Connect"], resources=[arns.cluster_arn])
        )
        function.add_to_role_policy(
            iam.PolicyStatement(
                actions=list(DRIFT_CHECK_ACTIONS),
                resources=[arns.topic_arn(topic.name) for topic in topics],
            )
        )
        # The deployed spec travels as the schedule's input: the same properties the custom
        # resource gets (tokens resolve at deploy), so the check compares with what was applied.
        events.Rule(
            self,
            "DriftCheckSchedule",
            description="topic-sync: verify the Kafka topics against the deployed spec",
            schedule=schedule,
            targets=[
                targets.LambdaFunction(
                    function,
                    event=events.RuleTargetInput.from_object(dict(spec)),
                    retry_attempts=2,
                    max_event_age=Duration.hours(1),
                )
            ],
        )
        acknowledge(
            function,
            f"AwsSolutions-IAM4[{AWS_LAMBDA_BASIC_EXECUTION_ROLE}]",
            "the AWS managed policy only lets the drift check write its own CloudWatch logs",
        )
        acknowledge(
            function,
            f"AwsSolutions-IAM4[{AWS_LAMBDA_VPC_ACCESS_EXECUTION_ROLE}]",
            "a VPC Lambda must manage its ENIs; those EC2 actions have no resource-level scoping",
        )
        acknowledge_lambda_runtime_findings(
            function,
            invocation="EventBridge invokes it on a schedule with two retries; a failure raises "
            "the DriftCheckErrors alarm and the next run checks again",
        )
        return function

    def _alarms(self) -> list[cloudwatch.Alarm]:
        """Provisioner errors, drift-check errors and drift; actions are the caller's choice."""
        alarms = [
            cloudwatch.Alarm(
                self,
                "ProvisionerErrors",
                alarm_description="topic-sync: the provisioner failed (see its log group)",
                metric=self.function.metric_errors(period=Duration.minutes(5), statistic="Sum"),
                threshold=1,
                evaluation_periods=1,
                comparison_operator=cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
                treat_missing_data=cloudwatch.TreatMissingData.NOT_BREACHING,
            )
        ]
        if self.drift_check_function is not None:
            alarms.append(
                cloudwatch.Alarm(
                    self,
                    "DriftCheckErrors",
                    alarm_description="topic-sync: the drift check could not check the cluster",
                    metric=self.drift_check_function.metric_errors(
                        period=Duration.minutes(5), statistic="Sum"
                    ),
                    threshold=1,
                    evaluation_periods=1,
                    comparison_operator=cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
                    treat_missing_data=cloudwatch.TreatMissingData.NOT_BREACHING,
                )
            )
            alarms.append(
                cloudwatch.Alarm(
                    self,
                    "Drift",
                    alarm_description="topic-sync: the cluster's topics differ from the deployed "
                    "spec (the drift check's log names the topics and configs)",
                    metric=drift_metric(),
                    threshold=1,
                    evaluation_periods=1,
                    comparison_operator=cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
                    # One data point per check: keep the last state until the next check.
                    treat_missing_data=cloudwatch.TreatMissingData.IGNORE,
                )
            )
        return alarms

    def _grant(
        self,
        arns: ClusterArnParts,
        topics: Sequence[TopicSpec],
        *,
        removal_policy: RemovalPolicy,
        prune: bool,
        stack: Stack,
    ) -> None:
        topic_arns = [arns.topic_arn(topic.name) for topic in topics]
        self.function.add_to_role_policy(
            iam.PolicyStatement(
                actions=["kafka-cluster:Connect", "kafka-cluster:DescribeCluster"],
                resources=[arns.cluster_arn],
            )
        )
        self.function.add_to_role_policy(
            iam.PolicyStatement(actions=list(_TOPIC_ADMIN_ACTIONS), resources=topic_arns)
        )
        if prune:
            # A topic dropped from the spec is no longer in topic_arns by the time the update
            # runs (IAM is updated first), so pruning needs this cluster's topics; no others.
            # The engine describes a dropped topic (and its configs) before deleting it.
            self.function.add_to_role_policy(
                iam.PolicyStatement(
                    actions=[
                        "kafka-cluster:DescribeTopic",
                        "kafka-cluster:DescribeTopicDynamicConfiguration",
                        "kafka-cluster:DeleteTopic",
                    ],
                    resources=[arns.topic_arn("*")],
                )
            )
            acknowledge(
                self.function,
                iam5_resource_finding(self, arns.topic_arn("*")),
                "prune deletes topics dropped from the spec, which the spec no longer names; "
                "the wildcard is limited to this one cluster's topics",
            )
        elif removal_policy is RemovalPolicy.DESTROY:
            self.function.add_to_role_policy(
                iam.PolicyStatement(actions=["kafka-cluster:DeleteTopic"], resources=topic_arns)
            )
        # The engine reads its own stack's status to recognise a rollback.
        self.function.add_to_role_policy(
            iam.PolicyStatement(
                actions=["cloudformation:DescribeStacks"], resources=[stack.stack_id]
            )
        )

    def _acknowledge_framework_findings(self) -> None:
        acknowledge(
            self.function,
            f"AwsSolutions-IAM4[{AWS_LAMBDA_BASIC_EXECUTION_ROLE}]",
            "the AWS managed policy only lets the provisioner write its own CloudWatch logs",
        )
        acknowledge(
            self.function,
            f"AwsSolutions-IAM4[{AWS_LAMBDA_VPC_ACCESS_EXECUTION_ROLE}]",
            "a VPC Lambda must manage its ENIs; those EC2 actions have no resource-level scoping",
        )
        acknowledge_lambda_runtime_findings(
            self.function,
            invocation="the provider framework invokes it synchronously and hands any failure "
            "to CloudFormation",
        )
        acknowledge_lambda_runtime_findings(
            self.provider,
            invocation="CloudFormation invokes it for each lifecycle event and gets any failure "
            "back in the response",
        )
        acknowledge(self.provider, "NIST.800.53.R5-LambdaInsideVPC", NIST_LAMBDA_OUTSIDE_VPC_REASON)
        acknowledge(
            self.provider,
            f"AwsSolutions-IAM4[{AWS_LAMBDA_BASIC_EXECUTION_ROLE}]",
            "CDK provider framework Lambda: the AWS managed policy only lets it write its logs",
        )
        acknowledge(
            self.provider,
            iam5_resource_finding(self, f"{self.function.function_arn}:*"),
            "CDK provider framework may invoke any version of the one provisioning function, "
            "and nothing else",
        )
        acknowledge(
            self.provider,
            iam5_resource_finding(self, f"{self.is_complete_function.function_arn}:*"),
            "CDK provider framework's waiter may invoke any version of the one is_complete "
            "function, and nothing else",
        )
        for framework_id in ("framework-isComplete", "framework-onTimeout"):
            framework = self.provider.node.find_child(framework_id)
            assert isinstance(framework, lambda_.Function)
            acknowledge(
                self.provider,
                iam5_resource_finding(self, f"{framework.function_arn}:*"),
                "the CDK provider framework's waiter state machine may invoke any version of its "
                "own framework function, and nothing else",
            )
        acknowledge(
            self.provider,
            "AwsSolutions-IAM5[Resource::*]",
            "the waiter state machine's log delivery actions (logs:CreateLogDelivery and the "
            "like) support no resource-level scoping; it writes only to its own log group",
        )
        acknowledge(
            self.provider,
            "AwsSolutions-SF2",
            "CDK's provider framework offers no X-Ray option for its waiter; every execution "
            "event is logged (level ALL) to the waiter's own log group instead",
        )
        acknowledge_lambda_runtime_findings(
            self.is_complete_function,
            invocation="the provider framework's waiter invokes it every query interval and "
            "hands a failure to CloudFormation",
        )
