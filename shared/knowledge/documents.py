"""Reading text, Markdown, HTML and PDF files into titled sections of paragraphs."""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from html.parser import HTMLParser
from pathlib import Path

__all__ = [
    "SUPPORTED_SUFFIXES",
    "LoadedDocument",
    "Section",
    "UnsupportedDocumentError",
    "find_documents",
    "load_document",
]

SUPPORTED_SUFFIXES = frozenset({".txt", ".text", ".md", ".markdown", ".html", ".htm", ".pdf"})
_BLANK_LINES = re.compile(r"\n\s*\n")
_SPACES = re.compile(r"\s+")
_MD_HEADING = re.compile(r"^(#{1,6})\s+(.+?)\s*#*\s*$")


class UnsupportedDocumentError(ValueError):
    """The file is not one of the supported kinds, or cannot be read."""


@dataclass
class Section:
    """Paragraphs under one heading (``heading`` is the path of headings, e.g. ``Intro > Scope``)."""

    heading: str
    paragraphs: list[str] = field(default_factory=list)


@dataclass
class LoadedDocument:
    """A file's text, split into sections; ``file_hash`` identifies this version of the file."""

    source: str
    title: str
    file_hash: str
    sections: list[Section]

    @property
    def text(self) -> str:
        """All paragraphs, separated by blank lines."""
        return "\n\n".join(p for s in self.sections for p in s.paragraphs)


def _clean(text: str) -> str:
    return _SPACES.sub(" ", text).strip()


def _paragraphs(text: str) -> list[str]:
    return [c for c in (_clean(p.replace("\n", " ")) for p in _BLANK_LINES.split(text)) if c]


class _Headings:
    """The current heading path while reading a document top to bottom."""

    def __init__(self) -> None:
        self.levels: list[tuple[int, str]] = []
        self.sections: list[Section] = [Section("")]

    def open(self, level: int, title: str) -> None:
        self.levels = [(lvl, t) for lvl, t in self.levels if lvl < level] + [(level, title)]
        self.sections.append(Section(" > ".join(t for _, t in self.levels)))

    def add(self, paragraph: str) -> None:
        if paragraph:
            self.sections[-1].paragraphs.append(paragraph)

    def result(self) -> list[Section]:
        return [s for s in self.sections if s.paragraphs]


def _load_text(text: str) -> tuple[str | None, list[Section]]:
    return None, [Section("", _paragraphs(text))]


def _load_markdown(text: str) -> tuple[str | None, list[Section]]:
    headings = _Headings()
    title: str | None = None
    block: list[str] = []
    in_code = False

    def flush() -> None:
        if block:
            headings.add(_clean(" ".join(block)) if not in_code else "\n".join(block).strip())
            block.clear()

    for line in text.splitlines():
        if line.strip().startswith("```"):
            flush()
            in_code = not in_code
            continue
        match = None if in_code else _MD_HEADING.match(line)
        if match:
            flush()
            level, name = len(match.group(1)), _clean(match.group(2))
            title = title or (name if level == 1 else None)
            headings.open(level, name)
        elif not line.strip() and not in_code:
            flush()
        else:
            block.append(line if in_code else line.strip())
    flush()
    return title, headings.result()


class _HtmlSections(HTMLParser):
    """Block-level text of an HTML page, grouped under its h1-h6 headings; scripts, styles, nav skipped."""

    _SKIP = frozenset({"script", "style", "nav", "noscript", "template", "head"})
    _BLOCKS = frozenset(
        {"p", "div", "li", "ul", "ol", "pre", "blockquote", "table", "tr", "td", "th", "dd", "dt", "br", "section"}
    )

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.headings = _Headings()
        self.title: str | None = None
        self._skip = 0
        self._in_title = False
        self._heading_level = 0
        self._buffer: list[str] = []

    def _flush(self) -> None:
        text = _clean(" ".join(self._buffer))
        self._buffer.clear()
        if not text:
            return
        if self._heading_level:
            self.headings.open(self._heading_level, text)
        else:
            self.headings.add(text)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:  # noqa: ARG002 - HTMLParser API
        if tag == "title":
            self._in_title = True
        elif tag in self._SKIP:
            self._skip += 1
        elif re.fullmatch(r"h[1-6]", tag):
            self._flush()
            self._heading_level = int(tag[1])
        elif tag in self._BLOCKS:
            self._flush()

    def handle_endtag(self, tag: str) -> None:
        if tag == "title":
            self._in_title = False
        elif tag in self._SKIP:
            self._skip = max(0, self._skip - 1)
        elif re.fullmatch(r"h[1-6]", tag):
            self._flush()
            self._heading_level = 0
        elif tag in self._BLOCKS:
            self._flush()

    def handle_data(self, data: str) -> None:
        if self._in_title:
            self.title = _clean((self.title or "") + " " + data) or None
        elif not self._skip:
            self._buffer.append(data)

    def close(self) -> None:
        super().close()
        self._flush()


def _load_html(text: str) -> tuple[str | None, list[Section]]:
    parser = _HtmlSections()
    parser.feed(text)
    parser.close()
    return parser.title, parser.headings.result()


def _load_pdf(path: Path) -> tuple[str | None, list[Section]]:
    from pypdf import PdfReader  # noqa: PLC0415 - only for PDF files
    from pypdf.errors import PdfReadError  # noqa: PLC0415

    try:
        reader = PdfReader(str(path))
        title = reader.metadata.title if reader.metadata else None
        sections = [
            Section(f"page {i}", _paragraphs(page.extract_text() or "")) for i, page in enumerate(reader.pages, 1)
        ]
    except (PdfReadError, OSError, ValueError) as exc:
        raise UnsupportedDocumentError(f"{path}: unreadable PDF ({exc})") from exc
    return (str(title) if title else None), [s for s in sections if s.paragraphs]


def load_document(path: Path, *, source: str | None = None) -> LoadedDocument:
    """Read one supported file; ``source`` (the resolved path by default) names it in the store."""
    suffix = path.suffix.lower()
    if suffix not in SUPPORTED_SUFFIXES:
        raise UnsupportedDocumentError(f"{path}: unsupported file type {suffix or '(none)'}")
    raw = path.read_bytes()
    if suffix == ".pdf":
        title, sections = _load_pdf(path)
    else:
        text = raw.decode("utf-8", errors="replace")
        loader = {".md": _load_markdown, ".markdown": _load_markdown, ".html": _load_html, ".htm": _load_html}
        title, sections = loader.get(suffix, _load_text)(text)
    return LoadedDocument(
        source=source or str(path.resolve()),
        title=title or path.stem,
        file_hash=hashlib.sha256(raw).hexdigest(),
        sections=sections,
    )


def find_documents(paths: Iterable[Path]) -> Iterator[Path]:
    """The supported files among ``paths``, folders searched recursively, in a stable order."""
    for path in paths:
        if path.is_dir():
            yield from (p for p in sorted(path.rglob("*")) if p.is_file() and p.suffix.lower() in SUPPORTED_SUFFIXES)
        elif path.is_file():
            yield path
        else:
            raise FileNotFoundError(f"no such file or folder: {path}")
