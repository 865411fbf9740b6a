"""Ask the pipeline with a bare aiokafka client: no llmops code, just the JSON wire format.

python examples/raw_aiokafka_client.py "What is the capital of France?"
"""

import asyncio
import json
import os
import sys
import uuid

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition

BOOTSTRAP = os.environ.get("LLMOPS_KAFKA_BOOTSTRAP", "127.0.0.1:9092")


async def ask(question: str) -> dict:
    # The embedded Tansu has no idempotent producer; Apache Kafka does (LLMOPS_KAFKA_ENABLE_IDEMPOTENCE=true).
    idempotent = os.environ.get("LLMOPS_KAFKA_ENABLE_IDEMPOTENCE", "false").lower() == "true"
    producer = AIOKafkaProducer(bootstrap_servers=BOOTSTRAP, enable_idempotence=idempotent)
    await producer.start()
    consumer = AIOKafkaConsumer(bootstrap_servers=BOOTSTRAP, fetch_max_wait_ms=5)
    await consumer.start()
    parts = [TopicPartition("llmops.responses", p) for p in await producer.partitions_for("llmops.responses")]
    consumer.assign(parts)
    await consumer.seek_to_end(*parts)
    for tp in parts:  # resolve the end offsets before asking, so the answer cannot be missed
        await consumer.position(tp)

    request_id = uuid.uuid4().hex
    request = {"request_id": request_id, "messages": [{"role": "user", "content": question}], "max_tokens": 64}
    await producer.send_and_wait("llmops.requests", json.dumps(request).encode(), key=b"raw-example")
    try:
        async for record in consumer:
            answer = json.loads(record.value)
            if answer["request_id"] == request_id:
                return answer
    finally:
        await producer.stop()
        await consumer.stop()
    raise RuntimeError("consumer stopped")


if __name__ == "__main__":
    reply = asyncio.run(ask(sys.argv[1] if len(sys.argv) > 1 else "What is the capital of France?"))
    print(reply["response"]["text"] if reply["error"] is None else f"error: {reply['error']}")
