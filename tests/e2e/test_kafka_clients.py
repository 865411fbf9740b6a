"""Clients that are not ours, on Apache Kafka: librdkafka's (confluent-kafka, kcat) in consumer groups.

Each produces a request in the wire format (README "Any Kafka client") and consumes the answer as a member of a
consumer group of its own: join, assignment, fetch, commit. On the embedded Tansu librdkafka clients hang
joining a group; on Apache Kafka they must just work.
"""

from __future__ import annotations

import asyncio
import json
import shutil
import time
import uuid
from typing import Any

import pytest

from shared.runtime.settings import CoreSettings

pytestmark = pytest.mark.e2e

QUESTION = "What is the capital of France?"


def _request(request_id: str) -> bytes:
    return json.dumps(
        {"request_id": request_id, "messages": [{"role": "user", "content": QUESTION}], "max_tokens": 16}
    ).encode()


def confluent_round_trip(core: CoreSettings, request_id: str, timeout_s: float) -> dict[str, Any]:
    """Join a new group on the reply topic, wait for the assignment, produce the request, consume its answer."""
    from confluent_kafka import Consumer, Producer

    bootstrap = core.kafka.bootstrap
    assigned: list[object] = []
    consumer = Consumer(
        {
            "bootstrap.servers": bootstrap,
            "group.id": f"librdkafka-{uuid.uuid4().hex[:8]}",
            # A new group reads the reply topic from its start (filtered by request id): no race with the
            # assignment's "latest" offset lookup, which librdkafka does lazily, after the rebalance.
            "auto.offset.reset": "earliest",
            "enable.auto.commit": True,
        }
    )
    consumer.subscribe([core.topics.responses], on_assign=lambda _c, parts: assigned.extend(parts))
    try:
        deadline = time.monotonic() + timeout_s
        while not assigned:
            assert time.monotonic() < deadline, "librdkafka consumer never got its assignment"
            consumer.poll(0.2)
        producer = Producer({"bootstrap.servers": bootstrap, "enable.idempotence": True, "acks": "all"})
        producer.produce(core.topics.requests, _request(request_id), key=b"librdkafka")
        assert producer.flush(30) == 0
        while time.monotonic() < deadline:
            msg = consumer.poll(0.5)
            if msg is None or msg.error():
                continue
            answer: dict[str, Any] = json.loads(msg.value())
            if answer["request_id"] == request_id:
                consumer.commit(message=msg, asynchronous=False)
                return answer
        raise AssertionError("no answer through the librdkafka consumer")
    finally:
        consumer.close()


class TestLibrdkafkaClients:
    async def test_confluent_kafka_in_a_consumer_group(self, pipeline: CoreSettings) -> None:
        """confluent-kafka: an idempotent producer sends the request; a group member reads and commits the answer."""
        request_id = f"rdk-{uuid.uuid4().hex}"
        answer = await asyncio.to_thread(confluent_round_trip, pipeline, request_id, 120)
        assert answer["error"] is None
        assert "Paris" in answer["response"]["text"]

    @pytest.mark.skipif(shutil.which("kcat") is None, reason="kcat is not installed (.ci/run installs it)")
    async def test_kcat_in_a_consumer_group(self, pipeline: CoreSettings) -> None:
        """kcat -G (a balanced group consumer) reads the answer to a request kcat -P produced."""
        request_id = f"kcat-{uuid.uuid4().hex}"
        bootstrap = pipeline.kafka.bootstrap
        group = f"kcat-{uuid.uuid4().hex[:8]}"
        consumer = await asyncio.create_subprocess_exec(
            "kcat",
            "-u",  # unbuffered: each answer line as it comes
            "-b",
            bootstrap,
            "-G",
            group,
            "-X",
            "auto.offset.reset=earliest",  # from the topic's start, filtered by request id (see above)
            "-f",
            "%s\\n",
            pipeline.topics.responses,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        try:
            assert consumer.stderr is not None
            assert consumer.stdout is not None
            while True:  # kcat reports the group's assignment on stderr
                line = await asyncio.wait_for(consumer.stderr.readline(), 60)
                assert line, "kcat exited before joining its group"
                if b"assigned" in line.lower():
                    break
            producer = await asyncio.create_subprocess_exec(
                "kcat",
                "-P",
                "-b",
                bootstrap,
                "-t",
                pipeline.topics.requests,
                "-K",
                "|",
                stdin=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.PIPE,
            )
            _, errors = await asyncio.wait_for(producer.communicate(b"kcat|" + _request(request_id) + b"\n"), 60)
            assert producer.returncode == 0, errors.decode()
            deadline = time.monotonic() + 120
            while True:
                line = await asyncio.wait_for(consumer.stdout.readline(), max(1.0, deadline - time.monotonic()))
                answer = json.loads(line)
                if answer["request_id"] == request_id:
                    break
        finally:
            consumer.terminate()
            await consumer.wait()
        assert answer["error"] is None
        assert "Paris" in answer["response"]["text"]
