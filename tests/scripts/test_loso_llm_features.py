"""The LLM-features experiment's scaling and cache paths."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from tests.infra.helpers import load_script

llm_features = load_script("loso_llm_features")


class TestStandardised:
    def test_every_dimension_is_centred_with_equal_spread_and_rows_about_unit_length(self) -> None:
        """A dimension with a large scale no longer dominates the linear model's penalty."""
        rng = np.random.default_rng(0)
        states = rng.normal(0, 1, (500, 64)).astype(np.float32) * np.geomspace(0.01, 100, 64).astype(np.float32)
        scaled = llm_features.standardised(states)
        np.testing.assert_allclose(scaled.mean(axis=0), 0, atol=1e-4)
        np.testing.assert_allclose(scaled.std(axis=0), 1 / 8, rtol=1e-3)
        assert abs(float(np.mean(np.linalg.norm(scaled, axis=1))) - 1) < 0.05


class TestCache:
    def test_one_file_per_text_named_by_its_hash(self, tmp_path: Path) -> None:
        """Runs over overlapping data reuse each other's states."""
        first = llm_features._path(tmp_path, "some text")
        assert first == llm_features._path(tmp_path, "some text")
        assert first != llm_features._path(tmp_path, "other text")
        assert first.suffix == ".npy"
