"""Every expectation kind, passing and failing, and how an error answer scores."""

from __future__ import annotations

import pytest

from shared.contracts.envelope import Citation, Envelope, ErrorInfo, Response, Safety
from shared.eval.expectations import check_all, parse_json_answer
from shared.eval.results import Outcome
from shared.eval.suite import Expectations
from tests.conftest import make_envelope

SCHEMA = {
    "type": "object",
    "properties": {"city": {"type": "string"}, "population": {"type": "integer"}},
    "required": ["city"],
}


def passed(expect: dict[str, object], **outcome: object) -> bool:
    results = check_all(Expectations.model_validate(expect), Outcome.model_validate(outcome))
    return all(r.passed for r in results)


class TestKinds:
    @pytest.mark.parametrize(
        ("expect", "outcome", "ok"),
        [
            ({"contains": ["paris", "FRANCE"]}, {"text": "Paris is in France."}, True),
            ({"contains": ["Paris", "Lyon"]}, {"text": "Paris is in France."}, False),
            ({"contains": [["1000", "one thousand"]]}, {"text": "One thousand."}, True),
            ({"contains": [["1000", "one thousand"]]}, {"text": "a hundred"}, False),
            ({"regex": r"\b\d{4}\b"}, {"text": "Built in 2031."}, True),
            ({"regex": r"^paris"}, {"text": "Paris."}, True),
            ({"regex": r"\b\d{4}\b"}, {"text": "long ago"}, False),
            ({"cites": "limits.html"}, {"citations": ["/data/docs/limits.html"]}, True),
            ({"cites": "limits.html"}, {"citations": ["/data/docs/nolimits.html"]}, False),
            ({"cites": "limits.html"}, {"citations": []}, False),
            ({"refused": True}, {"refused": True, "category": "pii.credit_card"}, True),
            ({"refused": True}, {"text": "sure"}, False),
            ({"refused": False}, {"text": "sure"}, True),
            ({"refused": "pii"}, {"refused": True, "category": "pii.credit_card"}, True),
            ({"refused": "pii.credit_card"}, {"refused": True, "category": "pii.credit_card"}, True),
            ({"refused": "pi"}, {"refused": True, "category": "pii.credit_card"}, False),
            ({"refused": "secrets"}, {"refused": True, "category": "injection.override"}, False),
            ({"refused": "secrets"}, {"refused": False, "category": None}, False),
            ({"json_schema": SCHEMA}, {"text": '{"city": "Paris", "population": 2}'}, True),
            ({"json_schema": SCHEMA}, {"text": '```json\n{"city": "Paris"}\n```'}, True),
            ({"json_schema": SCHEMA}, {"text": '{"population": 2}'}, False),
            ({"json_schema": SCHEMA}, {"text": '{"city": 3}'}, False),
            ({"json_schema": SCHEMA}, {"text": "Paris"}, False),
            ({"max_tokens": 10}, {"tokens_out": 10}, True),
            ({"max_tokens": 10}, {"tokens_out": 11}, False),
            ({"max_latency_ms": 500}, {"latency_ms": 499.9}, True),
            ({"max_latency_ms": 500}, {"latency_ms": 501}, False),
        ],
    )
    def test_kind(self, expect: dict[str, object], outcome: dict[str, object], ok: bool) -> None:  # noqa: FBT001
        """Each kind passes on a matching outcome and fails on another."""
        assert passed(expect, **outcome) is ok

    def test_all_kinds_must_pass(self) -> None:
        """A case passes only when every one of its expectations does; each is reported."""
        results = check_all(
            Expectations(contains=["Paris"], max_tokens=5), Outcome(text="Paris is the capital.", tokens_out=6)
        )
        assert [(r.kind, r.passed) for r in results] == [("contains", True), ("max_tokens", False)]
        assert results[1].detail == "6 tokens"

    def test_error_answer_fails_unless_a_refusal_was_expected(self) -> None:
        """An error answer adds a failed `error` check; a case expecting a refusal judges it by category."""
        timeout = Outcome(error_code="timeout", category="timeout")
        assert [r.kind for r in check_all(Expectations(max_tokens=50), timeout)] == ["max_tokens", "error"]
        assert not passed({"max_tokens": 50}, error_code="timeout")
        assert passed({"refused": True}, refused=True, error_code="quota_exceeded", category="quota_exceeded")

    def test_parse_json_answer(self) -> None:
        """Bare JSON and JSON in one code fence are read; prose is not JSON."""
        assert parse_json_answer('{"a": 1}') == {"a": 1}
        assert parse_json_answer("```\n[1, 2]\n```") == [1, 2]
        with pytest.raises(ValueError, match="Expecting value"):
            parse_json_answer("The answer is {}")


class TestOutcomeFromEnvelope:
    def test_answer(self) -> None:
        """Text, citations' sources, tokens, model and template are taken from the final envelope."""
        env = make_envelope()
        env = Envelope.model_validate(
            env.model_dump()
            | {
                "response": Response(
                    text="Paris [1].",
                    citations=[Citation(number=1, document_id="d1", source="/kb/france.md")],
                ).model_dump(),
                "completion": {"text": "Paris [1].", "model": "m", "tokens_in": 30, "tokens_out": 4},
                "grounding": {"template_id": "default", "template_version": 2, "messages": [], "prompt": ""},
            }
        )
        outcome = Outcome.from_envelope(env, latency_ms=12.5)
        assert (outcome.text, outcome.citations, outcome.tokens_in, outcome.tokens_out) == (
            "Paris [1].",
            ["/kb/france.md"],
            30,
            4,
        )
        assert (outcome.model, outcome.template, outcome.latency_ms, outcome.refused) == ("m", "default@2", 12.5, False)

    def test_refusal_and_error(self) -> None:
        """A blocked answer is refused with the safety category; an error answer carries its code."""
        blocked = make_envelope().model_copy(
            update={
                "safety": Safety(verdict="block", category="secrets.aws_secret_key"),
                "response": Response(text="I can't help", refused=True),
            }
        )
        outcome = Outcome.from_envelope(blocked, latency_ms=1)
        assert (outcome.refused, outcome.category) == (True, "secrets.aws_secret_key")
        failed = make_envelope().model_copy(
            update={"error": ErrorInfo(code="prompt_too_long", message="too long", stage="preprocess")}
        )
        outcome = Outcome.from_envelope(failed, latency_ms=1)
        assert (outcome.refused, outcome.error_code, outcome.category, outcome.text) == (
            False,
            "prompt_too_long",
            "prompt_too_long",
            "",
        )
