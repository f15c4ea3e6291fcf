"""Human-readable tables for the operator CLI and the demo: plans and per-topic results.

Pure formatting over the engine's values (``Plan``, ``TopicAction``, ``TopicResult``);
no decisions are made here.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from topic_sync.plan import SYMBOLS, ActionKind, Plan, TopicAction

_PAST = {
    ActionKind.CREATE: "created",
    ActionKind.UPDATE: "updated",
    ActionKind.DELETE: "deleted",
}


def action_details(action: TopicAction) -> list[str]:
    """What will change on one topic, one item per line (empty when nothing changes)."""
    if action.kind is ActionKind.CREATE:
        rf = "" if action.replication_factor is None else f", rf {action.replication_factor}"
        lines = [f"partitions {action.partitions}{rf}"]
        lines += [f"{c.key} = {c.new}" for c in action.config_changes]
        return lines
    lines = []
    if action.adds_partitions:
        lines.append(f"partitions {action.old_partitions} -> {action.partitions}")
    lines += [c.describe() for c in action.config_changes]
    lines += list(action.reasons)
    lines += [f"warning: {w}" for w in action.warnings]
    if action.kind is ActionKind.UNCHANGED and not lines:
        lines.append(f"partitions {action.partitions}")
    return lines


def _table(rows: Sequence[tuple[str, str, str, list[str]]], headers: tuple[str, str, str]) -> str:
    """Rows of (symbol, topic, status, detail lines); extra detail lines get their own row."""
    name_width = max([len(headers[1]), *(len(r[1]) for r in rows)])
    status_width = max([len(headers[2]), *(len(r[2]) for r in rows)])
    out = [f"  {headers[1]:<{name_width}}  {headers[2]:<{status_width}}  {headers[0]}"]
    for symbol, name, status, details in rows:
        first, *rest = details or [""]
        out.append(f"{symbol} {name:<{name_width}}  {status:<{status_width}}  {first}".rstrip())
        out.extend(f"  {'':<{name_width}}  {'':<{status_width}}  {line}" for line in rest)
    return "\n".join(out)


def plan_table(plan: Plan) -> str:
    """The plan as a table: one row per topic, one line per change."""
    if not plan.actions:
        return "(no topics)"
    rows = [(SYMBOLS[a.kind], a.name, a.kind.value, action_details(a)) for a in plan.actions]
    return _table(rows, ("DETAILS", "TOPIC", "ACTION"))


def plan_counts(plan: Plan) -> str:
    """``Plan: 1 to create, 2 to update, 3 unchanged.`` (kinds with zero topics left out)."""
    counts = plan.counts()
    words = {
        ActionKind.CREATE: "to create",
        ActionKind.UPDATE: "to update",
        ActionKind.DELETE: "to delete",
        ActionKind.UNCHANGED: "unchanged",
        ActionKind.RETAIN: "kept",
        ActionKind.REFUSED: "refused",
    }
    parts = [f"{counts[k.value]} {word}" for k, word in words.items() if counts[k.value]]
    return f"Plan: {', '.join(parts) or 'nothing'}."


def results_table(plan: Plan, failures: Mapping[str, str]) -> str:
    """Per-topic outcome of an apply: every mutation is either done or failed with a reason."""
    rows = []
    for action in plan.mutations:
        why = failures.get(action.name)
        if why is None:
            rows.append(("+", action.name, _PAST[action.kind], ["; ".join(action_details(action))]))
        else:
            rows.append(("!", action.name, "FAILED", [why]))
    if not rows:
        return "(nothing applied)"
    return _table(rows, ("DETAILS", "TOPIC", "RESULT"))
