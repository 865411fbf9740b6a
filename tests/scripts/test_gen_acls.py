"""The stage principals' ACLs in infra/secure/kafka-acls.txt are the topology's."""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys

from tests.infra.helpers import ROOT

_spec = importlib.util.spec_from_file_location("gen_acls", ROOT / "scripts" / "gen_acls.py")
assert _spec is not None
assert _spec.loader is not None
gen_acls = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(gen_acls)
OUT = ROOT / "infra" / "secure" / "kafka-acls.txt"


class TestGenAcls:
    def test_committed_file_is_current(self) -> None:
        """`make docs` leaves kafka-acls.txt as it is (run it after changing the topology)."""
        result = subprocess.run(
            [sys.executable, str(ROOT / "scripts" / "gen_acls.py"), "--check"],
            capture_output=True,
            text=True,
            check=False,
            cwd=ROOT,
            env={**os.environ, "PYTHONPATH": str(ROOT)},
        )
        assert result.returncode == 0, result.stderr[-2000:]

    def test_a_stale_stage_block_is_rewritten_and_the_rest_kept(self) -> None:
        """A stage line the topology does not give is dropped; comments and other principals stay."""
        text = OUT.read_text()
        stale = text.replace(
            "llmops-inference   Write           literal  topic   llmops.generated\n",
            "llmops-inference   Write           literal  topic   llmops.generated\n"
            "llmops-inference   Write           literal  topic   llmops.turns\n",
        )
        assert stale != text
        assert gen_acls.render(stale) == text
