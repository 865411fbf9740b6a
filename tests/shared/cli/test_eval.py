"""`llmops eval`: the report command on result files, and the run command's refusal of a bad suite."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from shared.cli.main import main
from shared.eval.results import CheckResult, EvalResult, Outcome
from shared.stack.embedded import free_port


def results_file(path: Path) -> Path:
    records = [
        EvalResult(
            suite="s",
            configuration=config,
            case_id="c1",
            category="factual",
            tenant="t",
            passed=ok,
            checks=[CheckResult(kind="contains", passed=ok)],
            outcome=Outcome(text="Paris", latency_ms=latency, tokens_out=5),
        )
        for config, ok, latency in (("a", True, 100.0), ("b", False, 300.0))
    ]
    path.write_text("".join(r.model_dump_json() + "\n" for r in records))
    return path


class TestEvalCommand:
    def test_report(self, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
        """`eval report` writes report.md and report.json and prints one line per configuration."""
        out = tmp_path / "out"
        assert main(["eval", "report", str(results_file(tmp_path / "r.jsonl")), "--out", str(out)]) == 0
        printed = capsys.readouterr().out
        assert "a: 1/1 passed (100%), p50 100 ms" in printed
        assert "1 cases changed between configurations" in printed
        assert json.loads((out / "report.json").read_text())["changed"][0]["case_id"] == "c1"
        assert "| c1 | factual | pass | FAIL contains:  |" in (out / "report.md").read_text()

    def test_labelled_runs_are_compared(self, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
        """LABEL=PATH prefixes the configurations, so two runs of the same configurations can be compared."""
        first = results_file(tmp_path / "first.jsonl")
        second = results_file(tmp_path / "second.jsonl")
        out = tmp_path / "out"
        assert main(["eval", "report", f"before={first}", f"after={second}", "--out", str(out)]) == 0
        names = [c["name"] for c in json.loads((out / "report.json").read_text())["configurations"]]
        assert names == ["before/a", "before/b", "after/a", "after/b"]
        assert "before/a: 1/1 passed" in capsys.readouterr().out

    def test_report_of_a_missing_file(self, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
        """A missing results file is an error (exit 2), nothing written."""
        assert main(["eval", "report", str(tmp_path / "nope.jsonl"), "--out", str(tmp_path / "out")]) == 2
        assert "no such file" in capsys.readouterr().err
        assert not (tmp_path / "out").exists()

    def test_run_with_an_invalid_suite(self, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
        """An invalid suite is reported before any pipeline is started (exit 2)."""
        suite = tmp_path / "suite.yaml"
        suite.write_text("name: s\ncases: []\n")
        assert main(["eval", "run", str(suite), "--out", str(tmp_path / "out")]) == 2
        assert "error:" in capsys.readouterr().err

    def test_run_against_an_unreachable_broker(self, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
        """No broker at --bootstrap: one error line and exit 1, no traceback, no results."""
        suite = tmp_path / "suite.yaml"
        suite.write_text("name: s\ncases: [{id: a, prompt: hi}]\n")
        bootstrap = f"127.0.0.1:{free_port()}"
        assert main(["eval", "run", str(suite), "--bootstrap", bootstrap, "--out", str(tmp_path / "out")]) == 1
        err = capsys.readouterr().err
        assert err.startswith("error: ")
        assert "Traceback" not in err
        assert not (tmp_path / "out" / "results.jsonl").exists()
