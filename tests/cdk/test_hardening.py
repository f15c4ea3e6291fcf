"""Issue 13 on the one shared synth: images, edge, tasks, alarms, the drift check, timeouts.

The shared synth is production-shaped (tests/cdk/conftest.py APP_CONTEXT): a certificate,
access logs, an alarm e-mail, and core-service on its own image, health check and user.
"""

from __future__ import annotations

import json
import re
from typing import Any

import pytest
from aws_cdk import App

from stacks.platform_stack import PLACEHOLDER_IMAGE, WAF_MANAGED_RULE_GROUPS
from tests.cdk.conftest import (
    ALARM_EMAIL,
    ALB_LOGS_BUCKET,
    CERTIFICATE_ARN,
    REAL_IMAGE,
    REAL_IMAGE_HEALTH_CHECK,
    REAL_IMAGE_SERVICE,
    REAL_IMAGE_USER,
    REPO_ROOT,
    SynthesizedApp,
    cdk_json_context,
)
from topic_sync.exceptions import SpecError
from topic_sync_cdk.cluster import BOOTSTRAP_BROKERS_SERVICE_TIMEOUT
from topic_sync_cdk.kafka_topics import DRIFT_CHECK_ACTIONS, MSK_IAM_PORT
from topic_sync_tools.spec_file import load

pytestmark = pytest.mark.synth

TOPICS_FILE = load(REPO_ROOT / "topics.yaml")
DIGEST_REFERENCE = re.compile(r"^[a-z0-9./_-]+(:[0-9]+)?/[a-z0-9./_-]+@sha256:[0-9a-f]{64}$")


def _one(synthesized: SynthesizedApp, resource_type: str) -> tuple[str, dict[str, Any]]:
    (item,) = synthesized.resources(resource_type).items()
    return item


def _containers(synthesized: SynthesizedApp) -> dict[str, dict[str, Any]]:
    containers = {}
    for task in synthesized.resources("AWS::ECS::TaskDefinition").values():
        (container,) = task["Properties"]["ContainerDefinitions"]
        containers[container["Name"]] = {**container, "_volumes": task["Properties"]["Volumes"]}
    return containers


def _by_id_prefix(synthesized: SynthesizedApp, resource_type: str, prefix: str) -> str:
    (logical_id,) = [i for i in synthesized.resources(resource_type) if i.startswith(prefix)]
    return logical_id


def _attributes(load_balancer: dict[str, Any]) -> dict[str, str]:
    return {a["Key"]: a["Value"] for a in load_balancer["Properties"]["LoadBalancerAttributes"]}


def _policy_statements(synthesized: SynthesizedApp, role_id: str) -> list[dict[str, Any]]:
    statements: list[dict[str, Any]] = []
    for policy in synthesized.resources("AWS::IAM::Policy").values():
        if {"Ref": role_id} in policy["Properties"]["Roles"]:
            statements.extend(policy["Properties"]["PolicyDocument"]["Statement"])
    return statements


