"""``topic-sync``: plan, apply and verify a topics.yaml against a Kafka cluster.

The same engine the provisioning Lambda runs (observe -> plan -> apply -> verify); this module
only converts command-line input into engine values and prints the results.

Exit codes (Terraform's ``-detailed-exitcode`` habit, so CI can gate on drift):
0 in sync / applied, 2 changes pending (plan, verify, apply --dry-run), 1 error.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import os
import re
import sys
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any, NoReturn, TextIO

from confluent_kafka import KafkaException

from topic_sync.apply import TopicResult, apply_plan
from topic_sync.connection import AuthMode, Connection
from topic_sync.exceptions import SpecError, TopicSyncError, clip, one_line
from topic_sync.kafka_admin import KafkaTopicAdmin
from topic_sync.pacing import DEFAULT_RATES, Pacing, PartitionRate, describe_wait, total_cost
from topic_sync.plan import ActionKind, Observed, Plan
from topic_sync.retry import Deadline
from topic_sync.spec import ClusterType, TopicSpec
from topic_sync.sync import Progress, SyncRequest, apply_paced, observe, plan_for, verify
from topic_sync_tools import render, spec_file

EXIT_OK = 0
EXIT_ERROR = 1
EXIT_CHANGES = 2
DEFAULT_TIMEOUT_S = 60.0
#: A day: longer is a typo (inf, 1e308 would never return).
MAX_TIMEOUT_S = 86_400.0
_SECONDS_RE = re.compile(r"[0-9]{1,6}(\.[0-9]{1,6})?", re.ASCII)
#: An error line longer than this is cut (a spec's worst case is bounded well below it).
MAX_ERROR_CHARS = 2000
# Above this many changes, apply in slices and report progress between them.
PROGRESS_SLICE = 100

logger = logging.getLogger("topic_sync_tools.cli")


class CliError(Exception):
    """A problem with how the CLI was called or answered; printed as one line."""


class _Parser(argparse.ArgumentParser):
    """Usage errors exit 1: argparse's default 2 would read as "changes pending"."""

    def error(self, message: str) -> NoReturn:
        # One line, like every other refusal; the usage is one --help away.
        line = one_line(message, 500)
        self.exit(EXIT_ERROR, f"{self.prog}: error: {line} (see {self.prog} --help)\n")


@dataclass(frozen=True)
class Target:
    """What one invocation works on: the spec, the cluster and which topics may be pruned."""

    request: SyncRequest
    connection: Connection
    spec_path: str


# ---- arguments -------------------------------------------------------------------------------


def _client_setting(text: str) -> tuple[str, str]:
    key, sep, value = text.partition("=")
    if not sep or not key.strip():
        raise argparse.ArgumentTypeError(f"expected KEY=VALUE, got {clip(text)}")
    return key.strip(), value


def _timeout(text: str) -> float:
    """Seconds as plain decimal, more than 0 and at most a day (inf, nan, 1e308 never end)."""
    value = float(text) if _SECONDS_RE.fullmatch(text) else None
    if value is None or not 0 < value <= MAX_TIMEOUT_S:
        raise argparse.ArgumentTypeError(
            f"expected seconds, more than 0 and at most {MAX_TIMEOUT_S:.0f}, got {clip(text)}"
        )
    return value


