from pathlib import Path

import pytest

from services.inference.engine import LlamaEngine, resolve_gpu_layers
from shared.components.registry import ModelRegistry
from shared.messaging.envelope import ChatMessage, SamplingParams


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
        import llama_cpp

        expected = -1 if llama_cpp.llama_supports_gpu_offload() else 0
        assert resolve_gpu_layers("auto") == expected
        assert resolve_gpu_layers(12) == 12

    def test_base_model_completes_plain_prompt(self, gemma: LlamaEngine) -> None:
        """A base model continues the plain transcript and reports token counts and timings."""
        messages = [ChatMessage(role="user", content="The capital of France is")]
        result = gemma.generate(messages, "The capital of France is", SamplingParams(max_tokens=4, temperature=0.0))
        assert 1 <= result.tokens_out <= 6
        assert result.tokens_in >= 5
        assert result.time_to_first_token_ms is not None
        assert result.generation_ms >= result.time_to_first_token_ms
        assert result.finish_reason in {"length", "stop"}

    def test_greedy_is_repeatable(self, gemma: LlamaEngine) -> None:
        """Temperature 0 gives the same text twice (redelivery produces the same answer)."""
        params = SamplingParams(max_tokens=6, temperature=0.0)
        first = gemma.generate([], "Water boils at", params).text
        assert first == gemma.generate([], "Water boils at", params).text

    def test_offloaded_layers_on_cpu(self, gemma: LlamaEngine) -> None:
        """Nothing is offloaded on a CPU build."""
        import llama_cpp

        if not llama_cpp.llama_supports_gpu_offload():
            assert gemma.offloaded_layers == 0
