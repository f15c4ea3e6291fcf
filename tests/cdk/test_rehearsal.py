"""`make rehearse`, driven as `make test` runs it: the synthesized stack's provider framework,
provisioner bundle and IAM policies against a dedicated local broker.

The authorization checks need scripts/local-kafka to enforce IAM policies
(LOCAL_KAFKA_IAM_POLICIES, shipped with kafka/default-iam-policies.json); without it they are
skipped and the lifecycle runs against the ACL-authorized broker.
"""

from __future__ import annotations

import io
import json
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest

from rehearsal import aws_emulator, framework, response_receiver
from rehearsal.broker import supports_iam_policies
from rehearsal.lambda_runner import PythonFunction, runtime_packages_dir
from rehearsal.policies import PROVISIONER
from rehearsal.report import Report
from rehearsal.run import App, Options, Stack, rehearse
from rehearsal.template import FakeEnvironment, Resolver
from tests.cdk.conftest import REPO_ROOT, SynthesizedApp
from topic_sync_tools.spec_file import load

pytestmark = [pytest.mark.integration, pytest.mark.synth]

needs_authorizer = pytest.mark.skipif(
    not supports_iam_policies(),
    reason="scripts/local-kafka does not enforce IAM policies yet (LOCAL_KAFKA_IAM_POLICIES; "
    "kafka/default-iam-policies.json is missing): the issue 10 authorizer is not merged",
)
LIFECYCLE = (
    "framework Create",
    "framework Update",
    "framework refused Update",
    "framework rollback Update",
    "framework no-op re-sync",
    "framework Delete",
)
SPEC = load(REPO_ROOT / "topics.yaml")


def lines_of(output: str) -> dict[str, str]:
    """check name -> its report line. A service's checks are named "<service>: <check>"."""
    services = {s.name for s in SPEC.services}
    checks = {}
    for line in output.splitlines():
        if line.startswith(("PASS  ", "FAIL  ")):
            parts = line[6:].split(": ", 2)
            name = ": ".join(parts[:2]) if parts[0] in services and len(parts) > 2 else parts[0]
            checks[name] = line
    return checks


@pytest.fixture(scope="module")
def make_rehearse(
    synthesized_app: SynthesizedApp, tmp_path_factory: pytest.TempPathFactory
) -> subprocess.CompletedProcess[str]:
    """`python -m rehearsal` (what `make rehearse` runs) on the session's synthesized app."""
    return subprocess.run(
        [
            sys.executable,
            "-m",
            "rehearsal",
            "--cdk-out",
            str(synthesized_app.outdir),
            "--topics",
            str(REPO_ROOT / "topics.yaml"),
            "--work-dir",
            str(tmp_path_factory.mktemp("rehearsal")),
        ],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=240,
        check=False,
    )


def test_the_report_is_one_line_per_check_and_a_count(
    make_rehearse: subprocess.CompletedProcess[str],
) -> None:
    output = make_rehearse.stdout
    last = output.strip().splitlines()[-1]
    checks = lines_of(output)
    failed = sum(line.startswith("FAIL") for line in checks.values())
    assert last == f"{len(checks) - failed} passed, {failed} failed", output
    assert (make_rehearse.returncode == 0) == (failed == 0), output + make_rehearse.stderr


def test_the_lifecycle_runs_through_the_provider_framework(
    make_rehearse: subprocess.CompletedProcess[str],
) -> None:
    output = make_rehearse.stdout
    checks = lines_of(output)
    for name in ("template", "bundle", "broker", *LIFECYCLE):
        assert checks.get(name, "").startswith("PASS"), f"{name}:\n{output}\n{make_rehearse.stderr}"
    assert "FAILED via X-Amz-Function-Error" in checks["framework refused Update"]
    assert "partitions cannot decrease" in checks["framework refused Update"]
    assert "under Node v24." in output


@needs_authorizer
def test_every_service_gets_what_topics_yaml_grants_and_nothing_else(
    make_rehearse: subprocess.CompletedProcess[str],
) -> None:
    output = make_rehearse.stdout
    checks = lines_of(output)
    assert make_rehearse.returncode == 0, output + make_rehearse.stderr
    assert "authorizing with the template's IAM policies" in checks["broker"]
    for service in SPEC.services:
        mine = [name for name in checks if name.startswith(f"{service.name}: ")]
        allowed = len(service.produces) + len(service.consumes)
        assert sum("allowed" in checks[name] for name in mine) == allowed, output
        assert sum(": denied (" in checks[name] for name in mine) >= 3, output


# ---- prove it can fail ---------------------------------------------------------------------


def _drop_action(identity: str, action: str) -> Any:
    def edit(document: dict[str, Any]) -> dict[str, Any]:
        for policy in document["identities"][identity]["policies"]:
            for statement in policy["Statement"]:
                actions = statement["Action"]
                if isinstance(actions, list) and action in actions:
                    actions.remove(action)
        return document

    return edit


