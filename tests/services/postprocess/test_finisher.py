import pytest

from services.postprocess.finisher import EmptyAnswerError, Finisher, restore_placeholders
from services.postprocess.output_checks import CheckResult
from shared.contracts.envelope import (
    CacheHit,
    CacheInfo,
    ChatMessage,
    Completion,
    Document,
    Envelope,
    Grounding,
    Prepared,
    Request,
    Safety,
    TrailRecord,
)
from tests.conftest import make_envelope


def generated(text: str, user: str = "Capital of France?", **completion: object) -> Envelope:
    env = Envelope(
        conversation_id="c1", tenant="t1", request=Request(messages=[ChatMessage(role="user", content=user)])
    )
    env.prepared = Prepared(
        messages=[ChatMessage(role="user", content=user)], text=user, model="m", token_count=3, token_budget=9
    )
    env.completion = Completion(text=text, model="m", tokens_in=3, tokens_out=5, **completion)  # type: ignore[arg-type]
    return env


def grounding_with(*documents: Document) -> Grounding:
    """A grounding section that gave the model ``documents`` (numbered [1]..[n])."""
    return Grounding(
        documents=list(documents),
        template_id="t",
        template_version=1,
        messages=[ChatMessage(role="user", content="q")],
        prompt="q",
    )


class TestRestorePlaceholders:
    def test_values_back_with_their_spans(self) -> None:
        """Each placeholder of the map is replaced; the spans point at the values in the new text."""
        safety = Safety(
            verdict="redact",
            placeholders={"<EMAIL_1>": "ann@x.org", "<EMAIL_10>": "z@y.org"},
            restore_placeholders=True,
        )
        restored = restore_placeholders("To <EMAIL_10> and <EMAIL_1>.", safety)
        assert restored.text == "To z@y.org and ann@x.org."
        assert [restored.text[s:e] for s, e in restored.spans] == ["z@y.org", "ann@x.org"]

    def test_only_when_the_policy_allows(self) -> None:
        """Without restore_placeholders the placeholders stay."""
        safety = Safety(verdict="redact", placeholders={"<EMAIL_1>": "ann@x.org"})
        assert restore_placeholders("To <EMAIL_1>.", safety).text == "To <EMAIL_1>."
        assert restore_placeholders("To <EMAIL_1>.", None).spans == []


