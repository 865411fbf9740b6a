"""``llmops usage [--tenant X] [--since T] [--include-shadow] [--json]``: token accounting summed from ``llmops.usage``.

Shadow traffic (``llmops replay``, ``llmops eval run``) is the operator's, not the tenant's: left out
unless ``--include-shadow``, which shows it in rows of its own (a ``traffic`` column) with its own total.
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Iterable

from pydantic import ValidationError

from shared.models.usage import UsageRecord, UsageTotal, parse_since, summarize
from shared.runtime.settings import CoreSettings
from shared.runtime.topic_reader import read_topic

__all__ = ["add_parser", "format_table", "read_usage", "run"]

_COLUMNS = (
    ("tenant", "tenant"),
    ("model", "model"),
    ("requests", "requests"),
    ("cached", "cached"),
    ("prompt", "prompt_tokens"),
    ("completion", "completion_tokens"),
    ("total", "total_tokens"),
    ("saved", "saved_tokens"),
    ("cost", "cost"),
    ("saved cost", "saved_cost"),
)
_NAME_COLUMNS = 2  # tenant and model: left-aligned; the figures after them right-aligned


async def read_usage(core: CoreSettings) -> list[UsageRecord]:
    """Every readable usage record now on the topic (unreadable ones are skipped)."""
    records = []
    for record in await read_topic(core.kafka, core.topics.usage):
        try:
            records.append(UsageRecord.model_validate_json(record.value))
        except (ValidationError, ValueError):
            continue
    return records


def format_table(totals: Iterable[UsageTotal]) -> str:
    """Aligned columns, one row per tenant and model (and alias, when any request named one), and a total row.

    With shadow rows, a ``traffic`` column and a total row per traffic: shadow never adds to the live total.
    """
    rows = [t.as_dict() for t in totals]
    if not rows:
        return "no usage recorded"
    extra = [name for name, plain in (("alias", None), ("traffic", "live")) if any(r[name] != plain for r in rows)]
    columns: tuple[tuple[str, str], ...] = (
        *_COLUMNS[:_NAME_COLUMNS],
        *((name, name) for name in extra),
        *_COLUMNS[_NAME_COLUMNS:],
    )
    names = _NAME_COLUMNS + len(extra)
    body = list(rows)
    if len(rows) > 1:
        for kind in ("live", "shadow"):
            mine = [r for r in rows if r["traffic"] == kind]
            if not mine:
                continue
            all_row: dict[str, object] = {"tenant": "all", "model": "", "alias": "", "traffic": kind}
            for _, field in columns[names:]:
                all_row[field] = sum(float(str(r[field])) for r in mine)
            body.append(all_row)

    def cell(row: dict[str, object], field: str) -> str:
        value = row[field]
        if field in {"cost", "saved_cost"}:
            return f"{float(str(value)):.6f}"
        if isinstance(value, float):
            return str(int(value))
        return "" if value is None else str(value)

    table = [[title for title, _ in columns], *[[cell(r, f) for _, f in columns] for r in body]]
    widths = [max(len(line[i]) for line in table) for i in range(len(columns))]
    return "\n".join(
        "  ".join(v.ljust(w) if i < names else v.rjust(w) for i, (v, w) in enumerate(zip(line, widths, strict=True)))
        for line in table
    )


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Register ``llmops usage``."""
    usage = sub.add_parser(
        "usage", help="tokens, cache savings and cost per tenant and model (and alias) from llmops.usage"
    )
    usage.add_argument("--tenant", help="only this tenant")
    usage.add_argument("--since", help="only answers since: an ISO time (2026-01-31T12:00) or an age (30m, 24h, 7d)")
    usage.add_argument(
        "--include-shadow",
        action="store_true",
        help="also shadow traffic (llmops replay, eval run), in rows of its own; left out by default",
    )
    usage.add_argument("--json", action="store_true", help="one JSON object per tenant and model (and traffic)")


async def run(core: CoreSettings, args: argparse.Namespace) -> int:
    """Carry out ``llmops usage``."""
    try:
        since = parse_since(args.since) if args.since else None
    except ValueError as exc:
        raise SystemExit(str(exc)) from exc
    totals = summarize(await read_usage(core), tenant=args.tenant, since=since, include_shadow=args.include_shadow)
    if args.json:
        for total in totals:
            print(json.dumps(total.as_dict()))  # noqa: T201
    else:
        print(format_table(totals))  # noqa: T201
    return 0
