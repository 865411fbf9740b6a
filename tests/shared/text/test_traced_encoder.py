"""Tests for MiniLM as a TorchScript trace."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import numpy as np
import pytest

from shared.text.embedder import Embedder
from shared.text.traced_encoder import TracedEncoder, UnsupportedModelError

# Empty, one word, a long text the model truncates at 256 tokens, non-ASCII, and enough
# short texts of different lengths to pad and to need more than one batch of 64.
TEXTS = [
    "",
    "hi",
    "What is the capital of France?",
    "word " * 400,
    "Ünïcödé ☃ text with émojis 🎉",
    *[f"sentence number {i} " * (i % 7 + 1) for i in range(70)],
]


@pytest.fixture(scope="module")
def eager() -> Embedder:
    emb = Embedder(precision="fp32", traced=False)
    emb.warm_up()
    return emb


@pytest.fixture(scope="module")
def traced() -> Embedder:
    emb = Embedder(precision="fp32", traced=True)
    emb.warm_up()
    return emb


class TestTracedEncoder:
    def test_embedder_uses_the_trace(self, traced: Embedder, eager: Embedder) -> None:
        """With tracing on the embedder runs the trace; with it off, sentence-transformers' encode."""
        assert isinstance(traced._encoder, TracedEncoder)
        assert eager._encoder is None

    def test_same_vectors_as_sentence_transformers(self, traced: Embedder, eager: Embedder) -> None:
        """Padded batches, truncated and empty texts give the eager model's vectors."""
        assert np.abs(traced.embed(TEXTS) - eager.embed(TEXTS)).max() < 1e-5

    def test_single_text_equals_its_row_in_a_batch(self, traced: Embedder) -> None:
        """A text alone and the same text padded inside a batch embed alike (the mask is in the trace)."""
        batch = traced.embed(TEXTS)
        for i in (1, 2, 4, 40):
            assert np.abs(traced.embed_one(TEXTS[i]) - batch[i]).max() < 1e-5

    def test_order_is_kept(self, traced: Embedder) -> None:
        """Rows come back in the order of the texts, though batches are sorted by length."""
        forward = traced.embed(TEXTS[:10])
        backward = traced.embed(TEXTS[:10][::-1])
        assert np.abs(forward - backward[::-1]).max() < 1e-5

    def test_bfloat16_trace_is_close(self, eager: Embedder) -> None:
        """The bfloat16 trace stays within cosine 0.999 of float32 vectors."""
        bf16 = Embedder(precision="bf16", traced=True)
        bf16.warm_up()
        assert bf16._encoder is not None
        cosines = (bf16.embed(TEXTS) * eager.embed(TEXTS)).sum(axis=1)
        assert cosines.min() > 0.999


class _Named:
    def __init__(self, name: str, **attrs: Any) -> None:
        self.__class__ = type(name, (), {"get_config_dict": lambda _self: attrs.get("config", {})})
        for key, value in attrs.items():
            setattr(self, key, value)


class TestUnsupportedModels:
    def test_other_modules_are_refused(self) -> None:
        """A model that is not Transformer, Pooling, Normalize is refused."""
        with pytest.raises(UnsupportedModelError, match="expected Transformer"):
            TracedEncoder.from_sentence_transformer([_Named("Transformer"), _Named("Pooling")])

    def test_other_pooling_is_refused(self) -> None:
        """CLS pooling is refused: the trace only reproduces mean pooling."""
        model = [_Named("Transformer"), _Named("Pooling", config={"pooling_mode": "cls"}), _Named("Normalize")]
        with pytest.raises(UnsupportedModelError, match="mean pooling"):
            TracedEncoder.from_sentence_transformer(model)

    def test_other_architecture_is_refused(self) -> None:
        """A transformer other than BERT is refused."""
        transformer = _Named("Transformer", auto_model=SimpleNamespace())
        model = [transformer, _Named("Pooling", config={"pooling_mode": "mean"}), _Named("Normalize")]
        with pytest.raises(UnsupportedModelError, match="BertModel"):
            TracedEncoder.from_sentence_transformer(model)
