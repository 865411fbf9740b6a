"""The canary report: each alias's variants compared on live traffic, from the usage records.

Every answer postprocess sends writes a usage record naming the alias the request asked for
and the model that served it; this sums them per (alias, model): the split against the
registry's weights, refusals, cache hits, end-to-end latency and tokens. Written like the
evaluation report (Markdown, JSON and, with matplotlib, a PNG). Shadow records (replay,
evaluation) are left out: they are not users' traffic, and a replay would skew the split.

Example:
    >>> report = build_canary_report(await read_usage(core), ModelRegistry.load(), since=parse_since("24h"))
    >>> write_canary_report(report, Path("canary-out"))  # canary.md, canary.json and canary.png

"""

from __future__ import annotations

import json
import math
from collections import defaultdict
from collections.abc import Iterable
from datetime import datetime
from pathlib import Path

from pydantic import BaseModel, Field

from shared.eval.report import percentile
from shared.eval.report_files import markdown_table, paired_bars, pyplot, save_figure, write_outputs
from shared.models.registry import ModelRegistry
from shared.models.usage import UsageRecord, dedupe

__all__ = ["CanaryReport", "VariantSummary", "build_canary_report", "render_canary_markdown", "write_canary_report"]

#: A split this many standard deviations away from the weights is flagged (binomial, per variant).
SPLIT_SIGMAS = 3.0


class VariantSummary(BaseModel):
    """One model's answers under one alias."""

    alias: str
    model: str
    requests: int
    share: float = Field(description="Of the alias's answers, the part this model gave.")
    expected_share: float | None = Field(
        default=None, description="The share the registry's weights give these tenants; None when not in it now."
    )
    split_z: float | None = Field(default=None, description="(observed - expected) / binomial sigma of the count.")
    refused: int
    cached: int
    latency_p50_ms: float = Field(description="Request creation to answer, over the answers not from the cache.")
    latency_p95_ms: float
    prompt_tokens: int
    completion_tokens: int
    mean_completion_tokens: float = Field(description="Per answer not from the cache.")
    cost: float
    currency: str = "USD"

    @property
    def refusal_rate(self) -> float:
        """Refused answers out of all."""
        return self.refused / self.requests if self.requests else 0.0

    @property
    def split_ok(self) -> bool:
        """Whether the observed share is within ``SPLIT_SIGMAS`` of the weights (or nothing to compare)."""
        return self.split_z is None or abs(self.split_z) <= SPLIT_SIGMAS


class CanaryReport(BaseModel):
    """Every alias's variants, as written to canary.json."""

    since: datetime | None = None
    tenant: str | None = None
    requests: int = Field(description="Answers to requests that named an alias.")
    variants: list[VariantSummary]


def _expected(records: list[UsageRecord], registry: ModelRegistry | None) -> dict[str, float] | None:
    """Expected answers per model of one alias: each record counts its tenant's shares (overrides included)."""
    alias = registry.aliases.get(records[0].alias or "") if registry is not None else None
    if alias is None:
        return None
    expected: defaultdict[str, float] = defaultdict(float)
    for record in records:
        for model, share in alias.shares(record.tenant).items():
            expected[model] += share
    return expected


def _summary(alias: str, model: str, mine: list[UsageRecord], total: int, expected: float | None) -> VariantSummary:
    generated = [r for r in mine if not r.cached]
    latencies = [(r.at - r.requested_at).total_seconds() * 1000 for r in generated]
    completion = sum(r.completion_tokens for r in mine)
    z = None
    if expected is not None and total:
        p = expected / total
        sigma = math.sqrt(total * p * (1 - p))
        # A weight of 0 or 1 leaves no spread: only an exact count matches (else the weights changed meanwhile).
        z = (len(mine) - expected) / sigma if sigma > 0 else (0.0 if len(mine) == round(expected) else None)
    return VariantSummary(
        alias=alias,
        model=model,
        requests=len(mine),
        share=len(mine) / total if total else 0.0,
        expected_share=expected / total if expected is not None and total else None,
        split_z=z,
        refused=sum(r.refused for r in mine),
        cached=sum(r.cached for r in mine),
        latency_p50_ms=percentile(latencies, 0.5),
        latency_p95_ms=percentile(latencies, 0.95),
        prompt_tokens=sum(r.prompt_tokens for r in mine),
        completion_tokens=completion,
        mean_completion_tokens=completion / len(generated) if generated else 0.0,
        cost=sum(r.cost for r in mine),
        currency=mine[0].currency if mine else "USD",
    )


