"""Grammar and readability rules that are safe to apply automatically, as plain regexes.

Each rule is a function from text to text, run over masked text (``protect.mask``), so code,
URLs, placeholders and citation marks are never touched. They fix only what is
unambiguous: where a rule could be wrong (an acronym after "a", "a" used as a letter, a
lower-case word that may be an identifier) it leaves the text alone. spaCy's small English
pipeline took ~250 ms for a 300-token answer (~140 ms with the parser off; NER and lemmatizer
off in both; measured on a loaded 2-core machine), far over the stage's 10 ms budget, so
none of these rules needs a parse.
"""

from __future__ import annotations

import re
from collections.abc import Callable

__all__ = [
    "GRAMMAR_RULES",
    "fix_article_agreement",
    "fix_doubled_words",
    "fix_final_punctuation",
    "fix_punctuation_spacing",
    "fix_sentence_capitals",
]

# ---- spacing around punctuation -------------------------------------------------------------
_SPACE_BEFORE_MARK = re.compile(r"(?<=\w)[ \t]+([,;:!?]|\.(?!\.))(?=\s|$)")
_SPACE_ON_WRONG_SIDE = re.compile(r"(?<=\w)[ \t]+([,.;:!?])(?=[A-Z][a-z])")  # "cities .They" (not " .NET")
_NO_SPACE_AFTER_COMMA = re.compile(r"(?<=[a-z])([,;])(?=[A-Za-z])")
_NO_SPACE_AFTER_STOP = re.compile(r"(?<=[a-z]{2})([.!?])(?=[A-Z][a-z])")
_DOUBLED_COMMA = re.compile(r",{2,}")
_DOUBLED_STOP = re.compile(r"(?<![.\w])\.\.(?![.\w])|(?<=\w)\.\.(?=\s|$)")


def fix_punctuation_spacing(text: str) -> str:
    """No space before , ; : ! ? and one after; doubled commas and stops become one.

    Example:
        >>> fix_punctuation_spacing("Paris , France.It is big..")
        'Paris, France. It is big.'

    """
    text = _SPACE_BEFORE_MARK.sub(r"\1", text)
    text = _SPACE_ON_WRONG_SIDE.sub(r"\1 ", text)
    text = _NO_SPACE_AFTER_COMMA.sub(r"\1 ", text)
    text = _NO_SPACE_AFTER_STOP.sub(r"\1 ", text)
    text = _DOUBLED_COMMA.sub(",", text)
    return _DOUBLED_STOP.sub(".", text)


# ---- doubled words --------------------------------------------------------------------------
_DOUBLED_WORD = re.compile(r"\b([A-Za-z]+)([ \t]+)\1\b", re.IGNORECASE)
# Doubles that are grammatical or idiomatic ("I had had enough", "that that", "bye bye").
_LEGIT_DOUBLES = frozenset({"that", "had", "bye", "so", "no", "ha", "knock", "very", "really", "is"})


def fix_doubled_words(text: str) -> str:
    """Doubled words lose one ("the the" becomes "the"), the case of the first kept.

    Example:
        >>> fix_doubled_words("It is the the capital.")
        'It is the capital.'

    """

    def keep_one(m: re.Match[str]) -> str:
        first, second = m.group(1), m.group(0)[len(m.group(1)) + len(m.group(2)) :]
        if first.lower() in _LEGIT_DOUBLES or first.lower() != second.lower():
            return m.group(0)
        return first

    return _DOUBLED_WORD.sub(keep_one, text)


# ---- a / an ----------------------------------------------------------------------------------
_ARTICLE = re.compile(r"\b(a|an|A|An)([ \t]+)([A-Za-z][A-Za-z'-]*)")
# Words after which "a" is a letter or a variable, not an article ("vitamin a is", "a or b").
_NOT_A_NOUN = frozenset(
    [
        "is",
        "are",
        "was",
        "were",
        "be",
        "am",
        "and",
        "or",
        "of",
        "in",
        "on",
        "at",
        "as",
        "if",
        "it",
        "its",
        "a",
        "an",
        "to",
        "up",
        "us",
        "into",
        "onto",
        "by",
        "for",
        "with",
        "nor",
        "but",
        "the",
    ]
)
_YOU_SOUND = (
    "unique", "unit", "union", "univers", "uniform", "unicorn", "unicode", "unix", "unison", "usual", "useful",
    "useless", "user", "use", "usage", "using", "utility", "utilit", "utensil", "uranium", "urine", "uterus",
    "ubiquit", "ukulele", "euro", "eu", "ewe",
)  # fmt: skip
_SILENT_H = ("hour", "honest", "honor", "honour", "heir")


