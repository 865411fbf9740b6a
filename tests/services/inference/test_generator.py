import asyncio
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from services.inference.batched_engine import BatchedLlamaEngine
from services.inference.generator import Generator, chunk_envelope
from services.inference.stage import generate_together
from shared.contracts.envelope import ChatMessage, Envelope, Grounding, Prepared, Request, Safety, SamplingParams
from shared.contracts.errors import PipelineError
from shared.contracts.stage import Outputs
from shared.contracts.topology import Role
from shared.models.registry import ModelRegistry


def ready(
    text: str, model: str, *, max_tokens: int = 8, stream: bool = False, tenant: str = "default", **params: object
) -> Envelope:
    msgs = [ChatMessage(role="user", content=text)]
    sampling = SamplingParams(max_tokens=max_tokens, temperature=0.0, **params)  # type: ignore[arg-type]
    env = Envelope(tenant=tenant, request=Request(messages=msgs, params=sampling, stream=stream))
    env.prepared = Prepared(messages=msgs, text=text, model=model, token_count=5, token_budget=100)
    env.grounding = Grounding(
        template_id="default", template_version=1, messages=msgs, prompt=f"User: {text}\nAssistant:"
    )
    return env


CITIES = ["Paris", "Rome", "Madrid", "Lisbon"]


class Sink:
    """Collects streamed chunk envelopes, as the app's publisher would send them."""

    def __init__(self) -> None:
        self.chunks: list[Envelope] = []

    async def __call__(self, chunk: Envelope) -> None:
        await asyncio.sleep(0)
        self.chunks.append(chunk)


@pytest.fixture(scope="module")
def sink() -> Sink:
    return Sink()


@pytest.fixture(scope="module")
def generator(registry: ModelRegistry, models_dir: Path, sink: Sink) -> Generator:
    gen = Generator(registry, models_dir, model="gemma-3-270m", engine_options={"n_ctx": 512}, on_chunk=sink)
    gen.warm_up()
    yield gen
    asyncio.run(gen.close())


class TestGenerator:
    async def test_fills_completion(self, generator: Generator) -> None:
        """The completion carries text, model, exact token counts, speed and GPU layers."""
        out = await generator.process(ready("Say hello.", "gemma-3-270m"))
        completion = out.completion
        assert completion is not None
        assert completion.model == "gemma-3-270m"
        assert 1 <= completion.tokens_out <= 8
        assert completion.tokens_in > 0
        assert completion.gpu_layers == generator.engine.offloaded_layers  # type: ignore[union-attr]
        assert out.error is None

    async def test_uses_the_redacted_prompt(self, generator: Generator) -> None:
        """When safety redacted the prompt, the model sees the redacted text, not the original."""
        env = ready("mail bob@example.org", "gemma-3-270m", max_tokens=1)
        redacted = [ChatMessage(role="user", content="mail <EMAIL>")]
        env.safety = Safety(verdict="redact", messages=redacted, prompt="User: mail <EMAIL>\nAssistant:")
        out = await generator.process(env)
        assert out.completion is not None
        assert out.completion.tokens_in == len(generator.engine.tokenize("User: mail <EMAIL>\nAssistant:"))  # type: ignore[union-attr]

    async def test_needs_earlier_sections(self, generator: Generator) -> None:
        """Skipping grounding is an error."""
        with pytest.raises(PipelineError):
            await generator.process(Envelope(request=Request(messages=[ChatMessage(role="user", content="x")])))

    async def test_streams_chunks_in_order_before_returning(self, generator: Generator, sink: Sink) -> None:
        """A streaming request sends numbered chunks with the routing fields that join into the final text."""
        sink.chunks.clear()
        env = ready("Tell me about Paris.", "gemma-3-270m", max_tokens=12, stream=True)
        env.safety = Safety(verdict="allow")
        out = await generator.process(env)
        assert out.completion is not None
        assert [c.chunk.seq for c in sink.chunks if c.chunk] == list(range(len(sink.chunks)))
        assert "".join(c.chunk.text for c in sink.chunks if c.chunk) == out.completion.text
        first = sink.chunks[0]
        assert (first.kind, first.request_id, first.conversation_id) == ("chunk", env.request_id, env.conversation_id)
        assert first.request is None
        assert first.grounding == env.grounding  # the prompt, for postprocess's leak checks (issue 23)
        assert all(c.grounding is None and c.prepared is None for c in sink.chunks[1:])
        assert first.safety == env.safety

    async def test_no_chunks_without_stream(self, generator: Generator, sink: Sink) -> None:
        """A request that does not ask for streaming gets only its final message."""
        sink.chunks.clear()
        await generator.process(ready("Hello", "gemma-3-270m", max_tokens=3))
        assert sink.chunks == []

    async def test_deadline_gives_partial_text_marked_timeout(self, generator: Generator) -> None:
        """A deadline passing mid-generation stops it; the partial text is kept and the error says timeout."""
        env = ready("Tell me a long story.", "gemma-3-270m", max_tokens=200)
        env.deadline = datetime.now(UTC) + timedelta(seconds=0.3)
        out = await generator.process(env)
        assert out.completion is not None
        assert out.completion.finish_reason == "timeout"
        assert 0 < out.completion.tokens_out < 200
        assert out.error is not None
        assert (out.error.code, out.error.stage) == ("timeout", "inference")

    async def test_invalid_params_are_a_clear_error(self, generator: Generator) -> None:
        """Parameters the model cannot use are refused with invalid_params before generating."""
        with pytest.raises(PipelineError) as err:
            await generator.process(ready("Hi", "gemma-3-270m", max_tokens=600))
        assert err.value.code == "invalid_params"
        assert "max_tokens=600" in err.value.message

    async def test_unknown_model_lists_the_available_ones(self, generator: Generator) -> None:
        """A model name the registry lacks is answered with the names it has."""
        with pytest.raises(PipelineError) as err:
            await generator.process(ready("Hi", "gpt-17"))
        assert err.value.code == "unknown_model"
        assert "gemma-3-270m" in err.value.message

    async def test_tenant_restricted_model(self, generator: Generator, registry: ModelRegistry) -> None:
        """A model reserved for some tenants is refused to others, naming what they may use."""
        gemma = registry.get("gemma-3-270m")
        generator.registry = registry.model_copy(
            update={"models": registry.models | {"gemma-3-270m": gemma.model_copy(update={"tenants": ["acme"]})}}
        )
        try:
            with pytest.raises(PipelineError) as err:
                await generator.process(ready("Hi", "gemma-3-270m", tenant="other"))
            assert err.value.code == "model_not_allowed"
            assert "qwen2.5-coder-0.5b-instruct" in err.value.message
            out = await generator.process(ready("Hi", "gemma-3-270m", tenant="acme", max_tokens=2))
            assert out.completion is not None
        finally:
            generator.registry = registry

    async def test_routes_each_request_to_its_model(self, generator: Generator) -> None:
        """Requests naming the two registry models are served by each, swapping the resident model."""
        qwen = await generator.process(ready("What is the capital of France?", "qwen2.5-coder-0.5b-instruct"))
        assert qwen.completion is not None
        assert qwen.completion.model == "qwen2.5-coder-0.5b-instruct"
        assert "Paris" in qwen.completion.text
        gemma = await generator.process(ready("Hi", "gemma-3-270m", max_tokens=2))
        assert gemma.completion is not None
        assert gemma.completion.model == "gemma-3-270m"
        assert generator.engine is not None
        assert generator.engine.entry.name == "gemma-3-270m"


