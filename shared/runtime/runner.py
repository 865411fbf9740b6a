"""The one place where a stage's delivery semantics live (DESIGN.md §3).

For every input record ``StageRunner.handle``: parses it (poison → DLQ + error answer; a request
refused while it is read, ``RefusedRequestError``, is answered from its envelope),
drops expired work, runs the stage logic (``Stage.process``, a batch of one), appends the trail
record and publishes the outputs, all before the handler returns, so that FastStream commits the
offset only after the outputs are acknowledged by the broker (and, should the handler raise because
nothing can be published, rewinds it: ``AckPolicy.NACK_ON_ERROR``).

The logic returns each input's outputs as (role, message) pairs (``shared.contracts.stage.Output``):
none (e.g. a streamed chunk held back until a sentence ends), one, or several, published in order
on the topics the topology gives their roles (e.g. the checked chunks of a stream, the turn, the
final answer, then its usage record).
"""

from __future__ import annotations

import asyncio
import functools
import time
from collections.abc import Awaitable, Callable, Sequence
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import structlog

from shared.contracts.envelope import SCHEMA_VERSION, Envelope, ErrorInfo, TrailRecord
from shared.contracts.errors import PipelineError, PoisonMessageError, RefusedRequestError
from shared.contracts.public import public_view
from shared.contracts.shadow import is_shadow
from shared.contracts.stage import Output, Outputs
from shared.contracts.topology import STAGES, Role, spec_for, topic_of
from shared.runtime.logging import get_logger
from shared.runtime.publishing import PUBLISH_ERRORS, Publisher, publish_failed, send_with_retries
from shared.runtime.records import TOPIC_NAME, ReceivedRecord, parse_envelope, salvage_routing
from shared.runtime.settings import CoreSettings

__all__ = [
    "BatchLogic",
    "PoisonReplyCheck",
    "Publisher",
    "ReceivedRecord",
    "RecordScope",
    "StageRunner",
    "envelope_headers",
    "parse_envelope",
]

#: A stage's logic (``Stage.process``): one result per input, in order; a failed item is its exception.
BatchLogic = Callable[[list[Envelope]], Awaitable[list[Outputs | Exception]]]
#: Called with every envelope output before it is published (the service counts verdicts, tokens).
ObserveFn = Callable[[Envelope], None]
ParseFn = Callable[[bytes, ReceivedRecord], Envelope]
#: A context entered around one batch record's publishing, given the record and the batch's start.
RecordScope = Callable[[ReceivedRecord, datetime], AbstractContextManager[None]]
#: Whether an error answer salvaged from an unreadable record may go to its ``reply_to``.
PoisonReplyCheck = Callable[[Envelope, ReceivedRecord], bool]


@dataclass(frozen=True)
class _Clock:
    """When a stage started on a message, for trail records and durations."""

    started_at: datetime
    t0: float

    @classmethod
    def start(cls) -> _Clock:
        return cls(datetime.now(UTC), time.perf_counter())

    def elapsed_ms(self) -> float:
        return round((time.perf_counter() - self.t0) * 1000, 3)


def _any_reply(_answer: Envelope, _record: ReceivedRecord) -> bool:
    return True


def _no_scope(_record: ReceivedRecord, _started_at: datetime) -> AbstractContextManager[None]:
    return nullcontext()


def envelope_headers(env: Envelope) -> dict[str, str]:
    """Kafka headers every envelope carries."""
    return {"request_id": env.request_id, "schema_version": str(SCHEMA_VERSION)}


def _check_deadline(env: Envelope) -> None:
    if env.deadline is not None and env.deadline < datetime.now(UTC):
        raise PipelineError("deadline_exceeded", f"the request's deadline {env.deadline.isoformat()} passed")


_LOG_CONTEXT_KEYS = ("request_id", "conversation_id", "tenant", "shadow")


def _log_context(env: Envelope) -> dict[str, Any]:
    """What every log line about a message carries; ``shadow=True`` marks shadow traffic (absent for live)."""
    context: dict[str, Any] = {
        "request_id": env.request_id,
        "conversation_id": env.conversation_id,
        "tenant": env.tenant,
    }
    if is_shadow(env):
        context["shadow"] = True
    return context


