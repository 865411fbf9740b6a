"""The replay comparison: each shadow answer against the answer users got, summed up; Markdown, JSON and a chart.

Per pair: answer similarity (cosine of MiniLM embeddings), a refusal gained or lost, and the
latency and token differences (shadow minus original). Errors (timeouts, a model the tenant may
not use) are counted, not compared.

Example:
    >>> report = build_comparison(pairs, embed=Embedder().embed, candidate="model=gemma-3-270m", window=window)
    >>> write_comparison(report, Path("replay-out"))  # replay.md, replay.json and, with matplotlib, replay.png

"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime
from pathlib import Path
from typing import Literal

import numpy as np
import numpy.typing as npt
from pydantic import BaseModel, Field

from shared.eval.replay import ReplayPair, TimeWindow
from shared.eval.report import percentile
from shared.eval.report_files import markdown_table, paired_bars, pyplot, save_figure, write_outputs
from shared.eval.results import Outcome

__all__ = [
    "PairComparison",
    "ReplayReport",
    "ReplaySummary",
    "build_comparison",
    "compare_pair",
    "cosine_similarities",
    "render_comparison",
    "write_comparison",
]

Embed = Callable[[Sequence[str]], npt.NDArray[np.float32]]
RefusalChange = Literal["gained", "lost"]
_LEAST_SIMILAR = 10


class PairComparison(BaseModel):
    """One recorded request compared with its shadow replay."""

    pair: ReplayPair
    similarity: float | None = Field(default=None, description="Cosine of the two answers' embeddings (both answered).")
    refusal: RefusalChange | None = Field(default=None, description="Refused by the candidate only (gained), or lost.")
    latency_delta_ms: float | None = Field(default=None, description="Shadow minus original pipeline latency.")
    tokens_in_delta: int | None = None
    tokens_out_delta: int | None = None


class ReplaySummary(BaseModel):
    """The figures of the whole replay."""

    candidate: str
    since: datetime
    until: datetime | None
    replayed: int = Field(description="Recorded requests sent again.")
    skipped: dict[str, int] = Field(default_factory=dict, description="Recorded records not replayed, by reason.")
    compared: int = Field(description="Pairs where both answers came and neither was an error.")
    missing_original: int = Field(description="Replayed requests whose users' answer is not on the reply topic.")
    missing_shadow: int = Field(description="Replayed requests whose shadow answer did not come in time.")
    errors_original: int
    errors_shadow: int
    similarity_mean: float | None
    similarity_p50: float | None
    similarity_min: float | None
    refusals_original: int
    refusals_shadow: int
    refusals_gained: int
    refusals_lost: int
    latency_p50_original_ms: float
    latency_p50_shadow_ms: float
    latency_p95_original_ms: float
    latency_p95_shadow_ms: float
    latency_delta_p50_ms: float | None = Field(description="Median of the per-pair latency differences.")
    tokens_in_original: int
    tokens_in_shadow: int
    tokens_out_original: int
    tokens_out_shadow: int
    tokens_out_delta_mean: float | None = Field(description="Mean per-pair difference of completion tokens.")


class ReplayReport(BaseModel):
    """The whole comparison, as written to replay.json."""

    summary: ReplaySummary
    pairs: list[PairComparison]


def cosine_similarities(left: Sequence[str], right: Sequence[str], embed: Embed) -> list[float]:
    """The cosine of each ``left[i]`` and ``right[i]`` (embedded in one call; 0 for an empty text's zero vector)."""
    if not left:
        return []
    vectors = np.asarray(embed([*left, *right]), dtype=np.float32)
    a, b = vectors[: len(left)], vectors[len(left) :]
    norms = np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1)
    dots = np.sum(a * b, axis=1)
    return [float(d / n) if n > 0 else 0.0 for d, n in zip(dots, norms, strict=True)]


def _answered(outcome: Outcome | None) -> bool:
    return outcome is not None and outcome.error_code is None


def compare_pair(pair: ReplayPair, similarity: float | None = None) -> PairComparison:
    """The differences of one pair (similarity computed by the caller, in one batch for all pairs)."""
    original, shadow = pair.original, pair.shadow
    if not (_answered(original) and _answered(shadow)):
        return PairComparison(pair=pair)
    assert original is not None  # noqa: S101 - _answered
    assert shadow is not None  # noqa: S101
    refusal: RefusalChange | None = None
    if shadow.refused != original.refused:
        refusal = "gained" if shadow.refused else "lost"
    return PairComparison(
        pair=pair,
        similarity=similarity,
        refusal=refusal,
        latency_delta_ms=shadow.latency_ms - original.latency_ms,
        tokens_in_delta=shadow.tokens_in - original.tokens_in,
        tokens_out_delta=shadow.tokens_out - original.tokens_out,
    )


