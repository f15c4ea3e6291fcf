"""How to reach a cluster: bootstrap servers, auth mode, and the librdkafka config for them."""

from __future__ import annotations

import enum
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from topic_sync.exceptions import SpecError


class AuthMode(enum.Enum):
    IAM = "IAM"
    PLAINTEXT = "PLAINTEXT"


# librdkafka settings an operator may never override through ClientConfig:
# they decide whether traffic is authenticated and encrypted.
_PROTECTED_KEYS = frozenset(
    {"bootstrap.servers", "security.protocol", "sasl.mechanism", "sasl.mechanisms", "oauth_cb"}
)
_SECRET_MARKERS = ("password", "secret", "token", "sasl.oauthbearer.config", "key.pem")


@dataclass(frozen=True)
class Connection:
    bootstrap_servers: str
    auth: AuthMode = AuthMode.IAM
    region: str | None = None
    client_config: Mapping[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        servers = [s.strip() for s in self.bootstrap_servers.split(",") if s.strip()]
        if not servers:
            raise SpecError(["BootstrapServers: must be 'host:port[,host:port...]', got nothing"])
        for server in servers:
            host, sep, port = server.rpartition(":")
            if not sep or not host or not port.isdigit():
                raise SpecError([f"BootstrapServers: {server!r} is not host:port"])
        bad = sorted(_PROTECTED_KEYS & set(self.client_config))
        if bad:
            raise SpecError([f"ClientConfig: {', '.join(bad)} cannot be overridden"])
        if self.auth is AuthMode.IAM and not self.resolved_region():
            raise SpecError(["Region: required for IAM auth (or set AWS_REGION)"])

    def resolved_region(self) -> str | None:
        return self.region or os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION")


def msk_iam_oauth_cb(region: str) -> Callable[[Any], tuple[str, float]]:
    """An librdkafka ``oauth_cb`` that signs MSK IAM tokens with the default AWS credentials.

    The signer returns the expiry in milliseconds; librdkafka wants seconds.
    """

    def oauth_cb(_oauthbearer_config: Any) -> tuple[str, float]:
        # Imported lazily: it pulls in boto3, which PLAINTEXT users never need.
        from aws_msk_iam_sasl_signer import MSKAuthTokenProvider

        token, expiry_ms = MSKAuthTokenProvider.generate_auth_token(region)
        return token, expiry_ms / 1000.0

    return oauth_cb


def client_config(conn: Connection) -> dict[str, Any]:
    """librdkafka settings for an AdminClient (or producer/consumer) talking to ``conn``."""
    config: dict[str, Any] = {
        "bootstrap.servers": conn.bootstrap_servers,
        # Fail fast instead of retrying a dead address for minutes.
        "socket.connection.setup.timeout.ms": 10_000,
        "reconnect.backoff.max.ms": 2_000,
    }
    if conn.auth is AuthMode.IAM:
        region = conn.resolved_region()
        assert region is not None  # checked in Connection.__post_init__
        config.update(
            {
                "security.protocol": "SASL_SSL",
                "sasl.mechanisms": "OAUTHBEARER",
                "oauth_cb": msk_iam_oauth_cb(region),
            }
        )
    else:
        config["security.protocol"] = "PLAINTEXT"
    config.update(conn.client_config)
    return config


def masked(config: Mapping[str, Any]) -> dict[str, Any]:
    """A copy of a client config that is safe to log."""
    out: dict[str, Any] = {}
    for key, value in config.items():
        if callable(value):
            out[key] = "<callback>"
        elif any(marker in key for marker in _SECRET_MARKERS):
            out[key] = "***"
        else:
            out[key] = value
    return out
