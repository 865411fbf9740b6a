"""The golden file: dirty prompts with the exact clean text, corrections and repairs expected."""

import json
from pathlib import Path
from typing import Any

import pytest

from services.preprocess.preprocessor import Preprocessor
from shared.contracts.envelope import ChatMessage, Envelope, Request
from shared.models.registry import ModelRegistry

GOLDEN = Path(__file__).resolve().parents[2] / "data" / "preprocess" / "golden.jsonl"
CASES: list[dict[str, Any]] = [json.loads(line) for line in GOLDEN.read_text(encoding="utf-8").splitlines() if line]


@pytest.fixture(scope="module")
def pre(registry: ModelRegistry, models_dir: Path) -> Preprocessor:
    p = Preprocessor(registry, models_dir)  # no embedder: the golden file is about text
    p.warm_up()
    return p


class TestGolden:
    def test_file_is_big_enough(self) -> None:
        """At least 60 cases, with unique ids."""
        assert len(CASES) >= 60
        assert len({c["id"] for c in CASES}) == len(CASES)

    @pytest.mark.parametrize("case", CASES, ids=[c["id"] for c in CASES])
    def test_case(self, pre: Preprocessor, case: dict[str, Any]) -> None:
        """The cleaned text, the corrections (word, replacement, position), the repairs and the language match."""
        env = Envelope(
            request=Request(messages=[ChatMessage(role="user", content=case["input"])], model=case.get("model"))
        )
        prepared = pre.prepare(env).prepared
        assert prepared is not None
        assert prepared.text == case["expected"]
        assert [[c.original, c.corrected, c.position] for c in prepared.corrections] == case["corrections"]
        assert prepared.changes == case["changes"]
        if "language" in case:
            assert prepared.language == case["language"]
