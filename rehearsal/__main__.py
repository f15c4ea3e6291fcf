"""``make rehearse``: python -m rehearsal [--cdk-out DIR] [--topics FILE] [--work-dir DIR]."""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Sequence
from pathlib import Path

from rehearsal.run import Options, rehearse


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m rehearsal", description=__doc__)
    parser.add_argument("--cdk-out", type=Path, default=Path("cdk.out"))
    parser.add_argument("--topics", type=Path, default=Path("topics.yaml"))
    parser.add_argument(
        "--work-dir", type=Path, help="keep the policies file, bundle, broker and logs here"
    )
    parser.add_argument("--keep-broker", action="store_true", help="leave the broker running")
    args = parser.parse_args(argv)
    started = time.monotonic()
    from rehearsal.run import _work_dir

    with _work_dir(args.work_dir) as work:
        report = rehearse(Options(args.cdk_out, args.topics, work, keep_broker=args.keep_broker))
    print(f"      rehearsal took {time.monotonic() - started:.0f} s")
    print(report.summary())
    return 0 if report.failed == 0 and report.passed > 0 else 1


if __name__ == "__main__":
    sys.exit(main())
