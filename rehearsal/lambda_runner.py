"""Run a Python Lambda handler from its built bundle the way the Lambda Python runtime does.

The handler runs in a fresh ``python -S -E`` subprocess whose ``sys.path`` is the bundle
(``/var/task``) and then the packages the Lambda runtime itself provides (boto3 and its
dependencies), nothing else. The event goes in on stdin; the outcome comes back as JSON in a
file: ``{"result": ...}`` or ``{"error": {errorMessage, errorType, stackTrace}}`` (the Lambda
runtime's error shape). Everything the handler prints is its log.
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
import textwrap
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

# What the Lambda Python runtime puts on sys.path besides the function's code.
RUNTIME_PROVIDED = ("boto3", "botocore", "s3transfer", "jmespath", "dateutil", "urllib3", "six.py")

_BOOTSTRAP = textwrap.dedent(
    """
    import json, sys, time, traceback
    bundle, runtime, handler_spec, outcome_file = sys.argv[1:5]
    function_name, function_arn, memory, timeout_s, request_id, log_group = sys.argv[5:11]
    sys.path[:0] = [bundle, runtime]  # Lambda: /var/task first, then the runtime's packages
    deadline = time.monotonic() + float(timeout_s)

    class LambdaContext:
        function_version = "$LATEST"
        log_stream_name = "rehearsal"

        def __init__(self):
            self.function_name = function_name
            self.invoked_function_arn = function_arn
            self.memory_limit_in_mb = int(memory)
            self.aws_request_id = request_id
            self.log_group_name = log_group

        def get_remaining_time_in_millis(self):
            return max(0, int((deadline - time.monotonic()) * 1000))

    def write(outcome):
        with open(outcome_file, "w") as f:
            json.dump(outcome, f)

    try:
        module_name, _, function = handler_spec.rpartition(".")
        __import__(module_name)
        module = sys.modules[module_name]  # __import__ returns the top-level package
        if not module.__file__.startswith(bundle):
            raise ImportError(f"{module_name} came from {module.__file__}, not the bundle")
        event = json.load(sys.stdin)
        write({"result": getattr(module, function)(event, LambdaContext())})
    except Exception as error:
        write({"error": {
            "errorMessage": str(error),
            "errorType": type(error).__name__,
            "requestId": request_id,
            "stackTrace": traceback.format_list(traceback.extract_tb(error.__traceback__)),
        }})
    """
)


@dataclass(frozen=True)
class PythonFunction:
    """One deployed Python function: its bundle, handler and configuration."""

    name: str
    arn: str
    bundle: Path
    runtime_packages: Path
    handler: str = "topic_sync.handler.on_event"
    timeout_s: float = 60.0
    memory_mb: int = 256
    log_group: str = ""
    environment: Mapping[str, str] = field(default_factory=dict)
    log_dir: Path | None = None


@dataclass(frozen=True)
class Invocation:
    """What one invocation returned (``result``) or raised (``error``, Lambda's shape)."""

    request_id: str
    event: Mapping[str, Any]
    result: Any = None
    error: Mapping[str, Any] | None = None
    log: str = ""
    seconds: float = 0.0


def runtime_packages_dir(target: Path) -> Path:
    """A directory with what the Lambda runtime provides, linked from this interpreter's."""
    target.mkdir(parents=True, exist_ok=True)
    site_packages = Path(next(p for p in sys.path if p.endswith("site-packages")))
    for name in RUNTIME_PROVIDED:
        link = target / name
        if not link.exists():
            link.symlink_to(site_packages / name)
    return target


def invoke(function: PythonFunction, event: Mapping[str, Any], request_id: str) -> Invocation:
    """Run the handler once on ``event``; a timeout is a function error, as in Lambda."""
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="lambda-invoke-") as work:
        outcome_file = Path(work) / "outcome.json"
        env = {
            "PATH": "/usr/bin:/bin",
            "LANG": "C.UTF-8",
            "AWS_LAMBDA_FUNCTION_NAME": function.name,
            "AWS_LAMBDA_FUNCTION_VERSION": "$LATEST",
            "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": str(function.memory_mb),
            "AWS_LAMBDA_LOG_GROUP_NAME": function.log_group,
            "LAMBDA_TASK_ROOT": str(function.bundle),
            **function.environment,
        }
        try:
            proc = subprocess.run(
                [
                    sys.executable,
                    "-S",
                    "-E",
                    "-c",
                    _BOOTSTRAP,
                    str(function.bundle),
                    str(function.runtime_packages),
                    function.handler,
                    str(outcome_file),
                    function.name,
                    function.arn,
                    str(function.memory_mb),
                    str(function.timeout_s),
                    request_id,
                    function.log_group,
                ],
                input=json.dumps(event),
                capture_output=True,
                text=True,
                timeout=function.timeout_s,
                cwd=work,
                env=env,
                check=False,
            )
            log = proc.stdout + proc.stderr
            outcome = json.loads(outcome_file.read_text()) if outcome_file.exists() else None
            if outcome is None:
                outcome = {
                    "error": {
                        "errorMessage": f"Runtime exited with error: exit status {proc.returncode}",
                        "errorType": "Runtime.ExitError",
                        "requestId": request_id,
                        "stackTrace": [],
                    }
                }
        except subprocess.TimeoutExpired as timeout:
            log = _text(timeout.stdout) + _text(timeout.stderr)
            outcome = {
                "error": {
                    "errorMessage": f"Task timed out after {function.timeout_s:.2f} seconds",
                    "errorType": "Sandbox.Timedout",
                    "requestId": request_id,
                    "stackTrace": [],
                }
            }
    if function.log_dir is not None:
        function.log_dir.mkdir(parents=True, exist_ok=True)
        (function.log_dir / f"{function.name}-{request_id}.log").write_text(log)
    return Invocation(
        request_id=request_id,
        event=event,
        result=outcome.get("result"),
        error=outcome.get("error"),
        log=log,
        seconds=time.monotonic() - started,
    )


def _text(value: bytes | str | None) -> str:
    if value is None:
        return ""
    return value.decode(errors="replace") if isinstance(value, bytes) else value
