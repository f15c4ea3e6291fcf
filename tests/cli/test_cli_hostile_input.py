"""The CLI refuses bad input in one line naming what was wrong, before any cluster contact."""

from __future__ import annotations

import io
import os
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.cli.conftest import Run, write_spec
from tests.support.kafka import LocalKafka, unique_topic_name
from topic_sync_tools.cli import main

Cli = Callable[..., Run]
OFFLINE = ("--bootstrap", "127.0.0.1:1", "--auth", "plaintext")


def assert_one_line_error(run: Run, *fragments: str) -> None:
    assert run.code == 1
    lines = run.err.strip().splitlines()
    assert len(lines) == 1, run.err
    assert lines[0].startswith("topic-sync: error: ")
    assert len(lines[0]) < 1000
    for fragment in fragments:
        assert fragment in lines[0]


def usage_error(capsys: pytest.CaptureFixture[str], *args: str) -> str:
    """The one stderr line a command-line mistake gets (argparse exits)."""
    capsys.readouterr()
    with pytest.raises(SystemExit) as exit_info:
        main(list(args), out=io.StringIO())
    assert exit_info.value.code == 1
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1, lines
    return lines[0]


@pytest.mark.parametrize(
    "timeout", ["inf", "nan", "1e308", "-1", "0", "0.0", "1_0", "0x10", "86401", "", " 5"]
)
def test_timeouts_that_never_end_or_make_no_sense_are_refused(
    capsys: pytest.CaptureFixture[str], spec: Path, timeout: str
) -> None:
    line = usage_error(capsys, "plan", "--spec", str(spec), *OFFLINE, "--timeout", timeout)
    assert line.startswith("topic-sync plan: error: argument --timeout: expected seconds, ")
    assert "more than 0 and at most 86400" in line


@pytest.mark.parametrize("timeout", ["1", "0.5", "86400", "30.25"])
def test_sane_timeouts_are_accepted(spec: Path, timeout: str) -> None:
    from topic_sync_tools.cli import build_parser

    args = build_parser().parse_args(["plan", "--spec", str(spec), "--timeout", timeout])
    assert args.timeout == float(timeout)


@pytest.mark.parametrize(
    "setting",
    [
        "metadata.broker.list=evil.example:9092",
        "bootstrap.servers=evil.example:9092",
        "enable.ssl.certificate.verification=false",
        "ssl.endpoint.identification.algorithm=none",
        "security.protocol=PLAINTEXT",
        "sasl.mechanisms=PLAIN",
    ],
)
def test_client_config_cannot_redirect_or_weaken_the_connection(
    run_cli: Cli, spec: Path, setting: str
) -> None:
    key = setting.partition("=")[0]
    run = run_cli("plan", "--spec", str(spec), *OFFLINE, "--client-config", setting)
    assert_one_line_error(run, f"--client-config: {key} cannot be set")


def test_the_serverless_partition_quota_is_enforced(run_cli: Cli, tmp_path: Path) -> None:
    spec = write_spec(tmp_path / "big.yaml", [{"name": f"t{i}"} for i in range(3)], 1000)
    started = time.monotonic()
    run = run_cli("plan", "--spec", str(spec), *OFFLINE, "--cluster-type", "serverless")
    assert_one_line_error(
        run, str(spec), "the topics declare 3000 partitions; MSK Serverless allows at most 2400"
    )
    assert time.monotonic() - started < 5  # refused before any connection attempt


@pytest.mark.parametrize(
    ("content", "fragment"),
    [
        (bytes(range(256)), "is not UTF-8 text"),
        ("topics:\n  - name: caf\u00e9\n".encode("latin-1"), "is not UTF-8 text"),
        (b"topics: " + b"[" * 5000 + b"]" * 5000, "nested deeper than"),
        (b"? [a, b]\n: c\n", "mapping keys must be plain names"),
        (b"a: &a [1]\ntopics: *a\n", "aliases (*name) are not allowed"),
        (b"topics:\n  - name: __consumer_offsets\n    partitions: 4\n", "starts with '__'"),
        (b"topics:\n  - name: a\n    partitions: 010\n", "got '010'"),
        (b"topics:\n  - name: a\n    partitions: 1000000000\n", "exceeds the maximum of 2400"),
        (b"defaults:\n  config: [1]\ntopics:\n  - name: a\n    partitions: 1\n", "defaults.config"),
    ],
)
def test_bad_spec_files_are_one_line_naming_the_file(
    run_cli: Cli, tmp_path: Path, content: bytes, fragment: str
) -> None:
    spec = tmp_path / "hostile.yaml"
    spec.write_bytes(content)
    run = run_cli("plan", "--spec", str(spec), *OFFLINE)
    assert_one_line_error(run, str(spec), fragment)


def test_a_fifo_spec_is_refused_without_waiting(run_cli: Cli, tmp_path: Path) -> None:
    fifo = tmp_path / "topics.yaml"
    os.mkfifo(fifo)
    started = time.monotonic()
    run = run_cli("verify", "--spec", str(fifo), *OFFLINE)
    assert_one_line_error(run, str(fifo), "is not a regular file")
    assert time.monotonic() - started < 5


def test_a_huge_config_value_is_not_echoed(run_cli: Cli, tmp_path: Path) -> None:
    spec = write_spec(
        tmp_path / "t.yaml", [{"name": "a", "config": {"retention.ms": "9" * 1_000_000 + "x"}}]
    )
    run = run_cli("plan", "--spec", str(spec), *OFFLINE, "--output", "json")
    assert_one_line_error(run, "config retention.ms='999")
    assert len(run.out) < 2000


class ClosedPipe(io.StringIO):
    """stdout whose reader has gone away."""

    def write(self, text: str) -> int:
        raise BrokenPipeError(32, "Broken pipe")


def test_a_closed_stdout_ends_quietly(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    spec = tmp_path / "broken.yaml"
    spec.write_text("topics: [\n")
    capsys.readouterr()
    code = main(["plan", "--spec", str(spec), *OFFLINE, "--output", "json"], out=ClosedPipe())
    err = capsys.readouterr().err
    assert code == 1
    assert "Traceback" not in err
    assert "BrokenPipeError" not in err


@pytest.mark.integration
def test_plan_json_into_head_prints_no_traceback(kafka_broker: LocalKafka, tmp_path: Path) -> None:
    # Enough topics that the JSON outgrows the pipe buffer: the CLI is still writing when the
    # reader leaves. `plan` only describes: nothing on the broker changes.
    prefix = unique_topic_name("cli.pipe")
    spec = write_spec(tmp_path / "t.yaml", [{"name": f"{prefix}.{i}"} for i in range(1500)], 1)
    command = [
        sys.executable,
        "-c",
        "import sys; from topic_sync_tools.cli import main; sys.exit(main())",
        "plan",
        "--spec",
        str(spec),
        "--bootstrap",
        kafka_broker.plaintext_bootstrap,
        "--auth",
        "plaintext",
        "--timeout",
        "60",
        "--output",
        "json",
    ]
    process = subprocess.Popen(
        command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env={**os.environ}
    )
    assert process.stdout is not None
    assert process.stdout.readline().strip() == b"{"
    process.stdout.close()  # what `| head -1` does after its line
    _, err = process.communicate(timeout=120)
    assert b"Traceback" not in err, err.decode()
    assert b"BrokenPipeError" not in err, err.decode()
