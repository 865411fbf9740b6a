from pathlib import Path

import pytest

from services.inference.engine import LlamaEngine
from services.inference.params import GenerationParams
from services.inference.prompt_cache import common_prefix
from shared.models.registry import ModelRegistry

P = GenerationParams(max_tokens=8, temperature=0.0, top_p=0.95, top_k=40, min_p=0.05, repeat_penalty=1.0)
TURN_1 = "You are a helpful assistant who answers about geography.\nUser: What is the capital of France?\nAssistant:"


def engine(registry: ModelRegistry, models_dir: Path, **options: object) -> LlamaEngine:
    entry = registry.get("gemma-3-270m")
    eng = LlamaEngine(entry, entry.path_in(models_dir), n_ctx=512, **options)  # type: ignore[arg-type]
    eng.warm_up(tokens=0)
    return eng


@pytest.fixture(scope="module")
def cached(registry: ModelRegistry, models_dir: Path) -> LlamaEngine:
    eng = engine(registry, models_dir)
    yield eng
    eng.close()


class TestPromptCache:
    def test_common_prefix(self) -> None:
        """The shared head of two token lists."""
        assert common_prefix([1, 2, 3], [1, 2, 4, 5]) == 2
        assert common_prefix([], [1]) == 0

    def test_second_turn_reuses_the_history(self, cached: LlamaEngine) -> None:
        """The next turn of a conversation recomputes only what is new, even after another conversation ran."""
        first = cached.generate([], TURN_1, P)
        assert first.cached_tokens == 0
        cached.generate([], "User: Write a word about cats.\nAssistant:", P)  # another conversation in between
        turn_2 = f"{TURN_1}{first.text}\nUser: And of Italy?\nAssistant:"
        second = cached.generate([], turn_2, P)
        history = len(cached.tokenize(TURN_1))
        assert second.cached_tokens >= history
        assert second.cached_tokens < second.tokens_in

    def test_cache_gives_the_same_answer(self, cached: LlamaEngine, registry: ModelRegistry, models_dir: Path) -> None:
        """An answer computed on a reused prefix is the answer computed from scratch."""
        turn_2 = f"{TURN_1} Paris.\nUser: And of Spain?\nAssistant:"
        cached.generate([], TURN_1, P)
        with_cache = cached.generate([], turn_2, P)
        assert with_cache.cached_tokens > 0
        cold = engine(registry, models_dir, prompt_cache=False)
        try:
            without = cold.generate([], turn_2, P)
            assert without.cached_tokens == 0
            assert without.text == with_cache.text
        finally:
            cold.close()
