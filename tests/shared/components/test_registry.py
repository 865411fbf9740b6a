from pathlib import Path

import pytest

from shared.components.registry import ModelRegistry, UnknownModelError


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
