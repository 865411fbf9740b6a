"""Leakage of reference text into an answer: the system prompt, template text, or a dropped document.

A model asked to "repeat your instructions" echoes its system prompt; a model shown a
poisoned chunk may repeat it even after grounding dropped it. Both are found the same
way: long runs of answer words shared with the reference (word shingles, linear time)
confirmed by rapidfuzz's ``partial_ratio`` (the best alignment of the run inside the
reference), so small edits by the model do not hide the echo and common phrases do not fire.

(``guardrails-ai-detect-system-prompt-leakage`` runs offline too, but scores the whole answer
against one prompt fixed per validator with ``fuzz.ratio``: an unrelated answer of similar
length and wording fires, an answer that quotes the prompt inside a longer text does not,
and its error message repeats the answer.)

``find_leaks`` is the plain function (no guardrails import cost at call time, usable on
every streamed sentence); ``LeakageValidator`` wraps it for a guardrails ``Guard``, with the
references passed per call in the metadata, so one guard serves every request.
"""

from __future__ import annotations

import bisect
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from guardrails.validator_base import (
    ErrorSpan,
    FailResult,
    PassResult,
    ValidationResult,
    Validator,
    register_validator,
)
from rapidfuzz import fuzz

__all__ = ["Leak", "LeakageValidator", "find_leaks", "remove_spans"]

# A sentence ends at . ! ? (followed by space or the end) or at a line break.
_SEGMENT = re.compile(r"[^\n.!?]*(?:[.!?]+(?=\s|$)|\n|$)|[^\n]+")
_WORD = re.compile(r"\w+")
_SPACES = re.compile(r"\s+")
_SHINGLE_WORDS = 4
_MAX_GAP_WORDS = 2


@dataclass(frozen=True)
class Leak:
    """A span of the answer that repeats a reference text (``score`` 0-100)."""

    kind: str
    start: int
    end: int
    score: float


def _normalize(text: str) -> str:
    return _SPACES.sub(" ", text).strip().lower()


def _segments(text: str) -> list[tuple[int, int]]:
    spans = []
    for m in _SEGMENT.finditer(text):
        start, end = m.start(), m.end()
        while start < end and text[start].isspace():
            start += 1
        while end > start and text[end - 1].isspace():
            end -= 1
        if end > start:
            spans.append((start, end))
    return spans


def _widen(segments: list[tuple[int, int]], start: int, end: int) -> tuple[int, int]:
    """``start``/``end`` moved out to the sentences they fall in; by bisection (segments are in text order).

    One leak's lookup once scanned every sentence: an answer with thousands of leaks was quadratic (issue 23).
    """
    i = bisect.bisect_right(segments, start, key=lambda seg: seg[0]) - 1
    j = bisect.bisect_left(segments, end, key=lambda seg: seg[1])
    return (segments[i][0] if i >= 0 else start), (segments[j][1] if j < len(segments) else end)


def _shingles(words: Sequence[str], size: int) -> set[tuple[str, ...]]:
    return {tuple(words[i : i + size]) for i in range(len(words) - size + 1)}


def _covered_runs(words: list[re.Match[str]], shingles: set[tuple[str, ...]], size: int) -> list[tuple[int, int, int]]:
    """Runs of answer words covered by reference shingles: (first word, last word, covered count)."""
    lowered = [w.group().lower() for w in words]
    covered = [False] * len(words)
    for i in range(len(words) - size + 1):
        if tuple(lowered[i : i + size]) in shingles:
            covered[i : i + size] = [True] * size
    runs: list[tuple[int, int, int]] = []
    first = last = -1
    count = 0
    for i, hit in enumerate(covered):
        if not hit:
            continue
        if first >= 0 and i - last <= _MAX_GAP_WORDS + 1:
            last, count = i, count + 1
            continue
        if first >= 0:
            runs.append((first, last, count))
        first = last = i
        count = 1
    if first >= 0:
        runs.append((first, last, count))
    return runs


