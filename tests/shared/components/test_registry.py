from pathlib import Path

import pytest

from shared.components.registry import LoraAdapter, ModelRegistry, UnknownModelError


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
