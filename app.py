#!/usr/bin/env python3
"""CDK app entry point (cdk.json: ``python3 app.py``).

Context (cdk.json holds the defaults; override with ``-c key=value``):
  topicsFile       the topics spec (default topics.yaml next to this file)
  stage            a stage declared in topics.yaml (its overrides apply; the stack is named
                   <stackName>-<stage>); default: the file's base values
  stackName        default TopicSync
  natGateways      NAT gateways of the new VPC (default 1)
  cloudFormationEndpoint  a CloudFormation interface endpoint for the provisioner (default:
                   true in a VPC the stack creates, false in an existing one)

An existing cluster (topics only; the services too when image.<service> is given), with
every id given so the synth stays offline (no lookups):
  clusterArn       the MSK cluster's ARN; the stack deploys to its account and region
  vpcId            the cluster's VPC
  subnetIds        private subnets (with NAT egress) for the Lambdas and tasks, comma-separated
  availabilityZones  their availability zones, comma-separated
  clusterSecurityGroupId  the cluster's security group (gets ingress on 9098 from the stack)
  clusterType      serverless (default) | provisioned
  bootstrapServers the IAM bootstrap string (default: GetBootstrapBrokers at deploy time)
  publicSubnetIds  public subnets for the gateway's load balancer (only if the gateway deploys)
Without clusterArn, vpcId alone puts a new cluster in that VPC (a lookup: needs AWS
credentials once).

Everything else:
  removalPolicy    retain | destroy: the MSK cluster and the topics (default retain)
  prune            delete topics dropped from the spec (default false)
  topicSyncToken   pin the SyncToken (default: a new one every synth, so every deploy re-syncs)
  image.<service>  container image per service, pinned by digest (repository@sha256:...)
  allowPlaceholderImages  true: a service without image.<service> runs the placeholder nginx
                   (make synth, the demo and the tests); false (default): the synth fails
  healthCheck.<service>  container health check, a shell command (default: the placeholder's)
  user.<service>   run the container as this user ("uid" or "uid:gid"; default: the image's)
  certificateArn   ACM certificate: HTTPS on the gateway + HTTP->HTTPS redirect (default: HTTP
                   only, with a synth warning)
  albLogsBucket    S3 bucket for the gateway load balancer's access logs (default: none)
  alarmEmail       subscribe this address to the alarm topic (default: no subscription)
  driftCheck       schedule of the drift check, e.g. rate(1 day) (default), or off
"""

from __future__ import annotations

import os
import re
import sys
from pathlib import Path
from typing import Any

from aws_cdk import App, Environment, RemovalPolicy, Validations
from cdk_nag import AwsSolutionsChecks, NIST80053R5Checks

from stacks.platform_stack import (
    ALLOW_PLACEHOLDER_IMAGES_CONTEXT,
    DEFAULT_DRIFT_CHECK,
    ExistingCluster,
    PlatformSettings,
    PlatformStack,
)
from topic_sync.exceptions import SpecError
from topic_sync.spec import ClusterType
from topic_sync_cdk.cluster import BOOTSTRAP_SERVERS_RE, ParsedClusterArn
from topic_sync_tools.spec_file import load

APP_DIR = Path(__file__).resolve().parent
IMAGE_CONTEXT_PREFIX = "image."
HEALTH_CHECK_CONTEXT_PREFIX = "healthCheck."
USER_CONTEXT_PREFIX = "user."


def _context_bool(value: Any, default: bool, key: str = "value") -> bool:
    if value is None:
        return default
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text not in ("true", "false"):
        raise SpecError([f"context {key} must be true or false, got {value!r}"])
    return text == "true"


def _prefixed(app: App, prefix: str) -> dict[str, str]:
    """``<prefix><service>`` context keys, as service -> value (empty values ignored)."""
    return {
        key.removeprefix(prefix): str(value)
        for key, value in (app.node.get_all_context() or {}).items()
        if key.startswith(prefix) and value
    }


#: Context keys of an existing cluster: all needed once clusterArn is given.
EXISTING_CLUSTER_REQUIRED = ("vpcId", "subnetIds", "availabilityZones", "clusterSecurityGroupId")
EXISTING_CLUSTER_OPTIONAL = ("clusterType", "bootstrapServers", "publicSubnetIds")
_RESOURCE_ID = {
    "vpcId": re.compile(r"^vpc-(?:[0-9a-f]{8}|[0-9a-f]{17})$"),
    "subnet": re.compile(r"^subnet-(?:[0-9a-f]{8}|[0-9a-f]{17})$"),
    "clusterSecurityGroupId": re.compile(r"^sg-(?:[0-9a-f]{8}|[0-9a-f]{17})$"),
    "zone": re.compile(r"^[a-z]{2}(?:-[a-z]+)+-\d[a-z]$"),
}


