"""Cold start (import the handler from the built Lambda asset), asset size, and `make synth`."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import textwrap
import time
import zipfile
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent

# What the Lambda Python runtime puts on sys.path besides the function's code (boto3 and its
# dependencies); everything else the handler imports must come from the asset.
RUNTIME_PROVIDED = ("boto3", "botocore", "s3transfer", "jmespath", "dateutil", "urllib3", "six.py")

# Runs in a fresh interpreter that sees only the asset and the runtime's packages. -B: the
# asset ships without bytecode and /var/task is read-only, so a cold start compiles every module
# of ours from source, as here.
_IMPORT = textwrap.dedent(
    """
    import sys, time
    sys.path[:0] = [sys.argv[1], sys.argv[2]]
    started = time.perf_counter()
    from topic_sync import handler
    elapsed = time.perf_counter() - started
    assert handler.__file__.startswith(sys.argv[1]), handler.__file__
    print(elapsed)
    """
)


def build_asset(output_dir: Path, *, lambda_platform: bool) -> Path:
    """The asset exactly as synth bundles it (stacks/bundling.py), for this machine's platform
    or for the deployed Lambda's (architecture and runtime from stacks/kafka_topics.py)."""
    # Imported here: aws_cdk starts a jsii node process, which only this scenario needs.
    from topic_sync_cdk.bundling import LambdaPlatform, build_lambda_bundle

    if lambda_platform:
        from topic_sync_cdk.kafka_topics import LAMBDA_ARCHITECTURE, LAMBDA_RUNTIME

        target = LambdaPlatform.for_lambda(LAMBDA_ARCHITECTURE, LAMBDA_RUNTIME)
    else:
        target = LambdaPlatform.local()
    shutil.rmtree(output_dir, ignore_errors=True)
    output_dir.mkdir(parents=True)
    build_lambda_bundle(output_dir, target)
    return output_dir


def platform_name(*, lambda_platform: bool) -> str:
    from topic_sync_cdk.bundling import LambdaPlatform

    if lambda_platform:
        from topic_sync_cdk.kafka_topics import LAMBDA_ARCHITECTURE, LAMBDA_RUNTIME

        target = LambdaPlatform.for_lambda(LAMBDA_ARCHITECTURE, LAMBDA_RUNTIME)
    else:
        target = LambdaPlatform.local()
    return f"{target.manylinux_tag} cp{target.python_version}"


def unzipped_bytes(directory: Path) -> int:
    return sum(p.stat().st_size for p in directory.rglob("*") if p.is_file() and not p.is_symlink())


def zipped_bytes(directory: Path, zip_path: Path) -> int:
    """Size of the asset zipped with deflate (what CDK uploads and Lambda counts)."""
    zip_path.unlink(missing_ok=True)
    with zipfile.ZipFile(zip_path, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for path in sorted(directory.rglob("*")):
            if path.is_file():
                archive.write(path, path.relative_to(directory))
    return zip_path.stat().st_size


def runtime_dir(parent: Path) -> Path:
    """A directory standing in for the Lambda runtime's own packages (symlinks into the venv)."""
    runtime = parent / "lambda-runtime"
    shutil.rmtree(runtime, ignore_errors=True)
    runtime.mkdir(parents=True)
    site_packages = Path(next(p for p in sys.path if p.endswith("site-packages")))
    for name in RUNTIME_PROVIDED:
        (runtime / name).symlink_to(site_packages / name)
    return runtime


def import_seconds(bundle: Path, runtime: Path) -> float:
    """Time ``import handler`` in a fresh interpreter (-S -E -B: no site, env or bytecode)."""
    result = subprocess.run(
        [sys.executable, "-S", "-E", "-B", "-c", _IMPORT, str(bundle), str(runtime)],
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
        cwd=bundle.parent,
        env={"AWS_REGION": "us-east-1", "PATH": "/usr/bin:/bin", "LAMBDA_TASK_ROOT": str(bundle)},
    )
    if result.returncode != 0:
        raise RuntimeError(f"importing the handler from {bundle} failed:\n{result.stderr}")
    return float(result.stdout.strip().splitlines()[-1])


def synth_seconds() -> float:
    """Wall time of ``make synth`` (the bundling cache is warm once the asset was built)."""
    env = {**os.environ, "CDK_DISABLE_VERSION_CHECK": "1"}
    started = time.perf_counter()
    result = subprocess.run(
        ["make", "--no-print-directory", "synth"],
        cwd=REPO_ROOT,
        env=env,
        capture_output=True,
        text=True,
        check=False,
        timeout=600,
    )
    elapsed = time.perf_counter() - started
    if result.returncode != 0:
        raise RuntimeError(f"make synth failed:\n{result.stdout[-2000:]}{result.stderr[-2000:]}")
    return elapsed
