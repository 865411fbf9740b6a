"""Assembles a stage service: broker, input subscriber, health endpoint and lifecycle.

Each ``services/<stage>/app.py`` gives a warm-up (heavy state, built once), the stage
logic and its routing; this module does the Kafka wiring the same way for all of them.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from typing import TYPE_CHECKING, Any, TypeVar

from faststream import AckPolicy, FastStream
from faststream.kafka import KafkaBroker, KafkaMessage
from faststream.message import StreamMessage
from pydantic import BaseModel, ValidationError

from shared.messaging.broker import consumer_options, make_broker
from shared.messaging.envelope import Envelope
from shared.messaging.errors import PoisonMessageError
from shared.messaging.health import HealthServer
from shared.messaging.inflight import ConcurrentRecords
from shared.messaging.logging import configure_logging, get_logger
from shared.messaging.metrics import StageMetrics
from shared.messaging.security import BrokerAuthError, check_broker_access
from shared.messaging.settings import StageSettings
from shared.messaging.stage import (
    AfterPublishFn,
    BatchProcessFn,
    ParseFn,
    ProcessFn,
    ReceivedRecord,
    StageRunner,
    parse_envelope,
)
from shared.messaging.telemetry import RecordSpans, make_tracer_provider, telemetry_middleware
from shared.messaging.transactions import PartitionGate, TransactionalOutbox, next_offsets

if TYPE_CHECKING:
    from opentelemetry.sdk.trace import TracerProvider

M = TypeVar("M", bound=BaseModel)

__all__ = ["ProcessFn", "StageService", "poll_without_idle_sleep", "raw_body"]

RouteFn = Callable[[Envelope], str]

_LAG_INTERVAL_S = 5.0
_EXIT_AUTH_FAILED = 2


async def raw_body(msg: StreamMessage[object]) -> bytes:
    """FastStream decoder that hands the handler the raw value bytes: parsing is the runner's job."""
    return msg.body


async def _batch_only(env: Envelope) -> Envelope:
    """The per-message logic of a service bound with ``bind_batch``: it has none."""
    msg = f"this service consumes in batches; request {env.request_id} reached the per-message path"
    raise RuntimeError(msg)


