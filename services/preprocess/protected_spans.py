"""Finding the parts of a prompt that must stay byte-exact: code, URLs, emails, numbers.

Text repair and typo correction work only on the prose between these spans.

Linear in the text (issue 23): every pattern is linear or bounded per start position (an email's
local part is at most 64 characters, RFC 5321), and each pattern's matches are merged with the
spans already taken in one pass over both sorted lists, never each against all.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import NamedTuple

__all__ = ["Segment", "protected_spans", "segments"]

# Order matters: earlier patterns win where matches overlap (a URL inside a code block is code).
_PATTERNS: tuple[tuple[str, re.Pattern[str]], ...] = (
    ("code_block", re.compile(r"```.*?(?:```|\Z)", re.DOTALL)),
    ("indented_code", re.compile(r"(?m)^(?: {4}|\t)\S.*(?:\n(?: {4}|\t).*)*")),
    ("inline_code", re.compile(r"`[^`\n]+`")),
    ("url", re.compile(r"\b(?:https?://|ftp://|www\.)[^\s<>\"'`]+", re.IGNORECASE)),
    # The local part is bounded and possessive: "a.a.a.a..." (a word boundary at every other
    # character) would otherwise rescan the rest of the run from each boundary, quadratic.
    ("email", re.compile(r"\b[\w.+-]{1,64}+@[\w-]+(?:\.[\w-]+)+\b")),
    ("number", re.compile(r"(?<![\w.])[-+]?[0-9][0-9A-Za-z.,:_/%-]*")),
)
# A sentence's closing punctuation is not part of the URL or number it follows.
_TRAILING_PUNCT = ".,;:!?)]}'\""


class Segment(NamedTuple):
    """A piece of text: prose (repairable) or a protected span (kept as it is).

    A tuple, not a dataclass: a hostile prompt of 200,000 characters can be 200,000 segments, and each is
    built three times per request (repair, language, typos).
    """

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
        found = ((m.start(), _trim(kind, m.start(), m.end(), text), kind) for m in pattern.finditer(text))
        taken = _merge(taken, found)
    return taken


def _merge(taken: list[tuple[int, int, str]], found: Iterable[tuple[int, int, str]]) -> list[tuple[int, int, str]]:
    """``taken`` plus each span of ``found`` that overlaps none of it, sorted; both inputs in order, O(n + m).

    ``taken`` is sorted and non-overlapping, so the only spans a new one can overlap are the last one
    starting before its end; ``found`` (one pattern's matches) is sorted and non-overlapping too.
    """
    out: list[tuple[int, int, str]] = []
    i = 0
    for span in found:
        start, end, _ = span
        while i < len(taken) and taken[i][1] <= start:  # entirely before the new span: keep it
            out.append(taken[i])
            i += 1
        if i < len(taken) and taken[i][0] < end:  # overlaps a span an earlier pattern took
            continue
        out.append(span)
    out.extend(taken[i:])
    return out


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
