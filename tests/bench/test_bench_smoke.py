"""`python -m bench.run` end to end with tiny sizes on the session broker (what `make bench`
runs, minus the asset and synth scenarios, which tests/cdk covers)."""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
from pathlib import Path

import pytest

from bench.report import RESULT_KEYS
from tests.support.kafka import LocalKafka, plaintext_admin, topic_names

pytestmark = pytest.mark.integration

REPO_ROOT = Path(__file__).resolve().parents[2]
COMMITTED = (REPO_ROOT / "bench" / "results.json", REPO_ROOT / "bench" / "results.png")
SKIPPED = {
    "import_s",
    "asset_unzipped_mb",
    "asset_zipped_mb",
    "synth_s",
    # A broker of its own and ~50 s of quota: tests/engine/test_engine_paced_integration.py
    # covers the same path.
    "quota_create_over_bound",
    "quota_create_rounds",
}


def _digest(path: Path) -> str | None:
    return hashlib.sha256(path.read_bytes()).hexdigest() if path.exists() else None


def test_tiny_bench_run_writes_results_and_cleans_up(
    kafka_broker: LocalKafka, tmp_path: Path
) -> None:
    admin = plaintext_admin(kafka_broker)
    bench_topics_before = {n for n in topic_names(admin) if n.startswith("bench-")}
    committed_before = [_digest(p) for p in COMMITTED]

    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "bench.run",
            "--bootstrap",
            kafka_broker.plaintext_bootstrap,
            "--out",
            str(tmp_path),
            "--topics=2",
            "--partitions=1",
            "--runs=1",
            "--old-runs=1",
            "--scale-topics=3",
            "--scale-runs=1",
            "--settle=0",
            "--skip=asset",
            "--skip=synth",
            "--skip=quota",
        ],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )

    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert "create_ours_over_floor" in result.stdout
    results = json.loads((tmp_path / "results.json").read_text())
    for key in RESULT_KEYS:
        if key in SKIPPED:
            assert results[key] is None, key
        else:
            assert isinstance(results[key], int | float), key
            assert results[key] > 0, key
    assert results["resync_admin_requests"] <= 2
    assert results["metadata"]["machine"]["nproc"] >= 1
    assert (tmp_path / "results.png").stat().st_size > 0
    # The committed record of the last real run is untouched.
    assert [_digest(p) for p in COMMITTED] == committed_before
    # Every topic the run created is gone again.
    leftovers = {n for n in topic_names(admin) if n.startswith("bench-")} - bench_topics_before
    assert not leftovers
