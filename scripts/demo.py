#!/usr/bin/env python3
"""`make demo`: the whole topic-sync lifecycle on a local Kafka broker, no AWS account needed.

1. synthesize the CloudFormation template offline and summarize it;
2. start the local broker (scripts/local-kafka up), or reuse a running one;
3. call the provisioning Lambda's handler exactly as CloudFormation would (Create with the
   synthesized Topics property, an Update that adds a topic, grows partitions and changes a
   config, a no-op re-sync), printing each plan first;
4. check the result with the operator CLI: `topic-sync plan` must say "in sync" (exit 0);
5. stop the broker, if this run started it;
6. on a broker of its own that authorizes with the template's IAM policies, show the gateway's
   task role writing its topic and denied creating one, in MSK's words (see make rehearse).

Run it with the venv on PATH (the Makefile does). Options: --skip-synth (reuse the template in
--cdk-out), --cdk-out DIR (default cdk.out), --verbose (show the Lambda's JSON logs).
"""

from __future__ import annotations

import argparse
import collections
import gc
import io
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from types import FrameType
from typing import Any
from unittest import mock

import yaml

REPO = Path(__file__).resolve().parents[1]
# src/ holds the engine and operator packages (also installed editable by `make setup`);
# the repo root holds the rehearsal package.
sys.path.insert(0, str(REPO / "src"))
sys.path.insert(1, str(REPO))

from topic_sync.kafka_admin import KafkaTopicAdmin  # noqa: E402
from topic_sync.resource import parse_properties, previous_topics  # noqa: E402
from topic_sync.retry import Deadline  # noqa: E402
from topic_sync.sync import SyncRequest, observe, plan_for  # noqa: E402
from topic_sync_tools import render, spec_file  # noqa: E402
from topic_sync_tools.local_invoke import (  # noqa: E402
    RESOURCE_TYPE,
    LocalLambdaContext,
    custom_resource_event,
    local_stack_id,
)

STACK_ID = local_stack_id()
# What the Update changes in topics.yaml: fixed targets, so every run shows the same story.
ADDED_TOPIC = {"name": "user.notifications", "partitions": 2}
GROWN_TOPIC, GROWN_TO = "eeg.raw.data", 6
RETUNED_TOPIC, RETUNED_RETENTION_MS = "alerts.events", "7776000000"  # 90 days
WORK_DIR = REPO / "build" / "demo"
#: The service whose access step 7 shows (it produces to topics and may create none).
DEMO_SERVICE = "gateway"


class DemoError(Exception):
    """A step failed; the message says which and why."""


def heading(step: int, total: int, text: str) -> None:
    print(f"\n== {step}/{total}  {text}", flush=True)


def indent(text: str, prefix: str = "    ") -> str:
    return "\n".join(prefix + line if line else line for line in text.splitlines())


# ---- 1. synth --------------------------------------------------------------------------------


