"""Retrieval quality on a committed public-domain set: the SQLite documentation (tests/data/sqlite-docs)."""

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from services.grounding.entities import EntityExtractor
from services.grounding.retrieval import Retriever
from shared.knowledge.chunking import Chunker
from shared.knowledge.ingest import IngestWriter, prepare
from shared.knowledge.settings import KnowledgeSettings
from shared.knowledge.store import KnowledgeStore
from shared.knowledge.tokens import TokenCounter
from shared.text.embedder import Embedder

DATA = Path(__file__).parents[2] / "data" / "sqlite-docs"


@pytest.fixture(scope="module")
def sqlite_docs(tmp_path_factory: pytest.TempPathFactory, embedder: Embedder) -> Iterator[KnowledgeStore]:
    """The SQLite pages ingested with the default chunking settings."""
    store = KnowledgeStore(path=tmp_path_factory.mktemp("quality") / "qdrant")
    store.warm_up()
    defaults = KnowledgeSettings()
    chunker = Chunker(max_tokens=defaults.chunk_tokens, overlap=defaults.chunk_overlap, counter=TokenCounter())
    writer = IngestWriter(store, embedder)
    for path in sorted(DATA.glob("*.html")):  # the pages, not the README
        for command in prepare(path, tenant="docs", chunker=chunker, job_id="quality"):
            writer.apply(command)
    yield store
    store.close()


class TestRetrievalQuality:
    def test_hit_at_5(
        self,
        sqlite_docs: KnowledgeStore,
        embedder: Embedder,
        extractor: EntityExtractor,
        capsys: pytest.CaptureFixture[str],
    ) -> None:
        """At least 90% of the questions find the chunk holding their answer in the top 5."""
        questions = [json.loads(line) for line in (DATA / "questions.jsonl").read_text().splitlines() if line]
        assert len(questions) >= 40
        chunks = sqlite_docs.count("docs")
        assert 200 <= chunks <= 600
        retriever = Retriever(sqlite_docs, k=5)
        misses = []
        for q in questions:
            question = q["question"]
            documents = retriever.retrieve("docs", embedder.embed_one(question), extractor.extract(question), question)
            if not any(d.source.endswith("/" + q["source"]) and q["answer"] in d.text for d in documents):
                misses.append(q["question"])
        hit_at_5 = 1 - len(misses) / len(questions)
        with capsys.disabled():
            print(f"\nretrieval quality: hit@5 = {hit_at_5:.3f} on {len(questions)} questions, {chunks} chunks")  # noqa: T201 - the reported figure
        assert hit_at_5 >= 0.9, misses
