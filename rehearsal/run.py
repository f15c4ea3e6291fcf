"""The deploy rehearsal: the synthesized stack, run locally the way AWS would run it.

1. The IAM policies of the provisioner's role and of every service's task role, resolved from
   the template (``rehearsal.policies``), become the local broker's authorization.
2. The provider framework's own code (the synthesized Node.js asset) handles CloudFormation's
   lifecycle events; it invokes the provisioner through the Lambda API (a local emulator that
   runs ``handler.on_event`` from the built bundle) and replies to the ResponseURL (a local HTTPS
   receiver). The provisioner authenticates as the "provisioner" identity over SASL_SSL (IAM).
3. Every service, authenticated as its task role, produces and consumes what topics.yaml says
   it does, and is denied what it must not do.
"""

from __future__ import annotations

import copy
import dataclasses
import filecmp
import json
import os
import re
import shutil
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any, TextIO

from rehearsal import aws_emulator, broker, clients, framework, response_receiver
from rehearsal.broker import Broker, Credentials
from rehearsal.lambda_runner import PythonFunction, runtime_packages_dir
from rehearsal.policies import (
    PROVISIONER,
    PoliciesFile,
    extract,
    kafka_actions,
    provisioner_function,
)
from rehearsal.report import CheckFailed, Report
from rehearsal.template import FakeEnvironment, Resolver, resource_label
from topic_sync_tools.spec_file import ServiceSpec, load

REPO = Path(__file__).resolve().parents[1]
RESOURCE_TYPE = "Custom::KafkaTopics"
#: CloudFormation rejects a custom resource reply larger than this.
MAX_REPLY_BYTES = 4096
#: Words Kafka and MSK use in a denial (broker logs, client errors).
_DENIAL = re.compile(
    r"den(y|ied|ial)|not authori[sz]ed|authori[sz]ation failed|not allowed|forbidden",
    re.IGNORECASE,
)

PoliciesEdit = Callable[[dict[str, Any]], dict[str, Any]]
#: The waiter's query interval (30 s in AWS) and attempts, scaled down for small specs.
WAITER_INTERVAL_S = 0.5
WAITER_MAX_ATTEMPTS = 20


@dataclass(frozen=True)
class Options:
    cdk_out: Path
    topics_file: Path
    work_dir: Path
    #: Changes the policies file before the broker reads it (tests that must fail use it).
    edit_policies: PoliciesEdit | None = None
    lifecycle: bool = True
    access: bool = True
    services: Sequence[str] | None = None  # default: every service in topics.yaml
    keep_broker: bool = False


# ---- the synthesized app ---------------------------------------------------------------------


@dataclass(frozen=True)
class App:
    template: dict[str, Any]
    cdk_out: Path
    topics_id: str
    framework_id: str
    function_id: str

    @classmethod
    def load(cls, cdk_out: Path) -> App:
        for path in sorted(cdk_out.glob("*.template.json")):
            template = json.loads(path.read_text())
            for logical_id, resource in template.get("Resources", {}).items():
                if resource.get("Type") == RESOURCE_TYPE:
                    framework_id, function_id = provisioner_function(template)
                    return cls(template, cdk_out, logical_id, framework_id, function_id)
        raise CheckFailed(f"no template with a {RESOURCE_TYPE} resource in {cdk_out}")

    def props(self, logical_id: str) -> Mapping[str, Any]:
        return dict(self.template["Resources"][logical_id].get("Properties", {}))

    def asset_dir(self, logical_id: str) -> Path:
        """The staged asset of a Lambda function (``Code.S3Key`` is ``<asset hash>.zip``)."""
        key = self.props(logical_id)["Code"]["S3Key"]
        directory = (self.cdk_out / f"asset.{Path(str(key)).stem}").resolve()
        if not directory.is_dir():
            label = resource_label(self.template, logical_id)
            raise CheckFailed(f"{label}: asset {directory} is missing; run `make synth`")
        return directory


def _python_sources(root: Path) -> list[Path]:
    files = sorted((root / "topic_sync").glob("*.py"))
    return [path.relative_to(root) for path in files if path.exists()]


