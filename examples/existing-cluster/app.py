#!/usr/bin/env python3
"""A CDK app of a team that already runs MSK: topics on its existing clusters, one per stage.

Nothing from the topic-sync repository is imported, only the installed package
(``pip install 'topic-sync[cdk]'``). The clusters, VPCs and security groups were made
elsewhere (Terraform, the console); cdk.json names them per stage, by id, so ``cdk synth``
needs no AWS credentials and makes no lookups. Each stage is its own stack, deployed to the
account and region of its cluster:

    npx cdk synth                      # both stages
    npx cdk deploy Orders-staging      # one of them
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from aws_cdk import App, Environment, Stack
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_iam as iam
from constructs import Construct

from topic_sync_cdk import ClusterType, KafkaCluster, KafkaTopics, load_topics

HERE = Path(__file__).resolve().parent


class OrdersTopics(Stack):
    """The orders team's topics on one stage's existing cluster, and its services' access."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        stage: str,
        cluster: dict[str, Any],
        **kwargs: Any,
    ) -> None:
        super().__init__(scope, construct_id, **kwargs)
        cluster_type = ClusterType(cluster["clusterType"].upper())
        spec = load_topics(HERE / "topics.yaml", stage=stage, cluster_type=cluster_type)
        vpc = ec2.Vpc.from_vpc_attributes(
            self,
            "Vpc",
            vpc_id=cluster["vpcId"],
            availability_zones=cluster["availabilityZones"],
            private_subnet_ids=cluster["subnetIds"],
        )
        kafka = KafkaCluster(
            self,
            "Cluster",
            cluster_arn=cluster["clusterArn"],
            vpc=vpc,
            security_group=ec2.SecurityGroup.from_security_group_id(
                self, "ClusterSecurityGroup", cluster["clusterSecurityGroupId"]
            ),
            cluster_type=cluster_type,
        )
        topics = KafkaTopics(self, "Topics", cluster=kafka, topics=spec.topics)
        # The services run elsewhere (their own stacks or Terraform); their task roles get
        # exactly their topics. A service stack in this app would also add
        # `service.node.add_dependency(topics.resource)` so it starts after its topics exist.
        for service in spec.services:
            role = iam.Role.from_role_arn(
                self, f"{service.name}Role", cluster["serviceRoles"][service.name], mutable=True
            )
            if service.produces:
                topics.grant_produce(role, *service.produces)
            if service.consumes:
                topics.grant_consume(
                    role, *service.consumes, consumer_group_prefix=f"{service.name}."
                )


app = App()
for stage, cluster in app.node.get_context("stages").items():
    account, region = cluster["clusterArn"].split(":")[4], cluster["clusterArn"].split(":")[3]
    OrdersTopics(
        app,
        f"Orders-{stage}",
        stage=stage,
        cluster=cluster,
        env=Environment(account=account, region=region),
    )
app.synth()
