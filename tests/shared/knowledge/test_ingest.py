from pathlib import Path

import pytest

from shared.knowledge.chunking import Chunker
from shared.knowledge.ingest import IngestCommand, IngestWriter, prepare
from shared.knowledge.store import KnowledgeStore
from shared.knowledge.tokens import TokenCounter
from shared.text.embedder import Embedder


@pytest.fixture
def store(tmp_path: Path) -> KnowledgeStore:
    store = KnowledgeStore(path=tmp_path / "qdrant")
    store.warm_up()
    yield store
    store.close()


@pytest.fixture(scope="module")
def chunker() -> Chunker:
    return Chunker(max_tokens=48, overlap=8, counter=TokenCounter())


def ingest(writer: IngestWriter, path: Path, chunker: Chunker, tenant: str = "acme") -> tuple[int, int, int]:
    """Apply every command of one file; returns (chunks, embedded, removed)."""
    totals = [0, 0, 0]
    for command in prepare(path, tenant=tenant, chunker=chunker, job_id="job"):
        progress = writer.apply(command)
        totals = [totals[0] + progress.chunks, totals[1] + progress.embedded, totals[2] + progress.removed]
    return totals[0], totals[1], totals[2]


def write_doc(path: Path, facts: list[str]) -> Path:
    path.write_text("# Handbook\n\n" + "\n\n".join(facts) + "\n")
    return path


FACTS = [
    f"Rule {i}: the {word} room is cleaned every {i + 2} days by the night crew."
    for i, word in enumerate(["blue", "green", "red", "amber", "violet", "silver", "copper", "ivory", "olive", "coral"])
]


class TestIngestWriter:
    def test_reingest_is_idempotent(
        self, tmp_path: Path, store: KnowledgeStore, embedder: Embedder, chunker: Chunker
    ) -> None:
        """Ingesting the same file twice embeds nothing the second time and keeps the same chunks."""
        writer = IngestWriter(store, embedder)
        path = write_doc(tmp_path / "handbook.md", FACTS)
        chunks, embedded, removed = ingest(writer, path, chunker)
        assert chunks > 1
        assert (embedded, removed) == (chunks, 0)
        assert store.count("acme") == chunks
        assert ingest(writer, path, chunker) == (chunks, 0, 0)
        assert store.count("acme") == chunks

    def test_changed_file_replaces_its_chunks(
        self, tmp_path: Path, store: KnowledgeStore, embedder: Embedder, chunker: Chunker
    ) -> None:
        """A changed file's old chunks are removed and its new ones written; other sources are untouched."""
        writer = IngestWriter(store, embedder)
        path = write_doc(tmp_path / "handbook.md", FACTS)
        other = write_doc(tmp_path / "other.md", FACTS[:2])
        first, _, _ = ingest(writer, path, chunker)
        other_chunks, _, _ = ingest(writer, other, chunker)
        write_doc(path, [*FACTS[:3], "Rule 99: the lobby is never cleaned."])
        second, embedded, removed = ingest(writer, path, chunker)
        assert (embedded, removed) == (second, first)
        assert store.count("acme", source=str(path.resolve())) == second
        assert store.count("acme") == second + other_chunks
        hits = store.search("acme", embedder.embed_one("When is the lobby cleaned?"), limit=1)
        assert "lobby" in hits[0].text

    def test_delete_source(self, tmp_path: Path, store: KnowledgeStore, embedder: Embedder, chunker: Chunker) -> None:
        """Deleting a source removes all its chunks, and deleting again removes nothing."""
        writer = IngestWriter(store, embedder)
        path = write_doc(tmp_path / "handbook.md", FACTS)
        chunks, _, _ = ingest(writer, path, chunker)
        delete = IngestCommand(tenant="acme", action="delete", source=str(path.resolve()))
        assert writer.apply(delete).removed == chunks
        assert store.count("acme") == 0
        assert writer.apply(delete).removed == 0

    def test_tenants_are_isolated(
        self, tmp_path: Path, store: KnowledgeStore, embedder: Embedder, chunker: Chunker
    ) -> None:
        """One tenant's chunks are never found, counted or deleted through another tenant."""
        writer = IngestWriter(store, embedder)
        path = write_doc(tmp_path / "handbook.md", FACTS)
        chunks, _, _ = ingest(writer, path, chunker, tenant="acme")
        query = embedder.embed_one("How often is the blue room cleaned?")
        assert store.search("acme", query, limit=3)
        assert store.search("globex", query, limit=3) == []
        assert store.count("globex") == 0
        # The same file for another tenant is embedded again: ids are per tenant.
        assert ingest(writer, path, chunker, tenant="globex")[1] == chunks
        writer.apply(IngestCommand(tenant="globex", action="delete", source=str(path.resolve())))
        assert store.count("acme") == chunks
        assert store.count("globex") == 0

    def test_tenant_names_map_to_distinct_collections(self, store: KnowledgeStore) -> None:
        """Tenant names that clean to the same characters still get distinct collections."""
        assert store.collection_for("a/b") != store.collection_for("a_b")
        assert store.collection_for("a_b") == "knowledge-a_b"
