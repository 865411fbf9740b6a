"""The report of one or more result files: pass rates, latency, tokens, and what changed between configurations.

Example:
    >>> report = build_report(read_results([Path("eval-out/results.jsonl")]))
    >>> write_report(report, Path("eval-out"))  # report.md, report.json and, with matplotlib, report.png

"""

from __future__ import annotations

import json
import math
from collections import defaultdict
from collections.abc import Iterable, Sequence
from pathlib import Path

from pydantic import BaseModel, Field

from shared.eval.report_files import markdown_table, paired_bars, pyplot, save_figure, write_outputs
from shared.eval.results import EvalResult

__all__ = ["ChangedCase", "ConfigurationSummary", "Rate", "Report", "build_report", "render_markdown", "write_report"]


class Rate(BaseModel):
    """Passed out of total."""

    passed: int = 0
    total: int = 0

    @property
    def rate(self) -> float:
        """The pass rate, 0 when nothing was counted."""
        return self.passed / self.total if self.total else 0.0

    def add(self, *, passed: bool) -> None:
        """Count one more."""
        self.total += 1
        self.passed += int(passed)


class ConfigurationSummary(BaseModel):
    """One configuration's figures."""

    name: str
    cases: Rate
    by_category: dict[str, Rate]
    by_kind: dict[str, Rate]
    latency_p50_ms: float
    latency_p95_ms: float
    tokens_in: int
    tokens_out: int
    mean_tokens_out: float
    errors: int = Field(description="Answers that were errors (timeouts included) where no refusal was expected.")
    paraphrase_agreement: Rate = Field(
        default_factory=Rate, description="Paraphrases whose outcome (pass or fail) equals their original's."
    )


class ChangedCase(BaseModel):
    """A case that passed under some configurations and failed under others."""

    case_id: str
    category: str
    passed: dict[str, bool]
    details: dict[str, str] = Field(description="Why it failed, per configuration where it did.")


class Report(BaseModel):
    """The whole report, as written to report.json."""

    suites: list[str]
    results: int
    configurations: list[ConfigurationSummary]
    changed: list[ChangedCase]


def percentile(values: Sequence[float], q: float) -> float:
    """The ``q`` quantile (0..1) with linear interpolation; 0 for no values."""
    if not values:
        return 0.0
    ordered = sorted(values)
    position = (len(ordered) - 1) * q
    low, high = math.floor(position), math.ceil(position)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


def _summary(name: str, records: list[EvalResult]) -> ConfigurationSummary:
    cases = Rate()
    by_category: defaultdict[str, Rate] = defaultdict(Rate)
    by_kind: defaultdict[str, Rate] = defaultdict(Rate)
    for record in records:
        cases.add(passed=record.passed)
        by_category[record.category].add(passed=record.passed)
        for check in record.checks:
            by_kind[check.kind].add(passed=check.passed)
    outcomes = {r.case_id: r.passed for r in records}
    agreement = Rate()
    for record in records:
        if record.paraphrase_of in outcomes:
            agreement.add(passed=record.passed == outcomes[record.paraphrase_of])
    latencies = [r.outcome.latency_ms for r in records]
    tokens_out = sum(r.outcome.tokens_out for r in records)
    return ConfigurationSummary(
        name=name,
        cases=cases,
        by_category=dict(sorted(by_category.items())),
        by_kind=dict(sorted(by_kind.items())),
        latency_p50_ms=percentile(latencies, 0.5),
        latency_p95_ms=percentile(latencies, 0.95),
        tokens_in=sum(r.outcome.tokens_in for r in records),
        tokens_out=tokens_out,
        mean_tokens_out=tokens_out / len(records) if records else 0.0,
        errors=sum(1 for r in records if r.check("error") is not None),
        paraphrase_agreement=agreement,
    )


def _failure(record: EvalResult) -> str:
    return "; ".join(f"{c.kind}: {c.detail}" for c in record.checks if not c.passed)


def build_report(records: Iterable[EvalResult]) -> Report:
    """Aggregate result records (the last record wins when a case ran twice under one configuration)."""
    latest: dict[tuple[str, str], EvalResult] = {}
    for record in records:
        latest[record.configuration, record.case_id] = record
    by_config: dict[str, list[EvalResult]] = defaultdict(list)
    by_case: dict[str, dict[str, EvalResult]] = defaultdict(dict)
    for (config, case_id), record in latest.items():
        by_config[config].append(record)
        by_case[case_id][config] = record
    changed = []
    for case_id, runs in by_case.items():
        if len({r.passed for r in runs.values()}) > 1:
            first = next(iter(runs.values()))
            changed.append(
                ChangedCase(
                    case_id=case_id,
                    category=first.category,
                    passed={c: r.passed for c, r in runs.items()},
                    details={c: _failure(r) for c, r in runs.items() if not r.passed},
                )
            )
    return Report(
        suites=sorted({r.suite for r in latest.values()}),
        results=len(latest),
        configurations=[_summary(name, recs) for name, recs in by_config.items()],
        changed=changed,
    )


