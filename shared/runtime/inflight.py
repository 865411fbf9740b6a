"""Records handled concurrently, committed in order (at least once).

A stage that serves several records at once (inference decoding N sequences together) cannot wait for a
whole poll to finish before taking the next record: a request that arrives while others generate should
start at once. ``ConcurrentRecords`` starts each record as soon as a slot is free and commits, per
partition, only up to the lowest record still in flight (``OffsetTracker``): a crash redelivers exactly
what had not finished (and possibly some that had: at least once). Records with the same key (one
conversation) run one after another, so their answers are published in order.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Awaitable, Callable
from typing import Any

from aiokafka import ConsumerRebalanceListener, TopicPartition

from shared.runtime.logging import get_logger
from shared.runtime.runner import ReceivedRecord

__all__ = ["ConcurrentRecords", "OffsetTracker"]

#: Handles one record to the end (outputs acknowledged); returns its outcome. Raises only when even the
#: error answer could not be published (the broker away): the record is then tried again.
HandleFn = Callable[[bytes, ReceivedRecord], Awaitable[str]]
OutcomeFn = Callable[[str, float], None]

_RETRY_FIRST_S = 0.5
_RETRY_MAX_S = 30.0


class OffsetTracker:
    """Per partition: the records in flight and the offset that may be committed (the lowest unfinished).

    Example:
        >>> tracker = OffsetTracker()
        >>> tracker.start(tp, 5); tracker.start(tp, 6)
        >>> tracker.finish(tp, 6)
        >>> tracker.committable()   # 5 is still running: nothing past it
        {tp: 5}

    """

    def __init__(self) -> None:
        self._open: dict[TopicPartition, set[int]] = {}
        self._next: dict[TopicPartition, int] = {}
        self._committed: dict[TopicPartition, int] = {}

    def start(self, tp: TopicPartition, offset: int) -> None:
        """A record of ``tp`` is being handled."""
        self._open.setdefault(tp, set()).add(offset)

    def finish(self, tp: TopicPartition, offset: int) -> None:
        """That record's outputs are acknowledged (a partition no longer tracked is ignored)."""
        running = self._open.get(tp)
        if running is None:
            return
        running.discard(offset)
        self._next[tp] = max(self._next.get(tp, 0), offset + 1)

    def in_flight(self, tp: TopicPartition | None = None) -> int:
        """Records being handled (of ``tp``, or of all partitions)."""
        if tp is not None:
            return len(self._open.get(tp, ()))
        return sum(len(offsets) for offsets in self._open.values())

    def committable(self) -> dict[TopicPartition, int]:
        """For each partition whose commit point moved: the lowest unfinished offset, or the last finished + 1."""
        out: dict[TopicPartition, int] = {}
        for tp, running in self._open.items():
            target = min(running) if running else self._next.get(tp)
            if target is not None and target > self._committed.get(tp, -1):
                out[tp] = target
        return out

    def committed(self, offsets: dict[TopicPartition, int]) -> None:
        """The broker has those offsets."""
        for tp, offset in offsets.items():
            self._committed[tp] = max(self._committed.get(tp, -1), offset)

    def forget(self, partitions: set[TopicPartition]) -> None:
        """Partitions taken away: their records' fate is their next owner's."""
        for tp in partitions:
            self._open.pop(tp, None)
            self._next.pop(tp, None)
            self._committed.pop(tp, None)