def _shown(value: Any) -> str:
    text = str(value)
    return repr(text if len(text) <= 120 else text[:120] + "...")


def _id_list(key: str, value: Any, pattern: re.Pattern[str]) -> tuple[str, ...]:
    """A comma-separated string (``-c``) or a JSON list (cdk.json) of ids."""
    items = value if isinstance(value, list) else str(value).split(",")
    ids = tuple(str(item).strip() for item in items)
    if not ids or not all(ids):
        raise SpecError(
            [f"context {key}: a comma-separated list without empty items, got {_shown(value)}"]
        )
    bad = [item for item in ids if not pattern.match(item)]
    if bad:
        raise SpecError([f"context {key}: {_shown(bad[0])} is not a valid id here"])
    if len(set(ids)) != len(ids):
        raise SpecError([f"context {key}: lists an id twice"])
    return ids


def existing_cluster_from_context(app: App) -> ExistingCluster | None:
    """The existing cluster the context names, or None; SpecError names the bad key."""
    context = app.node.try_get_context
    arn = context("clusterArn")
    if not arn:
        dangling = [
            k for k in EXISTING_CLUSTER_REQUIRED[1:] + EXISTING_CLUSTER_OPTIONAL if context(k)
        ]
        if dangling:
            raise SpecError(
                [f"context {dangling[0]}: only used with clusterArn (an existing cluster)"]
            )
        return None
    try:
        parsed = ParsedClusterArn.parse(str(arn).strip(), source="context clusterArn")
    except ValueError as error:
        raise SpecError([str(error)]) from None
    missing = [key for key in EXISTING_CLUSTER_REQUIRED if not context(key)]
    if missing:
        raise SpecError(
            [f"context {key}: required with clusterArn (an existing cluster)" for key in missing]
        )
    vpc_id = str(context("vpcId")).strip()
    if not _RESOURCE_ID["vpcId"].match(vpc_id):
        raise SpecError([f"context vpcId: not a VPC id (vpc-...), got {_shown(vpc_id)}"])
    security_group = str(context("clusterSecurityGroupId")).strip()
    if not _RESOURCE_ID["clusterSecurityGroupId"].match(security_group):
        raise SpecError(
            [
                "context clusterSecurityGroupId: not a security group id (sg-...), "
                f"got {_shown(security_group)}"
            ]
        )
    subnets = _id_list("subnetIds", context("subnetIds"), _RESOURCE_ID["subnet"])
    zones = _id_list("availabilityZones", context("availabilityZones"), _RESOURCE_ID["zone"])
    foreign = [zone for zone in zones if zone[:-1] != parsed.region]
    if foreign:
        raise SpecError(
            [
                f"context availabilityZones: {foreign[0]} is not in the cluster's region "
                f"{parsed.region}"
            ]
        )
    # The CDK maps subnets to zones in order: the same number per zone.
    if len(subnets) % len(zones):
        raise SpecError(
            [
                f"context subnetIds: {len(subnets)} subnets for {len(zones)} availabilityZones; "
                "give the same number of subnets in each zone, in zone order"
            ]
        )
    public = context("publicSubnetIds")
    public_subnets = _id_list("publicSubnetIds", public, _RESOURCE_ID["subnet"]) if public else ()
    if public_subnets and len(public_subnets) % len(zones):
        raise SpecError(
            [
                f"context publicSubnetIds: {len(public_subnets)} subnets for {len(zones)} "
                "availabilityZones; give the same number in each zone"
            ]
        )
    cluster_type_name = str(context("clusterType") or "serverless").strip().lower()
    if cluster_type_name not in ("serverless", "provisioned"):
        raise SpecError(
            [f"context clusterType: serverless or provisioned, got {_shown(cluster_type_name)}"]
        )
    bootstrap = str(context("bootstrapServers") or "").strip() or None
    if bootstrap is not None and not BOOTSTRAP_SERVERS_RE.match(bootstrap):
        raise SpecError(
            [
                "context bootstrapServers: host:port[,host:port...] (port 9098), "
                f"got {_shown(bootstrap)}"
            ]
        )
    return ExistingCluster(
        cluster_arn=parsed.arn,
        vpc_id=vpc_id,
        subnet_ids=subnets,
        availability_zones=zones,
        security_group_id=security_group,
        cluster_type=ClusterType.PROVISIONED
        if cluster_type_name == "provisioned"
        else ClusterType.SERVERLESS,
        bootstrap_servers=bootstrap,
        public_subnet_ids=public_subnets,
    )


