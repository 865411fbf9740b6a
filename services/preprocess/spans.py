"""Finding the parts of a prompt that must stay byte-exact: code, URLs, emails, numbers.

Text repair and typo correction work only on the prose between these spans.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

__all__ = ["Segment", "protected_spans", "segments"]

# Order matters: earlier patterns win where matches overlap (a URL inside a code block is code).
_PATTERNS: tuple[tuple[str, re.Pattern[str]], ...] = (
    ("code_block", re.compile(r"```.*?(?:```|\Z)", re.DOTALL)),
    ("indented_code", re.compile(r"(?m)^(?: {4}|\t)\S.*(?:\n(?: {4}|\t).*)*")),
    ("inline_code", re.compile(r"`[^`\n]+`")),
    ("url", re.compile(r"\b(?:https?://|ftp://|www\.)[^\s<>\"'`]+", re.IGNORECASE)),
    ("email", re.compile(r"\b[\w.+-]+@[\w-]+(?:\.[\w-]+)+\b")),
    ("number", re.compile(r"(?<![\w.])[-+]?[0-9][0-9A-Za-z.,:_/%-]*")),
)
# A sentence's closing punctuation is not part of the URL or number it follows.
_TRAILING_PUNCT = ".,;:!?)]}'\""


@dataclass(frozen=True)
class Segment:
    """A piece of text: prose (repairable) or a protected span (kept as it is)."""

    text: str
    start: int
    protected: bool
    kind: str = "prose"


def _trim(kind: str, start: int, end: int, text: str) -> int:
    if kind in {"url", "number"}:
        while end > start + 1 and text[end - 1] in _TRAILING_PUNCT:
            end -= 1
    return end


def protected_spans(text: str) -> list[tuple[int, int, str]]:
    """Sorted, non-overlapping ``(start, end, kind)`` spans that must not be changed.

    Example:
        >>> protected_spans("see https://x.io/a, or `f(x)`")
        [(4, 18, 'url'), (23, 29, 'inline_code')]

    """
    taken: list[tuple[int, int, str]] = []
    for kind, pattern in _PATTERNS:
        for match in pattern.finditer(text):
            start, end = match.start(), _trim(kind, match.start(), match.end(), text)
            if not any(start < t_end and t_start < end for t_start, t_end, _ in taken):
                taken.append((start, end, kind))
    return sorted(taken)


def segments(text: str) -> list[Segment]:
    """The text cut into prose and protected segments, in order; joined they give ``text`` back.

    Example:
        >>> [s.protected for s in segments("run `ls` now")]
        [False, True, False]

    """
    out: list[Segment] = []
    pos = 0
    for start, end, kind in protected_spans(text):
        if start > pos:
            out.append(Segment(text[pos:start], pos, protected=False))
        out.append(Segment(text[start:end], start, protected=True, kind=kind))
        pos = end
    if pos < len(text):
        out.append(Segment(text[pos:], pos, protected=False))
    return out
