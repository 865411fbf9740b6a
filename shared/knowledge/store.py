"""The Qdrant collection(s) holding knowledge chunks: write, replace, delete and search, per tenant.

Local mode evaluates payload filters in Python (about 130 ms over 10,000 points), so there each
tenant gets a collection of its own and searches need no filter; with a server one collection is
shared and every search is filtered by an indexed ``tenant`` field. Either way a tenant only ever
reads its own chunks.
"""

from __future__ import annotations

import hashlib
import re
import ssl
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from shared.text.embedder import EMBEDDING_DIM

__all__ = ["KnowledgeStore", "SearchHit", "StoreUnavailableError", "StoredChunk"]

_SAFE_NAME = re.compile(r"[^A-Za-z0-9_-]")


class StoreUnavailableError(RuntimeError):
    """Qdrant cannot be reached, or its local folder is held by another process."""


@dataclass(frozen=True)
class StoredChunk:
    """A chunk as stored: id, text, and the payload fields retrieval reports."""

    id: str
    text: str
    source: str
    title: str
    heading: str
    position: int
    file_hash: str

    def payload(self, tenant: str) -> dict[str, Any]:
        """The Qdrant payload."""
        return {
            "tenant": tenant,
            "text": self.text,
            "source": self.source,
            "title": self.title,
            "heading": self.heading,
            "position": self.position,
            "file_hash": self.file_hash,
        }


@dataclass(frozen=True)
class SearchHit:
    """A search result with its vector (for diversification)."""

    id: str
    score: float
    text: str
    source: str
    title: str
    heading: str
    vector: npt.NDArray[np.float32]


