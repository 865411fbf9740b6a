from pathlib import Path

import numpy as np
import pytest

from services.preprocess.preprocessor import STEPS, Preprocessor
from services.preprocess.tenant_switches import TenantPolicy, TenantPolicyFile
from shared.contracts.envelope import ChatMessage, Envelope, Request, SamplingParams
from shared.contracts.errors import PipelineError
from shared.models.registry import AliasVariant, ModelAlias, ModelRegistry
from shared.text.embedder import Embedder, decode_vector
from tests.conftest import CHAT_MODEL, SMALL_MODEL, make_envelope


@pytest.fixture(scope="module")
def embedder() -> Embedder:
    e = Embedder()
    e.warm_up()
    return e


@pytest.fixture(scope="module")
def pre(registry: ModelRegistry, models_dir: Path, embedder: Embedder) -> Preprocessor:
    policy = TenantPolicyFile(tenants={"strict": TenantPolicy(typo_correction=False)})
    p = Preprocessor(registry, models_dir, embedder=embedder, policy=policy)
    p.warm_up()
    return p


def request(*messages: tuple[str, str], model: str | None = None, max_tokens: int = 256, **env: object) -> Envelope:
    chat = [ChatMessage(role=role, content=text) for role, text in messages]  # type: ignore[arg-type]
    return Envelope(request=Request(messages=chat, model=model, params=SamplingParams(max_tokens=max_tokens)), **env)  # type: ignore[arg-type]


class TestPreprocessor:
    def test_fills_prepared(self, pre: Preprocessor) -> None:
        """Cleaned messages, token count with the template, language and the budget are recorded."""
        env = pre.process(make_envelope("What is the capital of France?"))
        assert env.prepared is not None
        assert env.prepared.token_count > 20
        assert env.prepared.token_budget == 4096 - 256
        assert (env.prepared.language, env.prepared.changes, env.prepared.corrections) == ("en", [], [])
        assert env.prepared.language_confidence is not None
        assert env.prepared.language_confidence > 0.8

    def test_embedding_is_minilm_of_the_clean_text(self, pre: Preprocessor, embedder: Embedder) -> None:
        """The embedding is the base64 float32 MiniLM vector of the cleaned, corrected text."""
        env = pre.process(make_envelope("Where  do I recieve my parcel?\u200b"))
        assert env.prepared is not None
        assert env.prepared.text == "Where do I receive my parcel?"
        assert env.prepared.embedding is not None
        vector = decode_vector(env.prepared.embedding)
        assert vector.shape == (384,)
        assert np.allclose(vector, embedder.embed_one("Where do I receive my parcel?"), atol=1e-5)

    def test_corrections_are_recorded(self, pre: Preprocessor) -> None:
        """Each typo fixed is listed with its position and message index; the change is named."""
        env = pre.prepare(request(("system", "Be brief."), ("user", "Explain teh langauge barrier")))
        assert env.prepared is not None
        assert env.prepared.text == "Explain teh language barrier"  # qwen has " teh" as a whole token
        assert [(c.original, c.corrected, c.position, c.message_index) for c in env.prepared.corrections] == [
            ("langauge", "language", 12, 1)
        ]
        assert env.prepared.changes == ["typos"]

    def test_vocabulary_guard_follows_the_model(self, pre: Preprocessor) -> None:
        """gemma's vocabulary has "recieve" whole, so for gemma it is left alone; for qwen it is corrected."""
        qwen = pre.prepare(request(("user", "I did not recieve it"), model=CHAT_MODEL)).prepared
        gemma = pre.prepare(request(("user", "I did not recieve it"), model=SMALL_MODEL)).prepared
        assert qwen is not None
        assert gemma is not None
        assert qwen.text == "I did not receive it"
        assert gemma.text == "I did not recieve it"

    def test_typo_switch_per_request_and_tenant(self, pre: Preprocessor) -> None:
        """metadata typo_correction=off, or a tenant switched off, leaves the text as written."""
        off = pre.prepare(request(("user", "recieve it"))).prepared
        assert off is not None
        assert off.text == "receive it"
        chat = [ChatMessage(role="user", content="recieve it")]
        env = Envelope(request=Request(messages=chat, metadata={"typo_correction": "off"}))
        by_request = pre.prepare(env).prepared
        by_tenant = pre.prepare(request(("user", "recieve it"), tenant="strict")).prepared
        assert by_request is not None
        assert by_tenant is not None
        assert (by_request.text, by_request.corrections) == ("recieve it", [])
        assert (by_tenant.text, by_tenant.corrections) == ("recieve it", [])

    def test_other_languages_are_not_corrected(self, pre: Preprocessor) -> None:
        """An English dictionary is not applied to French."""
        prepared = pre.prepare(request(("user", "Quelle est la capitale de la France ?"))).prepared
        assert prepared is not None
        assert (prepared.language, prepared.corrections) == ("fr", [])

    def test_timings_cover_every_step(self, pre: Preprocessor) -> None:
        """The benchmark's split has a number for each step."""
        pre.reset_timings()
        pre.process(make_envelope("Recieve the parcel"))
        assert set(pre.timings) == set(STEPS)
        assert all(v > 0 for v in pre.timings.values())

    def test_unknown_model(self, pre: Preprocessor) -> None:
        """A model not in the registry is refused."""
        with pytest.raises(PipelineError) as err:
            pre.process(request(("user", "hi"), model="gpt-17"))
        assert err.value.code == "unknown_model"

    @pytest.mark.parametrize("text", [" \u200b \n ", "\x00\x01\x1b[31m\u202e", "   "])
    def test_empty_prompt(self, pre: Preprocessor, text: str) -> None:
        """Whitespace-only or control-only input is an error, not an empty prompt for the model."""
        with pytest.raises(PipelineError) as err:
            pre.process(make_envelope(text))
        assert err.value.code == "empty_prompt"

    def test_too_many_characters(self, pre: Preprocessor) -> None:
        """A prompt over max_prompt_chars is refused before tokenizing."""
        with pytest.raises(PipelineError, match="characters; the limit is 200000") as err:
            pre.process(make_envelope("x" * 1_000_000))
        assert err.value.code == "prompt_too_long"

    def test_batch_isolates_failures(self, pre: Preprocessor) -> None:
        """In a batch, a bad request is its own error; the others are prepared and embedded."""
        results = pre.process_batch([make_envelope("hello there"), make_envelope("   "), make_envelope("good night")])
        assert isinstance(results[1], PipelineError)
        assert [r.prepared.text for r in results if isinstance(r, Envelope) and r.prepared] == [
            "hello there",
            "good night",
        ]
        assert all(r.prepared.embedding for r in results if isinstance(r, Envelope) and r.prepared)


