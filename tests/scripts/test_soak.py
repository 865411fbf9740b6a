"""The soak's steady-state detection (the soak itself runs for 30 minutes: `make soak`, not in CI)."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

_PATH = Path(__file__).resolve().parents[2] / "scripts" / "soak.py"
_spec = importlib.util.spec_from_file_location("soak", _PATH)
assert _spec is not None
assert _spec.loader is not None
soak = importlib.util.module_from_spec(_spec)
sys.modules["soak"] = soak
_spec.loader.exec_module(soak)


class TestSettled:
    def test_growing_memory_is_not_settled(self) -> None:
        """A cache still filling (RSS rising 5 % a sample) keeps the warm-up going."""
        assert not soak.settled({"inference-0": [700, 735, 772, 810]}, window=4, tolerance=0.01)

    def test_flat_memory_everywhere_is_settled(self) -> None:
        """Within 1 % over the window for every service: measuring may start."""
        history = {"inference-0": [700, 940, 945, 948, 946], "safety-0": [728, 728, 729, 729, 729]}
        assert soak.settled(history, window=4, tolerance=0.01)

    def test_too_few_samples_or_one_service_still_growing(self) -> None:
        """Every service must have a full window, and each must be flat."""
        assert not soak.settled({"a": [1.0, 1.0]}, window=4, tolerance=0.01)
        assert not soak.settled({"a": [5, 5, 5, 5], "b": [5, 5, 5, 6]}, window=4, tolerance=0.01)