class TestModelIntegrity:
    def test_tampered_model_is_not_loaded(self, registry: ModelRegistry, models_dir: Path) -> None:
        """A model file whose sha256 differs from the registry's is refused before llama.cpp opens it."""
        gemma = registry.get("gemma-3-270m").model_copy(update={"sha256": "0" * 64})
        bad = registry.model_copy(update={"models": registry.models | {"gemma-3-270m": gemma}})
        with pytest.raises(PipelineError) as err:
            Generator(bad, models_dir, model="gemma-3-270m").warm_up()
        assert err.value.code == "model_unavailable"
        assert "sha256" in err.value.message

    async def test_lora_variant_needs_its_adapter(
        self, registry: ModelRegistry, models_dir: Path, tmp_path: Path
    ) -> None:
        """A LoRA variant is its own registry name; a missing or altered adapter file is refused by name."""
        adapter = tmp_path / "tuned.gguf"
        adapter.write_bytes(b"not the adapter you registered")
        data = registry.get("gemma-3-270m").model_dump() | {
            "name": "gemma-tuned",
            "base": "gemma-3-270m",
            "lora": {"path": str(adapter), "sha256": "1" * 64},
        }
        tuned = type(registry.get("gemma-3-270m")).model_validate(data)
        with_lora = registry.model_copy(update={"models": registry.models | {"gemma-tuned": tuned}})
        gen = Generator(with_lora, models_dir, model="gemma-3-270m", engine_options={"n_ctx": 512})
        with pytest.raises(PipelineError) as err:
            await gen.process(ready("Hi", "gemma-tuned"))
        assert err.value.code == "model_unavailable"
        assert str(adapter) in err.value.message
        adapter.unlink()
        with pytest.raises(PipelineError, match="not at"):
            await gen.process(ready("Hi", "gemma-tuned"))


