import json
import time
from pathlib import Path

import llama_cpp
import pytest

from services.inference.engine import ContextOverflowError, LlamaEngine, resolve_gpu_layers
from services.inference.params import GenerationParams, resolve_params
from shared.contracts.envelope import ChatMessage, SamplingParams
from shared.models.registry import ModelRegistry

PROMPT = "User: Tell me about Paris, the capital of France.\nAssistant:"


def params(**fields: object) -> GenerationParams:
    base: dict[str, object] = {"max_tokens": 6, "temperature": 0.0, "top_p": 0.95, "top_k": 40, "min_p": 0.05}
    return GenerationParams(**(base | {"repeat_penalty": 1.0} | fields))  # type: ignore[arg-type]


@pytest.fixture(scope="module")
def gemma(registry: ModelRegistry, models_dir: Path) -> LlamaEngine:
    entry = registry.get("gemma-3-270m")
    engine = LlamaEngine(entry, entry.path_in(models_dir), n_ctx=512)
    engine.warm_up(tokens=1)
    yield engine
    engine.close()


class TestLlamaEngine:
    def test_gpu_layers_auto_is_zero_without_gpu_build(self) -> None:
        """On a CPU build, auto offloads nothing; explicit numbers pass through."""
        expected = -1 if llama_cpp.llama_supports_gpu_offload() else 0
        assert resolve_gpu_layers("auto") == expected
        assert resolve_gpu_layers(12) == 12

    def test_base_model_completes_plain_prompt(self, gemma: LlamaEngine) -> None:
        """A base model continues the plain transcript and reports exact token counts and timings."""
        result = gemma.generate([], "The capital of France is", params(max_tokens=4))
        assert result.tokens_out == 4 or result.finish_reason == "stop"
        assert result.tokens_in == len(gemma.tokenize("The capital of France is"))
        assert result.time_to_first_token_ms is not None
        assert result.generation_ms >= result.time_to_first_token_ms
        assert result.finish_reason in {"length", "stop"}

    def test_same_text_as_a_bare_llama_call(self, gemma: LlamaEngine) -> None:
        """The decode loop produces exactly what llama-cpp-python's create_completion does, greedy."""
        ours = gemma.generate([], PROMPT, params(max_tokens=12)).text
        bare = gemma.llama.create_completion(PROMPT, max_tokens=12, temperature=0.0, stop=["\nUser:", "\nUSER:"])
        assert ours == bare["choices"][0]["text"]  # type: ignore[index]

    def test_seeded_sampling_is_repeatable(self, gemma: LlamaEngine) -> None:
        """Temperature 0, or any temperature with a seed, gives the same text twice (redelivery answers alike)."""
        for p in (params(), params(temperature=0.9, seed=1234, max_tokens=8)):
            first = gemma.generate([], "Water boils at", p).text
            assert first == gemma.generate([], "Water boils at", p).text

    def test_streamed_pieces_make_the_text(self, gemma: LlamaEngine) -> None:
        """Pieces reach the sink in order and join into exactly the returned text."""
        pieces: list[str] = []
        result = gemma.generate([], PROMPT, params(max_tokens=10), on_text=pieces.append)
        assert len(pieces) >= 2
        assert "".join(pieces) == result.text

    def test_stop_sequence_is_never_streamed(self, gemma: LlamaEngine) -> None:
        """A stop sequence ends generation and none of it reaches the sink or the text."""
        full = gemma.generate([], PROMPT, params(max_tokens=12)).text
        stop = full.strip().split()[2]
        pieces: list[str] = []
        result = gemma.generate([], PROMPT, params(max_tokens=12, stop=(stop,)), on_text=pieces.append)
        assert result.finish_reason == "stop"
        assert stop not in result.text
        assert "".join(pieces) == result.text

    def test_deadline_stops_generation(self, gemma: LlamaEngine) -> None:
        """A deadline already passed stops after the first token, marked timeout."""
        result = gemma.generate([], PROMPT, params(max_tokens=50), deadline=time.time())
        assert result.finish_reason == "timeout"
        assert result.tokens_out == 1

    def test_json_schema_constrains_the_output(self, gemma: LlamaEngine, registry: ModelRegistry) -> None:
        """With a JSON schema the output parses and has the required field."""
        schema = {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}
        p = resolve_params(
            SamplingParams(max_tokens=40, temperature=0.0, json_schema=schema), registry.get("gemma-3-270m"), n_ctx=512
        )
        result = gemma.generate([], "User: Name a city as JSON.\nAssistant:", p)
        assert result.finish_reason == "stop"
        assert isinstance(json.loads(result.text)["city"], str)

    def test_prompt_over_the_context_is_refused(self, gemma: LlamaEngine) -> None:
        """A prompt longer than the context is a typed error, not a crash."""
        with pytest.raises(ContextOverflowError):
            gemma.generate([], "word " * 600, params())

    def test_offloaded_layers_on_cpu(self, gemma: LlamaEngine) -> None:
        """Nothing is offloaded on a CPU build; the model's layer count is known."""
        assert gemma.n_layers > 0
        if not llama_cpp.llama_supports_gpu_offload():
            assert gemma.offloaded_layers == 0

    def test_chat_model_uses_its_template(self, registry: ModelRegistry, models_dir: Path) -> None:
        """A gguf-format model renders the messages with its own chat template and stops at its end-of-turn."""
        entry = registry.get("qwen2.5-coder-0.5b-instruct")
        engine = LlamaEngine(entry, entry.path_in(models_dir), n_ctx=512)
        try:
            messages = [ChatMessage(role="user", content="What is the capital of France? One word.")]
            result = engine.generate(messages, "ignored for chat models", params(max_tokens=8))
            assert "<|im_start|>" in engine.render(messages, "")
            assert "Paris" in result.text
        finally:
            engine.close()
