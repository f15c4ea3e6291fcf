"""Fixtures for the fault-injection suite: servers that misbehave, and a log-line counter."""

from __future__ import annotations

import logging
import socket
import threading
from collections.abc import Iterator

import pytest

# Every logger the engine and librdkafka write through (the Lambda handler's Powertools setup
# stops some of them propagating, so each gets the counter itself).
ENGINE_LOGGERS = (
    "topic_sync",
    "topic_sync.librdkafka",
    "topic_sync.kafka_admin",
    "topic_sync.sync",
    "topic_sync.apply",
    "topic_sync.rollback",
)


class LogLines(logging.Handler):
    """Counts the engine's log records (each once, however many loggers it passed)."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.records: list[logging.LogRecord] = []
        self._seen: set[int] = set()

    def emit(self, record: logging.LogRecord) -> None:
        if id(record) not in self._seen:
            self._seen.add(id(record))
            self.records.append(record)

    def at_least(self, level: int) -> list[str]:
        return [r.getMessage() for r in self.records if r.levelno >= level]


@pytest.fixture
def log_lines() -> Iterator[LogLines]:
    counter = LogLines()
    saved: list[tuple[logging.Logger, int]] = []
    for name in ENGINE_LOGGERS:
        log = logging.getLogger(name)
        saved.append((log, log.level))
        log.addHandler(counter)
        if log.level == logging.NOTSET or log.level > logging.INFO:
            log.setLevel(logging.INFO)
    try:
        yield counter
    finally:
        for log, level in saved:
            log.removeHandler(counter)
            log.setLevel(level)


@pytest.fixture
def silent_port() -> Iterator[int]:
    """A local TCP port that accepts connections and never sends a byte."""
    server = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    server.bind(("127.0.0.1", 0))
    server.listen(64)
    server.settimeout(0.2)
    held: list[socket.socket] = []
    stop = threading.Event()

    def accept() -> None:
        while not stop.is_set():
            try:
                conn, _ = server.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            held.append(conn)  # kept open: the client waits for an answer that never comes

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    try:
        yield int(server.getsockname()[1])
    finally:
        stop.set()
        thread.join(5)
        for conn in held:
            conn.close()
        server.close()
