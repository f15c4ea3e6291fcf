"""The rehearsal's report: one line per check, then ``N passed, M failed`` alone on a line."""

from __future__ import annotations

import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import TextIO


@dataclass(frozen=True)
class Check:
    name: str
    ok: bool
    detail: str
    seconds: float

    def line(self) -> str:
        status = "PASS" if self.ok else "FAIL"
        return f"{status}  {self.name}: {self.detail} ({self.seconds:.1f} s)"


class CheckFailed(Exception):
    """Raised inside :meth:`Report.check` to fail the check with this message."""


@dataclass
class Report:
    out: TextIO = field(default_factory=lambda: sys.stdout)
    checks: list[Check] = field(default_factory=list)

    def note(self, text: str) -> None:
        """A line that is context, not a check (what was set up, how)."""
        print(f"      {text}", file=self.out, flush=True)

    def add(self, name: str, ok: bool, detail: str, seconds: float = 0.0) -> Check:
        check = Check(name, ok, detail, seconds)
        self.checks.append(check)
        print(check.line(), file=self.out, flush=True)
        return check

    @contextmanager
    def check(self, name: str) -> Iterator[Callable[[str], None]]:
        """``with report.check("x") as passed: ...; passed("detail")``. ``CheckFailed`` (or any
        other exception) inside fails the check with its message, and the run goes on."""
        started = time.monotonic()
        details: list[str] = []
        try:
            yield details.append
        except CheckFailed as failure:
            self.add(name, False, str(failure), time.monotonic() - started)
        except Exception as error:
            self.add(name, False, f"{type(error).__name__}: {error}", time.monotonic() - started)
        else:
            self.add(name, True, "; ".join(details) or "ok", time.monotonic() - started)

    @property
    def passed(self) -> int:
        return sum(check.ok for check in self.checks)

    @property
    def failed(self) -> int:
        return sum(not check.ok for check in self.checks)

    def summary(self) -> str:
        return f"{self.passed} passed, {self.failed} failed"

    def failures(self) -> list[Check]:
        return [check for check in self.checks if not check.ok]
