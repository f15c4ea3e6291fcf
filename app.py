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
  image.<service>  container image per service (default: a placeholder, with a warning)
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any

from aws_cdk import App, Environment, RemovalPolicy, Validations
from cdk_nag import AwsSolutionsChecks

from stacks.platform_stack import PlatformSettings, PlatformStack
from topic_sync.exceptions import SpecError
from topic_sync.spec_file import load

APP_DIR = Path(__file__).resolve().parent
IMAGE_CONTEXT_PREFIX = "image."


def _context_bool(value: Any, default: bool) -> bool:
    if value is None:
        return default
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text not in ("true", "false"):
        raise SpecError([f"context value {value!r} must be true or false"])
    return text == "true"


def settings_from_context(app: App) -> PlatformSettings:
    context = app.node.try_get_context
    removal = str(context("removalPolicy") or "retain").lower()
    if removal not in ("retain", "destroy"):
        raise SpecError([f"context removalPolicy must be retain or destroy, got {removal!r}"])
    images = {}
    for key, value in (app.node.get_all_context() or {}).items():
        if key.startswith(IMAGE_CONTEXT_PREFIX) and value:
            images[key.removeprefix(IMAGE_CONTEXT_PREFIX)] = str(value)
    return PlatformSettings(
        vpc_id=context("vpcId") or None,
        nat_gateways=int(context("natGateways") or 1),
        cloudformation_endpoint=_context_bool(context("cloudFormationEndpoint"), True),
        removal_policy=RemovalPolicy.DESTROY if removal == "destroy" else RemovalPolicy.RETAIN,
        prune=_context_bool(context("prune"), False),
        images=images,
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
        AwsSolutionsChecks(app, verbose=True, write_suppressions_to_cloud_formation=True)
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
