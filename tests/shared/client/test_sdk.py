import asyncio

from aiokafka import AIOKafkaProducer

from shared.client import LlmopsClient
from shared.messaging.envelope import Chunk, Envelope, Response
from shared.stack.topics import ensure_topics
from tests.conftest import core_settings, tail_consumer


class TestLlmopsClient:
    async def test_one_answer_per_request_even_when_duplicated(self, tansu: str) -> None:
        """Duplicate answers (a redelivery upstream) are delivered once; unrelated answers are ignored."""
        core = core_settings(tansu, prefix="sdk-test.")
        await ensure_topics(core.kafka, core.topics.all())
        producer = AIOKafkaProducer(bootstrap_servers=tansu)
        await producer.start()
        async with LlmopsClient(core) as client:
            env = client.build("Hi")
            fut = await client.send(env)
            answer = env.model_copy(update={"kind": "final", "response": Response(text="Hello")})
            other = client.build("unrelated").model_copy(update={"kind": "final", "response": Response(text="x")})
            for value in (other.to_bytes(), answer.to_bytes(), answer.to_bytes()):
                await producer.send_and_wait(core.topics.responses, value, key=env.conversation_id.encode())
            result = await asyncio.wait_for(fut, 10)
            assert result.response is not None
            assert result.response.text == "Hello"
            await asyncio.sleep(0.3)
            assert client._pending == {}
            assert list(client._seen) == [env.request_id]
        await producer.stop()

    async def test_request_is_keyed_by_conversation(self, tansu: str) -> None:
        """The request topic key is the conversation id, so turns stay in order on one partition."""
        core = core_settings(tansu, prefix="sdk-key.")
        await ensure_topics(core.kafka, core.topics.all())
        async with LlmopsClient(core) as client:
            env = client.build("Hi", conversation_id="conv-42", timeout=5, max_tokens=7)
            assert env.conversation_id == "conv-42"
            assert env.require_request().params.max_tokens == 7
            assert env.deadline is not None
            await client.send(env)

    async def test_stream_yields_chunks_in_order_then_the_final(self, tansu: str) -> None:
        """Streamed pieces come in seq order with duplicates dropped, and the final answer ends the stream."""
        core = core_settings(tansu, prefix="sdk-stream.")
        await ensure_topics(core.kafka, core.topics.all())
        requests = await tail_consumer(core, core.topics.requests)
        producer = AIOKafkaProducer(bootstrap_servers=tansu)
        await producer.start()

        async def answer() -> None:
            record = await requests.getone()
            request = Envelope.from_bytes(record.value)
            assert request.require_request().stream
            routing = {"request_id": request.request_id, "conversation_id": request.conversation_id}
            chunks = [
                Envelope(kind="chunk", chunk=Chunk(seq=n, text=t), **routing) for n, t in enumerate(["Pa", "ris."])
            ]
            final = request.model_copy(update={"kind": "final", "response": Response(text="Paris.")})
            for env in (chunks[0], chunks[0], chunks[1], final):
                await producer.send_and_wait(
                    core.topics.responses, env.to_bytes(), key=request.conversation_id.encode()
                )

        try:
            async with LlmopsClient(core) as client:
                server = asyncio.create_task(answer())
                parts = [part async for part in client.stream("Capital of France?", timeout=20)]
                await server
                assert client._streams == {}
        finally:
            await producer.stop()
            await requests.stop()
        assert [p.kind for p in parts] == ["chunk", "chunk", "final"]
        assert "".join(p.chunk.text for p in parts if p.chunk) == "Paris."