def _mean(values: Sequence[float]) -> float | None:
    return sum(values) / len(values) if values else None


def _summary(
    comparisons: list[PairComparison], *, candidate: str, window: TimeWindow, skipped: dict[str, int]
) -> ReplaySummary:
    compared = [c for c in comparisons if c.latency_delta_ms is not None]
    similarities = [c.similarity for c in compared if c.similarity is not None]
    originals = [c.pair.original for c in compared if c.pair.original is not None]
    shadows = [c.pair.shadow for c in compared if c.pair.shadow is not None]
    latency_deltas = [c.latency_delta_ms for c in compared if c.latency_delta_ms is not None]
    token_deltas = [float(c.tokens_out_delta) for c in compared if c.tokens_out_delta is not None]
    return ReplaySummary(
        candidate=candidate,
        since=window.since,
        until=window.until,
        replayed=len(comparisons),
        skipped=dict(sorted(skipped.items())),
        compared=len(compared),
        missing_original=sum(c.pair.original is None for c in comparisons),
        missing_shadow=sum(c.pair.shadow is None for c in comparisons),
        errors_original=sum(
            c.pair.original is not None and c.pair.original.error_code is not None for c in comparisons
        ),
        errors_shadow=sum(c.pair.shadow is not None and c.pair.shadow.error_code is not None for c in comparisons),
        similarity_mean=_mean(similarities),
        similarity_p50=percentile(similarities, 0.5) if similarities else None,
        similarity_min=min(similarities) if similarities else None,
        refusals_original=sum(o.refused for o in originals),
        refusals_shadow=sum(s.refused for s in shadows),
        refusals_gained=sum(c.refusal == "gained" for c in compared),
        refusals_lost=sum(c.refusal == "lost" for c in compared),
        latency_p50_original_ms=percentile([o.latency_ms for o in originals], 0.5),
        latency_p50_shadow_ms=percentile([s.latency_ms for s in shadows], 0.5),
        latency_p95_original_ms=percentile([o.latency_ms for o in originals], 0.95),
        latency_p95_shadow_ms=percentile([s.latency_ms for s in shadows], 0.95),
        latency_delta_p50_ms=percentile(latency_deltas, 0.5) if latency_deltas else None,
        tokens_in_original=sum(o.tokens_in for o in originals),
        tokens_in_shadow=sum(s.tokens_in for s in shadows),
        tokens_out_original=sum(o.tokens_out for o in originals),
        tokens_out_shadow=sum(s.tokens_out for s in shadows),
        tokens_out_delta_mean=_mean(token_deltas),
    )


def build_comparison(
    pairs: Sequence[ReplayPair],
    *,
    embed: Embed,
    candidate: str,
    window: TimeWindow,
    skipped: dict[str, int] | None = None,
) -> ReplayReport:
    """Compare every pair; the answers of pairs where both came (no errors) are embedded in one call."""
    both = [p for p in pairs if _answered(p.original) and _answered(p.shadow)]
    scores = cosine_similarities(
        [p.original.text for p in both if p.original is not None],
        [p.shadow.text for p in both if p.shadow is not None],
        embed,
    )
    by_id = dict(zip((p.request_id for p in both), scores, strict=True))
    comparisons = [compare_pair(p, by_id.get(p.request_id)) for p in pairs]
    return ReplayReport(
        summary=_summary(comparisons, candidate=candidate, window=window, skipped=skipped or {}),
        pairs=comparisons,
    )


def _num(value: float | None, fmt: str = ".0f") -> str:
    return "–" if value is None else format(value, fmt)


