"""Heavy real components, loaded once for the grounding tests."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from services.grounding.entities import EntityExtractor
from shared.knowledge.store import KnowledgeStore
from shared.text.embedder import Embedder


@pytest.fixture(scope="session")
def embedder() -> Embedder:
    embedder = Embedder()
    embedder.warm_up()
    return embedder


@pytest.fixture(scope="session")
def extractor() -> EntityExtractor:
    extractor = EntityExtractor()
    extractor.warm_up()
    return extractor


@pytest.fixture
def store(tmp_path: Path) -> Iterator[KnowledgeStore]:
    store = KnowledgeStore(path=tmp_path / "qdrant")
    store.warm_up()
    yield store
    store.close()
