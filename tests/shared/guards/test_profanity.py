"""The direct evaluation of alt-profanity-check's model against the package's own ``predict_prob``."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import numpy as np
import pytest
from profanity_check import predict_prob, profanity_check

from shared.guards.profanity import ProfanityModel, profanity_model

DATA = Path(__file__).resolve().parents[2] / "data"


def sample_texts() -> list[str]:
    """Prompts of every kind the repository's test data has, plus offensive and empty ones."""
    texts = [
        "you are a fucking idiot",
        "what the hell is this shit",
        "you are a very kind person",
        "Explain how a rainbow forms in one paragraph.",
        "",
        "!!!",
        "Damn, that was a great game.",
    ]
    for name in ("safety/pii_eval.jsonl", "preprocess/golden.jsonl"):
        for line in (DATA / name).read_text(encoding="utf-8").splitlines():
            record = json.loads(line)
            texts.append(str(record.get("text") or record.get("input") or record.get("prompt") or ""))
    return texts


class TestProfanityModel:
    def test_same_probabilities_as_the_package(self) -> None:
        """Every text: the direct evaluation equals ``profanity_check.predict_prob`` to 1e-12."""
        texts = sample_texts()
        assert len(texts) > 100
        ours = profanity_model().predict_prob(texts)
        theirs = predict_prob(texts)
        assert ours.shape == theirs.shape
        np.testing.assert_allclose(ours, theirs, rtol=0, atol=1e-12)
        assert profanity_model().direct
        assert ours[0] > 0.9  # the offensive sentence
        assert ours[2] < 0.1  # the kind one

    def test_another_model_shape_falls_back_to_the_package(self) -> None:
        """A model that is not binary-sigmoid is evaluated by scikit-learn itself."""
        model = copy.copy(profanity_check.model)
        model.method = "isotonic"
        fallback = ProfanityModel(profanity_check.vectorizer, model)
        assert not fallback.direct
        texts = ["you are a fucking idiot", "hello there"]
        np.testing.assert_allclose(fallback.predict_prob(texts), predict_prob(texts), atol=1e-12)

    @pytest.mark.parametrize("text", ["", "a", "hello " * 2000])
    def test_edge_lengths(self, text: str) -> None:
        """Empty, one-letter and very long texts give a probability in [0, 1]."""
        [p] = profanity_model().predict_prob([text])
        assert 0.0 <= p <= 1.0
