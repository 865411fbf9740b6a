import asyncio
from pathlib import Path

import pytest

from services.inference.generator import Generator
from shared.components.registry import ModelRegistry
from shared.messaging.envelope import ChatMessage, Envelope, Grounding, Prepared, Request, Safety, SamplingParams
from shared.messaging.errors import PipelineError


def ready(text: str, model: str, *, max_tokens: int = 8) -> Envelope:
    msgs = [ChatMessage(role="user", content=text)]
    env = Envelope(request=Request(messages=msgs, params=SamplingParams(max_tokens=max_tokens, temperature=0.0)))
    env.prepared = Prepared(messages=msgs, text=text, model=model, token_count=5, token_budget=100)
    env.grounding = Grounding(
        template_id="default", template_version=1, messages=msgs, prompt=f"User: {text}\nAssistant:"
    )
    return env


@pytest.fixture(scope="module")
def generator(registry: ModelRegistry, models_dir: Path) -> Generator:
    gen = Generator(registry, models_dir, model="gemma-3-270m", engine_options={"n_ctx": 512})
    gen.warm_up()
    yield gen
    asyncio.run(gen.close())


class TestGenerator:
    async def test_fills_completion(self, generator: Generator) -> None:
        """The completion carries text, model, token counts and speed."""
        out = await generator.process(ready("Say hello.", "gemma-3-270m"))
        completion = out.completion
        assert completion is not None
        assert completion.model == "gemma-3-270m"
        assert 1 <= completion.tokens_out <= 10
        assert completion.gpu_layers == 0 or completion.gpu_layers > 0

    async def test_uses_the_redacted_prompt(self, generator: Generator) -> None:
        """When safety redacted the prompt, the model sees the redacted text, not the original."""
        env = ready("mail bob@example.org", "gemma-3-270m", max_tokens=1)
        redacted = [ChatMessage(role="user", content="mail <EMAIL>")]
        env.safety = Safety(verdict="redact", messages=redacted, prompt="User: mail <EMAIL>\nAssistant:")
        out = await generator.process(env)
        assert out.completion is not None
        tokenizer = generator.engine._tokenizer  # type: ignore[union-attr]
        assert out.completion.tokens_in == tokenizer.count("User: mail <EMAIL>\nAssistant:")

    async def test_needs_earlier_sections(self, generator: Generator) -> None:
        """Skipping grounding is an error."""
        with pytest.raises(PipelineError):
            await generator.process(Envelope(request=Request(messages=[ChatMessage(role="user", content="x")])))
