"""`make bench`: run every scenario of issue 6, print the table, write results.json and a chart.

    python -m bench.run --bootstrap 127.0.0.1:19092            # what `make bench` runs
    python -m bench.run --bootstrap ... --out /tmp/b --topics 3 --runs 1 --scale-topics 5 \\
        --skip asset --skip synth                               # a smoke run (tests/bench)

Ratios are taken from medians measured in this run on this broker. Topic names are fresh every
run and every benchmark topic is deleted again (also after a failure).
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any

from bench import asset, kafka_ops, quota
from bench.kafka_ops import HandlerBench, Invocation, Namer
from bench.report import (
    FLOOR_COLOR,
    OLD_WAY_COLOR,
    OURS_COLOR,
    Series,
    Target,
    chart,
    metadata,
    table,
    write_results,
)

BENCH_DIR = Path(__file__).resolve().parent
BUILD_DIR = BENCH_DIR.parent / "build" / "bench"
SCENARIOS = ("old", "scale", "quota", "asset", "synth")
# CloudFormation's limit for the whole custom-resource response body.
CFN_RESPONSE_LIMIT = 4096
MB = 1024 * 1024


def progress(message: str) -> None:
    print(f"bench: {message}", file=sys.stderr, flush=True)


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench.run", description=__doc__.split("\n")[0])
    parser.add_argument("--bootstrap", required=True, help="PLAINTEXT bootstrap of the broker")
    parser.add_argument(
        "--out", type=Path, default=BENCH_DIR, help="where results.json/png go (default: bench/)"
    )
    parser.add_argument("--topics", type=int, default=100, help="scenarios 1-2 (default 100)")
    parser.add_argument("--partitions", type=int, default=3, help="scenarios 1-2 (default 3)")
    parser.add_argument("--runs", type=int, default=6, help="runs of ours and the floor")
    parser.add_argument("--old-runs", type=int, default=2, help="runs of the old way (slow)")
    parser.add_argument("--scale-topics", type=int, default=1000, help="scenario 3")
    parser.add_argument("--scale-runs", type=int, default=3)
    parser.add_argument("--import-runs", type=int, default=7)
    parser.add_argument("--synth-runs", type=int, default=2)
    parser.add_argument(
        "--settle",
        type=float,
        default=3.0,
        help="seconds of quiet before each timed step: the broker keeps creating (and deleting) "
        "log files after topics are visible, which would slow whatever runs next (default 3)",
    )
    parser.add_argument(
        "--build-dir",
        type=Path,
        default=BUILD_DIR,
        help="where the Lambda assets are built (default: build/bench/; not under bench/, "
        "where mypy would type-check the bundled libraries)",
    )
    parser.add_argument("--skip", action="append", choices=SCENARIOS, default=[])
    parser.add_argument(
        "--profile", action="store_true", help="always profile the handler (else only on a miss)"
    )
    args = parser.parse_args(argv)
    for name in ("topics", "partitions", "runs", "scale_topics", "scale_runs", "import_runs"):
        if getattr(args, name) < 1:
            parser.error(f"--{name.replace('_', '-')} must be >= 1")
    return args


def response_body_bytes(invocation: Invocation) -> int:
    """The reply the CDK Provider framework sends to CloudFormation for this response."""
    body = {
        "Status": "SUCCESS",
        "Reason": "SUCCESS",
        "StackId": kafka_ops.STACK_ID,
        "RequestId": "00000000-0000-0000-0000-000000000000",
        "PhysicalResourceId": invocation.physical_id,
        "LogicalResourceId": "BenchTopics",
        "NoEcho": False,
        "Data": invocation.data,
    }
    return len(json.dumps(body, separators=(",", ":")).encode())


def data_bytes(invocation: Invocation) -> int:
    return len(json.dumps(invocation.data, separators=(",", ":")).encode())


def ratio(numerator: Series, denominator: Series) -> float | None:
    if not numerator.values or not denominator.values:
        return None
    return numerator.median / denominator.median


def _alternate(run: int, settle: Callable[[], None], *steps: Callable[[], None]) -> None:
    """Run the steps in a rotating order so neither side always goes first."""
    for i in range(len(steps)):
        settle()
        steps[(run + i) % len(steps)]()


class Bench:
    def __init__(self, args: argparse.Namespace, log: IO[str]) -> None:
        self.args = args
        self.bootstrap: str = args.bootstrap
        self.scratch: Path = args.out / "out"
        self.namer = Namer()
        self.handler = HandlerBench(self.bootstrap, log)
        n, p = args.topics, args.partitions
        self.old = Series(f"1a create {n}x{p}: old way ({n} JVMs)")
        self.ours = Series(f"1b create {n}x{p}: our handler")
        self.floor = Series(f"1c create {n}x{p}: raw floor")
        self.resync_ours = Series(f"2 re-sync {n}: our handler")
        self.resync_floor = Series(f"2 re-sync {n}: raw floor")
        self.resync_requests = Series(f"2 re-sync {n}: admin requests (ours)", unit="")
        self.create_requests = Series(f"1b create {n}: admin requests (ours)", unit="")
        m = args.scale_topics
        self.scale_create = Series(f"3 create {m}x1: our handler")
        self.scale_resync = Series(f"3 re-sync {m}: our handler")
        self.scale_requests = Series(f"3 re-sync {m}: admin requests (ours)", unit="")
        self.scale_data = Series(f"3 {m} topics: response Data", unit="bytes")
        self.scale_body = Series(f"3 {m} topics: whole CFN reply", unit="bytes")
        self.imports = Series("4 import handler (fresh interpreter)")
        self.unzipped = Series("4 asset unzipped", unit="MB")
        self.zipped = Series("4 asset zipped", unit="MB")
        self.synth = Series("5 make synth (warm cache)")
        self.quota_create = Series("6 create 600 partitions, quota 100/10 s: ours / bound", unit="")
        self.quota_rounds = Series("6 create under the quota: is_complete rounds", unit="")
        self.notes: dict[str, str] = {}
        self.profiles: list[str] = []

    # ---- scenarios 1-2 ---------------------------------------------------------------------

    def settle(self) -> None:
        time.sleep(self.args.settle)

    def warm_up(self) -> None:
        """One untimed round of each, so the first timed run does not pay for imports."""
        names = self.namer.names("warm", 5)
        created = self.handler.create(names, 1)
        self.handler.resync(created)
        more = self.namer.names("warm", 5)
        kafka_ops.floor_create(self.bootstrap, more, 1)
        kafka_ops.floor_resync(self.bootstrap, more)
        kafka_ops.delete_topics(self.bootstrap, [*names, *more])

    def create_and_resync(self, run: int) -> None:
        n, p = self.args.topics, self.args.partitions
        ours_names = self.namer.names("ours", n)
        floor_names = self.namer.names("floor", n)
        created: list[Invocation] = []

        def ours() -> None:
            invocation = self.handler.create(ours_names, p)
            created.append(invocation)
            self.ours.add(invocation.seconds)
            self.create_requests.add(invocation.data["AdminRequests"])

        def floor() -> None:
            self.floor.add(kafka_ops.floor_create(self.bootstrap, floor_names, p))

        try:
            _alternate(run, self.settle, ours, floor)

            def resync_ours() -> None:
                invocation = self.handler.resync(created[0])
                if invocation.data.get("Unchanged") != n:
                    raise RuntimeError(f"re-sync was not a no-op: {invocation.data}")
                self.resync_ours.add(invocation.seconds)
                self.resync_requests.add(invocation.data["AdminRequests"])

            def resync_floor() -> None:
                self.resync_floor.add(kafka_ops.floor_resync(self.bootstrap, ours_names))

            _alternate(run, self.settle, resync_ours, resync_floor)
        finally:
            kafka_ops.delete_topics(self.bootstrap, [*ours_names, *floor_names])
        progress(
            f"run {run + 1}: create ours {self.ours.values[-1]:.2f}s floor "
            f"{self.floor.values[-1]:.2f}s; re-sync ours {self.resync_ours.values[-1]:.3f}s "
            f"floor {self.resync_floor.values[-1]:.3f}s"
        )

    def old_way(self, run: int) -> None:
        names = self.namer.names("old", self.args.topics)
        self.settle()
        try:
            self.old.add(kafka_ops.old_way_create(self.bootstrap, names, self.args.partitions))
        finally:
            kafka_ops.delete_topics(self.bootstrap, names)
        progress(f"old way run {run + 1}: {self.old.values[-1]:.1f}s")

    # ---- scenario 3 ------------------------------------------------------------------------

    def scale(self, run: int) -> None:
        names = self.namer.names("scale", self.args.scale_topics)
        try:
            self.settle()
            created = self.handler.create(names, 1)
            self.scale_create.add(created.seconds)
            self.settle()
            resynced = self.handler.resync(created)
            self.scale_resync.add(resynced.seconds)
            self.scale_requests.add(resynced.data["AdminRequests"])
            worst = max((created, resynced), key=response_body_bytes)
            self.scale_data.add(data_bytes(worst))
            self.scale_body.add(response_body_bytes(worst))
        finally:
            kafka_ops.delete_topics(self.bootstrap, names)
        progress(
            f"scale run {run + 1}: create {created.seconds:.2f}s re-sync {resynced.seconds:.2f}s"
        )

    # ---- scenario 6 ------------------------------------------------------------------------

    def quota_bound(self) -> None:
        run = quota.quota_create(self.handler.handler, self.scratch / "quota-broker")
        self.quota_create.add(run.over_bound)
        self.quota_rounds.add(run.rounds)
        progress(
            f"quota create: {run.seconds:.1f}s for a bound of {run.bound_s:.0f}s "
            f"({run.over_bound:.2f}), {run.rounds} is_complete rounds"
        )

    # ---- scenarios 4-5 ---------------------------------------------------------------------

    def cold_start(self) -> None:
        build: Path = self.args.build_dir
        local = asset.build_asset(build / "asset-local", lambda_platform=False)
        runtime = asset.runtime_dir(build)
        for _ in range(self.args.import_runs):
            self.imports.add(asset.import_seconds(local, runtime))
        progress(f"import median {self.imports.median:.3f}s")
        try:
            sized = asset.build_asset(build / "asset-lambda", lambda_platform=True)
            self.notes["asset_platform"] = asset.platform_name(lambda_platform=True)
        except Exception as error:  # fall back to the local build, and say so
            progress(f"could not build the asset for the Lambda platform ({error}); sizing local")
            sized = local
            self.notes["asset_platform"] = asset.platform_name(lambda_platform=False)
        self.notes["import_platform"] = asset.platform_name(lambda_platform=False)
        self.unzipped.add(asset.unzipped_bytes(sized) / MB)
        self.zipped.add(asset.zipped_bytes(sized, build / "asset.zip") / MB)

    def synth_runs(self) -> None:
        for run in range(self.args.synth_runs):
            self.synth.add(asset.synth_seconds())
            progress(f"synth run {run + 1}: {self.synth.values[-1]:.1f}s")

    # ---- profiling -------------------------------------------------------------------------

    def profile(self) -> None:
        """pyinstrument over one Create and one no-op Update of the scenario-1 size."""
        from pyinstrument import Profiler

        names = self.namer.names("prof", self.args.topics)
        try:
            for label in ("create", "resync"):
                self.settle()
                profiler = Profiler(interval=0.0005)
                profiler.start()
                if label == "create":
                    created = self.handler.create(names, self.args.partitions)
                else:
                    self.handler.resync(created)
                profiler.stop()
                text = self.scratch / f"profile-{label}.txt"
                text.write_text(profiler.output_text(unicode=False, color=False))
                (self.scratch / f"profile-{label}.html").write_text(profiler.output_html())
                try:
                    self.profiles.append(str(text.relative_to(kafka_ops.REPO_ROOT)))
                except ValueError:
                    self.profiles.append(str(text))
        finally:
            kafka_ops.delete_topics(self.bootstrap, names)
        progress(f"profiles: {', '.join(self.profiles)}")

    # ---- all -------------------------------------------------------------------------------

    def run(self) -> None:
        args = self.args
        skip = set(args.skip)
        self.scratch.mkdir(parents=True, exist_ok=True)
        try:
            self.warm_up()
            for run in range(args.runs):
                self.create_and_resync(run)
            if "old" not in skip:
                for run in range(args.old_runs):
                    self.old_way(run)
            if "scale" not in skip:
                for run in range(args.scale_runs):
                    self.scale(run)
            missed = any(
                r is not None and r > 1.5
                for r in (ratio(self.ours, self.floor), ratio(self.resync_ours, self.resync_floor))
            )
            if args.profile or missed:
                self.profile()
        finally:
            left = kafka_ops.delete_prefixed(self.bootstrap, self.namer.prefix)
            if left:
                progress(f"deleted {left} leftover benchmark topics")
        if "quota" not in skip:
            self.quota_bound()
        if "asset" not in skip:
            self.cold_start()
        if "synth" not in skip:
            self.synth_runs()

    def series(self) -> list[Series]:
        return [
            self.old,
            self.ours,
            self.floor,
            self.create_requests,
            self.resync_ours,
            self.resync_floor,
            self.resync_requests,
            self.scale_create,
            self.scale_resync,
            self.scale_requests,
            self.scale_data,
            self.scale_body,
            self.imports,
            self.unzipped,
            self.zipped,
            self.synth,
            self.quota_create,
            self.quota_rounds,
        ]

    def results(self) -> dict[str, Any]:
        def med(series: Series) -> float | None:
            return series.median if series.values else None

        def worst(series: Series) -> float | None:
            return max(series.values) if series.values else None

        return {
            "create_old_over_ours": ratio(self.old, self.ours),
            "create_ours_over_floor": ratio(self.ours, self.floor),
            "resync_ours_over_floor": ratio(self.resync_ours, self.resync_floor),
            "resync_admin_requests": worst(self.resync_requests),
            "scale_1000_create_s": med(self.scale_create),
            "scale_1000_resync_s": med(self.scale_resync),
            "scale_1000_response_bytes": worst(self.scale_data),
            "import_s": med(self.imports),
            "asset_unzipped_mb": med(self.unzipped),
            "asset_zipped_mb": med(self.zipped),
            "synth_s": med(self.synth),
            "quota_create_over_bound": med(self.quota_create),
            "quota_create_rounds": med(self.quota_rounds),
            # Beyond the keys:
            "create_ours_s": med(self.ours),
            "create_floor_s": med(self.floor),
            "create_old_s": med(self.old),
            "resync_ours_s": med(self.resync_ours),
            "resync_floor_s": med(self.resync_floor),
            "create_admin_requests": worst(self.create_requests),
            "scale_resync_admin_requests": worst(self.scale_requests),
            "scale_response_body_bytes": worst(self.scale_body),
        }

    def targets(self, results: dict[str, Any]) -> list[Target]:
        scale_worst = max([*self.scale_create.values, *self.scale_resync.values], default=math.nan)
        return [
            Target("1 create: old way / ours", results["create_old_over_ours"], ">=", 30),
            Target("1 create: ours / floor", results["create_ours_over_floor"], "<=", 1.5),
            Target("2 re-sync: ours / floor", results["resync_ours_over_floor"], "<=", 1.5),
            # The floor makes 2 requests (describe topics + describe configs), whatever the size.
            Target("2 re-sync: admin requests", results["resync_admin_requests"], "<=", 2),
            Target(
                f"3 slowest {self.args.scale_topics}-topic invocation, s (60 s budget)",
                None if math.isnan(scale_worst) else scale_worst,
                "<=",
                30,
            ),
            Target(
                "3 whole CFN reply, bytes",
                results["scale_response_body_bytes"],
                "<",
                CFN_RESPONSE_LIMIT,
            ),
            Target("4 import, s", results["import_s"], "<", 0.5),
            Target("4 asset unzipped, MB", results["asset_unzipped_mb"], "<", 20),
            Target(
                "6 quota-bound create: ours / bound", results["quota_create_over_bound"], "<=", 1.15
            ),
        ]


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    args.out = args.out.resolve()
    started = datetime.now(UTC)
    scratch = args.out / "out"
    scratch.mkdir(parents=True, exist_ok=True)
    with (scratch / "handler.log").open("w") as log:
        bench = Bench(args, log)
        bench.run()
    results = bench.results()
    targets = bench.targets(results)
    settings = {
        k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items() if k != "out"
    }
    settings.update(bench.notes)
    settings["old_way_jvm_opts"] = " ".join(kafka_ops.OLD_WAY_JVM_OPTS)
    full = {
        **results,
        "targets": {
            t.name: {"value": t.value, "target": f"{t.op} {t.threshold:g}", "met": t.met}
            for t in targets
        },
        "series": {s.label: s.as_dict() for s in bench.series() if s.values},
        "profiles": bench.profiles,
        "metadata": metadata(started, settings),
    }
    write_results(args.out / "results.json", full)
    chart(
        args.out / "results.png",
        [
            (
                f"1. create {args.topics} topics x{args.partitions}",
                [
                    (f"old way\n({args.topics} JVMs)", bench.old, OLD_WAY_COLOR),
                    ("our handler", bench.ours, OURS_COLOR),
                    ("raw floor", bench.floor, FLOOR_COLOR),
                ],
            ),
            (
                f"2. no-op re-sync of {args.topics}",
                [
                    ("our handler", bench.resync_ours, OURS_COLOR),
                    ("raw floor", bench.resync_floor, FLOOR_COLOR),
                ],
            ),
            (
                f"3. {args.scale_topics} topics, our handler",
                [
                    ("create", bench.scale_create, OURS_COLOR),
                    ("no-op re-sync", bench.scale_resync, OURS_COLOR),
                ],
            ),
        ],
    )
    machine = full["metadata"]["machine"]
    print(
        f"topic-sync benchmark, {full['metadata']['date']} on {machine['nproc']} CPUs "
        f"({machine['cpu_model']}), {machine['memory_gib']} GiB, Python "
        f"{full['metadata']['python']}, Kafka {full['metadata']['kafka_broker']}, "
        f"librdkafka {full['metadata']['librdkafka']}"
    )
    ratios = {
        k: results[k]
        for k in ("create_old_over_ours", "create_ours_over_floor", "resync_ours_over_floor")
    }
    print(table(bench.series(), ratios, targets))
    print(f"\nwrote {args.out / 'results.json'} and {args.out / 'results.png'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
