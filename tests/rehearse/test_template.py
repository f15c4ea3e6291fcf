"""The intrinsic resolver on small hand-written templates: each intrinsic, and what it refuses."""

from __future__ import annotations

from typing import Any

import pytest

from rehearsal.template import FakeEnvironment, Resolver, UnresolvableIntrinsic

ENV = FakeEnvironment()
CLUSTER = f"arn:aws:kafka:us-east-1:123456789012:cluster/demo/{ENV.cluster_uuid}"


def template(**resources: Any) -> dict[str, Any]:
    return {
        "Parameters": {
            "Prefix": {"Type": "String", "Default": "team"},
            "Names": {"Type": "CommaDelimitedList", "Default": "a, b"},
            "NoDefault": {"Type": "String"},
            "FromSsm": {"Type": "AWS::SSM::Parameter::Value<String>", "Default": "/x/y"},
        },
        "Mappings": {"Regions": {"us-east-1": {"Short": "use1"}}},
        "Resources": {
            "Kafka": {
                "Type": "AWS::MSK::ServerlessCluster",
                "Properties": {"ClusterName": "demo"},
                "Metadata": {"aws:cdk:path": "Stack/Kafka"},
            },
            "Role": {"Type": "AWS::IAM::Role", "Properties": {"RoleName": "the-role"}},
            "Fn": {"Type": "AWS::Lambda::Function", "Properties": {}},
            "Bucket": {"Type": "AWS::S3::Bucket", "Metadata": {"aws:cdk:path": "Stack/Bucket"}},
            **resources,
        },
    }


def resolve(value: Any) -> Any:
    return Resolver(template(), ENV).resolve(value, "Test")


def test_the_cluster_is_serverless_shaped_and_its_ref_and_arn_agree() -> None:
    assert ENV.cluster_uuid.endswith("-s1")
    assert resolve({"Ref": "Kafka"}) == CLUSTER
    assert resolve({"Fn::GetAtt": ["Kafka", "Arn"]}) == CLUSTER
    assert resolve({"Fn::GetAtt": "Kafka.Arn"}) == CLUSTER
    assert Resolver(template(), ENV).cluster_arn() == CLUSTER


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("AWS::Region", "us-east-1"),
        ("AWS::AccountId", "123456789012"),
        ("AWS::Partition", "aws"),
        ("AWS::URLSuffix", "amazonaws.com"),
        ("AWS::StackName", "TopicSync"),
        ("AWS::StackId", ENV.stack_id),
    ],
)
def test_pseudo_parameters(name: str, expected: str) -> None:
    assert resolve({"Ref": name}) == expected


def test_parameters_with_defaults_resolve() -> None:
    assert resolve({"Ref": "Prefix"}) == "team"
    assert resolve({"Ref": "Names"}) == ["a", "b"]


def test_ref_and_get_att_of_known_resource_types() -> None:
    assert resolve({"Ref": "Role"}) == "the-role"
    assert resolve({"Fn::GetAtt": ["Role", "Arn"]}) == "arn:aws:iam::123456789012:role/the-role"
    name = resolve({"Ref": "Fn"})
    assert name.startswith("TopicSync-Fn-")
    assert resolve({"Fn::GetAtt": ["Fn", "Arn"]}) == (
        f"arn:aws:lambda:us-east-1:123456789012:function:{name}"
    )


def test_join_select_split_as_cdk_builds_topic_arns() -> None:
    path = {"Fn::Split": ["/", {"Fn::GetAtt": ["Kafka", "Arn"]}]}
    arn = {
        "Fn::Join": [
            "",
            [
                "arn:",
                {"Ref": "AWS::Partition"},
                ":kafka:",
                {"Ref": "AWS::Region"},
                ":",
                {"Ref": "AWS::AccountId"},
                ":topic/",
                {"Fn::Select": [1, path]},
                "/",
                {"Fn::Select": ["2", path]},
                "/orders",
            ],
        ]
    }
    assert (
        resolve(arn) == f"arn:aws:kafka:us-east-1:123456789012:topic/demo/{ENV.cluster_uuid}/orders"
    )


