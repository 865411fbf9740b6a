"""Cost controls on the real broker and model: semantic cache hits and misses, usage records, quotas."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from aiokafka import AIOKafkaProducer

from shared.cli.usage import read_usage
from shared.client import LlmopsClient, PipelineErrorAnswer
from shared.contracts.envelope import Envelope
from shared.models.usage import summarize
from shared.runtime.settings import CoreSettings
from shared.stack.embedded import EmbeddedStack
from tests.conftest import SMALL_MODEL, core_settings, tail_consumer

pytestmark = pytest.mark.e2e

# A grammar makes the model stop by itself after one short word: a complete answer, never truncated.
ONE_WORD = {"json_schema": {"type": "string", "enum": ["Paris", "Lyon"]}, "max_tokens": 8, "temperature": 0.0}
CACHE_TENANTS = {"cache-a": {"enabled": True, "threshold": 0.9}, "cache-b": {"enabled": True, "threshold": 0.9}}
QUOTAS = {
    "tenants": {
        "rpm-t": {"requests_per_minute": 2},
        "day-t": {"tokens_per_day": 1},
        "reuse-t": {"requests_per_minute": 2},
    }
}


@pytest.fixture(scope="module")
async def cost(
    kafka: str, models_dir: Path, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[tuple[CoreSettings, EmbeddedStack]]:
    """A stack of its own (topic prefix cost.), small model, cache on for two tenants, quotas for two others."""
    core = core_settings(kafka, prefix="cost.")
    core.default_model = SMALL_MODEL
    data = tmp_path_factory.mktemp("cost")
    tenants = data / "tenants.json"  # YAML is a superset of JSON
    tenants.write_text(json.dumps(QUOTAS))
    stack = EmbeddedStack(
        core,
        external=True,
        log_dir=data / "logs",
        extra_env={
            "LLMOPS_QDRANT_PATH": str(data / "qdrant"),
            "LLMOPS_CACHE_TENANTS": json.dumps(CACHE_TENANTS),
            "LLMOPS_PREPROCESS_TENANTS_PATH": str(tenants),
        },
    )
    try:
        await stack.start(timeout=240)
        yield core, stack
    finally:
        stack.stop()


async def _ask(client: LlmopsClient, text: str, tenant: str, **params: object) -> Envelope:
    return await client.ask(text, tenant=tenant, timeout=120, **(ONE_WORD | params))  # type: ignore[arg-type]


class TestSemanticCache:
    async def test_hit_miss_and_no_cross_tenant_hit(self, cost: tuple[CoreSettings, EmbeddedStack]) -> None:
        """A paraphrase is answered from the cache (no inference, original id); another question and another tenant are not."""
        core, _ = cost
        async with LlmopsClient(core) as client:
            first = await _ask(client, "What is the capital of France?", "cache-a")
            assert first.response is not None
            assert not first.response.cached
            assert first.completion is not None
            assert first.completion.finish_reason == "stop"
            assert first.cache is None  # the cache key is internal (public view)
            await asyncio.sleep(0.5)  # the offer travels on llmops.cache to safety

            t0 = time.perf_counter()
            hit = await _ask(client, "What's the capital of France?", "cache-a")
            hit_ms = (time.perf_counter() - t0) * 1000
            assert hit.response is not None
            assert hit.response.cached
            assert hit.response.cached_from == first.request_id
            assert hit.response.text == first.response.text
            assert hit.completion is None
            assert [t.stage for t in hit.trail] == ["preprocess", "grounding", "safety", "postprocess"]
            assert hit_ms < 2000, hit_ms

            miss = await _ask(client, "How tall is Mount Everest in metres?", "cache-a")
            assert miss.response is not None
            assert not miss.response.cached
            assert miss.completion is not None

            other = await _ask(client, "What is the capital of France?", "cache-b")
            assert other.response is not None
            assert not other.response.cached
            assert other.completion is not None

        await asyncio.sleep(0.5)
        records = {r.request_id: r for r in await read_usage(core)}
        for answer in (first, miss):
            record = records[answer.request_id]
            assert answer.completion is not None
            assert (record.prompt_tokens, record.completion_tokens) == (
                answer.completion.tokens_in,
                answer.completion.tokens_out,
            )
            assert record.cost > 0
        assert records[hit.request_id].cached
        assert records[hit.request_id].total_tokens == 0
        assert records[hit.request_id].saved_completion_tokens == first.completion.tokens_out
        [total] = summarize(records.values(), tenant="cache-a")
        assert (total.requests, total.cached) == (3, 1)
        assert total.total_tokens == sum(records[a.request_id].total_tokens for a in (first, hit, miss))


class TestQuotas:
    async def test_reusing_a_request_id_is_counted_and_billed_each_time(
        self, cost: tuple[CoreSettings, EmbeddedStack]
    ) -> None:
        """Five records with one request id under 2 a minute: 2 answered and billed, 3 refused (issue 23: all passed)."""
        core, _ = cost
        replies = await tail_consumer(core, core.topics.responses)
        producer = AIOKafkaProducer(bootstrap_servers=core.kafka.bootstrap)
        await producer.start()
        try:
            body = {"messages": [{"role": "user", "content": "Say hi."}], "max_tokens": 2}
            raw = json.dumps(body | {"request_id": "reused-id", "tenant": "reuse-t"}).encode()
            for _ in range(5):
                await producer.send_and_wait(core.topics.requests, raw, key=b"reuse")
            answers: list[Envelope] = []
            deadline = time.monotonic() + 120
            while len(answers) < 5 and time.monotonic() < deadline:
                for records in (await replies.getmany(timeout_ms=1000)).values():
                    answers += [
                        env
                        for env in map(Envelope.from_bytes, (r.value for r in records))
                        if env.request_id == "reused-id"
                    ]
        finally:
            await producer.stop()
            await replies.stop()
        codes = sorted(a.error.code if a.error else "ok" for a in answers)
        assert codes == ["ok", "ok", "quota_exceeded", "quota_exceeded", "quota_exceeded"]
        await asyncio.sleep(0.5)
        billed = [r for r in await read_usage(core) if r.tenant == "reuse-t"]
        assert len(billed) == 2
        [total] = summarize(billed, tenant="reuse-t")
        assert total.requests == 2

    async def test_requests_per_minute_refused_with_retry_after(self, cost: tuple[CoreSettings, EmbeddedStack]) -> None:
        """The third request in a minute gets quota_exceeded from preprocess, with when to retry."""
        core, _ = cost
        async with LlmopsClient(core) as client:
            for _ in range(2):
                ok = await _ask(client, "Say hi.", "rpm-t", json_schema=None, max_tokens=2)
                assert ok.error is None
            with pytest.raises(PipelineErrorAnswer) as err:
                await _ask(client, "Say hi.", "rpm-t", json_schema=None, max_tokens=2)
        error = err.value.envelope.error
        assert error is not None
        assert (error.code, error.stage, error.retriable) == ("quota_exceeded", "preprocess", True)
        assert error.retry_after_s is not None
        assert 0 < error.retry_after_s <= 60

    async def test_tokens_per_day_survive_a_restart(self, cost: tuple[CoreSettings, EmbeddedStack]) -> None:
        """Once the day's tokens are used requests are refused, and still are after preprocess restarts."""
        core, stack = cost
        async with LlmopsClient(core) as client:
            first = await _ask(client, "Say hi.", "day-t", json_schema=None, max_tokens=2)
            assert first.error is None
            refused = None
            for _ in range(20):  # the usage record reaches preprocess a moment after the answer
                answer = await client.ask("Say hi.", tenant="day-t", max_tokens=2, raise_on_error=False)
                if answer.error is not None:
                    refused = answer.error
                    break
                await asyncio.sleep(0.2)
            assert refused is not None
            assert refused.code == "quota_exceeded"
            assert refused.retry_after_s is not None
            assert refused.retry_after_s > 0

        preprocess = next(s for s in stack.services if s.stage == "preprocess")
        assert preprocess.proc is not None
        preprocess.proc.terminate()
        await asyncio.to_thread(preprocess.proc.wait, 60)
        stack._spawn(preprocess)  # the stack's own restart, as its supervisor does it
        await stack.wait_ready(timeout=120)

        async with LlmopsClient(core) as client:
            after = await client.ask("Say hi.", tenant="day-t", max_tokens=2, raise_on_error=False, timeout=120)
        assert after.error is not None
        assert after.error.code == "quota_exceeded"