def long_history(turn_words: int, turns: int, last: str) -> list[tuple[str, str]]:
    messages = [("system", "You are a helpful assistant.")]
    for i in range(turns):
        messages += [
            ("user", f"question {i} " + "lorem ipsum " * turn_words),
            ("assistant", f"answer {i} " + "dolor sit " * turn_words),
        ]
    return [*messages, ("user", last)]


class TestBudget:
    @pytest.mark.parametrize(("model", "n_ctx"), [(CHAT_MODEL, 4096), (SMALL_MODEL, 2048)])
    def test_history_is_trimmed_oldest_first(self, pre: Preprocessor, model: str, n_ctx: int) -> None:
        """Over the model's budget, the oldest turns go and the system prompt and latest question stay."""
        env = request(*long_history(300, 6, "What did I ask first?"), model=model)
        prepared = pre.prepare(env).prepared
        assert prepared is not None
        assert prepared.token_budget == n_ctx - 256
        assert prepared.token_count <= prepared.token_budget
        assert prepared.dropped_messages > 0
        assert prepared.dropped_messages % 2 == 0  # whole exchanges
        assert "history_trimmed" in prepared.changes
        assert prepared.messages[0].role == "system"
        assert prepared.messages[-1].content == "What did I ask first?"
        kept_questions = [m.content.split()[1] for m in prepared.messages if m.role == "user"][:-1]
        assert kept_questions == [str(i) for i in range(6 - len(kept_questions), 6)]

    @pytest.mark.parametrize(("model", "budget"), [(CHAT_MODEL, 4096 - 256), (SMALL_MODEL, 2048 - 256)])
    def test_latest_message_alone_too_long(self, pre: Preprocessor, model: str, budget: int) -> None:
        """A last message over the budget is prompt_too_long, with the limit and the actual count."""
        env = request(("system", "Be brief."), ("user", "lorem ipsum dolor " * 1500), model=model)
        with pytest.raises(PipelineError, match=rf"has \d+ tokens; model {model} allows {budget}$") as err:
            pre.prepare(env)
        assert err.value.code == "prompt_too_long"
        count = int(err.value.message.split(" has ")[1].split()[0])
        assert count > budget

    def test_max_tokens_counts_against_the_budget(self, pre: Preprocessor) -> None:
        """Asking for a long answer shrinks the room for the prompt."""
        with pytest.raises(PipelineError, match="allows 1096") as err:
            pre.prepare(request(("user", "word " * 2000), max_tokens=3000))
        assert err.value.code == "prompt_too_long"

    def test_corrections_follow_their_message_after_trimming(self, pre: Preprocessor) -> None:
        """message_index points into prepared.messages after old turns were dropped; dropped turns' go."""
        messages = long_history(300, 6, "Which langauge was it?")
        messages[1] = ("user", "Keep these seperate: " + "the quick brown fox jumps " * 60)  # oldest turn: dropped
        messages[-3] = ("user", "I definately want to know")  # the last exchange: kept
        prepared = pre.prepare(request(*messages, model=CHAT_MODEL)).prepared
        assert prepared is not None
        assert prepared.dropped_messages > 0
        found = {(c.original, prepared.messages[c.message_index].content.split()[0]) for c in prepared.corrections}
        assert found == {("definately", "I"), ("langauge", "Which")}
        assert prepared.messages[-3].content == "I definitely want to know"


