"""MiniLM as a TorchScript trace: the vectors sentence-transformers computes, with less Python per call.

For a short prompt most of ``SentenceTransformer.encode``'s time is Python: transformers' module
calls, hooks and output bookkeeping around a few dozen small matrix products (about 6 ms of
9 for a one-sentence prompt here). A frozen trace of the same ``BertModel`` runs those products
without the Python in between, then pools and normalises as the model's own ``Pooling``
(mean over real tokens) and ``Normalize`` modules do.

The trace is taken on a padded batch, so the attention-mask path is part of it: padded
batches and single texts, of any length up to the model's limit, give the eager model's
vectors (to about 1e-7 in float32). A model of another shape (other pooling, no
``BertModel``) is refused with ``UnsupportedModelError`` and the caller keeps
``encode``.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from typing import Any

import numpy as np
import numpy.typing as npt

__all__ = ["TracedEncoder", "UnsupportedModelError"]

_TRACE_TEXTS = ["a padded example for tracing", "short"]


class UnsupportedModelError(ValueError):
    """The sentence-transformers model is not a mean-pooled, normalised BERT this encoder reproduces."""


class TracedEncoder:
    """Embeds texts with a traced copy of a loaded ``SentenceTransformer``'s BERT (same dtype, same threads).

    Example:
        >>> encoder = TracedEncoder.from_sentence_transformer(model)
        >>> encoder.encode(["hello world"]).shape
        (1, 384)

    """

    def __init__(self, tokenizer: Any, module: Any, *, max_length: int) -> None:
        self.tokenizer = tokenizer
        self.module = module
        self.max_length = max_length

    @classmethod
    def from_sentence_transformer(cls, model: Any) -> TracedEncoder:
        """Trace ``model``'s transformer; raises ``UnsupportedModelError`` for a shape it would get wrong."""
        import torch  # noqa: PLC0415 - heavy, only where embeddings are used

        modules = list(model)
        names = [type(m).__name__ for m in modules]
        if names != ["Transformer", "Pooling", "Normalize"]:
            msg = f"expected Transformer, Pooling, Normalize; got {', '.join(names)}"
            raise UnsupportedModelError(msg)
        pooling = modules[1].get_config_dict()
        if pooling.get("pooling_mode") != "mean":
            msg = f"expected mean pooling, got {pooling.get('pooling_mode')!r}"
            raise UnsupportedModelError(msg)
        bert = modules[0].auto_model
        if type(bert).__name__ != "BertModel":
            msg = f"expected a BertModel, got {type(bert).__name__}"
            raise UnsupportedModelError(msg)
        tokenizer = model.tokenizer
        example = tokenizer(_TRACE_TEXTS, padding=True, return_tensors="pt")
        with warnings.catch_warnings(), torch.inference_mode():
            warnings.simplefilter("ignore")  # TracerWarnings about Python branches on shapes: checked in tests
            traced = torch.jit.trace(
                bert.eval(),
                (example["input_ids"], example["attention_mask"], example["token_type_ids"]),
                strict=False,
            )
            frozen = torch.jit.freeze(traced.eval())
        return cls(tokenizer, frozen, max_length=int(model.max_seq_length))

    def encode(self, texts: Sequence[str], *, batch_size: int = 64) -> npt.NDArray[np.float32]:
        """Normalised float32 embeddings, one row per text; batches of similar length pad least."""
        if not texts:
            return np.zeros((0, 0), dtype=np.float32)
        order = sorted(range(len(texts)), key=lambda i: -len(texts[i]))
        pooled = np.concatenate(
            [
                self._encode_batch([texts[i] for i in order[start : start + batch_size]])
                for start in range(0, len(order), batch_size)
            ]
        )
        result = np.empty_like(pooled)
        result[order] = pooled
        return result

    def _encode_batch(self, texts: list[str]) -> npt.NDArray[np.float32]:
        import torch  # noqa: PLC0415

        enc = self.tokenizer(texts, padding=True, truncation=True, max_length=self.max_length, return_tensors="pt")
        with torch.inference_mode():
            output = self.module(enc["input_ids"], enc["attention_mask"], enc["token_type_ids"])
            hidden = (output["last_hidden_state"] if isinstance(output, dict) else output[0]).float()
            mask = enc["attention_mask"].unsqueeze(-1).float()
            pooled = ((hidden * mask).sum(dim=1) / mask.sum(dim=1).clamp(min=1e-9)).numpy()
        norms = np.linalg.norm(pooled, axis=1, keepdims=True)
        return np.asarray(pooled / np.maximum(norms, 1e-12), dtype=np.float32)
