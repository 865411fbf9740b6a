import asyncio
import json
from collections.abc import Awaitable, Callable, Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import structlog
from aiokafka.errors import KafkaTimeoutError
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from shared.contracts.envelope import Chunk, Envelope
from shared.contracts.errors import PipelineError
from shared.contracts.stage import Output, Outputs
from shared.contracts.topology import Role, topic_of
from shared.contracts.turn import Turn
from shared.runtime.runner import BatchLogic, ReceivedRecord, StageRunner
from tests.conftest import core_settings, make_envelope

RECORD = ReceivedRecord(topic="llmops.requests", partition=2, offset=41, key=b"conv")


class RecordingPublisher:
    """Stands in for the broker's publish in these unit tests (the e2e tests use the real broker)."""

    def __init__(self) -> None:
        self.sent: list[tuple[str, bytes, bytes | None, dict[str, str]]] = []

    async def publish(self, message: Any, topic: str = "", *, key: Any = None, headers: Any = None) -> None:
        self.sent.append((topic, message, key, headers or {}))

    def on(self, topic: str) -> list[tuple[str, bytes, bytes | None, dict[str, str]]]:
        return [s for s in self.sent if s[0] == topic]


class FailingPublisher(RecordingPublisher):
    """The broker refuses every publish to the given topics (after the runner's own retries)."""

    def __init__(self, failing: set[str]) -> None:
        super().__init__()
        self.failing = failing
        self.attempts = 0

    async def publish(self, message: Any, topic: str = "", *, key: Any = None, headers: Any = None) -> None:
        if topic in self.failing:
            self.attempts += 1
            raise KafkaTimeoutError
        await super().publish(message, topic, key=key, headers=headers)


#: Where the demo logic's outputs go (``Role.PREPROCESSED``'s topic).
OUT = topic_of(Role.PREPROCESSED, core_settings().topics)
GROUNDED = topic_of(Role.GROUNDED, core_settings().topics)
RoleOf = Role | Callable[[Envelope], Role]


def _role(role: RoleOf, env: Envelope) -> Role:
    return role if isinstance(role, Role) else role(env)


def one(
    fn: Callable[[Envelope], Awaitable[Envelope | list[Envelope] | None]], role: RoleOf = Role.PREPROCESSED
) -> BatchLogic:
    """Per-message demo logic as a stage's ``process``: its envelopes (none, one or a list) on ``role``."""

    async def process(batch: list[Envelope]) -> list[Outputs | Exception]:
        results: list[Outputs | Exception] = []
        for env in batch:
            result = await fn(env)
            outs = [] if result is None else result if isinstance(result, list) else [result]
            results.append([Output.of(_role(role, out), out) for out in outs])
        return results

    return process


def many(
    fn: Callable[[list[Envelope]], Awaitable[list[Envelope | Exception]]], role: RoleOf = Role.PREPROCESSED
) -> BatchLogic:
    """Batch demo logic as a stage's ``process``: each envelope on ``role``, each failure as it is."""

    async def process(batch: list[Envelope]) -> list[Outputs | Exception]:
        return [[Output.of(_role(role, r), r)] if isinstance(r, Envelope) else r for r in await fn(batch)]

    return process


def runner() -> tuple[StageRunner, RecordingPublisher]:
    pub = RecordingPublisher()
    return StageRunner(stage="demo", publisher=pub, core=core_settings(), replica="demo-0"), pub


async def echo(env: Envelope) -> Envelope:
    return env