def synthesize(cdk_out: Path) -> None:
    env = {
        **os.environ,
        "JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION": "1",
        "JSII_SILENCE_WARNING_DEPRECATED_NODE_VERSION": "1",
    }
    started = time.monotonic()
    synth = subprocess.run(
        # The demo has no service images: the placeholders must be allowed explicitly.
        [
            "npx",
            "cdk",
            "synth",
            "--quiet",
            "--output",
            str(cdk_out),
            "-c",
            "allowPlaceholderImages=true",
        ],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    if synth.returncode != 0:
        tail = "\n".join((synth.stdout + synth.stderr).strip().splitlines()[-30:])
        raise DemoError(f"cdk synth failed (exit {synth.returncode}):\n{tail}")
    took = time.monotonic() - started
    print(f"    npx cdk synth --quiet --output {cdk_out}: done in {took:.0f} s")


def find_template(cdk_out: Path) -> tuple[Path, dict[str, Any]]:
    for path in sorted(cdk_out.glob("*.template.json")):
        template: dict[str, Any] = json.loads(path.read_text())
        types = {r.get("Type") for r in template.get("Resources", {}).values()}
        if RESOURCE_TYPE in types:
            return path, template
    raise DemoError(f"no template with a {RESOURCE_TYPE} resource in {cdk_out}")


def topics_resource(template: Mapping[str, Any]) -> tuple[str, dict[str, Any]]:
    for logical_id, resource in template["Resources"].items():
        if resource["Type"] == RESOURCE_TYPE:
            return logical_id, resource
    raise DemoError(f"the template has no {RESOURCE_TYPE} resource")


def summarize_template(path: Path, template: Mapping[str, Any]) -> None:
    resources = template["Resources"]
    by_type = collections.Counter(r["Type"] for r in resources.values())
    print(f"    {path.relative_to(REPO) if path.is_relative_to(REPO) else path}: ", end="")
    print(f"{len(resources)} resources of {len(by_type)} types")
    for kind, count in sorted(by_type.items(), key=lambda item: (-item[1], item[0])):
        print(f"      {count:3d}  {kind}")
    logical_id, topics = topics_resource(template)
    props = topics["Properties"]
    names = ", ".join(f"{t['Name']} ({t['Partitions']}p)" for t in props["Topics"])
    print(f"\n    The topics resource: {logical_id} ({RESOURCE_TYPE})")
    print(f"      Auth {props.get('Auth')}, ClusterType {props.get('ClusterType')}, ", end="")
    print(f"RemovalPolicy {props.get('RemovalPolicy')}, Prune {props.get('Prune')}")
    print(f"      Topics: {names}")
    waiting = [
        (other_id, other["Type"])
        for other_id, other in resources.items()
        if logical_id in _depends_on(other)
    ]
    print("    Waits for the topics (DependsOn) before it starts:")
    for other_id, kind in waiting or [("(nothing)", "")]:
        print(f"      {other_id}  {kind}")


def _depends_on(resource: Mapping[str, Any]) -> list[str]:
    value = resource.get("DependsOn", [])
    return [value] if isinstance(value, str) else list(value)


# ---- 2. broker -------------------------------------------------------------------------------


@contextmanager
def local_broker() -> Iterator[tuple[str, bool]]:
    """The local broker's PLAINTEXT bootstrap and whether this run started it (then stopped)."""
    script = str(REPO / "scripts" / "local-kafka")
    started_at = time.monotonic()
    up = subprocess.run([script, "up"], cwd=REPO, capture_output=True, text=True, check=False)
    if up.returncode != 0:
        raise DemoError(f"scripts/local-kafka up failed:\n{up.stdout}{up.stderr}")
    bootstrap = up.stdout.strip().splitlines()[-1]
    # The script's own contract (tests/support/kafka.py relies on it too).
    started = "already running" not in up.stderr
    how = f"started in {time.monotonic() - started_at:.0f} s" if started else "already running"
    print(f"    local broker at {bootstrap} (PLAINTEXT), {how}")
    try:
        yield bootstrap, started
    finally:
        # Admin clients form reference cycles (callbacks); free them now, or they would log
        # reconnect failures once the broker is gone.
        gc.collect()
        if started:
            down = subprocess.run(
                [script, "down"], cwd=REPO, capture_output=True, text=True, check=False
            )
            status = "stopped" if down.returncode == 0 else f"stop failed: {down.stderr.strip()}"
            print(f"\n    local broker {status} (this demo started it)")
        else:
            print("\n    local broker left running (it was running before the demo)")


# ---- 3. the Lambda handler, as CloudFormation calls it ---------------------------------------


def lambda_properties(template_props: Mapping[str, Any], bootstrap: str) -> dict[str, Any]:
    """The topics resource's properties as CloudFormation would resolve them for this broker."""
    props = {
        key: value
        for key, value in template_props.items()
        if not _is_intrinsic(value)  # Region (Ref) and the real cluster's GetAtt
    }
    props.update(BootstrapServers=bootstrap, Auth="PLAINTEXT")
    return props


def _is_intrinsic(value: Any) -> bool:
    return (
        isinstance(value, dict)
        and len(value) == 1
        and next(iter(value)).startswith(("Fn::", "Ref"))
    )


def event(
    request_type: str,
    logical_id: str,
    props: Mapping[str, Any],
    *,
    old: Mapping[str, Any] | None = None,
    physical_id: str | None = None,
) -> dict[str, Any]:
    """The event CloudFormation (via the CDK Provider framework) sends for the demo's stack."""
    return custom_resource_event(
        request_type,
        props,
        stack_id=STACK_ID,
        logical_id=logical_id,
        physical_id=physical_id,
        old=old,
    )


def show_plan(evt: Mapping[str, Any]) -> None:
    """The plan the handler is about to make, computed by the same engine functions."""
    props = parse_properties(evt["ResourceProperties"])
    bootstrap = props.connection.bootstrap_servers
    request = SyncRequest(
        desired=props.topics,
        cluster_type=props.cluster_type,
        previous=previous_topics(evt.get("OldResourceProperties"), bootstrap),
        prune=props.prune,
    )
    admin = KafkaTopicAdmin(props.connection)
    observed = observe(admin, request.names_to_observe(), Deadline.after(30))
    plan = plan_for(request, observed)
    print(indent(render.plan_table(plan)))
    print(indent(render.plan_counts(plan)))


def invoke(evt: dict[str, Any]) -> dict[str, Any]:
    from topic_sync import (
        handler,
    )  # after POWERTOOLS_LOG_LEVEL is set (Powertools reads it at import)

    started = time.monotonic()
    response: dict[str, Any] = handler.on_event(evt, LocalLambdaContext())  # type: ignore[arg-type]
    data = response["Data"]
    counts = ", ".join(
        f"{key} {data[key]}" for key in ("Created", "Updated", "Unchanged", "Deleted") if data[key]
    )
    print(
        f"    handler.on_event({evt['RequestType']}) -> PhysicalResourceId "
        f"{response['PhysicalResourceId']}; {counts or 'nothing to do'}; "
        f"{data['AdminRequests']} admin requests, {time.monotonic() - started:.1f} s"
    )
    return response


def updated_spec(path: Path) -> tuple[Path, dict[str, Any]]:
    """topics.yaml with the demo's Update applied, written to build/demo/ for the CLI too."""
    document = yaml.safe_load(path.read_text())
    for topic in document["topics"]:
        if topic["name"] == GROWN_TOPIC:
            topic["partitions"] = GROWN_TO
        if topic["name"] == RETUNED_TOPIC:
            topic.setdefault("config", {})["retention.ms"] = RETUNED_RETENTION_MS
    if all(t["name"] != ADDED_TOPIC["name"] for t in document["topics"]):
        document["topics"].append(dict(ADDED_TOPIC))
    WORK_DIR.mkdir(parents=True, exist_ok=True)
    out = WORK_DIR / "topics.yaml"
    out.write_text(
        "# topics.yaml after the demo's Update (written by scripts/demo.py)\n"
        + yaml.safe_dump(document, sort_keys=False)
    )
    spec_file.load(out)  # the same validation cdk synth runs
    topics = spec_file.custom_resource_topics(document["topics"], document.get("defaults") or {})
    return out, {"Topics": topics}


def remove_leftovers(logical_id: str, props: Mapping[str, Any], names: list[str]) -> None:
    """On a reused broker, drop the demo's topics from an earlier run so the story repeats.

    A stack Delete with RemovalPolicy DESTROY, through the handler like everything else.
    """
    cleanup = {
        **props,
        "RemovalPolicy": "DESTROY",
        "Topics": [{"Name": name, "Partitions": "1"} for name in names],
    }
    evt = event("Delete", logical_id, cleanup, physical_id="topic-sync-demo-cleanup")
    from topic_sync import handler

    # DESTROY acts only while the stack itself is being deleted, which the handler asks
    # CloudFormation; here the demo plays CloudFormation and answers for it.
    with mock.patch.object(handler, "stack_status", return_value="DELETE_IN_PROGRESS"):
        data = handler.on_event(evt, LocalLambdaContext())["Data"]  # type: ignore[arg-type]
    if data["Deleted"]:
        print(f"    removed {data['Deleted']} topic(s) left by an earlier demo run")


# ---- 4. the operator CLI ---------------------------------------------------------------------


def cli_plan(spec: Path, bootstrap: str) -> None:
    command = [
        str(Path(sys.executable).parent / "topic-sync"),
        "plan",
        "--spec",
        str(spec.relative_to(REPO)),
        "--bootstrap",
        bootstrap,
        "--auth",
        "plaintext",
    ]
    print(f"    $ topic-sync {' '.join(command[1:])}")
    result = subprocess.run(command, cwd=REPO, capture_output=True, text=True, check=False)
    print(indent(result.stdout.rstrip()))
    if result.stderr.strip():
        print(indent(result.stderr.rstrip()))
    print(f"    (exit {result.returncode})")
    if result.returncode != 0:
        raise DemoError(f"topic-sync plan exited {result.returncode}, expected 0 (in sync)")


# ---- main ------------------------------------------------------------------------------------


def service_access(cdk_out: Path) -> None:
    """The gateway's task role as MSK would enforce it: on its own broker, authorizing with the
    template's IAM policies (what `make rehearse` checks for every service)."""
    from rehearsal.run import Options, rehearse  # the repo root is on sys.path (see top)

    out = io.StringIO()
    with tempfile.TemporaryDirectory(prefix="demo-rehearsal-") as work:
        options = Options(
            cdk_out, REPO / "topics.yaml", Path(work), lifecycle=False, services=[DEMO_SERVICE]
        )
        report = rehearse(options, out=out)
    wanted = ("produce to", "create topic")
    for check in report.checks:
        if not check.ok or any(w in check.name for w in wanted):
            print(indent(check.line()))
    if report.failed:
        raise DemoError(f"{report.failed} access check(s) failed: run make rehearse")


def run(args: argparse.Namespace) -> None:
    total = 7
    cdk_out = Path(args.cdk_out).resolve()
    heading(1, total, "Synthesize the CloudFormation template offline (no AWS account)")
    if args.skip_synth:
        print(f"    --skip-synth: using the template already in {cdk_out}")
    else:
        synthesize(cdk_out)
    template_path, template = find_template(cdk_out)
    summarize_template(template_path, template)
    logical_id, resource = topics_resource(template)

    heading(2, total, "Start the local Kafka broker")
    with local_broker() as (bootstrap, started):
        create_props = lambda_properties(resource["Properties"], bootstrap)
        spec_path, update = updated_spec(REPO / "topics.yaml")
        update_props = {**create_props, **update, "SyncToken": f"update-{uuid.uuid4()}"}
        if not started:
            names = [t["Name"] for t in update_props["Topics"]]
            remove_leftovers(logical_id, create_props, names)

        heading(3, total, "CloudFormation Create: the topics of topics.yaml (Auth PLAINTEXT)")
        create = event("Create", logical_id, create_props)
        show_plan(create)
        physical_id = invoke(create)["PhysicalResourceId"]

        heading(
            4,
            total,
            f"CloudFormation Update: add {ADDED_TOPIC['name']}, grow {GROWN_TOPIC} to "
            f"{GROWN_TO} partitions, {RETUNED_TOPIC} retention 30 -> 90 days",
        )
        update_evt = event(
            "Update", logical_id, update_props, old=create_props, physical_id=physical_id
        )
        show_plan(update_evt)
        if invoke(update_evt)["PhysicalResourceId"] != physical_id:
            raise DemoError("the Update changed the PhysicalResourceId (CloudFormation deletes)")

        heading(5, total, "Next deploy, nothing changed: a no-op re-sync (new SyncToken only)")
        resync_props = {**update_props, "SyncToken": f"resync-{uuid.uuid4()}"}
        resync = event(
            "Update", logical_id, resync_props, old=update_props, physical_id=physical_id
        )
        show_plan(resync)
        invoke(resync)

        heading(6, total, "The operator CLI agrees: the cluster is in sync with the spec")
        cli_plan(spec_path, bootstrap)

    heading(7, total, f"The {DEMO_SERVICE}'s task role, authorized as MSK IAM would (its policies)")
    service_access(cdk_out)
    print("\nDemo complete. Next: the README's 'Operate it' section (topic-sync against MSK).")


def _on_sigterm(signum: int, _frame: FrameType | None) -> None:
    sys.exit(128 + signum)  # run the finally blocks (stop the broker we started)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--cdk-out", default=str(REPO / "cdk.out"), help="synth output dir")
    parser.add_argument("--skip-synth", action="store_true", help="reuse the template there")
    parser.add_argument("--verbose", action="store_true", help="show the Lambda's JSON logs")
    args = parser.parse_args(argv)
    # Powertools reads these at import: keep the demo readable unless asked.
    os.environ.setdefault("POWERTOOLS_LOG_LEVEL", "INFO" if args.verbose else "WARNING")
    if not args.verbose:  # the per-sync EMF metrics document is a log line too
        os.environ.setdefault("POWERTOOLS_METRICS_DISABLED", "true")
    os.environ.setdefault("AWS_REGION", "us-east-1")
    signal.signal(signal.SIGTERM, _on_sigterm)
    started = time.monotonic()
    try:
        run(args)
    except DemoError as error:
        print(f"\ndemo failed: {error}", file=sys.stderr)
        return 1
    except Exception as error:
        # Engine errors (TopicSyncError) carry the whole story in one line.
        print(f"\ndemo failed: {type(error).__name__}: {error}", file=sys.stderr)
        return 1
    print(f"({time.monotonic() - started:.0f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
