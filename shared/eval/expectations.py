"""Expectation kinds: each a small function of the expected value and the outcome.

Example:
    >>> check_all(Expectations(contains=["paris"]), Outcome(text="The capital is Paris."))[0].passed
    True

"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from typing import Any

import jsonschema

from shared.eval.results import CheckResult, Outcome
from shared.eval.suite import Expectations, Fact

__all__ = ["CHECKS", "check_all", "parse_json_answer"]

_FENCE = re.compile(r"^\s*```[a-zA-Z]*\s*\n(.*?)\n?```\s*$", re.DOTALL)


def _fact_found(fact: Fact, text: str) -> bool:
    alternatives = [fact] if isinstance(fact, str) else fact
    return any(alt.casefold() in text for alt in alternatives)


def check_contains(facts: list[Fact], outcome: Outcome) -> CheckResult:
    """Every fact (or one of its alternatives) is in the answer, ignoring case."""
    text = outcome.text.casefold()
    missing = [f for f in facts if not _fact_found(f, text)]
    return CheckResult(kind="contains", passed=not missing, detail=f"missing: {missing}" if missing else "")


def check_regex(pattern: str, outcome: Outcome) -> CheckResult:
    """The answer matches the pattern somewhere, ignoring case."""
    found = re.search(pattern, outcome.text, re.IGNORECASE) is not None
    return CheckResult(kind="regex", passed=found, detail="" if found else f"no match for {pattern!r}")


def check_cites(source: str, outcome: Outcome) -> CheckResult:
    """One citation's source is ``source`` or ends with it (a file name matches its full path)."""
    cited = any(c == source or c.endswith(("/" + source, "\\" + source)) for c in outcome.citations)
    return CheckResult(kind="cites", passed=cited, detail="" if cited else f"cited: {outcome.citations}")


def check_refused(expected: bool | str, outcome: Outcome) -> CheckResult:  # noqa: FBT001 - one signature for all checks
    """Refused or not as expected; a category string must equal the refusal's category or be its prefix."""
    if isinstance(expected, bool):
        passed = outcome.refused == expected
        return CheckResult(kind="refused", passed=passed, detail="" if passed else f"refused={outcome.refused}")
    category = outcome.category or ""
    passed = outcome.refused and (category == expected or category.startswith(expected + "."))
    detail = "" if passed else f"refused={outcome.refused}, category={outcome.category!r}"
    return CheckResult(kind="refused", passed=passed, detail=detail)


def parse_json_answer(text: str) -> Any:
    """The answer as JSON, allowing one Markdown code fence around it (``ValueError`` when it is not JSON)."""
    fenced = _FENCE.match(text)
    return json.loads(fenced.group(1) if fenced else text)


def check_json_schema(schema: dict[str, Any], outcome: Outcome) -> CheckResult:
    """The answer is JSON and valid against the schema."""
    try:
        value = parse_json_answer(outcome.text)
    except ValueError as exc:
        return CheckResult(kind="json_schema", passed=False, detail=f"not JSON: {exc}")
    try:
        jsonschema.validate(value, schema)
    except jsonschema.ValidationError as exc:
        return CheckResult(kind="json_schema", passed=False, detail=f"invalid: {exc.message}")
    return CheckResult(kind="json_schema", passed=True)


def check_max_tokens(limit: int, outcome: Outcome) -> CheckResult:
    """The completion used at most ``limit`` tokens."""
    passed = outcome.tokens_out <= limit
    return CheckResult(kind="max_tokens", passed=passed, detail="" if passed else f"{outcome.tokens_out} tokens")


def check_max_latency_ms(limit: float, outcome: Outcome) -> CheckResult:
    """The answer came within ``limit`` milliseconds."""
    passed = outcome.latency_ms <= limit
    return CheckResult(kind="max_latency_ms", passed=passed, detail="" if passed else f"{outcome.latency_ms:.0f} ms")


#: Expectation kind → its check; the keys are the fields of ``Expectations``.
CHECKS: dict[str, Callable[[Any, Outcome], CheckResult]] = {
    "contains": check_contains,
    "regex": check_regex,
    "cites": check_cites,
    "refused": check_refused,
    "json_schema": check_json_schema,
    "max_tokens": check_max_tokens,
    "max_latency_ms": check_max_latency_ms,
}


def check_all(expect: Expectations, outcome: Outcome) -> list[CheckResult]:
    """Every expectation the case has, checked; an error answer fails a case that did not expect a refusal."""
    results = [CHECKS[kind](getattr(expect, kind), outcome) for kind in expect.kinds()]
    if outcome.error_code is not None and expect.refused is None:
        results.append(CheckResult(kind="error", passed=False, detail=outcome.error_code))
    return results
