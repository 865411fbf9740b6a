"""The preprocess stage's work: repair, correct, detect the language, tokenize, budget, embed."""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from services.preprocess.budget import fit_to_budget
from services.preprocess.language import LanguageDetector, LanguageGuess
from services.preprocess.normalize import normalize_text
from services.preprocess.tenant_switches import TenantPolicyFile
from services.preprocess.typos import ModelVocabulary, TypoCorrector
from shared.contracts.envelope import ChatMessage, Correction, Envelope, Prepared
from shared.contracts.errors import PipelineError
from shared.models.model_store import ModelIntegrityError, ModelMissingError, ensure_local
from shared.models.registry import ModelRegistry, Resolution, UnknownModelError
from shared.models.tokenizer import ChatTokenizer
from shared.text.embedder import Embedder, encode_vector

__all__ = ["STEPS", "Preprocessor"]

#: The timed steps, in order (``Preprocessor.timings``).
STEPS = ("repair", "language", "typo", "tokenize", "embed")
# Typos are corrected against an English dictionary: only in text that is not confidently another language.
_CORRECTABLE = {"en", "und"}


class Preprocessor:
    """Cleans a request, records every change, checks it fits the serving model and embeds it.

    Example:
        >>> pre = Preprocessor(ModelRegistry.load(), models_dir, embedder=Embedder())
        >>> pre.warm_up()
        >>> pre.process(envelope).prepared.token_count
        36

    """

    def __init__(
        self,
        registry: ModelRegistry,
        models_dir: Path,
        *,
        max_prompt_chars: int = 200_000,
        typos: TypoCorrector | None = None,
        detector: LanguageDetector | None = None,
        embedder: Embedder | None = None,
        policy: TenantPolicyFile | None = None,
        typo_correction: bool = True,
    ) -> None:
        self.registry = registry
        self.models_dir = models_dir
        self.max_prompt_chars = max_prompt_chars
        self.typos = typos or TypoCorrector()
        self.detector = detector or LanguageDetector()
        self.embedder = embedder
        self.policy = policy or TenantPolicyFile()
        self.typo_correction = typo_correction
        #: Milliseconds spent per step, summed since the last ``reset_timings`` (for the benchmark).
        self.timings: dict[str, float] = dict.fromkeys(STEPS, 0.0)
        self._tokenizers: dict[str, ChatTokenizer] = {}
        self._vocabularies: dict[str, ModelVocabulary] = {}

    def warm_up(self) -> None:
        """Load the default model's tokenizer (others load on first use), the dictionary, detector and embedder."""
        self._tokenizer(self.registry.default)
        self.typos.warm_up()
        self.detector.warm_up()
        if self.embedder is not None:
            self.embedder.warm_up()

    def reset_timings(self) -> None:
        """Zero the per-step timings."""
        self.timings = dict.fromkeys(STEPS, 0.0)

    @contextmanager
    def _timed(self, step: str) -> Iterator[None]:
        t0 = time.perf_counter()
        try:
            yield
        finally:
            self.timings[step] += (time.perf_counter() - t0) * 1000

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
            llama = tok.llama
            self._vocabularies[model] = ModelVocabulary(lambda b: llama.tokenize(b, add_bos=False, special=False))
        return tok

    def prepare(self, env: Envelope) -> Envelope:
        """Fill ``prepared`` except the embedding; raises ``PipelineError`` for requests that cannot be served."""
        request = env.require_request()
        resolution = self._resolve(env)
        entry = self.registry.get(resolution.model)
        total_chars = sum(len(m.content) for m in request.messages)
        if total_chars > self.max_prompt_chars:
            msg = f"the prompt has {total_chars} characters; the limit is {self.max_prompt_chars}"
            raise PipelineError("prompt_too_long", msg)
        tokenizer = self._tokenizer(entry.name)

        messages: list[ChatMessage] = []
        changes: list[str] = []
        with self._timed("repair"):
            for original in request.messages:
                text, applied = normalize_text(original.content, frequency=self.typos.frequency)
                changes += [c for c in applied if c not in changes]
                messages.append(ChatMessage(role=original.role, content=text))
        if not messages[-1].content or not any(m.role == "user" and m.content for m in messages):
            raise PipelineError("empty_prompt", "the request has no user message with text (after cleaning)")

        user_indexes = [i for i, m in enumerate(messages) if m.role == "user" and m.content]
        with self._timed("language"):
            guesses = {i: self.detector.detect(messages[i].content) for i in user_indexes}
        language = guesses[user_indexes[-1]]

        corrections: list[Correction] = []
        if self.policy.typo_correction(env, default=self.typo_correction):
            with self._timed("typo"):
                messages, corrections = self._correct(messages, guesses, entry.name)
            if corrections:
                changes.append("typos")

        with self._timed("tokenize"):
            budget = entry.n_ctx - request.params.max_tokens
            if budget <= 0:
                msg = f"max_tokens={request.params.max_tokens} leaves no room in model {entry.name}'s {entry.n_ctx}"
                raise PipelineError("prompt_too_long", msg)
            kept, token_count = fit_to_budget(messages, tokenizer.count_messages, budget, model=entry.name)
        dropped = len(messages) - len(kept)
        if dropped:
            changes.append("history_trimmed")
            # Corrections keep pointing at their message in the trimmed list; those in dropped turns go.
            position = {old: new for new, old in enumerate(kept)}
            corrections = [
                c.model_copy(update={"message_index": position[c.message_index]})
                for c in corrections
                if c.message_index in position
            ]

        prepared = Prepared(
            messages=[messages[i] for i in kept],
            text=messages[user_indexes[-1]].content,
            changes=changes,
            corrections=corrections,
            language=language.language,
            language_confidence=language.confidence,
            model=entry.name,
            alias=resolution.alias,
            token_count=token_count,
            token_budget=budget,
            dropped_messages=dropped,
        )
        return env.model_copy(update={"prepared": prepared})

    def _resolve(self, env: Envelope) -> Resolution:
        """The model serving this request: an alias picks its variant, sticky per conversation (and tenant)."""
        name = env.require_request().model
        try:
            self.registry.canonical(name)
        except UnknownModelError as exc:
            raise PipelineError("unknown_model", str(exc)) from exc
        try:
            return self.registry.resolve(name, tenant=env.tenant, key=env.conversation_id)
        except UnknownModelError as exc:
            allowed = ", ".join(exc.known) or "none"
            msg = f"tenant {env.tenant!r} may not use model {exc.name!r}; available to it: {allowed}"
            raise PipelineError("model_not_allowed", msg) from exc

    def _correct(
        self, messages: list[ChatMessage], guesses: dict[int, LanguageGuess], model: str
    ) -> tuple[list[ChatMessage], list[Correction]]:
        vocabulary = self._vocabularies[model]
        out = list(messages)
        corrections: list[Correction] = []
        for i, guess in guesses.items():
            if guess.language not in _CORRECTABLE:
                continue
            text, found = self.typos.correct(messages[i].content, knows_word=vocabulary.knows, message_index=i)
            if found:
                out[i] = ChatMessage(role=messages[i].role, content=text)
                corrections += found
        return out, corrections

    def embed(self, envs: list[Envelope]) -> list[Envelope]:
        """Add the embedding of each prepared text, all in one model call."""
        if self.embedder is None or not envs:
            return envs
        with self._timed("embed"):
            vectors = self.embedder.embed([env.prepared.text if env.prepared else "" for env in envs])
        return [
            env.model_copy(update={"prepared": env.prepared.model_copy(update={"embedding": encode_vector(vector)})})
            if env.prepared
            else env
            for env, vector in zip(envs, vectors, strict=True)
        ]

    def process(self, env: Envelope) -> Envelope:
        """Prepare and embed one request; raises ``PipelineError`` for requests that cannot be served."""
        return self.embed([self.prepare(env)])[0]

    def process_batch(self, envs: list[Envelope]) -> list[Envelope | Exception]:
        """Prepare each request, then embed the good ones together; a failed item is its exception."""
        results: list[Envelope | Exception] = []
        for env in envs:
            try:
                results.append(self.prepare(env))
            except Exception as exc:  # noqa: BLE001 - one bad request must not fail the others in its batch
                results.append(exc)
        good = [(i, r) for i, r in enumerate(results) if isinstance(r, Envelope)]
        try:
            embedded = self.embed([r for _, r in good])
        except Exception as exc:  # noqa: BLE001 - an embedding failure is each request's error answer
            for i, _ in good:
                results[i] = exc
            return results
        for (i, _), env in zip(good, embedded, strict=True):
            results[i] = env
        return results
