"""What one case run produced (the outcome) and its scored record, one JSON line per record."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

from pydantic import BaseModel, Field

from shared.contracts.envelope import Envelope

__all__ = ["CheckResult", "EvalResult", "Outcome", "read_results"]


class Outcome(BaseModel):
    """The parts of a final answer the expectations look at."""

    text: str = ""
    refused: bool = False
    category: str | None = Field(default=None, description="Safety category of a refusal, or the error code.")
    error_code: str | None = None
    citations: list[str] = Field(default_factory=list, description="Sources the answer cites.")
    tokens_in: int = 0
    tokens_out: int = 0
    latency_ms: float = Field(default=0.0, description="From sending the request to its answer, at the client.")
    model: str | None = Field(default=None, description="The model that answered.")
    template: str | None = Field(default=None, description="The template id@version grounding used.")
    request_id: str | None = None

    @classmethod
    def from_envelope(cls, env: Envelope, latency_ms: float) -> Outcome:
        """The outcome of a final answer envelope."""
        response, safety, completion = env.response, env.safety, env.completion
        blocked = safety is not None and safety.verdict == "block"
        refused = blocked or (response is not None and response.refused)
        category = safety.category if safety is not None and safety.category else None
        if env.error is not None:
            category = category or env.error.code
        return cls(
            text=response.text if response is not None else "",
            refused=refused,
            category=category,
            error_code=env.error.code if env.error is not None else None,
            citations=[c.source for c in response.citations] if response is not None else [],
            tokens_in=completion.tokens_in if completion is not None else 0,
            tokens_out=completion.tokens_out if completion is not None else 0,
            latency_ms=latency_ms,
            model=completion.model if completion is not None else (env.prepared.model if env.prepared else None),
            template=(
                f"{env.grounding.template_id}@{env.grounding.template_version}" if env.grounding is not None else None
            ),
            request_id=env.request_id,
        )


class CheckResult(BaseModel):
    """One expectation kind checked against an outcome."""

    kind: str
    passed: bool
    detail: str = ""


class EvalResult(BaseModel):
    """One case under one configuration: what it asked, what came back, how it scored."""

    suite: str
    configuration: str
    case_id: str
    category: str
    paraphrase_of: str | None = None
    tenant: str
    passed: bool
    checks: list[CheckResult] = Field(default_factory=list)
    outcome: Outcome

    def check(self, kind: str) -> CheckResult | None:
        """The result of one expectation kind, when the case has it."""
        return next((c for c in self.checks if c.kind == kind), None)


def read_results(paths: Iterable[Path]) -> list[EvalResult]:
    """Every record in the given JSON-lines files, in order."""
    return [
        EvalResult.model_validate_json(line) for path in paths for line in path.read_text().splitlines() if line.strip()
    ]
