"""Ingestion: files → chunks (anywhere) → embeddings and writes (wherever the store is open).

``prepare`` runs in the ``llmops ingest`` process; ``IngestWriter.apply`` runs where the store is
open: in that same process, or in the grounding service when the embedded stack holds the local
folder (the prepared chunks then travel as ``IngestCommand`` messages on the ingest topic).
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from shared.knowledge.chunking import Chunker, point_id
from shared.knowledge.documents import load_document
from shared.knowledge.store import KnowledgeStore, StoredChunk
from shared.text.embedder import Embedder

__all__ = ["ChunkText", "IngestCommand", "IngestProgress", "IngestWriter", "prepare"]

#: Chunks per ingest message: about 1.5 KB each, well under the broker's message limit.
CHUNKS_PER_MESSAGE = 200
#: Chunks embedded (and written) at a time.
EMBED_BATCH = 16


class ChunkText(BaseModel):
    """One prepared chunk, not yet embedded."""

    model_config = ConfigDict(extra="forbid")

    text: str
    heading: str = ""
    position: int = Field(ge=0)


class IngestCommand(BaseModel):
    """Write (part of) one file version, or delete a source, for a tenant."""

    model_config = ConfigDict(extra="forbid")

    job_id: str = Field(default_factory=lambda: uuid.uuid4().hex, description="Groups one `llmops ingest` run.")
    tenant: str = Field(min_length=1, max_length=64)
    action: Literal["upsert", "delete"] = "upsert"
    source: str = Field(min_length=1, description="The resolved path the chunks came from.")
    title: str = ""
    file_hash: str = ""
    chunks: list[ChunkText] = Field(default_factory=list)
    part: int = Field(default=0, ge=0)
    parts: int = Field(default=1, ge=1, description="The last part also removes the file's older chunks.")


class IngestProgress(BaseModel):
    """What applying one ``IngestCommand`` did."""

    model_config = ConfigDict(extra="forbid")

    job_id: str
    source: str
    part: int = 0
    parts: int = 1
    chunks: int = Field(default=0, description="Chunks in the command.")
    embedded: int = Field(default=0, description="Chunks new to the store (the rest were there already).")
    removed: int = Field(default=0, description="Chunks of older versions (or of a deleted source) removed.")
    error: str | None = None


def prepare(path: Path, *, tenant: str, chunker: Chunker, job_id: str) -> Iterator[IngestCommand]:
    """Load and chunk one file; yields its commands (one per ``CHUNKS_PER_MESSAGE`` chunks)."""
    document = load_document(path)
    chunks = [ChunkText(text=c.text, heading=c.heading, position=c.position) for c in chunker.split(document)]
    batches = [chunks[i : i + CHUNKS_PER_MESSAGE] for i in range(0, len(chunks), CHUNKS_PER_MESSAGE)] or [[]]
    for part, batch in enumerate(batches):
        yield IngestCommand(
            job_id=job_id,
            tenant=tenant,
            source=document.source,
            title=document.title,
            file_hash=document.file_hash,
            chunks=batch,
            part=part,
            parts=len(batches),
        )


class IngestWriter:
    """Applies ingest commands to the store: embeds only the chunks not stored yet, then drops old versions.

    Example:
        >>> writer = IngestWriter(store, embedder)
        >>> for command in prepare(Path("faq.md"), tenant="acme", chunker=Chunker(), job_id="j1"):
        ...     writer.apply(command).embedded
        12

    """

    def __init__(self, store: KnowledgeStore, embedder: Embedder) -> None:
        self.store = store
        self.embedder = embedder

    def apply(self, command: IngestCommand) -> IngestProgress:
        """Write or delete; idempotent (the same command twice changes nothing the second time)."""
        progress = IngestProgress(
            job_id=command.job_id,
            source=command.source,
            part=command.part,
            parts=command.parts,
            chunks=len(command.chunks),
        )
        if command.action == "delete":
            progress.removed = self.store.delete_source(command.tenant, command.source)
            return progress
        stored = [
            StoredChunk(
                id=point_id(command.tenant, command.source, command.file_hash, c.position, c.text),
                text=c.text,
                source=command.source,
                title=command.title,
                heading=c.heading,
                position=c.position,
                file_hash=command.file_hash,
            )
            for c in command.chunks
        ]
        present = self.store.existing_ids(command.tenant, [c.id for c in stored])
        missing = [c for c in stored if c.id not in present]
        # Small batches: the embedder is shared with live requests, which then wait one batch at most.
        for start in range(0, len(missing), EMBED_BATCH):
            batch = missing[start : start + EMBED_BATCH]
            self.store.upsert(command.tenant, batch, self.embedder.embed([_embedding_text(c) for c in batch]))
        progress.embedded = len(missing)
        if command.part == command.parts - 1:
            progress.removed = self.store.delete_source(command.tenant, command.source, keep_hash=command.file_hash)
        return progress


def _embedding_text(chunk: StoredChunk) -> str:
    label = " > ".join(p for p in (chunk.title, chunk.heading) if p)
    return f"{label}\n{chunk.text}" if label else chunk.text
