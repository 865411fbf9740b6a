"""The one place where a stage's delivery semantics live (DESIGN.md §3).

For every input record ``StageRunner.handle``: parses it (poison → DLQ + error answer),
drops expired work, runs the stage logic, appends the trail record and publishes the
result, all before the handler returns, so that FastStream's ``AckPolicy.ACK`` commits
the offset only after the output is acknowledged by the broker.
"""

from __future__ import annotations

import asyncio
import json
import random
import re
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Protocol

import structlog
from aiokafka.errors import KafkaError
from pydantic import ValidationError

from shared.messaging.envelope import SCHEMA_VERSION, Envelope, ErrorInfo, TrailRecord
from shared.messaging.errors import PipelineError, PoisonMessageError
from shared.messaging.logging import get_logger
from shared.messaging.settings import CoreSettings

__all__ = [
    "Publisher",
    "ReceivedRecord",
    "StageRunner",
    "envelope_headers",
    "parse_envelope",
]

ProcessFn = Callable[[Envelope], Awaitable[Envelope]]
RouteFn = Callable[[Envelope], str]
ParseFn = Callable[[bytes, "ReceivedRecord"], Envelope]

_TOPIC_NAME = re.compile(r"^[A-Za-z0-9._-]{1,249}$")
_PUBLISH_ATTEMPTS = 4


class Publisher(Protocol):
    """What the runner needs from a broker: FastStream's ``KafkaBroker.publish``."""

    async def publish(
        self,
        message: Any,
        topic: str = "",
        *,
        key: bytes | Any | None = None,
        headers: dict[str, str] | None = None,
    ) -> Any: ...


@dataclass(frozen=True)
class ReceivedRecord:
    """Where an input message came from (kept for DLQ records and derived ids)."""

    topic: str
    partition: int
    offset: int
    key: bytes | None

    @classmethod
    def from_consumer_record(cls, record: Any) -> ReceivedRecord:
        """Build from an aiokafka ``ConsumerRecord`` (or anything with the same attributes)."""
        return cls(
            topic=str(getattr(record, "topic", "")),
            partition=int(getattr(record, "partition", 0) or 0),
            offset=int(getattr(record, "offset", 0) or 0),
            key=getattr(record, "key", None),
        )


def parse_envelope(raw: bytes, _record: ReceivedRecord) -> Envelope:
    """Parse an envelope between stages; anything unreadable is a ``PoisonMessageError``."""
    try:
        return Envelope.from_bytes(raw)
    except ValidationError as exc:
        raise PoisonMessageError(_short_validation_error(exc)) from exc
    except (ValueError, UnicodeDecodeError) as exc:
        raise PoisonMessageError(f"not a JSON envelope: {exc}") from exc


def _short_validation_error(exc: ValidationError) -> str:
    parts = []
    for err in exc.errors()[:3]:
        loc = ".".join(str(p) for p in err["loc"]) or "<root>"
        parts.append(f"{loc}: {err['msg']}")
    return "; ".join(parts)


def envelope_headers(env: Envelope) -> dict[str, str]:
    """Kafka headers every envelope carries."""
    return {"request_id": env.request_id, "schema_version": str(SCHEMA_VERSION)}


def _salvage_routing(raw: bytes) -> tuple[str | None, str | None, str]:
    """Best effort: read request_id, reply_to and conversation from a message that failed to parse."""
    try:
        data = json.loads(raw)
    except (ValueError, UnicodeDecodeError):
        return None, None, ""
    if not isinstance(data, dict):
        return None, None, ""
    request_id = data.get("request_id")
    reply_to = data.get("reply_to")
    conversation = data.get("conversation_id")
    return (
        request_id if isinstance(request_id, str) and 0 < len(request_id) <= 128 else None,
        reply_to if isinstance(reply_to, str) and _TOPIC_NAME.match(reply_to) else None,
        conversation if isinstance(conversation, str) and len(conversation) <= 128 else "",
    )


