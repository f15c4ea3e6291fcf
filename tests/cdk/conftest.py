"""The ONE synthesis of the app shared by every tests/cdk test (session scope).

The app is built in-process exactly as ``app.py`` builds it, with cdk.json's context (feature
flags included) and a pinned SyncToken, so two runs give the same template.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

# jsii prints a banner for Node 20 on every start; it is noise in test output.
os.environ.setdefault("JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION", "1")
os.environ.setdefault("JSII_SILENCE_WARNING_DEPRECATED_NODE_VERSION", "1")

from aws_cdk import App, Stack
from aws_cdk.assertions import Template

REPO_ROOT = Path(__file__).resolve().parents[2]
PINNED_SYNC_TOKEN = "pinned-by-tests"
#: The shared synth is the production-shaped configuration: HTTPS with a certificate, access
#: logs, an alarm e-mail. The HTTP-only default is what `make synth` (test_make_synth) covers.
CERTIFICATE_ARN = (
    "arn:aws:acm:eu-west-1:111122223333:certificate/0f0e0d0c-0b0a-0908-0706-050403020100"
)
ALB_LOGS_BUCKET = "topic-sync-alb-logs-111122223333"
ALARM_EMAIL = "kafka-oncall@example.com"
#: One service with its real image (the others keep the placeholder): own health check, non-root.
REAL_IMAGE_SERVICE = "core-service"
REAL_IMAGE = "111122223333.dkr.ecr.eu-west-1.amazonaws.com/core-service@sha256:" + "ab" * 32
REAL_IMAGE_HEALTH_CHECK = "curl -fsS http://127.0.0.1:8080/health || exit 1"
REAL_IMAGE_USER = "10001:10001"
APP_CONTEXT = {
    "allowPlaceholderImages": "true",
    "certificateArn": CERTIFICATE_ARN,
    "albLogsBucket": ALB_LOGS_BUCKET,
    "alarmEmail": ALARM_EMAIL,
    f"image.{REAL_IMAGE_SERVICE}": REAL_IMAGE,
    f"healthCheck.{REAL_IMAGE_SERVICE}": REAL_IMAGE_HEALTH_CHECK,
    f"user.{REAL_IMAGE_SERVICE}": REAL_IMAGE_USER,
}


def cdk_json_context(**overrides: Any) -> dict[str, Any]:
    """cdk.json's context (what `npx cdk synth` passes to the app) plus ``overrides``."""
    context: dict[str, Any] = json.loads((REPO_ROOT / "cdk.json").read_text())["context"]
    context["topicSyncToken"] = PINNED_SYNC_TOKEN
    context.update(overrides)
    return context


@dataclass(frozen=True)
class SynthesizedApp:
    stack: Stack
    template: Template
    template_json: Mapping[str, Any]
    outdir: Path

    def resources(self, resource_type: str) -> dict[str, Any]:
        return {
            logical_id: resource
            for logical_id, resource in self.template_json["Resources"].items()
            if resource["Type"] == resource_type
        }


@pytest.fixture(scope="session")
def synthesized_app(tmp_path_factory: pytest.TempPathFactory) -> SynthesizedApp:
    import app as cdk_app  # the real entry point's build(), nag plugin included

    outdir = tmp_path_factory.mktemp("cdk.out")
    app = App(context=cdk_json_context(**APP_CONTEXT), outdir=str(outdir))
    stack = cdk_app.build(app)
    app.synth()  # raises if cdk-nag reports an unacknowledged finding
    template_json = json.loads((outdir / f"{stack.stack_name}.template.json").read_text())
    return SynthesizedApp(stack, Template.from_json(template_json), template_json, outdir)


def run_app(tmp_path: Path, **context: Any) -> subprocess.CompletedProcess[str]:
    """``python app.py`` as ``cdk synth`` runs it (context in CDK_CONTEXT_JSON), in a subprocess:
    for what the entry point prints and how it exits."""
    env = {
        **os.environ,
        "CDK_CONTEXT_JSON": json.dumps(context),
        "CDK_OUTDIR": str(tmp_path / "cdk.out"),
        "JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION": "20",
    }
    return subprocess.run(
        [sys.executable, str(REPO_ROOT / "app.py")],
        cwd=REPO_ROOT,
        env=env,
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )
