"""The LLM-judge experiment's scoring: the per-fold stack, the borderline band, the score cache."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from shared.guards.training import Dataset
from tests.infra.helpers import load_script

judge = load_script("loso_judge")


def _data(per_source: int = 30) -> tuple[Dataset, np.ndarray, np.ndarray]:
    """Three sources, half attacks; the shipped score is noise and the judge's score carries the label."""
    rng = np.random.default_rng(0)
    labels = np.tile([0, 1], 3 * per_source // 2)
    sources = [f"s{i // per_source}" for i in range(3 * per_source)]
    data = Dataset([f"line {i}" for i in range(len(labels))], labels, sources, ["x"] * len(labels))
    served = rng.uniform(0.01, 0.99, len(labels))
    judged = np.where(labels == 1, 2.0, -2.0) + rng.normal(0, 0.5, len(labels))
    return data, served, judged


class TestStacked:
    def test_a_judge_that_carries_the_label_separates_every_held_out_source(self) -> None:
        """Fitted on the other sources, the two weights put every held-out attack above every benign line."""
        data, served, judged = _data()
        scores, share = judge.stacked(data, served, judged, None)
        assert share == 1.0
        assert scores[data.labels == 1].min() > scores[data.labels == 0].max()

    def test_lines_outside_the_band_keep_the_shipped_score(self) -> None:
        """Only borderline lines reach the judge; the share reported is theirs."""
        data, served, judged = _data()
        band = (0.3, 0.7)
        scores, share = judge.stacked(data, served, judged, band)
        inside = (served > band[0]) & (served < band[1])
        assert share == inside.mean()
        np.testing.assert_array_equal(scores[~inside], served[~inside])
        assert not np.allclose(scores[inside], served[inside])


class TestCache:
    def test_lines_not_judged_yet_are_nan(self, tmp_path: Path) -> None:
        """The report reads only what the judging run wrote."""
        texts = ["judged", "not judged"]
        judge._path(tmp_path, "judged").write_text("1.5")
        scores = judge.cached_scores(texts, tmp_path)
        assert scores[0] == 1.5
        assert np.isnan(scores[1])
