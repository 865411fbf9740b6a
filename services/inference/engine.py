"""A llama.cpp model behind a small typed interface: load once, generate one request at a time."""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import llama_cpp
from llama_cpp import Llama

from services.inference.params import GenerationParams
from services.inference.prompt_cache import PromptCache, common_prefix
from services.inference.text_stream import StopScanner
from shared.contracts.envelope import ChatMessage
from shared.models.chat_render import PLAIN_STOPS
from shared.models.registry import ModelEntry
from shared.models.tokenizer import ChatTokenizer

__all__ = [
    "ContextOverflowError",
    "Generation",
    "LlamaEngine",
    "TextSink",
    "gpu_offload_supported",
    "resolve_gpu_layers",
]

#: Called from the generating thread with each new piece of text, in order.
TextSink = Callable[[str], None]
FinishReason = Literal["stop", "length", "timeout", "cancelled"]


def gpu_offload_supported() -> bool:
    """Whether this llama.cpp build can put layers on a GPU."""
    return bool(llama_cpp.llama_supports_gpu_offload())


def resolve_gpu_layers(setting: int | Literal["auto"]) -> int:
    """``auto`` means every layer (-1) when llama.cpp was built with GPU support, else 0."""
    if setting == "auto":
        return -1 if gpu_offload_supported() else 0
    return setting


def _discard(_piece: str) -> None:
    """A text sink for callers that do not stream."""


def _verdict(
    *, stopped: bool, left: int, deadline: float | None, cancel: threading.Event | None
) -> FinishReason | None:
    """Why generation ends after this token, or None to go on."""
    if stopped:
        return "stop"
    if left <= 0:
        return "length"
    if deadline is not None and time.time() >= deadline:
        return "timeout"
    if cancel is not None and cancel.is_set():
        return "cancelled"
    return None


class ContextOverflowError(ValueError):
    """The prompt does not fit the context window."""


@dataclass(frozen=True)
class Generation:
    """What one generation produced."""

    text: str
    tokens_in: int
    tokens_out: int
    finish_reason: FinishReason
    time_to_first_token_ms: float | None
    generation_ms: float
    cached_tokens: int = 0