class TestStageRunner:
    async def test_success_publishes_with_trail_key_and_headers(self) -> None:
        """The output goes to the routed topic, keyed by conversation, with a trail record."""
        run, pub = runner()
        env = make_envelope(conversation_id="c-7")
        outcome = await run.handle(env.to_bytes(), RECORD, process=one(echo))
        assert outcome == "ok"
        [(topic, value, key, headers)] = pub.sent
        out = Envelope.from_bytes(value)
        assert (topic, key) == (OUT, b"c-7")
        assert headers == {"request_id": env.request_id, "schema_version": "1"}
        assert [(t.stage, t.replica, t.outcome) for t in out.trail] == [("demo", "demo-0", "ok")]

    async def test_garbage_goes_to_dlq_with_raw_bytes(self) -> None:
        """Unparseable bytes are dead-lettered byte for byte, with where they came from."""
        run, pub = runner()
        outcome = await run.handle(b"\xff\x00garbage", RECORD, process=one(echo))
        assert outcome == "poison"
        [(topic, value, key, headers)] = pub.sent
        assert (topic, value, key) == ("llmops.dlq", b"\xff\x00garbage", b"conv")
        assert headers["llmops-stage"] == "demo"
        assert headers["llmops-source-offset"] == "41"
        assert headers["llmops-error-code"] == "invalid_message"

    async def test_wrong_shape_with_request_id_gets_error_answer(self) -> None:
        """When a request id and reply topic can be read, the client gets an error answer too."""
        run, pub = runner()
        raw = json.dumps({"request_id": "r-1", "reply_to": "my.replies", "request": {"messages": "no"}}).encode()
        await run.handle(raw, RECORD, process=one(echo))
        [(_, value, _, _)] = pub.on("my.replies")
        answer = Envelope.from_bytes(value)
        assert answer.request_id == "r-1"
        assert answer.error is not None
        assert answer.error.code == "invalid_message"
        assert answer.kind == "final"
        assert len(pub.on("llmops.dlq")) == 1

    async def test_oversized_message_is_poison(self) -> None:
        """Values over the size limit never reach the logic."""
        run, pub = runner()
        raw = b"x" * (run.core.kafka.max_message_bytes + 1)
        assert await run.handle(raw, RECORD, process=one(echo)) == "poison"
        assert [s[0] for s in pub.sent] == ["llmops.dlq"]

    async def test_pipeline_error_becomes_answer_and_dlq(self) -> None:
        """A typed error from the logic answers the client on its reply topic and is dead-lettered."""
        run, pub = runner()

        async def too_long(_env: Envelope) -> Envelope:
            raise PipelineError("prompt_too_long", "9000 tokens")

        env = make_envelope()
        assert await run.handle(env.to_bytes(), RECORD, process=one(too_long)) == "prompt_too_long"
        [(_, value, _, _)] = pub.on("llmops.responses")
        answer = Envelope.from_bytes(value)
        assert answer.error is not None
        assert (answer.error.code, answer.error.stage) == ("prompt_too_long", "demo")
        assert pub.on("llmops.dlq")[0][3]["request_id"] == env.request_id
        assert pub.on(OUT) == []

    async def test_unpublishable_output_becomes_error_answer_and_dlq(self, monkeypatch: pytest.MonkeyPatch) -> None:
        """After bounded retries the client gets publish_failed and the input is dead-lettered, not lost."""
        monkeypatch.setattr("shared.runtime.publishing.random.random", lambda: 0.0)  # shortest backoff
        pub = FailingPublisher({OUT})
        run = StageRunner(stage="demo", publisher=pub, core=core_settings(), replica="demo-0")
        env = make_envelope()
        assert await run.handle(env.to_bytes(), RECORD, process=one(echo)) == "publish_failed"
        assert pub.attempts == 4
        [(_, value, _, _)] = pub.on("llmops.responses")
        error = Envelope.from_bytes(value).error
        assert error is not None
        assert (error.code, error.retriable) == ("publish_failed", True)
        assert pub.on("llmops.dlq")[0][1] == env.to_bytes()

    async def test_batch_output_that_cannot_be_published_fails_alone(self, monkeypatch: pytest.MonkeyPatch) -> None:
        """In a batch, only the item whose output the broker refuses becomes publish_failed."""
        monkeypatch.setattr("shared.runtime.publishing.random.random", lambda: 0.0)
        pub = FailingPublisher({GROUNDED})
        run = StageRunner(stage="demo", publisher=pub, core=core_settings(), replica="demo-0")
        good, bad = make_envelope(conversation_id="good"), make_envelope(conversation_id="bad")

        async def echo_all(envs: list[Envelope]) -> list[Envelope | Exception]:
            return list(envs)

        items = [(good.to_bytes(), RECORD), (bad.to_bytes(), RECORD)]
        outcomes = await run.handle_batch(
            items,
            process=many(echo_all, role=lambda e: Role.GROUNDED if e.conversation_id == "bad" else Role.PREPROCESSED),
        )
        assert outcomes == ["ok", "publish_failed"]
        assert len(pub.on(OUT)) == 1
        assert len(pub.on("llmops.dlq")) == 1

    async def test_broker_away_raises_so_the_offset_is_rewound(self, monkeypatch: pytest.MonkeyPatch) -> None:
        """When not even the error answer can be published, the handler raises (NACK_ON_ERROR redelivers)."""
        monkeypatch.setattr("shared.runtime.publishing.random.random", lambda: 0.0)
        pub = FailingPublisher({OUT, "llmops.dlq", "llmops.responses"})
        run = StageRunner(stage="demo", publisher=pub, core=core_settings(), replica="demo-0")
        with pytest.raises(KafkaTimeoutError):
            await run.handle(make_envelope().to_bytes(), RECORD, process=one(echo))

    async def test_refusal_by_policy_is_answered_not_dead_lettered(self) -> None:
        """An error marked ``dead_letter = False`` (a quota refusal) answers the client and skips the DLQ."""
        run, pub = runner()

        class RefusedError(PipelineError):
            dead_letter = False

        async def over_quota(_env: Envelope) -> Envelope:
            raise RefusedError("quota_exceeded", "over 2 requests per minute", retriable=True, retry_after_s=30)

        env = make_envelope()
        assert await run.handle(env.to_bytes(), RECORD, process=one(over_quota)) == "quota_exceeded"
        [(_, value, _, _)] = pub.on("llmops.responses")
        error = Envelope.from_bytes(value).error
        assert error is not None
        assert (error.code, error.retry_after_s) == ("quota_exceeded", 30)
        assert pub.on("llmops.dlq") == []

    async def test_bug_in_logic_is_contained(self) -> None:
        """An unexpected exception becomes an internal_error answer instead of a crash."""
        run, pub = runner()

        async def broken(_env: Envelope) -> Envelope:
            raise ZeroDivisionError

        assert await run.handle(make_envelope().to_bytes(), RECORD, process=one(broken)) == ("internal_error")
        assert len(pub.on("llmops.responses")) == 1

    async def test_expired_deadline_answers_timeout(self) -> None:
        """Work past its deadline is dropped with a deadline_exceeded answer."""
        run, pub = runner()
        env = make_envelope(deadline=datetime.now(UTC) - timedelta(seconds=1))
        assert await run.handle(env.to_bytes(), RECORD, process=one(echo)) == "deadline_exceeded"
        assert pub.on(OUT) == []

    async def test_invalid_reply_topic_falls_back_to_responses(self) -> None:
        """A reply_to that is not a valid topic name is not used."""
        run, _ = runner()
        assert run.reply_topic(make_envelope(reply_to="bad topic!")) == "llmops.responses"
        assert run.reply_topic(make_envelope(reply_to="tenant.a.replies")) == "tenant.a.replies"


