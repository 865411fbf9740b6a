"""The golden file: raw model outputs and the final answers postprocess must make of them."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from services.postprocess.finisher import Finisher
from shared.contracts.envelope import (
    ChatMessage,
    Completion,
    Document,
    Envelope,
    Grounding,
    Prepared,
    Request,
    Safety,
)

DATA = Path(__file__).parents[2] / "data" / "postprocess"
CONTEXT = json.loads((DATA / "context.json").read_text())
CASES = [json.loads(line) for line in (DATA / "golden.jsonl").read_text().splitlines() if line.strip()]


def golden_envelope(case: dict[str, Any]) -> Envelope:
    """The envelope inference would send for this raw output, with the shared grounding context."""
    user = "Tell me about ACME and Paris."
    env = Envelope(request=Request(messages=[ChatMessage(role="user", content=user)]))
    env.prepared = Prepared(
        messages=[ChatMessage(role="user", content=user)], text=user, model="m", token_count=40, token_budget=900
    )
    documents = [Document.model_validate(d) for d in CONTEXT["documents"]]
    system = (
        CONTEXT["system_prompt"] + "\n\nContext:\n" + "\n".join(f"[{i}] {d.text}" for i, d in enumerate(documents, 1))
    )
    env.grounding = Grounding(
        documents=documents,
        template_id="default",
        template_version=1,
        messages=[ChatMessage(role="system", content=system), ChatMessage(role="user", content=user)],
        prompt=system + "\n" + user,
    )
    if "placeholders" in case:
        env.safety = Safety(
            verdict="redact", placeholders=case["placeholders"], restore_placeholders=case.get("restore", True)
        )
    env.completion = Completion(
        text=case["raw"], model="m", tokens_in=40, tokens_out=60, finish_reason=case["finish_reason"]
    )
    return env


class TestGolden:
    def test_file_covers_the_issue(self) -> None:
        """At least 40 cases, with loops, tokens, Markdown, truncation, PII and leaked prompts among them."""
        ids = [c["id"] for c in CASES]
        assert len(ids) >= 40
        assert len(set(ids)) == len(ids)
        for prefix in ("tok-", "loop-", "md-", "trunc-", "pii-", "leak-system-prompt", "cite-"):
            assert any(i.startswith(prefix) for i in ids), prefix

    @pytest.mark.parametrize("case", CASES, ids=[c["id"] for c in CASES])
    def test_final_answer(self, case: dict[str, Any], finisher: Finisher) -> None:
        """The final answer is exactly the expected text, with the expected flags."""
        env = golden_envelope(case)
        if case.get("poisoned") and env.grounding is not None:
            # The safety stage dropped these retrieved chunks as poisoned: their ids are in safety.dropped_documents.
            dropped = [
                Document(id=f"bad-{i}", source="x", score=0.1, text=t) for i, t in enumerate(CONTEXT["poisoned"])
            ]
            env.grounding.documents = [*env.grounding.documents, *dropped]
            safety = env.safety or Safety(verdict="allow")
            env.safety = safety.model_copy(update={"dropped_documents": [d.id for d in dropped]})
        response = finisher.finish(env).envelope.response
        assert response is not None
        assert response.text == case["expected"]
        assert response.refused == case.get("refused", False)
        assert response.truncated == case.get("truncated", False)
