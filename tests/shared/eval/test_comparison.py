"""Tests for the replay comparison: similarity, refusals gained and lost, latency and token differences, the files."""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import numpy.typing as npt
import pytest

from shared.eval.comparison import build_comparison, compare_pair, cosine_similarities, write_comparison
from shared.eval.replay import ReplayPair, TimeWindow
from shared.eval.results import Outcome

WINDOW = TimeWindow(datetime(2026, 3, 1, 10, tzinfo=UTC), datetime(2026, 3, 1, 12, tzinfo=UTC))
VECTORS = {"paris": [1.0, 0.0], "the capital is paris": [0.8, 0.6], "no": [0.0, 1.0], "": [0.0, 0.0]}


def fake_embed(texts: Sequence[str]) -> npt.NDArray[np.float32]:
    """Two-dimensional stand-in for MiniLM: a few known texts, fixed vectors (not normalised for the empty one)."""
    return np.asarray([VECTORS[t] for t in texts], dtype=np.float32)


def pair(
    rid: str,
    original: Outcome | None,
    shadow: Outcome | None,
) -> ReplayPair:
    return ReplayPair(request_id=rid, shadow_request_id=f"s-{rid}", tenant="acme", original=original, shadow=shadow)


class TestCosine:
    def test_pairwise_cosine(self) -> None:
        """Row i of the left is compared with row i of the right; a zero vector scores 0."""
        scores = cosine_similarities(["paris", "paris", ""], ["the capital is paris", "no", "paris"], fake_embed)
        assert scores == pytest.approx([0.8, 0.0, 0.0])
        assert cosine_similarities([], [], fake_embed) == []


class TestComparePair:
    def test_refusal_gained_and_lost(self) -> None:
        """The candidate refusing what users got answered is a refusal gained; the other way round, lost."""
        answered, refused = Outcome(text="paris"), Outcome(text="no", refused=True, category="secrets")
        assert compare_pair(pair("a", answered, refused)).refusal == "gained"
        assert compare_pair(pair("b", refused, answered)).refusal == "lost"
        assert compare_pair(pair("c", refused, refused)).refusal is None

    def test_differences_are_shadow_minus_original(self) -> None:
        """Latency and token differences are the candidate's figure minus the original's."""
        original = Outcome(text="paris", latency_ms=100, tokens_in=20, tokens_out=5)
        shadow = Outcome(text="paris", latency_ms=350, tokens_in=18, tokens_out=9)
        compared = compare_pair(pair("a", original, shadow), 0.9)
        assert (compared.latency_delta_ms, compared.tokens_in_delta, compared.tokens_out_delta) == (250, -2, 4)
        assert compared.similarity == 0.9

    def test_errors_and_missing_answers_are_not_compared(self) -> None:
        """An error answer or a missing one gives no differences at all."""
        error = Outcome(error_code="model_not_allowed", category="model_not_allowed")
        for compared in (
            compare_pair(pair("a", Outcome(text="paris"), error)),
            compare_pair(pair("b", None, Outcome(text="paris"))),
            compare_pair(pair("c", Outcome(text="paris"), None)),
        ):
            assert (compared.similarity, compared.refusal, compared.latency_delta_ms) == (None, None, None)


class TestBuildComparison:
    def test_summary(self) -> None:
        """Similarity over compared pairs, refusals, errors, missing answers, latency and tokens are summed up."""
        pairs = [
            pair(
                "a",
                Outcome(text="paris", latency_ms=100, tokens_out=4),
                Outcome(text="the capital is paris", latency_ms=300, tokens_out=6),
            ),
            pair(
                "b",
                Outcome(text="paris", latency_ms=200, tokens_out=4),
                Outcome(text="no", refused=True, latency_ms=100),
            ),
            pair("c", Outcome(text="paris"), Outcome(error_code="deadline_exceeded")),
            pair("d", None, Outcome(text="paris")),
            pair("e", Outcome(text="paris"), None),
        ]
        report = build_comparison(pairs, embed=fake_embed, candidate="model=m", window=WINDOW, skipped={"shadow": 3})
        s = report.summary
        assert (s.replayed, s.compared, s.missing_original, s.missing_shadow) == (5, 2, 1, 1)
        assert (s.errors_original, s.errors_shadow) == (0, 1)
        assert s.similarity_mean == pytest.approx(0.4)
        assert s.similarity_min == pytest.approx(0.0)
        assert s.similarity_p50 == pytest.approx(0.4)
        assert (s.refusals_original, s.refusals_shadow, s.refusals_gained, s.refusals_lost) == (0, 1, 1, 0)
        assert (s.latency_p50_original_ms, s.latency_p50_shadow_ms) == (150, 200)
        assert s.latency_delta_p50_ms == pytest.approx(50)  # deltas +200 and -100
        assert (s.tokens_out_original, s.tokens_out_shadow, s.tokens_out_delta_mean) == (8, 6, -1)
        assert s.skipped == {"shadow": 3}
        assert [c.pair.request_id for c in report.pairs] == ["a", "b", "c", "d", "e"]

    def test_nothing_to_compare(self) -> None:
        """No pairs: zeros and dashes, no division by zero."""
        s = build_comparison([], embed=fake_embed, candidate="model=m", window=WINDOW).summary
        assert (s.replayed, s.similarity_mean, s.latency_delta_p50_ms, s.tokens_out_delta_mean) == (0, None, None, None)


class TestWriteComparison:
    def test_markdown_json_and_chart(self, tmp_path: Path) -> None:
        """replay.md, replay.json (the same figures) and replay.png are written and name each other."""
        pytest.importorskip("matplotlib")
        pairs = [
            pair("a", Outcome(text="paris", latency_ms=100), Outcome(text="the capital is paris", latency_ms=120)),
            pair("b", Outcome(text="paris"), Outcome(text="no", refused=True)),
        ]
        report = build_comparison(pairs, embed=fake_embed, candidate="model=m,policy=clinic", window=WINDOW)
        written = write_comparison(report, tmp_path)
        assert sorted(p.name for p in written) == ["replay.json", "replay.md", "replay.png"]
        markdown = (tmp_path / "replay.md").read_text()
        assert markdown.startswith("# Replay: model=m,policy=clinic")
        assert "![answer similarity, latency and tokens](replay.png)" in markdown
        assert "| refusals gained | 1 |" in markdown
        assert "| answer similarity, mean | 0.400 |" in markdown
        data = json.loads((tmp_path / "replay.json").read_text())
        assert data["summary"]["refusals_gained"] == 1
        assert [p["pair"]["request_id"] for p in data["pairs"]] == ["a", "b"]
        assert (tmp_path / "replay.png").read_bytes().startswith(b"\x89PNG")
