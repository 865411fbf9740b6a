"""Fixtures shared by the whole suite: the real models, real brokers (Apache Kafka, Tansu), in-memory capture.

Each broker starts once per session: ``kafka`` (Apache Kafka from Maven, KRaft: what the pipeline's tests run
on) and ``tansu`` (the embedded default of `make run`, for its smoke tests and what is specific to it).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from pathlib import Path

import pytest
from aiokafka import AIOKafkaConsumer, TopicPartition
from faststream.kafka import KafkaBroker

from shared.contracts.envelope import ChatMessage, Envelope, Request
from shared.models.model_store import ModelIntegrityError, ModelMissingError, ensure_local
from shared.models.registry import ModelRegistry
from shared.runtime.service import raw_body
from shared.runtime.settings import CoreSettings, KafkaSettings, TopicSettings
from shared.stack.embedded import free_port
from shared.stack.kafka import KafkaServer
from shared.stack.kafka_jars import KafkaJarsError, kafka_libs, verify_jars
from shared.stack.tansu import TansuBroker

SMALL_MODEL = "gemma-3-270m"
CHAT_MODEL = "qwen2.5-coder-0.5b-instruct"


@pytest.fixture(scope="session")
def registry() -> ModelRegistry:
    return ModelRegistry.load()


@pytest.fixture(scope="session")
def models_dir(registry: ModelRegistry) -> Path:
    """The assembled models; `make install` fetches them (nothing is downloaded by tests)."""
    directory = CoreSettings().models_dir
    for name in registry.names():
        try:
            ensure_local(registry.get(name), directory)
        except (ModelMissingError, ModelIntegrityError) as exc:
            pytest.exit(f"{exc} (run `make install`)", returncode=3)
    return directory


@pytest.fixture(scope="session")
async def tansu(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[str]:
    """A real Tansu broker on a free port, for the whole session."""
    broker = TansuBroker("127.0.0.1", free_port(), log_path=tmp_path_factory.mktemp("tansu") / "tansu.log")
    await broker.start()
    yield broker.bootstrap
    broker.stop()


@pytest.fixture(scope="session")
async def kafka(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[str]:
    """A real Apache Kafka broker (KRaft, from `make kafka`'s jars) on a free port, for the whole session."""
    try:
        verify_jars(kafka_libs())
    except KafkaJarsError as exc:
        pytest.exit(f"{exc} (`make test` prepares them)", returncode=3)
    broker = KafkaServer("127.0.0.1", free_port(), log_path=tmp_path_factory.mktemp("kafka") / "kafka.log")
    await broker.start()
    yield broker.bootstrap
    broker.stop()


def core_settings(bootstrap: str = "127.0.0.1:9092", prefix: str = "llmops.") -> CoreSettings:
    """Core settings pointing at a broker, with a topic prefix so tests do not see each other's messages."""
    return CoreSettings(kafka=KafkaSettings(bootstrap=bootstrap), topics=TopicSettings(prefix=prefix))


def make_envelope(text: str = "What is the capital of France?", **fields: object) -> Envelope:
    """A client request envelope."""
    return Envelope(request=Request(messages=[ChatMessage(role="user", content=text)]), **fields)  # type: ignore[arg-type]


async def tail_consumer(core: CoreSettings, topic: str) -> AIOKafkaConsumer:
    """A group-less consumer of every partition of ``topic``, positioned at its end (nothing older is seen)."""
    consumer = AIOKafkaConsumer(bootstrap_servers=core.kafka.bootstrap, fetch_max_wait_ms=5)
    await consumer.start()
    tps = [TopicPartition(topic, p) for p in range(core.kafka.partitions)]
    consumer.assign(tps)
    await consumer.seek_to_end(*tps)
    for tp in tps:
        await consumer.position(tp)
    return consumer


def capture(broker: KafkaBroker, *topics: str) -> dict[str, list[bytes]]:
    """Subscribe to ``topics`` on a (test) broker and collect the raw values published there."""
    store: dict[str, list[bytes]] = {t: [] for t in topics}

    def collector(topic: str) -> Callable[[bytes], object]:
        async def collect(body: bytes) -> None:
            store[topic].append(body)

        return collect

    for topic in topics:
        broker.subscriber(topic, decoder=raw_body)(collector(topic))
    return store
