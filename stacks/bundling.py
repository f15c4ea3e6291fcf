"""Builds the provisioning Lambda's asset without Docker.

The asset is ``lambda/handler.py`` + ``lambda/drift_check.py`` + ``lambda/topic_sync/`` + the
wheels pinned in ``lambda/requirements.txt``, installed for the Lambda's platform (not this
machine's). The installed dependencies are cached under ``build/lambda-deps/<key>/`` keyed by
(requirements, platform, Python version), so a warm synth is a file copy and works offline.
"""

from __future__ import annotations

import hashlib
import platform
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import cast

import jsii
from aws_cdk import AssetHashType, BundlingOptions, DockerImage, ILocalBundling
from aws_cdk import aws_lambda as lambda_

REPO_ROOT = Path(__file__).resolve().parent.parent
LAMBDA_SOURCE_DIR = REPO_ROOT / "lambda"
DEPENDENCY_CACHE_DIR = REPO_ROOT / "build" / "lambda-deps"

# What ships from lambda/: the handler and the engine package, minus the operator-side modules
# (the topics.yaml loader needs pyyaml, which is not in the bundle; the CLI; the local-invoke
# helpers): the Lambda never imports them.
# The entry points: the custom resource's handler and the scheduled drift check.
_ENTRY_FILES = ("handler.py", "drift_check.py")
_PACKAGE_DIR = "topic_sync"
_EXCLUDED_PACKAGE_FILES = frozenset({"spec_file.py", "cli.py", "render.py", "local_invoke.py"})
# pip --target leaves console scripts (machine-specific shebangs) in bin/; Lambda never runs them.
_EXCLUDED_DEPENDENCY_DIRS = frozenset({"bin", "__pycache__"})


@dataclass(frozen=True)
class LambdaPlatform:
    """Where the bundle will run: a manylinux tag and a CPython version like "3.13"."""

    manylinux_tag: str
    python_version: str

    @classmethod
    def for_lambda(
        cls, architecture: lambda_.Architecture, runtime: lambda_.Runtime
    ) -> LambdaPlatform:
        machine = "aarch64" if architecture.name == lambda_.Architecture.ARM_64.name else "x86_64"
        # manylinux_2_28, not manylinux2014: confluent-kafka stopped shipping manylinux2014
        # wheels, and pip would silently fall back to an ancient release (2.4.0) that has them.
        return cls(f"manylinux_2_28_{machine}", runtime.name.removeprefix("python"))

    @classmethod
    def local(cls) -> LambdaPlatform:
        """This interpreter's platform: the bundle smoke test imports the result here."""
        if sys.platform != "linux":
            raise RuntimeError("the local-platform bundle can only be built on Linux")
        return cls(
            f"manylinux_2_28_{platform.machine()}",
            f"{sys.version_info.major}.{sys.version_info.minor}",
        )


def _requirements_file(source_dir: Path) -> Path:
    return source_dir / "requirements.txt"


def dependency_cache_key(requirements: bytes, target: LambdaPlatform) -> str:
    digest = hashlib.sha256(requirements)
    digest.update(f"\0{target.manylinux_tag}\0cp{target.python_version}".encode())
    return f"{target.manylinux_tag}-cp{target.python_version}-{digest.hexdigest()[:16]}"


def installed_dependencies(
    target: LambdaPlatform,
    *,
    source_dir: Path = LAMBDA_SOURCE_DIR,
    cache_dir: Path = DEPENDENCY_CACHE_DIR,
) -> Path:
    """The directory holding lambda/requirements.txt installed for ``target`` (cached)."""
    requirements = _requirements_file(source_dir)
    cached = cache_dir / dependency_cache_key(requirements.read_bytes(), target)
    if cached.is_dir():
        return cached
    cache_dir.mkdir(parents=True, exist_ok=True)
    # Install next to the cache entry, then rename: an interrupted install never looks complete.
    staging = Path(tempfile.mkdtemp(prefix=f".{cached.name}-", dir=cache_dir))
    try:
        subprocess.run(
            [
                sys.executable,
                "-m",
                "pip",
                "install",
                "--quiet",
                "--disable-pip-version-check",
                "--no-input",
                "--no-deps",
                "--no-compile",
                "--only-binary=:all:",
                "--implementation=cp",
                f"--platform={target.manylinux_tag}",
                f"--python-version={target.python_version}",
                f"--target={staging}",
                f"--requirement={requirements}",
            ],
            check=True,
        )
        for name in _EXCLUDED_DEPENDENCY_DIRS:
            shutil.rmtree(staging / name, ignore_errors=True)
        staging.rename(cached)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return cached


def _ignore_build_litter(directory: str, names: list[str]) -> set[str]:
    return {
        name
        for name in names
        if name == "__pycache__"
        or name.endswith((".pyc", ".pyo"))
        or (Path(directory).name == _PACKAGE_DIR and name in _EXCLUDED_PACKAGE_FILES)
    }


def build_lambda_bundle(
    output_dir: Path,
    target: LambdaPlatform,
    *,
    source_dir: Path = LAMBDA_SOURCE_DIR,
    cache_dir: Path = DEPENDENCY_CACHE_DIR,
) -> None:
    """Write the complete Lambda code (dependencies + entry points + engine) into ``output_dir``."""
    dependencies = installed_dependencies(target, source_dir=source_dir, cache_dir=cache_dir)
    shutil.copytree(dependencies, output_dir, dirs_exist_ok=True)
    for entry in _ENTRY_FILES:
        shutil.copy2(source_dir / entry, output_dir / entry)
    shutil.copytree(
        source_dir / _PACKAGE_DIR,
        output_dir / _PACKAGE_DIR,
        ignore=_ignore_build_litter,
        dirs_exist_ok=True,
    )


@jsii.implements(ILocalBundling)
class LocalLambdaBundler:
    """CDK local bundling hook: builds the asset in-process instead of in a container."""

    def __init__(self, target: LambdaPlatform) -> None:
        self._target = target

    def try_bundle(self, output_dir: str, options: BundlingOptions) -> bool:
        build_lambda_bundle(Path(output_dir), self._target)
        return True


def lambda_code(architecture: lambda_.Architecture, runtime: lambda_.Runtime) -> lambda_.Code:
    """The provisioning Lambda's code asset, bundled locally for its platform.

    The asset hash is taken from the bundle itself (OUTPUT), so it changes exactly when what
    ships changes, and stays the same across machines and synths.
    """
    target = LambdaPlatform.for_lambda(architecture, runtime)
    return lambda_.Code.from_asset(
        str(LAMBDA_SOURCE_DIR),
        asset_hash_type=AssetHashType.OUTPUT,
        bundling=BundlingOptions(
            # Never pulled: local bundling always succeeds or raises.
            image=DockerImage.from_registry("local-bundling-only"),
            # cast: jsii calls try_bundle(output_dir, options) positionally, unlike the stub.
            local=cast(ILocalBundling, LocalLambdaBundler(target)),
        ),
    )
