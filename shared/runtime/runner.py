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
final answer, then its usage record). Where each goes, and how a failure is answered (error answer,
DLQ record, reply-topic fallback), is ``shared.runtime.answering``, the runner's base class.
"""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Awaitable, Callable, Sequence
from contextlib import AbstractContextManager, nullcontext
from datetime import UTC, datetime
from typing import Any

import structlog

from shared.contracts.envelope import Envelope
from shared.contracts.errors import PipelineError, PoisonMessageError, RefusedRequestError
from shared.contracts.shadow import is_shadow
from shared.contracts.stage import Output, Outputs
from shared.runtime.answering import Answering, Clock, PoisonReplyCheck, envelope_headers
from shared.runtime.publishing import PUBLISH_ERRORS, Publisher, publish_failed
from shared.runtime.records import ReceivedRecord, parse_envelope
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


def _no_scope(_record: ReceivedRecord, _started_at: datetime) -> AbstractContextManager[None]:
    return nullcontext()


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


class StageRunner(Answering):
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
        super().__init__(
            stage=stage, publisher=publisher, core=core, replica=replica, poison_reply_allowed=poison_reply_allowed
        )
        self.parse = parse
        #: Entered around each batch record's publishing (its trace span); nothing when not given.
        self.record_scope: RecordScope = record_scope or _no_scope
        #: Called with each envelope output before it is published (metrics); nothing when not given.
        self.observe = observe

    async def handle(self, raw: bytes, record: ReceivedRecord, *, process: BatchLogic) -> str:
        """Handle one record (a batch of one); returns the outcome (``ok``, an error code, or ``poison``)."""
        clock = Clock.start()
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
        clock = Clock.start()
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
        self, record: ReceivedRecord, clock: Clock, job: Callable[[], Awaitable[str | None]]
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

    async def _deliver(
        self,
        outputs: Outputs,
        clock: Clock,
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

    async def _publish_output(self, topic: str, output: Output, clock: Clock) -> None:
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

    def _log_done(self, clock: Clock, processed_ms: float, record: ReceivedRecord, **extra: Any) -> None:
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
