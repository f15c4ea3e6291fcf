"""The benchmark's arithmetic and results file, without a broker."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from bench.report import RESULT_KEYS, Series, Target, table, write_results
from bench.run import ratio


def test_series_reports_median_and_range() -> None:
    series = Series("x", values=[3.0, 1.0, 2.0, 10.0])

    assert series.median == 2.5
    assert series.as_dict()["min"] == 1.0
    assert series.as_dict()["max"] == 10.0
    assert series.row() == ("x", "2.50 s", "1.00 s - 10.00 s", "4")


def test_ratio_of_medians_and_skipped_series() -> None:
    assert ratio(Series("a", values=[4.0, 6.0, 100.0]), Series("b", values=[2.0])) == 3.0
    assert ratio(Series("a"), Series("b", values=[1.0])) is None


@pytest.mark.parametrize(
    ("target", "met"),
    [
        (Target("t", 30.0, ">=", 30), True),
        (Target("t", 1.6, "<=", 1.5), False),
        (Target("t", 4096, "<", 4096), False),
        (Target("t", None, "<", 1), None),
    ],
)
def test_target_verdicts(target: Target, met: bool | None) -> None:
    assert target.met is met


def test_table_marks_misses() -> None:
    text = table([Series("x", values=[1.0])], {"r": 2.0}, [Target("t", 1.6, "<=", 1.5)])

    assert "MISSED" in text
    assert "r = 2" in text


def test_results_file_needs_every_key(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="results lack"):
        write_results(tmp_path / "r.json", {"import_s": 0.1})

    write_results(tmp_path / "r.json", dict.fromkeys(RESULT_KEYS, 1.0))

    assert set(json.loads((tmp_path / "r.json").read_text())) == set(RESULT_KEYS)
