"""Publishing one output: the broker's ack awaited, transient failures retried a bounded number of times."""

from __future__ import annotations

import asyncio
import random
from typing import Any, Protocol

from aiokafka.errors import KafkaError

from shared.contracts.errors import PipelineError

__all__ = ["PUBLISH_ERRORS", "Publisher", "publish_failed", "send_with_retries"]

PUBLISH_ATTEMPTS = 4
#: What a publish raises once its bounded retries are spent.
PUBLISH_ERRORS = (KafkaError, TimeoutError)


class Publisher(Protocol):
    """What the runner needs from a broker: FastStream's ``KafkaBroker.publish``."""

    async def publish(  # noqa: D102 - the protocol mirrors KafkaBroker.publish
        self,
        message: Any,
        topic: str = "",
        *,
        key: bytes | Any | None = None,
        headers: dict[str, str] | None = None,
    ) -> Any: ...


def publish_failed(topic: str, exc: BaseException) -> PipelineError:
    """The output could not be published: the client gets this error and the input goes to the DLQ.

    If even those cannot be published (the broker is away), the exception propagates and the
    service's ``AckPolicy.NACK_ON_ERROR`` rewinds the offset: the message is redelivered, not lost.
    """
    return PipelineError("publish_failed", f"could not publish to {topic}: {type(exc).__name__}: {exc}", retriable=True)


async def send_with_retries(
    publisher: Publisher, topic: str, value: bytes, *, key: bytes | None, headers: dict[str, str], log: Any
) -> None:
    """Publish and wait for the broker's ack; a transient failure is retried with jittered backoff, then raised."""
    for attempt in range(1, PUBLISH_ATTEMPTS + 1):
        try:
            await publisher.publish(value, topic, key=key, headers=headers)
        except PUBLISH_ERRORS as exc:
            if attempt == PUBLISH_ATTEMPTS:
                raise
            delay = min(2.0, 0.1 * 2**attempt) * (0.5 + random.random())  # noqa: S311 - jitter, not crypto
            log.warning("publish.retry", topic=topic, attempt=attempt, error=str(exc), delay_s=round(delay, 3))
            await asyncio.sleep(delay)
        else:
            return