def test_sub_with_pseudo_parameters_refs_attributes_variables_and_escapes() -> None:
    assert resolve({"Fn::Sub": "arn:${AWS::Partition}:s3:::${AWS::AccountId}-${AWS::Region}"}) == (
        "arn:aws:s3:::123456789012-us-east-1"
    )
    assert resolve({"Fn::Sub": "${Kafka.Arn}/x"}) == f"{CLUSTER}/x"
    assert resolve({"Fn::Sub": "${Role}:${Prefix}"}) == "the-role:team"
    assert resolve({"Fn::Sub": ["${Who}-${!Literal}", {"Who": {"Ref": "Prefix"}}]}) == (
        "team-${Literal}"
    )


def test_find_in_map_base64_and_no_value() -> None:
    assert resolve({"Fn::FindInMap": ["Regions", {"Ref": "AWS::Region"}, "Short"]}) == "use1"
    assert resolve({"Fn::Base64": "hi"}) == "aGk="
    assert resolve(["a", {"Ref": "AWS::NoValue"}, "b"]) == ["a", "b"]
    assert resolve({"Keep": 1, "Drop": {"Ref": "AWS::NoValue"}}) == {"Keep": 1}


def test_whole_documents_keep_their_shape() -> None:
    document = {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Effect": "Allow",
                "Action": ["kafka-cluster:Connect"],
                "Resource": {"Fn::GetAtt": ["Kafka", "Arn"]},
                "Condition": {"Bool": {"aws:SecureTransport": "true"}},
            }
        ],
    }
    resolved = resolve(document)
    assert resolved["Statement"][0]["Resource"] == CLUSTER
    assert resolved["Statement"][0]["Condition"] == {"Bool": {"aws:SecureTransport": "true"}}


@pytest.mark.parametrize(
    ("value", "names"),
    [
        ({"Ref": "Missing"}, ["Missing"]),
        ({"Ref": "Bucket"}, ["Bucket (Stack/Bucket)", "AWS::S3::Bucket"]),
        ({"Fn::GetAtt": ["Bucket", "Arn"]}, ["Bucket (Stack/Bucket)"]),
        ({"Fn::GetAtt": ["Kafka", "BootstrapBrokers"]}, ["Kafka (Stack/Kafka)"]),
        ({"Ref": "NoDefault"}, ["NoDefault"]),
        ({"Ref": "FromSsm"}, ["FromSsm"]),
        ({"Fn::ImportValue": "shared-arn"}, ["Fn::ImportValue"]),
        ({"Fn::If": ["IsProd", "a", "b"]}, ["Fn::If"]),
        ({"Fn::GetAZs": ""}, ["Fn::GetAZs"]),
        ({"Fn::Select": [5, ["a"]]}, ["out of range"]),
        ({"Fn::Sub": "${Nope}"}, ["Nope"]),
        ({"Fn::Join": ["", {"Ref": "AWS::Region"}]}, ["Fn::Join needs a list"]),
    ],
)
def test_what_cannot_be_resolved_is_an_error_naming_it(value: Any, names: list[str]) -> None:
    with pytest.raises(UnresolvableIntrinsic) as error:
        Resolver(template(), ENV).resolve({"Resource": value}, "MyPolicy (Stack/MyPolicy)")
    message = str(error.value)
    assert "MyPolicy (Stack/MyPolicy)" in message
    for name in names:
        assert name in message


def test_attribute_overrides_stand_in_for_what_only_a_deployment_knows() -> None:
    resolver = Resolver(
        template(Brokers={"Type": "Custom::AWS"}),
        ENV,
        attributes={("Brokers", "BootstrapBrokerStringSaslIam"): "127.0.0.1:9098"},
    )
    value = {"Fn::GetAtt": ["Brokers", "BootstrapBrokerStringSaslIam"]}
    assert resolver.resolve(value, "Topics") == "127.0.0.1:9098"