def _retarget(identity: str, topic: str, wrong: str) -> Any:
    def edit(document: dict[str, Any]) -> dict[str, Any]:
        text = json.dumps(document["identities"][identity])
        document["identities"][identity] = json.loads(text.replace(f'/{topic}"', f'/{wrong}"'))
        return document

    return edit


@needs_authorizer
def test_a_provisioner_without_alter_topic_dynamic_configuration_fails_naming_it(
    synthesized_app: SynthesizedApp, tmp_path: Path
) -> None:
    action = "kafka-cluster:AlterTopicDynamicConfiguration"
    out = io.StringIO()
    report = rehearse(
        Options(
            synthesized_app.outdir,
            REPO_ROOT / "topics.yaml",
            tmp_path,
            edit_policies=_drop_action(PROVISIONER, action),
            access=False,
        ),
        out=out,
    )
    failures = {check.name: check.detail for check in report.failures()}
    assert "framework Update" in failures, out.getvalue()
    message = failures["framework Update"]
    retuned = SPEC.topics[1].name  # the topic whose config the Update changes
    assert PROVISIONER in message
    assert action.split(":")[1] in message, message
    assert f"/{retuned}" in message, message
    assert ":topic/" in message, message


@needs_authorizer
def test_a_service_granted_the_wrong_topic_fails_naming_it(
    synthesized_app: SynthesizedApp, tmp_path: Path
) -> None:
    service = SPEC.services[0]
    topic = service.produces[0]
    out = io.StringIO()
    report = rehearse(
        Options(
            synthesized_app.outdir,
            REPO_ROOT / "topics.yaml",
            tmp_path,
            edit_policies=_retarget(service.name, topic, f"{topic}.typo"),
            lifecycle=False,
            services=[service.name],
        ),
        out=out,
    )
    failures = {check.name: check.detail for check in report.failures()}
    name = f"{service.name}: produce to {topic}"
    assert name in failures, out.getvalue()
    message = failures[name]
    assert service.name in message
    assert "WriteData" in message or "DescribeTopic" in message, message
    assert ":topic/" in message, message
    assert f"/{topic}" in message, message


# ---- the framework's failure path, without Kafka -------------------------------------------


def test_a_handler_exception_reaches_cloudformation_as_failed_with_its_message(
    synthesized_app: SynthesizedApp, tmp_path: Path
) -> None:
    """A Python exception in the provisioner -> Lambda function error -> the framework's FAILED
    reply on the ResponseURL, carrying the exception's message."""
    app = App.load(synthesized_app.outdir)
    env = FakeEnvironment()
    resolver = Resolver(app.template, env)
    bundle = tmp_path / "bundle"
    bundle.mkdir()
    (bundle / "handler.py").write_text(
        textwrap.dedent(
            """
            def on_event(event, context):
                raise RuntimeError("refused: partitions cannot decrease (6 -> 3)")
            """
        )
    )
    framework_props = app.props(app.framework_id)
    node_function = framework.NodeFunction(
        name=str(resolver.ref(app.framework_id, "framework")),
        arn=str(resolver.get_att(app.framework_id, "Arn", "framework")),
        asset_dir=app.asset_dir(app.framework_id),
        handler=str(framework_props["Handler"]),
        environment={
            k: str(v)
            for k, v in resolver.resolve(
                framework_props["Environment"]["Variables"], "framework"
            ).items()
        },
    )
    provisioner_arn = str(resolver.get_att(app.function_id, "Arn", "provisioner"))
    state = aws_emulator.AwsEmulator(env.stack_id)
    state.add_function(
        PythonFunction(
            name=provisioner_arn.rsplit(":", 1)[1],
            arn=provisioner_arn,
            bundle=bundle,
            handler="handler.on_event",
            runtime_packages=runtime_packages_dir(tmp_path / "runtime"),
        )
    )
    with (
        aws_emulator.running(state) as emulator,
        response_receiver.running(tmp_path / "receiver") as receiver,
    ):
        cfn = Stack(env, app.topics_id, node_function.arn, physical_id="topic-sync-abc")
        event = cfn.event("Update", {"Topics": []}, receiver.response_url("r1"), "r1", old={})
        run = framework.run(
            node_function,
            event,
            aws_endpoint=emulator.endpoint,
            ca_file=receiver.ca_file,
            region=env.region,
            request_id="r1",
        )
        assert run.error is None, run.log
        (reply,) = receiver.replies_for("r1")
    assert state.function_errors_sent, "the emulator must answer with X-Amz-Function-Error"
    assert reply.body["Status"] == "FAILED"
    assert reply.body["Reason"].startswith("Error: refused: partitions cannot decrease (6 -> 3)")
    assert reply.body["PhysicalResourceId"] == "topic-sync-abc"
    assert reply.body["RequestId"] == "r1"
    assert reply.content_type == ""  # what cfn-response.js sends to the pre-signed S3 URL
    assert isinstance(Report().summary(), str)
