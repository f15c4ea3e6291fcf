"""The app stack: the topics on an MSK cluster (IAM auth) and the ECS services that need them.

Two modes. New cluster (default): a VPC, an MSK Serverless cluster, the topics, the services.
Existing cluster (``ExistingCluster``): the topics on a cluster made elsewhere, in its VPC,
built from ids without lookups; the services only when images are given.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from aws_cdk import Annotations, ArnFormat, CfnOutput, Duration, RemovalPolicy, Stack
from aws_cdk import aws_certificatemanager as acm
from aws_cdk import aws_cloudwatch_actions as cw_actions
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_ecs as ecs
from aws_cdk import aws_ecs_patterns as ecs_patterns
from aws_cdk import aws_elasticloadbalancingv2 as elbv2
from aws_cdk import aws_events as events
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_logs as logs
from aws_cdk import aws_msk as msk
from aws_cdk import aws_sns as sns
from aws_cdk import aws_sns_subscriptions as subscriptions
from aws_cdk import aws_wafv2 as wafv2
from constructs import Construct

from topic_sync.exceptions import SpecError
from topic_sync.spec import ClusterType
from topic_sync_cdk.cluster import KafkaCluster
from topic_sync_cdk.kafka_topics import MSK_IAM_PORT, KafkaTopics
from topic_sync_cdk.nag import acknowledge, acknowledge_cdk_inline_policies
from topic_sync_tools.spec_file import ServiceSpec, TopicsFile

#: The placeholder every service runs until ``-c image.<service>=...`` names its real image:
#: nginx (answers HTTP on port 80, so the gateway's load balancer health check passes), pinned
#: by digest so the bytes cannot change under a deployed task definition. Provenance: this
#: digest was NOT resolved here (no registry access when it was written); it is the value a
#: public pin file records for ``public.ecr.aws/nginx/nginx:stable-alpine`` (resolved
#: 2026-09-09). Before relying on it, re-resolve and update it:
#: ``crane digest public.ecr.aws/nginx/nginx:stable-alpine`` (or
#: ``docker buildx imagetools inspect ...``). A digest that does not exist fails the task's
#: image pull loudly; it never pulls other bytes.
PLACEHOLDER_IMAGE = (
    "public.ecr.aws/nginx/nginx@sha256:"
    "8d32e1ab9a199e9d83b66ada9823585379878433a9b22fa20110418a3e8a0baf"
)
#: Context key that lets a synth/deploy use the placeholder image (make synth, demo, tests).
ALLOW_PLACEHOLDER_IMAGES_CONTEXT = "allowPlaceholderImages"
#: The placeholder's container health check (busybox wget is in the alpine image).
PLACEHOLDER_HEALTH_CHECK = "wget -q -O /dev/null http://127.0.0.1/ || exit 1"
#: Writable scratch for a read-only root filesystem: task-scoped (ephemeral storage) volumes.
#: /tmp for every container; nginx (the placeholder) also writes its caches and its pid file.
SCRATCH_PATHS = ("/tmp",)  # noqa: S108 (a mount point, not a temp file)
PLACEHOLDER_SCRATCH_PATHS = ("/var/cache/nginx", "/run")
HTTPS_PORT = 443
#: TLS 1.3 and 1.2 (ELBSecurityPolicy-TLS13-1-2-2021-06), AWS's recommended listener policy.
GATEWAY_SSL_POLICY = elbv2.SslPolicy.RECOMMENDED_TLS
#: The service that sits behind the internet-facing load balancer.
GATEWAY_SERVICE = "gateway"
GATEWAY_CONTAINER_PORT = 80


#: Default of the ``driftCheck`` context: an EventBridge schedule expression, or ``off``.
DEFAULT_DRIFT_CHECK = "rate(1 day)"
#: AWS managed rule groups on the gateway's web ACL (WAFv2), in priority order.
WAF_MANAGED_RULE_GROUPS = (
    "AWSManagedRulesCommonRuleSet",
    "AWSManagedRulesKnownBadInputsRuleSet",
    "AWSManagedRulesAmazonIpReputationList",
)


@dataclass(frozen=True)
class ExistingCluster:
    """An MSK cluster made elsewhere, and the network it is reachable from (app.py checks the
    ids)."""

    cluster_arn: str
    vpc_id: str
    #: Private subnets with egress (NAT) for the Lambdas and tasks, one or more per zone.
    subnet_ids: tuple[str, ...]
    availability_zones: tuple[str, ...]
    security_group_id: str
    cluster_type: ClusterType = ClusterType.SERVERLESS
    #: None: read with GetBootstrapBrokers at deploy time.
    bootstrap_servers: str | None = None
    #: Public subnets for the gateway's load balancer (needed only when the gateway deploys).
    public_subnet_ids: tuple[str, ...] = ()


@dataclass(frozen=True)
class PlatformSettings:
    """What the stack reads from context (see cdk.json and app.py), with the defaults used there."""

    vpc_id: str | None = None
    #: None: this stack creates its VPC and an MSK Serverless cluster.
    existing_cluster: ExistingCluster | None = None
    nat_gateways: int = 1
    #: None: an endpoint in a VPC this stack creates, none in an existing VPC (whose private
    #: DNS for CloudFormation may already be taken by an endpoint of its own).
    cloudformation_endpoint: bool | None = None
    removal_policy: RemovalPolicy = RemovalPolicy.RETAIN
    prune: bool = False
    images: Mapping[str, str] = field(default_factory=dict)
    #: Without it, a service with no ``images`` entry fails the synth (and so the deploy).
    allow_placeholder_images: bool = False
    #: Service -> shell command for the container health check (CMD-SHELL).
    health_checks: Mapping[str, str] = field(default_factory=dict)
    #: Service -> container user ("uid", "uid:gid"); default: the image's own user.
    users: Mapping[str, str] = field(default_factory=dict)
    #: ACM certificate of the gateway's HTTPS listener; None = HTTP only (a synth warning).
    certificate_arn: str | None = None
    #: S3 bucket (name) for the gateway load balancer's access logs; None = no access logs.
    alb_logs_bucket: str | None = None
    #: E-mail address subscribed to the alarm topic; None = the topic has no subscription.
    alarm_email: str | None = None
    #: Schedule expression of the drift check, e.g. ``rate(1 day)``; None = no drift check.
    drift_check: str | None = DEFAULT_DRIFT_CHECK
    log_retention: logs.RetentionDays = logs.RetentionDays.ONE_MONTH


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
        _refuse_placeholders(topics_file, settings)
        self.settings = settings
        acknowledge_cdk_inline_policies(self)
        acknowledge(
            self,
            "NIST.800.53.R5-CloudWatchLogGroupEncrypted",
            "CloudWatch Logs encrypts every log group at rest with AWS-owned keys; these hold "
            "operational logs only (no message data, no secrets: connection settings are "
            "masked), so a customer managed key would add key-policy coupling, not protection",
        )
        existing = settings.existing_cluster
        self.kafka_cluster: msk.CfnServerlessCluster | None = None
        if existing is not None:
            self.vpc = ec2.Vpc.from_vpc_attributes(
                self,
                "Vpc",
                vpc_id=existing.vpc_id,
                availability_zones=list(existing.availability_zones),
                private_subnet_ids=list(existing.subnet_ids),
                public_subnet_ids=list(existing.public_subnet_ids) or None,
            )
            # Mutable: the stack adds its 9098 ingress rules as separate resources on it.
            self.cluster_security_group = ec2.SecurityGroup.from_security_group_id(
                self, "KafkaSecurityGroup", existing.security_group_id, allow_all_outbound=False
            )
            self.cluster = KafkaCluster(
                self,
                "Cluster",
                cluster_arn=existing.cluster_arn,
                vpc=self.vpc,
                security_group=self.cluster_security_group,
                cluster_type=existing.cluster_type,
                bootstrap_servers=existing.bootstrap_servers,
            )
        else:
            self.vpc = self._vpc(settings)
            self.cluster_security_group = ec2.SecurityGroup(
                self,
                "KafkaSecurityGroup",
                vpc=self.vpc,
                description="MSK Serverless: IAM listener (9098) from the provisioner and services",
                allow_all_outbound=False,
            )
            self.kafka_cluster = self._serverless_cluster(settings)
            self.cluster = KafkaCluster.from_serverless_cluster(
                self,
                "Cluster",
                cluster=self.kafka_cluster,
                vpc=self.vpc,
                security_group=self.cluster_security_group,
                log_retention=settings.log_retention,
            )
        self.bootstrap_servers = self.cluster.bootstrap_servers

        cloudformation_endpoint = None
        wants_endpoint = settings.cloudformation_endpoint
        if wants_endpoint is None:
            wants_endpoint = existing is None
        if wants_endpoint:
            cloudformation_endpoint = self.vpc.add_interface_endpoint(
                "CloudFormationEndpoint",
                service=ec2.InterfaceVpcEndpointAwsService.CLOUDFORMATION,
                subnets=ec2.SubnetSelection(subnet_type=ec2.SubnetType.PRIVATE_WITH_EGRESS),
                open=False,
            )
        self.topics = KafkaTopics(
            self,
            "Topics",
            cluster=self.cluster,
            topics=topics_file.topics,
            removal_policy=settings.removal_policy,
            prune=settings.prune,
            cloudformation_endpoint=cloudformation_endpoint,
            drift_check=settings.drift_check is not None,
            drift_check_schedule=events.Schedule.expression(settings.drift_check)
            if settings.drift_check
            else None,
            log_retention=settings.log_retention,
        )
        self.alarm_topic = self._alarm_topic(settings)
        for alarm in self.topics.alarms:
            alarm.add_alarm_action(cw_actions.SnsAction(self.alarm_topic))

        self.services: dict[str, ecs.FargateService] = {}
        if not deploys_services(settings):
            return
        _require_public_subnets(topics_file, settings)
        self.ecs_cluster = ecs.Cluster(
            self,
            "Services",
            vpc=self.vpc,
            container_insights_v2=ecs.ContainerInsights.ENABLED,
        )
        for service in topics_file.services:
            fargate_service = self._service(service, settings)
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
                # Only the load balancer and the NAT gateway (an Elastic IP) live here: nothing
                # launched in them needs an automatic public IP.
                ec2.SubnetConfiguration(
                    name="Public",
                    subnet_type=ec2.SubnetType.PUBLIC,
                    cidr_mask=24,
                    map_public_ip_on_launch=False,
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
                logs.LogGroup(self, "FlowLogsGroup", retention=settings.log_retention)
            ),
            traffic_type=ec2.FlowLogTrafficType.REJECT,
        )
        for subnet in vpc.public_subnets:
            acknowledge(
                subnet,
                "NIST.800.53.R5-VPCNoUnrestrictedRouteToIGW",
                "a public subnet by definition routes 0.0.0.0/0 to the internet gateway; it holds "
                "only the internet-facing load balancer and the NAT gateway, never tasks",
            )
        return vpc

    def _serverless_cluster(self, settings: PlatformSettings) -> msk.CfnServerlessCluster:
        private_subnets = self.vpc.select_subnets(subnet_type=ec2.SubnetType.PRIVATE_WITH_EGRESS)
        cluster = msk.CfnServerlessCluster(
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
        cluster.apply_removal_policy(settings.removal_policy)
        return cluster

    def _alarm_topic(self, settings: PlatformSettings) -> sns.Topic:
        # A customer managed key: CloudWatch cannot publish to a topic under the AWS managed
        # SNS key, whose policy cannot be changed to let it use the key.
        key = kms.Key(
            self,
            "AlarmTopicKey",
            description="topic-sync: encrypts the alarm topic (CloudWatch may use it)",
            enable_key_rotation=True,
            removal_policy=settings.removal_policy,
        )
        key.grant(
            iam.ServicePrincipal("cloudwatch.amazonaws.com"), "kms:Decrypt", "kms:GenerateDataKey*"
        )
        topic = sns.Topic(
            self,
            "AlarmTopic",
            display_name="topic-sync alarms",
            master_key=key,
            enforce_ssl=True,
        )
        if settings.alarm_email:
            topic.add_subscription(subscriptions.EmailSubscription(settings.alarm_email))
        CfnOutput(
            self,
            "AlarmTopicArn",
            value=topic.topic_arn,
            description="SNS topic of the provisioner-error and drift alarms (subscribe to it)",
        )
        return topic

    def _task_role(self, service: ServiceSpec) -> iam.Role:
        role = iam.Role(
            self,
            f"{service.name}TaskRole",
            assumed_by=iam.ServicePrincipal("ecs-tasks.amazonaws.com"),
            description=f"{service.name}: Kafka data access on its own topics only",
        )
        if service.produces:
            self.topics.grant_produce(role, *service.produces)
        if service.consumes:
            self.topics.grant_consume(
                role, *service.consumes, consumer_group_prefix=consumer_group_prefix(service.name)
            )
        return role

    def _environment(self, service: ServiceSpec) -> dict[str, str]:
        return {
            "KAFKA_BOOTSTRAP_SERVERS": self.bootstrap_servers,
            "KAFKA_SECURITY_PROTOCOL": "SASL_SSL",
            # Every client (Java with aws-msk-iam-auth's IAMOAuthBearerLoginCallbackHandler,
            # Python, JS, Go) speaks OAUTHBEARER; it is what `make rehearse` proves.
            "KAFKA_SASL_MECHANISM": "OAUTHBEARER",
            "AWS_REGION": self.region,
            "KAFKA_TOPICS_PRODUCE": ",".join(service.produces),
            "KAFKA_TOPICS_CONSUME": ",".join(service.consumes),
            "KAFKA_CONSUMER_GROUP_PREFIX": consumer_group_prefix(service.name),
        }

    def _task_definition(
        self,
        service: ServiceSpec,
        settings: PlatformSettings,
        task_role: iam.Role,
        *,
        container_port: int | None,
    ) -> ecs.FargateTaskDefinition:
        image = settings.images.get(service.name)
        placeholder = image is None
        if placeholder:
            Annotations.of(self).add_warning_v2(
                f"topic-sync:placeholderImage:{service.name}",
                f"{service.name}: no image set (context image.{service.name}); "
                f"deploying the placeholder {PLACEHOLDER_IMAGE}",
            )
        task_definition = ecs.FargateTaskDefinition(
            self,
            f"{service.name}Task",
            cpu=256,
            memory_limit_mib=512,
            task_role=task_role,
        )
        health_command = settings.health_checks.get(service.name) or (
            PLACEHOLDER_HEALTH_CHECK if placeholder else None
        )
        if health_command is None:
            Annotations.of(self).add_warning_v2(
                f"topic-sync:noHealthCheck:{service.name}",
                f"{service.name}: no container health check (context healthCheck.{service.name}, "
                "a shell command that exits 0 when healthy)",
            )
        container = task_definition.add_container(
            service.name,
            image=ecs.ContainerImage.from_registry(image or PLACEHOLDER_IMAGE),
            environment=self._environment(service),
            logging=ecs.LogDrivers.aws_logs(
                stream_prefix=service.name,
                log_group=logs.LogGroup(
                    self, f"{service.name}Logs", retention=settings.log_retention
                ),
            ),
            readonly_root_filesystem=True,
            user=settings.users.get(service.name),
            health_check=ecs.HealthCheck(
                command=["CMD-SHELL", health_command],
                interval=Duration.seconds(30),
                timeout=Duration.seconds(5),
                retries=3,
                start_period=Duration.seconds(30),
            )
            if health_command
            else None,
            port_mappings=[ecs.PortMapping(container_port=container_port)]
            if container_port is not None
            else None,
        )
        scratch = SCRATCH_PATHS + (PLACEHOLDER_SCRATCH_PATHS if placeholder else ())
        for path in scratch:
            # No host path on Fargate: a task-scoped volume on the task's ephemeral storage.
            volume = "scratch" + path.replace("/", "-")
            task_definition.add_volume(name=volume)
            container.add_mount_points(
                ecs.MountPoint(container_path=path, source_volume=volume, read_only=False)
            )
        return task_definition

    def _service_security_group(self, service: ServiceSpec) -> ec2.SecurityGroup:
        security_group = ec2.SecurityGroup(
            self,
            f"{service.name}SecurityGroup",
            vpc=self.vpc,
            description=f"{service.name} tasks: MSK on 9098, HTTPS out",
            allow_all_outbound=False,
        )
        # Adds the egress rule here and the matching ingress rule on the cluster's group.
        security_group.connections.allow_to(
            self.cluster_security_group, ec2.Port.tcp(MSK_IAM_PORT), f"{service.name} to MSK"
        )
        # Image pulls (ECR API and its S3 layers, or public ECR), CloudWatch Logs, STS and the
        # other AWS APIs, all through the NAT gateway. Only S3 has a managed prefix list, so
        # HTTPS to any IPv4 address; plain HTTP and every other port stay closed.
        security_group.add_egress_rule(
            ec2.Peer.any_ipv4(), ec2.Port.tcp(HTTPS_PORT), "HTTPS: image pulls, logs, AWS APIs"
        )
        return security_group

    def _service(self, service: ServiceSpec, settings: PlatformSettings) -> ecs.FargateService:
        security_group = self._service_security_group(service)
        task_role = self._task_role(service)
        circuit_breaker = ecs.DeploymentCircuitBreaker(enable=True, rollback=True)
        gateway = service.name == GATEWAY_SERVICE
        task_definition = self._task_definition(
            service,
            settings,
            task_role,
            container_port=GATEWAY_CONTAINER_PORT if gateway else None,
        )
        fargate_service: ecs.FargateService
        if gateway:
            fargate_service = self._gateway(
                service, settings, task_definition, security_group, circuit_breaker
            )
        else:
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

    def _gateway(
        self,
        service: ServiceSpec,
        settings: PlatformSettings,
        task_definition: ecs.FargateTaskDefinition,
        security_group: ec2.SecurityGroup,
        circuit_breaker: ecs.DeploymentCircuitBreaker,
    ) -> ecs.FargateService:
        retain = settings.removal_policy is RemovalPolicy.RETAIN
        load_balancer_security_group = ec2.SecurityGroup(
            self,
            "GatewayLoadBalancerSecurityGroup",
            vpc=self.vpc,
            description="gateway load balancer: HTTP(S) from the internet, to the gateway tasks",
            allow_all_outbound=False,
        )
        load_balancer = elbv2.ApplicationLoadBalancer(
            self,
            "GatewayLoadBalancer",
            vpc=self.vpc,
            internet_facing=True,
            vpc_subnets=ec2.SubnetSelection(subnet_type=ec2.SubnetType.PUBLIC),
            security_group=load_balancer_security_group,
            drop_invalid_header_fields=True,
            # Retained (and protected) by default: its DNS name is what clients know.
            deletion_protection=retain,
        )
        load_balancer.apply_removal_policy(settings.removal_policy)
        if not retain:
            acknowledge(
                load_balancer,
                "NIST.800.53.R5-ELBDeletionProtectionEnabled",
                "removalPolicy=destroy asks for a disposable stack: deletion protection would "
                "make the stack delete fail",
            )
        if settings.alb_logs_bucket:
            # log_access_logs() needs a concrete region; these attributes do not. The bucket's
            # policy must let the region's ELB log delivery write to it (README).
            load_balancer.set_attribute("access_logs.s3.enabled", "true")
            load_balancer.set_attribute("access_logs.s3.bucket", settings.alb_logs_bucket)
            load_balancer.set_attribute("access_logs.s3.prefix", f"{self.stack_name}/gateway")
        else:
            acknowledge(
                load_balancer,
                "NIST.800.53.R5-ELBLoggingEnabled",
                "access logs are opt-in (context albLogsBucket): they need an S3 bucket whose "
                "policy admits the region's ELB log delivery, a per-account choice",
            )
            acknowledge(
                load_balancer,
                "AwsSolutions-ELB2",
                "access logs are opt-in (context albLogsBucket): they need an S3 bucket whose "
                "policy admits the region's ELB log delivery, a per-account choice",
            )
        # HTTPS (with an HTTP->HTTPS redirect) when a certificate is given, else HTTP only.
        https: dict[str, Any] = {}
        if settings.certificate_arn is not None:
            https = {
                "protocol": elbv2.ApplicationProtocol.HTTPS,
                "certificate": acm.Certificate.from_certificate_arn(
                    self, "GatewayCertificate", settings.certificate_arn
                ),
                "ssl_policy": GATEWAY_SSL_POLICY,
                "redirect_http": True,
            }
        gateway = ecs_patterns.ApplicationLoadBalancedFargateService(
            self,
            service.name,
            cluster=self.ecs_cluster,
            service_name=service.name,
            task_definition=task_definition,
            desired_count=1,
            min_healthy_percent=100,
            load_balancer=load_balancer,
            open_listener=True,
            circuit_breaker=circuit_breaker,
            security_groups=[security_group],
            task_subnets=ec2.SubnetSelection(subnet_type=ec2.SubnetType.PRIVATE_WITH_EGRESS),
            **https,
        )
        if https:
            acknowledge(
                load_balancer.node.find_child("PublicRedirectListener"),
                "NIST.800.53.R5-ELBv2ACMCertificateRequired",
                "false positive: this port-80 listener only answers with a redirect to HTTPS "
                "(what ALBHttpToHttpsRedirection asks for); an HTTP listener cannot hold a "
                "certificate, the HTTPS listener has the ACM one",
            )
        else:
            Annotations.of(self).add_warning_v2(
                "topic-sync:gatewayHttpOnly",
                "gateway: no certificate (context certificateArn), so the gateway is HTTP-only: "
                "plain HTTP on port 80 from the internet, no TLS and no HTTP->HTTPS redirect",
            )
            for rule in ("ALBHttpToHttpsRedirection", "ELBv2ACMCertificateRequired"):
                acknowledge(
                    load_balancer,
                    f"NIST.800.53.R5-{rule}",
                    "no certificateArn given: the gateway is HTTP-only by the deployer's choice, "
                    "and the synth warns about it; pass -c certificateArn=... for HTTPS",
                )
        self._web_acl(load_balancer)
        acknowledge(
            load_balancer_security_group,
            "AwsSolutions-EC23",
            "the gateway is the public entry point: its load balancer takes HTTP(S) from "
            "anywhere, the tasks behind it accept traffic only from the load balancer",
        )
        return gateway.service

    def _web_acl(self, load_balancer: elbv2.ApplicationLoadBalancer) -> wafv2.CfnWebACL:
        def visibility(name: str) -> wafv2.CfnWebACL.VisibilityConfigProperty:
            return wafv2.CfnWebACL.VisibilityConfigProperty(
                cloud_watch_metrics_enabled=True, metric_name=name, sampled_requests_enabled=True
            )

        web_acl = wafv2.CfnWebACL(
            self,
            "GatewayWebAcl",
            scope="REGIONAL",
            description="topic-sync gateway: AWS managed rule groups",
            default_action=wafv2.CfnWebACL.DefaultActionProperty(allow={}),
            visibility_config=visibility(f"{self.stack_name}-gateway"),
            rules=[
                wafv2.CfnWebACL.RuleProperty(
                    name=group,
                    priority=priority,
                    override_action=wafv2.CfnWebACL.OverrideActionProperty(none={}),
                    statement=wafv2.CfnWebACL.StatementProperty(
                        managed_rule_group_statement=wafv2.CfnWebACL.ManagedRuleGroupStatementProperty(
                            vendor_name="AWS", name=group
                        )
                    ),
                    visibility_config=visibility(group),
                )
                for priority, group in enumerate(WAF_MANAGED_RULE_GROUPS)
            ],
        )
        wafv2.CfnWebACLAssociation(
            self,
            "GatewayWebAclAssociation",
            resource_arn=load_balancer.load_balancer_arn,
            web_acl_arn=web_acl.attr_arn,
        )
        # WAF logs only to log groups named aws-waf-logs-*, by ARN without the trailing ":*".
        waf_logs = logs.LogGroup(
            self,
            "GatewayWebAclLogs",
            log_group_name=f"aws-waf-logs-{self.stack_name}-gateway",
            retention=self.settings.log_retention,
            removal_policy=self.settings.removal_policy,
        )
        wafv2.CfnLoggingConfiguration(
            self,
            "GatewayWebAclLogging",
            resource_arn=web_acl.attr_arn,
            log_destination_configs=[
                self.format_arn(
                    service="logs",
                    resource="log-group",
                    resource_name=waf_logs.log_group_name,
                    arn_format=ArnFormat.COLON_RESOURCE_NAME,
                )
            ],
        )
        return web_acl


def consumer_group_prefix(service_name: str) -> str:
    """``<service>.``: service names cannot contain '.', so no two services' prefixes overlap."""
    return f"{service_name}."


