import asyncio
import os
import sys
import uuid
from pathlib import Path

import pytest

from shared.client import LlmopsClient
from shared.runtime.settings import CoreSettings

pytestmark = pytest.mark.e2e

DOCUMENT = """# Halvorsen Labs

## The Zephyr-9 reactor

The Zephyr-9 reactor at Halvorsen Labs was built in 2031. The chief engineer of the Zephyr-9 reactor
is Ingrid Falkenberg, who designed its cooling loop.

## Cafeteria

The cafeteria of Halvorsen Labs serves fish soup every Thursday.
"""


async def llmops(core: CoreSettings, qdrant_path: Path, *args: str) -> tuple[int, str]:
    """Run the `llmops` command line against the session's stack; returns (exit code, stdout)."""
    env = os.environ | {
        "LLMOPS_KAFKA_BOOTSTRAP": core.kafka.bootstrap,
        "LLMOPS_TOPIC_PREFIX": core.topics.prefix,
        "LLMOPS_QDRANT_PATH": str(qdrant_path),
    }
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "shared.cli.main", *args, env=env, stdout=asyncio.subprocess.PIPE
    )
    stdout, _ = await asyncio.wait_for(proc.communicate(), timeout=300)
    return proc.returncode or 0, stdout.decode()


class TestGrounding:
    async def test_ingested_fact_is_answered_with_its_source(
        self, pipeline: CoreSettings, qdrant_path: Path, tmp_path: Path
    ) -> None:
        """A fact only an ingested document holds comes back in the answer, its source among the documents."""
        tenant = f"e2e-{uuid.uuid4().hex[:8]}"
        document = tmp_path / "halvorsen.md"
        document.write_text(DOCUMENT)
        code, out = await llmops(pipeline, qdrant_path, "ingest", str(document), "--tenant", tenant)
        assert code == 0, out
        assert "through the grounding service" in out

        async with LlmopsClient(pipeline, tenant=tenant) as client:
            answer = await client.ask(
                "Who is the chief engineer of the Zephyr-9 reactor?", max_tokens=48, temperature=0.0, timeout=180
            )
        assert answer.response is not None
        assert "Falkenberg" in answer.response.text
        assert answer.grounding is not None
        assert answer.grounding.documents[0].source == str(document.resolve())
        assert "Falkenberg" in answer.grounding.documents[0].text
        assert answer.grounding.messages == []  # the assembled prompt is internal (public view)
        assert (answer.grounding.template_id, answer.grounding.template_version) == ("default", 3)

        code, out = await llmops(pipeline, qdrant_path, "ingest", "--delete", str(document), "--tenant", tenant)
        assert code == 0, out
        assert "removed" in out
        assert " 0 removed" not in out