def render_comparison(report: ReplayReport, *, chart: str | None = None) -> str:
    """The comparison as Markdown (``chart``: a PNG file name beside it, embedded when given)."""
    s = report.summary
    window = f"{s.since.isoformat()} to {s.until.isoformat() if s.until else 'now'}"
    lines = [f"# Replay: {s.candidate}", "", f"{s.replayed} recorded requests replayed ({window}).", ""]
    if s.skipped:
        lines += ["Not replayed: " + ", ".join(f"{k} {v}" for k, v in s.skipped.items()) + ".", ""]
    if chart:
        lines += [f"![answer similarity, latency and tokens]({chart})", ""]
    lines += ["## Summary", ""]
    lines += markdown_table(
        ["", "original", "candidate"],
        [
            ["answers compared", str(s.compared), str(s.compared)],
            ["missing answers", str(s.missing_original), str(s.missing_shadow)],
            ["errors", str(s.errors_original), str(s.errors_shadow)],
            ["refusals", str(s.refusals_original), str(s.refusals_shadow)],
            ["latency p50 ms", _num(s.latency_p50_original_ms), _num(s.latency_p50_shadow_ms)],
            ["latency p95 ms", _num(s.latency_p95_original_ms), _num(s.latency_p95_shadow_ms)],
            ["tokens in", str(s.tokens_in_original), str(s.tokens_in_shadow)],
            ["tokens out", str(s.tokens_out_original), str(s.tokens_out_shadow)],
        ],
    )
    lines += ["## Differences", ""]
    lines += markdown_table(
        ["measure", "value"],
        [
            ["answer similarity, mean", _num(s.similarity_mean, ".3f")],
            ["answer similarity, median", _num(s.similarity_p50, ".3f")],
            ["answer similarity, lowest", _num(s.similarity_min, ".3f")],
            ["refusals gained", str(s.refusals_gained)],
            ["refusals lost", str(s.refusals_lost)],
            ["latency difference, median ms", _num(s.latency_delta_p50_ms, "+.0f")],
            ["completion tokens difference, mean", _num(s.tokens_out_delta_mean, "+.1f")],
        ],
    )
    changed = sorted(
        (c for c in report.pairs if c.similarity is not None or c.refusal),
        key=lambda c: (c.refusal is None, c.similarity if c.similarity is not None else 1.0),
    )[:_LEAST_SIMILAR]
    lines += ["## Least similar answers and refusal changes", ""]
    lines += (
        markdown_table(
            ["request", "tenant", "similarity", "refusal", "latency Δ ms", "tokens out Δ"],
            [
                [
                    c.pair.request_id,
                    c.pair.tenant,
                    _num(c.similarity, ".3f"),
                    c.refusal or "",
                    _num(c.latency_delta_ms, "+.0f"),
                    _num(c.tokens_out_delta, "+d") if c.tokens_out_delta is not None else "–",
                ]
                for c in changed
            ],
        )
        if changed
        else ["None.", ""]
    )
    return "\n".join(lines)


def write_chart(report: ReplayReport, path: Path) -> bool:
    """Similarity histogram, p50/p95 latency and tokens out, original and candidate; ``False`` without matplotlib."""
    plt = pyplot()
    if plt is None:
        return False
    s = report.summary
    similarities = [c.similarity for c in report.pairs if c.similarity is not None]
    fig, (similar, latency, tokens) = plt.subplots(1, 3, figsize=(13, 4))
    similar.hist(similarities, bins=20, range=(min([0.0, *similarities]), 1.0), color="tab:blue")
    similar.set_xlabel("cosine similarity")
    similar.set_ylabel("answers")
    similar.set_title("Answer similarity")
    paired_bars(
        latency,
        ["p50", "p95"],
        ([s.latency_p50_original_ms, s.latency_p95_original_ms], [s.latency_p50_shadow_ms, s.latency_p95_shadow_ms]),
        ("original", "candidate"),
    )
    latency.set_ylabel("pipeline latency (ms)")
    latency.set_title("Latency")
    tokens.bar(
        ["original", "candidate"], [s.tokens_out_original, s.tokens_out_shadow], color=["tab:blue", "tab:orange"]
    )
    tokens.set_ylabel("completion tokens (compared pairs)")
    tokens.set_title(f"Tokens out; refusals +{s.refusals_gained} / -{s.refusals_lost}")
    fig.suptitle(f"Replay: {s.candidate}")
    save_figure(plt, fig, path)
    return True


def write_comparison(report: ReplayReport, out_dir: Path) -> list[Path]:
    """replay.md, replay.json and (with matplotlib) replay.png in ``out_dir``; the paths written."""
    return write_outputs(
        out_dir,
        "replay",
        markdown=lambda chart: render_comparison(report, chart=chart),
        payload=report.model_dump_json(indent=2),
        chart=(lambda path: write_chart(report, path)) if report.pairs else None,
    )