def _listify(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


# ---- 1. images -------------------------------------------------------------------------------


def test_images_are_pinned_by_digest_placeholder_or_not(synthesized_app: SynthesizedApp) -> None:
    assert DIGEST_REFERENCE.match(PLACEHOLDER_IMAGE)
    images = {name: c["Image"] for name, c in _containers(synthesized_app).items()}
    assert images[REAL_IMAGE_SERVICE] == REAL_IMAGE
    assert {i for n, i in images.items() if n != REAL_IMAGE_SERVICE} == {PLACEHOLDER_IMAGE}


def test_placeholder_images_are_refused_unless_explicitly_allowed() -> None:
    import app as cdk_app

    # Fails before any construct is built: cheap, no synth.
    with pytest.raises(SpecError, match="allowPlaceholderImages=true") as refused:
        cdk_app.build(App(context=cdk_json_context()))
    assert "gateway, eeg-service, core-service" in str(refused.value)
    assert cdk_json_context()["allowPlaceholderImages"] is False  # cdk.json's default


# ---- 2. edge ---------------------------------------------------------------------------------


def test_gateway_is_https_with_a_current_tls_policy_and_redirects_http(
    synthesized_app: SynthesizedApp,
) -> None:
    listeners = {
        listener["Properties"]["Port"]: listener["Properties"]
        for listener in synthesized_app.resources("AWS::ElasticLoadBalancingV2::Listener").values()
    }
    assert set(listeners) == {80, 443}
    https = listeners[443]
    assert https["Protocol"] == "HTTPS"
    assert https["Certificates"] == [{"CertificateArn": CERTIFICATE_ARN}]
    assert https["SslPolicy"] == "ELBSecurityPolicy-TLS13-1-2-2021-06"
    assert listeners[80]["Protocol"] == "HTTP"
    assert listeners[80]["DefaultActions"] == [
        {
            "Type": "redirect",
            "RedirectConfig": {"Port": "443", "Protocol": "HTTPS", "StatusCode": "HTTP_301"},
        }
    ]


def test_gateway_load_balancer_drops_bad_headers_logs_and_is_protected_and_retained(
    synthesized_app: SynthesizedApp,
) -> None:
    _, load_balancer = _one(synthesized_app, "AWS::ElasticLoadBalancingV2::LoadBalancer")
    assert load_balancer["Properties"]["Scheme"] == "internet-facing"
    assert _attributes(load_balancer) == {
        "routing.http.drop_invalid_header_fields.enabled": "true",
        "deletion_protection.enabled": "true",
        "access_logs.s3.enabled": "true",
        "access_logs.s3.bucket": ALB_LOGS_BUCKET,
        "access_logs.s3.prefix": "TopicSync/gateway",
    }
    assert load_balancer["DeletionPolicy"] == load_balancer["UpdateReplacePolicy"] == "Retain"


def test_gateway_has_a_logged_web_acl_of_aws_managed_rules(
    synthesized_app: SynthesizedApp,
) -> None:
    acl_id, acl = _one(synthesized_app, "AWS::WAFv2::WebACL")
    assert acl["Properties"]["Scope"] == "REGIONAL"
    groups = [
        r["Statement"]["ManagedRuleGroupStatement"]["Name"] for r in acl["Properties"]["Rules"]
    ]
    assert groups == list(WAF_MANAGED_RULE_GROUPS)
    _, association = _one(synthesized_app, "AWS::WAFv2::WebACLAssociation")
    lb_id, _ = _one(synthesized_app, "AWS::ElasticLoadBalancingV2::LoadBalancer")
    assert association["Properties"] == {
        "ResourceArn": {"Ref": lb_id},
        "WebACLArn": {"Fn::GetAtt": [acl_id, "Arn"]},
    }
    _, logging = _one(synthesized_app, "AWS::WAFv2::LoggingConfiguration")
    assert logging["Properties"]["ResourceArn"] == {"Fn::GetAtt": [acl_id, "Arn"]}
    (destination,) = logging["Properties"]["LogDestinationConfigs"]
    log_group_id = destination["Fn::Join"][1][-1]["Ref"]
    log_group = synthesized_app.resources("AWS::Logs::LogGroup")[log_group_id]["Properties"]
    assert log_group["LogGroupName"].startswith("aws-waf-logs-")  # WAF logs nowhere else


def test_load_balancer_is_open_on_80_and_443_and_reaches_only_the_gateway_tasks(
    synthesized_app: SynthesizedApp,
) -> None:
    lb_sg = _by_id_prefix(synthesized_app, "AWS::EC2::SecurityGroup", "GatewayLoadBalancer")
    inline = synthesized_app.resources("AWS::EC2::SecurityGroup")[lb_sg]["Properties"]
    assert sorted(r["FromPort"] for r in inline["SecurityGroupIngress"]) == [80, 443]
    assert "SecurityGroupEgress" not in inline
    egress = [
        r["Properties"]
        for r in synthesized_app.resources("AWS::EC2::SecurityGroupEgress").values()
        if r["Properties"]["GroupId"] == {"Fn::GetAtt": [lb_sg, "GroupId"]}
    ]
    assert [(e["FromPort"], e["DestinationSecurityGroupId"]["Fn::GetAtt"][0]) for e in egress] == [
        (80, _by_id_prefix(synthesized_app, "AWS::EC2::SecurityGroup", "gatewaySecurityGroup"))
    ]


def test_public_subnets_assign_no_public_ips(synthesized_app: SynthesizedApp) -> None:
    public = [
        s["Properties"]
        for i, s in synthesized_app.resources("AWS::EC2::Subnet").items()
        if i.startswith("VpcPublic")
    ]
    assert len(public) == 2
    assert all(s["MapPublicIpOnLaunch"] is False for s in public)


# ---- 3. tasks --------------------------------------------------------------------------------


def test_containers_have_health_checks_and_a_read_only_root_with_scratch_volumes(
    synthesized_app: SynthesizedApp,
) -> None:
    containers = _containers(synthesized_app)
    assert set(containers) == {s.name for s in TOPICS_FILE.services}
    for name, container in containers.items():
        assert container["ReadonlyRootFilesystem"] is True, name
        health = container["HealthCheck"]
        assert health["Command"][0] == "CMD-SHELL"
        assert (health["Interval"], health["Timeout"], health["Retries"]) == (30, 5, 3)
        mounts = {m["ContainerPath"]: m for m in container["MountPoints"]}
        volumes = {v["Name"] for v in container["_volumes"]}
        # Task-scoped volumes (no host path, no EFS): the task's ephemeral storage.
        assert all(v == {"Name": v["Name"]} for v in container["_volumes"])
        assert {m["SourceVolume"] for m in mounts.values()} == volumes
        assert all(m["ReadOnly"] is False for m in mounts.values())
        if name == REAL_IMAGE_SERVICE:
            assert set(mounts) == {"/tmp"}
            assert health["Command"][1] == REAL_IMAGE_HEALTH_CHECK
        else:
            assert set(mounts) == {"/tmp", "/var/cache/nginx", "/run"}
            assert "http://127.0.0.1/" in health["Command"][1]


def test_a_service_can_run_as_a_non_root_user(synthesized_app: SynthesizedApp) -> None:
    users = {name: c.get("User") for name, c in _containers(synthesized_app).items()}
    assert users[REAL_IMAGE_SERVICE] == REAL_IMAGE_USER
    # The placeholder nginx binds port 80 as root (its workers drop to the nginx user).
    assert {u for n, u in users.items() if n != REAL_IMAGE_SERVICE} == {None}


def test_service_egress_is_msk_on_9098_and_https_only(synthesized_app: SynthesizedApp) -> None:
    cluster_sg = _by_id_prefix(synthesized_app, "AWS::EC2::SecurityGroup", "KafkaSecurityGroup")
    for service in TOPICS_FILE.services:
        sg_id = _by_id_prefix(
            synthesized_app,
            "AWS::EC2::SecurityGroup",
            service.name.replace("-", "") + "SecurityGroup",
        )
        inline = synthesized_app.resources("AWS::EC2::SecurityGroup")[sg_id]["Properties"]
        assert inline["SecurityGroupEgress"] == [
            {
                "CidrIp": "0.0.0.0/0",
                "Description": "HTTPS: image pulls, logs, AWS APIs",
                "FromPort": 443,
                "IpProtocol": "tcp",
                "ToPort": 443,
            }
        ]
        separate = [
            (r["Properties"]["FromPort"], r["Properties"]["DestinationSecurityGroupId"])
            for r in synthesized_app.resources("AWS::EC2::SecurityGroupEgress").values()
            if r["Properties"]["GroupId"] == {"Fn::GetAtt": [sg_id, "GroupId"]}
        ]
        assert separate == [(MSK_IAM_PORT, {"Fn::GetAtt": [cluster_sg, "GroupId"]})]


def test_every_log_group_has_a_retention(synthesized_app: SynthesizedApp) -> None:
    groups = synthesized_app.resources("AWS::Logs::LogGroup")
    assert len(groups) >= 9
    assert {g["Properties"].get("RetentionInDays") for g in groups.values()} == {30}


# ---- 4. consumer groups ----------------------------------------------------------------------


def test_consumer_group_prefix_is_the_service_name_and_a_dot(
    synthesized_app: SynthesizedApp,
) -> None:
    for name, container in _containers(synthesized_app).items():
        env = {e["Name"]: e["Value"] for e in container["Environment"]}
        assert env["KAFKA_CONSUMER_GROUP_PREFIX"] == f"{name}."
    topics_yaml = (REPO_ROOT / "topics.yaml").read_text()
    assert "<service>." in topics_yaml


# ---- 5. and 6. alarms and the drift check ----------------------------------------------------


def test_alarms_on_errors_and_drift_notify_an_encrypted_topic_with_the_email(
    synthesized_app: SynthesizedApp,
) -> None:
    topic_id, topic = _one(synthesized_app, "AWS::SNS::Topic")
    assert "KmsMasterKeyId" in topic["Properties"]
    _, subscription = _one(synthesized_app, "AWS::SNS::Subscription")
    assert subscription["Properties"]["Protocol"] == "email"
    assert subscription["Properties"]["Endpoint"] == ALARM_EMAIL
    alarms = {
        logical_id.rstrip("0123456789ABCDEF"): alarm["Properties"]
        for logical_id, alarm in synthesized_app.resources("AWS::CloudWatch::Alarm").items()
    }
    assert set(alarms) == {"TopicsProvisionerErrors", "TopicsDriftCheckErrors", "TopicsDrift"}
    for alarm in alarms.values():
        assert alarm["AlarmActions"] == [{"Ref": topic_id}]
        assert alarm["Threshold"] == 1
        assert alarm["ComparisonOperator"] == "GreaterThanOrEqualToThreshold"
    assert alarms["TopicsProvisionerErrors"]["MetricName"] == "Errors"
    assert alarms["TopicsProvisionerErrors"]["Namespace"] == "AWS/Lambda"
    drift = alarms["TopicsDrift"]
    assert (drift["Namespace"], drift["MetricName"], drift["Statistic"]) == (
        "TopicSync",
        "DriftedTopics",
        "Maximum",
    )
    # Exactly the dimensions topic_sync.metrics emits for the drift check.
    assert sorted((d["Name"], d["Value"]) for d in drift["Dimensions"]) == [
        ("Operation", "drift-check"),
        ("service", "topic-sync"),
    ]
    assert drift["TreatMissingData"] == "ignore"


def test_drift_check_runs_daily_with_the_deployed_spec_as_its_input(
    synthesized_app: SynthesizedApp,
) -> None:
    _, rule = _one(synthesized_app, "AWS::Events::Rule")
    assert rule["Properties"]["ScheduleExpression"] == "rate(1 day)"
    (target,) = rule["Properties"]["Targets"]
    function_id = target["Arn"]["Fn::GetAtt"][0]
    function = synthesized_app.resources("AWS::Lambda::Function")[function_id]["Properties"]
    provisioner_id = _by_id_prefix(synthesized_app, "AWS::Lambda::Function", "TopicsProvisioner")
    provisioner = synthesized_app.resources("AWS::Lambda::Function")[provisioner_id]
    assert function["Handler"] == "topic_sync.drift_check.handler"
    assert function["Code"] == provisioner["Properties"]["Code"]  # the same asset
    # The input is the custom resource's spec (tokens resolved by CloudFormation at deploy).
    _, custom = _one(synthesized_app, "Custom::KafkaTopics")
    parts = target["Input"]["Fn::Join"][1]
    rendered = "".join(p if isinstance(p, str) else "@" for p in parts)
    spec = json.loads(rendered.replace('"@"', '"token"').replace("@", "token"))
    assert spec["Topics"] == custom["Properties"]["Topics"]
    assert (spec["Auth"], spec["ClusterType"]) == ("IAM", "SERVERLESS")
    assert {"Fn::GetAtt": custom["Properties"]["BootstrapServers"]["Fn::GetAtt"]} in parts
    assert len(json.dumps(target["Input"])) < 8192


def test_drift_check_iam_is_read_only(synthesized_app: SynthesizedApp) -> None:
    function_id = _by_id_prefix(synthesized_app, "AWS::Lambda::Function", "TopicsDriftCheck")
    role_id = synthesized_app.resources("AWS::Lambda::Function")[function_id]["Properties"]["Role"][
        "Fn::GetAtt"
    ][0]
    statements = _policy_statements(synthesized_app, role_id)
    actions = sorted(a for s in statements for a in _listify(s["Action"]))
    assert actions == sorted(["kafka-cluster:Connect", *DRIFT_CHECK_ACTIONS])
    assert set(DRIFT_CHECK_ACTIONS) == {
        "kafka-cluster:DescribeTopic",
        "kafka-cluster:DescribeTopicDynamicConfiguration",
    }
    topic_statement = next(
        s for s in statements if "kafka-cluster:DescribeTopic" in _listify(s["Action"])
    )
    tails = sorted(
        str(arn["Fn::Join"][1][-1]).rsplit("/", 1)[1] for arn in topic_statement["Resource"]
    )
    assert tails == sorted(t.name for t in TOPICS_FILE.topics)
    # Its own security group: Kafka on 9098, nothing else.
    sg_id = _by_id_prefix(
        synthesized_app, "AWS::EC2::SecurityGroup", "TopicsDriftCheckSecurityGroup"
    )
    egress = [
        r["Properties"]["FromPort"]
        for r in synthesized_app.resources("AWS::EC2::SecurityGroupEgress").values()
        if r["Properties"]["GroupId"] == {"Fn::GetAtt": [sg_id, "GroupId"]}
    ]
    assert egress == [MSK_IAM_PORT]


# ---- 8. timeouts and framework logging -------------------------------------------------------


def test_bootstrap_lookup_times_out_and_the_framework_logs_errors(
    synthesized_app: SynthesizedApp,
) -> None:
    _, lookup = _one(synthesized_app, "Custom::AWS")
    assert lookup["Properties"]["ServiceTimeout"] == str(
        int(BOOTSTRAP_BROKERS_SERVICE_TIMEOUT.to_seconds())
    )
    assert int(lookup["Properties"]["ServiceTimeout"]) <= 600
    framework = next(
        f["Properties"]
        for f in synthesized_app.resources("AWS::Lambda::Function").values()
        if f["Properties"].get("Handler") == "framework.onEvent"
    )
    assert framework["LoggingConfig"]["ApplicationLogLevel"] == "ERROR"
    assert framework["LoggingConfig"]["LogFormat"] == "JSON"