class StageService:
    """One stage as a FastStream application.

    Example:
        >>> service = StageService("postprocess", settings, input_topic=settings.core.topics.generated)
        >>> service.bind(warm_up=load_polisher, route=lambda env: service.runner.reply_topic(env))
        >>> await service.app.run()

    """

    def __init__(
        self,
        stage: str,
        settings: StageSettings,
        *,
        input_topic: str,
        more_input_topics: Sequence[str] = (),
        parse: ParseFn = parse_envelope,
        broker: KafkaBroker | None = None,
        tracer_provider: TracerProvider | None = None,
    ) -> None:
        self.stage = stage
        self.settings = settings
        self.input_topic = input_topic
        #: Read by the same subscriber and group as ``input_topic`` (preprocess: tenants' request topics).
        self.more_input_topics = tuple(more_input_topics)
        core = settings.core
        configure_logging(core.log_level, core.log_format, replica=settings.replica)
        self.log = get_logger(f"llmops.{stage}")
        self.metrics = StageMetrics(stage)
        self.tracer_provider = tracer_provider or make_tracer_provider(f"llmops-{stage}")
        self.exactly_once = core.kafka.exactly_once
        self.broker = broker or make_broker(
            core.kafka,
            client_id=stage,
            graceful_timeout=settings.shutdown_timeout_s,
            middlewares=[telemetry_middleware(self.tracer_provider)],
            # One id per replica: a replica started again fences (aborts) what its predecessor left open.
            transactional_id=f"{self.group_id}-{settings.replica}" if self.exactly_once else None,
        )
        #: Exactly-once: outputs are recorded while a record is handled and committed with its offset.
        self.outbox = TransactionalOutbox(self.broker, group_id=self.group_id) if self.exactly_once else None
        #: Exactly-once: a rebalance gives partitions up only between transactions.
        self.gate = PartitionGate() if self.exactly_once else None
        self.runner = StageRunner(
            stage=stage,
            publisher=self.outbox or self.broker,
            core=core,
            replica=settings.replica,
            parse=parse,
            # FastStream roots a batch in a new trace: each batch record's outputs get a span in its own trace.
            record_scope=RecordSpans(self.tracer_provider).scope,
        )
        self.health = HealthServer(
            settings.health_host,
            settings.health_port,
            stage=stage,
            metrics=self.metrics.render,
            details=lambda: {"consumer_lag": self.metrics.total_lag(), "replica": settings.replica},
        )
        self._subscriber: Any = None
        self._lag_task: asyncio.Task[None] | None = None
        self.process: ProcessFn | None = None
        self._warm_up: Callable[[], Awaitable[ProcessFn]] | None = None
        self._shutdown: list[Callable[[], Awaitable[None]]] = []
        #: Records in flight when bound with ``bind_concurrent``.
        self.concurrent: ConcurrentRecords | None = None
        self.app = FastStream(
            self.broker,
            logger=get_logger("faststream"),
            on_startup=[self._on_startup],
            after_startup=[self._after_startup],
            on_shutdown=[self._on_shutdown],
            after_shutdown=[self._after_shutdown],
        )

    @property
    def group_id(self) -> str:
        """The consumer group of this stage's replicas."""
        return self.settings.group_id or f"llmops-{self.stage}"

    def _observed(self, route: RouteFn) -> RouteFn:
        """``route``, counting each output's domain figures on the way (verdicts, tokens)."""

        def observed_route(env: Envelope) -> str:
            self.metrics.observe_envelope(env)
            return route(env)

        return observed_route

    def _subscribe(self, *, listener: Any = None, ack_policy: AckPolicy | None = None, **options: Any) -> Any:
        """The input subscriber: commit after the handler, raw bytes to the runner.

        The runner turns every failure into an answer and a DLQ record, so the handler raises
        only when even those could not be published (the broker away): ``NACK_ON_ERROR`` then
        rewinds the offset and the message is redelivered instead of committed and lost.
        """
        return self.broker.subscriber(
            self.input_topic,
            *self.more_input_topics,
            group_id=self.group_id,
            # Exactly-once: the offsets are committed by each transaction, never by the consumer itself.
            ack_policy=ack_policy or (AckPolicy.MANUAL if self.exactly_once else AckPolicy.NACK_ON_ERROR),
            decoder=raw_body,
            listener=listener or self.gate,
            **options,
            **consumer_options(self.settings.core.kafka),
        )

    def bind(
        self,
        *,
        warm_up: Callable[[], Awaitable[ProcessFn]],
        route: RouteFn,
        after_publish: AfterPublishFn | None = None,
    ) -> None:
        """Subscribe the input topic; ``warm_up`` builds the logic once, before consuming starts.

        ``after_publish`` runs for each output once the broker has acknowledged it (postprocess bills an
        answer only once it is out).
        """
        self._warm_up = warm_up
        observed_route = self._observed(route)
        self._subscriber = self._subscribe()

        @self._subscriber
        async def on_message(body: bytes, message: KafkaMessage) -> None:
            if self.process is None:  # pragma: no cover - warm-up runs before the broker starts
                msg = f"{self.stage} received a message before warm-up"
                raise RuntimeError(msg)
            record = ReceivedRecord.from_consumer_record(message.raw_message)
            t0 = time.perf_counter()
            async with self._delivery(message, [record]) as current:
                if not current:  # fetched before a rebalance: its partition's owner handles it
                    return
                outcome = await self.runner.handle(
                    body, record, process=self.process, route=observed_route, after_publish=after_publish
                )
            self.metrics.observe_message(outcome, time.perf_counter() - t0)

    def bind_batch(
        self,
        *,
        warm_up: Callable[[], Awaitable[BatchProcessFn]],
        route: RouteFn,
        max_records: int,
        batch_timeout_ms: int,
    ) -> None:
        """Like ``bind``, but the logic gets every record one poll returned (up to ``max_records``).

        The poll returns as soon as any record is there, so a lone message waits for no batch to fill.
        The offset is committed after the whole batch's outputs are acknowledged (rewound if the handler raises).
        """
        batch_logic: list[BatchProcessFn] = []

        async def warm_up_batch() -> ProcessFn:
            batch_logic[:] = [await warm_up()]
            return _batch_only

        self._warm_up = warm_up_batch
        observed_route = self._observed(route)
        self._subscriber = self._subscribe(batch=True, max_records=max_records, batch_timeout_ms=batch_timeout_ms)
        poll_without_idle_sleep(self._subscriber, batch_timeout_ms)

        @self._subscriber
        async def on_batch(bodies: list[bytes], message: KafkaMessage) -> None:
            if not batch_logic:  # pragma: no cover - warm-up runs before the broker starts
                msg = f"{self.stage} received messages before warm-up"
                raise RuntimeError(msg)
            records = [ReceivedRecord.from_consumer_record(r) for r in message.raw_message]
            t0 = time.perf_counter()
            async with self._delivery(message, records) as current:
                handled = {id(r) for r in current}
                pairs = [(b, r) for b, r in zip(bodies, records, strict=True) if id(r) in handled]
                outcomes = await self.runner.handle_batch(pairs, process=batch_logic[0], route=observed_route)
            # Each message is charged the batch's time: what it waited for, as a client sees it.
            elapsed = time.perf_counter() - t0
            for outcome in outcomes:
                self.metrics.observe_message(outcome, elapsed)

    def bind_concurrent(
        self,
        *,
        warm_up: Callable[[], Awaitable[ProcessFn]],
        route: RouteFn,
        max_in_flight: int,
        batch_timeout_ms: int,
    ) -> None:
        """Like ``bind``, but up to ``max_in_flight`` records are handled at once, each started as it arrives.

        A record does not wait for the others of its poll: it starts as soon as a slot is free (inference:
        it joins the sequences already decoding). Offsets are committed per partition up to the lowest
        record still in flight (``ConcurrentRecords``); records of one key are handled in order. At least
        once only: with exactly-once, transactions cannot overlap, so the stage binds batches instead.
        """
        if self.exactly_once:
            msg = "bind_concurrent is at-least-once: with exactly-once on, bind a batch (bind_batch)"
            raise ValueError(msg)
        self._warm_up = warm_up
        observed_route = self._observed(route)

        async def handle(body: bytes, record: ReceivedRecord) -> str:
            assert self.process is not None  # noqa: S101 - warm-up runs before the broker starts
            return await self.runner.handle(body, record, process=self.process, route=observed_route)

        self.concurrent = ConcurrentRecords(max_in_flight, handle=handle, on_outcome=self.metrics.observe_message)
        self._subscriber = self._subscribe(
            listener=self.concurrent,
            ack_policy=AckPolicy.MANUAL,  # ConcurrentRecords commits
            batch=True,
            max_records=max_in_flight,
            batch_timeout_ms=batch_timeout_ms,
        )
        poll_without_idle_sleep(self._subscriber, batch_timeout_ms)
        concurrent = self.concurrent

        @self._subscriber
        async def on_batch(bodies: list[bytes], message: KafkaMessage) -> None:
            for body, raw in zip(bodies, message.raw_message, strict=True):
                await concurrent.admit(message.consumer, body, ReceivedRecord.from_consumer_record(raw))

    @contextlib.asynccontextmanager
    async def _delivery(
        self, message: KafkaMessage, records: list[ReceivedRecord]
    ) -> AsyncIterator[list[ReceivedRecord]]:
        """Around handling input records; yields those to handle.

        At least once: all of them (``NACK_ON_ERROR`` commits or rewinds). Exactly once: those still of this
        replica's assignment (a rebalance waits for them: ``PartitionGate``); the outputs published inside are
        committed in one transaction with the offsets after them; if that fails, nothing is visible and the
        consumer is rewound to the records.
        """
        if self.outbox is None or self.gate is None:
            yield records
            return
        async with self.gate.holding(message.consumer, records) as current:
            if len(current) < len(records):
                self.log.info("records.left_to_owner", records=len(records) - len(current))
            if not current:
                yield current
                return
            offsets = next_offsets([(r.topic, r.partition, r.offset) for r in current])
            try:
                async with self.outbox.consuming(offsets):
                    yield current
            except Exception:
                self.log.warning("transaction.aborted", records=len(current), exc_info=True)
                await message.nack()
                raise

    def follow(
        self,
        topic: str,
        model: type[M],
        on_item: Callable[[M], Awaitable[None]],
        *,
        what: str,
        request_path: bool = False,
    ) -> None:
        """Read a side topic (turns, cache entries, usage) in every replica, from its beginning.

        No consumer group: each replica sees every record and builds its own state from them.
        A record that is not a valid ``model`` is dead-lettered as an invalid ``what``.
        ``request_path``: a request may need the record within milliseconds (a conversation's last
        turn, for its next message): poll with the request path's short fetch wait.
        """

        @self.broker.subscriber(
            topic,
            group_id=None,
            ack_policy=AckPolicy.ACK_FIRST,
            decoder=raw_body,
            title=f"{topic}:{model.__name__}",
            **consumer_options(self.settings.core.kafka, request_path=request_path),
        )
        async def on_record(body: bytes, message: KafkaMessage) -> None:
            try:
                item = model.model_validate_json(body)
            except (ValidationError, ValueError) as exc:
                record = ReceivedRecord.from_consumer_record(message.raw_message)
                await self.runner.dead_letter(body, record, PoisonMessageError(f"invalid {what}: {exc}"))
                return
            await on_item(item)

    def on_shutdown(self, func: Callable[[], Awaitable[None]]) -> None:
        """Run ``func`` once the broker has stopped and in-flight messages are finished (close heavy resources)."""
        self._shutdown.append(func)

    async def warm_up(self) -> None:
        """Build the stage logic (heavy state); runs before the broker starts consuming."""
        if self._warm_up is None:
            msg = f"{self.stage}: bind() was not called"
            raise RuntimeError(msg)
        t0 = time.perf_counter()
        self.process = await self._warm_up()
        self.log.info(
            "service.warm",
            input_topic=self.input_topic,
            more_input_topics=list(self.more_input_topics),
            group_id=self.group_id,
            warm_up_s=round(time.perf_counter() - t0, 3),
        )

    async def _on_startup(self) -> None:
        if self.settings.health_port:
            await self.health.start()
        if self.process is None:
            await self.warm_up()

    async def _after_startup(self) -> None:
        self._lag_task = asyncio.create_task(self._watch_lag())
        self.health.ready = True
        self.log.info("service.ready", health_port=self.health.port if self.settings.health_port else None)

    async def _on_shutdown(self) -> None:
        # Runs before the broker stops: only stop advertising readiness here.
        self.health.ready = False
        if self._lag_task is not None:
            self._lag_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._lag_task
        if self.concurrent is not None:  # records in flight finish and commit while the consumer is still up
            await self.concurrent.drain(timeout=self.settings.shutdown_timeout_s)
        self.log.info("service.stopping")

    async def _after_shutdown(self) -> None:
        # The broker has drained its handlers: heavy resources are no longer in use.
        for func in self._shutdown:
            await func()
        self.tracer_provider.shutdown()  # flushes spans still queued for export
        await self.health.stop()
        self.log.info("service.stopped")

    async def _watch_lag(self) -> None:
        """Publish the consumer lag of each assigned input partition every few seconds."""
        while True:
            consumer = getattr(self._subscriber, "consumer", None)
            if consumer is not None:
                await self.update_lag(consumer)
            await asyncio.sleep(_LAG_INTERVAL_S)

    async def update_lag(self, consumer: Any) -> None:
        """Lag = the partition's high watermark minus this consumer's position (0 when unknown)."""
        for tp in list(consumer.assignment()):
            highwater = consumer.highwater(tp)
            if highwater is None:
                continue
            try:
                position = await asyncio.wait_for(consumer.position(tp), timeout=1.0)
            except Exception:  # noqa: BLE001, S112 - lag is best effort, never a reason to stop
                continue
            self.metrics.set_lag(tp.topic, tp.partition, highwater - position)

    async def run(self) -> None:
        """Run until SIGINT/SIGTERM; the broker drains in-flight handlers before closing.

        A broker that refuses this service's credentials ends it at once with one error line and
        exit status 2 (``SystemExit``): no retry loop, no warm-up of heavy state first.
        """
        try:
            await check_broker_access(self.settings.core.kafka)
        except BrokerAuthError as exc:
            self.log.error("kafka.auth_failed", error=str(exc))  # noqa: TRY400 - one line, no traceback
            raise SystemExit(_EXIT_AUTH_FAILED) from None
        await self.app.run()


def poll_without_idle_sleep(subscriber: Any, poll_ms: int) -> None:
    """Make a FastStream batch subscriber poll without sleeping between empty polls.

    FastStream 0.7's batch subscriber sleeps ``batch_timeout_ms`` after every empty poll, so
    a record that arrives during the sleep waits for it (up to 5 ms a hop with our settings).
    ``getmany`` already waits for the first record and returns the moment one is fetched,
    so a longer poll with no sleep costs no latency and fewer idle wake-ups.
    """

    async def get_msg(consumer: Any) -> tuple[Any, ...]:
        batches = await consumer.getmany(timeout_ms=poll_ms, max_records=subscriber.max_records)
        return tuple(itertools.chain.from_iterable(batches.values()))

    subscriber.get_msg = get_msg
