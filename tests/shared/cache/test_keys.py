import pytest

from shared.cache import cache_key, cacheable_answer, lookup_allowed
from shared.cache.keys import is_shadow
from shared.contracts.envelope import CacheHit, CacheInfo, Document, Finding
from tests.shared.cache.helpers import checked, finished

REV = "abc"


class TestCacheKey:
    def test_same_context_same_key_whatever_the_wording(self) -> None:
        """Paraphrases share the exact key: only the embedding tells them apart."""
        assert cache_key(checked("Capital of France?"), model_revision=REV) == cache_key(
            checked("What's France's capital?"), model_revision=REV
        )

    @pytest.mark.parametrize(
        "changed",
        [
            {"tenant": "other"},
            {"model": "qwen2.5-coder-0.5b-instruct"},
            {"template_version": 2},
            {"policy_version": 2},
            {"documents": [Document(id="d1", source="s", score=0.9, text="Paris is the capital.")]},
        ],
    )
    def test_each_part_of_the_context_changes_the_key(self, changed: dict[str, object]) -> None:
        """Tenant, model, template version, safety policy version and retrieved knowledge are all in the key."""
        assert cache_key(checked(), model_revision=REV) != cache_key(checked(**changed), model_revision=REV)  # type: ignore[arg-type]

    def test_model_weights_and_knowledge_text_change_the_key(self) -> None:
        """New weights under the same name, or a changed document with the same id, give a new key."""
        doc = Document(id="d1", source="s", score=0.9, text="Paris is the capital.")
        edited = doc.model_copy(update={"text": "Lyon is the capital."})
        assert cache_key(checked(), model_revision="abc") != cache_key(checked(), model_revision="abd")
        assert cache_key(checked(documents=[doc]), model_revision=REV) != cache_key(
            checked(documents=[edited]), model_revision=REV
        )

    def test_conversation_memory_changes_the_key(self) -> None:
        """A follow-up in a conversation is not answered with another conversation's answer."""
        env = checked()
        with_memory = checked()
        assert with_memory.grounding is not None
        with_memory.grounding.messages.insert(
            1, with_memory.grounding.messages[0].model_copy(update={"role": "assistant"})
        )
        assert cache_key(env, model_revision=REV) != cache_key(with_memory, model_revision=REV)


class TestLookupAllowed:
    def test_allowed_request_may_be_looked_up(self) -> None:
        """An allowed, embedded, grounded request may use the cache."""
        assert lookup_allowed(checked())

    @pytest.mark.parametrize(
        "env",
        [
            checked(verdict="redact"),
            checked(verdict="block"),
            checked(metadata={"shadow": "true"}),
            checked(metadata={"cache": "off"}),
        ],
    )
    def test_redacted_blocked_shadow_and_opted_out_are_not(self, env: object) -> None:
        """Only requests allowed as they are, not shadow, not opted out."""
        assert not lookup_allowed(env)  # type: ignore[arg-type]


class TestCacheableAnswer:
    def test_a_clean_complete_answer_is_cacheable(self) -> None:
        """Generated, complete, unchanged by the checks."""
        assert cacheable_answer(finished(checked()))

    def test_refused_redacted_truncated_timeout_shadow_cached_are_not(self) -> None:
        """Never cache refusals, redactions, truncations, timeouts, shadow requests or cache hits."""
        base = finished(checked())
        assert base.response is not None
        redacted = Finding(check="pii.email", start=0, end=3, action="redact")
        variants = [
            base.model_copy(update={"response": base.response.model_copy(update={"refused": True})}),
            base.model_copy(update={"response": base.response.model_copy(update={"truncated": True})}),
            base.model_copy(update={"response": base.response.model_copy(update={"findings": [redacted]})}),
            base.model_copy(update={"response": base.response.model_copy(update={"cached": True})}),
            finished(checked(), finish_reason="length"),
            finished(checked(), finish_reason="timeout"),
            finished(checked(verdict="redact")),
            finished(checked(metadata={"shadow": "1"})),
            base.model_copy(update={"cache": None}),
            base.model_copy(
                update={"cache": CacheInfo(key="k", hit=CacheHit(request_id="r0", similarity=1.0, text="x", model="m"))}
            ),
            base.model_copy(update={"error": None, "kind": "request"}),
        ]
        assert [cacheable_answer(v) for v in variants] == [False] * len(variants)


class TestIsShadow:
    @pytest.mark.parametrize(
        ("metadata", "shadow"),
        [
            ({}, False),
            ({"shadow": ""}, False),
            ({"shadow": "false"}, False),
            ({"shadow": "1"}, True),
            ({"shadow": "eval:s/c"}, True),
        ],
    )
    def test_shadow_values(self, metadata: dict[str, str], shadow: bool) -> None:  # noqa: FBT001
        """Any value but an empty or 'off' one marks a shadow request."""
        assert is_shadow(checked(metadata=metadata)) is shadow
