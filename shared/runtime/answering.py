"""Where a stage's outputs go and how its failures are answered: topics, error answers, dead letters, sends.

``StageRunner`` (``shared.runtime.runner``) decides what happens to a record; this base class knows
where things go: the topic of each output role, the client's reply topic (never one of the
pipeline's own), the error answer and DLQ record of a failed input, and publishing with bounded
retries. Kept apart so the delivery rules read without the addressing.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime

from shared.contracts.envelope import SCHEMA_VERSION, Envelope, ErrorInfo, TrailRecord
from shared.contracts.errors import PipelineError
from shared.contracts.public import public_view
from shared.contracts.shadow import is_shadow
from shared.contracts.stage import Output
from shared.contracts.topology import STAGES, Role, spec_for, topic_of
from shared.runtime.logging import get_logger
from shared.runtime.publishing import PUBLISH_ERRORS, Publisher, send_with_retries
from shared.runtime.records import TOPIC_NAME, ReceivedRecord, salvage_routing
from shared.runtime.settings import CoreSettings

__all__ = ["Answering", "Clock", "PoisonReplyCheck", "envelope_headers"]

#: Whether an error answer salvaged from an unreadable record may go to its ``reply_to``.
PoisonReplyCheck = Callable[[Envelope, ReceivedRecord], bool]


@dataclass(frozen=True)
class Clock:
    """When a stage started on a message, for trail records and durations."""

    started_at: datetime
    t0: float

    @classmethod
    def start(cls) -> Clock:
        """A clock started now."""
        return cls(datetime.now(UTC), time.perf_counter())

    def elapsed_ms(self) -> float:
        """Milliseconds since the start."""
        return round((time.perf_counter() - self.t0) * 1000, 3)


def _any_reply(_answer: Envelope, _record: ReceivedRecord) -> bool:
    return True


def envelope_headers(env: Envelope) -> dict[str, str]:
    """Kafka headers every envelope carries."""
    return {"request_id": env.request_id, "schema_version": str(SCHEMA_VERSION)}


class Answering:
    """A stage's addressing and answering: output topics, reply topics, error answers, DLQ records, sends."""

    def __init__(
        self,
        *,
        stage: str,
        publisher: Publisher,
        core: CoreSettings,
        replica: str,
        poison_reply_allowed: PoisonReplyCheck | None = None,
    ) -> None:
        self.stage = stage
        self.publisher = publisher
        self.core = core
        self.replica = replica
        #: Whether the reply topic salvaged from an unreadable record may be answered on (preprocess checks
        #: it against the tenant's reply topics); every non-internal topic when not given.
        self.poison_reply_allowed: PoisonReplyCheck = poison_reply_allowed or _any_reply
        #: The roles the topology lets this stage write (any, for a stage it does not declare: tests' demos).
        self._writes = frozenset(spec_for(stage).writes()) if stage in STAGES else None
        self.log = get_logger(f"llmops.{stage}")
        #: The pipeline's own topics: never a reply topic (an answer there would travel the pipeline again).
        self._internal_topics = frozenset(core.topics.all()) - {core.topics.responses, core.topics.shadow_responses}

    async def emit(self, output: Output, source: Envelope | None = None) -> None:
        """Publish one output now, outside any record's outputs (streamed chunks, side inputs' answers)."""
        topic = self.topic_for(output, source)
        env = output.envelope
        if env is None:
            headers = {"request_id": output.request_id} if output.request_id else {}
            await self.send(topic, output.message.model_dump_json().encode(), key=output.key.encode(), headers=headers)
        else:
            await self.send(topic, env.to_bytes(), key=output.key.encode(), headers=envelope_headers(env))

    def may_write(self, role: Role) -> bool:
        """Whether the topology lets this stage publish on ``role``."""
        return self._writes is None or role in self._writes

    def topic_for(self, output: Output, source: Envelope | None = None) -> str:
        """The topic of an output's role; ``REPLY``: the answer's own reply topic (``reply_topic``)."""
        if not self.may_write(output.role):
            msg = f"{self.stage} may not write {output.role.value} (shared.contracts.topology declares its outputs)"
            raise RuntimeError(msg)
        if output.role is Role.REPLY:
            env = output.envelope or source
            return self.reply_topic(env) if env is not None else self.core.topics.responses
        return topic_of(output.role, self.core.topics)

    def _trail(self, clock: Clock, outcome: str) -> TrailRecord:
        return TrailRecord(
            stage=self.stage,
            replica=self.replica,
            started_at=clock.started_at,
            duration_ms=clock.elapsed_ms(),
            outcome=outcome,
        )

    def _internal_error(self, exc: BaseException) -> PipelineError:
        """The answer to a bug: no exception text for the client (it can hold prompts, paths, other tenants' data).

        The exception's type and text go to the DLQ record (``detail``) and the log, for operators.
        """
        return PipelineError(
            "internal_error",
            f"an internal error in {self.stage}; the operators have the details",
            detail=f"{type(exc).__name__} in {self.stage}: {exc}",
        )

    def default_reply_topic(self, env: Envelope) -> str:
        """Where an answer goes when its own reply topic cannot be used: the shadow topic for shadow requests."""
        return self.core.topics.shadow_responses if is_shadow(env) else self.core.topics.responses

    def reply_topic(self, env: Envelope) -> str:
        """The topic the client waits on; a shadow request's default is the shadow topic, never the users' one.

        Never one of the pipeline's own topics (issue 23): an answer addressed to a stage's input would
        travel the pipeline again (and, failing there, be answered there again: a loop).
        """
        if env.reply_to and TOPIC_NAME.match(env.reply_to) and not self._internal_topic(env.reply_to):
            return env.reply_to
        return self.default_reply_topic(env)

    def _internal_topic(self, topic: str) -> bool:
        topics = self.core.topics
        return topic in self._internal_topics or topic.startswith(topics.requests + ".")

    def _error_info(self, exc: PipelineError) -> ErrorInfo:
        return ErrorInfo(
            code=exc.code,
            message=exc.message,
            stage=self.stage,
            retriable=exc.retriable,
            retry_after_s=exc.retry_after_s,
        )

    async def _fail(self, env: Envelope, raw: bytes, record: ReceivedRecord, exc: PipelineError, clock: Clock) -> None:
        if exc.dead_letter:
            await self.dead_letter(raw, record, exc, request_id=env.request_id)
        answer = env.model_copy(update={"kind": "final", "error": self._error_info(exc)})
        if exc.answer_on_default_topic:
            answer.reply_to = None
        answer.trail.append(self._trail(clock, exc.code))
        await self._answer(answer)
        self.log.warning(
            "message.failed",
            outcome=exc.code,
            error=exc.detail or exc.message,
            request_id=env.request_id,
            duration_ms=clock.elapsed_ms(),
            **({"shadow": True} if is_shadow(env) else {}),
        )

    async def _reject_poison(self, raw: bytes, record: ReceivedRecord, exc: PipelineError, clock: Clock) -> None:
        """DLQ the raw bytes; answer the client when its request id can still be read."""
        await self.dead_letter(raw, record, exc)
        request_id, reply_to, conversation = salvage_routing(raw)
        if request_id is not None:
            answer = Envelope(
                request_id=request_id,
                conversation_id=conversation,
                reply_to=reply_to,
                kind="final",
                error=self._error_info(exc),
            )
            if reply_to is not None and not self.poison_reply_allowed(answer, record):
                answer.reply_to = None  # a topic nobody vouched for gets nothing, not even an error
            answer.trail.append(self._trail(clock, exc.code))
            await self._answer(answer)
        self.log.warning("message.poison", error_code=exc.code, error=exc.message, offset=record.offset)

    async def _answer(self, answer: Envelope) -> None:
        """Publish an error answer to its reply topic; one the broker refuses gets it on the default topic instead.

        A reply topic that does not exist, or that this stage may not write, must not make the record fail
        for good: raising here rewinds the batch, and the record (and its batch) came back forever (issue 23).
        Only when the default topic fails too is the broker away, and the handler raises (a redelivery).
        """
        topic = self.reply_topic(answer)
        try:
            await self._publish(topic, answer)
        except PUBLISH_ERRORS:
            fallback = self.default_reply_topic(answer)
            if topic == fallback:
                raise
            self.log.warning("reply_topic.unwritable", reply_to=topic, request_id=answer.request_id)
            await self._publish(fallback, answer.model_copy(update={"reply_to": None}))

    async def dead_letter(
        self, raw: bytes, record: ReceivedRecord, exc: PipelineError, *, request_id: str | None = None
    ) -> None:
        """Publish the raw bytes to the DLQ with the error, the stage and where they came from."""
        headers = {
            "llmops-stage": self.stage,
            "llmops-error-code": exc.code,
            "llmops-error": (exc.detail or exc.message)[:1000],
            "llmops-source-topic": record.topic,
            "llmops-source-partition": str(record.partition),
            "llmops-source-offset": str(record.offset),
            "llmops-replica": self.replica,
        }
        if request_id:
            headers["request_id"] = request_id
        await self.send(self.core.topics.dlq, raw, key=record.key, headers=headers)

    async def _publish(self, topic: str, env: Envelope) -> None:
        # Answers leave the embedding out: clients do not need hundreds of floats back.
        if env.kind != "request" and not self.core.full_answers and not self._internal_topic(topic):
            env = public_view(env)  # what goes to a client: no system prompt, no dropped documents (issue 23)
        value = env.to_bytes(drop_embedding=env.kind == "final")
        await self.send(topic, value, key=env.conversation_id.encode(), headers=envelope_headers(env))

    async def send(self, topic: str, value: bytes, *, key: bytes | None, headers: dict[str, str]) -> None:
        """Publish and wait for the broker's ack, retrying transient failures a bounded number of times."""
        await send_with_retries(self.publisher, topic, value, key=key, headers=headers, log=self.log)