class TestStageRunnerResults:
    async def test_none_publishes_nothing(self) -> None:
        """Logic that returns None (a held-back stream piece) publishes nothing and still succeeds."""
        run, pub = runner()

        async def hold(_env: Envelope) -> None:
            return None

        assert await run.handle(make_envelope().to_bytes(), RECORD, process=one(hold)) == "ok"
        assert pub.sent == []

    async def test_list_is_published_in_order_with_one_trail_record_each(self) -> None:
        """Several outputs go out in the order returned, each with exactly one new trail record."""
        run, pub = runner()

        async def fan_out(env: Envelope) -> list[Envelope]:
            return [env.model_copy(update={"tenant": f"t{i}"}) for i in range(3)]

        env = make_envelope(conversation_id="c-9")
        assert await run.handle(env.to_bytes(), RECORD, process=one(fan_out)) == "ok"
        outs = [Envelope.from_bytes(value) for _, value, _, _ in pub.on(OUT)]
        assert [o.tenant for o in outs] == ["t0", "t1", "t2"]
        assert all(len(o.trail) == 1 for o in outs)
        assert {key for _, _, key, _ in pub.sent} == {b"c-9"}

    async def test_expired_chunk_is_dropped_without_answer(self) -> None:
        """A streamed piece past its deadline is dropped quietly: the final message answers the timeout."""
        run, pub = runner()
        env = Envelope(kind="chunk", chunk=Chunk(seq=0, text="Hi"), deadline=datetime.now(UTC) - timedelta(seconds=1))
        assert await run.handle(env.to_bytes(), RECORD, process=one(echo)) == "dropped"
        assert pub.sent == []


async def upper_batch(envs: list[Envelope]) -> list[Envelope | Exception]:
    """Batch logic that fails the requests whose text says so and echoes the others."""
    out: list[Envelope | Exception] = []
    for env in envs:
        if env.last_user_text == "fail":
            out.append(PipelineError("prompt_too_long", "too long"))
        elif env.last_user_text == "bug":
            out.append(ZeroDivisionError("oops"))
        else:
            out.append(env)
    return out


class SlowPublisher(RecordingPublisher):
    """Acknowledges after a delay that shrinks with each call, so concurrent sends finish out of order."""

    def __init__(self) -> None:
        super().__init__()
        self.delays = [0.03, 0.02, 0.01, 0.0, 0.0, 0.0]
        self.pending = 0

    async def publish(self, message: Any, topic: str = "", *, key: Any = None, headers: Any = None) -> None:
        self.pending += 1
        await asyncio.sleep(self.delays.pop(0) if self.delays else 0)
        self.pending -= 1
        await super().publish(message, topic, key=key, headers=headers)