def build_bundle(app: App, work: Path) -> tuple[Path, str]:
    """The provisioner bundle for this machine (topic_sync_cdk.bundling), checked with the asset."""
    # aws_cdk (imported by topic_sync_cdk.bundling) starts jsii, which prints a banner on Node 20.
    os.environ.setdefault("JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION", "20")
    os.environ.setdefault("JSII_SILENCE_WARNING_DEPRECATED_NODE_VERSION", "1")
    from topic_sync_cdk.bundling import LambdaPlatform, build_lambda_bundle

    bundle = work / "bundle"
    shutil.rmtree(bundle, ignore_errors=True)
    target = LambdaPlatform.local()
    build_lambda_bundle(bundle, target)
    asset = app.asset_dir(app.function_id)
    ours, theirs = _python_sources(bundle), _python_sources(asset)
    if ours != theirs:
        raise CheckFailed(f"bundle files {ours} differ from the asset's {theirs}")
    _, mismatch, errors = filecmp.cmpfiles(bundle, asset, [str(p) for p in ours], shallow=False)
    if mismatch or errors:
        raise CheckFailed(f"bundle sources differ from the synthesized asset: {mismatch + errors}")
    return bundle, (
        f"{len(ours)} handler/engine sources identical to {asset.name[:18]}...; native wheels "
        f"for {target.manylinux_tag} cp{target.python_version} (the asset's are for the "
        "function's own architecture and runtime)"
    )


# ---- CloudFormation events -------------------------------------------------------------------


@dataclass
class Stack:
    """What CloudFormation knows about the custom resource between events."""

    env: FakeEnvironment
    logical_id: str
    service_token: str
    physical_id: str | None = None

    def event(
        self,
        request_type: str,
        properties: Mapping[str, Any],
        response_url: str,
        request_id: str,
        old: Mapping[str, Any] | None = None,
    ) -> dict[str, Any]:
        event: dict[str, Any] = {
            "RequestType": request_type,
            "ServiceToken": self.service_token,
            "ResponseURL": response_url,
            "StackId": self.env.stack_id,
            "RequestId": request_id,
            "LogicalResourceId": self.logical_id,
            "ResourceType": RESOURCE_TYPE,
            "ResourceProperties": copy.deepcopy(dict(properties)),
        }
        if old is not None:
            event["OldResourceProperties"] = copy.deepcopy(dict(old))
        if request_type != "Create":
            event["PhysicalResourceId"] = self.physical_id
        return event


