from pathlib import Path

import pytest

from services.preprocess.preprocessor import Preprocessor
from shared.components.registry import ModelRegistry
from shared.messaging.envelope import ChatMessage, Envelope, Request, SamplingParams
from shared.messaging.errors import PipelineError
from tests.conftest import make_envelope


@pytest.fixture(scope="module")
def pre(registry: ModelRegistry, models_dir: Path) -> Preprocessor:
    p = Preprocessor(registry, models_dir)
    p.warm_up()
    return p


class TestPreprocessor:
    def test_fills_prepared(self, pre: Preprocessor) -> None:
        """Cleaned messages, token count with the template, and the budget are recorded."""
        env = pre.process(make_envelope("What is the capital of France?"))
        assert env.prepared is not None
        assert env.prepared.token_count > 20
        assert env.prepared.token_budget == 4096 - 256

    def test_over_budget_is_rejected_clearly(self, pre: Preprocessor) -> None:
        """A prompt longer than the context minus max_tokens is a prompt_too_long error with numbers."""
        env = make_envelope("lorem ipsum dolor " * 1500)
        with pytest.raises(PipelineError, match="tokens") as err:
            pre.process(env)
        assert err.value.code == "prompt_too_long"

    def test_max_tokens_counts_against_the_budget(self, pre: Preprocessor) -> None:
        """Asking for a long answer shrinks the room for the prompt."""
        env = Envelope(
            request=Request(
                messages=[ChatMessage(role="user", content="word " * 2000)], params=SamplingParams(max_tokens=3000)
            )
        )
        with pytest.raises(PipelineError) as err:
            pre.process(env)
        assert err.value.code == "prompt_too_long"

    def test_unknown_model(self, pre: Preprocessor) -> None:
        """A model not in the registry is refused."""
        env = Envelope(request=Request(messages=[ChatMessage(role="user", content="hi")], model="gpt-17"))
        with pytest.raises(PipelineError) as err:
            pre.process(env)
        assert err.value.code == "unknown_model"

    def test_empty_prompt(self, pre: Preprocessor) -> None:
        """Whitespace-only input is an error, not an empty prompt for the model."""
        with pytest.raises(PipelineError) as err:
            pre.process(make_envelope(" \u200b \n "))
        assert err.value.code == "empty_prompt"

    def test_other_model_uses_its_own_tokenizer(self, pre: Preprocessor) -> None:
        """The count is made with the requested model's tokenizer."""
        env = Envelope(request=Request(messages=[ChatMessage(role="user", content="hi")], model="gemma-3-270m"))
        prepared = pre.process(env).prepared
        assert prepared is not None
        assert prepared.model == "gemma-3-270m"
        assert prepared.token_budget == 2048 - 256