def record(offset: int, key: bytes) -> ReceivedRecord:
    return ReceivedRecord(topic="llmops.requests", partition=0, offset=offset, key=key)


class TestStageRunnerBatch:
    async def test_each_item_gets_its_own_outcome(self) -> None:
        """Good items are published, a poison item is dead-lettered alone, failed items get answers and DLQ records."""
        run, pub = runner()
        good = make_envelope("hello", conversation_id="a")
        failing = make_envelope("fail", conversation_id="b")
        buggy = make_envelope("bug", conversation_id="c")
        items = [
            (good.to_bytes(), record(1, b"a")),
            (b"\xffgarbage", record(2, b"x")),
            (failing.to_bytes(), record(3, b"b")),
            (buggy.to_bytes(), record(4, b"c")),
        ]
        outcomes = await run.handle_batch(items, process=many(upper_batch))
        assert outcomes == ["ok", "poison", "prompt_too_long", "internal_error"]
        [(_, value, _, _)] = pub.on(OUT)
        assert Envelope.from_bytes(value).request_id == good.request_id
        dlq = pub.on("llmops.dlq")
        assert sorted(h["llmops-source-offset"] for _, _, _, h in dlq) == ["2", "3", "4"]
        answers = {
            Envelope.from_bytes(v).request_id: Envelope.from_bytes(v) for _, v, _, _ in pub.on("llmops.responses")
        }
        assert answers[failing.request_id].error is not None
        assert answers[failing.request_id].error.code == "prompt_too_long"  # type: ignore[union-attr]
        assert answers[buggy.request_id].error.code == "internal_error"  # type: ignore[union-attr]

    async def test_all_outputs_acknowledged_before_return(self) -> None:
        """handle_batch returns only after every publish finished, so the commit that follows covers finished work."""
        pub = SlowPublisher()
        run = StageRunner(stage="demo", publisher=pub, core=core_settings(), replica="demo-0")
        items = [
            (make_envelope(f"m{i}", conversation_id=f"c{i}").to_bytes(), record(i, f"c{i}".encode())) for i in range(4)
        ]
        await run.handle_batch(items, process=many(upper_batch))
        assert pub.pending == 0
        assert len(pub.on(OUT)) == 4

    async def test_one_conversation_stays_in_order(self) -> None:
        """Outputs with the same key leave in input order even when earlier sends are slower."""
        pub = SlowPublisher()
        run = StageRunner(stage="demo", publisher=pub, core=core_settings(), replica="demo-0")
        envs = [make_envelope(f"turn {i}", conversation_id="same") for i in range(3)]
        items = [(env.to_bytes(), record(i, b"same")) for i, env in enumerate(envs)]
        await run.handle_batch(items, process=many(upper_batch))
        assert [Envelope.from_bytes(v).last_user_text for _, v, _, _ in pub.on(OUT)] == ["turn 0", "turn 1", "turn 2"]

    async def test_batch_logic_crash_fails_each_item(self) -> None:
        """If the batch logic itself raises, every item gets an internal_error answer and a DLQ record."""
        run, pub = runner()

        async def crash(_envs: list[Envelope]) -> list[Envelope | Exception]:
            raise RuntimeError("boom")

        items = [(make_envelope(f"m{i}").to_bytes(), record(i, b"k")) for i in range(2)]
        assert await run.handle_batch(items, process=many(crash)) == ["internal_error"] * 2
        assert len(pub.on("llmops.dlq")) == 2
        assert len(pub.on("llmops.responses")) == 2

    async def test_each_records_publishes_run_in_its_own_scope(self) -> None:
        """The record scope (its trace span) is entered around that record's outputs only, error answers included."""
        run, pub = runner()
        current: list[int] = []
        seen: list[tuple[str, int | None]] = []

        @contextmanager
        def scope(rec: ReceivedRecord, started_at: datetime) -> Iterator[None]:
            assert started_at <= datetime.now(UTC)
            current.append(rec.offset)
            try:
                yield
            finally:
                current.pop()

        async def publish(message: Any, topic: str = "", *, key: Any = None, headers: Any = None) -> None:
            seen.append((topic, current[-1] if current else None))
            await RecordingPublisher.publish(pub, message, topic, key=key, headers=headers)

        pub.publish = publish  # type: ignore[method-assign]
        run.record_scope = scope
        items = [
            (make_envelope("hello", conversation_id="a").to_bytes(), record(7, b"a")),
            (make_envelope("fail", conversation_id="b").to_bytes(), record(8, b"b")),
        ]
        assert await run.handle_batch(items, process=many(upper_batch)) == ["ok", "prompt_too_long"]
        assert (OUT, 7) in seen
        assert {o for t, o in seen if t != OUT} == {8}  # the failed record's answer and DLQ record
        assert not current

    async def test_invalid_utf8_still_answers_when_the_id_is_readable(self) -> None:
        """A request with invalid UTF-8 bytes in a value is dead-lettered and its readable request id answered."""
        run, pub = runner()
        raw = b'{"request_id": "r-utf8", "messages": [{"role": "user", "content": "bad \xff\xfe"}]}'
        assert await run.handle(raw, RECORD, process=one(echo)) == "poison"
        [(_, value, _, _)] = pub.on("llmops.responses")
        assert Envelope.from_bytes(value).request_id == "r-utf8"
        assert pub.on("llmops.dlq")[0][1] == raw


