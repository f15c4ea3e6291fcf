"""The MSK cluster KafkaTopics works on: this app's own, or one that already exists.

``KafkaCluster`` carries what the construct needs to reach a cluster (ARN, IAM bootstrap
servers, VPC, security group, type) and nothing else: it never creates or changes the cluster.
``ClusterArnParts`` turns the cluster ARN into the topic and group ARNs that IAM policies name.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from aws_cdk import ArnFormat, Duration, Fn, Stack, Token
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_logs as logs
from aws_cdk import aws_msk as msk
from aws_cdk import custom_resources as cr
from constructs import Construct

from topic_sync.spec import ClusterType
from topic_sync_cdk.nag import (
    AWS_LAMBDA_BASIC_EXECUTION_ROLE,
    NIST_LAMBDA_OUTSIDE_VPC_REASON,
    acknowledge,
    acknowledge_lambda_runtime_findings,
)

#: ``arn:<partition>:kafka:<region>:<account>:cluster/<name>/<uuid>``; the uuid ends in ``-<n>``
#: on Provisioned clusters and ``-s<n>`` on Serverless ones (developerguide/kafka-actions.html).
CLUSTER_ARN_PATTERN = (
    r"^arn:(?P<partition>aws(?:-[a-z]+)*):kafka:(?P<region>[a-z]{2}(?:-[a-z]+)+-\d):"
    r"(?P<account>\d{12}):cluster/(?P<name>[A-Za-z0-9][A-Za-z0-9-]{0,63})/"
    r"(?P<uuid>[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}-s?\d+)$"
)
_CLUSTER_ARN_RE = re.compile(CLUSTER_ARN_PATTERN)
#: The bootstrap-brokers lookup is one fast API call; CloudFormation's default wait is an hour.
BOOTSTRAP_BROKERS_SERVICE_TIMEOUT = Duration.minutes(5)
#: Construct id aws-cdk-lib gives the one Lambda behind every AwsCustomResource of a stack.
AWS_CUSTOM_RESOURCE_SINGLETON_ID = "AWS679f53fac002430cb0da5b7982bd2287"


@dataclass(frozen=True)
class ParsedClusterArn:
    """The parts of a concrete MSK cluster ARN."""

    arn: str
    partition: str
    region: str
    account: str
    name: str
    uuid: str

    @classmethod
    def parse(cls, arn: str, *, source: str = "cluster_arn") -> ParsedClusterArn:
        """ValueError naming ``source`` unless ``arn`` is an MSK cluster ARN."""
        match = _CLUSTER_ARN_RE.match(arn)
        if match is None:
            shown = arn if len(arn) <= 200 else arn[:200] + "..."
            raise ValueError(
                f"{source}: not an MSK cluster ARN (arn:aws:kafka:<region>:<account>:"
                f"cluster/<name>/<uuid>), got {shown!r}"
            )
        return cls(arn=arn, **match.groupdict())


class ClusterArnParts:
    """ARNs of things inside one MSK cluster, from its ARN.

    A concrete ARN gives literal ARNs from its own partition, region, account, name and uuid
    (an existing cluster may be anywhere). A token (this app's cluster) takes partition,
    region and account from the stack, where that cluster is created, and the name and uuid
    from the ARN at deploy time.
    """

    def __init__(self, scope: Construct, cluster_arn: str) -> None:
        self.cluster_arn = cluster_arn
        self.parsed: ParsedClusterArn | None = None
        self._stack = Stack.of(scope)
        if Token.is_unresolved(cluster_arn):
            resource_path = Fn.split("/", cluster_arn)
            self._path = f"{Fn.select(1, resource_path)}/{Fn.select(2, resource_path)}"
            self.region = self._stack.region
        else:
            self.parsed = ParsedClusterArn.parse(cluster_arn)
            self._path = f"{self.parsed.name}/{self.parsed.uuid}"
            self.region = self.parsed.region

    def _inside(self, resource: str, name: str) -> str:
        if self.parsed is None:
            return self._stack.format_arn(
                service="kafka",
                resource=resource,
                resource_name=f"{self._path}/{name}",
                arn_format=ArnFormat.SLASH_RESOURCE_NAME,
            )
        p = self.parsed
        return f"arn:{p.partition}:kafka:{p.region}:{p.account}:{resource}/{self._path}/{name}"

    def topic_arn(self, topic: str) -> str:
        return self._inside("topic", topic)

    def group_arn(self, group: str) -> str:
        return self._inside("group", group)


class KafkaCluster(Construct):
    """An MSK cluster that ``KafkaTopics`` syncs topics on, reached over IAM auth (port 9098):
    one made elsewhere (Terraform, the console, another stack) from its attributes, or this
    app's own with ``from_serverless_cluster``.

    Nothing here creates or changes the cluster; the only resource it may add is the
    bootstrap-servers lookup.

    :param cluster_arn: the cluster's ARN. A concrete ARN is checked at synth, and IAM policies
        are built from its own partition, region, account, name and uuid.
    :param vpc: a VPC the cluster is reachable from; the provisioning Lambdas run in it.
        ``ec2.Vpc.from_vpc_attributes`` keeps the synth offline (``from_lookup`` needs
        credentials).
    :param security_group: the cluster's security group; ``KafkaTopics`` adds an ingress rule on
        9098 from its Lambdas (import it with ``mutable=False`` to manage the rule yourself).
    :param cluster_type: SERVERLESS or PROVISIONED. Default: SERVERLESS, whose config
        allow-list, quotas and partition pacing apply at synth and deploy.
    :param bootstrap_servers: the IAM bootstrap string, ``host:9098[,...]``. Default: read at
        deploy time with GetBootstrapBrokers (``BootstrapBrokerStringSaslIam``, the same for
        Serverless and Provisioned), through one ``Custom::AWS`` resource.
    :param vpc_subnets: where the Lambdas run. Default: the VPC's private subnets with egress.
    :param log_retention: how long the lookup's logs are kept. Default: one month.
    """

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        cluster_arn: str,
        vpc: ec2.IVpc,
        security_group: ec2.ISecurityGroup,
        cluster_type: ClusterType = ClusterType.SERVERLESS,
        bootstrap_servers: str | None = None,
        vpc_subnets: ec2.SubnetSelection | None = None,
        log_retention: logs.RetentionDays = logs.RetentionDays.ONE_MONTH,
    ) -> None:
        super().__init__(scope, construct_id)
        self.arns = ClusterArnParts(self, cluster_arn)
        self.cluster_arn = cluster_arn
        self.vpc = vpc
        self.security_group = security_group
        self.cluster_type = cluster_type
        self.vpc_subnets = vpc_subnets or ec2.SubnetSelection(
            subnet_type=ec2.SubnetType.PRIVATE_WITH_EGRESS
        )
        if bootstrap_servers is not None and not Token.is_unresolved(bootstrap_servers):
            _check_bootstrap_servers(bootstrap_servers)
        self.bootstrap_servers = bootstrap_servers or self._look_up_bootstrap_servers(log_retention)

    @classmethod
    def from_serverless_cluster(
        cls,
        scope: Construct,
        construct_id: str,
        *,
        cluster: msk.CfnServerlessCluster,
        vpc: ec2.IVpc,
        security_group: ec2.ISecurityGroup,
        vpc_subnets: ec2.SubnetSelection | None = None,
        log_retention: logs.RetentionDays = logs.RetentionDays.ONE_MONTH,
    ) -> KafkaCluster:
        """An MSK Serverless cluster defined in this app."""
        return cls(
            scope,
            construct_id,
            cluster_arn=cluster.attr_arn,
            vpc=vpc,
            security_group=security_group,
            cluster_type=ClusterType.SERVERLESS,
            vpc_subnets=vpc_subnets,
            log_retention=log_retention,
        )

    def _look_up_bootstrap_servers(self, log_retention: logs.RetentionDays) -> str:
        # CloudFormation only knows the cluster ARN; the bootstrap string needs an API call.
        call = cr.AwsSdkCall(
            service="Kafka",
            action="getBootstrapBrokers",
            parameters={"ClusterArn": self.cluster_arn},
            physical_resource_id=cr.PhysicalResourceId.of(self.cluster_arn),
            output_paths=["BootstrapBrokerStringSaslIam"],
        )
        brokers = cr.AwsCustomResource(
            self,
            "BootstrapBrokers",
            on_create=call,
            on_update=call,
            policy=cr.AwsCustomResourcePolicy.from_sdk_calls(resources=[self.cluster_arn]),
            # The SDK in the Lambda runtime has GetBootstrapBrokers; no npm install at deploy.
            install_latest_aws_sdk=False,
            log_group=logs.LogGroup(self, "BootstrapBrokersLogs", retention=log_retention),
            # One fast API call: give up after minutes, not CloudFormation's default hour.
            service_timeout=BOOTSTRAP_BROKERS_SERVICE_TIMEOUT,
        )
        singleton = Stack.of(self).node.find_child(AWS_CUSTOM_RESOURCE_SINGLETON_ID)
        acknowledge(
            singleton,
            f"AwsSolutions-IAM4[{AWS_LAMBDA_BASIC_EXECUTION_ROLE}]",
            "CDK AwsCustomResource singleton Lambda: the AWS managed policy only lets it write "
            "its logs; its API permission is GetBootstrapBrokers on this cluster only",
        )
        acknowledge_lambda_runtime_findings(
            singleton,
            invocation="CloudFormation invokes it for the Custom::AWS lookup and gets any failure "
            "back in the response",
        )
        acknowledge(singleton, "NIST.800.53.R5-LambdaInsideVPC", NIST_LAMBDA_OUTSIDE_VPC_REASON)
        return brokers.get_response_field("BootstrapBrokerStringSaslIam")


#: ``host:port[,host:port...]``: what ``bootstrap_servers`` (and the app's context) may be.
BOOTSTRAP_SERVERS_RE = re.compile(
    r"^[A-Za-z0-9.-]{1,253}:\d{1,5}(?:,[A-Za-z0-9.-]{1,253}:\d{1,5})*$"
)


def _check_bootstrap_servers(value: str) -> None:
    if not BOOTSTRAP_SERVERS_RE.match(value):
        shown = value if len(value) <= 200 else value[:200] + "..."
        raise ValueError(
            f"bootstrap_servers: must be host:port[,host:port...] (the IAM listener, 9098), "
            f"got {shown!r}"
        )