class TestSkipGeneration:
    async def test_bench_flag_answers_empty_without_a_model(self, registry: ModelRegistry, tmp_path: Path) -> None:
        """The bench-only flag loads nothing (no model file needed) and answers an empty, finished completion."""
        gen = Generator(registry, tmp_path, model="gemma-3-270m", skip_generation=True)
        gen.warm_up()
        assert gen.engine is None
        out = await gen.process(ready("Say hello.", "gemma-3-270m"))
        assert out.completion is not None
        assert (out.completion.text, out.completion.tokens_out, out.completion.finish_reason) == ("", 0, "stop")
        assert out.error is None


class TestChunkEnvelope:
    def test_first_piece_carries_the_prompt_later_ones_do_not(self) -> None:
        """Postprocess checks streamed text against the prompt: the first piece brings it, once (issue 23)."""
        env = ready("Hi", "gemma-3-270m")
        assert env.prepared is not None
        env.prepared.embedding = "AAAA"
        first, second = chunk_envelope(env, 0, "Hel"), chunk_envelope(env, 1, "lo")
        assert first.grounding == env.grounding
        assert first.prepared is not None
        assert first.prepared.embedding is None
        assert (second.grounding, second.prepared) == (None, None)


def only_generated(outputs: Outputs | Exception) -> Envelope | Exception:
    """A record's outputs from ``generate_together``: exactly one, on the generated role (or its error)."""
    if isinstance(outputs, Exception):
        return outputs
    assert [out.role for out in outputs] == [Role.GENERATED]
    assert isinstance(outputs[0].message, Envelope)
    return outputs[0].message


class TestBatchedGenerator:
    """``LLMOPS_INFERENCE_PARALLEL`` > 1: the requests of a poll generate together in one model."""

    @staticmethod
    def batched(registry: ModelRegistry, models_dir: Path, sink: Sink) -> Generator:
        options = {"n_ctx": 512, "parallel": 4, "n_threads": 1}
        gen = Generator(
            registry,
            models_dir,
            model="gemma-3-270m",
            engine_factory=BatchedLlamaEngine,
            engine_options=options,
            on_chunk=sink,
        )
        gen.warm_up()
        return gen

    async def test_a_poll_generates_together(self, registry: ModelRegistry, models_dir: Path) -> None:
        """Four requests, two streaming: four sequences in flight, each stream joins into its own completion."""
        sink = Sink()
        gen = self.batched(registry, models_dir, sink)
        try:
            envs = [ready(f"Tell me about {city}.", "gemma-3-270m", stream=i < 2) for i, city in enumerate(CITIES)]
            for env in envs:
                env.safety = Safety(verdict="allow")
            results = [only_generated(out) for out in await generate_together(gen, envs)]
            assert isinstance(gen.engine, BatchedLlamaEngine)
            assert gen.engine.batcher is not None
            assert gen.engine.batcher.max_in_flight == 4
            for env, result in zip(envs, results, strict=True):
                assert isinstance(result, Envelope)
                assert result.request_id == env.request_id
                assert result.completion is not None
                assert result.completion.tokens_out >= 1
            for env, result in zip(envs[:2], results[:2], strict=True):
                assert isinstance(result, Envelope)
                pieces = [c.chunk.text for c in sink.chunks if c.request_id == env.request_id and c.chunk]
                assert "".join(pieces) == result.completion.text  # type: ignore[union-attr]
            assert not [c for c in sink.chunks if c.request_id in {e.request_id for e in envs[2:]}]
        finally:
            await gen.close()

    async def test_one_bad_request_fails_alone(self, registry: ModelRegistry, models_dir: Path) -> None:
        gen = self.batched(registry, models_dir, Sink())
        try:
            results = await generate_together(gen, [ready("Hi.", "gemma-3-270m"), ready("Hi.", "no-such-model")])
            assert isinstance(only_generated(results[0]), Envelope)
            assert isinstance(results[1], PipelineError)
            assert results[1].code == "unknown_model"
        finally:
            await gen.close()

    async def test_a_model_swap_waits_for_the_sequences_in_flight(
        self, registry: ModelRegistry, models_dir: Path
    ) -> None:
        """A request for another model waits until the resident model's sequences have ended, then swaps."""
        gen = self.batched(registry, models_dir, Sink())
        try:
            first = [asyncio.create_task(gen.process(ready(c, "gemma-3-270m", max_tokens=16))) for c in CITIES[:2]]
            await asyncio.sleep(0.2)
            other = asyncio.create_task(gen.process(ready("Say hi.", "qwen2.5-coder-0.5b-instruct", max_tokens=2)))
            done = await asyncio.gather(*first, other)
            assert [d.completion.model for d in done] == ["gemma-3-270m"] * 2 + ["qwen2.5-coder-0.5b-instruct"]  # type: ignore[union-attr]
            assert all(d.completion.finish_reason in {"stop", "length"} for d in done)  # type: ignore[union-attr]
            assert gen.engine is not None
            assert gen.engine.entry.name == "qwen2.5-coder-0.5b-instruct"
        finally:
            await gen.close()
