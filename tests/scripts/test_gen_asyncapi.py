"""The committed AsyncAPI document matches the apps."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[2]


class TestAsyncApi:
    def test_committed_document_is_current(self) -> None:
        """`make docs` output equals docs/asyncapi.yaml (run `make docs` after changing topics or the envelope)."""
        result = subprocess.run(
            [sys.executable, str(ROOT / "scripts" / "gen_asyncapi.py"), "--check"],
            capture_output=True,
            text=True,
            check=False,
            cwd=ROOT,
        )
        assert result.returncode == 0, result.stderr[-2000:]

    def test_every_stage_input_is_a_channel_with_the_envelope(self) -> None:
        """Each stage's input topic is documented with the envelope as its payload."""
        spec = yaml.safe_load((ROOT / "docs" / "asyncapi.yaml").read_text())
        addresses = {c["address"] for c in spec["channels"].values()}
        stems = ["requests", "preprocessed", "grounded", "checked", "generated", "responses", "turns", "dlq"]
        assert {f"llmops.{t}" for t in stems} <= addresses
        assert spec["components"]["schemas"]["Envelope"]["properties"]["schema_version"]["const"] == 1