class TestAnswerOnDefaultTopic:
    async def test_refused_reply_topic_is_never_written(self) -> None:
        """An error marked answer_on_default_topic is answered on llmops.responses, not on the request's reply_to."""

        class RefusedError(PipelineError):
            answer_on_default_topic = True
            dead_letter = False

        async def refuse(_env: Envelope) -> Envelope:
            raise RefusedError("reply_topic_not_allowed", "no")

        run, pub = runner()
        env = make_envelope(reply_to="other.tenant.replies")
        outcome = await run.handle(env.to_bytes(), RECORD, process=one(refuse))
        assert outcome == "reply_topic_not_allowed"
        assert pub.on("other.tenant.replies") == []
        assert pub.on("llmops.dlq") == []
        [(_, value, _, _)] = pub.on("llmops.responses")
        answer = Envelope.from_bytes(value)
        assert answer.reply_to is None
        assert answer.error is not None
        assert answer.error.code == "reply_topic_not_allowed"

    async def test_shadow_refusal_goes_to_the_shadow_topic(self) -> None:
        """A shadow request's refusal on the default topic lands on the shadow topic, never the users' one."""

        class RefusedError(PipelineError):
            answer_on_default_topic = True
            dead_letter = False

        async def refuse(_env: Envelope) -> Envelope:
            raise RefusedError("reply_topic_not_allowed", "no")

        run, pub = runner()
        env = make_envelope(reply_to="llmops.responses")
        env.require_request().metadata["shadow"] = "replay"
        await run.handle(env.to_bytes(), RECORD, process=one(refuse))
        assert pub.on("llmops.responses") == []
        assert len(pub.on("llmops.responses.shadow")) == 1


class TestShadowTraffic:
    async def test_shadow_default_reply_topic_is_the_shadow_topic(self) -> None:
        """Without reply_to a shadow request is answered on the shadow topic, a live one on llmops.responses."""
        run, _ = runner()
        shadow = make_envelope()
        shadow.require_request().metadata["shadow"] = "1"
        assert run.reply_topic(shadow) == "llmops.responses.shadow"
        assert run.reply_topic(make_envelope()) == "llmops.responses"

    async def test_shadow_is_in_every_log_line_of_the_message(self) -> None:
        """The canonical line of a shadow message carries shadow=True; a live one's has no shadow key."""
        run, _ = runner()
        shadow = make_envelope()
        shadow.require_request().metadata["shadow"] = "replay"
        with structlog.testing.capture_logs(processors=[structlog.contextvars.merge_contextvars]) as logs:
            await run.handle(shadow.to_bytes(), RECORD, process=one(echo))
            await run.handle(make_envelope().to_bytes(), RECORD, process=one(echo))
        done = [line for line in logs if line["event"] == "message.done"]
        assert [line.get("shadow") for line in done] == [True, None]


class TestHopTiming:
    async def test_canonical_line_has_queue_and_publish_time(self) -> None:
        """The hop into the stage (record send time → handler start) and the publish time are logged."""
        run, _ = runner()
        sent = datetime.now(UTC) - timedelta(milliseconds=40)
        record = ReceivedRecord(
            topic="llmops.requests", partition=0, offset=1, key=b"c", timestamp_ms=int(sent.timestamp() * 1000)
        )
        with structlog.testing.capture_logs() as logs:
            await run.handle(make_envelope().to_bytes(), record, process=one(echo))
            await run.handle(make_envelope().to_bytes(), RECORD, process=one(echo))
        timed, untimed = [line for line in logs if line["event"] == "message.done"]
        assert 40 <= timed["queued_ms"] < 5000
        assert timed["publish_ms"] >= 0
        assert untimed["queued_ms"] is None  # no timestamp on the record: nothing invented

    def test_timestamp_is_read_from_the_consumer_record(self) -> None:
        """aiokafka's ConsumerRecord.timestamp (ms) is kept; a missing one stays None."""

        class Raw:
            topic, partition, offset, key, timestamp = "t", 1, 2, None, 1_700_000_000_000

        assert ReceivedRecord.from_consumer_record(Raw()).timestamp_ms == 1_700_000_000_000
        assert ReceivedRecord.from_consumer_record(object()).timestamp_ms is None


