"""Property: whatever YAML or ResourceProperties arrive, validation answers SpecError (or
success) quickly, in bounded memory, in one bounded line, and never reaches Kafka on a refusal.

Arbitrary documents: random text, random JSON-like values dumped as YAML, and those spliced
with hostile fragments (alias bombs, tags, deep nesting, complex keys, odd numbers).
"""

from __future__ import annotations

import contextlib
import tempfile
import time
import tracemalloc
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.engine.helpers import load_event
from topic_sync import handler
from topic_sync.exceptions import SpecError
from topic_sync.resource import parse_properties
from topic_sync_tools.local_invoke import LocalLambdaContext
from topic_sync_tools.spec_file import TopicsFile, load

# Per example. A real answer takes milliseconds; the bound is loose because the machine running
# the tests may be heavily shared, and still catches a hang or the 48 s alias bomb of issue 9.
MAX_SECONDS = 15.0
MAX_PEAK_BYTES = 64 * 1024 * 1024
MAX_MESSAGE_CHARS = 6000
SETTINGS = settings(
    max_examples=100,
    deadline=None,  # the time bound is asserted below, generously: the machine is shared
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)

SPEC_KEYS = ["defaults", "topics", "services", "name", "partitions", "config", "produces"]
SPEC_KEYS += ["consumes", "replication_factor", "retention.ms", "cleanup.policy", "a", "svc"]
SPEC_KEYS += ["stages", "staging"]
HOSTILE_FRAGMENTS = [
    "a: &a [x, x, x, x]\nb: &b [*a, *a, *a, *a]\nc: &c [*b, *b, *b, *b]\n",
    "topics:\n  - name: t\n    partitions: *c\n",
    "topics: " + "[" * 1000 + "]" * 1000 + "\n",  # past Python's recursion limit
    "? [a, b]\n: c\n",
    "? {a: b}\n: c\n",
    "x: !!python/object/apply:os.system [echo]\n",
    "x: !!binary aGVsbG8=\n",
    "x: !!int 0x10\n",
    "<<: {a: 1}\n",
    "topics:\n  - name: a\n    partitions: 010\n",
    "topics:\n  - name: a\n    partitions: 0x10\n",
    "topics:\n  - name: a\n    partitions: 1_000\n",
    "topics:\n  - name: a\n    partitions: \uff13\n",
    "topics:\n  - name: __consumer_offsets\n    partitions: 4\n",
    "topics:\n  - name: a\n    partitions: 1000000000\n",
    "topics:\n  - name: a\n    config: {retention.ms: ' 100 '}\n",
    "defaults: {config: [1]}\n",
    "\x00\x01\ufeff\ud7ff",
    "---\n---\n",
    "%YAML 1.1\n---\n",
    "&x a: *x\n",
]

