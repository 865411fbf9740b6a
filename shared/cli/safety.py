"""``llmops check`` and ``llmops eval-safety``: the guards from the command line, offline.

``llmops check [--stage input|context|output] [--tenant T] [TEXT]`` prints one JSON object:
``{"verdict", "findings": [{"check", "type", "span", "score", "action"}], "redacted"}``.
``llmops eval-safety FILE.jsonl [--json]`` scores the checks on labelled lines.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

__all__ = ["COMMANDS", "add_parsers", "run"]

COMMANDS = frozenset({"check", "eval-safety"})


def add_parsers(sub: Any) -> None:
    """Add the two subcommands to the ``llmops`` parser's subparsers."""
    check = sub.add_parser("check", help="run the safety checks on a text (argument or stdin), print JSON")
    check.add_argument("text", nargs="?", help="the text; read from stdin when absent or '-'")
    check.add_argument("--stage", choices=["input", "context", "output"], default="input")
    check.add_argument("--tenant", default="default", help="whose policy applies")
    check.add_argument("--policy", type=Path, help="a policy YAML instead of the packaged one")

    evaluate = sub.add_parser("eval-safety", help="precision, recall, F1 and FPR of the checks on labelled JSONL")
    evaluate.add_argument("file", type=Path)
    evaluate.add_argument("--json", action="store_true", help="print one JSON object")
    evaluate.add_argument("--tenant", default="default", help="whose thresholds apply")
    evaluate.add_argument("--policy", type=Path, help="a policy YAML instead of the packaged one")
    evaluate.add_argument(
        "--stage", choices=["input", "context"], default="input", help="context: injection lines are retrieved chunks"
    )


def run(args: argparse.Namespace) -> int:
    """Run ``check`` or ``eval-safety``; the exit status is 0 (check: 0 allowed, 1 blocked)."""
    from shared.components.guards import GuardSuite, PolicySet  # noqa: PLC0415 - heavy, only for these commands
    from shared.components.guards.evaluate import evaluate_file  # noqa: PLC0415

    policy = PolicySet.load(args.policy).for_tenant(args.tenant)
    if args.command == "check":
        text = sys.stdin.read() if args.text in {None, "-"} else args.text
        result = GuardSuite(policy, args.stage).scan(text)
        verdict: str = result.verdict
        if args.stage == "context" and result.findings:
            verdict = "drop"
        print(  # noqa: T201
            json.dumps(
                {"verdict": verdict, "findings": [f.as_dict() for f in result.findings], "redacted": result.redacted},
                ensure_ascii=False,
            )
        )
        return 1 if verdict in {"block", "drop"} else 0
    report = evaluate_file(args.file, policy, stage=args.stage).report()
    print(json.dumps(report) if args.json else format_report(report))  # noqa: T201
    return 0


def format_report(report: dict[str, Any]) -> str:
    """A plain table: one row per check and type."""
    rows = [f"{'check':<10} {'type':<12} {'precision':>9} {'recall':>7} {'f1':>7} {'fpr':>7} {'n':>6}"]
    if "injection" in report:
        r = report["injection"]
        rows.append(
            f"{'injection':<10} {'attack':<12} {r['precision']:>9.3f} {r['recall']:>7.3f} {r['f1']:>7.3f} "
            f"{r['fpr']:>7.3f} {r['n']:>6}"
        )
    for finding_type, r in report.get("pii", {}).items():
        rows.append(_pii_row("pii", finding_type, r))
    for axis in ("source", "category"):
        for value, r in report.get(f"injection_by_{axis}", {}).items():
            rows.append(
                f"{'  ' + axis:<10} {value:<12} {r['precision']:>9.3f} {r['recall']:>7.3f} {r['f1']:>7.3f} "
                f"{r['fpr']:>7.3f} {r['n']:>6}"
            )
        for value, r in report.get(f"pii_by_{axis}", {}).items():
            rows.append(_pii_row("  " + axis, value, r))
    return "\n".join(rows)


def _pii_row(check: str, name: str, r: dict[str, Any]) -> str:
    p, rec = r["precision"], r["recall"]
    f1 = 2 * p * rec / (p + rec) if p + rec else 0.0
    return f"{check:<10} {name:<12} {p:>9.3f} {rec:>7.3f} {f1:>7.3f} {'-':>7} {r['n']:>6}"