class StageRunner:
    """Runs one stage's logic on raw Kafka records with the pipeline's delivery rules.

    Example:
        >>> runner = StageRunner(stage="preprocess", publisher=broker, core=CoreSettings(), replica="r1")
        >>> await runner.handle(raw_bytes, record, process=logic, route=lambda env: topics.preprocessed)

    """

    def __init__(
        self,
        *,
        stage: str,
        publisher: Publisher,
        core: CoreSettings,
        replica: str,
        parse: ParseFn = parse_envelope,
    ) -> None:
        self.stage = stage
        self.publisher = publisher
        self.core = core
        self.replica = replica
        self.parse = parse
        self.log = get_logger(f"llmops.{stage}")

    async def handle(self, raw: bytes, record: ReceivedRecord, *, process: ProcessFn, route: RouteFn) -> str:
        """Handle one record; returns the outcome (``ok``, an error code, or ``poison``)."""
        started_at = datetime.now(UTC)
        t0 = time.perf_counter()
        structlog.contextvars.bind_contextvars(stage=self.stage)
        try:
            env = self._parse(raw, record)
        except PipelineError as exc:
            await self.dead_letter(raw, record, exc)
            request_id, reply_to, conversation = _salvage_routing(raw)
            if request_id is not None:
                await self._answer_poison(request_id, reply_to, conversation, exc, started_at, t0)
            self.log.warning("message.poison", error_code=exc.code, error=exc.message, offset=record.offset)
            return "poison"

        structlog.contextvars.bind_contextvars(
            request_id=env.request_id, conversation_id=env.conversation_id, tenant=env.tenant
        )
        try:
            if env.deadline is not None and env.deadline < datetime.now(UTC):
                raise PipelineError("deadline_exceeded", f"the request's deadline {env.deadline.isoformat()} passed")
            out = await process(env)
            outcome = "ok"
        except PipelineError as exc:
            await self._fail(env, raw, record, exc, started_at, t0)
            return exc.code
        except Exception as exc:
            self.log.exception("message.internal_error")
            error = PipelineError("internal_error", f"{type(exc).__name__} in {self.stage}: {exc}")
            await self._fail(env, raw, record, error, started_at, t0)
            return error.code
        finally:
            structlog.contextvars.unbind_contextvars("request_id", "conversation_id", "tenant")

        out.trail.append(self._trail(started_at, t0, outcome))
        await self._publish(route(out), out)
        self.log.info("message.done", outcome=outcome, duration_ms=round((time.perf_counter() - t0) * 1000, 2),
                      request_id=env.request_id)
        return outcome

    def _parse(self, raw: bytes, record: ReceivedRecord) -> Envelope:
        if len(raw) > self.core.kafka.max_message_bytes:
            raise PoisonMessageError(f"message of {len(raw)} bytes exceeds {self.core.kafka.max_message_bytes}")
        return self.parse(raw, record)

    def _trail(self, started_at: datetime, t0: float, outcome: str) -> TrailRecord:
        return TrailRecord(
            stage=self.stage,
            replica=self.replica,
            started_at=started_at,
            duration_ms=round((time.perf_counter() - t0) * 1000, 3),
            outcome=outcome,
        )

    def reply_topic(self, env: Envelope) -> str:
        """The topic the client waits on."""
        if env.reply_to and _TOPIC_NAME.match(env.reply_to):
            return env.reply_to
        return self.core.topics.responses

    async def _fail(
        self, env: Envelope, raw: bytes, record: ReceivedRecord, exc: PipelineError, started_at: datetime, t0: float
    ) -> None:
        await self.dead_letter(raw, record, exc, request_id=env.request_id)
        answer = env.model_copy(
            update={
                "kind": "final",
                "error": ErrorInfo(code=exc.code, message=exc.message, stage=self.stage, retriable=exc.retriable),
            }
        )
        answer.trail.append(self._trail(started_at, t0, exc.code))
        await self._publish(self.reply_topic(env), answer)
        self.log.warning("message.failed", outcome=exc.code, error=exc.message, request_id=env.request_id,
                         duration_ms=round((time.perf_counter() - t0) * 1000, 2))

    async def _answer_poison(
        self,
        request_id: str,
        reply_to: str | None,
        conversation: str,
        exc: PipelineError,
        started_at: datetime,
        t0: float,
    ) -> None:
        body = {
            "schema_version": SCHEMA_VERSION,
            "request_id": request_id,
            "conversation_id": conversation or request_id,
            "kind": "final",
            "error": ErrorInfo(code=exc.code, message=exc.message, stage=self.stage).model_dump(),
            "trail": [self._trail(started_at, t0, exc.code).model_dump(mode="json")],
        }
        topic = reply_to or self.core.topics.responses
        await self.send(topic, json.dumps(body).encode(), key=(conversation or request_id).encode(),
                         headers={"request_id": request_id, "schema_version": str(SCHEMA_VERSION)})

    async def dead_letter(
        self, raw: bytes, record: ReceivedRecord, exc: PipelineError, *, request_id: str | None = None
    ) -> None:
        headers = {
            "llmops-stage": self.stage,
            "llmops-error-code": exc.code,
            "llmops-error": exc.message[:1000],
            "llmops-source-topic": record.topic,
            "llmops-source-partition": str(record.partition),
            "llmops-source-offset": str(record.offset),
            "llmops-replica": self.replica,
        }
        if request_id:
            headers["request_id"] = request_id
        await self.send(self.core.topics.dlq, raw, key=record.key, headers=headers)

    async def _publish(self, topic: str, env: Envelope) -> None:
        await self.send(topic, env.to_bytes(), key=env.conversation_id.encode(), headers=envelope_headers(env))

    async def send(self, topic: str, value: bytes, *, key: bytes | None, headers: dict[str, str]) -> None:
        """Publish and wait for the broker's ack, retrying transient failures a bounded number of times."""
        for attempt in range(1, _PUBLISH_ATTEMPTS + 1):
            try:
                await self.publisher.publish(value, topic, key=key, headers=headers)
            except (KafkaError, TimeoutError) as exc:
                if attempt == _PUBLISH_ATTEMPTS:
                    raise
                delay = min(2.0, 0.1 * 2**attempt) * (0.5 + random.random())  # noqa: S311 - jitter, not crypto
                self.log.warning("publish.retry", topic=topic, attempt=attempt, error=str(exc), delay_s=round(delay, 3))
                await asyncio.sleep(delay)
            else:
                return