def _pct(rate: Rate) -> str:
    return f"{rate.rate:.0%} ({rate.passed}/{rate.total})" if rate.total else "–"


def _breakdown(report: Report, title: str, attribute: str) -> list[str]:
    configs = report.configurations
    keys = sorted({k for c in configs for k in getattr(c, attribute)})
    rows = [[key, *(_pct(getattr(c, attribute).get(key, Rate())) for c in configs)] for key in keys]
    return [f"## {title}", "", *markdown_table([title.rsplit(" ", 1)[-1], *(c.name for c in configs)], rows)]


def render_markdown(report: Report, *, chart: str | None = None) -> str:
    """The report as Markdown (``chart``: a PNG file name beside it, embedded when given)."""
    lines = [f"# Evaluation: {', '.join(report.suites)}", "", f"{report.results} results.", ""]
    if chart:
        lines += [f"![pass rate and latency per configuration]({chart})", ""]
    lines += ["## Configurations", ""]
    lines += markdown_table(
        ["configuration", "pass rate", "p50 ms", "p95 ms", "tokens in", "tokens out", "mean out", "errors"],
        [
            [
                c.name,
                _pct(c.cases),
                f"{c.latency_p50_ms:.0f}",
                f"{c.latency_p95_ms:.0f}",
                str(c.tokens_in),
                str(c.tokens_out),
                f"{c.mean_tokens_out:.1f}",
                str(c.errors),
            ]
            for c in report.configurations
        ],
    )
    if any(c.paraphrase_agreement.total for c in report.configurations):
        lines += ["## Paraphrases scored like their originals", ""]
        lines += markdown_table(
            ["configuration", "agreement"], [[c.name, _pct(c.paraphrase_agreement)] for c in report.configurations]
        )
    lines += _breakdown(report, "Pass rate by category", "by_category")
    lines += _breakdown(report, "Pass rate by kind", "by_kind")
    lines += ["## Cases that changed between configurations", ""]
    if not report.changed:
        lines += ["None.", ""]
    else:
        names = [c.name for c in report.configurations]
        lines += markdown_table(
            ["case", "category", *names],
            [
                [
                    change.case_id,
                    change.category,
                    *(
                        "–"
                        if name not in change.passed
                        else "pass"
                        if change.passed[name]
                        else f"FAIL {change.details.get(name, '')}".replace("|", "\\|")
                        for name in names
                    ),
                ]
                for change in report.changed
            ],
        )
    return "\n".join(lines)


def write_chart(report: Report, path: Path) -> bool:
    """Pass rate and p50/p95 latency per configuration as a PNG; ``False`` when matplotlib is not installed."""
    plt = pyplot()
    if plt is None:
        return False
    configs = report.configurations
    names = [c.name for c in configs]
    fig, (rates, latency) = plt.subplots(1, 2, figsize=(max(8, 2.5 * len(names)), 4))
    rates.bar(names, [100 * c.cases.rate for c in configs], color="tab:green")
    rates.set_ylim(0, 100)
    rates.set_ylabel("cases passed (%)")
    rates.set_title("Pass rate")
    rates.set_xticks(range(len(names)), names, fontsize=8, rotation=15, ha="right")
    paired_bars(
        latency, names, ([c.latency_p50_ms for c in configs], [c.latency_p95_ms for c in configs]), ("p50", "p95")
    )
    latency.set_ylabel("end-to-end latency (ms)")
    latency.set_title("Latency")
    save_figure(plt, fig, path)
    return True


def write_report(report: Report, out_dir: Path) -> list[Path]:
    """report.md, report.json and (with matplotlib) report.png in ``out_dir``; the paths written."""
    payload = report.model_dump(mode="json")
    for summary, raw in zip(report.configurations, payload["configurations"], strict=True):
        raw["pass_rate"] = summary.cases.rate
    return write_outputs(
        out_dir,
        "report",
        markdown=lambda chart: render_markdown(report, chart=chart),
        payload=json.dumps(payload, indent=2),
        chart=(lambda path: write_chart(report, path)) if report.configurations else None,
    )
