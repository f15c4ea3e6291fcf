"""`cdk synth` with a hostile topics file: one line naming the file, exit 1, no traceback."""

from __future__ import annotations

import functools
from pathlib import Path

import pytest
from aws_cdk import App

from tests.cdk.conftest import run_app

HOSTILE = {
    "binary.yaml": bytes(range(256)),
    "latin1.yaml": "topics:\n  - name: caf\u00e9\n".encode("latin-1"),
    "deep.yaml": b"topics: " + b"[" * 5000 + b"]" * 5000 + b"\n",
    "complex-key.yaml": b"? [a, b]\n: c\n",
    "alias-bomb.yaml": b"a: &a [x, x]\nb: &b [*a, *a]\ntopics:\n  - name: t\n    partitions: *b\n",
    "internal.yaml": b"topics:\n  - name: __consumer_offsets\n    partitions: 4\n",
}


@pytest.mark.parametrize("name", sorted(HOSTILE))
def test_app_refuses_a_hostile_spec_in_one_line(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, name: str
) -> None:
    import app as cdk_app

    path = tmp_path / name
    path.write_bytes(HOSTILE[name])
    # In-process, the jsii kernel is already running: hand the context to App directly.
    context = {"topicsFile": str(path)}
    monkeypatch.setattr(cdk_app, "App", functools.partial(App, context=context))
    with pytest.raises(SystemExit) as exit_info:
        cdk_app.main()
    message = exit_info.value.code
    assert isinstance(message, str)
    assert message.startswith(f"cdk synth: invalid topic spec: {path}: ")
    assert "\n" not in message
    assert len(message) < 400


@pytest.mark.synth
def test_synth_of_a_binary_spec_prints_no_traceback(tmp_path: Path) -> None:
    path = tmp_path / "binary.yaml"
    path.write_bytes(HOSTILE["binary.yaml"])
    result = run_app(tmp_path, topicsFile=str(path))
    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    assert f"cdk synth: invalid topic spec: {path}: is not UTF-8 text" in result.stderr