class TestHostileRecords:
    """Issue 23: no record stalls a partition, no answer goes where it must not, none says too much."""

    async def test_any_parse_exception_is_poison(self) -> None:
        """A parser raising something unexpected (RecursionError) dead-letters the record once; nothing raises."""

        def explode(_raw: bytes, _record: ReceivedRecord) -> Envelope:
            raise RecursionError

        pub = RecordingPublisher()
        run = StageRunner(stage="demo", publisher=pub, core=core_settings(), replica="demo-0", parse=explode)
        raw = json.dumps({"request_id": "r1"}).encode()
        assert await run.handle(raw, RECORD, process=one(echo)) == "poison"
        assert len(pub.on("llmops.dlq")) == 1
        assert len(pub.on("llmops.responses")) == 1

    async def test_deeply_nested_record_in_a_batch_is_dead_lettered_once(self) -> None:
        """A record nested 100,000 deep is one DLQ record; the batch's good record is answered; nothing raises."""
        run, pub = runner()
        deep = b'{"request_id": "r1", "x": ' + b"[" * 100_000 + b"]" * 100_000 + b"}"

        async def echo_all(envs: list[Envelope]) -> list[Envelope | Exception]:
            return list(envs)

        good = make_envelope()
        outcomes = await run.handle_batch([(deep, RECORD), (good.to_bytes(), RECORD)], process=many(echo_all))
        assert outcomes == ["poison", "ok"]
        assert len(pub.on("llmops.dlq")) == 1
        assert len(pub.on(OUT)) == 1

    @pytest.mark.parametrize(
        "topic",
        [
            "llmops.requests",
            "llmops.requests.acme",
            "llmops.preprocessed",
            "llmops.generated",
            "llmops.dlq",
            "llmops.usage",
            "llmops.turns",
        ],
    )
    async def test_reply_topic_is_never_internal(self, topic: str) -> None:
        """An answer addressed to a stage's input (or any pipeline topic) goes to the responses topic instead."""
        run, pub = runner()
        assert run.reply_topic(make_envelope(reply_to=topic)) == "llmops.responses"

        async def fail(_env: Envelope) -> Envelope:
            raise PipelineError("prompt_too_long", "no")

        await run.handle(make_envelope(reply_to=topic).to_bytes(), RECORD, process=one(fail))
        assert [sent for sent in pub.on(topic) if "llmops-error-code" not in sent[3]] == []  # DLQ records only
        assert len(pub.on("llmops.responses")) == 1

    async def test_unwritable_reply_topic_answers_on_the_default(self, monkeypatch: pytest.MonkeyPatch) -> None:
        """A reply topic the broker refuses (no ACL, missing) gets no retry loop: the answer goes to the default."""
        monkeypatch.setattr("shared.runtime.publishing.random.random", lambda: 0.0)
        pub = FailingPublisher({"tenant.gone"})
        run = StageRunner(stage="demo", publisher=pub, core=core_settings(), replica="demo-0")
        env = make_envelope(reply_to="tenant.gone")
        outcome = await run.handle(env.to_bytes(), RECORD, process=one(echo, role=Role.REPLY))
        assert outcome == "publish_failed"
        [(_, value, _, _)] = pub.on("llmops.responses")
        answer = Envelope.from_bytes(value)
        assert answer.error is not None
        assert answer.error.code == "publish_failed"
        assert len(pub.on("llmops.dlq")) == 1

    async def test_unwritable_salvaged_reply_topic_does_not_stall(self, monkeypatch: pytest.MonkeyPatch) -> None:
        """On the poison path too: the salvaged reply topic failing sends the answer to the default topic."""
        monkeypatch.setattr("shared.runtime.publishing.random.random", lambda: 0.0)
        pub = FailingPublisher({"tenant.gone"})
        run = StageRunner(stage="demo", publisher=pub, core=core_settings(), replica="demo-0")
        raw = json.dumps({"request_id": "r1", "reply_to": "tenant.gone", "request": "no"}).encode()
        assert await run.handle(raw, RECORD, process=one(echo)) == "poison"
        assert len(pub.on("llmops.responses")) == 1

    async def test_salvaged_reply_topic_is_checked(self) -> None:
        """A salvaged reply topic the stage's check refuses is not answered on."""
        pub = RecordingPublisher()
        run = StageRunner(
            stage="demo",
            publisher=pub,
            core=core_settings(),
            replica="demo-0",
            poison_reply_allowed=lambda answer, _record: answer.reply_to == "llmops.responses.mine",
        )
        for reply_to in ("llmops.responses.other", "llmops.responses.mine"):
            raw = json.dumps({"request_id": "r1", "reply_to": reply_to, "request": "no"}).encode()
            await run.handle(raw, RECORD, process=one(echo))
        assert pub.on("llmops.responses.other") == []
        assert len(pub.on("llmops.responses")) == 1
        assert len(pub.on("llmops.responses.mine")) == 1

    async def test_internal_error_answer_has_no_exception_text(self) -> None:
        """The client learns that and where it failed; the exception's text goes to the DLQ record only."""
        run, pub = runner()

        async def broken(_env: Envelope) -> Envelope:
            msg = "secret path /srv/tenant-b/prompt.txt"
            raise RuntimeError(msg)

        await run.handle(make_envelope().to_bytes(), RECORD, process=one(broken))
        [(_, value, _, _)] = pub.on("llmops.responses")
        error = Envelope.from_bytes(value).error
        assert error is not None
        assert error.code == "internal_error"
        assert "secret" not in error.message
        assert "RuntimeError" not in error.message
        [(_, _, _, headers)] = pub.on("llmops.dlq")
        assert "secret path" in headers["llmops-error"]