def build_parser() -> argparse.ArgumentParser:
    common = _Parser(add_help=False)
    common.add_argument("--spec", default="topics.yaml", help="topics file (default: %(default)s)")
    common.add_argument(
        "--stage",
        help="a stage declared in the topics file: its overrides apply (default: the base values)",
    )
    common.add_argument(
        "--bootstrap",
        default=os.environ.get("TOPIC_SYNC_BOOTSTRAP"),
        metavar="HOST:PORT[,...]",
        help="bootstrap servers (default: $TOPIC_SYNC_BOOTSTRAP)",
    )
    common.add_argument(
        "--auth",
        choices=["iam", "plaintext"],
        default="iam",
        help="iam: SASL_SSL with MSK IAM, using the default AWS credentials (default); "
        "plaintext: no auth, local brokers only",
    )
    common.add_argument("--region", help="AWS region for IAM (default: $AWS_REGION)")
    common.add_argument("--profile", help="AWS profile for IAM (sets AWS_PROFILE)")
    common.add_argument(
        "--cluster-type",
        choices=["serverless", "provisioned"],
        default="serverless",
        help="which MSK rules the spec is checked against (default: %(default)s)",
    )
    common.add_argument(
        "--client-config",
        type=_client_setting,
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="extra librdkafka setting, e.g. ssl.ca.location=/path/ca.pem (repeatable)",
    )
    common.add_argument(
        "--prune",
        action="store_true",
        help="also delete topics that are not in the spec but match --managed-prefix",
    )
    common.add_argument(
        "--managed-prefix",
        action="append",
        default=[],
        metavar="PREFIX",
        help="topics whose names start with PREFIX are managed by this spec (repeatable; "
        "required with --prune)",
    )
    common.add_argument(
        "--timeout",
        type=_timeout,
        default=DEFAULT_TIMEOUT_S,
        metavar="SECONDS",
        help="give up on the cluster after this long (default: %(default)s)",
    )
    common.add_argument("--output", choices=["text", "json"], default="text")
    common.add_argument("--debug", action="store_true", help="log details and show tracebacks")

    parser = _Parser(
        prog="topic-sync",
        description="Make the Kafka topics of a cluster match a topics.yaml.",
        epilog="exit codes: 0 in sync or applied, 2 changes pending, 1 error",
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    commands.add_parser(
        "plan", parents=[common], help="show what apply would change (exit 2 if anything)"
    )
    apply = commands.add_parser("apply", parents=[common], help="make the cluster match the spec")
    apply.add_argument("--yes", "-y", action="store_true", help="do not ask for confirmation")
    apply.add_argument("--dry-run", action="store_true", help="plan only; change nothing")
    apply.add_argument(
        "--partition-rate",
        metavar="N/Ts",
        help="partition creations and deletions the cluster allows, e.g. 250/300s, or off "
        "(default: the cluster type's quota: 250/300s on serverless, off on provisioned); "
        "a larger spec is applied window by window with progress and an ETA",
    )
    commands.add_parser(
        "verify", parents=[common], help="check the cluster matches the spec (exit 2 if not)"
    )
    return parser


# ---- adapters: command line -> engine values -------------------------------------------------


def _connection(args: argparse.Namespace) -> Connection:
    if not args.bootstrap:
        raise CliError("--bootstrap HOST:PORT is required (or set TOPIC_SYNC_BOOTSTRAP)")
    if args.profile:
        # The MSK signer uses the default AWS credential chain, which reads AWS_PROFILE.
        os.environ["AWS_PROFILE"] = args.profile
    settings = dict(args.client_config)
    if not args.debug:
        settings.setdefault("log_level", "0")  # librdkafka's own retry chatter; errors come back
    try:
        connection = Connection(
            args.bootstrap, AuthMode(args.auth.upper()), args.region, client_config=settings
        )
    except SpecError as error:
        message = "; ".join(error.problems)
        for prop, option in (("Region:", "--region:"), ("ClientConfig:", "--client-config:")):
            message = message.replace(prop, option)
        raise CliError(message) from None
    if connection.auth is AuthMode.IAM:
        _require_aws_credentials()
    return connection


def _require_aws_credentials() -> None:
    """Fail with a clear line: without credentials librdkafka only says "OAuth token not set"."""
    import boto3  # type: ignore[import-untyped,unused-ignore]  # IAM users only; ~0.3 s

    try:
        credentials = boto3.Session().get_credentials()
    except Exception as error:  # botocore raises many kinds (bad profile, bad config file)
        raise CliError(f"cannot load AWS credentials for IAM auth: {error}") from None
    if credentials is None:
        raise CliError(
            "no AWS credentials for IAM auth: use --profile, AWS_* environment variables, "
            "or run where an instance/task role is available"
        )


def _managed_extras(
    args: argparse.Namespace, connection: Connection, wanted: set[str]
) -> list[str]:
    """Cluster topics that --prune may delete: under a --managed-prefix and not in the spec."""
    if not args.prune:
        return []
    prefixes = [p for p in args.managed_prefix if p]
    if not prefixes:
        raise CliError(
            "--prune needs --managed-prefix PREFIX: topic-sync only deletes topics it is told "
            "it owns (e.g. --managed-prefix orders.)"
        )
    names = list_topic_names(connection, args.timeout)
    return sorted(
        name
        for name in names
        if name not in wanted
        and not name.startswith("_")  # __consumer_offsets, _schemas, ...: never ours
        and any(name.startswith(prefix) for prefix in prefixes)
    )


def list_topic_names(connection: Connection, timeout: float) -> list[str]:
    """Every topic name on the cluster (the engine only describes names it is given), through
    the engine's client: one-line errors, deduplicated librdkafka logs."""
    return KafkaTopicAdmin(connection).list_topic_names(timeout)


def _target(args: argparse.Namespace) -> Target:
    cluster_type = ClusterType(args.cluster_type.upper())
    topics_file = spec_file.load(args.spec, cluster_type=cluster_type, stage=args.stage)
    connection = _connection(args)
    wanted = {t.name for t in topics_file.topics}
    extras = _managed_extras(args, connection, wanted)
    request = SyncRequest(
        desired=topics_file.topics,
        cluster_type=cluster_type,
        # The engine prunes topics that left the "previous" spec: name the extras as such.
        previous=tuple(TopicSpec(name, 1) for name in extras),
        prune=bool(extras),
    )
    return Target(request, connection, args.spec)


# ---- commands --------------------------------------------------------------------------------


def _observe_and_plan(target: Target, admin: KafkaTopicAdmin, deadline: Deadline) -> Plan:
    return _observe_and_plan_with(target, admin, deadline)[0]


def _observe_and_plan_with(
    target: Target, admin: KafkaTopicAdmin, deadline: Deadline
) -> tuple[Plan, Observed]:
    observed = observe(admin, target.request.names_to_observe(), deadline)
    return plan_for(target.request, observed), observed


def _plan_data(command: str, target: Target, plan: Plan) -> dict[str, Any]:
    return {
        "command": command,
        "spec": target.spec_path,
        "bootstrap_servers": target.connection.bootstrap_servers,
        "in_sync": plan.is_noop,
        "counts": plan.counts(),
        "topics": plan.to_data(),
    }


def _plan_exit(plan: Plan) -> int:
    if plan.refused:
        first = plan.refused[0]
        more = f" (+{len(plan.refused) - 1} more)" if len(plan.refused) > 1 else ""
        print(
            f"topic-sync: error: refused, nothing changed: {first.name}: "
            f"{'; '.join(first.reasons)}{more}",
            file=sys.stderr,
        )
        return EXIT_ERROR
    return EXIT_OK if plan.is_noop else EXIT_CHANGES


def _plan_footer(plan: Plan, target: Target) -> str:
    if plan.refused:
        return (
            f"Refused: {len(plan.refused)} topic(s) need changes Kafka cannot make; "
            "fix the spec (apply would change nothing)."
        )
    if plan.is_noop:
        return f"In sync: {target.connection.bootstrap_servers} matches {target.spec_path}."
    return "Changes pending: run `topic-sync apply` with the same arguments to make them."


def cmd_plan(args: argparse.Namespace, out: TextIO) -> int:
    target = _target(args)
    admin = KafkaTopicAdmin(target.connection)
    plan = _observe_and_plan(target, admin, Deadline.after(args.timeout))
    if args.output == "json":
        _print_json(out, _plan_data(args.command, target, plan))
    else:
        print(render.plan_table(plan), file=out)
        print(f"\n{render.plan_counts(plan)}\n{_plan_footer(plan, target)}", file=out)
    return _plan_exit(plan)


def cmd_verify(args: argparse.Namespace, out: TextIO) -> int:
    target = _target(args)
    admin = KafkaTopicAdmin(target.connection)
    plan = _observe_and_plan(target, admin, Deadline.after(args.timeout))
    differ = Plan(tuple(a for a in plan.actions if a.kind is not ActionKind.UNCHANGED))
    if args.output == "json":
        _print_json(out, _plan_data(args.command, target, plan))
    elif plan.is_noop:
        print(_plan_footer(plan, target), file=out)
    else:
        print(render.plan_table(differ), file=out)
        print(
            f"\nDrift: {len(differ.actions)} of {len(plan.actions)} topic(s) differ from "
            f"{target.spec_path}.",
            file=out,
        )
    # Any difference is drift, even one apply would refuse: 1 stays "could not check".
    return EXIT_OK if plan.is_noop else EXIT_CHANGES


def cmd_apply(args: argparse.Namespace, out: TextIO) -> int:
    interactive = sys.stdin.isatty()
    if not (args.yes or args.dry_run or interactive):
        # Refuse up front: waiting for an answer nobody can type would hang CI.
        raise CliError("refusing to apply without confirmation: stdin is not a terminal; use --yes")
    target = _target(args)
    rate = _partition_rate(args, target)
    admin = KafkaTopicAdmin(target.connection)
    deadline = Deadline.after(args.timeout)
    plan, observed = _observe_and_plan_with(target, admin, deadline)
    text = args.output == "text"
    if text:
        print(render.plan_table(plan), file=out)
        print(f"\n{render.plan_counts(plan)}", file=out)
    if args.dry_run or plan.refused or plan.is_noop:
        if text:
            print(_plan_footer(plan, target) + (" (dry run)" if args.dry_run else ""), file=out)
        else:
            _print_json(out, {**_plan_data(args.command, target, plan), "applied": False})
        return _plan_exit(plan)
    if not args.yes and not _confirm(plan, target):
        raise CliError("apply cancelled; nothing was changed")

    cost = total_cost(plan.mutations, {n: t.partitions for n, t in observed.items()})
    if rate is not None and cost > rate.partitions:
        # The quota decides how long this takes: wait for it, on top of --timeout.
        eta = rate.seconds_for(cost)
        print(
            f"topic-sync: {cost} partition changes at {rate}: about {describe_wait(eta)} "
            "(Ctrl-C stops; apply again continues)",
            file=sys.stderr,
            flush=True,
        )
        deadline = Deadline.after(args.timeout + eta * 1.2)
        results = _apply_paced_with_progress(plan, observed, rate, admin, deadline)
    else:
        results = _apply_with_progress(plan, admin, deadline)
    # Topics whose apply failed for good cannot settle by waiting: verify stops on them.
    failed = frozenset(name for name, result in results.items() if not result.ok)
    remaining = verify(target.request, admin, deadline, failed=failed)
    failures = _failures(plan, results, remaining)
    if text:
        print(f"\n{render.results_table(plan, failures)}", file=out)
        done = len(plan.mutations) - len(failures)
        print(f"\nApplied: {done} of {len(plan.mutations)} change(s) succeeded.", file=out)
    else:
        data = _plan_data(args.command, target, plan)
        data["in_sync"] = not remaining and not failures
        data["applied"] = True
        data["results"] = [
            {"topic": a.name, "action": a.kind.value, "ok": a.name not in failures}
            | ({"error": failures[a.name]} if a.name in failures else {})
            for a in plan.mutations
        ]
        _print_json(out, data)
    if failures:
        first = next(iter(failures.items()))
        print(
            f"topic-sync: error: {len(failures)} topic(s) failed, first: {first[0]}: {first[1]}",
            file=sys.stderr,
        )
        return EXIT_ERROR
    return EXIT_OK


def _confirm(plan: Plan, target: Target) -> bool:
    counts = render.plan_counts(plan).removeprefix("Plan: ").rstrip(".")
    prompt = f"\nApply {counts} on {target.connection.bootstrap_servers}? Type 'yes': "
    sys.stderr.write(prompt)
    sys.stderr.flush()
    try:
        answer = sys.stdin.readline()
    except KeyboardInterrupt:
        return False
    return answer.strip().lower() in ("yes", "y")


def _partition_rate(args: argparse.Namespace, target: Target) -> PartitionRate | None:
    text = getattr(args, "partition_rate", None)
    if text is None:
        return DEFAULT_RATES[target.request.cluster_type]
    if text.lower() == "off":
        return None
    try:
        return PartitionRate.parse(text, source="--partition-rate")
    except SpecError as error:
        raise CliError("; ".join(error.problems)) from None


def _apply_paced_with_progress(
    plan: Plan, observed: Observed, rate: PartitionRate, admin: KafkaTopicAdmin, deadline: Deadline
) -> dict[str, TopicResult]:
    """The paced apply, with a progress line (and ETA) after every batch."""
    started = time.monotonic()
    tty = sys.stderr.isatty()

    def show(progress: Progress) -> None:
        left = progress.total - progress.done
        eta = describe_wait(rate.seconds_for(left) + progress.next_window_s if left else 0)
        width = 30
        filled = width * progress.done // max(progress.total, 1)
        bar = "#" * filled + "-" * (width - filled)
        line = (
            f"topic-sync: [{bar}] {progress.done}/{progress.total} partitions, "
            f"{describe_wait(time.monotonic() - started)} elapsed, ETA {eta}"
        )
        sys.stderr.write(f"\r{line}" if tty else f"{line}\n")
        sys.stderr.flush()

    try:
        results, progress = apply_paced(
            plan, observed, Pacing(rate), admin, deadline, on_progress=show
        )
    except KeyboardInterrupt:
        sys.stderr.write("\n")
        raise CliError(
            "interrupted: what was applied stays; run apply again to continue from there"
        ) from None
    if tty:
        sys.stderr.write("\n")
    if progress.pending:
        raise CliError(f"stopped at --timeout: {progress.describe()}; run apply again to continue")
    return results


def _apply_with_progress(
    plan: Plan, admin: KafkaTopicAdmin, deadline: Deadline
) -> dict[str, TopicResult]:
    """``apply_plan`` on the whole plan, or slice by slice with progress for large specs."""
    mutations = plan.mutations
    if len(mutations) <= PROGRESS_SLICE:
        return apply_plan(plan, admin, deadline)
    results: dict[str, TopicResult] = {}
    for start in range(0, len(mutations), PROGRESS_SLICE):
        part = Plan(mutations[start : start + PROGRESS_SLICE])
        results.update(apply_plan(part, admin, deadline))
        done = min(start + PROGRESS_SLICE, len(mutations))
        print(f"topic-sync: applied {done}/{len(mutations)} changes", file=sys.stderr, flush=True)
    return results


def _failures(
    plan: Plan, results: dict[str, TopicResult], remaining: dict[str, str]
) -> dict[str, str]:
    """Why each change that did not converge failed; one that converged anyway counts as done
    (a concurrent sync may have made it), as in ``topic_sync.sync.sync``."""
    failures: dict[str, str] = {}
    for action in plan.mutations:
        if action.name not in remaining:
            continue
        result = results.get(action.name)
        if result is not None and result.error is not None:
            failures[action.name] = str(result.error)
        else:
            failures[action.name] = f"still differs after apply: {remaining[action.name]}"
    return failures


def _print_json(out: TextIO, data: Any) -> None:
    json.dump(data, out, indent=2)
    out.write("\n")


# ---- entry point -----------------------------------------------------------------------------

_COMMANDS = {"plan": cmd_plan, "apply": cmd_apply, "verify": cmd_verify}


@contextlib.contextmanager
def _engine_logging(debug: bool) -> Iterator[None]:
    """Engine logs to stderr while a command runs: warnings only, everything with --debug.

    The previous logger state comes back afterwards, so calling ``main`` in-process (tests,
    the demo) leaves no trace on logging.
    """
    engine = logging.getLogger("topic_sync")
    saved = (engine.level, engine.propagate, list(engine.handlers))
    stderr = logging.StreamHandler(sys.stderr)
    stderr.setFormatter(logging.Formatter("topic-sync: %(levelname)s: %(message)s"))
    engine.handlers = [stderr]
    engine.setLevel(logging.DEBUG if debug else logging.WARNING)
    engine.propagate = False
    try:
        yield
    finally:
        level, engine.propagate, engine.handlers = saved
        engine.setLevel(level)  # setLevel, not assignment: it clears the loggers' level caches


def main(argv: Sequence[str] | None = None, out: TextIO | None = None) -> int:
    """Run one command; returns the exit code (the console script exits with it)."""
    out = out or sys.stdout
    try:
        return _main(argv, out)
    except BrokenPipeError:
        # The reader left (`topic-sync plan --output json | head -1`): that is not an error
        # worth a traceback. Point stdout at /dev/null so the exit-time flush cannot fail again.
        with contextlib.suppress(OSError, ValueError):
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, out.fileno())
        return EXIT_ERROR


def _main(argv: Sequence[str] | None, out: TextIO) -> int:
    args = build_parser().parse_args(argv)
    try:
        with _engine_logging(args.debug):
            code = _COMMANDS[args.command](args, out)
        out.flush()  # a closed pipe shows here, not at interpreter exit
        return code
    except BrokenPipeError:
        raise
    except (TopicSyncError, CliError, KafkaException) as error:
        if args.debug:
            raise
        message = _one_line(error)
    except Exception as error:  # the promise is one line, never a traceback, without --debug
        if args.debug:
            raise
        message = (
            f"unexpected {type(error).__name__}: {one_line(str(error), MAX_ERROR_CHARS)} "
            "(re-run with --debug for details)"
        )
    message = one_line(message, MAX_ERROR_CHARS)
    print(f"topic-sync: error: {message}", file=sys.stderr)
    if args.output == "json":
        _print_json(out, {"command": args.command, "error": message})
    return EXIT_ERROR


def _one_line(error: Exception) -> str:
    if isinstance(error, KafkaException) and error.args:
        cause = error.args[0]
        text = cause.str() if hasattr(cause, "str") else str(cause)
        return f"Kafka client: {text}"
    return " ".join(str(error).split())


if __name__ == "__main__":
    sys.exit(main())