class TestFinisher:
    def test_answer_is_polished_and_final(self, finisher: Finisher) -> None:
        """The response is the cleaned completion with usage; the envelope is final."""
        out = finisher.process(generated("Paris.<|im_end|>"))
        assert out.response is not None
        assert out.response.text == "Paris."
        assert out.kind == "final"
        assert out.response.usage is not None
        assert (out.response.usage.prompt_tokens, out.response.usage.total_tokens) == (3, 8)

    def test_blocked_request_gets_the_refusal(self, finisher: Finisher) -> None:
        """A blocked request is answered with the policy's refusal and remembers nothing."""
        env = make_envelope()
        env.safety = Safety(verdict="block", category="pii.credit_card", refusal="No cards, please.")
        finished = finisher.finish(env)
        assert finished.envelope.response is not None
        assert (finished.envelope.response.text, finished.envelope.response.refused) == ("No cards, please.", True)
        assert finished.turn is None

    def test_turn_uses_the_redacted_user_text(self, finisher: Finisher) -> None:
        """Memory keeps what the model saw: the redacted prompt, never the raw PII."""
        env = generated("Hello!", user="I am bob@example.org")
        env.safety = Safety(verdict="redact", messages=[ChatMessage(role="user", content="I am <EMAIL>")])
        turn = finisher.finish(env).turn
        assert turn is not None
        assert (turn.conversation_id, turn.tenant, turn.user, turn.assistant) == ("c1", "t1", "I am <EMAIL>", "Hello!")

    def test_shadow_request_is_answered_but_not_remembered(self, finisher: Finisher) -> None:
        """A shadow (replayed or evaluation) request gets its answer and writes no turn to memory."""
        env = generated("Paris.")
        assert env.request is not None
        env.request.metadata["shadow"] = "eval:starter/qwen"
        finished = finisher.finish(env)
        assert finished.envelope.response is not None
        assert finished.envelope.response.text == "Paris."
        assert finished.turn is None

    def test_restored_values_reach_the_user_but_not_memory_or_the_answer_envelope(self, finisher: Finisher) -> None:
        """The user sees their address; memory keeps the placeholder; the map is not sent back."""
        env = generated("I will write to <EMAIL_1> today.")
        env.safety = Safety(verdict="redact", placeholders={"<EMAIL_1>": "ann@x.org"}, restore_placeholders=True)
        finished = finisher.finish(env)
        response = finished.envelope.response
        assert response is not None
        assert response.text == "I will write to ann@x.org today."
        assert response.findings == []
        assert "placeholders_restored" in response.changes
        assert finished.turn is not None
        assert finished.turn.assistant == "I will write to <EMAIL_1> today."
        assert finished.envelope.safety is not None
        assert finished.envelope.safety.placeholders == {}
        assert "ann@x.org" not in finished.envelope.safety.model_dump_json()

    @pytest.mark.parametrize("text", ["[1]", "[T1]", "[1].<|im_end|>", "Source: [1]"])
    def test_an_answer_of_citation_marks_only_is_an_error(self, finisher: Finisher, text: str) -> None:
        """A bare [1] is never delivered: a retriable empty_answer error that is not dead-lettered."""
        env = generated(text)
        env.grounding = grounding_with(Document(id="d1", source="kb/vessk.md", score=1.0, text="The wall is 412 m."))
        with pytest.raises(EmptyAnswerError) as raised:
            finisher.finish(env)
        assert (raised.value.code, raised.value.retriable, raised.value.dead_letter) == ("empty_answer", True, False)

    def test_an_answer_with_its_marker_is_delivered(self, finisher: Finisher) -> None:
        """The fact followed by its source is an answer, cited."""
        env = generated("The wall is 412 metres long.\nSource: [1]")
        env.grounding = grounding_with(Document(id="d1", source="kb/vessk.md", score=1.0, text="The wall is 412 m."))
        response = finisher.finish(env).envelope.response
        assert response is not None
        assert response.text.startswith("The wall is 412 metres long.")
        assert [c.document_id for c in response.citations] == ["d1"]

    def test_citations_truncation_and_findings(self, finisher: Finisher) -> None:
        """Citations map to documents; invented ones go; truncation and findings are reported."""
        env = generated("Paris is the capital [1][2]. Mail me at x@evil.example. The Sei", finish_reason="length")
        env.grounding = grounding_with(Document(id="d1", source="kb/paris.md", score=1.0, text="Paris is the capital."))
        response = finisher.finish(env).envelope.response
        assert response is not None
        assert response.text == "Paris is the capital [1]. Mail me at <EMAIL>."
        assert [(c.number, c.document_id) for c in response.citations] == [(1, "d1")]
        assert response.truncated
        assert [(f.check, f.action) for f in response.findings] == [("pii.email", "redact")]
        assert {"citations_removed", "truncated_sentence", "output_redacted"} <= set(response.changes)
        final = finisher.finish(env).envelope
        assert final.completion is not None
        assert "x@evil.example" not in final.model_dump_json()

    def test_unmarked_grounded_answer_gets_inferred_citations(self, finisher: Finisher) -> None:
        """No [n] in the answer, but it is drawn from a document: the citation is added, the text unchanged."""
        env = generated("The Eiffel Tower is 330 metres tall and stands in Paris.")
        env.grounding = grounding_with(
            Document(id="d1", source="kb/eiffel.md", score=1.0, text="The Eiffel Tower in Paris is 330 metres tall.")
        )
        response = finisher.finish(env).envelope.response
        assert response is not None
        assert response.text == "The Eiffel Tower is 330 metres tall and stands in Paris."
        assert [(c.number, c.document_id, c.inferred) for c in response.citations] == [(1, "d1", True)]

    def test_stream_refusal_wins(self, finisher: Finisher) -> None:
        """A stream that was cut by a blocking check ends in the same refusal, with no turn."""
        refusal = CheckResult(text="Refused.", blocked_by="leakage.system_prompt")
        finished = finisher.finish(generated("Anything."), stream_refusal=refusal)
        assert finished.envelope.response is not None
        assert (finished.envelope.response.text, finished.envelope.response.refused) == ("Refused.", True)
        assert finished.turn is None

    def test_trail_is_not_shared_with_the_input(self, finisher: Finisher) -> None:
        """The final envelope's trail is a copy: appending to it leaves the input alone."""
        env = generated("Paris.")
        env.trail.append(TrailRecord(stage="s", replica="r", started_at=env.created_at, duration_ms=1, outcome="ok"))
        out = finisher.process(env)
        out.trail.append(out.trail[0])
        assert len(env.trail) == 1


class TestCachedAnswer:
    def test_cache_hit_becomes_the_answer_marked_cached(self, finisher: Finisher) -> None:
        """No completion, a hit: the cached text is the answer, marked with the original request id, no tokens."""
        env = make_envelope("Capital of France?")
        env.cache = CacheInfo(
            key="k", hit=CacheHit(request_id="r0", similarity=0.98, text="Paris.", model="m", tokens_in=9, tokens_out=3)
        )
        finished = finisher.finish(env)
        response = finished.envelope.response
        assert response is not None
        assert (response.text, response.cached, response.cached_from) == ("Paris.", True, "r0")
        assert response.usage is not None
        assert response.usage.total_tokens == 0
        assert finished.envelope.completion is None

    def test_cached_text_is_checked_again(self, finisher: Finisher) -> None:
        """What the output policy redacts is redacted in a cached answer too."""
        env = make_envelope("Who to mail?")
        env.cache = CacheInfo(
            key="k", hit=CacheHit(request_id="r0", similarity=0.98, text="Mail x@evil.example now.", model="m")
        )
        response = finisher.process(env).response
        assert response is not None
        assert "x@evil.example" not in response.text
