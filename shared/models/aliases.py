"""Registry aliases: one model name that splits traffic between registry models by weight (canaries).

A conversation is routed by a hash of (alias, tenant, conversation id) to a point in [0, 1),
which falls into one variant's share of the cumulative weights: the same conversation always
gets the same variant (sticky), different conversations spread in proportion to the weights,
and raising the last variant's weight only moves conversations towards it (a ramp never
flips a conversation back and forth).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

from pydantic import BaseModel, ConfigDict, Field, field_validator

__all__ = ["AliasVariant", "ModelAlias", "Resolution", "routing_point"]


class AliasVariant(BaseModel):
    """One model an alias sends a share of its traffic to."""

    model_config = ConfigDict(extra="forbid")

    model: str = Field(description="A registry model (not another alias).")
    weight: float = Field(ge=0.0, description="Relative share: 90 and 10 split like 9 and 1; 0 drains the variant.")


def _check_variants(variants: list[AliasVariant]) -> list[AliasVariant]:
    names = [v.model for v in variants]
    if len(set(names)) != len(names):
        msg = f"a model is listed twice among the variants: {', '.join(names)}"
        raise ValueError(msg)
    if sum(v.weight for v in variants) <= 0:
        msg = "the variants' weights add up to 0: at least one needs a positive weight"
        raise ValueError(msg)
    return variants


def routing_point(alias: str, tenant: str, key: str) -> float:
    """Where a conversation falls in [0, 1): the same arguments always give the same point.

    Example:
        >>> routing_point("chat", "acme", "conv-1") == routing_point("chat", "acme", "conv-1")
        True

    """
    digest = hashlib.sha256(f"{alias}\x00{tenant}\x00{key}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64


class ModelAlias(BaseModel):
    """A model name that routes each conversation to one of its variants, by weight.

    Example:
        >>> alias = ModelAlias(name="chat", variants=[{"model": "a", "weight": 90}, {"model": "b", "weight": 10}])
        >>> alias.pick("acme", "conv-1") in {"a", "b"}
        True

    """

    model_config = ConfigDict(extra="forbid")

    name: str
    description: str = ""
    variants: list[AliasVariant] = Field(min_length=1, description="The split for every tenant without an override.")
    tenants: list[str] | None = Field(default=None, description="Tenants allowed to use the alias; all when absent.")
    overrides: dict[str, list[AliasVariant]] = Field(
        default_factory=dict, description="Per-tenant splits, e.g. a canary for one tenant only."
    )

    @field_validator("variants")
    @classmethod
    def _variants_ok(cls, value: list[AliasVariant]) -> list[AliasVariant]:
        return _check_variants(value)

    @field_validator("overrides")
    @classmethod
    def _overrides_ok(cls, value: dict[str, list[AliasVariant]]) -> dict[str, list[AliasVariant]]:
        for tenant, variants in value.items():
            if not variants:
                msg = f"the override for tenant {tenant!r} lists no variants"
                raise ValueError(msg)
            try:
                _check_variants(variants)
            except ValueError as exc:
                msg = f"the override for tenant {tenant!r}: {exc}"
                raise ValueError(msg) from exc
        return value

    def allows(self, tenant: str) -> bool:
        """Whether ``tenant`` may use this alias."""
        return self.tenants is None or tenant in self.tenants

    def variants_for(self, tenant: str) -> list[AliasVariant]:
        """The split that applies to ``tenant``: its override, else the alias's."""
        return self.overrides.get(tenant, self.variants)

    @property
    def primary(self) -> str:
        """The model with the largest weight (the first on a tie): what a warm-up loads for this alias."""
        return max(self.variants, key=lambda v: v.weight).model

    def shares(self, tenant: str) -> dict[str, float]:
        """Each variant's expected share of ``tenant``'s conversations (summing to 1)."""
        variants = self.variants_for(tenant)
        total = sum(v.weight for v in variants)
        return {v.model: v.weight / total for v in variants}

    def pick(self, tenant: str, key: str) -> str:
        """The variant serving conversation ``key`` of ``tenant``: by cumulative weight at its routing point."""
        variants = self.variants_for(tenant)
        point = routing_point(self.name, tenant, key) * sum(v.weight for v in variants)
        upto = 0.0
        for variant in variants:
            upto += variant.weight
            if point < upto:
                return variant.model
        # Rounding can leave the point a hair above the last bound: the last variant with weight takes it.
        return next(v.model for v in reversed(variants) if v.weight > 0)


@dataclass(frozen=True)
class Resolution:
    """What a requested model name resolved to: the concrete model, and the alias when it named one."""

    model: str
    alias: str | None = None
