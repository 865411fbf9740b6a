"""Numbered references in the answer ([1], [2, 3]) mapped to the grounding documents they cite.

Grounding numbers its documents [1]..[n] in the order of ``Grounding.documents``; a mark
that names a number outside that range was invented by the model and is removed (with the
space before it). Marks inside code, and Markdown links (``[1](url)``, ``[1]: url``), are
not citations and are left alone.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import PurePosixPath

from shared.messaging.envelope import Citation, Document

__all__ = ["CitationResult", "map_citations"]

_CODE = re.compile(r"```.*?(?:```|\Z)|`[^`\n]+`", re.DOTALL)
_MARK = re.compile(r"[ \t]?\[(\d{1,3}(?:\s*,\s*\d{1,3})*)\](?![(:])")


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
