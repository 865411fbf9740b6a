from faststream.kafka import TestKafkaBroker

from services.inference.app import create_service
from services.inference.settings import InferenceSettings
from services.inference.stage import engine_options
from shared.contracts.envelope import Envelope
from shared.runtime.settings import CoreSettings
from tests.conftest import capture
from tests.services.inference.test_generator import ready


class TestInferenceService:
    async def test_checked_to_generated_with_stream(self, models_dir: object) -> None:
        """A streaming request publishes its chunks, then the final completion, on the generated topic."""
        settings = InferenceSettings(core=CoreSettings(default_model="gemma-3-270m"), n_ctx=512)
        service = create_service(settings)
        topics = settings.core.topics
        out = capture(service.broker, topics.generated, topics.responses)
        await service.warm_up()
        async with TestKafkaBroker(service.broker) as broker:
            await broker.publish(ready("Hi", "gemma-3-270m", max_tokens=4).to_bytes(), topics.checked)
            await broker.publish(ready("Hi", "gemma-3-270m", max_tokens=4, stream=True).to_bytes(), topics.checked)
        messages = [Envelope.from_bytes(raw) for raw in out[topics.generated]]
        assert messages[0].kind == "request"
        streamed = messages[1:]
        assert [m.kind for m in streamed[:-1]] == ["chunk"] * (len(streamed) - 1)
        final = streamed[-1]
        assert final.kind == "request"
        assert final.completion is not None
        assert "".join(m.chunk.text for m in streamed[:-1] if m.chunk) == final.completion.text
        assert final.trail[-1].stage == "inference"
        assert out[topics.responses] == []

    def test_engine_options_follow_settings(self) -> None:
        """GPU and batching settings reach the engine; the cache size is in bytes."""
        settings = InferenceSettings(n_gpu_layers=10, main_gpu=1, flash_attn=True, n_ubatch=128, prompt_cache_mb=2)
        options = engine_options(settings)
        assert (options["n_gpu_layers"], options["main_gpu"], options["flash_attn"]) == (10, 1, True)
        assert (options["n_ubatch"], options["prompt_cache_bytes"]) == (128, 2 << 20)

    async def test_parallel_requests_of_a_poll_generate_together(self, models_dir: object) -> None:
        """With ``parallel`` > 1 requests generate concurrently and every one is answered, streams included."""
        settings = InferenceSettings(
            core=CoreSettings(default_model="gemma-3-270m"), n_ctx=512, parallel=4, n_threads=1
        )
        service = create_service(settings)
        topics = settings.core.topics
        out = capture(service.broker, topics.generated)
        await service.warm_up()
        sent = [ready(f"Count to {n}", "gemma-3-270m", max_tokens=4, stream=n == 2) for n in range(4)]
        async with TestKafkaBroker(service.broker) as broker:
            for env in sent:
                await broker.publish(env.to_bytes(), topics.checked)
            assert service.concurrent is not None  # each request started as it came, without waiting for a poll
            await service.concurrent.drain(timeout=120)
            assert service.concurrent.peak > 1
        finals = [m for m in (Envelope.from_bytes(raw) for raw in out[topics.generated]) if m.completion is not None]
        assert {m.request_id for m in finals} == {e.request_id for e in sent}
        assert all(m.trail[-1].stage == "inference" for m in finals)

    def test_parallel_settings_reach_the_batched_engine(self) -> None:
        options = engine_options(InferenceSettings(parallel=8, prefill_chunk=64, kv_cache_mb=512))
        assert (options["parallel"], options["prefill_chunk"], options["kv_cache_limit_bytes"]) == (8, 64, 512 << 20)
        assert "parallel" not in engine_options(InferenceSettings())
