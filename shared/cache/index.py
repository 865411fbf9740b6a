"""The in-memory semantic cache each safety replica holds, fed from the ``llmops.cache`` topic.

Why not Qdrant: in local mode one process may open the folder, and grounding owns it; the
cache must answer in a few milliseconds in whichever stage looks it up, on every replica.
Entries are few per exact key, so a dot product over that key's vectors is the whole search,
and Kafka (replayed from the beginning at start) is what makes the cache survive a restart.
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Literal

import numpy as np
import numpy.typing as npt
from pydantic import BaseModel, ConfigDict, Field

from shared.contracts.envelope import Citation, Envelope
from shared.text.embedder import EMBEDDING_DIM, decode_vector

__all__ = ["CacheEntry", "CacheMatch", "SemanticCache"]

Vector = npt.NDArray[np.float32]


def _now() -> datetime:
    return datetime.now(UTC)


class CacheEntry(BaseModel):
    """One answer offered to the cache (the value on ``llmops.cache``)."""

    model_config = ConfigDict(extra="forbid")

    schema_version: Literal[1] = 1
    key: str = Field(description="The exact part of the key (``cache_key``).")
    tenant: str
    request_id: str = Field(description="The request that was answered; cache hits name it.")
    embedding: str = Field(description="The prompt's embedding, base64 float32 as in ``prepared.embedding``.")
    text: str = Field(description="The checked answer.")
    citations: list[Citation] = Field(default_factory=list)
    model: str
    tokens_in: int = Field(ge=0)
    tokens_out: int = Field(ge=0)
    at: datetime = Field(default_factory=_now)

    @classmethod
    def from_answer(cls, env: Envelope) -> CacheEntry:
        """The entry for a final answer ``cacheable_answer`` accepted."""
        if env.cache is None or env.prepared is None or env.prepared.embedding is None:
            msg = f"request {env.request_id} has no cache key or embedding"
            raise ValueError(msg)
        if env.response is None or env.completion is None:
            msg = f"request {env.request_id} has no generated answer"
            raise ValueError(msg)
        return cls(
            key=env.cache.key,
            tenant=env.tenant,
            request_id=env.request_id,
            embedding=env.prepared.embedding,
            text=env.response.text,
            citations=env.response.citations,
            model=env.completion.model,
            tokens_in=env.completion.tokens_in,
            tokens_out=env.completion.tokens_out,
        )


@dataclass(frozen=True)
class CacheMatch:
    """The entry found and how similar its prompt is."""

    entry: CacheEntry
    similarity: float


@dataclass
class _Bucket:
    """The entries of one (tenant, key), with their vectors stacked for one matrix product."""

    entries: list[CacheEntry] = field(default_factory=list)
    vectors: list[Vector] = field(default_factory=list)
    _matrix: Vector | None = None

    def matrix(self) -> Vector:
        if self._matrix is None:
            self._matrix = np.stack(self.vectors) if self.vectors else np.zeros((0, EMBEDDING_DIM), np.float32)
        return self._matrix

    def add(self, entry: CacheEntry, vector: Vector) -> None:
        self.entries.append(entry)
        self.vectors.append(vector)
        self._matrix = None

    def remove(self, request_id: str) -> None:
        keep = [i for i, e in enumerate(self.entries) if e.request_id != request_id]
        self.entries = [self.entries[i] for i in keep]
        self.vectors = [self.vectors[i] for i in keep]
        self._matrix = None


class SemanticCache:
    """Entries grouped by tenant and exact key; a lookup compares embeddings within one group.

    Example:
        >>> cache = SemanticCache()
        >>> cache.add(entry)
        True
        >>> cache.lookup("acme", entry.key, vector, threshold=0.95, ttl_s=3600).entry.request_id
        'r1'

    """

    def __init__(self, *, max_entries: int = 100_000) -> None:
        self.max_entries = max_entries
        self._buckets: dict[tuple[str, str], _Bucket] = {}
        #: Every held entry by (tenant, request id), oldest first: ids are the clients', so per tenant (issue 23).
        self._order: OrderedDict[tuple[str, str], tuple[str, str]] = OrderedDict()

    def __len__(self) -> int:
        return len(self._order)

    def add(self, entry: CacheEntry) -> bool:
        """Hold ``entry``; False when its request is held already (a redelivered offer) or it is malformed."""
        if (entry.tenant, entry.request_id) in self._order:
            return False
        vector = decode_vector(entry.embedding)
        if vector.shape != (EMBEDDING_DIM,):
            return False
        where = (entry.tenant, entry.key)
        self._buckets.setdefault(where, _Bucket()).add(entry, vector)
        self._order[entry.tenant, entry.request_id] = where
        while len(self._order) > self.max_entries:
            self._evict_oldest()
        return True

    def _evict_oldest(self) -> None:
        (_, request_id), where = self._order.popitem(last=False)
        bucket = self._buckets[where]
        bucket.remove(request_id)
        if not bucket.entries:
            del self._buckets[where]

    def lookup(
        self,
        tenant: str,
        key: str,
        vector: Vector,
        *,
        threshold: float,
        ttl_s: float,
        max_tokens_out: int | None = None,
        now: datetime | None = None,
    ) -> CacheMatch | None:
        """The most similar unexpired entry of this tenant and key at or above ``threshold``, if any.

        ``max_tokens_out``: entries whose answer took more tokens than the request allows are skipped.
        """
        bucket = self._buckets.get((tenant, key))
        if bucket is None:
            return None
        now = now or _now()
        # einsum, not ``@``: a matrix-vector product through multithreaded BLAS takes 40x longer
        # (12 ms for 2,000 entries) when the cores are busy, and safety's cores are.
        scores = np.einsum("ij,j->i", bucket.matrix(), np.asarray(vector, dtype=np.float32))
        best: CacheMatch | None = None
        for i in np.argsort(-scores):
            score = float(scores[i])
            if score < threshold:
                break
            entry = bucket.entries[i]
            if entry.tenant != tenant:  # belt and braces: never another tenant's answer
                continue
            if (now - entry.at).total_seconds() > ttl_s:
                continue
            if max_tokens_out is not None and entry.tokens_out > max_tokens_out:
                continue
            best = CacheMatch(entry, score)
            break
        return best
