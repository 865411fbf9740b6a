"""Serves a stage (``shared.contracts.stage.Stage``): broker, subscribers, health endpoint and lifecycle.

Each ``services/<stage>/app.py`` names its stage class and settings; this module does the Kafka
wiring the same way for all of them, from the declared topology (``shared.contracts.topology``):
the input topic and consumer group, the delivery mode the stage asks for, and its side inputs.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import time
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING, Any

from faststream import AckPolicy, FastStream
from faststream.kafka import KafkaBroker, KafkaMessage
from faststream.message import StreamMessage
from pydantic import ValidationError

from shared.contracts.errors import PoisonMessageError
from shared.contracts.stage import Output, SideHandler, Stage
from shared.contracts.topology import SideInput, input_topics, topic_of
from shared.runtime.broker import consumer_options, make_broker
from shared.runtime.health import HealthServer
from shared.runtime.inflight import ConcurrentRecords
from shared.runtime.logging import configure_logging, get_logger
from shared.runtime.metrics import StageMetrics
from shared.runtime.redelivery import RedeliveryWindow
from shared.runtime.runner import ReceivedRecord, StageRunner
from shared.runtime.security import BrokerAuthError, check_broker_access
from shared.runtime.settings import StageSettings
from shared.runtime.telemetry import RecordSpans, make_tracer_provider, telemetry_middleware
from shared.runtime.transactions import PartitionGate, TransactionalOutbox, next_offsets, outside_record

if TYPE_CHECKING:
    from opentelemetry.sdk.trace import TracerProvider

__all__ = ["StageService", "poll_without_idle_sleep", "raw_body"]

_LAG_INTERVAL_S = 5.0
_EXIT_AUTH_FAILED = 2


async def raw_body(msg: StreamMessage[object]) -> bytes:
    """FastStream decoder that hands the handler the raw value bytes: parsing is the runner's job."""
    return msg.body


