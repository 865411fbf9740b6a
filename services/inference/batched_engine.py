"""``LlamaEngine`` with several sequences in flight (``LLMOPS_INFERENCE_PARALLEL`` > 1): continuous batching.

The weights load once; the sequences share one context whose KV cache holds ``parallel`` times the
per-sequence context (the registry's ``n_ctx`` or ``LLMOPS_INFERENCE_N_CTX``). ``generate`` is the
single-sequence engine's call, safe from several threads at once: each call queues its sequence
with the ``SequenceBatcher`` and waits for it.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import llama_cpp
from llama_cpp import Llama

from services.inference.batching import SequenceBatcher, SequenceRequest
from services.inference.engine import Generation, LlamaEngine, TextSink, _discard
from services.inference.params import GenerationParams
from shared.contracts.envelope import ChatMessage
from shared.models.registry import ModelEntry
from shared.models.tokenizer import ChatTokenizer

__all__ = ["BatchedLlamaEngine", "KvCacheTooLargeError", "available_memory_bytes", "kv_bytes_per_token"]

#: The context of the ``Llama`` object itself, used for tokenizing only (sequences get the batcher's).
_TOKENIZER_CTX = 256


class KvCacheTooLargeError(ValueError):
    """The KV cache for ``parallel`` sequences of ``n_ctx`` tokens does not fit the memory allowed."""


def kv_bytes_per_token(llama: Llama) -> int:
    """Bytes one token's keys and values take in an f16 KV cache, from the GGUF's metadata."""
    meta = llama.metadata
    arch = meta.get("general.architecture", "llama")
    layers = int(llama_cpp.llama_model_n_layer(llama.model))
    n_embd = int(llama_cpp.llama_model_n_embd(llama.model))
    heads = int(meta.get(f"{arch}.attention.head_count", llama_cpp.llama_model_n_head(llama.model)))
    heads_kv = int(meta.get(f"{arch}.attention.head_count_kv", heads))
    key_len = int(meta.get(f"{arch}.attention.key_length", n_embd // max(1, heads)))
    value_len = int(meta.get(f"{arch}.attention.value_length", key_len))
    return layers * heads_kv * (key_len + value_len) * 2


def available_memory_bytes(meminfo: Path = Path("/proc/meminfo")) -> int | None:
    """``MemAvailable`` of this host (Linux), or None where it cannot be read."""
    try:
        for line in meminfo.read_text().splitlines():
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        return None
    return None


class BatchedLlamaEngine(LlamaEngine):
    """Up to ``parallel`` generations at once in one model, decoded together.

    Example:
        >>> engine = BatchedLlamaEngine(entry, path, parallel=4)
        >>> engine.warm_up()
        >>> with ThreadPoolExecutor(4) as pool:
        ...     answers = list(pool.map(lambda q: engine.generate([q], q.content, params).text, questions))

    """

    concurrent = True

    def __init__(
        self,
        entry: ModelEntry,
        path: Path,
        *,
        parallel: int = 4,
        prefill_chunk: int = 256,
        kv_cache_limit_bytes: int | None = None,
        memory_probe: Callable[[], int | None] = available_memory_bytes,
        **options: Any,
    ) -> None:
        options.pop("prompt_cache", None)  # slots keep their prefixes instead (see ``SequenceBatcher``)
        options.pop("prompt_cache_bytes", None)
        super().__init__(entry, path, prompt_cache=False, **options)
        self.parallel = parallel
        self.prefill_chunk = prefill_chunk
        self.kv_cache_limit_bytes = kv_cache_limit_bytes
        self.memory_probe = memory_probe
        self.batcher: SequenceBatcher | None = None
        self.kv_cache_bytes = 0

    def check_memory(self, llama: Llama) -> int:
        """The KV cache's size in bytes; ``KvCacheTooLargeError`` when it exceeds the limit or the free memory."""
        need = kv_bytes_per_token(llama) * self.n_ctx * self.parallel
        limit = self.kv_cache_limit_bytes
        source = "LLMOPS_INFERENCE_KV_CACHE_MB"
        if limit is None:
            limit = self.memory_probe()
            source = "the host's available memory (MemAvailable)"
        if limit is not None and need > limit:
            msg = (
                f"the KV cache for {self.parallel} parallel sequences of {self.n_ctx} tokens needs "
                f"{need / 2**20:.0f} MiB; {source} allows {limit / 2**20:.0f} MiB: lower "
                "LLMOPS_INFERENCE_PARALLEL or LLMOPS_INFERENCE_N_CTX"
            )
            raise KvCacheTooLargeError(msg)
        return need

    def warm_up(self, tokens: int = 1) -> None:
        """Load the weights, check the KV cache fits, start the decode thread, and generate ``tokens``."""
        llama = self._load_llama(_TOKENIZER_CTX)
        try:
            self.kv_cache_bytes = self.check_memory(llama)
        except KvCacheTooLargeError:
            llama.close()
            raise
        self._llama = llama
        self._tokenizer = ChatTokenizer(self.entry, self.path, llama=llama)
        self._tokenizer.warm_up()
        self.batcher = SequenceBatcher(
            llama,
            parallel=self.parallel,
            n_ctx_per_seq=self.n_ctx,
            n_batch=self.n_batch,
            n_ubatch=self.n_ubatch,
            prefill_chunk=self.prefill_chunk,
            n_threads=self.n_threads,
            flash_attn=self.flash_attn,
        )
        self.batcher.start()
        if tokens:
            self._warm_generation(tokens)

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
        """Generate an answer alongside the other sequences in flight (blocking; any thread)."""
        if self.batcher is None:
            self.warm_up(tokens=0)
        assert self.batcher is not None  # noqa: S101 - started by warm_up
        tokens, max_tokens, stops = self.plan(messages, prompt, params)
        request = SequenceRequest(
            tokens=tokens,
            params=params,
            max_tokens=max_tokens,
            stops=stops,
            on_text=on_text or _discard,
            deadline=deadline,
            cancel=cancel,
        )
        return self.batcher.submit(request).result()

    def close(self) -> None:
        """Stop the decode thread, then free the context and the model."""
        if self.batcher is not None:
            self.batcher.close()
            self.batcher = None
        super().close()
