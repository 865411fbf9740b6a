"""Starting a client's producer: idempotent where the broker allows it, said clearly where it does not."""

from __future__ import annotations

from collections.abc import Callable

from aiokafka import AIOKafkaProducer
from aiokafka.errors import UnknownError

from shared.runtime.logging import get_logger
from shared.runtime.settings import KafkaSettings

__all__ = ["start_producer"]

log = get_logger("llmops.kafka")


async def start_producer(make: Callable[[bool], AIOKafkaProducer], settings: KafkaSettings) -> AIOKafkaProducer:
    """``make(enable_idempotence)`` started; a broker that refuses the idempotent handshake gets a plain producer.

    Apache Kafka grants every producer an id (InitProducerId). The embedded Tansu answers that request with an
    unknown error: a client pointed at it by hand (``llmops ask`` beside ``llmops up``) then goes on without
    idempotence, with a warning, instead of failing. Services do not fall back: ``llmops up`` configures them.
    """
    producer = make(settings.enable_idempotence)
    try:
        await producer.start()
    except UnknownError:
        if not settings.enable_idempotence:
            raise
        await producer.stop()
        log.warning(
            "kafka.idempotence_refused",
            bootstrap=settings.bootstrap,
            hint="the broker refused InitProducerId (Tansu does); set LLMOPS_KAFKA_ENABLE_IDEMPOTENCE=false",
        )
        producer = make(False)  # noqa: FBT003 - the factory's one argument
        await producer.start()
    return producer