class StageService:
    """Serves one stage as a FastStream application.

    Example:
        >>> service = StageService(PostprocessStage(settings), settings)
        >>> await service.run()

    """

    def __init__(
        self,
        stage: Stage,
        settings: StageSettings,
        *,
        broker: KafkaBroker | None = None,
        tracer_provider: TracerProvider | None = None,
    ) -> None:
        self.stage = stage
        self.name = stage.name
        self.spec = stage.spec
        self.settings = settings
        core = settings.core
        #: The topics the stage's group consumes (preprocess: tenants' request topics too).
        self.input_topics = input_topics(self.spec, core.topics)
        configure_logging(core.log_level, core.log_format, replica=settings.replica)
        self.log = get_logger(f"llmops.{self.name}")
        self.metrics = StageMetrics(self.name)
        self.tracer_provider = tracer_provider or make_tracer_provider(f"llmops-{self.name}")
        self.exactly_once = core.kafka.exactly_once
        self.broker = broker or make_broker(
            core.kafka,
            client_id=self.name,
            graceful_timeout=settings.shutdown_timeout_s,
            middlewares=[telemetry_middleware(self.tracer_provider)],
            # One id per replica: a replica started again fences (aborts) what its predecessor left open.
            transactional_id=f"{self.group_id}-{settings.replica}" if self.exactly_once else None,
        )
        #: Exactly-once: outputs are recorded while a record is handled and committed with its offset.
        self.outbox = TransactionalOutbox(self.broker, group_id=self.group_id) if self.exactly_once else None
        #: Exactly-once: a rebalance gives partitions up only between transactions.
        self.gate = PartitionGate() if self.exactly_once else None
        #: At least once: marks the records a partition's previous owner may have handled (exactly once: none).
        self.redelivery = RedeliveryWindow(0 if self.exactly_once else max(1, stage.delivery.max_records))
        self.runner = StageRunner(
            stage=self.name,
            publisher=self.outbox or self.broker,
            core=core,
            replica=settings.replica,
            parse=stage.parse,
            # FastStream roots a batch in a new trace: each batch record's outputs get a span in its own trace.
            record_scope=RecordSpans(self.tracer_provider).scope,
            poison_reply_allowed=stage.may_answer_poison,
            observe=self.metrics.observe_envelope,
        )
        self.health = HealthServer(
            settings.health_host,
            settings.health_port,
            stage=self.name,
            metrics=self.metrics.render,
            details=lambda: {"consumer_lag": self.metrics.total_lag(), "replica": settings.replica},
        )
        self._subscriber: Any = None
        self._lag_task: asyncio.Task[None] | None = None
        self._warm = False
        #: Records in flight when the stage's delivery is ``concurrent``.
        self.concurrent: ConcurrentRecords | None = None
        self.app = FastStream(
            self.broker,
            logger=get_logger("faststream"),
            on_startup=[self._on_startup],
            after_startup=[self._after_startup],
            on_shutdown=[self._on_shutdown],
            after_shutdown=[self._after_shutdown],
        )
        self._bind_input()
        self._bind_side_inputs()

    @property
    def input_topic(self) -> str:
        """The topic of this stage's input role (requests: the shared topic; tenants' own topics join it)."""
        return topic_of(self.spec.input, self.settings.core.topics)

    @property
    def group_id(self) -> str:
        """The consumer group of this stage's replicas."""
        return self.settings.group_id or f"llmops-{self.name}"

    async def emit(self, output: Output) -> None:
        """Publish an output at once, while its input is still processed (``StageContext``: streamed chunks).

        With exactly-once on, it is a small transaction of its own, not part of the record's.
        """
        with outside_record():
            await self.runner.emit(output)

    def _subscribe(self, *, listener: Any = None, ack_policy: AckPolicy | None = None, **options: Any) -> Any:
        """The input subscriber: commit after the handler, raw bytes to the runner.

        The runner turns every failure into an answer and a DLQ record, so the handler raises
        only when even those could not be published (the broker away): ``NACK_ON_ERROR`` then
        rewinds the offset and the message is redelivered instead of committed and lost.
        """
        return self.broker.subscriber(
            *self.input_topics,
            group_id=self.group_id,
            # Exactly-once: the offsets are committed by each transaction, never by the consumer itself.
            ack_policy=ack_policy or (AckPolicy.MANUAL if self.exactly_once else AckPolicy.NACK_ON_ERROR),
            decoder=raw_body,
            listener=self.redelivery.around(listener or self.gate),
            **options,
            **consumer_options(self.settings.core.kafka),
        )

    def _received(self, raw: Any) -> ReceivedRecord:
        """An input record as the runner sees it, marked if its partition's previous owner may have handled it."""
        return self.redelivery.mark(ReceivedRecord.from_consumer_record(raw))

    def _bind_input(self) -> None:
        """Subscribe the input the way the stage's ``delivery`` asks.

        ``concurrent`` is at least once only: with exactly-once on, transactions cannot overlap, so such
        a stage gets batches instead (the records of a poll processed together, committed together).
        """
        delivery = self.stage.delivery
        if delivery.mode == "one":
            self._bind_one()
        elif delivery.mode == "batch" or self.exactly_once:
            self._bind_batch(delivery.max_records, delivery.batch_timeout_ms)
        else:
            self._bind_concurrent(delivery.max_records, delivery.batch_timeout_ms)

    def _bind_one(self) -> None:
        self._subscriber = self._subscribe()

        @self._subscriber
        async def on_message(body: bytes, message: KafkaMessage) -> None:
            record = self._received(message.raw_message)
            t0 = time.perf_counter()
            async with self._delivery(message, [record]) as current:
                if not current:  # fetched before a rebalance: its partition's owner handles it
                    return
                outcome = await self.runner.handle(body, record, process=self.stage.process)
            self.metrics.observe_message(outcome, time.perf_counter() - t0)

    def _bind_batch(self, max_records: int, batch_timeout_ms: int) -> None:
        """Every record one poll returned (up to ``max_records``) goes to the logic at once.

        The poll returns as soon as any record is there, so a lone message waits for no batch to fill.
        The offset is committed after the whole batch's outputs are acknowledged (rewound if the handler raises).
        """
        self._subscriber = self._subscribe(batch=True, max_records=max_records, batch_timeout_ms=batch_timeout_ms)
        poll_without_idle_sleep(self._subscriber, batch_timeout_ms)

        @self._subscriber
        async def on_batch(bodies: list[bytes], message: KafkaMessage) -> None:
            records = [self._received(r) for r in message.raw_message]
            t0 = time.perf_counter()
            async with self._delivery(message, records) as current:
                handled = {id(r) for r in current}
                pairs = [(b, r) for b, r in zip(bodies, records, strict=True) if id(r) in handled]
                outcomes = await self.runner.handle_batch(pairs, process=self.stage.process)
            # Each message is charged the batch's time: what it waited for, as a client sees it.
            elapsed = time.perf_counter() - t0
            for outcome in outcomes:
                self.metrics.observe_message(outcome, elapsed)

    def _bind_concurrent(self, max_in_flight: int, batch_timeout_ms: int) -> None:
        """Up to ``max_in_flight`` records handled at once, each started as it arrives.

        A record does not wait for the others of its poll: it starts as soon as a slot is free (inference:
        it joins the sequences already decoding). Offsets are committed per partition up to the lowest
        record still in flight (``ConcurrentRecords``); records of one key are handled in order.
        """

        async def handle(body: bytes, record: ReceivedRecord) -> str:
            return await self.runner.handle(body, record, process=self.stage.process)

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
                await concurrent.admit(message.consumer, body, self._received(raw))

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

    def _bind_side_inputs(self) -> None:
        """Subscribe each side input the topology declares, to the stage's handler for it."""
        handlers = {handler.role: handler for handler in self.stage.side_handlers()}
        declared = {side.role: side for side in self.spec.side_inputs}
        if set(handlers) - set(declared):
            undeclared = ", ".join(sorted(role.value for role in set(handlers) - set(declared)))
            msg = f"{self.name} handles side inputs the topology does not declare: {undeclared}"
            raise ValueError(msg)
        for role, side in declared.items():
            # A stage may leave a side input unread when its feature is off (preprocess: usage without quotas).
            if role in handlers:
                self._bind_side_input(side, handlers[role])

    def _bind_side_input(self, side: SideInput, handler: SideHandler) -> None:
        """Read a side topic: in a group of its own (each record once), or in every replica from its beginning.

        A record that is not a valid ``handler.model`` is dead-lettered as an invalid ``handler.what``; what the
        handler returns is published with the runner's retries.
        """
        topic = topic_of(side.role, self.settings.core.topics)
        grouped = side.group is not None

        @self.broker.subscriber(
            topic,
            group_id=f"{self.group_id}-{side.group}" if grouped else None,
            ack_policy=AckPolicy.ACK if grouped else AckPolicy.ACK_FIRST,
            decoder=raw_body,
            title=f"{topic}:{handler.model.__name__}",
            **consumer_options(self.settings.core.kafka, request_path=handler.request_path),
        )
        async def on_record(body: bytes, message: KafkaMessage) -> None:
            try:
                item = handler.model.model_validate_json(body)
            except (ValidationError, ValueError) as exc:
                record = ReceivedRecord.from_consumer_record(message.raw_message)
                await self.runner.dead_letter(body, record, PoisonMessageError(f"invalid {handler.what}: {exc}"))
                return
            for output in await handler.handle(item):
                await self.runner.emit(output)

    async def warm_up(self) -> None:
        """Build the stage's heavy state; runs before the broker starts consuming."""
        t0 = time.perf_counter()
        await self.stage.warm_up(self)
        self._warm = True
        self.log.info(
            "service.warm",
            input_topics=self.input_topics,
            group_id=self.group_id,
            warm_up_s=round(time.perf_counter() - t0, 3),
        )

    async def _on_startup(self) -> None:
        if self.settings.health_port:
            await self.health.start()
        if not self._warm:
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
        await self.stage.close()
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
