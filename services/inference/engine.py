"""A llama.cpp model behind a small typed interface: load once, generate one request at a time."""

from __future__ import annotations

import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import llama_cpp
from llama_cpp import Llama

from shared.components.chat_render import PLAIN_STOPS
from shared.components.registry import ModelEntry
from shared.components.tokenizer import ChatTokenizer
from shared.messaging.envelope import ChatMessage, SamplingParams

__all__ = ["Generation", "LlamaEngine", "resolve_gpu_layers"]


def resolve_gpu_layers(setting: int | Literal["auto"]) -> int:
    """``auto`` means every layer (-1) when llama.cpp was built with GPU support, else 0."""
    if setting == "auto":
        return -1 if llama_cpp.llama_supports_gpu_offload() else 0
    return setting


@dataclass(frozen=True)
class Generation:
    """What one generation produced."""

    text: str
    tokens_in: int
    tokens_out: int
    finish_reason: str | None
    time_to_first_token_ms: float | None
    generation_ms: float


class LlamaEngine:
    """One ``Llama`` model; ``generate`` is blocking and must not be called concurrently.

    Example:
        >>> engine = LlamaEngine(entry, path, n_gpu_layers=0)
        >>> engine.warm_up()
        >>> engine.generate([ChatMessage(role="user", content="Hi")], "User: Hi\\nAssistant:", SamplingParams()).text
        'Hello! How can I help you today?'

    """

    def __init__(
        self,
        entry: ModelEntry,
        path: Path,
        *,
        n_gpu_layers: int = 0,
        n_ctx: int | None = None,
        n_threads: int | None = None,
        n_batch: int = 512,
    ) -> None:
        self.entry = entry
        self.path = path
        self.n_gpu_layers = n_gpu_layers
        self.n_ctx = n_ctx or entry.n_ctx
        self.n_threads = n_threads
        self.n_batch = n_batch
        self._llama: Llama | None = None
        self._tokenizer: ChatTokenizer | None = None

    @property
    def offloaded_layers(self) -> int:
        """Layers actually on the GPU (0 on a CPU build)."""
        if not llama_cpp.llama_supports_gpu_offload() or self._llama is None:
            return 0
        n_layers = int(self._llama.metadata.get(f"{self._llama.metadata.get('general.architecture')}.block_count", 0))
        return n_layers if self.n_gpu_layers < 0 else min(self.n_gpu_layers, n_layers)

    def warm_up(self, tokens: int = 1) -> None:
        """Load the weights and run a tiny generation so the first request is not cold."""
        self._llama = Llama(
            str(self.path),
            n_ctx=self.n_ctx,
            n_gpu_layers=self.n_gpu_layers,
            n_threads=self.n_threads,
            n_batch=self.n_batch,
            verbose=False,
        )
        self._tokenizer = ChatTokenizer(self.entry, self.path, llama=self._llama)
        self._tokenizer.warm_up()
        if tokens:
            self.generate(
                [ChatMessage(role="user", content="Hi")], "User: Hi\nAssistant:", SamplingParams(max_tokens=tokens)
            )

    def _stream(self, messages: Sequence[ChatMessage], prompt: str, params: SamplingParams) -> Iterator[Any]:
        assert self._llama is not None  # noqa: S101 - warm_up ran
        common: dict[str, Any] = {
            "max_tokens": params.max_tokens,
            "temperature": params.temperature,
            "top_p": params.top_p,
            "seed": params.seed,
            "stream": True,
        }
        if self.entry.chat_format == "gguf":
            stops = params.stop or None
            return iter(
                self._llama.create_chat_completion(messages=[m.model_dump() for m in messages], stop=stops, **common)
            )
        return iter(self._llama.create_completion(prompt, stop=[*PLAIN_STOPS, *params.stop], **common))

    def generate(self, messages: Sequence[ChatMessage], prompt: str, params: SamplingParams) -> Generation:
        """Generate an answer: chat template for chat models, the plain prompt for base models."""
        if self._llama is None or self._tokenizer is None:
            self.warm_up(tokens=0)
        assert self._tokenizer is not None  # noqa: S101 - warm_up ran
        rendered = self._tokenizer.render(messages) if self.entry.chat_format == "gguf" else prompt
        tokens_in = self._tokenizer.count(rendered)
        t0 = time.perf_counter()
        ttft: float | None = None
        pieces: list[str] = []
        finish: str | None = None
        for chunk in self._stream(messages, prompt, params):
            choice = chunk["choices"][0]
            piece = choice.get("delta", {}).get("content") if "delta" in choice else choice.get("text")
            if piece:
                if ttft is None:
                    ttft = (time.perf_counter() - t0) * 1000
                pieces.append(piece)
            finish = choice.get("finish_reason") or finish
        text = "".join(pieces)
        # Counted on the final text: a streamed chunk is not always exactly one token.
        tokens_out = len(self._tokenizer.llama.tokenize(text.encode(), add_bos=False, special=False)) if text else 0
        return Generation(
            text=text,
            tokens_in=tokens_in,
            tokens_out=tokens_out,
            finish_reason=finish,
            time_to_first_token_ms=round(ttft, 2) if ttft is not None else None,
            generation_ms=round((time.perf_counter() - t0) * 1000, 2),
        )

    def close(self) -> None:
        """Free the model."""
        if self._llama is not None:
            self._llama.close()
            self._llama = None
