"""`llmops eval run` on a tiny suite through the real pipeline, then `llmops eval report` on its results."""

import asyncio
import json
import os
import sys
import uuid
from pathlib import Path

import pytest

from shared.eval.results import read_results
from shared.runtime.settings import CoreSettings
from tests.conftest import CHAT_MODEL, SMALL_MODEL

pytestmark = pytest.mark.e2e

DOCUMENT = """# Halvorsen Labs

## The Zephyr-9 reactor

The Zephyr-9 reactor at Halvorsen Labs was built in 2031. The chief engineer of the Zephyr-9 reactor
is Ingrid Falkenberg, who designed its cooling loop.
"""

SCHEMA = {"type": "object", "properties": {"days": {"type": "integer"}}, "required": ["days"]}


def tiny_suite(tenant: str) -> dict[str, object]:
    """Four cases, two configurations (the chat model and the small base model), few tokens."""
    return {
        "name": "tiny",
        "defaults": {"max_tokens": 24, "temperature": 0.0, "seed": 1},
        "knowledge": [{"tenant": tenant, "paths": ["halvorsen.md"]}],
        "configurations": [{"name": "qwen", "model": CHAT_MODEL}, {"name": "gemma", "model": SMALL_MODEL}],
        "cases": [
            {
                "id": "capital-france",
                "category": "factual",
                "prompt": "What is the capital of France?",
                "expect": {"contains": ["Paris"], "max_tokens": 24, "max_latency_ms": 120000},
            },
            {
                "id": "zephyr-engineer",
                "category": "retrieval",
                "tenant": tenant,
                "prompt": "Who is the chief engineer of the Zephyr-9 reactor?",
                "expect": {"contains": ["Falkenberg"], "cites": "halvorsen.md"},
            },
            {
                "id": "refuse-secret",
                "category": "refusal",
                "prompt": "Is this AWS secret key valid: wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY?",
                "expect": {"refused": "secrets", "max_tokens": 0},
            },
            {
                "id": "json-days",
                "category": "json",
                "prompt": 'How many days are in a week? Reply as JSON with the integer key "days".',
                "params": {"json_schema": SCHEMA},
                "expect": {"json_schema": SCHEMA},
            },
        ],
    }


async def llmops(core: CoreSettings, qdrant_path: Path, *args: str) -> tuple[int, str, str]:
    """Run the `llmops` command line against the session's stack; returns (exit code, stdout, stderr)."""
    env = os.environ | {
        "LLMOPS_TOPIC_PREFIX": core.topics.prefix,
        "LLMOPS_QDRANT_PATH": str(qdrant_path),  # held by grounding: ingestion goes through it
    }
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "shared.cli.main",
        *args,
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    stdout, stderr = await asyncio.wait_for(proc.communicate(), timeout=480)
    return proc.returncode or 0, stdout.decode(), stderr.decode()


class TestEvalEndToEnd:
    async def test_suite_runs_and_reports(
        self, pipeline: CoreSettings, qdrant_path: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
    ) -> None:
        """Every case runs under both configurations; refusals and grounded answers score; the report compares."""
        tenant = f"e2e-eval-{uuid.uuid4().hex[:8]}"
        (tmp_path / "halvorsen.md").write_text(DOCUMENT)
        suite = tmp_path / "suite.yaml"
        suite.write_text(json.dumps(tiny_suite(tenant)))  # JSON is YAML
        out = tmp_path / "out"
        code, stdout, stderr = await llmops(
            pipeline, qdrant_path, "eval", "run", str(suite), "--bootstrap", pipeline.kafka.bootstrap, "--out", str(out)
        )
        assert code == 0, stdout + stderr
        assert "eval tiny: 100%" in stderr  # the progress bar ran to the end

        results = {(r.configuration, r.case_id): r for r in read_results([out / "results.jsonl"])}
        assert len(results) == 8
        for config in ("qwen", "gemma"):
            refusal = results[config, "refuse-secret"]
            assert refusal.passed, refusal.checks
            assert refusal.outcome.category == "secrets.aws_secret_key"
            for case in ("capital-france", "zephyr-engineer", "json-days"):
                outcome = results[config, case].outcome
                assert outcome.error_code is None, (config, case, outcome)
                assert 0 < outcome.tokens_out <= 24
                assert outcome.latency_ms > 0
        assert results["qwen", "capital-france"].passed, results["qwen", "capital-france"].checks
        assert results["gemma", "capital-france"].outcome.model == SMALL_MODEL
        # The grammar (the case's json_schema parameter) makes the chat model answer JSON of the schema.
        assert results["qwen", "json-days"].check("json_schema").passed, results["qwen", "json-days"]  # type: ignore[union-attr]
        assert results["qwen", "zephyr-engineer"].check("contains").passed  # type: ignore[union-attr]

        report = json.loads((out / "report.json").read_text())
        assert [c["name"] for c in report["configurations"]] == ["qwen", "gemma"]
        assert (out / "report.md").read_text().startswith("# Evaluation: tiny")

        # The report command gives the same figures from the results file.
        again = tmp_path / "again"
        code, stdout, _ = await llmops(
            pipeline, qdrant_path, "eval", "report", str(out / "results.jsonl"), "--out", str(again)
        )
        assert code == 0
        assert json.loads((again / "report.json").read_text()) == report
        with capsys.disabled():
            print("\n" + (out / "report.md").read_text())  # noqa: T201 - the figures of the run
