"""KV-cache reuse across requests: a conversation's next turn does not recompute its history.

llama-cpp-python already reuses the longest common prefix with the tokens its context
holds (``Llama.generate``), which helps only when the previous request on this worker was
the same conversation. ``PromptCache`` keeps the KV state of recent sequences (only the
sequence's cells, via ``llama_state_seq_*``: far smaller than ``Llama.save_state``, which
also copies an n_batch x n_vocab logits array) so interleaved conversations hit too.
"""

from __future__ import annotations

import ctypes
from collections import OrderedDict
from collections.abc import Sequence

import llama_cpp
from llama_cpp import Llama

__all__ = ["PromptCache", "common_prefix"]


def common_prefix(a: Sequence[int], b: Sequence[int]) -> int:
    """Length of the common prefix of two token sequences."""
    n = 0
    for x, y in zip(a, b, strict=False):
        if x != y:
            break
        n += 1
    return n


class PromptCache:
    """LRU store of KV states keyed by the tokens they hold, bounded in bytes.

    Example:
        >>> cache = PromptCache(capacity_bytes=256 << 20)
        >>> reused = cache.prepare(llama, prompt_tokens)   # restores the best state, returns the reusable prefix
        >>> ...  # llama.generate(prompt_tokens) evaluates only the rest
        >>> cache.save(llama)

    """

    def __init__(self, capacity_bytes: int) -> None:
        self.capacity_bytes = capacity_bytes
        self._states: OrderedDict[tuple[int, ...], bytes] = OrderedDict()
        self.hits = 0
        self.misses = 0

    @property
    def size_bytes(self) -> int:
        """Bytes held."""
        return sum(len(v) for v in self._states.values())

    def __len__(self) -> int:
        return len(self._states)

    def prepare(self, llama: Llama, tokens: Sequence[int]) -> int:
        """Make ``llama`` hold the longest cached prefix of ``tokens``; returns the prompt tokens reused."""
        live = common_prefix(llama.input_ids[: llama.n_tokens].tolist(), tokens)
        best_key, best = None, live
        for key in self._states:
            n = common_prefix(key, tokens)
            if n > best:
                best_key, best = key, n
        if best_key is not None and self._restore(llama, best_key):
            self._states.move_to_end(best_key)
            live = best
        if live > 0:
            self.hits += 1
        else:
            self.misses += 1
        # A fully cached prompt still re-evaluates its last token, to get fresh logits.
        return min(live, len(tokens) - 1) if tokens else 0

    def _restore(self, llama: Llama, key: tuple[int, ...]) -> bool:
        data = self._states[key]
        memory = llama_cpp.llama_get_memory(llama.ctx)
        if memory is not None:
            llama_cpp.llama_memory_seq_rm(memory, -1, 0, -1)
        buf = (ctypes.c_uint8 * len(data)).from_buffer_copy(data)
        if llama_cpp.llama_state_seq_set_data(llama.ctx, buf, len(data), 0) != len(data):
            del self._states[key]
            llama.reset()
            return False
        llama.input_ids[: len(key)] = key
        llama.n_tokens = len(key)
        # Logits belong to the state that was replaced: generate() must decode at least one token.
        llama._requires_eval = True  # noqa: SLF001 - the flag generate() reads for exactly this case
        return True

    def save(self, llama: Llama) -> None:
        """Keep the sequence ``llama`` holds now; states it extends are dropped, then the oldest beyond capacity."""
        key = tuple(llama.input_ids[: llama.n_tokens].tolist())
        if not key or self.capacity_bytes <= 0:
            return
        size = llama_cpp.llama_state_seq_get_size(llama.ctx, 0)
        buf = (ctypes.c_uint8 * size)()
        written = llama_cpp.llama_state_seq_get_data(llama.ctx, buf, size, 0)
        if written <= 0 or written > self.capacity_bytes:
            return
        for old in [k for k in self._states if len(k) <= len(key) and key[: len(k)] == k]:
            del self._states[old]
        self._states[key] = ctypes.string_at(buf, written)
        while self.size_bytes > self.capacity_bytes and self._states:
            self._states.popitem(last=False)
