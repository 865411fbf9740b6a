from pathlib import Path

from services.gateway.catalog import model_card
from shared.models.registry import ModelRegistry
from tests.shared.models.test_registry import alias_registry


class TestModelCard:
    def test_a_model_card_has_its_context_length(self) -> None:
        """A registry model's card carries its description and n_ctx, and whether it is the default."""
        registry = ModelRegistry.load()
        name = registry.default
        card = model_card(registry, name)
        assert (card["id"], card["object"], card["default"]) == (name, "model", True)
        assert card["context_length"] == registry.get(name).n_ctx

    def test_an_alias_promises_its_smallest_variant_context(self, tmp_path: Path) -> None:
        """An alias's context length is the smallest of its variants'; its variants are listed."""
        registry = alias_registry(tmp_path)
        assert registry.aliases
        for name, alias in registry.aliases.items():
            card = model_card(registry, name)
            assert card["context_length"] == min(registry.models[v.model].n_ctx for v in alias.variants)
            assert len(card["variants"]) == len(alias.variants)