def _wants_an(word: str) -> bool | None:
    """True for a vowel sound, False for a consonant sound, None when unsure (then nothing changes)."""
    lw = word.lower()
    if lw.startswith(_SILENT_H):
        return True
    if lw[0] == "h":
        return False if lw[1:2] not in ("", "-") else None
    if lw in {"one", "once"} or lw.startswith(("one-", "once-")):
        return False
    if lw.startswith(_YOU_SOUND):
        return False
    if lw.startswith("uni"):
        return None  # "a uniform" but "an uninstalled"
    return lw[0] in "aeiou"


def fix_article_agreement(text: str) -> str:
    """Articles agree with the sound after them: "a apple" → "an apple", "an car" → "a car"; acronyms are left.

    Example:
        >>> fix_article_agreement("It is a orange and an banana, a honest one, a unit.")
        'It is an orange and a banana, an honest one, a unit.'

    """

    def agree(m: re.Match[str]) -> str:
        article, space, word = m.groups()
        if len(word) < 2 or word.isupper() or word.lower() in _NOT_A_NOUN:  # noqa: PLR2004 - a one-letter word is a letter
            return m.group(0)
        wants_an = _wants_an(word)
        if wants_an is None or wants_an == (article.lower() == "an"):
            return m.group(0)
        fixed = "an" if wants_an else "a"
        if article[0].isupper():
            fixed = fixed.capitalize()
        return f"{fixed}{space}{word}"

    return _ARTICLE.sub(agree, text)


# ---- sentence-initial capitals ---------------------------------------------------------------
# A lower-case word at the start of the text, of a paragraph, or after a full stop; only a
# plain word (not an identifier such as "npm.install" or "x_1") followed by a space or a mark.
_SENTENCE_START = re.compile(r"(\A|\n\n|(?<=[.!?])[ \t]+|(?<=[.!?])\n)([a-z][a-z]*)(?=[ \t,;:!?]|'[a-z]|\Z)")
_ABBREVIATIONS = frozenset(
    [
        "e.g",
        "i.e",
        "etc",
        "vs",
        "approx",
        "cf",
        "dr",
        "mr",
        "mrs",
        "ms",
        "no",
        "fig",
        "eq",
        "al",
        "st",
        "sr",
        "jr",
        "inc",
        "ltd",
        "co",
        "ca",
        "resp",
        "incl",
    ]
)
_PREVIOUS_WORD = re.compile(r"([\w.]+)[.!?]$")
_CONTRACTED_I = re.compile(r"(?<![\w'])i(?='(?:m|ve|ll|d)\b)")


def fix_sentence_capitals(text: str) -> str:
    """Capitalize the first word of each sentence (not after abbreviations or an ellipsis); "i'm" → "I'm".

    Example:
        >>> fix_sentence_capitals("paris is big. it has e.g. museums. i'm sure")
        "Paris is big. It has e.g. museums. I'm sure"

    """

    def upper(m: re.Match[str]) -> str:
        lead, word = m.group(1), m.group(2)
        before = text[: m.start()]
        if before.endswith(".."):
            return m.group(0)
        prev = _PREVIOUS_WORD.search(before[-24:])
        if prev is not None and prev.group(1).lower().rstrip(".") in _ABBREVIATIONS:
            return m.group(0)
        return lead + word[0].upper() + word[1:]

    text = _SENTENCE_START.sub(upper, text)
    return _CONTRACTED_I.sub("I", text)


# ---- final punctuation ------------------------------------------------------------------------
_NOT_PROSE_LINE = re.compile(r"^\s*(?:[#|>]|[-*+]\s|\d+[.)]\s)")
_MIN_WORDS_FOR_STOP = 3


def fix_final_punctuation(text: str) -> str:
    """End a closing prose sentence of three words or more with a full stop.

    Lists, headings, tables, code and URLs at the end are left as they are, and so are
    short answers ("Paris", "42 km") that read as labels.

    Example:
        >>> fix_final_punctuation("The capital of France is Paris")
        'The capital of France is Paris.'

    """
    body = text.rstrip()
    if not body or not body[-1].isalnum():
        return text
    last_line = body.rsplit("\n", 1)[-1]
    if _NOT_PROSE_LINE.match(last_line) or len(last_line.split()) < _MIN_WORDS_FOR_STOP:
        return text
    return body + "." + text[len(body) :]


GRAMMAR_RULES: tuple[tuple[str, Callable[[str], str]], ...] = (
    ("punctuation_spacing", fix_punctuation_spacing),
    ("doubled_words", fix_doubled_words),
    ("article_agreement", fix_article_agreement),
    ("sentence_capitals", fix_sentence_capitals),
    ("final_punctuation", fix_final_punctuation),
)