async def _in_order(jobs: list[tuple[int, Callable[[], Awaitable[str | None]]]], outcomes: list[str]) -> None:
    """Run one conversation's jobs in order; a job returning an outcome replaces the item's."""
    for index, job in jobs:
        outcome = await job()
        if outcome is not None:
            outcomes[index] = outcome


class StageRunner:
    """Runs one stage's logic on raw Kafka records with the pipeline's delivery rules.

    Example:
        >>> runner = StageRunner(stage="preprocess", publisher=broker, core=CoreSettings(), replica="r1")
        >>> await runner.handle(raw_bytes, record, process=stage.process)

    """

    def __init__(
        self,
        *,
        stage: str,
        publisher: Publisher,
        core: CoreSettings,
        replica: str,
        parse: ParseFn = parse_envelope,
        record_scope: RecordScope | None = None,
        poison_reply_allowed: PoisonReplyCheck | None = None,
        observe: ObserveFn | None = None,
    ) -> None:
        self.stage = stage
        self.publisher = publisher
        self.core = core
        self.replica = replica
        self.parse = parse
        #: Entered around each batch record's publishing (its trace span); nothing when not given.
        self.record_scope: RecordScope = record_scope or _no_scope
        #: Whether the reply topic salvaged from an unreadable record may be answered on (preprocess checks
        #: it against the tenant's reply topics); every non-internal topic when not given.
        self.poison_reply_allowed: PoisonReplyCheck = poison_reply_allowed or _any_reply
        #: Called with each envelope output before it is published (metrics); nothing when not given.
        self.observe = observe
        #: The roles the topology lets this stage write (any, for a stage it does not declare: tests' demos).
        self._writes = frozenset(spec_for(stage).writes()) if stage in STAGES else None
        self.log = get_logger(f"llmops.{stage}")
        #: The pipeline's own topics: never a reply topic (an answer there would travel the pipeline again).
        self._internal_topics = frozenset(core.topics.all()) - {core.topics.responses, core.topics.shadow_responses}

    async def handle(self, raw: bytes, record: ReceivedRecord, *, process: BatchLogic) -> str:
        """Handle one record (a batch of one); returns the outcome (``ok``, an error code, or ``poison``)."""
        clock = _Clock.start()
        structlog.contextvars.bind_contextvars(stage=self.stage)
        try:
            env = self._parse(raw, record)
        except RefusedRequestError as exc:
            await self._fail(exc.envelope, raw, record, exc, clock)
            return exc.code
        except PipelineError as exc:
            await self._reject_poison(raw, record, exc, clock)
            return "poison"

        # Bound for every line logged about this message, the canonical one included (DESIGN.md §7).
        structlog.contextvars.bind_contextvars(**_log_context(env))
        try:
            try:
                outputs = await self._run(env, process)
            except PipelineError as exc:
                if env.kind == "chunk" and exc.code == "deadline_exceeded":
                    # One timeout answer per request, from its final message; expired pieces are dropped.
                    self.log.info("message.dropped", outcome=exc.code)
                    return "dropped"
                await self._fail(env, raw, record, exc, clock)
                return exc.code
            return await self._deliver(outputs, clock, (env, raw, record), log_context=False) or "ok"
        finally:
            structlog.contextvars.unbind_contextvars(*_LOG_CONTEXT_KEYS)

    async def handle_batch(self, items: Sequence[tuple[bytes, ReceivedRecord]], *, process: BatchLogic) -> list[str]:
        """Handle records fetched together; returns one outcome per record, in order.

        The logic sees every readable, unexpired envelope at once (so it can batch, e.g. embeddings).
        Every output (result, DLQ record, error answer) is acknowledged before this returns, so the
        offset commit that follows covers only finished work; a poison item is dead-lettered alone.
        Outputs of one conversation are published in input order, conversations concurrently.
        """
        clock = _Clock.start()
        structlog.contextvars.bind_contextvars(stage=self.stage)
        outcomes = ["ok"] * len(items)
        jobs: list[Callable[[], Awaitable[str | None]] | None] = [None] * len(items)
        ready: list[tuple[int, Envelope]] = []
        for i, (raw, record) in enumerate(items):
            try:
                env = self._parse(raw, record)
            except RefusedRequestError as exc:
                outcomes[i] = exc.code
                jobs[i] = functools.partial(self._fail, exc.envelope, raw, record, exc, clock)
                continue
            except PipelineError as exc:
                outcomes[i] = "poison"
                jobs[i] = functools.partial(self._reject_poison, raw, record, exc, clock)
                continue
            try:
                _check_deadline(env)
            except PipelineError as exc:
                outcomes[i] = exc.code
                jobs[i] = functools.partial(self._fail, env, raw, record, exc, clock)
            else:
                ready.append((i, env))
        results = await self._run_batch([env for _, env in ready], process)
        for (i, env), result in zip(ready, results, strict=True):
            raw, record = items[i]
            if isinstance(result, list):
                jobs[i] = functools.partial(self._deliver, result, clock, (env, raw, record))
            else:
                error = self._as_pipeline_error(result)
                outcomes[i] = error.code
                jobs[i] = functools.partial(self._fail, env, raw, record, error, clock)
        by_key: dict[bytes | None, list[tuple[int, Callable[[], Awaitable[str | None]]]]] = {}
        for index, ((_, record), job) in enumerate(zip(items, jobs, strict=True)):
            if job is not None:
                by_key.setdefault(record.key, []).append((index, self._in_record_scope(record, clock, job)))
        await asyncio.gather(*(_in_order(group, outcomes) for group in by_key.values()))
        self.log.info(
            "batch.done", size=len(items), failed=sum(o != "ok" for o in outcomes), duration_ms=clock.elapsed_ms()
        )
        return outcomes

    def _in_record_scope(
        self, record: ReceivedRecord, clock: _Clock, job: Callable[[], Awaitable[str | None]]
    ) -> Callable[[], Awaitable[str | None]]:
        """``job`` run inside the record's scope (its own trace)."""

        async def scoped() -> str | None:
            with self.record_scope(record, clock.started_at):
                return await job()

        return scoped

    async def _run_batch(self, envs: list[Envelope], process: BatchLogic) -> list[Outputs | Exception]:
        if not envs:
            return []
        try:
            results = await process(envs)
        except Exception as exc:  # a bug in the batch logic fails each item, never the consumer
            self.log.exception("batch.internal_error")
            return [exc] * len(envs)
        if len(results) != len(envs):
            error = RuntimeError(f"batch logic returned {len(results)} results for {len(envs)} inputs")
            return [error] * len(envs)
        return results

    def _as_pipeline_error(self, exc: Exception) -> PipelineError:
        if isinstance(exc, PipelineError):
            return exc
        self.log.error("message.internal_error", error_type=type(exc).__name__)
        return self._internal_error(exc)

    def _internal_error(self, exc: BaseException) -> PipelineError:
        """The answer to a bug: no exception text for the client (it can hold prompts, paths, other tenants' data).

        The exception's type and text go to the DLQ record (``detail``) and the log, for operators.
        """
        return PipelineError(
            "internal_error",
            f"an internal error in {self.stage}; the operators have the details",
            detail=f"{type(exc).__name__} in {self.stage}: {exc}",
        )

    async def _deliver(
        self,
        outputs: Outputs,
        clock: _Clock,
        source: tuple[Envelope, bytes, ReceivedRecord],
        *,
        log_context: bool = True,
    ) -> str | None:
        """Publish one input's outputs in order; returns ``publish_failed`` when it was answered with an error.

        An output that cannot be published before the input's final answer is out fails the input (an error
        answer and a DLQ record). After the answer, that would answer twice: the handler raises instead and
        the record is redelivered (what was published is idempotent per request: a repeated turn, usage record
        or cache entry is deduplicated by its request id).
        """
        processed_ms = clock.elapsed_ms()
        stray = sorted({o.role.value for o in outputs if not self.may_write(o.role)})
        if stray:  # a bug in the stage: answered as one, never published where the topology says it may not go
            self.log.error("message.undeclared_output", roles=stray)
            failure = self._internal_error(RuntimeError(f"{self.stage} may not write {', '.join(stray)}"))
            await self._fail(*source, failure, clock)
            return failure.code
        answered = False
        published: list[tuple[str, Output]] = []
        for output in outputs:
            topic = self.topic_for(output, source[0])
            try:
                await self._publish_output(topic, output, clock)
            except PUBLISH_ERRORS as exc:
                if answered:
                    raise
                failure = publish_failed(topic, exc)
                await self._undo(published)
                await self._fail(*source, failure, clock)
                return failure.code
            published.append((topic, output))
            env = output.envelope
            answered = answered or (env is not None and env.kind == "final")
        context = _log_context(outputs[0].envelope or source[0]) if outputs and log_context else {}
        with structlog.contextvars.bound_contextvars(**context):
            self._log_done(clock, processed_ms, source[2], published=len(outputs))
        return None

    async def _undo(self, published: list[tuple[str, Output]]) -> None:
        """Take back what an input published before its answer failed (a turn the client will never see).

        Raises when the broker refuses: the record is then redelivered rather than answered with a turn left.
        """
        for topic, output in reversed(published):
            if output.undo is not None:
                headers = {"request_id": output.request_id} if output.request_id else {}
                value = output.undo.model_dump_json().encode()
                await self.send(topic, value, key=output.key.encode(), headers=headers)

    async def _publish_output(self, topic: str, output: Output, clock: _Clock) -> None:
        env = output.envelope
        if env is None:
            headers = {"request_id": output.request_id} if output.request_id else {}
            await self.send(topic, output.message.model_dump_json().encode(), key=output.key.encode(), headers=headers)
            return
        # A new list: outputs made with model_copy share their input's trail list.
        env.trail = [*env.trail, self._trail(clock, "ok")]
        if self.observe is not None:
            self.observe(env)
        await self._publish(topic, env)

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

    def _log_done(self, clock: _Clock, processed_ms: float, record: ReceivedRecord, **extra: Any) -> None:
        """The canonical line of a handled message: its time here, how much of it was publishing, and its hop in."""
        self.log.info(
            "message.done",
            outcome="ok",
            duration_ms=clock.elapsed_ms(),
            publish_ms=round(clock.elapsed_ms() - processed_ms, 3),
            queued_ms=record.queued_ms(clock.started_at),
            **extra,
        )

    async def _run(self, env: Envelope, process: BatchLogic) -> Outputs:
        _check_deadline(env)
        try:
            results = await process([env])
            if len(results) != 1:
                msg = f"the logic returned {len(results)} results for one input"
                raise RuntimeError(msg)  # noqa: TRY301 - a bug, handled as every other bug below
            result = results[0]
            if isinstance(result, Exception):
                raise result  # noqa: TRY301 - the item's own failure, handled as if the logic had raised it
        except PipelineError:
            raise
        except Exception as exc:
            # Any bug must become an answer and a DLQ record, never a lost message or a dead consumer.
            self.log.exception("message.internal_error")
            raise self._internal_error(exc) from exc
        return result

    def _parse(self, raw: bytes, record: ReceivedRecord) -> Envelope:
        if len(raw) > self.core.kafka.max_message_bytes:
            raise PoisonMessageError(f"message of {len(raw)} bytes exceeds {self.core.kafka.max_message_bytes}")
        try:
            return self.parse(raw, record)
        except PipelineError:
            raise
        except Exception as exc:
            # Whatever a record makes the parser raise, it is that record's poison, never a rewound batch
            # (a RecursionError once redelivered one record forever: issue 23).
            self.log.warning("message.unparseable", error_type=type(exc).__name__, offset=record.offset)
            raise PoisonMessageError(f"unreadable message ({type(exc).__name__})") from exc

    def _trail(self, clock: _Clock, outcome: str) -> TrailRecord:
        return TrailRecord(
            stage=self.stage,
            replica=self.replica,
            started_at=clock.started_at,
            duration_ms=clock.elapsed_ms(),
            outcome=outcome,
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

    async def _fail(self, env: Envelope, raw: bytes, record: ReceivedRecord, exc: PipelineError, clock: _Clock) -> None:
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

    async def _reject_poison(self, raw: bytes, record: ReceivedRecord, exc: PipelineError, clock: _Clock) -> None:
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
