"""An HTTP server (the local AWS API, the ResponseURL receiver) served from a thread."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import HTTPServer


@contextmanager
def serving(server: HTTPServer, name: str) -> Iterator[None]:
    """Serve ``server`` in a daemon thread while the block runs; shut it down and close it."""
    thread = threading.Thread(target=server.serve_forever, name=name, daemon=True)
    thread.start()
    try:
        yield
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)
