"""``llmops check`` and ``llmops eval-safety``: the guards from the command line, offline.

``llmops check [--stage input|context|output] [--tenant T] [TEXT]`` prints one JSON object:
``{"verdict", "findings": [{"check", "type", "span", "score", "action"}], "redacted"}``; ``--stage output``
runs postprocess's output checks under the tenant's ``output`` policy (no leakage: there is no prompt).
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
    from shared.guards import GuardSuite, OutputScanner, PolicySet  # noqa: PLC0415 - heavy, only here
    from shared.guards.evaluate import evaluate_file  # noqa: PLC0415

    policy = PolicySet.load(args.policy).for_tenant(args.tenant)
    if args.command == "check":
        text = sys.stdin.read() if args.text in {None, "-"} else args.text
        if args.stage == "output":
            scanner = OutputScanner()
            scanner.warm_up()
            result = scanner.scan(text, policy.output)
        else:
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
    named: list[tuple[str, str, dict[str, Any]]] = []
    if "injection" in report:
        named.append(("injection", "attack", report["injection"]))
    named += [("pii", finding_type, r) for finding_type, r in report.get("pii", {}).items()]
    for part in ("injection", "pii"):
        for axis in ("source", "category"):
            named += [(f"  {axis}", value, r) for value, r in report.get(f"{part}_by_{axis}", {}).items()]
    width = max([12, *(len(name) for _, name, _ in named)])
    header = f"{'check':<10} {'type':<{width}} {'precision':>9} {'recall':>7} {'f1':>7} {'fpr':>7} {'n':>6}"
    rows = [header + f" {'findings':>8}"]
    for check, name, r in named:
        p, rec = r["precision"], r["recall"]
        f1 = r.get("f1", 2 * p * rec / (p + rec) if p + rec else 0.0)
        fpr = f"{r['fpr']:>7.3f}" if "fpr" in r else f"{'-':>7}"
        found = r.get("findings", "-")  # PII groups: with no labelled value, precision alone reads 0
        rows.append(f"{check:<10} {name:<{width}} {p:>9.3f} {rec:>7.3f} {f1:>7.3f} {fpr} {r['n']:>6} {found:>8}")
    return "\n".join(rows)