_HOSTILE_TOPICS = st.sampled_from(
    ["llmops.preprocessed", "llmops.requests", "llmops.requests.acme", "llmops.dlq", "llmops.responses.acme", "x y"]
)


class TestRunnerProperties:
    """Property test (issue 23): a record never raises out of the runner, nor is answered on a pipeline topic."""

    @settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
    @given(
        st.binary(max_size=500)
        | st.fixed_dictionaries(
            {},
            optional={
                "request_id": st.text(max_size=140) | st.integers(),
                "reply_to": _HOSTILE_TOPICS | st.text(max_size=20),
                "conversation_id": st.text(max_size=10),
                "request": st.just({"messages": [{"role": "user", "content": "hi"}]}) | st.text(max_size=5),
                "kind": st.sampled_from(["request", "chunk", "final", "x"]),
            },
        ).map(lambda d: json.dumps(d).encode())
    )
    async def test_any_record(self, raw: bytes) -> None:
        """Outcome ok or an error code; outputs only on the route, the DLQ, or a reply topic outside the pipeline."""
        run, pub = runner()
        outcome = await run.handle(raw, RECORD, process=one(echo))
        assert outcome
        internal = set(core_settings().topics.all()) - {
            OUT,
            "llmops.responses",
            "llmops.responses.shadow",
            "llmops.dlq",
        }
        assert not {topic for topic, *_ in pub.sent} & internal
        assert not any(topic.startswith("llmops.requests.") for topic, *_ in pub.sent)


TURN = Turn(request_id="r-1", conversation_id="c-1", tenant="default", user="hi", assistant="hello")


def failing_postprocess(monkeypatch: pytest.MonkeyPatch, *topics: str) -> tuple[FailingPublisher, StageRunner]:
    """A postprocess runner whose broker refuses ``topics`` (retries without waiting)."""
    monkeypatch.setattr("shared.runtime.publishing.random.random", lambda: 0.0)
    pub = FailingPublisher(set(topics))
    return pub, StageRunner(stage="postprocess", publisher=pub, core=core_settings(), replica="p-0")


def answering(
    *, before: Sequence[Output] = (), after: Sequence[Output] = ()
) -> Callable[[list[Envelope]], Awaitable[list[Outputs | Exception]]]:
    """Logic that answers its one input as final, with ``before`` published ahead of the answer, ``after`` behind."""

    async def answer(batch: list[Envelope]) -> list[Outputs | Exception]:
        final = batch[0].model_copy(update={"kind": "final"})
        return [[*before, Output.of(Role.REPLY, final), *after]]

    return answer


