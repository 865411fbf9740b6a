"""The whole pipeline: real Tansu broker, all five services as processes, the real default model."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from shared.messaging.settings import CoreSettings
from shared.stack.embedded import EmbeddedStack
from tests.conftest import core_settings


@pytest.fixture(scope="session")
async def pipeline_stack(
    tansu: str, models_dir: Path, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[EmbeddedStack]:
    """Start the five services against the session broker (their health ports and logs are on the stack)."""
    core = core_settings(tansu)
    stack = EmbeddedStack(core, external=True, log_dir=tmp_path_factory.mktemp("e2e-logs"))
    try:
        await stack.start(timeout=240)
        yield stack
    finally:
        stack.stop()


@pytest.fixture(scope="session")
def pipeline(pipeline_stack: EmbeddedStack) -> CoreSettings:
    """The settings clients use to talk to the running pipeline."""
    return pipeline_stack.core
