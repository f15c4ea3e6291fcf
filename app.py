#!/usr/bin/env python3
"""CDK app entry point (cdk.json: ``python3 app.py``).

Context (cdk.json holds the defaults; override with ``-c key=value``):
  topicsFile       the topics spec (default topics.yaml next to this file)
  stackName        default TopicSync
  vpcId            use an existing VPC (a lookup: needs AWS credentials once) instead of a new one
  natGateways      NAT gateways of the new VPC (default 1)
  cloudFormationEndpoint  create a CloudFormation interface endpoint for the provisioner (true)
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
import sys
from pathlib import Path
from typing import Any

from aws_cdk import App, Environment, RemovalPolicy, Validations
from cdk_nag import AwsSolutionsChecks, NIST80053R5Checks

from stacks.platform_stack import (
    ALLOW_PLACEHOLDER_IMAGES_CONTEXT,
    DEFAULT_DRIFT_CHECK,
    PlatformSettings,
    PlatformStack,
)
from topic_sync.exceptions import SpecError
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
    return PlatformSettings(
        vpc_id=context("vpcId") or None,
        nat_gateways=int(context("natGateways") or 1),
        cloudformation_endpoint=_context_bool(
            context("cloudFormationEndpoint"), True, "cloudFormationEndpoint"
        ),
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
    topics_file = load(topics_path)
    settings = settings_from_context(app)
    # Env-agnostic unless a VPC lookup needs a concrete account and region.
    env = None
    if settings.vpc_id:
        env = Environment(
            account=os.environ.get("CDK_DEFAULT_ACCOUNT"),
            region=os.environ.get("CDK_DEFAULT_REGION"),
        )
    stack = PlatformStack(
        app,
        str(app.node.try_get_context("stackName") or "TopicSync"),
        topics_file=topics_file,
        settings=settings,
        env=env,
        description="topic-sync: MSK Serverless, its Kafka topics, and the services using them",
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