class KnowledgeStore:
    """Chunks in Qdrant, local folder or server.

    Example:
        >>> store = KnowledgeStore(path=Path("/tmp/kb"))
        >>> store.warm_up()
        >>> store.search("acme", embedder.embed_one("refund policy"), limit=5)
        [SearchHit(...), ...]

    """

    def __init__(
        self,
        *,
        path: Path | None = None,
        url: str | None = None,
        api_key: str | None = None,
        verify: ssl.SSLContext | None = None,
        collection: str = "knowledge",
        timeout_s: float = 2.0,
        retry_after_s: float = 10.0,
    ) -> None:
        if (path is None) == (url is None):
            msg = "give exactly one of path (local mode) or url (server)"
            raise ValueError(msg)
        self.path = path
        self.url = url
        self.api_key = api_key
        self.verify = verify
        self.collection = collection
        self.timeout_s = timeout_s
        self.retry_after_s = retry_after_s
        self._failure: tuple[float, str] | None = None
        self._client: Any | None = None
        self._known: set[str] = set()
        self._lock = threading.Lock()

    @property
    def local(self) -> bool:
        """Local mode (a folder only one process may open)."""
        return self.path is not None

    def warm_up(self) -> None:
        """Open the folder or connect; raises ``StoreUnavailableError`` when that is impossible.

        After a failure, calls within ``retry_after_s`` fail at once instead of trying again.
        """
        if self._client is not None:
            return
        if self._failure is not None and time.monotonic() - self._failure[0] < self.retry_after_s:
            raise StoreUnavailableError(self._failure[1])
        from qdrant_client import QdrantClient  # noqa: PLC0415 - heavy import

        try:
            if self.path is not None:
                self.path.mkdir(parents=True, exist_ok=True)
                client = QdrantClient(path=str(self.path))
            else:
                client = QdrantClient(**self.server_kwargs())
                client.get_collections()
        except Exception as exc:  # qdrant raises RuntimeError (folder locked) and several transport errors
            reason = f"knowledge store unavailable: {exc}"[:300]
            self._failure = (time.monotonic(), reason)
            raise StoreUnavailableError(reason) from exc
        self._failure = None
        self._client = client

    def server_kwargs(self) -> dict[str, Any]:
        """What ``QdrantClient`` is given for a server: URL (https:// is TLS), API key, timeout, TLS trust."""
        kwargs: dict[str, Any] = {
            "url": self.url,
            "api_key": self.api_key,
            "timeout": max(1, round(self.timeout_s)),
            "check_compatibility": False,
        }
        if self.verify is not None:
            kwargs["verify"] = self.verify  # httpx's argument: the server's certificate must chain to ca_file
        return kwargs

    def __repr__(self) -> str:
        where = f"path={str(self.path)!r}" if self.path is not None else f"url={self.url!r}"
        return f"KnowledgeStore({where}, collection={self.collection!r})"

    def close(self) -> None:
        """Release the folder or connection."""
        if self._client is not None:
            self._client.close()
            self._client = None
            self._known.clear()

    @property
    def client(self) -> Any:
        """The ``QdrantClient``."""
        if self._client is None:
            self.warm_up()
        return self._client

    def collection_for(self, tenant: str) -> str:
        """The collection holding ``tenant``'s chunks."""
        if not self.local:
            return self.collection
        slug = _SAFE_NAME.sub("_", tenant)
        if slug != tenant:  # keep distinct tenants distinct after cleaning their names
            slug += "-" + hashlib.sha256(tenant.encode()).hexdigest()[:8]
        return f"{self.collection}-{slug}"

    def _filter(self, tenant: str, **fields: str) -> Any:
        from qdrant_client import models  # noqa: PLC0415

        conditions = [models.FieldCondition(key=k, match=models.MatchValue(value=v)) for k, v in fields.items()]
        if not self.local:
            conditions.append(models.FieldCondition(key="tenant", match=models.MatchValue(value=tenant)))
        return models.Filter(must=conditions) if conditions else None

    def _exists(self, name: str) -> bool:
        if name in self._known:
            return True
        if self.client.collection_exists(name):
            self._known.add(name)
            return True
        return False

    def _ensure(self, name: str) -> None:
        from qdrant_client import models  # noqa: PLC0415

        with self._lock:
            if self._exists(name):
                return
            # Dot product: the embedder's vectors are unit length, so it is the cosine, and local mode's
            # cosine re-normalises every stored vector on each query (about 20 ms at 10,000 points).
            self.client.create_collection(
                name, vectors_config=models.VectorParams(size=EMBEDDING_DIM, distance=models.Distance.DOT)
            )
            if not self.local:
                for key, schema in (
                    ("tenant", models.KeywordIndexParams(type="keyword", is_tenant=True)),
                    ("source", models.KeywordIndexParams(type="keyword")),
                ):
                    self.client.create_payload_index(name, key, field_schema=schema)
            self._known.add(name)

    def existing_ids(self, tenant: str, ids: Sequence[str]) -> set[str]:
        """Which of ``ids`` are stored already (those chunks need no embedding)."""
        name = self.collection_for(tenant)
        if not ids or not self._exists(name):
            return set()
        points = self.client.retrieve(name, ids=list(ids), with_payload=["tenant"], with_vectors=False)
        return {str(p.id) for p in points if p.payload and p.payload.get("tenant") == tenant}

    def upsert(self, tenant: str, chunks: Sequence[StoredChunk], vectors: npt.NDArray[np.float32]) -> None:
        """Write chunks with their unit-length vectors (same id: replaced)."""
        from qdrant_client import models  # noqa: PLC0415

        if not chunks:
            return
        name = self.collection_for(tenant)
        self._ensure(name)
        points = [
            models.PointStruct(id=c.id, vector=v.tolist(), payload=c.payload(tenant))
            for c, v in zip(chunks, vectors, strict=True)
        ]
        self.client.upsert(name, points=points, wait=True)

    def delete_source(self, tenant: str, source: str, *, keep_hash: str | None = None) -> int:
        """Delete the source's chunks (except those of file version ``keep_hash``); returns how many."""
        from qdrant_client import models  # noqa: PLC0415

        name = self.collection_for(tenant)
        if not self._exists(name):
            return 0
        flt = self._filter(tenant, source=source)
        ids = []
        offset = None
        while True:
            points, offset = self.client.scroll(
                name, scroll_filter=flt, limit=1000, offset=offset, with_payload=["file_hash"], with_vectors=False
            )
            ids += [p.id for p in points if keep_hash is None or (p.payload or {}).get("file_hash") != keep_hash]
            if offset is None:
                break
        if ids:
            self.client.delete(name, points_selector=models.PointIdsList(points=ids), wait=True)
        return len(ids)

    def count(self, tenant: str, *, source: str | None = None) -> int:
        """Chunks stored for the tenant (of one source when given)."""
        name = self.collection_for(tenant)
        if not self._exists(name):
            return 0
        flt = self._filter(tenant, **({"source": source} if source else {}))
        return int(self.client.count(name, count_filter=flt, exact=True).count)

    def search(
        self, tenant: str, vector: npt.NDArray[np.float32], *, limit: int, threshold: float = 0.0
    ) -> list[SearchHit]:
        """The ``limit`` chunks of the tenant closest to ``vector`` with cosine at least ``threshold``."""
        name = self.collection_for(tenant)
        if not self._exists(name):
            return []
        result = self.client.query_points(
            name,
            query=vector.tolist(),
            query_filter=self._filter(tenant),
            limit=limit,
            score_threshold=threshold,
            with_payload=True,
            with_vectors=True,
        )
        hits = []
        for point in result.points:
            payload = point.payload or {}
            if payload.get("tenant") != tenant:  # belt and braces: never another tenant's chunk
                continue
            hits.append(
                SearchHit(
                    id=str(point.id),
                    score=float(point.score),
                    text=str(payload.get("text", "")),
                    source=str(payload.get("source", "")),
                    title=str(payload.get("title", "")),
                    heading=str(payload.get("heading", "")),
                    vector=np.asarray(point.vector, dtype=np.float32),
                )
            )
        return hits
