"""``llmops canary report [--alias A] [--tenant T] [--since T] [--out DIR] [--json]``: alias variants compared.

Reads ``llmops.usage`` (one record per answer, naming the alias asked for and the model that
served it) and writes canary.md, canary.json and canary.png, like ``llmops eval report``.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from shared.cli.usage import read_usage
from shared.eval.canary import CanaryReport, build_canary_report, write_canary_report
from shared.models.registry import ModelRegistry
from shared.models.usage import parse_since
from shared.runtime.settings import CoreSettings

__all__ = ["add_parser", "run"]


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Register ``llmops canary report``."""
    canary = sub.add_parser("canary", help="compare the variants of registry aliases on live traffic")
    actions = canary.add_subparsers(dest="canary_command", required=True)
    report = actions.add_parser("report", help="split, refusals, latency and tokens per variant (from llmops.usage)")
    report.add_argument("--alias", help="only this alias")
    report.add_argument("--tenant", help="only this tenant")
    report.add_argument("--since", help="only answers since: an ISO time (2026-01-31T12:00) or an age (30m, 24h, 7d)")
    report.add_argument("--out", type=Path, default=Path("canary-out"), help="output folder (default: canary-out)")
    report.add_argument("--json", action="store_true", help="print the JSON report instead of a summary")


def _print_summary(report: CanaryReport, written: list[Path]) -> None:
    if not report.variants:
        print("no answers to requests that named an alias")  # noqa: T201
    for v in report.variants:
        weights = (
            "" if v.expected_share is None else f" (weights {v.expected_share:.1%}{'' if v.split_ok else ', OFF'})"
        )
        print(  # noqa: T201
            f"{v.alias} → {v.model}: {v.requests} answers, {v.share:.1%}{weights}, refused {v.refusal_rate:.1%}, "
            f"p50 {v.latency_p50_ms:.0f} ms, p95 {v.latency_p95_ms:.0f} ms, {v.mean_completion_tokens:.1f} tokens out"
        )
    print("wrote " + ", ".join(str(p) for p in written), file=sys.stderr)  # noqa: T201


async def run(core: CoreSettings, args: argparse.Namespace) -> int:
    """Carry out ``llmops canary report``; exit 1 when a variant's split is off its weights."""
    try:
        since = parse_since(args.since) if args.since else None
    except ValueError as exc:
        raise SystemExit(str(exc)) from exc
    registry = ModelRegistry.load(core.registry_path, default=core.default_model)
    report = build_canary_report(await read_usage(core), registry, alias=args.alias, tenant=args.tenant, since=since)
    written = write_canary_report(report, args.out)
    if args.json:
        print(json.dumps(json.loads((args.out / "canary.json").read_text())))  # noqa: T201
    else:
        _print_summary(report, written)
    return 0 if all(v.split_ok for v in report.variants) else 1