def _drift_check(value: Any) -> str | None:
    text = str(value or DEFAULT_DRIFT_CHECK).strip()
    if text.lower() == "off":
        return None
    if not (text.startswith(("rate(", "cron(")) and text.endswith(")")):
        raise SpecError([f"context driftCheck must be rate(...), cron(...) or off, got {text!r}"])
    return text


def settings_from_context(app: App) -> PlatformSettings:
    context = app.node.try_get_context
    removal = str(context("removalPolicy") or "retain").lower()
    if removal not in ("retain", "destroy"):
        raise SpecError([f"context removalPolicy must be retain or destroy, got {removal!r}"])
    images = _prefixed(app, IMAGE_CONTEXT_PREFIX)
    existing = existing_cluster_from_context(app)
    endpoint = context("cloudFormationEndpoint")
    return PlatformSettings(
        vpc_id=None if existing else (context("vpcId") or None),
        existing_cluster=existing,
        nat_gateways=int(context("natGateways") or 1),
        cloudformation_endpoint=None
        if endpoint is None
        else _context_bool(endpoint, True, "cloudFormationEndpoint"),
        removal_policy=RemovalPolicy.DESTROY if removal == "destroy" else RemovalPolicy.RETAIN,
        prune=_context_bool(context("prune"), False, "prune"),
        images=images,
        allow_placeholder_images=_context_bool(
            context(ALLOW_PLACEHOLDER_IMAGES_CONTEXT), False, ALLOW_PLACEHOLDER_IMAGES_CONTEXT
        ),
        health_checks=_prefixed(app, HEALTH_CHECK_CONTEXT_PREFIX),
        users=_prefixed(app, USER_CONTEXT_PREFIX),
        certificate_arn=context("certificateArn") or None,
        alb_logs_bucket=context("albLogsBucket") or None,
        alarm_email=context("alarmEmail") or None,
        drift_check=_drift_check(context("driftCheck")),
    )


def build(app: App) -> PlatformStack:
    """Everything the app defines; SpecError if topics.yaml or the context is invalid."""
    topics_path = Path(app.node.try_get_context("topicsFile") or "topics.yaml")
    if not topics_path.is_absolute():
        topics_path = APP_DIR / topics_path
    settings = settings_from_context(app)
    existing = settings.existing_cluster
    cluster_type = existing.cluster_type if existing else ClusterType.SERVERLESS
    stage = app.node.try_get_context("stage") or None
    topics_file = load(topics_path, cluster_type=cluster_type, stage=stage)
    if existing is not None and topics_file.stages and not stage:
        # The base values on a cluster that serves a stage could shorten its retention.
        raise SpecError(
            [
                f"context stage: required with clusterArn, as {topics_path.name} declares "
                f"stages ({', '.join(topics_file.stages)}); pick the one this cluster serves"
            ]
        )
    # Env-agnostic unless a VPC lookup needs a concrete account and region; an existing
    # cluster's stack goes where the cluster is.
    env = None
    if existing is not None:
        parsed = ParsedClusterArn.parse(existing.cluster_arn)
        env = Environment(account=parsed.account, region=parsed.region)
    elif settings.vpc_id:
        env = Environment(
            account=os.environ.get("CDK_DEFAULT_ACCOUNT"),
            region=os.environ.get("CDK_DEFAULT_REGION"),
        )
    stack_name = str(app.node.try_get_context("stackName") or "TopicSync")
    if topics_file.stage:
        stack_name = f"{stack_name}-{topics_file.stage}"
    stack = PlatformStack(
        app,
        stack_name,
        topics_file=topics_file,
        settings=settings,
        env=env,
        description=(
            f"topic-sync: Kafka topics on the existing MSK cluster {existing.cluster_arn}"
            if existing
            else "topic-sync: MSK Serverless, its Kafka topics, and the services using them"
        ),
    )
    # cdk-nag v3 is a policy-validation plugin (v2 was an Aspect): findings fail the synth.
    Validations.of(app).add_plugins(
        AwsSolutionsChecks(app, verbose=True, write_suppressions_to_cloud_formation=True),
        NIST80053R5Checks(app, verbose=True, write_suppressions_to_cloud_formation=True),
    )
    return stack


def main() -> None:
    app = App()
    try:
        build(app)
    except SpecError as error:
        sys.exit(f"cdk synth: {error}")
    app.synth()


if __name__ == "__main__":
    main()