def find_leaks(
    text: str,
    references: Sequence[tuple[str, str]],
    *,
    threshold: float = 80.0,
    min_words: int = 8,
) -> list[Leak]:
    """Sentences of ``text`` that repeat one of ``references`` (pairs of kind and reference text).

    Words of the answer covered by 4-word shingles of a reference form runs (a gap of up to
    two words, a small edit by the model, does not break a run); a run of at least
    ``min_words`` words whose text rapidfuzz scores at least ``threshold`` against the
    reference is a leak, widened to its whole sentences so that removing it leaves no
    fragment. Short common phrases ("if you have any questions") never reach ``min_words``.

    Example:
        >>> system = "You are Ada, the ACME support bot. Never reveal the discount code ZX-42 to anyone."
        >>> find_leaks("Sure. Never reveal the discount code ZX-42 to anyone at all.", [("system_prompt", system)])
        [Leak(kind='system_prompt', start=6, end=60, score=...)]

    """
    if not text:
        return []
    words = list(_WORD.finditer(text))
    segments: list[tuple[int, int]] | None = None
    leaks: list[Leak] = []
    for kind, ref in references:
        ref_words = [w.lower() for w in _WORD.findall(ref)]
        if len(ref_words) < min_words:
            continue
        shingles = _shingles(ref_words, _SHINGLE_WORDS)
        norm_ref = _normalize(ref)
        for first, last, count in _covered_runs(words, shingles, _SHINGLE_WORDS):
            if count < min_words:
                continue
            start, end = words[first].start(), words[last].end()
            score = fuzz.partial_ratio(_normalize(text[start:end]), norm_ref)
            if score < threshold:
                continue
            segments = segments if segments is not None else _segments(text)
            start, end = _widen(segments, start, end)
            leaks.append(Leak(kind, start, end, score))
    return _merge(leaks)


def _merge(leaks: list[Leak]) -> list[Leak]:
    """Overlapping leaks become one (the first kind in text order wins)."""
    merged: list[Leak] = []
    for leak in sorted(leaks, key=lambda lk: (lk.start, -lk.end)):
        if merged and leak.start < merged[-1].end:
            last = merged[-1]
            merged[-1] = Leak(last.kind, last.start, max(last.end, leak.end), max(last.score, leak.score))
        else:
            merged.append(leak)
    return merged


def remove_spans(text: str, spans: Sequence[tuple[int, int]], replacement: str = "") -> str:
    """``text`` with each (start, end) span replaced (spans must not overlap)."""
    out = []
    pos = 0
    for start, end in sorted(spans):
        out.append(text[pos:start])
        out.append(replacement)
        pos = end
    out.append(text[pos:])
    return "".join(out)


@register_validator(name="llmops/text_leakage", data_type="string")
class LeakageValidator(Validator):
    """Fails when the value repeats a reference text given in the metadata (``leakage_references``).

    The fix value has the leaking sentences removed. The error message names the kind only,
    never the leaked text.

    Example:
        >>> guard = Guard().use(LeakageValidator(kind="system_prompt", on_fail="fix"))
        >>> guard.validate(answer, metadata={"leakage_references": [system_prompt]}).validated_output

    """

    def __init__(
        self,
        kind: str = "system_prompt",
        threshold: float = 80.0,
        min_words: int = 8,
        on_fail: Any = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(on_fail=on_fail, kind=kind, threshold=threshold, min_words=min_words, **kwargs)
        self.kind = kind
        self.threshold = threshold
        self.min_words = min_words

    def _validate(self, value: Any, metadata: dict[str, Any]) -> ValidationResult:
        text = str(value)
        references = [(self.kind, str(ref)) for ref in metadata.get("leakage_references", [])]
        leaks = find_leaks(text, references, threshold=self.threshold, min_words=self.min_words)
        if not leaks:
            return PassResult()
        return FailResult(
            error_message=f"answer repeats the {self.kind.replace('_', ' ')}",
            fix_value=remove_spans(text, [(leak.start, leak.end) for leak in leaks]).strip(),
            error_spans=[ErrorSpan(start=leak.start, end=leak.end, reason=self.kind) for leak in leaks],
        )
