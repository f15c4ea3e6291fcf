"""Samples, targets, the printed table, bench/results.json and the bar chart."""

from __future__ import annotations

import importlib.metadata
import json
import operator
import os
import platform
import re
import statistics
import subprocess
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import confluent_kafka

REPO_ROOT = Path(__file__).resolve().parent.parent

#: The keys other tools read from results.json (issue 6); null when a scenario was skipped.
RESULT_KEYS = (
    "create_old_over_ours",
    "create_ours_over_floor",
    "resync_ours_over_floor",
    "resync_admin_requests",
    "scale_1000_create_s",
    "scale_1000_resync_s",
    "scale_1000_response_bytes",
    "import_s",
    "asset_unzipped_mb",
    "asset_zipped_mb",
    "synth_s",
    "quota_create_over_bound",
    "quota_create_rounds",
)


@dataclass
class Series:
    """Repeated measurements of one thing."""

    label: str
    unit: str = "s"
    values: list[float] = field(default_factory=list)

    def add(self, value: float) -> float:
        self.values.append(value)
        return value

    @property
    def median(self) -> float:
        return statistics.median(self.values)

    def as_dict(self) -> dict[str, Any]:
        return {
            "unit": self.unit,
            "median": self.median,
            "min": min(self.values),
            "max": max(self.values),
            "runs": len(self.values),
            "values": self.values,
        }

    def row(self) -> tuple[str, str, str, str]:
        if not self.values:
            return (self.label, "-", "-", "0")
        return (
            self.label,
            _fmt(self.median, self.unit),
            f"{_fmt(min(self.values), self.unit)} - {_fmt(max(self.values), self.unit)}",
            str(len(self.values)),
        )


def _fmt(value: float, unit: str) -> str:
    if unit == "s":
        return f"{value * 1000:.0f} ms" if value < 1 else f"{value:.2f} s"
    if unit == "x":
        return f"{value:.1f}x" if value >= 10 else f"{value:.2f}x"
    if unit == "MB":
        return f"{value:.1f} MB"
    return f"{value:g} {unit}".strip()


_OPS: Mapping[str, Callable[[float, float], bool]] = {
    ">=": operator.ge,
    "<=": operator.le,
    "<": operator.lt,
}


@dataclass(frozen=True)
class Target:
    """One line of the issue's targets, checked against a measured value."""

    name: str
    value: float | None
    op: str
    threshold: float

    @property
    def met(self) -> bool | None:
        return None if self.value is None else _OPS[self.op](self.value, self.threshold)

    def row(self) -> tuple[str, str, str]:
        value = "skipped" if self.value is None else f"{self.value:.3g}"
        verdict = {True: "met", False: "MISSED", None: "-"}[self.met]
        return (self.name, f"{value} (target {self.op} {self.threshold:g})", verdict)


def table(
    series: Sequence[Series], ratios: Mapping[str, float | None], targets: Sequence[Target]
) -> str:
    rows = [("measurement", "median", "min - max", "runs"), *(s.row() for s in series)]
    widths = [max(len(r[i]) for r in rows) for i in range(4)]
    lines = ["  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)) for r in rows]
    lines.insert(1, "  ".join("-" * w for w in widths))
    lines.append("")
    for key, value in ratios.items():
        lines.append(f"{key} = {'skipped' if value is None else f'{value:.3g}'}")
    lines.append("")
    target_rows = [t.row() for t in targets]
    tw = [max(len(r[i]) for r in target_rows) for i in range(3)] if target_rows else []
    for r in target_rows:
        lines.append("  ".join(c.ljust(w) for c, w in zip(r, tw, strict=True)).rstrip())
    return "\n".join(lines)


def _first_match(path: Path, pattern: str) -> str | None:
    try:
        match = re.search(pattern, path.read_text(), re.MULTILINE)
    except OSError:
        return None
    return match.group(1).strip() if match else None


def _command_output(*command: str) -> str | None:
    try:
        result = subprocess.run(command, capture_output=True, text=True, check=False, timeout=30)
    except (OSError, subprocess.TimeoutExpired):
        return None
    text = (result.stdout or result.stderr).strip()
    return text.splitlines()[0] if text and result.returncode == 0 else None


def kafka_version() -> str | None:
    """The broker's Apache Kafka version, from the jar scripts/local-kafka runs."""
    for jar in sorted((REPO_ROOT / ".kafka" / "lib").glob("kafka_2.13-*.jar")):
        return jar.name.removeprefix("kafka_2.13-").removesuffix(".jar")
    return None


def machine() -> dict[str, Any]:
    mem_kb = _first_match(Path("/proc/meminfo"), r"^MemTotal:\s+(\d+) kB")
    return {
        "nproc": len(os.sched_getaffinity(0)),
        "memory_gib": round(int(mem_kb) / 1024 / 1024, 1) if mem_kb else None,
        "cpu_model": _first_match(Path("/proc/cpuinfo"), r"^model name\s*:\s*(.+)$")
        or platform.processor(),
        "os": platform.platform(),
        "load_avg_at_start": [round(x, 2) for x in os.getloadavg()],
    }


def metadata(started: datetime, settings: Mapping[str, Any]) -> dict[str, Any]:
    return {
        "date": started.isoformat(timespec="seconds"),
        "finished": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": machine(),
        "python": platform.python_version(),
        "confluent_kafka": importlib.metadata.version("confluent-kafka"),
        "librdkafka": confluent_kafka.libversion()[0],
        "kafka_broker": kafka_version(),
        "java": _command_output("java", "-version"),
        "git_commit": _command_output("git", "-C", str(REPO_ROOT), "rev-parse", "--short", "HEAD"),
        "settings": dict(settings),
    }


def write_results(path: Path, results: Mapping[str, Any]) -> None:
    missing = [k for k in RESULT_KEYS if k not in results]
    if missing:
        raise ValueError(f"results lack {missing}")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(_rounded(results), indent=2) + "\n")


def _rounded(value: Any) -> Any:
    """Floats to 4 significant digits: the noise is far larger than that."""
    if isinstance(value, float):
        return float(f"{value:.4g}")
    if isinstance(value, dict):
        return {k: _rounded(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_rounded(v) for v in value]
    return value


#: One bar: its label, the series, and its colour (the same colour means the same contender).
Bar = tuple[str, Series, str]
OLD_WAY_COLOR, OURS_COLOR, FLOOR_COLOR = "#b0413e", "#2f6f9f", "#6b8f3a"


def chart(path: Path, groups: Sequence[tuple[str, Sequence[Bar]]]) -> None:
    """One panel per scenario: median bars with min-max whiskers (log scale for wide spreads)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.ticker import FuncFormatter

    panels = [(title, [b for b in bars if b[1].values]) for title, bars in groups]
    panels = [(title, bars) for title, bars in panels if bars]
    if not panels:
        return
    fig, axes = plt.subplots(1, len(panels), figsize=(4.2 * len(panels), 3.6), squeeze=False)
    for ax, (title, bars) in zip(axes[0], panels, strict=True):
        medians = [s.median for _, s, _ in bars]
        low = [s.median - min(s.values) for _, s, _ in bars]
        high = [max(s.values) - s.median for _, s, _ in bars]
        ax.bar(
            [label for label, _, _ in bars],
            medians,
            yerr=[low, high],
            capsize=4,
            color=[color for _, _, color in bars],
        )
        if max(medians) / max(min(medians), 1e-9) > 20:
            ax.set_yscale("log")
        ax.yaxis.set_major_formatter(FuncFormatter(lambda v, _pos: _fmt(v, "s")))
        for x, m in enumerate(medians):
            ax.annotate(_fmt(m, "s"), (x, m), ha="center", va="bottom", fontsize=8)
        ax.set_title(title, fontsize=10)
        ax.set_ylabel("median, whiskers min-max")
        ax.tick_params(axis="x", labelsize=8)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