class TestStageRunnerOutputs:
    """Outputs are (role, message) pairs: the topology gives the topic, side records carry their own key."""

    async def test_side_record_goes_to_its_role_with_its_key(self) -> None:
        """A turn is published as its JSON on the turns topic, keyed as given, with the request id header."""
        pub = RecordingPublisher()
        run = StageRunner(stage="postprocess", publisher=pub, core=core_settings(), replica="p-0")
        turn = Turn(request_id="r-1", conversation_id="c-1", tenant="default", user="hi", assistant="hello")

        async def answer(batch: list[Envelope]) -> list[Outputs | Exception]:
            final = batch[0].model_copy(update={"kind": "final"})
            return [[Output.record(Role.TURNS, turn, key="c-1", request_id="r-1"), Output.of(Role.REPLY, final)]]

        assert await run.handle(make_envelope().to_bytes(), RECORD, process=answer) == "ok"
        assert [topic for topic, *_ in pub.sent] == ["llmops.turns", "llmops.responses"]
        [(_, value, key, headers)] = pub.on("llmops.turns")
        assert (Turn.model_validate_json(value), key, headers) == (turn, b"c-1", {"request_id": "r-1"})

    async def test_a_role_the_topology_does_not_give_the_stage_is_a_bug(self) -> None:
        """Inference may not write the turns topic: the request gets internal_error, nothing reaches the topic."""
        pub = RecordingPublisher()
        run = StageRunner(stage="inference", publisher=pub, core=core_settings(), replica="i-0")
        turn = Turn(request_id="r-1", conversation_id="c-1", tenant="default", user="hi", assistant="hello")

        async def stray(_batch: list[Envelope]) -> list[Outputs | Exception]:
            return [[Output.record(Role.TURNS, turn, key="c-1")]]

        assert await run.handle(make_envelope().to_bytes(), RECORD, process=stray) == "internal_error"
        assert pub.on("llmops.turns") == []
        assert len(pub.on("llmops.dlq")) == 1
        with pytest.raises(RuntimeError, match="inference may not write turns"):
            await run.emit(Output.record(Role.TURNS, turn, key="c-1"))

    async def test_failure_before_the_answer_answers_with_an_error(self, monkeypatch: pytest.MonkeyPatch) -> None:
        """A turn the broker refuses fails the request: publish_failed answer and DLQ record, no answer text."""
        pub, run = failing_postprocess(monkeypatch, "llmops.turns")
        answer = answering(before=[Output.record(Role.TURNS, TURN, key="c-1")])
        assert await run.handle(make_envelope().to_bytes(), RECORD, process=answer) == "publish_failed"
        [(_, value, _, _)] = pub.on("llmops.responses")
        error = Envelope.from_bytes(value).error
        assert error is not None
        assert error.code == "publish_failed"
        assert len(pub.on("llmops.dlq")) == 1

    async def test_an_answer_that_fails_takes_its_turn_back(self, monkeypatch: pytest.MonkeyPatch) -> None:
        """Issue 23: the turn went out, the answer could not: the turn is retracted before the error answer, so
        memory does not keep a turn the client never saw."""
        pub, run = failing_postprocess(monkeypatch, "acme.replies")
        answer = answering(before=[Output.record(Role.TURNS, TURN, key="c-1", undo=TURN.retraction())])
        request = make_envelope(reply_to="acme.replies")
        assert await run.handle(request.to_bytes(), RECORD, process=answer) == "publish_failed"
        turns = [Turn.model_validate_json(value) for _, value, _, _ in pub.on("llmops.turns")]
        assert [t.retracted for t in turns] == [False, True]
        assert pub.on("llmops.turns")[1][2:] == (b"c-1", {})
        [(_, value, _, _)] = pub.on("llmops.responses")  # the error answer, on the default topic
        error = Envelope.from_bytes(value).error
        assert error is not None
        assert error.code == "publish_failed"

    async def test_failure_after_the_answer_redelivers_instead_of_answering_twice(
        self, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """Usage refused after the answer went out: the handler raises (redelivery), no error answer follows."""
        pub, run = failing_postprocess(monkeypatch, "llmops.usage")
        answer = answering(after=[Output.record(Role.USAGE, TURN, key="default")])
        with pytest.raises(KafkaTimeoutError):
            await run.handle(make_envelope().to_bytes(), RECORD, process=answer)
        [(_, value, _, _)] = pub.on("llmops.responses")
        assert Envelope.from_bytes(value).error is None  # the answer, once; no error answer after it
        assert pub.on("llmops.dlq") == []

    async def test_emit_publishes_a_chunk_at_once_without_a_trail(self) -> None:
        """A streamed chunk emitted mid-process goes out on its role's topic, keyed by its conversation."""
        pub = RecordingPublisher()
        run = StageRunner(stage="inference", publisher=pub, core=core_settings(), replica="i-0")
        chunk = make_envelope(conversation_id="c-3").model_copy(
            update={"kind": "chunk", "chunk": Chunk(seq=0, text="Hi")}
        )
        await run.emit(Output.of(Role.GENERATED, chunk))
        [(topic, value, key, headers)] = pub.sent
        assert (topic, key, headers["request_id"]) == ("llmops.generated", b"c-3", chunk.request_id)
        assert Envelope.from_bytes(value).trail == []
