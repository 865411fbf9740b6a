import math
from pathlib import Path

import pytest

from shared.models.registry import LoraAdapter, ModelRegistry, Resolution, UnknownModelError


class TestModelRegistry:
    def test_packaged_registry_has_both_models(self) -> None:
        """The registry file lists the default chat model and the small base model."""
        registry = ModelRegistry.load()
        assert registry.default == "qwen2.5-coder-0.5b-instruct"
        assert registry.names() == ["gemma-3-270m", "qwen2.5-coder-0.5b-instruct"]
        qwen = registry.get(None)
        assert qwen.chat_format == "gguf"
        assert qwen.sha256 == "1d9614638d18024d0fbb36575a15f1302a3adf044df10345688ec4f6e1c4ff32"
        assert len(qwen.source.parts) == 6
        gemma = registry.get("gemma-3-270m")
        assert gemma.chat_format == "plain"
        assert gemma.sha256 == "a5fd3b62230aa5ec60212297dc9d20eaa70578ac519e00d93a17e44c087a6818"

    def test_unknown_model_names_the_known_ones(self) -> None:
        """Asking for a model that is not registered says which are."""
        with pytest.raises(UnknownModelError, match="gemma-3-270m"):
            ModelRegistry.load().get("gpt-17")

    def test_default_override(self) -> None:
        """LLMOPS_DEFAULT_MODEL picks another registered model."""
        assert ModelRegistry.load(default="gemma-3-270m").get(None).name == "gemma-3-270m"

    def test_default_must_exist(self, tmp_path: Path) -> None:
        """A registry whose default is not listed is rejected at load."""
        path = tmp_path / "models.yaml"
        path.write_text("default: nope\nmodels: {}\n")
        with pytest.raises(UnknownModelError):
            ModelRegistry.load(path)


REGISTRY = """
default: base
models:
  base:
    file: base.gguf
    sha256: {sha}
    chat_format: gguf
    n_ctx: 1024
    sampling: {{top_k: 20, stop: ["###"]}}
    source: {{kind: path, path: /opt/models/base.gguf}}
  tuned:
    base: base
    description: a LoRA variant served under its own name
    lora: {{path: adapters/tuned.gguf, scale: 0.8}}
    tenants: [acme]
  remote:
    file: remote.gguf
    sha256: {sha}
    chat_format: plain
    source: {{kind: url, url: "https://example.org/remote.gguf"}}
"""


class TestRegistryFile:
    def test_sources_lora_and_tenants(self, tmp_path: Path) -> None:
        """Path and URL sources, a LoRA variant inheriting its base's file, sampling defaults and a tenant list."""
        path = tmp_path / "models.yaml"
        path.write_text(REGISTRY.format(sha="a" * 64))
        registry = ModelRegistry.load(path)
        base, tuned = registry.get("base"), registry.get("tuned")
        assert base.path_in(tmp_path) == Path("/opt/models/base.gguf")
        assert base.sampling.top_k == 20
        assert (tuned.file, tuned.sha256, tuned.n_ctx, tuned.chat_format) == ("base.gguf", "a" * 64, 1024, "gguf")
        assert tuned.lora is not None
        assert tuned.lora.path_in(tmp_path) == tmp_path / "adapters" / "tuned.gguf"
        assert registry.get("remote").path_in(tmp_path) == tmp_path / "remote.gguf"
        assert registry.names(tenant="other") == ["base", "remote"]
        assert registry.get("tuned", tenant="acme") is tuned
        with pytest.raises(UnknownModelError, match="available: base, remote"):
            registry.get("tuned", tenant="other")

    def test_bad_entries_are_rejected(self, tmp_path: Path) -> None:
        """A wrong hash format, an unknown source kind or a missing base fail at load."""
        path = tmp_path / "models.yaml"
        for bad in ("sha256: nothex", "source: {kind: ftp}", "base: nowhere"):
            text = f"default: m\nmodels:\n  m:\n    file: m.gguf\n    chat_format: plain\n    {bad}\n"
            if "sha256" not in bad:
                text += f"    sha256: {'b' * 64}\n"
            if "source" not in bad:
                text += "    source: {kind: path, path: /x.gguf}\n"
            path.write_text(text)
            with pytest.raises((ValueError, KeyError)):
                ModelRegistry.load(path)


