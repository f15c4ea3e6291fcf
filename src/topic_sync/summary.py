"""The response Data: a compact summary that always fits CloudFormation's 4096-byte limit."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from topic_sync.plan import ActionKind, Plan

MAX_DATA_BYTES = 3500  # CloudFormation allows 4096 for the whole response body
_LIST_BUDGET = 400  # characters per topic-name list
_PLAN_BUDGET = 900
_WARNINGS_BUDGET = 400

_LISTS = {
    "Created": ActionKind.CREATE,
    "Updated": ActionKind.UPDATE,
    "Unchanged": ActionKind.UNCHANGED,
    "Deleted": ActionKind.DELETE,
    "Retained": ActionKind.RETAIN,
}


def truncated(items: Sequence[str], budget: int, separator: str = ",") -> str:
    """Join ``items`` within ``budget`` characters, ending with ``+N more`` if cut."""
    out: list[str] = []
    used = 0
    for index, item in enumerate(items):
        rest = len(items) - index
        marker = f"{separator}+{rest} more"
        cost = len(item) + (len(separator) if out else 0)
        if used + cost + (len(marker) if rest > 1 else 0) > budget:
            out.append(f"+{rest} more")
            break
        out.append(item)
        used += cost
    return separator.join(out)


def summarize(
    plan: Plan,
    *,
    dry_run: bool = False,
    rollback: bool = False,
    requests: int = 0,
    retained: Sequence[str] = (),
) -> dict[str, Any]:
    """Counts and (truncated) names per outcome; the plan itself on dry runs."""
    data: dict[str, Any] = {}
    for key, kind in _LISTS.items():
        names = [a.name for a in plan.of_kind(kind)]
        if kind is ActionKind.RETAIN:
            names += list(retained)
        data[key] = len(names)
        data[f"{key}Topics"] = truncated(names, _LIST_BUDGET)
    data["Warnings"] = truncated(list(plan.warnings), _WARNINGS_BUDGET, " | ")
    data["AdminRequests"] = requests
    data["DryRun"] = "true" if dry_run else "false"
    data["Rollback"] = "true" if rollback else "false"
    if dry_run:
        data["Plan"] = truncated(plan.describe(), _PLAN_BUDGET, "\n")
    # Belt and braces: never fail a deploy because the summary is too big.
    while len(json.dumps(data).encode()) > MAX_DATA_BYTES:
        key = max((k for k, v in data.items() if isinstance(v, str)), key=lambda k: len(data[k]))
        data[key] = data[key][: len(data[key]) // 2] + "...(truncated)"
    return data
