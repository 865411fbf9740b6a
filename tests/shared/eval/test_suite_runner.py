"""Scoring one case run into its result record."""

from __future__ import annotations

from shared.eval.results import Outcome
from shared.eval.suite import parse_suite
from shared.eval.suite_runner import score

SUITE = parse_suite(
    {
        "name": "s",
        "configurations": [{"name": "c", "tenant": "acme"}],
        "cases": [
            {"id": "a", "prompt": "capital of France?", "category": "factual", "expect": {"contains": ["Paris"]}},
            {"id": "b", "prompt": "Which city is France's capital?", "paraphrase_of": "a"},
        ],
    }
)


class TestScore:
    def test_record(self) -> None:
        """The record names the suite, configuration, case, category and tenant, and passes when every check does."""
        first, second = SUITE.runs()
        result = score(SUITE, first, Outcome(text="It is Paris.", latency_ms=5))
        assert (result.suite, result.configuration, result.case_id, result.category, result.tenant) == (
            "s",
            "c",
            "a",
            "factual",
            "acme",
        )
        assert result.passed
        assert not score(SUITE, first, Outcome(text="Lyon")).passed
        assert score(SUITE, second, Outcome(text="anything")).paraphrase_of == "a"

    def test_no_expectations_pass_unless_an_error(self) -> None:
        """A case without expectations passes on any answer, and fails on an error answer."""
        _, second = SUITE.runs()
        assert score(SUITE, second, Outcome(text="x")).passed
        assert not score(SUITE, second, Outcome(error_code="timeout")).passed
