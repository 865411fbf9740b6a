"""Tests for the shared MiniLM embedder."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from shared.text.embedder import (
    EMBEDDING_DIM,
    Embedder,
    decode_vector,
    encode_vector,
    native_bf16,
    resolve_precision,
)


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


class TestPrecision:
    def test_auto_follows_the_cpu_flags(self, tmp_path: Path) -> None:
        """bf16 only where the CPU has native bfloat16 (AMX or AVX512-BF16)."""
        with_amx = tmp_path / "amx"
        with_amx.write_text("flags\t\t: fpu sse avx512f amx_bf16 amx_tile\n")
        without = tmp_path / "plain"
        without.write_text("flags\t\t: fpu sse avx2\n")
        assert native_bf16(with_amx)
        assert not native_bf16(without)
        assert not native_bf16(tmp_path / "missing")

    def test_explicit_and_env_choice(self, monkeypatch: pytest.MonkeyPatch) -> None:
        """An explicit precision wins over the environment; unknown names are refused."""
        monkeypatch.setenv("LLMOPS_EMBED_PRECISION", "fp32")
        assert resolve_precision() == "fp32"
        assert resolve_precision("bf16") == "bf16"
        monkeypatch.setenv("LLMOPS_EMBED_PRECISION", "fp8")
        with pytest.raises(ValueError, match="fp8"):
            resolve_precision()

    def test_bf16_vectors_match_fp32(self, embedder: Embedder) -> None:
        """Both precisions give unit vectors pointing the same way (cosine above 0.99)."""
        texts = ["How do I enable WAL mode?", "The quick brown fox jumps over the lazy dog. " * 8]
        other = Embedder(precision="fp32" if embedder.precision == "bf16" else "bf16")
        a, b = embedder.embed(texts), other.embed(texts)
        assert np.allclose(np.linalg.norm(b, axis=1), 1.0, atol=1e-4)
        assert float(np.min(np.sum(a * b, axis=1))) > 0.99
