"""The whole pipeline: a real Apache Kafka broker, all five services as processes, the real default model; the gateway."""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import sys
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from shared.runtime.settings import CoreSettings
from shared.stack.brokers import client_env
from shared.stack.embedded import EmbeddedStack, free_port
from shared.stack.processes import http_status, spawn, stop_process
from tests.conftest import core_settings


@pytest.fixture(scope="session")
def qdrant_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The knowledge store folder of the session's grounding service (not the user's data directory)."""
    return tmp_path_factory.mktemp("qdrant")


@pytest.fixture(scope="session")
async def pipeline_stack(
    kafka: str, models_dir: Path, qdrant_path: Path, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[EmbeddedStack]:
    """Start the five services against the session broker (their health ports and logs are on the stack)."""
    core = core_settings(kafka)
    stack = EmbeddedStack(
        core,
        external=True,
        log_dir=tmp_path_factory.mktemp("e2e-logs"),
        extra_env={"LLMOPS_QDRANT_PATH": str(qdrant_path), **client_env("kafka")},
    )
    try:
        await stack.start(timeout=240)
        yield stack
    finally:
        stack.stop()


@pytest.fixture(scope="session")
def pipeline(pipeline_stack: EmbeddedStack) -> CoreSettings:
    """The settings clients use to talk to the running pipeline."""
    return pipeline_stack.core


@dataclass(frozen=True)
class GatewayEndpoint:
    """A running gateway: its base URL and an API key it accepts."""

    url: str
    key: str


@pytest.fixture(scope="session")
async def gateway(pipeline: CoreSettings, tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[GatewayEndpoint]:
    """The HTTP gateway as its own process (`python -m services.gateway`) in front of the pipeline."""
    key = "sk-e2e-" + uuid.uuid4().hex
    port = free_port()
    auth = {"keys": [{"sha256": hashlib.sha256(key.encode()).hexdigest(), "tenant": "e2e", "name": "e2e"}]}
    env = dict(os.environ) | {
        "LLMOPS_KAFKA_BOOTSTRAP": pipeline.kafka.bootstrap,
        "LLMOPS_TOPIC_PREFIX": pipeline.topics.prefix,
        "LLMOPS_GATEWAY_PORT": str(port),
        "LLMOPS_GATEWAY_REPLICA": "e2e",
        "LLMOPS_GATEWAY_AUTH": json.dumps(auth),
        "LLMOPS_LOG_FORMAT": "json",
    }
    env.pop("LLMOPS_GATEWAY_AUTH_FILE", None)
    log_path = tmp_path_factory.mktemp("gateway") / "gateway.log"
    proc = spawn([sys.executable, "-m", "services.gateway"], env=env, log_path=log_path)
    try:
        for _ in range(300):
            assert proc.poll() is None, log_path.read_text()
            if await http_status("127.0.0.1", port, "/healthz") == 200:
                break
            await asyncio.sleep(0.1)
        else:
            pytest.fail(f"gateway not ready: {log_path.read_text()[-2000:]}")
        yield GatewayEndpoint(f"http://127.0.0.1:{port}", key)
    finally:
        stop_process(proc, timeout=20)
