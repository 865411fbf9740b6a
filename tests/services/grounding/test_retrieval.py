import numpy as np
import pytest

from services.grounding.retrieval import Retriever, keywords, mmr
from shared.contracts.envelope import Entity
from shared.knowledge.store import KnowledgeStore, StoredChunk
from shared.text.embedder import Embedder


def put(store: KnowledgeStore, embedder: Embedder, tenant: str, texts: list[str], source: str = "/kb.md") -> None:
    chunks = [
        StoredChunk(f"00000000-0000-4000-8000-{i:012d}", t, source, "KB", "", i, "h") for i, t in enumerate(texts)
    ]
    store.upsert(tenant, chunks, embedder.embed(texts))


class TestMmr:
    def test_prefers_diverse_items(self) -> None:
        """A near-duplicate of the best item loses to a less relevant but different one."""
        vectors = np.asarray([[1, 0], [0.999, 0.045], [0, 1]], dtype=np.float32)
        assert mmr([0.9, 0.89, 0.6], vectors, 2, 0.5) == [0, 2]

    def test_pure_relevance(self) -> None:
        """With lambda 1 the order is by relevance only."""
        vectors = np.eye(3, dtype=np.float32)
        assert mmr([0.1, 0.3, 0.2], vectors, 3, 1.0) == [1, 2, 0]


class TestRetriever:
    def test_top_chunks_for_the_tenant(self, store: KnowledgeStore, embedder: Embedder) -> None:
        """The chunk that answers comes first, with id, source and score; other tenants see nothing."""
        put(
            store,
            embedder,
            "acme",
            ["The cafeteria opens at 7 am.", "Parking is free on weekends.", "Badges are blue."],
        )
        retriever = Retriever(store, k=2, threshold=0.2)
        docs = retriever.retrieve("acme", embedder.embed_one("When does the cafeteria open?"))
        assert docs[0].text == "The cafeteria opens at 7 am."
        assert docs[0].source == "/kb.md"
        assert docs[0].score > 0.5
        assert retriever.retrieve("globex", embedder.embed_one("When does the cafeteria open?")) == []

    def test_threshold(self, store: KnowledgeStore, embedder: Embedder) -> None:
        """Chunks below the score threshold are not returned."""
        put(store, embedder, "acme", ["The cafeteria opens at 7 am."])
        assert Retriever(store, threshold=0.9).retrieve("acme", embedder.embed_one("Quantum chromodynamics")) == []

    def test_near_duplicates_are_diversified(self, store: KnowledgeStore, embedder: Embedder) -> None:
        """Two copies of one chunk do not both take places in the top k."""
        texts = ["The cafeteria opens at 7 am.", "The cafeteria opens at 7 am!", "The cafeteria serves soup daily."]
        put(store, embedder, "acme", texts)
        docs = Retriever(store, k=2, threshold=0.0, mmr_lambda=0.5).retrieve(
            "acme", embedder.embed_one("cafeteria opening time")
        )
        assert {d.text for d in docs} != {texts[0], texts[1]}

    def test_entities_boost_chunks_naming_them(self, store: KnowledgeStore, embedder: Embedder) -> None:
        """A chunk that names the prompt's entity gets the entity boost added to its score."""
        put(store, embedder, "acme", ["Maria Lopez leads the Lisbon office.", "The Lisbon office has 40 desks."])
        retriever = Retriever(store, k=2, threshold=0.0, entity_boost=0.5)
        vector = embedder.embed_one("Who leads the office?")
        plain = {d.text: d.score for d in retriever.retrieve("acme", vector)}
        boosted = retriever.retrieve("acme", vector, [Entity(text="Maria Lopez", label="PERSON", start=0, end=11)])
        assert boosted[0].text == "Maria Lopez leads the Lisbon office."
        assert boosted[0].score == round(plain[boosted[0].text] + 0.5, 4)

    def test_shared_keywords_raise_the_score(self, store: KnowledgeStore, embedder: Embedder) -> None:
        """A chunk holding the question's keywords scores keyword_weight times their share above its cosine."""
        put(store, embedder, "acme", ["The checkpoint runs when the log reaches 1000 pages."])
        question = "When does the checkpoint run?"
        vector = embedder.embed_one(question)
        plain = Retriever(store, threshold=0.0, keyword_weight=0.0).retrieve("acme", vector, (), question)
        boosted = Retriever(store, threshold=0.0, keyword_weight=0.2).retrieve("acme", vector, (), question)
        # "checkpoint" and "run" are the keywords; only "checkpoint" appears as a word in the chunk.
        assert boosted[0].score == pytest.approx(plain[0].score + 0.1, abs=1e-3)


class TestKeywords:
    def test_content_words_only(self) -> None:
        """Stop words and short words are dropped; the rest is lower-cased."""
        assert keywords("What is the WAL checkpoint in SQLite?") == {"wal", "checkpoint", "sqlite"}
