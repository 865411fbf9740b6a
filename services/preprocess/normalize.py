"""Text repair for prompts: Unicode NFKC, control and invisible characters, whitespace.

Returns the new text and the names of the repairs made, so the envelope records what
was changed (nothing is silently altered).
"""

from __future__ import annotations

import unicodedata
from collections.abc import Callable

from shared.components.text import tidy_whitespace

__all__ = ["normalize_text"]

_KEEP_CONTROLS = {"\n", "\t"}


def _strip_invisible(text: str) -> str:
    # Cc: control characters; Cf: zero-width and bidi controls, a known way to hide instructions.
    return "".join(ch for ch in text if ch in _KEEP_CONTROLS or unicodedata.category(ch) not in {"Cc", "Cf"})


def _unify_line_endings(text: str) -> str:
    return text.replace("\r\n", "\n").replace("\r", "\n")


def _nfkc(text: str) -> str:
    return unicodedata.normalize("NFKC", text)


_STEPS: tuple[tuple[str, Callable[[str], str]], ...] = (
    ("nfkc", _nfkc),
    ("line_endings", _unify_line_endings),
    ("invisible_chars", _strip_invisible),
    ("whitespace", tidy_whitespace),
)


def normalize_text(text: str) -> tuple[str, list[str]]:
    """Return the cleaned text and the repairs applied, in order.

    Example:
        >>> normalize_text("ｆｕｌｌ\\u200bwidth  text\\r\\n")
        ('fullwidth text', ['nfkc', 'line_endings', 'invisible_chars', 'whitespace'])

    """
    changes: list[str] = []
    for name, step in _STEPS:
        new = step(text)
        if new != text:
            changes.append(name)
            text = new
    return text, changes
