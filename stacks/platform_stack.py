"""The app stack: VPC, MSK Serverless (IAM auth), the topics, and ECS services that need them."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from aws_cdk import Annotations, RemovalPolicy, Stack
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_ecs as ecs
from aws_cdk import aws_ecs_patterns as ecs_patterns
from aws_cdk import aws_iam as iam
from aws_cdk import aws_logs as logs
from aws_cdk import aws_msk as msk
from aws_cdk import custom_resources as cr
from constructs import Construct

from stacks.kafka_topics import MSK_IAM_PORT, ClusterArnParts, KafkaTopics
from stacks.nag import AWS_LAMBDA_BASIC_EXECUTION_ROLE, acknowledge, iam5_resource_finding
from topic_sync.spec_file import ServiceSpec, TopicsFile

#: Runs and answers HTTP on port 80, so the gateway's load balancer health check passes.
PLACEHOLDER_IMAGE = "public.ecr.aws/nginx/nginx:stable-alpine"
#: The service that sits behind the internet-facing load balancer.
GATEWAY_SERVICE = "gateway"
GATEWAY_CONTAINER_PORT = 80
#: Construct id aws-cdk-lib gives the one Lambda behind every AwsCustomResource of a stack.
AWS_CUSTOM_RESOURCE_SINGLETON_ID = "AWS679f53fac002430cb0da5b7982bd2287"


@dataclass(frozen=True)
class PlatformSettings:
    """What the stack reads from context (see cdk.json), with the defaults used there."""

    vpc_id: str | None = None
    nat_gateways: int = 1
    cloudformation_endpoint: bool = True
    removal_policy: RemovalPolicy = RemovalPolicy.RETAIN
    prune: bool = False
    images: Mapping[str, str] = field(default_factory=dict)


class PlatformStack(Stack):
    """Everything ``npx cdk deploy`` stands up, in dependency order."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        topics_file: TopicsFile,
        settings: PlatformSettings,
        **kwargs: object,
    ) -> None:
        super().__init__(scope, construct_id, **kwargs)  # type: ignore[arg-type]
        self.vpc = self._vpc(settings)
        self.cluster_security_group = ec2.SecurityGroup(
            self,
            "KafkaSecurityGroup",
            vpc=self.vpc,
            description="MSK Serverless: IAM listener (9098) from the provisioner and services",
            allow_all_outbound=False,
        )
        private_subnets = self.vpc.select_subnets(subnet_type=ec2.SubnetType.PRIVATE_WITH_EGRESS)
        self.kafka_cluster = msk.CfnServerlessCluster(
            self,
            "Kafka",
            cluster_name=self.stack_name,
            client_authentication=msk.CfnServerlessCluster.ClientAuthenticationProperty(
                sasl=msk.CfnServerlessCluster.SaslProperty(
                    iam=msk.CfnServerlessCluster.IamProperty(enabled=True)
                )
            ),
            vpc_configs=[
                msk.CfnServerlessCluster.VpcConfigProperty(
                    subnet_ids=private_subnets.subnet_ids,
                    security_groups=[self.cluster_security_group.security_group_id],
                )
            ],
        )
        self.kafka_cluster.apply_removal_policy(settings.removal_policy)
        cluster_arn = self.kafka_cluster.attr_arn
        self.bootstrap_servers = self._bootstrap_servers(cluster_arn)

        cloudformation_endpoint = None
        if settings.cloudformation_endpoint:
            cloudformation_endpoint = self.vpc.add_interface_endpoint(
                "CloudFormationEndpoint",
                service=ec2.InterfaceVpcEndpointAwsService.CLOUDFORMATION,
                subnets=ec2.SubnetSelection(subnet_type=ec2.SubnetType.PRIVATE_WITH_EGRESS),
                open=False,
            )
        self.topics = KafkaTopics(
            self,
            "Topics",
            cluster_arn=cluster_arn,
            bootstrap_servers=self.bootstrap_servers,
            vpc=self.vpc,
            cluster_security_group=self.cluster_security_group,
            topics=topics_file.topics,
            removal_policy=settings.removal_policy,
            prune=settings.prune,
            cloudformation_endpoint=cloudformation_endpoint,
        )

        self.ecs_cluster = ecs.Cluster(
            self,
            "Services",
            vpc=self.vpc,
            container_insights_v2=ecs.ContainerInsights.ENABLED,
        )
        arns = ClusterArnParts(self, cluster_arn)
        self.services: dict[str, ecs.FargateService] = {}
        for service in topics_file.services:
            fargate_service = self._service(service, arns, settings.images.get(service.name))
            # Roll out only once the topics it writes to and reads from exist.
            fargate_service.node.add_dependency(self.topics.resource)
            self.services[service.name] = fargate_service

    def _vpc(self, settings: PlatformSettings) -> ec2.IVpc:
        if settings.vpc_id:
            # A context lookup: needs credentials once, then cdk.context.json answers it.
            return ec2.Vpc.from_lookup(self, "Vpc", vpc_id=settings.vpc_id)
        vpc = ec2.Vpc(
            self,
            "Vpc",
            ip_addresses=ec2.IpAddresses.cidr("10.40.0.0/16"),
            max_azs=2,
            # One NAT gateway (image pulls, logs); raise natGateways for per-AZ egress.
            nat_gateways=settings.nat_gateways,
            subnet_configuration=[
                ec2.SubnetConfiguration(
                    name="Public", subnet_type=ec2.SubnetType.PUBLIC, cidr_mask=24
                ),
                # /20: room for Fargate task and Lambda ENIs (one IP each) as services scale.
                ec2.SubnetConfiguration(
                    name="Private", subnet_type=ec2.SubnetType.PRIVATE_WITH_EGRESS, cidr_mask=20
                ),
            ],
        )
        vpc.add_flow_log(
            "FlowLogs",
            destination=ec2.FlowLogDestination.to_cloud_watch_logs(
                logs.LogGroup(self, "FlowLogsGroup", retention=logs.RetentionDays.ONE_MONTH)
            ),
            traffic_type=ec2.FlowLogTrafficType.REJECT,
        )
        return vpc

    def _bootstrap_servers(self, cluster_arn: str) -> str:
        # CloudFormation only exposes the cluster ARN; the bootstrap string needs an API call.
        get_bootstrap_brokers = cr.AwsSdkCall(
            service="Kafka",
            action="getBootstrapBrokers",
            parameters={"ClusterArn": cluster_arn},
            physical_resource_id=cr.PhysicalResourceId.of(cluster_arn),
            output_paths=["BootstrapBrokerStringSaslIam"],
        )
        brokers = cr.AwsCustomResource(
            self,
            "BootstrapBrokers",
            on_create=get_bootstrap_brokers,
            on_update=get_bootstrap_brokers,
            policy=cr.AwsCustomResourcePolicy.from_sdk_calls(resources=[cluster_arn]),
            # The SDK in the Lambda runtime has GetBootstrapBrokers; no npm install at deploy time.
            install_latest_aws_sdk=False,
            log_group=logs.LogGroup(
                self, "BootstrapBrokersLogs", retention=logs.RetentionDays.ONE_MONTH
            ),
        )
        acknowledge(
            self.node.find_child(AWS_CUSTOM_RESOURCE_SINGLETON_ID),
            f"AwsSolutions-IAM4[{AWS_LAMBDA_BASIC_EXECUTION_ROLE}]",
            "CDK AwsCustomResource singleton Lambda: the AWS managed policy only lets it write "
            "its logs; its API permission is GetBootstrapBrokers on this cluster only",
        )
        return brokers.get_response_field("BootstrapBrokerStringSaslIam")

    def _task_role(self, service: ServiceSpec, arns: ClusterArnParts) -> iam.Role:
        role = iam.Role(
            self,
            f"{service.name}TaskRole",
            assumed_by=iam.ServicePrincipal("ecs-tasks.amazonaws.com"),
            description=f"{service.name}: Kafka data access on its own topics only",
        )
        cluster_actions = ["kafka-cluster:Connect", "kafka-cluster:DescribeCluster"]
        if service.produces:
            # Kafka >= 3.0 producers are idempotent by default; MSK checks this on the cluster.
            cluster_actions.append("kafka-cluster:WriteDataIdempotently")
        role.add_to_policy(
            iam.PolicyStatement(actions=cluster_actions, resources=[arns.cluster_arn])
        )
        if service.produces:
            role.add_to_policy(
                iam.PolicyStatement(
                    actions=["kafka-cluster:DescribeTopic", "kafka-cluster:WriteData"],
                    resources=[arns.topic_arn(name) for name in service.produces],
                )
            )
        if service.consumes:
            group_arn = arns.group_arn(f"{service.name}*")
            role.add_to_policy(
                iam.PolicyStatement(
                    actions=["kafka-cluster:DescribeTopic", "kafka-cluster:ReadData"],
                    resources=[arns.topic_arn(name) for name in service.consumes],
                )
            )
            role.add_to_policy(
                iam.PolicyStatement(
                    actions=["kafka-cluster:DescribeGroup", "kafka-cluster:AlterGroup"],
                    resources=[group_arn],
                )
            )
            acknowledge(
                role,
                iam5_resource_finding(self, group_arn),
                f"{service.name} names its consumer groups '{service.name}*' "
                "(KAFKA_CONSUMER_GROUP_PREFIX); the wildcard covers only those groups",
            )
        return role

    def _environment(self, service: ServiceSpec) -> dict[str, str]:
        return {
            "KAFKA_BOOTSTRAP_SERVERS": self.bootstrap_servers,
            "KAFKA_SECURITY_PROTOCOL": "SASL_SSL",
            "KAFKA_SASL_MECHANISM": "OAUTHBEARER",
            # Java clients (aws-msk-iam-auth) use AWS_MSK_IAM over SASL_SSL instead.
            "KAFKA_SASL_JAVA_MECHANISM": "AWS_MSK_IAM",
            "AWS_REGION": self.region,
            "KAFKA_TOPICS_PRODUCE": ",".join(service.produces),
            "KAFKA_TOPICS_CONSUME": ",".join(service.consumes),
            "KAFKA_CONSUMER_GROUP_PREFIX": service.name,
        }

    def _image(self, service: ServiceSpec, image: str | None) -> ecs.ContainerImage:
        if image is None:
            Annotations.of(self).add_warning_v2(
                f"topic-sync:placeholderImage:{service.name}",
                f"{service.name}: no image set (context image.{service.name}); "
                f"deploying the placeholder {PLACEHOLDER_IMAGE}",
            )
            image = PLACEHOLDER_IMAGE
        return ecs.ContainerImage.from_registry(image)

    def _service(
        self, service: ServiceSpec, arns: ClusterArnParts, image: str | None
    ) -> ecs.FargateService:
        security_group = ec2.SecurityGroup(
            self,
            f"{service.name}SecurityGroup",
            vpc=self.vpc,
            description=f"{service.name} tasks",
            # Image pulls, logs and AWS APIs through the NAT gateway.
            allow_all_outbound=True,
        )
        self.cluster_security_group.connections.allow_from(
            security_group, ec2.Port.tcp(MSK_IAM_PORT), f"{service.name} to MSK"
        )
        task_role = self._task_role(service, arns)
        log_driver = ecs.LogDrivers.aws_logs(
            stream_prefix=service.name,
            log_group=logs.LogGroup(
                self, f"{service.name}Logs", retention=logs.RetentionDays.ONE_MONTH
            ),
        )
        circuit_breaker = ecs.DeploymentCircuitBreaker(enable=True, rollback=True)
        fargate_service: ecs.FargateService
        if service.name == GATEWAY_SERVICE:
            gateway = ecs_patterns.ApplicationLoadBalancedFargateService(
                self,
                service.name,
                cluster=self.ecs_cluster,
                service_name=service.name,
                cpu=256,
                memory_limit_mib=512,
                desired_count=1,
                min_healthy_percent=100,
                public_load_balancer=True,
                open_listener=True,
                circuit_breaker=circuit_breaker,
                security_groups=[security_group],
                task_subnets=ec2.SubnetSelection(subnet_type=ec2.SubnetType.PRIVATE_WITH_EGRESS),
                task_image_options=ecs_patterns.ApplicationLoadBalancedTaskImageOptions(
                    image=self._image(service, image),
                    container_port=GATEWAY_CONTAINER_PORT,
                    environment=self._environment(service),
                    task_role=task_role,
                    log_driver=log_driver,
                ),
            )
            self._suppress_gateway_findings(gateway)
            fargate_service = gateway.service
        else:
            task_definition = ecs.FargateTaskDefinition(
                self,
                f"{service.name}Task",
                cpu=256,
                memory_limit_mib=512,
                task_role=task_role,
            )
            task_definition.add_container(
                service.name,
                image=self._image(service, image),
                environment=self._environment(service),
                logging=log_driver,
            )
            fargate_service = ecs.FargateService(
                self,
                service.name,
                cluster=self.ecs_cluster,
                service_name=service.name,
                task_definition=task_definition,
                desired_count=1,
                min_healthy_percent=100,
                circuit_breaker=circuit_breaker,
                security_groups=[security_group],
                vpc_subnets=ec2.SubnetSelection(subnet_type=ec2.SubnetType.PRIVATE_WITH_EGRESS),
            )
        acknowledge(
            fargate_service.task_definition,
            "AwsSolutions-ECS2",
            "the environment holds only non-secret connection settings and topic names; Kafka "
            "auth is IAM through the task role, so there are no secrets to inject",
        )
        return fargate_service

    def _suppress_gateway_findings(
        self, gateway: ecs_patterns.ApplicationLoadBalancedFargateService
    ) -> None:
        acknowledge(
            gateway.load_balancer,
            "AwsSolutions-EC23",
            "the gateway is the public entry point: its load balancer takes HTTP from anywhere, "
            "the tasks behind it accept traffic only from the load balancer",
        )
        acknowledge(
            gateway.load_balancer,
            "AwsSolutions-ELB2",
            "access logs need an S3 bucket whose policy names the region's ELB log delivery "
            "account; that is a per-deployment choice this env-agnostic stack leaves open",
        )
