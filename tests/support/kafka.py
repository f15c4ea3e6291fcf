"""The local Apache Kafka broker (scripts/local-kafka) and clients for it.

The broker has three listeners on 127.0.0.1: PLAINTEXT (principal ANONYMOUS, a super user),
SASL_SSL with OAUTHBEARER carrying real MSK IAM tokens (checked against the test-only credentials
in ``iam-credentials.json``; the principal is ``User:<identity>``, authorized from that identity's
IAM policies as MSK would), and the KRaft controller.

Identities and policies come from ``LOCAL_KAFKA_IAM_POLICIES`` (default
``kafka/default-iam-policies.json``: ``granted`` may do everything on the cluster, ``denied`` may
only connect). A test that needs other identities starts its own broker with its own policies file
(:func:`broker_up` with ``policies=``).
"""

from __future__ import annotations

import base64
import contextlib
import fcntl
import json
import os
import socket
import subprocess
import time
import uuid
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from unittest import mock

from confluent_kafka import Consumer, KafkaError, KafkaException, Producer, TopicPartition
from confluent_kafka.admin import (  # type: ignore[attr-defined]  # not re-exported in the stubs
    AdminClient,
    NewTopic,
)

from topic_sync.connection import AuthMode, Connection, client_config

# (key, value) of one message, as the helpers below produce and read them.
Record = tuple[bytes | None, bytes | None]

REPO_ROOT = Path(__file__).resolve().parents[2]
LOCAL_KAFKA = REPO_ROOT / "scripts" / "local-kafka"
DEFAULT_POLICIES = REPO_ROOT / "kafka" / "default-iam-policies.json"
# `up` includes TLS/credential generation and storage format; 60 s is the script's own bound.
UP_TIMEOUT_S = 120

_AWS_ENV_VARS = (
    "AWS_ACCESS_KEY_ID",
    "AWS_SECRET_ACCESS_KEY",
    "AWS_SESSION_TOKEN",
    "AWS_SECURITY_TOKEN",
    "AWS_PROFILE",
    "AWS_DEFAULT_PROFILE",
    "AWS_ROLE_ARN",
    "AWS_WEB_IDENTITY_TOKEN_FILE",
    "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",
    "AWS_CONTAINER_CREDENTIALS_FULL_URI",
)


@dataclass(frozen=True)
class IamIdentity:
    """Test credentials the broker issued to one identity of its IAM policies file (temporary
    keys: the session token is part of them, as for a Lambda or ECS task role)."""

    name: str
    access_key_id: str
    secret_access_key: str
    session_token: str | None

    @property
    def principal(self) -> str:
        """The Kafka principal of connections authenticated with these credentials."""
        return f"User:{self.name}"


@dataclass(frozen=True)
class LocalKafka:
    """A running local broker and the identities of its IAM policies file. With the default file,
    ``access_key_id`` & co. are the ``granted`` identity (the Lambda's role: everything on the
    cluster) and ``denied_*`` the one that may only connect."""

    plaintext_bootstrap: str
    sasl_ssl_bootstrap: str
    ca_file: str
    region: str
    cluster_arn: str
    run_dir: str
    log_file: str
    identities: Mapping[str, IamIdentity] = field(hash=False)

    def identity(self, name: str) -> IamIdentity:
        try:
            return self.identities[name]
        except KeyError:
            known = sorted(self.identities)
            raise KeyError(f"no identity {name!r}; the broker has {known}") from None

    @property
    def access_key_id(self) -> str:
        return self.identity("granted").access_key_id

    @property
    def secret_access_key(self) -> str:
        return self.identity("granted").secret_access_key

    @property
    def session_token(self) -> str | None:
        return self.identity("granted").session_token

    @property
    def denied_access_key_id(self) -> str:
        return self.identity("denied").access_key_id

    @property
    def denied_secret_access_key(self) -> str:
        return self.identity("denied").secret_access_key

    @property
    def principal(self) -> str:
        return self.identity("granted").principal

    @property
    def denied_principal(self) -> str:
        return self.identity("denied").principal


class LocalKafkaError(RuntimeError):
    """scripts/local-kafka failed; the message carries its output (including the log tail)."""


