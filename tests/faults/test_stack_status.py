"""Reading the stack status when the CloudFormation API answers garbage or nothing at all:
always "unknown" (None) within a few seconds, so the handler takes the path that keeps data."""

from __future__ import annotations

import http.server
import threading
import time
from collections.abc import Iterator

import pytest

from tests.engine.helpers import event, invoke, topics_prop
from tests.support.kafka import aws_env
from topic_sync import rollback

STACK_ID = "arn:aws:cloudformation:us-east-1:123456789012:stack/app/5b6a6c30-0000-11ef-0000-0a1b"
BOUND_S = 8.0  # two tries of 2 s connect + 2 s read, and botocore's backoff between them

ANSWERS = {
    "404-empty": (404, "text/plain", b""),
    "html": (200, "text/html", b"<html><body><h1>Welcome to nginx!</h1></body></html>"),
    "html-502": (502, "text/html", b"<html><body>Bad Gateway</body></html>"),
    "xml-no-stacks": (
        200,
        "text/xml",
        b'<DescribeStacksResponse xmlns="http://cloudformation.amazonaws.com/doc/2010-05-15/">'
        b"<DescribeStacksResult><Stacks><member><StackName>app</StackName></member></Stacks>"
        b"</DescribeStacksResult></DescribeStacksResponse>",
    ),
}


def _server(answer: str) -> http.server.ThreadingHTTPServer:
    class Handler(http.server.BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            self.rfile.read(int(self.headers.get("Content-Length", 0)))
            if answer == "silent":
                time.sleep(BOUND_S + 2)  # accepts, reads the request, never answers in time
                return
            status, content_type, body = ANSWERS[answer]
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    return server


@pytest.fixture
def cloudformation_answering(
    monkeypatch: pytest.MonkeyPatch, request: pytest.FixtureRequest
) -> Iterator[str]:
    """Points the CloudFormation client at a local server giving ``request.param``."""
    server = _server(request.param)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    endpoint = f"http://127.0.0.1:{server.server_address[1]}"
    monkeypatch.setenv("AWS_ENDPOINT_URL_CLOUDFORMATION", endpoint)
    try:
        with aws_env("AKIAFAKEFAKEFAKEFAKE", "fake-secret"):
            yield request.param
    finally:
        server.shutdown()
        server.server_close()


ALL = [*ANSWERS, "silent"]


@pytest.mark.parametrize("cloudformation_answering", ALL, indirect=True)
def test_any_unreadable_answer_is_an_unknown_status_within_seconds(
    cloudformation_answering, caplog
) -> None:
    started = time.monotonic()
    assert rollback.stack_status(STACK_ID) is None
    elapsed = time.monotonic() - started
    assert elapsed < BOUND_S
    print(f"stack status with {cloudformation_answering}: unknown after {elapsed:.1f} s")
    if cloudformation_answering != "silent":
        assert not rollback.is_update_rollback(STACK_ID)
    warnings = [r.getMessage() for r in caplog.records if r.levelname == "WARNING"]
    assert warnings
    assert all("\n" not in w and len(w) < 450 for w in warnings), warnings


@pytest.mark.parametrize("cloudformation_answering", ["404-empty", "html"], indirect=True)
def test_destroy_with_an_unreadable_stack_status_keeps_the_topics(
    cloudformation_answering,
) -> None:
    props = {
        "BootstrapServers": "127.0.0.1:1",  # never dialled: the topics are kept without Kafka
        "Auth": "PLAINTEXT",
        "RemovalPolicy": "DESTROY",
        "Topics": topics_prop(("orders", 3), ("payments", 1)),
    }
    started = time.monotonic()
    result = invoke(event("Delete", props, physical_id="topic-sync-abc", stack_id=STACK_ID))
    assert time.monotonic() - started < BOUND_S
    assert result["Data"]["Retained"] == 2
    assert result["Data"]["Deleted"] == 0
