import asyncio
import json
import uuid

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

from shared.runtime.settings import CoreSettings
from tests.conftest import tail_consumer

pytestmark = pytest.mark.e2e


async def _reply_consumer(core: CoreSettings) -> AIOKafkaConsumer:
    return await tail_consumer(core, core.topics.responses)


async def _answers(consumer: AIOKafkaConsumer, wanted: set[str]) -> dict[str, dict[str, object]]:
    found: dict[str, dict[str, object]] = {}
    async for record in consumer:
        body = json.loads(record.value)
        if body.get("request_id") in wanted:
            found[body["request_id"]] = body
            if set(found) == wanted:
                return found
    return found


class TestRawKafkaClient:
    async def test_minimal_json_request(self, pipeline: CoreSettings) -> None:
        """A bare aiokafka producer sends {"messages": [...]} and gets a JSON answer with the same request_id."""
        consumer = await _reply_consumer(pipeline)
        producer = AIOKafkaProducer(bootstrap_servers=pipeline.kafka.bootstrap)
        await producer.start()
        try:
            request_id = uuid.uuid4().hex
            value = {
                "request_id": request_id,
                "messages": [{"role": "user", "content": "What is the capital of France?"}],
                "max_tokens": 24,
            }
            await producer.send_and_wait(pipeline.topics.requests, json.dumps(value).encode(), key=b"raw-conv")
            answer = (await asyncio.wait_for(_answers(consumer, {request_id}), timeout=90))[request_id]
            assert answer["conversation_id"] == "raw-conv"
            assert answer["error"] is None
            assert "Paris" in answer["response"]["text"]  # type: ignore[index]
        finally:
            await producer.stop()
            await consumer.stop()

    async def test_garbage_does_not_stop_the_partition(self, pipeline: CoreSettings) -> None:
        """Invalid bytes, wrong shapes and unknown schema versions get error answers; the next request is served."""
        consumer = await _reply_consumer(pipeline)
        producer = AIOKafkaProducer(bootstrap_servers=pipeline.kafka.bootstrap)
        await producer.start()
        key = b"same-partition"
        try:
            bad = {
                "bad-shape": {"request_id": "bad-shape", "messages": "not a list"},
                "bad-version": {"request_id": "bad-version", "schema_version": 99, "messages": []},
            }
            await producer.send_and_wait(pipeline.topics.requests, b"\xff\xfe\x00 not json", key=key)
            for body in bad.values():
                await producer.send_and_wait(pipeline.topics.requests, json.dumps(body).encode(), key=key)
            good = {
                "request_id": "good-after-bad",
                "messages": [{"role": "user", "content": "Say OK."}],
                "max_tokens": 4,
            }
            await producer.send_and_wait(pipeline.topics.requests, json.dumps(good).encode(), key=key)
            answers = await asyncio.wait_for(_answers(consumer, {"bad-shape", "bad-version", "good-after-bad"}), 90)
            assert answers["bad-shape"]["error"]["code"] == "invalid_message"  # type: ignore[index]
            assert answers["bad-version"]["error"]["code"] == "invalid_message"  # type: ignore[index]
            assert answers["good-after-bad"]["error"] is None
        finally:
            await producer.stop()
            await consumer.stop()


class TestReadmeExample:
    def test_raw_aiokafka_example_answers(self, pipeline: CoreSettings) -> None:
        """The README's raw-client example program gets Paris from the running pipeline."""
        import os
        import subprocess
        import sys
        from pathlib import Path

        script = Path(__file__).resolve().parents[2] / "examples" / "raw_aiokafka_client.py"
        env = dict(os.environ) | {"LLMOPS_KAFKA_BOOTSTRAP": pipeline.kafka.bootstrap}
        run = subprocess.run(
            [sys.executable, str(script), "What is the capital of France?"],
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        assert run.returncode == 0, run.stderr
        assert "Paris" in run.stdout
