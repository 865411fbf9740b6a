"""Exactly-once stages (``LLMOPS_KAFKA_EXACTLY_ONCE=true``): consume, process and produce in one Kafka transaction.

Without it a stage is at-least-once: outputs are acknowledged, then the input offset is committed, and a crash in
between publishes the outputs again on redelivery (duplicates the client drops by ``request_id``). With it, every
output of a record (or of a batch) and the input offsets are committed together, atomically, by a transactional
producer (``send_offsets_to_transaction``); consumers read with ``isolation_level=read_committed``, so the outputs
of a transaction that was cut short by a crash are never seen, and the record is processed again from the last
committed offset.

How the runner's outputs become one transaction: while a record is handled (``TransactionalOutbox.consuming``)
each publish is only recorded, with the trace context current at that moment. When the handler is done the
outbox opens the transaction, publishes them all, adds the input offsets and commits. Processing itself runs
outside the transaction, so a transaction lives only as long as its publishing (milliseconds), and a killed
replica leaves at most that much open (aborted by the coordinator after ``transaction_timeout_ms``, or at once
when the replica starts again under the same ``transactional_id``).

A publish outside any record (streamed chunks: ``outside_record``; a side reader's dead letters) is its own small
transaction: chunks are progress, at least once, and the client already drops repeated chunk numbers.

Fencing: the transactional id is per replica (``<group>-<replica>``), so a restarted replica fences its own
predecessor. aiokafka's offset commit in a transaction does not carry the consumer group's generation (KIP-447),
so a live replica whose partitions move to another (a replica joining or leaving) could commit a record the new
owner has already started again. ``PartitionGate`` closes that: a rebalance waits until the record in hand is
committed before giving its partitions up, and a record of a partition given up is left to its new owner. What
stays open is a replica that loses its partitions without a rebalance reaching it (a long GC pause, a network
partition): it can still commit once.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
from collections.abc import AsyncIterator, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from aiokafka import ConsumerRebalanceListener, TopicPartition
from aiokafka.structs import OffsetAndMetadata
from opentelemetry import context as otel_context

__all__ = ["PartitionGate", "TransactionalOutbox", "next_offsets", "outside_record"]


@dataclass(frozen=True)
class _Pending:
    """One publish recorded while a record is handled."""

    message: Any
    topic: str
    key: bytes | Any | None
    headers: dict[str, str] | None
    trace: otel_context.Context


#: The publishes of the record being handled in this task (None: publish at once, in a transaction of its own).
_PENDING: contextvars.ContextVar[list[_Pending] | None] = contextvars.ContextVar("llmops_pending", default=None)


@contextlib.contextmanager
def outside_record() -> Iterator[None]:
    """Publish at once from here (streamed chunks), not with the record's outputs at its end."""
    token = _PENDING.set(None)
    try:
        yield
    finally:
        _PENDING.reset(token)


def next_offsets(records: list[tuple[str, int, int]]) -> dict[TopicPartition, int]:
    """The offsets to commit after ``(topic, partition, offset)`` records: one past the highest, per partition."""
    out: dict[TopicPartition, int] = {}
    for topic, partition, offset in records:
        tp = TopicPartition(topic, partition)
        out[tp] = max(out.get(tp, 0), offset + 1)
    return out


