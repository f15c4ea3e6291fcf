"""A local stand-in for the two AWS APIs a custom resource deployment calls besides Kafka.

- **Lambda** ``Invoke`` (``POST /2015-03-31/functions/{name}/invocations``), what the provider
  framework calls: RequestResponse only. A handler's return value is the 200 payload; an
  exception is a *function error*: status 200, header ``X-Amz-Function-Error: Unhandled``,
  payload ``{errorMessage, errorType, requestId, stackTrace}``, as Lambda answers it. Also
  ``GetFunction`` (``GET /2015-03-31/functions/{name}``), which the framework's SDK waiter polls
  when an Invoke itself failed.
- **CloudFormation** ``DescribeStacks`` (query protocol, ``POST /``), which the provisioner calls
  to tell a rollback or a stack delete from an ordinary update: it answers with the status the
  rehearsal scripts (``stack_status``).

Point SDKs at it with ``AWS_ENDPOINT_URL_LAMBDA`` / ``AWS_ENDPOINT_URL_CLOUDFORMATION``.
Requests must carry a SigV4 ``Authorization`` header (the signature itself is not checked).
"""

from __future__ import annotations

import json
import time
import urllib.parse
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from xml.sax.saxutils import escape

from rehearsal.lambda_runner import Invocation, PythonFunction, invoke
from rehearsal.serving import serving

_LAMBDA_PREFIX = "/2015-03-31/functions/"
_CFN_NAMESPACE = "http://cloudformation.amazonaws.com/doc/2010-05-15/"


@dataclass
class AwsEmulator:
    """The emulated account's state: deployed functions, the stack's status, call records."""

    stack_id: str
    stack_status: str = "CREATE_IN_PROGRESS"
    functions: dict[str, PythonFunction] = field(default_factory=dict)
    invocations: list[Invocation] = field(default_factory=list)
    function_errors_sent: list[str] = field(default_factory=list)
    describe_stacks_calls: list[str] = field(default_factory=list)
    #: Step Functions StartExecution calls (the provider framework starting its waiter).
    executions: list[dict[str, Any]] = field(default_factory=list)
    endpoint: str = ""

    def add_function(self, function: PythonFunction) -> None:
        self.functions[function.name] = function

    def function_named(self, name_or_arn: str) -> PythonFunction | None:
        name = urllib.parse.unquote(name_or_arn)
        if name.startswith("arn:"):
            # arn:aws:lambda:REGION:ACCOUNT:function:NAME[:QUALIFIER]
            parts = name.split(":")
            name = parts[6] if len(parts) > 6 else ""
        return self.functions.get(name)


