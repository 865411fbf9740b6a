import asyncio

import pytest
from aiokafka import AIOKafkaProducer

from shared.client import LlmopsClient
from shared.contracts.envelope import Chunk, Envelope, ErrorInfo, Response
from shared.stack.topics import ensure_topics
from tests.conftest import core_settings


class TestLlmopsClient:
    async def test_one_answer_per_request_even_when_duplicated(self, kafka: str) -> None:
        """Duplicate answers (a redelivery upstream) are delivered once; unrelated answers are ignored."""
        core = core_settings(kafka, prefix="sdk-test.")
        await ensure_topics(core.kafka, core.topics.all())
        producer = AIOKafkaProducer(bootstrap_servers=kafka)
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

    async def test_request_is_keyed_by_conversation(self, kafka: str) -> None:
        """The request topic key is the conversation id, so turns stay in order on one partition."""
        core = core_settings(kafka, prefix="sdk-key.")
        await ensure_topics(core.kafka, core.topics.all())
        async with LlmopsClient(core) as client:
            env = client.build("Hi", conversation_id="conv-42", timeout=5, max_tokens=7)
            assert env.conversation_id == "conv-42"
            assert env.require_request().params.max_tokens == 7
            assert env.deadline is not None
            await client.send(env)

    async def test_stream_yields_chunks_in_order_then_the_final(self, kafka: str) -> None:
        """Chunks come in seq order with redelivered pieces dropped, and the final answer ends the stream."""
        core = core_settings(kafka, prefix="sdk-stream.")
        await ensure_topics(core.kafka, core.topics.all())
        producer = AIOKafkaProducer(bootstrap_servers=kafka)
        await producer.start()
        async with LlmopsClient(core) as client:
            env = client.build("Hi", stream=True)
            assert env.require_request().stream is True
            pieces = client.iter_answer(env, timeout=10)
            first = asyncio.ensure_future(anext(pieces))
            await asyncio.sleep(0.2)  # the request is sent; now play the pipeline's part
            key = env.conversation_id.encode()
            chunks = [
                env.model_copy(update={"kind": "chunk", "chunk": Chunk(seq=seq, text=text)})
                for seq, text in [(0, "Hel"), (1, "lo"), (0, "Hel"), (2, "!")]
            ]
            final = env.model_copy(update={"kind": "final", "response": Response(text="Hello!")})
            for value in [*chunks, final, final]:
                await producer.send_and_wait(core.topics.responses, value.to_bytes(), key=key)
            received = [await asyncio.wait_for(first, 10)]
            received += [piece async for piece in pieces]
            assert [p.kind for p in received] == ["chunk", "chunk", "chunk", "final"]
            assert "".join(p.chunk.text for p in received if p.chunk) == "Hello!"
            assert client._streams == {}
            assert client._pending == {}
        await producer.stop()

    async def test_stream_without_chunks_is_just_the_final(self, kafka: str) -> None:
        """When upstream does not stream, the stream is the final answer alone; a silent pipeline times out."""
        core = core_settings(kafka, prefix="sdk-stream-final.")
        await ensure_topics(core.kafka, core.topics.all())
        producer = AIOKafkaProducer(bootstrap_servers=kafka)
        await producer.start()
        async with LlmopsClient(core) as client:
            env = client.build("Hi", stream=True)
            pieces = client.iter_answer(env, timeout=10)
            first = asyncio.ensure_future(anext(pieces))
            await asyncio.sleep(0.2)
            final = env.model_copy(update={"kind": "final", "response": Response(text="Hello")})
            await producer.send_and_wait(core.topics.responses, final.to_bytes(), key=env.conversation_id.encode())
            assert (await asyncio.wait_for(first, 10)).kind == "final"
            assert [p async for p in pieces] == []
            with pytest.raises(TimeoutError):
                async for _ in client.stream("nobody answers", timeout=0.5):
                    pass
            assert client._streams == {}
        await producer.stop()


class TestTenantTopic:
    def test_requests_go_to_the_tenants_own_topic_when_asked(self) -> None:
        """tenant_topic: a tenant's request goes to llmops.requests.<tenant>; the default tenant's stays shared."""
        client = LlmopsClient(tenant="acme", tenant_topic=True)
        assert client.request_topic(client.build("hi")) == "llmops.requests.acme"
        assert client.request_topic(client.build("hi", tenant="globex")) == "llmops.requests.globex"
        assert client.request_topic(client.build("hi", tenant="default")) == "llmops.requests"
        assert LlmopsClient(tenant="acme").request_topic(client.build("hi")) == "llmops.requests"


class TestForeignAnswers:
    """Issue 23: a shared reply topic (a gateway's) carries other tenants' answers; ids are the clients' own."""

    @staticmethod
    def _waiting(tenant: str) -> tuple[LlmopsClient, Envelope, asyncio.Future[Envelope]]:
        client = LlmopsClient(tenant=tenant)
        env = client.build("Hi")
        fut: asyncio.Future[Envelope] = asyncio.get_running_loop().create_future()
        client._pending[env.request_id] = fut
        client._tenants[env.request_id] = env.tenant
        return client, env, fut

    async def test_answer_of_another_tenant_with_the_same_id_is_dropped(self) -> None:
        """An answer carrying the request's id but another tenant is not delivered; the real one then is."""
        client, env, fut = self._waiting("acme")
        forged = env.model_copy(update={"tenant": "mallory", "kind": "final", "response": Response(text="forged")})
        client.on_reply(forged.to_bytes())
        assert not fut.done()
        real = env.model_copy(update={"kind": "final", "response": Response(text="real")})
        client.on_reply(real.to_bytes())
        assert fut.result().response == Response(text="real")

    async def test_error_answers_are_delivered_whatever_their_tenant(self) -> None:
        """A refusal may carry the default tenant (an unreadable or refused request): it still ends the wait."""
        client, env, fut = self._waiting("acme")
        error = ErrorInfo(code="tenant_mismatch", message="no", stage="preprocess")
        client.on_reply(env.model_copy(update={"tenant": "default", "kind": "final", "error": error}).to_bytes())
        assert fut.result().error == error
