"""Consumer lag of each stage's group: end offsets of its input topic minus the group's committed offsets."""

from __future__ import annotations

import asyncio
import contextlib
import time

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient

from shared.contracts.topology import stage_inputs
from shared.runtime.logging import get_logger
from shared.runtime.metadata import topic_partitions
from shared.runtime.security import client_security_kwargs
from shared.runtime.settings import CoreSettings

__all__ = ["LagProbe"]


class LagProbe:
    """Measures the lag of the ``llmops-<stage>`` groups, at most once per ``cache_s``; ``None`` where unknown."""

    def __init__(self, core: CoreSettings, *, cache_s: float = 2.0, timeout_s: float = 3.0) -> None:
        self.core = core
        self.cache_s = cache_s
        self.timeout_s = timeout_s
        self._admin: AIOKafkaAdminClient | None = None
        self._consumer: AIOKafkaConsumer | None = None
        self._cached: tuple[float, dict[str, int | None]] | None = None
        self._lock = asyncio.Lock()
        self.log = get_logger("llmops.lag")

    async def stop(self) -> None:
        """Close the admin and offsets clients."""
        if self._admin is not None:
            with contextlib.suppress(Exception):
                await self._admin.close()
            self._admin = None
        if self._consumer is not None:
            with contextlib.suppress(Exception):
                await self._consumer.stop()
            self._consumer = None

    async def measure(self) -> dict[str, int | None]:
        """Messages waiting per stage."""
        async with self._lock:
            now = time.monotonic()
            if self._cached is not None and now - self._cached[0] < self.cache_s:
                return self._cached[1]
            try:
                lag = await asyncio.wait_for(self._measure(), self.timeout_s)
            except Exception as exc:  # noqa: BLE001 - stats must never fail the caller
                self.log.warning("lag.unavailable", error=f"{type(exc).__name__}: {exc}")
                await self.stop()
                lag = dict.fromkeys(stage_inputs(self.core.topics))
            self._cached = (now, lag)
            return lag

    async def _measure(self) -> dict[str, int | None]:
        servers = self.core.kafka.bootstrap.split(",")
        if self._admin is None:
            self._admin = AIOKafkaAdminClient(
                bootstrap_servers=servers,
                client_id=f"{self.core.kafka.client_id}-lag",
                **client_security_kwargs(self.core.kafka),
            )
            await self._admin.start()
        if self._consumer is None:
            self._consumer = AIOKafkaConsumer(
                bootstrap_servers=servers,
                group_id=None,
                enable_auto_commit=False,
                **client_security_kwargs(self.core.kafka),
            )
            await self._consumer.start()
        lag: dict[str, int | None] = {}
        for stage, topic in stage_inputs(self.core.topics).items():
            partitions = await topic_partitions(self._consumer, topic)
            tps = [TopicPartition(topic, p) for p in sorted(partitions)]
            ends = await self._consumer.end_offsets(tps)
            committed = await self._admin.list_consumer_group_offsets(f"llmops-{stage}", partitions=tps)
            total = 0
            for tp in tps:
                meta = committed.get(tp)
                done = meta.offset if meta is not None and meta.offset >= 0 else 0
                total += max(0, ends.get(tp, 0) - done)
            lag[stage] = total
        return lag
