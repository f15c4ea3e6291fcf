"""Builds the provisioning Lambda's asset without Docker.

The asset is the ``topic_sync`` package, whole (the engine and its Lambda entry points
``topic_sync.handler`` and ``topic_sync.drift_check``), plus the wheels pinned in
``lambda-requirements.txt`` next to this module, installed for the Lambda's platform (not this
machine's). Operator-side code lives in other packages (``topic_sync_tools``, this one), so
nothing is left out by name. The installed dependencies are cached per (requirements, platform,
Python version), so a warm synth is a file copy and works offline.
"""

from __future__ import annotations

import hashlib
import os
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

import topic_sync

#: The engine package: what the Lambda runs, shipped whole.
ENGINE_PACKAGE_DIR = Path(topic_sync.__file__).resolve().parent
#: The Lambda's pinned runtime dependencies (package data of this package).
LAMBDA_REQUIREMENTS = Path(__file__).resolve().parent / "lambda-requirements.txt"
#: Where the installed dependencies are cached: TOPIC_SYNC_BUNDLE_CACHE, else the user's
#: cache directory (``$XDG_CACHE_HOME`` or ``~/.cache``) under topic-sync/lambda-deps.
BUNDLE_CACHE_ENV = "TOPIC_SYNC_BUNDLE_CACHE"

# pip --target leaves console scripts (machine-specific shebangs) in bin/; Lambda never runs them.
_EXCLUDED_DEPENDENCY_DIRS = frozenset({"bin", "__pycache__"})


def default_cache_dir() -> Path:
    configured = os.environ.get(BUNDLE_CACHE_ENV)
    if configured:
        return Path(configured)
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "topic-sync" / "lambda-deps"


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


def dependency_cache_key(requirements: bytes, target: LambdaPlatform) -> str:
    digest = hashlib.sha256(requirements)
    digest.update(f"\0{target.manylinux_tag}\0cp{target.python_version}".encode())
    return f"{target.manylinux_tag}-cp{target.python_version}-{digest.hexdigest()[:16]}"


def installed_dependencies(
    target: LambdaPlatform,
    *,
    requirements: Path = LAMBDA_REQUIREMENTS,
    cache_dir: Path | None = None,
) -> Path:
    """The directory holding the Lambda's requirements installed for ``target`` (cached)."""
    cache_dir = cache_dir or default_cache_dir()
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
    return {name for name in names if name == "__pycache__" or name.endswith((".pyc", ".pyo"))}


def build_lambda_bundle(
    output_dir: Path,
    target: LambdaPlatform,
    *,
    engine_dir: Path = ENGINE_PACKAGE_DIR,
    requirements: Path = LAMBDA_REQUIREMENTS,
    cache_dir: Path | None = None,
) -> None:
    """Write the complete Lambda code (dependencies + the engine package) into ``output_dir``."""
    dependencies = installed_dependencies(target, requirements=requirements, cache_dir=cache_dir)
    shutil.copytree(dependencies, output_dir, dirs_exist_ok=True)
    shutil.copytree(
        engine_dir,
        output_dir / engine_dir.name,
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
        str(ENGINE_PACKAGE_DIR),
        asset_hash_type=AssetHashType.OUTPUT,
        bundling=BundlingOptions(
            # Never pulled: local bundling always succeeds or raises.
            image=DockerImage.from_registry("local-bundling-only"),
            # cast: jsii calls try_bundle(output_dir, options) positionally, unlike the stub.
            local=cast(ILocalBundling, LocalLambdaBundler(target)),
        ),
    )
