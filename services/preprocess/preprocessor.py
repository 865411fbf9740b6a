"""The preprocess stage's work: clean every message, count tokens, enforce the budget."""

from __future__ import annotations

from pathlib import Path

from services.preprocess.normalize import normalize_text
from shared.components.model_store import ModelIntegrityError, ModelMissingError, ensure_local
from shared.components.registry import ModelRegistry, UnknownModelError
from shared.components.tokenizer import ChatTokenizer
from shared.messaging.envelope import ChatMessage, Envelope, Prepared
from shared.messaging.errors import PipelineError

__all__ = ["Preprocessor"]


class Preprocessor:
    """Cleans a request and checks it fits the serving model's context.

    Example:
        >>> pre = Preprocessor(ModelRegistry.load(), models_dir)
        >>> pre.warm_up()
        >>> pre.process(envelope).prepared.token_count
        36

    """

    def __init__(self, registry: ModelRegistry, models_dir: Path, *, max_prompt_chars: int = 200_000) -> None:
        self.registry = registry
        self.models_dir = models_dir
        self.max_prompt_chars = max_prompt_chars
        self._tokenizers: dict[str, ChatTokenizer] = {}

    def warm_up(self) -> None:
        """Load the default model's tokenizer (others load on first use)."""
        self._tokenizer(self.registry.default)

    def _tokenizer(self, model: str) -> ChatTokenizer:
        tok = self._tokenizers.get(model)
        if tok is None:
            entry = self.registry.get(model)
            try:
                path = ensure_local(entry, self.models_dir)
            except (ModelMissingError, ModelIntegrityError) as exc:
                raise PipelineError("model_unavailable", str(exc), retriable=True) from exc
            tok = ChatTokenizer(entry, path)
            tok.warm_up()
            self._tokenizers[model] = tok
        return tok

    def process(self, env: Envelope) -> Envelope:
        """Fill ``prepared``; raises ``PipelineError`` for an unknown model or a prompt over budget."""
        request = env.require_request()
        try:
            entry = self.registry.get(request.model)
        except UnknownModelError as exc:
            raise PipelineError("unknown_model", str(exc)) from exc
        total_chars = sum(len(m.content) for m in request.messages)
        if total_chars > self.max_prompt_chars:
            msg = f"the prompt has {total_chars} characters; the limit is {self.max_prompt_chars}"
            raise PipelineError("prompt_too_long", msg)

        messages: list[ChatMessage] = []
        changes: list[str] = []
        for original in request.messages:
            text, applied = normalize_text(original.content)
            changes += [c for c in applied if c not in changes]
            messages.append(ChatMessage(role=original.role, content=text))
        if not any(m.role == "user" and m.content for m in messages):
            raise PipelineError("empty_prompt", "the request has no user message with text")

        tokenizer = self._tokenizer(entry.name)
        token_count = tokenizer.count_messages(messages)
        budget = entry.n_ctx - request.params.max_tokens
        if token_count > budget:
            msg = (
                f"the prompt has {token_count} tokens; model {entry.name} allows {budget} "
                f"({entry.n_ctx} context minus max_tokens={request.params.max_tokens})"
            )
            raise PipelineError("prompt_too_long", msg)

        last_user = next(m.content for m in reversed(messages) if m.role == "user")
        prepared = Prepared(
            messages=messages,
            text=last_user,
            changes=changes,
            model=entry.name,
            token_count=token_count,
            token_budget=budget,
        )
        return env.model_copy(update={"prepared": prepared})