class TestPricesAndRevisions:
    def test_every_packaged_model_has_a_price(self) -> None:
        """Usage accounting prices each model's tokens from the registry."""
        registry = ModelRegistry.load()
        for name in registry.names():
            price = registry.get(name).price
            assert price.prompt_per_1m > 0
            assert price.cost(1_000_000, 0) == price.prompt_per_1m
            assert price.cost(0, 2_000_000) == 2 * price.completion_per_1m

    def test_revision_follows_the_weights(self) -> None:
        """New weights (sha256) or a LoRA adapter under the same name give a new revision."""
        entry = ModelRegistry.load().get("gemma-3-270m")
        assert entry.revision == entry.sha256[:16]
        assert entry.model_copy(update={"sha256": "0" * 64}).revision != entry.revision
        tuned = entry.model_copy(update={"lora": LoraAdapter(path=Path("a.gguf"), sha256="1" * 64)})
        assert tuned.revision != entry.revision


ALIASES = """
default: {default}
models:
  stable:
    file: stable.gguf
    sha256: {sha}
    chat_format: gguf
    n_ctx: 4096
    source: {{kind: path, path: /m/stable.gguf}}
  canary:
    file: canary.gguf
    sha256: {sha}
    chat_format: plain
    n_ctx: 2048
    source: {{kind: path, path: /m/canary.gguf}}
  private:
    base: stable
    tenants: [acme]
aliases:
{aliases}
"""

CHAT = """
  chat:
    description: stable, with a canary
    variants:
      - {model: stable, weight: 90}
      - {model: canary, weight: 10}
    overrides:
      acme:
        - {model: stable, weight: 50}
        - {model: private, weight: 50}
"""

#: Conversations in the split test, and how far (standard deviations) the canary's count may stray.
CONVERSATIONS = 200
SIGMAS = 3


def alias_registry(tmp_path: Path, aliases: str = CHAT, default: str = "stable") -> ModelRegistry:
    path = tmp_path / "models.yaml"
    path.write_text(ALIASES.format(sha="c" * 64, aliases=aliases, default=default))
    return ModelRegistry.load(path)


