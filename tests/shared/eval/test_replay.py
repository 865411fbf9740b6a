"""Tests for replay: the candidate, the time window, which recorded requests are replayed, shadow copies, pairing."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import pytest

from shared.contracts.envelope import Completion, Envelope, Response, SamplingParams, TrailRecord
from shared.contracts.shadow import is_shadow
from shared.eval.replay import (
    Candidate,
    Replayer,
    ShadowResult,
    TimeWindow,
    pair_answers,
    parse_candidate,
    pipeline_latency_ms,
    select_requests,
    shadow_request,
)
from tests.conftest import make_envelope

NOW = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
SHADOW_TOPIC = "llmops.responses.shadow"


def answer_to(request: Envelope, text: str, *, refused: bool = False, ms: float = 100.0, tokens: int = 5) -> Envelope:
    """A final answer to ``request`` whose last stage finished ``ms`` after the request was made."""
    return request.model_copy(
        update={
            "kind": "final",
            "response": Response(text=text, refused=refused),
            "completion": Completion(text=text, model="m", tokens_in=10, tokens_out=tokens),
            "trail": [
                TrailRecord(
                    stage="postprocess",
                    replica="p",
                    started_at=request.created_at + timedelta(milliseconds=ms - 2),
                    duration_ms=2.0,
                    outcome="ok",
                )
            ],
        }
    )


class TestParseCandidate:
    def test_all_three_parts(self) -> None:
        """model, template and policy are read, spaces trimmed; the label keeps a fixed order."""
        candidate = parse_candidate(" policy=clinic , model=gemma-3-270m,template=concise@1")
        assert candidate == Candidate(model="gemma-3-270m", template="concise@1", policy="clinic")
        assert candidate.label == "model=gemma-3-270m,template=concise@1,policy=clinic"

    def test_one_part(self) -> None:
        """Parts not given keep what the original request had."""
        assert parse_candidate("template=concise@1") == Candidate(template="concise@1")

    @pytest.mark.parametrize(
        ("text", "message"),
        [
            ("", "names nothing"),
            ("model", "not key=value"),
            ("model=", "not key=value"),
            ("temperature=0.5", "unknown candidate key"),
            ("model=a,model=b", "given twice"),
        ],
    )
    def test_errors(self, text: str, message: str) -> None:
        """Empty, malformed, unknown or repeated parts are refused with a clear message."""
        with pytest.raises(ValueError, match=message):
            parse_candidate(text)


class TestTimeWindow:
    def test_ages_and_iso_times(self) -> None:
        """An age counts back from now; an ISO time without a zone is UTC; milliseconds for Kafka."""
        window = TimeWindow.parse("2h", "2026-03-01T11:30", now=NOW)
        assert window.since == NOW - timedelta(hours=2)
        assert window.until == datetime(2026, 3, 1, 11, 30, tzinfo=UTC)
        assert window.since_ms == int((NOW - timedelta(hours=2)).timestamp() * 1000)
        assert TimeWindow.parse("30m", now=NOW).until_ms is None

    def test_until_must_be_after_since(self) -> None:
        """An empty or reversed window is an error."""
        with pytest.raises(ValueError, match="not after"):
            TimeWindow.parse("1h", "2h", now=NOW)

    def test_bad_time(self) -> None:
        """A time that is neither ISO nor an age is an error."""
        with pytest.raises(ValueError, match="ISO time"):
            TimeWindow.parse("yesterday", now=NOW)


class TestSelectRequests:
    def test_live_requests_of_the_tenant_each_once(self) -> None:
        """Shadow and replayed requests, answers, other tenants, duplicates and garbage are left out, counted."""
        live = make_envelope(tenant="acme")
        other = make_envelope(tenant="globex")
        shadow = make_envelope(tenant="acme")
        shadow.require_request().metadata["shadow"] = "eval:x"
        replayed = make_envelope(tenant="acme")
        replayed.require_request().metadata["replay_of"] = "r0"
        final = answer_to(make_envelope(tenant="acme"), "hi")
        selection = select_requests([live, other, shadow, replayed, final, None, live], tenant="acme")
        assert [e.request_id for e in selection.requests] == [live.request_id]
        assert selection.skipped == {
            "other_tenant": 1,
            "shadow": 2,
            "not_a_request": 1,
            "unreadable": 1,
            "duplicate": 1,
        }

    def test_allowed_and_limit(self) -> None:
        """Requests the candidate may not serve are skipped as not_allowed; the limit keeps the oldest."""
        envs = [make_envelope(tenant=t) for t in ("a", "b", "a", "a")]
        selection = select_requests(envs, allowed=lambda e: e.tenant == "a", limit=2)
        assert selection.requests == [envs[0], envs[2]]
        assert selection.skipped == {"not_allowed": 1, "over_limit": 1}


class TestShadowRequest:
    def test_marked_with_its_own_id_and_conversation(self) -> None:
        """New request id and conversation, shadow and replay_of metadata, uncached, on the shadow topic."""
        original = make_envelope(tenant="acme", conversation_id="conv-1", reply_to="llmops.responses.acme")
        request = original.require_request()
        request.metadata["template"] = "default@1"
        request.params = SamplingParams(max_tokens=7, seed=3)
        request.stream = True
        shadow = shadow_request(original, Candidate(), reply_to=SHADOW_TOPIC, timeout=60, now=NOW)
        assert shadow.request_id != original.request_id
        assert shadow.conversation_id not in {"conv-1", original.request_id}
        assert shadow.conversation_id.startswith("replay-")
        assert (shadow.tenant, shadow.reply_to, shadow.deadline) == ("acme", SHADOW_TOPIC, NOW + timedelta(seconds=60))
        assert is_shadow(shadow)
        metadata = shadow.require_request().metadata
        assert metadata == {
            "template": "default@1",
            "shadow": "replay",
            "replay_of": original.request_id,
            "cache": "off",
        }
        assert shadow.require_request().params == request.params
        assert shadow.require_request().messages == request.messages
        assert not shadow.require_request().stream
        assert original.require_request().metadata == {"template": "default@1"}  # the original is left alone

    def test_candidate_overrides(self) -> None:
        """The candidate's model, template and policy replace the original's."""
        original = make_envelope()
        original.require_request().model = "qwen"
        original.require_request().metadata["template"] = "default@1"
        candidate = Candidate(model="gemma-3-270m", template="concise@1", policy="clinic")
        shadow = shadow_request(original, candidate, reply_to=SHADOW_TOPIC, timeout=60)
        assert shadow.require_request().model == "gemma-3-270m"
        assert shadow.require_request().metadata["template"] == "concise@1"
        assert shadow.require_request().metadata["policy"] == "clinic"
        assert (
            shadow_request(original, Candidate(policy="x"), reply_to=SHADOW_TOPIC, timeout=1).require_request().model
            == "qwen"
        )


class FakeClient:
    """Answers every shadow request at once (or never, for the texts in ``silent``)."""

    reply_to = SHADOW_TOPIC

    def __init__(self, silent: frozenset[str] = frozenset()) -> None:
        self.sent: list[Envelope] = []
        self.forgotten: list[str] = []
        self.silent = silent

    async def send(self, env: Envelope) -> asyncio.Future[Envelope]:
        self.sent.append(env)
        fut: asyncio.Future[Envelope] = asyncio.get_running_loop().create_future()
        if env.last_user_text not in self.silent:
            fut.set_result(answer_to(env, "shadow " + env.last_user_text))
        return fut

    def forget(self, request_id: str) -> None:
        self.forgotten.append(request_id)


class TestReplayer:
    async def test_replays_in_order_and_times_out_alone(self) -> None:
        """Every original is sent as a shadow copy; one unanswered in time is a result without answer."""
        client = FakeClient(silent=frozenset({"two"}))
        originals = [make_envelope(t) for t in ("one", "two", "three")]
        seen: list[ShadowResult] = []
        results = await Replayer(client, timeout=0.2).replay(originals, Candidate(model="m"), on_result=seen.append)  # type: ignore[arg-type]
        assert [r.original_id for r in results] == [e.request_id for e in originals]
        assert [r.answer is not None for r in results] == [True, False, True]
        assert results[1].failure == "client_timeout"
        assert client.forgotten == [results[1].request.request_id]
        assert all(is_shadow(e) and e.require_request().model == "m" for e in client.sent)
        assert len(seen) == 3


class TestPairing:
    def test_pairs_by_request_id(self) -> None:
        """Each original meets its users' answer (by request id) and its shadow answer; either may be missing."""
        first, second = make_envelope("one"), make_envelope("two")
        shadow_first = shadow_request(first, Candidate(model="m"), reply_to=SHADOW_TOPIC, timeout=1)
        shadow_second = shadow_request(second, Candidate(model="m"), reply_to=SHADOW_TOPIC, timeout=1)
        shadows = [
            ShadowResult(first.request_id, shadow_first, answer_to(shadow_first, "Paris", ms=300, tokens=8)),
            ShadowResult(second.request_id, shadow_second, None, "client_timeout"),
        ]
        answers = {first.request_id: answer_to(first, "Paris.", ms=100, tokens=5)}
        first_pair, second_pair = pair_answers([first, second], shadows, answers)
        assert (first_pair.request_id, first_pair.shadow_request_id) == (first.request_id, shadow_first.request_id)
        assert first_pair.original is not None
        assert first_pair.shadow is not None
        assert (first_pair.original.text, first_pair.shadow.text) == ("Paris.", "Paris")
        assert first_pair.original.latency_ms == pytest.approx(100)
        assert first_pair.shadow.latency_ms == pytest.approx(300)
        assert (second_pair.original, second_pair.shadow, second_pair.shadow_failure) == (None, None, "client_timeout")

    def test_latency_from_the_trail(self) -> None:
        """Pipeline latency runs from the request's creation to the end of the latest trail record; 0 without one."""
        request = make_envelope()
        assert pipeline_latency_ms(answer_to(request, "x", ms=250)) == pytest.approx(250)
        assert pipeline_latency_ms(request) == 0.0
