"""A dedicated local broker for one rehearsal, authorizing with the stack's IAM policies.

``scripts/local-kafka up`` with its own run dir and free ports, and ``LOCAL_KAFKA_IAM_POLICIES``
naming the policies file: the broker issues credentials per identity into
``<run dir>/iam-credentials.json`` and authorizes every IAM connection by those policies.

A ``scripts/local-kafka`` without that support (it ships ``kafka/default-iam-policies.json``
once it has it) ignores the variable and authorizes with Kafka ACLs; then only the framework
lifecycle can run, as the ``granted`` identity with ACLs for everything (see ``acl_fallback``).
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from confluent_kafka import KafkaException
from confluent_kafka.admin import (  # type: ignore[attr-defined]  # not re-exported in the stubs
    AclBinding,
    AclOperation,
    AclPermissionType,
    AdminClient,
    ResourcePatternType,
    ResourceType,
)

REPO = Path(__file__).resolve().parents[1]
LOCAL_KAFKA = REPO / "scripts" / "local-kafka"
#: Present once scripts/local-kafka reads LOCAL_KAFKA_IAM_POLICIES (the MSK IAM authorizer).
DEFAULT_POLICIES = REPO / "kafka" / "default-iam-policies.json"
#: The identity the ACL-authorized broker issues and tests grant rights to.
ACL_GRANTED_IDENTITY = "granted"


class BrokerError(RuntimeError):
    """scripts/local-kafka failed; the message carries its output."""


def supports_iam_policies() -> bool:
    """Does scripts/local-kafka authorize with IAM policies (LOCAL_KAFKA_IAM_POLICIES)?"""
    return DEFAULT_POLICIES.exists()


@dataclass(frozen=True)
class Credentials:
    access_key_id: str
    secret_access_key: str
    session_token: str | None = None


@dataclass(frozen=True)
class Broker:
    run_dir: Path
    plaintext_bootstrap: str
    sasl_ssl_bootstrap: str
    ca_file: str
    region: str
    log_dir: Path
    identities: Mapping[str, Credentials]

    def credentials(self, identity: str) -> Credentials:
        if identity not in self.identities:
            raise BrokerError(
                f"the broker issued no credentials for identity {identity!r} "
                f"(it has: {', '.join(sorted(self.identities))}); "
                + (
                    "is it in the policies file?"
                    if supports_iam_policies()
                    else "scripts/local-kafka does not support LOCAL_KAFKA_IAM_POLICIES yet"
                )
            )
        return self.identities[identity]

    def log_offsets(self) -> dict[Path, int]:
        """Where each broker log file ends now (to read only what a check caused)."""
        return {path: path.stat().st_size for path in sorted(self.log_dir.glob("*.log"))}

    def log_since(self, offsets: Mapping[Path, int]) -> list[str]:
        lines: list[str] = []
        for path in sorted(self.log_dir.glob("*.log")):
            with path.open("rb") as log:
                log.seek(offsets.get(path, 0))
                lines += log.read().decode(errors="replace").splitlines()
        return lines


def free_ports(count: int) -> list[int]:
    sockets = []
    try:
        for _ in range(count):
            s = socket.socket()
            s.bind(("127.0.0.1", 0))
            sockets.append(s)
        return [s.getsockname()[1] for s in sockets]
    finally:
        for s in sockets:
            s.close()


def _env(run_dir: Path, policies_file: Path | None, ports: Mapping[str, int]) -> dict[str, str]:
    env = dict(os.environ)
    env["LOCAL_KAFKA_HOME"] = str(run_dir)
    if policies_file is not None:
        env["LOCAL_KAFKA_IAM_POLICIES"] = str(policies_file)
    else:
        env.pop("LOCAL_KAFKA_IAM_POLICIES", None)
    for name, port in ports.items():
        env[f"LOCAL_KAFKA_{name.upper()}_PORT"] = str(port)
    return env


def _run(
    command: str, env: Mapping[str, str], timeout: float = 180
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(LOCAL_KAFKA), command],
        cwd=REPO,
        env=dict(env),
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def up(run_dir: Path, policies_file: Path | None) -> Broker:
    """Start a fresh broker in ``run_dir`` on free ports."""
    plaintext, sasl_ssl, controller = free_ports(3)
    ports = {"plaintext": plaintext, "sasl_ssl": sasl_ssl, "controller": controller}
    result = _run("up", _env(run_dir, policies_file, ports))
    if result.returncode != 0:
        raise BrokerError(
            f"scripts/local-kafka up failed (exit {result.returncode}):\n"
            f"{result.stdout}{result.stderr}"
        )
    state = json.loads((run_dir / "broker.json").read_text())
    credentials = json.loads(Path(state["credentials_file"]).read_text())
    identities = {
        name: Credentials(
            entry["access_key_id"], entry["secret_access_key"], entry.get("session_token")
        )
        for name, entry in credentials["identities"].items()
    }
    return Broker(
        run_dir=run_dir,
        plaintext_bootstrap=state["plaintext_bootstrap"],
        sasl_ssl_bootstrap=state["sasl_ssl_bootstrap"],
        ca_file=state["ca_file"],
        region=credentials.get("region", state["region"]),
        log_dir=Path(state["log_file"]).parent,
        identities=identities,
    )


def down(run_dir: Path) -> None:
    result = _run("down", _env(run_dir, None, {}))
    if result.returncode != 0:
        raise BrokerError(f"scripts/local-kafka down failed:\n{result.stdout}{result.stderr}")


def plaintext_admin(broker: Broker) -> AdminClient:
    return AdminClient({"bootstrap.servers": broker.plaintext_bootstrap, "log_level": 0})


def acl_fallback(broker: Broker, timeout: float = 15.0) -> Credentials:
    """The ACL-authorized broker: allow the ``granted`` identity everything, return its keys."""
    credentials = broker.credentials(ACL_GRANTED_IDENTITY)
    principal = f"User:{credentials.access_key_id}"
    bindings = [
        AclBinding(kind, name, ResourcePatternType.LITERAL, principal, "*", AclOperation.ALL,
                   AclPermissionType.ALLOW)
        for kind, name in (
            (ResourceType.TOPIC, "*"),
            (ResourceType.GROUP, "*"),
            (ResourceType.BROKER, "kafka-cluster"),
        )
    ]  # fmt: skip
    admin = plaintext_admin(broker)
    for future in admin.create_acls(bindings, request_timeout=timeout).values():
        future.result(timeout=timeout)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:  # ACLs reach the authorizer through the metadata log
        try:
            from confluent_kafka.admin import AclBindingFilter  # type: ignore[attr-defined]

            flt = AclBindingFilter(
                ResourceType.ANY, None, ResourcePatternType.ANY, principal, None,  # type: ignore[arg-type]
                AclOperation.ANY, AclPermissionType.ANY,
            )  # fmt: skip
            if len(admin.describe_acls(flt, request_timeout=timeout).result()) >= len(bindings):
                break
        except KafkaException:
            pass
        time.sleep(0.1)
    return credentials


def describe(broker: Broker, topics: list[str], timeout: float = 15.0) -> dict[str, Any]:
    """{topic: {"partitions": n, "config": {...}}} for the topics that exist (PLAINTEXT)."""
    from confluent_kafka.admin import ConfigResource  # type: ignore[attr-defined]

    admin = plaintext_admin(broker)
    metadata = admin.list_topics(timeout=timeout).topics
    present = [t for t in topics if t in metadata and metadata[t].error is None]
    out: dict[str, Any] = {t: {"partitions": len(metadata[t].partitions)} for t in present}
    if present:
        resources = [ConfigResource("topic", t) for t in present]
        for resource, future in admin.describe_configs(resources, request_timeout=timeout).items():
            entries = future.result(timeout=timeout)
            out[resource.name]["config"] = {k: v.value for k, v in entries.items()}
    return out
