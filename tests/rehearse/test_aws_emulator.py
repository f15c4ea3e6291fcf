"""The local Lambda and CloudFormation APIs, through boto3 (the reference client): a handler's
exception is a function error, never a successful payload; DescribeStacks gives the scripted
status."""

from __future__ import annotations

import json
import textwrap
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.config import Config

from rehearsal import aws_emulator
from rehearsal.lambda_runner import PythonFunction, runtime_packages_dir

STACK_ID = "arn:aws:cloudformation:us-east-1:123456789012:stack/Demo/0000"

HANDLER = textwrap.dedent(
    """
    import os, sys

    def on_event(event, context):
        if event.get("fail"):
            raise ValueError("no: " + event["fail"])
        if event.get("hang"):
            import time
            time.sleep(30)
        return {
            "echo": event,
            "remaining_ok": 0 < context.get_remaining_time_in_millis() <= 5000,
            "function": context.function_name,
            "path_is_bundle_then_runtime": sys.path[:2],
            "env": os.environ.get("EXTRA"),
        }
    """
)


@pytest.fixture(scope="module")
def emulator(tmp_path_factory: pytest.TempPathFactory) -> Iterator[aws_emulator.AwsEmulator]:
    root = tmp_path_factory.mktemp("lambda")
    bundle = root / "bundle"
    bundle.mkdir()
    (bundle / "handler.py").write_text(HANDLER)
    state = aws_emulator.AwsEmulator(STACK_ID, stack_status="UPDATE_ROLLBACK_IN_PROGRESS")
    state.add_function(
        PythonFunction(
            name="demo-fn",
            arn="arn:aws:lambda:us-east-1:123456789012:function:demo-fn",
            bundle=bundle,
            handler="handler.on_event",
            runtime_packages=runtime_packages_dir(root / "runtime"),
            timeout_s=5,
            environment={"EXTRA": "yes"},
        )
    )
    with aws_emulator.running(state) as running:
        yield running


def client(emulator: aws_emulator.AwsEmulator, service: str) -> Any:
    return boto3.client(
        service,
        region_name="us-east-1",
        endpoint_url=emulator.endpoint,
        aws_access_key_id="AKIAEXAMPLE",
        aws_secret_access_key="secret",
        config=Config(retries={"max_attempts": 1}, read_timeout=30),
    )


def test_a_return_value_is_the_payload(emulator: aws_emulator.AwsEmulator) -> None:
    response = client(emulator, "lambda").invoke(
        FunctionName="arn:aws:lambda:us-east-1:123456789012:function:demo-fn",
        Payload=json.dumps({"hello": "world"}),
    )
    assert response["StatusCode"] == 200
    assert "FunctionError" not in response
    payload = json.loads(response["Payload"].read())
    assert payload["echo"] == {"hello": "world"}
    assert payload["remaining_ok"] is True
    assert payload["function"] == "demo-fn"
    assert payload["env"] == "yes"
    bundle, runtime = (Path(p) for p in payload["path_is_bundle_then_runtime"])
    assert (bundle / "handler.py").exists()
    assert (runtime / "boto3").exists()


def test_an_exception_is_a_function_error_in_lambdas_shape(
    emulator: aws_emulator.AwsEmulator,
) -> None:
    response = client(emulator, "lambda").invoke(
        FunctionName="demo-fn", Payload=json.dumps({"fail": "partitions cannot decrease"})
    )
    assert response["StatusCode"] == 200
    assert response["FunctionError"] == "Unhandled"
    payload = json.loads(response["Payload"].read())
    assert payload["errorMessage"] == "no: partitions cannot decrease"
    assert payload["errorType"] == "ValueError"
    assert any("handler.py" in frame for frame in payload["stackTrace"])


def test_a_timeout_is_a_function_error(emulator: aws_emulator.AwsEmulator) -> None:
    response = client(emulator, "lambda").invoke(
        FunctionName="demo-fn", Payload=json.dumps({"hang": True})
    )
    assert response["FunctionError"] == "Unhandled"
    assert (
        "Task timed out after 5.00 seconds"
        in json.loads(response["Payload"].read())["errorMessage"]
    )


def test_unknown_functions_and_other_invocation_types_are_api_errors(
    emulator: aws_emulator.AwsEmulator,
) -> None:
    lam = client(emulator, "lambda")
    with pytest.raises(lam.exceptions.ResourceNotFoundException):
        lam.invoke(FunctionName="nope", Payload=b"{}")
    with pytest.raises(lam.exceptions.InvalidParameterValueException):
        lam.invoke(FunctionName="demo-fn", InvocationType="Event", Payload=b"{}")
    configuration = lam.get_function(FunctionName="demo-fn")["Configuration"]
    assert configuration["State"] == "Active"


def test_describe_stacks_answers_the_scripted_status(emulator: aws_emulator.AwsEmulator) -> None:
    stacks = client(emulator, "cloudformation").describe_stacks(StackName=STACK_ID)["Stacks"]
    assert stacks[0]["StackStatus"] == "UPDATE_ROLLBACK_IN_PROGRESS"
    assert stacks[0]["StackId"] == STACK_ID