def deploys_services(settings: PlatformSettings) -> bool:
    """A new cluster comes with its services; an existing one only when images are given
    (or placeholders allowed): a team adding topics to its cluster may run its services
    elsewhere."""
    if settings.existing_cluster is None:
        return True
    return bool(settings.images) or settings.allow_placeholder_images


def _require_public_subnets(topics_file: TopicsFile, settings: PlatformSettings) -> None:
    existing = settings.existing_cluster
    gateway = any(service.name == GATEWAY_SERVICE for service in topics_file.services)
    if existing is not None and gateway and not existing.public_subnet_ids:
        raise SpecError(
            [
                f"context publicSubnetIds: required to deploy the {GATEWAY_SERVICE} service "
                "into an existing VPC (its internet-facing load balancer lives there)"
            ]
        )


def _refuse_placeholders(topics_file: TopicsFile, settings: PlatformSettings) -> None:
    if not deploys_services(settings):
        return
    missing = [s.name for s in topics_file.services if s.name not in settings.images]
    if missing and not settings.allow_placeholder_images:
        raise SpecError(
            [
                f"no image for {', '.join(missing)}: set -c "
                "image.<service>=<repository>@sha256:... per service, or -c "
                f"{ALLOW_PLACEHOLDER_IMAGES_CONTEXT}=true to deploy the "
                "placeholder nginx (never for production)"
            ]
        )
