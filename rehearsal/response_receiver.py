"""The CloudFormation ResponseURL, answered locally over HTTPS on port 443.

The provider framework replies with ``https.request({hostname, path, method: "PUT"})`` built from
the event's ResponseURL (cfn-response.js / outbound.js): no port, no agent, so always port 443,
with Node's normal certificate checks. Nothing in the framework is patched: the receiver

- listens on port 443 of a loopback address of its own (a random ``127.x.y.z``, so concurrent
  rehearsals never collide, and no /etc/hosts entry is needed: the URL's host is that IP);
- serves a certificate for that IP from a throw-away CA, which Node trusts through
  ``NODE_EXTRA_CA_CERTS`` (read by Node at start-up, exactly as Lambda lets a function do).

Binding port 443 needs root or ``net.ipv4.ip_unprivileged_port_start <= 443`` (the default in
Docker containers); otherwise :class:`ReceiverError` says so.
"""

from __future__ import annotations

import errno
import json
import random
import ssl
import subprocess
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from rehearsal.serving import serving

HTTPS_PORT = 443


class ReceiverError(RuntimeError):
    """The HTTPS receiver cannot start (port 443 not bindable, openssl failed)."""


@dataclass(frozen=True)
class Reply:
    """One PUT to the ResponseURL: the path it went to and the JSON body CloudFormation reads."""

    path: str
    body: dict[str, Any]
    size_bytes: int
    content_type: str | None


@dataclass
class ResponseReceiver:
    address: str = ""
    ca_file: Path = Path()
    replies: list[Reply] = field(default_factory=list)

    def response_url(self, request_id: str) -> str:
        """A ResponseURL shaped like CloudFormation's pre-signed S3 URL, pointing here."""
        return (
            f"https://{self.address}/cloudformation-custom-resource-response/{request_id}"
            f"?X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Signature={uuid.uuid4().hex}"
        )

    def replies_for(self, request_id: str) -> list[Reply]:
        return [reply for reply in self.replies if f"/{request_id}?" in reply.path]


def _openssl(*args: str, cwd: Path) -> None:
    result = subprocess.run(
        ["openssl", *args], cwd=cwd, capture_output=True, text=True, check=False
    )
    if result.returncode != 0:
        raise ReceiverError(f"openssl {args[0]} failed: {result.stderr.strip()}")


def make_certificates(directory: Path, address: str) -> tuple[Path, Path, Path]:
    """(CA certificate, server certificate, server key) for ``address``, made with openssl."""
    directory.mkdir(parents=True, exist_ok=True)
    curve = ("-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes")
    _openssl(
        "req", "-x509", *curve, "-keyout", "ca.key", "-out", "ca.pem", "-days", "2",
        "-subj", "/CN=topic-sync rehearsal ResponseURL CA",
        "-addext", "basicConstraints=critical,CA:TRUE",
        "-addext", "keyUsage=critical,keyCertSign,cRLSign",
        cwd=directory,
    )  # fmt: skip
    _openssl(
        "req", *curve, "-keyout", "server.key", "-out", "server.csr", "-subj", f"/CN={address}",
        cwd=directory,
    )  # fmt: skip
    (directory / "server.ext").write_text(
        f"subjectAltName=IP:{address}\nbasicConstraints=CA:FALSE\n"
        "keyUsage=critical,digitalSignature\nextendedKeyUsage=serverAuth\n"
    )
    _openssl(
        "x509", "-req", "-in", "server.csr", "-CA", "ca.pem", "-CAkey", "ca.key",
        "-CAcreateserial", "-days", "2", "-extfile", "server.ext", "-out", "server.pem",
        cwd=directory,
    )  # fmt: skip
    return directory / "ca.pem", directory / "server.pem", directory / "server.key"


class _Handler(BaseHTTPRequestHandler):
    server: _Server
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:
        return

    def do_PUT(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length)
        try:
            body = json.loads(raw)
            status = 200
        except ValueError:
            body, status = {"unparseable": raw.decode(errors="replace")}, 400
        reply = Reply(self.path, body, len(raw), self.headers.get("Content-Type"))
        self.server.state.replies.append(reply)
        self.send_response(status)
        self.send_header("Content-Length", "0")
        self.end_headers()


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, address: str, state: ResponseReceiver) -> None:
        super().__init__((address, HTTPS_PORT), _Handler)
        self.state = state


def _bind(state: ResponseReceiver, attempts: int = 20) -> _Server:
    last: OSError | None = None
    for _ in range(attempts):
        address = f"127.{random.randint(1, 254)}.{random.randint(0, 255)}.{random.randint(1, 254)}"  # noqa: S311 (not security)
        try:
            return _Server(address, state)
        except PermissionError as error:
            raise ReceiverError(
                "cannot listen on port 443 (the provider framework always replies to port 443): "
                "run as root or set net.ipv4.ip_unprivileged_port_start=443"
            ) from error
        except OSError as error:
            if error.errno != errno.EADDRINUSE:
                raise ReceiverError(f"cannot listen on {address}:443: {error}") from error
            last = error
    raise ReceiverError(f"no free loopback address for port 443: {last}")


@contextmanager
def running(directory: Path) -> Iterator[ResponseReceiver]:
    """An HTTPS receiver on ``127.x.y.z:443``; its CA file is ``receiver.ca_file``."""
    state = ResponseReceiver()
    server = _bind(state)
    state.address = str(server.server_address[0])
    ca_file, cert, key = make_certificates(directory, state.address)
    state.ca_file = ca_file
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    server.socket = context.wrap_socket(server.socket, server_side=True)
    with serving(server, "response-receiver"):
        yield state
