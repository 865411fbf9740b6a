"""The real MiniLM embedder, loaded once for the knowledge tests."""

from __future__ import annotations

import pytest

from shared.text.embedder import Embedder


@pytest.fixture(scope="session")
def embedder() -> Embedder:
    embedder = Embedder()
    embedder.warm_up()
    return embedder
