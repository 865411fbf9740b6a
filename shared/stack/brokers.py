"""The brokers ``llmops up`` can start: the embedded Tansu (the default) or Apache Kafka from Maven.

Each kind comes with the client settings that suit it, passed to every service the stack starts:
- Tansu refuses the idempotent producer's handshake (InitProducerId), so idempotence is off, and it answers a
  fetch only when the fetch's wait expires, so the request path polls every 5 ms (the settings' defaults).
- Apache Kafka answers a fetch as soon as data arrives, so a long wait costs no latency and spares the idle
  stack hundreds of polls a second; idempotent producers stay on (the default).
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal, Protocol

from shared.stack.kafka import KafkaServer
from shared.stack.tansu import TansuBroker

__all__ = ["BROKER_KINDS", "BrokerKind", "BrokerProcess", "client_env", "make_broker_process"]

BrokerKind = Literal["tansu", "kafka"]
BROKER_KINDS: tuple[BrokerKind, ...] = ("tansu", "kafka")


class BrokerProcess(Protocol):
    """What a stack needs of a broker it starts (TansuBroker and KafkaServer both are one)."""

    @property
    def bootstrap(self) -> str:  # noqa: D102 - see the classes
        ...

    async def start(self, *, timeout: float = ...) -> None:  # noqa: D102
        ...

    def stop(self) -> None:  # noqa: D102
        ...


def make_broker_process(kind: BrokerKind, host: str, port: int, *, log_dir: Path) -> BrokerProcess:
    """An unstarted broker of ``kind`` on ``host:port``, logging under ``log_dir``."""
    if kind == "kafka":
        return KafkaServer(host, port, log_path=log_dir / "kafka.log")
    return TansuBroker(host, port, log_path=log_dir / "tansu.log")


def client_env(kind: BrokerKind) -> dict[str, str]:
    """``LLMOPS_KAFKA_*`` settings for the clients of a broker of ``kind`` (services, the stack's own chat)."""
    if kind == "kafka":
        return {"LLMOPS_KAFKA_FETCH_MAX_WAIT_MS": "100", "LLMOPS_KAFKA_SIDE_FETCH_MAX_WAIT_MS": "500"}
    return {"LLMOPS_KAFKA_ENABLE_IDEMPOTENCE": "false"}
