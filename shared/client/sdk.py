"""The Python client: send a request to the pipeline, await its one answer on the reply topic.

The client reads its reply topic without a consumer group (every partition, from the
end), so any number of clients can share one reply topic; answers are matched by
``request_id`` and duplicates (redelivery) are dropped, so each request gets exactly
one answer.

Streaming (``LlmopsClient.stream``): chunk envelopes (``kind="chunk"``, ``chunk.seq`` from 0) for a
request arrive on the same reply topic before its final answer; they are yielded in order,
redelivered pieces (a ``seq`` already yielded) dropped, then the final answer ends the stream.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import OrderedDict
from collections.abc import AsyncGenerator
from datetime import UTC, datetime, timedelta
from types import TracebackType
from typing import Any, Self

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.errors import KafkaError

from shared.contracts.envelope import ChatMessage, Envelope, Request, SamplingParams
from shared.runtime.metadata import topic_partitions
from shared.runtime.producers import start_producer
from shared.runtime.runner import envelope_headers
from shared.runtime.security import BrokerAuthError, check_broker_access, client_security_kwargs
from shared.runtime.settings import CoreSettings

__all__ = ["BROKER_ERRORS", "LlmopsClient", "PipelineErrorAnswer"]

#: What starting or using the client raises when the broker is unreachable or refuses the credentials
#: (callers need no Kafka imports).
BROKER_ERRORS: tuple[type[Exception], ...] = (KafkaError, OSError, BrokerAuthError)

_SEEN_LIMIT = 10_000


class PipelineErrorAnswer(Exception):  # noqa: N818 - it is an answer, not a client bug
    """The pipeline answered with an error (prompt too long, blocked input, timeout...)."""

    def __init__(self, envelope: Envelope) -> None:
        assert envelope.error is not None  # noqa: S101 - only built for error answers
        super().__init__(f"{envelope.error.code} ({envelope.error.stage}): {envelope.error.message}")
        self.envelope = envelope
        self.code = envelope.error.code


class LlmopsClient:
    """Async client of the pipeline.

    Example:
        >>> async with LlmopsClient() as client:
        ...     answer = await client.ask("What is the capital of France?")
        ...     print(answer.response.text)
        The capital of France is Paris.

    """

    def __init__(
        self,
        settings: CoreSettings | None = None,
        *,
        reply_to: str | None = None,
        tenant: str = "default",
        tenant_topic: bool = False,
    ) -> None:
        """``tenant_topic``: send each request to its tenant's own topic (``llmops.requests.<tenant>``).

        That is how a tenant is named when security is on (preprocess takes the tenant from the topic,
        and only the tenant's principal may write it); requests of the default tenant stay on the shared topic.
        """
        self.settings = settings or CoreSettings()
        self.reply_to = reply_to or self.settings.topics.responses
        self.tenant = tenant
        self.tenant_topic = tenant_topic
        self._producer: AIOKafkaProducer | None = None
        self._consumer: AIOKafkaConsumer | None = None
        self._pending: dict[str, asyncio.Future[Envelope]] = {}
        #: The tenant of each pending request: an answer of another tenant is not its answer.
        self._tenants: dict[str, str] = {}
        self._streams: dict[str, asyncio.Queue[Envelope]] = {}
        self._next_seq: dict[str, int] = {}
        self._seen: OrderedDict[str, None] = OrderedDict()
        self._reader: asyncio.Task[None] | None = None

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.stop()

    async def start(self) -> None:
        """Connect, and position the reply consumer at the end of every partition."""
        kafka = self.settings.kafka
        servers = kafka.bootstrap.split(",")
        await check_broker_access(kafka)  # a refused login fails here, clearly, instead of retrying
        security = client_security_kwargs(kafka)
        self._producer = await start_producer(
            lambda idempotent: AIOKafkaProducer(
                bootstrap_servers=servers,
                client_id=f"{kafka.client_id}-client",
                acks="all" if kafka.acks == "all" else int(kafka.acks),
                linger_ms=kafka.linger_ms,
                enable_idempotence=idempotent,
                request_timeout_ms=kafka.request_timeout_ms,
                **security,
            ),
            kafka,
        )
        self._consumer = AIOKafkaConsumer(
            bootstrap_servers=servers,
            client_id=f"{kafka.client_id}-client",
            group_id=None,
            enable_auto_commit=False,
            fetch_max_wait_ms=kafka.fetch_max_wait_ms,
            max_partition_fetch_bytes=kafka.max_message_bytes + 64 * 1024,
            # With exactly-once stages, answers of aborted transactions are never delivered.
            isolation_level="read_committed" if kafka.exactly_once else "read_uncommitted",
            **security,
        )
        await self._consumer.start()
        partitions = await self._partitions(self.reply_to)
        tps = [TopicPartition(self.reply_to, p) for p in sorted(partitions)]
        self._consumer.assign(tps)
        await self._consumer.seek_to_end(*tps)
        for tp in tps:  # resolve the positions now, before any request is sent
            await self._consumer.position(tp)
        self._reader = asyncio.create_task(self._read_replies())

    async def _partitions(self, topic: str) -> set[int]:
        assert self._consumer is not None  # noqa: S101
        partitions = await topic_partitions(self._consumer, topic, attempts=50)
        if not partitions:
            msg = f"reply topic {topic!r} does not exist on {self.settings.kafka.bootstrap}"
            raise RuntimeError(msg)
        return partitions

    async def stop(self) -> None:
        """Disconnect; pending requests fail with ``CancelledError``."""
        if self._reader is not None:
            self._reader.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._reader
            self._reader = None
        for fut in self._pending.values():
            fut.cancel()
        self._pending.clear()
        if self._consumer is not None:
            await self._consumer.stop()
            self._consumer = None
        if self._producer is not None:
            await self._producer.stop()
            self._producer = None

    async def _read_replies(self) -> None:
        assert self._consumer is not None  # noqa: S101
        async for record in self._consumer:
            self.on_reply(record.value)

    def on_reply(self, value: bytes) -> None:
        """Deliver one record of the reply topic to the request waiting for it (if any, and if it is its answer)."""
        try:
            env = Envelope.from_bytes(value)
        except ValueError:
            return
        if not self._from_own_tenant(env):
            return
        stream = self._streams.get(env.request_id)
        if env.kind == "chunk":
            self._deliver_chunk(env)  # streamed pieces; the final answer follows on the same key
            return
        if env.request_id in self._seen:
            return  # a duplicate answer (redelivery upstream): deliver once
        if stream is not None:
            stream.put_nowait(env)
        fut = self._pending.pop(env.request_id, None)
        self._tenants.pop(env.request_id, None)
        if fut is not None and not fut.done():
            self._seen[env.request_id] = None
            if len(self._seen) > _SEEN_LIMIT:
                self._seen.popitem(last=False)
            fut.set_result(env)
            queue = self._streams.pop(env.request_id, None)
            self._next_seq.pop(env.request_id, None)
            if queue is not None:
                queue.put_nowait(env)

    def _from_own_tenant(self, env: Envelope) -> bool:
        """Whether an answer can be this client's: its request's tenant, or an error (issue 23).

        A reply topic may be shared (a gateway's, by every tenant it serves), and a tenant chooses its
        own request ids: an answer of another tenant's request with the same id must not be delivered.
        Error answers are exempt: a refusal or an unreadable request's answer may carry no tenant.
        """
        expected = self._tenants.get(env.request_id)
        return expected is None or env.tenant == expected or (env.kind == "final" and env.error is not None)

    def _deliver_chunk(self, env: Envelope) -> None:
        queue = self._streams.get(env.request_id)
        if queue is None or env.chunk is None:
            return  # nobody streams this request (``ask`` waits for the final only)
        expected = self._next_seq.get(env.request_id, 0)
        if env.chunk.seq != expected:
            return  # a redelivered piece (seq already passed on) or one out of order
        self._next_seq[env.request_id] = expected + 1
        queue.put_nowait(env)

    def build(
        self,
        prompt: str | list[ChatMessage] | list[dict[str, str]],
        *,
        conversation_id: str | None = None,
        model: str | None = None,
        timeout: float = 120.0,
        tenant: str | None = None,
        stream: bool = False,
        **params: Any,
    ) -> Envelope:
        """Make the request envelope (``params``: max_tokens, temperature, top_p, stop, seed; metadata).

        ``tenant`` overrides the client's tenant for this request (a gateway serves many tenants).
        """
        if isinstance(prompt, str):
            messages = [ChatMessage(role="user", content=prompt)]
        else:
            messages = [m if isinstance(m, ChatMessage) else ChatMessage.model_validate(m) for m in prompt]
        metadata = params.pop("metadata", {})
        env = Envelope(
            tenant=tenant or self.tenant,
            reply_to=self.reply_to,
            deadline=datetime.now(UTC) + timedelta(seconds=timeout),
            request=Request(
                messages=messages, model=model, params=SamplingParams(**params), stream=stream, metadata=metadata
            ),
        )
        if conversation_id:
            env.conversation_id = conversation_id
        return env

    @property
    def started(self) -> bool:
        """Whether the client is connected (``start`` done, ``stop`` not yet)."""
        return self._producer is not None and self._reader is not None and not self._reader.done()

    def request_topic(self, env: Envelope) -> str:
        """Where ``env`` is produced: its tenant's topic with ``tenant_topic``, else the shared requests topic."""
        topics = self.settings.topics
        if self.tenant_topic and env.tenant != "default":
            return topics.tenant_requests(env.tenant)
        return topics.requests

    async def send(self, env: Envelope) -> asyncio.Future[Envelope]:
        """Produce a request; the future resolves with its answer."""
        if self._producer is None:
            msg = "client is not started"
            raise RuntimeError(msg)
        fut: asyncio.Future[Envelope] = asyncio.get_running_loop().create_future()
        self._pending[env.request_id] = fut
        self._tenants[env.request_id] = env.tenant
        headers = [(k, v.encode()) for k, v in envelope_headers(env).items()]
        try:
            await self._producer.send_and_wait(
                self.request_topic(env), env.to_bytes(), key=env.conversation_id.encode(), headers=headers
            )
        except BaseException:
            self.forget(env.request_id)
            raise
        return fut

    def forget(self, request_id: str) -> None:
        """Stop waiting for a request's answer (after a timeout or a disconnect)."""
        self._pending.pop(request_id, None)
        self._tenants.pop(request_id, None)
        self._streams.pop(request_id, None)
        self._next_seq.pop(request_id, None)

    async def send_streaming(self, env: Envelope) -> asyncio.Queue[Envelope]:
        """Produce a request; its chunks, in order, and then its final answer arrive on the queue."""
        queue: asyncio.Queue[Envelope] = asyncio.Queue()
        self._streams[env.request_id] = queue
        await self.send(env)
        return queue

    async def stream(
        self,
        prompt: str | list[ChatMessage] | list[dict[str, str]],
        *,
        conversation_id: str | None = None,
        model: str | None = None,
        timeout: float = 120.0,
        **params: Any,
    ) -> AsyncGenerator[Envelope, None]:
        """Send a streaming request; yield its chunk envelopes in order, then the final answer.

        Without upstream streaming only the final answer comes. ``timeout`` bounds the whole
        answer (``TimeoutError``); an error answer is yielded, not raised.

        Example:
            >>> async for env in client.stream("Tell me a story", max_tokens=64):
            ...     print(env.chunk.text if env.kind == "chunk" else "", end="")

        """
        env = self.build(prompt, conversation_id=conversation_id, model=model, timeout=timeout, stream=True, **params)
        async for piece in self.iter_answer(env, timeout=timeout):
            yield piece

    async def iter_answer(self, env: Envelope, *, timeout: float) -> AsyncGenerator[Envelope, None]:
        """Send ``env`` and yield its chunks, then its final answer, within ``timeout`` seconds in all."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        queue = await self.send_streaming(env)
        try:
            while True:
                piece = await asyncio.wait_for(queue.get(), max(0.0, deadline - loop.time()))
                yield piece
                if piece.kind != "chunk":
                    return
        finally:
            self.forget(env.request_id)

    async def ask(
        self,
        prompt: str | list[ChatMessage] | list[dict[str, str]],
        *,
        conversation_id: str | None = None,
        model: str | None = None,
        timeout: float = 120.0,
        raise_on_error: bool = True,
        **params: Any,
    ) -> Envelope:
        """Send a request and wait for the final answer envelope."""
        env = self.build(prompt, conversation_id=conversation_id, model=model, timeout=timeout, **params)
        fut = await self.send(env)
        try:
            answer = await asyncio.wait_for(fut, timeout)
        except TimeoutError:
            self.forget(env.request_id)
            raise
        if raise_on_error and answer.error is not None:
            raise PipelineErrorAnswer(answer)
        return answer
