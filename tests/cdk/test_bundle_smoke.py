"""The Lambda bundle is complete: built exactly as synth builds it (but for this machine's
platform), imported in a clean interpreter that sees only the bundle and what the Lambda runtime
provides, and run against the local broker."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
import uuid
from pathlib import Path

import pytest

from tests.support.kafka import LocalKafka, plaintext_admin, wait_for_topic
from topic_sync_cdk.bundling import LambdaPlatform, build_lambda_bundle
from topic_sync_tools.local_invoke import custom_resource_event, local_stack_id

pytestmark = [pytest.mark.integration, pytest.mark.synth]

# What the Lambda Python runtime puts on sys.path besides the function's code: boto3 and its
# dependencies. Everything else the handler imports must come from the bundle.
RUNTIME_PROVIDED = ("boto3", "botocore", "s3transfer", "jmespath", "dateutil", "urllib3", "six.py")

INVOKE = textwrap.dedent(
    """
    import json, sys
    bundle, runtime, event = sys.argv[1], sys.argv[2], json.loads(sys.argv[3])
    sys.path[:0] = [bundle, runtime]  # Lambda: /var/task first, then the runtime's packages

    class Context:
        function_name = "topic-sync-smoke"
        function_version = "$LATEST"
        memory_limit_in_mb = 256
        invoked_function_arn = "arn:aws:lambda:eu-west-1:111122223333:function:topic-sync-smoke"
        aws_request_id = "smoke-request"
        log_group_name = log_stream_name = "smoke"

        def get_remaining_time_in_millis(self):
            return 60_000

    from topic_sync import handler
    assert handler.__file__.startswith(bundle), handler.__file__
    created = handler.on_event(event, Context())
    # The scheduled drift check ships in the same asset: right after the Create, in sync.
    from topic_sync import drift_check
    assert drift_check.__file__.startswith(bundle), drift_check.__file__
    checked = drift_check.handler(event["ResourceProperties"], Context())
    print(json.dumps({"on_event": created, "drift_check": checked}))
    """
)


def _runtime_dir(tmp_path: Path) -> Path:
    runtime = tmp_path / "runtime"
    runtime.mkdir()
    site_packages = Path(next(p for p in sys.path if p.endswith("site-packages")))
    for name in RUNTIME_PROVIDED:
        (runtime / name).symlink_to(site_packages / name)
    return runtime


def test_bundle_creates_a_topic_on_the_local_broker(
    kafka_broker: LocalKafka, tmp_path: Path
) -> None:
    bundle = tmp_path / "bundle"
    build_lambda_bundle(bundle, LambdaPlatform.local())
    assert not list(bundle.rglob("__pycache__"))
    assert not list(bundle.rglob("*.pyc"))
    assert not (bundle / "topic_sync" / "spec_file.py").exists()
    assert not (bundle / "boto3").exists()

    topic = f"smoke-{uuid.uuid4().hex[:12]}"
    event = custom_resource_event(
        "Create",
        {
            "BootstrapServers": kafka_broker.plaintext_bootstrap,
            "Auth": "PLAINTEXT",
            "ClusterType": "PROVISIONED",
            "Topics": [{"Name": topic, "Partitions": "2", "Config": {"retention.ms": "3600000"}}],
            "RemovalPolicy": "RETAIN",
            "Prune": "false",
            "SyncToken": "smoke",
            "TimeoutSeconds": "30",
        },
        stack_id=local_stack_id(),
        logical_id="Topics",
    )
    result = subprocess.run(
        # -S: no site-packages, -E: no PYTHON* variables; the path is only bundle + runtime.
        [
            sys.executable,
            "-S",
            "-E",
            "-c",
            INVOKE,
            str(bundle),
            str(_runtime_dir(tmp_path)),
            json.dumps(event),
        ],
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
        cwd=tmp_path,
        env={"AWS_REGION": "eu-west-1", "PATH": "/usr/bin:/bin"},
    )
    assert result.returncode == 0, result.stdout + result.stderr
    last = json.loads(result.stdout.strip().splitlines()[-1])
    response = last["on_event"]
    assert response["PhysicalResourceId"]
    assert last["drift_check"]["InSync"] is True
    assert '"DriftedTopics":[0.0]' in result.stdout  # its EMF document
    wait_for_topic(plaintext_admin(kafka_broker), topic)
