"""Cheap, guarded typo correction: SymSpell with its bundled English frequency dictionary.

Only plain lowercase (or sentence-initial capitalised) words in prose are candidates.
Code, URLs, emails and numbers (``services.preprocess.protected_spans``), identifiers
(digits, underscores, dots, inner capitals), ALL CAPS words, capitalised words inside a
sentence (proper names) and words the serving model's vocabulary has as one whole-word
token are never touched. A correction is made only at edit distance 1 and when the best
suggestion is clearly more frequent than the next one.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from importlib.resources import files
from pathlib import Path
from typing import Any

from services.preprocess.protected_spans import segments
from shared.contracts.envelope import Correction

__all__ = ["KnowsWord", "ModelVocabulary", "TypoCorrector"]

#: Whether the serving model's vocabulary has ``word`` as one whole-word token.
KnowsWord = Callable[[str], bool]

_TOKEN = re.compile(r"\S+")
_CORE = re.compile(r"^[\"'(\[{<*_]*([A-Za-z]+)[\"')\]}>.,;:!?*_]*$")
_LOWER = re.compile(r"^[a-z]+$")
_CAPITALISED = re.compile(r"^[A-Z][a-z]+$")
_SENTENCE_END = ".!?:\n"
_OPENERS = "\"'([{<*_ \t"
_CACHE_LIMIT = 50_000


def _at_sentence_start(text: str, start: int) -> bool:
    i = start
    while i > 0 and text[i - 1] in _OPENERS:
        i -= 1
    return i == 0 or text[i - 1] in _SENTENCE_END


class ModelVocabulary:
    """Answers "does the model know this word whole?" from its tokenizer, with a cache.

    A word is known when ``" " + word`` is a single token: the form a word takes inside
    a sentence. (Without the space marker, short fragments such as "hte" would count.)

    Example:
        >>> vocab = ModelVocabulary(lambda b: llama.tokenize(b, add_bos=False, special=False))
        >>> vocab.knows("kafka")
        True

    """

    def __init__(self, tokenize: Callable[[bytes], list[int]]) -> None:
        self._tokenize = tokenize
        self._cache: dict[str, bool] = {}

    def knows(self, word: str) -> bool:
        """Whether the word is one token with its leading space."""
        known = self._cache.get(word)
        if known is None:
            known = len(self._tokenize(b" " + word.encode())) == 1
            if len(self._cache) >= _CACHE_LIMIT:
                self._cache.clear()
            self._cache[word] = known
        return known


class TypoCorrector:
    """Corrects likely typos in English prose and reports each change.

    Example:
        >>> corrector = TypoCorrector()
        >>> corrector.warm_up()
        >>> corrector.correct("I recieve mail")
        ('I receive mail', [Correction(original='recieve', corrected='receive', position=2, message_index=-1)])

    """

    def __init__(self, *, dictionary: Path | None = None, min_length: int = 4, min_ratio: float = 10.0) -> None:
        self.dictionary = dictionary
        self.min_length = min_length
        self.min_ratio = min_ratio
        self._words: dict[str, int] = {}
        self._symspell: Any = None
        self._suggestions: dict[str, str | None] = {}

    def warm_up(self) -> None:
        """Load the frequency dictionary (about 2 s, 180 MB with edit distance 1)."""
        if self._symspell is not None:
            return
        from symspellpy import SymSpell  # noqa: PLC0415 - heavy, loaded once

        path = self.dictionary or Path(str(files("symspellpy").joinpath("frequency_dictionary_en_82_765.txt")))
        symspell = SymSpell(max_dictionary_edit_distance=1, prefix_length=7)
        if not symspell.load_dictionary(str(path), term_index=0, count_index=1, encoding="utf-8"):
            msg = f"cannot read the spelling dictionary {path}"
            raise FileNotFoundError(msg)
        self._words = dict(symspell.words)
        self._symspell = symspell

    def frequency(self, word: str) -> int:
        """How often the (lowercase) word occurs in the dictionary's corpus; 0 when unknown."""
        if self._symspell is None:
            self.warm_up()
        return self._words.get(word, 0)

    def suggest(self, word: str) -> str | None:
        """The confident correction of a lowercase word that is not in the dictionary, or ``None``."""
        if word in self._suggestions:
            return self._suggestions[word]
        from symspellpy import Verbosity  # noqa: PLC0415 - already imported by warm_up

        if self._symspell is None:
            self.warm_up()
        found = self._symspell.lookup(word, Verbosity.CLOSEST, max_edit_distance=1)
        best: str | None = None
        if found and found[0].distance == 1:
            runner_up = found[1].count if len(found) > 1 else 0
            if found[0].count >= self.min_ratio * runner_up:
                best = str(found[0].term)
        if len(self._suggestions) >= _CACHE_LIMIT:
            self._suggestions.clear()
        self._suggestions[word] = best
        return best

    def _candidate(self, text: str, start: int, word: str, knows_word: KnowsWord | None) -> str | None:
        if len(word) < self.min_length:
            return None
        if _CAPITALISED.match(word):
            if not _at_sentence_start(text, start):
                return None  # a capitalised word inside a sentence is a name
        elif not _LOWER.match(word):
            return None  # ALL CAPS, inner capitals
        lower = word.lower()
        if self.frequency(lower):
            return None
        fixed = self.suggest(lower)
        if fixed is None or (knows_word is not None and (knows_word(word) or knows_word(lower))):
            return None
        return fixed.capitalize() if word[0].isupper() else fixed

    def correct(
        self, text: str, *, knows_word: KnowsWord | None = None, message_index: int = -1
    ) -> tuple[str, list[Correction]]:
        """The text with confident corrections applied, and the corrections (positions in ``text``)."""
        corrections: list[Correction] = []
        out: list[str] = []
        pos = 0
        for part in segments(text):
            if part.protected:
                continue
            for token in _TOKEN.finditer(part.text):
                core = _CORE.match(token.group())
                if core is None:
                    continue  # identifiers, paths, hyphenated or non-ASCII words
                start = part.start + token.start() + core.start(1)
                word = core.group(1)
                fixed = self._candidate(text, start, word, knows_word)
                if fixed is None:
                    continue
                out.append(text[pos:start])
                out.append(fixed)
                pos = start + len(word)
                corrections.append(
                    Correction(original=word, corrected=fixed, position=start, message_index=message_index)
                )
        if not corrections:
            return text, []
        out.append(text[pos:])
        return "".join(out), corrections
