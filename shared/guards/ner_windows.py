"""What Presidio's NER reads of a request, and in what pieces (issue 23: its cost per request is bounded).

The NER costs about 0.1 ms of CPU a word on this machine, and Presidio removes duplicate results
pairwise (quadratic in them). So a text is analysed in windows of at most ``WINDOW`` characters, cut
at whitespace and overlapping by ``OVERLAP`` so that a name on a cut is whole in one of them; a
request's ``NerBudget`` says how many more words its windows may hold; and runs without spaces too
long to be a name or a place are blanked first (spaCy's tokenizer splits marks off a word one at a
time, quadratic in its length: 32,000 characters of ".!" took 3 s).

Example:
    >>> windows("word " * 2000)[:2]
    [(0, 3999), (3799, 7794)]
    >>> budget = NerBudget(5)
    >>> budget.take("Hi, Ann."), budget.take("Bob")
    (True, False)

"""

from __future__ import annotations

import re

__all__ = ["NER_MAX_WORDS", "OVERLAP", "WINDOW", "NerBudget", "blank_long_words", "windows"]

#: Words (and marks) of one request the NER reads by default (``PIICheck.ner_max_words``).
NER_MAX_WORDS = 8_000
#: Presidio analyses at most this many characters at a time; windows overlap by ``OVERLAP``.
WINDOW = 4000
OVERLAP = 200

_NER_WORD = re.compile(r"\w+|[^\w\s]")
#: A run without spaces this long is no name or place; the NER does not read it.
_LONG_WORD = re.compile(r"\S{64,}")


class NerBudget:
    """How many more words (and marks, as spaCy splits them) the NER may read for one request."""

    def __init__(self, words: int = NER_MAX_WORDS) -> None:
        self.words = words
        #: Characters the NER did not read for want of budget.
        self.skipped_chars = 0

    def take(self, text: str) -> bool:
        """Spend the words of ``text`` if they fit in what is left (True), else keep the rest (False)."""
        words = sum(1 for _ in _NER_WORD.finditer(text))
        if words > self.words:
            self.skipped_chars += len(text)
            return False
        self.words -= words
        return True


def blank_long_words(text: str) -> str:
    """``text`` with every run of 64 or more non-space characters turned into as many spaces (same offsets)."""
    return _LONG_WORD.sub(lambda m: " " * len(m.group()), text)


def windows(text: str) -> list[tuple[int, int]]:
    """``(start, end)`` windows of at most ``WINDOW`` characters covering ``text``, cut at whitespace when possible."""
    found: list[tuple[int, int]] = []
    start = 0
    while start < len(text):
        end = min(len(text), start + WINDOW)
        if end < len(text):
            cut = text.rfind(" ", start + WINDOW // 2, end)
            end = cut if cut > start else end
        found.append((start, end))
        if end >= len(text):
            break
        start = max(end - OVERLAP, start + 1)
    return found
