"""Tests for the service wiring helpers that do not need a broker."""

from __future__ import annotations

import time
from typing import Any

from faststream.kafka import KafkaBroker

from shared.messaging.broker import consumer_options
from shared.messaging.service import poll_without_idle_sleep
from shared.messaging.settings import KafkaSettings


class _Consumer:
    """Answers ``getmany`` like aiokafka: records by partition, or nothing after the timeout."""

    def __init__(self, batches: list[dict[str, list[int]]]) -> None:
        self.batches = batches
        self.calls: list[tuple[int, int | None]] = []

    async def getmany(self, *, timeout_ms: int, max_records: int | None) -> dict[str, list[int]]:
        self.calls.append((timeout_ms, max_records))
        return self.batches.pop(0) if self.batches else {}


class TestBatchPolling:
    async def test_empty_poll_returns_at_once_and_records_are_flattened(self) -> None:
        """No sleep after an empty poll (FastStream's default sleeps batch_timeout_ms); records in partition order."""
        broker = KafkaBroker("127.0.0.1:9")
        subscriber: Any = broker.subscriber("t", batch=True, max_records=32, batch_timeout_ms=500)
        poll_without_idle_sleep(subscriber, poll_ms=50)
        consumer = _Consumer([{}, {"p0": [1, 2], "p1": [3]}])
        t0 = time.perf_counter()
        assert await subscriber.get_msg(consumer) == ()
        assert time.perf_counter() - t0 < 0.1  # the 500 ms sleep is gone
        assert await subscriber.get_msg(consumer) == (1, 2, 3)
        assert consumer.calls == [(50, 32), (50, 32)]


class TestConsumerOptions:
    def test_side_consumers_poll_less_often(self) -> None:
        """Consumers off the request path use the side fetch wait; the request path keeps the short one."""
        kafka = KafkaSettings(fetch_max_wait_ms=5, side_fetch_max_wait_ms=100)
        assert consumer_options(kafka)["fetch_max_wait_ms"] == 5
        assert consumer_options(kafka, request_path=False)["fetch_max_wait_ms"] == 100