scalars = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=True)
    | st.text(max_size=30)
    | st.sampled_from(["010", "0x10", "1_000", "+5", "3.0", "\uff13", " 1 ", "-1", "", "__x"])
)
json_values = st.recursive(
    scalars,
    lambda inner: (
        st.lists(inner, max_size=4)
        | st.dictionaries(st.sampled_from(SPEC_KEYS) | st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=25,
)


def _dump(value: Any) -> str:
    return yaml.safe_dump(value, allow_unicode=True, sort_keys=False)


yaml_documents = st.one_of(
    st.text(max_size=400),
    json_values.map(_dump),
    st.lists(st.sampled_from(HOSTILE_FRAGMENTS), min_size=1, max_size=3).map("".join),
    st.tuples(json_values.map(_dump), st.sampled_from(HOSTILE_FRAGMENTS)).map("".join),
    st.tuples(st.sampled_from(HOSTILE_FRAGMENTS), st.text(max_size=40)).map("".join),
)


@contextlib.contextmanager
def bounded(what: str) -> Iterator[None]:
    """Fail if the block takes longer than MAX_SECONDS or allocates more than MAX_PEAK_BYTES."""
    tracemalloc.start()
    started = time.monotonic()
    try:
        yield
    finally:
        elapsed = time.monotonic() - started
        _, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
        assert elapsed < MAX_SECONDS, f"{what}: {elapsed:.1f} s"
        assert peak < MAX_PEAK_BYTES, f"{what}: {peak} bytes"


def assert_one_bounded_line(error: SpecError) -> None:
    message = str(error)
    assert "\n" not in message
    assert len(message) < MAX_MESSAGE_CHARS


SPEC_DIR = Path(tempfile.mkdtemp(prefix="topic-sync-property-"))


@SETTINGS
@given(document=yaml_documents)
def test_any_yaml_document_is_a_topics_file_or_one_spec_error(document: str) -> None:
    path = SPEC_DIR / "topics.yaml"
    path.write_bytes(document.encode("utf-8", "surrogatepass"))
    result: TopicsFile | SpecError
    try:
        with bounded("load"):
            result = load(path)
    except SpecError as error:
        result = error
    if isinstance(result, SpecError):
        assert_one_bounded_line(result)
        assert str(path) in str(result)
    else:
        assert all(not topic.name.startswith("__") for topic in result.topics)


PROPERTY_KEYS = [
    "BootstrapServers",
    "Auth",
    "Region",
    "ClientConfig",
    "ClusterType",
    "RemovalPolicy",
    "Prune",
    "DryRun",
    "TimeoutSeconds",
    "Topics",
    "SyncToken",
]
VALID = {
    "BootstrapServers": "b-1.example:9098",
    "Region": "us-east-1",
    "Prune": "true",
    "Topics": [{"Name": "orders", "Partitions": "3", "Config": {"retention.ms": "1000"}}],
}
topic_entries = st.fixed_dictionaries(
    {},
    optional={
        "Name": st.sampled_from(["orders", "__consumer_offsets", "a b", ""]) | st.text(max_size=9),
        "Partitions": scalars,
        "ReplicationFactor": scalars,
        "Config": json_values,
    },
)


def _nested(depth: int) -> Any:
    value: Any = "x"
    for _ in range(depth):
        value = [value] if depth % 2 else {"a": value}
    return value


property_values = st.one_of(
    json_values,
    st.lists(topic_entries | json_values, max_size=4),
    st.sampled_from(["", None, 10**400, "9" * 5000, "\u20ac" * 5000]),
    st.integers(900, 3000).map(_nested),  # str() or repr() of these would overflow the stack
)
resource_properties = st.one_of(
    st.dictionaries(st.sampled_from(PROPERTY_KEYS) | st.text(max_size=8), property_values),
    # near misses: a valid set with a few values replaced or removed
    st.dictionaries(st.sampled_from(PROPERTY_KEYS), property_values, max_size=3).map(
        lambda changes: {**VALID, **changes}
    ),
    st.sampled_from(PROPERTY_KEYS).map(lambda key: {k: v for k, v in VALID.items() if k != key}),
    json_values,  # not even a map
)


class ReachedKafka(Exception):
    """Raised by the stand-in ``make_admin``: validation let the event through."""


@SETTINGS
@given(
    properties=resource_properties,
    old=resource_properties,
    request_type=st.sampled_from(["Create", "Update", "Delete"]) | json_values,
)
def test_any_resource_properties_are_refused_before_kafka_or_valid(
    properties: Any, old: Any, request_type: Any
) -> None:
    event = load_event("lifecycle_2_update_grow_and_add")
    event["RequestType"] = request_type
    event["ResourceProperties"] = properties
    event["OldResourceProperties"] = old
    admins: list[Any] = []

    def make_admin(connection: Any) -> Any:
        admins.append(connection)
        raise ReachedKafka

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(handler, "make_admin", make_admin)
        patch.setattr(handler, "stack_status", lambda stack_id: "DELETE_IN_PROGRESS")
        patch.setattr(handler, "is_update_rollback", lambda stack_id: False)
        patch.delenv("AWS_REGION", raising=False)
        patch.delenv("AWS_DEFAULT_REGION", raising=False)
        try:
            with bounded("on_event"):
                handler.on_event(event, LocalLambdaContext())  # type: ignore[arg-type]
        except SpecError as error:
            assert_one_bounded_line(error)
            assert admins == []  # refused: Kafka never contacted
        except ReachedKafka:
            # Only a valid event reaches Kafka.
            assert request_type in ("Create", "Update", "Delete")
            parse_properties(properties)
        else:
            # Without Kafka only a Delete that keeps the topics can succeed.
            assert request_type == "Delete"
            assert admins == []