@pytest.fixture(scope="module")
def aliased(pre: Preprocessor, registry: ModelRegistry, models_dir: Path) -> Preprocessor:
    """A preprocessor whose registry has ``chat-canary`` (chat model 50, small model 50) and a tenant-only alias."""
    variants = [AliasVariant(model=CHAT_MODEL, weight=50), AliasVariant(model=SMALL_MODEL, weight=50)]
    aliases = {
        "chat-canary": ModelAlias(name="chat-canary", variants=variants),
        "acme-only": ModelAlias(name="acme-only", variants=variants[:1], tenants=["acme"]),
    }
    return Preprocessor(
        registry.model_copy(update={"aliases": aliases}), models_dir, typos=pre.typos, detector=pre.detector
    )


class TestAliasResolution:
    def test_alias_resolves_into_the_envelope(self, aliased: Preprocessor) -> None:
        """prepared.model is the variant the conversation is routed to, prepared.alias the name asked for."""
        seen = {}
        for i in range(16):
            env = aliased.prepare(request(("user", "Hi there"), model="chat-canary", conversation_id=f"c{i}"))
            assert env.prepared is not None
            assert env.prepared.alias == "chat-canary"
            assert env.prepared.model == aliased.registry.resolve("chat-canary", tenant="default", key=f"c{i}").model
            seen[env.prepared.model] = env.prepared
        assert set(seen) == {CHAT_MODEL, SMALL_MODEL}
        # The budget is the chosen variant's: its context, its chat template's token count.
        assert seen[CHAT_MODEL].token_budget == 4096 - 256
        assert seen[SMALL_MODEL].token_budget == 2048 - 256

    def test_same_conversation_same_variant(self, aliased: Preprocessor) -> None:
        """Every turn of a conversation is served by the same variant."""
        models = {
            aliased.prepare(
                request(("user", f"Question {i}"), model="chat-canary", conversation_id="conv-x")
            ).prepared.model  # type: ignore[union-attr]
            for i in range(5)
        }
        assert len(models) == 1

    def test_a_plain_model_has_no_alias(self, aliased: Preprocessor) -> None:
        """Naming a model (or none) leaves prepared.alias empty."""
        env = aliased.prepare(request(("user", "Hi"), model=SMALL_MODEL))
        assert env.prepared is not None
        assert (env.prepared.model, env.prepared.alias) == (SMALL_MODEL, None)

    def test_alias_of_other_tenants_is_not_allowed(self, aliased: Preprocessor) -> None:
        """An alias restricted to other tenants is refused with model_not_allowed, naming what the tenant may use."""
        with pytest.raises(PipelineError) as err:
            aliased.prepare(request(("user", "Hi"), model="acme-only", tenant="beta"))
        assert err.value.code == "model_not_allowed"
        assert "chat-canary" in str(err.value)
        ok = aliased.prepare(request(("user", "Hi"), model="acme-only", tenant="acme"))
        assert ok.prepared is not None
        assert (ok.prepared.model, ok.prepared.alias) == (CHAT_MODEL, "acme-only")
