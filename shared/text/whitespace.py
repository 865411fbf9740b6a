"""Whitespace tidying shared by the prompt (preprocess) and answer (postprocess) sides.

Fenced code blocks keep their inner whitespace byte for byte.
"""

from __future__ import annotations

import re

__all__ = ["tidy_whitespace"]

_FENCE = re.compile(r"(```.*?(?:```|$))", re.DOTALL)
_SPACES = re.compile(r"[ \t\u00a0]{2,}")
_TRAILING = re.compile(r"[ \t]+\n")
_BLANK_LINES = re.compile(r"\n{3,}")


def _tidy_prose(text: str) -> str:
    text = _SPACES.sub(" ", text)
    text = _TRAILING.sub("\n", text)
    return _BLANK_LINES.sub("\n\n", text)


def tidy_whitespace(text: str) -> str:
    """Collapse runs of spaces and blank lines outside code fences; strip the ends.

    Example:
        >>> tidy_whitespace("  a   b\\n\\n\\n\\nc  ")
        'a b\\n\\nc'

    """
    parts = _FENCE.split(text)
    # Odd indexes are the fenced code blocks captured by the split: left as they are.
    return "".join(part if i % 2 else _tidy_prose(part) for i, part in enumerate(parts)).strip()
