"""Text repair for prompts: mojibake, Unicode forms, invisible characters, quotes, dashes, floods, whitespace.

Returns the new text and the names of the repairs made, so the envelope records what
was changed (nothing is silently altered). Code blocks, inline code, URLs, emails and
numbers are kept byte-exact (``services.preprocess.protected_spans``), with two exceptions made
for safety and consistency everywhere: invisible and bidi-control characters are
removed (they hide instructions, in code too: "Trojan Source") and line endings become
``\\n``.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable

import ftfy

from services.preprocess.protected_spans import Segment, segments

__all__ = ["FrequencyFn", "normalize_text"]

#: How common a word is (0 for unknown); lets flood collapsing pick "so" over "soo".
FrequencyFn = Callable[[str], int]

_KEEP_CONTROLS = {"\n", "\t"}
# Cc controls, Cf format characters (zero-width, bidi overrides, BOM), Cs lone surrogates, Co private use.
_INVISIBLE_CATEGORIES = {"Cc", "Cf", "Cs", "Co"}
_TERMINAL_ESCAPE = re.compile(r"\x1b\[[0-9;?]*[ -/]*[@-~]")
_FTFY = ftfy.TextFixerConfig(
    unescape_html=False,
    remove_terminal_escapes=False,
    fix_latin_ligatures=False,
    fix_character_width=False,
    uncurl_quotes=False,
    fix_line_breaks=False,
    remove_control_chars=False,
    normalization=None,
    explain=False,
)
_QUOTES = str.maketrans(
    {
        "\u201c": '"',
        "\u201d": '"',
        "\u201e": '"',
        "\u201f": '"',
        "\u2033": '"',
        "\u2018": "'",
        "\u2019": "'",
        "\u201a": "'",
        "\u201b": "'",
        "\u2032": "'",
        "\u00b4": "'",
    }
)
_DASHES = str.maketrans(dict.fromkeys("\u2010\u2011\u2012\u2013\u2014\u2015\u2212\ufe58\ufe63", "-"))
_LETTER_FLOOD = re.compile(r"([a-z])\1{3,}")
#: How far a flood's word is looked at on either side (longer runs of letters are no dictionary word).
_MAX_WORD = 40
_MARK_FLOOD = re.compile(r"([!?])\1+")
_DOT_FLOOD = re.compile(r"\.{4,}")
# Both from the start of a run of blanks only, without backtracking: from every blank of a long run (or giving
# back one blank at a time before a newline) they were quadratic: 200,000 blanks took 30-160 s (issue 23).
_SPACES = re.compile(r"(?<=\S)[ \t]{2,}+(?![ \t]*\n)")
_TRAILING = re.compile(r"(?<![ \t])[ \t]++\n")
_BLANK_LINES = re.compile(r"\n{3,}")
#: What the prose steps can change in ASCII text: floods, runs of spaces or tabs, spaces before a newline, blank lines.
_ASCII_REPAIRABLE = re.compile(r"([a-z])\1{3}|[!?]{2}|\.{4}|[ \t]{2}|[ \t]\n|\n{3}")


def _invisible(ch: str) -> bool:
    return ch not in _KEEP_CONTROLS and unicodedata.category(ch) in _INVISIBLE_CATEGORIES


def _strip_invisible(text: str) -> str:
    # C1 controls (U+0080-U+009F) are left for now: they are often part of mojibake that ftfy repairs.
    text = _TERMINAL_ESCAPE.sub("", text)
    return "".join(ch for ch in text if not _invisible(ch) or "\x80" <= ch <= "\x9f")


def _strip_c1(text: str) -> str:
    return "".join(ch for ch in text if not "\x80" <= ch <= "\x9f")


def _unify_line_endings(text: str) -> str:
    return text.replace("\r\n", "\n").replace("\r", "\n").replace("\u2028", "\n").replace("\u2029", "\n\n")


def _mojibake(text: str) -> str:
    return text if text.isascii() else ftfy.fix_text(text, _FTFY)


def _nfkc(text: str) -> str:
    return text if text.isascii() else unicodedata.normalize("NFKC", text)


def _quotes(text: str) -> str:
    return text if text.isascii() else text.translate(_QUOTES)


def _dashes(text: str) -> str:
    return text if text.isascii() else text.translate(_DASHES)


def _whitespace(text: str) -> str:
    return _BLANK_LINES.sub("\n\n", _TRAILING.sub("\n", _SPACES.sub(" ", text)))


def _collapse_floods(text: str, frequency: FrequencyFn | None) -> str:
    def letters(match: re.Match[str]) -> str:
        # Four or more of a lowercase letter is a flood ("soooo" was "so" or "soo": the dictionary decides).
        # Three are left alone: roman numerals ("iii"), "www", "zzz"; capitals too ("AAAA battery").
        start, end = match.span()
        # Bounded: a "word" of 200,000 letters with a flood every few letters would otherwise be
        # walked from each flood to its ends (quadratic); no dictionary word is longer than this.
        word_start = start
        while word_start > max(0, start - _MAX_WORD) and text[word_start - 1].isalpha():
            word_start -= 1
        word_end = end
        while word_end < min(len(text), end + _MAX_WORD) and text[word_end].isalpha():
            word_end += 1
        head, tail, char = text[word_start:start], text[end:word_end], match.group(1)
        if frequency is not None and not _LETTER_FLOOD.search(head + tail):
            one, two = head + char + tail, head + char * 2 + tail
            if frequency(one.lower()) > frequency(two.lower()):
                return char
        return char * 2

    text = _LETTER_FLOOD.sub(letters, text)
    text = _MARK_FLOOD.sub(r"\1", text)
    return _DOT_FLOOD.sub("...", text)


_WHOLE_STEPS: tuple[tuple[str, Callable[[str], str]], ...] = (
    ("line_endings", _unify_line_endings),
    ("invisible_chars", _strip_invisible),
)
_PROSE_STEPS: tuple[tuple[str, Callable[[str], str]], ...] = (
    ("mojibake", _mojibake),
    ("nfkc", _nfkc),
    ("quotes", _quotes),
    ("dashes", _dashes),
)


def _repair_prose(part: Segment, before: str, frequency: FrequencyFn | None, changes: list[str]) -> str:
    # ``before`` is the character ahead of the segment, so a run of spaces right after inline code is
    # seen as inside a line (collapsed) and one at the start of a line as indentation (kept).
    text = part.text
    if text.isascii() and before.isascii() and not _ASCII_REPAIRABLE.search(before + text):
        return text  # nothing any step changes (most of the many tiny segments of a hostile prompt)
    steps = (
        *_PROSE_STEPS,
        ("floods", lambda t: _collapse_floods(t, frequency)),
        ("whitespace", lambda t: _whitespace(before + t)[len(before) :]),
    )
    for name, step in steps:
        new = step(text)
        if new != text:
            if name not in changes:
                changes.append(name)
            text = new
    return text


def _before(text: str, start: int) -> str:
    return text[start - 1] if start else "\n"


def normalize_text(text: str, *, frequency: FrequencyFn | None = None) -> tuple[str, list[str]]:
    """Return the cleaned text and the repairs applied, in order.

    Example:
        >>> normalize_text("ｆｕｌｌ\\u200bwidth  text\\r\\n")
        ('fullwidth text', ['line_endings', 'invisible_chars', 'nfkc', 'whitespace'])

    """
    changes: list[str] = []
    for name, step in _WHOLE_STEPS:
        new = step(text)
        if new != text:
            changes.append(name)
            text = new
    parts = segments(text)
    pieces = [
        part.text
        if part.protected
        else _repair_prose(part, text[part.start - 1] if part.start else "\n", frequency, changes)
        for part in parts
    ]
    # Strip the ends only where they are prose: a code block at the end keeps its trailing whitespace.
    joined = "".join(pieces)
    if not joined.isascii():
        without_c1 = _strip_c1(joined)
        if without_c1 != joined:
            joined = without_c1
            if "invisible_chars" not in changes:
                changes.insert(changes.index("line_endings") + 1 if "line_endings" in changes else 0, "invisible_chars")
    new = joined
    if parts and not parts[0].protected:
        new = new.lstrip()
    if parts and not parts[-1].protected:
        new = new.rstrip()
    if new != joined and "whitespace" not in changes:
        changes.append("whitespace")
    return new, changes