class ConcurrentRecords(ConsumerRebalanceListener):  # type: ignore[misc]  # aiokafka is untyped
    """Up to ``limit`` records in flight; offsets committed per partition up to the lowest unfinished one.

    The subscriber's handler calls ``admit`` for each record it receives, in order; ``admit`` waits for a
    free slot (so the consumer stops fetching while all slots are busy), starts the record and returns.
    Also the consumer's rebalance listener: a revoked partition's finished records are committed first,
    then it is forgotten (its records still running finish, their answers go out, their offsets are the
    next owner's to commit: at least once).

    Example:
        >>> records = ConcurrentRecords(8, handle=runner_handle)
        >>> await records.admit(consumer, body, record)   # returns once the record has started
        >>> await records.drain(timeout=30)               # at shutdown

    """

    def __init__(self, limit: int, *, handle: HandleFn, on_outcome: OutcomeFn | None = None) -> None:
        self.limit = limit
        self.handle = handle
        self.on_outcome = on_outcome
        self.tracker = OffsetTracker()
        self._slots = asyncio.Semaphore(limit)
        self._tails: dict[bytes | None, asyncio.Task[None]] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        self._consumer: Any = None
        self._closing = False
        self.log = get_logger("llmops.inflight")
        #: The most records in flight at once, for tests and logs.
        self.peak = 0

    async def admit(self, consumer: Any, body: bytes, record: ReceivedRecord) -> None:
        """Start ``record`` once a slot is free; returns when it has started (or at once when closing)."""
        await self._slots.acquire()
        if self._closing:
            self._slots.release()
            return  # not started, not committed: read again by whoever consumes next
        self._consumer = consumer
        tp = TopicPartition(record.topic, record.partition)
        self.tracker.start(tp, record.offset)
        previous = self._tails.get(record.key)
        task = asyncio.create_task(self._run(tp, body, record, previous))
        self._tails[record.key] = task
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        self.peak = max(self.peak, len(self._tasks))

    async def _run(
        self, tp: TopicPartition, body: bytes, record: ReceivedRecord, previous: asyncio.Task[None] | None
    ) -> None:
        try:
            if previous is not None:
                await asyncio.wait([previous])  # one conversation's records in order
            t0 = time.perf_counter()
            outcome = await self._handle_until_done(body, record)
            if self.on_outcome is not None:
                self.on_outcome(outcome, time.perf_counter() - t0)
            self.tracker.finish(tp, record.offset)
            await self.commit()
        finally:
            self._slots.release()
            if self._tails.get(record.key) is asyncio.current_task():
                del self._tails[record.key]

    async def _handle_until_done(self, body: bytes, record: ReceivedRecord) -> str:
        """The runner answers every failure itself; it raises only when the broker took nothing: try again."""
        delay = _RETRY_FIRST_S
        while True:
            try:
                return await self.handle(body, record)
            except Exception:
                self.log.warning(
                    "record.retry", topic=record.topic, partition=record.partition, offset=record.offset, exc_info=True
                )
                await asyncio.sleep(delay)
                delay = min(delay * 2, _RETRY_MAX_S)

    async def commit(self) -> None:
        """Commit every partition's lowest unfinished offset (or last finished + 1) that moved."""
        offsets = self.tracker.committable()
        if not offsets or self._consumer is None:
            return
        try:
            await self._consumer.commit(offsets)
        except Exception as exc:  # noqa: BLE001 - a rebalance under way, the broker away: the next commit carries it
            self.log.warning("offsets.commit_failed", error=f"{type(exc).__name__}: {exc}")
            return
        self.tracker.committed(offsets)

    async def drain(self, timeout: float) -> None:
        """Stop starting records, wait up to ``timeout`` for those in flight, and commit what finished."""
        self._closing = True
        if self._tasks:
            _, pending = await asyncio.wait(set(self._tasks), timeout=timeout)
            if pending:
                self.log.warning("inflight.drain_timeout", records=len(pending))
                for task in pending:
                    task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await asyncio.gather(*pending, return_exceptions=True)
        await self.commit()

    async def on_partitions_revoked(self, revoked: set[TopicPartition]) -> None:
        """Commit what finished, then let the partitions go."""
        await self.commit()
        self.tracker.forget(set(revoked))

    async def on_partitions_assigned(self, assigned: set[TopicPartition]) -> None:
        """Nothing: a new partition is read from its committed offset."""
