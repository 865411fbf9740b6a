"""Retrieval: the tenant's closest chunks, boosted by shared keywords and entities, diversified by MMR."""

from __future__ import annotations

import re
from collections.abc import Sequence

import numpy as np
import numpy.typing as npt

from shared.contracts.envelope import Document, Entity
from shared.knowledge.store import KnowledgeStore, SearchHit

__all__ = ["Retriever", "keywords", "mmr"]

_WORD = re.compile(r"[a-z0-9_]+")
_STOP_TEXT = """
the a an of to in on for and or is are was were be been by with what which how why does do did can could
when where who whom that this these those it its from as at into than more most there their they you your
not no will would should about have has had
"""
_STOP_WORDS = frozenset(_STOP_TEXT.split())


def keywords(text: str) -> set[str]:
    """The lower-cased content words of ``text`` (three letters or more, no stop words)."""
    return {w for w in _WORD.findall(text.lower()) if len(w) > 2 and w not in _STOP_WORDS}  # noqa: PLR2004


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

    ``candidates`` nearest chunks above ``threshold`` are fetched; each gets ``keyword_weight`` times
    the share of the question's keywords it contains (a lexical signal the small embedding model
    misses) and ``entity_boost`` per prompt entity it mentions (at most two); MMR with
    ``mmr_lambda`` then picks ``k`` of them.

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
        candidates: int = 50,
        threshold: float = 0.25,
        mmr_lambda: float = 0.7,
        keyword_weight: float = 0.1,
        entity_boost: float = 0.05,
    ) -> None:
        self.store = store
        self.k = k
        self.candidates = max(candidates, k)
        self.threshold = threshold
        self.mmr_lambda = mmr_lambda
        self.keyword_weight = keyword_weight
        self.entity_boost = entity_boost

    def relevance(
        self, hit: SearchHit, entities: Sequence[Entity], query_keywords: frozenset[str] | set[str] = frozenset()
    ) -> float:
        """The hit's cosine score plus the keyword and entity boosts."""
        text = f"{hit.title} {hit.heading} {hit.text}".lower()
        mentioned = {e.text.lower() for e in entities if len(e.text) > 1 and e.text.lower() in text}
        score = hit.score + self.entity_boost * min(len(mentioned), 2)
        if query_keywords and self.keyword_weight:
            score += self.keyword_weight * len(query_keywords & keywords(text)) / len(query_keywords)
        return score

    def retrieve(
        self, tenant: str, vector: npt.NDArray[np.float32], entities: Sequence[Entity] = (), question: str = ""
    ) -> list[Document]:
        """The chosen chunks, best first (``score`` is the boosted relevance)."""
        if self.k == 0:
            return []
        hits = self.store.search(tenant, vector, limit=self.candidates, threshold=self.threshold)
        if not hits:
            return []
        query_keywords = keywords(question)
        relevance = [self.relevance(h, entities, query_keywords) for h in hits]
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
