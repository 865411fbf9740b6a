"""Spans the answer's text rules must never touch: code, URLs, placeholders, citation marks.

``mask`` swaps each protected span for a two-character sentinel from Unicode's private use
area (neither a word character, whitespace nor punctuation to the rules' regexes), so the
rules can run over the whole text with plain regexes; ``unmask`` puts the spans back. A rule
may drop a sentinel (cutting a loop cuts what follows) but never splits one.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

__all__ = ["SENTINEL", "Masked", "mask"]

SENTINEL = "\ue000"
_FIRST_INDEX = 0xE100
_MAX_SPANS = 0xF8FF - _FIRST_INDEX

_PROTECTED = re.compile(
    r"```.*?(?:```|\Z)"  # fenced code (an unclosed fence runs to the end)
    r"|`[^`\n]+`"  # inline code
    r"|\b(?:https?|ftp)://[^\s<>\"'`]*[^\s<>\"'`.,;:!?)\]]"  # URLs, without a closing punctuation mark
    r"|\bwww\.[^\s<>\"'`]*[^\s<>\"'`.,;:!?)\]]"
    r"|<[A-Z][A-Z0-9_]*>"  # redaction placeholders: <EMAIL>, <EMAIL_1>
    r"|\[\d{1,3}(?:\s*,\s*\d{1,3})*\]",  # citation marks [1], [1, 2]
    re.DOTALL,
)
_SENTINEL_AT = re.compile(SENTINEL + r"([\ue100-\uf8ff])")


@dataclass(frozen=True)
class Masked:
    """Text with its protected spans replaced by sentinels."""

    text: str
    spans: tuple[str, ...]

    def unmask(self, text: str | None = None) -> str:
        """Put the protected spans back into ``text`` (this mask's text when absent)."""
        source = self.text if text is None else text
        if not self.spans:
            return source
        return _SENTINEL_AT.sub(lambda m: self.spans[ord(m.group(1)) - _FIRST_INDEX], source)


def mask(text: str) -> Masked:
    """Replace code, URLs, placeholders and citation marks with sentinels.

    Example:
        >>> m = mask("run `ls  -l` now")
        >>> m.unmask(m.text.replace("now", "now.")) == "run `ls  -l` now."
        True

    """
    spans: list[str] = []

    def swap(match: re.Match[str]) -> str:
        if len(spans) >= _MAX_SPANS:
            return match.group()
        spans.append(match.group())
        return SENTINEL + chr(_FIRST_INDEX + len(spans) - 1)

    masked = _PROTECTED.sub(swap, text)
    return Masked(masked, tuple(spans))