def build_canary_report(
    records: Iterable[UsageRecord],
    registry: ModelRegistry | None = None,
    *,
    alias: str | None = None,
    tenant: str | None = None,
    since: datetime | None = None,
) -> CanaryReport:
    """Sum the live records of requests that named an alias (``alias``: only that one) per alias and model.

    With ``registry``, each variant's share is compared with the weights (every model the alias
    routes to is listed, even one that answered nothing yet).
    """
    by_alias: dict[str, list[UsageRecord]] = defaultdict(list)
    for record in dedupe(records):
        if record.shadow or not record.alias or (alias is not None and record.alias != alias):
            continue
        if (tenant is not None and record.tenant != tenant) or (since is not None and record.at < since):
            continue
        by_alias[record.alias].append(record)
    variants = []
    for name in sorted(by_alias):
        mine = by_alias[name]
        expected = _expected(mine, registry)
        by_model: dict[str, list[UsageRecord]] = defaultdict(list)
        for model in expected or {}:
            by_model[model] = []
        for record in mine:
            by_model[record.model].append(record)
        for model, served in by_model.items():
            want = expected.get(model, 0.0) if expected is not None else None
            variants.append(_summary(name, model, served, len(mine), want))
    return CanaryReport(since=since, tenant=tenant, requests=sum(map(len, by_alias.values())), variants=variants)


def render_canary_markdown(report: CanaryReport, *, chart: str | None = None) -> str:
    """The report as Markdown (``chart``: a PNG file name beside it, embedded when given)."""
    scope = [f"tenant {report.tenant}"] if report.tenant else []
    scope += [f"since {report.since.isoformat(timespec='seconds')}"] if report.since else []
    lines = [
        "# Canary: alias variants on live traffic",
        "",
        f"{report.requests} answers{' (' + ', '.join(scope) + ')' if scope else ''}.",
        "",
    ]
    if not report.variants:
        return "\n".join([*lines, "No answers to requests that named an alias.", ""])
    if chart:
        lines += [f"![share, refusals and latency per variant]({chart})", ""]

    def expected(v: VariantSummary) -> str:
        if v.expected_share is None:
            return "–"
        flag = "" if v.split_ok else " **off**"
        return f"{v.expected_share:.1%} (z {v.split_z:+.1f}){flag}"

    rows = [
        [
            v.alias,
            v.model,
            str(v.requests),
            f"{v.share:.1%}",
            expected(v),
            f"{v.refusal_rate:.1%} ({v.refused})",
            str(v.cached),
            f"{v.latency_p50_ms:.0f}",
            f"{v.latency_p95_ms:.0f}",
            str(v.prompt_tokens),
            str(v.completion_tokens),
            f"{v.mean_completion_tokens:.1f}",
            f"{v.cost:.6f} {v.currency}",
        ]
        for v in report.variants
    ]
    header = ["alias", "model", "answers", "share", "weights", "refused", "cached", "p50 ms", "p95 ms"]
    lines += markdown_table([*header, "prompt", "completion", "mean out", "cost"], rows)
    note = (
        f"*weights*: the share the registry's weights give (z: standard deviations from it; **off** beyond "
        f"{SPLIT_SIGMAS:g}). Latency and mean out are over answers not taken from the cache."
    )
    lines += [note, ""]
    return "\n".join(lines)


def write_chart(report: CanaryReport, path: Path) -> bool:
    """Share, refusal rate and p50/p95 latency per variant as a PNG; ``False`` without matplotlib."""
    plt = pyplot()
    if plt is None:
        return False
    variants = report.variants
    names = [f"{v.alias}\n{v.model}" for v in variants]
    fig, (shares, latency) = plt.subplots(1, 2, figsize=(max(8, 2.5 * len(names)), 4))
    paired_bars(
        shares,
        names,
        ([100 * v.share for v in variants], [100 * v.refusal_rate for v in variants]),
        ("share", "refused"),
    )
    shares.set_ylim(0, 100)
    shares.set_ylabel("% of the alias's answers / refused")
    shares.set_title("Split and refusals")
    paired_bars(
        latency, names, ([v.latency_p50_ms for v in variants], [v.latency_p95_ms for v in variants]), ("p50", "p95")
    )
    latency.set_ylabel("end-to-end latency (ms)")
    latency.set_title("Latency")
    save_figure(plt, fig, path)
    return True


def write_canary_report(report: CanaryReport, out_dir: Path) -> list[Path]:
    """canary.md, canary.json and (with matplotlib) canary.png in ``out_dir``; the paths written."""
    payload = report.model_dump(mode="json")
    for summary, raw in zip(report.variants, payload["variants"], strict=True):
        raw["refusal_rate"] = summary.refusal_rate
        raw["split_ok"] = summary.split_ok
    return write_outputs(
        out_dir,
        "canary",
        markdown=lambda chart: render_canary_markdown(report, chart=chart),
        payload=json.dumps(payload, indent=2),
        chart=(lambda path: write_chart(report, path)) if report.variants else None,
    )
