"""``llmops usage [--tenant X] [--since T] [--json]``: token accounting summed from ``llmops.usage``."""

from __future__ import annotations

import argparse
import json
from collections.abc import Iterable

from pydantic import ValidationError

from shared.components.usage import UsageRecord, UsageTotal, parse_since, summarize
from shared.messaging.settings import CoreSettings
from shared.messaging.topic_reader import read_topic

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
    """Aligned columns, one row per tenant and model (and alias, when any request named one), and a total row."""
    rows = [t.as_dict() for t in totals]
    if not rows:
        return "no usage recorded"
    columns: tuple[tuple[str, str], ...] = _COLUMNS
    names = _NAME_COLUMNS
    if any(r["alias"] for r in rows):
        columns, names = (*_COLUMNS[:_NAME_COLUMNS], ("alias", "alias"), *_COLUMNS[_NAME_COLUMNS:]), names + 1
    all_row: dict[str, object] = {"tenant": "all", "model": "", "alias": ""}
    for _, field in columns[names:]:
        all_row[field] = sum(float(str(r[field])) for r in rows)
    body = [*rows, all_row] if len(rows) > 1 else rows

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
    usage.add_argument("--json", action="store_true", help="one JSON object per tenant and model")


async def run(core: CoreSettings, args: argparse.Namespace) -> int:
    """Carry out ``llmops usage``."""
    try:
        since = parse_since(args.since) if args.since else None
    except ValueError as exc:
        raise SystemExit(str(exc)) from exc
    totals = summarize(await read_usage(core), tenant=args.tenant, since=since)
    if args.json:
        for total in totals:
            print(json.dumps(total.as_dict()))  # noqa: T201
    else:
        print(format_table(totals))  # noqa: T201
    return 0