class LlamaEngine:
    """One ``Llama`` model; ``generate`` is blocking and must not be called concurrently.

    The decode loop is our own, on top of ``Llama.generate`` (the same sampler chain
    ``create_completion`` builds), so that it can count tokens exactly, stream each piece,
    stop at a deadline, and reuse cached prompt prefixes across conversations.

    Example:
        >>> engine = LlamaEngine(entry, path, n_gpu_layers=0)
        >>> engine.warm_up()
        >>> engine.generate([ChatMessage(role="user", content="Hi")], "User: Hi\\nAssistant:", params).text
        'Hello! How can I help you today?'

    """

    def __init__(
        self,
        entry: ModelEntry,
        path: Path,
        *,
        n_gpu_layers: int = 0,
        main_gpu: int = 0,
        tensor_split: list[float] | None = None,
        flash_attn: bool = False,
        n_ctx: int | None = None,
        n_threads: int | None = None,
        n_batch: int = 512,
        n_ubatch: int = 512,
        prompt_cache: bool = True,
        prompt_cache_bytes: int = 256 << 20,
        lora_path: Path | None = None,
    ) -> None:
        self.entry = entry
        self.path = path
        self.n_gpu_layers = n_gpu_layers
        self.main_gpu = main_gpu
        self.tensor_split = tensor_split
        self.flash_attn = flash_attn
        self.n_ctx = n_ctx or entry.n_ctx
        self.n_threads = n_threads
        self.n_batch = n_batch
        self.n_ubatch = min(n_ubatch, n_batch)
        self.prompt_cache = prompt_cache
        self.lora_path = lora_path
        self.cache = PromptCache(prompt_cache_bytes) if prompt_cache and prompt_cache_bytes > 0 else None
        self._llama: Llama | None = None
        self._tokenizer: ChatTokenizer | None = None

    @property
    def llama(self) -> Llama:
        """The loaded model (loads it on first use)."""
        if self._llama is None:
            self.warm_up(tokens=0)
        assert self._llama is not None  # noqa: S101 - warm_up set it
        return self._llama

    @property
    def n_layers(self) -> int:
        """Transformer blocks in the model."""
        return int(llama_cpp.llama_model_n_layer(self.llama.model))

    @property
    def offloaded_layers(self) -> int:
        """Layers actually on the GPU (0 on a CPU build)."""
        if not gpu_offload_supported() or self._llama is None:
            return 0
        return self.n_layers if self.n_gpu_layers < 0 else min(self.n_gpu_layers, self.n_layers)

    #: Whether ``generate`` may be called from several threads at once (the batched engine).
    concurrent = False

    def _load_llama(self, n_ctx: int) -> Llama:
        return Llama(
            str(self.path),
            n_ctx=n_ctx,
            n_gpu_layers=self.n_gpu_layers,
            main_gpu=self.main_gpu,
            tensor_split=self.tensor_split,
            flash_attn=self.flash_attn,
            n_threads=self.n_threads,
            n_batch=self.n_batch,
            n_ubatch=self.n_ubatch,
            lora_path=str(self.lora_path) if self.lora_path else None,
            lora_scale=self.entry.lora.scale if self.entry.lora else 1.0,
            verbose=False,
        )

    def warm_up(self, tokens: int = 1) -> None:
        """Load the weights and run a tiny generation so the first request is not cold."""
        self._llama = self._load_llama(self.n_ctx)
        self._tokenizer = ChatTokenizer(self.entry, self.path, llama=self._llama)
        self._tokenizer.warm_up()
        if tokens:
            self._warm_generation(tokens)
            self._llama.reset()
            if self.cache is not None:
                self.cache = PromptCache(self.cache.capacity_bytes)

    def _warm_generation(self, tokens: int) -> Generation:
        warm = GenerationParams(max_tokens=tokens, temperature=0.0, top_p=1.0, top_k=1, min_p=0.0, repeat_penalty=1.0)
        return self.generate([ChatMessage(role="user", content="Hi")], "User: Hi\nAssistant:", warm)

    def render(self, messages: Sequence[ChatMessage], prompt: str) -> str:
        """The prompt text the model completes: the chat template for chat models, the plain prompt otherwise."""
        if self._tokenizer is None:
            self.warm_up(tokens=0)
        assert self._tokenizer is not None  # noqa: S101 - loaded with the model
        return self._tokenizer.render(messages) if self.entry.chat_format == "gguf" else prompt

    def tokenize(self, text: str) -> list[int]:
        """Prompt tokens: special tokens parsed, BOS added when the model wants one."""
        tokens: list[int] = self.llama.tokenize(text.encode(), add_bos=True, special=True)
        return tokens

    def _prepare(self, tokens: list[int]) -> int:
        """Position the context for ``tokens``; returns how many prompt tokens will not be recomputed."""
        llama = self.llama
        if not self.prompt_cache:
            llama.reset()
            return 0
        if self.cache is not None:
            return self.cache.prepare(llama, tokens)
        live = common_prefix(llama.input_ids[: llama.n_tokens].tolist(), tokens)
        return min(live, len(tokens) - 1)

    def plan(
        self, messages: Sequence[ChatMessage], prompt: str, params: GenerationParams
    ) -> tuple[list[int], int, tuple[str, ...]]:
        """The prompt's tokens, the tokens the answer may have, and the stop strings; refuses a prompt too long."""
        tokens = self.tokenize(self.render(messages, prompt))
        if len(tokens) >= self.n_ctx:
            msg = f"the prompt has {len(tokens)} tokens; the context holds {self.n_ctx}"
            raise ContextOverflowError(msg)
        max_tokens = min(params.max_tokens, self.n_ctx - len(tokens))
        stops = params.stop if self.entry.chat_format == "gguf" else (*params.stop, *PLAIN_STOPS)
        return tokens, max_tokens, stops

    def generate(
        self,
        messages: Sequence[ChatMessage],
        prompt: str,
        params: GenerationParams,
        *,
        on_text: TextSink | None = None,
        deadline: float | None = None,
        cancel: threading.Event | None = None,
    ) -> Generation:
        """Generate an answer; ``deadline`` is a ``time.time()`` after which generation stops (``timeout``)."""
        llama = self.llama
        tokens, max_tokens, stops = self.plan(messages, prompt, params)
        scanner = StopScanner(stops)
        cached = self._prepare(tokens)
        llama.set_seed(params.seed if params.seed is not None else random.getrandbits(32))
        vocab = llama._model.vocab  # noqa: SLF001 - the vocabulary handle llama.cpp's EOG check needs

        t0 = time.perf_counter()
        ttft: float | None = None
        produced = 0
        finish: FinishReason = "length"
        tokens_iter = llama.generate(
            tokens,
            top_k=params.top_k,
            top_p=params.top_p,
            min_p=params.min_p,
            temp=params.temperature,
            repeat_penalty=params.repeat_penalty,
            grammar=params.grammar,
        )
        emit = on_text or _discard
        try:
            for token in tokens_iter:
                if ttft is None:
                    ttft = (time.perf_counter() - t0) * 1000
                if llama_cpp.llama_vocab_is_eog(vocab, token):
                    finish = "stop"
                    break
                produced += 1
                piece, stopped = scanner.feed(llama.detokenize([token]))
                if piece:
                    emit(piece)
                verdict = _verdict(stopped=stopped, left=max_tokens - produced, deadline=deadline, cancel=cancel)
                if verdict is not None:
                    finish = verdict
                    break
        finally:
            tokens_iter.close()
        rest = scanner.finish()
        if rest:
            emit(rest)
        if self.cache is not None:
            self.cache.save(llama)
        return Generation(
            text=scanner.text,
            tokens_in=len(tokens),
            tokens_out=produced,
            finish_reason=finish,
            time_to_first_token_ms=round(ttft, 2) if ttft is not None else None,
            generation_ms=round((time.perf_counter() - t0) * 1000, 2),
            cached_tokens=cached,
        )

    def close(self) -> None:
        """Free the model."""
        if self._llama is not None:
            self._llama.close()
            self._llama = None
