"""Splitting a document into overlapping token-sized chunks that never straddle a heading."""

from __future__ import annotations

import hashlib
import uuid
from dataclasses import dataclass

from shared.knowledge.documents import LoadedDocument
from shared.knowledge.tokens import TokenCounter

__all__ = ["Chunker", "DocumentChunk", "point_id"]

#: Namespace of the deterministic point ids (uuid5 of tenant, source, file hash, position, text hash).
_POINT_NAMESPACE = uuid.UUID("6f1d4a52-7c1e-4f57-9a53-2b4c0f3e8d11")


def point_id(tenant: str, source: str, file_hash: str, position: int, text: str) -> str:
    """The same chunk of the same file version always gets the same id, so re-ingesting is idempotent."""
    digest = hashlib.sha256(text.encode()).hexdigest()
    return str(uuid.uuid5(_POINT_NAMESPACE, f"{tenant}\x00{source}\x00{file_hash}\x00{position}\x00{digest}"))


@dataclass(frozen=True)
class DocumentChunk:
    """One chunk: its text, the heading path it sits under and its position in the document."""

    text: str
    heading: str
    position: int
    tokens: int


class Chunker:
    """Packs whole paragraphs into chunks of at most ``max_tokens`` word pieces; a section starts a new chunk.

    Consecutive chunks of one section share ``overlap`` tokens, so a fact cut at a boundary is whole
    in one of them. A paragraph longer than a chunk is cut into token windows.

    Example:
        >>> chunks = Chunker(max_tokens=128, overlap=24).split(load_document(Path("guide.md")))
        >>> chunks[0].heading
        'Guide > Install'

    """

    def __init__(self, *, max_tokens: int = 128, overlap: int = 24, counter: TokenCounter | None = None) -> None:
        if not 0 <= overlap < max_tokens:
            msg = f"overlap ({overlap}) must be at least 0 and below max_tokens ({max_tokens})"
            raise ValueError(msg)
        self.max_tokens = max_tokens
        self.overlap = overlap
        self.counter = counter or TokenCounter()

    def split(self, document: LoadedDocument) -> list[DocumentChunk]:
        """The document's chunks, in reading order."""
        chunks: list[DocumentChunk] = []
        for section in document.sections:
            for text in self._split_section(section.paragraphs):
                chunks.append(DocumentChunk(text, section.heading, len(chunks), self.counter.count(text)))
        return chunks

    def _windows(self, text: str) -> list[str]:
        """Cut one long text into overlapping windows at word-piece boundaries."""
        offsets = self.counter.offsets(text)
        step = self.max_tokens - self.overlap
        windows = []
        for start in range(0, len(offsets), step):
            end = min(start + self.max_tokens, len(offsets))
            windows.append(text[offsets[start][0] : offsets[end - 1][1]])
            if end == len(offsets):
                break
        return windows

    def _tail(self, text: str) -> str:
        """The last ``overlap`` tokens of ``text``, started at a word boundary."""
        if not self.overlap:
            return ""
        offsets = self.counter.offsets(text)
        if len(offsets) <= self.overlap:
            return text
        tail = text[offsets[-self.overlap][0] :]
        space = tail.find(" ")
        return tail[space + 1 :] if 0 <= space < len(tail) - 1 else tail

    def _split_section(self, paragraphs: list[str]) -> list[str]:
        pieces: list[tuple[str, int]] = []
        for paragraph in paragraphs:
            tokens = self.counter.count(paragraph)
            if tokens > self.max_tokens:
                pieces.extend((w, self.counter.count(w)) for w in self._windows(paragraph))
            else:
                pieces.append((paragraph, tokens))
        chunks: list[str] = []
        current: list[str] = []
        size = 0
        fresh = False  # whether ``current`` holds more than the overlap carried from the last chunk
        for text, tokens in pieces:
            if current and size + tokens > self.max_tokens:
                if fresh:
                    chunks.append("\n\n".join(current))
                tail = self._tail(chunks[-1]) if chunks and fresh else ""
                tail_tokens = self.counter.count(tail)
                current, size = ([tail], tail_tokens) if tail and tail_tokens + tokens <= self.max_tokens else ([], 0)
                fresh = False
            current.append(text)
            size += tokens
            fresh = True
        if current and fresh:
            chunks.append("\n\n".join(current))
        return chunks
