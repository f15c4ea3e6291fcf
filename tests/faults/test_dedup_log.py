"""DedupLog: librdkafka's repeated lines are written once, then counted (pure logic)."""

from __future__ import annotations

import logging

import pytest

from tests.engine.fake_admin import FakeClock
from topic_sync.kafka_admin import DedupLog, explain

RESOLVE = (
    "nonexistent.invalid:9098/bootstrap: Failed to resolve 'nonexistent.invalid:9098': "
    "Name or service not known (after {}ms in state CONNECT)"
)


def lines(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records]


def test_a_line_repeated_with_other_timings_is_logged_once_then_counted(caplog) -> None:
    clock = FakeClock()
    log = DedupLog(logging.getLogger("test.dedup"), window=30.0, clock=clock)
    with caplog.at_level(logging.INFO, "test.dedup"):
        for i in range(400):  # ~20 s of librdkafka retrying a lookup
            log.log(logging.ERROR, "%s [%s] %s", "FAIL", "rdkafka#producer-1", RESOLVE.format(i))
            clock.advance(0.05)
        log.log(logging.WARNING, "%s [%s] %s", "REQTMOUT", "rdkafka#producer-1", "Timed out")
        assert len(lines(caplog)) == 2
        log.flush()
    assert len(lines(caplog)) == 3
    assert lines(caplog)[2].endswith("(after 399ms in state CONNECT) (repeated 399 times in 20 s)")
    log.flush()  # nothing new to count
    assert len(lines(caplog)) == 3


def test_a_line_repeated_for_longer_than_the_window_is_counted_once_per_window(caplog) -> None:
    clock = FakeClock()
    log = DedupLog(logging.getLogger("test.dedup"), window=30.0, clock=clock)
    with caplog.at_level(logging.INFO, "test.dedup"):
        for _ in range(100 * 20):  # 100 s, 20 a second
            log.log(logging.ERROR, "connection refused")
            clock.advance(0.05)
    assert len(lines(caplog)) == 4  # the first, then one count per 30 s
    assert all(line.endswith("times in 30 s)") for line in lines(caplog)[1:])


def test_distinct_lines_are_bounded(caplog) -> None:
    log = DedupLog(logging.getLogger("test.dedup"), clock=FakeClock())
    with caplog.at_level(logging.INFO, "test.dedup"):
        for i in range(1000):
            log.log(logging.ERROR, "error about broker %d", i)
    assert len(lines(caplog)) == DedupLog.MAX_KEYS + 1


@pytest.mark.parametrize(
    ("code", "text", "line"),
    [
        (
            "_RESOLVE",
            RESOLVE.format(3),
            "cannot resolve host nonexistent.invalid: Name or service not known",
        ),
        (
            "_AUTHENTICATION",
            "sasl_ssl://127.0.0.1:9098/bootstrap: SASL authentication error: x "
            "(after 2ms in state AUTH_REQ)",
            "authentication failed (_AUTHENTICATION): SASL authentication error: x",
        ),
        (
            "_TRANSPORT",
            "127.0.0.1:1/bootstrap: Connect to ipv4#127.0.0.1:1 failed: Connection refused "
            "(after 0ms in state CONNECT)",
            "_TRANSPORT: Connect to ipv4#127.0.0.1:1 failed: Connection refused",
        ),
    ],
)
def test_client_errors_read_as_one_line(code, text, line) -> None:
    assert explain(code, text) == line
