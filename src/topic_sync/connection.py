"""How to reach a cluster: bootstrap servers, auth mode, and the librdkafka config for them."""

from __future__ import annotations

import enum
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from topic_sync.exceptions import SpecError, clip


class AuthMode(enum.Enum):
    IAM = "IAM"
    PLAINTEXT = "PLAINTEXT"


#: The librdkafka settings ClientConfig / --client-config may set (an allow-list): which CA and
#: client certificate to use, timeouts and back-offs, logging. Everything else is refused, above
#: all what decides where we connect (bootstrap.servers, metadata.broker.list,
#: client.dns.lookup, broker.address.*) or whether the connection is authenticated and verified
#: (security.protocol, sasl.*, oauth*, enable.ssl.certificate.verification,
#: ssl.endpoint.identification.algorithm, ssl.cipher.suites, ...), and callbacks.
ALLOWED_CLIENT_CONFIG = frozenset(
    {
        # trust and client identity: these add checks, never remove them
        "ssl.ca.location",
        "ssl.ca.pem",
        "ssl.crl.location",
        "ssl.certificate.location",
        "ssl.certificate.pem",
        "ssl.key.location",
        "ssl.key.password",
        "ssl.key.pem",
        "ssl.keystore.location",
        "ssl.keystore.password",
        # timing and sizes
        "socket.timeout.ms",
        "socket.connection.setup.timeout.ms",
        "socket.keepalive.enable",
        "socket.nagle.disable",
        "socket.send.buffer.bytes",
        "socket.receive.buffer.bytes",
        "connections.max.idle.ms",
        "reconnect.backoff.ms",
        "reconnect.backoff.max.ms",
        "retry.backoff.ms",
        "retry.backoff.max.ms",
        "metadata.max.age.ms",
        "topic.metadata.refresh.interval.ms",
        "api.version.request.timeout.ms",
        "message.max.bytes",
        "receive.message.max.bytes",
        # identity in broker logs, and librdkafka's own logging
        "client.id",
        "log_level",
        "log.connection.close",
    }
)
_SECRET_MARKERS = ("password", "secret", "token", "sasl.oauthbearer.config", "key.pem")


def _name(key: str) -> str:
    """A setting's name for a message: as is when it looks like one, else clipped."""
    return key if key.isprintable() and len(key) <= 60 and " " not in key else clip(key, 60)


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
            if (
                not sep
                or not host
                or not port.isascii()
                or not port.isdigit()
                or not 0 < int(port[:6]) < 65536
                or any(c.isspace() for c in host)
            ):
                raise SpecError([f"BootstrapServers: {clip(server)} is not host:port"])
        refused = sorted(key for key in self.client_config if key not in ALLOWED_CLIENT_CONFIG)
        if refused:
            more = f" (+{len(refused) - 3} more)" if len(refused) > 3 else ""
            raise SpecError(
                [
                    f"ClientConfig: {', '.join(_name(k) for k in refused[:3])}{more} cannot "
                    "be set: it decides where to connect or how the connection is authenticated "
                    "and verified (allowed: CA and client certificates, timeouts, client.id, "
                    "log_level)"
                ]
            )
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
