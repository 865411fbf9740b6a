"""Numbered references in the answer ([1], [2, 3]) mapped to the grounding documents they cite.

Grounding numbers its documents [1]..[n] in the order of ``Grounding.documents``; a mark
that names a number outside that range was invented by the model and is removed (with the
space before it). Marks inside code, and Markdown links (``[1](url)``, ``[1]: url``), are
not citations and are left alone.

Small models often answer from the context without marking it. ``attribute_sources`` then
names the documents the answer's sentences are drawn from (most of a sentence's terms, and
its numbers, found in one document), as citations marked ``inferred``; the text is not changed.

A small model asked to cite sometimes answers with nothing but the marker (``[1]``, ``[T1]``,
``Source: [2]``): ``is_marker_only`` tells such a non-answer from an answer.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import PurePosixPath

from shared.contracts.envelope import Citation, Document

__all__ = ["CitationResult", "attribute_sources", "is_marker_only", "map_citations"]

_CODE = re.compile(r"```.*?(?:```|\Z)|`[^`\n]+`", re.DOTALL)
_MARK = re.compile(r"[ \t]?\[(\d{1,3}(?:\s*,\s*\d{1,3})*)\](?![(:])")
#: Any bracketed reference a model may write: [1], [2, 3], [T1], [doc 2], [1-3].
_ANY_MARK = re.compile(r"\[\s*[A-Za-z]{0,8}\s*\d{1,3}(?:\s*[,;\u2013-]\s*[A-Za-z]{0,8}\s*\d{1,3})*\s*\]")
#: Words that only introduce a reference ("Source: [1]", "See [2]") and answer nothing.
_REFERENCE_WORDS = re.compile(
    r"\b(?:sources?|references?|citations?|cited|cite|context|documents?|see|from)\b", re.IGNORECASE
)
_SENTENCE_END = re.compile(r"(?<=[.!?])\s+|\n+")
_TERM = re.compile(r"[a-z0-9]+(?:[._'][a-z0-9]+)*")
_MIN_TERM_CHARS = 3
#: Words too common to show where an answer came from.
_STOPWORD_TEXT = (
    "the and for are was were you your with that this from not but can has have had its into than then"
    " there their them they what when where which who whom why how all any each few more most other some"
    " such only own same also very will would should could may might must does did doing done been being"
    " about above after again against before below between both down during further here once out over"
    " under until off one our ours she her his him yes"
)
_STOPWORDS = frozenset(_STOPWORD_TEXT.split())


@dataclass
class CitationResult:
    """The answer with invented marks removed, and the citations in order of first use."""

    text: str
    citations: list[Citation] = field(default_factory=list)
    removed: list[int] = field(default_factory=list)


def _title(doc: Document) -> str | None:
    """A readable title from the source: the file name without its extension, or the last URL path part."""
    name = PurePosixPath(doc.source.split("?", 1)[0].rstrip("/")).stem
    return name.replace("_", " ").replace("-", " ").strip() or None


def map_citations(text: str, documents: Sequence[Document]) -> CitationResult:
    """Map the answer's [n] marks to ``documents`` (numbered from 1); drop numbers that were not given.

    Example:
        >>> docs = [Document(id="d1", source="docs/paris.md", score=0.9, text="Paris...")]
        >>> result = map_citations("Paris is the capital [1][4].", docs)
        >>> result.text, [c.document_id for c in result.citations], result.removed
        ('Paris is the capital [1].', ['d1'], [4])

    """
    result = CitationResult(text=text)
    code = [(m.start(), m.end()) for m in _CODE.finditer(text)]
    cited: dict[int, Citation] = {}

    def rewrite(m: re.Match[str]) -> str:
        if any(start <= m.start() < end for start, end in code):
            return m.group(0)
        numbers = [int(n) for n in re.findall(r"\d+", m.group(1))]
        kept = [n for n in numbers if 1 <= n <= len(documents)]
        result.removed += [n for n in numbers if n not in kept]
        for n in kept:
            if n not in cited:
                doc = documents[n - 1]
                cited[n] = Citation(number=n, document_id=doc.id, source=doc.source, title=_title(doc))
        if kept == numbers:
            return m.group(0)
        if not kept:
            return ""
        lead = " " if m.group(0).startswith((" ", "\t")) else ""
        return f"{lead}[{', '.join(str(n) for n in kept)}]"

    result.text = _MARK.sub(rewrite, text)
    result.citations = list(cited.values())
    return result


def is_marker_only(text: str) -> bool:
    """Whether the answer is reference marks and nothing else (``[1]``, ``[T1].``, ``Source: [2]``).

    An empty answer with no mark is not one (an empty completion is its own case); an answer
    with a word or a number outside the marks is an answer.

    Example:
        >>> is_marker_only("[1]"), is_marker_only("Sources: [1], [2]."), is_marker_only("412 metres [1].")
        (True, True, False)

    """
    if _ANY_MARK.search(text) is None:
        return False
    rest = _REFERENCE_WORDS.sub(" ", _ANY_MARK.sub(" ", text))
    return not any(c.isalnum() for c in rest)


def _terms(text: str) -> set[str]:
    """Content terms: words of three or more letters that are not stop words, and every number."""
    return {
        t
        for t in _TERM.findall(text.lower())
        if any(c.isdigit() for c in t) or (len(t) >= _MIN_TERM_CHARS and t not in _STOPWORDS)
    }


def attribute_sources(
    text: str, documents: Sequence[Document], *, min_support: float = 0.6, min_terms: int = 3
) -> list[Citation]:
    """The documents the answer's sentences come from, for an answer that marks none (``inferred`` citations).

    A sentence is drawn from a document when at least ``min_support`` of its content terms (at
    least ``min_terms`` of them) are in that document, and so is each of its numbers: a number
    is the fact most often wrong. Each sentence credits its best document; order of first use.

    Example:
        >>> docs = [Document(id="d1", source="limits.html", score=0.9, text="The default depth is 1000 levels.")]
        >>> [c.source for c in attribute_sources("The default depth is 1000.", docs)]
        ['limits.html']

    """
    doc_terms = [_terms(doc.text) for doc in documents]
    cited: dict[int, Citation] = {}
    for sentence in _SENTENCE_END.split(text):
        terms = _terms(sentence)
        if len(terms) < min_terms:
            continue
        numbers = {t for t in terms if any(c.isdigit() for c in t)}
        best, best_support = None, min_support
        for index, known in enumerate(doc_terms):
            support = len(terms & known) / len(terms)
            if support >= best_support and numbers <= known and (best is None or support > best_support):
                best, best_support = index, support
        if best is not None and best + 1 not in cited:
            doc = documents[best]
            cited[best + 1] = Citation(
                number=best + 1, document_id=doc.id, source=doc.source, title=_title(doc), inferred=True
            )
    return list(cited.values())
