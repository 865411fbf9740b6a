"""``/v1/models``: the models and aliases a tenant may use, as OpenAI-style model cards."""

from __future__ import annotations

from typing import Any

from shared.models.registry import ModelRegistry

__all__ = ["model_card"]


def model_card(registry: ModelRegistry, name: str) -> dict[str, Any]:
    """The card of a model or alias; an alias promises no more context than its smallest variant.

    Example:
        >>> model_card(registry, "gemma-3-270m")["context_length"]
        8192

    """
    card = {"id": name, "object": "model", "created": 0, "owned_by": "llmops", "default": name == registry.default}
    alias = registry.aliases.get(name)
    if alias is None:
        entry = registry.get(name)
        return card | {"description": entry.description, "context_length": entry.n_ctx}
    return card | {
        "description": alias.description,
        "context_length": min(registry.models[v.model].n_ctx for v in alias.variants),
        "variants": [v.model_dump() for v in alias.variants],
    }