class _Handler(BaseHTTPRequestHandler):
    server: _Server
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:
        return  # quiet: the rehearsal reports what matters

    def _body(self) -> bytes:
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length else b""

    def _send(self, status: int, body: bytes, headers: dict[str, str]) -> None:
        self.send_response(status)
        for name, value in headers.items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def _lambda_error(self, status: int, error_type: str, message: str) -> None:
        body = json.dumps({"Type": "User", "message": message}).encode()
        headers = {"Content-Type": "application/json", "x-amzn-ErrorType": error_type}
        self._send(status, body, {**headers, "x-amzn-RequestId": str(uuid.uuid4())})

    def _signed(self) -> bool:
        return self.headers.get("Authorization", "").startswith("AWS4-HMAC-SHA256 ")

    def do_GET(self) -> None:
        path = urllib.parse.urlsplit(self.path).path
        if not path.startswith(_LAMBDA_PREFIX) or not self._signed():
            self._lambda_error(403, "AccessDeniedException", "unsigned or unknown request")
            return
        name = path.removeprefix(_LAMBDA_PREFIX).strip("/")
        function = self.server.state.function_named(name)
        if function is None:
            self._lambda_error(404, "ResourceNotFoundException", f"Function not found: {name}")
            return
        configuration = {
            "FunctionName": function.name,
            "FunctionArn": function.arn,
            "Handler": function.handler,
            "State": "Active",
            "LastUpdateStatus": "Successful",
        }
        body = json.dumps({"Configuration": configuration}).encode()
        self._send(200, body, {"Content-Type": "application/json"})

    def do_POST(self) -> None:
        path = urllib.parse.urlsplit(self.path).path
        body = self._body()
        if not self._signed():
            self._lambda_error(403, "MissingAuthenticationTokenException", "request not signed")
            return
        target = self.headers.get("X-Amz-Target", "")
        if target.startswith("AWSStepFunctions."):
            self._step_functions(target.removeprefix("AWSStepFunctions."), body)
        elif path.startswith(_LAMBDA_PREFIX) and path.endswith("/invocations"):
            self._invoke(path.removeprefix(_LAMBDA_PREFIX).removesuffix("/invocations"), body)
        elif path == "/":
            self._cloudformation(body)
        else:
            self._lambda_error(404, "UnknownOperationException", f"no operation at {path}")

    def _invoke(self, name: str, body: bytes) -> None:
        state = self.server.state
        function = state.function_named(name)
        if function is None:
            self._lambda_error(404, "ResourceNotFoundException", f"Function not found: {name}")
            return
        invocation_type = self.headers.get("X-Amz-Invocation-Type", "RequestResponse")
        if invocation_type != "RequestResponse":
            self._lambda_error(
                400,
                "InvalidParameterValueException",
                f"this emulator only runs RequestResponse invocations, not {invocation_type}",
            )
            return
        try:
            event = json.loads(body or b"{}")
        except ValueError:
            self._lambda_error(400, "InvalidRequestContentException", "payload is not JSON")
            return
        request_id = str(uuid.uuid4())
        invocation = invoke(function, event, request_id)
        state.invocations.append(invocation)
        headers = {
            "Content-Type": "application/json",
            "X-Amz-Executed-Version": "$LATEST",
            "x-amzn-RequestId": request_id,
        }
        if invocation.error is not None:
            state.function_errors_sent.append(request_id)
            payload = json.dumps(invocation.error).encode()
            self._send(200, payload, {**headers, "X-Amz-Function-Error": "Unhandled"})
        else:
            self._send(200, json.dumps(invocation.result).encode(), headers)

    def _step_functions(self, action: str, body: bytes) -> None:
        """StartExecution only: recorded, and run by the rehearsal as the waiter would."""
        headers = {"Content-Type": "application/x-amz-json-1.0"}
        if action != "StartExecution":
            error = {"__type": "UnknownOperationException", "message": f"{action} is not emulated"}
            self._send(400, json.dumps(error).encode(), headers)
            return
        request = json.loads(body or b"{}")
        self.server.state.executions.append(request)
        arn = str(request.get("stateMachineArn", "")).replace(":stateMachine:", ":execution:")
        answer = {"executionArn": f"{arn}:{uuid.uuid4()}", "startDate": time.time()}
        self._send(200, json.dumps(answer).encode(), headers)

    def _cloudformation(self, body: bytes) -> None:
        state = self.server.state
        form = urllib.parse.parse_qs(body.decode())
        action = form.get("Action", [""])[0]
        request_id = str(uuid.uuid4())
        if action != "DescribeStacks":
            self._cfn_error(400, "InvalidAction", f"{action} is not emulated", request_id)
            return
        name = form.get("StackName", [""])[0]
        state.describe_stacks_calls.append(state.stack_status)
        if name not in (state.stack_id, state.stack_id.split("/")[1]):
            self._cfn_error(
                400, "ValidationError", f"Stack with id {name} does not exist", request_id
            )
            return
        xml = (
            f'<DescribeStacksResponse xmlns="{_CFN_NAMESPACE}"><DescribeStacksResult><Stacks>'
            f"<member><StackName>{escape(state.stack_id.split('/')[1])}</StackName>"
            f"<StackId>{escape(state.stack_id)}</StackId>"
            "<CreationTime>2026-01-01T00:00:00Z</CreationTime>"
            f"<StackStatus>{escape(state.stack_status)}</StackStatus></member>"
            "</Stacks></DescribeStacksResult>"
            f"<ResponseMetadata><RequestId>{request_id}</RequestId></ResponseMetadata>"
            "</DescribeStacksResponse>"
        )
        self._send(200, xml.encode(), {"Content-Type": "text/xml"})

    def _cfn_error(self, status: int, code: str, message: str, request_id: str) -> None:
        xml = (
            f'<ErrorResponse xmlns="{_CFN_NAMESPACE}"><Error><Type>Sender</Type>'
            f"<Code>{code}</Code><Message>{escape(message)}</Message></Error>"
            f"<RequestId>{request_id}</RequestId></ErrorResponse>"
        )
        self._send(status, xml.encode(), {"Content-Type": "text/xml"})


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, state: AwsEmulator) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.state = state


@contextmanager
def running(state: AwsEmulator) -> Iterator[AwsEmulator]:
    """Serve ``state`` on a free port of 127.0.0.1 (``state.endpoint``) while the block runs."""
    server = _Server(state)
    state.endpoint = f"http://127.0.0.1:{server.server_address[1]}"
    with serving(server, "aws-emulator"):
        yield state
