"""The whole pipeline: real Tansu broker, all five services as processes, the real default model."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from shared.messaging.settings import CoreSettings
from shared.stack.embedded import EmbeddedStack
from tests.conftest import core_settings


@pytest.fixture(scope="session")
def qdrant_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The knowledge store folder of the session's grounding service (not the user's data directory)."""
    return tmp_path_factory.mktemp("qdrant")


@pytest.fixture(scope="session")
async def pipeline(
    tansu: str, models_dir: Path, qdrant_path: Path, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[CoreSettings]:
    """Start the five services against the session broker; yields the settings clients use."""
    core = core_settings(tansu)
    stack = EmbeddedStack(
        core,
        external=True,
        log_dir=tmp_path_factory.mktemp("e2e-logs"),
        extra_env={"LLMOPS_QDRANT_PATH": str(qdrant_path)},
    )
    try:
        await stack.start(timeout=240)
        yield core
    finally:
        stack.stop()
