"""`make synth` (the pinned `npx cdk synth` with the venv on PATH): offline, no AWS credentials."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.cdk.conftest import REPO_ROOT, SynthesizedApp

pytestmark = pytest.mark.synth


@pytest.mark.skipif(shutil.which("npx") is None, reason="needs node/npx (make setup)")
def test_make_synth_works_offline_without_credentials(
    synthesized_app: SynthesizedApp,  # warms the Lambda dependency cache first
    tmp_path: Path,
) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    env.update(
        {
            # Every AWS endpoint and registry unreachable: any network use fails the synth.
            "HTTPS_PROXY": "http://127.0.0.1:9",
            "HTTP_PROXY": "http://127.0.0.1:9",
            "NO_PROXY": "",
            "AWS_EC2_METADATA_DISABLED": "true",
            "AWS_SHARED_CREDENTIALS_FILE": str(tmp_path / "none"),
            "AWS_CONFIG_FILE": str(tmp_path / "none"),
            "CDK_DISABLE_VERSION_CHECK": "1",
        }
    )
    result = subprocess.run(
        # -o: treat the setup stamps as up to date; this tests synth, not `make setup`.
        [
            "make",
            "--no-print-directory",
            "-o",
            ".venv/.installed",
            "-o",
            "node_modules/.installed",
            "synth",
        ],
        cwd=REPO_ROOT,
        env=env,
        capture_output=True,
        text=True,
        check=False,
        timeout=300,
    )
    # Its speed is measured by `make bench` (scenario 5), not asserted here.
    assert result.returncode == 0, result.stdout + result.stderr
    template = json.loads((REPO_ROOT / "cdk.out" / "TopicSync.template.json").read_text())
    kinds = {resource["Type"] for resource in template["Resources"].values()}
    assert {"Custom::KafkaTopics", "AWS::MSK::ServerlessCluster", "AWS::ECS::Service"} <= kinds
    # cdk.json's defaults (no certificate, no access logs): both nag packs pass, with the
    # deployer's opt-outs acknowledged, and the synth says the gateway is HTTP-only.
    output = result.stdout + result.stderr
    assert "the gateway is HTTP-only" in output
    listeners = [
        r["Properties"]
        for r in template["Resources"].values()
        if r["Type"] == "AWS::ElasticLoadBalancingV2::Listener"
    ]
    assert [(listener["Port"], listener["Protocol"]) for listener in listeners] == [(80, "HTTP")]
    (load_balancer,) = (
        r
        for r in template["Resources"].values()
        if r["Type"] == "AWS::ElasticLoadBalancingV2::LoadBalancer"
    )
    acknowledged = {
        rule["id"] for rule in load_balancer["Metadata"]["cdk_nag"]["rules_to_suppress"]
    }
    assert {
        "NIST.800.53.R5-ALBHttpToHttpsRedirection",
        "NIST.800.53.R5-ELBv2ACMCertificateRequired",
        "NIST.800.53.R5-ELBLoggingEnabled",
        "AwsSolutions-ELB2",
    } <= acknowledged