def _topics(props: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    return {str(t["Name"]): t for t in props["Topics"]}


def _with_topics(
    props: Mapping[str, Any], topics: Mapping[str, Mapping[str, Any]]
) -> dict[str, Any]:
    out = copy.deepcopy(dict(props))
    out["Topics"] = [copy.deepcopy(dict(t)) for t in topics.values()]
    return out


@dataclass(frozen=True)
class Scenario:
    """Create with less than the template declares, so the Update adds, grows and changes.

    The Update's target is exactly the template's Topics, so the final state, and the grants
    the services are checked against, are the template's.
    """

    create: dict[str, Any]
    target: dict[str, Any]
    shrunk: dict[str, Any]
    added: str
    grown: str
    grown_from: int
    grown_to: int
    retuned: str
    retuned_key: str
    retuned_from: str
    retuned_to: str

    @classmethod
    def from_properties(cls, target: Mapping[str, Any]) -> Scenario:
        topics = _topics(target)
        names = list(topics)
        if len(names) < 3:
            raise CheckFailed("the rehearsal needs at least 3 topics in topics.yaml")
        added, grown, retuned = names[-1], names[0], names[1]
        grown_to = int(topics[grown]["Partitions"])
        if grown_to < 2:
            raise CheckFailed(f"{grown} needs at least 2 partitions to be grown to")
        grown_from = max(1, grown_to // 2)
        key = "retention.ms"
        retuned_to = str(topics[retuned].get("Config", {}).get(key, "604800000"))
        retuned_from = str(int(retuned_to) + 86_400_000) if retuned_to != "-1" else "604800000"
        before = copy.deepcopy(topics)
        del before[added]
        before[grown]["Partitions"] = str(grown_from)
        before[retuned].setdefault("Config", {})[key] = retuned_from
        shrunk = copy.deepcopy(topics)
        shrunk[grown]["Partitions"] = str(grown_from)
        return cls(
            create=_with_topics(target, before),
            target=copy.deepcopy(dict(target)),
            shrunk=_with_topics(target, shrunk),
            added=added,
            grown=grown,
            grown_from=grown_from,
            grown_to=grown_to,
            retuned=retuned,
            retuned_key=key,
            retuned_from=retuned_from,
            retuned_to=retuned_to,
        )


# ---- the run ---------------------------------------------------------------------------------


class Rehearsal:
    def __init__(self, options: Options, report: Report) -> None:
        self.options = options
        self.report = report
        self.env = FakeEnvironment()
        self.app: App | None = None
        self.policies: PoliciesFile | None = None
        self.broker: Broker | None = None
        self.bundle: Path | None = None
        self.services: list[ServiceSpec] = []
        self.policies_file = options.work_dir / "iam-policies.json"
        self.provisioner_identity = PROVISIONER

    # -- helpers

    def denial(self, offsets: Mapping[Path, int], identity: str) -> str:
        """The broker's last denial line since ``offsets`` that concerns ``identity``."""
        assert self.broker is not None
        keys = {identity}
        if identity in self.broker.identities:
            keys.add(self.broker.identities[identity].access_key_id)
        lines = [
            line.strip()
            for line in self.broker.log_since(offsets)
            if _DENIAL.search(line) and any(key in line for key in keys)
        ]
        if not lines:
            return f"the broker logged no denial for {identity}"
        # WARN lines decide; INFO ones are probes Kafka makes before checking further.
        line = ([x for x in lines if " WARN " in x] or lines)[-1]
        start = line.find("MSK IAM denied:")
        detail = line[start + len("MSK IAM denied:") :].strip() if start >= 0 else line
        return f"broker denied {identity}: {detail[:400]}"

    # -- setup

    def setup(self, stack: ExitStack) -> bool:
        opts = self.options
        with self.report.check("template") as passed:
            self.app = App.load(opts.cdk_out)
            spec = load(opts.topics_file)
            self.services = [
                s for s in spec.services if opts.services is None or s.name in opts.services
            ]
            self.policies = extract(self.app.template, [s.name for s in spec.services], self.env)
            document = self.policies.to_json()
            if opts.edit_policies is not None:
                document = opts.edit_policies(document)
            self.policies_file.write_text(json.dumps(document, indent=2) + "\n")
            counts = ", ".join(
                f"{name} {len(kafka_actions(identity))}"
                for name, identity in self.policies.identities.items()
            )
            passed(
                f"{len(self.policies.identities)} identities from the template's IAM policies "
                f"(kafka-cluster actions: {counts}) -> {self.policies_file}"
            )
            passed(f"cluster {self.policies.cluster_arn}")
        if self.app is None or self.policies is None:
            return False

        with self.report.check("bundle") as passed:
            self.bundle, detail = build_bundle(self.app, opts.work_dir)
            passed(detail)
        if self.bundle is None:
            return False

        with self.report.check("broker") as passed:
            run_dir = opts.work_dir / "kafka"
            with_policies = broker.supports_iam_policies()
            started = time.monotonic()
            self.broker = broker.up(run_dir, self.policies_file if with_policies else None)
            if not opts.keep_broker:
                stack.callback(broker.down, run_dir)
            took = time.monotonic() - started
            if with_policies:
                passed(
                    f"up in {took:.0f} s, SASL_SSL {self.broker.sasl_ssl_bootstrap} authorizing "
                    f"with the template's IAM policies as {self.policies.cluster_arn}"
                )
            else:
                broker.acl_fallback(self.broker)
                self.provisioner_identity = broker.ACL_GRANTED_IDENTITY
                passed(
                    f"up in {took:.0f} s, SASL_SSL {self.broker.sasl_ssl_bootstrap}; "
                    "NO IAM policy enforcement: scripts/local-kafka does not read "
                    "LOCAL_KAFKA_IAM_POLICIES, so the provisioner runs as the 'granted' test "
                    "identity with Kafka ACLs for everything"
                )
        return self.broker is not None

    # -- part 1: the CloudFormation lifecycle through the real provider framework

    def lifecycle(self) -> None:
        assert self.app is not None
        assert self.broker is not None
        app, kafka = self.app, self.broker
        work = self.options.work_dir
        with ExitStack() as stack:
            stack_id = self.env.stack_id
            emulator = stack.enter_context(aws_emulator.running(aws_emulator.AwsEmulator(stack_id)))
            receiver = stack.enter_context(response_receiver.running(work / "response-receiver"))
            resolver = Resolver(app.template, self.env)

            function_props = app.props(app.function_id)
            label = resource_label(app.template, app.function_id)
            function_env = resolver.resolve(
                function_props.get("Environment", {}).get("Variables", {}), label
            )
            credentials: Credentials = kafka.credentials(self.provisioner_identity)
            log_group = self._log_group(resolver, app.function_id)
            provisioner = PythonFunction(
                name=str(resolver.ref(app.function_id, label)),
                arn=str(resolver.get_att(app.function_id, "Arn", label)),
                bundle=self.bundle or Path(),
                runtime_packages=runtime_packages_dir(work / "lambda-runtime"),
                handler=str(function_props["Handler"]),
                timeout_s=float(function_props.get("Timeout", 3)),
                memory_mb=int(function_props.get("MemorySize", 128)),
                log_group=log_group,
                environment={
                    **{k: str(v) for k, v in function_env.items()},
                    "AWS_REGION": self.env.region,
                    "AWS_DEFAULT_REGION": self.env.region,
                    # The execution role's temporary credentials, as Lambda sets them.
                    "AWS_ACCESS_KEY_ID": credentials.access_key_id,
                    "AWS_SECRET_ACCESS_KEY": credentials.secret_access_key,
                    **(
                        {"AWS_SESSION_TOKEN": credentials.session_token}
                        if credentials.session_token
                        else {}
                    ),
                    "AWS_ENDPOINT_URL_CLOUDFORMATION": emulator.endpoint,
                    "AWS_EC2_METADATA_DISABLED": "true",
                },
                log_dir=work / "logs",
            )
            emulator.add_function(provisioner)
            # The waiter's side (handler.is_complete): same bundle, role and environment.
            user_is_complete = _function_with_handler(
                app.template, "topic_sync.handler.is_complete"
            )
            if user_is_complete is not None:
                is_complete_label = resource_label(app.template, user_is_complete)
                emulator.add_function(
                    dataclasses.replace(
                        provisioner,
                        name=str(resolver.ref(user_is_complete, is_complete_label)),
                        arn=str(resolver.get_att(user_is_complete, "Arn", is_complete_label)),
                        handler="topic_sync.handler.is_complete",
                    )
                )

            node_function = self._framework_function(resolver, app.framework_id)
            assert node_function is not None

            topics_label = resource_label(app.template, app.topics_id)
            raw = app.props(app.topics_id)
            bootstrap_attr = raw.get("BootstrapServers", {}).get("Fn::GetAtt")
            attributes: dict[tuple[str, str], Any] = {}
            if isinstance(bootstrap_attr, list):
                attributes[(bootstrap_attr[0], bootstrap_attr[1])] = kafka.sasl_ssl_bootstrap
            properties = Resolver(app.template, self.env, attributes=attributes).resolve(
                raw, topics_label
            )
            properties["BootstrapServers"] = kafka.sasl_ssl_bootstrap
            properties["ClientConfig"] = {
                **properties.get("ClientConfig", {}),
                "ssl.ca.location": kafka.ca_file,
            }
            self.report.note(
                f"framework {node_function.asset_dir.name[:18]}... ({node_function.handler}) "
                f"under Node {framework.node_version()}; Lambda API {emulator.endpoint}; "
                f"ResponseURL https://{receiver.address}/ (443)"
            )
            self.report.note(
                f"provisioner {provisioner.name} ({provisioner.handler}) as identity "
                f"'{self.provisioner_identity}'; properties from the template, except "
                "BootstrapServers (the local broker) and ClientConfig ssl.ca.location (its CA)"
            )
            cfn = Stack(self.env, app.topics_id, str(properties["ServiceToken"]))
            scenario = Scenario.from_properties(properties)
            steps = _LifecycleSteps(
                self, cfn, emulator, receiver, node_function, scenario, provisioner.log_group
            )
            steps.waiter = self._framework_function(
                resolver, _function_with_handler(app.template, "framework.isComplete")
            )
            if steps.waiter is not None:
                self.report.note(
                    f"waiter: Step Functions StartExecution answered here; {steps.waiter.handler} "
                    f"every {WAITER_INTERVAL_S} s (30 s in AWS) until it replies"
                )
            steps.run()

    def _framework_function(
        self, resolver: Resolver, logical_id: str | None
    ) -> framework.NodeFunction | None:
        """One of the framework's Lambdas (onEvent, the waiter's isComplete), as the template
        has it."""
        if logical_id is None or self.app is None:
            return None
        props = self.app.props(logical_id)
        label = resource_label(self.app.template, logical_id)
        env = resolver.resolve(props.get("Environment", {}).get("Variables", {}), label)
        return framework.NodeFunction(
            name=str(resolver.ref(logical_id, label)),
            arn=str(resolver.get_att(logical_id, "Arn", label)),
            asset_dir=self.app.asset_dir(logical_id),
            handler=str(props["Handler"]),
            environment={k: str(v) for k, v in env.items()},
            timeout_s=float(props.get("Timeout", 3)),
            memory_mb=int(props.get("MemorySize", 128)),
            log_group=self._log_group(resolver, logical_id),
        )

    def _log_group(self, resolver: Resolver, function_id: str) -> str:
        props = self.app.props(function_id) if self.app else {}
        group = props.get("LoggingConfig", {}).get("LogGroup")
        if group is None:
            return f"/aws/lambda/{resolver.ref(function_id, function_id)}"
        return str(resolver.resolve(group, resource_label(resolver.template, function_id)))

    # -- part 2: every service, as its task role

    def access(self) -> None:
        assert self.broker is not None
        kafka = self.broker
        declared = {s.name: s for s in self.services}
        all_topics = [str(t["Name"]) for t in self._template_topics()]
        missing = [t for t in all_topics if t not in broker.describe(kafka, all_topics)]
        if missing:  # the lifecycle did not run (or failed): the services need their topics
            clients.create_topics(kafka, missing)
            self.report.note(f"created {', '.join(missing)} over PLAINTEXT for the access checks")
        for service in declared.values():
            self._service_checks(kafka, service, all_topics)

    def _template_topics(self) -> list[Mapping[str, Any]]:
        assert self.app is not None
        return list(self.app.props(self.app.topics_id)["Topics"])

    def _task_environment(self, service: str) -> dict[str, str]:
        """The service container's environment from the template (client settings)."""
        assert self.app is not None
        template = self.app.template
        for resource in template["Resources"].values():
            props = resource.get("Properties", {})
            if resource.get("Type") == "AWS::ECS::Service" and props.get("ServiceName") == service:
                task_id = props["TaskDefinition"]["Ref"]
                containers = template["Resources"][task_id]["Properties"]["ContainerDefinitions"]
                env: dict[str, str] = {}
                for container in containers:
                    for item in container.get("Environment", []):
                        if isinstance(item.get("Value"), str):
                            env[item["Name"]] = item["Value"]
                return env
        return {}

    def _service_checks(self, kafka: Broker, service: ServiceSpec, all_topics: list[str]) -> None:
        name = service.name
        env = self._task_environment(name)
        protocol = env.get("KAFKA_SECURITY_PROTOCOL", "SASL_SSL")
        mechanism = env.get("KAFKA_SASL_MECHANISM", "OAUTHBEARER")
        group = f"{env.get('KAFKA_CONSUMER_GROUP_PREFIX', name)}-rehearsal"
        try:
            credentials = kafka.credentials(name)
        except broker.BrokerError as error:
            self.report.add(f"{name}: authenticate as its task role", False, str(error))
            return

        def config() -> dict[str, Any]:
            return clients.iam_config(
                kafka, credentials, security_protocol=protocol, sasl_mechanism=mechanism
            )

        def expect_ok(check: str, action: Callable[[], clients.Outcome]) -> None:
            with self.report.check(f"{name}: {check}") as passed:
                offsets = kafka.log_offsets()
                outcome = action()
                if not outcome.ok:
                    raise CheckFailed(f"{outcome.describe()}; {self.denial(offsets, name)}")
                passed("allowed")

        def expect_denied(check: str, action: Callable[[], clients.Outcome]) -> None:
            with self.report.check(f"{name}: {check}") as passed:
                offsets = kafka.log_offsets()
                outcome = action()
                if outcome.ok:
                    raise CheckFailed("ALLOWED, but the service must not be able to")
                if not outcome.authorization_denied:
                    raise CheckFailed(
                        f"failed, but not with an authorization error: {outcome.describe()}"
                    )
                passed(f"denied ({outcome.error_code}); {self.denial(offsets, name)[:400]}")

        consumed_only = [t for t in service.consumes if t not in service.produces]
        ungranted = [
            t for t in all_topics if t not in service.produces and t not in service.consumes
        ]
        for topic in service.produces:
            expect_ok(f"produce to {topic}", partial(_produce, config, topic))
        for topic in service.consumes:
            clients.seed(kafka, topic)
            expect_ok(
                f"consume {topic} as group {group}",
                partial(_consume, config, topic, group),
            )
        forbidden = f"rehearsal.{name}.created"
        expect_denied(
            f"create topic {forbidden}", lambda: clients.create_topic(config(), forbidden)
        )
        write_targets = consumed_only or ungranted
        if write_targets:
            write_target = write_targets[0]
            why = "it only consumes" if write_target in consumed_only else "no grant"
            expect_denied(
                f"produce to {write_target} ({why})",
                lambda: clients.produce_one(config(), write_target, timeout=10),
            )
        if ungranted:
            expect_denied(
                f"consume {ungranted[0]} (no grant)",
                lambda: clients.consume_one(config(), ungranted[0], group, timeout=10),
            )
        own = (service.produces or service.consumes)[0]
        expect_denied(
            f"alter config of {own}",
            lambda: clients.alter_topic_config(config(), own, "retention.ms", "3600000"),
        )


def _function_with_handler(template: Mapping[str, Any], handler: str) -> str | None:
    """The logical id of the one Lambda function with this Handler, if any."""
    for logical_id, resource in template.get("Resources", {}).items():
        if resource.get("Type") == "AWS::Lambda::Function" and (
            resource.get("Properties", {}).get("Handler") == handler
        ):
            return str(logical_id)
    return None


def _produce(config: Callable[[], dict[str, Any]], topic: str) -> clients.Outcome:
    return clients.produce_one(config(), topic)


def _consume(config: Callable[[], dict[str, Any]], topic: str, group: str) -> clients.Outcome:
    return clients.consume_one(config(), topic, group)


class _LifecycleSteps:
    """Create, Update, refused Update, its rollback, a no-op re-sync and Delete, as CloudFormation
    sends them, each through the provider framework."""

    def __init__(
        self,
        rehearsal: Rehearsal,
        cfn: Stack,
        emulator: aws_emulator.AwsEmulator,
        receiver: response_receiver.ResponseReceiver,
        function: framework.NodeFunction,
        scenario: Scenario,
        log_group: str,
    ) -> None:
        self.log_group = log_group
        self.r = rehearsal
        self.cfn = cfn
        self.emulator = emulator
        self.receiver = receiver
        self.function = function
        self.s = scenario
        #: The framework's isComplete Lambda, when the provider has a waiter.
        self.waiter: framework.NodeFunction | None = None

    def _run(
        self, function: framework.NodeFunction, event: Mapping[str, Any], request_id: str
    ) -> framework.FrameworkRun:
        """One invocation of a framework Lambda against this rehearsal's emulator and receiver."""
        return framework.run(
            function,
            event,
            aws_endpoint=self.emulator.endpoint,
            ca_file=self.receiver.ca_file,
            region=self.r.env.region,
            request_id=request_id,
            log_dir=self.r.options.work_dir / "logs",
        )

    def _wait(self, execution: Mapping[str, Any], request_id: str) -> None:
        """The waiter state machine: its isComplete task, retried on any error (the handler's
        "not yet") every query interval (scaled down here), until it replies."""
        if self.waiter is None:
            raise CheckFailed("the framework started a waiter, but the template has none")
        event = json.loads(str(execution.get("input", "{}")))
        for _attempt in range(WAITER_MAX_ATTEMPTS):
            run = self._run(self.waiter, event, request_id)
            if run.error is None:
                return
            time.sleep(WAITER_INTERVAL_S)
        raise CheckFailed(f"the waiter did not complete in {WAITER_MAX_ATTEMPTS} attempts")

    def send(
        self,
        request_type: str,
        properties: Mapping[str, Any],
        stack_status: str,
        old: Mapping[str, Any] | None = None,
    ) -> dict[str, Any]:
        """One event through the framework; returns the reply CloudFormation received."""
        assert self.r.broker is not None
        self.emulator.stack_status = stack_status
        request_id = str(uuid.uuid4())
        event = self.cfn.event(
            request_type, properties, self.receiver.response_url(request_id), request_id, old
        )
        errors_before = len(self.emulator.function_errors_sent)
        run = self._run(self.function, event, request_id)
        if run.error is not None:
            tail = " | ".join(run.log.strip().splitlines()[-3:])
            raise CheckFailed(
                f"the framework itself failed: {run.error.get('errorMessage')} ({tail[-300:]})"
            )
        if not self.receiver.replies_for(request_id) and self.emulator.executions:
            self._wait(self.emulator.executions.pop(), request_id)
        replies = self.receiver.replies_for(request_id)
        if len(replies) != 1:
            raise CheckFailed(f"the ResponseURL received {len(replies)} replies, expected 1")
        reply = replies[0]
        body = dict(reply.body)
        body["_size"] = reply.size_bytes
        body["_function_error"] = len(self.emulator.function_errors_sent) > errors_before
        if reply.size_bytes > MAX_REPLY_BYTES:
            raise CheckFailed(
                f"reply of {reply.size_bytes} bytes: CloudFormation rejects more than "
                f"{MAX_REPLY_BYTES} ('Response object is too long')"
            )
        return body

    def expect_success(self, reply: Mapping[str, Any], offsets: Mapping[Path, int]) -> None:
        if reply.get("Status") != "SUCCESS":
            reason = str(reply.get("Reason", "")).strip().splitlines()
            first = reason[0] if reason else ""
            raise CheckFailed(
                f"{reply.get('Status')}: {first[:500]}; "
                f"{self.r.denial(offsets, self.r.provisioner_identity)}"
            )

    def topics_now(self) -> dict[str, Any]:
        assert self.r.broker is not None
        names = [str(t["Name"]) for t in self.s.target["Topics"]]
        return broker.describe(self.r.broker, names)

    def expect_topics(self, props: Mapping[str, Any]) -> None:
        observed = self.topics_now()
        for name, topic in _topics(props).items():
            if name not in observed:
                raise CheckFailed(f"topic {name} does not exist on the broker")
            if observed[name]["partitions"] != int(topic["Partitions"]):
                raise CheckFailed(
                    f"{name} has {observed[name]['partitions']} partitions, "
                    f"expected {topic['Partitions']}"
                )
            for key, value in topic.get("Config", {}).items():
                actual = observed[name]["config"].get(key)
                if actual != str(value):
                    raise CheckFailed(f"{name} {key}={actual}, expected {value}")

    def run(self) -> None:
        report, s = self.r.report, self.s
        kafka = self.r.broker
        assert kafka is not None
        done: set[str] = set()

        with report.check("framework Create") as passed:
            offsets = kafka.log_offsets()
            reply = self.send("Create", s.create, "CREATE_IN_PROGRESS")
            self.expect_success(reply, offsets)
            physical_id = str(reply.get("PhysicalResourceId", ""))
            if not physical_id.startswith("topic-sync-"):
                raise CheckFailed(f"unexpected PhysicalResourceId {physical_id!r}")
            self.cfn.physical_id = physical_id
            self.expect_topics(s.create)
            data = reply.get("Data", {})
            passed(
                f"SUCCESS, {data.get('Created')} topics created (all but {s.added}; {s.grown} with "
                f"{s.grown_from} of {s.grown_to} partitions, {s.retuned} "
                f"{s.retuned_key}={s.retuned_from}), "
                f"PhysicalResourceId {physical_id}"
            )
            done.add("create")
        if "create" not in done:
            return

        with report.check("framework Update") as passed:
            offsets = kafka.log_offsets()
            reply = self.send("Update", s.target, "UPDATE_IN_PROGRESS", old=s.create)
            self.expect_success(reply, offsets)
            if reply.get("PhysicalResourceId") != self.cfn.physical_id:
                raise CheckFailed(
                    f"PhysicalResourceId changed to {reply.get('PhysicalResourceId')}"
                )
            self.expect_topics(s.target)
            data = reply.get("Data", {})
            passed(
                f"SUCCESS: created {s.added}, {s.grown} {s.grown_from} -> {s.grown_to} partitions, "
                f"{s.retuned} {s.retuned_key} {s.retuned_from} -> {s.retuned_to} "
                f"(Created {data.get('Created')}, Updated {data.get('Updated')})"
            )

        with report.check("framework refused Update") as passed:
            reply = self.send("Update", s.shrunk, "UPDATE_IN_PROGRESS", old=s.target)
            if reply.get("Status") != "FAILED":
                raise CheckFailed(f"{reply.get('Status')}: a partition decrease must fail")
            if not reply["_function_error"]:
                raise CheckFailed("the Lambda API did not report a function error")
            reason = str(reply.get("Reason", ""))
            if s.grown not in reason:
                raise CheckFailed(f"the Reason does not name {s.grown}: {reason[:300]!r}")
            self.expect_topics(s.target)
            first = reason.strip().splitlines()[0]
            passed(
                f"FAILED via X-Amz-Function-Error, reply {reply['_size']} bytes, "
                f"Reason: {first[:300]}"
            )
            # The framework appends "Logs: /aws/lambda/<function>"; ours has its own group.
            if f"provisioner logs: CloudWatch log group {self.log_group}" not in first:
                raise CheckFailed(
                    f"the Reason does not name the provisioner's log group {self.log_group}"
                )
            passed(f"Reason names the provisioner's log group {self.log_group}")

        with report.check("framework rollback Update") as passed:
            offsets = kafka.log_offsets()
            calls = len(self.emulator.describe_stacks_calls)
            reply = self.send("Update", s.target, "UPDATE_ROLLBACK_IN_PROGRESS", old=s.shrunk)
            self.expect_success(reply, offsets)
            self.expect_topics(s.target)
            data = reply.get("Data", {})
            status = self.emulator.describe_stacks_calls[calls:]
            read = f"read the stack status {status[-1]}" if status else "no stack status needed"
            passed(f"SUCCESS, nothing changed (Unchanged {data.get('Unchanged')}; {read})")

        with report.check("framework no-op re-sync") as passed:
            offsets = kafka.log_offsets()
            resync = {**s.target, "SyncToken": f"rehearsal-{uuid.uuid4().hex[:8]}"}
            reply = self.send("Update", resync, "UPDATE_IN_PROGRESS", old=s.target)
            self.expect_success(reply, offsets)
            data = reply.get("Data", {})
            if data.get("Created") or data.get("Updated"):
                raise CheckFailed(f"a re-sync changed something: {data}")
            passed(
                f"SUCCESS, Unchanged {data.get('Unchanged')}, "
                f"{data.get('AdminRequests')} admin requests"
            )

        with report.check("framework Delete") as passed:
            offsets = kafka.log_offsets()
            reply = self.send("Delete", resync, "DELETE_IN_PROGRESS")
            self.expect_success(reply, offsets)
            if reply.get("PhysicalResourceId") != self.cfn.physical_id:
                raise CheckFailed("the Delete changed the PhysicalResourceId")
            self.expect_topics(s.target)
            policy = s.target.get("RemovalPolicy", "RETAIN")
            data = reply.get("Data", {})
            passed(f"SUCCESS, RemovalPolicy {policy}: {data.get('Retained')} topics kept")


@contextmanager
def _work_dir(path: Path | None) -> Iterator[Path]:
    if path is not None:
        path.mkdir(parents=True, exist_ok=True)
        yield path
        return
    with tempfile.TemporaryDirectory(prefix="rehearsal-") as tmp:
        yield Path(tmp)


def rehearse(options: Options, out: TextIO | None = None) -> Report:
    """Run the rehearsal; every check is in the returned report (also printed to ``out``)."""
    report = Report() if out is None else Report(out=out)
    with ExitStack() as stack:
        rehearsal = Rehearsal(options, report)
        if rehearsal.setup(stack):
            if options.lifecycle:
                rehearsal.lifecycle()
            if options.access:
                rehearsal.access()
    return report