def _script_env(
    run_dir: Path | None,
    ports: Mapping[str, int] | None,
    policies: Path | None = None,
    partition_quota: str | None = None,
) -> dict[str, str]:
    env = dict(os.environ)
    if run_dir is not None:
        env["LOCAL_KAFKA_HOME"] = str(run_dir)
    if policies is not None:
        env["LOCAL_KAFKA_IAM_POLICIES"] = str(policies)
    if partition_quota is not None:
        env["LOCAL_KAFKA_PARTITION_QUOTA"] = partition_quota
    for name, port in (ports or {}).items():
        env[f"LOCAL_KAFKA_{name.upper()}_PORT"] = str(port)
    return env


def run_local_kafka(
    command: str,
    *,
    run_dir: Path | None = None,
    ports: Mapping[str, int] | None = None,
    policies: Path | None = None,
    partition_quota: str | None = None,
    timeout: float = UP_TIMEOUT_S,
) -> subprocess.CompletedProcess[str]:
    """Run ``scripts/local-kafka COMMAND``; ``ports`` keys: plaintext, sasl_ssl, controller;
    ``policies``: the IAM policies file (``LOCAL_KAFKA_IAM_POLICIES``); ``partition_quota``:
    ``N/SECONDS`` (``LOCAL_KAFKA_PARTITION_QUOTA``)."""
    return subprocess.run(
        [str(LOCAL_KAFKA), command],
        cwd=REPO_ROOT,
        env=_script_env(run_dir, ports, policies, partition_quota),
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def default_run_dir() -> Path:
    home = os.environ.get("LOCAL_KAFKA_HOME")
    return Path(home) if home else REPO_ROOT / ".kafka" / "run"


# Session tokens issued with each local access key id, so that ``aws_env(key, secret)`` puts the
# complete temporary credentials in the environment (as a Lambda's environment has them).
_ISSUED_SESSION_TOKENS: dict[str, str] = {}


def load_broker(run_dir: Path) -> LocalKafka:
    """Describe the broker running from ``run_dir`` (files written by ``local-kafka up``)."""
    state = json.loads((run_dir / "broker.json").read_text())
    creds = json.loads(Path(state["credentials_file"]).read_text())
    identities = {
        name: IamIdentity(
            name=name,
            access_key_id=c["access_key_id"],
            secret_access_key=c["secret_access_key"],
            session_token=c.get("session_token"),
        )
        for name, c in creds["identities"].items()
    }
    for identity in identities.values():
        if identity.session_token is not None:
            _ISSUED_SESSION_TOKENS[identity.access_key_id] = identity.session_token
    return LocalKafka(
        plaintext_bootstrap=state["plaintext_bootstrap"],
        sasl_ssl_bootstrap=state["sasl_ssl_bootstrap"],
        ca_file=state["ca_file"],
        region=state["region"],
        cluster_arn=creds["cluster_arn"],
        run_dir=str(run_dir),
        log_file=state["log_file"],
        identities=identities,
    )


def free_ports(count: int) -> list[int]:
    """``count`` TCP ports on 127.0.0.1 that were free a moment ago."""
    socks = [socket.socket() for _ in range(count)]
    try:
        for s in socks:
            s.bind(("127.0.0.1", 0))
        return [s.getsockname()[1] for s in socks]
    finally:
        for s in socks:
            s.close()


def broker_up(
    run_dir: Path | None = None,
    ports: Mapping[str, int] | None = None,
    policies: Path | None = None,
) -> tuple[LocalKafka, bool]:
    """Bring a broker up (or reuse a running one). Returns it and whether this call started it."""
    run_dir = run_dir or default_run_dir()
    up = run_local_kafka("up", run_dir=run_dir, ports=ports, policies=policies)
    if up.returncode != 0:
        raise LocalKafkaError(
            f"scripts/local-kafka up failed (exit {up.returncode}):\n{up.stdout}{up.stderr}"
        )
    broker = load_broker(run_dir)
    last_line = up.stdout.strip().splitlines()[-1]
    if last_line != broker.plaintext_bootstrap:
        raise LocalKafkaError(f"up printed {last_line!r}, state says {broker.plaintext_bootstrap}")
    return broker, "already running" not in up.stderr


def broker_down(run_dir: Path | None = None) -> None:
    down = run_local_kafka("down", run_dir=run_dir or default_run_dir())
    if down.returncode != 0:
        raise LocalKafkaError(f"scripts/local-kafka down failed:\n{down.stdout}{down.stderr}")


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


@contextmanager
def _sessions_lock(run_dir: Path) -> Iterator[Path]:
    run_dir.mkdir(parents=True, exist_ok=True)
    with (run_dir / ".sessions.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        yield run_dir / "sessions"


@contextmanager
def session_broker(run_dir: Path | None = None) -> Iterator[tuple[LocalKafka, bool]]:
    """A broker shared by concurrent pytest sessions on one run dir.

    Each session holds a lease (a file named after its pid). The broker is stopped when the last
    session leaves, but only if a test session started it (marker ``started-by-tests``); one
    started by hand (``make kafka-up``) keeps running. Yields the broker and whether this session
    started it.
    """
    run_dir = run_dir or default_run_dir()
    marker = run_dir / "started-by-tests"
    with _sessions_lock(run_dir) as leases:
        leases.mkdir(exist_ok=True)
        lease = leases / str(os.getpid())
        lease.touch()
        try:
            broker, started = broker_up(run_dir)
        except BaseException:
            lease.unlink(missing_ok=True)
            raise
        if started:
            marker.touch()
    try:
        yield broker, started
    finally:
        with _sessions_lock(run_dir) as leases:
            lease.unlink(missing_ok=True)
            for other in leases.iterdir():
                if not (other.name.isdigit() and _pid_alive(int(other.name))):
                    other.unlink(missing_ok=True)  # a session that died without cleaning up
            if marker.exists() and not any(leases.iterdir()):
                broker_down(run_dir)


# ---- clients ---------------------------------------------------------------------------------


def plaintext_config(broker: LocalKafka, **extra: Any) -> dict[str, Any]:
    """librdkafka settings for the PLAINTEXT listener (super user), via the production builder."""
    conn = Connection(broker.plaintext_bootstrap, auth=AuthMode.PLAINTEXT)
    return {**client_config(conn), **extra}


def iam_config(broker: LocalKafka, **extra: Any) -> dict[str, Any]:
    """The production IAM client config (SASL_SSL + OAUTHBEARER + MSK signer ``oauth_cb``),
    trusting the local CA. The signer reads AWS credentials from the environment whenever
    librdkafka asks for a token, so use clients built from this inside :func:`aws_env`."""
    conn = Connection(
        broker.sasl_ssl_bootstrap,
        auth=AuthMode.IAM,
        region=broker.region,
        client_config={"ssl.ca.location": broker.ca_file},
    )
    return {**client_config(conn), **extra}


@contextmanager
def aws_env(
    access_key_id: str, secret_access_key: str, session_token: str | None = None
) -> Iterator[None]:
    """Set exactly these AWS credentials in ``os.environ`` for the duration (others unset).

    ``session_token=None`` means the one the local broker issued with ``access_key_id`` (if it
    is one of its keys): temporary credentials are only ever complete with it. To present a key
    without its session token, sign a token with :func:`sign_msk_token`."""
    if session_token is None:
        session_token = _ISSUED_SESSION_TOKENS.get(access_key_id)
    saved = {name: os.environ.get(name) for name in (*_AWS_ENV_VARS, "AWS_EC2_METADATA_DISABLED")}
    try:
        for name in _AWS_ENV_VARS:
            os.environ.pop(name, None)
        os.environ["AWS_ACCESS_KEY_ID"] = access_key_id
        os.environ["AWS_SECRET_ACCESS_KEY"] = secret_access_key
        if session_token is not None:
            os.environ["AWS_SESSION_TOKEN"] = session_token
        # Never fall back to instance metadata (a slow network timeout) if env creds are missing.
        os.environ["AWS_EC2_METADATA_DISABLED"] = "true"
        yield
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


def plaintext_admin(broker: LocalKafka, **extra: Any) -> AdminClient:
    return AdminClient(plaintext_config(broker, **extra))


@contextmanager
def identity_env(broker: LocalKafka, identity: str) -> Iterator[IamIdentity]:
    """The AWS credentials of ``identity`` in the environment while the block runs."""
    ident = broker.identity(identity)
    with aws_env(ident.access_key_id, ident.secret_access_key, ident.session_token):
        yield ident


@contextmanager
def iam_admin(broker: LocalKafka, identity: str = "granted", **extra: Any) -> Iterator[AdminClient]:
    """A production-shaped IAM AdminClient; the AWS credentials of ``identity`` are in the
    environment while the block runs, where the MSK signer finds them."""
    with identity_env(broker, identity):
        yield AdminClient(iam_config(broker, **extra))


def check_iam(policies: Path, queries: Sequence[Mapping[str, str]]) -> list[dict[str, Any]]:
    """Ask the broker's own IAM emulation (``LocalIamTool check``, one JVM, no broker) for a
    decision per query: ``{"identity", "action", "resource"}`` (IAM policy evaluation) or
    ``{"identity", "operation", "resource_type", "name"}`` (a Kafka operation, as the authorizer
    maps it). Each answer has ``allowed``, ``action``, ``resource`` and ``reason``."""
    lib = REPO_ROOT / ".kafka" / "lib"
    run = subprocess.run(
        ["java", "-XX:TieredStopAtLevel=1", "-XX:+UseSerialGC", "-cp", f"{lib}/*",
         "topicsync.localkafka.LocalIamTool", "check", str(policies)],
        input="".join(json.dumps(q) + "\n" for q in queries),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )  # fmt: skip
    if run.returncode != 0:
        raise LocalKafkaError(f"LocalIamTool check failed: {run.stderr}")
    return [json.loads(line) for line in run.stdout.splitlines()]


def local_iam_tool(*args: str) -> subprocess.CompletedProcess[str]:
    """``LocalIamTool ARGS`` (issue / check / validate) on the broker's classpath."""
    lib = REPO_ROOT / ".kafka" / "lib"
    return subprocess.run(
        ["java", "-XX:TieredStopAtLevel=1", "-XX:+UseSerialGC", "-cp", f"{lib}/*",
         "topicsync.localkafka.LocalIamTool", *args],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )  # fmt: skip


# ---- topics and data -------------------------------------------------------------------------


def unique_topic_name(prefix: str = "t") -> str:
    """A fresh topic name (the broker is shared by the whole session)."""
    return f"{prefix}-{uuid.uuid4().hex[:12]}"


def create_topic(
    admin: AdminClient,
    name: str,
    *,
    partitions: int = 1,
    replication_factor: int = 1,
    config: Mapping[str, str] | None = None,
    timeout: float = 15.0,
) -> None:
    """Create a topic and wait until the broker's metadata shows it."""
    new = NewTopic(
        name, partitions, replication_factor=replication_factor, config=dict(config or {})
    )
    admin.create_topics([new], request_timeout=timeout)[name].result(timeout=timeout)
    wait_for_topic(admin, name, timeout=timeout)


def topic_names(admin: AdminClient, timeout: float = 15.0) -> set[str]:
    return set(admin.list_topics(timeout=timeout).topics)


def wait_for_topic(admin: AdminClient, name: str, timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout
    while name not in topic_names(admin, timeout=timeout):
        if time.monotonic() > deadline:
            raise AssertionError(f"topic {name} not visible after {timeout} s")
        time.sleep(0.05)


def produce_messages(
    config: Mapping[str, Any], topic: str, count: int, *, timeout: float = 30.0
) -> list[Record]:
    """Produce ``count`` keyed messages (acks=all, idempotent) and return what was acknowledged."""
    producer = Producer({**config, "acks": "all", "enable.idempotence": True})
    acked: list[Record] = []
    errors: list[str] = []

    def on_delivery(err: Any, msg: Any) -> None:
        if err is not None:
            errors.append(str(err))
        else:
            acked.append((msg.key(), msg.value()))

    run = uuid.uuid4().hex[:8]
    try:
        for i in range(count):
            producer.produce(
                topic, key=f"k{i}".encode(), value=f"{run}-{i}".encode(), on_delivery=on_delivery
            )
            producer.poll(0)
        remaining = producer.flush(timeout)
    finally:
        # Closed now, not by the garbage collector: a producer whose config holds callbacks
        # lives on (a reference cycle) and keeps reconnecting to a broker a test has stopped.
        with contextlib.suppress(KafkaException):
            producer.purge()
        with contextlib.suppress(KafkaException):
            producer.close()
    if errors or remaining:
        raise AssertionError(f"produce to {topic}: {remaining} undelivered, errors {errors[:5]}")
    return acked


def consume_messages(
    config: Mapping[str, Any], topic: str, expected: int, *, timeout: float = 30.0
) -> list[Record]:
    """Read every partition of ``topic`` from the beginning until ``expected`` messages arrived
    (or the timeout). Assigns partitions directly: no consumer group, no rebalance wait."""
    consumer = Consumer(
        {
            **config,
            "group.id": f"test-reader-{uuid.uuid4().hex[:8]}",
            "enable.auto.commit": False,
            "auto.offset.reset": "earliest",
        }
    )
    try:
        metadata = consumer.list_topics(topic, timeout=timeout).topics[topic]
        if metadata.error is not None:
            raise KafkaException(metadata.error)
        consumer.assign(
            [TopicPartition(topic, p, 0) for p in sorted(metadata.partitions)]  # 0: from the start
        )
        received: list[Record] = []
        deadline = time.monotonic() + timeout
        while len(received) < expected and time.monotonic() < deadline:
            for msg in consumer.consume(num_messages=1000, timeout=0.5):
                if msg.error() is not None:
                    raise KafkaException(msg.error())
                received.append((msg.key(), msg.value()))
        return received
    finally:
        consumer.close()


# ---- IAM tokens and authentication failures --------------------------------------------------


def sign_msk_token(
    access_key_id: str,
    secret_access_key: str,
    region: str,
    *,
    action: str = "kafka-cluster:Connect",
    signed_at: datetime | None = None,
    expires: int = 900,
    session_token: str | None = None,
) -> str:
    """An MSK IAM token built like aws_msk_iam_sasl_signer does (botocore SigV4QueryAuth, then
    User-Agent appended unsigned), but with a chosen action, signing time and session token
    (none unless given), to forge bad ones."""
    from botocore.auth import SigV4QueryAuth
    from botocore.awsrequest import AWSRequest
    from botocore.credentials import Credentials

    signer = SigV4QueryAuth(
        Credentials(access_key_id, secret_access_key, session_token),
        "kafka-cluster",
        region,
        expires=expires,
    )
    request = AWSRequest(
        method="GET", url=f"https://kafka.{region}.amazonaws.com/", params={"Action": action}
    )
    when = signed_at or datetime.now(UTC)
    # botocore reads the clock once per signature through this function.
    with mock.patch("botocore.auth.get_current_datetime", return_value=when.replace(tzinfo=None)):
        signer.add_auth(request)
    request.params = {"User-Agent": "topic-sync-tests"}
    url = request.prepare().url
    return base64.urlsafe_b64encode(url.encode()).decode().rstrip("=")


def fixed_token_oauth_cb(token: str, lifetime_s: float = 600.0) -> Any:
    """An ``oauth_cb`` handing librdkafka ``token``; the lifetime it reports is in the future
    even for an expired token, so librdkafka sends it and the broker has to reject it."""

    def oauth_cb(_config: Any) -> tuple[str, float]:
        return token, time.time() + lifetime_s

    return oauth_cb


def expect_authentication_failure(config: Mapping[str, Any], timeout: float = 15.0) -> KafkaError:
    """Connect with ``config`` and return the authentication error librdkafka reports (through
    ``error_cb``); fail if it never comes within ``timeout`` or topics can be listed."""
    errors: list[KafkaError] = []
    # log_level 2: the retry loop would otherwise print one FAIL line per attempt.
    client_conf: dict[str, Any] = {**config, "error_cb": errors.append, "log_level": 2}
    admin = AdminClient(client_conf)
    deadline = time.monotonic() + timeout
    # The client connects to the bootstrap server by itself; errors arrive via poll().
    while time.monotonic() < deadline:
        admin.poll(0.1)
        auth = [e for e in errors if e.code() == KafkaError._AUTHENTICATION]
        if auth:
            try:
                admin.list_topics(timeout=1)
            except KafkaException:
                return auth[0]
            raise AssertionError("listed topics despite an authentication error")
    raise AssertionError(f"no authentication error within {timeout} s; errors seen: {errors}")


# ---- faults: pausing and killing a broker ---------------------------------------------------


def broker_pid(run_dir: Path) -> int:
    """The pid of the broker running from ``run_dir`` (to pause or kill it)."""
    return int((run_dir / "kafka.pid").read_text().strip())
