"""Retrieval: the tenant's closest chunks, boosted when they name the prompt's entities, diversified by MMR."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import numpy.typing as npt

from shared.components.knowledge.store import KnowledgeStore, SearchHit
from shared.messaging.envelope import Document, Entity

__all__ = ["Retriever", "mmr"]


def mmr(relevance: Sequence[float], vectors: npt.NDArray[np.float32], k: int, lambda_: float) -> list[int]:
    """Maximal marginal relevance: pick ``k`` indices trading relevance against similarity to those picked."""
    if not relevance:
        return []
    rel = np.asarray(relevance, dtype=np.float32)
    sims = vectors @ vectors.T
    chosen = [int(np.argmax(rel))]
    while len(chosen) < min(k, len(rel)):
        redundancy = sims[:, chosen].max(axis=1)
        score = lambda_ * rel - (1 - lambda_) * redundancy
        score[chosen] = -np.inf
        chosen.append(int(np.argmax(score)))
    return chosen


class Retriever:
    """Top-k chunks for a prompt embedding, from one tenant's knowledge only.

    ``candidates`` nearest chunks above ``threshold`` are fetched; each gets ``entity_boost`` per
    prompt entity it mentions (at most two); MMR with ``mmr_lambda`` then picks ``k`` of them.

    Example:
        >>> retriever = Retriever(store, k=5)
        >>> [d.source for d in retriever.retrieve("acme", vector, entities)]
        ['/docs/refunds.md', ...]

    """

    def __init__(
        self,
        store: KnowledgeStore,
        *,
        k: int = 5,
        candidates: int = 20,
        threshold: float = 0.25,
        mmr_lambda: float = 0.7,
        entity_boost: float = 0.05,
    ) -> None:
        self.store = store
        self.k = k
        self.candidates = max(candidates, k)
        self.threshold = threshold
        self.mmr_lambda = mmr_lambda
        self.entity_boost = entity_boost

    def relevance(self, hit: SearchHit, entities: Sequence[Entity]) -> float:
        """The hit's cosine score plus the boost for the entities it mentions."""
        text = hit.text.lower()
        mentioned = {e.text.lower() for e in entities if len(e.text) > 1 and e.text.lower() in text}
        return hit.score + self.entity_boost * min(len(mentioned), 2)

    def retrieve(self, tenant: str, vector: npt.NDArray[np.float32], entities: Sequence[Entity] = ()) -> list[Document]:
        """The chosen chunks, best first (``score`` is the boosted relevance)."""
        if self.k == 0:
            return []
        hits = self.store.search(tenant, vector, limit=self.candidates, threshold=self.threshold)
        if not hits:
            return []
        relevance = [self.relevance(h, entities) for h in hits]
        order = mmr(relevance, np.stack([h.vector for h in hits]), self.k, self.mmr_lambda)
        return [
            Document(
                id=hits[i].id,
                source=hits[i].source,
                score=round(relevance[i], 4),
                text=hits[i].text,
                title=hits[i].title or None,
                heading=hits[i].heading or None,
            )
            for i in order
        ]
