"""Reports from result records: rates per configuration, category and kind; latency; tokens; changed cases."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest

from shared.eval.report import build_report, percentile, render_markdown, write_report
from shared.eval.results import CheckResult, EvalResult, Outcome, read_results


def result(
    config: str, case: str, category: str, checks: dict[str, bool], *, latency: float, tokens: int = 10
) -> EvalResult:
    return EvalResult(
        suite="s",
        configuration=config,
        case_id=case,
        category=category,
        tenant="t",
        passed=all(checks.values()),
        checks=[CheckResult(kind=k, passed=v, detail="" if v else f"{k} failed") for k, v in checks.items()],
        outcome=Outcome(text="x", latency_ms=latency, tokens_in=100, tokens_out=tokens),
    )


RECORDS = [
    result("a", "c1", "factual", {"contains": True}, latency=100),
    result("a", "c2", "factual", {"contains": False, "max_tokens": True}, latency=200),
    result("a", "c3", "safety", {"refused": True}, latency=300, tokens=0),
    result("b", "c1", "factual", {"contains": False}, latency=1000),
    result("b", "c2", "factual", {"contains": True, "max_tokens": True}, latency=2000),
    result("b", "c3", "safety", {"refused": True}, latency=3000, tokens=0),
]


class TestBuildReport:
    def test_rates(self) -> None:
        """Pass rates per configuration, per category and per expectation kind."""
        report = build_report(RECORDS)
        a, b = report.configurations
        assert (a.name, a.cases.passed, a.cases.total) == ("a", 2, 3)
        assert a.by_category["factual"].rate == 0.5
        assert a.by_category["safety"].rate == 1.0
        assert (a.by_kind["contains"].passed, a.by_kind["contains"].total) == (1, 2)
        assert a.by_kind["max_tokens"].rate == 1.0
        assert b.cases.passed == 2
        assert report.suites == ["s"]
        assert report.results == 6

    def test_latency_and_tokens(self) -> None:
        """p50/p95 of the end-to-end latency and token sums per configuration."""
        a = build_report(RECORDS).configurations[0]
        assert a.latency_p50_ms == 200
        assert a.latency_p95_ms == pytest.approx(290)
        assert (a.tokens_in, a.tokens_out, a.mean_tokens_out) == (300, 20, pytest.approx(20 / 3))

    def test_changed_cases(self) -> None:
        """Cases whose outcome differs between configurations are listed with why they failed."""
        changed = {c.case_id: c for c in build_report(RECORDS).changed}
        assert set(changed) == {"c1", "c2"}
        assert changed["c1"].passed == {"a": True, "b": False}
        assert changed["c1"].details == {"b": "contains: contains failed"}

    def test_last_record_wins(self) -> None:
        """A case rerun under one configuration counts once, with its latest result."""
        rerun = result("a", "c2", "factual", {"contains": True}, latency=50)
        a = build_report([*RECORDS, rerun]).configurations[0]
        assert (a.cases.passed, a.cases.total) == (3, 3)

    def test_errors_counted(self) -> None:
        """Error answers are counted per configuration."""
        failed = result("a", "c4", "factual", {"error": False}, latency=10)
        assert build_report([*RECORDS, failed]).configurations[0].errors == 1

    def test_paraphrase_agreement(self) -> None:
        """A paraphrase agrees when it passes or fails like its original under the same configuration."""
        same = result("a", "c1-p", "paraphrase", {"contains": True}, latency=1).model_copy(
            update={"paraphrase_of": "c1"}
        )
        differs = result("a", "c2-p", "paraphrase", {"contains": True}, latency=1).model_copy(
            update={"paraphrase_of": "c2"}
        )
        report = build_report([*RECORDS, same, differs])
        agreement = report.configurations[0].paraphrase_agreement
        assert (agreement.passed, agreement.total) == (1, 2)
        assert "| a | 50% (1/2) |" in render_markdown(report)

    def test_percentile(self) -> None:
        """Linear interpolation between ranks; nothing gives 0."""
        assert percentile([], 0.5) == 0.0
        assert percentile([5.0], 0.95) == 5.0
        assert percentile([1.0, 2.0, 3.0, 4.0], 0.5) == 2.5


class TestWriteReport:
    def test_markdown(self) -> None:
        """The Markdown has the configuration table, both breakdowns and the changed cases."""
        text = render_markdown(build_report(RECORDS))
        assert "| a | 67% (2/3) | 200 | 290 | 300 | 20 | 6.7 | 0 |" in text
        assert "## Pass rate by category" in text
        assert "| safety | 100% (1/1) | 100% (1/1) |" in text
        assert "| contains | 50% (1/2) | 50% (1/2) |" in text
        assert "| c1 | factual | pass | FAIL contains: contains failed |" in text

    def test_files(self, tmp_path: Path) -> None:
        """report.md and report.json are written, the chart too when matplotlib is installed."""
        results = tmp_path / "results.jsonl"
        results.write_text("".join(r.model_dump_json() + "\n" for r in RECORDS))
        written = write_report(build_report(read_results([results])), tmp_path / "out")
        names = {p.name for p in written}
        assert {"report.md", "report.json"} <= names
        data = json.loads((tmp_path / "out" / "report.json").read_text())
        assert [c["pass_rate"] for c in data["configurations"]] == [pytest.approx(2 / 3), pytest.approx(2 / 3)]
        assert [c["case_id"] for c in data["changed"]] == ["c1", "c2"]
        has_matplotlib = importlib.util.find_spec("matplotlib") is not None
        assert ("report.png" in names) is has_matplotlib
        if has_matplotlib:
            assert (tmp_path / "out" / "report.png").read_bytes().startswith(b"\x89PNG")
            assert (
                "![pass rate and latency per configuration](report.png)" in (tmp_path / "out" / "report.md").read_text()
            )
