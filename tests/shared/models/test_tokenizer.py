from pathlib import Path

import pytest

from shared.contracts.envelope import ChatMessage
from shared.models.registry import ModelRegistry
from shared.models.tokenizer import ChatTokenizer

QUESTION = [ChatMessage(role="user", content="What is the capital of France?")]


@pytest.fixture(scope="module")
def qwen(registry: ModelRegistry, models_dir: Path) -> ChatTokenizer:
    entry = registry.get("qwen2.5-coder-0.5b-instruct")
    tok = ChatTokenizer(entry, entry.path_in(models_dir))
    tok.warm_up()
    return tok


class TestChatTokenizer:
    def test_renders_the_gguf_chat_template(self, qwen: ChatTokenizer) -> None:
        """The Qwen template wraps turns in ChatML markers and opens the assistant turn."""
        prompt = qwen.render(QUESTION)
        assert "<|im_start|>user\nWhat is the capital of France?<|im_end|>" in prompt
        assert prompt.endswith("<|im_start|>assistant\n")

    def test_counts_template_tokens_too(self, qwen: ChatTokenizer) -> None:
        """The count includes the template's special tokens, so it exceeds the bare text's."""
        bare = qwen.count("What is the capital of France?")
        assert 5 < bare < 12
        assert qwen.count_messages(QUESTION) > bare + 10

    def test_longer_prompts_count_more(self, qwen: ChatTokenizer) -> None:
        """Counting is monotonic in the text."""
        long = [ChatMessage(role="user", content="word " * 500)]
        assert qwen.count_messages(long) > 500

    def test_plain_model_uses_plain_rendering(self, registry: ModelRegistry, models_dir: Path) -> None:
        """A base model without template gets the plain transcript."""
        entry = registry.get("gemma-3-270m")
        tok = ChatTokenizer(entry, entry.path_in(models_dir))
        assert tok.render(QUESTION) == "User: What is the capital of France?\nAssistant:"
        assert tok.count_messages(QUESTION) > 5
