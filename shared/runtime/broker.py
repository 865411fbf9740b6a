"""Broker factory: one place for the Kafka client settings every service uses."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

from faststream.kafka import KafkaBroker

from shared.runtime.logging import get_logger
from shared.runtime.security import faststream_security
from shared.runtime.settings import KafkaSettings

__all__ = ["consumer_options", "make_broker"]


def make_broker(
    settings: KafkaSettings,
    *,
    client_id: str,
    graceful_timeout: float = 60.0,
    middlewares: Sequence[Any] = (),
    transactional_id: str | None = None,
) -> KafkaBroker:
    """Build a FastStream Kafka broker with the producer tuned for low latency.

    ``graceful_timeout``: on stop, how long in-flight handlers may run before they are cancelled.
    ``middlewares``: FastStream broker middlewares (the telemetry one carries trace context in headers).
    ``transactional_id``: a transactional producer (exactly-once stages; one id per replica).
    """
    acks: Any = "all" if settings.acks == "all" else int(settings.acks)
    return KafkaBroker(
        settings.bootstrap.split(","),
        client_id=f"{settings.client_id}-{client_id}",
        request_timeout_ms=settings.request_timeout_ms,
        acks=acks,
        linger_ms=settings.linger_ms,
        enable_idempotence=settings.enable_idempotence or transactional_id is not None,
        transactional_id=transactional_id,
        transaction_timeout_ms=settings.transaction_timeout_ms,
        max_request_size=settings.max_message_bytes + 64 * 1024,
        allow_auto_create_topics=False,
        security=faststream_security(settings),
        graceful_timeout=graceful_timeout,
        middlewares=tuple(middlewares),
        logger=get_logger("faststream"),
        log_level=logging.DEBUG,  # per-message lines; each stage writes its own canonical line at INFO
    )


def consumer_options(settings: KafkaSettings, *, request_path: bool = True) -> dict[str, Any]:
    """Consumer settings for ``broker.subscriber(...)``: low fetch wait, fast failure detection.

    ``request_path=False`` for consumers no request waits on (cache entries, usage, ingest): they
    use ``side_fetch_max_wait_ms``. On a broker that answers a fetch only when its wait expires
    (the embedded Tansu does, for consumers in another process) the wait bounds a hop's latency,
    and every idle consumer costs a poll per wait on both sides; side consumers need not pay that.
    """
    wait = settings.fetch_max_wait_ms if request_path else settings.side_fetch_max_wait_ms
    return {
        "fetch_max_wait_ms": wait,
        "fetch_min_bytes": settings.fetch_min_bytes,
        "session_timeout_ms": settings.session_timeout_ms,
        "heartbeat_interval_ms": settings.heartbeat_interval_ms,
        "max_poll_interval_ms": settings.max_poll_interval_ms,
        "max_partition_fetch_bytes": settings.max_message_bytes + 64 * 1024,
        "auto_offset_reset": "earliest",
        # Exactly-once: outputs of transactions cut short by a crash are never read.
        "isolation_level": "read_committed" if settings.exactly_once else "read_uncommitted",
    }
