"""Tests for the shared MiniLM embedder."""

from __future__ import annotations

import numpy as np
import pytest

from shared.components.embedder import EMBEDDING_DIM, Embedder, decode_vector, encode_vector


@pytest.fixture(scope="module")
def embedder() -> Embedder:
    emb = Embedder()
    emb.warm_up()
    return emb


class TestEmbedder:
    def test_shape_and_norm(self, embedder: Embedder) -> None:
        """Vectors have 384 dims and unit length."""
        vectors = embedder.embed(["a cat sat on the mat", "quarterly revenue grew"])
        assert vectors.shape == (2, EMBEDDING_DIM)
        assert np.allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-4)

    def test_similar_texts_are_closer(self, embedder: Embedder) -> None:
        """Paraphrases score higher than unrelated text."""
        a, b, c = embedder.embed(["How do I reset my password?", "I forgot my password, how to reset it", "Paris"])
        assert float(a @ b) > float(a @ c) + 0.3

    def test_empty_batch(self, embedder: Embedder) -> None:
        """No texts give an empty matrix."""
        assert embedder.embed([]).shape == (0, EMBEDDING_DIM)


class TestWireForm:
    def test_round_trip(self) -> None:
        """A vector survives the base64 float32 form exactly."""
        vec = np.linspace(-1, 1, EMBEDDING_DIM, dtype=np.float32)
        assert np.array_equal(decode_vector(encode_vector(vec)), vec)
        assert len(encode_vector(vec)) < 2100