class TestAliases:
    def test_alias_is_parsed_and_listed(self, tmp_path: Path) -> None:
        """An alias has its variants and overrides; names() lists it only when asked; get() gives its primary."""
        registry = alias_registry(tmp_path)
        chat = registry.aliases["chat"]
        assert [(v.model, v.weight) for v in chat.variants] == [("stable", 90), ("canary", 10)]
        assert chat.shares("beta") == {"stable": 0.9, "canary": 0.1}
        assert chat.shares("acme") == {"stable": 0.5, "private": 0.5}
        assert "chat" not in registry.names()
        assert registry.names(aliases=True) == ["canary", "chat", "private", "stable"]
        assert registry.get("chat").name == "stable"
        assert registry.canonical("chat") == "chat"
        assert registry.resolve("stable", tenant="beta", key="c1") == Resolution(model="stable")

    def test_the_default_can_be_an_alias(self, tmp_path: Path) -> None:
        """A request naming no model is routed by the default alias; warm-ups load its primary model."""
        registry = alias_registry(tmp_path, default="chat")
        assert registry.get(None).name == "stable"
        assert registry.resolve(None, tenant="beta", key="c1").alias == "chat"

    @pytest.mark.parametrize(
        ("aliases", "error"),
        [
            ("  chat: {variants: [{model: nowhere, weight: 1}]}", "variant 'nowhere' is not a registry model"),
            ("  chat: {variants: [{model: stable, weight: -5}]}", "greater than or equal to 0"),
            ("  chat: {variants: [{model: stable, weight: 0}]}", "add up to 0"),
            ("  chat: {variants: []}", "at least 1 item"),
            ("  chat: {variants: [{model: stable, weight: 1}, {model: stable, weight: 2}]}", "listed twice"),
            ("  stable: {variants: [{model: canary, weight: 1}]}", "has the name of a model"),
            ("  a: {variants: [{model: stable, weight: 1}]}\n  b: {variants: [{model: a, weight: 1}]}", "cannot nest"),
            ("  chat: {variants: [{model: private, weight: 1}]}", "not allowed for every tenant"),
            (
                "  chat: {tenants: [beta], overrides: {acme: [{model: stable, weight: 1}]}, variants: [{model: stable, weight: 1}]}",
                "not allowed to use it: acme",
            ),
            (
                "  chat: {overrides: {beta: [{model: private, weight: 1}]}, variants: [{model: stable, weight: 1}]}",
                "not allowed for beta",
            ),
            ("  chat: {variants: [{model: stable, weight: 1}], split: 5}", "Extra inputs are not permitted"),
        ],
    )
    def test_invalid_aliases_are_rejected_clearly(self, tmp_path: Path, aliases: str, error: str) -> None:
        """Unknown or nested variants, negative or all-zero weights, duplicates, name clashes, tenant gaps fail at load."""
        with pytest.raises(ValueError, match=error):
            alias_registry(tmp_path, aliases)

    def test_drained_variant_may_be_restricted(self, tmp_path: Path) -> None:
        """A variant at weight 0 gets no traffic, so its tenant list is not checked (a canary can be drained)."""
        registry = alias_registry(
            tmp_path, "  chat: {variants: [{model: stable, weight: 1}, {model: private, weight: 0}]}"
        )
        assert {registry.resolve("chat", tenant="beta", key=f"c{i}").model for i in range(200)} == {"stable"}

    def test_tenant_allowance(self, tmp_path: Path) -> None:
        """An alias with a tenant list refuses other tenants, naming what they may use."""
        registry = alias_registry(tmp_path, "  chat: {tenants: [acme], variants: [{model: private, weight: 1}]}")
        assert registry.resolve("chat", tenant="acme", key="c1") == Resolution(model="private", alias="chat")
        with pytest.raises(UnknownModelError, match="available: canary, stable"):
            registry.resolve("chat", tenant="beta", key="c1")

    def test_sticky_per_conversation(self, tmp_path: Path) -> None:
        """The same (alias, tenant, conversation) always gets the same variant, also from a freshly loaded registry."""
        first, second = alias_registry(tmp_path), alias_registry(tmp_path)
        for i in range(CONVERSATIONS):
            picked = first.resolve("chat", tenant="beta", key=f"conv-{i}").model
            assert first.resolve("chat", tenant="beta", key=f"conv-{i}").model == picked
            assert second.resolve("chat", tenant="beta", key=f"conv-{i}").model == picked

    def test_split_within_binomial_tolerance(self, tmp_path: Path) -> None:
        """Over 200 conversations a 90/10 split sends the canary 20 ± 3 sigma (sigma = sqrt(200 * 0.1 * 0.9) = 4.2)."""
        registry = alias_registry(tmp_path)
        picks = [registry.resolve("chat", tenant="beta", key=f"conversation-{i}").model for i in range(CONVERSATIONS)]
        expected, sigma = CONVERSATIONS * 0.1, math.sqrt(CONVERSATIONS * 0.1 * 0.9)
        assert abs(picks.count("canary") - expected) <= SIGMAS * sigma, picks.count("canary")
        assert picks.count("stable") + picks.count("canary") == CONVERSATIONS

    def test_tenant_override_splits_only_that_tenant(self, tmp_path: Path) -> None:
        """acme's override (50/50 stable/private) applies to acme; other tenants keep the alias's split."""
        registry = alias_registry(tmp_path)
        acme = {registry.resolve("chat", tenant="acme", key=f"c{i}").model for i in range(CONVERSATIONS)}
        beta = {registry.resolve("chat", tenant="beta", key=f"c{i}").model for i in range(CONVERSATIONS)}
        assert acme == {"stable", "private"}
        assert beta == {"stable", "canary"}

    def test_ramping_up_the_canary_only_moves_conversations_to_it(self, tmp_path: Path) -> None:
        """From 90/10 to 80/20: every conversation on the canary stays there; some stable ones join it."""
        before = alias_registry(
            tmp_path, "  chat: {variants: [{model: stable, weight: 90}, {model: canary, weight: 10}]}"
        )
        after = alias_registry(
            tmp_path, "  chat: {variants: [{model: stable, weight: 80}, {model: canary, weight: 20}]}"
        )
        keys = [f"c{i}" for i in range(1000)]
        was = {k for k in keys if before.resolve("chat", tenant="t", key=k).model == "canary"}
        now = {k for k in keys if after.resolve("chat", tenant="t", key=k).model == "canary"}
        assert was < now