class TransactionalOutbox:
    """The runner's publisher in exactly-once mode: a record's outputs and its offsets, committed together.

    ``broker`` is the service's FastStream ``KafkaBroker`` built with a ``transactional_id``; publishing still
    goes through it (so its middlewares put the trace context into each output's headers).

    Example:
        >>> outbox = TransactionalOutbox(broker, group_id="llmops-safety")
        >>> async with outbox.consuming({TopicPartition("llmops.grounded", 0): 43}):
        ...     await runner.handle(raw, record, process=logic, route=route)  # publishes are recorded
        >>> # here the outputs and offset 43 are committed in one transaction (or nothing is, and it raised)

    """

    def __init__(self, broker: Any, *, group_id: str) -> None:
        self.broker = broker
        self.group_id = group_id
        # One transaction at a time per producer: Kafka's transactions are per producer, not per task.
        self._lock = asyncio.Lock()
        #: Transactions committed and aborted, for tests and metrics.
        self.committed = 0
        self.aborted = 0

    def _producer(self) -> Any:
        """The transactional AIOKafkaProducer under FastStream's broker."""
        return self.broker.config.broker_config.producer._producer.producer  # noqa: SLF001 - no public accessor

    async def publish(
        self,
        message: Any,
        topic: str = "",
        *,
        key: bytes | Any | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        """Record the output of the record being handled; outside a record, publish it in its own transaction."""
        pending = _PENDING.get()
        item = _Pending(message, topic, key, headers, otel_context.get_current())
        if pending is not None:
            pending.append(item)
            return
        await self._commit([item], {})

    @contextlib.asynccontextmanager
    async def consuming(self, offsets: Mapping[TopicPartition, int]) -> AsyncIterator[list[Any]]:
        """Record the publishes made inside; at the end commit them with ``offsets`` in one transaction.

        If the block raises, nothing is published and nothing is committed (the caller rewinds the consumer).
        """
        pending: list[_Pending] = []
        token = _PENDING.set(pending)
        try:
            yield pending
        finally:
            _PENDING.reset(token)
        await self._commit(pending, offsets)

    async def _commit(self, items: list[_Pending], offsets: Mapping[TopicPartition, int]) -> None:
        async with self._lock:
            producer = self._producer()
            await producer.begin_transaction()
            try:
                futures = [await self._send(item) for item in items]
                await asyncio.gather(*futures)
                if offsets:
                    committed = {tp: OffsetAndMetadata(offset, "") for tp, offset in offsets.items()}
                    await producer.send_offsets_to_transaction(committed, self.group_id)
                await producer.commit_transaction()
            except BaseException:
                self.aborted += 1
                with contextlib.suppress(Exception):
                    await producer.abort_transaction()
                raise
            self.committed += 1

    async def _send(self, item: _Pending) -> asyncio.Future[Any]:
        """Hand one output to the producer in its recorded trace context; the future of its acknowledgement."""
        token = otel_context.attach(item.trace)
        try:
            future: asyncio.Future[Any] = await self.broker.publish(
                item.message, item.topic, key=item.key, headers=item.headers, no_confirm=True
            )
        finally:
            otel_context.detach(token)
        return future


def fetched_in_this_assignment(consumer: Any, topic: str, partition: int, offset: int) -> bool:
    """Whether a record the consumer returned belongs to its current assignment of the partition.

    After a rebalance the consumer's position of a partition it kept is reset to the committed offset, and a
    partition it lost has no state at all: a record fetched before (and not yet handled) is at or past that
    position, or of no partition held. Read from aiokafka's subscription state (no public accessor; aiokafka
    0.14), without waiting: ``consumer.position()`` would wait for the rebalance the caller is holding off.
    """
    assignment = consumer._subscription.subscription.assignment if consumer._subscription.subscription else None  # noqa: SLF001
    state = assignment.state_value(TopicPartition(topic, partition)) if assignment is not None else None
    return state is not None and state.has_valid_position and offset < state.position


class PartitionGate(ConsumerRebalanceListener):  # type: ignore[misc]  # aiokafka is untyped
    """Exactly-once across rebalances: partitions are given up only between transactions.

    The consumer's rebalance listener. Records are handled inside ``holding(...)``; a rebalance that takes
    partitions away waits (in ``on_partitions_revoked``, before the consumer rejoins its group) until the
    records in hand are committed, so the partition's next owner starts after them. A record fetched before a
    rebalance and not handled yet is left out (its partition's owner reads it again from the committed offset).

    Example:
        >>> gate = PartitionGate()
        >>> async with gate.holding(consumer, records) as current:
        ...     ...  # handle ``current`` (the records still this replica's), commit their transaction

    """

    def __init__(self) -> None:
        self._lock = asyncio.Lock()
        #: Records left to their partition's owner after a rebalance, for tests and logs.
        self.skipped = 0

    @contextlib.asynccontextmanager
    async def holding(self, consumer: Any, records: list[Any]) -> AsyncIterator[list[Any]]:
        """Hold off rebalances while the block runs; yields the records still of this replica's assignment.

        ``records`` have ``topic``, ``partition`` and ``offset`` (consumer records, ``ReceivedRecord``).
        """
        async with self._lock:
            current = [r for r in records if fetched_in_this_assignment(consumer, r.topic, r.partition, r.offset)]
            self.skipped += len(records) - len(current)
            yield current

    async def on_partitions_revoked(self, revoked: set[TopicPartition]) -> None:  # noqa: ARG002 - all of them
        """Wait for the records in hand to be committed; then the consumer rejoins its group."""
        async with self._lock:
            return

    async def on_partitions_assigned(self, assigned: set[TopicPartition]) -> None:
        """Nothing to do: records fetched before are recognised by their position (``holding``)."""
